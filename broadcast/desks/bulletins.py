"""The bulletin desk (bàn biên tập): writing bulletins, their approval (duyệt), sending them.

The culture officer (or the admin) writes a bulletin: a text from a pasted or uploaded
document turned into an editable script, a recording, or a stream relay. What goes on the
commune's loudspeakers is the commune's word, so a leader (or the admin) approves it first:

    draft ──submit──► submitted ──approve──► approved   (may be scheduled or sent at once)
      ▲                   └──────reject────► rejected  (with the reason)
      └────────────── edit ◄──────────────────┘

Only drafts and rejected bulletins are edited; editing a rejected one makes it a draft again.
Nobody reviews their own bulletin except the admin (a commune may have only one). A commune
with a single officer turns approval off (`Settings.require_approval`): bulletins are then
created approved and stay editable. Every step is written to the audit log in the same
transaction, and the bulletin's history is read back from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, joinedload

import audio
import tts
from broadcast.const import MAX_TITLE_CHARS, ContentKind, ZoneKind
from broadcast.desks import documents, reporting
from broadcast.desks.records import BroadcastRecord, BulletinRecord, ScheduleRecord
from broadcast.errors import N_, Conflict, NotFound, PermissionDenied, ValidationError
from broadcast.people import accounts, audit, permissions, targets, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning
from broadcast.programme import rules as programmes
from broadcast.sending import broadcasts, rendering
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import AuditEntry, Bulletin, Schedule, User, Zone, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)

MAX_COMMENT_CHARS = 2000


class BulletinStatus(StrEnum):
    DRAFT = "draft"  # bản nháp
    SUBMITTED = "submitted"  # chờ duyệt
    APPROVED = "approved"  # đã duyệt
    REJECTED = "rejected"  # bị trả lại


STATUS_LABELS = {
    BulletinStatus.DRAFT: N_("Bản nháp"),
    BulletinStatus.SUBMITTED: N_("Chờ duyệt"),
    BulletinStatus.APPROVED: N_("Đã duyệt"),
    BulletinStatus.REJECTED: N_("Bị trả lại"),
}
EDITABLE = (BulletinStatus.DRAFT, BulletinStatus.REJECTED)
HISTORY_ACTIONS = (
    audit.Action.BULLETIN_CREATE,
    audit.Action.BULLETIN_EDIT,
    audit.Action.BULLETIN_SUBMIT,
    audit.Action.BULLETIN_APPROVE,
    audit.Action.BULLETIN_REJECT,
)


@dataclass(frozen=True)
class Abilities:
    """What a user may do with a bulletin now, so pages show only the buttons that work (the
    methods check again)."""

    write: bool  # create bulletins at all
    edit: bool
    submit: bool
    review: bool  # approve or reject
    play: bool  # schedule or send at once
    preview: bool


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime  # UTC, naive
    action: str  # an `audit.Action` value
    username: str
    comment: str


@dataclass(frozen=True)
class Choice:
    """A zone or a receiver a bulletin may be sent to, as a form offers it."""

    id: str
    name: str
    depth: int = 0  # a zone's depth below the first offered (a form indents villages)


@dataclass(frozen=True)
class BulletinIndex:
    """The bulletins page: the newest bulletins of one status, and the programme."""

    status: str  # the status listed, "" for every status
    bulletins: list[BulletinRecord]
    counts: dict[str, int]  # bulletins per status
    abilities: Abilities  # what the user may do (`write`: create bulletins)
    schedules: list[ScheduleRecord]  # the active schedules sounding in the user's area
    next_runs: dict[int, datetime | None]  # by schedule id; None when it has no more runs
    cancellable: frozenset[int] = frozenset()  # ids of the schedules the user may cancel


@dataclass(frozen=True)
class BulletinView:
    """One bulletin as its page (or the API) shows it."""

    bulletin: BulletinRecord
    may: Abilities
    history: list[HistoryEntry]
    schedules: list[ScheduleRecord]  # its active schedules
    zones: list[Choice]  # where the user may send it (empty unless asked for)
    devices: list[Choice]  # the receivers in those zones


def status_label(status: str) -> str:
    try:
        return STATUS_LABELS[BulletinStatus(status)]
    except ValueError:
        return status


def get_bulletin(session: Session, bulletin_id: int, user: User | None = None) -> Bulletin:
    """The bulletin; given `user`, only one whose zone is in their scope: another commune's
    bulletin is NotFound, the same as none at all (it does not tell them it exists)."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None or (user and not zones.in_scope(session, user, bulletin.zone_id)):
        raise NotFound(N_("không có bản tin %(id)s"), "not_found", id=bulletin_id)
    return bulletin


def scope_condition(session: Session, user: User) -> ColumnElement[bool] | None:
    """The SQL condition on bulletins of `user`'s scope (`zones.in_scope`); None: every one."""
    scope = zones.scope_ids(session, user)
    return None if scope is None else Bulletin.zone_id.in_(sorted(scope))


def check_can_cancel_schedule(session: Session, user: User, schedule: Schedule) -> None:
    """PermissionDenied unless `user` may schedule and every target of `schedule` is in their
    scope: a province's schedule that sounds in a commune is shown there, not cancelled."""
    permissions.require(user, Action.SCHEDULE)
    chosen = targets.stored(session, schedule.zone_ids, schedule.device_ids or [])
    targets.check_can_target(session, user, chosen, Action.SCHEDULE)


def cancellable_schedules(
    session: Session, user: User, schedules: Iterable[Schedule]
) -> frozenset[int]:
    """The ids of those `schedules` that `user` may cancel (`check_can_cancel_schedule`)."""
    if not permissions.allowed(user.role, Action.SCHEDULE):
        return frozenset()
    chosen = list(schedules)
    # two queries at any size: walking the scope's zones one by one cost one per zone
    allowed = zones.scope_ids(session, user)
    if allowed is None:
        allowed = set(session.scalars(select(Zone.id)))
    named = sorted({device_id for s in chosen for device_id in s.device_ids or []})
    device_zones = zones.device_zones(session, named)
    return frozenset(
        schedule.id
        for schedule in chosen
        if all(zone_id in allowed for zone_id in schedule.zone_ids)
        and all(device_zones.get(d) in allowed for d in schedule.device_ids or [])
    )


def commune_of(session: Session, user: User) -> Zone | None:
    """The commune whose station speaks for `user`: the commune of their zone, or the one commune
    of their scope (an installation-wide account of a single-commune installation); None when
    that is not one commune (a province's account)."""
    if user.zone is not None:
        for zone in zones.ancestors_and_self(user.zone):
            if zone.kind == ZoneKind.COMMUNE.value:
                return zone
    query = select(Zone).where(Zone.kind == ZoneKind.COMMUNE.value).order_by(Zone.id).limit(2)
    scope = zones.scope_ids(session, user)
    if scope is not None:
        query = query.where(Zone.id.in_(sorted(scope)))
    found = list(session.scalars(query))
    return found[0] if len(found) == 1 else None


def check_playable(bulletin: Bulletin) -> None:
    """Only an approved bulletin with something to say is scheduled or sent (phát ngay)."""
    if bulletin.status != BulletinStatus.APPROVED:
        raise Conflict(
            "bulletin",
            N_(
                "Bản tin “%(title)s” đang ở trạng thái “%(status)s”: chỉ bản tin đã duyệt mới"
                " được đặt lịch hoặc phát ngay."
            ),
            "not_approved",
            title=bulletin.title,
            status=status_label(bulletin.status),
        )
    if bulletin.kind == ContentKind.TTS and not tts.has_speech(bulletin.text):  # stored before
        raise ValidationError("text", broadcasts.NO_SPEECH, code="no_speech")


def _clean_title(value: object, fallback: str = "") -> str:
    title = str(value or "").strip() or fallback
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(
            "title", N_("Tiêu đề dài quá %(max)s ký tự."), "too_long", max=MAX_TITLE_CHARS
        )
    return title


class BulletinDesk:
    """Bulletins from writing to air; wired by `BroadcastService` as `service.bulletins`.

    `render(text, recording)` renders media now and returns its sha256 (a preview);
    `send(broadcast_id)` queues a broadcast row for rendering and dispatch.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        media: audio.MediaStore,
        render: Callable[[str, str | None], str],
        send: Callable[[int], object],
    ) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self._render = render
        self._send = send

    get_bulletin = staticmethod(get_bulletin)

    # --- who may do what ----------------------------------------------------------------------

    def abilities(self, user: User, bulletin: Bulletin | None = None) -> Abilities:
        write = permissions.allowed(user.role, Action.WRITE_BULLETIN)
        if bulletin is None:
            return Abilities(write, False, False, False, False, False)
        status = bulletin.status
        own = bulletin.created_by_id == user.id and not permissions.allowed(
            user.role, Action.APPROVE_OWN_BULLETIN
        )
        return Abilities(
            write=write,
            edit=write and self._editable(status),
            submit=write and status == BulletinStatus.DRAFT,
            review=permissions.allowed(user.role, Action.APPROVE_BULLETIN)
            and status == BulletinStatus.SUBMITTED
            and not own,
            play=write and status == BulletinStatus.APPROVED,
            preview=permissions.allowed(user.role, Action.PREVIEW_BULLETIN)
            and bulletin.kind != ContentKind.RELAY,
        )

    def _editable(self, status: str) -> bool:
        return status in EDITABLE or (
            not self.settings.require_approval and status == BulletinStatus.APPROVED
        )

    # --- reading ------------------------------------------------------------------------------

    @staticmethod
    def read(session: Session, user_id: int, bulletin_id: int) -> tuple[User, Bulletin]:
        """A bulletin for someone allowed to read bulletins (not a village head)."""
        user = accounts.require_user(session, user_id, Action.READ_BULLETINS)
        return user, get_bulletin(session, bulletin_id, user)

    @staticmethod
    def listing(
        session: Session, user_id: int, status: str = "", limit: int = 100
    ) -> list[Bulletin]:
        """The newest bulletins, of one status when given (a leader's "Chờ duyệt")."""
        user = accounts.require_user(session, user_id, Action.READ_BULLETINS)
        query = select(Bulletin).order_by(Bulletin.id.desc()).limit(limit)
        scoped = scope_condition(session, user)
        if scoped is not None:
            query = query.where(scoped)
        if status:
            try:
                query = query.where(Bulletin.status == BulletinStatus(status).value)
            except ValueError as exc:
                raise ValidationError(
                    "status",
                    N_("không có trạng thái “%(status)s”"),
                    "unknown_choice",
                    status=status,
                ) from exc
        return list(session.scalars(query))

    @staticmethod
    def status_counts(session: Session, user: User | None = None) -> dict[str, int]:
        """Bulletins per status (of `user`'s scope when given)."""
        query = select(Bulletin.status, func.count()).group_by(Bulletin.status)
        scoped = None if user is None else scope_condition(session, user)
        if scoped is not None:
            query = query.where(scoped)
        rows = session.execute(query)
        counts = {status.value: 0 for status in BulletinStatus}
        counts.update({status: count for status, count in rows})
        return counts

    @staticmethod
    def history(session: Session, bulletin_id: int) -> list[HistoryEntry]:
        """Who created, edited, submitted and reviewed it, when, with the reviewer's comment."""
        query = (
            select(AuditEntry)
            .where(
                AuditEntry.target == f"bulletin:{bulletin_id}",
                AuditEntry.action.in_([action.value for action in HISTORY_ACTIONS]),
            )
            .order_by(AuditEntry.seq)
        )
        return [
            HistoryEntry(
                at=entry.at,
                action=entry.action,
                username=entry.username,
                comment=str(entry.detail.get("comment") or ""),
            )
            for entry in session.scalars(query)
        ]

    def may_write(self, user_id: int) -> bool:
        """Whether the user may write bulletins: the forms that create one are offered only
        then (each save checks again)."""
        with self.db.session() as session:
            try:
                accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            except PermissionDenied:
                return False
        return True

    def default_status(self, user: User) -> str:
        """The list a user opens: a reviewer who writes nothing (the leader) starts with the
        bulletins waiting for review; everyone else with every status ("")."""
        reviewer_only = permissions.allowed(
            user.role, Action.APPROVE_BULLETIN
        ) and not permissions.allowed(user.role, Action.WRITE_BULLETIN)
        return BulletinStatus.SUBMITTED.value if reviewer_only else ""

    def index(self, user_id: int, status: str | None = None) -> BulletinIndex:
        """The bulletins page: `status` "" for every status, None for the user's default
        (`default_status`); an unknown status is a ValidationError."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.READ_BULLETINS)
            chosen = self.default_status(user) if status is None else status
            rows = self.listing(session, user_id, chosen)
            active = session.scalars(
                select(Schedule)
                .options(joinedload(Schedule.bulletin))  # its title: not one query per schedule
                .where(Schedule.active.is_(True), Schedule.ended_at.is_(None))
                .order_by(Schedule.id.desc())
            )
            now = utcnow()
            heard = broadcasts.listening_scope(session, user)
            schedules, next_runs, shown = [], {}, []
            for schedule in active:
                if not broadcasts.sounds_in(heard, schedule.zone_ids, schedule.device_ids or []):
                    continue
                shown.append(schedule)
                schedules.append(ScheduleRecord.of(schedule))
                next_runs[schedule.id] = programmes.next_occurrence(planning.rule_of(schedule), now)
            return BulletinIndex(
                status=chosen,
                bulletins=[BulletinRecord.of(row) for row in rows],
                counts=self.status_counts(session, user),
                abilities=self.abilities(user),
                schedules=schedules,
                next_runs=next_runs,
                cancellable=cancellable_schedules(session, user, shown),
            )

    def bulletins(self, user_id: int, status: str = "") -> list[BulletinRecord]:
        """The newest bulletins, of one status when given."""
        with self.db.session() as session:
            return [BulletinRecord.of(row) for row in self.listing(session, user_id, status)]

    def view(self, user_id: int, bulletin_id: int, *, with_targets: bool = False) -> BulletinView:
        """A bulletin with what the user may do with it, its history and active schedules;
        with `with_targets`, also the zones and receivers they may send it to."""
        with self.db.session() as session:
            user, bulletin = self.read(session, user_id, bulletin_id)
            schedules = session.scalars(
                select(Schedule).where(
                    Schedule.bulletin_id == bulletin_id,
                    Schedule.active.is_(True),
                    Schedule.ended_at.is_(None),
                )
            )
            reachable = (
                reporting.tree_ordered(zones.reachable_zones(session, user)) if with_targets else []
            )
            return BulletinView(
                bulletin=BulletinRecord.of(bulletin),
                may=self.abilities(user, bulletin),
                history=self.history(session, bulletin_id),
                schedules=[ScheduleRecord.of(schedule) for schedule in schedules],
                zones=[
                    Choice(zone.id, zone.name, depth)
                    for zone, depth in reporting.with_depths(reachable)
                ],
                devices=[Choice(d.id, d.name) for d in zones.target_devices(reachable)],
            )

    def sent(self, user_id: int, broadcast_id: int) -> BroadcastRecord:
        """A broadcast of a bulletin (`broadcast_bulletin`), with every delivery, for those
        who may send bulletins; any other broadcast is not found here."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            if broadcast.source != "bulletin" or not broadcasts.can_view(session, user, broadcast):
                raise NotFound(N_("không có lượt phát %(id)s"), "not_found", id=broadcast_id)
            return BroadcastRecord.of(broadcast)

    # --- writing ------------------------------------------------------------------------------

    def prepare_script(
        self, user_id: int, document: object, with_opening: bool = True
    ) -> tts.BroadcastScript:
        """What an official document becomes when read aloud; the officer edits it before saving."""
        return self._script(user_id, document, with_opening)

    def _script(self, user_id: int, document: object, with_opening: bool) -> tts.BroadcastScript:
        """The script, opened with the name of the writer's commune (none for a province's
        account: "Đài truyền thanh xã …" would name the wrong station)."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            commune = commune_of(session, user) if with_opening else None
            commune_name = commune.name if commune is not None else None
        text = broadcasts.clean_text(document)
        try:
            return tts.make_script(text, commune=commune_name)
        except tts.TtsError as exc:
            raise ValidationError(
                "document",
                N_("không soạn được lời đọc từ văn bản: %(detail)s"),
                "no_script",
                detail=str(exc),
            ) from exc

    def prepare_upload(
        self, user_id: int, file_name: str, data: bytes, with_opening: bool = True
    ) -> tts.BroadcastScript:
        """An uploaded .txt or .docx, as an editable script (`broadcast.desks.documents`)."""
        with self.db.session() as session:
            accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
        return self._script(user_id, documents.extract_text(file_name, data), with_opening)

    def create_bulletin(
        self,
        user_id: int,
        title: object,
        text: object,
        source_name: str = "",
        *,
        internal: object = False,
    ) -> int:
        """A text to be read by the speech engine; `source_name` is the uploaded file's name.
        `internal` (nội bộ): its runs stay off the public replay page; whoever writes it may
        choose that (it only hides), turning it public again is the replay manager's."""
        hidden = broadcasts.clean_internal(internal)
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            clean = broadcasts.clean_text(text)
            bulletin = Bulletin(
                title=_clean_title(title, broadcasts.default_title(clean)),
                text=clean,
                kind=ContentKind.TTS.value,
                source_name=str(source_name or "").strip()[:300],
                internal=hidden,
            )
            return self._add(session, user, bulletin)

    def create_recording_bulletin(
        self,
        user_id: int,
        title: object,
        upload: Path,
        original_name: str,
        *,
        internal: object = False,
    ) -> int:
        """A recording as content: validated, loudness-normalized, transcoded, then stored
        (`internal` as for `create_bulletin`)."""
        hidden = broadcasts.clean_internal(internal)
        with self.db.session() as session:
            accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
        name = _clean_title(title)
        if not name:
            raise ValidationError("title", N_("bản ghi âm cần có tiêu đề"), "required")
        sha256 = rendering.store_recording(self.media, upload, original_name).sha256
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            bulletin = Bulletin(
                title=name,
                text=name,
                kind=ContentKind.RECORDING.value,
                recording_sha256=sha256,
                source_name=original_name.strip()[:300],
                internal=hidden,
            )
            return self._add(session, user, bulletin)

    def create_relay_bulletin(
        self, user_id: int, title: object, relay_url: object, minutes: object
    ) -> int:
        """Tiếp sóng: the provincial or national radio stream, relayed for a set time."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            url = broadcasts.clean_relay_url(relay_url)
            length = broadcasts.clean_relay_minutes(minutes)
            name = _clean_title(title, f"Tiếp sóng {url}"[:MAX_TITLE_CHARS])
            bulletin = Bulletin(
                title=name,
                text=name,
                kind=ContentKind.RELAY.value,
                relay_url=url,
                duration_s=float(length * 60),
            )
            return self._add(session, user, bulletin)

    def _add(self, session: Session, user: User, bulletin: Bulletin) -> int:
        """Save a new bulletin: a draft, or approved at once when approval is turned off."""
        now = utcnow()
        bulletin.created_by_id = user.id
        bulletin.zone_id = user.zone_id
        bulletin.created_at = now
        bulletin.status = BulletinStatus.DRAFT.value
        if not self.settings.require_approval:
            bulletin.status = BulletinStatus.APPROVED.value
            bulletin.reviewed_at = now
        session.add(bulletin)
        session.flush()
        audit.record(
            session,
            user,
            audit.Action.BULLETIN_CREATE,
            f"bulletin:{bulletin.id}",
            {
                "kind": bulletin.kind,
                "title": bulletin.title,
                "status": bulletin.status,
                "source": bulletin.source_name,
                "internal": bulletin.internal,
            },
        )
        _LOGGER.info("bulletin %s (%s) created by %s", bulletin.id, bulletin.kind, user.username)
        return bulletin.id

    def edit(self, user_id: int, bulletin_id: int, title: object, text: object = None) -> None:
        """Change the title (and a text bulletin's script) of a draft or rejected bulletin; a
        rejected one becomes a draft again, to be submitted anew."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            bulletin = get_bulletin(session, bulletin_id, user)
            if not self._editable(bulletin.status):
                raise Conflict(
                    "status",
                    N_(
                        "Bản tin “%(title)s” đang ở trạng thái “%(status)s”: chỉ sửa được bản"
                        " nháp hoặc bản bị trả lại."
                    ),
                    "not_editable",
                    title=bulletin.title,
                    status=status_label(bulletin.status),
                )
            before = bulletin.status
            changed = []
            if bulletin.kind == ContentKind.TTS:
                clean = broadcasts.clean_text(text)
                new_title = _clean_title(title, broadcasts.default_title(clean))
                if clean != bulletin.text:
                    bulletin.text, changed = clean, ["text"]
            else:
                new_title = _clean_title(title)
                if not new_title:
                    raise ValidationError(
                        "title", N_("Bản ghi âm và tiếp sóng cần có tiêu đề."), "required"
                    )
                bulletin.text = new_title
            if new_title != bulletin.title:
                bulletin.title = new_title
                changed.append("title")
            if before == BulletinStatus.REJECTED:
                bulletin.status = BulletinStatus.DRAFT.value
            bulletin.updated_at = utcnow()
            audit.record(
                session,
                user,
                audit.Action.BULLETIN_EDIT,
                f"bulletin:{bulletin_id}",
                {"title": bulletin.title, "changed": changed, "from": before},
            )

    # --- approval -----------------------------------------------------------------------------

    def submit(self, user_id: int, bulletin_id: int) -> None:
        """Send a draft to the leaders for approval (trình duyệt)."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            bulletin = get_bulletin(session, bulletin_id, user)
            self._expect(bulletin, (BulletinStatus.DRAFT,), N_("trình duyệt"))
            bulletin.status = BulletinStatus.SUBMITTED.value
            bulletin.submitted_at = utcnow()
            audit.record(
                session,
                user,
                audit.Action.BULLETIN_SUBMIT,
                f"bulletin:{bulletin_id}",
                {"title": bulletin.title},
            )

    def approve(self, user_id: int, bulletin_id: int, comment: object = "") -> None:
        """The leader's yes: the bulletin may now be scheduled and sent."""
        self._review(user_id, bulletin_id, BulletinStatus.APPROVED, comment)

    def reject(self, user_id: int, bulletin_id: int, comment: object) -> None:
        """The leader's no, with the reason the officer reads before editing it."""
        self._review(user_id, bulletin_id, BulletinStatus.REJECTED, comment)

    def _review(
        self, user_id: int, bulletin_id: int, decision: BulletinStatus, comment: object
    ) -> None:
        text = str(comment or "").strip()
        if len(text) > MAX_COMMENT_CHARS:
            raise ValidationError(
                "comment", N_("Ý kiến dài quá %(max)s ký tự."), "too_long", max=MAX_COMMENT_CHARS
            )
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.APPROVE_BULLETIN)
            bulletin = get_bulletin(session, bulletin_id, user)
            if bulletin.created_by_id == user.id and not permissions.allowed(
                user.role, Action.APPROVE_OWN_BULLETIN
            ):
                raise PermissionDenied(
                    N_("không ai tự duyệt bản tin của chính mình"), "own_bulletin"
                )
            verb = N_("duyệt") if decision == BulletinStatus.APPROVED else N_("trả lại")
            self._expect(bulletin, (BulletinStatus.SUBMITTED,), verb)
            if decision == BulletinStatus.REJECTED and not text:
                raise ValidationError("comment", N_("Cần ghi lý do trả lại bản tin."), "required")
            bulletin.status = decision.value
            bulletin.reviewed_by_id = user.id
            bulletin.reviewed_at = utcnow()
            bulletin.review_comment = text
            action = (
                audit.Action.BULLETIN_APPROVE
                if decision == BulletinStatus.APPROVED
                else audit.Action.BULLETIN_REJECT
            )
            audit.record(session, user, action, f"bulletin:{bulletin_id}", {"comment": text[:500]})
        _LOGGER.info("bulletin %s %s by user %s", bulletin_id, decision.value, user_id)

    @staticmethod
    def _expect(bulletin: Bulletin, statuses: Sequence[BulletinStatus], verb: str) -> None:
        if bulletin.status not in statuses:
            raise Conflict(
                "status",
                N_(
                    "Không thể %(verb)s bản tin “%(title)s”: bản tin đang ở trạng thái"
                    " “%(status)s”."
                ),
                "wrong_status",
                verb=verb,
                title=bulletin.title,
                status=status_label(bulletin.status),
            )

    # --- on air -------------------------------------------------------------------------------

    def preview(self, user_id: int, bulletin_id: int) -> str:
        """Render a bulletin as it would play (without sending it) and return its media sha256;
        the leader listens before approving."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.PREVIEW_BULLETIN)
            bulletin = get_bulletin(session, bulletin_id, user)
            if bulletin.kind == ContentKind.RELAY:
                raise ValidationError(
                    "bulletin", N_("tiếp sóng không có bản nghe thử"), "no_preview"
                )
            text, recording = bulletin.text, bulletin.recording_sha256
        return self._render(text, recording)

    def broadcast_bulletin(
        self,
        user_id: int,
        bulletin_id: int,
        zone_ids: object,
        priority: object = protocol.Priority.NORMAL.value,
        repeat: object = 1,
        device_ids: object = None,
    ) -> int:
        """Send an approved bulletin now (phát ngay)."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.WRITE_BULLETIN)
            bulletin = get_bulletin(session, bulletin_id, user)
            check_playable(bulletin)
            chosen = targets.resolve(session, zone_ids, device_ids)
            targets.check_can_target(session, user, chosen)
            relay = bulletin.kind == ContentKind.RELAY
            broadcast = broadcasts.create_broadcast(
                session,
                text=bulletin.text,
                zone_list=chosen.zones,
                devices=chosen.devices,
                priority=broadcasts.clean_priority(priority),
                repeat=1 if relay else broadcasts.clean_repeat(repeat),
                source="bulletin",
                created_by=user,
                title=bulletin.title,
                recording_sha256=bulletin.recording_sha256,
                content=ContentKind(bulletin.kind).content_type.value,
                relay_url=bulletin.relay_url if relay else None,
                duration_s=bulletin.duration_s if relay else None,
            )
            broadcast.internal = bulletin.internal  # nội bộ: kept off the public replay
            broadcast_id = broadcast.id
            audit.record(
                session,
                user,
                audit.Action.SEND_BULLETIN,
                f"broadcast:{broadcast_id}",
                {"bulletin": bulletin_id, "zones": chosen.zone_ids, "devices": chosen.device_ids},
            )
        self._send(broadcast_id)
        return broadcast_id
