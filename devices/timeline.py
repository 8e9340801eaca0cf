"""The receiver's programme: which item plays when, and what happens to the others.

Pure logic, no threads and no clock: every method takes `now` (epoch seconds, the device's own
clock), so the rules of Thông tư 39/2020/TT-BTTTT and of offline play are unit-tested without
waiting. `devices.scheduler` drives it from a thread and turns its `Note`s into events.

The rules:

* an item plays at its `play_at` (or as soon as it arrives without one) and never after its
  deadline: `valid_until`, or `DEFAULT_VALIDITY_S` after `play_at` (after `issued_at` for a play
  command without `play_at`) when the server sent none; a late item that is still valid plays at
  once, an expired one ends as `failed` / `expired`;
* among items that are due, emergencies (khẩn cấp) come first, then priority (ưu tiên), then
  normal (thông thường); an item that was cut comes first within its level; otherwise earlier
  `play_at` first, then arrival order (items of one level play in series);
* only an emergency cuts an item that is playing (`preemptor`); the cut item is re-queued by the
  scheduler (policy `resume`) or ended (policy `drop`);
* a manifest replaces the previous one whole: its items that are no longer listed and have not
  started end as `failed` / `withdrawn`; items that came in play commands are not touched;
* an item is identified by its `item_id` (a play command without one by its command id): once it
  ended (finished, failed, stopped) on this device it never starts again, also after a restart
  (`memory()` is persisted by the agent, bounded in size and age); a play command for an ended
  item is answered with how it ended (the server re-sends commands it has no answer for);
* a STOP ends every item of its broadcast (or every item) the server sent before it, and
  remembers that, so a copy of such an item arriving later (an older manifest kept on disk, a
  command delayed on another topic) is refused too.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wire.protocol import (
    DEFAULT_COMMAND_TTL_S,
    MANIFEST_HORIZON_S,
    Command,
    ContentType,
    EventKind,
    ManifestBody,
    PlayBody,
    Priority,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_VALIDITY_S = float(DEFAULT_COMMAND_TTL_S)
DONE_LIMIT = 5000
STOP_LIMIT = 1000
MEMORY_S = 2.0 * MANIFEST_HORIZON_S  # older memories cannot match an item still valid
ALL = "all"  # the stop memory's key for "stop everything"

RANK = {Priority.EMERGENCY: 0, Priority.PRIORITY: 1, Priority.NORMAL: 2}

EXPIRED = "expired"
STOPPED = "stopped"
WITHDRAWN = "withdrawn"
ALREADY_PLAYED = "already played"


class Origin(StrEnum):
    COMMAND = "command"  # a play command (kept on disk by the agent until it ends)
    MANIFEST = "manifest"  # an item of the device's manifest


@dataclass(eq=False)
class Item:
    """One thing to play and where it stands; `ready_at` is when it may start (device clock)."""

    uid: str
    body: PlayBody
    command_id: str
    origin: Origin
    issued_at: float
    ready_at: float
    deadline: float
    arrival: int
    payload: str = field(default="", repr=False)  # the signed play command (COMMAND items)
    topic: str = ""
    preempted: bool = False  # cut once: resumes ahead of its level
    fetched: bool = False  # media verified in the cache and `fetched` reported

    @property
    def rank(self) -> int:
        return RANK[self.body.priority]

    @property
    def needs_media(self) -> bool:
        """It cannot start before its file is in the cache."""
        return self.body.content is ContentType.MEDIA

    @property
    def wants_media(self) -> bool:
        """Its file is fetched ahead: one it needs, or a live stream's chime (which it plays
        if it is there and never waits for)."""
        return self.needs_media or bool(self.body.live and self.body.media_sha256)

    @property
    def emergency(self) -> bool:
        return self.body.priority is Priority.EMERGENCY

    def sort_key(self) -> tuple[int, int, float, int]:
        return (self.rank, 0 if self.preempted else 1, self.ready_at, self.arrival)

    def describe(self) -> str:
        return self.body.item_id or f"broadcast {self.body.broadcast_id}"


@dataclass(frozen=True)
class Note:
    """An answer-back event the timeline decided on; the scheduler publishes it."""

    item: Item
    kind: EventKind
    detail: str = ""
    at: float | None = None  # when it happened, if not now (an outcome reported again)


def item_uid(command: Command, body: PlayBody) -> str:
    return body.item_id or f"cmd-{command.id}"


def deadline_of(body: PlayBody, issued_at: float) -> float:
    if body.valid_until is not None:
        return body.valid_until
    start = body.play_at if body.play_at is not None else issued_at
    return start + DEFAULT_VALIDITY_S


class Timeline:
    """Pending items, the current one, the manifest and the memory of ended items and stops."""

    def __init__(self, memory: dict[str, Any] | None = None) -> None:
        self.pending: dict[str, Item] = {}
        self.current: Item | None = None  # taken out of `pending` while it is being played
        self.manifest: ManifestBody | None = None
        self.manifest_command: Command | None = None
        self._done: dict[str, float] = {}
        self._outcomes: dict[str, tuple[EventKind, str]] = {}
        self._stops: dict[str, float] = {}
        self._arrivals = itertools.count()
        self.memory_changed = False
        self.pending_changed = False
        if memory:
            self._load_memory(memory)

    # --- what arrives ---------------------------------------------------------------------------

    def add_play(
        self,
        command: Command,
        body: PlayBody,
        now: float,
        *,
        restored: bool = False,
        payload: str = "",
        topic: str = "",
    ) -> list[Note]:
        """A play command; `restored` = reloaded from disk after a restart (already reported)."""
        item = Item(
            uid=item_uid(command, body),
            body=body,
            command_id=command.id,
            origin=Origin.COMMAND,
            issued_at=command.issued_at,
            ready_at=body.play_at if body.play_at is not None else now,
            deadline=deadline_of(body, command.issued_at),
            arrival=next(self._arrivals),
            payload=payload,
            topic=topic,
        )
        notes = [] if restored else [Note(item, EventKind.RECEIVED)]
        if item.uid in self._done:
            if not restored:
                notes.append(self._outcome_of(item))
            return notes
        if self._stopped(item):
            self._remember(item.uid, now, EventKind.FAILED, STOPPED)
            return [*notes, Note(item, EventKind.FAILED, STOPPED)]
        if self.current is not None and self.current.uid == item.uid:
            return notes  # already on air
        if now > item.deadline:
            self._remember(item.uid, now, EventKind.FAILED, EXPIRED)
            return [*notes, Note(item, EventKind.FAILED, EXPIRED)]
        previous = self.pending.get(item.uid)
        if previous is not None:
            item.fetched = previous.fetched and _same_media(previous.body, body)
        self.pending[item.uid] = item
        self.pending_changed = True
        return notes

    def set_manifest(
        self, command: Command, manifest: ManifestBody, now: float, *, restored: bool = False
    ) -> list[Note]:
        """Replace the manifest whole; `restored` = reloaded from disk (no `received` again)."""
        notes: list[Note] = []
        listed = {body.item_id for body in manifest.items}
        for uid, item in list(self.pending.items()):
            if item.origin is Origin.MANIFEST and uid not in listed:
                del self.pending[uid]
                notes.append(Note(item, EventKind.FAILED, WITHDRAWN))
        for body in manifest.items:
            notes.extend(self._add_manifest_item(command, body, now, restored))
        self.manifest = manifest
        self.manifest_command = command
        return notes

    def _add_manifest_item(
        self, command: Command, body: PlayBody, now: float, restored: bool
    ) -> list[Note]:
        uid = body.item_id
        if uid in self._done:
            return []
        if self.current is not None and self.current.uid == uid:
            return []
        previous = self.pending.get(uid)
        if previous is not None and (previous.origin is Origin.COMMAND or previous.body == body):
            return []  # a play command for it wins; an unchanged item keeps its place
        assert body.play_at is not None  # ManifestBody.from_dict guarantees it
        item = Item(
            uid=uid,
            body=body,
            command_id=command.id,
            origin=Origin.MANIFEST,
            issued_at=command.issued_at,
            ready_at=body.play_at,
            deadline=deadline_of(body, command.issued_at),
            arrival=next(self._arrivals),
        )
        if previous is not None:
            item.fetched = previous.fetched and _same_media(previous.body, body)
        if self._stopped(item):
            self.pending.pop(uid, None)
            self._remember(uid, now, EventKind.FAILED, STOPPED)
            return []
        notes = [] if restored else [Note(item, EventKind.RECEIVED)]
        if now > item.deadline:
            self.pending.pop(uid, None)
            self._remember(uid, now, EventKind.FAILED, EXPIRED)
            return [*notes, Note(item, EventKind.FAILED, EXPIRED)]
        self.pending[uid] = item
        return notes

    def stop(self, broadcast_id: int | None, issued_at: float, now: float) -> list[Note]:
        """End the pending items a STOP sent at `issued_at` covers and remember the STOP.

        The current item is the scheduler's to cut (`stop_covers(current, …)`)."""
        key = ALL if broadcast_id is None else str(broadcast_id)
        self._stops[key] = max(self._stops.get(key, issued_at), issued_at)
        self._trim_stops()
        self.memory_changed = True
        notes = []
        for uid, item in list(self.pending.items()):
            if self.stop_covers(item, broadcast_id, issued_at):
                del self.pending[uid]
                self._remember(uid, now, EventKind.FAILED, STOPPED)
                notes.append(Note(item, EventKind.FAILED, STOPPED))
        self.pending_changed = True
        return notes

    @staticmethod
    def stop_covers(item: Item, broadcast_id: int | None, issued_at: float) -> bool:
        if broadcast_id is not None and item.body.broadcast_id != broadcast_id:
            return False
        return item.issued_at <= issued_at

    # --- what time does -------------------------------------------------------------------------

    def expire(self, now: float) -> list[Note]:
        """End the pending items whose deadline has passed."""
        notes = []
        for uid, item in list(self.pending.items()):
            if now > item.deadline:
                del self.pending[uid]
                self._remember(uid, now, EventKind.FAILED, EXPIRED)
                notes.append(Note(item, EventKind.FAILED, EXPIRED))
        if notes:
            self.pending_changed = True
        return notes

    def due(self, now: float, lead: float = 0.0) -> list[Item]:
        """Items that may start by `now + lead`, best first."""
        ready = [item for item in self.pending.values() if item.ready_at <= now + lead]
        return sorted(ready, key=Item.sort_key)

    def next_item(self, now: float, lead: float, playable: set[str] | None = None) -> Item | None:
        """The best item due by `now + lead` among `playable` uids (None: any)."""
        for item in self.due(now, lead):
            if playable is None or item.uid in playable:
                return item
        return None

    def preemptor(
        self, current: Item, now: float, lead: float, playable: set[str] | None = None
    ) -> Item | None:
        """A due emergency that must cut `current` (which is not an emergency)."""
        if current.emergency:
            return None
        candidate = self.next_item(now, lead, playable)
        if candidate is not None and candidate.emergency:
            return candidate
        return None

    def next_change(self, now: float, lead: float) -> float | None:
        """The next moment something becomes due (minus `lead`) or expires."""
        moments = []
        for item in self.pending.values():
            if item.ready_at - lead > now:
                moments.append(item.ready_at - lead)
            moments.append(item.deadline + 0.001)
        return min(moments) if moments else None

    # --- what the scheduler did -----------------------------------------------------------------

    def begin(self, item: Item) -> None:
        """`item` is about to be played: out of the queue, into `current`."""
        self.pending.pop(item.uid, None)
        self.current = item

    def end(
        self, item: Item, now: float, kind: EventKind = EventKind.FINISHED, detail: str = ""
    ) -> None:
        """`item` reached its end (finished, or failed with `detail`): it never starts again."""
        if self.current is item:
            self.current = None
        self.pending.pop(item.uid, None)
        self._remember(item.uid, now, kind, detail)
        self.pending_changed = True

    def requeue(self, item: Item, *, preempted: bool) -> bool:
        """`item` did not finish (cut, deferred, media missing): back into the queue. False
        if it is no longer wanted: its manifest was replaced by one without it meanwhile."""
        if self.current is item:
            self.current = None
        if item.uid in self._done or item.uid in self.pending:
            return True
        if item.origin is Origin.MANIFEST and not self._listed(item.uid):
            return False
        item.preempted = item.preempted or preempted
        self.pending[item.uid] = item
        return True

    def _listed(self, uid: str) -> bool:
        return self.manifest is not None and any(b.item_id == uid for b in self.manifest.items)

    def drop(self, item: Item, now: float, detail: str) -> None:
        """A pending item failed for good (e.g. its media can never be fetched)."""
        self.pending.pop(item.uid, None)
        self._remember(item.uid, now, EventKind.FAILED, detail)
        self.pending_changed = True

    # --- reading --------------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Every item not yet ended: the current one and the pending ones."""
        return ([self.current] if self.current is not None else []) + list(self.pending.values())

    def manifest_items(self) -> list[Item]:
        return [item for item in self.items() if item.origin is Origin.MANIFEST]

    def media_wanted(self) -> list[Item]:
        """Items whose media is not known to be in the cache, soonest first."""
        wanted = [i for i in self.items() if i.wants_media and not i.fetched]
        return sorted(wanted, key=lambda item: (item.ready_at, item.rank, item.arrival))

    def media_kept(self) -> set[str]:
        """Hashes the cache must not evict: everything still to be played."""
        return {i.body.media_sha256 for i in self.items() if i.wants_media}

    def command_items(self) -> dict[str, dict[str, str]]:
        """The signed play commands still to be played, for the agent to keep on disk."""
        return {
            item.command_id: {"topic": item.topic, "payload": item.payload}
            for item in self.items()
            if item.origin is Origin.COMMAND and item.payload
        }

    def is_done(self, uid: str) -> bool:
        return uid in self._done

    # --- memory ---------------------------------------------------------------------------------

    def memory(self) -> dict[str, Any]:
        outcomes = {uid: [kind.value, detail] for uid, (kind, detail) in self._outcomes.items()}
        return {"done": dict(self._done), "stops": dict(self._stops), "outcomes": outcomes}

    def _load_memory(self, memory: dict[str, Any]) -> None:
        done, stops = memory.get("done"), memory.get("stops")
        if isinstance(done, dict):
            self._done = {str(k): float(v) for k, v in done.items() if isinstance(v, int | float)}
        if isinstance(stops, dict):
            self._stops = {str(k): float(v) for k, v in stops.items() if isinstance(v, int | float)}
        outcomes = memory.get("outcomes")
        if isinstance(outcomes, dict):
            for uid, value in outcomes.items():
                if str(uid) in self._done and isinstance(value, list) and len(value) == 2:
                    try:
                        self._outcomes[str(uid)] = (EventKind(value[0]), str(value[1]))
                    except ValueError:
                        continue

    def _remember(self, uid: str, now: float, kind: EventKind, detail: str = "") -> None:
        self._done[uid] = now
        self._outcomes[uid] = (kind, detail)
        self.memory_changed = True
        if len(self._done) > DONE_LIMIT:
            oldest = sorted(self._done, key=self._done.__getitem__)
            for stale in oldest[: len(self._done) - DONE_LIMIT]:
                self._forget(stale)
        horizon = now - MEMORY_S
        for stale in [uid for uid, at in self._done.items() if at < horizon]:
            self._forget(stale)

    def _forget(self, uid: str) -> None:
        del self._done[uid]
        self._outcomes.pop(uid, None)

    def _outcome_of(self, item: Item) -> Note:
        """How an ended item ended, reported again (a memory from before outcomes were kept
        says only that it is over)."""
        kind, detail = self._outcomes.get(item.uid, (EventKind.FAILED, ALREADY_PLAYED))
        return Note(item, kind, detail, at=self._done[item.uid])

    def _trim_stops(self) -> None:
        if len(self._stops) > STOP_LIMIT:
            oldest = sorted(self._stops, key=self._stops.__getitem__)
            for stale in oldest[: len(self._stops) - STOP_LIMIT]:
                del self._stops[stale]

    def _stopped(self, item: Item) -> bool:
        """A STOP for its broadcast (or for everything) was sent after the item."""
        for key in (ALL, str(item.body.broadcast_id)):
            stopped_at = self._stops.get(key)
            if stopped_at is not None and item.issued_at <= stopped_at:
                return True
        return False


def _same_media(a: PlayBody, b: PlayBody) -> bool:
    return (a.content, a.media_sha256, a.relay_url) == (b.content, b.media_sha256, b.relay_url)
