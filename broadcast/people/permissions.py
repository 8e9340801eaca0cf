"""Who may do what, and where: the one table of the house.

Every desk checks its callers here, the web decides which buttons and links to offer from it
(`can` in the templates), and `tests/web/test_role_boundaries.py` derives who may reach each
page and API route from it, so a change of policy is one edit in `PERMISSIONS`.

Where a role may act is its `Reach`: a village head acts only within their own village (and the
zones below it), the other roles commune-wide.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, TypeVar

from broadcast.const import Role
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
    SCHEDULE = "schedule"  # plan and cancel a bulletin's runs
    READ_REPORTS = "read_reports"  # the broadcast log and monthly reports
    ADMINISTER = "administer"  # users, zones, receivers, the audit log and metrics


class Reach(StrEnum):
    COMMUNE = "commune"  # every zone
    OWN_VILLAGE = "own_village"  # the user's village and the zones below it


_C, _V = Reach.COMMUNE, Reach.OWN_VILLAGE
_EVERYONE = {
    Role.ADMIN: _C,
    Role.OFFICER: _C,
    Role.LEADER: _C,
    Role.VIEWER: _C,
    Role.VILLAGE_HEAD: _V,
}
_CONTENT = {Role.ADMIN: _C, Role.OFFICER: _C}
_ANNOUNCERS = {Role.ADMIN: _C, Role.OFFICER: _C, Role.VILLAGE_HEAD: _V}

PERMISSIONS: dict[Action, dict[Role, Reach]] = {
    Action.VIEW: _EVERYONE,
    Action.ANNOUNCE: _ANNOUNCERS,
    Action.CANCEL_BROADCAST: _ANNOUNCERS,
    Action.READ_BULLETINS: {Role.ADMIN: _C, Role.OFFICER: _C, Role.LEADER: _C, Role.VIEWER: _C},
    Action.WRITE_BULLETIN: _CONTENT,
    Action.APPROVE_BULLETIN: {Role.ADMIN: _C, Role.LEADER: _C},
    Action.APPROVE_OWN_BULLETIN: {Role.ADMIN: _C},
    Action.PREVIEW_BULLETIN: {Role.ADMIN: _C, Role.OFFICER: _C, Role.LEADER: _C},
    Action.SCHEDULE: _CONTENT,
    Action.READ_REPORTS: _EVERYONE,
    Action.ADMINISTER: {Role.ADMIN: _C},
}


class Actor(Protocol):
    """What the checks read of a user (a `models.User`)."""

    username: str
    role: str
    active: bool


A = TypeVar("A", bound=Actor)


def reach(role: Role | str, action: Action) -> Reach | None:
    """Where `role` may do `action`; None when it may not at all (or is no known role)."""
    try:
        return PERMISSIONS[action].get(Role(role))
    except ValueError:
        return None


def allowed(role: Role | str, action: Action) -> bool:
    return reach(role, action) is not None


def roles(action: Action) -> frozenset[Role]:
    return frozenset(PERMISSIONS[action])


def own_village_only(role: Role | str, action: Action) -> bool:
    """Whether `role` does `action` only within its own village."""
    return reach(role, action) == Reach.OWN_VILLAGE


def needs_village(role: Role | str) -> bool:
    """Whether a user of `role` must be given a village: it acts somewhere only within one."""
    return any(own_village_only(role, action) for action in Action)


def require(user: A | None, action: Action) -> A:
    """`user` if it is active and its role may do `action`; else PermissionDenied. Where (zones)
    is checked by the caller with `reach`, which knows the zones involved."""
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
