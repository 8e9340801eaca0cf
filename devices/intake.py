"""Command intake: the receiver's trust boundary, and the replay memory that survives restarts.

Every payload from the broker passes here before anything happens: the Ed25519 signature, the
expiry, the topic (a manifest only on the device's manifest topic, for this device; play and
stop only on command topics), the per-topic sequence (`SequenceGuard`: the message must be
signed for the topic it came on and be newer than the last one accepted there) and the id-based
`ReplayGuard`. Both guards are persisted (an atomic rewrite of `replay.json`), so a message
replayed after a reboot is still refused. A bad payload is logged and counted, never fatal; the
very last message of a topic arriving again (a QoS 1 redelivery, the retained manifest after a
reconnect) is a harmless duplicate, ignored without counting.

Accepting is two steps: `verify` (checks, nothing persisted) and, once the agent has acted on the
message (e.g. written the manifest to disk), `remember` (the sequence persisted). A power cut in
between makes the broker's copy count as new again, never lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from devices.config import write_private_file
from devices.protocol import (
    Command,
    CommandKind,
    ManifestBody,
    ProtocolError,
    ReplayGuard,
    SequenceGuard,
    device_manifest_topic,
    verify_command,
)

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")


class CommandIntake:
    """Verifies commands for one receiver and remembers the accepted ones in `replay_path`."""

    def __init__(self, device_id: str, public_key: Ed25519PublicKey, replay_path: Path) -> None:
        self.device_id = device_id
        self._public_key = public_key
        self._replay_path = replay_path
        self._manifest_topic = device_manifest_topic(device_id)
        ids, streams = self._load_replay()
        self._guard = ReplayGuard(ids)
        self._sequence = SequenceGuard(streams)
        self._guard_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._rejected = 0
        self._clock_offset_s: float | None = None

    @property
    def rejected(self) -> int:
        """Messages dropped as unsigned, forged, expired, replayed, misplaced or malformed."""
        with self._count_lock:
            return self._rejected

    @property
    def clock_offset_s(self) -> float | None:
        """Local clock minus the server's `issued_at` of the last fresh message (rough: it
        includes the delivery delay)."""
        return self._clock_offset_s

    def verify(self, topic: str, payload: bytes, retained: bool = False) -> Command | None:
        """The verified command, not yet remembered; None if refused (logged and counted) or a
        duplicate of the last message on `topic` (logged at debug level)."""
        try:
            command = verify_command(payload, self._public_key)
            self._check_place(command, topic)
            with self._guard_lock:
                if not self._sequence.check(command, topic):
                    _LOGGER.debug(
                        "%s: ignored a repeat of %s (seq %d) on %s",
                        self.device_id,
                        command.id,
                        command.seq,
                        topic,
                    )
                    return None
                self._guard.check_and_remember(command)
        except ProtocolError as exc:
            with self._count_lock:
                self._rejected += 1
            _LOGGER.warning("%s: rejected command on %s: %s", self.device_id, topic, exc)
            return None
        if not retained:
            self._clock_offset_s = time.time() - command.issued_at
        return command

    def remember(self, command: Command) -> None:
        """Record `command` as the newest of its topic, on disk."""
        with self._guard_lock:
            self._sequence.remember(command)
            self._save_replay()

    def reload(self, topic: str, payload: bytes) -> Command | None:
        """A message the agent accepted earlier and kept on disk: signature, device and topic
        are checked again (not the delivery window); None, logged, if the file was tampered."""
        try:
            command = verify_command(payload, self._public_key, check_expiry=False)
            self._check_place(command, topic)
            if command.stream != topic:
                raise ProtocolError("wrong_stream", f"signed for {command.stream}")
        except ProtocolError as exc:
            _LOGGER.error(
                "%s: refusing the saved copy of a message on %s: %s", self.device_id, topic, exc
            )
            return None
        return command

    def _check_place(self, command: Command, topic: str) -> None:
        if topic == self._manifest_topic:
            if command.kind is not CommandKind.MANIFEST:
                raise ProtocolError("wrong_topic", f"a {command.kind} on the manifest topic")
            assert isinstance(command.body, ManifestBody)
            if command.body.device_id != self.device_id:
                raise ProtocolError("wrong_device", f"manifest for {command.body.device_id}")
        elif command.kind is CommandKind.MANIFEST:
            raise ProtocolError("wrong_topic", "a manifest outside the manifest topic")

    # --- replay guard persistence ---------------------------------------------------------------

    def _load_replay(self) -> tuple[dict[str, float], dict[str, tuple[int, str]]]:
        try:
            data = json.loads(self._replay_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning(
                "%s: ignoring unreadable %s: %s", self.device_id, self._replay_path, exc
            )
            return {}, {}
        if not isinstance(data, dict):
            return {}, {}
        if not isinstance(data.get("ids"), dict):  # the format before sequences: ids only
            return _ids(data), {}
        return _ids(data["ids"]), _streams(data.get("streams"))

    def _save_replay(self) -> None:
        """Atomic rewrite; a failed write is logged, the in-memory guards still protect us."""
        data = {"ids": self._guard.to_dict(), "streams": self._sequence.to_dict()}
        try:
            write_private_file(self._replay_path, json.dumps(data))
        except OSError as exc:
            _LOGGER.error("%s: cannot save %s: %s", self.device_id, self._replay_path, exc)


def _ids(data: dict[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def _streams(data: Any) -> dict[str, tuple[int, str]]:
    if not isinstance(data, dict):
        return {}
    streams = {}
    for topic, value in data.items():
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and isinstance(value[0], int)
            and isinstance(value[1], str)
        ):
            streams[str(topic)] = (int(value[0]), value[1])
    return streams
