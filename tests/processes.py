"""Run `loa` commands as real processes and talk to them over real HTTP (end-to-end tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from support import REPO_ROOT

OUTPUT_LIMIT_LINES = 5000


class LoaProcess:
    """`python -m loa.cli …` with its output collected by a reader thread."""

    def __init__(
        self, *args: str, module: str = "loa.cli", env: dict[str, str] | None = None
    ) -> None:
        """`python -m <module> <args>` (`loa` by default; e.g. `module="gunicorn"`)."""
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: teardown can stop its children too
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if len(self.lines) < OUTPUT_LIMIT_LINES:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, prefix: str, timeout_s: float = 90.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.strip().startswith(prefix):
                    return line.strip()
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                raise AssertionError(f"loa {self.args[0]} exited early:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"no line starting {prefix!r} within {timeout_s} s:\n{self.output}")

    def kill(self) -> None:
        """SIGKILL the whole process group (the server and any receivers it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"loa {self.args[0]} did not stop on SIGINT:\n{self.output}"
                ) from None
        self._reader.join(timeout=5)
        return self.process.returncode


def http_json(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def http_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def wait_for_status(
    base: str, token: str, broadcast_id: int, done: set[str], timeout_s: float = 120.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        assert status == 200, body
        if body["status"] in done:
            return body
        time.sleep(0.3)
    raise AssertionError(f"broadcast {broadcast_id} not {done} within {timeout_s} s: {body}")


def played_lines(receivers_dir: Path, device_id: str) -> list[dict[str, Any]]:
    log = receivers_dir / device_id / "played" / "played.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def wait_devices(
    base: str,
    token: str,
    count: int,
    ready: Any = None,
    timeout_s: float = 60.0,
    what: str = "online",
) -> list[dict[str, Any]]:
    """Poll `/api/v1/devices` until `count` receivers are online and each satisfies `ready`."""
    deadline = time.monotonic() + timeout_s
    devices: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        _status, devices = http_json("GET", f"{base}/api/v1/devices?per_page=1000", token)
        if len(devices) == count and all(
            d["online"] and (ready is None or ready(d)) for d in devices
        ):
            return devices
        time.sleep(0.3)
    laggards = [d["id"] for d in devices if not d["online"] or (ready and not ready(d))]
    raise AssertionError(f"receivers not {what} within {timeout_s} s: {laggards}")


def plays_of(receivers_dir: Path, device_ids: Any, broadcast_id: int) -> dict[str, int]:
    """How many times each receiver logged a play of `broadcast_id`."""
    return {
        device_id: sum(
            1 for p in played_lines(receivers_dir, device_id) if p["broadcast_id"] == broadcast_id
        )
        for device_id in device_ids
    }


def start_server_and_fleet(
    started: list[LoaProcess], data: Path, port: int, mqtt_port: int, devices_dir: Path, count: int
) -> tuple[LoaProcess, LoaProcess]:
    """`loa serve` on an external broker, then `loa fleet` with the first `count` receivers."""
    server = LoaProcess(
        "serve", "--data", str(data), "--port", str(port), "--mqtt-port", str(mqtt_port)
    )
    started.append(server)
    server.wait_for_line("Loa server on")
    fleet = LoaProcess("fleet", "--config-dir", str(devices_dir), "--count", str(count))
    started.append(fleet)
    return server, fleet
