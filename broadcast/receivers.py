"""Receivers (cụm loa) at scale: their health rule, and what pages and the API read of them.

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

from broadcast.models import Device

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
    """The rule `Device.health_ok` keeps, so pages count receivers needing attention in SQL."""
    found = health(extra)
    return found.cache_ok and found.clock_ok


def needs_attention() -> ColumnElement[bool]:
    """Offline, missing media or a clock out of step: the officer should look at it."""
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
