"""Log set-up shared by every Loa process: server, web workers, broker, receiver agents.

It lives beside the wire protocol because a receiver runs `devices/` and `wire/` without the
server's dependencies and must log the same way as the server. Two formats, chosen by
LOA_LOG_FORMAT (or a command's `--log-format`):

* `text` (default): one readable line per record, for a terminal and for journald;
* `json`: one JSON object per line, for a log shipper (Loki, Elasticsearch, journald's
  `MESSAGE` field): `time` in UTC (ISO 8601), `level`, `logger`, `message`, `pid`, `thread`,
  the exception's traceback as `exception`, and every field passed as `extra={...}` (such as
  `device_id` or `broadcast_id`) under its own name.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Several web workers write to one log: their lines name their process.
TEXT_FORMAT_WITH_PID = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Libraries whose INFO lines are noise in an operator's log.
NOISY_LOGGERS = ("alembic", "apscheduler.scheduler", "apscheduler.executors", "werkzeug")
# Attributes every LogRecord has: anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format_from_env(default: str = "text") -> tuple[str, str | None]:
    """The format LOA_LOG_FORMAT asks for, and a complaint if it names none (then `default`)."""
    value = os.environ.get("LOA_LOG_FORMAT", "").strip().lower() or default
    if value in FORMATS:
        return value, None
    return default, f"LOA_LOG_FORMAT={value!r} is not one of {', '.join(FORMATS)}: using {default}"


def configure(level: str = "INFO", log_format: str | None = None, with_pid: bool = False) -> None:
    """Set up the root logger once per process (a second call changes nothing: gunicorn and
    tests may have configured logging already)."""
    root = logging.getLogger()
    if root.handlers:
        return
    chosen, complaint = (log_format, None) if log_format else log_format_from_env()
    handler = logging.StreamHandler()
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT_WITH_PID if with_pid else TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if complaint:
        logging.getLogger(__name__).warning(complaint)
