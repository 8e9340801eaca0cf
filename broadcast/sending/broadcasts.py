"""Broadcasts and their delivery records: creation, validation and answer-back bookkeeping.

Pure domain logic on a session; the service (`broadcast.service`) runs the slow parts (speech,
audio, MQTT) around it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Select, func, insert, or_, select, true
from sqlalchemy.orm import Session, joinedload, object_session

import tts
from broadcast import clock
from broadcast.const import (
    ENDED_BROADCAST_STATUSES,
    FINAL_DELIVERY_STATES,
    LIVE_SOURCE,
    MAX_RELAY_MINUTES,
    MAX_REPEAT,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    BroadcastStatus,
    DeliveryState,
)
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.fleet import receivers
from broadcast.people import permissions, targets, zones
from broadcast.people.permissions import Action
from broadcast.people.targets import Targets
from broadcast.store.membership import in_subquery
from broadcast.store.models import (
    Broadcast,
    BroadcastZone,
    Delivery,
    Device,
    DevicePresence,
    User,
    Zone,
    utcnow,
)
from wire.protocol import (
    ContentType,
    DeviceEvent,
    DeviceStatus,
    EventKind,
    PlayBody,
    Priority,
    ReceiverState,
)

_LOGGER = logging.getLogger(__name__)

# A delivery only moves forward: a late `received` never undoes `finished`. Playing and
# preempted share a rank, so a cut item may start again (resume) and still finish.
_STATE_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.RECEIVED: 1,
    DeliveryState.FETCHED: 2,
    DeliveryState.PLAYING: 3,
    DeliveryState.PREEMPTED: 3,
    DeliveryState.FINISHED: 4,
    DeliveryState.FAILED: 4,
    DeliveryState.STOPPED: 4,
}
_EVENT_STATE = {
    EventKind.RECEIVED: DeliveryState.RECEIVED,
    EventKind.FETCHED: DeliveryState.FETCHED,
    EventKind.STARTED: DeliveryState.PLAYING,
    EventKind.FINISHED: DeliveryState.FINISHED,
    EventKind.FAILED: DeliveryState.FAILED,
    EventKind.PREEMPTED: DeliveryState.PREEMPTED,
}
_STAMP_FIELD = {
    EventKind.RECEIVED: "received_at",
    EventKind.FETCHED: "fetched_at",
    EventKind.STARTED: "started_at",
    EventKind.PREEMPTED: "preempted_at",
    EventKind.FINISHED: "finished_at",
    EventKind.FAILED: "finished_at",
}
OPEN_STATES = [state.value for state in DeliveryState if state.value not in FINAL_DELIVERY_STATES]
# a receiver's words for an item a STOP ended (devices.timeline.STOPPED), and for its answer to
# the STOP itself (devices.scheduler reports `received` with this detail)
STOPPED_DETAIL = "stopped"
STOP_ACK_DETAIL = "stop"
# what `broadcast.sending.redelivery` writes on a delivery nobody answered (an answer still counts)
NO_ANSWER = "no answer"
_NOT_YET_ON_AIR = {
    DeliveryState.QUEUED.value,
    DeliveryState.RECEIVED.value,
    DeliveryState.FETCHED.value,
}
# statuses that settle to finished/partial once every receiver has answered
_SETTLING = {
    BroadcastStatus.DISPATCHED.value,
    BroadcastStatus.MISSED.value,
    BroadcastStatus.PARTIAL.value,  # a late answer to a delivery closed as unanswered
}


NO_SPEECH = N_(
    "không có gì để đọc: nội dung chỉ có ký hiệu, dấu câu hoặc ký tự điều khiển;"
    " hãy nhập lời thông báo bằng chữ"
)


def clean_text(text: object, field: str = "text", *, spoken: bool = True) -> str:
    """A text to store, stripped. `spoken`: it will be synthesized, so it must have something
    to say (`tts.has_speech`), refused now rather than failing after it was accepted (and, for
    a correction, after the original was stopped). A recording's label is not spoken."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            field, N_("chưa nhập nội dung (%(field)s): hãy nhập lời cần đọc"), "empty", field=field
        )
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(field, N_("dài tối đa %(max)s ký tự"), "too_long", max=MAX_TEXT_CHARS)
    if spoken and not tts.has_speech(text):
        raise ValidationError(field, NO_SPEECH, code="no_speech")
    return text.strip()


def clean_priority(value: object) -> Priority:
    try:
        return Priority(value)
    except ValueError as exc:
        choices = ", ".join(p.value for p in Priority)
        raise ValidationError(
            "priority",
            N_("%(value)s không phải một trong %(choices)s"),
            "unknown_choice",
            value=repr(value),
            choices=choices,
        ) from exc


def clean_repeat(value: object) -> int:
    try:
        repeat = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "repeat", N_("%(value)s không phải số nguyên"), "not_integer", value=repr(value)
        ) from exc
    if not 1 <= repeat <= MAX_REPEAT:
        raise ValidationError("repeat", N_("phải từ 1 đến %(max)s"), "out_of_range", max=MAX_REPEAT)
    return repeat


def clean_internal(value: object) -> bool:
    """The internal (nội bộ) choice, kept off the public replay page: true or false only (the
    pages read their checkbox into one)."""
    if not isinstance(value, bool):
        raise ValidationError("internal", N_("true hoặc false"), "not_a_flag")
    return value


def clean_relay_url(value: object) -> str:
    """A stream to relay (tiếp sóng): an http(s) URL receivers can open, nothing else."""
    text = str(value or "").strip()
    if (
        not _http_url(text)
        or len(text) > MAX_URL_CHARS
        or any(ch.isspace() or ord(ch) < 0x20 for ch in text)
    ):
        raise ValidationError(
            "relay_url",
            N_("địa chỉ luồng phát phải là một URL http:// hoặc https:// hợp lệ"),
            "invalid_url",
        )
    return text


def _http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # an unclosed "[" of an IPv6 address, a port beyond 65535
        return False


def clean_relay_minutes(value: object) -> int:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "minutes", N_("số phút tiếp sóng phải là số nguyên"), "not_integer"
        ) from exc
    if not 1 <= minutes <= MAX_RELAY_MINUTES:
        raise ValidationError(
            "minutes",
            N_("tiếp sóng từ 1 đến %(max)s phút"),
            "out_of_range",
            max=MAX_RELAY_MINUTES,
        )
    return minutes


def default_title(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= 80 else first_line[:79].rstrip() + "…"


def create_broadcast(
    session: Session,
    *,
    text: str,
    zone_list: Sequence[Zone],
    priority: Priority,
    repeat: int,
    source: str,
    devices: Sequence[Device] = (),
    created_by: User | None = None,
    title: str = "",
    schedule_id: int | None = None,
    recording_sha256: str | None = None,
    status: BroadcastStatus = BroadcastStatus.PENDING,
    delivery_state: DeliveryState = DeliveryState.QUEUED,
    delivery_detail: str = "",
    **fields: Any,
) -> Broadcast:
    """A broadcast (pending unless told) with one delivery per target receiver.

    `fields` are further `Broadcast` columns (a planned run's `occurrence_at`, `item_id`, …).
    """
    if len(title.strip()) > MAX_TITLE_CHARS:  # PostgreSQL would refuse it with a server error
        raise ValidationError(
            "title", N_("dài tối đa %(max)s ký tự"), "too_long", max=MAX_TITLE_CHARS
        )
    chosen = Targets(tuple(zone_list), tuple(devices))
    broadcast = Broadcast(
        recording_sha256=recording_sha256,
        title=title.strip() or default_title(text),
        text=text,
        priority=priority.value,
        repeat=repeat,
        zone_ids=chosen.zone_ids,
        device_ids=chosen.device_ids,
        source=source,
        schedule_id=schedule_id,
        created_by_id=created_by.id if created_by else None,
        status=status.value,
        **fields,
    )
    session.add(broadcast)
    session.flush()
    # one bulk INSERT (executemany, sent as multi-row statements): the unit of work writes a
    # row at a time, as it wants each new id back, a round trip per receiver
    now = utcnow()
    rows = [
        {
            "broadcast_id": broadcast.id,
            "device_id": device_id,
            "state": delivery_state.value,
            "detail": delivery_detail,
            "updated_at": now,
        }
        for device_id in chosen.receiver_ids()
    ]
    if rows:
        session.execute(insert(Delivery), rows)
    session.expire(broadcast, ["deliveries"])  # loaded from the rows just written when read
    return broadcast


def get_broadcast(session: Session, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound(N_("không có lượt phát %(id)s"), "not_found", id=broadcast_id)
    return broadcast


def recent_broadcasts(
    session: Session, limit: int = 20, where: ColumnElement[bool] | None = None
) -> list[Broadcast]:
    """The log, newest first; planned runs appear once they are due (or cancelled). `where`
    narrows it (`heard_condition`)."""
    now = utcnow()
    when = func.coalesce(Broadcast.occurrence_at, Broadcast.created_at)
    query = (
        select(Broadcast)
        .where(
            or_(
                Broadcast.occurrence_at.is_(None),
                Broadcast.occurrence_at <= now,
                Broadcast.status != BroadcastStatus.SCHEDULED.value,
            )
        )
        .order_by(when.desc(), Broadcast.id.desc())
        .limit(limit)
    )
    if where is not None:
        query = query.where(where)
    return list(session.scalars(query))


def corrections_of(session: Session, broadcast_id: int) -> list[Broadcast]:
    return list(
        session.scalars(
            select(Broadcast).where(Broadcast.corrects_id == broadcast_id).order_by(Broadcast.id)
        )
    )


def apply_event(session: Session, event: DeviceEvent) -> Delivery | None:
    """Advance a delivery from a receiver's answer-back; never moves a delivery backwards."""
    return apply_events(session, [event])[0]


def apply_events(session: Session, events: Sequence[DeviceEvent]) -> list[Delivery | None]:
    """Advance deliveries from receivers' answer-back, in arrival order: every delivery the
    events name is read in one query and each broadcast settled once, so a province's
    thousands of answers cost a few statements a batch, not a few per answer."""
    named = [event for event in events if event.broadcast_id is not None]
    found: dict[tuple[int, str], Delivery] = {}
    if named:
        rows = session.scalars(
            select(Delivery).where(
                Delivery.broadcast_id.in_({event.broadcast_id for event in named}),
                Delivery.device_id.in_({event.device_id for event in named}),
            )
        )
        found = {(delivery.broadcast_id, delivery.device_id): delivery for delivery in rows}
    advanced: list[Delivery | None] = []
    touched: dict[int, Delivery] = {}
    for event in events:
        delivery = (
            found.get((event.broadcast_id, event.device_id))
            if event.broadcast_id is not None
            else None
        )
        if delivery is None and event.broadcast_id is not None:
            _LOGGER.info(
                "event for broadcast %s from non-target %s", event.broadcast_id, event.device_id
            )
        if delivery is not None:
            _advance(delivery, event)
            touched[delivery.broadcast_id] = delivery
        advanced.append(delivery)
    for delivery in touched.values():
        _settle(delivery.broadcast)
    return advanced


def _advance(delivery: Delivery, event: DeviceEvent) -> None:
    """One answer applied to its delivery; a delivery never moves backwards."""
    at = clock.from_timestamp(event.at)
    new_state = _EVENT_STATE[event.kind]
    if event.kind is EventKind.FAILED and event.detail == STOPPED_DETAIL:
        new_state = DeliveryState.STOPPED
    stopped_before_air = (
        event.kind is EventKind.RECEIVED
        and event.detail == STOP_ACK_DETAIL
        and delivery.state in _NOT_YET_ON_AIR
    )
    if stopped_before_air:  # the receiver has the STOP: the item can never start there
        new_state = DeliveryState.STOPPED
    else:
        stamp_field = _STAMP_FIELD[event.kind]
        if getattr(delivery, stamp_field) is None:
            setattr(delivery, stamp_field, at)
    current = DeliveryState(delivery.state)
    open_record = delivery.state not in FINAL_DELIVERY_STATES or delivery.detail == NO_ANSWER
    unanswered = delivery.detail == NO_ANSWER
    if open_record and (_STATE_RANK[new_state] >= _STATE_RANK[current] or unanswered):
        delivery.state = new_state.value
        if stopped_before_air:
            delivery.detail = STOPPED_DETAIL
        elif event.detail or unanswered:
            delivery.detail = event.detail
    delivery.updated_at = utcnow()


def close_unanswered(delivery: Delivery, cancelled: bool) -> None:
    """Nobody will answer any more: the delivery ends (stopped if the broadcast was cancelled),
    marked so that a very late real answer still replaces it."""
    delivery.state = (DeliveryState.STOPPED if cancelled else DeliveryState.FAILED).value
    delivery.detail = NO_ANSWER
    delivery.updated_at = utcnow()
    _settle(delivery.broadcast)


def _settle(broadcast: Broadcast) -> None:
    """Once every receiver has answered, the broadcast is finished (or partial). A missed run
    settles too (receivers play their manifests without the server); a cancelled one is final.
    Counted in SQL (the session flushes what changed first): a province's broadcast has
    thousands of deliveries, and this runs on every batch of answers."""
    session = object_session(broadcast)
    if session is None:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Answers and the firing of a run meet here from two transactions at once (a run's
        # answer-back can reach a new leader the moment it fires the run): the row lock makes
        # the later one see the earlier one's status and deliveries, so neither leaves the
        # other's work unsettled. (SQLite lets one writer in at a time.)
        session.flush()
        status = session.scalar(
            select(Broadcast.status).where(Broadcast.id == broadcast.id).with_for_update()
        )
        if status != broadcast.status:
            session.refresh(broadcast)
    if broadcast.status not in _SETTLING:
        return
    total, still_open, not_finished = session.execute(
        select(
            func.count(),
            func.count().filter(Delivery.state.not_in(FINAL_DELIVERY_STATES)),
            func.count().filter(Delivery.state != DeliveryState.FINISHED.value),
        ).where(Delivery.broadcast_id == broadcast.id)
    ).one()
    if total and not still_open:
        broadcast.status = (
            BroadcastStatus.FINISHED if not not_finished else BroadcastStatus.PARTIAL
        ).value


class StatusChange(StrEnum):
    IGNORED = "ignored"  # unknown device, a stale offline, an older state re-sent
    UPDATED = "updated"
    RETURNED = "returned"  # online again (or rebooted): worth re-sending what it missed


def apply_status(session: Session, status: DeviceStatus) -> StatusChange:
    """Record a receiver's retained state; a late last-will of an older boot is ignored."""
    return apply_statuses(session, [status])[0]


def apply_statuses(session: Session, statuses: Sequence[DeviceStatus]) -> list[StatusChange]:
    """Record receivers' retained states in arrival order: the receivers (with their zones)
    read in one query, their comings and goings written in one INSERT."""
    wanted = {status.device_id for status in statuses}
    # the session holds its objects weakly: this list keeps them while the batch is applied
    devices = (
        list(
            session.scalars(
                select(Device).where(Device.id.in_(wanted)).options(joinedload(Device.zone))
            )
        )
        if wanted
        else []
    )
    by_id = {device.id: device for device in devices}
    presence: list[dict[str, Any]] = []
    with session.no_autoflush:  # one UPDATE for the batch, not one whenever a zone is read
        changes = [
            _record_status(by_id.get(status.device_id), status, presence) for status in statuses
        ]
    if presence:
        session.execute(insert(DevicePresence), presence)
    return changes


def _record_status(
    device: Device | None, status: DeviceStatus, presence: list[dict[str, Any]]
) -> StatusChange:
    """One state applied to its receiver; a change of presence is added to `presence`."""
    if device is None:
        _LOGGER.warning("state from unregistered device %s", status.device_id)
        return StatusChange.IGNORED
    if not status.online and device.online and status.boot_id != device.boot_id:
        _LOGGER.info("ignored stale offline of %s (boot %s)", device.id, status.boot_id)
        return StatusChange.IGNORED
    reported_at = clock.from_timestamp(status.at)
    if (
        status.online
        and status.boot_id == device.boot_id
        and device.last_seen is not None
        and reported_at < device.last_seen
    ):
        return StatusChange.IGNORED  # an older state re-sent after a reconnect
    returned = status.online and (not device.online or status.boot_id != device.boot_id)
    if status.online != device.online:
        # a last will carries the time of the connection it was set at: offline counts from now
        at = reported_at if status.online else utcnow()
        presence.append({"device_id": device.id, "at": at, "online": status.online})
    device.online = status.online
    device.state = status.state.value
    device.boot_id = status.boot_id
    device.current_broadcast_id = (
        status.current_broadcast if status.state is ReceiverState.PLAYING else None
    )
    device.last_seen = reported_at if status.online else device.last_seen
    if status.online:
        device.status_extra = dict(status.extra)
        device.health_ok = receivers.device_health_ok(device)
    return StatusChange.RETURNED if returned else StatusChange.UPDATED


def sent_media(broadcast: Broadcast) -> str | None:
    """The file a PLAY of `broadcast` carries: its rendered media, or before a live stream
    the chime (a live broadcast's own media is its recording, which no PLAY carries)."""
    if broadcast.content == ContentType.RELAY:
        return broadcast.lead_in_sha256 if broadcast.source == LIVE_SOURCE else None
    return broadcast.media_sha256


def play_body(
    broadcast: Broadcast,
    *,
    media_sha256: str | None,
    media_url: str,
    play_at: float,
    valid_until: float,
) -> PlayBody:
    """The PLAY of an announcement; re-sent copies are built from the same row, so they are
    the same item with the same times."""
    relay = broadcast.content == ContentType.RELAY
    live = relay and broadcast.source == LIVE_SOURCE
    carried = bool(media_sha256) and (live or not relay)  # a live stream's is its chime
    return PlayBody(
        broadcast_id=broadcast.id,
        item_id=broadcast.item_id or f"b{broadcast.id}",
        media_url=media_url if carried else "",
        media_sha256=(media_sha256 or "") if carried else "",
        priority=Priority(broadcast.priority),
        repeat=1 if relay else broadcast.repeat,
        title=broadcast.title[:200],
        play_at=play_at,
        valid_until=valid_until,
        content=ContentType.RELAY if relay else ContentType.MEDIA,
        relay_url=(broadcast.relay_url or "") if relay else "",
        duration_s=(broadcast.duration_s or 0.0) if relay else 0.0,
        live=live,
    )


def mark_dispatched(
    broadcast: Broadcast,
    media_sha256: str | None,
    engine: str,
    command_id: str,
    *,
    play_at: datetime | None = None,
    valid_until: datetime | None = None,
) -> None:
    broadcast.media_sha256 = media_sha256
    broadcast.tts_engine = engine
    broadcast.command_id = command_id
    broadcast.status = BroadcastStatus.DISPATCHED.value
    broadcast.dispatched_at = utcnow()
    broadcast.play_at = play_at
    broadcast.valid_until = valid_until
    broadcast.item_id = broadcast.item_id or f"b{broadcast.id}"
    _settle(broadcast)


def mark_due(broadcast: Broadcast) -> bool:
    """A planned run came due: the receivers play it from their manifests; the log says so.
    False if it is no longer waiting (cancelled, already fired)."""
    if broadcast.status != BroadcastStatus.SCHEDULED.value:
        return False
    broadcast.status = BroadcastStatus.DISPATCHED.value
    broadcast.dispatched_at = utcnow()
    _settle(broadcast)
    return True


def mark_missed(broadcast: Broadcast, reason: str) -> bool:
    """A planned run the server did not fire in time. Receivers may still have played it from
    their manifests: their answer-back fills its deliveries and can settle it."""
    if broadcast.status != BroadcastStatus.SCHEDULED.value:
        return False
    broadcast.status = BroadcastStatus.MISSED.value
    broadcast.error = reason[:2000]
    _settle(broadcast)
    return True


def mark_cancelled(broadcast: Broadcast) -> bool:
    """Stopped by a person; False (and nothing changed) if it had ended: a finished broadcast
    stays finished."""
    if has_ended(broadcast):
        return False
    broadcast.status = BroadcastStatus.CANCELLED.value
    broadcast.cancelled_at = utcnow()
    return True


def mark_failed(broadcast: Broadcast, error: str) -> None:
    broadcast.status = BroadcastStatus.FAILED.value
    broadcast.error = error[:2000]
    for delivery in broadcast.deliveries:
        if delivery.state not in FINAL_DELIVERY_STATES:
            delivery.state = DeliveryState.FAILED.value
            delivery.detail = "not dispatched"


# the zones whose commands sound on a village head's loudspeakers, and those receivers' ids
ListeningScope = tuple[set[str], set[str]]


def listening_scope(session: Session, user: User) -> ListeningScope | None:
    """What plays on the loudspeakers of `user`'s zone: broadcasts to it, its sub-zones or any
    zone above it (a commune-wide bulletin sounds in a village, a province one in a commune), or
    to its receivers. None for an installation-wide account, who sees the whole network."""
    heard = zones.heard_ids(session, user)
    if heard is None or user.zone is None:
        return None
    devices = session.scalars(zones.devices_select([user.zone.id]))
    return heard, set(devices)


def sounds_in(
    scope: ListeningScope | None, zone_ids: Sequence[str], device_ids: Sequence[str]
) -> bool:
    """Whether targets (zones and named receivers) reach the loudspeakers of `scope`."""
    if scope is None:
        return True
    heard, devices = scope
    return any(zone_id in heard for zone_id in zone_ids) or any(d in devices for d in device_ids)


def can_view(session: Session, user: User, broadcast: Broadcast) -> bool:
    """Who sent it, and everyone whose area it sounds in: a commune's accounts see their
    commune's broadcasts and those from above (a province's), never another commune's; an
    installation-wide account sees all."""
    return _heard(user, broadcast, listening_scope(session, user))


def _heard(user: User, broadcast: Broadcast, scope: ListeningScope | None) -> bool:
    if scope is None or broadcast.created_by_id == user.id:
        return True
    if sounds_in(scope, broadcast.zone_ids, broadcast.device_ids or []):
        return True
    return any(delivery.device_id in scope[1] for delivery in broadcast.deliveries)


def heard_condition(user: User) -> ColumnElement[bool]:
    """`can_view` in SQL for a zone-bound account: a commune's list must not be the newest
    broadcasts of the whole province filtered down to none of theirs. Subqueries of the tree,
    not lists of ids, so a province's account gets a query of the same size as a village's."""
    if user.zone is None:  # installation-wide: hears everything
        return true()
    above = [zone.id for zone in zones.ancestors_and_self(user.zone)]
    devices = zones.devices_select([user.zone.id])
    return or_(
        Broadcast.created_by_id == user.id,
        aimed_at_any(above),
        aimed_at_any(zones.subtree_select([user.zone.id])),
        delivered_to_any(devices),
    )


def aimed_at_any(zone_ids: Select[tuple[str]] | Iterable[str]) -> ColumnElement[bool]:
    """The broadcast was aimed at one of `zone_ids` (a subquery of the tree, or a few ids):
    read from the zones' side (`broadcast_zones`), not from every broadcast's JSON list."""
    if isinstance(zone_ids, Select):
        wanted = in_subquery(BroadcastZone.zone_id, zone_ids)
    else:
        wanted = BroadcastZone.zone_id.in_(sorted(set(zone_ids)))
    return Broadcast.id.in_(select(BroadcastZone.broadcast_id).where(wanted))


def delivered_to_any(devices: Select[tuple[str]]) -> ColumnElement[bool]:
    """The broadcast has a delivery to one of `devices`: read from the receivers' side
    (`ix_deliveries_device_broadcast`), so it costs their deliveries, not every broadcast's."""
    return Broadcast.id.in_(
        select(Delivery.broadcast_id).where(in_subquery(Delivery.device_id, devices))
    )


def has_ended(broadcast: Broadcast) -> bool:
    """Every receiver is done with it (or it was stopped, or never went out)."""
    return broadcast.status in ENDED_BROADCAST_STATUSES


def check_can_cancel(session: Session, user: User, broadcast: Broadcast) -> None:
    """Who may stop or correct a broadcast: someone who may announce and could have sent it to
    every one of its targets (a village head: not a commune-wide one). PermissionDenied else."""
    if not permissions.allowed(user.role, Action.CANCEL_BROADCAST):
        raise PermissionDenied(
            N_("người dùng “%(user)s” không được dừng hoặc đính chính lượt phát"),
            "may_not_cancel",
            user=user.username,
        )
    chosen = targets.stored(session, broadcast.zone_ids, broadcast.device_ids or [])
    targets.check_can_target(session, user, chosen, Action.CANCEL_BROADCAST)


@dataclass(frozen=True)
class CancelRights:
    """What a person may do with a broadcast on its page (the server enforces the same)."""

    stop: bool  # "Dừng phát": only while it may still sound
    correct: bool  # "Đính chính": also after it ended, not after it was stopped


def cancel_rights(session: Session, user: User, broadcast: Broadcast) -> CancelRights:
    try:
        check_can_cancel(session, user, broadcast)
    except PermissionDenied:
        return CancelRights(stop=False, correct=False)
    return CancelRights(
        stop=not has_ended(broadcast),
        correct=broadcast.status != BroadcastStatus.CANCELLED.value,
    )


def deliveries_in(broadcast: Broadcast, scope: ListeningScope | None) -> list[Delivery]:
    """The deliveries to the receivers of a listening scope (a village head's own), or all of
    them without one: a commune-wide broadcast shows a village head their village only."""
    if scope is None:
        return list(broadcast.deliveries)
    own_devices = scope[1]
    return [delivery for delivery in broadcast.deliveries if delivery.device_id in own_devices]


@dataclass(frozen=True)
class ReceiverPlace:
    name: str  # the receiver's name, e.g. "Cụm loa 01" (its id if it has none)
    zone: str  # the name of its zone, e.g. "Thôn 1": two villages both have a "Cụm loa 01"


def receiver_places(session: Session, device_ids: Sequence[str]) -> dict[str, ReceiverPlace]:
    """Names and zone names of receivers, in one query."""
    if not device_ids:
        return {}
    query = (
        select(Device.id, Device.name, Zone.name)
        .join(Zone, Zone.id == Device.zone_id)
        .where(Device.id.in_(list(device_ids)))
    )
    return {
        device_id: ReceiverPlace(name or device_id, zone_name)
        for device_id, name, zone_name in session.execute(query)
    }


def heard_devices(user: User) -> Select[tuple[str]] | None:
    """The receivers of `user`'s zone and below as a subquery (`delivery_counts`); None for an
    installation-wide account (every receiver)."""
    return None if user.zone is None else zones.devices_select([user.zone.id])


def delivery_counts(
    session: Session, broadcast_ids: Sequence[int], devices: Select[tuple[str]] | None = None
) -> dict[int, dict[str, int]]:
    """Deliveries per state of many broadcasts, counted in SQL: a list of 50 commune-wide
    broadcasts at a province is tens of thousands of deliveries, which no list needs one by one.
    With `devices` (`heard_devices`), only the deliveries to those receivers count."""
    counts: dict[int, dict[str, int]] = {broadcast_id: {} for broadcast_id in broadcast_ids}
    if broadcast_ids:
        query = (
            select(Delivery.broadcast_id, Delivery.state, func.count())
            .where(Delivery.broadcast_id.in_(broadcast_ids))
            .group_by(Delivery.broadcast_id, Delivery.state)
        )
        if devices is not None:
            query = query.where(Delivery.device_id.in_(devices))
        for broadcast_id, state, count in session.execute(query):
            counts[broadcast_id][state] = count
    return counts


def visible_broadcasts(
    session: Session, user: User, limit: int = 20, scope: ListeningScope | None = None
) -> list[Broadcast]:
    """The newest `limit` broadcasts `user` may see (`can_view`); `scope` is the user's
    `listening_scope` when the caller has it already."""
    if scope is None:
        scope = listening_scope(session, user)
    every = session.scalar(select(func.count(Zone.id))) or 0
    if scope is None or len(scope[0]) >= every:  # an account of the one province hears all
        return recent_broadcasts(session, limit)
    recent = recent_broadcasts(session, limit, heard_condition(user))
    return [b for b in recent if _heard(user, b, scope)]
