"""The bulletin desk: approval (duyệt) and who may do what, the audit trail of every step, and
documents (.txt, .docx) turned into editable scripts."""

from __future__ import annotations

import io
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import docx
import pytest
from service_support import Users, add_devices, approved_bulletin, recording_service, seed_commune
from sqlalchemy import select

from broadcast.const import Role, ScheduleKind
from broadcast.desks import documents
from broadcast.desks.bulletins import BulletinStatus
from broadcast.desks.records import BulletinRecord
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.people import audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Bulletin, User
from wire.protocol import Priority


def _status(service: BroadcastService, bulletin_id: int) -> str:
    with service.db.session() as session:
        return service.bulletins.get_bulletin(session, bulletin_id).status


def _trail(service: BroadcastService, bulletin_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with service.db.session() as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == f"bulletin:{bulletin_id}")
            .order_by(AuditEntry.seq)
        )
        return [(entry.action, entry.username, entry.detail) for entry in entries]


def _daily(service: BroadcastService, user_id: int, bulletin_id: int, at: str = "06:00") -> int:
    return service.scheduling.schedule(
        user_id,
        ScheduleRequest(
            bulletin_id=bulletin_id,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-a"],
            priority=Priority.NORMAL,
            time_of_day=at,
        ),
    )


def test_the_whole_approval_flow_is_audited(service: BroadcastService, users: Users) -> None:
    desk = service.bulletins
    bulletin = desk.create_bulletin(users.officer, "Tiêm phòng", "Tiêm phòng dại lúc 7h30.")
    assert _status(service, bulletin) == BulletinStatus.DRAFT
    desk.edit(users.officer, bulletin, "Tiêm phòng dại", "Tiêm phòng dại lúc 7h30 sáng mai.")
    desk.submit(users.officer, bulletin)
    assert _status(service, bulletin) == BulletinStatus.SUBMITTED
    desk.reject(users.leader, bulletin, "Ghi rõ địa điểm tiêm.")
    with service.db.session() as session:
        row = desk.get_bulletin(session, bulletin)
        assert row.status == BulletinStatus.REJECTED
        assert row.review_comment == "Ghi rõ địa điểm tiêm." and row.reviewed_by_id == users.leader
    desk.edit(users.officer, bulletin, "", "Tiêm phòng dại lúc 7h30 tại nhà văn hóa thôn A.")
    assert _status(service, bulletin) == BulletinStatus.DRAFT  # edited: a draft again
    desk.submit(users.officer, bulletin)
    desk.approve(users.leader, bulletin, "Đồng ý")
    with service.db.session() as session:
        row = desk.get_bulletin(session, bulletin)
        assert row.status == BulletinStatus.APPROVED and row.reviewed_at is not None
        assert row.submitted_at is not None and row.updated_at is not None
        assert row.title == "Tiêm phòng dại lúc 7h30 tại nhà văn hóa thôn A."  # from the text
        assert audit.verify(session).ok
    assert [(action, user) for action, user, _ in _trail(service, bulletin)] == [
        ("bulletin.create", "officer"),
        ("bulletin.edit", "officer"),
        ("bulletin.submit", "officer"),
        ("bulletin.reject", "leader"),
        ("bulletin.edit", "officer"),
        ("bulletin.submit", "officer"),
        ("bulletin.approve", "leader"),
    ]
    trail = _trail(service, bulletin)
    assert trail[3][2]["comment"] == "Ghi rõ địa điểm tiêm."
    assert trail[4][2]["from"] == "rejected" and "text" in trail[4][2]["changed"]
    with service.db.session() as session:
        history = desk.history(session, bulletin)
    assert [step.username for step in history][-1] == "leader"
    assert history[3].comment == "Ghi rõ địa điểm tiêm."
    schedule_id = _daily(service, users.officer, bulletin)
    with service.db.session() as session:
        created = session.scalar(
            select(AuditEntry).where(AuditEntry.target == f"schedule:{schedule_id}")
        )
        assert created is not None and created.action == audit.Action.SCHEDULE_CREATE


def test_only_approved_bulletins_are_scheduled_or_sent(
    service: BroadcastService, users: Users
) -> None:
    desk = service.bulletins
    bulletin = desk.create_bulletin(users.officer, "Họp dân", "Họp dân lúc 14h.")
    for status_label in ("Bản nháp", "Chờ duyệt"):
        with pytest.raises(ValidationError) as info:
            _daily(service, users.officer, bulletin)
        assert info.value.field == "bulletin" and status_label in info.value.message
        with pytest.raises(ValidationError) as info:
            desk.broadcast_bulletin(users.officer, bulletin, ["thon-a"])
        assert info.value.field == "bulletin" and status_label in info.value.message
        if status_label == "Bản nháp":
            desk.submit(users.officer, bulletin)
    desk.reject(users.admin, bulletin, "Chưa đúng giờ họp.")
    with pytest.raises(ValidationError) as info:
        _daily(service, users.officer, bulletin)
    assert "Bị trả lại" in info.value.message
    with service.db.session() as session:
        assert (
            session.scalar(select(AuditEntry).where(AuditEntry.action == "schedule.create")) is None
        )


def test_who_may_do_what(service: BroadcastService, users: Users) -> None:
    desk = service.bulletins
    for outsider in (users.leader, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            desk.create_bulletin(outsider, "", "Tin.")
        with pytest.raises(PermissionDenied):
            desk.create_relay_bulletin(outsider, "", "https://radio.example.vn/vov1", 30)
        with pytest.raises(PermissionDenied):
            desk.prepare_script(outsider, "Văn bản.")
        with pytest.raises(PermissionDenied):
            desk.prepare_upload(outsider, "a.txt", "Văn bản.".encode())
    bulletin = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
    for outsider in (users.leader, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            desk.edit(outsider, bulletin, "Khác", "Khác.")
        with pytest.raises(PermissionDenied):
            desk.submit(outsider, bulletin)
    desk.submit(users.officer, bulletin)
    for not_reviewer in (users.officer, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            desk.approve(not_reviewer, bulletin)
        with pytest.raises(PermissionDenied):
            desk.reject(not_reviewer, bulletin, "Không.")
    desk.approve(users.leader, bulletin)
    for outsider in (users.leader, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            _daily(service, outsider, bulletin)
        with pytest.raises(PermissionDenied):
            desk.broadcast_bulletin(outsider, bulletin, ["thon-a"])
    with pytest.raises(PermissionDenied):
        desk.preview(users.viewer, bulletin)
    with service.db.session() as session:
        for reader in (users.admin, users.officer, users.leader, users.viewer):
            assert desk.read(session, reader, bulletin)[1].id == bulletin
            assert [b.id for b in desk.listing(session, reader, "approved")] == [bulletin]
        with pytest.raises(PermissionDenied):
            desk.read(session, users.head_1, bulletin)
        with pytest.raises(PermissionDenied):
            desk.listing(session, users.head_1)
        with pytest.raises(ValidationError):
            desk.listing(session, users.leader, "lost")
    assert [action for action, _, _ in _trail(service, bulletin)] == [
        "bulletin.create",
        "bulletin.submit",
        "bulletin.approve",
    ]  # nothing refused left a trace


def test_the_pages_read_plain_records(service: BroadcastService, users: Users) -> None:
    """What the bulletin pages and the API show: records read in the desk's own session, the
    default list of each role, the programme with its next runs, and what each may do."""
    add_devices(service, {"loa-a-01": "thon-a", "loa-b-01": "thon-b"})
    desk = service.bulletins
    draft = desk.create_bulletin(users.officer, "Nháp", "Bản nháp.")
    ready = approved_bulletin(service, users.officer, "Tiêm phòng", "Tiêm phòng dại.")
    schedule = _daily(service, users.officer, ready)
    page = desk.index(users.officer)
    assert page.status == "" and [b.id for b in page.bulletins] == [ready, draft]
    assert page.counts["draft"] == 1 and page.counts["approved"] == 1 and page.abilities.write
    [row] = page.schedules
    assert (row.id, row.title, row.zone_ids, row.time_of_day) == (
        schedule,
        "Tiêm phòng",
        ("thon-a",),
        "06:00",
    )
    assert page.next_runs[schedule] is not None
    reviewer = desk.index(users.leader)  # a reviewer who writes nothing starts with the queue
    assert reviewer.status == "submitted" and reviewer.bulletins == []
    assert not reviewer.abilities.write
    assert [b.id for b in desk.index(users.leader, "").bulletins] == [ready, draft]
    with pytest.raises(ValidationError):
        desk.index(users.leader, "lost")
    with pytest.raises(PermissionDenied):
        desk.index(users.head_1)
    [record] = desk.bulletins(users.viewer, "approved")
    assert isinstance(record, BulletinRecord)
    assert (record.id, record.created_by, record.reviewed_by) == (ready, "officer", "admin")
    with pytest.raises(FrozenInstanceError):
        record.title = "Khác"  # type: ignore[misc]

    shown = desk.view(users.officer, ready, with_targets=True)
    assert shown.bulletin.title == "Tiêm phòng" and shown.may.play and not shown.may.edit
    assert [s.id for s in shown.schedules] == [schedule]
    assert [h.action for h in shown.history] == [
        "bulletin.create",
        "bulletin.submit",
        "bulletin.approve",
    ]
    assert {z.id for z in shown.zones} == {"xa-test", "thon-a", "thon-b"}
    assert [(d.id, d.name) for d in shown.devices] == [("loa-a-01",) * 2, ("loa-b-01",) * 2]
    looked = desk.view(users.leader, ready)
    assert looked.zones == [] and looked.devices == [] and not looked.may.play
    with pytest.raises(PermissionDenied):
        desk.view(users.head_1, ready)
    assert desk.may_write(users.officer) and desk.may_write(users.admin)
    assert not desk.may_write(users.leader) and not desk.may_write(users.head_1)


def test_a_sent_bulletin_reads_back_with_its_deliveries(
    service: BroadcastService, users: Users
) -> None:
    add_devices(service, {"loa-a-01": "thon-a", "loa-a-02": "thon-a", "loa-b-01": "thon-b"})
    desk = service.bulletins
    bulletin = approved_bulletin(service, users.officer, "Tin", "Tin chiều.")
    broadcast_id = desk.broadcast_bulletin(users.officer, bulletin, ["thon-a"])
    sent = desk.sent(users.officer, broadcast_id)
    assert (sent.id, sent.source, sent.title, sent.zone_ids) == (
        broadcast_id,
        "bulletin",
        "Tin",
        ("thon-a",),
    )
    assert sorted(d.device_id for d in sent.deliveries) == ["loa-a-01", "loa-a-02"]
    with pytest.raises(PermissionDenied):
        desk.sent(users.leader, broadcast_id)
    announcement = service.announcements.announce(users.officer, "Khẩn.", ["thon-b"])
    with pytest.raises(NotFound):  # only broadcasts of bulletins are read here
        desk.sent(users.officer, announcement)


def test_nobody_reviews_their_own_bulletin_but_the_admin(
    service: BroadcastService, users: Users
) -> None:
    desk = service.bulletins
    bulletin = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
    desk.submit(users.officer, bulletin)
    with service.db.session() as session:  # the officer became a leader
        session.get(User, users.officer).role = Role.LEADER.value  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied):
        desk.approve(users.officer, bulletin)
    with pytest.raises(PermissionDenied):
        desk.reject(users.officer, bulletin, "Tự trả lại.")
    assert _status(service, bulletin) == BulletinStatus.SUBMITTED
    own = desk.create_bulletin(users.admin, "Tin của quản trị", "Nội dung.")
    desk.submit(users.admin, own)
    desk.approve(users.admin, own)
    assert _status(service, own) == BulletinStatus.APPROVED


def test_a_rejection_needs_a_reason(service: BroadcastService, users: Users) -> None:
    desk = service.bulletins
    bulletin = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
    with pytest.raises(ValidationError) as info:
        desk.approve(users.leader, bulletin)  # not submitted yet
    assert info.value.field == "status" and "Bản nháp" in info.value.message
    desk.submit(users.officer, bulletin)
    with pytest.raises(ValidationError) as info:
        desk.submit(users.officer, bulletin)
    assert "Chờ duyệt" in info.value.message
    for blank in ("", "   "):
        with pytest.raises(ValidationError) as info:
            desk.reject(users.leader, bulletin, blank)
        assert info.value.field == "comment" and "lý do" in info.value.message
    assert _status(service, bulletin) == BulletinStatus.SUBMITTED
    assert [action for action, _, _ in _trail(service, bulletin)][-1] == "bulletin.submit"


def test_only_drafts_and_rejected_bulletins_are_edited(
    service: BroadcastService, users: Users
) -> None:
    desk = service.bulletins
    bulletin = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
    desk.submit(users.officer, bulletin)
    with pytest.raises(ValidationError) as info:
        desk.edit(users.officer, bulletin, "Khác", "Khác.")
    assert info.value.field == "status" and "Chờ duyệt" in info.value.message
    desk.approve(users.leader, bulletin)
    with pytest.raises(ValidationError) as info:
        desk.edit(users.admin, bulletin, "Khác", "Khác.")
    assert "Đã duyệt" in info.value.message
    with pytest.raises(ValidationError) as info:
        desk.create_bulletin(users.officer, "x" * 301, "Nội dung.")
    assert info.value.field == "title"
    draft = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
    with pytest.raises(ValidationError) as info:
        desk.edit(users.officer, draft, "Tin", "   ")
    assert info.value.field == "text"
    with service.db.session() as session:
        assert desk.get_bulletin(session, bulletin).text == "Nội dung."


def test_relays_follow_the_same_flow(service: BroadcastService, users: Users) -> None:
    desk = service.bulletins
    relay = desk.create_relay_bulletin(users.officer, "VOV1", "https://radio.example.vn/vov1", 30)
    assert _status(service, relay) == BulletinStatus.DRAFT
    with pytest.raises(ValidationError):
        _daily(service, users.officer, relay)
    desk.edit(users.officer, relay, "Thời sự VOV1")
    with pytest.raises(ValidationError) as info:
        desk.edit(users.officer, relay, "  ")
    assert info.value.field == "title"
    desk.submit(users.officer, relay)
    desk.approve(users.leader, relay)
    assert _daily(service, users.officer, relay) > 0
    with service.db.session() as session:
        assert desk.get_bulletin(session, relay).title == "Thời sự VOV1"


def test_without_approval_bulletins_are_born_approved(tmp_path: Path) -> None:
    service, _sent = recording_service(tmp_path / "data", require_approval=False)
    try:
        users = seed_commune(service)
        desk = service.bulletins
        bulletin = desk.create_bulletin(users.officer, "Tin", "Nội dung.")
        assert _status(service, bulletin) == BulletinStatus.APPROVED
        desk.edit(users.officer, bulletin, "Tin sửa", "Nội dung sửa.")  # still editable
        assert _status(service, bulletin) == BulletinStatus.APPROVED
        assert _daily(service, users.officer, bulletin) > 0
        assert approved_bulletin(service, users.officer, "Khác", "Tin khác.") > bulletin
        [create, _edit] = _trail(service, bulletin)
        assert create[2]["status"] == "approved"
    finally:
        service.stop()


def test_seeded_demo_bulletin_is_approved_by_the_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loa import seed

    service, _sent = recording_service(tmp_path / "data")
    # the long sample plan is not rendered here: the schedules only need an airtime
    monkeypatch.setattr(
        service.outbox, "render_for_schedule", lambda *_: ("0" * 64, "espeak", 600.0)
    )
    try:
        seed.seed_demo(service, receivers=1)
        with service.db.session() as session:
            bulletin = session.scalars(select(Bulletin)).one()
            admin = session.scalars(select(User).where(User.username == "admin")).one()
            assert bulletin.status == BulletinStatus.APPROVED
            assert bulletin.reviewed_by_id == admin.id == bulletin.created_by_id
    finally:
        service.stop()


# --- documents --------------------------------------------------------------------------------


def _docx(*blocks: str | list[list[str]]) -> bytes:
    """A Word file: strings are paragraphs, lists of rows are tables."""
    document = docx.Document()
    for block in blocks:
        if isinstance(block, str):
            document.add_paragraph(block)
        else:
            table = document.add_table(rows=len(block), cols=len(block[0]))
            for r, row in enumerate(block):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_text_files_in_unicode_are_read(encoding: str) -> None:
    text = "Thông báo\nLịch tiêm chủng lúc 7h30 ngày 21/3."
    assert documents.extract_text("thong-bao.txt", text.encode(encoding)) == text


def test_docx_paragraphs_and_tables_in_order() -> None:
    data = _docx(
        "KẾ HOẠCH tiêm chủng",
        [["Thôn", "Giờ"], ["Thôn A", "7h30"]],
        "Đề nghị bà con đến đúng giờ.",
    )
    assert documents.extract_text("ke-hoach.DOCX", data).splitlines() == [
        "KẾ HOẠCH tiêm chủng",
        "Thôn",
        "Giờ",
        "Thôn A",
        "7h30",
        "Đề nghị bà con đến đúng giờ.",
    ]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("bao-cao.pdf", b"%PDF-1.4", "chỉ nhận"),
        ("cu.doc", b"\xd0\xcf\x11\xe0", ".docx"),
        ("rong.txt", b" \n\t", "không có nội dung"),
        ("rong.docx", _docx(""), "không có nội dung"),
        ("hong.docx", b"PK\x03\x04 broken", "không đọc được"),
        ("cp1258.txt", b"Th\xf4ng b\xe1o h\xf4m nay", "UTF-8"),
        ("lon.txt", b"a" * (documents.MAX_DOCUMENT_BYTES + 1), "1 MB"),
    ],
)
def test_refused_documents_are_named(name: str, data: bytes, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        documents.extract_text(name, data)
    assert info.value.field == "document_file"
    assert f"“{name}”" in info.value.message and words in info.value.message


def test_an_upload_becomes_a_normalized_script(service: BroadcastService, users: Users) -> None:
    data = _docx("THÔNG BÁO", "Họp dân lúc 14h ngày 21/3/2030 tại nhà văn hóa.")
    script = service.bulletins.prepare_upload(users.officer, "thong-bao.docx", data)
    assert script.text.startswith("Đài truyền thanh")
    assert "Họp dân lúc 14h" in script.text
    bulletin = service.bulletins.create_bulletin(
        users.officer, script.title, script.text, source_name="thong-bao.docx"
    )
    with service.db.session() as session:
        assert service.bulletins.get_bulletin(session, bulletin).source_name == "thong-bao.docx"
    with pytest.raises(ValidationError) as info:
        service.bulletins.prepare_upload(users.officer, "x.odt", b"PK")
    assert "x.odt" in info.value.message
