"""Zones: provinces (tỉnh), communes (xã, phường, đặc khu) and villages (thôn, bản, tổ dân
phố), and who may reach which. A single-commune installation has its commune at the root."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, aliased, object_session

from broadcast.const import ZONE_KIND_WORDS, ZoneKind
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.people import permissions
from broadcast.people.permissions import Action
from broadcast.store.models import Bulletin, Device, User, Zone
from wire.protocol import ID_PATTERN

_LOGGER = logging.getLogger(__name__)


# What a zone of each kind may sit under (None: at the root). A commune at the root is a
# single-commune installation, as Loa was before provinces.
PARENT_KINDS: dict[ZoneKind, tuple[ZoneKind | None, ...]] = {
    ZoneKind.PROVINCE: (None,),
    ZoneKind.COMMUNE: (None, ZoneKind.PROVINCE),
    ZoneKind.VILLAGE: (ZoneKind.COMMUNE,),
}
# mã đơn vị hành chính: 2 digits for a province, 5 for a commune (villages have none here)
CODE_DIGITS: dict[ZoneKind, int] = {ZoneKind.PROVINCE: 2, ZoneKind.COMMUNE: 5}
_DIGITS = re.compile(r"[0-9]+")


def create_zone(
    session: Session,
    zone_id: str,
    name: str,
    kind: ZoneKind,
    parent_id: str | None = None,
    code: str | None = None,
) -> Zone:
    if not ID_PATTERN.fullmatch(zone_id):
        raise ValidationError(
            "id",
            N_("mã khu vực “%(id)s” chỉ gồm chữ thường không dấu, số và dấu gạch ngang"),
            "invalid_slug",
            id=zone_id,
        )
    if session.get(Zone, zone_id) is not None:
        raise ValidationError("id", N_("mã khu vực “%(id)s” đã có"), "already_exists", id=zone_id)
    if parent_id is not None and session.get(Zone, parent_id) is None:
        raise ValidationError(
            "parent", N_("không có khu vực cha “%(id)s”"), "unknown_zone", id=parent_id
        )
    if code is not None and by_code(session, code) is not None:
        raise ValidationError(
            "code", N_("mã hành chính %(value)s đã là của khu vực khác"), "taken", value=code
        )
    zone = Zone(id=zone_id, name=name, kind=kind.value, parent_id=parent_id, code=code)
    session.add(zone)
    session.flush()
    return zone


def ancestors_and_self(zone: Zone) -> list[Zone]:
    """The zone, then its parent, up to the commune: the command topics a receiver listens on."""
    chain: list[Zone] = []
    current: Zone | None = zone
    while current is not None and current not in chain:
        chain.append(current)
        current = current.parent
    return chain


def voice_for(session: Session, zone_ids: Iterable[str], device_ids: Iterable[str] = ()) -> str:
    """The voice what goes to these targets is read in: the one chosen by the nearest zone
    above each (its commune, else its province); "" (the installation's engine) when none
    chose one, or when the targets lie in places that chose differently."""
    if session.scalar(select(Zone.id).where(Zone.voice != "").limit(1)) is None:
        return ""  # the usual case: one small query and done
    places = set(zone_ids)
    devices = list(device_ids)
    if devices:
        places |= set(session.scalars(select(Device.zone_id).where(Device.id.in_(devices))))
    voices = set()
    for zone_id in places:
        zone = session.get(Zone, zone_id)
        if zone is None:
            continue
        voices.add(next((z.voice for z in ancestors_and_self(zone) if z.voice), ""))
    return voices.pop() if len(voices) == 1 else ""


def names_with_ancestors(chosen: Iterable[Zone]) -> dict[str, str]:
    """Zone id → name of the given zones and every zone above them: a village head reads the
    commune's name on the commune-wide broadcasts that play in their village."""
    return {zone.id: zone.name for own in chosen for zone in ancestors_and_self(own)}


def subtree(zone: Zone) -> list[Zone]:
    return _walk(zone, lambda current: current.children)


def _walk(zone: Zone, children_of: Callable[[Zone], Iterable[Zone]]) -> list[Zone]:
    """The zone and every zone below it, each once (a loop in the tree cannot hang it)."""
    found: list[Zone] = []
    stack = [zone]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.append(current)
        stack.extend(children_of(current))
    return found


def resolve_zones(session: Session, zone_ids: Iterable[str]) -> list[Zone]:
    """Zones by id, in the given order, read in one query (a province bulletin names a hundred
    communes); an unknown id is a ValidationError naming it."""
    wanted = list(zone_ids)
    named = {zone_id for zone_id in wanted if isinstance(zone_id, str)}
    found = (
        {zone.id: zone for zone in session.scalars(select(Zone).where(Zone.id.in_(named)))}
        if named
        else {}
    )
    zones: list[Zone] = []
    for zone_id in wanted:
        zone = found.get(zone_id) if isinstance(zone_id, str) else None
        if zone is None:
            raise ValidationError(
                "zones", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id
            )
        if zone not in zones:
            zones.append(zone)
    if not zones:
        raise ValidationError("zones", N_("hãy chọn ít nhất một khu vực"), "required")
    return zones


def target_devices(zones: Iterable[Zone]) -> list[Device]:
    """Every receiver in the given zones and their sub-zones, each once, by id.

    Two queries whatever the number of zones: walking `children` and `devices` lazily costs a
    query per zone, which at a province's hundreds of villages made a page take seconds."""
    chosen = list(zones)
    session = object_session(chosen[0]) if chosen else None
    if session is None:  # zones outside any session: walk their loaded relationships
        devices = {d.id: d for zone in chosen for member in subtree(zone) for d in member.devices}
        return [devices[key] for key in sorted(devices)]
    query = select(Device).order_by(Device.id)
    wanted = subtree_ids(session, chosen)
    if wanted is not None:
        query = query.where(Device.zone_id.in_(wanted))
    return list(session.scalars(query))


def target_device_ids(zones: Iterable[Zone]) -> list[str]:
    """The ids of `target_devices`, without loading a receiver (a province has thousands)."""
    chosen = list(zones)
    session = object_session(chosen[0]) if chosen else None
    if session is None:
        return [device.id for device in target_devices(chosen)]
    query = select(Device.id).order_by(Device.id)
    wanted = subtree_ids(session, chosen)
    if wanted is not None:
        query = query.where(Device.zone_id.in_(wanted))
    return list(session.scalars(query))


def subtree_ids(session: Session, chosen: Iterable[Zone]) -> set[str] | None:
    """The ids of the given zones and all their sub-zones in one query; None when that is
    every zone (so callers can leave out a filter that would list them all)."""
    wanted, every = _below(session, chosen)
    return None if len(wanted) >= every else wanted


def _below(session: Session, chosen: Iterable[Zone]) -> tuple[set[str], int]:
    """The ids of the given zones and all their sub-zones, and how many zones there are."""
    children: dict[str | None, list[str]] = {}
    for zone_id, parent_id in session.execute(select(Zone.id, Zone.parent_id)):
        children.setdefault(parent_id, []).append(zone_id)
    wanted: set[str] = set()
    stack = [zone.id for zone in chosen]
    while stack:
        zone_id = stack.pop()
        if zone_id not in wanted:
            wanted.add(zone_id)
            stack.extend(children.get(zone_id, ()))
    return wanted, sum(len(ids) for ids in children.values())


def subtree_select(zone_ids: Iterable[str]) -> Select[tuple[str]]:
    """The ids of the given zones and every zone below them as a subquery (a recursive CTE), for
    `IN (…)` in SQL: its size does not grow with the tree, where a list of a province's hundreds
    of zone ids would (`store.json_lists`)."""
    top = select(Zone.id).where(Zone.id.in_(sorted(set(zone_ids)))).cte(recursive=True)
    child = aliased(Zone)
    tree = top.union(select(child.id).where(child.parent_id == top.c.id))
    return select(tree.c.id)


def devices_select(zone_ids: Iterable[str]) -> Select[tuple[str]]:
    """The ids of the receivers in the given zones and below them, as a subquery."""
    return select(Device.id).where(Device.zone_id.in_(subtree_select(zone_ids)))


def device_zones(session: Session, device_ids: Iterable[str]) -> dict[str, str]:
    """Receiver id → its zone's id, for the receivers named (those that exist), in one query."""
    named = sorted(set(device_ids))
    if not named:
        return {}
    query = select(Device.id, Device.zone_id).where(Device.id.in_(named))
    return {device_id: zone_id for device_id, zone_id in session.execute(query)}


@dataclass(frozen=True)
class TreeZone:
    """A zone as the tree walks need it (`ZoneTree`), without loading a row object."""

    id: str
    name: str
    kind: str
    parent_id: str | None


class ZoneTree:
    """Every zone, read in one query, and the tree's walks in memory: a page that would walk
    `Zone.children` lazily costs a query per zone, hundreds at a province."""

    def __init__(self, rows: Iterable[TreeZone]) -> None:
        self.by_id = {row.id: row for row in rows}
        self._children: dict[str | None, list[TreeZone]] = {}
        for row in self.by_id.values():
            self._children.setdefault(row.parent_id, []).append(row)
        for children in self._children.values():
            children.sort(key=lambda row: (row.name, row.id))

    @classmethod
    def load(cls, session: Session) -> ZoneTree:
        query = select(Zone.id, Zone.name, Zone.kind, Zone.parent_id)
        return cls(TreeZone(*row) for row in session.execute(query))

    def children(self, zone_id: str | None) -> list[TreeZone]:
        """The zones right below `zone_id` (None: the roots), by name."""
        return list(self._children.get(zone_id, ()))

    def ancestors_and_self(self, zone_id: str) -> list[TreeZone]:
        """The zone, then its parent, up to the root (as `ancestors_and_self`)."""
        chain: list[TreeZone] = []
        current = self.by_id.get(zone_id)
        while current is not None and current not in chain:
            chain.append(current)
            current = self.by_id.get(current.parent_id) if current.parent_id else None
        return chain

    def subtree_ids(self, zone_ids: Iterable[str]) -> set[str]:
        """The given zones and every zone below them."""
        found: set[str] = set()
        stack = [zone_id for zone_id in zone_ids if zone_id in self.by_id]
        while stack:
            zone_id = stack.pop()
            if zone_id not in found:
                found.add(zone_id)
                stack.extend(child.id for child in self._children.get(zone_id, ()))
        return found

    def related_ids(self, zone_ids: Iterable[str]) -> set[str]:
        """The zones that sound together with these: each, its ancestors and its descendants
        (as `targets.related_zone_ids`)."""
        wanted = list(zone_ids)
        above = {z.id for zone_id in wanted for z in self.ancestors_and_self(zone_id)}
        return above | self.subtree_ids(wanted)

    def walk(
        self, top: Iterable[TreeZone], opened: set[str] | None = None
    ) -> list[tuple[TreeZone, int]]:
        """`top` and the zones below, in tree order (each zone followed by its sub-zones, by
        name), each with its depth below `top`; with `opened`, only the sub-zones of those."""
        found: list[tuple[TreeZone, int]] = []
        stack = [(zone, 0) for zone in reversed(list(top))]
        while stack:
            zone, depth = stack.pop()
            found.append((zone, depth))
            if opened is None or zone.id in opened:
                stack.extend((child, depth + 1) for child in reversed(self.children(zone.id)))
        return found

    def top_of(self, user: User) -> list[TreeZone]:
        """The top of `user`'s scope: their zone, or the roots for an installation-wide one."""
        if user.zone_id is not None and user.zone_id in self.by_id:
            return [self.by_id[user.zone_id]]
        return self.children(None)


def zones_for(session: Session, user: User, action: Action) -> list[Zone]:
    """The zones where `user` may do `action`: the subtree of the zone the account is bound to
    (every zone for an installation-wide account), or none if its role may not do it."""
    if not permissions.allowed(user.role, action):
        return []
    if user.zone is None:
        return list(session.scalars(select(Zone).order_by(Zone.kind, Zone.name)))
    return subtree_rows(session, user.zone)


def subtree_rows(session: Session, zone: Zone) -> list[Zone]:
    """`subtree(zone)` in one query (a recursive CTE), where walking `Zone.children` costs a
    query per zone: the zone first, then each zone before those below it."""
    rows = list(
        session.scalars(
            select(Zone).where(Zone.id.in_(subtree_select([zone.id]))).order_by(Zone.id)
        )
    )
    children: dict[str | None, list[Zone]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    return _walk(zone, lambda current: children.get(current.id, ()))


def scope_ids(session: Session, user: User) -> set[str] | None:
    """The ids of the zones `user` works in (their zone and below), in one query; None for an
    installation-wide account (no filter needed)."""
    if user.zone is None:
        return None
    # the subtree alone (a commune's half-dozen rows), not every zone of the installation
    return set(session.scalars(subtree_select([user.zone.id])))


def in_scope(session: Session, user: User, zone_id: str | None) -> bool:
    """Whether the zone `zone_id` is one `user` works in; an object with no zone (made by an
    installation-wide account) is in the scope of installation-wide accounts only."""
    scope = scope_ids(session, user)
    if scope is None:
        return True
    return zone_id is not None and zone_id in scope


def heard_ids(session: Session, user: User) -> set[str] | None:
    """The zones whose broadcasts sound in `user`'s area: their zone, every zone below it and
    every zone above it (a province bulletin plays in each commune); None: everywhere."""
    scope = scope_ids(session, user)
    if scope is None or user.zone is None:
        return None
    return scope | {zone.id for zone in ancestors_and_self(user.zone)}


def reachable_zones(session: Session, user: User) -> list[Zone]:
    """The zones a user may broadcast to: their own zone and below."""
    return zones_for(session, user, Action.ANNOUNCE)


def visible_zones(session: Session, user: User) -> list[Zone]:
    """The zones a user may see: their own zone and below (every zone if installation-wide)."""
    return zones_for(session, user, Action.VIEW)


def check_can_target(
    session: Session, user: User, zones: Iterable[Zone], action: Action = Action.ANNOUNCE
) -> None:
    """PermissionDenied unless `user` may do `action` in every one of `zones` (its subtree's
    ids read in one query, no zone loaded)."""
    permitted = permissions.allowed(user.role, action)
    allowed = subtree_ids(session, [user.zone]) if permitted and user.zone is not None else None
    for zone in zones:
        if not permitted or (allowed is not None and zone.id not in allowed):
            raise PermissionDenied(
                N_("người dùng “%(user)s” không được phát tới khu vực “%(zone)s”"),
                "zone_out_of_reach",
                user=user.username,
                zone=zone.id,
            )


def get_zone(session: Session, zone_id: str) -> Zone:
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise NotFound(N_("không có khu vực “%(id)s”"), "not_found", id=zone_id)
    return zone


def check_placement(kind: ZoneKind, parent: Zone | None) -> None:
    """A province at the root, a commune at the root or under a province, a village under a
    commune: anything else is a ValidationError on `parent` (code `wrong_parent`)."""
    allowed = PARENT_KINDS[kind]
    parent_kind = None if parent is None else ZoneKind(parent.kind)
    if parent_kind in allowed:
        return
    if parent is None:
        raise ValidationError(
            "parent",
            N_("%(kind)s phải thuộc một %(parent_kind)s"),
            "no_parent",
            kind=ZONE_KIND_WORDS[kind],
            parent_kind=ZONE_KIND_WORDS[str(allowed[0])],
        )
    wanted = next((k for k in allowed if k is not None), None)
    words = {
        "kind": ZONE_KIND_WORDS[kind],
        "parent_kind": ZONE_KIND_WORDS[parent.kind],
        "id": parent.id,
    }
    if wanted is None:
        raise ValidationError(
            "parent",
            N_("%(kind)s không thể thuộc %(parent_kind)s “%(id)s”: %(kind)s ở cấp gốc"),
            "wrong_parent",
            **words,
        )
    raise ValidationError(
        "parent",
        N_("%(kind)s không thể thuộc %(parent_kind)s “%(id)s”: phải thuộc một %(wanted)s"),
        "wrong_parent",
        wanted=ZONE_KIND_WORDS[wanted],
        **words,
    )


def clean_code(kind: ZoneKind, code: str | None) -> str | None:
    """The administrative code as stored (None when absent), or a ValidationError on `code`:
    a province's has 2 digits, a commune's 5, a village has none. A spreadsheet that dropped
    leading zeros ("1" for Hà Nội's "01") is refused rather than guessed at."""
    text = (code or "").strip()
    if not text:
        return None
    digits = CODE_DIGITS.get(kind)
    if digits is None:
        raise ValidationError(
            "code", N_("%(kind)s không có mã hành chính"), "no_code", kind=ZONE_KIND_WORDS[kind]
        )
    if not _DIGITS.fullmatch(text) or len(text) != digits:
        raise ValidationError(
            "code",
            N_(
                "mã hành chính của %(kind)s có %(digits)s chữ số, không phải “%(value)s” (bảng"
                " tính có thể đã bỏ mất các số 0 ở đầu)"
            ),
            "bad_code",
            kind=ZONE_KIND_WORDS[kind],
            digits=digits,
            value=text[:20],
        )
    return text


def by_code(session: Session, code: str) -> Zone | None:
    return session.scalar(select(Zone).where(Zone.code == code))


def find_zone(session: Session, reference: str) -> Zone | None:
    """A zone named by its id or its administrative code (what an operator has at hand)."""
    text = reference.strip()
    if not text:
        return None
    return session.get(Zone, text) or by_code(session, text)


def move_zone(session: Session, zone: Zone, parent: Zone | None) -> list[str]:
    """Put `zone` under `parent` (None: the root) if the tree rules allow it; its sub-zones,
    receivers and users go with it, so everyone keeps the rights they had (`bind_staff`).
    Returns the user names bound to it."""
    check_placement(ZoneKind(zone.kind), parent)
    was_root = zone.parent_id is None
    zone.parent = parent
    session.flush()
    return bind_staff(session, zone) if was_root and parent is not None else []


def bind_staff(session: Session, commune: Zone) -> list[str]:
    """Bind the unbound officers, leaders and viewers to `commune`, just placed under its
    province, when it was the one commune at the root: in a single-commune installation those
    accounts were bound to no zone because the installation was their commune, and left unbound
    they would now see the whole province. Its bulletins, written then, become its own too.
    Admins stay installation-wide. The names bound."""
    others = session.scalar(
        select(func.count())
        .select_from(Zone)
        .where(Zone.kind == ZoneKind.COMMUNE.value, Zone.parent_id.is_(None), Zone.id != commune.id)
    )
    if commune.kind != ZoneKind.COMMUNE.value or commune.parent_id is None or others:
        return []
    staff = [
        role.value
        for role, kinds in permissions.ZONE_KINDS.items()
        if kinds == (None, ZoneKind.COMMUNE)
    ]
    bound = list(session.scalars(select(User).where(User.zone_id.is_(None), User.role.in_(staff))))
    for user in bound:
        user.zone_id = commune.id
    # and its bulletins, written when every account was installation-wide: they stay its own
    session.execute(update(Bulletin).where(Bulletin.zone_id.is_(None)).values(zone_id=commune.id))
    session.flush()
    _LOGGER.info("bound %d accounts of commune %s to it", len(bound), commune.id)
    return sorted(user.username for user in bound)
