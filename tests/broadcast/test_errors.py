"""Every error the domain raises for a person carries a stable code and a message id to
translate (`broadcast.errors`): read from the source with `ast`, so a new raise site written
the old way (an f-string, no code) fails here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from broadcast.errors import N_, Conflict, LoaError, Msgid, NotFound, ValidationError

ROOT = Path(__file__).resolve().parents[2] / "broadcast"
CODED = {"ValidationError": 1, "Conflict": 1, "PermissionDenied": 0, "NotFound": 0}
"""Each coded error class → the position of its message (the field comes first)."""


def _error_names(tree: ast.Module) -> dict[str, str]:
    """The module's names for broadcast.errors' classes (`as` renames included)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "broadcast.errors":
            for alias in node.names:
                if alias.name in CODED:
                    names[alias.asname or alias.name] = alias.name
    return names


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = _error_names(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        kind = names.get(node.func.id)
        if kind is None:
            continue
        where = f"{path.relative_to(ROOT.parent)}:{node.lineno} {kind}"
        at = CODED[kind]
        message = node.args[at] if len(node.args) > at else None
        if message is None or isinstance(message, ast.Constant | ast.JoinedStr | ast.BinOp):
            found.append(f"{where}: the message is not a message id (N_(…) or a name for one)")
        code = node.args[at + 1] if len(node.args) > at + 1 else None
        code = code or next((k.value for k in node.keywords if k.arg == "code"), None)
        if code is None or (isinstance(code, ast.Constant) and not code.value):
            found.append(f"{where}: no code")
    return found


def test_every_error_raised_for_a_person_carries_a_code_and_a_message_id() -> None:
    modules = sorted(set(ROOT.rglob("*.py")) - {ROOT / "errors.py"})
    assert len(modules) > 30  # the scan really walked the floors
    problems = [problem for path in modules for problem in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_message_is_vietnamese_text_with_its_parameters_in() -> None:
    """`str(error)` is what the CLI and the logs show; the parts stay for the web layer."""
    error = ValidationError("repeat", N_("phải từ 1 đến %(max)s"), "out_of_range", max=10)
    assert str(error) == "repeat: phải từ 1 đến 10"
    assert (error.field, error.message, error.code) == (
        "repeat",
        "phải từ 1 đến 10",
        "out_of_range",
    )
    assert (error.msgid, error.params) == ("phải từ 1 đến %(max)s", {"max": 10})
    assert isinstance(error.msgid, Msgid) and isinstance(N_("Bản nháp"), str)
    missing = NotFound(N_("không có bản tin %(id)s"), "not_found", id=7)
    assert str(missing) == "không có bản tin 7" and missing.code == "not_found"


@pytest.mark.parametrize("error_class", [ValidationError, Conflict])
def test_an_old_plain_message_still_works(error_class: type[ValidationError]) -> None:
    """Call sites not converted yet: a plain string (with a "%" even), code optional."""
    error = error_class("title", "100% sai")
    assert str(error) == "title: 100% sai" and error.code == "" and error.params == {}
    assert error_class("title", "sai", code="bad").code == "bad"
    assert str(LoaError("cannot read x: no such file")) == "cannot read x: no such file"
