"""The receiver's conductor: plays the programme at its times from the device's own clock.

One thread (the conductor) owns every decision; the others only report and wake it:

* the MQTT thread adds play commands, manifests and stops (`play`, `manifest`, `stop_broadcast`);
* the prefetch thread (`devices.prefetch`) says when media is in the cache or failed;
* a play thread per item (`devices.playback`) says when audio started and how it ended.

On each wake-up the conductor expires what is too late, cuts a playing item for a due emergency,
starts the best due item (switching the amplifier on `warmup_s` before its start), switches the
amplifier off when idle, keeps the programme on disk and publishes the receiver's state when it
changed or every `heartbeat_s`. The rules of what plays when are `devices.timeline`'s.

Answer-back, per item: `received`; `fetched` (media in the cache: "downloaded" or "cached");
`started` (`at` = the moment audio started); then `finished`, or `failed` with a detail
(`expired`, `stopped`, `withdrawn`, `preempted` under the drop policy, a download or player
error), or `preempted` (cut by an emergency; under the resume policy it starts again from its
beginning later, with `started` again, while it is still valid). At shutdown an item on air is
reported `preempted` / "receiver shutting down": it plays again after the restart if still valid.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from devices.amplifier import Amplifier
from devices.cache import CacheError, MediaCache
from devices.heartbeat import Snapshot
from devices.mixer import Mixer
from devices.playback import CutReason, Outcome, Run, launch
from devices.players import Player
from devices.prefetch import Prefetcher
from devices.store import ReceiverStore
from devices.timeline import EXPIRED, STOPPED, WITHDRAWN, Item, Note, Timeline
from wire.protocol import (
    Command,
    EventKind,
    ManifestBody,
    PlayBody,
    ReceiverState,
    StopBody,
)

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

START_LEAD_S = 0.3  # a run is launched this long before its start, then fine-waits
MAX_SLEEP_S = 1.0  # the conductor looks at the clock at least this often
_JOIN_TIMEOUT_S = 5.0


class Report(Protocol):
    """Publishes one answer-back event."""

    def __call__(
        self,
        command_id: str,
        broadcast_id: int | None,
        item_id: str,
        kind: EventKind,
        detail: str = "",
        at: float | None = None,
    ) -> None: ...


class Scheduler:
    """The programme of one receiver and the threads that play it."""

    def __init__(
        self,
        device_id: str,
        *,
        cache: MediaCache,
        player: Player,
        amplifier: Amplifier,
        mixer: Mixer,
        store: ReceiverStore,
        report: Report,
        publish_status: Callable[[Snapshot], None],
        preempt_policy: str = "resume",
        heartbeat_s: float = 30.0,
        http_timeout_s: float = 30.0,
    ) -> None:
        self.device_id = device_id
        self._cache = cache
        self._player = player
        self._amplifier = amplifier
        self._mixer = mixer
        self._store = store
        self._report = report
        self._publish_status = publish_status
        self._resume = preempt_policy == "resume"
        self._heartbeat_s = heartbeat_s
        self._timeline = Timeline(store.load_memory())
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._run: Run | None = None
        self._fetch_errors: dict[str, CacheError] = {}
        self._last: Snapshot | None = None
        self._next_heartbeat = 0.0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._prefetcher = Prefetcher(
            device_id,
            cache,
            http_timeout_s,
            wanted=self._media_wanted,
            kept=self._media_kept,
            on_ready=self._media_ready,
            on_failed=self._media_failed,
            on_busy=self.wake,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._mixer.apply()
        self._prefetcher.start()
        self._thread = threading.Thread(
            target=self._conduct, name=f"loa-conductor-{self.device_id}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """The conductor thread is alive (the watchdog pings systemd only while it is)."""
        return self._thread is not None and self._thread.is_alive() and not self._closing

    def close(self) -> None:
        """Cut what plays (it resumes after a restart), stop the threads, save the programme."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            run = self._run
            if run is not None:
                run.cut(CutReason.SHUTDOWN)
        self.wake()
        self._prefetcher.close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
        if run is not None and run.thread is not None:
            run.thread.join(_JOIN_TIMEOUT_S)
        with self._lock:
            if run is not None and self._run is run:
                self._settle(run, time.time())
            self._run = None
            memory, commands = self._timeline.memory(), self._timeline.command_items()
        self._store.save_memory(memory)
        self._store.save_commands(commands)
        self._amplifier.close()

    def wake(self) -> None:
        self._wake.set()

    # --- what arrives (MQTT thread) -------------------------------------------------------------

    def play(
        self,
        command: Command,
        body: PlayBody,
        *,
        payload: str = "",
        topic: str = "",
        restored: bool = False,
    ) -> None:
        with self._lock:
            notes = self._timeline.add_play(
                command, body, time.time(), restored=restored, payload=payload, topic=topic
            )
            self._emit_all(notes)
        self._prefetcher.wake()
        self.wake()

    def manifest(self, command: Command, body: ManifestBody, *, restored: bool = False) -> None:
        with self._lock:
            notes = self._timeline.set_manifest(command, body, time.time(), restored=restored)
            self._emit_all(notes)
        _LOGGER.info(
            "%s: %s manifest %s (seq %d, %d items)",
            self.device_id,
            "resumed" if restored else "accepted",
            command.id,
            command.seq,
            len(body.items),
        )
        self._prefetcher.wake()
        self.wake()

    def stop_broadcast(self, command: Command, body: StopBody) -> None:
        """End the broadcast's (or every) item: on air, queued, and in the manifest."""
        target = body.broadcast_id
        with self._lock:
            self._report(command.id, target, "", EventKind.RECEIVED, "stop")
            self._emit_all(self._timeline.stop(target, command.issued_at, time.time()))
            run = self._run
            if run is not None and self._timeline.stop_covers(run.item, target, command.issued_at):
                run.cut(CutReason.STOPPED)
        self.wake()

    # --- reading --------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot()

    # --- media (prefetch thread) ----------------------------------------------------------------

    def _media_wanted(self) -> list[tuple[str, str]]:
        with self._lock:
            seen: dict[str, str] = {}
            for item in self._timeline.media_wanted():
                seen.setdefault(item.body.media_sha256, item.body.media_url)
            return list(seen.items())

    def _media_kept(self) -> set[str]:
        with self._lock:
            return self._timeline.media_kept()

    def _media_ready(self, sha: str, downloaded: bool) -> None:
        detail = "downloaded" if downloaded else "cached"
        with self._lock:
            self._fetch_errors.pop(sha, None)
            for item in self._timeline.items():
                if item.wants_media and item.body.media_sha256 == sha and not item.fetched:
                    item.fetched = True
                    self._emit(Note(item, EventKind.FETCHED, detail))
        self.wake()

    def _media_failed(self, sha: str, error: CacheError) -> None:
        with self._lock:
            self._fetch_errors[sha] = error
        self.wake()

    # --- the conductor --------------------------------------------------------------------------

    def _conduct(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                now = time.time()
                try:
                    actions = self._step(now)
                except Exception:
                    _LOGGER.exception("%s: scheduler step failed unexpectedly", self.device_id)
                    actions = []
                timeout = self._timeout(now)
            for action in actions:
                try:
                    action()
                except Exception:
                    _LOGGER.exception("%s: scheduler action failed", self.device_id)
            self._wake.wait(timeout)
            self._wake.clear()

    def _step(self, now: float) -> list[Callable[[], object]]:
        """Every decision for this moment; returns the slow work to do outside the lock."""
        timeline, amplifier = self._timeline, self._amplifier
        actions: list[Callable[[], object]] = []
        run = self._run
        if run is not None:
            if self._announce(run, now) and run.outcome is not None:
                playing = self._snapshot()  # over already: the server still sees it played
                self._last = playing
                actions.append(lambda: self._publish_status(playing))
            if run.outcome is not None:
                self._settle(run, now)
                run = self._run = None
        self._emit_all(timeline.expire(now))
        self._fail_unfetchable(now)
        playable = self._playable()
        if run is not None:
            self._maybe_cut(run, now, playable)
            amplifier.touch(now)
        else:
            upcoming = timeline.next_item(now, START_LEAD_S + amplifier.warmup_s, playable)
            if upcoming is not None and amplifier.switch_on(now):
                actions.append(self._mixer.apply)
            item = timeline.next_item(now, START_LEAD_S, playable)
            if item is not None:
                self._begin(item, now)
            elif upcoming is None and amplifier.is_on:
                off_at = amplifier.off_due_at()
                if off_at is not None and now >= off_at:
                    amplifier.switch_off(now)
        actions.extend(self._persistence())
        kept = timeline.media_kept()
        self._cache.pin(kept)
        for sha in [sha for sha in self._fetch_errors if sha not in kept]:
            del self._fetch_errors[sha]
        snapshot = self._snapshot()
        if snapshot.changed_from(self._last) or now >= self._next_heartbeat:
            self._last = snapshot
            self._next_heartbeat = now + self._heartbeat_s
            actions.append(lambda: self._publish_status(snapshot))
        return actions

    def _begin(self, item: Item, now: float) -> None:
        start_at = max(item.ready_at, self._amplifier.ready_at(now), now)
        if start_at > item.deadline:  # the amplifier's warm-up would make it start too late
            self._timeline.drop(item, now, EXPIRED)
            self._emit(Note(item, EventKind.FAILED, EXPIRED))
            self.wake()  # look at the next one at once
            return
        self._timeline.begin(item)
        run = Run(item, start_at)
        self._run = run
        launch(run, self.device_id, self._cache, self._player, self.wake)

    def _maybe_cut(self, run: Run, now: float, playable: set[str]) -> None:
        """Defer a run not yet started for something better; cut one on air for an emergency."""
        if run.cancel.is_set():
            return
        timeline = self._timeline
        if not run.started:
            better = timeline.next_item(now, START_LEAD_S, playable)
            if better is not None and better.sort_key() < run.item.sort_key():
                run.cut(CutReason.DEFERRED)
            return
        emergency = timeline.preemptor(run.item, now, START_LEAD_S, playable)
        if emergency is None:
            return
        if run.cut(CutReason.PREEMPTED):
            _LOGGER.info(
                "%s: %s cut by the emergency %s",
                self.device_id,
                run.item.describe(),
                emergency.describe(),
            )
            self._emit(Note(run.item, EventKind.PREEMPTED, f"by {emergency.describe()}"))

    def _announce(self, run: Run, now: float) -> bool:
        """Report `started` once, with the moment audio really started; True if it did now."""
        if run.started_at is None or run.announced:
            return False
        run.announced = True
        self._amplifier.touch(now)
        self._emit(Note(run.item, EventKind.STARTED), at=run.started_at)
        return True

    def _settle(self, run: Run, now: float) -> None:
        """What a run's end means for its item."""
        self._announce(run, now)
        timeline, item = self._timeline, run.item
        if run.outcome is Outcome.FINISHED:
            _LOGGER.info("%s: played %s", self.device_id, item.describe())
            self._emit(Note(item, EventKind.FINISHED))
            timeline.end(item, now)
        elif run.outcome is Outcome.FAILED:
            _LOGGER.warning("%s: %s failed: %s", self.device_id, item.describe(), run.detail)
            self._emit(Note(item, EventKind.FAILED, run.detail))
            timeline.end(item, now, EventKind.FAILED, run.detail)
        elif run.outcome is Outcome.MISSING:
            item.fetched = False
            self._requeue(item, preempted=False)
            self._prefetcher.wake()
        elif run.reason is CutReason.STOPPED:
            self._emit(Note(item, EventKind.FAILED, STOPPED))
            timeline.end(item, now, EventKind.FAILED, STOPPED)
        elif run.reason is CutReason.PREEMPTED and run.started_at is not None:
            if self._resume:
                self._requeue(item, preempted=True)
            else:
                self._emit(Note(item, EventKind.FAILED, CutReason.PREEMPTED.value))
                timeline.end(item, now, EventKind.FAILED, CutReason.PREEMPTED.value)
        elif run.reason is CutReason.SHUTDOWN and run.started_at is not None:
            self._emit(Note(item, EventKind.PREEMPTED, CutReason.SHUTDOWN.value))
            self._requeue(item, preempted=False)
        else:  # cut before it started (deferred, or shutdown): it simply waits again
            self._requeue(item, preempted=False)
        self._amplifier.touch(now)

    def _requeue(self, item: Item, *, preempted: bool) -> None:
        if not self._timeline.requeue(item, preempted=preempted):
            self._emit(Note(item, EventKind.FAILED, WITHDRAWN))

    def _fail_unfetchable(self, now: float) -> None:
        """A due item whose media can never be fetched (wrong bytes, missing file) fails now."""
        for item in self._timeline.due(now):
            if not item.needs_media or item.fetched:
                continue
            error = self._fetch_errors.get(item.body.media_sha256)
            if error is not None and error.permanent:
                self._timeline.drop(item, now, error.detail)
                _LOGGER.warning("%s: %s failed: %s", self.device_id, item.describe(), error.detail)
                self._emit(Note(item, EventKind.FAILED, error.detail))

    def _playable(self) -> set[str]:
        return {i.uid for i in self._timeline.pending.values() if not i.needs_media or i.fetched}

    def _persistence(self) -> list[Callable[[], object]]:
        timeline, actions = self._timeline, []
        if timeline.memory_changed:
            timeline.memory_changed = False
            memory = timeline.memory()
            actions.append(lambda: self._store.save_memory(memory))
        if timeline.pending_changed:
            timeline.pending_changed = False
            commands = timeline.command_items()
            actions.append(lambda: self._store.save_commands(commands))
        return actions

    def _timeout(self, now: float) -> float:
        """How long to sleep until the next moment after the step's `now`. Not after the clock
        read again: an item that became due while the step ran would count as neither due (for
        the step) nor coming (for this), and wait `MAX_SLEEP_S` to start."""
        moments = [self._next_heartbeat, now + MAX_SLEEP_S]
        if self._run is None:
            for lead in (START_LEAD_S, START_LEAD_S + self._amplifier.warmup_s):
                moment = self._timeline.next_change(now, lead)
                if moment is not None:
                    moments.append(moment)
            off_at = self._amplifier.off_due_at()
            if off_at is not None:
                moments.append(off_at)
        else:
            moment = self._timeline.next_change(now, START_LEAD_S)
            if moment is not None:
                moments.append(moment)
        return max(0.001, min(moments) - time.time())

    def _snapshot(self) -> Snapshot:
        timeline, run = self._timeline, self._run
        on_air = run is not None and run.started_at is not None and not run.cancel.is_set()
        waiting = [i for i in timeline.pending.values() if i.preempted]
        now = time.time()
        if on_air:
            state = ReceiverState.PLAYING
        elif waiting or (run is not None and run.reason is CutReason.PREEMPTED):
            state = ReceiverState.PREEMPTED
        elif self._prefetcher.busy or any(
            i.needs_media and not i.fetched for i in timeline.due(now)
        ):
            state = ReceiverState.FETCHING
        else:
            state = ReceiverState.IDLE
        media = [i for i in timeline.manifest_items() if i.needs_media]
        complete = sum(1 for i in media if i.fetched) / len(media) if media else 1.0
        current = run.item if on_air and run is not None else None
        manifest = timeline.manifest_command
        return Snapshot(
            state=state,
            broadcast_id=None if current is None else current.body.broadcast_id,
            item_id=None if current is None else (current.body.item_id or None),
            queued=len(timeline.pending),
            manifest_items=len(timeline.manifest_items()),
            manifest_seq=None if manifest is None else manifest.seq,
            cache_complete=complete,
            preempted_items=len(waiting),
            amplifier_on=self._amplifier.is_on if self._amplifier.controlled else None,
        )

    # --- events ---------------------------------------------------------------------------------

    def _emit(self, note: Note, at: float | None = None) -> None:
        body = note.item.body
        when = at if at is not None else note.at
        self._report(
            note.item.command_id, body.broadcast_id, body.item_id, note.kind, note.detail, when
        )

    def _emit_all(self, notes: list[Note]) -> None:
        for note in notes:
            self._emit(note)
