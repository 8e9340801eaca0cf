"""The `loa` command line: mistakes get one clear line naming what to fix, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import LOOPBACK, REPO_ROOT, free_port


def loa(*args: str, stdin: str = "", timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "broadcast.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def _one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("loa: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_serve_with_broker_unreachable(tmp_path: Path) -> None:
    mqtt_port = free_port()
    result = loa(
        "serve", "--data", str(tmp_path), "--port", str(free_port()), "--mqtt-port", str(mqtt_port)
    )
    _one_clear_line(result, f"127.0.0.1:{mqtt_port}", "unreachable")


def test_demo_with_web_port_taken(tmp_path: Path, taken_port: int) -> None:
    result = loa(
        "demo", "--data", str(tmp_path), "--port", str(taken_port), "--mqtt-port", str(free_port())
    )
    _one_clear_line(result, f"127.0.0.1:{taken_port}", "in use")


def test_demo_with_mqtt_port_taken(tmp_path: Path, taken_port: int) -> None:
    result = loa(
        "demo", "--data", str(tmp_path), "--port", str(free_port()), "--mqtt-port", str(taken_port)
    )
    _one_clear_line(result, f"127.0.0.1:{taken_port}", "in use")


def test_receiver_with_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = loa("receiver", "--config", str(missing))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(missing) in result.stderr


def test_receiver_with_bad_config_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"device_id": "loa-1", "zones": []}')
    result = loa("receiver", "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert str(config) in result.stderr and "mqtt" in result.stderr


def test_token_for_unknown_user(tmp_path: Path) -> None:
    _one_clear_line(loa("token", "create", "nobody", "--data", str(tmp_path)), "nobody")


def test_user_add_and_token(tmp_path: Path) -> None:
    short = loa("user", "add", "chi", "--password", "short", "--data", str(tmp_path))
    _one_clear_line(short, "password")
    added = loa(
        "user",
        "add",
        "chi",
        "--role",
        "officer",
        "--password",
        "mat-khau-dai-du",
        "--data",
        str(tmp_path),
    )
    assert added.returncode == 0, added.stderr
    token = loa("token", "create", "chi", "--data", str(tmp_path))
    assert token.returncode == 0
    assert token.stdout.strip().startswith("loa_")


def test_normalize_lines_keeps_one_line_per_line() -> None:
    result = loa("normalize", "--lines", stdin="UBND xã\n\nngày 21/3/2023\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 3
    assert "Ủy ban nhân dân" in lines[0] and lines[1] == ""
    assert "hai mươi mốt tháng ba" in lines[2]
