"""A broadcast service as its own process, for the one-scheduler tests.

`python tests/broadcast/service_process.py --data DIR --mqtt-port P` starts a service on a shared
data directory, logs to stdout (INFO), prints `ready` and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from broadcast.service import BroadcastService
from broadcast.settings import Settings

_LOGGER = logging.getLogger(__name__)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--mqtt-port", type=int, required=True)
    parser.add_argument("--lock-retry", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(process)d %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(
        data_dir=Path(args.data), mqtt_port=args.mqtt_port, lock_retry_s=args.lock_retry
    )
    service = BroadcastService(settings)
    service.start()
    print("ready", flush=True)
    stop.wait()
    service.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
