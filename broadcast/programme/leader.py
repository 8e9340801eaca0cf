"""The leader's work: what only the process holding the scheduler lock does.

Plans every run up to the manifest horizon (`broadcast.programme.planning`), gives the scheduler
one job per run, fires runs and records missed ones, publishes each receiver's signed 48 h manifest
when it changed (and all of them after the broker lost its retained messages), and sweeps the
delivery records for commands to send again (`broadcast.sending.redelivery`).

Other processes learn of a change through the programme revision (`broadcast.store.sequences`):
`tick()` notices it and plans again.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime

from broadcast import clock
from broadcast.const import BroadcastStatus, ContentKind
from broadcast.errors import LoaError
from broadcast.people import zones
from broadcast.programme import manifests, planning
from broadcast.programme.jobs import Scheduler
from broadcast.sending import broadcasts, redelivery
from broadcast.sending.dispatcher import Dispatcher
from broadcast.settings import Settings
from broadcast.store import sequences
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Schedule, utcnow
from wire import protocol

_LOGGER = logging.getLogger(__name__)

MANIFEST_JOB = "manifests"
REDELIVERY_JOB = "redelivery"
MANIFEST_BATCH = 100  # manifests published under one hold of the publish lock
# how long a receiver may go on reporting an older manifest than the one published to it
# (its state comes every 30 s and on each change) before it is sent the latest again
MANIFEST_CATCH_UP_S = 20.0
REDELIVERY_BATCH = 100  # re-sent commands likewise

# (text, recording, repeat, voice) → (media sha256, engine, airtime)
ScheduleRenderer = Callable[[str, str | None, int, str], tuple[str, str, float]]


class ProgrammeLeader:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        dispatcher: Callable[[], Dispatcher | None],
        render_for_schedule: ScheduleRenderer,
    ) -> None:
        self.settings = settings
        self.db = db
        self._dispatcher = dispatcher
        self._render_for_schedule = render_for_schedule
        self.scheduler = Scheduler(self._fire_run, self._run_missed, settings.misfire_grace_s)
        self.redeliveries = redelivery.Redeliveries(settings.redelivery)
        self._refresh_lock = threading.Lock()
        self._seen_revision = -1
        self._seen_epoch = -1
        self._republish_manifests = threading.Event()
        self._redeliver_lock = threading.Lock()  # one pass at a time: attempts are counted
        # What time the re-delivery sweeps go by (UTC, naive); a test replaces it to own time.
        self.clock: Callable[[], datetime] = utcnow

    def elected(self) -> None:
        """This process just took the scheduler lock."""
        self.scheduler.start()
        dispatcher = self._dispatcher()
        if dispatcher is not None:
            dispatcher.listen()
        self.scheduler.every(MANIFEST_JOB, self.settings.manifest_refresh_s, self._refresh_quietly)
        self.scheduler.every(REDELIVERY_JOB, self.settings.redelivery_sweep_s, self.sweep)
        self.refresh(force_manifests=True)

    def stop(self) -> None:
        self.scheduler.stop()

    def paused(self) -> None:
        """The lock went with the database connection: fire nothing until it is taken again
        (another process may take it first)."""
        self.scheduler.pause()

    def resumed(self) -> None:
        """The lock is ours again, on a database that may have changed (a promoted standby):
        plan again and publish every manifest."""
        self.scheduler.resume()
        self.refresh(force_manifests=True)

    def tick(self) -> None:
        """Another process changed the programme: plan and publish again. A new sequence epoch
        (`loa keys rotate`): publish every manifest, so each manifest stream that a receiver
        refuses as stale gets a message of the new epoch at once."""
        epoch = sequences.current_value(self.db.engine, sequences.EPOCH)
        revision = sequences.current_value(self.db.engine, sequences.PROGRAMME_REVISION)
        if epoch != self._seen_epoch:
            self.refresh(force_manifests=True)
        elif revision != self._seen_revision:
            self.refresh()

    def broker_restored(self) -> None:
        """The broker came back, maybe without its retained manifests: publish them all on the
        next sweep (not here: this runs on the MQTT network thread)."""
        self._republish_manifests.set()

    def device_returned(self, device_id: str) -> None:
        self.redeliveries.device_returned(device_id)

    # --- planning and manifests ---------------------------------------------------------------

    def refresh(self, force_manifests: bool = False) -> None:
        """Plan every run up to the horizon, give the scheduler its jobs, publish the manifests
        that changed (all of them when `force_manifests`)."""
        with self._refresh_lock:
            self._seen_revision = sequences.current_value(
                self.db.engine, sequences.PROGRAMME_REVISION
            )
            self._seen_epoch = sequences.current_value(self.db.engine, sequences.EPOCH)
            self._render_unrendered()
            with self.db.session() as session:
                result = planning.plan(
                    session,
                    now=utcnow(),
                    horizon_s=self.settings.manifest_horizon_s,
                    grace_s=self.settings.misfire_grace_s,
                    item_valid_s=self.settings.item_valid_s,
                )
            if result.created:
                _LOGGER.info("planned %d runs", len(result.created))
            self.scheduler.sync_runs(result.due)
            self._publish_manifests(force_manifests)

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:
            _LOGGER.exception("periodic planning and manifest publishing failed")

    def _render_unrendered(self) -> None:
        """Schedules made before media was rendered at scheduling time get it now."""
        with self.db.session() as session:
            waiting = [
                (
                    s.id, s.bulletin.text, s.bulletin.recording_sha256, s.repeat,
                    zones.voice_for(session, s.zone_ids, s.device_ids or []),
                )
                for s in planning.plannable(session)
                if s.media_sha256 is None and s.bulletin.kind != ContentKind.RELAY
            ]  # fmt: skip
        for schedule_id, text, recording, repeat, voice in waiting:
            try:
                sha256, engine, airtime = self._render_for_schedule(text, recording, repeat, voice)
            except Exception:
                _LOGGER.exception("could not render the media of schedule %s", schedule_id)
                continue
            with self.db.session() as session:
                schedule = session.get(Schedule, schedule_id)
                if schedule is not None:
                    schedule.media_sha256, schedule.tts_engine = sha256, engine
                    schedule.airtime_s = airtime

    def _publish_manifests(self, force: bool, also: Collection[str] = ()) -> None:
        dispatcher = self._dispatcher()
        if dispatcher is None:
            return
        now = utcnow()
        with self.db.session() as session:
            waiting = manifests.pending(
                session,
                now=now,
                horizon_s=self.settings.manifest_horizon_s,
                media_url=self.settings.media_url,
                force=force,
                also=also,
            )
        # in batches (one transaction for their numbers, their PUBACKs awaited together), small
        # enough that an emergency waiting for the publish lock is not held up long
        for start in range(0, len(waiting), MANIFEST_BATCH):
            batch = waiting[start : start + MANIFEST_BATCH]
            try:
                sent = dispatcher.send_many(
                    [(protocol.device_manifest_topic(m.device_id), m.body) for m in batch],
                    ttl_s=self.settings.manifest_horizon_s,
                    retain=True,
                )
            except LoaError as exc:
                # not marked: the next refresh publishes them again (a newer copy is harmless)
                names = ", ".join(m.device_id for m in batch[:5]) + ("…" if len(batch) > 5 else "")
                _LOGGER.error("%d manifests (%s) not published: %s", len(batch), names, exc)
                continue
            with self.db.session() as session:
                manifests.mark_published(session, batch, now, [c.seq for c in sent])
        if waiting:
            _LOGGER.info(
                "published %d manifests (%s)",
                len(waiting),
                ", ".join(f"{m.device_id}: {len(m.body.items)} items" for m in waiting),
            )

    # --- runs ---------------------------------------------------------------------------------

    def _fire_run(self, broadcast_id: int) -> None:
        """A planned run is due: receivers play it from their manifests; the log records it."""
        with self.db.session() as session:
            row = session.get(Broadcast, broadcast_id)
            if row is None:
                return
            fired = broadcasts.mark_due(row)
            status, schedule_id = row.status, row.schedule_id
        if fired:
            _LOGGER.info("schedule %s fired: broadcast %s", schedule_id, broadcast_id)
        else:
            _LOGGER.info("broadcast %s not fired: it is %s", broadcast_id, status)

    def _run_missed(self, broadcast_id: int, at: datetime) -> None:
        with self.db.session() as session:
            row = session.get(Broadcast, broadcast_id)
            if row is not None and broadcasts.mark_missed(row, planning.NOT_RUNNING):
                _LOGGER.warning(
                    "missed run: broadcast %s of schedule %s at %s (local)",
                    broadcast_id,
                    row.schedule_id,
                    clock.format_local(at),
                )

    # --- answer-back that never came ----------------------------------------------------------

    def sweep(self) -> None:
        """Send again what receivers have not answered; close what nobody will answer."""
        try:
            if self._republish_manifests.is_set():
                self._republish_manifests.clear()
                self.refresh(force_manifests=True)
            self.catch_up_manifests()
            self.redeliver()
        except Exception:
            _LOGGER.exception("re-sending unanswered commands failed")

    def catch_up_manifests(self) -> None:
        """Send the latest manifest again to receivers still reporting an older one."""
        with self.db.session() as session:
            behind = manifests.lagging(session, utcnow(), MANIFEST_CATCH_UP_S)
        if not behind:
            return
        _LOGGER.warning(
            "%d receivers still report an older manifest: sending it again (%s)",
            len(behind),
            ", ".join(behind[:5]) + ("…" if len(behind) > 5 else ""),
        )
        with self._refresh_lock:
            self._publish_manifests(False, also=behind)

    def redeliver(self) -> None:
        """One pass of `broadcast.sending.redelivery` at `self.clock()`."""
        with self._redeliver_lock:
            self._redeliver(self.clock())

    def _redeliver(self, now: datetime) -> None:
        dispatcher = self._dispatcher()
        with self.db.session() as session:
            due = self.redeliveries.sweep(session, now)
        if dispatcher is None or not dispatcher.connected:
            return
        # a batch per broadcast (the same body to each receiver's topic), of at most
        # REDELIVERY_BATCH, so a province's receivers back from a broker restart are not sent
        # one PUBACK at a time
        for batch in _batches(due):
            first, devices = batch[0], [resend.device_id for resend in batch]
            with dispatcher.exclusive():  # a cancel cannot slip in between check and send
                with self.db.session() as session:
                    row = session.get(Broadcast, first.broadcast_id)
                    body = None if row is None else _body_for(row, first.action, self.settings)
                if body is None:
                    continue
                try:
                    dispatcher.send_many(
                        [(protocol.device_command_topic(device), body) for device in devices],
                        ttl_s=_ttl_for(body),
                    )
                except LoaError as exc:
                    _LOGGER.warning("could not re-send to %s: %s", ", ".join(devices), exc)
                    return
            for resend in batch:
                self.redeliveries.sent(resend, now)
            _LOGGER.info(
                "re-sent %s of broadcast %s to %s (no answer yet)",
                first.action.value,
                first.broadcast_id,
                ", ".join(devices),
            )


def _batches(due: list[redelivery.Resend]) -> Iterator[list[redelivery.Resend]]:
    """The resends in runs of the same broadcast and action, at most REDELIVERY_BATCH each."""
    for _key, run in itertools.groupby(due, key=lambda r: (r.broadcast_id, r.action)):
        resends = list(run)
        for start in range(0, len(resends), REDELIVERY_BATCH):
            yield resends[start : start + REDELIVERY_BATCH]


def _body_for(
    row: Broadcast, action: redelivery.Action, settings: Settings
) -> protocol.Body | None:
    """What to send again, checked against the broadcast as it is now."""
    cancelled = row.status == BroadcastStatus.CANCELLED.value
    if action is redelivery.Action.STOP:
        return protocol.StopBody(broadcast_id=row.id) if cancelled else None
    if cancelled or row.play_at is None or row.valid_until is None:
        return None
    carried = broadcasts.sent_media(row)
    return broadcasts.play_body(
        row,
        media_sha256=carried,
        media_url=settings.media_url(carried) if carried else "",
        play_at=clock.to_timestamp(row.play_at),
        valid_until=clock.to_timestamp(row.valid_until),
    )


def _ttl_for(body: protocol.Body) -> float:
    if isinstance(body, protocol.PlayBody) and body.valid_until is not None:
        return max(protocol.DEFAULT_COMMAND_TTL_S, body.valid_until - time.time() + 60)
    return protocol.DEFAULT_COMMAND_TTL_S
