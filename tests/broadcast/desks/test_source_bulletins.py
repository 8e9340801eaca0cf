"""Bulletins from the province (TT-39): sent down, placed or declined by each commune, heading
the commune's next run (priority) or sent at once (emergency), and the province's view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from send_down_support import SendDownProvince, seed_send_down
from service_support import add_devices, broadcast_status, recording_service, wait_for
from sqlalchemy import select
from support import sql_statements

from broadcast import clock
from broadcast.const import BroadcastStatus, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.desks.source_bulletins import HEAD_STEP, ForwardState, forward_counts
from broadcast.errors import Conflict, NotFound, PermissionDenied, ValidationError
from broadcast.programme import planning
from broadcast.store.models import Broadcast, BulletinForward, Schedule, utcnow
from wire import protocol
from wire.protocol import Priority


@pytest.fixture
def province(tmp_path: Path) -> Iterator[SendDownProvince]:
    service, recorder = recording_service(tmp_path / "data", require_approval=False)
    seeded = seed_send_down(service)
    seeded.sent = recorder
    yield seeded
    service.stop()


def _bulletin(
    p: SendDownProvince, title: str = "Tin tỉnh", text: str = "Tỉnh thông báo lịch tiêm."
) -> int:
    return p.service.bulletins.create_bulletin(p.editor, title, text)


def _local(at: timedelta, fmt: str = "%Y-%m-%dT%H:%M") -> str:
    moment = clock.to_local(utcnow() + at)
    assert moment is not None
    return moment.strftime(fmt)


def _commune_run(p: SendDownProvince, officer: int, zone: str, at: str) -> int:
    bulletin = p.service.bulletins.create_bulletin(officer, "Bản tin xã", "Bản tin của xã.")
    return p.service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=[zone],
            priority=Priority.NORMAL,
            run_at=at,
        ),
    )


def test_a_normal_bulletin_waits_in_each_inbox_until_placed_or_declined(
    province: SendDownProvince,
) -> None:
    p, desk = province, province.service.source_bulletins
    bulletin = _bulletin(p)
    assert [c.id for c in desk.communes(p.editor)] == ["xa-a", "xa-b"]
    forwards = desk.send_down(p.editor, bulletin, None)  # every commune of the province
    assert len(forwards) == 2

    inbox_a = desk.inbox(p.officer_a)
    [waiting] = inbox_a.waiting
    assert waiting.status.commune_id == "xa-a" and waiting.status.state == "received"
    assert waiting.bulletin.title == "Tin tỉnh" and waiting.sent_by == "editor"
    assert {c.id for c in inbox_a.places} == {"xa-a", "thon-a1"}  # its own commune only
    assert [i.status.commune_id for i in desk.inbox(p.officer_b).waiting] == ["xa-b"]

    run_at = _local(timedelta(hours=3))
    schedule_id = desk.place(p.officer_a, waiting.status.forward_id, run_at)
    with p.service.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None and schedule.zone_ids == ["xa-a"]
        assert schedule.kind == "once" and schedule.priority == "normal"
    other = desk.inbox(p.officer_b).waiting[0].status.forward_id
    with pytest.raises(NotFound):  # a commune sees only its own inbox
        desk.place(p.officer_a, other, run_at)
    with pytest.raises(ValidationError) as refused:
        desk.decline(p.officer_b, other, "  ")
    assert refused.value.field == "reason"
    desk.decline(p.officer_b, other, "Trùng nội dung xã đã phát.")
    with pytest.raises(Conflict):
        desk.place(p.officer_b, other, run_at)

    [sent] = desk.sent(p.editor)
    by_commune = {c.commune_id: c for c in sent.communes}
    assert by_commune["xa-a"].state == "placed" and by_commune["xa-a"].decided_by == "officer-a"
    assert by_commune["xa-a"].run_at == clock.parse_local(run_at, "run_at")
    assert by_commune["xa-b"].state == "declined"
    assert by_commune["xa-b"].reason == "Trùng nội dung xã đã phát."
    assert sent.counts["placed"] == 1 and sent.counts["declined"] == 1


def test_placing_in_a_zone_outside_the_commune_is_refused(province: SendDownProvince) -> None:
    p, desk = province, province.service.source_bulletins
    [forward] = desk.send_down(p.editor, _bulletin(p), ["xa-a"])
    with pytest.raises(ValidationError) as refused:
        desk.place(p.officer_a, forward, _local(timedelta(hours=2)), ["thon-b1"])
    assert refused.value.code in ("outside_commune", "zone_out_of_reach")
    with pytest.raises(ValidationError):
        desk.place(p.officer_a, forward, "not a time")


def test_scope_and_roles(province: SendDownProvince) -> None:
    p, desk = province, province.service.source_bulletins
    bulletin = _bulletin(p)
    for not_sender in (p.officer_a, p.leader_a):
        with pytest.raises(PermissionDenied):
            desk.send_down(not_sender, bulletin, ["xa-a"])
    with pytest.raises(ValidationError):  # a village is not a commune
        desk.send_down(p.editor, bulletin, ["thon-a1"])
    with pytest.raises(PermissionDenied):
        desk.inbox(p.leader_a)  # placing is scheduling: the officer's
    own = p.service.bulletins.create_bulletin(p.officer_a, "Tin xã", "Tin của xã A.")
    for sender in (p.editor, p.admin):
        with pytest.raises(Conflict):  # a commune's own word is not the province's
            desk.send_down(sender, own, ["xa-b"])
    desk.send_down(p.editor, bulletin, ["xa-a"])
    with pytest.raises(Conflict):
        desk.send_down(p.editor, bulletin, ["xa-a", "xa-b"])  # xa-a has it already
    assert [s.bulletin.id for s in desk.sent(p.admin)] == [bulletin]


def test_a_province_editor_publishes_their_own_bulletin_by_sending_it(tmp_path: Path) -> None:
    service, _ = recording_service(tmp_path / "data")  # approval required
    p = seed_send_down(service)
    try:
        bulletin = service.bulletins.create_bulletin(p.editor, "Tin tỉnh", "Nội dung.")
        service.source_bulletins.send_down(p.editor, bulletin, ["xa-a"])
        assert service.bulletins.view(p.admin, bulletin).bulletin.status == "approved"
        other = service.bulletins.create_bulletin(p.admin, "Tin quản trị", "Nội dung khác.")
        with pytest.raises(NotFound):  # an installation-wide admin's is not the editor's
            service.source_bulletins.send_down(p.editor, other, ["xa-a"])
    finally:
        service.stop()


def test_a_priority_bulletin_heads_the_communes_next_run_in_the_communes_order(
    province: SendDownProvince,
) -> None:
    p, desk = province, province.service.source_bulletins
    run_at = _local(timedelta(hours=2))
    _commune_run(p, p.officer_a, "thon-a1", run_at)
    _commune_run(p, p.officer_a, "xa-a", _local(timedelta(hours=5)))
    start = clock.parse_local(run_at, "run_at")
    first = desk.send_down(p.editor, _bulletin(p, "Ưu tiên 1"), ["xa-a", "xa-b"], "priority")
    second = desk.send_down(p.editor, _bulletin(p, "Ưu tiên 2"), ["xa-a"], "priority")

    inbox = desk.inbox(p.officer_a)
    [run] = inbox.runs
    assert run.run_at == start and run.commune_id == "xa-a"
    assert [i.bulletin.title for i in run.items] == ["Ưu tiên 1", "Ưu tiên 2"]
    with p.service.db.session() as session:
        starts = [session.get(Schedule, i.status.schedule_id).run_at for i in run.items]
        assert starts == [start - 2 * HEAD_STEP, start - HEAD_STEP]
        b = session.scalar(select(BulletinForward).where(BulletinForward.id == first[1]))
        assert b is not None and b.state == "received"  # Xã B has no run: it waits
    assert [i.status.forward_id for i in desk.inbox(p.officer_b).waiting] == [first[1]]
    with pytest.raises(Conflict):  # a priority bulletin must play
        desk.decline(p.officer_b, first[1], "Không phát.")

    desk.move(p.officer_a, second[0], -1)
    [run] = desk.inbox(p.officer_a).runs
    assert [i.bulletin.title for i in run.items] == ["Ưu tiên 2", "Ưu tiên 1"]
    with pytest.raises(ValidationError):  # every item of the run, no more, no less
        desk.reorder(p.officer_a, [first[0]])

    # the leader plans the runs: the manifest of Thôn A1's receiver plays them first
    with p.service.db.session() as session:
        planning.plan(session, now=utcnow(), horizon_s=48 * 3600, grace_s=900, item_valid_s=900)
    desk.move(p.officer_a, first[0], -1)  # planned rows move with their schedules
    with p.service.db.session() as session:
        rows = session.scalars(
            select(Broadcast).where(Broadcast.status == BroadcastStatus.SCHEDULED.value)
        ).all()
        heads = sorted(
            (row.play_at, row.title, row.priority) for row in rows if row.play_at <= start
        )
    assert heads[:3] == [
        (start - 2 * HEAD_STEP, "Ưu tiên 1", "priority"),
        (start - HEAD_STEP, "Ưu tiên 2", "priority"),
        (start, "Bản tin xã", "normal"),
    ]


def test_an_emergency_goes_out_at_once_to_the_communes_and_is_corrected_like_any(
    province: SendDownProvince,
) -> None:
    p, desk = province, province.service.source_bulletins
    sent = p.sent
    assert sent is not None
    bulletin = _bulletin(p, "Lũ quét", "Nguy cơ lũ quét, di dời ngay.")
    forwards = desk.send_down(p.editor, bulletin, ["xa-a"], "emergency")
    [status] = desk.status(p.editor, bulletin).communes
    assert status.state == "placed" and status.broadcast_id is not None
    broadcast_id = status.broadcast_id
    wait_for(lambda: sent.on(protocol.zone_command_topic("xa-a")), what="the PLAY on Xã A's topic")
    assert not sent.on(protocol.zone_command_topic("xa-b"))
    [play] = sent.on(protocol.zone_command_topic("xa-a"))
    assert play.command.body.priority is Priority.EMERGENCY
    assert desk.forward(p.officer_a, forwards[0]).status.state == "placed"

    result = p.service.announcements.cancel(p.editor, broadcast_id, "Đã hết nguy cơ.")
    assert result.correction_id is not None
    with pytest.raises(NotFound):  # Xã B's officer does not even see Xã A's broadcast
        p.service.announcements.cancel(p.officer_b, result.correction_id)

    # the commune's receiver finishes it: played, with its delivery rate
    p.service._on_event(
        protocol.DeviceEvent(
            device_id="loa-a1",
            command_id=play.command.id,
            broadcast_id=broadcast_id,
            item_id=f"b{broadcast_id}",
            kind=protocol.EventKind.FINISHED,
            at=clock.to_timestamp(utcnow()),
        )
    )
    [status] = desk.status(p.editor, bulletin).communes
    assert status.deliveries == 1 and status.finished == 1 and status.rate == 1.0
    assert status.state == ForwardState.PLAYED and status.played_at is not None


def test_the_next_run_is_the_communes_own_and_not_cancelled(province: SendDownProvince) -> None:
    """A province-wide schedule is not the commune's programme, a cancelled run is no run, and
    a run sooner than the lead is too close: the priority bulletin heads the next one after."""
    p, desk = province, province.service.source_bulletins
    soon = _commune_run(p, p.officer_a, "xa-a", _local(timedelta(seconds=30), "%Y-%m-%dT%H:%M:%S"))
    assert soon
    province_wide = p.service.bulletins.create_bulletin(p.admin, "Tin toàn tỉnh", "Toàn tỉnh.")
    p.service.scheduling.schedule(
        p.admin,
        ScheduleRequest(
            bulletin_id=province_wide, kind=ScheduleKind.ONCE, zone_ids=["tinh-x"],
            priority=Priority.NORMAL, run_at=_local(timedelta(hours=1)),
        ),
    )  # fmt: skip
    cancelled = _commune_run(p, p.officer_a, "thon-a1", _local(timedelta(hours=2)))
    with p.service.db.session() as session:
        planning.plan(session, now=utcnow(), horizon_s=48 * 3600, grace_s=900, item_valid_s=900)
        row = session.scalar(select(Broadcast).where(Broadcast.schedule_id == cancelled))
        assert row is not None
        row_id = row.id
    p.service.announcements.cancel(p.officer_a, row_id)  # that one run only
    with p.service.db.session() as session:
        run = session.get(Broadcast, row_id)
        assert run is not None and run.status == BroadcastStatus.CANCELLED
    expected = _local(timedelta(hours=3))
    _commune_run(p, p.officer_a, "thon-a1", expected)
    [forward] = desk.send_down(p.editor, _bulletin(p), ["xa-a"], "priority")
    [run] = desk.inbox(p.officer_a).runs
    assert run.run_at == clock.parse_local(expected, "run_at")
    assert run.items[0].status.forward_id == forward


def test_a_waiting_priority_bulletin_heads_a_run_made_later(province: SendDownProvince) -> None:
    p, desk = province, province.service.source_bulletins
    [waiting] = desk.send_down(p.editor, _bulletin(p, "Ưu tiên"), ["xa-b"], "priority")
    with pytest.raises(Conflict) as none_yet:  # Xã B has no run in the horizon
        desk.head(p.officer_b, waiting)
    assert none_yet.value.code == "no_run"
    assert desk.forward(p.officer_b, waiting).status.state == "received"
    with pytest.raises(NotFound):
        desk.head(p.officer_a, waiting)
    later = _local(timedelta(hours=4))
    _commune_run(p, p.officer_b, "thon-b1", later)
    assert desk.head(p.officer_b, waiting) == clock.parse_local(later, "run_at")
    item = desk.forward(p.officer_b, waiting)
    assert item.status.state == "placed" and item.status.decided_by == "officer-b"
    assert [i.status.forward_id for i in desk.inbox(p.officer_b).runs[0].items] == [waiting]
    with pytest.raises(Conflict):
        desk.head(p.officer_b, waiting)  # not waiting any more


def test_forward_counts_per_commune_for_the_province_report(province: SendDownProvince) -> None:
    p, desk = province, province.service.source_bulletins
    sent = p.sent
    assert sent is not None
    declined, held = desk.send_down(p.editor, _bulletin(p, "Thường"), None)
    desk.decline(p.officer_a, declined, "Không phù hợp.")
    [alert] = desk.send_down(p.editor, _bulletin(p, "Khẩn"), ["xa-a"], "emergency")
    [play] = wait_for(lambda: sent.on(protocol.zone_command_topic("xa-a")), what="the PLAY")
    broadcast_id = desk.forward(p.officer_a, alert).status.broadcast_id
    p.service._on_event(
        protocol.DeviceEvent(
            device_id="loa-a1", command_id=play.command.id, broadcast_id=broadcast_id,
            kind=protocol.EventKind.FINISHED, at=clock.to_timestamp(utcnow()),
        )
    )  # fmt: skip
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    with p.service.db.session() as session:
        counts = forward_counts(session, ["xa-a", "xa-b"], start, end)
        assert counts == {"xa-a": (1, 0, 1), "xa-b": (0, 1, 0)}
        assert forward_counts(session, ["xa-b"], end, end + timedelta(days=1)) == {}
    assert held


def test_the_provinces_list_does_not_query_per_receiver(province: SendDownProvince) -> None:
    """Each commune's deliveries are counted in SQL: a bulletin heard by six times as many
    receivers is read with the same statements."""
    p, desk = province, province.service.source_bulletins
    few = _bulletin(p, "Một")
    desk.send_down(p.editor, few, None, "emergency")
    add_devices(p.service, {f"loa-a1-{n:02d}": "thon-a1" for n in range(2, 12)})
    many = _bulletin(p, "Hai")
    desk.send_down(p.editor, many, None, "emergency")
    sent = p.sent
    assert sent is not None
    topic = protocol.zone_command_topic("tinh-x")  # both communes: the province's one topic
    wait_for(lambda: len(sent.on(topic)) == 2, what="both sent (the outbox's own statements)")
    for bulletin_id in (few, many):
        broadcast_id = desk.status(p.editor, bulletin_id).communes[0].broadcast_id
        assert broadcast_id is not None
        wait_for(lambda b=broadcast_id: broadcast_status(p.service, b) == "dispatched")

    def reading(bulletin_id: int) -> tuple[int, int]:
        with sql_statements(p.service.db.engine) as statements:
            sent = desk.status(p.editor, bulletin_id)
        return len(statements), sum(row.deliveries for row in sent.communes)

    assert reading(few)[1] == 2 and reading(many)[1] == 12
    assert reading(many)[0] == reading(few)[0]
