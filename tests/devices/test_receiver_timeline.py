"""The programme rules, without threads or waiting: `now` is an argument everywhere."""

from __future__ import annotations

import itertools

from devices.timeline import (
    DEFAULT_VALIDITY_S,
    DONE_LIMIT,
    Origin,
    Timeline,
)
from wire import protocol
from wire.protocol import EventKind, PlayBody, Priority

T0 = 1_800_000_000.0
SHA = "ab" * 32
_seq = itertools.count(1)


def body(broadcast_id: int = 1, item_id: str = "", **fields: object) -> PlayBody:
    return PlayBody(
        broadcast_id=broadcast_id,
        item_id=item_id,
        media_url="http://127.0.0.1/x.mp3",
        media_sha256=fields.pop("sha", SHA),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def command(payload: protocol.Body, issued_at: float = T0) -> protocol.Command:
    return protocol.new_command(
        payload, stream="loa/v1/zone/thon-1/cmd", seq=next(_seq), now=issued_at
    )


def manifest(
    items: list[PlayBody], issued_at: float = T0
) -> tuple[protocol.Command, protocol.ManifestBody]:
    payload = protocol.ManifestBody("loa-1", issued_at, issued_at + 3600, tuple(items))
    return command(payload, issued_at), payload


def kinds(notes: list) -> list[tuple[str, EventKind, str]]:
    return [(note.item.uid, note.kind, note.detail) for note in notes]


def test_priorities_order_due_items_and_series_within_a_level() -> None:
    timeline = Timeline()
    for index, (item_id, priority) in enumerate(
        [("n1", Priority.NORMAL), ("p1", Priority.PRIORITY), ("n2", Priority.NORMAL),
         ("e1", Priority.EMERGENCY), ("p2", Priority.PRIORITY)]
    ):  # fmt: skip
        timeline.add_play(
            command(body(index, item_id, priority=priority)),
            body(index, item_id, priority=priority),
            T0 + index * 0.1,
        )
    order = [item.uid for item in timeline.due(T0 + 1)]
    assert order == ["e1", "p1", "p2", "n1", "n2"]


def test_play_at_slots_and_lead() -> None:
    timeline = Timeline()
    later = body(1, "later", play_at=T0 + 10)
    timeline.add_play(command(later), later, T0)
    assert timeline.next_item(T0 + 9.0, 0.3) is None
    assert timeline.next_item(T0 + 9.8, 0.3).uid == "later"
    assert timeline.next_change(T0, 0.3) == T0 + 9.7
    # a priority item due later does not jump ahead of a normal that is due now
    now_item = body(2, "now")
    prio_later = body(3, "prio-later", priority=Priority.PRIORITY, play_at=T0 + 20)
    timeline.add_play(command(now_item), now_item, T0 + 10)
    timeline.add_play(command(prio_later), prio_later, T0 + 10)
    assert [i.uid for i in timeline.due(T0 + 10)] == ["later", "now"]


def test_expired_never_plays_late_but_valid_plays_at_once() -> None:
    timeline = Timeline()
    expired = body(1, "gone", play_at=T0, valid_until=T0 + 5)
    late = body(2, "late", play_at=T0, valid_until=T0 + 60)
    notes = timeline.add_play(command(expired), expired, T0 + 10)
    assert kinds(notes) == [("gone", EventKind.RECEIVED, ""), ("gone", EventKind.FAILED, "expired")]
    timeline.add_play(command(late), late, T0 + 10)
    assert timeline.next_item(T0 + 10, 0.3).uid == "late"
    assert kinds(timeline.expire(T0 + 61)) == [("late", EventKind.FAILED, "expired")]
    assert timeline.pending == {}


def test_default_deadline_without_valid_until() -> None:
    timeline = Timeline()
    plain = body(1)
    cmd = command(plain, issued_at=T0)
    timeline.add_play(cmd, plain, T0)
    [item] = timeline.pending.values()
    assert item.uid == f"cmd-{cmd.id}"
    assert item.deadline == T0 + DEFAULT_VALIDITY_S


def test_preemption_is_for_emergencies_only() -> None:
    timeline = Timeline()
    normal, prio, urgent = (
        body(1, "n"),
        body(2, "p", priority=Priority.PRIORITY),
        body(3, "e", priority=Priority.EMERGENCY),
    )
    timeline.add_play(command(normal), normal, T0)
    current = timeline.next_item(T0, 0.3)
    timeline.begin(current)
    timeline.add_play(command(prio), prio, T0 + 1)
    assert timeline.preemptor(current, T0 + 1, 0.3) is None
    timeline.add_play(command(urgent), urgent, T0 + 2)
    assert timeline.preemptor(current, T0 + 2, 0.3).uid == "e"
    assert timeline.preemptor(current, T0 + 2, 0.3, playable={"p"}) is None  # not fetched yet
    # the cut item resumes ahead of its level, after the emergency and the priority item
    timeline.requeue(current, preempted=True)
    later_normal = body(4, "n2")
    timeline.add_play(command(later_normal), later_normal, T0 + 1.5)
    assert [i.uid for i in timeline.due(T0 + 3)] == ["e", "p", "n", "n2"]
    emergency = timeline.next_item(T0 + 3, 0.3)
    timeline.begin(emergency)
    assert timeline.preemptor(emergency, T0 + 3, 0.3) is None  # emergencies play in series


def test_finished_items_never_come_back() -> None:
    timeline = Timeline()
    item_body = body(1, "daily-2024-05-01", play_at=T0)
    cmd, mf = manifest([item_body])
    timeline.set_manifest(cmd, mf, T0 - 60)
    item = timeline.next_item(T0, 0.3)
    timeline.begin(item)
    timeline.end(item, T0 + 5)
    assert timeline.memory_changed
    # the same manifest again (e.g. resumed from disk after a reboot): nothing to play
    again = Timeline(timeline.memory())
    assert again.set_manifest(cmd, mf, T0 + 6, restored=True) == []
    assert again.pending == {}
    # a play command for the same item id (the server re-sending what it has no answer for)
    # is answered with how the item ended and when, not played
    notes = again.add_play(command(item_body), item_body, T0 + 7)
    assert [(n.kind, n.detail, n.at) for n in notes] == [
        (EventKind.RECEIVED, "", None),
        (EventKind.FINISHED, "", T0 + 5),
    ]
    assert again.pending == {}


def test_an_ended_item_is_answered_with_its_outcome() -> None:
    timeline = Timeline()
    late = body(1, "late", play_at=T0, valid_until=T0 + 10)
    timeline.add_play(command(late), late, T0 + 20)  # arrives after its deadline
    notes = Timeline(timeline.memory()).add_play(command(late), late, T0 + 30)
    assert [(n.kind, n.detail) for n in notes] == [
        (EventKind.RECEIVED, ""),
        (EventKind.FAILED, "expired"),
    ]
    # a memory written before outcomes were kept only knows that the item is over
    old = timeline.memory()
    del old["outcomes"]
    notes = Timeline(old).add_play(command(late), late, T0 + 30)
    assert [(n.kind, n.detail) for n in notes] == [
        (EventKind.RECEIVED, ""),
        (EventKind.FAILED, "already played"),
    ]


def test_manifest_replaces_the_previous_one_whole() -> None:
    timeline = Timeline()
    a, b = body(1, "a", play_at=T0 + 100), body(2, "b", play_at=T0 + 200)
    ad_hoc = body(9, "ad-hoc", play_at=T0 + 150)
    timeline.add_play(command(ad_hoc), ad_hoc, T0)
    cmd1, mf1 = manifest([a, b])
    assert [n.kind for n in timeline.set_manifest(cmd1, mf1, T0)] == [EventKind.RECEIVED] * 2
    moved_b = body(2, "b", play_at=T0 + 300)
    c = body(3, "c", play_at=T0 + 400)
    cmd2, mf2 = manifest([moved_b, c], issued_at=T0 + 10)
    notes = timeline.set_manifest(cmd2, mf2, T0 + 10)
    assert kinds(notes) == [
        ("a", EventKind.FAILED, "withdrawn"),
        ("b", EventKind.RECEIVED, ""),
        ("c", EventKind.RECEIVED, ""),
    ]
    assert {uid: item.ready_at for uid, item in timeline.pending.items()} == {
        "ad-hoc": T0 + 150,
        "b": T0 + 300,
        "c": T0 + 400,
    }
    assert timeline.pending["ad-hoc"].origin is Origin.COMMAND
    # an unchanged manifest item keeps its place and reports nothing
    cmd3, mf3 = manifest([moved_b, c], issued_at=T0 + 20)
    assert timeline.set_manifest(cmd3, mf3, T0 + 20) == []


def test_stop_forgets_queued_manifest_and_later_copies() -> None:
    timeline = Timeline()
    items = [
        body(7, "b7-1", play_at=T0 + 100),
        body(7, "b7-2", play_at=T0 + 200),
        body(8, "b8", play_at=T0 + 300),
    ]
    cmd, mf = manifest(items)
    timeline.set_manifest(cmd, mf, T0)
    notes = timeline.stop(7, T0 + 10, T0 + 10)
    assert kinds(notes) == [
        ("b7-1", EventKind.FAILED, "stopped"),
        ("b7-2", EventKind.FAILED, "stopped"),
    ]
    assert list(timeline.pending) == ["b8"]
    # after a reboot the same (older) manifest is reloaded from disk: b7 stays forgotten
    again = Timeline(timeline.memory())
    again.set_manifest(cmd, mf, T0 + 20, restored=True)
    assert list(again.pending) == ["b8"]
    # a play command of broadcast 7 sent before the stop but delivered after it is refused
    delayed = body(7, "b7-late")
    assert kinds(again.add_play(command(delayed, issued_at=T0 + 5), delayed, T0 + 30))[-1] == (
        "b7-late",
        EventKind.FAILED,
        "stopped",
    )
    # a newer manifest (the server's correction) may schedule broadcast 7 again
    cmd2, mf2 = manifest([body(7, "b7-new", play_at=T0 + 500)], issued_at=T0 + 40)
    again.set_manifest(cmd2, mf2, T0 + 40)
    assert list(again.pending) == ["b7-new"]
    # stop everything
    assert kinds(again.stop(None, T0 + 50, T0 + 50)) == [("b7-new", EventKind.FAILED, "stopped")]


def test_memory_is_bounded() -> None:
    timeline = Timeline()
    for index in range(DONE_LIMIT + 50):
        item_body = body(1, f"i{index}")
        timeline.add_play(command(item_body, issued_at=T0 + index), item_body, T0 + index)
        item = timeline.next_item(T0 + index, 0.3)
        timeline.begin(item)
        timeline.end(item, T0 + index)
    assert len(timeline.memory()["done"]) == DONE_LIMIT
    assert not timeline.is_done("i0") and timeline.is_done(f"i{DONE_LIMIT + 49}")


def test_media_wanted_soonest_first_and_kept() -> None:
    timeline = Timeline()
    late, soon = (
        body(1, "late", play_at=T0 + 200, sha="11" * 32),
        body(2, "soon", play_at=T0 + 100, sha="22" * 32),
    )
    relay = PlayBody(
        broadcast_id=3,
        item_id="radio",
        content=protocol.ContentType.RELAY,
        relay_url="http://127.0.0.1/live",
        duration_s=60,
        play_at=T0 + 50,
    )
    cmd, mf = manifest([late, soon, relay])
    timeline.set_manifest(cmd, mf, T0)
    assert [i.uid for i in timeline.media_wanted()] == ["soon", "late"]
    assert timeline.media_kept() == {"11" * 32, "22" * 32}
    timeline.pending["soon"].fetched = True
    assert [i.uid for i in timeline.media_wanted()] == ["late"]


def test_a_cut_item_withdrawn_meanwhile_is_not_requeued() -> None:
    timeline = Timeline()
    cmd, mf = manifest([body(1, "a", play_at=T0), body(2, "b", play_at=T0 + 100)])
    timeline.set_manifest(cmd, mf, T0)
    current = timeline.next_item(T0, 0.3)
    timeline.begin(current)
    cmd2, mf2 = manifest([body(2, "b", play_at=T0 + 100)], issued_at=T0 + 1)
    assert timeline.set_manifest(cmd2, mf2, T0 + 1) == []  # on air: not withdrawn under it
    assert not timeline.requeue(current, preempted=True)
    assert list(timeline.pending) == ["b"] and timeline.current is None
