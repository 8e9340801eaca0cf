"""Receivers (cụm loa) at scale: their health rule (media, clock, and whether they hear their
zones), and what pages and the API read of them.

A province has thousands of receivers. What a page shows of them is counted and filtered in
SQL (counts per zone, the ones needing attention, one page of a list), so a request's cost does
not grow with the province.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, not_, or_, select
from sqlalchemy.orm import Session

from broadcast.people import zones
from broadcast.store.models import Device

_LOGGER = logging.getLogger(__name__)

CLOCK_WARN_S = 5.0  # receivers start together only if their clocks agree within seconds


def number(value: object) -> float | None:
    """A finite number from a heartbeat field, or None (a receiver's report is not trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Health:
    """What a heartbeat (`devices.heartbeat.status_extra`) says of the receiver's readiness:
    every file of its manifest cached, its clock within CLOCK_WARN_S. A field the receiver did
    not report (None) is no alarm."""

    cache_complete: float | None  # share of the manifest's media already cached
    clock_offset_s: float | None

    @property
    def cache_ok(self) -> bool:
        return self.cache_complete is None or self.cache_complete >= 1.0

    @property
    def clock_ok(self) -> bool:
        return self.clock_offset_s is None or abs(self.clock_offset_s) <= CLOCK_WARN_S


def health(extra: Mapping[str, Any] | None) -> Health:
    extra = extra or {}
    return Health(number(extra.get("cache_complete")), number(extra.get("clock_offset_s")))


def health_ok(extra: Mapping[str, Any] | None) -> bool:
    """The heartbeat's part of `Device.health_ok` (`device_health_ok` adds the zones)."""
    found = health(extra)
    return found.cache_ok and found.clock_ok


def _names(value: object) -> tuple[str, ...] | None:
    """A list of short strings from a heartbeat field, or None (absent, or not a list)."""
    if not isinstance(value, list):
        return None
    return tuple(str(item)[:200] for item in value[:50])


@dataclass(frozen=True)
class ZoneCheck:
    """Whether a receiver hears the zones it is registered in (its zone and every zone above).

    A receiver listens to the zones of its config file and the broker lets it hear the zones of
    its access list: both are written when it is registered and go stale when its zones change
    (or an old config is copied back). mosquitto grants a forbidden subscription and drops
    what it carries, so such a receiver would hear nothing and nobody would be told. A receiver
    older than this check does not report its zones (`listening` None): no alarm.
    """

    device_id: str
    expected: tuple[str, ...]  # the zones it is registered in
    listening: tuple[str, ...] | None  # its heartbeat's `zones`: what its config subscribes to
    refused_topics: tuple[str, ...]  # its heartbeat's `refused_topics`: the broker said no
    broker: tuple[str, ...] | None  # `Device.broker_zones`: what the access list last allowed

    @property
    def not_listening(self) -> tuple[str, ...]:
        """Registered zones its config does not subscribe to: it misses their commands."""
        if self.listening is None:
            return ()
        return tuple(zone for zone in self.expected if zone not in self.listening)

    @property
    def listening_elsewhere(self) -> tuple[str, ...]:
        """Zones its config subscribes to but it is not registered in: it would play them."""
        if self.listening is None:
            return ()
        return tuple(zone for zone in self.listening if zone not in self.expected)

    @property
    def config_ok(self) -> bool:
        return not self.not_listening and not self.listening_elsewhere

    @property
    def not_allowed(self) -> tuple[str, ...]:
        """Registered zones the broker's access list, as last written, does not allow."""
        if self.broker is None:
            return ()
        return tuple(zone for zone in self.expected if zone not in self.broker)

    @property
    def broker_ok(self) -> bool:
        return not self.not_allowed and not self.refused_topics

    @property
    def ok(self) -> bool:
        return self.config_ok and self.broker_ok


def zone_check(device: Device) -> ZoneCheck:
    """What the server registered `device` in against what it hears (heartbeat, access list)."""
    extra = device.status_extra or {}
    expected = tuple(zone.id for zone in zones.ancestors_and_self(device.zone))
    broker = None if device.broker_zones is None else _names(device.broker_zones)
    return ZoneCheck(
        device.id,
        expected,
        _names(extra.get("zones")),
        _names(extra.get("refused_topics")) or (),
        broker,
    )


def device_health_ok(device: Device) -> bool:
    """The rule `Device.health_ok` keeps, so pages count receivers needing attention in SQL:
    media cached, clock in step, and hearing the zones it is registered in."""
    return health_ok(device.status_extra) and zone_check(device).ok


def needs_attention() -> ColumnElement[bool]:
    """Offline, missing media, a clock out of step or deaf to its zones: look at it."""
    return or_(not_(Device.online), not_(Device.health_ok))


def _in_zones(query: Select[Any], zone_ids: Collection[str] | None) -> Select[Any]:
    """`zone_ids` from `zones.subtree_ids`: None means every zone, so no filter at all."""
    return query if zone_ids is None else query.where(Device.zone_id.in_(zone_ids))


@dataclass(frozen=True)
class ZoneCounts:
    zone_id: str
    total: int
    online: int
    playing: int
    attention: int


def counts_by_zone(session: Session, zone_ids: Collection[str] | None) -> list[ZoneCounts]:
    """Per zone: receivers, online, playing, needing attention; most attention first."""

    def count_where(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = _in_zones(
        select(
            Device.zone_id,
            func.count(),
            count_where(Device.online),
            count_where(Device.state == "playing"),
            count_where(needs_attention()),
        ).group_by(Device.zone_id),
        zone_ids,
    )
    counts = [ZoneCounts(*row) for row in session.execute(query)]
    return sorted(counts, key=lambda counts: (-counts.attention, counts.zone_id))


def needing_attention(
    session: Session, zone_ids: Collection[str] | None, limit: int
) -> list[Device]:
    """At most `limit` receivers needing attention, offline ones first, then by id."""
    query = select(Device).where(needs_attention()).order_by(Device.online, Device.id)
    return list(session.scalars(_in_zones(query, zone_ids).limit(limit)))


def list_devices(
    session: Session,
    zone_ids: Collection[str] | None,
    *,
    offset: int,
    limit: int,
    online: bool | None = None,
) -> list[Device]:
    """One page of receivers by id (`count_devices` says how many match in all)."""
    query = _matching(zone_ids, online).order_by(Device.id).offset(offset).limit(limit)
    return list(session.scalars(query))


def count_devices(
    session: Session, zone_ids: Collection[str] | None, online: bool | None = None
) -> int:
    query = _matching(zone_ids, online).with_only_columns(func.count(Device.id))
    return session.scalar(query) or 0


def _matching(zone_ids: Collection[str] | None, online: bool | None) -> Select[Any]:
    query = _in_zones(select(Device), zone_ids)
    return query if online is None else query.where(Device.online == online)
