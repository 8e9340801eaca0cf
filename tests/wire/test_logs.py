"""Structured logs: LOA_LOG_FORMAT=json gives one JSON object per line, with extra fields."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from wire.logs import JsonFormatter

SCRIPT = """
import logging
from wire import logs
logs.configure("INFO")
log = logging.getLogger("loa.test")
log.info("phát %s", "Thôn 1", extra={"device_id": "thon-1-a", "broadcast_id": 7})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("failed")
logging.getLogger("alembic").info("noise")
"""


def _run(env_format: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOA_LOG_FORMAT"}
    if env_format is not None:
        env["LOA_LOG_FORMAT"] = env_format
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )


def test_json_lines_carry_time_level_and_extra_fields() -> None:
    done = _run("json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    first, second = lines  # the noisy library's INFO line is dropped
    assert first["message"] == "phát Thôn 1" and first["level"] == "INFO"
    assert first["logger"] == "loa.test" and first["pid"] > 0
    assert first["device_id"] == "thon-1-a" and first["broadcast_id"] == 7
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ZeroDivisionError" in second["exception"]


def test_text_is_the_default_and_a_wrong_format_says_so() -> None:
    plain = _run(None)
    assert "INFO" in plain.stderr and "loa.test: phát Thôn 1" in plain.stderr
    wrong = _run("yaml")
    assert wrong.returncode == 0
    assert "LOA_LOG_FORMAT='yaml' is not one of text, json: using text" in wrong.stderr
    assert "loa.test: phát Thôn 1" in wrong.stderr


def test_values_json_cannot_encode_are_written_as_text() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "path": object()})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["path"].startswith("<object object")
