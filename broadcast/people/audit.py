"""The audit log (nhật ký thao tác): every privileged action, who, what, when, from where.

Append-only and chained: each entry's `hash` is the sha256 of its own fields and the previous
entry's hash, so changing, deleting or reordering any entry breaks every hash after it and
`verify()` names the first broken one. Writers take the one-row `audit_head` with an UPDATE
first, which serializes them on SQLite and PostgreSQL alike, so two processes never chain onto
the same entry. An entry is written in the same transaction as the action it records.

"From where" comes from the boundary the action entered by: the web layer sets the client's
address for each request (`set_origin`), the CLI sets "cli"; the leader's own work is
"system".
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcast.store.models import AuditEntry, AuditHead, User, utcnow

_LOGGER = logging.getLogger(__name__)

GENESIS = "0" * 64
SYSTEM = "system"

_origin: ContextVar[str] = ContextVar("loa_audit_origin", default=SYSTEM)


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    ANNOUNCE = "broadcast.announce"
    SEND_BULLETIN = "broadcast.send_bulletin"
    CANCEL = "broadcast.cancel"
    LIVE_START = "broadcast.live_start"  # who went live, to which zones, at what priority
    LIVE_END = "broadcast.live_end"  # "Kết thúc"
    LIVE_RECORDED = "broadcast.live_recorded"  # what was said, kept as media
    BULLETIN_CREATE = "bulletin.create"
    BULLETIN_EDIT = "bulletin.edit"
    BULLETIN_SUBMIT = "bulletin.submit"
    BULLETIN_APPROVE = "bulletin.approve"
    BULLETIN_REJECT = "bulletin.reject"
    SCHEDULE_CREATE = "schedule.create"
    SEND_DOWN = "bulletin.send_down"  # to communes, by the province
    FORWARD_PLACE = "bulletin.place"  # a commune put a province bulletin in its programme
    FORWARD_DECLINE = "bulletin.decline"
    FORWARD_REORDER = "bulletin.reorder"  # the priority items heading a run
    WITHDRAW = "bulletin.withdraw"  # the province took a bulletin back from its communes
    SCHEDULE_CANCEL = "schedule.cancel"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_PASSWORD = "user.password"
    TOKEN_CREATE = "token.create"
    ZONE_CREATE = "zone.create"
    ZONE_UPDATE = "zone.update"
    DEVICE_REGISTER = "device.register"
    DEVICE_CONFIG = "device.config"
    KEYS_ROTATE = "keys.rotate"
    INBOUND = "inbound.receive"


def set_origin(origin: str) -> None:
    """Set by each boundary as work enters it: each web request, each CLI command."""
    _origin.set(origin[:200])


def current_origin() -> str:
    return _origin.get()


def record(
    session: Session,
    user: User | None,
    action: Action,
    target: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain, in the caller's transaction."""
    session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    head = session.scalars(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).one()
    entry = AuditEntry(
        seq=head.seq,
        at=utcnow(),
        user_id=None if user is None else user.id,
        username="" if user is None else user.username,
        action=action.value,
        target=target[:200],
        detail=_plain(detail or {}),
        origin=current_origin(),
        zone_id=None if user is None else user.zone_id,
        prev_hash=head.hash,
    )
    entry.hash = entry_hash(entry)
    head.hash = entry.hash
    session.add(entry)
    _LOGGER.info(
        "audit %d: %s %s %s from %s", entry.seq, entry.username or "-", action, target, entry.origin
    )
    return entry


def entry_hash(entry: AuditEntry) -> str:
    fields = [
        entry.seq,
        entry.at.isoformat(timespec="microseconds"),
        entry.user_id,
        entry.username,
        entry.action,
        entry.target,
        entry.detail,
        entry.origin,
        entry.prev_hash,
    ]
    if entry.zone_id is not None:  # entries from before zones were recorded have none
        fields.append(entry.zone_id)
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    broken_seq: int | None = None
    problem: str = ""


def verify(session: Session) -> Verification:
    """Walk the whole chain; the first entry that does not fit is named."""
    previous_hash, expected_seq, count = GENESIS, 1, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        count += 1
        if entry.seq != expected_seq:
            return Verification(False, count, expected_seq, "an entry is missing")
        if entry.prev_hash != previous_hash:
            return Verification(False, count, entry.seq, "the link to the previous entry is broken")
        if entry_hash(entry) != entry.hash:
            return Verification(False, count, entry.seq, "the entry was changed")
        previous_hash, expected_seq = entry.hash, expected_seq + 1
    head = session.get(AuditHead, 1)
    if head is None or head.seq != expected_seq - 1 or head.hash != previous_hash:
        return Verification(False, count, expected_seq, "the newest entries were removed")
    return Verification(True, count)


def recent(session: Session, limit: int = 100, before_seq: int | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(AuditEntry.seq < before_seq)
    return list(session.scalars(query))


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe and stable: what is hashed is exactly what the database gives back."""
    result: dict[str, Any] = json.loads(json.dumps(detail, ensure_ascii=False, default=str))
    return result
