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

A command refused for an old sequence whose id was never accepted here is `stale`: not a replay
but a genuine command from a server whose counter is behind what this receiver accepted (one
accepted sequence far in the future: a leaked key, a bug, a restored server database). Such
refusals are counted per stream in `replay.json` until the stream accepts a message again, so
`loa doctor --config` can name the stream and the way back (a new epoch: `loa keys rotate`).
The stream memory belongs to the server key it was built with: when the config brings a new key
(`loa keys rotate` then `loa device refresh`), it starts afresh, since nothing the old key signed
is trusted any more.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wire.files import write_private_file
from wire.protocol import (
    Command,
    CommandKind,
    ManifestBody,
    ProtocolError,
    ReplayGuard,
    SequenceGuard,
    device_manifest_topic,
    public_key_to_text,
    verify_command,
)

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

REPLAY_FILE = "replay.json"  # in the receiver's data_dir


@dataclass(frozen=True)
class StaleStream:
    """A stream refusing the server: `refused` genuine commands since `since`, the last with
    sequence `refused_seq`, below the `stored_seq` (of `epoch`) accepted before."""

    topic: str
    refused: int
    since: float
    refused_seq: int
    stored_seq: int
    epoch: int


@dataclass
class ReplayState:
    """What `replay.json` holds (every part optional, so older files still load)."""

    ids: dict[str, float] = field(default_factory=dict)
    streams: dict[str, tuple[int, str]] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    floor: int = 0
    key: str = ""  # the server key the stream memory was built with ("" in older files)
    stale: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, device_id: str, key: str) -> ReplayState:
        """The saved state; the stream memory only if it was built with the server key `key`
        (the ids are kept: a copy signed by another key fails its signature anyway)."""
        saved = cls._read(path, device_id)
        if saved.key and saved.key != key:
            _LOGGER.info(
                "%s: the server key changed: sequence memory of %d streams (epoch %d) reset",
                device_id,
                len(saved.streams),
                saved.floor,
            )
            return cls(ids=saved.ids, key=key)
        return saved

    @classmethod
    def _read(cls, path: Path, device_id: str) -> ReplayState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            _LOGGER.warning("%s: ignoring unreadable %s: %s", device_id, path, exc)
            return cls()
        if not isinstance(data, dict):
            return cls()
        if not isinstance(data.get("ids"), dict):  # the format before sequences: ids only
            return cls(ids=_ids(data))
        floor = data.get("epoch", 0)
        key = data.get("key", "")
        return cls(
            ids=_ids(data["ids"]),
            streams=_streams(data.get("streams")),
            epochs=_counts(data.get("epochs")),
            floor=floor if isinstance(floor, int) and floor >= 0 else 0,
            key=key if isinstance(key, str) else "",
            stale=_stale(data.get("stale")),
        )

    def stale_streams(self) -> list[StaleStream]:
        found = []
        for topic, entry in sorted(self.stale.items()):
            stored_seq, _ = self.streams.get(topic, (0, ""))
            found.append(
                StaleStream(
                    topic,
                    int(entry["count"]),
                    entry["since"],
                    int(entry["seq"]),
                    stored_seq,
                    self.epochs.get(topic, 0),
                )
            )
        return found


class CommandIntake:
    """Verifies commands for one receiver and remembers the accepted ones in `replay_path`."""

    def __init__(self, device_id: str, public_key: Ed25519PublicKey, replay_path: Path) -> None:
        self.device_id = device_id
        self._public_key = public_key
        self._key_text = public_key_to_text(public_key)
        self._replay_path = replay_path
        self._manifest_topic = device_manifest_topic(device_id)
        saved = ReplayState.load(replay_path, device_id, self._key_text)
        self._guard = ReplayGuard(saved.ids)
        self._sequence = SequenceGuard(saved.streams, saved.epochs, saved.floor)
        self._stale = saved.stale
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
                try:
                    fresh = self._sequence.check(command, topic)
                except ProtocolError as exc:
                    if exc.reason == "replayed" and not self._guard.knows(command.id):
                        raise self._refused_as_stale(command, topic) from None
                    raise
                if not fresh:
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
            self._stale.pop(command.stream, None)
            self._save_replay()

    def _refused_as_stale(self, command: Command, topic: str) -> ProtocolError:
        """Count a genuine command refused because this receiver accepted a higher sequence
        on its stream (kept on disk for `loa doctor`); the error to log."""
        last = self._sequence.last(topic)
        stored, epoch = (last.seq, last.epoch) if last is not None else (-1, command.epoch)
        entry = self._stale.setdefault(topic, {"count": 0, "since": time.time(), "seq": 0})
        entry["count"] += 1
        entry["seq"] = command.seq
        self._save_replay()
        return ProtocolError(
            "stale",
            f"sequence {command.seq} on {topic} is not above {stored} (epoch {epoch}),"
            f" accepted here before: {int(entry['count'])} command(s) refused on this stream;"
            " see loa doctor --config",
        )

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

    def _save_replay(self) -> None:
        """Atomic rewrite; a failed write is logged, the in-memory guards still protect us."""
        data = {
            "ids": self._guard.to_dict(),
            "streams": self._sequence.to_dict(),
            "epochs": self._sequence.epochs(),
            "epoch": self._sequence.floor,
            "key": self._key_text,
            "stale": self._stale,
        }
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


def _counts(data: Any) -> dict[str, int]:
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and v >= 0}


def _stale(data: Any) -> dict[str, dict[str, float]]:
    if not isinstance(data, dict):
        return {}
    found = {}
    for topic, entry in data.items():
        if isinstance(entry, dict) and all(
            isinstance(entry.get(name), int | float) for name in ("count", "since", "seq")
        ):
            found[str(topic)] = {name: entry[name] for name in ("count", "since", "seq")}
    return found
