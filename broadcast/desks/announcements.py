"""The announcements desk (phát thông báo): urgent announcements, sent at once, stopped or
corrected.

An announcement is checked (who may reach which village, text, priority, repeat), written to the
broadcast log with its audit entry and handed to the outbox, which renders and sends it. A
recording from a phone is stored first and sent by its hash. A broadcast is stopped (dừng) on
every topic it went to, and a correction (đính chính) goes out as an emergency to the same
zones and receivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

import audio
from broadcast.const import LIVE_SOURCE, BroadcastStatus, ScheduleKind
from broadcast.desks import reporting
from broadcast.desks.records import BroadcastRecord
from broadcast.errors import (
    N_,
    Conflict,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from broadcast.people import accounts, audit, permissions, targets, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning
from broadcast.sending import broadcasts, rendering
from broadcast.sending.outbox import Outbox
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Delivery, Schedule, User, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CancelResult:
    cancelled_id: int
    correction_id: int | None
    stopped: bool = True  # False: it had ended already, only the correction went out


@dataclass(frozen=True)
class AnnouncementPlan:
    """What an announcement will do, for the person to confirm (nothing stored, nothing sent)."""

    text: str  # cleaned; "" for a recording
    zone_ids: list[str]
    device_ids: list[str]
    places: list[str]  # names of the zones where it sounds
    receivers: list[tuple[str, str]]  # (device id, name) of every receiver it reaches
    priority: str
    repeat: int


@dataclass(frozen=True)
class AnnouncementRecording:
    """A phone recording, validated, levelled and stored; sent only by `announce_recording`."""

    sha256: str
    duration_s: float


@dataclass(frozen=True)
class ReplaySource:
    """A live broadcast's recording offered to broadcast again ("Phát lại bản ghi"): as a
    phone recording, to the zones it went to unless the person chooses others."""

    recording: AnnouncementRecording
    zone_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    internal: bool = False  # the live broadcast was internal: so is its re-broadcast, unless told


# --- what the pages and the API show (plain data, read in one transaction) -----------------


@dataclass(frozen=True)
class ZoneChoice:
    id: str
    name: str
    receivers: int  # in it and in the zones below it
    depth: int = 0  # below the first zone offered (a form indents a commune's villages)


@dataclass(frozen=True)
class ReceiverChoice:
    id: str
    name: str  # "" when it has none


@dataclass(frozen=True)
class Reach:
    """Where a person may announce: the zones and receivers the form offers."""

    zones: tuple[ZoneChoice, ...]
    receivers: tuple[ReceiverChoice, ...]


@dataclass(frozen=True)
class BroadcastSummary:
    """A broadcast in a list: its visible deliveries as a count per state."""

    broadcast: BroadcastRecord
    counts: dict[str, int]


@dataclass(frozen=True)
class ReceiverProgress:
    device_id: str
    name: str  # its name, or its id when it has none
    zone: str  # its zone's name: two villages may both have a "Cụm loa 01"
    state: str
    at: datetime | None  # when it reached that state (a stopped one: when it was closed)
    detail: str | None


@dataclass(frozen=True)
class Progress:
    """The live delivery view of a broadcast, over the receivers its reader may see."""

    broadcast_id: int
    status: str
    counts: dict[str, int]  # receivers per state
    final: bool  # every delivery is final: nothing more will change
    ended: bool  # the broadcast has ended: nothing left to stop
    receivers: tuple[ReceiverProgress, ...]


@dataclass(frozen=True)
class BroadcastLink:
    id: int
    title: str


@dataclass(frozen=True)
class BroadcastPage:
    """Everything a broadcast's page shows."""

    broadcast: BroadcastRecord
    progress: Progress
    zone_names: dict[str, str]  # zone id → name, of the zones the reader sees and above
    corrected: BroadcastLink | None  # the broadcast this one corrects
    corrections: tuple[BroadcastLink, ...]  # the corrections of this one
    rights: broadcasts.CancelRights
    replay: bool  # "Phát lại bản ghi": a live broadcast's recording, for one who may announce


@dataclass(frozen=True)
class LiveView:
    broadcast: BroadcastRecord
    progress: Progress


# the moment a delivery reached its state (a stopped one: when it was closed)
_STATE_STAMP = {
    "received": "received_at",
    "fetched": "fetched_at",
    "playing": "started_at",
    "preempted": "preempted_at",
    "finished": "finished_at",
    "failed": "finished_at",
}
_UNSTAMPED = ("queued", "received")  # no time of their own: not yet answered, or just heard


class AnnouncementDesk:
    """`service.announcements`: what a person sends at once, and stops or corrects."""

    def __init__(
        self,
        db: Database,
        media: audio.MediaStore,
        outbox: Outbox,
        programme_changed: Callable[[], None],
    ) -> None:
        self._db = db
        self._media = media
        self._outbox = outbox
        self._programme_changed = programme_changed

    def announce(
        self,
        user_id: int,
        text: object,
        zone_ids: object,
        priority: object = protocol.Priority.EMERGENCY.value,
        repeat: object = 1,
        title: str = "",
        device_ids: object = None,
        corrects_id: int | None = None,
        recording_sha256: str | None = None,
        internal: object = False,
    ) -> int:
        """Validate, authorize and queue an announcement for synthesis and dispatch at once
        (given `recording_sha256`, a stored recording plays instead of the spoken text).
        `internal` (nội bộ) keeps it off the commune's public replay page: whoever may announce
        may choose it, as it only hides their own notice."""
        return self._announce(
            Action.ANNOUNCE, user_id, text, zone_ids, priority, repeat, title, device_ids,
            corrects_id, recording_sha256, broadcasts.clean_internal(internal),
        )  # fmt: skip

    def _announce(
        self,
        action: Action,
        user_id: int,
        text: object,
        zone_ids: object,
        priority: object,
        repeat: object,
        title: str,
        device_ids: object,
        corrects_id: int | None,
        recording_sha256: str | None,
        internal: bool = False,
    ) -> int:
        """`announce`, or a correction (`action` CANCEL_BROADCAST: whoever may stop a broadcast
        corrects it, a province editor their province's emergency included)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, action)
            clean = broadcasts.clean_text(text, spoken=recording_sha256 is None)
            level = broadcasts.clean_priority(priority)
            count = broadcasts.clean_repeat(repeat)
            chosen = targets.resolve(session, zone_ids, device_ids)
            targets.check_can_target(session, user, chosen, action)
            broadcast = broadcasts.create_broadcast(
                session,
                text=clean,
                zone_list=chosen.zones,
                devices=chosen.devices,
                priority=level,
                repeat=count,
                source="correction" if corrects_id else "announcement",
                created_by=user,
                title=title,
                corrects_id=corrects_id,
                recording_sha256=recording_sha256,
                internal=internal,
            )
            broadcast_id = broadcast.id
            audit.record(
                session,
                user,
                audit.Action.ANNOUNCE,
                f"broadcast:{broadcast_id}",
                {
                    "zones": chosen.zone_ids,
                    "devices": chosen.device_ids,
                    "priority": level.value,
                    "repeat": count,
                    "text": clean[:500],
                    "corrects": corrects_id,
                    "recording": recording_sha256,
                    "internal": internal,
                },
            )
        _LOGGER.info("announcement %s queued for %s %s", broadcast_id, zone_ids, device_ids or "")
        self._outbox.send(broadcast_id)
        return broadcast_id

    def plan(
        self,
        user_id: int,
        text: object,
        zone_ids: object,
        priority: object = protocol.Priority.EMERGENCY.value,
        repeat: object = 1,
        device_ids: object = None,
    ) -> AnnouncementPlan:
        """Every check `announce` makes (role, text, priority, repeat, targets and who may reach
        them), without storing or sending anything: what the confirm step shows. `text=None`
        for a recording."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.ANNOUNCE)
            clean = "" if text is None else broadcasts.clean_text(text)
            level = broadcasts.clean_priority(priority)
            count = broadcasts.clean_repeat(repeat)
            chosen = targets.resolve(session, zone_ids, device_ids)
            targets.check_can_target(session, user, chosen)
            return AnnouncementPlan(
                text=clean,
                zone_ids=chosen.zone_ids,
                device_ids=chosen.device_ids,
                places=[zone.name for zone in chosen.footprint()],
                receivers=[(device.id, device.name or device.id) for device in chosen.receivers()],
                priority=level.value,
                repeat=count,
            )

    def store_recording(
        self, user_id: int, upload: Path, original_name: str
    ) -> AnnouncementRecording:
        """A recording from a phone for an announcement: validated, loudness-normalized and
        transcoded by `audio.import_recording`, then kept in the media store (not sent)."""
        with self._db.session() as session:
            accounts.require_user(session, user_id, Action.ANNOUNCE)
        stored = rendering.store_recording(self._media, upload, original_name)
        return AnnouncementRecording(stored.sha256, stored.duration_s)

    def announce_recording(
        self,
        user_id: int,
        recording_sha256: object,
        zone_ids: object,
        priority: object = protocol.Priority.EMERGENCY.value,
        repeat: object = 1,
        title: str = "",
        device_ids: object = None,
        internal: object = False,
    ) -> int:
        """Send a stored recording (`store_recording`) as an announcement: the same
        authorization, audit entry and dispatch as `announce` (and its `internal`)."""
        try:
            stored = isinstance(recording_sha256, str) and self._media.exists(recording_sha256)
        except audio.AudioError:
            stored = False
        if not stored:
            raise ValidationError(
                "recording", N_("bản ghi âm chưa được lưu; hãy ghi lại"), "not_stored"
            )
        sha256 = str(recording_sha256)
        seconds = audio.probe_duration_s(self._media.path(sha256))
        label = title.strip() or f"Thông báo ghi âm ({int(seconds) // 60}:{int(seconds) % 60:02d})"
        return self.announce(
            user_id,
            label,
            zone_ids,
            priority,
            repeat,
            title=label,
            device_ids=device_ids,
            recording_sha256=sha256,
            internal=internal,
        )

    def cancel(
        self, user_id: int, broadcast_id: int, correction_text: object = None
    ) -> CancelResult:
        """Dừng / đính chính: STOP the broadcast on every target at once, mark it cancelled
        (a series ends with it and leaves the manifests) and, given a text, announce the
        correction as an emergency to the same targets. A broadcast that has ended keeps its
        status: stopping it is refused (nothing plays any more), a correction still goes out."""
        correction = None  # checked before anything is stopped: a "~" must not stop and fail
        if isinstance(correction_text, str) and correction_text.strip():
            correction = broadcasts.clean_text(correction_text, "correction")
        elif correction_text not in (None, ""):
            raise ValidationError("correction", N_("lời đính chính phải là văn bản"), "not_text")
        if not self._outbox.connected:
            raise ServiceUnavailable(N_("máy chủ này chạy không có kết nối MQTT"), "no_broker")
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.CANCEL_BROADCAST)
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            if not broadcasts.can_view(session, user, broadcast):
                raise NotFound(N_("không có lượt phát %(id)s"), "not_found", id=broadcast_id)
            broadcasts.check_can_cancel(session, user, broadcast)
            if broadcast.status == BroadcastStatus.CANCELLED.value:
                raise Conflict(
                    "broadcast", N_("lượt phát này đã được dừng trước đó"), "already_cancelled"
                )
            ended = broadcasts.has_ended(broadcast)
            if ended and correction is None:
                raise Conflict(
                    "broadcast",
                    N_("lượt phát này đã kết thúc, không còn gì để dừng"),
                    "ended",
                )
            zone_ids, device_ids = list(broadcast.zone_ids), list(broadcast.device_ids or [])
            title, repeat = broadcast.title, broadcast.repeat
            internal = broadcast.internal  # an internal notice's correction stays internal too
            planned = broadcast.schedule_id is not None and not ended
        if not ended and self._outbox.stop(
            broadcast_id,
            zone_ids,
            device_ids,
            lambda session, stopped: self._cancelled(session, user_id, stopped, correction),
        ):
            _LOGGER.warning("broadcast %s cancelled by user %s", broadcast_id, user_id)
        if planned:
            self._programme_changed()
        correction_id = None
        if correction is not None:
            correction_id = self._announce(
                Action.CANCEL_BROADCAST,
                user_id,
                correction,
                zone_ids,
                protocol.Priority.EMERGENCY.value,
                repeat,
                f"Đính chính: {title}"[:300],
                device_ids,
                broadcast_id,
                None,
                internal,
            )
        return CancelResult(broadcast_id, correction_id, stopped=not ended)

    @staticmethod
    def _cancelled(
        session: Session, user_id: int, broadcast: Broadcast, correction: str | None
    ) -> None:
        """What a stop writes with the cancelled status: its audit entry, a series' end."""
        audit.record(
            session,
            session.get(User, user_id),
            audit.Action.CANCEL,
            f"broadcast:{broadcast.id}",
            {"correction": correction[:500] if correction else None},
        )
        schedule = session.get(Schedule, broadcast.schedule_id or 0)
        if (
            schedule is not None
            and schedule.kind == ScheduleKind.SERIES
            and schedule.ended_at is None
        ):
            planning.end_schedule(session, schedule, utcnow())
            _LOGGER.info("series %s ended by cancelling %s", schedule.id, broadcast.id)

    def can_announce(self, user_id: int) -> bool:
        """Whether the user is active and their role may announce: pages and the API refuse
        before reading what was sent (an upload may be large)."""
        with self._db.session() as session:
            user = session.get(User, user_id)
            return (
                user is not None and user.active and permissions.allowed(user.role, Action.ANNOUNCE)
            )

    # --- reading -------------------------------------------------------------------------------

    def reach(self, user_id: int) -> Reach:
        """The zones and receivers the user may announce to; PermissionDenied when they may
        not announce, or there is nowhere they may."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.ANNOUNCE)
            reachable = reporting.tree_ordered(zones.reachable_zones(session, user))
            if not reachable:
                raise PermissionDenied(
                    N_("người dùng “%(user)s” không được thông báo tới khu vực nào"),
                    "no_reach",
                    user=user.username,
                )
            return Reach(
                zones=tuple(
                    ZoneChoice(zone.id, zone.name, len(zones.target_devices([zone])), depth)
                    for zone, depth in reporting.with_depths(reachable)
                ),
                receivers=tuple(
                    ReceiverChoice(device.id, device.name or "")
                    for device in zones.target_devices(reachable)
                ),
            )

    def broadcast(self, user_id: int, broadcast_id: int) -> BroadcastRecord:
        """A broadcast with the deliveries the user may see; NotFound if they may not see it."""
        with self._db.session() as session:
            user, broadcast = self._visible(session, user_id, broadcast_id)
            scope = broadcasts.listening_scope(session, user)
            return _record(broadcast, broadcasts.deliveries_in(broadcast, scope))

    def recent(self, user_id: int, limit: int) -> list[BroadcastSummary]:
        """The newest `limit` broadcasts the user may see, their deliveries counted per state
        (a village head: only their own receivers)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.VIEW)
            rows = broadcasts.visible_broadcasts(session, user, limit)
            devices = broadcasts.heard_devices(user)
            counts = broadcasts.delivery_counts(session, [row.id for row in rows], devices)
            return [BroadcastSummary(_record(row, ()), counts[row.id]) for row in rows]

    def page(self, user_id: int, broadcast_id: int) -> BroadcastPage:
        """What a broadcast's page shows; NotFound if the user may not see it."""
        with self._db.session() as session:
            user, broadcast = self._visible(session, user_id, broadcast_id)
            scope = broadcasts.listening_scope(session, user)
            corrected = (
                session.get(Broadcast, broadcast.corrects_id) if broadcast.corrects_id else None
            )
            return BroadcastPage(
                broadcast=_record(broadcast, broadcasts.deliveries_in(broadcast, scope)),
                progress=_progress(session, broadcast, scope),
                zone_names=zones.names_with_ancestors(zones.visible_zones(session, user)),
                corrected=BroadcastLink(corrected.id, corrected.title) if corrected else None,
                corrections=tuple(
                    BroadcastLink(row.id, row.title)
                    for row in broadcasts.corrections_of(session, broadcast_id)
                ),
                rights=broadcasts.cancel_rights(session, user, broadcast),
                replay=_replayable(broadcast) and permissions.allowed(user.role, Action.ANNOUNCE),
            )

    def replay_source(self, user_id: int, broadcast_id: int) -> ReplaySource:
        """The recording of a live broadcast the user may see, to send again through the
        announcement form (its confirm step and checks, like any recording)."""
        with self._db.session() as session:
            accounts.require_user(session, user_id, Action.ANNOUNCE)
            _user, broadcast = self._visible(session, user_id, broadcast_id)
            if not _replayable(broadcast) or not self._media.exists(broadcast.media_sha256 or ""):
                raise Conflict(
                    "broadcast", N_("lượt phát này không có bản ghi để phát lại"), "no_recording"
                )
            sha256 = str(broadcast.media_sha256)
            chosen = (tuple(broadcast.zone_ids), tuple(broadcast.device_ids or ()))
            internal = broadcast.internal
        seconds = audio.probe_duration_s(self._media.path(sha256))
        return ReplaySource(AnnouncementRecording(sha256, seconds), *chosen, internal)

    def live(self, user_id: int, broadcast_id: int) -> LiveView:
        """The broadcast and its delivery view, read together; NotFound if not visible."""
        with self._db.session() as session:
            user, broadcast = self._visible(session, user_id, broadcast_id)
            scope = broadcasts.listening_scope(session, user)
            return LiveView(
                _record(broadcast, broadcasts.deliveries_in(broadcast, scope)),
                _progress(session, broadcast, scope),
            )

    def watch(self, user_id: int, broadcast_id: int) -> Callable[[], Progress | None]:
        """For a stream that reads a broadcast's delivery view again and again: who may see it
        and which receivers are checked once, here (NotFound); each call then reads the view,
        or None once the broadcast is gone."""
        with self._db.session() as session:
            user, _broadcast = self._visible(session, user_id, broadcast_id)
            scope = broadcasts.listening_scope(session, user)

        def read() -> Progress | None:
            with self._db.session() as session:
                broadcast = session.get(Broadcast, broadcast_id)
                return None if broadcast is None else _progress(session, broadcast, scope)

        return read

    @staticmethod
    def _visible(session: Session, user_id: int, broadcast_id: int) -> tuple[User, Broadcast]:
        user = accounts.require_user(session, user_id, Action.VIEW)
        broadcast = broadcasts.get_broadcast(session, broadcast_id)
        if not broadcasts.can_view(session, user, broadcast):
            raise NotFound(N_("không có lượt phát %(id)s"), "not_found", id=broadcast_id)
        return user, broadcast


def _replayable(broadcast: Broadcast) -> bool:
    """A live broadcast's recording is kept as its media: it can be sent again."""
    return broadcast.source == LIVE_SOURCE and bool(broadcast.media_sha256)


def _record(broadcast: Broadcast, deliveries: Sequence[Delivery]) -> BroadcastRecord:
    return BroadcastRecord.of(broadcast, deliveries)


def _progress(
    session: Session, broadcast: Broadcast, scope: broadcasts.ListeningScope | None
) -> Progress:
    """The delivery view of the receivers in `scope` (all without one), each named with its
    zone, with when it reached its state."""
    shown = broadcasts.deliveries_in(broadcast, scope)
    places = broadcasts.receiver_places(session, [delivery.device_id for delivery in shown])
    receivers = []
    counts: dict[str, int] = {}
    for delivery in shown:
        stamp = _STATE_STAMP.get(delivery.state)
        at = getattr(delivery, stamp) if stamp else None
        if at is None and delivery.state not in _UNSTAMPED:
            at = delivery.updated_at
        counts[delivery.state] = counts.get(delivery.state, 0) + 1
        place = places.get(delivery.device_id)
        receivers.append(
            ReceiverProgress(
                device_id=delivery.device_id,
                name=place.name if place else delivery.device_id,
                zone=place.zone if place else "",
                state=delivery.state,
                at=at,
                detail=delivery.detail or None,
            )
        )
    return Progress(
        broadcast_id=broadcast.id,
        status=broadcast.status,
        counts=counts,
        final=all(item.state not in broadcasts.OPEN_STATES for item in receivers),
        ended=broadcasts.has_ended(broadcast),
        receivers=tuple(receivers),
    )
