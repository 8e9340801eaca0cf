"""A stolen receiver publishing hostile payloads on its own state and event topics, through a
real broker to a real leading server: each is refused, counted (`loa_answers_rejected_total`)
and logged without a traceback, at most one line a minute; the receiver's next genuine answer
is still recorded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_support import make_service, seed_commune, wait_for
from sqlalchemy import select
from support import MqttProbe, RunningBroker, loa_passwords

from broadcast.fleet import registry
from broadcast.service import BroadcastService
from broadcast.store import sequences
from broadcast.store.models import Delivery, Device
from web import create_app
from wire import protocol
from wire.protocol import DeviceEvent, DeviceStatus, EventKind, ReceiverState

pytestmark = pytest.mark.integration

DEVICE, OTHER = "loa-a-01", "loa-b-01"
DEEP = 60_000

HOSTILE = [
    b"[" * DEEP + b"]" * DEEP,  # RecursionError in json.loads
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"device_id": "loa-a-01", "at": ' + b"9" * 5000 + b"}",
    b'{"device_id": "loa-a-01", "kind": "received", "command_id": "c", "at": 1e999}',
    b'{"device_id": "loa-a-01", "state": "idle", "boot_id": "b", "at": NaN}',
    b'{"device_id": "\\ud800"}',
    b'{"device_id": "\xff"}',
    b"[1, 2, 3]",
    b"x" * (protocol.MAX_ANSWER_BYTES + 1),
]


@pytest.fixture
def running(
    tmp_path: Path, broker_kind: str, broker_factory
) -> Iterator[tuple[BroadcastService, int, RunningBroker]]:
    """A leading server on a real broker that knows the server and two receivers; the id of
    the commune's culture officer; the broker."""
    data = tmp_path / "data"
    setup = make_service(data)
    officer = seed_commune(setup).officer
    with setup.db.session() as session:
        for device_id, zone_id in ((DEVICE, "thon-a"), (OTHER, "thon-b")):
            registry.register_device(
                session, setup.settings, setup.fleet.public_key_text, device_id, zone_id
            )
        access = registry.broker_access(session, setup.secrets.mqtt_password)
    setup.stop()
    broker = broker_factory(broker_kind, access, loa_passwords(data))
    service = make_service(data, mqtt_port=broker.server.port, connect_mqtt=True)
    service.start()
    try:
        yield service, officer, broker
    finally:
        service.stop()


def _device_probe(service: BroadcastService, broker: RunningBroker) -> MqttProbe:
    """The receiver's own broker login, as a thief of its Pi would have it: on the receivers'
    listener, with the only client id that login may use (its device id)."""
    config = json.loads((service.settings.devices_dir / f"{DEVICE}.json").read_text())
    return MqttProbe(broker, DEVICE, DEVICE, config["mqtt"]["password"]).connect_ok()


def _state(at: float, **extra: object) -> bytes:
    return DeviceStatus(DEVICE, ReceiverState.IDLE, "boot-1", at, extra=dict(extra)).to_json()


def _rejected(service: BroadcastService) -> dict[str, int]:
    with service.db.session() as session:
        return sequences.counters(session, sequences.REJECTED_ANSWERS)


def test_hostile_answers_are_counted_and_the_next_genuine_one_is_recorded(
    running: tuple[BroadcastService, int, RunningBroker], caplog: pytest.LogCaptureFixture
) -> None:
    service, officer, broker = running
    probe = _device_probe(service, broker)
    state_topic = protocol.device_state_topic(DEVICE)
    event_topic = protocol.device_event_topic(DEVICE)
    try:
        # Retained, as receivers publish states: the server's listener subscribes in the
        # background and gets it whenever it is up. Once it is recorded, the listener hears.
        probe.publish(state_topic, _state(time.time(), cache_complete=1.0), retain=True)
        wait_for(lambda: _device(service).online, 15, "the first state recorded")

        caplog.clear()
        caplog.set_level(logging.WARNING)
        spoofed = DeviceEvent(OTHER, "c", 1, EventKind.RECEIVED, time.time()).to_json()
        sent = [(topic, payload) for payload in HOSTILE for topic in (state_topic, event_topic)]
        sent.append((event_topic, spoofed))
        for topic, payload in sent:
            probe.publish(topic, payload)

        wait_for(lambda: _rejected(service).get(DEVICE) == len(sent), 15, "every refusal counted")
        assert _rejected(service) == {DEVICE: len(sent)}

        # The next genuine answers are recorded: a state, then an event of a real broadcast.
        probe.publish(state_topic, _state(time.time(), cache_complete=0.5))
        wait_for(
            lambda: (_device(service).status_extra or {}).get("cache_complete") == 0.5,
            15,
            "the genuine state after the hostile ones",
        )
        broadcast_id = service.announcements.announce(officer, "Thông báo thử loa.", ["thon-a"])
        wait_for(lambda: _delivery(service, broadcast_id) == "queued", 15, "the delivery row")
        received = DeviceEvent(DEVICE, "c", broadcast_id, EventKind.RECEIVED, time.time())
        probe.publish(event_topic, received.to_json())
        wait_for(lambda: _delivery(service, broadcast_id) == "received", 15, "the genuine event")
    finally:
        probe.close()

    records = [r for r in caplog.records if r.name == "broadcast.sending.dispatcher"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    ignored = [r for r in records if "ignored message" in r.getMessage()]
    assert len(ignored) == 1, [r.getMessage() for r in ignored]  # one line a minute per sender
    assert "\n" not in ignored[0].getMessage()

    response = create_app(service).test_client().get("/metrics")
    families = {
        family.name: [(s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    }
    assert families["loa_answers_rejected"] == [({"device": DEVICE}, float(len(sent)))]


def _device(service: BroadcastService) -> Device:
    with service.db.session() as session:
        device = session.get(Device, DEVICE)
        assert device is not None
        session.expunge(device)
        return device


def _delivery(service: BroadcastService, broadcast_id: int) -> str | None:
    with service.db.session() as session:
        return session.scalars(
            select(Delivery.state).where(
                Delivery.broadcast_id == broadcast_id, Delivery.device_id == DEVICE
            )
        ).first()
