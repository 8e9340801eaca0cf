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
from collections.abc import Iterable, Iterator
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
from broadcast.store.locks import FileLock
from broadcast.store.models import Broadcast, User, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)

SOURCE = LIVE_SOURCE
DEFAULT_MINUTES = 30
MAX_MINUTES = 120  # the receivers stop at this even if nobody presses "Kết thúc"
STATUS_CHECK_S = 1.0  # how often a feed looks whether its broadcast was ended elsewhere
# A browser's feed (`append`): how often its spool is read, how much at a time, and how long
# without a new piece before the feeder gives up (the page was closed without "Kết thúc").
SPOOL_POLL_S = 0.05
SPOOL_READ = 16 * 1024
SPOOL_IDLE_S = 15.0
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
        self._lock = threading.Lock()  # appends to a spool, one at a time

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
        internal: object = False,
    ) -> int:
        """Go live to `zone_ids`: the broadcast is logged, audited and its PLAY sent at once;
        its id is what `feed` and `end` take. `internal` (nội bộ): its recording stays off the
        commune's public replay page, the speaker's choice as for an announcement."""
        hidden = broadcasts.clean_internal(internal)
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.ANNOUNCE)
            level = broadcasts.clean_priority(priority)
            limit = _clean_minutes(minutes)
            chosen = targets.resolve(session, zone_ids, device_ids)
            targets.check_can_target(session, user, chosen)
            if not self.available:
                # the server's set-up, not an outage: a 409 a client can act on, not a 5xx
                raise Conflict("live", N_("máy chủ này chưa bật phát trực tiếp"), "no_stream")
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
                internal=hidden,
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
                    "internal": hidden,
                },
            )
        _LOGGER.info("live broadcast %s starts on %s %s", broadcast_id, zone_ids, device_ids or "")
        self._outbox.send(broadcast_id)
        return broadcast_id

    def voice_delay_s(self, priority: object) -> float:
        """How long after going live the loudspeakers reach the voice: the start every
        receiver waits for (to begin together), then the chime. What is said before that is
        in the recording only, so the speaker's page says when to begin."""
        return self._outbox.play_lead_s(str(priority)) + audio.CHIME_S

    def feed(self, user_id: int, broadcast_id: int, chunks: Iterable[bytes]) -> FeedResult:
        """Encode the speaker's audio (`chunks`, as it arrives: one long request) to the
        broadcast's mount and to its recording, until the chunks end or the broadcast is ended;
        then store the recording as the broadcast's media. Only whoever started it feeds it,
        one feed at a time across every process of the server."""
        with self._db.session() as session:
            self._own_live(session, user_id, broadcast_id)
        lock = self._feed_lock(broadcast_id)
        if not lock.acquire():
            raise Conflict("broadcast", N_("lượt phát trực tiếp này đang được nói"), "feeding")
        try:
            return self._run_feed(user_id, broadcast_id, chunks)
        finally:
            lock.release()

    def append(self, user_id: int, broadcast_id: int, offset: int, chunk: bytes) -> int:
        """One piece of the speaker's audio from a browser, which sends its recorder's pieces
        one request each, in order: `offset` is where the piece starts in the whole feed, so a
        piece sent again is taken once. The pieces go to a spool file that one feeder of the
        server (whichever process got the first piece) reads as it grows and encodes as `feed`
        does. Returns how much of the feed the server holds."""
        with self._db.session() as session:
            self._own_live(session, user_id, broadcast_id)
        spool = self._spool(broadcast_id)
        spool.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, spool.open("ab") as out:
            size = out.tell()
            if offset > size:
                raise Conflict(
                    "offset", N_("thiếu một đoạn tiếng trước đoạn này"), "gap", size=size
                )
            if offset + len(chunk) > size:
                out.write(chunk[size - offset :])
            size = max(size, offset + len(chunk))
        lock = self._feed_lock(broadcast_id)
        if lock.acquire():  # nobody feeds it yet: this process does, from the spool
            threading.Thread(
                target=self._feed_from_spool,
                args=(user_id, broadcast_id, lock),
                name=f"loa-live-{broadcast_id}",
                daemon=True,
            ).start()
        return size

    def _feed_from_spool(self, user_id: int, broadcast_id: int, lock: FileLock) -> None:
        try:
            self._run_feed(user_id, broadcast_id, self._follow(broadcast_id))
        except Exception:
            _LOGGER.exception("live broadcast %s: its feed failed", broadcast_id)
        finally:
            self._spool(broadcast_id).unlink(missing_ok=True)
            lock.release()

    def _follow(self, broadcast_id: int) -> Iterator[bytes]:
        """The spool's bytes as they come, until no piece came for `SPOOL_IDLE_S` (the
        browser went away); the feed loop stops it sooner once the broadcast has ended."""
        spool = self._spool(broadcast_id)
        last = time.monotonic()
        with spool.open("rb") as source:
            while time.monotonic() - last < SPOOL_IDLE_S:
                data = source.read(SPOOL_READ)
                if data:
                    last = time.monotonic()
                    yield data
                else:
                    yield b""  # lets the feed loop look at the broadcast's status
                    time.sleep(SPOOL_POLL_S)

    def _spool(self, broadcast_id: int) -> Path:
        return self._settings.data_dir / "live" / f"{int(broadcast_id)}.feed"

    def _feed_lock(self, broadcast_id: int) -> FileLock:
        return FileLock(self._settings.data_dir / "live" / f"{int(broadcast_id)}.lock")

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
