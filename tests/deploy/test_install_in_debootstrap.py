"""The Raspberry Pi install script, run end to end in a Debian root made with debootstrap (issue 6).

Raspberry Pi OS is Debian bookworm for arm64/armhf. The root here is Debian bookworm (minbase
plus systemd, which Raspberry Pi OS has) for this machine's own architecture (amd64 on CI): the
same packages and the same script, with no emulation, so it runs in CI time. The script then
does everything it does on a Pi: apt installs, the user `loa`, the virtualenv and Loa's wheel with
its dependencies from PyPI, the config, the unit (enabled for the next boot: no systemd runs in a
chroot) and `loa doctor`. The installed unit passes the root's own `systemd-analyze verify` with
the real ExecStart, and a second run (an upgrade) keeps the config.

The root uses the Debian mirror this machine's apt uses, and its apt proxy, CA certificates and
pip config, so it reaches the network the way this machine does. Every chroot runs in its own
mount namespace (`unshare --mount`): its /proc and /dev/pts vanish with it, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)  # debootstrap from a slow mirror can take minutes

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
DEBIAN_RELEASES = {"bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing"}
DEVICE_ID = "loa-thon-a-01"
UNREACHABLE_BROKER_PORT = "1"  # tcpmux: nothing listens there, so the doctor must say so
INSTALL_DIR = "/root/loa-install"  # where the installer's files are copied in the root
UNIT = "/etc/systemd/system/loa-receiver.service"
CONFIG = "/etc/loa/receiver.json"
AGENT = "/opt/loa/venv/bin/loa"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
PASSED_PIP_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT")
SOURCE_IGNORED = (
    ".git", ".venv", "var", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
    "build", "dist", "test-artifacts", ".hypothesis",
)  # fmt: skip
DEBOOTSTRAP_TIMEOUT_S = 480.0
INSTALL_TIMEOUT_S = 480.0
CHECK_TIMEOUT_S = 60.0


def run_bounded(
    argv: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group; on a timeout or an interrupt the whole group dies,
    so no dpkg or pip is left running in the root."""
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except BaseException as exc:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            pytest.fail(f"{argv[:4]} took over {timeout_s:.0f} s:\n{output[-4000:]}")
        raise
    return subprocess.CompletedProcess(argv, process.returncode, output, "")


def in_root(
    root: Path, argv: list[str], timeout_s: float = CHECK_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run argv chrooted in root with a clean environment, /proc and /dev/pts mounted in a private
    mount namespace (they vanish with it)."""
    mount_then_chroot = (
        'mount -t proc proc "$1/proc" && '
        'mount -t devpts -o newinstance,ptmxmode=0666 devpts "$1/dev/pts" && '
        'root="$1" && shift && exec chroot "$root" /usr/bin/env -i "$@"'
    )
    env = [f"PATH={ROOT_PATH}", "HOME=/root", "LANG=C.UTF-8"]
    env += [f"{name}={os.environ[name]}" for name in PASSED_ENV if os.environ.get(name)]
    env += [f"{name}={value}" for name, value in pip_network_env().items()]
    return run_bounded(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount_then_chroot,
         "sh", str(root), *env, *argv],
        timeout_s,
    )  # fmt: skip


def pip_network_env() -> dict[str, str]:
    """This machine's pip index settings that also work from the root (http(s) ones only)."""
    passed: dict[str, str] = {}
    for name in PASSED_PIP_ENV:
        value = os.environ.get(name, "")
        if name.endswith("_URL"):
            value = " ".join(url for url in value.split() if url.startswith(("http:", "https:")))
        if value:
            passed[name] = value
    return passed


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses: the URI of its first Debian release suite
    (not -updates or -security, nor a third-party repository)."""
    for uri, suites in apt_sources():
        if any(suite in DEBIAN_RELEASES for suite in suites):
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def apt_sources() -> list[tuple[str, list[str]]]:
    """(URI, suites) of each enabled `deb` source, from one-line .list and deb822 .sources files."""
    folder = Path("/etc/apt")
    found: list[tuple[str, list[str]]] = []
    for path in [folder / "sources.list", *sorted((folder / "sources.list.d").glob("*.list"))]:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        for match in re.finditer(r"(?m)^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text):
            found.append((match.group(1), [match.group(2)]))
    for path in sorted((folder / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            lines = [line for line in stanza.splitlines() if not line.lstrip().startswith("#")]
            fields = {
                key.strip().lower(): value.strip()
                for key, _, value in (line.partition(":") for line in lines)
            }
            enabled = fields.get("enabled", "yes").lower() != "no"
            if enabled and "deb" in fields.get("types", "").split():
                suites = fields.get("suites", "").split()
                found += [(uri, suites) for uri in fields.get("uris", "").split()]
    return found


def apt_http_proxy() -> str:
    """Acquire::http::Proxy of this machine's apt, or ''."""
    if shutil.which("apt-config") is None:
        return ""
    done = run_bounded(["apt-config", "shell", "PROXY", "Acquire::http::Proxy"], CHECK_TIMEOUT_S)
    match = re.search(r"PROXY='([^']*)'", done.stdout)
    return match.group(1) if match else ""


def build_wheel(work: Path) -> Path:
    """A wheel of this checkout, built from a copy so the shared tree gets no build/ folder."""
    source = work / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*SOURCE_IGNORED))
    wheels = work / "wheels"
    done = run_bounded(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels),
         str(source)],
        INSTALL_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    [wheel] = wheels.glob("loa-*.whl")
    shutil.rmtree(source)
    return wheel


def check_wheel_has_what_pyproject_declares(wheel: Path) -> None:
    """Every package and data file pyproject declares, so the Pi gets templates, migrations and
    data as well as code."""
    setuptools_config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["tool"][
        "setuptools"
    ]
    names = set(zipfile.ZipFile(wheel).namelist())
    for pattern in setuptools_config["packages"]["find"]["include"]:
        top = pattern.rstrip("*").rstrip(".")
        for init in (REPO_ROOT / top).rglob("__init__.py"):
            member = init.relative_to(REPO_ROOT).as_posix()
            assert "__pycache__" in member or member in names, f"{member} missing from {wheel.name}"
    for package, globs in setuptools_config.get("package-data", {}).items():
        for glob in globs:
            declared = [
                path.relative_to(REPO_ROOT).as_posix()
                for path in (REPO_ROOT / package).glob(glob)
                if path.is_file() and "__pycache__" not in path.parts
            ]
            assert declared, f"package data {package}/{glob} matches nothing in the checkout"
            missing = [member for member in declared if member not in names]
            assert not missing, f"package data missing from {wheel.name}: {missing}"


def register_receiver(work: Path) -> Path:
    """A receiver's config file as the server writes it: `loa device add` in a commune's village
    (the zones only: no users, whose password hashing would cost seconds)."""
    from service_support import make_service

    from broadcast.const import ZoneKind
    from broadcast.people import zones

    data = work / "server-data"
    service = make_service(data)
    try:
        with service.db.session() as session:
            zones.create_zone(session, "xa-test", "Xã Thử", ZoneKind.COMMUNE)
            zones.create_zone(session, "thon-a", "Thôn A", ZoneKind.VILLAGE, "xa-test")
    finally:
        service.stop()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "loa.cli", "device", "add", DEVICE_ID, "--zone", "thon-a",
         "--data", str(data), "--mqtt-host", "127.0.0.1", "--mqtt-port", UNREACHABLE_BROKER_PORT],
        capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def make_root(root: Path, mirror: str, proxy: str) -> subprocess.CompletedProcess[str]:
    """Debian bookworm, minbase plus systemd (Raspberry Pi OS has it; the script enables the unit
    with it and the root's own systemd-analyze verifies it). The script's packages are left to the
    script, so one it forgets to install is missed here too."""
    env = dict(os.environ)
    if proxy:
        env["http_proxy"] = proxy
    return run_bounded(
        ["unshare", "--mount", "--propagation", "private",
         "debootstrap", "--variant=minbase", "--include=systemd", "--components=main",
         SUITE, str(root), mirror],
        DEBOOTSTRAP_TIMEOUT_S,
        env,
    )  # fmt: skip


def reach_the_network_like_this_machine(root: Path, proxy: str) -> None:
    """DNS, the apt proxy and Acquire settings, local CA certificates (installed into the root's
    bundle when the script installs ca-certificates) and site-wide pip config."""
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_bytes(Path("/etc/resolv.conf").read_bytes())
    apt_conf = root / "etc" / "apt" / "apt.conf.d"
    for path in sorted(Path("/etc/apt/apt.conf.d").glob("*")):
        if path.is_file() and "Acquire::" in path.read_text(encoding="utf-8", errors="replace"):
            shutil.copy(path, apt_conf / path.name)
    if proxy:
        (apt_conf / "80loa-test-proxy").write_text(f'Acquire::http::Proxy "{proxy}";\n', "utf-8")
    local_cas = Path("/usr/local/share/ca-certificates")
    if local_cas.is_dir():
        shutil.copytree(local_cas, root / local_cas.relative_to("/"), dirs_exist_ok=True)
    if Path("/etc/pip.conf").is_file():
        shutil.copy("/etc/pip.conf", root / "etc" / "pip.conf")
    if Path("/etc/xdg/pip").is_dir():
        shutil.copytree("/etc/xdg/pip", root / "etc" / "xdg" / "pip", dirs_exist_ok=True)


def forbid_starting_services(root: Path) -> None:
    """Debian's policy-rc.d: package scripts must not start chronyd (or anything) in a chroot."""
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\n# no services in a chroot\nexit 101\n", encoding="utf-8")
    policy.chmod(0o755)


def mounts_under(folder: Path) -> list[str]:
    """Mount points inside folder, deepest first (the order to unmount them)."""
    prefix = str(folder.resolve()) + "/"
    mount_points = [
        line.split()[4].replace("\\040", " ")
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    ]
    return sorted((m for m in mount_points if m.startswith(prefix)), key=len, reverse=True)


def remove_root(root: Path) -> None:
    """Delete the root only when nothing is mounted in it (rmtree must never reach a mounted
    /dev or /proc of this machine)."""
    for mount_point in mounts_under(root):
        subprocess.run(["umount", "--lazy", mount_point], timeout=CHECK_TIMEOUT_S, check=False)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"still mounted, {root} left in place: {left}")
    shutil.rmtree(root, ignore_errors=True)


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The script as an installer runs it: `sh deploy/install-receiver.sh WHEEL [CONFIG]`."""
    return in_root(root, ["sh", f"{INSTALL_DIR}/deploy/install-receiver.sh", *args],
                   INSTALL_TIMEOUT_S)  # fmt: skip


def group_id(root: Path, name: str) -> int:
    for line in (root / "etc" / "group").read_text(encoding="utf-8").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"no group {name} in the root")


def check_doctor_output(output: str) -> None:
    """The doctor printed every check; the broker (nothing listens) and the clock (chronyd is not
    running in a chroot) fail with what to do, not a traceback."""
    assert "Traceback" not in output, output
    for expected in (
        f"[OK  ] config: {CONFIG}: device {DEVICE_ID}",
        "[OK  ] server key:",
        f"[FAIL] broker: 127.0.0.1:{UNREACHABLE_BROKER_PORT} unreachable (Connection refused)",
        f"→ check the network, and that the broker listens on 127.0.0.1:{UNREACHABLE_BROKER_PORT}",
        "[FAIL] clock: chronyd does not answer (506 Cannot talk to daemon)",
        "→ start chrony: systemctl enable --now chrony",
        "[OK  ] audio: player /usr/bin/mpg123",
        "[OK  ] disk: /var/lib/loa writable",
        "2 check(s) failed",
    ):
        assert expected in output, f"{expected!r} not in the doctor's output:\n{output}"


def check_installed(root: Path, given_config: dict[str, object]) -> None:
    """What the unit needs at the next boot: itself enabled, chrony enabled, the config private to
    root and loa, the user in the audio and gpio groups, and an agent that runs as that user."""
    unit = root / UNIT.lstrip("/")
    assert unit.read_bytes() == (REPO_ROOT / "deploy" / "systemd" / unit.name).read_bytes()
    wants = root / "etc" / "systemd" / "system" / "multi-user.target.wants"
    assert os.readlink(wants / unit.name) == UNIT, "the unit is not enabled for the next boot"
    assert (wants / "chrony.service").is_symlink(), "chrony is not enabled for the next boot"

    config = root / CONFIG.lstrip("/")
    status = config.stat()
    assert (status.st_mode & 0o777, status.st_uid, status.st_gid) == (
        0o640,
        0,
        group_id(root, "loa"),
    ), "the config must be root:loa 0640: it holds the broker password"
    installed = json.loads(config.read_text(encoding="utf-8"))
    assert installed["device_id"] == DEVICE_ID and installed["mqtt"] == given_config["mqtt"]
    assert installed["data_dir"] == "/var/lib/loa"
    assert installed["player"] == {"kind": "mpg123", "remote_argv": ["mpg123", "-R", "-o", "alsa"]}

    groups = in_root(root, ["id", "-nG", "loa"])
    assert groups.returncode == 0 and set(groups.stdout.split()) >= {"loa", "audio", "gpio"}, (
        groups.stdout
    )
    agent = in_root(root, ["runuser", "-u", "loa", "--", AGENT, "receiver", "--help"])
    assert agent.returncode == 0 and "--config" in agent.stdout, agent.stdout
    check_receiver_packages_only(root)


def check_receiver_packages_only(root: Path) -> None:
    """A Pi gets the receiver's packages, not the server's (Flask, SQLAlchemy, ffmpeg: hundreds
    of MB an SD card does without); a server command says what to install instead."""
    site = installed_module(root, "devices").parent
    for server_only in ("flask", "sqlalchemy", "imageio_ffmpeg", "psycopg", "gunicorn"):
        assert not (site / server_only).exists(), f"{server_only} installed on a receiver"
    serve = in_root(root, ["runuser", "-u", "loa", "--", AGENT, "serve", "--data", "/tmp/x"])
    assert serve.returncode == 2, serve.stdout
    assert "pip install 'loa[server]'" in serve.stdout and "Traceback" not in serve.stdout


def check_unit_verifies_in_root(root: Path) -> None:
    """The root's own systemd-analyze, on the installed unit with its real ExecStart; a copy with
    a missing ExecStart must fail, so a pass means the agent was found."""
    assert os.access(root / AGENT.lstrip("/"), os.X_OK)
    verified = in_root(root, ["systemd-analyze", "verify", UNIT])
    assert verified.returncode == 0 and "loa-receiver" not in verified.stdout, verified.stdout
    broken = root / "etc" / "systemd" / "system" / "loa-broken.service"
    broken.write_text(
        (root / UNIT.lstrip("/")).read_text("utf-8").replace(AGENT, AGENT + "-missing"), "utf-8"
    )
    try:
        refused = in_root(root, ["systemd-analyze", "verify", "/" + str(broken.relative_to(root))])
    finally:
        broken.unlink()
    assert refused.returncode != 0 and "not executable" in refused.stdout, refused.stdout


def installed_module(root: Path, member: str) -> Path:
    """Where the venv in the root holds one of Loa's files."""
    [path] = (root / "opt" / "loa" / "venv" / "lib").glob(f"python3*/site-packages/{member}")
    return path


def test_the_install_script_runs_end_to_end_in_a_debootstrap_root(tmp_path: Path) -> None:
    debootstrap = shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    assert debootstrap, (
        "debootstrap not found: install Debian's debootstrap package "
        "(apt-get install debootstrap; .ci/run does)"
    )
    assert os.geteuid() == 0, "debootstrap and chroot need root (CI runs the tests as root)"
    timings: dict[str, float] = {}
    started = time.monotonic()
    wheel = build_wheel(tmp_path)
    check_wheel_has_what_pyproject_declares(wheel)
    config_file = register_receiver(tmp_path)
    given_config = json.loads(config_file.read_text(encoding="utf-8"))
    timings["wheel and config"] = time.monotonic() - started

    root = tmp_path / "root"
    try:
        started = time.monotonic()
        mirror, proxy = debian_mirror(), apt_http_proxy()
        made = make_root(root, mirror, proxy)
        assert made.returncode == 0, f"debootstrap from {mirror}:\n{made.stdout[-4000:]}"
        timings["debootstrap"] = time.monotonic() - started

        reach_the_network_like_this_machine(root, proxy)
        forbid_starting_services(root)
        installer = root / INSTALL_DIR.lstrip("/")
        shutil.copytree(REPO_ROOT / "deploy", installer / "deploy")
        shutil.copy(wheel, installer / wheel.name)
        shutil.copy(config_file, installer / config_file.name)

        refused = install(root, f"{INSTALL_DIR}/{wheel.name}")
        assert refused.returncode == 2 and "needs this receiver's config" in refused.stdout, (
            refused.stdout
        )
        started = time.monotonic()
        first = install(root, f"{INSTALL_DIR}/{wheel.name}", f"{INSTALL_DIR}/{config_file.name}")
        timings["install (apt, venv, pip, doctor)"] = time.monotonic() - started
        assert first.returncode == 0, first.stdout[-6000:]
        assert "installed; checking this receiver:" in first.stdout, first.stdout[-6000:]
        check_doctor_output(first.stdout)

        started = time.monotonic()
        check_installed(root, given_config)
        check_unit_verifies_in_root(root)
        doctor = in_root(root, ["runuser", "-u", "loa", "--", AGENT, "doctor", "--config", CONFIG])
        assert doctor.returncode == 1, doctor.stdout  # checks failed, said so, did not crash
        check_doctor_output(doctor.stdout)
        timings["checks"] = time.monotonic() - started

        # An upgrade with a rebuilt wheel of the same version: the wheel's code replaces the
        # installed one, and the config (not given again) is kept as it was.
        config = root / CONFIG.lstrip("/")
        config_before, status_before = config.read_bytes(), config.stat()
        module = installed_module(root, "devices/doctor.py")
        module.write_text(module.read_text("utf-8") + "\n# from an older build\n", "utf-8")
        started = time.monotonic()
        second = install(root, f"{INSTALL_DIR}/{wheel.name}")
        timings["upgrade"] = time.monotonic() - started
        assert second.returncode == 0, second.stdout[-6000:]
        check_doctor_output(second.stdout)
        assert config.read_bytes() == config_before, "the upgrade changed the config"
        status_after = config.stat()
        assert (status_after.st_mode, status_after.st_uid, status_after.st_gid) == (
            status_before.st_mode,
            status_before.st_uid,
            status_before.st_gid,
        )
        assert module.read_bytes() == zipfile.ZipFile(wheel).read("devices/doctor.py")
        check_installed(root, given_config)
    finally:
        remove_root(root)
        print(
            "debootstrap install timings: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
