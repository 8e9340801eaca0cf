"""Prometheus metrics at `/metrics`, read from the database at scrape time.

Because every number comes from the shared database, any web worker gives the same answer and
nothing needs prometheus_client's multi-process mode. Scraping is allowed from the machine
itself (a Prometheus or node agent beside the server) or with an installation-wide admin's API
token (`Authorization: Bearer …`), since device names and counts, every commune's, are not for
everyone, nor for a province's or a commune's admin.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from broadcast.desks.metrics import MetricsReading, Readings
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class DatabaseCollector:
    """prometheus_client collector: one consistent read of the database per scrape
    (`service.metrics`)."""

    def __init__(self, reading: MetricsReading) -> None:
        self._reading = reading

    def collect(self) -> Iterator[Metric]:
        found = self._reading.read()
        devices = GaugeMetricFamily(
            "loa_devices", "Registered receivers by reported state", labels=["state"]
        )
        for state, count in found.devices_by_state.items():
            devices.add_metric([state], count)
        yield devices
        yield GaugeMetricFamily(
            "loa_devices_online", "Receivers online", value=found.devices_online
        )
        broadcasts = GaugeMetricFamily(
            "loa_broadcasts", "Broadcasts by status and priority", labels=["status", "priority"]
        )
        for (status, priority), count in found.broadcasts.items():
            broadcasts.add_metric([status, priority], count)
        yield broadcasts
        deliveries = GaugeMetricFamily(
            "loa_deliveries", "Delivery records by state", labels=["state"]
        )
        for state, count in found.deliveries_by_state.items():
            deliveries.add_metric([state], count)
        yield deliveries
        rejected = CounterMetricFamily(
            "loa_answers_rejected",
            "Receivers' state and event messages refused as malformed or spoofed",
            labels=["device"],
        )
        for device_id, count in found.answers_rejected.items():
            rejected.add_metric([device_id], count)
        yield rejected
        yield self._latency(found)

    @staticmethod
    def _latency(found: Readings) -> Metric:
        """Dispatch → receiver's `received`, for announcements of the last 24 h."""
        seconds = found.latencies_s
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
    service = get_service()
    user = service.sign_in.token_user(token.strip())
    return user is not None and service.metrics.may_read(user.id)


@bp.get("/metrics")
def metrics() -> Response:
    if not _allowed():
        abort(403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(get_service().metrics))  # type: ignore[arg-type]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
