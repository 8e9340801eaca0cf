"""Web workers starting together on a new data directory share one Flask key and one signing
key: a key each would log users out whenever a request reached another worker, and sign commands
that receivers refuse."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

from broadcast.settings import Secrets
from wire import protocol

WORKERS = 4


def _read_secrets(data_dir: str, start: Any, results: Any) -> None:
    start.wait(10)
    found = Secrets(Path(data_dir))
    key = protocol.public_key_to_text(found.signing_key().public_key())
    results.put((found.flask_secret_key, found.mqtt_password, key))


def test_processes_starting_together_share_every_secret(tmp_path: Path) -> None:
    context = mp.get_context("fork")
    start, results = context.Barrier(WORKERS), context.Queue()
    processes = [
        context.Process(target=_read_secrets, args=(str(tmp_path), start, results))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    seen = {results.get(timeout=20) for _ in processes}
    for process in processes:
        process.join(timeout=10)
    assert len(seen) == 1, seen
    again = Secrets(tmp_path)
    key = protocol.public_key_to_text(again.signing_key().public_key())
    assert seen == {(again.flask_secret_key, again.mqtt_password, key)}
