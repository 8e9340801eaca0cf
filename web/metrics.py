"""Prometheus metrics at `/metrics`, read from the database at scrape time.

Because every number comes from the shared database, any web worker gives the same answer and
nothing needs prometheus_client's multi-process mode. Scraping is allowed from the machine
itself (a Prometheus or node agent beside the server) or with an admin's API token
(`Authorization: Bearer …`), since device names and counts are not for everyone.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from datetime import timedelta

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select

from broadcast.people import accounts, permissions
from broadcast.people.permissions import Action
from broadcast.store import sequences
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Delivery, Device, utcnow
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
LATENCY_WINDOW = timedelta(hours=24)
LATENCY_SAMPLE = 20_000


class DatabaseCollector:
    """prometheus_client collector: one consistent read of the database per scrape."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        with self._db.session() as session:
            devices = GaugeMetricFamily(
                "loa_devices", "Registered receivers by reported state", labels=["state"]
            )
            for state, count in session.execute(
                select(Device.state, func.count()).group_by(Device.state)
            ):
                devices.add_metric([state], count)
            yield devices
            online = session.scalar(select(func.count()).where(Device.online.is_(True)))
            yield GaugeMetricFamily("loa_devices_online", "Receivers online", value=online or 0)
            rows = session.execute(
                select(Broadcast.status, Broadcast.priority, func.count()).group_by(
                    Broadcast.status, Broadcast.priority
                )
            )
            broadcasts = GaugeMetricFamily(
                "loa_broadcasts", "Broadcasts by status and priority", labels=["status", "priority"]
            )
            for status, priority, count in rows:
                broadcasts.add_metric([status, priority], count)
            yield broadcasts
            deliveries = GaugeMetricFamily(
                "loa_deliveries", "Delivery records by state", labels=["state"]
            )
            for state, count in session.execute(
                select(Delivery.state, func.count()).group_by(Delivery.state)
            ):
                deliveries.add_metric([state], count)
            yield deliveries
            rejected = CounterMetricFamily(
                "loa_answers_rejected",
                "Receivers' state and event messages refused as malformed or spoofed",
                labels=["device"],
            )
            for device_id, count in sequences.counters(session, sequences.REJECTED_ANSWERS).items():
                rejected.add_metric([device_id], count)
            yield rejected
            yield self._latency(session)

    @staticmethod
    def _latency(session: object) -> Metric:
        """Dispatch → receiver's `received`, for announcements of the last 24 h."""
        since = utcnow() - LATENCY_WINDOW
        pairs = session.execute(  # type: ignore[attr-defined]
            select(Broadcast.dispatched_at, Delivery.received_at)
            .join(Delivery.broadcast)
            .where(
                Broadcast.command_id.is_not(None),
                Broadcast.dispatched_at >= since,
                Delivery.received_at.is_not(None),
            )
            .limit(LATENCY_SAMPLE)
        )
        seconds = [max(0.0, (got - sent).total_seconds()) for sent, got in pairs]
        buckets = [(str(le), sum(1 for s in seconds if s <= le)) for le in LATENCY_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        return HistogramMetricFamily(
            "loa_dispatch_latency_seconds",
            "From dispatch to the receiver's answer (announcements, last 24 h)",
            buckets=buckets,
            sum_value=sum(seconds),
        )


def _allowed() -> bool:
    address = request.remote_addr or ""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        pass
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    with get_service().db.session() as session:
        user = accounts.user_for_token(session, token.strip())
        return user is not None and permissions.allowed(user.role, Action.ADMINISTER)


@bp.get("/metrics")
def metrics() -> Response:
    if not _allowed():
        abort(403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(get_service().db))  # type: ignore[arg-type]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
