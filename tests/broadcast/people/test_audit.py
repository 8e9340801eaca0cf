"""The audit log's hash chain: an intact log verifies; a changed entry, a deleted entry and a
removed newest entry are each found and named (rows are tampered with directly through
SQLAlchemy, as someone with access to the database would)."""

from __future__ import annotations

import pytest
from service_support import Users
from sqlalchemy import delete, update

from broadcast.people import audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, User


def _write(service: BroadcastService, users: Users, count: int = 5) -> None:
    with service.db.session() as session:
        admin = session.get(User, users.admin)
        for number in range(1, count + 1):
            audit.record(session, admin, audit.Action.USER_UPDATE, f"user:{number}", {"n": number})


def _verify(service: BroadcastService) -> audit.Verification:
    with service.db.session() as session:
        return audit.verify(session)


def _page_check(service: BroadcastService, users: Users) -> tuple[bool, int | None, str]:
    check = service.admin.audit_page(users.admin).check
    return check.ok, check.broken_seq, check.problem


def test_intact_chain_verifies(service: BroadcastService, users: Users) -> None:
    _write(service, users)
    result = _verify(service)
    assert result.ok and result.entries == 5
    assert _page_check(service, users) == (True, None, "")


def test_empty_log_verifies(service: BroadcastService, users: Users) -> None:
    assert _verify(service).ok


@pytest.mark.parametrize(
    "change",
    [
        {"detail": {"n": 99}},
        {"username": "someone-else"},
        {"target": "user:42"},
        {"action": audit.Action.LOGIN.value},
    ],
)
def test_a_changed_entry_is_found(
    service: BroadcastService, users: Users, change: dict[str, object]
) -> None:
    _write(service, users)
    with service.db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(**change))
    result = _verify(service)
    assert not result.ok
    assert (result.broken_seq, result.problem) == (3, "the entry was changed")
    assert _page_check(service, users) == (False, 3, "changed")


def test_a_rehashed_change_breaks_the_next_link(service: BroadcastService, users: Users) -> None:
    """Recomputing the changed entry's own hash does not help: the next entry points at the
    old one."""
    _write(service, users)
    with service.db.session() as session:
        entry = session.query(AuditEntry).filter_by(seq=2).one()
        entry.detail = {"n": 99}
        entry.hash = audit.entry_hash(entry)
    result = _verify(service)
    assert (result.ok, result.broken_seq) == (False, 3)
    assert _page_check(service, users) == (False, 3, "link")


def test_a_deleted_entry_is_found(service: BroadcastService, users: Users) -> None:
    _write(service, users)
    with service.db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    result = _verify(service)
    assert not result.ok
    assert (result.broken_seq, result.problem) == (2, "an entry is missing")
    assert _page_check(service, users) == (False, 2, "missing")


def test_a_removed_newest_entry_is_found(service: BroadcastService, users: Users) -> None:
    _write(service, users)
    with service.db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    result = _verify(service)
    assert not result.ok
    assert (result.broken_seq, result.problem) == (5, "the newest entries were removed")
    assert _page_check(service, users) == (False, 5, "truncated")


def test_writing_goes_on_after_a_verification(service: BroadcastService, users: Users) -> None:
    _write(service, users, 2)
    assert _verify(service).ok
    _write(service, users, 2)
    assert _verify(service).entries == 4 and _verify(service).ok
