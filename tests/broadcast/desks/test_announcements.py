"""The announcements desk's reading side: what the pages and the API show, as plain data, each
reader seeing only what they may (sending, stopping and correcting are in
tests/broadcast/sending/test_dispatch_and_cancel.py)."""

from __future__ import annotations

import dataclasses
import time

import pytest
from service_support import wait_for

from broadcast.desks.announcements import BroadcastRecord, Progress
from broadcast.errors import NotFound, PermissionDenied
from broadcast.store.models import User
from wire import protocol
from wire.protocol import EventKind

from ..conftest import Leader


def _event(leader: Leader, broadcast_id: int, kind: EventKind, device: str) -> None:
    leader.service._on_event(protocol.DeviceEvent(device, "cmd", broadcast_id, kind, time.time()))


def _sent(leader: Leader, *args: object, **kwargs: object) -> int:
    broadcast_id = leader.service.announcements.announce(*args, **kwargs)  # type: ignore[arg-type]
    wait_for(
        lambda: (
            leader.service.announcements.broadcast(leader.users.admin, broadcast_id).status
            == "dispatched"
        ),
        what=f"broadcast {broadcast_id} sent",
    )
    return broadcast_id


def test_reach_offers_what_each_role_may_announce_to(leader: Leader) -> None:
    desk, users = leader.service.announcements, leader.users
    officer = desk.reach(users.officer)
    assert [(zone.id, zone.receivers) for zone in officer.zones] == [
        ("xa-test", 3),
        ("thon-a", 2),
        ("thon-b", 1),
    ]
    assert [receiver.id for receiver in officer.receivers] == ["loa-a-01", "loa-a-02", "loa-b-01"]
    head = desk.reach(users.head_1)
    assert [zone.id for zone in head.zones] == ["thon-a"]
    assert [receiver.id for receiver in head.receivers] == ["loa-a-01", "loa-a-02"]
    for nobody in (users.viewer, users.leader):
        assert not desk.can_announce(nobody)
        with pytest.raises(PermissionDenied):
            desk.reach(nobody)
    assert desk.can_announce(users.officer) and desk.can_announce(users.head_1)


def test_a_disabled_announcer_may_not_announce(leader: Leader) -> None:
    with leader.service.db.session() as session:
        user = session.get(User, leader.users.officer)
        assert user is not None
        user.active = False
    assert not leader.service.announcements.can_announce(leader.users.officer)


def test_a_village_head_reads_a_commune_wide_broadcast_with_their_receivers_only(
    leader: Leader,
) -> None:
    desk, users = leader.service.announcements, leader.users
    commune_wide = _sent(leader, users.officer, "Tin toàn xã.", ["xa-test"])
    other_village = _sent(leader, users.officer, "Tin thôn B.", ["thon-b"])

    whole = desk.broadcast(users.officer, commune_wide)
    assert {d.device_id for d in whole.deliveries} == {"loa-a-01", "loa-a-02", "loa-b-01"}
    own = desk.broadcast(users.head_1, commune_wide)
    assert {d.device_id for d in own.deliveries} == {"loa-a-01", "loa-a-02"}
    assert own.zone_ids == ("xa-test",) and own.text == "Tin toàn xã."
    with pytest.raises(NotFound):
        desk.broadcast(users.head_1, other_village)
    with pytest.raises(NotFound):
        desk.watch(users.head_1, other_village)

    listed = {row.broadcast.id: row.counts for row in desk.recent(users.head_1, 10)}
    assert listed == {commune_wide: {"queued": 2}}
    everything = {row.broadcast.id: row.counts for row in desk.recent(users.officer, 10)}
    assert everything == {commune_wide: {"queued": 3}, other_village: {"queued": 1}}


def test_progress_says_when_each_receiver_got_where_it_is(leader: Leader) -> None:
    desk, users = leader.service.announcements, leader.users
    broadcast_id = _sent(leader, users.officer, "Họp thôn.", ["thon-a"])
    read = desk.watch(users.head_1, broadcast_id)
    first = read()
    assert isinstance(first, Progress)
    assert first.counts == {"queued": 2} and not first.final and not first.ended
    assert [(r.device_id, r.name, r.zone, r.at) for r in first.receivers] == [
        ("loa-a-01", "loa-a-01", "Thôn A", None),
        ("loa-a-02", "loa-a-02", "Thôn A", None),
    ]

    for device in ("loa-a-01", "loa-a-02"):
        _event(leader, broadcast_id, EventKind.FINISHED, device)
    done = read()
    assert done is not None and done.final and done.ended
    assert done.counts == {"finished": 2} and done.status == "finished"
    assert all(receiver.at is not None for receiver in done.receivers)
    live = desk.live(users.officer, broadcast_id)
    assert live.progress == done and live.broadcast.ended


def test_a_page_links_corrections_both_ways_and_says_what_the_reader_may_do(
    leader: Leader,
) -> None:
    desk, users = leader.service.announcements, leader.users
    wrong = _sent(leader, users.officer, "Họp lúc 8 giờ.", ["thon-a"])
    result = desk.cancel(users.officer, wrong, "Họp lúc 9 giờ.")
    assert result.correction_id is not None

    page = desk.page(users.officer, wrong)
    assert page.broadcast.status == "cancelled" and page.broadcast.cancelled_at is not None
    assert [(link.id, link.title) for link in page.corrections] == [
        (result.correction_id, "Đính chính: Họp lúc 8 giờ.")
    ]
    assert page.corrected is None
    assert not page.rights.stop and not page.rights.correct  # stopped: nothing more to do
    assert page.zone_names["thon-a"] == "Thôn A"

    correction = desk.page(users.head_1, result.correction_id)
    assert correction.corrected is not None and correction.corrected.id == wrong
    assert correction.zone_names == {"thon-a": "Thôn A", "xa-test": "Xã Thử"}
    viewer = desk.page(users.viewer, result.correction_id)
    assert not viewer.rights.stop and not viewer.rights.correct


def test_what_the_desk_returns_is_plain_data(leader: Leader) -> None:
    """Records outlive their transaction and cannot be changed by a page."""
    broadcast_id = _sent(leader, leader.users.officer, "Mất điện.", ["thon-b"])
    record = leader.service.announcements.broadcast(leader.users.officer, broadcast_id)
    assert isinstance(record, BroadcastRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "cancelled"  # type: ignore[misc]
    assert [d.state for d in record.deliveries] == ["queued"]
