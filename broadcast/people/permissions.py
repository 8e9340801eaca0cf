"""Who may do what, and where: the one table of the house.

Every desk checks its callers here, the web decides which buttons and links to offer from it
(`can` in the templates), and `tests/web/test_role_boundaries.py` derives who may reach each
page and API route from it, so a change of policy is one edit in `PERMISSIONS`.

Where is the user's zone: every account acts only in the subtree of the zone it is bound to (a
province admin in the whole province, a commune officer in their commune, a village head in
their village); an account bound to no zone is installation-wide. `ZONE_KINDS` says which kind
of zone each role may be bound to.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, TypeVar

from broadcast.const import Role, ZoneKind
from broadcast.errors import N_, PermissionDenied


class Action(StrEnum):
    VIEW = "view"  # the dashboard, zones, receivers, broadcasts and the week's calendar
    ANNOUNCE = "announce"  # send an urgent notice
    CANCEL_BROADCAST = "cancel_broadcast"  # stop or correct one (only where one could send it)
    READ_BULLETINS = "read_bulletins"  # bulletins and the programme of schedules
    WRITE_BULLETIN = "write_bulletin"  # write, edit, submit, record, relay and send bulletins
    APPROVE_BULLETIN = "approve_bulletin"  # approve or reject a submitted bulletin
    APPROVE_OWN_BULLETIN = "approve_own_bulletin"  # ...one this user wrote (else four eyes)
    PREVIEW_BULLETIN = "preview_bulletin"  # render a bulletin's speech to listen before airing
    SCHEDULE = "schedule"  # plan and cancel a bulletin's runs (and place or decline, in
    # a commune's inbox, what the province sent down)
    SEND_DOWN = "send_down"  # send a bulletin down to communes (TT-39 source information)
    FEED = "feed"  # post bulletins and CAP alerts from a source-information system (API only)
    READ_REPORTS = "read_reports"  # the broadcast log and monthly reports
    MANAGE_REPLAY = "manage_replay"  # a commune's public replay page (nghe lại): whether it is
    # public, which items are internal (nội bộ), and moderating listeners' feedback (góp ý)
    ADMINISTER = "administer"  # users, zones, receivers, the audit log and metrics


_EVERYONE = frozenset(Role) - {Role.SOURCE}  # people; a source system only feeds
_CONTENT = frozenset({Role.ADMIN, Role.OFFICER})
_ANNOUNCERS = frozenset({Role.ADMIN, Role.OFFICER, Role.VILLAGE_HEAD})

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.VIEW: _EVERYONE,
    Action.ANNOUNCE: _ANNOUNCERS,
    Action.CANCEL_BROADCAST: _ANNOUNCERS | {Role.PROVINCE_EDITOR},
    Action.READ_BULLETINS: _EVERYONE - {Role.VILLAGE_HEAD},
    Action.WRITE_BULLETIN: _CONTENT | {Role.PROVINCE_EDITOR},
    Action.APPROVE_BULLETIN: frozenset({Role.ADMIN, Role.LEADER}),
    Action.APPROVE_OWN_BULLETIN: frozenset({Role.ADMIN, Role.PROVINCE_EDITOR}),
    Action.PREVIEW_BULLETIN: frozenset(
        {Role.ADMIN, Role.OFFICER, Role.LEADER, Role.PROVINCE_EDITOR}
    ),
    Action.SCHEDULE: _CONTENT,
    Action.SEND_DOWN: frozenset({Role.ADMIN, Role.PROVINCE_EDITOR, Role.SOURCE}),
    Action.FEED: frozenset({Role.SOURCE}),
    Action.READ_REPORTS: _EVERYONE,
    Action.MANAGE_REPLAY: _CONTENT,
    Action.ADMINISTER: frozenset({Role.ADMIN}),
}

# The kinds of zone an account of each role may be bound to; None: to no zone (installation-
# wide, as every account of a single-commune installation was before provinces).
ZONE_KINDS: dict[Role, tuple[ZoneKind | None, ...]] = {
    Role.ADMIN: (None, ZoneKind.PROVINCE, ZoneKind.COMMUNE),
    Role.PROVINCE_EDITOR: (None, ZoneKind.PROVINCE),
    Role.OFFICER: (None, ZoneKind.COMMUNE),
    Role.LEADER: (None, ZoneKind.COMMUNE),
    Role.VIEWER: (None, ZoneKind.COMMUNE),
    Role.VILLAGE_HEAD: (ZoneKind.VILLAGE,),
    Role.SOURCE: (None, ZoneKind.PROVINCE),
}


class Actor(Protocol):
    """What the checks read of a user (a `models.User`)."""

    username: str
    role: str
    active: bool


A = TypeVar("A", bound=Actor)


def allowed(role: Role | str, action: Action) -> bool:
    """Whether `role` may do `action` somewhere (where: the account's zone, `zones.zones_for`)."""
    try:
        return Role(role) in PERMISSIONS[action]
    except ValueError:
        return False


def roles(action: Action) -> frozenset[Role]:
    return PERMISSIONS[action]


def zone_kinds(role: Role | str) -> tuple[ZoneKind | None, ...]:
    """The kinds of zone an account of `role` may be bound to (None: no zone at all)."""
    try:
        return ZONE_KINDS[Role(role)]
    except ValueError:
        return ()


def needs_zone(role: Role | str) -> bool:
    """Whether an account of `role` must be bound to a zone (a village head: to a village)."""
    return None not in zone_kinds(role)


def require(user: A | None, action: Action) -> A:
    """`user` if it is active and its role may do `action`; else PermissionDenied. Where (zones)
    is checked by the caller with `zones.zones_for`, which knows the zones involved."""
    if user is None or not user.active:
        raise PermissionDenied(N_("người dùng không có hoặc đã bị khóa"), "unknown_user")
    if not allowed(user.role, action):
        raise PermissionDenied(
            N_("vai trò “%(role)s” không được làm việc này (%(action)s)"),
            "role_not_allowed",
            role=user.role,
            action=action.value,
        )
    return user
