"""The live desk (phát trực tiếp): a person speaks, every loudspeaker of their zones plays it.

A live broadcast is a relay broadcast whose stream is the installation's own: its mount on the
streaming engine (`fleet.streaming`), named by the broadcast's id, whose URL carries the
mount's listen token. Starting one checks who may reach which zones (as an announcement: the
permissions table's ANNOUNCE), writes it to the log with its audit entry and sends the signed
PLAY of the stream with its maximum duration; receivers preempt lower priorities as for any
emergency. `feed` takes the speaker's audio as it comes and encodes it to the mount and to a
recording, stored as normal media on the broadcast when the feed ends (the log plays it back).
"Kết thúc" (`end`) sends the STOP everywhere, as stopping any broadcast does. Icecast lets a
listener in only while its broadcast is on air and the token is its mount's (`admit_listener`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

import audio
from audio.live import LiveEncoder
from broadcast.const import LIVE_SOURCE, BroadcastStatus
from broadcast.errors import (
    N_,
    Conflict,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from broadcast.fleet import streaming
from broadcast.people import accounts, audit, targets
from broadcast.people.permissions import Action
from broadcast.sending import broadcasts
from broadcast.sending.outbox import Outbox
from broadcast.settings import Secrets, Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, User, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)

SOURCE = LIVE_SOURCE
DEFAULT_MINUTES = 30
MAX_MINUTES = 120  # the receivers stop at this even if nobody presses "Kết thúc"
STATUS_CHECK_S = 1.0  # how often a feed looks whether its broadcast was ended elsewhere
_ON_AIR = (BroadcastStatus.PENDING.value, BroadcastStatus.DISPATCHED.value)


@dataclass(frozen=True)
class FeedResult:
    """What a feed left: how long it ran and its recording in the media store ("" if none)."""

    seconds: float
    recording_sha256: str


class LiveDesk:
    """`service.live`: going live, feeding it, ending it."""

    def __init__(self, settings: Settings, db: Database, media: audio.MediaStore, outbox: Outbox,
                 secrets: Secrets) -> None:  # fmt: skip
        self._settings = settings
        self._db = db
        self._media = media
        self._outbox = outbox
        self._secrets = secrets
        self._feeding: set[int] = set()  # broadcasts fed by this process
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """Whether this installation runs a streaming engine (pages offer "Phát trực tiếp")."""
        return self._settings.live_enabled

    def start(
        self,
        user_id: int,
        zone_ids: object,
        priority: object = protocol.Priority.EMERGENCY.value,
        minutes: object = DEFAULT_MINUTES,
        title: str = "",
        device_ids: object = None,
    ) -> int:
        """Go live to `zone_ids`: the broadcast is logged, audited and its PLAY sent at once;
        its id is what `feed` and `end` take."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.ANNOUNCE)
            level = broadcasts.clean_priority(priority)
            limit = _clean_minutes(minutes)
            chosen = targets.resolve(session, zone_ids, device_ids)
            targets.check_can_target(session, user, chosen)
            if not self.available:
                raise ServiceUnavailable(N_("máy chủ này chưa bật phát trực tiếp"), "no_stream")
            if not self._outbox.connected:
                raise ServiceUnavailable(N_("máy chủ này chạy không có kết nối MQTT"), "no_broker")
            label = title.strip() or f"Phát trực tiếp: {user.full_name or user.username}"
            broadcast = broadcasts.create_broadcast(
                session,
                text=label,
                zone_list=chosen.zones,
                devices=chosen.devices,
                priority=level,
                repeat=1,
                source=SOURCE,
                created_by=user,
                title=label,
                content=protocol.ContentType.RELAY.value,
                duration_s=float(limit * 60),
            )
            broadcast.relay_url = streaming.stream_url(
                self._settings.receiver_stream_url, self._secrets.stream_token_key, broadcast.id
            )
            broadcast_id = broadcast.id
            audit.record(
                session,
                user,
                audit.Action.LIVE_START,
                f"broadcast:{broadcast_id}",
                {
                    "zones": chosen.zone_ids,
                    "devices": chosen.device_ids,
                    "priority": level.value,
                    "minutes": limit,
                    "title": label[:300],
                },
            )
        _LOGGER.info("live broadcast %s starts on %s %s", broadcast_id, zone_ids, device_ids or "")
        self._outbox.send(broadcast_id)
        return broadcast_id

    def feed(self, user_id: int, broadcast_id: int, chunks: Iterable[bytes]) -> FeedResult:
        """Encode the speaker's audio (`chunks`, as it arrives) to the broadcast's mount and to
        its recording, until the chunks end or the broadcast is ended; then store the recording
        as the broadcast's media. Only whoever started it feeds it, one feed at a time."""
        with self._db.session() as session:
            self._own_live(session, user_id, broadcast_id)
        with self._lock:
            if broadcast_id in self._feeding:
                raise Conflict("broadcast", N_("lượt phát trực tiếp này đang được nói"), "feeding")
            self._feeding.add(broadcast_id)
        try:
            return self._run_feed(user_id, broadcast_id, chunks)
        finally:
            with self._lock:
                self._feeding.discard(broadcast_id)

    def _run_feed(self, user_id: int, broadcast_id: int, chunks: Iterable[bytes]) -> FeedResult:
        host, port = self._settings.stream_source
        passwords = streaming.StreamPasswords(
            self._secrets.stream_source_password, self._secrets.stream_admin_password
        )
        work = self._settings.data_dir / "live"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as folder:
            recording = Path(folder) / f"live-{broadcast_id}.mp3"
            encoder = LiveEncoder(
                streaming.source_url(host, port, passwords, broadcast_id), recording
            )
            began = time.monotonic()
            encoder.start()
            checked = began
            try:
                for chunk in chunks:
                    if chunk:
                        encoder.write(chunk)
                    if time.monotonic() - checked >= STATUS_CHECK_S:
                        checked = time.monotonic()
                        if not self._on_air(broadcast_id):
                            _LOGGER.info("live broadcast %s ended: its feed stops", broadcast_id)
                            break
            except audio.AudioError as exc:
                _LOGGER.warning("live broadcast %s: %s", broadcast_id, exc)
            finally:
                code = encoder.close()
            seconds = round(time.monotonic() - began, 1)
            if code not in (0, None):
                _LOGGER.warning("live feed %s ended: %s", broadcast_id, encoder.problem())
            sha256 = self._keep_recording(user_id, broadcast_id, recording, seconds)
        return FeedResult(seconds, sha256)

    def _keep_recording(
        self, user_id: int, broadcast_id: int, recording: Path, seconds: float
    ) -> str:
        """The recording into the media store, on the broadcast, with its audit entry."""
        try:
            if not recording.exists() or audio.probe_duration_s(recording) <= 0:
                return ""
            sha256 = self._media.put_file(recording)
        except audio.AudioError as exc:
            _LOGGER.warning("live broadcast %s left no recording: %s", broadcast_id, exc)
            return ""
        with self._db.session() as session:
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            broadcast.media_sha256 = sha256
            audit.record(
                session,
                session.get(User, user_id),
                audit.Action.LIVE_RECORDED,
                f"broadcast:{broadcast_id}",
                {"recording": sha256, "seconds": seconds},
            )
        _LOGGER.info("live broadcast %s recorded: %s (%.0f s)", broadcast_id, sha256[:12], seconds)
        return sha256

    def end(self, user_id: int, broadcast_id: int) -> bool:
        """Kết thúc: the STOP on every topic the broadcast went to; its feed stops within a
        second. False when every receiver had finished already."""
        if not self._outbox.connected:
            raise ServiceUnavailable(N_("máy chủ này chạy không có kết nối MQTT"), "no_broker")
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.CANCEL_BROADCAST)
            broadcast = self._live(session, user, broadcast_id)
            if broadcast.created_by_id != user.id:
                broadcasts.check_can_cancel(session, user, broadcast)
            if broadcast.status == BroadcastStatus.CANCELLED.value:
                raise Conflict(
                    "broadcast", N_("lượt phát trực tiếp này đã kết thúc"), "already_ended"
                )
            zone_ids, device_ids = list(broadcast.zone_ids), list(broadcast.device_ids or [])
        ended = self._outbox.stop(
            broadcast_id,
            zone_ids,
            device_ids,
            lambda session, stopped: self._ended(session, user_id, stopped),
        )
        _LOGGER.info("live broadcast %s ended by user %s", broadcast_id, user_id)
        return ended

    @staticmethod
    def _ended(session: Session, user_id: int, broadcast: Broadcast) -> None:
        started = broadcast.dispatched_at or broadcast.created_at
        audit.record(
            session,
            session.get(User, user_id),
            audit.Action.LIVE_END,
            f"broadcast:{broadcast.id}",
            {"seconds": round((utcnow() - started).total_seconds(), 1)},
        )

    def admit_listener(self, requested: str) -> bool:
        """Icecast's question for each listener (`requested`: the mount and its query string):
        yes only with the mount's token, while its live broadcast is on air."""
        broadcast_id = streaming.admitted_broadcast(self._secrets.stream_token_key, requested)
        if broadcast_id is None:
            return False
        return self._on_air(broadcast_id)

    def _on_air(self, broadcast_id: int) -> bool:
        with self._db.session() as session:
            broadcast = session.get(Broadcast, broadcast_id)
            return (
                broadcast is not None and broadcast.source == SOURCE and broadcast.status in _ON_AIR
            )

    @staticmethod
    def _live(session: Session, user: User, broadcast_id: int) -> Broadcast:
        broadcast = session.get(Broadcast, broadcast_id)
        if (
            broadcast is None
            or broadcast.source != SOURCE
            or not broadcasts.can_view(session, user, broadcast)
        ):
            raise NotFound(N_("không có lượt phát trực tiếp %(id)s"), "not_found", id=broadcast_id)
        return broadcast

    def _own_live(self, session: Session, user_id: int, broadcast_id: int) -> Broadcast:
        user = accounts.require_user(session, user_id, Action.ANNOUNCE)
        broadcast = self._live(session, user, broadcast_id)
        if broadcast.created_by_id != user.id:
            raise PermissionDenied(
                N_("chỉ người bắt đầu lượt phát trực tiếp mới nói được trong đó"), "not_speaker"
            )
        if broadcast.status not in _ON_AIR:
            raise Conflict("broadcast", N_("lượt phát trực tiếp này đã kết thúc"), "already_ended")
        return broadcast


def _clean_minutes(value: object) -> int:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "minutes", N_("thời lượng tối đa phải là số phút"), "not_integer"
        ) from exc
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValidationError(
            "minutes", N_("phát trực tiếp từ 1 đến %(max)s phút"), "out_of_range", max=MAX_MINUTES
        )
    return minutes
