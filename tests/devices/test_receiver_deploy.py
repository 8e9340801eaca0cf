"""The Raspberry Pi deployment files: the systemd unit passes `systemd-analyze verify`, the
install script parses, and both agree on paths. (Running the script end to end in a Debian root
made with debootstrap is the deployment test of issue 6.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from support import REPO_ROOT

from wire import protocol

UNIT = REPO_ROOT / "deploy" / "systemd" / "loa-receiver.service"
INSTALL = REPO_ROOT / "deploy" / "install-receiver.sh"
AGENT = "/opt/loa/venv/bin/loa"


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: install Debian's systemd package (.ci/run does)"
    # the agent is not installed on this machine: the same unit, pointing at a stand-in
    stand_in = tmp_path / "loa"
    stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
    stand_in.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(AGENT, str(stand_in)), "utf-8")
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if UNIT.name in line and "Failed to create" not in line
    ]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def test_the_unit_is_a_watched_notify_service_run_as_loa() -> None:
    text = UNIT.read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "WatchdogSec=60",
        "Restart=always",
        "User=loa",
        f"ExecStart={AGENT} receiver --config /etc/loa/receiver.json",
        "ReadWritePaths=/var/lib/loa",
    ):
        assert line in text.splitlines(), line


def test_the_install_script_parses_and_installs_what_the_unit_runs() -> None:
    assert subprocess.run(["sh", "-n", str(INSTALL)], capture_output=True).returncode == 0
    script = INSTALL.read_text(encoding="utf-8")
    assert "python3 -m venv /opt/loa/venv" in script
    assert "/etc/loa/receiver.json" in script and "chmod 0640 /etc/loa/receiver.json" in script
    assert "mpg123" in script and "chrony" in script
    assert "loa doctor --config /etc/loa/receiver.json" in script


def server_only_modules() -> list[str]:
    """The modules of what `pip install 'loa[server]'` adds (pyproject.toml's `server` extra),
    which a receiver does without; and urllib3, which came only with requests."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = {
        re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in pyproject["project"]["optional-dependencies"]["server"]
    }
    modules = {
        module
        for module, dists in packages_distributions().items()
        if not module.startswith("_")
        and any(dist.lower().replace("_", "-") in wanted for dist in dists)
    }
    assert {"flask", "sqlalchemy", "docx"} <= modules, modules
    return sorted(modules | {"urllib3"})


WITHOUT_SERVER_PACKAGES = f"""
import sys
for name in {server_only_modules()!r}:
    sys.modules[name] = None  # importing it now fails as if it were not installed
import devices.agent, devices.fleet, devices.doctor, wire.config, wire.logs, wire.protocol
from loa.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _loa_without_server_packages(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER_PACKAGES, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def test_a_receiver_needs_only_the_receiver_packages(tmp_path: Path, kit) -> None:
    """The agent, the fleet and `loa doctor --config` import nothing of the server's packages;
    a server command on a receiver says what to install. (The debootstrap test installs the
    real wheel without them.)"""
    config = tmp_path / "receiver.json"
    config.write_text(
        json.dumps(kit.receiver_config(tmp_path, "loa-pi-01", ["thon-1"], 1, "pw",
                                       protocol.generate_private_key())),
        encoding="utf-8",
    )  # fmt: skip
    doctor = _loa_without_server_packages("doctor", "--config", str(config))
    assert doctor.returncode == 1, doctor.stderr  # checks ran: the broker is unreachable
    assert "broker" in doctor.stdout and "Traceback" not in doctor.stderr, doctor.stderr
    serve = _loa_without_server_packages("serve", "--data", str(tmp_path / "server"))
    assert serve.returncode == 2 and "Traceback" not in serve.stderr, serve.stderr
    assert "pip install 'loa[server]'" in serve.stderr
    assert not (tmp_path / "server").exists()
