"""Administration in a province: an admin bound to a zone sees and acts only inside it (users,
zones, receivers and their configs, the audit log), what lies outside is hidden (NotFound, or
refused as unknown when named in a form), and what concerns the whole installation (the
tree's root, signing keys, metrics) is the installation-wide admin's alone."""

from __future__ import annotations

import pytest
from service_support import Province
from sqlalchemy import select

from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Device, User, Zone


def _names(service: BroadcastService, admin: int) -> set[str]:
    return {row.username for row in service.admin.list_users(admin)}


def _audit_count(service: BroadcastService) -> int:
    with service.db.session() as session:
        return len(list(session.scalars(select(AuditEntry.id))))


def test_users_are_listed_within_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    assert _names(service, province.admin_a) == {"an-admin", "an-officer", "an-head"}
    assert _names(service, province.province_admin) == {
        "tinh-admin", "tinh-editor", "an-admin", "binh-admin", "an-officer", "binh-officer",
        "an-head", "binh-head",
    }  # fmt: skip
    assert "root-admin" in _names(service, province.root_admin)
    assert _names(service, province.province_admin) < _names(service, province.root_admin)


@pytest.mark.parametrize(
    "act",
    [
        lambda s, admin, target: s.admin.set_active(admin, target, False),
        lambda s, admin, target: s.admin.reset_password(admin, target),
        lambda s, admin, target: s.admin.change_role(admin, target, "viewer", "xa-an"),
    ],
    ids=["set_active", "reset_password", "change_role"],
)
def test_a_user_outside_the_zone_is_not_found(
    service: BroadcastService, province: Province, act
) -> None:
    before = _audit_count(service)
    for admin, target in (
        (province.admin_a, province.officer_b),
        (province.admin_a, province.province_admin),  # the level above
        (province.admin_a, province.root_admin),  # installation-wide
        (province.province_admin, province.root_admin),
    ):
        with pytest.raises(NotFound):
            act(service, admin, target)
    assert _audit_count(service) == before
    with service.db.session() as session:
        officer = session.get(User, province.officer_b)
        assert officer.active and officer.role == "officer"


def test_the_province_admin_manages_both_communes(
    service: BroadcastService, province: Province
) -> None:
    service.admin.reset_password(province.province_admin, province.officer_b)
    service.admin.change_role(province.province_admin, province.officer_a, "leader", "xa-binh")
    service.admin.set_active(province.province_admin, province.admin_b, False)
    with service.db.session() as session:
        moved = session.get(User, province.officer_a)
        assert (moved.role, moved.zone_id) == ("leader", "xa-binh")
        assert not session.get(User, province.admin_b).active


def test_zone_choices_are_what_create_user_accepts(
    service: BroadcastService, province: Province
) -> None:
    choices = service.admin.user_zone_choices(province.admin_a)
    assert "province_editor" not in choices  # bound to a province: none in a commune
    assert [c.id for c in choices["officer"]] == ["xa-an"]
    assert [c.id for c in choices["village_head"]] == ["thon-an-1", "thon-an-2"]
    wide = service.admin.user_zone_choices(province.province_admin)
    assert [c.id for c in wide["province_editor"]] == ["tinh-thu"]
    assert [c.id for c in wide["admin"]] == ["tinh-thu", "xa-an", "xa-binh"]
    root = service.admin.user_zone_choices(province.root_admin)
    assert root["admin"][0].id == "" and root["province_editor"][0].id == ""
    assert "" not in {c.id for c in root["officer"]}  # a province exists: staff need a commune
    number = 0
    for admin in (province.admin_a, province.province_admin, province.root_admin):
        offered = service.admin.user_zone_choices(admin)
        for role, zones in offered.items():
            for zone in zones:
                number += 1
                service.admin.create_user(admin, f"u{number}", role, zone.id)
        scope = {row.id for row in service.admin.list_zones(admin)}
        for role in ("admin", "officer", "village_head", "province_editor", "leader", "viewer"):
            allowed = {zone.id for zone in offered.get(role, [])}
            for zone_id in [*sorted(scope - allowed), "xa-test-none"]:
                with pytest.raises(ValidationError) as info:
                    service.admin.create_user(admin, "refused", role, zone_id)
                assert info.value.field == "zone"


def test_a_commune_admin_binds_users_only_in_its_commune(
    service: BroadcastService, province: Province
) -> None:
    for zone_id in ("xa-binh", "thon-binh-1", "tinh-thu", ""):
        with pytest.raises(ValidationError) as info:
            service.admin.create_user(province.admin_a, "x", "officer", zone_id)
        assert info.value.field == "zone"
    with pytest.raises(ValidationError):
        service.admin.change_role(province.admin_a, province.officer_a, "officer", "xa-binh")
    created = service.admin.create_user(province.admin_a, "an-leader", "leader", "xa-an")
    assert "an-leader" in _names(service, province.admin_a)
    assert "an-leader" not in _names(service, province.admin_b)
    assert created.user_id


# --- zones --------------------------------------------------------------------------------


def test_zones_are_the_admin_subtree(service: BroadcastService, province: Province) -> None:
    assert [z.id for z in service.admin.list_zones(province.admin_a)] == [
        "xa-an", "thon-an-1", "thon-an-2",
    ]  # fmt: skip
    rows = service.admin.list_zones(province.province_admin)
    assert [z.id for z in rows] == [
        "tinh-thu", "xa-an", "thon-an-1", "thon-an-2", "xa-binh", "thon-binh-1",
    ]  # fmt: skip
    assert [(z.kind, z.code, z.depth) for z in rows[:2]] == [
        ("province", "99", 0),
        ("commune", "99001", 1),
    ]
    everything = {z.id for z in service.admin.list_zones(province.root_admin)}
    assert everything >= {z.id for z in rows}


def test_zone_form_offers_what_each_admin_may_create(
    service: BroadcastService, province: Province
) -> None:
    commune = service.admin.zone_form(province.admin_a)
    assert commune.kinds == ("village",)
    assert [p.id for p in commune.parents["village"] if p] == ["xa-an"]
    wide = service.admin.zone_form(province.province_admin)
    assert wide.kinds == ("commune", "village")
    assert [p.id for p in wide.parents["commune"] if p] == ["tinh-thu"]
    assert None not in wide.parents["commune"]  # never at the root
    root = service.admin.zone_form(province.root_admin)
    assert root.kinds == ("province", "commune", "village")
    assert root.parents["province"] == (None,)


def test_zones_are_created_only_inside_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    before = _audit_count(service)
    refused = [
        (province.admin_a, "village", "xa-binh"),
        (province.admin_a, "village", "99002"),  # by code
        (province.admin_a, "commune", "tinh-thu"),
        (province.admin_a, "province", ""),
        (province.province_admin, "province", ""),
        (province.province_admin, "commune", ""),
    ]
    for admin, kind, parent in refused:
        with pytest.raises(ValidationError) as info:
            service.admin.create_zone(admin, kind, "Mới", parent)
        assert info.value.field == "parent", (admin, kind, parent)
    assert _audit_count(service) == before
    village = service.admin.create_zone(province.admin_a, "village", "Thôn An 3", "xa-an")
    assert village.id == "xa-an-thon-an-3"
    commune = service.admin.create_zone(province.province_admin, "commune", "Xã Cát", "tinh-thu")
    assert commune.parent_id == "tinh-thu"
    service.admin.create_zone(province.province_admin, "village", "Thôn Bình 2", "xa-binh")
    service.admin.create_zone(province.root_admin, "province", "Tỉnh Khác", code="97")
    with service.db.session() as session:
        assert session.get(Zone, "xa-binh-thon-binh-2") is not None


def test_zones_are_edited_only_below_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    for zone_id in ("xa-binh", "thon-binh-1", "tinh-thu", "nowhere"):
        with pytest.raises(NotFound):
            service.admin.edit_zone(province.admin_a, zone_id, "Tên Lạ")
    with pytest.raises(PermissionDenied):  # its own commune is named by the province
        service.admin.edit_zone(province.admin_a, "xa-an", "Xã An Mới", "99009")
    service.admin.edit_zone(province.admin_a, "thon-an-2", "Thôn An Hai")
    service.admin.edit_zone(province.province_admin, "xa-binh", "Xã Bình Mới", "99003")
    with service.db.session() as session:
        assert session.get(Zone, "thon-binh-1").name == "Thôn Bình 1"
        assert session.get(Zone, "xa-binh").code == "99003"


def test_the_setup_desk_follows_the_same_scope(
    service: BroadcastService, province: Province
) -> None:
    assert [line.id for line in service.setup.tree(province.admin_b)] == [
        "xa-binh", "thon-binh-1",
    ]  # fmt: skip
    with pytest.raises(PermissionDenied):
        service.setup.move_zone(province.province_admin, "xa-an", "")
    with pytest.raises(PermissionDenied):
        service.setup.import_zones(province.province_admin, "code,name,kind,parent\n")
    with pytest.raises(ValidationError):
        service.setup.add_zone(province.admin_a, "village", "Thôn X", parent="xa-binh")


# --- receivers ----------------------------------------------------------------------------


def test_receivers_are_those_of_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    assert [r.id for r in service.admin.device_page(province.admin_a).rows] == ["loa-an-1-01"]
    assert [r.id for r in service.admin.device_page(province.admin_b).rows] == ["loa-binh-1-01"]
    both = {r.id for r in service.admin.device_page(province.province_admin).rows}
    assert both == {"loa-an-1-01", "loa-binh-1-01"}
    filtered = service.admin.device_page(province.province_admin, zone_id="xa-binh")
    assert [r.id for r in filtered.rows] == ["loa-binh-1-01"]
    with pytest.raises(ValidationError) as info:
        service.admin.device_page(province.admin_a, zone_id="xa-binh")
    assert info.value.field == "zone"


@pytest.mark.parametrize(
    "act",
    [
        lambda s, admin, device: s.admin.get_device(admin, device),
        lambda s, admin, device: s.admin.device_config(admin, device),
        lambda s, admin, device: s.admin.device_config_qr(admin, device),
        lambda s, admin, device: s.admin.device_qr_ca_file(admin, device),
    ],
    ids=["get_device", "device_config", "device_config_qr", "device_qr_ca_file"],
)
def test_a_receiver_of_another_commune_is_not_found(
    service: BroadcastService, province: Province, act
) -> None:
    before = _audit_count(service)
    with pytest.raises(NotFound):
        act(service, province.admin_a, province.device_b)
    assert _audit_count(service) == before  # reading nothing is not audited
    act(service, province.admin_b, province.device_b)
    act(service, province.province_admin, province.device_a)
    act(service, province.root_admin, province.device_a)


def test_receivers_are_registered_only_in_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    for zone_id in ("thon-binh-1", "xa-binh", "tinh-thu"):
        with pytest.raises(ValidationError) as info:
            service.admin.register_device(province.admin_a, "loa-lac", zone_id)
        assert info.value.field == "zone"
        with pytest.raises(ValidationError):
            service.fleet.register_device("loa-lac", zone_id, user_id=province.admin_a)
    service.admin.register_device(province.admin_a, "loa-an-2-01", "thon-an-2")
    with service.db.session() as session:
        assert session.get(Device, "loa-lac") is None
        assert session.get(Device, "loa-an-2-01").zone_id == "thon-an-2"


# --- the audit log and the installation ---------------------------------------------------


def test_the_audit_log_shows_entries_of_the_admin_zone(
    service: BroadcastService, province: Province
) -> None:
    service.admin.reset_password(province.admin_a, province.officer_a)
    service.admin.reset_password(province.admin_b, province.officer_b)
    service.admin.reset_password(province.province_admin, province.officer_b)
    service.admin.reset_password(province.root_admin, province.officer_a)

    def who(admin: int) -> set[str]:
        return {row.username for row in service.admin.audit_page(admin).rows}

    assert who(province.admin_a) == {"an-admin"}
    assert who(province.admin_b) == {"binh-admin"}
    assert who(province.province_admin) == {"an-admin", "binh-admin", "tinh-admin"}
    assert who(province.root_admin) >= {"an-admin", "binh-admin", "tinh-admin", "root-admin"}
    page = service.admin.audit_page(province.admin_a)
    assert page.total == page.check.entries == 1 and page.check.ok


def test_installation_things_are_the_installation_admin_s(
    service: BroadcastService, province: Province
) -> None:
    for admin in (province.province_admin, province.admin_a):
        assert not service.metrics.may_read(admin)
        with pytest.raises(PermissionDenied):
            service.fleet.rotate_keys(new_key=False, user_id=admin)
        with pytest.raises(PermissionDenied):
            service.fleet.refresh_device_configs(user_id=admin)
    assert service.metrics.may_read(province.root_admin)
    assert not service.metrics.may_read(province.officer_a)
    rotation = service.fleet.rotate_keys(new_key=False, user_id=province.root_admin)
    assert rotation.epoch
