"""One agent per data directory: a second one is refused with a clear message and the first plays
on; the hold ends with the process, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devices.agent import ReceiverAgent
from devices.instance import AgentAlreadyRunning, InstanceLock, running_pid
from devices.players.file_sink import FileSinkPlayer
from wire.config import ReceiverConfig

DEVICE = "loa-thon-1-01"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_data(tmp_path: Path, kit, server_key) -> dict[str, Any]:
    return kit.receiver_config(
        tmp_path, DEVICE, ["thon-1"], kit.unused_port(), "pw", server_key, heartbeat_s=3600
    )


@pytest.fixture
def config(config_data: dict[str, Any]) -> ReceiverConfig:
    return ReceiverConfig.from_dict(config_data)


def _agent(config: ReceiverConfig, tmp_path: Path) -> ReceiverAgent:
    return ReceiverAgent(config, FileSinkPlayer(tmp_path / "played", DEVICE, realtime=False))


def test_a_second_agent_on_the_same_data_directory_is_refused(
    config: ReceiverConfig, tmp_path: Path
) -> None:
    first, second = _agent(config, tmp_path), _agent(config, tmp_path)
    data_dir = Path(config.data_dir)
    assert running_pid(data_dir) is None
    first.start()
    try:
        assert running_pid(data_dir) == os.getpid()
        with pytest.raises(AgentAlreadyRunning) as refused:
            second.start()
        assert str(data_dir) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
        second.stop()
        assert running_pid(data_dir) == os.getpid()  # the refused one took nothing away
    finally:
        first.stop()
    assert running_pid(data_dir) is None
    third = _agent(config, tmp_path)
    third.start()  # a restart after a clean stop
    third.stop()


def _holder(data_dir: Path) -> subprocess.Popen[str]:
    """Another process holding `data_dir`, as a running agent would."""
    data_dir.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, time; from pathlib import Path; from devices.instance import InstanceLock; "
        "InstanceLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)"
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_the_hold_ends_with_a_killed_process(tmp_path: Path) -> None:
    """A power cut or SIGKILL leaves the lock file behind, not the lock."""
    process = _holder(tmp_path)
    try:
        assert running_pid(tmp_path) == process.pid
        with pytest.raises(AgentAlreadyRunning):
            InstanceLock(tmp_path).acquire()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while running_pid(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_pid(tmp_path) is None
    lock = InstanceLock(tmp_path)
    lock.acquire()
    lock.release()


def test_loa_receiver_exits_2_naming_the_agent_already_running(
    config_data: dict[str, Any], tmp_path: Path
) -> None:
    config_path = tmp_path / "receiver.json"
    config_path.write_text(json.dumps(config_data), "utf-8")
    holder = _holder(Path(config_data["data_dir"]))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "loa.cli", "receiver", "--config", str(config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    assert result.returncode == 2, result.stderr
    assert f"pid {holder.pid}" in result.stderr and "already running" in result.stderr
    assert "Traceback" not in result.stderr
