"""Bulletins from the province (thông tin nguồn, Thông tư 39/2020/TT-BTTTT): sent down to
communes, and what each commune did with them.

A province editor (or an admin) sends a bulletin written on the bulletins desk to communes of
their province, with a priority. One `BulletinForward` per commune records its course:

* thông thường (normal): it waits in the commune's inbox ("Bản tin từ tỉnh", `received`) until
  the commune officer places it in a slot of the programme (a one-off schedule in the commune,
  made by the scheduling desk with all its checks: `placed`) or declines it with a reason
  (`declined`);
* ưu tiên (priority): it heads the commune's next programme run (`placed` at once). The
  commune's **programme run** is the earliest planned start, at least `PRIORITY_LEAD_S` from
  now and within the manifest horizon (48 h), of a schedule whose loudspeakers all lie in the
  commune (the commune's own programme; a schedule of the province above is not the commune's).
  The bulletin becomes a one-off schedule on the whole commune whose run starts just before that
  start: the k priority items heading one run start at T − k ms … T − 1 ms, in the commune's
  order. The receivers play what is due by priority (ưu tiên before thông thường), then by start
  time, one after the other, and only an emergency cuts what plays (`devices.timeline`), so at
  T the priority items play first, in that order, and the run's own items after them (they stay
  valid for 15 minutes). The commune officer may reorder them until the run starts. With no run
  in the horizon it waits in the inbox until the officer puts it at the head of the next run
  once there is one (`head`), or places it in a slot (still ưu tiên); it is never declined;
* khẩn cấp (emergency): it plays at once on every loudspeaker of the target communes: one
  emergency broadcast to those communes through the outbox, as a commune's emergency goes, cut
  into whatever plays, stopped or corrected from its page like any announcement.

A forward becomes `played` once its commune's receivers answered every delivery of it and at
least one finished (read when the province or the commune looks at it). The province sees each
commune's state, when it plays, who decided what and why, and the deliveries with their rate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcast.const import (
    FINAL_DELIVERY_STATES,
    BroadcastStatus,
    ContentKind,
    DeliveryState,
    ScheduleKind,
    ZoneKind,
)
from broadcast.desks.bulletins import BulletinStatus, check_playable, get_bulletin
from broadcast.desks.records import BulletinRecord
from broadcast.desks.scheduling import ScheduleRequest, SchedulingDesk
from broadcast.errors import (
    N_,
    Conflict,
    Msgid,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from broadcast.people import accounts, audit, permissions, targets, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning
from broadcast.programme import rules as programmes
from broadcast.sending import broadcasts
from broadcast.sending.outbox import Outbox
from broadcast.settings import Settings
from broadcast.store import sequences
from broadcast.store.db import Database
from broadcast.store.models import (
    Broadcast,
    Bulletin,
    BulletinForward,
    Delivery,
    Device,
    Schedule,
    User,
    Zone,
    utcnow,
)
from wire.protocol import MANIFEST_HORIZON_S, Priority

_LOGGER = logging.getLogger(__name__)

PRIORITY_LEAD_S = 60.0  # a run sooner than this is too close for receivers to fetch the item
HEAD_STEP = timedelta(milliseconds=1)  # between the priority items heading one run
MAX_REASON_CHARS = 2000
RECENT_LIMIT = 100


class ForwardState(StrEnum):
    RECEIVED = "received"  # in the commune's inbox
    PLACED = "placed"  # in the commune's programme (or sent at once: an emergency)
    DECLINED = "declined"  # the commune said no, and why
    PLAYED = "played"  # its receivers finished it
    WITHDRAWN = "withdrawn"  # the province took it back before it played


FORWARD_STATE_LABELS: dict[str, Msgid] = {
    ForwardState.RECEIVED: N_("Đã nhận, chờ xếp lịch"),
    ForwardState.PLACED: N_("Đã xếp lịch"),
    ForwardState.DECLINED: N_("Đã từ chối"),
    ForwardState.PLAYED: N_("Đã phát"),
    ForwardState.WITHDRAWN: N_("Tỉnh đã thu hồi"),
}
# Why a withdrawn forward ended, as its reason says it (the API and the pages show it).
WITHDRAWN_REASON = "withdrawn by the province"


@dataclass(frozen=True)
class Choice:
    id: str
    name: str


@dataclass(frozen=True)
class CommuneStatus:
    """One commune's course of one province bulletin."""

    forward_id: int
    bulletin_id: int
    commune_id: str
    commune: str  # its name
    priority: str
    state: str  # a `ForwardState` value
    run_at: datetime | None  # UTC: the slot it was placed in, or the run it heads
    position: int | None  # among the priority items heading that run (0 first)
    schedule_id: int | None
    broadcast_id: int | None
    reason: str  # why it was declined
    decided_by: str  # "" when nobody decided (a priority or emergency one placed itself)
    decided_at: datetime | None
    played_at: datetime | None
    deliveries: int  # to the commune's receivers, over every run
    finished: int
    rate: float | None  # finished / deliveries, None with no delivery yet


@dataclass(frozen=True)
class SentBulletin:
    """A bulletin sent down, with every commune's state (those the reader may see)."""

    bulletin: BulletinRecord
    sent_at: datetime | None
    sent_by: str
    communes: tuple[CommuneStatus, ...]
    counts: dict[str, int]  # communes per state


@dataclass(frozen=True)
class InboxItem:
    status: CommuneStatus
    bulletin: BulletinRecord
    sent_by: str
    sent_at: datetime


@dataclass(frozen=True)
class HeadedRun:
    """The priority items heading one programme run of a commune, in play order."""

    commune_id: str
    commune: str
    run_at: datetime
    items: tuple[InboxItem, ...]


@dataclass(frozen=True)
class Inbox:
    """A commune's "Bản tin từ tỉnh"."""

    waiting: tuple[InboxItem, ...]  # to place or decline
    runs: tuple[HeadedRun, ...]  # priority items heading runs still to come (reorderable)
    decided: tuple[InboxItem, ...]  # placed, declined or played, newest first
    places: tuple[Choice, ...]  # the zones a placed bulletin may play in


def state_label(state: str) -> str:
    try:
        return FORWARD_STATE_LABELS[ForwardState(state)]
    except ValueError:
        return state


def commune_run(
    session: Session, commune: Zone, after: datetime, horizon: timedelta
) -> datetime | None:
    """The commune's next programme run: the earliest start in [after, after + horizon) of a
    run, not cancelled, of an active schedule sounding only in the commune; the priority items
    heading runs are not runs of their own."""
    inside = zones.subtree_ids(session, [commune])
    heads = set(
        session.scalars(
            select(BulletinForward.schedule_id).where(
                BulletinForward.position.is_not(None), BulletinForward.run_at >= after
            )
        )
    )
    best: datetime | None = None
    for schedule in planning.plannable(session):
        if schedule.id in heads:
            continue
        footprint = targets.stored(
            session, schedule.zone_ids, schedule.device_ids or []
        ).footprint()
        if not footprint or (inside is not None and any(z.id not in inside for z in footprint)):
            continue
        cancelled = set(
            session.scalars(
                select(Broadcast.occurrence_at).where(
                    Broadcast.schedule_id == schedule.id,
                    Broadcast.status == BroadcastStatus.CANCELLED.value,
                )
            )
        )
        for at in programmes.occurrences(planning.rule_of(schedule), after, after + horizon):
            if at not in cancelled:
                if best is None or at < best:
                    best = at
                break
    return best


class SourceBulletinDesk:
    """`service.source_bulletins`: bulletins sent down from the province, and each commune's
    inbox."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        outbox: Outbox,
        scheduling: SchedulingDesk,
        programme_changed: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._outbox = outbox
        self._scheduling = scheduling
        self._programme_changed = programme_changed

    # --- the province ----------------------------------------------------------------------

    def communes(self, user_id: int) -> list[Choice]:
        """The communes the user may send bulletins down to (their province's)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            return [Choice(zone.id, zone.name) for zone in _communes(session, user)]

    def may_send_down(self, user_id: int) -> bool:
        with self._db.session() as session:
            user = session.get(User, user_id)
            return (
                user is not None
                and user.active
                and permissions.allowed(user.role, Action.SEND_DOWN)
            )

    def send_down(
        self,
        user_id: int,
        bulletin_id: int,
        commune_ids: object,
        priority: object = Priority.NORMAL.value,
    ) -> list[int]:
        """Send a bulletin to communes (`commune_ids` None: every commune the user reaches);
        returns the forwards' ids. A bulletin its sender wrote and may approve alone is approved
        by sending it: the province's word needs no commune's approval."""
        now = utcnow()
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            level = broadcasts.clean_priority(priority)
            bulletin = self._own_bulletin(session, user, bulletin_id)
            chosen = self._chosen_communes(session, user, commune_ids)
            for commune in chosen:
                if session.scalar(
                    select(BulletinForward.id).where(
                        BulletinForward.bulletin_id == bulletin.id,
                        BulletinForward.commune_id == commune.id,
                    )
                ):
                    raise Conflict(
                        "communes",
                        N_("Bản tin “%(title)s” đã được gửi xuống %(commune)s."),
                        "already_sent",
                        title=bulletin.title,
                        commune=commune.name,
                    )
            self._approve_by_sending(session, user, bulletin)
            check_playable(bulletin)
            text, recording = bulletin.text, bulletin.recording_sha256
            relay = bulletin.kind == ContentKind.RELAY
            relay_s = bulletin.duration_s or 0.0
            commune_list = [zone.id for zone in chosen]
            # one media for every commune: in their voice if they all chose the same one
            voice = zones.voice_for(session, commune_list)
        media = None
        if level is Priority.PRIORITY:  # rendered before anything is stored, as schedules are
            media = (
                (None, ContentKind.RELAY.value, relay_s)
                if relay
                else self._outbox.render_for_schedule(text, recording, 1, voice)
            )
        emergency_id = None
        with self._db.session() as session:
            if media is not None:
                sequences.hold(session, sequences.SCHEDULE_LOCK)
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            bulletin = get_bulletin(session, bulletin_id)
            chosen = zones.resolve_zones(session, commune_list)
            if level is Priority.EMERGENCY:
                emergency_id = self._emergency(session, user, bulletin, chosen)
            forwards = []
            for commune in chosen:
                forward = BulletinForward(
                    bulletin_id=bulletin.id,
                    commune_id=commune.id,
                    priority=level.value,
                    state=ForwardState.RECEIVED.value,
                    sent_by_id=user.id,
                    sent_at=now,
                )
                if emergency_id is not None:
                    forward.state = ForwardState.PLACED.value
                    forward.broadcast_id = emergency_id
                    forward.decided_at = now
                session.add(forward)
                try:
                    session.flush()
                except IntegrityError as exc:  # the same sent at once from another request
                    raise Conflict(
                        "communes",
                        N_("Bản tin “%(title)s” đã được gửi xuống %(commune)s."),
                        "already_sent",
                        title=bulletin.title,
                        commune=commune.name,
                    ) from exc
                if media is not None:
                    self._head_next_run(session, forward, commune, bulletin.id, media, now)
                forwards.append(forward.id)
            audit.record(
                session,
                user,
                audit.Action.SEND_DOWN,
                f"bulletin:{bulletin.id}",
                {"communes": commune_list, "priority": level.value, "broadcast": emergency_id},
            )
        _LOGGER.info(
            "bulletin %s sent down (%s) to %s by user %s",
            bulletin_id,
            level.value,
            commune_list,
            user_id,
        )
        if emergency_id is not None:
            self._outbox.send(emergency_id)
        if media is not None:
            self._programme_changed()
        return forwards

    def _own_bulletin(self, session: Session, user: User, bulletin_id: int) -> Bulletin:
        """A bulletin the user may send down: written in their zone or above (not a commune's
        own bulletin, which is the commune's word)."""
        bulletin = get_bulletin(session, bulletin_id)
        if not zones.in_scope(session, user, bulletin.zone_id):
            raise NotFound(N_("không có bản tin %(id)s"), "not_found", id=bulletin_id)
        owner = session.get(Zone, bulletin.zone_id) if bulletin.zone_id else None
        if owner is not None and owner.kind != ZoneKind.PROVINCE.value:
            raise Conflict(
                "bulletin",
                N_("Bản tin “%(title)s” là bản tin của %(zone)s, không phải của tỉnh."),
                "not_province",
                title=bulletin.title,
                zone=owner.name,
            )
        return bulletin

    @staticmethod
    def _approve_by_sending(session: Session, user: User, bulletin: Bulletin) -> None:
        """The writer who may approve their own bulletins publishes it by sending it down."""
        if bulletin.status == BulletinStatus.APPROVED:
            return
        if bulletin.created_by_id != user.id or not permissions.allowed(
            user.role, Action.APPROVE_OWN_BULLETIN
        ):
            return  # check_playable refuses it
        bulletin.status = BulletinStatus.APPROVED.value
        bulletin.reviewed_by_id = user.id
        bulletin.reviewed_at = utcnow()
        audit.record(
            session,
            user,
            audit.Action.BULLETIN_APPROVE,
            f"bulletin:{bulletin.id}",
            {"comment": "Duyệt khi gửi xuống xã"},
        )

    @staticmethod
    def _chosen_communes(session: Session, user: User, commune_ids: object) -> list[Zone]:
        reachable = _communes(session, user)
        if commune_ids is None:
            if not reachable:
                raise ValidationError("communes", N_("không có xã nào để gửi tới"), "no_commune")
            return reachable
        if not isinstance(commune_ids, list | tuple):
            raise ValidationError(
                "communes", N_("phải là một danh sách mã (%(field)s)"), "not_a_list",
                field="communes",
            )  # fmt: skip
        chosen = zones.resolve_zones(session, commune_ids)
        allowed = {zone.id for zone in reachable}
        for zone in chosen:
            if zone.kind != ZoneKind.COMMUNE.value:
                raise ValidationError(
                    "communes", N_("“%(id)s” không phải là một xã"), "not_commune", id=zone.id
                )
            if zone.id not in allowed:
                raise PermissionDenied(
                    N_("người dùng “%(user)s” không được gửi bản tin tới “%(zone)s”"),
                    "zone_out_of_reach",
                    user=user.username,
                    zone=zone.id,
                )
        return chosen

    @staticmethod
    def _emergency(session: Session, user: User, bulletin: Bulletin, chosen: list[Zone]) -> int:
        """One emergency broadcast to the communes, sent as a commune's emergency is."""
        relay = bulletin.kind == ContentKind.RELAY
        broadcast = broadcasts.create_broadcast(
            session,
            text=bulletin.text,
            zone_list=chosen,
            priority=Priority.EMERGENCY,
            repeat=1,
            source="bulletin",
            created_by=user,
            title=bulletin.title,
            recording_sha256=bulletin.recording_sha256,
            content=ContentKind(bulletin.kind).content_type.value,
            relay_url=bulletin.relay_url if relay else None,
            duration_s=bulletin.duration_s if relay else None,
        )
        audit.record(
            session,
            user,
            audit.Action.SEND_BULLETIN,
            f"broadcast:{broadcast.id}",
            {"bulletin": bulletin.id, "zones": [zone.id for zone in chosen], "devices": []},
        )
        return broadcast.id

    def _head_next_run(
        self,
        session: Session,
        forward: BulletinForward,
        commune: Zone,
        bulletin_id: int,
        media: tuple[str | None, str, float],
        now: datetime,
    ) -> None:
        """Put a priority forward at the head of the commune's next run, after the priority
        items already there; with no run in the horizon it stays in the inbox."""
        horizon = timedelta(seconds=MANIFEST_HORIZON_S)
        run_at = commune_run(session, commune, now + timedelta(seconds=PRIORITY_LEAD_S), horizon)
        if run_at is None:
            _LOGGER.info("commune %s has no run in the horizon: forward %s waits",
                         commune.id, forward.id)  # fmt: skip
            return
        sha256, engine, airtime = media
        schedule = Schedule(
            bulletin_id=bulletin_id,
            kind=ScheduleKind.ONCE.value,
            run_at=run_at,
            zone_ids=[commune.id],
            device_ids=[],
            priority=Priority.PRIORITY.value,
            repeat=1,
            media_sha256=sha256,
            tts_engine=engine,
            airtime_s=airtime,
            created_by_id=forward.sent_by_id,
            created_at=now,
        )
        session.add(schedule)
        session.flush()
        heading = _heading(session, commune.id, run_at)
        forward.schedule_id = schedule.id
        forward.run_at = run_at
        forward.position = len(heading)
        forward.state = ForwardState.PLACED.value
        forward.decided_at = now
        session.flush()
        _space(session, [*heading, forward])

    def sent(self, user_id: int, limit: int = 50) -> list[SentBulletin]:
        """The bulletins sent down to the user's communes, newest first, each with every
        commune's state."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            ids = [zone.id for zone in _communes(session, user)]
            rows = list(
                session.scalars(
                    select(BulletinForward)
                    .where(BulletinForward.commune_id.in_(ids))
                    .order_by(BulletinForward.id.desc())
                )
            )
            order: list[int] = []
            grouped: dict[int, list[BulletinForward]] = {}
            for row in rows:
                if row.bulletin_id not in grouped:
                    order.append(row.bulletin_id)
                grouped.setdefault(row.bulletin_id, []).append(row)
            shown = order[:limit]
            tallies = settle_played(session, [row for b in shown for row in grouped[b]])
            return [_sent(grouped[b][0].bulletin, grouped[b], tallies) for b in shown]

    def unsent(self, user_id: int, limit: int = 20) -> list[BulletinRecord]:
        """The province's bulletins (written in the user's zone) not yet sent to any commune,
        newest first: written on the bulletins desk, sent from here."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            own = (
                Bulletin.zone_id.is_(None)
                if user.zone_id is None
                else Bulletin.zone_id == user.zone_id
            )
            sent = select(BulletinForward.id).where(BulletinForward.bulletin_id == Bulletin.id)
            query = (
                select(Bulletin)
                .where(own, ~sent.exists())
                .order_by(Bulletin.id.desc())
                .limit(limit)
            )
            return [BulletinRecord.of(row) for row in session.scalars(query)]

    def status(self, user_id: int, bulletin_id: int) -> SentBulletin:
        """One bulletin's state in each of the user's communes (none yet: never sent)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            bulletin = get_bulletin(session, bulletin_id)
            ids = [zone.id for zone in _communes(session, user)]
            rows = list(
                session.scalars(
                    select(BulletinForward)
                    .where(
                        BulletinForward.bulletin_id == bulletin_id,
                        BulletinForward.commune_id.in_(ids),
                    )
                    .order_by(BulletinForward.commune_id)
                )
            )
            if not rows and not zones.in_scope(session, user, bulletin.zone_id):
                raise NotFound(N_("không có bản tin %(id)s"), "not_found", id=bulletin_id)
            return _sent(bulletin, rows, settle_played(session, rows))

    # --- the commune -------------------------------------------------------------------------

    def inbox(self, user_id: int) -> Inbox:
        """What the province sent to the user's commune (all communes, installation-wide)."""
        now = utcnow()
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            communes = _inbox_communes(session, user)
            rows = list(
                session.scalars(
                    select(BulletinForward)
                    .where(BulletinForward.commune_id.in_([zone.id for zone in communes]))
                    .order_by(BulletinForward.id.desc())
                    .limit(500)
                )
            )
            tallies = settle_played(session, rows)
            waiting, decided = [], []
            heads: dict[tuple[str, datetime], list[BulletinForward]] = {}
            for row in rows:
                if row.state == ForwardState.RECEIVED:
                    waiting.append(_item(row, tallies))
                    continue
                upcoming = row.run_at is not None and row.run_at > now
                if row.priority == Priority.PRIORITY and upcoming and row.schedule_id:
                    assert row.run_at is not None
                    heads.setdefault((row.commune_id, row.run_at), []).append(row)
                if len(decided) < RECENT_LIMIT:
                    decided.append(_item(row, tallies))
            runs = [
                HeadedRun(
                    commune_id=commune_id,
                    commune=members[0].commune.name,
                    run_at=run_at,
                    items=tuple(
                        _item(row, tallies)
                        for row in sorted(members, key=lambda row: row.position or 0)
                    ),
                )
                for (commune_id, run_at), members in sorted(heads.items(), key=lambda kv: kv[0][1])
            ]
            places = [
                Choice(zone.id, zone.name)
                for commune in communes
                for zone in zones.subtree(commune)
                if zone.kind in (ZoneKind.COMMUNE.value, ZoneKind.VILLAGE.value)
            ]
            return Inbox(
                waiting=tuple(reversed(waiting)),
                runs=tuple(runs),
                decided=tuple(decided),
                places=tuple(places),
            )

    def forward(self, user_id: int, forward_id: int) -> InboxItem:
        """One forward, for its commune's staff (as the inbox shows it)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            return _item(row, settle_played(session, [row]))

    def head(self, user_id: int, forward_id: int) -> datetime:
        """Put a waiting priority bulletin (its commune had no run in the horizon when it came)
        at the head of the commune's next run now; returns that run's start. A Conflict when
        there is still none."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            self._expect_waiting(row, N_("đưa lên đầu lượt phát"))
            if row.priority != Priority.PRIORITY:
                raise Conflict(
                    "forward", N_("chỉ bản tin ưu tiên mới đứng đầu lượt phát"), "not_priority"
                )
            bulletin = row.bulletin
            relay = bulletin.kind == ContentKind.RELAY
            text, recording, relay_s = bulletin.text, bulletin.recording_sha256, bulletin.duration_s
            voice = zones.voice_for(session, [row.commune_id])
        media = (
            (None, ContentKind.RELAY.value, relay_s or 0.0)
            if relay
            else self._outbox.render_for_schedule(text, recording, 1, voice)
        )
        now = utcnow()
        with self._db.session() as session:
            sequences.hold(session, sequences.SCHEDULE_LOCK)
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            self._expect_waiting(row, N_("đưa lên đầu lượt phát"))
            self._head_next_run(session, row, row.commune, row.bulletin_id, media, now)
            if row.run_at is None:
                raise Conflict(
                    "forward",
                    N_(
                        "%(commune)s chưa có lượt phát nào trong 48 giờ tới: hãy xếp bản tin vào"
                        " một giờ phát."
                    ),
                    "no_run",
                    commune=row.commune.name,
                )
            row.decided_by_id = user.id
            run_at = row.run_at
            audit.record(
                session,
                user,
                audit.Action.FORWARD_PLACE,
                f"bulletin:{row.bulletin_id}",
                {"commune": row.commune_id, "schedule": row.schedule_id, "head": True},
            )
        self._programme_changed()
        return run_at

    def place(
        self,
        user_id: int,
        forward_id: int,
        run_at: object,
        zone_ids: object = None,
        repeat: object = 1,
    ) -> int:
        """Place a waiting bulletin in a slot of the commune's programme: a one-off schedule at
        the local time `run_at` on the commune (or the given zones of it), made by the scheduling
        desk (approval, overlap, who may target where). Returns the schedule's id."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            self._expect_waiting(row, N_("xếp lịch"))
            commune = row.commune
            wanted = [commune.id] if zone_ids in (None, [], ()) else zone_ids
            chosen = targets.resolve(session, wanted)
            inside = zones.subtree_ids(session, [commune])
            for zone in chosen.zones:
                if inside is not None and zone.id not in inside:
                    raise ValidationError(
                        "zones",
                        N_("“%(zone)s” không thuộc %(commune)s"),
                        "outside_commune",
                        zone=zone.name,
                        commune=commune.name,
                    )
            request = ScheduleRequest(
                bulletin_id=row.bulletin_id,
                kind=ScheduleKind.ONCE,
                zone_ids=chosen.zone_ids,
                priority=row.priority,
                repeat=repeat,  # type: ignore[arg-type]
                run_at=str(run_at or ""),
            )
        schedule_id = self._scheduling.schedule(user_id, request, forwarded=True)
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            schedule = session.get(Schedule, schedule_id)
            assert schedule is not None
            if row.state != ForwardState.RECEIVED:  # placed or declined meanwhile
                planning.end_schedule(session, schedule, utcnow())
                self._expect_waiting(row, N_("xếp lịch"))
            row.state = ForwardState.PLACED.value
            row.schedule_id = schedule_id
            row.run_at = schedule.run_at
            row.decided_by_id = user.id
            row.decided_at = utcnow()
            audit.record(
                session,
                user,
                audit.Action.FORWARD_PLACE,
                f"bulletin:{row.bulletin_id}",
                {"commune": row.commune_id, "schedule": schedule_id},
            )
        return schedule_id

    def withdraw(self, user_id: int, bulletin_id: int) -> list[int]:
        """Thu hồi: the province takes a bulletin back from its communes (a CAP Update or
        Cancel names the alert it came from). What still waits in an inbox or a programme is
        withdrawn (its runs leave the manifests) and an emergency still sounding is stopped;
        what played or was declined stays as it was. Returns the forwards withdrawn."""
        now = utcnow()
        stops: dict[int, tuple[list[str], list[str]]] = {}
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SEND_DOWN)
            bulletin = self._own_bulletin(session, user, bulletin_id)
            reachable = [zone.id for zone in _communes(session, user)]
            rows = list(
                session.scalars(
                    select(BulletinForward).where(
                        BulletinForward.bulletin_id == bulletin.id,
                        BulletinForward.commune_id.in_(reachable),
                        BulletinForward.state.in_(
                            [ForwardState.RECEIVED.value, ForwardState.PLACED.value]
                        ),
                    )
                )
            )
            settle_played(session, rows)  # what has played stays played
            rows = [row for row in rows if row.state != ForwardState.PLAYED.value]
            for row in rows:
                broadcast = session.get(Broadcast, row.broadcast_id or 0)
                if broadcast is not None and not broadcasts.has_ended(broadcast):
                    stops[broadcast.id] = (
                        list(broadcast.zone_ids),
                        list(broadcast.device_ids or []),
                    )
            if stops and not self._outbox.connected:
                raise ServiceUnavailable(N_("máy chủ này chạy không có kết nối MQTT"), "no_broker")
            ended = False
            for row in rows:
                schedule = session.get(Schedule, row.schedule_id or 0)
                if schedule is not None and schedule.ended_at is None:
                    planning.end_schedule(session, schedule, now)
                    ended = True
                row.state = ForwardState.WITHDRAWN.value
                row.decided_by_id = user.id
                row.decided_at = now
                row.reason = WITHDRAWN_REASON
            withdrawn = [row.id for row in rows]
            audit.record(
                session,
                user,
                audit.Action.WITHDRAW,
                f"bulletin:{bulletin.id}",
                {"forwards": withdrawn, "stopped": sorted(stops)},
            )
        for broadcast_id, (zone_ids, device_ids) in stops.items():
            self._outbox.stop(broadcast_id, zone_ids, device_ids, lambda _session, _row: None)
        if ended:
            self._programme_changed()
        _LOGGER.info(
            "bulletin %s withdrawn from forwards %s by %s", bulletin_id, withdrawn, user_id
        )
        return withdrawn

    def decline(self, user_id: int, forward_id: int, reason: object) -> None:
        """The commune does not play a normal bulletin, and says why (the province reads it)."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            text = _clean_reason(reason)
            self._expect_waiting(row, N_("từ chối"))
            if row.priority != Priority.NORMAL:
                raise Conflict(
                    "forward",
                    N_("Bản tin ưu tiên và khẩn cấp của tỉnh phải được phát, không từ chối được."),
                    "must_play",
                )
            row.state = ForwardState.DECLINED.value
            row.reason = text
            row.decided_by_id = user.id
            row.decided_at = utcnow()
            audit.record(
                session,
                user,
                audit.Action.FORWARD_DECLINE,
                f"bulletin:{row.bulletin_id}",
                {"commune": row.commune_id, "reason": text[:500]},
            )

    def reorder(self, user_id: int, forward_ids: object) -> None:
        """The commune's order of the priority items heading one run (every one of them, in the
        order they are to play); refused once the run has started."""
        with self._db.session() as session:
            accounts.require_user(session, user_id, Action.SCHEDULE)
        if not isinstance(forward_ids, list | tuple) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in forward_ids
        ):
            raise ValidationError(
                "order", N_("thứ tự phải là danh sách mã bản tin (số)"), "not_a_list"
            )
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            rows = [self._inbox_forward(session, user, int(item)) for item in forward_ids]
            if not rows:
                raise ValidationError("order", N_("hãy nêu các bản tin cần xếp"), "required")
            first = rows[0]
            if first.run_at is None or first.schedule_id is None or first.priority != "priority":
                raise Conflict(
                    "order", N_("chỉ xếp thứ tự được các bản tin ưu tiên đầu một lượt phát"),
                    "not_heading",
                )  # fmt: skip
            heading = _heading(session, first.commune_id, first.run_at)
            if sorted(row.id for row in rows) != sorted(row.id for row in heading):
                raise ValidationError(
                    "order",
                    N_("hãy nêu đúng và đủ các bản tin ưu tiên đầu lượt phát này"),
                    "incomplete",
                )
            if first.run_at <= utcnow():
                raise Conflict("order", N_("lượt phát này đã bắt đầu"), "started")
            for position, row in enumerate(rows):
                row.position = position
            _space(session, rows)
            audit.record(
                session,
                user,
                audit.Action.FORWARD_REORDER,
                f"zone:{first.commune_id}",
                {"order": [row.bulletin_id for row in rows]},
            )
        self._programme_changed()

    def move(self, user_id: int, forward_id: int, step: int) -> None:
        """Move one priority item up (-1) or down (+1) among those heading its run."""
        with self._db.session() as session:
            user = accounts.require_user(session, user_id, Action.SCHEDULE)
            row = self._inbox_forward(session, user, forward_id)
            if row.run_at is None:
                order = [row.id]
            else:
                order = [item.id for item in _heading(session, row.commune_id, row.run_at)]
        if row.id in order:
            index = order.index(row.id)
            target = min(max(index + step, 0), len(order) - 1)
            order.insert(target, order.pop(index))
        self.reorder(user_id, order)

    def _inbox_forward(self, session: Session, user: User, forward_id: int) -> BulletinForward:
        row = session.get(BulletinForward, forward_id)
        if row is None or row.commune_id not in {z.id for z in _inbox_communes(session, user)}:
            raise NotFound(N_("không có bản tin %(id)s"), "not_found", id=forward_id)
        return row

    @staticmethod
    def _expect_waiting(row: BulletinForward, verb: str) -> None:
        if row.state != ForwardState.RECEIVED:
            raise Conflict(
                "forward",
                N_("Không thể %(verb)s: bản tin này đang ở trạng thái “%(state)s”."),
                "wrong_state",
                verb=verb,
                state=state_label(row.state),
            )


@dataclass
class _Tally:
    """A forward's deliveries to its commune's receivers, over all its broadcasts."""

    deliveries: int = 0
    finished: int = 0
    open: int = 0
    last_finished: datetime | None = None


def _tallies(session: Session, rows: Sequence[BulletinForward]) -> dict[int, _Tally]:
    """Per forward id: its deliveries in its commune, in four queries whatever the number of
    forwards, receivers or communes (the zone tree, the runs of the schedules, the deliveries
    grouped by broadcast, zone and state)."""
    tallies = {row.id: _Tally() for row in rows}
    schedule_ids = {row.schedule_id for row in rows if row.schedule_id and not row.broadcast_id}
    runs: dict[int, list[int]] = {}
    if schedule_ids:
        for broadcast_id, schedule_id in session.execute(
            select(Broadcast.id, Broadcast.schedule_id).where(
                Broadcast.schedule_id.in_(schedule_ids)
            )
        ):
            runs.setdefault(schedule_id, []).append(broadcast_id)
    wanted: dict[tuple[int, str], list[int]] = {}  # (broadcast, commune) → forward ids
    for row in rows:
        if row.broadcast_id is not None:
            ids = [row.broadcast_id]
        else:
            ids = runs.get(row.schedule_id or 0, [])
        for broadcast_id in ids:
            wanted.setdefault((broadcast_id, row.commune_id), []).append(row.id)
    if not wanted:
        return tallies
    communes = {row.commune_id for row in rows}
    parents: dict[str, str | None] = {
        zone_id: parent_id
        for zone_id, parent_id in session.execute(select(Zone.id, Zone.parent_id))
    }
    commune_of: dict[str, str | None] = {}

    def find(zone_id: str) -> str | None:
        if zone_id not in commune_of:
            current: str | None = zone_id
            seen: set[str] = set()
            while current is not None and current not in communes and current not in seen:
                seen.add(current)
                current = parents.get(current)
            commune_of[zone_id] = current
        return commune_of[zone_id]

    query = (
        select(
            Delivery.broadcast_id,
            Device.zone_id,
            Delivery.state,
            func.count(),
            func.max(func.coalesce(Delivery.finished_at, Delivery.updated_at)),
        )
        .join(Device, Delivery.device_id == Device.id)
        .where(Delivery.broadcast_id.in_({broadcast_id for broadcast_id, _ in wanted}))
        .group_by(Delivery.broadcast_id, Device.zone_id, Delivery.state)
    )
    for broadcast_id, zone_id, state, count, last in session.execute(query):
        commune = find(zone_id)
        for forward_id in wanted.get((broadcast_id, commune or ""), []):
            tally = tallies[forward_id]
            tally.deliveries += count
            if state not in FINAL_DELIVERY_STATES:
                tally.open += count
            if state == DeliveryState.FINISHED:
                tally.finished += count
                if last is not None and (tally.last_finished is None or last > tally.last_finished):
                    tally.last_finished = last
    return tallies


def settle_played(session: Session, rows: Iterable[BulletinForward]) -> dict[int, _Tally]:
    """Mark `played` the placed forwards the commune's receivers have finished: every delivery
    ended and at least one finished (when it is read: the province's lists, the inbox; a
    report counting played ones calls it first). Returns each forward's deliveries."""
    listed = list(rows)
    tallies = _tallies(session, listed)
    for row in listed:
        tally = tallies[row.id]
        if row.state == ForwardState.PLACED and tally.finished and not tally.open:
            row.state = ForwardState.PLAYED.value
            row.played_at = tally.last_finished
    return tallies


def forward_counts(
    session: Session, commune_ids: Collection[str], start: datetime, end: datetime
) -> dict[str, tuple[int, int, int]]:
    """Per commune: the province bulletins sent to it in [start, end) that it played, still
    holds (received, or placed and not yet played) and declined. The placed ones are settled
    first (`settle_played`: queries per unsettled forward, none per receiver), then one
    GROUP BY commune, state counts them (the province report's figures)."""
    ids = list(commune_ids)
    if not ids:
        return {}
    window = (
        BulletinForward.commune_id.in_(ids),
        BulletinForward.sent_at >= start,
        BulletinForward.sent_at < end,
    )
    settle_played(
        session,
        session.scalars(
            select(BulletinForward).where(*window, BulletinForward.state == ForwardState.PLACED)
        ).all(),
    )
    session.flush()
    counts: dict[str, list[int]] = {}
    query = (
        select(BulletinForward.commune_id, BulletinForward.state, func.count())
        .where(*window)
        .group_by(BulletinForward.commune_id, BulletinForward.state)
    )
    for commune_id, state, count in session.execute(query):
        row = counts.setdefault(commune_id, [0, 0, 0])
        if state == ForwardState.PLAYED:
            row[0] += count
        elif state == ForwardState.DECLINED:
            row[2] += count
        elif state != ForwardState.WITHDRAWN:  # taken back: neither held nor the commune's no
            row[1] += count
    return {commune_id: (row[0], row[1], row[2]) for commune_id, row in counts.items()}


def _clean_reason(reason: object) -> str:
    if not isinstance(reason, str | None):
        raise ValidationError("reason", N_("lý do phải là văn bản"), "not_text")
    text = (reason or "").strip()
    if not text:
        raise ValidationError("reason", N_("Cần ghi lý do từ chối."), "required")
    if len(text) > MAX_REASON_CHARS:
        raise ValidationError(
            "reason", N_("Lý do dài quá %(max)s ký tự."), "too_long", max=MAX_REASON_CHARS
        )
    return text


def _communes(session: Session, user: User, action: Action = Action.SEND_DOWN) -> list[Zone]:
    """The communes where `user` may do `action`, by name."""
    found = [z for z in zones.zones_for(session, user, action) if z.kind == ZoneKind.COMMUNE]
    return sorted(found, key=lambda zone: (zone.name, zone.id))


def _inbox_communes(session: Session, user: User) -> list[Zone]:
    return _communes(session, user, Action.SCHEDULE)


def _heading(session: Session, commune_id: str, run_at: datetime) -> list[BulletinForward]:
    """The priority forwards heading the commune's run at `run_at`, in their order."""
    query = select(BulletinForward).where(
        BulletinForward.commune_id == commune_id,
        BulletinForward.run_at == run_at,
        BulletinForward.priority == Priority.PRIORITY.value,
        BulletinForward.schedule_id.is_not(None),
        BulletinForward.position.is_not(None),
        BulletinForward.state.in_([ForwardState.PLACED.value, ForwardState.PLAYED.value]),
    )
    return sorted(session.scalars(query), key=lambda row: (row.position or 0, row.id))


def _space(session: Session, rows: Sequence[BulletinForward]) -> None:
    """Start the k items heading a run at T − k ms … T − 1 ms, in their order: each schedule's
    run and its planned row (if the leader made it already) move together."""
    count = len(rows)
    for index, row in enumerate(rows):
        assert row.run_at is not None
        at = row.run_at - HEAD_STEP * (count - index)
        schedule = session.get(Schedule, row.schedule_id or 0)
        if schedule is None or schedule.run_at is None:
            continue
        shift = at - schedule.run_at
        for planned in session.scalars(
            select(Broadcast).where(
                Broadcast.schedule_id == schedule.id,
                Broadcast.status == BroadcastStatus.SCHEDULED.value,
            )
        ):
            assert planned.play_at is not None and planned.valid_until is not None
            planned.occurrence_at = at
            planned.play_at = at
            planned.valid_until = planned.valid_until + shift
        schedule.run_at = at
    session.flush()


def _status(row: BulletinForward, tallies: dict[int, _Tally]) -> CommuneStatus:
    tally = tallies.get(row.id) or _Tally()
    return CommuneStatus(
        forward_id=row.id,
        bulletin_id=row.bulletin_id,
        commune_id=row.commune_id,
        commune=row.commune.name,
        priority=row.priority,
        state=row.state,
        run_at=row.run_at,
        position=row.position,
        schedule_id=row.schedule_id,
        broadcast_id=row.broadcast_id,
        reason=row.reason,
        decided_by=row.decided_by.username if row.decided_by else "",
        decided_at=row.decided_at,
        played_at=row.played_at,
        deliveries=tally.deliveries,
        finished=tally.finished,
        rate=tally.finished / tally.deliveries if tally.deliveries else None,
    )


def _item(row: BulletinForward, tallies: dict[int, _Tally]) -> InboxItem:
    return InboxItem(
        status=_status(row, tallies),
        bulletin=BulletinRecord.of(row.bulletin),
        sent_by=row.sent_by.username if row.sent_by else "",
        sent_at=row.sent_at,
    )


def _sent(
    bulletin: Bulletin, rows: Sequence[BulletinForward], tallies: dict[int, _Tally]
) -> SentBulletin:
    counts = {state.value: 0 for state in ForwardState}
    statuses = []
    for row in sorted(rows, key=lambda row: row.commune.name):
        counts[row.state] = counts.get(row.state, 0) + 1
        statuses.append(_status(row, tallies))
    first = min(rows, key=lambda row: row.sent_at) if rows else None
    return SentBulletin(
        bulletin=BulletinRecord.of(bulletin),
        sent_at=first.sent_at if first else None,
        sent_by=first.sent_by.username if first and first.sent_by else "",
        communes=tuple(statuses),
        counts=counts,
    )
