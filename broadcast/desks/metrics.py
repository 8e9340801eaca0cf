"""The numbers Prometheus scrapes (`service.metrics`), read from the shared database in one
transaction, so any web worker gives the same answer at the same moment."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from broadcast.errors import PermissionDenied
from broadcast.people import accounts
from broadcast.store import sequences
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Delivery, Device, utcnow

_LOGGER = logging.getLogger(__name__)

LATENCY_WINDOW = timedelta(hours=24)
LATENCY_SAMPLE = 20_000


@dataclass(frozen=True)
class Readings:
    devices_by_state: dict[str, int]  # registered receivers by reported state
    devices_online: int
    broadcasts: dict[tuple[str, str], int]  # by (status, priority)
    deliveries_by_state: dict[str, int]
    answers_rejected: dict[str, int]  # refused state and event messages, by device id
    # dispatch → the receiver's `received`, in seconds, for announcements of the last
    # LATENCY_WINDOW (at most LATENCY_SAMPLE of them)
    latencies_s: list[float]


class MetricsReading:
    def __init__(self, db: Database) -> None:
        self.db = db

    def may_read(self, user_id: int) -> bool:
        """Whether `user_id` may scrape: an active installation-wide admin (the numbers are
        every commune's, device names included); a province or commune admin may not."""
        with self.db.session() as session:
            try:
                accounts.require_installation_admin(session, user_id)
            except PermissionDenied:
                return False
            return True

    def read(self, now: datetime | None = None) -> Readings:
        since = (now or utcnow()) - LATENCY_WINDOW
        with self.db.session() as session:
            devices = session.execute(select(Device.state, func.count()).group_by(Device.state))
            devices_by_state = {state: count for state, count in devices}
            online = session.scalar(select(func.count()).where(Device.online.is_(True)))
            rows = session.execute(
                select(Broadcast.status, Broadcast.priority, func.count()).group_by(
                    Broadcast.status, Broadcast.priority
                )
            )
            by_status = {(status, priority): count for status, priority, count in rows}
            deliveries = session.execute(
                select(Delivery.state, func.count()).group_by(Delivery.state)
            )
            deliveries_by_state = {state: count for state, count in deliveries}
            rejected = sequences.counters(session, sequences.REJECTED_ANSWERS)
            pairs = session.execute(
                select(Broadcast.dispatched_at, Delivery.received_at)
                .join(Delivery.broadcast)
                .where(
                    Broadcast.command_id.is_not(None),
                    Broadcast.dispatched_at >= since,
                    Delivery.received_at.is_not(None),
                )
                .limit(LATENCY_SAMPLE)
            )
            latencies = [max(0.0, (got - sent).total_seconds()) for sent, got in pairs]
        return Readings(
            devices_by_state=devices_by_state,
            devices_online=online or 0,
            broadcasts=by_status,
            deliveries_by_state=deliveries_by_state,
            answers_rejected=dict(rejected),
            latencies_s=latencies,
        )
