"""Simulated receivers started by the demo never outlive it, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "devices.fleet", "--config-dir", sys.argv[1],
                          "--exit-with-parent", str(os.getpid())])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split()[2] != "Z"


def test_fleet_stops_when_its_parent_is_killed(
    tmp_path: Path, kit: Any, server_key: Ed25519PrivateKey
) -> None:
    config = kit.receiver_config(
        tmp_path, "loa-orphan", ["thon-1"], kit.unused_port(), "secret-password", server_key
    )
    kit.write_json(tmp_path / "configs" / "loa-orphan.json", config)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "configs")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    child_pid = 0
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        kit.wait_until(lambda: _alive(child_pid))
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        kit.wait_until(lambda: not _alive(child_pid), timeout=20)
    finally:
        if parent.poll() is None:
            parent.kill()
        if child_pid and _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)
