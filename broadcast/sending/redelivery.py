"""Re-sending what receivers have not answered, and closing what nobody will answer.

QoS 1 and persistent sessions carry a command to a receiver that was offline, but not through
everything: a broker restarted without persistence forgets its sessions (the receivers' and the
server's answer-back listener), and an answer-back published in that gap is lost. So the
scheduler-holding process sweeps the open delivery records every few seconds:

* an announcement's PLAY with no answer after `first_after_s` is sent again, as it was (same
  item id, play_at and deadline), on that receiver's own command topic; a receiver that has the
  item ignores the copy, one that already ended it answers with how it ended
  (`devices.timeline`), one that never had it plays it if it is still valid;
* a cancelled broadcast's deliveries not yet answered as stopped get the STOP again (never the
  PLAY: a copy sent after the STOP would not be covered by it);
* the wait doubles with each attempt, up to `max_interval_s`, at most `max_attempts`; a receiver
  that comes back online is tried again at once;
* once an item's deadline is `answer_window_s` behind, a delivery still open is closed as
  failed (stopped, if cancelled) with detail "no answer", so the broadcast settles and reports
  count it; a real answer arriving later still replaces that.

The attempts are remembered in memory: a new leader simply starts counting again. A count
restarts when the receiver answers (the delivery's state moves) and is dropped when the delivery
is no longer open, never because a sweep found nothing due: a sweep may come early (after NTP
stepped the clock back, or the periodic one beside a test's) and must not restart the count.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from broadcast.const import BroadcastStatus, DeliveryState
from broadcast.sending import broadcasts
from broadcast.settings import RedeliveryPolicy
from broadcast.store.models import Broadcast, Delivery

_LOGGER = logging.getLogger(__name__)

_SWEPT = (
    BroadcastStatus.DISPATCHED.value,
    BroadcastStatus.MISSED.value,
    BroadcastStatus.CANCELLED.value,
    BroadcastStatus.PARTIAL.value,
)


class Action(StrEnum):
    PLAY = "play"
    STOP = "stop"


@dataclass(frozen=True)
class Resend:
    broadcast_id: int
    device_id: str
    action: Action
    delivery_state: str  # as it was when the resend was decided


@dataclass
class _Tries:
    count: int
    next_at: datetime
    delivery_state: str  # an answer moves it on, and the count starts again


class Redeliveries:
    """The leader's bookkeeping of re-sent commands."""

    def __init__(self, policy: RedeliveryPolicy | None = None) -> None:
        self.policy = policy or RedeliveryPolicy()
        self._tries: dict[tuple[int, str], _Tries] = {}
        self._returned: set[str] = set()
        self._returned_lock = threading.Lock()  # added to by the MQTT thread

    def device_returned(self, device_id: str) -> None:
        """A receiver came (back) online: whatever it has not answered is tried at once."""
        with self._returned_lock:
            self._returned.add(device_id)

    def sweep(self, session: Session, now: datetime) -> list[Resend]:
        """Close what is past answering; return what to send again now (see `sent`). Only the
        deliveries of broadcasts with something due are read: a province's emergency leaves
        thousands of deliveries open while it plays, and this runs every few seconds."""
        window = timedelta(seconds=self.policy.answer_window_s)
        patience = timedelta(seconds=self.policy.first_after_s)
        with self._returned_lock:
            returned, self._returned = self._returned, set()
        due: list[Resend] = []
        for broadcast, states in _due_broadcasts(session, now, patience, window):
            cancelled = broadcast.status == BroadcastStatus.CANCELLED.value
            deadline = _answer_deadline(broadcast)
            for delivery in _open_deliveries(session, broadcast, states):
                key = (broadcast.id, delivery.device_id)
                if deadline is not None and now > deadline + window:
                    broadcasts.close_unanswered(delivery, cancelled)
                    _LOGGER.warning(
                        "broadcast %s: no answer from %s; delivery closed",
                        broadcast.id,
                        delivery.device_id,
                    )
                    continue
                tries = self._tries.get(key)
                if tries is not None and tries.delivery_state != delivery.state:
                    del self._tries[key]  # the receiver answered since
                    tries = None
                action = _action_for(broadcast, delivery, now, self.policy.first_after_s)
                if action is None:
                    continue
                if tries is not None:
                    if tries.count >= self.policy.max_attempts:
                        continue
                    if now < tries.next_at and delivery.device_id not in returned:
                        continue
                due.append(Resend(broadcast.id, delivery.device_id, action, delivery.state))
        self._forget_closed(session)
        return due

    def _forget_closed(self, session: Session) -> None:
        """Drop the counts of deliveries no longer open (answered to the end, or closed)."""
        if not self._tries:
            return
        still_open = {
            (broadcast_id, device_id)
            for broadcast_id, device_id in session.execute(
                select(Delivery.broadcast_id, Delivery.device_id).where(
                    Delivery.broadcast_id.in_({key[0] for key in self._tries}),
                    Delivery.device_id.in_({key[1] for key in self._tries}),
                    Delivery.state.in_(broadcasts.OPEN_STATES),
                )
            )
        }
        self._tries = {key: tries for key, tries in self._tries.items() if key in still_open}

    def sent(self, resend: Resend, now: datetime) -> None:
        key = (resend.broadcast_id, resend.device_id)
        count = self._tries[key].count + 1 if key in self._tries else 1
        wait = min(self.policy.first_after_s * 2**count, self.policy.max_interval_s)
        self._tries[key] = _Tries(count, now + timedelta(seconds=wait), resend.delivery_state)


def _due_broadcasts(
    session: Session, now: datetime, patience: timedelta, window: timedelta
) -> list[tuple[Broadcast, list[str]]]:
    """The broadcasts with open deliveries and something due, each with the delivery states
    concerned: all open ones past the deadline (to close), after a cancel (the STOP again) or
    after the item's end (to ask how it went); only the unanswered ones while it plays."""
    found: list[tuple[Broadcast, list[str]]] = []
    waiting = session.scalars(
        select(Broadcast)
        .where(
            Broadcast.status.in_(_SWEPT),
            exists().where(
                Delivery.broadcast_id == Broadcast.id,
                Delivery.state.in_(broadcasts.OPEN_STATES),
            ),
        )
        .order_by(Broadcast.id)
    )
    for broadcast in waiting:
        deadline = _answer_deadline(broadcast)
        if deadline is not None and now > deadline + window:
            found.append((broadcast, broadcasts.OPEN_STATES))
        elif broadcast.status == BroadcastStatus.CANCELLED.value:
            if broadcast.cancelled_at is not None and now >= broadcast.cancelled_at + patience:
                found.append((broadcast, broadcasts.OPEN_STATES))
        elif not broadcast.command_id or broadcast.dispatched_at is None:
            continue  # a planned run: the receivers have it in their manifests
        elif broadcast.valid_until is not None and now >= broadcast.valid_until + patience:
            found.append((broadcast, broadcasts.OPEN_STATES))
        elif now >= broadcast.dispatched_at + patience:
            found.append((broadcast, [DeliveryState.QUEUED.value]))
    return found


def _open_deliveries(session: Session, broadcast: Broadcast, states: list[str]) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.broadcast_id == broadcast.id, Delivery.state.in_(states))
            .order_by(Delivery.device_id)
        )
    )


def _answer_deadline(broadcast: Broadcast) -> datetime | None:
    """When the receivers should have ended the item (or had the STOP) by."""
    if broadcast.status == BroadcastStatus.CANCELLED.value:
        return broadcast.cancelled_at
    return broadcast.valid_until or broadcast.play_at or broadcast.dispatched_at


def _action_for(
    broadcast: Broadcast, delivery: Delivery, now: datetime, first_after_s: float
) -> Action | None:
    """What to send this receiver again, if anything is overdue."""
    patience = timedelta(seconds=first_after_s)
    if broadcast.status == BroadcastStatus.CANCELLED.value:
        if broadcast.cancelled_at is not None and now >= broadcast.cancelled_at + patience:
            return Action.STOP
        return None
    if not broadcast.command_id or broadcast.dispatched_at is None:
        return None  # a planned run: the receivers have it in their manifests
    if delivery.state == DeliveryState.QUEUED.value:
        return Action.PLAY if now >= broadcast.dispatched_at + patience else None
    if broadcast.valid_until is not None and now >= broadcast.valid_until + patience:
        return Action.PLAY  # should have ended by now: ask again how it went
    return None
