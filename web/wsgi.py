"""WSGI entry point for several web workers (gunicorn), configured from the environment (every
LOA_* variable of docs/deployment.md, read by `Settings.load`):

    LOA_DATA_DIR=/var/lib/loa LOA_MQTT_HOST=127.0.0.1 LOA_MQTT_PORT=1883 \\
    LOA_PUBLIC_URL=https://loa.example.vn gunicorn -w 3 -b 127.0.0.1:8080 'web.wsgi:app'

Every worker runs a whole service: it serves pages and the API and publishes what its users
send. Exactly one of them, the one holding the data directory's scheduler lock, also plans,
fires runs, publishes manifests and hears the receivers; when it exits another takes over within
a few seconds (`broadcast.programme.leadership`). The service starts in each worker process (after
gunicorn forks: this module is imported by each worker; do not use `--preload`), so
nothing is shared across a fork.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os

from flask import Flask

from broadcast.errors import LoaError
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from web import create_app
from wire import logs

_LOGGER = logging.getLogger(__name__)
WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR


def _build() -> Flask:
    # gunicorn configures only its own loggers; LOA_LOG_FORMAT=json for a log shipper
    logs.configure(os.environ.get("LOA_LOG_LEVEL", "INFO"), with_pid=True)
    try:
        settings = Settings.load(None, os.environ)
    except LoaError as exc:
        # An operator's mistake, not a bug: say it without a traceback, and exit with
        # gunicorn's "worker failed to boot" code so the arbiter stops instead of respawning.
        _LOGGER.error("cannot start: %s", exc)
        raise SystemExit(WORKER_BOOT_ERROR) from None
    service = BroadcastService(settings)
    service.start()
    atexit.register(service.stop)
    _LOGGER.info("web worker %d serving %s", os.getpid(), settings.data_dir)
    return create_app(service)


app = _build()
# What the worker built so far lives as long as it does: keep it out of the collector's full
# passes, which would otherwise scan all of it and stall a request for tens of milliseconds.
gc.freeze()
