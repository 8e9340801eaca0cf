"""Inbound: bulletins and CAP alerts an external source-information system posts (hệ thống
thông tin nguồn cấp tỉnh or trung ương, a disaster agency), sent down to the communes as a
province editor's bulletin is (`Forwarder`, the source-bulletins desk: Thông tư 39's three
priorities).

The system signs in with an API token of an account of role `source`, bound to its province (or
installation-wide); it reaches only the communes in that scope. Every POST carries an
idempotency key: the client's `Idempotency-Key` header, or a CAP alert's (sender, identifier).
A retried POST with the same key and the same body finds what the first one made and creates
nothing; the same key with another body is a Conflict. A refused request stores nothing.

Communes are named by zone id or by administrative unit code (mã đơn vị hành chính); a
province's code or id stands for all its communes. A CAP alert's codes that name no commune this
source reaches are left out and listed in the item's `reason` (an agency's alert may cover
several provinces); an alert that reaches none is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audio import MediaStore
from broadcast import clock
from broadcast.const import MAX_TITLE_CHARS, ContentKind, ZoneKind
from broadcast.desks import cap
from broadcast.desks.bulletins import BulletinStatus
from broadcast.errors import N_, Conflict, LoaError, NotFound, ValidationError
from broadcast.people import accounts, audit, zones
from broadcast.people.permissions import Action
from broadcast.sending import broadcasts, fetching, rendering
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Bulletin, InboundItem, User, Zone, utcnow
from wire.protocol import Priority

_LOGGER = logging.getLogger(__name__)

MAX_KEY_CHARS = 255
MAX_COMMUNES = 1000
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces (RFC 9110 token-ish)
# the start of an item's reason when some of a CAP alert's codes were left out (the API's
# clients read it; the codes follow)
NOT_HERE = "codes outside this source's communes:"
BULLETIN_FIELDS = ("title", "text", "audio_url", "priority", "communes", "valid_until")


class Kind:
    BULLETIN = "bulletin"
    CAP = "cap"


class Forwarder(Protocol):
    """What the intake needs of the source-bulletins desk (`source_bulletins`: Thông tư 39's
    flow down to the communes)."""

    def send_down(
        self, user_id: int, bulletin_id: int, commune_ids: object, priority: object = ...
    ) -> list[int]: ...

    def withdraw(self, user_id: int, bulletin_id: int) -> list[int]: ...


@dataclass(frozen=True)
class InboundRecord:
    id: int
    key: str
    kind: str
    received_at: datetime
    disposition: str
    priority: str | None
    communes: tuple[str, ...]
    title: str
    reason: str
    valid_until: datetime | None
    sent_id: int | None
    replaces_id: int | None

    @classmethod
    def of(cls, item: InboundItem) -> InboundRecord:
        return cls(
            id=item.id,
            key=item.key,
            kind=item.kind,
            received_at=item.received_at,
            disposition=item.disposition,
            priority=item.priority,
            communes=tuple(item.zone_ids or ()),
            title=item.title,
            reason=item.reason,
            valid_until=item.valid_until,
            sent_id=item.sent_id,
            replaces_id=item.replaces_id,
        )


@dataclass(frozen=True)
class Intake:
    """What a POST made (`created`) or, for a retry, found."""

    record: InboundRecord
    created: bool


@dataclass(frozen=True)
class _Content:
    title: str
    text: str
    recording_sha256: str | None = None


@dataclass(frozen=True)
class _Wanted:
    """A checked request, before anything is stored."""

    kind: str
    key: str
    body_sha256: str
    disposition: str
    priority: Priority | None = None
    commune_ids: tuple[str, ...] = ()
    title: str = ""
    reason: str = ""
    valid_until: datetime | None = None  # naive UTC
    cap_key: cap.Reference | None = None
    references: tuple[cap.Reference, ...] = ()
    replaces_id: int | None = None


class SourceIntake:
    """Wired by `BroadcastService` as `service.inbound`."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        media: MediaStore,
        forwarder: Callable[[], Forwarder],
    ) -> None:
        self.db = db
        self.settings = settings
        self.media = media
        self._forwarder = forwarder

    def check_may_feed(self, user_id: int) -> None:
        """PermissionDenied unless `user_id` is a source system's account: checked before a
        request's body is read."""
        with self.db.session() as session:
            accounts.require_user(session, user_id, Action.FEED)

    # --- JSON bulletins ---------------------------------------------------------------------

    def post_bulletin(
        self,
        user_id: int,
        key: object,
        fields: Mapping[str, object],
        upload: Path | None = None,
        upload_name: str = "",
    ) -> Intake:
        """A bulletin: `text` (read by the speech engine) or audio (`audio_url` fetched, or an
        uploaded file), `priority`, `communes`, optional `title` and `valid_until`."""
        self.check_may_feed(user_id)
        clean_key = _clean_key(key)
        upload_sha = _file_sha256(upload) if upload is not None else ""
        body = _canonical({name: fields.get(name) for name in BULLETIN_FIELDS}, upload_sha)
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.FEED)
            found = _existing(session, user, clean_key, body)
            if found is not None:
                return Intake(found, created=False)
            wanted = self._checked_bulletin(session, user, clean_key, body, fields, upload)
        content = self._content(wanted.title, fields, upload, upload_name)
        return self._store_and_send(user_id, wanted, content)

    def _checked_bulletin(
        self,
        session: Session,
        user: User,
        key: str,
        body: str,
        fields: Mapping[str, object],
        upload: Path | None,
    ) -> _Wanted:
        priority = _clean_priority(fields.get("priority"))
        communes = _clean_references(fields.get("communes"))
        commune_ids, _skipped = _communes(session, user, communes, "communes", strict=True)
        valid_until = _clean_valid_until(fields.get("valid_until"))
        given = [name for name in ("text", "audio_url") if fields.get(name) not in (None, "")]
        if upload is not None:
            given.append("audio")
        if len(given) != 1:
            raise ValidationError(
                "text",
                N_("gửi đúng một trong: text (lời đọc), audio_url hoặc tệp âm thanh"),
                "one_content",
            )
        if fields.get("text") not in (None, ""):
            broadcasts.clean_text(fields.get("text"))
        title = _clean_title(fields.get("title"))
        if not title and given[0] != "text":
            raise ValidationError("title", N_("bản tin âm thanh cần có tiêu đề"), "required")
        return _Wanted(
            kind=Kind.BULLETIN,
            key=key,
            body_sha256=body,
            disposition=cap.Disposition.BROADCAST.value,
            priority=priority,
            commune_ids=commune_ids,
            title=title,
            valid_until=valid_until,
        )

    def _content(
        self,
        title: str,
        fields: Mapping[str, object],
        upload: Path | None,
        upload_name: str,
    ) -> _Content:
        """The words or the recording, stored (a fetched or uploaded recording is validated
        and transcoded first); no database session is held while a URL is fetched."""
        text = fields.get("text")
        if text not in (None, ""):
            clean = broadcasts.clean_text(text)
            return _Content(title or broadcasts.default_title(clean), clean)
        if upload is not None:
            stored = rendering.store_recording(self.media, upload, upload_name or "audio")
            return _Content(title, title, stored.sha256)
        return _Content(title, title, self._fetched(fields.get("audio_url"), "audio_url", None))

    def _fetched(self, url: object, field: str, digest: str | None) -> str:
        with tempfile.TemporaryDirectory(prefix="loa-inbound-") as directory:
            path = fetching.fetch_to_file(
                url,
                field,
                allow_private=self.settings.source_private_audio,
                directory=Path(directory),
            )
            if digest and _digest(path, len(digest)) != digest:
                raise ValidationError(
                    field, N_("tệp tải về không khớp mã băm <digest> đã nêu"), "digest_mismatch"
                )
            return rendering.store_recording(self.media, path, "audio").sha256

    # --- CAP alerts -------------------------------------------------------------------------

    def post_cap(self, user_id: int, data: bytes, now: datetime | None = None) -> Intake:
        """One CAP 1.2 alert (`broadcast.desks.cap` reads and maps it)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        self.check_may_feed(user_id)
        alert = cap.read_alert(data)
        mapped = cap.bulletin_from(alert, now=moment, accepted=(cap.Status.ACTUAL,))
        key = f"cap:{alert.sender} {alert.identifier}"
        body = hashlib.sha256(data).hexdigest()
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.FEED)
            found = _existing(session, user, key, body)
            if found is not None:
                return Intake(found, created=False)
            wanted = _Wanted(
                kind=Kind.CAP,
                key=key,
                body_sha256=body,
                disposition=mapped.disposition.value,
                title=mapped.title[:MAX_TITLE_CHARS],
                reason=mapped.reason,
                cap_key=mapped.key,
                references=mapped.references,
                priority=mapped.priority,
                valid_until=(
                    None
                    if mapped.valid_until is None
                    else mapped.valid_until.astimezone(UTC).replace(tzinfo=None)
                ),
            )
            if mapped.disposition in (cap.Disposition.BROADCAST, cap.Disposition.CORRECT):
                ids, skipped = _communes(
                    session, user, mapped.zone_codes, f"{mapped.info_path}.area", strict=False
                )
                reason = f"{NOT_HERE} {', '.join(skipped)}" if skipped else ""
                wanted = replace(wanted, commune_ids=ids, reason=reason[:2000])
        if mapped.disposition is cap.Disposition.IGNORE:
            return self._store_only(user_id, wanted)
        earlier = self._referenced(user_id, wanted.references)
        if mapped.disposition is cap.Disposition.CANCEL:
            if not earlier:
                raise ValidationError(
                    "references",
                    N_("không có cảnh báo nào đã nhận khớp <references> để hủy"),
                    "unknown_reference",
                )
            intake = self._store_only(user_id, replace(wanted, replaces_id=earlier[0].id))
            self._withdraw(user_id, earlier)
            return intake
        content = (
            _Content(wanted.title, mapped.text)
            if mapped.text
            else _Content(
                wanted.title,
                wanted.title,
                self._fetched(
                    mapped.audio.uri if mapped.audio else None,
                    f"{mapped.info_path}.resource",
                    mapped.audio.digest if mapped.audio else None,
                ),
            )
        )
        self._withdraw(user_id, earlier)
        replaces = earlier[0].id if earlier else None
        return self._store_and_send(user_id, replace(wanted, replaces_id=replaces), content)

    def _referenced(self, user_id: int, references: Sequence[cap.Reference]) -> list[InboundItem]:
        """The items of this source that `references` names, newest first."""
        if not references:
            return []
        with self.db.session() as session:
            found: list[InboundItem] = []
            for reference in references:
                item = session.scalar(
                    select(InboundItem)
                    .where(
                        InboundItem.user_id == user_id,
                        InboundItem.cap_sender == reference.sender,
                        InboundItem.cap_identifier == reference.identifier,
                    )
                    .limit(1)
                )
                if item is not None:
                    found.append(item)
                    session.expunge(item)
            return sorted(found, key=lambda item: item.id, reverse=True)

    def _withdraw(self, user_id: int, items: Sequence[InboundItem]) -> None:
        for item in items:
            if item.sent_id is not None:
                self._forwarder().withdraw(user_id, item.sent_id)

    # --- storing ----------------------------------------------------------------------------

    def _store_only(self, user_id: int, wanted: _Wanted) -> Intake:
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.FEED)
            item = _new_item(user, wanted)
            session.add(item)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                return self._raced(user_id, wanted)
            audit.record(
                session, user, audit.Action.INBOUND, f"inbound:{item.id}", _audit_detail(item)
            )
            return Intake(InboundRecord.of(item), created=True)

    def _store_and_send(self, user_id: int, wanted: _Wanted, content: _Content) -> Intake:
        """The item and its bulletin in one transaction, then sent down; if sending refuses
        it, both are removed again (a refused request stores nothing)."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.FEED)
            item = _new_item(user, wanted)
            session.add(item)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                return self._raced(user_id, wanted)
            bulletin = _bulletin(user, content)
            session.add(bulletin)
            session.flush()
            audit.record(
                session, user, audit.Action.INBOUND, f"inbound:{item.id}", _audit_detail(item)
            )
            item_id, bulletin_id = item.id, bulletin.id
        assert wanted.priority is not None
        try:
            self._forwarder().send_down(
                user_id, bulletin_id, list(wanted.commune_ids), wanted.priority.value
            )
            sent_id = bulletin_id
        except LoaError:
            with self.db.session() as session:
                stored = session.get(InboundItem, item_id)
                if stored is not None:
                    session.delete(stored)
                bulletin_row = session.get(Bulletin, bulletin_id)
                if bulletin_row is not None:
                    session.delete(bulletin_row)
            raise
        with self.db.session() as session:
            stored = session.get(InboundItem, item_id)
            assert stored is not None
            stored.sent_id = sent_id
            session.flush()
            _LOGGER.info(
                "inbound %s (%s) from user %s sent down as %s to %d communes",
                item_id,
                wanted.kind,
                user_id,
                sent_id,
                len(wanted.commune_ids),
            )
            return Intake(InboundRecord.of(stored), created=True)

    def _raced(self, user_id: int, wanted: _Wanted) -> Intake:
        """Another request with the same key was stored first: answer as a retry would."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.FEED)
            found = _existing(session, user, wanted.key, wanted.body_sha256)
            if found is None:
                raise Conflict("key", N_("yêu cầu trùng khóa đang được xử lý"), "in_progress")
            return Intake(found, created=False)

    # --- reading ----------------------------------------------------------------------------

    def item(self, user_id: int, item_id: int) -> InboundRecord:
        """One item this source posted; another source's is not found."""
        with self.db.session() as session:
            accounts.require_user(session, user_id, Action.FEED)
            item = session.get(InboundItem, item_id)
            if item is None or item.user_id != user_id:
                raise NotFound(N_("không có mục nhận “%(id)s”"), "not_found", id=item_id)
            return InboundRecord.of(item)

    def items(self, user_id: int, limit: int = 50) -> list[InboundRecord]:
        """The newest items this source posted."""
        with self.db.session() as session:
            accounts.require_user(session, user_id, Action.FEED)
            rows = session.scalars(
                select(InboundItem)
                .where(InboundItem.user_id == user_id)
                .order_by(InboundItem.id.desc())
                .limit(max(1, min(limit, 200)))
            )
            return [InboundRecord.of(row) for row in rows]


# --- checking -------------------------------------------------------------------------------


def _clean_key(key: object) -> str:
    text = str(key or "").strip()
    if not text:
        raise ValidationError(
            "Idempotency-Key",
            N_("thiếu tiêu đề Idempotency-Key: mỗi yêu cầu gửi một khóa riêng, gửi lại thì"
               " dùng lại khóa đó"),
            "required",
        )  # fmt: skip
    if not _KEY.fullmatch(text):
        raise ValidationError(
            "Idempotency-Key",
            N_("Idempotency-Key gồm 1 đến %(max)s ký tự ASCII in được, không có dấu cách"),
            "invalid",
            max=MAX_KEY_CHARS,
        )
    return text


def _canonical(fields: Mapping[str, object], upload_sha: str) -> str:
    """The body's fingerprint: the same request sent again has the same one."""
    text = json.dumps(
        {"fields": fields, "upload": upload_sha}, sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(path: Path, length: int) -> str:
    """A CAP resource's digest: SHA-1 (40 hex digits) as CAP says, or SHA-256 (64)."""
    digest = hashlib.sha1(usedforsecurity=False) if length == 40 else hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def _existing(session: Session, user: User, key: str, body: str) -> InboundRecord | None:
    item = session.scalar(
        select(InboundItem).where(InboundItem.user_id == user.id, InboundItem.key == key)
    )
    if item is None:
        return None
    if item.body_sha256 != body:
        raise Conflict(
            "Idempotency-Key",
            N_("khóa “%(key)s” đã dùng cho một yêu cầu khác (mục %(id)s): mỗi yêu cầu mới cần"
               " một khóa mới"),
            "key_reused",
            key=key[:80],
            id=item.id,
        )  # fmt: skip
    return InboundRecord.of(item)


def _clean_priority(value: object) -> Priority:
    try:
        return Priority(str(value))
    except ValueError:
        raise ValidationError(
            "priority",
            N_("mức ưu tiên là emergency (khẩn cấp), priority (ưu tiên) hoặc normal"
               " (thông thường)"),
            "unknown_choice",
        ) from None  # fmt: skip


def _clean_references(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValidationError(
            "communes",
            N_("hãy nêu ít nhất một xã (mã khu vực hoặc mã đơn vị hành chính)"),
            "required",
        )
    if len(value) > MAX_COMMUNES:
        raise ValidationError(
            "communes", N_("nhiều nhất %(max)s xã mỗi bản tin"), "too_many", max=MAX_COMMUNES
        )
    if not all(isinstance(entry, str) and 0 < len(entry) <= 63 for entry in value):
        raise ValidationError(
            "communes",
            N_("mỗi xã là một chuỗi: mã khu vực hoặc mã đơn vị hành chính"),
            "invalid",
        )
    return tuple(value)


def _communes(
    session: Session, user: User, references: Sequence[str], field: str, *, strict: bool
) -> tuple[tuple[str, ...], list[str]]:
    """The commune ids `references` name (a province: all its communes), in order, each once;
    and the references left out. `strict`: a reference that is unknown, a village or out of
    the source's reach is an error instead of being left out."""
    chosen: list[str] = []
    skipped: list[str] = []
    for reference in references:
        zone = zones.find_zone(session, reference)
        problem = _problem(session, user, zone, reference)
        if problem is not None:
            if strict:
                raise problem
            skipped.append(reference)
            continue
        assert zone is not None
        for commune in _communes_of(zone):
            if commune.id not in chosen and zones.in_scope(session, user, commune.id):
                chosen.append(commune.id)
    if not chosen:
        raise ValidationError(
            field,
            N_("không có xã nào trong phạm vi của nguồn này: %(codes)s"),
            "no_target",
            codes=", ".join(references)[:200],
        )
    return tuple(chosen), skipped


def _problem(session: Session, user: User, zone: Zone | None, reference: str) -> LoaError | None:
    if zone is None:
        return ValidationError(
            "communes", N_("không có xã hay tỉnh “%(ref)s”"), "unknown_zone", ref=reference[:63]
        )
    if zone.kind == ZoneKind.VILLAGE.value:
        return ValidationError(
            "communes",
            N_("“%(ref)s” là một thôn: bản tin từ nguồn gửi tới xã hoặc cả tỉnh"),
            "not_a_commune",
            ref=reference[:63],
        )
    if not zones.in_scope(session, user, zone.id):
        return ValidationError(
            "communes",
            N_("“%(ref)s” nằm ngoài phạm vi của nguồn này"),
            "zone_out_of_reach",
            ref=reference[:63],
        )
    return None


def _communes_of(zone: Zone) -> list[Zone]:
    if zone.kind == ZoneKind.COMMUNE.value:
        return [zone]
    return sorted(
        (child for child in zone.children if child.kind == ZoneKind.COMMUNE.value),
        key=lambda child: child.id,
    )


def _clean_valid_until(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationError(
            "valid_until", N_("valid_until là ngày giờ dạng 2026-11-26T17:00+07:00"), "invalid"
        )
    moment = clock.parse_local(value, "valid_until")
    if moment <= utcnow():
        raise ValidationError(
            "valid_until", N_("valid_until đã qua: bản tin hết hiệu lực trước khi phát"), "past"
        )
    return moment


def _clean_title(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("title", N_("tiêu đề là một chuỗi"), "invalid")
    title = " ".join(value.split())
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(
            "title", N_("Tiêu đề dài quá %(max)s ký tự."), "too_long", max=MAX_TITLE_CHARS
        )
    return title


# --- rows -----------------------------------------------------------------------------------


def _new_item(user: User, wanted: _Wanted) -> InboundItem:
    return InboundItem(
        user_id=user.id,
        key=wanted.key,
        body_sha256=wanted.body_sha256,
        kind=wanted.kind,
        received_at=utcnow(),
        disposition=wanted.disposition,
        priority=None if wanted.priority is None else wanted.priority.value,
        zone_ids=list(wanted.commune_ids),
        title=wanted.title,
        reason=wanted.reason,
        valid_until=wanted.valid_until,
        cap_sender=None if wanted.cap_key is None else wanted.cap_key.sender,
        cap_identifier=None if wanted.cap_key is None else wanted.cap_key.identifier,
        replaces_id=wanted.replaces_id,
    )


def _bulletin(user: User, content: _Content) -> Bulletin:
    """The source's bulletin: approved as it arrives (the source system did its own review;
    the communes decide what to do with it, Thông tư 39)."""
    now = utcnow()
    recording = content.recording_sha256 is not None
    return Bulletin(
        title=content.title,
        text=content.text,
        kind=(ContentKind.RECORDING if recording else ContentKind.TTS).value,
        recording_sha256=content.recording_sha256,
        created_by_id=user.id,
        zone_id=user.zone_id,
        created_at=now,
        status=BulletinStatus.APPROVED.value,
        reviewed_at=now,
        source_name=user.username,
    )


def _audit_detail(item: InboundItem) -> dict[str, object]:
    return {
        "kind": item.kind,
        "key": item.key[:200],
        "disposition": item.disposition,
        "priority": item.priority,
        "communes": list(item.zone_ids or ())[:50],
        "replaces": item.replaces_id,
    }
