"""The broadcast service: the one object that wires storage, speech, audio, scheduling and MQTT.

The web layer and the CLI call its methods; it owns the background parts (renderer thread,
scheduler, dispatcher) and starts and stops them together.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

import audio
import tts
from broadcast import broadcasts, clock, zones
from broadcast.const import (
    MAX_UPLOAD_BYTES,
    SERVER_MQTT_USERNAME,
    BroadcastStatus,
    ContentKind,
    Role,
    ScheduleKind,
    ZoneKind,
)
from broadcast.db import Database
from broadcast.dispatcher import Dispatcher
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.models import Broadcast, Bulletin, Schedule, User, Zone, utcnow
from broadcast.rendering import MediaRenderer
from broadcast.scheduling import Scheduler
from broadcast.settings import Secrets, Settings
from devices import protocol

_LOGGER = logging.getLogger(__name__)

CONTENT_ROLES = (Role.ADMIN, Role.OFFICER)
ANNOUNCE_ROLES = (Role.ADMIN, Role.OFFICER, Role.VILLAGE_HEAD)


@dataclass(frozen=True)
class ScheduleRequest:
    bulletin_id: int
    kind: ScheduleKind
    zone_ids: list[str]
    priority: protocol.Priority
    repeat: int = 1
    run_at: str = ""  # local date and time, for ONCE
    time_of_day: str = ""  # local HH:MM, for DAILY


class BroadcastService:
    def __init__(self, settings: Settings, connect_mqtt: bool = True) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self.secrets = Secrets(settings.data_dir)
        self.db = Database(settings.database_url)
        self.db.migrate()
        self.signing_key = self.secrets.signing_key()
        self.public_key_text = protocol.public_key_to_text(self.signing_key.public_key())
        self.media = audio.MediaStore(settings.media_dir)
        self.synthesizer = tts.Synthesizer(
            settings.tts_cache_dir, engine=settings.tts_engine, **settings.tts_options
        )
        self.renderer = MediaRenderer(self.synthesizer, self.media, settings.data_dir / "renders")
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loa-render")
        self.scheduler = Scheduler(self.db.engine, self._fire_schedule)
        self.dispatcher: Dispatcher | None = None
        if connect_mqtt:
            self.dispatcher = Dispatcher(
                settings.mqtt_host,
                settings.mqtt_port,
                SERVER_MQTT_USERNAME,
                self.secrets.mqtt_password,
                self.signing_key,
                on_status=self._on_status,
                on_event=self._on_event,
            )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()
        self.scheduler.start()
        self._resume_pending()

    def stop(self) -> None:
        self.scheduler.stop()
        self._render_pool.shutdown(wait=True, cancel_futures=True)
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.db.dispose()

    def _resume_pending(self) -> None:
        """Broadcasts left pending by a stop are rendered and dispatched now."""
        with self.db.session() as session:
            pending = session.scalars(
                select(Broadcast.id).where(Broadcast.status == BroadcastStatus.PENDING.value)
            ).all()
        for broadcast_id in pending:
            self._render_pool.submit(self._render_and_dispatch, broadcast_id)

    # --- announcements ------------------------------------------------------------------------

    def announce(
        self,
        user_id: int,
        text: object,
        zone_ids: object,
        priority: object = protocol.Priority.EMERGENCY.value,
        repeat: object = 1,
        title: str = "",
    ) -> int:
        """Validate, authorize and queue an announcement for synthesis and dispatch at once."""
        with self.db.session() as session:
            user = self._user(session, user_id, ANNOUNCE_ROLES)
            clean = broadcasts.clean_text(text)
            level = broadcasts.clean_priority(priority)
            count = broadcasts.clean_repeat(repeat)
            if not isinstance(zone_ids, list):
                raise ValidationError("zones", "must be a list of zone ids")
            targets = zones.resolve_zones(session, zone_ids)
            zones.check_can_target(session, user, targets)
            broadcast = broadcasts.create_broadcast(
                session,
                text=clean,
                zone_list=targets,
                priority=level,
                repeat=count,
                source="announcement",
                created_by=user,
                title=title,
            )
            broadcast_id = broadcast.id
        _LOGGER.info("announcement %s queued for %s", broadcast_id, zone_ids)
        self._render_pool.submit(self._render_and_dispatch, broadcast_id)
        return broadcast_id

    def _render_and_dispatch(self, broadcast_id: int) -> None:
        with self.db.session() as session:
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            text, zone_ids = broadcast.text, list(broadcast.zone_ids)
            priority, repeat, title = broadcast.priority, broadcast.repeat, broadcast.title
            recording = broadcast.recording_sha256
        try:
            rendered = self.renderer.render(text, recording)
            sha256, engine = rendered.sha256, rendered.engine
            body = protocol.PlayBody(
                broadcast_id=broadcast_id,
                media_url=self.settings.media_url(sha256),
                media_sha256=sha256,
                priority=protocol.Priority(priority),
                repeat=repeat,
                title=title[:200],
            )
            command = protocol.new_command(body)
            if self.dispatcher is None:
                raise RuntimeError("this server runs without an MQTT connection")
            for zone_id in zone_ids:
                self.dispatcher.publish(protocol.zone_command_topic(zone_id), command)
        except Exception as exc:
            _LOGGER.exception("broadcast %s failed", broadcast_id)
            with self.db.session() as session:
                broadcasts.mark_failed(broadcasts.get_broadcast(session, broadcast_id), str(exc))
            return
        with self.db.session() as session:
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            broadcasts.mark_dispatched(broadcast, sha256, engine, command.id)
        _LOGGER.info(
            "broadcast %s dispatched to %s (media %s, %s)",
            broadcast_id,
            ", ".join(zone_ids),
            sha256[:12],
            engine,
        )

    def preview(self, user_id: int, bulletin_id: int) -> str:
        """Render a bulletin as it would play (without sending it) and return its media sha256."""
        with self.db.session() as session:
            self._user(session, user_id, CONTENT_ROLES)
            bulletin = self.get_bulletin(session, bulletin_id)
            text, recording = bulletin.text, bulletin.recording_sha256
        return self._render_pool.submit(self.renderer.render, text, recording).result().sha256

    # --- bulletins and schedules --------------------------------------------------------------

    def create_bulletin(self, user_id: int, title: str, text: object) -> int:
        with self.db.session() as session:
            user = self._user(session, user_id, CONTENT_ROLES)
            clean = broadcasts.clean_text(text)
            bulletin = Bulletin(
                title=title.strip() or broadcasts.default_title(clean),
                text=clean,
                kind=ContentKind.TTS.value,
                created_by_id=user.id,
            )
            session.add(bulletin)
            session.flush()
            return bulletin.id

    def create_recording_bulletin(
        self, user_id: int, title: str, upload: Path, original_name: str
    ) -> int:
        """A recording as content: validated, loudness-normalized, transcoded, then stored."""
        with self.db.session() as session:
            self._user(session, user_id, CONTENT_ROLES)
        if not title.strip():
            raise ValidationError("title", "a recording needs a title")
        try:
            info = audio.import_recording(
                upload, original_name=original_name, max_bytes=MAX_UPLOAD_BYTES
            )
        except audio.RecordingError as exc:
            raise ValidationError("recording", str(exc), code=exc.problem.value) from exc
        except audio.AudioError as exc:
            raise ValidationError("recording", str(exc)) from exc
        sha256 = self.media.put_bytes(info.mp3)
        with self.db.session() as session:
            bulletin = Bulletin(
                title=title.strip()[:300],
                text=title.strip(),
                kind=ContentKind.RECORDING.value,
                recording_sha256=sha256,
                created_by_id=user_id,
            )
            session.add(bulletin)
            session.flush()
            return bulletin.id

    @staticmethod
    def get_bulletin(session: Session, bulletin_id: int) -> Bulletin:
        bulletin = session.get(Bulletin, bulletin_id)
        if bulletin is None:
            raise NotFound(f"bulletin {bulletin_id}")
        return bulletin

    def prepare_script(self, document: object, with_opening: bool = True) -> tts.BroadcastScript:
        """What an official document becomes when read aloud; the officer edits it before saving."""
        text = broadcasts.clean_text(document)
        commune_name = None
        if with_opening:
            with self.db.session() as session:
                commune = session.scalar(
                    select(Zone).where(Zone.kind == ZoneKind.COMMUNE.value).order_by(Zone.id)
                )
                commune_name = commune.name if commune is not None else None
        try:
            return tts.make_script(text, commune=commune_name)
        except tts.TtsError as exc:
            raise ValidationError("document", str(exc)) from exc

    def broadcast_bulletin(
        self,
        user_id: int,
        bulletin_id: int,
        zone_ids: object,
        priority: object = protocol.Priority.NORMAL.value,
        repeat: object = 1,
    ) -> int:
        """Send a prepared bulletin now (phát ngay)."""
        with self.db.session() as session:
            user = self._user(session, user_id, CONTENT_ROLES)
            bulletin = self.get_bulletin(session, bulletin_id)
            if not isinstance(zone_ids, list):
                raise ValidationError("zones", "must be a list of zone ids")
            targets = zones.resolve_zones(session, zone_ids)
            zones.check_can_target(session, user, targets)
            broadcast = broadcasts.create_broadcast(
                session,
                text=bulletin.text,
                zone_list=targets,
                priority=broadcasts.clean_priority(priority),
                repeat=broadcasts.clean_repeat(repeat),
                source="bulletin",
                created_by=user,
                title=bulletin.title,
                recording_sha256=bulletin.recording_sha256,
            )
            broadcast_id = broadcast.id
        self._render_pool.submit(self._render_and_dispatch, broadcast_id)
        return broadcast_id

    def schedule(self, user_id: int, request: ScheduleRequest) -> int:
        with self.db.session() as session:
            user = self._user(session, user_id, CONTENT_ROLES)
            if session.get(Bulletin, request.bulletin_id) is None:
                raise ValidationError("bulletin", f"unknown bulletin {request.bulletin_id}")
            targets = zones.resolve_zones(session, request.zone_ids)
            zones.check_can_target(session, user, targets)
            schedule = Schedule(
                bulletin_id=request.bulletin_id,
                kind=request.kind.value,
                zone_ids=[zone.id for zone in targets],
                priority=broadcasts.clean_priority(request.priority).value,
                repeat=broadcasts.clean_repeat(request.repeat),
                created_by_id=user.id,
            )
            if request.kind == ScheduleKind.ONCE:
                schedule.run_at = clock.parse_local(request.run_at, "run_at")
                if schedule.run_at <= utcnow():
                    raise ValidationError("run_at", "must be in the future")
            else:
                schedule.time_of_day = clock.parse_time_of_day(request.time_of_day, "time_of_day")
            session.add(schedule)
        # the job store writes through its own connection: add the job once the row is committed
        self.scheduler.add(schedule)
        _LOGGER.info("schedule %s added (%s)", schedule.id, schedule.kind)
        return schedule.id

    def cancel_schedule(self, user_id: int, schedule_id: int) -> None:
        with self.db.session() as session:
            self._user(session, user_id, CONTENT_ROLES)
            schedule = session.get(Schedule, schedule_id)
            if schedule is None:
                raise NotFound(f"schedule {schedule_id}")
            schedule.active = False
        self.scheduler.remove(schedule_id)

    def _fire_schedule(self, schedule_id: int) -> None:
        with self.db.session() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None or not schedule.active:
                _LOGGER.warning("schedule %s fired but is gone or cancelled", schedule_id)
                return
            targets = zones.resolve_zones(session, schedule.zone_ids)
            broadcast = broadcasts.create_broadcast(
                session,
                text=schedule.bulletin.text,
                zone_list=targets,
                priority=protocol.Priority(schedule.priority),
                repeat=schedule.repeat,
                source="schedule",
                title=schedule.bulletin.title,
                schedule_id=schedule.id,
                recording_sha256=schedule.bulletin.recording_sha256,
            )
            broadcast_id = broadcast.id
        _LOGGER.info("schedule %s fired: broadcast %s", schedule_id, broadcast_id)
        self._render_and_dispatch(broadcast_id)

    # --- answer-back --------------------------------------------------------------------------

    def _on_status(self, status: protocol.DeviceStatus) -> None:
        with self.db.session() as session:
            broadcasts.apply_status(session, status)

    def _on_event(self, event: protocol.DeviceEvent) -> None:
        with self.db.session() as session:
            broadcasts.apply_event(session, event)

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def can_manage_content(user: User) -> bool:
        """Bulletins and schedules are the culture officer's (and the admin's) work."""
        return user.role in CONTENT_ROLES

    @staticmethod
    def _user(session: Session, user_id: int, roles: tuple[Role, ...]) -> User:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise PermissionDenied("unknown or disabled user")
        if user.role not in roles:
            raise PermissionDenied(f"role {user.role!r} may not do this")
        return user
