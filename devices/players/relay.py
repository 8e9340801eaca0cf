"""Relay streams: opening a live HTTP stream and reading it for a given duration (file sink)."""

from __future__ import annotations

import contextlib
import http.client
import logging
import threading
import time
from collections.abc import Iterator
from typing import IO

from devices.http_get import HttpError, open_url
from devices.players import PlayerError

_LOGGER = logging.getLogger(__name__)

RELAY_CONNECT_TIMEOUT_S = 10.0
RELAY_MAX_BYTES_PER_S = 64 * 1024  # 512 kbps: above any radio stream; bounds the sink's file
RELAY_CHUNK = 4096


@contextlib.contextmanager
def open_stream(url: str) -> Iterator[http.client.HTTPResponse]:
    """The live stream's response, or a PlayerError naming the host and why it failed."""
    try:
        response = open_url(url, RELAY_CONNECT_TIMEOUT_S)
    except HttpError as exc:
        if exc.status is not None:
            raise PlayerError(f"relay: {exc}") from exc
        raise PlayerError(f"relay: cannot connect to {exc}") from exc
    with response:
        yield response


def copy_for(
    chunks: Iterator[bytes],
    sink: IO[bytes],
    until: float,
    limit: int,
    cancel: threading.Event,
) -> int:
    """Copy the stream into `sink` until the monotonic time `until` (or `cancel`); stop reading
    at `limit` bytes but still take the whole duration, as a loudspeaker would."""
    received = 0
    try:
        for chunk in chunks:
            if cancel.is_set() or time.monotonic() >= until:
                break
            room = limit - received
            sink.write(chunk[:room])
            received += min(len(chunk), room)
            if received >= limit:
                cancel.wait(max(0.0, until - time.monotonic()))
                break
    except HttpError as exc:
        _LOGGER.warning("relay stream ended early: %s", exc.reason)  # stalled or broke
    return received
