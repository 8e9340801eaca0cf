"""The metrics reading: the numbers Prometheus scrapes, in one read of the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from service_support import Users, add_devices

from broadcast.desks.metrics import LATENCY_WINDOW
from broadcast.service import BroadcastService
from broadcast.store import sequences
from broadcast.store.models import Broadcast, Delivery, Device

NOW = datetime(2030, 1, 7, 5, 0)


def test_readings(service: BroadcastService, users: Users) -> None:
    add_devices(service, {"loa-a-01": "thon-a", "loa-b-01": "thon-b"})
    with service.db.session() as session:
        device = session.get(Device, "loa-a-01")
        assert device is not None
        device.online, device.state = True, "idle"
        for sent, status, priority in (
            (NOW - timedelta(minutes=5), "finished", "emergency"),
            (NOW - LATENCY_WINDOW - timedelta(minutes=1), "finished", "emergency"),  # too old
            (NOW - timedelta(minutes=1), "dispatched", "normal"),
        ):
            broadcast = Broadcast(
                title="Tin",
                text="Tin",
                priority=priority,
                zone_ids=["thon-a"],
                source="announcement",
                status=status,
                command_id=f"c{sent.timestamp()}",
                dispatched_at=sent,
            )
            session.add(broadcast)
            session.flush()
            session.add(
                Delivery(
                    broadcast_id=broadcast.id,
                    device_id="loa-a-01",
                    state="finished" if status == "finished" else "received",
                    received_at=sent + timedelta(seconds=1.5),
                )
            )
        sequences.add(session, sequences.REJECTED_ANSWERS + "loa-b-01", 2)
    found = service.metrics.read(NOW)
    assert found.devices_by_state == {"idle": 1, "offline": 1} and found.devices_online == 1
    assert found.broadcasts == {("finished", "emergency"): 2, ("dispatched", "normal"): 1}
    assert found.deliveries_by_state == {"finished": 2, "received": 1}
    assert found.answers_rejected == {"loa-b-01": 2}
    assert found.latencies_s == [1.5, 1.5]  # the last 24 h only
