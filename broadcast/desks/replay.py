"""The replay desk (`service.replay`): nghe lại, what a commune broadcast, for whoever was in the
fields at 6:00, on a public page and a podcast feed, and listeners' feedback (góp ý) on it.

What is public is the commune's choice: nothing until its officer (or admin) turns its page on
(`Zone.replay_public`, off by default: an installation may not want its notices on the open
web), and then only what actually sounded there in the last `REPLAY_DAYS` days and today
(dispatched, finished or partly finished; never a draft, a scheduled run still to come, a
stopped, failed or missed one), with media to play (a relay of another station has none), and
not marked internal (nội bộ: on the broadcast, or on the bulletin a schedule or "phát ngay"
made it from). "Sounded there" is the reports' rule: aimed at the commune, a zone above it (the
province) or below it (a village), or at one of its receivers.

Feedback is stored pending and shown only once the commune's officer approves it. Flooding is
bounded by counting the rows already stored (no other engine): per client network
(`accounts.client_network`, an IPv6 /64 counts as one client), per client and item, and per
item from everyone; the network is kept only as an HMAC under the installation's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

import audio
from broadcast import clock
from broadcast.const import BroadcastStatus, ZoneKind
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.people import accounts, targets, zones
from broadcast.people.permissions import Action
from broadcast.sending.broadcasts import aimed_at_any, can_view, delivered_to_any
from broadcast.store.db import Database
from broadcast.store.json_lists import json_list_has_any
from broadcast.store.models import Broadcast, Bulletin, Feedback, Schedule, User, Zone, utcnow

_LOGGER = logging.getLogger(__name__)

REPLAY_DAYS = 30  # today and the 30 days before it
MAX_ITEMS = 200  # a commune broadcasts a handful a day: a bound, not a page size
PUBLIC_STATUSES = (
    BroadcastStatus.DISPATCHED.value,
    BroadcastStatus.FINISHED.value,
    BroadcastStatus.PARTIAL.value,
)
NAME_CHARS = 80
TEXT_CHARS = 1000
# how much feedback is taken: per client network, per client on one item, per item from all
CLIENT_LIMIT, CLIENT_WINDOW = 5, timedelta(hours=1)
CLIENT_ITEM_LIMIT, CLIENT_ITEM_WINDOW = 2, timedelta(days=1)
ITEM_LIMIT, ITEM_WINDOW = 30, timedelta(hours=1)
MODERATION_PAGE = 100


class FeedbackStatus:
    PENDING = "pending"  # chờ duyệt
    APPROVED = "approved"  # shown under the item
    HIDDEN = "hidden"  # kept, never shown

    ALL = (PENDING, APPROVED, HIDDEN)


FEEDBACK_STATUS_LABELS = {
    FeedbackStatus.PENDING: N_("Chờ duyệt"),
    FeedbackStatus.APPROVED: N_("Đã hiện"),
    FeedbackStatus.HIDDEN: N_("Đã ẩn"),
}


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    broadcast_id: int
    zone_id: str
    name: str
    text: str
    status: str
    created_at: datetime  # UTC, naive
    moderated_at: datetime | None
    item_title: str = ""

    @classmethod
    def of(cls, row: Feedback, item_title: str = "") -> FeedbackRecord:
        return cls(
            row.id,
            row.broadcast_id,
            row.zone_id,
            row.name,
            row.text,
            row.status,
            row.created_at,
            row.moderated_at,
            item_title,
        )


@dataclass(frozen=True)
class ReplayItem:
    """One broadcast as a listener replays it."""

    id: int
    title: str
    text: str
    played_at: datetime  # UTC, naive: when it sounded (its play time)
    media_sha256: str
    media_bytes: int  # the enclosure's length; 0 when the file cannot be read
    duration_s: float | None
    feedback: tuple[FeedbackRecord, ...]  # approved, oldest first


@dataclass(frozen=True)
class ReplayPage:
    commune_id: str
    commune_name: str
    items: tuple[ReplayItem, ...]  # newest first
    updated_at: datetime | None  # the newest item, or approved feedback (Last-Modified)
    version: str  # changes whenever anything shown changes (the ETag)


@dataclass(frozen=True)
class CommuneReplay:
    """A commune on the officer's page: whether its replay is public, and what is waiting."""

    id: str
    name: str
    public: bool
    pending: int


@dataclass(frozen=True)
class ManagedItem:
    """A recent broadcast of the officer's commune and whether it is kept internal."""

    id: int
    title: str
    played_at: datetime
    internal: bool  # its own flag
    bulletin_internal: bool  # its bulletin's (a schedule's run): change it on the bulletin
    public: bool  # on the page (if the commune's page is on)


@dataclass(frozen=True)
class FeedbackCounts:
    received: int
    approved: int


class ReplayDesk:
    def __init__(self, db: Database, media: audio.MediaStore, secret: str) -> None:
        self._db = db
        self._media = media
        self._key = hashlib.sha256(b"loa feedback client\0" + secret.encode()).digest()

    # --- the public side (no account) -----------------------------------------------------------

    def page(self, commune_id: str, now: datetime | None = None) -> ReplayPage:
        """The commune's public replay; NotFound when there is no such commune or it has not
        made its replay public (the same answer: a closed page is not advertised)."""
        now = now or utcnow()
        with self._db.session() as session:
            commune = _public_commune(session, commune_id)
            rows = list(
                session.scalars(
                    select(Broadcast)
                    .where(_public_condition(commune, now))
                    .order_by(_played().desc(), Broadcast.id.desc())
                    .limit(MAX_ITEMS)
                )
            )
            ids = [row.id for row in rows]
            shown: dict[int, list[FeedbackRecord]] = {}
            if ids:
                approved = session.scalars(
                    select(Feedback)
                    .where(
                        Feedback.zone_id == commune.id,
                        Feedback.status == FeedbackStatus.APPROVED,
                        Feedback.broadcast_id.in_(ids),
                    )
                    .order_by(Feedback.created_at, Feedback.id)
                )
                for row in approved:
                    shown.setdefault(row.broadcast_id, []).append(FeedbackRecord.of(row))
            name = commune.name
        items = tuple(
            ReplayItem(
                row.id,
                row.title,
                row.text,
                _played_at(row),
                row.media_sha256 or "",
                self._size(row.media_sha256 or ""),
                self._duration(row.media_sha256 or ""),
                tuple(shown.get(row.id, ())),
            )
            for row in rows
        )
        return ReplayPage(commune_id, name, items, _updated(items), _version(commune_id, items))

    def item(self, commune_id: str, broadcast_id: int, now: datetime | None = None) -> ReplayItem:
        """One public item of the commune (the feedback form's); NotFound when it is not."""
        for found in self.page(commune_id, now).items:
            if found.id == broadcast_id:
                return found
        raise NotFound(N_("không có mục “%(id)s”"), "unknown_item", id=broadcast_id)

    def give_feedback(
        self,
        commune_id: str,
        broadcast_id: int,
        name: object,
        text: object,
        client: str,
        now: datetime | None = None,
    ) -> int:
        """Store a listener's feedback on a public item, pending moderation. ValidationError
        for a bad field; code `rate_limited` (field `text`) when too much came too fast."""
        now = now or utcnow()
        clean_name = _clean(name, "name", NAME_CHARS, required=False)
        clean_text = _clean(text, "text", TEXT_CHARS, required=True)
        self.item(commune_id, broadcast_id, now)  # public, on this commune's page
        key = self.client_key(client)
        with self._db.session() as session:
            _check_rate(session, key, broadcast_id, now)
            row = Feedback(
                broadcast_id=broadcast_id,
                zone_id=commune_id,
                name=clean_name,
                text=clean_text,
                status=FeedbackStatus.PENDING,
                client_key=key,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return row.id

    def client_key(self, client: str) -> str:
        """What is kept of a client: an HMAC of its network, enough to count, not to locate."""
        network = accounts.client_network(client or "?")
        return hmac.new(self._key, network.encode(), hashlib.sha256).hexdigest()

    # --- the commune's side -------------------------------------------------------------------

    def communes(self, user_id: int) -> list[CommuneReplay]:
        """The communes `user` manages the replay of, with their switch and waiting feedback."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            found = [
                zone
                for zone in zones.zones_for(session, user, Action.MANAGE_REPLAY)
                if zone.kind == ZoneKind.COMMUNE.value
            ]
            ids = [zone.id for zone in found]
            pending = dict(
                session.execute(
                    select(Feedback.zone_id, func.count())
                    .where(Feedback.zone_id.in_(ids), Feedback.status == FeedbackStatus.PENDING)
                    .group_by(Feedback.zone_id)
                ).all()
            )
            ordered = sorted(found, key=lambda zone: (zone.name, zone.id))
            return [
                CommuneReplay(zone.id, zone.name, zone.replay_public, pending.get(zone.id, 0))
                for zone in ordered
            ]

    def commune(self, user_id: int, commune_id: object) -> CommuneReplay:
        """One commune `user` manages the replay of (the API's path): NotFound when there is no
        such commune or it lies outside the account's zone, as any object out of scope is."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            zone = session.get(Zone, commune_id) if isinstance(commune_id, str) else None
            if (
                zone is None
                or zone.kind != ZoneKind.COMMUNE.value
                or not zones.in_scope(session, user, zone.id)
            ):
                raise NotFound(N_("không có xã “%(id)s”"), "unknown_zone", id=str(commune_id)[:63])
            pending = session.scalar(
                select(func.count())
                .select_from(Feedback)
                .where(Feedback.zone_id == zone.id, Feedback.status == FeedbackStatus.PENDING)
            )
            return CommuneReplay(zone.id, zone.name, zone.replay_public, int(pending or 0))

    def set_public(self, user_id: int, commune_id: object, public: bool) -> None:
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            commune = _managed_commune(session, user, commune_id)
            commune.replay_public = bool(public)

    def recent(
        self, user_id: int, commune_id: object, now: datetime | None = None
    ) -> list[ManagedItem]:
        """What sounded in the commune lately (as the public page would list it, internal
        items included), for the officer to mark internal."""
        now = now or utcnow()
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            commune = _managed_commune(session, user, commune_id)
            internal_bulletin = Bulletin.internal.is_(True)
            rows = session.execute(
                select(Broadcast, func.coalesce(internal_bulletin, False))
                .outerjoin(Schedule, Schedule.id == Broadcast.schedule_id)
                .outerjoin(Bulletin, Bulletin.id == Schedule.bulletin_id)
                .where(_sounded(commune, now))
                .order_by(_played().desc(), Broadcast.id.desc())
                .limit(MAX_ITEMS)
            ).all()
            return [
                ManagedItem(
                    row.id,
                    row.title,
                    _played_at(row),
                    row.internal,
                    bool(by_bulletin),
                    not row.internal and not by_bulletin,
                )
                for row, by_bulletin in rows
            ]

    def set_internal(self, user_id: int, broadcast_id: int, internal: bool) -> None:
        """Mark a broadcast internal (or not): whoever may manage the replay of every zone it
        was aimed at (a province's broadcast is the province's to hide, not one commune's).
        One the account cannot see (another commune's) is not found, as everywhere else: a
        refusal would tell that the id exists."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            broadcast = session.get(Broadcast, broadcast_id)
            if broadcast is None or not can_view(session, user, broadcast):
                raise NotFound(
                    N_("không có lượt phát “%(id)s”"), "unknown_broadcast", id=broadcast_id
                )
            chosen = targets.stored(session, broadcast.zone_ids, broadcast.device_ids or [])
            if not chosen.zones and not chosen.devices:
                raise NotFound(
                    N_("không có lượt phát “%(id)s”"), "unknown_broadcast", id=broadcast_id
                )
            targets.check_can_target(session, user, chosen, Action.MANAGE_REPLAY)
            broadcast.internal = bool(internal)

    def set_bulletin_internal(self, user_id: int, bulletin_id: int, internal: bool) -> None:
        """Mark a bulletin internal (or not): its runs and its "phát ngay" broadcasts leave the
        public page. A bulletin is its zone's (`Bulletin.zone_id`): out of scope, not found."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            bulletin = session.get(Bulletin, bulletin_id)
            if bulletin is None or not zones.in_scope(session, user, bulletin.zone_id):
                raise NotFound(N_("không có bản tin “%(id)s”"), "unknown_bulletin", id=bulletin_id)
            bulletin.internal = bool(internal)

    def feedback(
        self, user_id: int, status: str | None = FeedbackStatus.PENDING
    ) -> list[FeedbackRecord]:
        """Feedback given on the pages of the communes `user` manages, newest first."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            query = (
                select(Feedback, Broadcast.title)
                .join(Broadcast, Broadcast.id == Feedback.broadcast_id)
                .order_by(Feedback.created_at.desc(), Feedback.id.desc())
                .limit(MODERATION_PAGE)
            )
            if user.zone is not None:
                query = query.where(Feedback.zone_id.in_(zones.subtree_select([user.zone.id])))
            if status is not None:
                if status not in FeedbackStatus.ALL:
                    raise ValidationError(
                        "status", N_("trạng thái “%(value)s” không hợp lệ"), "bad_value",
                        value=str(status)[:40],
                    )  # fmt: skip
                query = query.where(Feedback.status == status)
            return [FeedbackRecord.of(row, title) for row, title in session.execute(query)]

    def moderate(self, user_id: int, feedback_id: int, decision: object) -> FeedbackRecord:
        """Approve (shown under the item) or hide a feedback of a commune `user` manages (either
        may be changed again later); the feedback as it now is."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.MANAGE_REPLAY)
            row = session.get(Feedback, feedback_id)
            if row is None or not zones.in_scope(session, user, row.zone_id):
                raise NotFound(N_("không có góp ý “%(id)s”"), "unknown_feedback", id=feedback_id)
            if decision not in (FeedbackStatus.APPROVED, FeedbackStatus.HIDDEN):
                raise ValidationError("decision", N_("hãy chọn hiện hoặc ẩn góp ý"), "bad_value")
            row.status = str(decision)
            row.moderated_by_id = user.id
            row.moderated_at = utcnow()
            item = session.get(Broadcast, row.broadcast_id)
            return FeedbackRecord.of(row, item.title if item is not None else "")

    # --- helpers ------------------------------------------------------------------------------

    def _size(self, sha256: str) -> int:
        try:
            return self._media.path(sha256).stat().st_size
        except (audio.AudioError, OSError) as exc:
            _LOGGER.warning("cannot read media %s: %s", sha256[:12], exc)
            return 0

    def _duration(self, sha256: str) -> float | None:
        try:
            return self._media.duration_s(sha256)
        except (audio.AudioError, OSError) as exc:
            _LOGGER.warning("cannot measure media %s: %s", sha256[:12], exc)
            return None


def feedback_counts(
    session: Session, zone_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, FeedbackCounts]:
    """Feedback received and approved per commune page in [start, end), in one query (the
    monthly report's columns)."""
    counts: dict[str, FeedbackCounts] = {}
    if not zone_ids:
        return counts
    approved = func.sum(case((Feedback.status == FeedbackStatus.APPROVED, 1), else_=0))
    rows = session.execute(
        select(Feedback.zone_id, func.count(), approved)
        .where(
            Feedback.zone_id.in_(list(zone_ids)),
            Feedback.created_at >= start,
            Feedback.created_at < end,
        )
        .group_by(Feedback.zone_id)
    )
    for zone_id, received, approved_count in rows:
        counts[zone_id] = FeedbackCounts(int(received), int(approved_count or 0))
    return counts


def _public_commune(session: Session, commune_id: str) -> Zone:
    zone = session.get(Zone, commune_id) if isinstance(commune_id, str) else None
    if zone is None or zone.kind != ZoneKind.COMMUNE.value or not zone.replay_public:
        raise NotFound(
            N_("không có trang nghe lại “%(id)s”"), "unknown_replay", id=str(commune_id)[:63]
        )
    return zone


def _managed_commune(session: Session, user: User, commune_id: object) -> Zone:
    zone = session.get(Zone, commune_id) if isinstance(commune_id, str) else None
    if zone is None or zone.kind != ZoneKind.COMMUNE.value:
        raise ValidationError(
            "zone", N_("không có xã “%(id)s”"), "unknown_zone", id=str(commune_id)[:63]
        )
    if not zones.in_scope(session, user, zone.id):
        raise PermissionDenied(
            N_("người dùng không được quản lý trang nghe lại của “%(zone)s”"),
            "zone_out_of_reach",
            zone=zone.name,
        )
    return zone


def _played() -> ColumnElement[datetime]:
    return func.coalesce(Broadcast.play_at, Broadcast.dispatched_at, Broadcast.created_at)


def _played_at(broadcast: Broadcast) -> datetime:
    return broadcast.play_at or broadcast.dispatched_at or broadcast.created_at


def window_start(now: datetime) -> datetime:
    """The start (UTC, naive) of the local day `REPLAY_DAYS` days before today's."""
    day = clock.to_local(now).date() - timedelta(days=REPLAY_DAYS)  # type: ignore[union-attr]
    return clock.parse_local(datetime(day.year, day.month, day.day).isoformat(), "date")


def _sounded(commune: Zone, now: datetime) -> ColumnElement[bool]:
    """Sounded in the commune within the window: a broadcast that went out, with media."""
    devices = zones.devices_select([commune.id])
    return and_(
        Broadcast.status.in_(PUBLIC_STATUSES),
        Broadcast.media_sha256.is_not(None),
        _played() >= window_start(now),
        _played() <= now,
        or_(
            aimed_at_any([zone.id for zone in zones.ancestors_and_self(commune)]),
            aimed_at_any(zones.subtree_select([commune.id])),
            json_list_has_any(Broadcast.device_ids, devices),
            delivered_to_any(devices),
        ),
    )


def _public_condition(commune: Zone, now: datetime) -> ColumnElement[bool]:
    internal_runs = (
        select(Schedule.id)
        .join(Bulletin, Bulletin.id == Schedule.bulletin_id)
        .where(Bulletin.internal.is_(True))
    )
    return and_(
        _sounded(commune, now),
        Broadcast.internal.is_(False),
        or_(Broadcast.schedule_id.is_(None), Broadcast.schedule_id.not_in(internal_runs)),
    )


def _updated(items: Sequence[ReplayItem]) -> datetime | None:
    times = [item.played_at for item in items]
    times += [f.moderated_at for item in items for f in item.feedback if f.moderated_at]
    return max(times, default=None)


def _version(commune_id: str, items: Sequence[ReplayItem]) -> str:
    """A digest of everything the page and feed show: an item hidden, added or given approved
    feedback changes it (titles, texts and media of a broadcast never change)."""
    digest = hashlib.sha256(commune_id.encode())
    for item in items:
        digest.update(f"|{item.id}:{item.media_bytes}".encode())
        for shown in item.feedback:
            digest.update(f",{shown.id}".encode())
    return digest.hexdigest()[:32]


def _clean(value: object, field: str, limit: int, *, required: bool) -> str:
    """A listener's text: a string, control characters refused (line breaks kept in the
    text), whitespace trimmed, within `limit` characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(field, N_("giá trị không hợp lệ"), "bad_value")
    text = unicodedata.normalize("NFC", value).strip()
    allowed = "\n\t" if field == "text" else ""
    if any(unicodedata.category(char) in ("Cc", "Cs") and char not in allowed for char in text):
        raise ValidationError(field, N_("có ký tự không hợp lệ"), "bad_character")
    if required and not text:
        raise ValidationError(field, N_("hãy viết nội dung góp ý"), "required")
    if len(text) > limit:
        raise ValidationError(field, N_("dài quá %(max)s ký tự"), "too_long", max=limit)
    return text


def _check_rate(session: Session, key: str, broadcast_id: int, now: datetime) -> None:
    def count(*conditions: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).select_from(Feedback).where(*conditions)) or 0

    too_many = (
        count(Feedback.client_key == key, Feedback.created_at > now - CLIENT_WINDOW) >= CLIENT_LIMIT
        or count(
            Feedback.client_key == key,
            Feedback.broadcast_id == broadcast_id,
            Feedback.created_at > now - CLIENT_ITEM_WINDOW,
        )
        >= CLIENT_ITEM_LIMIT
        or count(Feedback.broadcast_id == broadcast_id, Feedback.created_at > now - ITEM_WINDOW)
        >= ITEM_LIMIT
    )
    if too_many:
        raise ValidationError(
            "text", N_("đã nhận nhiều góp ý quá, xin thử lại sau"), "rate_limited"
        )
