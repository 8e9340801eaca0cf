"""The sign-in desk: who a session names, a sign-in attempt with its limits and audit, bearer
tokens, and the origin privileged actions are audited with."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from service_support import PASSWORD, Users
from sqlalchemy import select

from broadcast.desks.sign_in import SignedInUser, TokenUser, credential_stamp, set_audit_origin
from broadcast.people import accounts, audit
from broadcast.people.permissions import Action
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, User


def _stamp(service: BroadcastService, user_id: int) -> str:
    with service.db.session() as session:
        return credential_stamp(session.get(User, user_id).password_hash)  # type: ignore[union-attr]


def _last_audit(service: BroadcastService) -> AuditEntry:
    with service.db.session() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None
        return entry


def test_a_session_names_an_active_user_with_an_unchanged_password(
    service: BroadcastService, users: Users
) -> None:
    desk = service.sign_in
    stamp = _stamp(service, users.officer)
    found = desk.signed_in(users.officer, stamp)
    assert isinstance(found, SignedInUser)
    assert (found.username, found.role, found.credential_stamp) == ("officer", "officer", stamp)
    with pytest.raises(FrozenInstanceError):
        found.role = "admin"  # type: ignore[misc]
    assert desk.signed_in(users.officer, "another") is None
    assert desk.signed_in(10_000, stamp) is None
    with service.db.session() as session:
        accounts.set_password(session.get(User, users.officer), "a new password 2026")  # type: ignore[arg-type]
    assert desk.signed_in(users.officer, stamp) is None  # a new password ends the session
    with service.db.session() as session:
        session.get(User, users.viewer).active = False  # type: ignore[union-attr]
    assert desk.signed_in(users.viewer, _stamp(service, users.viewer)) is None


def test_sign_in_is_counted_audited_and_limited(service: BroadcastService, users: Users) -> None:
    desk = service.sign_in
    wrong = desk.sign_in("officer", "not the password", "192.0.2.7", None)
    assert wrong.allowed and wrong.user is None and wrong.source == "192.0.2.7"
    assert (_last_audit(service).action, _last_audit(service).target) == (
        audit.Action.LOGIN_FAILED.value,
        "username:officer",
    )
    right = desk.sign_in("officer", PASSWORD, "192.0.2.7", None)
    assert right.user is not None and right.user.id == users.officer
    assert _last_audit(service).action == audit.Action.LOGIN.value
    for _ in range(accounts.FREE_FAILURES + 1):
        desk.sign_in("officer", "wrong", "192.0.2.7", None)
    refused = desk.sign_in("officer", PASSWORD, "192.0.2.7", None)
    assert not refused.allowed and refused.retry_after_s > 0 and refused.user is None
    # a browser the officer signed in on before is counted apart: a stranger does not block it
    known = desk.sign_in(
        "officer", PASSWORD, "192.0.2.7", accounts.KnownDevice("dev-1", (users.officer,))
    )
    assert known.allowed and known.user is not None and known.source == "device:dev-1"


def test_tokens_name_their_user_and_what_they_may_do(
    service: BroadcastService, users: Users
) -> None:
    with service.db.session() as session:
        admin = accounts.create_token(session, session.get(User, users.admin))  # type: ignore[arg-type]
        officer = accounts.create_token(session, session.get(User, users.officer))  # type: ignore[arg-type]
    desk = service.sign_in
    assert (
        desk.token_user(admin) == TokenUser(users.admin, None)
        and desk.token_user("loa_unknown") is None
    )
    assert desk.token_may(admin, Action.ADMINISTER)
    assert not desk.token_may(officer, Action.ADMINISTER) and desk.token_may(officer, Action.VIEW)
    assert not desk.token_may("loa_unknown", Action.VIEW)
    with service.db.session() as session:
        accounts.revoke_tokens(session, session.get(User, users.admin))  # type: ignore[arg-type]
    assert desk.token_user(admin) is None


def test_privileged_actions_carry_the_origin_of_the_request(
    service: BroadcastService, users: Users
) -> None:
    set_audit_origin("web 192.0.2.9")
    try:
        service.sign_in.sign_in("admin", PASSWORD, "192.0.2.9", None)
        assert _last_audit(service).origin == "web 192.0.2.9"
    finally:
        set_audit_origin(None)
    service.sign_in.sign_in("admin", PASSWORD, "192.0.2.9", None)
    assert _last_audit(service).origin == audit.SYSTEM
