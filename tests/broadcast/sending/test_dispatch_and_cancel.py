"""Sending at once (synchronized start, device targets, relays) and "Dừng / Đính chính"."""

from __future__ import annotations

import pytest
from service_support import (
    approved_bulletin,
    broadcast_status,
    recording_service,
    seed_commune,
    wait_for,
)

from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import PermissionDenied, ServiceUnavailable, ValidationError
from broadcast.people import targets
from broadcast.sending import broadcasts
from broadcast.store.models import Broadcast, Schedule, User
from wire import protocol
from wire.protocol import Priority

from ..conftest import Leader

THON_A = protocol.zone_command_topic("thon-a")


def _dispatched(leader: Leader, broadcast_id: int) -> None:
    wait_for(
        lambda: broadcast_status(leader.service, broadcast_id) != "pending",
        what=f"broadcast {broadcast_id} rendered",
    )
    assert broadcast_status(leader.service, broadcast_id) == "dispatched"


def _plays(leader: Leader, topic: str) -> list[protocol.Command]:
    return [s.command for s in leader.sent.on(topic) if s.command.kind is protocol.CommandKind.PLAY]


def test_an_emergency_starts_together_after_a_short_lead(leader: Leader) -> None:
    broadcast_id = leader.service.announcements.announce(
        leader.users.officer, "Cháy chợ, tránh xa.", ["thon-a"]
    )
    _dispatched(leader, broadcast_id)
    [command] = _plays(leader, THON_A)
    body = command.body
    assert isinstance(body, protocol.PlayBody)
    assert body.broadcast_id == broadcast_id and body.item_id == f"b{broadcast_id}"
    assert body.play_at == pytest.approx(command.issued_at + 3.0, abs=0.5)
    assert body.valid_until == pytest.approx(body.play_at + 15 * 60)
    assert command.expires_at >= body.valid_until  # the command outlives the item
    assert command.stream == THON_A and not leader.sent.on(THON_A)[0].retain
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row.play_at is not None and row.valid_until is not None
        assert row.item_id == f"b{broadcast_id}"


def test_routine_items_get_a_longer_lead(leader: Leader) -> None:
    broadcast_id = leader.service.announcements.announce(
        leader.users.officer, "Thu nộp quỹ.", ["thon-a"], priority="normal"
    )
    _dispatched(leader, broadcast_id)
    [command] = _plays(leader, THON_A)
    assert command.body.play_at == pytest.approx(command.issued_at + 10.0, abs=0.5)  # type: ignore[union-attr]


def test_devices_are_targets_beside_zones(leader: Leader) -> None:
    broadcast_id = leader.service.announcements.announce(
        leader.users.officer,
        "Mất nước.",
        ["thon-a"],
        device_ids=["loa-a-01", "loa-b-01"],  # loa-a-01 is covered by thon-a
    )
    _dispatched(leader, broadcast_id)
    assert len(_plays(leader, THON_A)) == 1
    assert len(_plays(leader, protocol.device_command_topic("loa-b-01"))) == 1
    assert _plays(leader, protocol.device_command_topic("loa-a-01")) == []
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row.zone_ids == ["thon-a"] and row.device_ids == ["loa-b-01"]
        assert [d.device_id for d in row.deliveries] == ["loa-a-01", "loa-a-02", "loa-b-01"]


def test_devices_alone_and_their_authorization(leader: Leader) -> None:
    service, users = leader.service, leader.users
    only = service.announcements.announce(users.head_1, "Họp tổ.", [], device_ids=["loa-a-02"])
    _dispatched(leader, only)
    assert len(_plays(leader, protocol.device_command_topic("loa-a-02"))) == 1
    with pytest.raises(PermissionDenied):  # a village head: own village's devices only
        service.announcements.announce(users.head_1, "Họp tổ.", [], device_ids=["loa-b-01"])
    with pytest.raises(ValidationError) as info:
        service.announcements.announce(users.officer, "Họp tổ.", [], device_ids=["loa-zz"])
    assert info.value.field == "devices"
    with pytest.raises(ValidationError) as info:
        service.announcements.announce(users.officer, "Họp tổ.", [], device_ids=[])
    assert info.value.field == "zones"


def test_a_relay_is_sent_as_a_relay(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    relay = approved_bulletin(
        service, officer, "", relay_url="https://radio.example.vn/vov1.m3u8", minutes=45
    )
    broadcast_id = service.bulletins.broadcast_bulletin(officer, relay, ["thon-a"], repeat=4)
    _dispatched(leader, broadcast_id)
    [command] = _plays(leader, THON_A)
    body = command.body
    assert isinstance(body, protocol.PlayBody)
    assert body.content is protocol.ContentType.RELAY
    assert body.relay_url == "https://radio.example.vn/vov1.m3u8"
    assert body.duration_s == 45 * 60 and body.repeat == 1 and body.media_sha256 == ""
    with pytest.raises(ValidationError):
        service.bulletins.preview(officer, relay)


@pytest.mark.parametrize(
    ("url", "minutes", "field"),
    [
        ("ftp://radio.example.vn/x", 30, "relay_url"),
        ("javascript:alert(1)", 30, "relay_url"),
        ("https://", 30, "relay_url"),
        ("https://radio.example.vn/a b", 30, "relay_url"),
        ("https://radio.example.vn/x", 0, "minutes"),
        ("https://radio.example.vn/x", 361, "minutes"),
        ("https://radio.example.vn/x", "nửa giờ", "minutes"),
    ],
)
def test_relay_input_is_validated(leader: Leader, url: str, minutes: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        leader.service.bulletins.create_relay_bulletin(leader.users.officer, "", url, minutes)
    assert info.value.field == field


def test_cancel_stops_everywhere_and_plays_the_correction(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    wrong = service.announcements.announce(
        officer, "Bão đổ bộ lúc 15h.", ["thon-a"], device_ids=["loa-b-01"]
    )
    _dispatched(leader, wrong)
    result = service.announcements.cancel(
        officer, wrong, "Đính chính: bão đổ bộ lúc 17h, không phải 15h."
    )
    assert result.cancelled_id == wrong and result.correction_id is not None
    assert broadcast_status(service, wrong) == "cancelled"
    for topic in (THON_A, protocol.device_command_topic("loa-b-01")):
        kinds = [(s.command.kind, s.command.seq) for s in leader.sent.on(topic)]
        stop = [seq for kind, seq in kinds if kind is protocol.CommandKind.STOP]
        play = [seq for kind, seq in kinds if kind is protocol.CommandKind.PLAY]
        assert len(stop) == 1 and stop[0] > play[0]  # the receiver takes it as newer
        stop_body = next(
            s.command.body
            for s in leader.sent.on(topic)
            if s.command.kind is protocol.CommandKind.STOP
        )
        assert stop_body == protocol.StopBody(broadcast_id=wrong)
    _dispatched(leader, result.correction_id)
    with service.db.session() as session:
        correction = session.get(Broadcast, result.correction_id)
        assert correction.corrects_id == wrong and correction.source == "correction"
        assert correction.priority == "emergency"
        assert correction.title.startswith("Đính chính: Bão đổ bộ")
        assert correction.zone_ids == ["thon-a"] and correction.device_ids == ["loa-b-01"]
        assert [c.id for c in broadcasts.corrections_of(session, wrong)] == [correction.id]
        assert session.get(Broadcast, wrong).cancelled_at is not None
    with pytest.raises(ValidationError):
        service.announcements.cancel(officer, wrong)  # once is enough


def test_a_cancelled_broadcast_is_final(leader: Leader) -> None:
    service = leader.service
    broadcast_id = service.announcements.announce(leader.users.officer, "Tin sai.", ["thon-a"])
    _dispatched(leader, broadcast_id)
    service.announcements.cancel(leader.users.officer, broadcast_id)
    for device in ("loa-a-01", "loa-a-02"):
        service._on_event(
            protocol.DeviceEvent(device, "c", broadcast_id, protocol.EventKind.FINISHED, 1.0)
        )
    assert broadcast_status(service, broadcast_id) == "cancelled"


def test_cancel_before_sending_sends_nothing(leader: Leader) -> None:
    service = leader.service
    with service.db.session() as session:
        chosen = targets.resolve(session, ["thon-a"])
        row = broadcasts.create_broadcast(
            session,
            text="Tin chưa gửi.",
            zone_list=chosen.zones,
            priority=Priority.EMERGENCY,
            repeat=1,
            source="announcement",
        )
        broadcast_id = row.id
    service.announcements.cancel(leader.users.officer, broadcast_id)
    service.outbox.render_and_dispatch(broadcast_id)  # what the render thread would do next
    assert _plays(leader, THON_A) == []
    assert broadcast_status(service, broadcast_id) == "cancelled"


def test_who_may_cancel(leader: Leader) -> None:
    service, users = leader.service, leader.users
    commune_wide = service.announcements.announce(users.officer, "Tin toàn xã.", ["xa-test"])
    _dispatched(leader, commune_wide)
    with pytest.raises(PermissionDenied):
        service.announcements.cancel(users.head_1, commune_wide)  # reaches beyond Thôn A
    with pytest.raises(PermissionDenied):
        service.announcements.cancel(users.viewer, commune_wide)
    own = service.announcements.announce(users.head_1, "Họp thôn.", ["thon-a"])
    _dispatched(leader, own)
    assert service.announcements.cancel(users.head_1, own, "").correction_id is None
    with pytest.raises(ValidationError) as info:
        service.announcements.cancel(users.officer, commune_wide, "   x" * 6000)
    assert info.value.field == "correction"  # the field the person filled in


def _finish(leader: Leader, broadcast_id: int, devices: tuple[str, ...]) -> None:
    for device in devices:
        leader.service._on_event(
            protocol.DeviceEvent(device, "c", broadcast_id, protocol.EventKind.FINISHED, 1.0)
        )
    wait_for(
        lambda: broadcast_status(leader.service, broadcast_id) == "finished",
        what=f"broadcast {broadcast_id} finished",
    )


def test_a_finished_broadcast_cannot_be_stopped_but_can_be_corrected(leader: Leader) -> None:
    """Nothing of it plays any more: a stop is refused with the reason and its status stays
    finished; a correction still goes out, linked to it, and leaves its status alone."""
    service, officer = leader.service, leader.users.officer
    done = service.announcements.announce(officer, "Họp thôn lúc 8 giờ.", ["thon-a"])
    _dispatched(leader, done)
    _finish(leader, done, ("loa-a-01", "loa-a-02"))
    leader.sent.clear()
    with pytest.raises(ValidationError) as info:
        service.announcements.cancel(officer, done)
    assert info.value.field == "broadcast" and info.value.code == "ended"
    assert "đã kết thúc" in info.value.message
    assert broadcast_status(service, done) == "finished"
    assert leader.sent.on(THON_A) == []  # no STOP for what has ended
    result = service.announcements.cancel(officer, done, "Đính chính: họp lúc 9 giờ.")
    assert result.correction_id is not None and not result.stopped
    assert broadcast_status(service, done) == "finished"
    with service.db.session() as session:
        assert session.get(Broadcast, result.correction_id).corrects_id == done
        assert session.get(Broadcast, done).cancelled_at is None
        row = session.get(Broadcast, done)
        rights = broadcasts.cancel_rights(session, session.get(User, officer), row)
        assert rights == broadcasts.CancelRights(stop=False, correct=True)


def test_cancel_rights_follow_what_the_server_allows(leader: Leader) -> None:
    """The page offers exactly what `announcements.cancel` would accept."""
    service, users = leader.service, leader.users
    commune_wide = service.announcements.announce(users.officer, "Tin toàn xã.", ["xa-test"])
    own = service.announcements.announce(users.head_1, "Họp thôn.", ["thon-a"])
    for broadcast_id in (commune_wide, own):
        _dispatched(leader, broadcast_id)
    with service.db.session() as session:

        def rights(user_id: int, broadcast_id: int) -> broadcasts.CancelRights:
            user, row = session.get(User, user_id), session.get(Broadcast, broadcast_id)
            return broadcasts.cancel_rights(session, user, row)

        both, neither = broadcasts.CancelRights(True, True), broadcasts.CancelRights(False, False)
        assert rights(users.officer, commune_wide) == both
        assert rights(users.head_1, commune_wide) == neither  # reaches beyond Thôn A
        assert rights(users.viewer, commune_wide) == neither
        assert rights(users.leader, own) == neither
        assert rights(users.head_1, own) == both
    service.announcements.cancel(users.head_1, own)
    with service.db.session() as session:
        assert rights(users.head_1, own) == neither  # stopped: nothing left to do


def test_cancelling_a_series_run_ends_the_series(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    storm = approved_bulletin(service, officer, "Tin bão số 3", "Bão số 3.")
    schedule_id = service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=storm,
            kind=ScheduleKind.SERIES,
            zone_ids=["xa-test"],
            priority=Priority.EMERGENCY,
            interval_h=2,
            series_key="bao-so-3",
        ),
    )
    with service.db.session() as session:
        first = (
            session.query(Broadcast)
            .filter(Broadcast.schedule_id == schedule_id)
            .order_by(Broadcast.occurrence_at)
            .first()
        )
        first_id = first.id
    service.announcements.cancel(officer, first_id, "Bão đã tan, hủy tin bão.")
    with service.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        assert not schedule.active and schedule.ended_at is not None
        statuses = {
            row.status
            for row in session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id)
        }
    assert statuses == {"cancelled"}
    commune = protocol.zone_command_topic("xa-test")
    # the correction's own PLAY follows on the same topic once it is rendered (on a loaded
    # machine, before this line): what matters here is the one STOP
    stops = [
        s.command.body
        for s in leader.sent.on(commune)
        if s.command.kind is protocol.CommandKind.STOP
    ]
    assert stops == [protocol.StopBody(first_id)]
    for device in ("loa-a-01", "loa-b-01"):
        assert leader.sent.manifests(device)[-1].items == ()


def test_cancel_needs_the_broker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    service, _sent = recording_service(tmp_path / "data")
    service.dispatcher = None
    users = seed_commune(service)
    try:
        with pytest.raises(ServiceUnavailable):
            service.announcements.cancel(users.officer, 1)
    finally:
        service.stop()


def test_a_stop_that_could_not_be_sent_can_be_retried(
    leader: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = leader.service
    broadcast_id = service.announcements.announce(leader.users.officer, "Tin sai.", ["thon-a"])
    _dispatched(leader, broadcast_id)

    def broker_gone(*_args: object, **_kwargs: object) -> None:
        raise ServiceUnavailable("MQTT publish to loa/v1/zone/thon-a/cmd failed: no connection")

    monkeypatch.setattr(leader.sent, "_publish_payload", broker_gone)
    with pytest.raises(ServiceUnavailable):
        service.announcements.cancel(leader.users.officer, broadcast_id)
    assert broadcast_status(service, broadcast_id) == "dispatched"
    monkeypatch.undo()
    service.announcements.cancel(leader.users.officer, broadcast_id)
    assert broadcast_status(service, broadcast_id) == "cancelled"
