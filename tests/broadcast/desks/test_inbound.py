"""The inbound desk: a source system's bulletins and CAP alerts, idempotent, sent down."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from service_support import PASSWORD, RecordingDispatcher, wait_for
from sqlalchemy import select
from support import tone_wav

from broadcast.const import Role, ZoneKind
from broadcast.desks.bulletins import BulletinStatus
from broadcast.errors import Conflict, PermissionDenied, ValidationError
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import Bulletin, BulletinForward, InboundItem
from wire import protocol
from wire.protocol import Priority

DATA = Path(__file__).resolve().parents[2] / "data" / "cap"
STORM_TIME = datetime(2026, 9, 14, 1, 0, tzinfo=UTC)  # before the storm alert expires


@dataclass
class Province:
    source: int
    other_source: int
    officer: int
    sent: RecordingDispatcher


@pytest.fixture
def province(service: BroadcastService) -> Province:
    with service.db.session() as session:
        zones.create_zone(session, "thanh-hoa", "Tỉnh Thanh Hóa", ZoneKind.PROVINCE, code="38")
        zones.create_zone(
            session, "hoang-hop", "Xã Hoằng Hợp", ZoneKind.COMMUNE, "thanh-hoa", code="16012"
        )
        zones.create_zone(
            session, "hac-thanh", "Phường Hạc Thành", ZoneKind.COMMUNE, "thanh-hoa", code="14836"
        )
        zones.create_zone(session, "thon-1", "Thôn 1", ZoneKind.VILLAGE, "hoang-hop")
        zones.create_zone(session, "nghe-an", "Tỉnh Nghệ An", ZoneKind.PROVINCE, code="40")
        zones.create_zone(
            session, "quynh-luu", "Xã Quỳnh Lưu", ZoneKind.COMMUNE, "nghe-an", code="17000"
        )
        source = accounts.create_user(session, "nguon-38", PASSWORD, Role.SOURCE, "thanh-hoa")
        other = accounts.create_user(session, "nguon-40", PASSWORD, Role.SOURCE, "nghe-an")
        officer = accounts.create_user(session, "canbo", PASSWORD, Role.OFFICER, "hoang-hop")
        ids = source.id, other.id, officer.id
    recorder = RecordingDispatcher(service)
    service.dispatcher = recorder
    return Province(*ids, recorder)


def _forwards(service: BroadcastService) -> list[tuple[int, str, str, str]]:
    """(bulletin, commune, priority, state) of every forward, in order."""
    with service.db.session() as session:
        rows = session.scalars(
            select(BulletinForward).order_by(
                BulletinForward.bulletin_id, BulletinForward.commune_id
            )
        )
        return [(row.bulletin_id, row.commune_id, row.priority, row.state) for row in rows]


def _text(priority: str = "normal", **changes: object) -> dict[str, object]:
    return {
        "title": "Lịch cắt điện",
        "text": "Ngày mai cắt điện từ 7 giờ đến 11 giờ.",
        "priority": priority,
        "communes": ["16012"],
        **changes,
    }


def _plays(sent: RecordingDispatcher) -> list[tuple[str, Priority]]:
    return [
        (item.topic, item.command.body.priority)
        for item in sent.sent
        if isinstance(item.command.body, protocol.PlayBody)
    ]


def _stops(sent: RecordingDispatcher) -> int:
    return sum(isinstance(item.command.body, protocol.StopBody) for item in sent.sent)


def _count(service: BroadcastService) -> tuple[int, int]:
    with service.db.session() as session:
        return session.query(InboundItem).count(), session.query(Bulletin).count()


def test_a_text_bulletin_goes_down_to_the_communes_by_code_or_id(
    service: BroadcastService, province: Province
) -> None:
    fields = _text("priority", communes=["16012", "hac-thanh"])
    intake = service.inbound.post_bulletin(province.source, "req-1", fields)
    assert intake.created
    record = intake.record
    assert (record.kind, record.disposition, record.priority) == (
        "bulletin",
        "broadcast",
        "priority",
    )
    assert record.communes == ("hoang-hop", "hac-thanh")
    # no programme run in the communes yet: the priority bulletin waits in their inboxes
    assert _forwards(service) == [
        (record.sent_id, "hac-thanh", "priority", "received"),
        (record.sent_id, "hoang-hop", "priority", "received"),
    ]
    with service.db.session() as session:
        bulletin = session.get(Bulletin, record.sent_id)
        assert bulletin is not None
        assert (bulletin.status, bulletin.zone_id, bulletin.title) == (
            BulletinStatus.APPROVED.value,
            "thanh-hoa",
            "Lịch cắt điện",
        )


def test_a_province_stands_for_all_its_communes(
    service: BroadcastService, province: Province
) -> None:
    intake = service.inbound.post_bulletin(province.source, "all", _text(communes=["38"]))
    assert intake.record.communes == ("hac-thanh", "hoang-hop")


def test_a_retry_finds_what_the_first_post_made_and_another_body_is_a_conflict(
    service: BroadcastService, province: Province
) -> None:
    first = service.inbound.post_bulletin(province.source, "k-1", _text())
    again = service.inbound.post_bulletin(province.source, "k-1", _text())
    assert (again.created, again.record) == (False, first.record)
    assert len(_forwards(service)) == 1 and _count(service) == (1, 1)
    with pytest.raises(Conflict) as caught:
        service.inbound.post_bulletin(province.source, "k-1", _text(text="Một lời khác."))
    assert (caught.value.field, caught.value.code) == ("Idempotency-Key", "key_reused")
    # keys are per source: another source's same key is its own request
    other = service.inbound.post_bulletin(province.other_source, "k-1", _text(communes=["40"]))
    assert other.created and other.record.communes == ("quynh-luu",)


@pytest.mark.parametrize(
    ("key", "fields", "field", "code"),
    [
        ("", _text(), "Idempotency-Key", "required"),
        ("has space", _text(), "Idempotency-Key", "invalid"),
        ("k", _text("urgent"), "priority", "unknown_choice"),
        ("k", _text(communes=[]), "communes", "required"),
        ("k", _text(communes=[5]), "communes", "invalid"),
        ("k", _text(communes=["99999"]), "communes", "unknown_zone"),
        ("k", _text(communes=["thon-1"]), "communes", "not_a_commune"),
        ("k", _text(communes=["17000"]), "communes", "zone_out_of_reach"),
        ("k", _text(text=""), "text", "one_content"),
        ("k", _text(audio_url="http://127.0.0.1:9/a.mp3"), "text", "one_content"),
        ("k", _text(text="   "), "text", "empty"),
        ("k", _text(text="!!!"), "text", "no_speech"),
        ("k", _text(valid_until="2020-01-01T00:00+07:00"), "valid_until", "past"),
        ("k", _text(valid_until="tomorrow"), "valid_until", "not_a_datetime"),
        ("k", _text(title="x" * 301), "title", "too_long"),
    ],
)
def test_a_refused_bulletin_stores_nothing_and_names_its_field(
    service: BroadcastService,
    province: Province,
    key: str,
    fields: dict[str, object],
    field: str,
    code: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.inbound.post_bulletin(province.source, key, fields)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert _count(service) == (0, 0) and _forwards(service) == []


def test_only_a_source_account_feeds(service: BroadcastService, province: Province) -> None:
    with pytest.raises(PermissionDenied):
        service.inbound.post_bulletin(province.officer, "k", _text())
    with pytest.raises(PermissionDenied):
        service.inbound.items(province.officer)


def test_a_source_reads_only_its_own_items(service: BroadcastService, province: Province) -> None:
    mine = service.inbound.post_bulletin(province.source, "k", _text()).record
    assert service.inbound.item(province.source, mine.id) == mine
    assert [row.id for row in service.inbound.items(province.source)] == [mine.id]
    assert service.inbound.items(province.other_source) == []
    with pytest.raises(Exception, match="không có mục nhận"):
        service.inbound.item(province.other_source, mine.id)


# --- audio by URL -----------------------------------------------------------------------------


@pytest.fixture
def audio_server(tmp_path: Path) -> Iterator[str]:
    body = tone_wav(tmp_path / "tin.wav", seconds=1.0).read_bytes()  # a recording as sent

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/tin.mp3":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_audio_by_url_is_fetched_validated_and_stored(
    service: BroadcastService, province: Province, audio_server: str
) -> None:
    service.settings.source_private_audio = True  # the test's server is on loopback
    fields = _text(text=None, audio_url=f"{audio_server}/tin.mp3")
    intake = service.inbound.post_bulletin(province.source, "a", fields)
    [(sent_id, *_rest)] = _forwards(service)
    assert sent_id == intake.record.sent_id
    with service.db.session() as session:
        bulletin = session.get(Bulletin, sent_id)
        assert bulletin is not None and bulletin.recording_sha256
        assert service.media.path(bulletin.recording_sha256).exists()
    assert intake.created


def test_audio_from_a_private_address_is_refused_unless_allowed(
    service: BroadcastService, province: Province, audio_server: str
) -> None:
    fields = _text(text=None, audio_url=f"{audio_server}/tin.mp3")
    with pytest.raises(ValidationError) as caught:
        service.inbound.post_bulletin(province.source, "a", fields)
    assert (caught.value.field, caught.value.code) == ("audio_url", "private_address")
    service.settings.source_private_audio = True
    with pytest.raises(ValidationError) as missing:
        service.inbound.post_bulletin(
            province.source, "b", _text(text=None, audio_url=f"{audio_server}/none.mp3")
        )
    assert (missing.value.field, missing.value.code) == ("audio_url", "fetch_failed")
    assert "404" in str(missing.value)
    assert _count(service) == (0, 0)


# --- CAP ----------------------------------------------------------------------------------


def _cap(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _spoken_storm() -> bytes:
    """The storm alert without its audio resource: its text is read."""
    text = _cap("vn-storm-alert.xml").decode()
    start, end = text.index("<resource>"), text.index("</resource>") + len("</resource>")
    return (text[:start] + text[end:]).encode()


def test_a_cap_alert_plays_in_the_communes_its_codes_name(
    service: BroadcastService, province: Province
) -> None:
    intake = service.inbound.post_cap(province.source, _spoken_storm(), now=STORM_TIME)
    record = intake.record
    assert intake.created and (record.kind, record.disposition) == ("cap", "broadcast")
    assert (record.priority, record.communes) == ("emergency", ("hoang-hop", "hac-thanh"))
    assert record.key == "cap:pctt@thanhhoa.example TH-PCTT-2026-0914-01"
    assert record.valid_until == datetime(2026, 9, 14, 12, 0)
    # an emergency goes out at once to both communes, and nowhere else
    assert _forwards(service) == [
        (record.sent_id, "hac-thanh", "emergency", "placed"),
        (record.sent_id, "hoang-hop", "emergency", "placed"),
    ]
    played = wait_for(lambda: _plays(province.sent), what="the emergency's PLAY")
    # both communes of the province: one command on the province's topic, which every
    # receiver of both hears (`targets.fewest_zones`)
    assert {topic for topic, _priority in played} == {protocol.zone_command_topic("thanh-hoa")}
    assert {priority for _topic, priority in played} == {Priority.EMERGENCY}
    again = service.inbound.post_cap(province.source, _spoken_storm(), now=STORM_TIME)
    assert not again.created and again.record == record and len(_forwards(service)) == 2


def test_a_cap_alert_for_another_province_plays_nowhere(
    service: BroadcastService, province: Province
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.inbound.post_cap(province.other_source, _spoken_storm(), now=STORM_TIME)
    assert caught.value.code == "no_target"
    assert _count(service) == (0, 0) and _forwards(service) == []


def test_update_and_cancel_withdraw_what_they_reference(
    service: BroadcastService, province: Province
) -> None:
    first = service.inbound.post_cap(province.source, _spoken_storm(), now=STORM_TIME).record
    update_text = _cap("vn-storm-update.xml").decode()
    update = service.inbound.post_cap(province.source, update_text.encode(), now=STORM_TIME).record
    assert update.disposition == "correct" and update.replaces_id == first.id
    states = {(bulletin, state) for bulletin, _commune, _priority, state in _forwards(service)}
    assert states == {(first.sent_id, "withdrawn"), (update.sent_id, "received")}
    assert _stops(province.sent) == 1  # the first alert stopped on the province's topic
    cancel = service.inbound.post_cap(
        province.source, _cap("vn-storm-cancel.xml"), now=STORM_TIME
    ).record
    assert cancel.disposition == "cancel" and cancel.sent_id is None
    states = {(bulletin, state) for bulletin, _commune, _priority, state in _forwards(service)}
    assert states == {(first.sent_id, "withdrawn"), (update.sent_id, "withdrawn")}


def test_a_cancel_of_an_alert_never_received_is_refused(
    service: BroadcastService, province: Province
) -> None:
    with pytest.raises(ValidationError) as caught:
        service.inbound.post_cap(province.source, _cap("vn-storm-cancel.xml"), now=STORM_TIME)
    assert caught.value.code == "unknown_reference"
    assert _count(service) == (0, 0)


def test_a_test_alert_is_received_and_ignored(
    service: BroadcastService, province: Province
) -> None:
    data = _spoken_storm().replace(b"<status>Actual</status>", b"<status>Test</status>")
    record = service.inbound.post_cap(province.source, data, now=STORM_TIME).record
    assert (record.disposition, record.sent_id) == ("ignore", None) and record.reason
    assert _forwards(service) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"<alert/>", b"not xml", b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a/>'],
)
def test_malformed_cap_is_refused_and_stores_nothing(
    service: BroadcastService, province: Province, data: bytes
) -> None:
    with pytest.raises(ValidationError):
        service.inbound.post_cap(province.source, data, now=STORM_TIME)
    assert _count(service) == (0, 0) and _forwards(service) == []


SPEC_NOW = datetime(2003, 6, 17, 22, 0, tzinfo=UTC)  # before the thunderstorm warning expires


@pytest.mark.parametrize(
    ("name", "priority", "communes"),
    [
        ("oasis-a1-homeland-security-vn.xml", "emergency", ("hac-thanh", "hoang-hop")),
        ("oasis-a2-thunderstorm-vn.xml", "emergency", ("hoang-hop", "hac-thanh")),
        ("oasis-a3-earthquake-vn.xml", "normal", ("hoang-hop",)),
        ("oasis-a4-amber-vn.xml", "emergency", ("hac-thanh", "hoang-hop")),
    ],
)
def test_the_specifications_examples_adapted_go_down_to_their_communes(
    service: BroadcastService, province: Province, name: str, priority: str, communes: tuple
) -> None:
    """The OASIS CAP 1.2 examples (Appendix A) with Vietnamese codes: a province's code is all
    its communes; the earthquake Update references an alert never received, so it goes out as
    a new one."""
    record = service.inbound.post_cap(province.source, _cap(name), now=SPEC_NOW).record
    assert (record.priority, record.communes) == (priority, communes)
    assert {commune for _b, commune, _p, _s in _forwards(service)} == set(communes)
