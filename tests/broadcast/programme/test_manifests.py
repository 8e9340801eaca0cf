"""Planned runs and manifests: each receiver's signed, retained programme of the next 48 h.

The contract with the receiver (wire/protocol.py): a MANIFEST command, retained, on
`device_manifest_topic(id)`, whose `stream` is that topic and whose `seq` rises; every item has
a unique `item_id` (`s<schedule>-<epoch>`), `play_at`, `valid_until`, a media url + sha256 or a
relay url + duration, priority, repeat and the broadcast id of its log row.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, timedelta

import pytest
from service_support import approved_bulletin, waiting_runs

from broadcast import clock
from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import ServiceUnavailable
from broadcast.programme import leader as leader_module
from broadcast.programme import planning
from broadcast.store.models import Broadcast, Device, Schedule, utcnow
from wire import protocol
from wire.protocol import DeviceEvent, EventKind, Priority

from ..conftest import Leader


def _daily(leader: Leader, time_of_day: str = "17:00", zones: list[str] | None = None) -> int:
    bulletin = approved_bulletin(leader.service, leader.users.officer, "Bản tin chiều", "Bản tin.")
    return leader.service.scheduling.schedule(
        leader.users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=zones or ["thon-a"],
            priority=Priority.NORMAL,
            time_of_day=time_of_day,
        ),
    )


def _rows(leader: Leader, schedule_id: int) -> list[Broadcast]:
    with leader.service.db.session() as session:
        query = session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id)
        rows = list(query.order_by(Broadcast.occurrence_at))
        for row in rows:
            _ = row.deliveries
        return rows


def test_every_run_in_the_horizon_gets_a_log_row(leader: Leader) -> None:
    schedule_id = _daily(leader)
    rows = _rows(leader, schedule_id)
    assert len(rows) == 2  # a daily run twice in 48 h
    for row in rows:
        assert row.status == "scheduled" and row.source == "schedule"
        assert row.play_at == row.occurrence_at
        assert row.valid_until == row.play_at + timedelta(minutes=15)
        epoch = int(row.occurrence_at.replace(tzinfo=UTC).timestamp())
        assert row.item_id == f"s{schedule_id}-{epoch}"
        assert clock.format_local(row.occurrence_at, "%H:%M") == "17:00"
        assert [(d.device_id, d.state) for d in row.deliveries] == [
            ("loa-a-01", "queued"),
            ("loa-a-02", "queued"),
        ]
    assert waiting_runs(leader.service.scheduler) == {row.id for row in rows}


def test_manifests_are_signed_retained_and_per_device(leader: Leader) -> None:
    schedule_id = _daily(leader)
    rows = _rows(leader, schedule_id)
    with leader.service.db.session() as session:
        media = session.get(Schedule, schedule_id).media_sha256
    topic = protocol.device_manifest_topic("loa-a-01")
    sent = leader.sent.on(topic)[-1]
    assert sent.retain and sent.command.kind is protocol.CommandKind.MANIFEST
    assert sent.command.stream == topic
    # a retained manifest must still verify when a receiver comes back hours later
    assert sent.command.expires_at - sent.command.issued_at >= protocol.MANIFEST_HORIZON_S
    body = sent.command.body
    assert isinstance(body, protocol.ManifestBody) and body.device_id == "loa-a-01"
    assert body.horizon_until - body.generated_at == protocol.MANIFEST_HORIZON_S
    assert [item.item_id for item in body.items] == [row.item_id for row in rows]
    first = body.items[0]
    assert first.broadcast_id == rows[0].id
    assert first.play_at == clock.to_timestamp(rows[0].play_at)
    assert first.valid_until == first.play_at + 15 * 60
    assert first.media_sha256 == media
    assert first.media_url == leader.service.settings.media_url(media)
    assert first.content is protocol.ContentType.MEDIA
    assert first.priority is Priority.NORMAL and first.repeat == 1
    # what the receiver does with it: the wire form round-trips through its parser
    assert protocol.ManifestBody.from_dict(body.to_dict()) == body
    assert leader.sent.manifests("loa-b-01")[-1].items == ()  # not a target


def test_sequence_rises_on_every_stream(leader: Leader) -> None:
    _daily(leader)
    _daily(leader, "06:00", ["thon-b"])
    leader.service.announcements.announce(leader.users.officer, "Mất điện chiều nay.", ["thon-a"])
    leader.service.leader.refresh(force_manifests=True)
    by_stream: dict[str, list[int]] = defaultdict(list)
    for sent in leader.sent.sent:
        assert sent.command.stream == sent.topic
        by_stream[sent.topic].append(sent.command.seq)
    assert len(by_stream) >= 3
    for seqs in by_stream.values():
        assert all(b == a + 1 for a, b in itertools.pairwise(seqs)), seqs


def test_only_changed_manifests_are_published(leader: Leader) -> None:
    schedule_id = _daily(leader)
    leader.sent.clear()
    leader.service.leader.refresh()
    assert leader.sent.sent == []  # nothing changed
    leader.service.scheduling.cancel(leader.users.officer, schedule_id)
    changed = {sent.topic for sent in leader.sent.sent}
    assert changed == {
        protocol.device_manifest_topic("loa-a-01"),
        protocol.device_manifest_topic("loa-a-02"),
    }
    assert leader.sent.manifests("loa-a-01")[-1].items == ()
    assert {row.status for row in _rows(leader, schedule_id)} == {"cancelled"}
    assert waiting_runs(leader.service.scheduler) == set()


def _reports(leader: Leader, device_id: str, seq: int | None, *, online: bool = True,
             published_ago_s: float = 60, reported_ago_s: float = 5) -> None:  # fmt: skip
    """The receiver's last state named manifest `seq`, `reported_ago_s` ago; its latest
    manifest went out `published_ago_s` ago."""
    now = utcnow()
    with leader.service.db.session() as session:
        device = session.get(Device, device_id)
        assert device is not None
        device.online = online
        device.status_extra = {"manifest_seq": seq}
        device.manifest_published_at = now - timedelta(seconds=published_ago_s)
        device.last_seen = now - timedelta(seconds=reported_ago_s)


def test_a_receiver_still_reporting_an_older_manifest_is_sent_the_latest_again(
    leader: Leader,
) -> None:
    """A broker may drop a retained update (nats-server did, while the receiver's subscription
    was being made): the receiver's own report says so, and the latest goes out again."""
    _daily(leader)
    latest = {d: leader.sent.on(protocol.device_manifest_topic(d))[-1].command.seq
              for d in ("loa-a-01", "loa-a-02", "loa-b-01")}  # fmt: skip
    _reports(leader, "loa-a-01", latest["loa-a-01"] - 1)  # behind: sent again
    _reports(leader, "loa-a-02", latest["loa-a-02"])  # up to date
    _reports(leader, "loa-b-01", latest["loa-b-01"] - 1, online=False)  # away: it will ask
    leader.sent.clear()
    leader.service.leader.catch_up_manifests()
    [again] = leader.sent.sent
    assert again.topic == protocol.device_manifest_topic("loa-a-01") and again.retain
    assert again.command.seq == latest["loa-a-01"] + 1
    assert [item.item_id for item in again.command.body.items] != []  # the whole programme
    with leader.service.db.session() as session:
        assert session.get(Device, "loa-a-01").manifest_seq == again.command.seq

    # at most once per grace period each: the wait starts again with what was just sent
    leader.sent.clear()
    _reports(leader, "loa-a-01", latest["loa-a-01"] - 1, published_ago_s=1, reported_ago_s=0)
    leader.service.leader.catch_up_manifests()
    assert leader.sent.sent == []
    # a report made before the publish says nothing about it yet
    _reports(leader, "loa-a-01", latest["loa-a-01"] - 1, published_ago_s=60, reported_ago_s=90)
    leader.service.leader.catch_up_manifests()
    assert leader.sent.sent == []


def test_a_finished_item_leaves_that_receivers_manifest(leader: Leader) -> None:
    schedule_id = _daily(leader)
    first = _rows(leader, schedule_id)[0]
    leader.service._on_event(
        DeviceEvent("loa-a-01", "m", first.id, EventKind.FINISHED, 0.0, item_id=first.item_id)
    )
    leader.service.leader.refresh()
    assert first.item_id not in [i.item_id for i in leader.sent.manifests("loa-a-01")[-1].items]
    assert first.item_id in [i.item_id for i in leader.sent.manifests("loa-a-02")[-1].items]


def test_a_new_series_replaces_the_older_one(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    bulletin = approved_bulletin(service, officer, "Tin bão số 3", "Bão số 3 đang mạnh lên.")

    def series(text_key: str, start: str = "") -> int:
        return service.scheduling.schedule(
            officer,
            ScheduleRequest(
                bulletin_id=bulletin,
                kind=ScheduleKind.SERIES,
                zone_ids=["xa-test"],
                priority=Priority.EMERGENCY,
                interval_h=2,
                series_key=text_key,
                run_at=start,
            ),
        )

    old = series("bao-so-3")
    old_rows = _rows(leader, old)
    _assert_covers_horizon(old_rows, timedelta(hours=2))  # every 2 h for 48 h
    assert old_rows[0].valid_until == old_rows[0].play_at + timedelta(hours=2)
    new = series("bao-so-3")
    with service.db.session() as session:
        replaced = session.get(Schedule, old)
        assert not replaced.active and replaced.replaced_by_id == new
        assert replaced.ended_at is not None
    first, *waiting = _rows(leader, old)
    assert first.status in {"cancelled", "dispatched"}  # its first run is due now: it may fire
    assert {row.status for row in waiting} == {"cancelled"}
    items = leader.sent.manifests("loa-b-01")[-1].items
    assert {item.broadcast_id for item in items} == {row.id for row in _rows(leader, new)}
    assert all(item.priority is Priority.EMERGENCY for item in items)
    later = clock.to_local(utcnow() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    other_series = series("lu-song-ma", later)  # another key does not replace it
    with service.db.session() as session:
        assert session.get(Schedule, new).active and session.get(Schedule, other_series).active


def test_a_receiver_registered_later_gets_planned_runs(leader: Leader) -> None:
    schedule_id = _daily(leader)
    leader.service.fleet.register_device("loa-a-03", "thon-a")
    rows = _rows(leader, schedule_id)
    assert all("loa-a-03" in {d.device_id for d in row.deliveries} for row in rows)
    assert [i.item_id for i in leader.sent.manifests("loa-a-03")[-1].items] == [
        row.item_id for row in rows
    ]


def test_a_relay_item_carries_its_stream_and_length(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    relay = approved_bulletin(
        service, officer, "Thời sự VOV1", relay_url="https://radio.example.vn/vov1.mp3", minutes=30
    )
    service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=relay,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-b"],
            priority=Priority.NORMAL,
            time_of_day="06:00",
            repeat=3,  # a relay plays once, for its length
        ),
    )
    item = leader.sent.manifests("loa-b-01")[-1].items[0]
    assert item.content is protocol.ContentType.RELAY
    assert item.relay_url == "https://radio.example.vn/vov1.mp3"
    assert item.duration_s == 1800 and item.repeat == 1
    assert item.media_url == "" and item.media_sha256 == ""
    assert protocol.PlayBody.from_dict(
        protocol.ManifestBody("x", 0, 0, (item,)).to_dict()["items"][0]
    )


def test_named_devices_are_targets_too(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    bulletin = approved_bulletin(service, officer, "Họp tổ", "Họp tổ dân phố.")
    schedule_id = service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-a"],
            device_ids=["loa-a-01", "loa-b-01"],  # loa-a-01 is covered by thon-a
            priority=Priority.NORMAL,
            time_of_day="19:00",
        ),
    )
    with service.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule.zone_ids == ["thon-a"] and schedule.device_ids == ["loa-b-01"]
    row = _rows(leader, schedule_id)[0]
    assert sorted(d.device_id for d in row.deliveries) == ["loa-a-01", "loa-a-02", "loa-b-01"]
    assert leader.sent.manifests("loa-b-01")[-1].items[0].item_id == row.item_id


def test_a_stale_manifest_is_published_again(leader: Leader) -> None:
    with leader.service.db.session() as session:
        device = session.get(Device, "loa-b-01")
        device.manifest_published_at = utcnow() - timedelta(hours=25)
    leader.sent.clear()
    leader.service.leader.refresh()
    assert [sent.topic for sent in leader.sent.sent] == [protocol.device_manifest_topic("loa-b-01")]


def test_standby_changes_reach_the_leader(leader: Leader) -> None:
    """A schedule made in another process only bumps the programme revision; the leader's
    next tick plans it and publishes the manifests."""
    from service_support import recording_service

    standby, standby_sent = recording_service(leader.service.settings.data_dir)
    standby.start()
    try:
        assert not standby.leading
        bulletin = approved_bulletin(standby, leader.users.officer, "Bản tin", "Bản tin sáng.")
        schedule_id = standby.scheduling.schedule(
            leader.users.officer,
            ScheduleRequest(
                bulletin_id=bulletin,
                kind=ScheduleKind.DAILY,
                zone_ids=["thon-b"],
                priority=Priority.NORMAL,
                time_of_day="07:00",
            ),
        )
        assert standby_sent.sent == []  # a standby publishes no manifests
        leader.service.leader.tick()
        assert len(_rows(leader, schedule_id)) == 2
        assert len(leader.sent.manifests("loa-b-01")[-1].items) == 2
    finally:
        standby.stop()


def test_plan_is_idempotent(leader: Leader) -> None:
    schedule_id = _daily(leader)
    with leader.service.db.session() as session:
        again = planning.plan(
            session, now=utcnow(), horizon_s=48 * 3600, grace_s=900, item_valid_s=900
        )
    assert again.created == [] and again.missed == []
    assert len(_rows(leader, schedule_id)) == 2


def _assert_covers_horizon(rows: list, interval: timedelta) -> None:  # type: ignore[type-arg]
    """Runs every `interval` from now to the 48 h horizon: whether the run falling exactly on the
    horizon is in depends on the milliseconds between scheduling and planning."""
    horizon = timedelta(hours=48)
    assert len(rows) in (horizon // interval, horizon // interval + 1)
    assert all(b.play_at - a.play_at == interval for a, b in itertools.pairwise(rows))
    assert abs(rows[0].play_at - utcnow()) < timedelta(minutes=5)


@pytest.mark.parametrize("hours", [1, 3])
def test_series_items_stay_valid_until_the_next_one(leader: Leader, hours: int) -> None:
    service, officer = leader.service, leader.users.officer
    bulletin = approved_bulletin(service, officer, "Tin lũ", "Lũ trên sông.")
    schedule_id = service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.SERIES,
            zone_ids=["thon-b"],
            priority=Priority.PRIORITY,
            interval_h=hours,
            series_key=f"lu-{hours}",
        ),
    )
    rows = _rows(leader, schedule_id)
    _assert_covers_horizon(rows, timedelta(hours=hours))
    assert all(r.valid_until - r.play_at == timedelta(hours=hours) for r in rows)


def test_a_batch_of_manifests_that_failed_goes_out_at_the_next_refresh(
    leader: Leader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifests go out in batches; one that fails leaves its receivers unmarked, so the next
    refresh publishes theirs, and only theirs, again."""
    monkeypatch.setattr(leader_module, "MANIFEST_BATCH", 1)
    publish = leader.sent._publish_payload
    failing = protocol.device_manifest_topic("loa-a-01")

    def refused(topic: str, payload: bytes, retain: bool) -> object:
        if topic == failing:
            raise ServiceUnavailable(f"MQTT publish to {topic} failed: no connection")
        return publish(topic, payload, retain)

    monkeypatch.setattr(leader.sent, "_publish_payload", refused)
    leader.sent.clear()
    _daily(leader)
    assert leader.sent.on(failing) == []
    assert len(leader.sent.manifests("loa-a-02")[-1].items) == 2  # its batch went out
    monkeypatch.undo()
    leader.sent.clear()
    leader.service.leader.refresh()
    assert [s.topic for s in leader.sent.sent] == [failing]
    assert len(leader.sent.manifests("loa-a-01")[-1].items) == 2
