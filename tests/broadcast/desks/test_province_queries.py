"""The report and the broadcast list of a province's account at a province's size (100 communes
of 5 villages): answered on SQLite and PostgreSQL (`--db postgresql`) by queries whose size
does not grow with the tree, with the same broadcasts as the per-id conditions they replaced,
which are kept here (`_old_reached`, `_old_heard`) as the reference on a small tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import ColumnElement, String, cast, exists, or_, select
from support import sql_statements

from broadcast.const import Role, ZoneKind
from broadcast.desks.reporting import LogFilter
from broadcast.people import accounts, zones
from broadcast.sending import broadcasts
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Delivery, Device, User, Zone

PROVINCE = "tinh-p"
OTHER = "tinh-khac"  # a second province: the first one's accounts do not hear everything


@dataclass(frozen=True)
class Tree:
    editor: int  # province_editor of PROVINCE
    root: int  # installation-wide admin
    users: dict[str, int]  # an officer per commune (the small tree), a head per village
    zone_ids: list[str]
    broadcast_ids: list[int]


def _commune(c: int) -> str:
    return f"xa-{c:03d}"


def _village(c: int, v: int) -> str:
    return f"{_commune(c)}-t{v}"


def _communes(first: int, last: int, villages: int) -> tuple[list[Zone], list[Device]]:
    """Communes `first`..`last` of PROVINCE, their villages and a receiver in every village
    (but the second village of the second commune), as plain rows: hundreds in a second."""
    rows: list[Zone] = []
    for c in range(first, last + 1):
        rows.append(
            Zone(
                id=_commune(c),
                name=f"Xã {c:03d}",
                kind=ZoneKind.COMMUNE.value,
                parent_id=PROVINCE,
                code=f"98{c:03d}",
            )
        )
        rows += [
            Zone(
                id=_village(c, v),
                name=f"Thôn {v}",
                kind=ZoneKind.VILLAGE.value,
                parent_id=_commune(c),
            )
            for v in range(1, villages + 1)
        ]
    devices = [
        Device(id=f"loa-{zone.id}", name=zone.id, zone_id=zone.id, mqtt_password_hash="-")
        for zone in rows
        if zone.kind == ZoneKind.VILLAGE.value and zone.id != _village(2, 2)
    ]
    return rows, devices


def _build(
    service: BroadcastService, communes: int, villages: int, accounts_below: bool = False
) -> Tree:
    """PROVINCE with `communes` (`_communes`), another province with a commune, a village and a
    receiver; broadcasts of every kind of reach."""
    rows = [
        Zone(id=PROVINCE, name="Tỉnh P", kind=ZoneKind.PROVINCE.value, code="98"),
        Zone(id=OTHER, name="Tỉnh Khác", kind=ZoneKind.PROVINCE.value, code="97"),
        Zone(id="xa-khac", name="Xã Khác", kind=ZoneKind.COMMUNE.value, parent_id=OTHER),
        Zone(id="thon-khac", name="Thôn Khác", kind=ZoneKind.VILLAGE.value, parent_id="xa-khac"),
    ]
    below, devices = _communes(1, communes, villages)
    rows += below
    devices.append(
        Device(id="loa-khac", name="loa-khac", zone_id="thon-khac", mqtt_password_hash="-")
    )
    with service.db.session() as session:
        session.add_all(rows)
        session.flush()
        session.add_all(devices)
        root = accounts.create_user(session, "root", "mat khau dai", Role.ADMIN)
        editor = accounts.create_user(
            session, "bientap", "mat khau dai", Role.PROVINCE_EDITOR, PROVINCE
        )
        users: dict[str, int] = {}
        if accounts_below:
            for zone in rows[2:]:
                role = Role.OFFICER if zone.kind == ZoneKind.COMMUNE.value else Role.VILLAGE_HEAD
                user = User(
                    username=f"u-{zone.id}",
                    password_hash=root.password_hash,
                    role=role.value,
                    zone_id=zone.id,
                )
                session.add(user)
                session.flush()
                users[zone.id] = user.id
        session.flush()
        d1, d2, dn = (f"loa-{_village(c, 1)}" for c in (1, 2, communes))
        made = [
            ([PROVINCE], [], [d1, d2, dn], root.id),
            ([_commune(1)], [], [d1], root.id),
            ([_village(2, 1)], [], [d2], root.id),
            ([_village(2, 2)], [], [], root.id),  # a village with no receiver
            ([], [dn], [dn], root.id),  # a receiver named alone
            ([OTHER], [], ["loa-khac"], root.id),
            (["xa-khac"], [], ["loa-khac"], editor.id),  # sent by the editor elsewhere
            ([OTHER], [], [d1], root.id),  # a delivery alone reaches a receiver's zone
            ([_commune(communes)], None, [dn], root.id),  # device_ids stored as JSON null
        ]
        ids = []
        start = datetime(2026, 1, 5, 1, 0)
        for n, (zone_ids, device_ids, delivered, author) in enumerate(made):
            broadcast = Broadcast(
                title=f"Tin {n}",
                text=f"Tin {n}",
                priority="normal",
                zone_ids=zone_ids,
                device_ids=device_ids,
                source="announcement",
                status="finished",
                created_at=start + timedelta(hours=n),
                created_by_id=author,
            )
            session.add(broadcast)
            session.flush()
            session.add_all(
                Delivery(broadcast_id=broadcast.id, device_id=d, state="finished")
                for d in delivered
            )
            ids.append(broadcast.id)
        zone_ids = [zone.id for zone in rows]
        root_id, editor_id = root.id, editor.id
    return Tree(editor_id, root_id, users, zone_ids, ids)


# --- the per-id conditions these queries replaced, as the reference ----------------------------


def _json_has(column: object, value: str) -> ColumnElement[bool]:
    return cast(column, String).like(f'%"{value}"%')


def _old_reached(session: object, zone_id: str) -> ColumnElement[bool]:
    zone = session.get(Zone, zone_id)  # type: ignore[attr-defined]
    related = {z.id for z in zones.ancestors_and_self(zone)} | {z.id for z in zones.subtree(zone)}
    devices = [d.id for d in zones.target_devices([zone])]
    reach = [_json_has(Broadcast.zone_ids, z) for z in sorted(related)]
    reach += [_json_has(Broadcast.device_ids, d) for d in devices]
    if devices:
        reach.append(
            exists().where(Delivery.broadcast_id == Broadcast.id, Delivery.device_id.in_(devices))
        )
    return or_(*reach)


def _old_heard(session: object, user: User) -> ColumnElement[bool]:
    heard, devices = broadcasts.listening_scope(session, user)  # type: ignore[arg-type,misc]
    reach = [Broadcast.created_by_id == user.id]
    reach += [_json_has(Broadcast.zone_ids, z) for z in sorted(heard)]
    if devices:
        reach.append(
            exists().where(Delivery.broadcast_id == Broadcast.id, Delivery.device_id.in_(devices))
        )
    return or_(*reach)


def _ids(session: object, condition: ColumnElement[bool]) -> set[int]:
    return set(session.scalars(select(Broadcast.id).where(condition)))  # type: ignore[attr-defined]


# --- the tests ---------------------------------------------------------------------------------


def test_a_province_s_report_and_list_answer_at_province_size(service: BroadcastService) -> None:
    tree = _build(service, communes=100, villages=5)
    log = service.reports.broadcast_log(tree.editor, LogFilter(), per_page=200)
    reached = {tree.broadcast_ids[i] for i in (0, 1, 2, 3, 4, 7, 8)}
    assert {row.id for row in log.rows} == reached
    one = service.reports.broadcast_log(tree.root, LogFilter(zone_id=_commune(2)), per_page=200)
    assert {row.id for row in one.rows} == {tree.broadcast_ids[i] for i in (0, 2, 3)}
    assert service.reports.log_csv(tree.editor, LogFilter()).count(b"\r\n") == 1 + len(reached)
    listed = {row.broadcast.id for row in service.announcements.recent(tree.editor, 50)}
    assert listed == reached | {tree.broadcast_ids[6]}  # and what the editor sent elsewhere


def _largest(service: BroadcastService, ask: Callable[[], object]) -> tuple[int, int]:
    """How many statements `ask` runs, and the length of the longest."""
    with sql_statements(service.db.engine) as seen:
        ask()
    return len(seen), max(len(statement) for statement in seen)


def test_the_queries_do_not_grow_with_the_tree(service: BroadcastService) -> None:
    """A province editor's report, its zone picker, CSV, broadcast list and zones run as many
    statements with 100 communes as with 3, the longest as long (a list of ids would make it
    grow with every zone, a walk of the tree add a query for each)."""
    tree = _build(service, communes=3, villages=5)

    def sizes() -> tuple[tuple[int, int], ...]:
        return (
            _largest(service, lambda: service.reports.zone_choices(tree.editor)),
            _largest(service, lambda: service.overview.zones(tree.editor)),
            _largest(service, lambda: service.reports.broadcast_log(tree.editor, LogFilter())),
            _largest(service, lambda: service.reports.log_csv(tree.editor, LogFilter())),
            _largest(service, lambda: service.reports.deliveries_csv(tree.editor, LogFilter())),
            _largest(service, lambda: service.announcements.recent(tree.editor, 50)),
        )

    small = sizes()
    with service.db.session() as session:
        rows, devices = _communes(4, 100, 5)
        session.add_all(rows)
        session.flush()
        session.add_all(devices)
    assert sizes() == small


def test_an_emergency_to_every_commune_costs_the_same_statements_as_to_three(
    service: BroadcastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The POST of a province emergency: its zones read at once, its delivery rows written in
    one INSERT from the receivers' ids, no zone or receiver loaded one by one."""
    tree = _build(service, communes=3, villages=5)
    queued: list[int] = []
    monkeypatch.setattr(service.announcements._outbox, "send", queued.append)

    def announce(communes: int) -> tuple[int, int]:
        every = [_commune(c) for c in range(1, communes + 1)]
        return _largest(
            service,
            lambda: service.announcements.announce(tree.root, "Bão số 3 đổ bộ", every),
        )

    small_count, _small_length = announce(3)
    with service.db.session() as session:
        rows, devices = _communes(4, 100, 5)
        session.add_all(rows)
        session.flush()
        session.add_all(devices)
    large_count, _large_length = announce(100)
    assert large_count == small_count
    assert len(queued) == 2
    with service.db.session() as session:
        last = session.get(Broadcast, queued[-1])
        assert last is not None and len(last.deliveries) == 100 * 5 - 1  # one village has none


@pytest.mark.parametrize("check", ["reports", "lists"])
def test_the_queries_keep_the_per_id_semantics(service: BroadcastService, check: str) -> None:
    tree = _build(service, communes=3, villages=2, accounts_below=True)
    with service.db.session() as session:
        if check == "reports":
            for zone_id in tree.zone_ids:
                log = service.reports.broadcast_log(tree.root, LogFilter(zone_id=zone_id))
                assert {row.id for row in log.rows} == _ids(
                    session, _old_reached(session, zone_id)
                ), zone_id
        else:
            for zone_id, user_id in {**tree.users, PROVINCE: tree.editor}.items():
                user = session.get(User, user_id)
                expected = {
                    b.id
                    for b in session.scalars(select(Broadcast).where(_old_heard(session, user)))
                    if broadcasts.can_view(session, user, b)
                }
                listed = {row.broadcast.id for row in service.announcements.recent(user_id, 50)}
                assert listed == expected, zone_id
