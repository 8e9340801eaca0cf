"""The house's arrows run one way: web → broadcast → (tts → audio) → wire, devices → wire, and
inside `broadcast/` from the desks down to the store (docs/architecture.md draws it).

Read from the source with `ast`, every import counts, also those inside functions: an arrow
hidden in a function still ties the packages together. Only a loop may pass through an
`if TYPE_CHECKING:` import, which never runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("wire", "audio", "tts", "devices", "broadcast", "web", "loa")

# What each package may import of the others (itself always).
ALLOWED = {
    "wire": set(),
    "audio": {"wire"},
    "tts": {"audio", "wire"},
    "devices": {"wire"},
    "broadcast": {"tts", "audio", "wire"},
    "web": {"broadcast", "tts", "audio", "wire"},
    "loa": {"broadcast", "web", "devices", "tts", "audio", "wire"},
}

# `broadcast/` from the bottom up: a part imports only parts on its floor or below.
BROADCAST_FLOORS = (
    {"const", "errors"},
    {"store"},
    {"clock", "settings"},
    {"people"},
    {"fleet"},
    {"sending"},
    {"programme"},
    {"desks"},
    {"service"},
)


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            yield ".".join(parts), path


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    return {
        inner
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }


def _imports(module: str, path: Path, *, runtime: bool = False) -> set[str]:
    """Every first-party module `module` imports, as dotted names (`runtime`: not those under
    `if TYPE_CHECKING:`)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree) if runtime else set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PRODUCT}


MODULES = dict(_modules())
GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}
RUNTIME_GRAPH = {module: _imports(module, path, runtime=True) for module, path in MODULES.items()}


def _floor(module: str) -> int:
    part = module.split(".")[1] if module.count(".") else ""
    for height, floor in enumerate(BROADCAST_FLOORS):
        if part in floor:
            return height
    raise AssertionError(f"{module}: not on any floor of BROADCAST_FLOORS; give it one")


@pytest.mark.parametrize("package", PRODUCT)
def test_packages_import_only_what_lies_below_them(package: str) -> None:
    wrong = sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        if module.split(".")[0] == package
        for name in names
        if name.split(".")[0] not in ALLOWED[package] | {package}
    )
    assert not wrong, "\n".join(wrong)


def test_broadcast_parts_import_only_their_floor_or_below() -> None:
    wrong = sorted(
        f"{module} (floor {_floor(module)}) imports {name} (floor {_floor(name)})"
        for module, names in GRAPH.items()
        if module.startswith("broadcast.")
        for name in names
        if name.startswith("broadcast.") and _floor(name) > _floor(module)
    )
    assert not wrong, "\n".join(wrong)


def test_broadcast_has_at_most_a_dozen_entries_at_its_top() -> None:
    entries = [p.name for p in (REPO / "broadcast").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 12, sorted(entries)


def test_no_module_imports_itself_round_a_loop() -> None:
    """No import cycle between modules: each can be read (and loaded) before those above it."""
    edges = {
        module: {name for name in names if name in GRAPH and name != module}
        for module, names in RUNTIME_GRAPH.items()
    }
    # A package's __init__ re-exporting its modules is not a loop with them.
    for module in edges:
        edges[module] = {n for n in edges[module] if not module.startswith(n + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for name in sorted(edges[module]):
            if state.get(name) == 1:
                cycles.append([*trail[trail.index(name) :], name])
            elif name not in state:
                visit(name, [*trail, name])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" → ".join(cycle) for cycle in cycles)


# What the web may import of `broadcast`: the composition root, the desks, and the plain
# modules beside them (errors, constants, clock, settings, the permissions table). Everything
# else (store, people, fleet, sending, programme) it reaches through a desk.
WEB_MAY_IMPORT = (
    "broadcast.service",
    "broadcast.desks",
    "broadcast.errors",
    "broadcast.const",
    "broadcast.clock",
    "broadcast.settings",
    "broadcast.people.permissions",
)


def _web_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted((REPO / "web").rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path


def _broadcast_names(path: Path) -> set[str]:
    """The `broadcast` modules a file imports (`from broadcast import clock` is
    `broadcast.clock`), or the module an imported name comes from."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return {name for name in found if name.split(".")[0] == "broadcast"}


def test_web_enters_broadcast_only_through_its_desks() -> None:
    wrong = sorted(
        f"{relative} imports {name}"
        for relative, path in _web_modules()
        for name in _broadcast_names(path)
        if not any(name == ok or name.startswith(ok + ".") for ok in WEB_MAY_IMPORT)
    )
    assert not wrong, "\n".join(wrong)


def test_web_opens_no_database_session_of_its_own() -> None:
    """A view asks a desk, which opens the session, checks who may and returns plain records."""
    wrong = sorted(
        relative
        for relative, path in _web_modules()
        if ".db.session(" in path.read_text(encoding="utf-8")
    )
    assert not wrong, wrong
