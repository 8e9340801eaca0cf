"""The set-up desk: a province's zone tree from a CSV file (all or nothing, idempotent), zones
added and moved under the tree rules, every change audited, and a single commune placed under
its province with its villages, receivers and users as they were."""

from __future__ import annotations

import unicodedata

import pytest
from service_support import Users
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast.const import Role, ZoneKind
from broadcast.desks.setup import Setup, ZoneFileError, parse_kind, slug
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.fleet import receivers, registry
from broadcast.people import accounts, audit, zones
from broadcast.people.permissions import Action
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Device, User, Zone

# Tỉnh Thanh Hóa (38) with three communes of two villages each; real-looking codes.
PROVINCE = """code,name,kind,parent
38,Tỉnh Thanh Hóa,tỉnh,
16012,Xã Hoằng Hợp,xã,38
16015,Xã Hoằng Tiến,xã,38
14836,Phường Hạc Thành,phường,38
,Thôn 1,thôn,16012
,Thôn 2,thôn,16012
,Thôn Yên Vực,thôn,16015
,Thôn Tiến Thành,thôn,16015
,Tổ dân phố 1,tổ dân phố,14836
,Tổ dân phố Phú Sơn,tổ dân phố,14836
"""


@pytest.fixture
def desk(service: BroadcastService) -> Setup:
    return Setup(service.db)


def _tree(desk: Setup) -> list[tuple[int, str, str, str | None]]:
    return [(line.depth, line.id, line.kind, line.code) for line in desk.tree(None)]


def _audit(service: BroadcastService) -> list[AuditEntry]:
    with service.db.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _reach(session: Session, user: User | None) -> list[str]:
    assert user is not None
    return sorted(zone.id for zone in zones.zones_for(session, user, Action.VIEW))


def _zone_count(service: BroadcastService) -> int:
    with service.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Zone)) or 0)


def test_a_province_imports_as_a_tree_with_its_codes(
    service: BroadcastService, desk: Setup
) -> None:
    audit.set_origin("cli chi")
    result = desk.import_zones(None, PROVINCE.encode())
    assert result.rows == 10 and len(result.created) == 10 and result.changed
    assert _tree(desk) == [
        (0, "tinh-thanh-hoa", "province", "38"),
        (1, "phuong-hac-thanh", "commune", "14836"),
        (2, "phuong-hac-thanh-to-dan-pho-1", "village", None),
        (2, "phuong-hac-thanh-to-dan-pho-phu-son", "village", None),
        (1, "xa-hoang-hop", "commune", "16012"),
        (2, "xa-hoang-hop-thon-1", "village", None),
        (2, "xa-hoang-hop-thon-2", "village", None),
        (1, "xa-hoang-tien", "commune", "16015"),
        (2, "xa-hoang-tien-thon-tien-thanh", "village", None),
        (2, "xa-hoang-tien-thon-yen-vuc", "village", None),
    ]
    entries = _audit(service)
    assert [e.action for e in entries] == [audit.Action.ZONE_CREATE.value] * 10
    assert {e.origin for e in entries} == {"cli chi"}
    assert entries[1].detail == {
        "name": "Xã Hoằng Hợp",
        "kind": "commune",
        "parent": "tinh-thanh-hoa",
        "code": "16012",
    }
    with service.db.session() as session:
        assert audit.verify(session).ok


def test_importing_the_same_file_again_changes_nothing(
    service: BroadcastService, desk: Setup
) -> None:
    desk.import_zones(None, PROVINCE)
    before = len(_audit(service))
    again = desk.import_zones(None, PROVINCE.encode())
    assert not again.changed and again.rows == 10
    assert len(_audit(service)) == before and _zone_count(service) == 10


def test_a_spreadsheet_file_reads_the_same(service: BroadcastService, desk: Setup) -> None:
    """A byte-order mark, semicolons (Excel in Vietnamese), Vietnamese headers, names typed
    decomposed (NFD), kinds in capitals or without diacritics, a remark column, blank lines."""
    lines = [
        "Mã;Tên;Loại;Cấp trên;Ghi chú",
        "38;Tỉnh Thanh Hóa;TỈNH;;",
        "",
        f"16012;{unicodedata.normalize('NFD', 'Xã Hoằng Hợp')};xa;38;mới",
        ";Thôn 1;Thon;16012;",
    ]
    result = desk.import_zones(None, "\ufeff".encode() + "\r\n".join(lines).encode())
    assert len(result.created) == 3
    with service.db.session() as session:
        commune = zones.by_code(session, "16012")
        assert commune is not None and commune.name == "Xã Hoằng Hợp"  # stored NFC
    assert desk.import_zones(None, PROVINCE).created == [
        "xa-hoang-tien",
        "phuong-hac-thanh",
        "xa-hoang-hop-thon-2",
        "xa-hoang-tien-thon-yen-vuc",
        "xa-hoang-tien-thon-tien-thanh",
        "phuong-hac-thanh-to-dan-pho-1",
        "phuong-hac-thanh-to-dan-pho-phu-son",
    ]


@pytest.mark.parametrize(
    ("row", "column", "code", "words"),
    [
        (",Thôn 3,thôn,99999", "parent", "unknown_parent", "không có nơi trực thuộc “99999”"),
        ("16012,Xã Khác,xã,38", "code", "dup", "đã có ở dòng 3"),
        (",Thôn 3,thôn,38", "parent", "wrong_parent", "thôn không thể thuộc tỉnh"),
        ("16020,Xã Mới,xã,16012", "parent", "wrong_parent", "xã không thể thuộc xã"),
        ("39,Tỉnh Khác,tỉnh,38", "parent", "wrong_parent", "tỉnh không thể thuộc"),
        (",   ,thôn,16012", "name", "empty_name", "tên còn trống"),
        (",Thôn 3,thôn,", "parent", "no_parent", "thôn cần ghi xã trực thuộc"),
        (",Thôn 3,huyện,16012", "kind", "bad_kind", "cấp huyện đã bỏ từ ngày 1/7/2025"),
        (",Thôn 3,làng xã,16012", "kind", "bad_kind", "không phải loại khu vực"),
        ("1601,Xã Mới,xã,38", "code", "bad_code", "có 5 chữ số"),
        ("123,Thôn 3,thôn,16012", "code", "no_code", "thôn không có mã hành chính"),
        (",Xã Hoằng Hợp,xã,38", "name", "dup", "“Xã Hoằng Hợp” đã có ở dòng 3"),
    ],
)
def test_a_bad_row_is_named_by_line_and_column_and_nothing_is_written(
    service: BroadcastService, desk: Setup, row: str, column: str, code: str, words: str
) -> None:
    text = PROVINCE.replace("16015,Xã Hoằng Tiến,xã,38\n", f"{row}\n", 1)  # on line 4
    with pytest.raises(ZoneFileError) as caught:
        desk.import_zones(None, text)
    first = caught.value.problems[0]
    assert (first.line, first.column, first.code) == (4, column, code), first
    assert words in first.message, first.message
    assert f"dòng 4, cột {column}: " in str(first)
    assert _zone_count(service) == 0 and _audit(service) == []


def test_every_bad_row_is_named_at_once(service: BroadcastService, desk: Setup) -> None:
    """A row under a bad row is not blamed for it; the good rows are not written either."""
    text = PROVINCE + "77,Xã Sai,xã,38\n,Thôn Sai,thôn,77\n,,thôn,16012\n"
    with pytest.raises(ZoneFileError) as caught:
        desk.import_zones(None, text)
    assert [(p.line, p.column) for p in caught.value.problems] == [(12, "code"), (14, "name")]
    assert caught.value.code == "bad_code"
    assert _zone_count(service) == 0


def test_a_file_that_is_not_a_zone_list(desk: Setup) -> None:
    cases = {
        b"": (1, "", "empty"),
        b"name,kind\nX,xa\n": (1, "code", "header"),
        b"code,name,kind,parent\n\n": (2, "", "empty"),
        b"code,name,kind,parent\n38,T\xe1nh,t\xe1nh,\n": (2, "", "encoding"),
    }
    for data, expected in cases.items():
        with pytest.raises(ZoneFileError) as caught:
            desk.import_zones(None, data)
        first = caught.value.problems[0]
        assert (first.line, first.column, first.code) == expected


def test_names_that_differ_only_in_diacritics_are_two_zones(
    service: BroadcastService, desk: Setup
) -> None:
    """Thôn Đông and Thôn Đồng make the same slug: the second gets a suffix, and importing the
    file again finds each by its own name."""
    text = PROVINCE + ",Thôn Đông,thôn,16012\n,Thôn Đồng,thôn,16012\n,thôn  đồng,thôn,16015\n"
    created = desk.import_zones(None, text).created
    assert created[-3:] == [
        "xa-hoang-hop-thon-dong",
        "xa-hoang-hop-thon-dong-2",
        "xa-hoang-tien-thon-dong",
    ]
    assert not desk.import_zones(None, text).changed
    assert desk.add_zone(None, "thôn", "Thôn Dòng", parent="16012").id == "xa-hoang-hop-thon-dong-3"
    assert desk.add_zone(None, "xã", "Xã Hoằng Hợp", code="16021").id == "xa-hoang-hop-16021"


def test_a_changed_file_renames_and_moves(service: BroadcastService, desk: Setup) -> None:
    desk.import_zones(None, PROVINCE)
    changed = PROVINCE.replace("Xã Hoằng Tiến", "Xã Hoằng Tiến Mới").replace(
        ",Thôn 2,thôn,16012", ",Thôn 2,thôn,16015"
    )
    result = desk.import_zones(None, changed)
    assert result.renamed == ["xa-hoang-tien"] and result.created == ["xa-hoang-tien-thon-2"]
    assert result.moved == []  # Thôn 2 under another commune is another village
    entries = _audit(service)[-2:]
    assert entries[0].detail == {"name": "Xã Hoằng Tiến Mới", "previous_name": "Xã Hoằng Tiến"}


def test_a_single_commune_joins_its_province_by_import(
    service: BroadcastService, desk: Setup, users: Users
) -> None:
    """The commune of a single-commune installation (no code, at the root) is the commune the
    province's file names: it gets its code and parent, its villages are not made twice."""
    text = (
        "code,name,kind,parent\n38,Tỉnh Thanh Hóa,tỉnh,\n16099,Xã Thử,xã,38\n,Thôn A,thôn,16099\n"
    )
    result = desk.import_zones(None, text)
    assert result.created == ["tinh-thanh-hoa"]
    assert result.coded == ["xa-test"] and result.moved == ["xa-test"]
    assert _tree(desk)[:3] == [
        (0, "tinh-thanh-hoa", "province", "38"),
        (1, "xa-test", "commune", "16099"),
        (2, "thon-a", "village", None),
    ]
    assert result.bound == ["leader", "officer", "viewer"]
    assert not desk.import_zones(None, text).changed


def test_add_makes_ids_from_names_under_the_tree_rules(
    service: BroadcastService, desk: Setup
) -> None:
    province = desk.add_zone(None, "tỉnh", "Tỉnh Thanh Hóa", code="38")
    commune = desk.add_zone(None, "phường", "Phường Hạc Thành", code="14836", parent="38")
    village = desk.add_zone(None, "tổ dân phố", "Tổ dân phố 1", parent="phuong-hac-thanh")
    alone = desk.add_zone(None, "commune", "Xã Lẻ", zone_id="xa-le")
    assert (province.id, commune.parent_id) == ("tinh-thanh-hoa", "tinh-thanh-hoa")
    assert village.id == "phuong-hac-thanh-to-dan-pho-1" and alone.parent_id is None
    refused = {
        "thôn phải thuộc một xã": dict(kind="village", name="Thôn 9"),
        "không thể thuộc tỉnh": dict(kind="village", name="Thôn 9", parent="38"),
        "không thể thuộc xã": dict(kind="province", name="Tỉnh X", parent="xa-le"),
        "đã là của khu vực “tinh-thanh-hoa”": dict(kind="province", name="Tỉnh Y", code="38"),
        "có 2 chữ số": dict(kind="province", name="Tỉnh Z", code="038"),
        "xã “xa-le” ở cấp gốc đã mang tên này": dict(kind="commune", name="xã  lẻ"),
        "mã khu vực “xa-le” đã có": dict(kind="commune", name="Xã Lẻ 2", zone_id="xa-le"),
        "không có khu vực nào mang mã hay mã hành chính “nope”": dict(
            kind="commune", name="Xã K", parent="nope"
        ),
        "tên khu vực trống": dict(kind="commune", name="  "),
        "không phải loại khu vực": dict(kind="county", name="X"),
        "cấp huyện đã bỏ": dict(kind="district", name="X"),
    }
    for words, arguments in refused.items():
        with pytest.raises(ValidationError) as caught:
            desk.add_zone(None, **arguments)
        assert words in caught.value.message, (words, caught.value.message)
    assert _zone_count(service) == 4
    assert [e.action for e in _audit(service)] == [audit.Action.ZONE_CREATE.value] * 4


def test_moving_the_commune_under_a_province_keeps_everyone_s_rights(
    service: BroadcastService, desk: Setup, users: Users
) -> None:
    with service.db.session() as session:
        registry.register_device(
            session, service.settings, service.fleet.public_key_text, "loa-a-01", "thon-a"
        )
        before = {
            user.username: (user.role, user.active, _reach(session, user))
            for user in session.scalars(select(User))
        }
        head = session.get(User, users.head_1)
        assert head is not None
        head_zones = [z.id for z in zones.zones_for(session, head, Action.ANNOUNCE)]
    written = service.bulletins.create_bulletin(users.officer, "Tin xã", "Họp dân tối nay.")
    desk.add_zone(None, "province", "Tỉnh Thanh Hóa", code="38")
    with service.db.session() as session:  # the province is in the installation-wide reach
        before["admin"] = (*before["admin"][:2], _reach(session, session.get(User, users.admin)))
    moved = desk.move_zone(None, "xa-test", "38")
    assert (moved.previous_parent, moved.parent, moved.changed) == (None, "tinh-thanh-hoa", True)
    assert moved.receivers == 1
    assert not desk.move_zone(None, "xa-test", "tinh-thanh-hoa").changed
    with service.db.session() as session:
        after = {
            user.username: (user.role, user.active, _reach(session, user))
            for user in session.scalars(select(User))
        }
        bound = {user.username: user.zone_id for user in session.scalars(select(User))}
        head = session.get(User, users.head_1)
        assert head is not None
        assert [z.id for z in zones.zones_for(session, head, Action.ANNOUNCE)] == head_zones
        device = session.get(Device, "loa-a-01")
        assert device is not None
        # the receiver now hears its province too: its config must be refreshed (loa says so)
        assert receivers.zone_check(device).expected == ("thon-a", "xa-test", "tinh-thanh-hoa")
    # the same zones as before for everyone: the commune's staff, unbound while the installation
    # was their commune, are bound to it (else they would see the province); the admin is not
    assert after == before
    assert moved.bound == ("leader", "officer", "viewer")
    # the commune's bulletins, written while its accounts were unbound, are its own: its
    # officer still finds them
    assert service.bulletins.view(users.officer, written).bulletin.id == written
    assert bound == {
        "admin": None,
        "officer": "xa-test",
        "head-a": "thon-a",
        "viewer": "xa-test",
        "leader": "xa-test",
    }
    last = _audit(service)[-1]
    assert (last.action, last.target) == (audit.Action.ZONE_UPDATE.value, "zone:xa-test")
    assert last.detail == {
        "parent": "tinh-thanh-hoa",
        "previous_parent": None,
        "bound_users": ["leader", "officer", "viewer"],
    }
    for zone, parent, words in (
        ("thon-a", "38", "thôn không thể thuộc tỉnh"),
        ("tinh-thanh-hoa", "xa-test", "tỉnh không thể thuộc xã"),
        ("xa-test", "thon-b", "xã không thể thuộc thôn"),
    ):
        with pytest.raises(ValidationError, match=words):
            desk.move_zone(None, zone, parent)
    with pytest.raises(NotFound):
        desk.move_zone(None, "nope", "38")


def test_only_an_admin_sets_up(desk: Setup, users: Users) -> None:
    for user_id in (users.officer, users.leader, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            desk.add_zone(user_id, "province", "Tỉnh X")
        with pytest.raises(PermissionDenied):
            desk.import_zones(user_id, PROVINCE)
        with pytest.raises(PermissionDenied):
            desk.move_zone(user_id, "xa-test", "")
    assert desk.add_zone(users.admin, "province", "Tỉnh X").id == "tinh-x"


def test_readiness_wants_a_zone_and_an_admin(service: BroadcastService, desk: Setup) -> None:
    assert (desk.readiness().ready, desk.readiness().zones) == (False, 0)
    desk.add_zone(None, "commune", "Xã Thử")
    assert not desk.readiness().ready and desk.readiness().communes == 1
    with service.db.session() as session:
        accounts.create_user(session, "admin", "correct horse battery", Role.ADMIN)
    assert desk.readiness().ready


def test_kind_words_and_slugs() -> None:
    assert parse_kind("Thành phố") == ZoneKind.PROVINCE
    assert parse_kind("ĐẶC KHU") == parse_kind("phuong") == ZoneKind.COMMUNE
    assert parse_kind("Tổ dân phố") == parse_kind("bản") == ZoneKind.VILLAGE
    assert parse_kind("huyện") is None and parse_kind("") is None
    assert slug("Xã Đông Hưng (mới)") == "xa-dong-hung-moi"
    assert len(slug("Thôn " * 40)) <= 63 and not slug("Thôn " * 40).endswith("-")
    assert slug("!!!") == ""
