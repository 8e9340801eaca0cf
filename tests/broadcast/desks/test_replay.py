"""The replay desk: what a commune's public page and podcast list, and what they never do
(drafts, runs to come, stopped, failed, internal, another commune's, older than 30 days), the
commune's switch, and listeners' feedback: its limits, its rate limit and its moderation's
scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from media_support import silent_mp3
from service_support import Province

from broadcast.desks import replay
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Bulletin, Feedback, Schedule, Zone

NOW = datetime(2026, 12, 7, 5, 0)  # 12:00 in Hà Nội


MP3 = silent_mp3()


@dataclass
class World:
    service: BroadcastService
    province: Province
    ids: dict[str, int]
    sha: str


def _broadcast(session: object, title: str, zones: list[str], **fields: object) -> int:
    broadcast = Broadcast(
        title=title,
        text=f"Nội dung {title}.",
        priority="normal",
        zone_ids=zones,
        source=fields.pop("source", "announcement"),
        status=fields.pop("status", "finished"),
        play_at=fields.pop("play_at", NOW - timedelta(hours=2)),
        media_sha256=fields.pop("media_sha256", None),
        **fields,
    )
    session.add(broadcast)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return broadcast.id


@pytest.fixture
def world(service: BroadcastService, province: Province) -> World:
    sha = service.media.put_bytes(MP3)
    ids: dict[str, int] = {}
    with service.db.session() as session:
        session.get(Zone, province.commune_a).replay_public = True
        internal_bulletin = Bulletin(title="Họp chi bộ", text="Họp.", internal=True)
        session.add(internal_bulletin)
        session.flush()
        schedule = Schedule(
            bulletin_id=internal_bulletin.id,
            kind="daily",
            time_of_day="06:00",
            zone_ids=[province.commune_a],
            priority="normal",
        )
        session.add(schedule)
        session.flush()
        a, b = province.village_a, province.village_b
        played = {"media_sha256": sha}
        ids["village"] = _broadcast(session, "Tin thôn An", [a], **played)
        ids["commune"] = _broadcast(
            session, "Tin toàn xã", [province.commune_a], play_at=NOW - timedelta(hours=1),
            **played,
        )  # fmt: skip
        ids["province"] = _broadcast(
            session, "Tin của tỉnh", [province.province], status="partial",
            play_at=NOW - timedelta(days=3), **played,
        )  # fmt: skip
        ids["device"] = _broadcast(
            session, "Tin một cụm loa", [], device_ids=[province.device_a], status="dispatched",
            play_at=NOW - timedelta(days=30, hours=7), **played,
        )  # fmt: skip
        ids["old"] = _broadcast(
            session, "Tin cũ", [a], play_at=NOW - timedelta(days=31, hours=12), **played
        )
        ids["future"] = _broadcast(
            session, "Tin sắp phát", [a], status="scheduled",
            play_at=NOW + timedelta(hours=1), **played,
        )  # fmt: skip
        ids["due"] = _broadcast(
            session, "Tin chưa đến giờ", [a], status="dispatched",
            play_at=NOW + timedelta(seconds=10), **played,
        )  # fmt: skip
        for status in ("cancelled", "failed", "missed", "pending"):
            ids[status] = _broadcast(session, f"Tin {status}", [a], status=status, **played)
        ids["internal"] = _broadcast(session, "Tin nội bộ", [a], internal=True, **played)
        ids["internal run"] = _broadcast(
            session, "Họp chi bộ", [province.commune_a], source="schedule",
            schedule_id=schedule.id, **played,
        )  # fmt: skip
        ids["relay"] = _broadcast(session, "Tiếp sóng", [a], content="relay")
        ids["other commune"] = _broadcast(session, "Tin xã Bình", [b], **played)
    return World(service, province, ids, sha)


def _titles(world: World, commune: str | None = None) -> list[str]:
    page = world.service.replay.page(commune or world.province.commune_a, NOW)
    return [item.title for item in page.items]


def test_the_page_lists_what_sounded_in_the_commune_newest_first(world: World) -> None:
    assert _titles(world) == ["Tin toàn xã", "Tin thôn An", "Tin của tỉnh", "Tin một cụm loa"]
    page = world.service.replay.page(world.province.commune_a, NOW)
    first = page.items[0]
    assert first.media_sha256 == world.sha and first.media_bytes == len(MP3)
    assert first.text == "Nội dung Tin toàn xã." and first.duration_s is not None
    assert page.updated_at == NOW - timedelta(hours=1)
    assert page.commune_name == "Xã An"


def test_a_commune_that_did_not_opt_in_has_no_page(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.replay.page(world.province.commune_b, NOW)
    for missing in (world.province.village_a, world.province.province, "khong-co", ""):
        with pytest.raises(NotFound):
            world.service.replay.page(missing, NOW)


def test_the_window_starts_at_local_midnight_thirty_days_ago(world: World) -> None:
    start = replay.window_start(NOW)
    assert start == datetime(2026, 11, 6, 17, 0)  # 7/11 00:00 in Hà Nội
    assert NOW - timedelta(days=30, hours=7) >= start  # "Tin một cụm loa": on the first day


def test_the_version_changes_with_what_is_shown(world: World) -> None:
    desk = world.service.replay
    before = desk.page(world.province.commune_a, NOW).version
    assert desk.page(world.province.commune_a, NOW).version == before
    with world.service.db.session() as session:
        session.get(Broadcast, world.ids["village"]).internal = True  # type: ignore[union-attr]
    after = desk.page(world.province.commune_a, NOW).version
    assert after != before


def test_the_officer_turns_the_page_on_and_off(world: World) -> None:
    desk, p = world.service.replay, world.province
    assert [(c.id, c.public) for c in desk.communes(p.officer_a)] == [(p.commune_a, True)]
    desk.set_public(p.officer_b, p.commune_b, True)
    assert _titles(world, p.commune_b) == ["Tin xã Bình", "Tin của tỉnh"]
    desk.set_public(p.officer_b, p.commune_b, False)
    with pytest.raises(NotFound):
        desk.page(p.commune_b, NOW)
    with pytest.raises(PermissionDenied):
        desk.set_public(p.officer_a, p.commune_b, True)
    with pytest.raises(PermissionDenied):  # a village head may not
        desk.set_public(p.head_a, p.commune_a, True)
    with pytest.raises(ValidationError):
        desk.set_public(p.officer_a, p.village_a, True)


def test_marking_internal_takes_an_item_off_and_back(world: World) -> None:
    desk, p = world.service.replay, world.province
    desk.set_internal(p.officer_a, world.ids["village"], True)
    assert "Tin thôn An" not in _titles(world)
    managed = {item.title: item for item in desk.recent(p.officer_a, p.commune_a, NOW)}
    assert not managed["Tin thôn An"].public and managed["Tin thôn An"].internal
    assert managed["Họp chi bộ"].bulletin_internal and not managed["Họp chi bộ"].public
    desk.set_internal(p.officer_a, world.ids["village"], False)
    assert "Tin thôn An" in _titles(world)
    with pytest.raises(PermissionDenied):  # the province's, not one commune's to hide
        desk.set_internal(p.officer_a, world.ids["province"], True)
    with pytest.raises(NotFound):  # another commune's: not even its existence is told
        desk.set_internal(p.officer_a, world.ids["other commune"], True)
    with pytest.raises(NotFound):
        desk.set_internal(p.officer_a, 999_999, True)


def test_an_internal_bulletin_keeps_its_runs_off(world: World) -> None:
    desk, p = world.service.replay, world.province
    with world.service.db.session() as session:
        bulletin_id = session.query(Bulletin).filter_by(title="Họp chi bộ").one().id
        session.get(Bulletin, bulletin_id).zone_id = p.commune_a  # type: ignore[union-attr]
    desk.set_bulletin_internal(p.officer_a, bulletin_id, False)
    assert "Họp chi bộ" in _titles(world)
    desk.set_bulletin_internal(p.officer_a, bulletin_id, True)
    assert "Họp chi bộ" not in _titles(world)
    with pytest.raises(NotFound):
        desk.set_bulletin_internal(p.officer_b, bulletin_id, False)


def test_feedback_is_pending_until_approved_then_shown_under_its_item(world: World) -> None:
    desk, p = world.service.replay, world.province
    item = world.ids["commune"]
    given = desk.give_feedback(
        p.commune_a, item, "  Bác Ba ", "Loa thôn 2 nhỏ quá.", "10.0.0.1", NOW
    )
    assert desk.page(p.commune_a, NOW).items[0].feedback == ()
    [waiting] = desk.feedback(p.officer_a)
    assert (waiting.id, waiting.name, waiting.item_title) == (given, "Bác Ba", "Tin toàn xã")
    assert desk.feedback(p.officer_b) == []
    with pytest.raises(NotFound):
        desk.moderate(p.officer_b, given, "approved")
    with pytest.raises(PermissionDenied):
        desk.moderate(p.head_a, given, "approved")
    with pytest.raises(ValidationError):
        desk.moderate(p.officer_a, given, "deleted")
    before = desk.page(p.commune_a, NOW).version
    desk.moderate(p.officer_a, given, "approved")
    page = desk.page(p.commune_a, NOW)
    assert [f.text for f in page.items[0].feedback] == ["Loa thôn 2 nhỏ quá."]
    assert page.version != before
    desk.moderate(p.officer_a, given, "hidden")
    assert desk.page(p.commune_a, NOW).items[0].feedback == ()
    assert desk.feedback(p.officer_a, "hidden")[0].id == given
    assert [c.pending for c in desk.communes(p.officer_a)] == [0]


@pytest.mark.parametrize(
    ("name", "text", "field", "code"),
    [
        ("", "", "text", "required"),
        ("", "   \n ", "text", "required"),
        ("", None, "text", "required"),
        ("", 12, "text", "bad_value"),
        ("", "x" * (replay.TEXT_CHARS + 1), "text", "too_long"),
        ("x" * (replay.NAME_CHARS + 1), "Tốt.", "name", "too_long"),
        ("", "Có\x00NUL", "text", "bad_character"),
        ("Tên\nhai dòng", "Tốt.", "name", "bad_character"),
        (["danh sách"], "Tốt.", "name", "bad_value"),
        ("", "\ud800", "text", "bad_character"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(
    world: World, name: object, text: object, field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        world.service.replay.give_feedback(
            world.province.commune_a, world.ids["commune"], name, text, "10.0.0.1", NOW
        )
    assert (refused.value.field, refused.value.code) == (field, code)


def test_feedback_only_on_a_public_item_of_that_commune(world: World) -> None:
    desk, p = world.service.replay, world.province
    for commune, item in (
        (p.commune_a, world.ids["internal"]),
        (p.commune_a, world.ids["cancelled"]),
        (p.commune_a, world.ids["other commune"]),
        (p.commune_b, world.ids["other commune"]),  # Xã Bình did not opt in
    ):
        with pytest.raises(NotFound):
            desk.give_feedback(commune, item, "", "Góp ý.", "10.0.0.1", NOW)


def test_feedback_is_rate_limited_per_client_and_per_item(world: World) -> None:
    desk, p = world.service.replay, world.province
    first, second = world.ids["commune"], world.ids["village"]

    def give(item: int, client: str, at: datetime = NOW) -> None:
        desk.give_feedback(p.commune_a, item, "", "Góp ý.", client, at)

    give(first, "10.0.0.1")
    give(first, "10.0.0.1")
    with pytest.raises(ValidationError) as refused:  # twice a day on one item
        give(first, "10.0.0.1")
    assert refused.value.code == "rate_limited"
    give(first, "10.0.0.2")  # someone else
    give(first, "10.0.0.1", NOW + timedelta(days=1, minutes=1))  # a day later
    # per client: five an hour whatever the item; an IPv6 /64 is one client
    for _ in range(2):
        give(second, "2001:db8::1")
    for item in (world.ids["device"], world.ids["province"]):
        give(item, "2001:db8::2")
    give(world.ids["device"], "2001:db8::3")
    with pytest.raises(ValidationError):
        give(first, "2001:db8::4")
    give(first, "2001:db8:1::1")  # another /64
    # per item from everyone: at most ITEM_LIMIT an hour
    with world.service.db.session() as session:
        item_count = session.query(Feedback).filter_by(broadcast_id=second).count()
    for number in range(replay.ITEM_LIMIT - item_count):
        give(second, f"10.1.{number}.1")
    with pytest.raises(ValidationError):
        give(second, "10.2.0.1")


def test_the_client_address_is_not_stored(world: World) -> None:
    desk, p = world.service.replay, world.province
    desk.give_feedback(p.commune_a, world.ids["commune"], "", "Tốt.", "10.9.8.7", NOW)
    with world.service.db.session() as session:
        [row] = session.query(Feedback).all()
        assert "10.9.8.7" not in row.client_key and len(row.client_key) == 64


def test_feedback_counts_per_commune(world: World) -> None:
    desk, p = world.service.replay, world.province
    for client in ("10.0.0.1", "10.0.0.2"):
        desk.give_feedback(p.commune_a, world.ids["commune"], "", "Tốt.", client, NOW)
    desk.moderate(p.officer_a, desk.feedback(p.officer_a)[0].id, "approved")
    with world.service.db.session() as session:
        counts = replay.feedback_counts(
            session, [p.commune_a, p.commune_b], NOW - timedelta(days=1), NOW + timedelta(1)
        )
    assert counts == {p.commune_a: replay.FeedbackCounts(received=2, approved=1)}
