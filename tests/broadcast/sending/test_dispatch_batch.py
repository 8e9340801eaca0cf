"""A broadcast's commands go out as one batch (`Dispatcher.send_many`): every number taken at
once, every message handed to the broker before any PUBACK is awaited, and the guarantees of
sending them one by one kept: one command per topic with its stream's next number, a failure
marks the broadcast failed, a broker lost mid-batch leaves it to redelivery, not lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from service_support import add_devices, broadcast_status, wait_for
from support import sql_statements

from broadcast.const import ZoneKind
from broadcast.errors import ServiceUnavailable
from broadcast.people import zones
from broadcast.programme import leader as leader_module
from broadcast.sending.dispatcher import Dispatcher, NumberSource
from broadcast.settings import RedeliveryPolicy
from broadcast.store.locks import FileLock
from broadcast.store.models import Broadcast, Delivery, utcnow
from wire import protocol

from ..conftest import Leader, ManualClock, start_leader

KEY = Ed25519PrivateKey.generate()
TOPICS = [protocol.zone_command_topic(f"xa-{n:03d}") for n in range(12)]
BODY = protocol.StopBody(broadcast_id=7)


class FakeInfo:
    """What paho's publish returns: acknowledged when the fake broker says so."""

    def __init__(self, client: FakeClient, rc: int = mqtt.MQTT_ERR_SUCCESS) -> None:
        self.rc = rc
        self._client = client
        self._acked = threading.Event()

    def is_published(self) -> bool:
        return self._acked.is_set()

    def wait_for_publish(self, timeout: float | None = None) -> None:
        self._client.handed_over_at_first_wait.append(len(self._client.published))
        if self._client.ack_on_wait:
            for each in self._client.infos:
                each._acked.set()
        self._acked.wait(timeout)


class FakeClient:
    """A paho client whose broker acknowledges everything once `ack_after` messages have come
    (never, if None), or, with `ack_on_wait`, what has come when a PUBACK is first awaited;
    after `drop_after` messages the connection is lost."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        ack_after: int | None = None,
        drop_after: int | None = None,
        fail_at: int | None = None,
        ack_on_wait: bool = False,
    ) -> None:
        self._dispatcher = dispatcher
        self.ack_on_wait = ack_on_wait
        self._ack_after = ack_after
        self._drop_after = drop_after
        self._fail_at = fail_at
        self.published: list[tuple[str, bytes, bool]] = []
        self.infos: list[FakeInfo] = []
        self.handed_over_at_first_wait: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> FakeInfo:
        assert qos == 1
        if self._fail_at is not None and len(self.published) == self._fail_at:
            return FakeInfo(self, mqtt.MQTT_ERR_PAYLOAD_SIZE)
        self.published.append((topic, payload, retain))
        if self._drop_after is not None and len(self.published) > self._drop_after:
            self._dispatcher._connected.clear()
            return FakeInfo(self, mqtt.MQTT_ERR_NO_CONN)  # paho queues it for the reconnection
        info = FakeInfo(self)
        self.infos.append(info)
        if self._ack_after is not None and len(self.published) >= self._ack_after:
            for each in self.infos:
                each._acked.set()
        return info


def _dispatcher(tmp_path: Path, numbers: NumberSource | None = None) -> Dispatcher:
    counters: dict[str, int] = {}

    def next_seq(topic: str) -> int:
        counters[topic] = counters.get(topic, 0) + 1
        return counters[topic]

    dispatcher = Dispatcher(
        "127.0.0.1",
        1,
        "loa-server",
        "unused",
        KEY,
        next_seq=next_seq,
        publish_lock=FileLock(tmp_path / "publish.lock"),
        on_status=lambda _status: None,
        on_event=lambda _event: None,
        epoch=lambda: 42,
        numbers=numbers,
    )
    dispatcher._connected.set()
    return dispatcher


def _verified(client: FakeClient) -> list[protocol.Command]:
    return [
        protocol.verify_command(payload, KEY.public_key()) for _t, payload, _r in client.published
    ]


def test_every_message_is_handed_over_before_any_puback_is_awaited(tmp_path: Path) -> None:
    dispatcher = _dispatcher(tmp_path)
    client = FakeClient(dispatcher, ack_on_wait=True)
    dispatcher._client = client  # type: ignore[assignment]
    commands = dispatcher.send_many([(topic, BODY) for topic in TOPICS], timeout_s=30)
    assert client.handed_over_at_first_wait[0] == len(TOPICS)
    assert all(info.is_published() for info in client.infos)
    received = _verified(client)
    assert [c.stream for c in received] == TOPICS == [t for t, _p, _r in client.published]
    assert [(c.seq, c.epoch) for c in received] == [(1, 42)] * len(TOPICS)
    assert [c.id for c in commands] == [c.id for c in received]
    assert len({c.id for c in received}) == len(TOPICS)  # each its own signed command
    dispatcher.send_many([(TOPICS[0], BODY), (TOPICS[1], BODY), (TOPICS[0], BODY)])
    assert [(c.stream, c.seq) for c in _verified(client)[len(TOPICS) :]] == [
        (TOPICS[0], 2),
        (TOPICS[1], 2),
        (TOPICS[0], 3),
    ]


def test_the_numbers_of_a_batch_are_taken_in_one_call(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def numbers(topics: list[str]) -> tuple[list[int], int]:
        calls.append(list(topics))
        return [100 + n for n in range(len(topics))], 9

    dispatcher = _dispatcher(tmp_path, numbers)  # type: ignore[arg-type]
    client = FakeClient(dispatcher, ack_after=1)
    dispatcher._client = client  # type: ignore[assignment]
    dispatcher.send_many([(topic, BODY) for topic in TOPICS[:3]])
    assert calls == [TOPICS[:3]]
    assert [(c.seq, c.epoch) for c in _verified(client)] == [(100, 9), (101, 9), (102, 9)]


def test_a_missing_puback_is_waited_for_until_the_deadline_then_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = _dispatcher(tmp_path)
    client = FakeClient(dispatcher, ack_after=None)
    dispatcher._client = client  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="broadcast.sending.dispatcher"):
        commands = dispatcher.send_many([(topic, BODY) for topic in TOPICS[:3]], timeout_s=0.3)
    assert len(commands) == 3 and len(client.published) == 3
    assert "3 of 3 message(s) not acknowledged" in caplog.text


def test_a_broker_lost_mid_batch_leaves_the_rest_queued_without_waiting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = _dispatcher(tmp_path)
    client = FakeClient(dispatcher, ack_after=None, drop_after=4)
    dispatcher._client = client  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="broadcast.sending.dispatcher"):
        commands = dispatcher.send_many([(topic, BODY) for topic in TOPICS], timeout_s=60)
    # every message went to the client (it sends them again on reconnecting), none awaited
    assert [c.stream for c in commands] == TOPICS == [t for t, _p, _r in client.published]
    assert client.handed_over_at_first_wait == []
    assert f"is down: {len(TOPICS)} message(s) queued" in caplog.text


def test_a_refused_publish_fails_the_batch(tmp_path: Path) -> None:
    dispatcher = _dispatcher(tmp_path)
    client = FakeClient(dispatcher, ack_after=1, fail_at=2)
    dispatcher._client = client  # type: ignore[assignment]
    with pytest.raises(ServiceUnavailable, match="failed"):
        dispatcher.send_many([(topic, BODY) for topic in TOPICS[:4]])


# --- through the service ------------------------------------------------------------------------

POLICY = RedeliveryPolicy()


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[Leader]:
    """The test commune with a third village, so that Thôn A and Thôn B are two topics (all of
    a commune's villages would be the commune's one: `targets.fewest_zones`)."""
    started = start_leader(tmp_path / "data", ManualClock(utcnow()))
    with started.service.db.session() as session:
        zones.create_zone(session, "thon-c", "Thôn C", ZoneKind.VILLAGE, "xa-test")
    yield started
    started.service.stop()


def _announce(leader: Leader) -> int:
    return leader.service.announcements.announce(
        leader.users.officer, "Mất điện từ 14 giờ.", ["thon-a", "thon-b"]
    )


def test_each_topic_gets_one_play_with_its_streams_next_number(leader: Leader) -> None:
    first = _announce(leader)
    wait_for(lambda: broadcast_status(leader.service, first) == "dispatched")
    numbers = leader.sent._numbers
    calls: list[list[str]] = []

    def counted(topics: list[str]) -> tuple[list[int], int]:
        calls.append(list(topics))
        return numbers(topics)

    leader.sent._numbers = counted  # type: ignore[assignment]
    leader.sent.clear()
    second = _announce(leader)
    wait_for(lambda: broadcast_status(leader.service, second) == "dispatched")
    topics = [protocol.zone_command_topic("thon-a"), protocol.zone_command_topic("thon-b")]
    plays = [s for s in leader.sent.sent if isinstance(s.command.body, protocol.PlayBody)]
    assert [s.topic for s in plays] == topics
    assert [s.command.seq for s in plays] == [2, 2]  # each stream's next, after the first's 1
    assert calls[0] == topics  # one transaction for the batch's numbers and epoch
    assert {s.command.body.broadcast_id for s in plays} == {second}  # type: ignore[union-attr]


def test_a_batch_that_fails_marks_the_broadcast_failed(
    leader: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish = leader.sent._publish_payload
    count = 0

    def refused_second(topic: str, payload: bytes, retain: bool) -> object:
        nonlocal count
        count += 1
        if count == 2:
            raise ServiceUnavailable(f"MQTT publish to {topic} failed: no connection")
        return publish(topic, payload, retain)

    monkeypatch.setattr(leader.sent, "_publish_payload", refused_second)
    broadcast_id = _announce(leader)
    wait_for(lambda: broadcast_status(leader.service, broadcast_id) == "failed")


def test_a_broker_lost_mid_batch_leads_to_redelivery_not_loss(
    leader: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: the broker lost what it had not acknowledged (restarted without
    persistence). The broadcast is dispatched, and every receiver that did not answer gets
    the PLAY again on its own topic."""
    publish = leader.sent._publish_payload
    lost: list[str] = []

    def lost_after_first(topic: str, payload: bytes, retain: bool) -> object:
        if lost or topic == protocol.zone_command_topic("thon-b"):
            lost.append(topic)
            leader.sent._connected.clear()
            return None  # queued by the client, never to arrive
        return publish(topic, payload, retain)

    monkeypatch.setattr(leader.sent, "_publish_payload", lost_after_first)
    broadcast_id = _announce(leader)
    wait_for(lambda: broadcast_status(leader.service, broadcast_id) == "dispatched")
    assert lost == [protocol.zone_command_topic("thon-b")]
    monkeypatch.undo()
    leader.sent._connected.set()  # the broker is back
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None and row.dispatched_at is not None
        dispatched_at = row.dispatched_at
        states = {
            d.device_id: d.state for d in session.query(Delivery).filter_by(broadcast_id=row.id)
        }
    assert states == {"loa-a-01": "queued", "loa-a-02": "queued", "loa-b-01": "queued"}
    [original] = leader.sent.on(protocol.zone_command_topic("thon-a"))
    clock = leader.service.leader.clock
    assert isinstance(clock, ManualClock)
    clock.now = dispatched_at + timedelta(seconds=POLICY.first_after_s + 1)
    leader.service.leader.redeliver()
    [again] = leader.sent.on(protocol.device_command_topic("loa-b-01"))
    assert again.command.body == original.command.body  # the same item, play_at and deadline


def test_a_broadcasts_deliveries_are_written_in_one_bulk_insert(leader: Leader) -> None:
    """One row per receiver, but not a round trip per row (a province has 2,000)."""
    add_devices(leader.service, {f"loa-c-{n:02d}": "thon-b" for n in range(40)})
    with sql_statements(leader.service.db.engine) as statements:
        broadcast_id = _announce(leader)
    inserts = [s for s in statements if s.startswith("INSERT INTO deliveries")]
    assert len(inserts) == 1
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        assert len(row.deliveries) == 3 + 40
        assert {d.state for d in row.deliveries} == {"queued"}


def test_unanswered_receivers_get_the_play_again_in_batches(
    leader: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leader_module, "REDELIVERY_BATCH", 2)
    add_devices(leader.service, {f"loa-c-{n:02d}": "thon-b" for n in range(5)})
    broadcast_id = _announce(leader)
    wait_for(lambda: broadcast_status(leader.service, broadcast_id) == "dispatched")
    leader.service._on_event(
        protocol.DeviceEvent(
            "loa-c-02", "cmd", broadcast_id, protocol.EventKind.RECEIVED, 1_900_000_000.0, ""
        )
    )
    [original] = leader.sent.on(protocol.zone_command_topic("thon-b"))
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None and row.dispatched_at is not None
        dispatched_at = row.dispatched_at
    leader.sent.clear()
    clock = leader.service.leader.clock
    assert isinstance(clock, ManualClock)
    clock.now = dispatched_at + timedelta(seconds=POLICY.first_after_s + 1)
    leader.service.leader.redeliver()
    silent = ["loa-a-01", "loa-a-02", "loa-b-01", "loa-c-00", "loa-c-01", "loa-c-03", "loa-c-04"]
    assert sorted(s.topic for s in leader.sent.sent) == sorted(
        protocol.device_command_topic(device) for device in silent
    )
    assert {s.command.body for s in leader.sent.sent} == {original.command.body}
    assert {s.command.seq for s in leader.sent.sent} == {1}  # each its own stream's first
