"""A broker engine from Debian's packages run as our own child process (mosquitto, nats-server):
how it is stopped, and what its log says when it would not start.

Shared by the back-ends so each keeps only what is its own: its config, its command line, how its
log lines are stamped and which of them are errors.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


def stop_child(process: subprocess.Popen[bytes] | None, name: str, timeout_s: float) -> None:
    """Terminate `process` if it still runs, kill it if it ignores SIGTERM for `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _LOGGER.warning("%s (pid %d) ignored SIGTERM, killing it", name, process.pid)
        process.kill()
        process.wait(timeout=timeout_s)


def log_explanation(
    log_path: Path, offset: int, stamp: re.Pattern[str], is_error: Callable[[str], bool]
) -> str:
    """What the engine wrote to `log_path` from `offset` on: its last error lines (`stamp` cut
    off each line), else its last line."""
    try:
        with log_path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return f"no output (see {log_path})"
    lines = [stamp.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if is_error(line)]
    if errors:
        return " ".join(errors[-3:])
    return lines[-1] if lines else f"no output (see {log_path})"
