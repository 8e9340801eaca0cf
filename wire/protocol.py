"""The one wire protocol shared by the server (`broadcast`) and the receiver agent (`devices`).

Everything that crosses MQTT is defined here: topic names, message shapes, Ed25519 signing of
commands and their validation. Server and agent import this module, so they cannot drift apart.

Commands (server → receivers) are signed JSON envelopes::

    {"v": 1, "kind": "play", "id": "…", "issued_at": 1700000000.0, "expires_at": …,
     "body": {…}, "sig": "<base64 Ed25519 signature of the canonical JSON without 'sig'>"}

Audio never travels over MQTT: a play command carries the media URL and its sha256; the agent
downloads, verifies and caches it. Events and states (receivers → server) are plain JSON; the
broker's per-device credentials and topic ACL stop a device from writing as another one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_LOGGER = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
TOPIC_ROOT = "loa/v1"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_MESSAGE_BYTES = 256 * 1024  # a command or manifest (server → receiver)
MAX_ANSWER_BYTES = 16 * 1024  # a state or event (receiver → server): a few small fields
MAX_JSON_DEPTH = 16  # the deepest real message (a manifest's item) is 4 levels
MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second a datetime holds
MAX_BROADCAST_ID = 2**31 - 1  # the server's integer keys
MAX_SEQ = 2**63 - 1  # sequence numbers and epochs: the server's 64-bit counters
MAX_SEQ_JUMP = 1_000_000  # how far one message may move a stream's sequence ahead (see below)
DEFAULT_COMMAND_TTL_S = 15 * 60
MANIFEST_HORIZON_S = 48 * 3600
MAX_MANIFEST_ITEMS = 500
MAX_RELAY_S = 6 * 3600
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class Priority(StrEnum):
    """The three levels of Thông tư 39/2020/TT-BTTTT."""

    EMERGENCY = "emergency"  # khẩn cấp
    PRIORITY = "priority"  # ưu tiên
    NORMAL = "normal"  # thông thường


class CommandKind(StrEnum):
    PLAY = "play"  # play one item now or at `play_at`
    STOP = "stop"  # stop (and forget) a broadcast's items, or everything
    MANIFEST = "manifest"  # the device's programme for the next hours (retained, replaces older)


class ContentType(StrEnum):
    MEDIA = "media"  # a file from the media store, verified by sha256
    RELAY = "relay"  # a live stream (tiếp sóng) played for `duration_s`


class EventKind(StrEnum):
    """The answer-back steps a receiver reports for every item."""

    RECEIVED = "received"
    FETCHED = "fetched"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    PREEMPTED = "preempted"  # cut by a higher priority; may start again later (resume policy)


class ReceiverState(StrEnum):
    IDLE = "idle"
    FETCHING = "fetching"  # prefetching media for what comes next
    PLAYING = "playing"
    PREEMPTED = "preempted"  # an item was cut and waits to resume
    OFFLINE = "offline"


class ProtocolError(ValueError):
    """A message that must be rejected; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- topics -----------------------------------------------------------------------------------


def check_id(value: str, what: str = "id") -> str:
    """Ids appear in topics, so they are restricted to lowercase slugs."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ProtocolError("bad_id", f"{what} {value!r} must match {ID_PATTERN.pattern}")
    return value


def device_command_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/device/{check_id(device_id, 'device id')}/cmd"


def zone_command_topic(zone_id: str) -> str:
    return f"{TOPIC_ROOT}/zone/{check_id(zone_id, 'zone id')}/cmd"


def device_state_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/device/{check_id(device_id, 'device id')}/state"


def device_event_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/device/{check_id(device_id, 'device id')}/event"


def device_manifest_topic(device_id: str) -> str:
    """Retained: the device's signed programme for the next hours (server → device)."""
    return f"{TOPIC_ROOT}/device/{check_id(device_id, 'device id')}/manifest"


STATE_TOPIC_FILTER = f"{TOPIC_ROOT}/device/+/state"
EVENT_TOPIC_FILTER = f"{TOPIC_ROOT}/device/+/event"


def device_id_from_topic(topic: str) -> str:
    """`loa/v1/device/<id>/state` → `<id>`; raises ProtocolError for any other topic."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[2] != "device":
        raise ProtocolError("bad_topic", topic)
    return check_id(parts[3], "device id")


# --- keys -------------------------------------------------------------------------------------


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ProtocolError("bad_key", "not an Ed25519 private key")
    return key


def public_key_to_text(key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key as base64: short enough for a config file or a QR code."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("bad_key", "server public key must be 32 bytes of base64") from exc


# --- commands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayBody:
    """One item to play: a media file the server assembled (chime + speech, or a recording), or a
    live relay. `item_id` names this occurrence (a daily bulletin has one per day); `play_at`
    (epoch seconds) makes every receiver of a zone start together; `valid_until` is the last
    moment it may still start (a preempted or late item is dropped after it)."""

    broadcast_id: int
    item_id: str = ""
    media_url: str = ""
    media_sha256: str = ""
    priority: Priority = Priority.NORMAL
    repeat: int = 1
    title: str = ""
    play_at: float | None = None
    valid_until: float | None = None
    content: ContentType = ContentType.MEDIA
    relay_url: str = ""
    duration_s: float = 0.0
    # A relay of a live broadcast (phát trực tiếp): a stream that breaks is opened again for a
    # few seconds, and one the stream server refuses has ended. Its media, if any, is the chime
    # played before the stream (never waited for: a receiver without it goes straight to the
    # voice). A receiver older than this field ignores both and plays the stream as any relay.
    live: bool = False

    @property
    def key(self) -> str:
        """The item's identity on the receiver: its occurrence id, or the broadcast's."""
        return self.item_id or f"b{self.broadcast_id}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlayBody:
        try:
            body = cls(
                broadcast_id=_whole(data["broadcast_id"], "broadcast_id", 0, MAX_BROADCAST_ID),
                item_id=_text(data.get("item_id", ""), "item_id")[:100],
                media_url=_text(data.get("media_url", ""), "media_url"),
                media_sha256=_text(data.get("media_sha256", ""), "media_sha256"),
                priority=Priority(data.get("priority", Priority.NORMAL)),
                repeat=_whole(data.get("repeat", 1), "repeat", 1, 10),
                title=_text(data.get("title", ""), "title")[:300],
                play_at=_optional_time(data.get("play_at"), "play_at"),
                valid_until=_optional_time(data.get("valid_until"), "valid_until"),
                content=ContentType(data.get("content", ContentType.MEDIA)),
                relay_url=_text(data.get("relay_url", ""), "relay_url"),
                duration_s=_number(data.get("duration_s", 0.0), "duration_s", 0.0, MAX_RELAY_S),
                live=_flag(data.get("live", False), "live"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("malformed", f"play body: {exc}") from exc
        if body.content is ContentType.MEDIA:
            if not SHA256_PATTERN.match(body.media_sha256):
                raise ProtocolError("malformed", "media_sha256 must be 64 lowercase hex digits")
            if not body.media_url.startswith(("http://", "https://")):
                raise ProtocolError("malformed", "media_url must be http(s)")
            if body.live:
                raise ProtocolError("malformed", "only a relay can be live")
        else:
            if not body.relay_url.startswith(("http://", "https://")):
                raise ProtocolError("malformed", "relay_url must be http(s)")
            if body.media_sha256 or body.media_url:
                if not body.live:
                    raise ProtocolError("malformed", "only a live relay carries media (its chime)")
                if not SHA256_PATTERN.match(body.media_sha256):
                    raise ProtocolError("malformed", "media_sha256 must be 64 lowercase hex digits")
                if not body.media_url.startswith(("http://", "https://")):
                    raise ProtocolError("malformed", "media_url must be http(s)")
            if not 0 < body.duration_s <= MAX_RELAY_S:
                raise ProtocolError("malformed", f"relay duration must be 0..{MAX_RELAY_S} s")
        return body


# --- field checks: every number the server or a receiver stores or computes with is bounded ---


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false")
    return value


def _whole(value: Any, what: str, low: int, high: int) -> int:
    """An integer (or a float without a fraction) within `low..high`; a bool is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{what} must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{what} must be {low}..{high}")
    return number


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    number = float(value)  # integers are 64-bit at most (the parser), so this cannot overflow
    if not low <= number <= high:
        raise ValueError(f"{what} must be {low:g}..{high:g}")
    return number


def _time(value: Any, what: str) -> float:
    """Epoch seconds that a datetime can hold (so the server can store them)."""
    return _number(value, what, 0.0, MAX_TIMESTAMP)


def _optional_time(value: Any, what: str) -> float | None:
    return None if value is None else _time(value, what)


def _text(value: Any, what: str, max_length: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"{what} longer than {max_length} characters")
    return value


def _optional_whole(value: Any, what: str) -> int | None:
    return None if value is None else _whole(value, what, 0, MAX_BROADCAST_ID)


@dataclass(frozen=True)
class StopBody:
    broadcast_id: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StopBody:
        try:
            return cls(broadcast_id=_optional_whole(data.get("broadcast_id"), "broadcast_id"))
        except (TypeError, ValueError) as exc:
            raise ProtocolError("malformed", f"stop body: {exc}") from exc


@dataclass(frozen=True)
class ManifestBody:
    """A device's programme from `generated_at` to `horizon_until`: every item has a `play_at`.
    A newer manifest replaces the older one whole; the receiver keeps it on disk and plays it
    from its own clock when the server or the broker cannot be reached."""

    device_id: str
    generated_at: float
    horizon_until: float
    items: tuple[PlayBody, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestBody:
        try:
            raw_items = data.get("items", [])
            if not isinstance(raw_items, list) or len(raw_items) > MAX_MANIFEST_ITEMS:
                raise ValueError(f"items must be a list of at most {MAX_MANIFEST_ITEMS}")
            if not all(isinstance(item, dict) for item in raw_items):
                raise ValueError("every item must be an object")
            items = tuple(PlayBody.from_dict(item) for item in raw_items)
            body = cls(
                device_id=check_id(data["device_id"], "device id"),
                generated_at=_time(data["generated_at"], "generated_at"),
                horizon_until=_time(data["horizon_until"], "horizon_until"),
                items=items,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("malformed", f"manifest body: {exc}") from exc
        if any(item.play_at is None or not item.item_id for item in items):
            raise ProtocolError("malformed", "every manifest item needs item_id and play_at")
        return body

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "generated_at": self.generated_at,
            "horizon_until": self.horizon_until,
            "items": [_plain(asdict(item)) for item in self.items],
        }


Body = PlayBody | StopBody | ManifestBody
_BODY_TYPES: dict[CommandKind, type[PlayBody] | type[StopBody] | type[ManifestBody]] = {
    CommandKind.PLAY: PlayBody,
    CommandKind.STOP: StopBody,
    CommandKind.MANIFEST: ManifestBody,
}
_KINDS: dict[type, CommandKind] = {body: kind for kind, body in _BODY_TYPES.items()}


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in data.items()}


@dataclass(frozen=True)
class Command:
    """A signed message to receivers. `stream` is the topic it is published on and `seq` rises by
    one on every message of that stream, so a receiver can tell a replayed copy from a new one.
    `epoch` is the server's sequence epoch (`loa keys rotate`): a newer one resets every
    stream's sequence floor on the receivers, an older one is refused (absent = 0)."""

    kind: CommandKind
    id: str
    issued_at: float
    expires_at: float
    stream: str
    seq: int
    body: Body
    epoch: int = 0

    def to_unsigned(self) -> dict[str, Any]:
        if isinstance(self.body, ManifestBody):
            body = self.body.to_dict()
        else:
            body = _plain(asdict(self.body))
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.kind.value,
            "id": self.id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "stream": self.stream,
            "seq": self.seq,
            "epoch": self.epoch,
            "body": body,
        }


# One encoder for every message: `json.dumps` with options builds a new one per call, and the
# receiver computes this form for every command it verifies.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: dict[str, Any]) -> bytes:
    """Keys sorted, no spaces, UTF-8: the bytes a signature covers."""
    return _CANONICAL_ENCODER.encode(data).encode()


def new_command(
    body: Body,
    *,
    stream: str,
    seq: int,
    ttl_s: float = DEFAULT_COMMAND_TTL_S,
    now: float | None = None,
    epoch: int = 0,
) -> Command:
    issued = time.time() if now is None else now
    kind = _KINDS[type(body)]
    return Command(kind, uuid.uuid4().hex, issued, issued + ttl_s, stream, seq, body, epoch)


def sign_command(command: Command, key: Ed25519PrivateKey) -> bytes:
    unsigned = command.to_unsigned()
    signature = key.sign(canonical_json(unsigned))
    return canonical_json({**unsigned, "sig": base64.b64encode(signature).decode("ascii")})


def verify_command(
    payload: bytes,
    key: Ed25519PublicKey,
    now: float | None = None,
    clock_skew_s: float = 120.0,
    *,
    check_expiry: bool = True,
) -> Command:
    """Parse and verify a signed command; raise ProtocolError naming why it is rejected.

    `check_expiry=False` is for a copy the receiver accepted earlier and kept on disk (its
    manifest): the signature and shape are checked again, the delivery window is not."""
    data = load_json_object(payload)
    signature_text = data.pop("sig", None)
    if not isinstance(signature_text, str):
        raise ProtocolError("unsigned", "no signature")
    try:
        signature = base64.b64decode(signature_text, validate=True)
        key.verify(signature, canonical_json(data))
    except (binascii.Error, InvalidSignature) as exc:
        raise ProtocolError("bad_signature", "signature does not verify") from exc
    if data.get("v") != PROTOCOL_VERSION:
        raise ProtocolError("malformed", f"unsupported protocol version {data.get('v')!r}")
    try:
        kind = CommandKind(data["kind"])
        command_id = _text(data["id"], "id", 100)
        issued_at = _time(data["issued_at"], "issued_at")
        expires_at = _time(data["expires_at"], "expires_at")
        stream = _text(data["stream"], "stream", 200)
        seq = _whole(data["seq"], "seq", 0, MAX_SEQ)
        epoch = _whole(data.get("epoch", 0), "epoch", 0, MAX_SEQ)
        raw_body = data["body"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("malformed", f"envelope: {exc}") from exc
    if not isinstance(raw_body, dict):
        raise ProtocolError("malformed", "body must be an object")
    current = time.time() if now is None else now
    if check_expiry and expires_at < current:
        raise ProtocolError("expired", f"expired {current - expires_at:.0f} s ago")
    if check_expiry and issued_at > current + clock_skew_s:
        raise ProtocolError("expired", "issued in the future")
    body = _BODY_TYPES[kind].from_dict(raw_body)
    return Command(kind, command_id, issued_at, expires_at, stream, seq, body, epoch)


class ReplayGuard:
    """Remembers ids of accepted commands until they expire, so a replayed copy is rejected.

    The agent persists `to_dict()` so a replay is still caught after a restart.
    """

    def __init__(self, seen: dict[str, float] | None = None, limit: int = 10_000) -> None:
        self._seen: dict[str, float] = dict(seen or {})
        self._limit = limit
        self._earliest = self._earliest_expiry()

    def check_and_remember(self, command: Command, now: float | None = None) -> None:
        current = time.time() if now is None else now
        if self._earliest < current:  # some id expired: forget every expired one at once
            self._seen = {cid: exp for cid, exp in self._seen.items() if exp >= current}
            self._earliest = self._earliest_expiry()
        if command.id in self._seen:
            raise ProtocolError("replayed", f"command {command.id} was already accepted")
        if len(self._seen) >= self._limit:
            oldest = min(self._seen, key=self._seen.__getitem__)
            del self._seen[oldest]
            self._earliest = self._earliest_expiry()
        self._seen[command.id] = command.expires_at
        self._earliest = min(self._earliest, command.expires_at)

    def knows(self, command_id: str) -> bool:
        """Whether a command with this id was accepted (and has not expired since)."""
        return command_id in self._seen

    def _earliest_expiry(self) -> float:
        """The soonest expiry remembered: until it passes, no id needs forgetting, so a check
        costs O(1) instead of a pass over every remembered id."""
        return min(self._seen.values(), default=math.inf)

    def to_dict(self) -> dict[str, float]:
        return dict(self._seen)


@dataclass(frozen=True)
class StreamMark:
    """The newest message accepted on a stream."""

    epoch: int
    seq: int
    command_id: str


class SequenceGuard:
    """Per stream (topic), the epoch, the highest sequence number accepted and its command id;
    and the highest epoch accepted on any stream (the floor).

    A message must come on the stream it was signed for. Within an epoch it must carry a higher
    sequence than the last one accepted there, by at most MAX_SEQ_JUMP: the server's counter
    rises by one per message, so even months of missed commands stay far below that, while one
    accepted sequence far in the future (a leaked key, a bug) would make every later genuine
    one look old. A newer epoch (`loa keys rotate`) starts the stream afresh; an epoch below the
    floor is refused everywhere, so the messages of an older epoch cannot be replayed after a
    rotation. The same message again (QoS 1 redelivery, a retained manifest after a reconnect)
    is a harmless duplicate. The agent persists the state so the checks hold across restarts.
    """

    def __init__(
        self,
        state: dict[str, tuple[int, str]] | None = None,
        epochs: dict[str, int] | None = None,
        floor: int = 0,
    ) -> None:
        epochs = epochs or {}
        self._last: dict[str, StreamMark] = {
            topic: StreamMark(epochs.get(topic, 0), seq, command_id)
            for topic, (seq, command_id) in (state or {}).items()
        }
        self._floor = max([floor, *(mark.epoch for mark in self._last.values())])

    @property
    def floor(self) -> int:
        """The newest epoch accepted on any stream: older epochs are refused."""
        return self._floor

    def last(self, topic: str) -> StreamMark | None:
        return self._last.get(topic)

    def check(self, command: Command, topic: str) -> bool:
        """True: new, accept it. False: a duplicate of the last one, ignore it quietly.
        Raises ProtocolError for a message from another stream, an older epoch, an older
        sequence (`replayed`) or one implausibly far ahead."""
        if command.stream != topic:
            raise ProtocolError("wrong_stream", f"signed for {command.stream}, came on {topic}")
        if command.epoch < self._floor:
            raise ProtocolError(
                "old_epoch", f"epoch {command.epoch} on {topic}; epoch {self._floor} is current"
            )
        last = self._last.get(topic)
        if last is None or command.epoch > last.epoch:
            return True
        if command.seq == last.seq and command.id == last.command_id:
            return False
        if command.seq <= last.seq:
            raise ProtocolError("replayed", f"sequence {command.seq} on {topic} after {last.seq}")
        if command.seq - last.seq > MAX_SEQ_JUMP:
            raise ProtocolError(
                "too_far_ahead",
                f"sequence {command.seq} on {topic} is more than {MAX_SEQ_JUMP} after {last.seq}",
            )
        return True

    def remember(self, command: Command) -> None:
        self._last[command.stream] = StreamMark(command.epoch, command.seq, command.id)
        self._floor = max(self._floor, command.epoch)

    def to_dict(self) -> dict[str, tuple[int, str]]:
        """Sequence and id per stream: the shape `replay.json` always had."""
        return {topic: (mark.seq, mark.command_id) for topic, mark in self._last.items()}

    def epochs(self) -> dict[str, int]:
        return {topic: mark.epoch for topic, mark in self._last.items() if mark.epoch}


# --- answer-back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceEvent:
    device_id: str
    command_id: str
    broadcast_id: int | None
    kind: EventKind
    at: float
    detail: str = ""
    item_id: str = ""

    def to_json(self) -> bytes:
        data = asdict(self)
        data["kind"] = self.kind.value
        return canonical_json(data)

    @classmethod
    def from_json(cls, payload: bytes) -> DeviceEvent:
        data = load_json_object(payload, MAX_ANSWER_BYTES)
        try:
            return cls(
                device_id=check_id(data["device_id"], "device id"),
                command_id=_text(data["command_id"], "command_id")[:100],
                broadcast_id=_optional_whole(data.get("broadcast_id"), "broadcast_id"),
                kind=EventKind(data["kind"]),
                at=_time(data["at"], "at"),
                detail=_text(data.get("detail", ""), "detail")[:500],
                item_id=_text(data.get("item_id", ""), "item_id")[:100],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("malformed", f"event: {exc}") from exc


@dataclass(frozen=True)
class DeviceStatus:
    """Retained on the device's state topic; also its last will with state `offline`.

    The boot id lets the server ignore a late last-will from an older session.
    """

    device_id: str
    state: ReceiverState
    boot_id: str
    at: float
    current_broadcast: int | None = None
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def online(self) -> bool:
        return self.state is not ReceiverState.OFFLINE

    def to_json(self) -> bytes:
        data = asdict(self)
        data["state"] = self.state.value
        return canonical_json(data)

    @classmethod
    def from_json(cls, payload: bytes) -> DeviceStatus:
        data = load_json_object(payload, MAX_ANSWER_BYTES)
        try:
            extra = data.get("extra") or {}
            if not isinstance(extra, dict):
                raise TypeError("extra must be an object")
            return cls(
                device_id=check_id(data["device_id"], "device id"),
                state=ReceiverState(data["state"]),
                boot_id=_text(data["boot_id"], "boot_id", 64),
                at=_time(data["at"], "at"),
                current_broadcast=_optional_whole(
                    data.get("current_broadcast"), "current_broadcast"
                ),
                version=_text(data.get("version", ""), "version")[:100],
                extra=extra,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("malformed", f"state: {exc}") from exc


# --- parsing what arrives -----------------------------------------------------------------------


def _json_int(text: str) -> int:
    """Integers of at most 64 bits: what the server's columns hold (and no 4,300-digit parse)."""
    if len(text.lstrip("-")) > 19:
        raise ValueError(f"integer of {len(text)} digits is out of range")
    value = int(text)
    if not -(2**63) <= value <= MAX_SEQ:
        raise ValueError(f"integer {value} is out of range")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(
    parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def load_json_object(payload: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The one parser of everything that arrives over MQTT: a JSON object in UTF-8 of at most
    `max_bytes`, nested at most MAX_JSON_DEPTH levels, its numbers finite and within 64 bits,
    its strings free of lone UTF-16 surrogates. Anything else raises ProtocolError("malformed")
    naming what is wrong, so every receiver of a payload counts and logs it in one line
    (RecursionError, OverflowError or UnicodeError never reach a caller)."""
    if len(payload) > max_bytes:
        raise ProtocolError(
            "malformed", f"message of {len(payload)} bytes is too large (at most {max_bytes})"
        )
    try:
        data = _DECODER.decode(bytes(payload).decode("utf-8"))
    except RecursionError:
        raise ProtocolError("malformed", "not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the number hooks
        raise ProtocolError("malformed", f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed", "not a JSON object")
    _check_depth(data)
    if _SURROGATE_ESCAPE.search(payload):  # a pair decodes to one character; a lone one stays
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("malformed", "a lone UTF-16 surrogate in a string") from None
    return data


def _check_depth(data: dict[str, Any]) -> None:
    """Iteratively, so a deep structure cannot exhaust the stack of whoever walks it next."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ProtocolError("malformed", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
