"""Broadcasts and their delivery records: creation, validation and answer-back bookkeeping.

Pure domain logic on a session; the service (`broadcast.service`) runs the slow parts (speech,
audio, MQTT) around it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import clock, zones
from broadcast.const import MAX_REPEAT, MAX_TEXT_CHARS, BroadcastStatus, DeliveryState
from broadcast.errors import NotFound, ValidationError
from broadcast.models import Broadcast, Delivery, Device, User, Zone, utcnow
from devices.protocol import DeviceEvent, DeviceStatus, EventKind, Priority, ReceiverState

_LOGGER = logging.getLogger(__name__)

_STATE_RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.RECEIVED: 1,
    DeliveryState.FETCHED: 2,
    DeliveryState.PLAYING: 3,
    DeliveryState.FINISHED: 4,
    DeliveryState.FAILED: 4,
}
_EVENT_STATE = {
    EventKind.RECEIVED: DeliveryState.RECEIVED,
    EventKind.FETCHED: DeliveryState.FETCHED,
    EventKind.STARTED: DeliveryState.PLAYING,
    EventKind.FINISHED: DeliveryState.FINISHED,
    EventKind.FAILED: DeliveryState.FAILED,
}
_TERMINAL = {DeliveryState.FINISHED.value, DeliveryState.FAILED.value}


def clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text", "the announcement text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError("text", f"at most {MAX_TEXT_CHARS} characters")
    return text.strip()


def clean_priority(value: object) -> Priority:
    try:
        return Priority(value)
    except ValueError as exc:
        choices = ", ".join(p.value for p in Priority)
        raise ValidationError("priority", f"{value!r} is not one of {choices}") from exc


def clean_repeat(value: object) -> int:
    try:
        repeat = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ValidationError("repeat", f"{value!r} is not a whole number") from exc
    if not 1 <= repeat <= MAX_REPEAT:
        raise ValidationError("repeat", f"must be 1 to {MAX_REPEAT}")
    return repeat


def default_title(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= 80 else first_line[:79].rstrip() + "…"


def minimal_zones(targets: Sequence[Zone]) -> list[Zone]:
    """Drop zones already covered by a targeted ancestor, so no receiver gets a command twice."""
    chosen = set(targets)
    return [z for z in targets if not any(a in chosen for a in zones.ancestors_and_self(z)[1:])]


def create_broadcast(
    session: Session,
    *,
    text: str,
    zone_list: Sequence[Zone],
    priority: Priority,
    repeat: int,
    source: str,
    created_by: User | None = None,
    title: str = "",
    schedule_id: int | None = None,
    recording_sha256: str | None = None,
) -> Broadcast:
    """A pending broadcast with one queued delivery per target receiver."""
    broadcast = Broadcast(
        recording_sha256=recording_sha256,
        title=title.strip() or default_title(text),
        text=text,
        priority=priority.value,
        repeat=repeat,
        zone_ids=[zone.id for zone in minimal_zones(zone_list)],
        source=source,
        schedule_id=schedule_id,
        created_by_id=created_by.id if created_by else None,
        status=BroadcastStatus.PENDING.value,
    )
    session.add(broadcast)
    session.flush()
    for device in zones.target_devices(zone_list):
        session.add(
            Delivery(broadcast_id=broadcast.id, device_id=device.id, state=DeliveryState.QUEUED)
        )
    session.flush()
    return broadcast


def get_broadcast(session: Session, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound(f"broadcast {broadcast_id}")
    return broadcast


def recent_broadcasts(session: Session, limit: int = 20) -> list[Broadcast]:
    return list(session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)))


def apply_event(session: Session, event: DeviceEvent) -> Delivery | None:
    """Advance a delivery from a receiver's answer-back; never moves a delivery backwards."""
    if event.broadcast_id is None:
        return None
    delivery = session.scalar(
        select(Delivery).where(
            Delivery.broadcast_id == event.broadcast_id, Delivery.device_id == event.device_id
        )
    )
    if delivery is None:
        _LOGGER.info(
            "event for broadcast %s from non-target %s", event.broadcast_id, event.device_id
        )
        return None
    at = clock.from_timestamp(event.at)
    new_state = _EVENT_STATE[event.kind]
    stamp_field = {
        EventKind.RECEIVED: "received_at",
        EventKind.FETCHED: "fetched_at",
        EventKind.STARTED: "started_at",
        EventKind.FINISHED: "finished_at",
        EventKind.FAILED: "finished_at",
    }[event.kind]
    if getattr(delivery, stamp_field) is None:
        setattr(delivery, stamp_field, at)
    current = DeliveryState(delivery.state)
    if delivery.state not in _TERMINAL and _STATE_RANK[new_state] >= _STATE_RANK[current]:
        delivery.state = new_state.value
        if event.detail:
            delivery.detail = event.detail
    delivery.updated_at = utcnow()
    _settle(delivery.broadcast)
    return delivery


def _settle(broadcast: Broadcast) -> None:
    """Once every receiver has answered, the broadcast is finished (or partial)."""
    if broadcast.status != BroadcastStatus.DISPATCHED.value or not broadcast.deliveries:
        return
    states = [d.state for d in broadcast.deliveries]
    if all(state in _TERMINAL for state in states):
        all_ok = all(state == DeliveryState.FINISHED.value for state in states)
        broadcast.status = (BroadcastStatus.FINISHED if all_ok else BroadcastStatus.PARTIAL).value


def apply_status(session: Session, status: DeviceStatus) -> Device | None:
    """Record a receiver's retained state; a late last-will of an older boot is ignored."""
    device = session.get(Device, status.device_id)
    if device is None:
        _LOGGER.warning("state from unregistered device %s", status.device_id)
        return None
    if not status.online and device.online and status.boot_id != device.boot_id:
        _LOGGER.info("ignored stale offline of %s (boot %s)", device.id, status.boot_id)
        return device
    reported_at = clock.from_timestamp(status.at)
    if (
        status.online
        and status.boot_id == device.boot_id
        and device.last_seen is not None
        and reported_at < device.last_seen
    ):
        return device  # an older state re-sent after a reconnect
    device.online = status.online
    device.state = status.state.value
    device.boot_id = status.boot_id
    device.current_broadcast_id = (
        status.current_broadcast if status.state is ReceiverState.PLAYING else None
    )
    device.last_seen = reported_at if status.online else device.last_seen
    return device


def mark_dispatched(broadcast: Broadcast, media_sha256: str, engine: str, command_id: str) -> None:
    broadcast.media_sha256 = media_sha256
    broadcast.tts_engine = engine
    broadcast.command_id = command_id
    broadcast.status = BroadcastStatus.DISPATCHED.value
    broadcast.dispatched_at = utcnow()
    _settle(broadcast)


def mark_failed(broadcast: Broadcast, error: str) -> None:
    broadcast.status = BroadcastStatus.FAILED.value
    broadcast.error = error[:2000]
    for delivery in broadcast.deliveries:
        if delivery.state not in _TERMINAL:
            delivery.state = DeliveryState.FAILED.value
            delivery.detail = "not dispatched"


def can_view(session: Session, user: User, broadcast: Broadcast) -> bool:
    """A village head sees only broadcasts that reached their village; others see all."""
    visible = {zone.id for zone in zones.visible_zones(session, user)}
    if broadcast.created_by_id == user.id:
        return True
    if all(zone_id in visible for zone_id in broadcast.zone_ids):
        return True
    targeted = {delivery.device_id for delivery in broadcast.deliveries}
    own_devices = {
        device.id
        for device in zones.target_devices([zone for zone in zones.visible_zones(session, user)])
    }
    return bool(targeted & own_devices)


def visible_broadcasts(session: Session, user: User, limit: int = 20) -> list[Broadcast]:
    return [b for b in recent_broadcasts(session, limit * 5) if can_view(session, user, b)][:limit]
