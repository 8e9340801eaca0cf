"""Manifests: each receiver's own programme for the next 48 h (`protocol.ManifestBody`).

Published signed, RETAINED, at QoS 1 on `protocol.device_manifest_topic(device)`, a manifest
lists every planned run the receiver must play (item id, play_at, valid_until, media url and
sha256 or relay url and duration, priority, repeat, broadcast id). A newer one replaces the
older whole, so the receiver can fetch media ahead and play from its own clock while the server
or the broker is out of reach. A run leaves the manifests when it is cancelled, when its
schedule ends or is replaced, when its time of validity passes, or once this receiver has
finished (or failed) it.

Only manifests whose item list changed are published (`Device.manifest_sha256` remembers the
last one), plus any older than half the horizon, so a retained copy never expires unseen, plus
those of receivers still reporting an older manifest well after the latest went out
(`lagging`): a broker can drop a retained update that arrives while a subscription is being
made (seen with nats-server's MQTT under load), and nothing else would send it again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import clock
from broadcast.const import BroadcastStatus, DeliveryState
from broadcast.store.models import Broadcast, Delivery, Device, Schedule
from wire import protocol

_LOGGER = logging.getLogger(__name__)

# statuses whose items receivers still need (a missed run may still play from the manifest)
_LISTED = (
    BroadcastStatus.SCHEDULED.value,
    BroadcastStatus.DISPATCHED.value,
    BroadcastStatus.MISSED.value,
)
_DONE = (DeliveryState.FINISHED.value, DeliveryState.FAILED.value)


@dataclass(frozen=True)
class PendingManifest:
    """A manifest to publish and the digest of its items (stored once it is published)."""

    device_id: str
    body: protocol.ManifestBody
    sha256: str


def play_body(row: Broadcast, media_url: Callable[[str], str]) -> protocol.PlayBody:
    """A planned run as a manifest item."""
    relay = row.content == protocol.ContentType.RELAY.value
    assert row.play_at is not None and row.valid_until is not None
    return protocol.PlayBody(
        broadcast_id=row.id,
        item_id=row.item_id,
        media_url="" if relay or not row.media_sha256 else media_url(row.media_sha256),
        media_sha256="" if relay else row.media_sha256 or "",
        priority=protocol.Priority(row.priority),
        repeat=1 if relay else row.repeat,
        title=row.title[:200],
        play_at=clock.to_timestamp(row.play_at),
        valid_until=clock.to_timestamp(row.valid_until),
        content=protocol.ContentType.RELAY if relay else protocol.ContentType.MEDIA,
        relay_url=(row.relay_url or "") if relay else "",
        duration_s=float(row.duration_s or 0.0) if relay else 0.0,
    )


def items_by_device(
    session: Session, now: datetime, horizon_until: datetime, media_url: Callable[[str], str]
) -> dict[str, list[protocol.PlayBody]]:
    """Every receiver's items, ordered by play time (at most `MAX_MANIFEST_ITEMS` each)."""
    query = (
        select(Delivery.device_id, Broadcast)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .join(Schedule, Broadcast.schedule_id == Schedule.id)
        .where(
            Broadcast.occurrence_at.is_not(None),
            Broadcast.status.in_(_LISTED),
            Broadcast.valid_until > now,
            Broadcast.play_at < horizon_until,
            Schedule.ended_at.is_(None),
            Delivery.state.not_in(_DONE),
        )
    )
    found: dict[str, list[protocol.PlayBody]] = defaultdict(list)
    for device_id, row in session.execute(query):
        found[device_id].append(play_body(row, media_url))
    for device_id, items in found.items():
        items.sort(key=lambda item: (item.play_at or 0.0, item.item_id))
        if len(items) > protocol.MAX_MANIFEST_ITEMS:
            _LOGGER.warning(
                "manifest of %s has %d items: only the first %d are sent",
                device_id,
                len(items),
                protocol.MAX_MANIFEST_ITEMS,
            )
            del items[protocol.MAX_MANIFEST_ITEMS :]
    return found


def digest(items: list[protocol.PlayBody]) -> str:
    """What identifies a manifest's content (not its generation time)."""
    wire = protocol.ManifestBody("", 0.0, 0.0, tuple(items)).to_dict()["items"]
    return hashlib.sha256(protocol.canonical_json({"items": wire})).hexdigest()


def lagging(session: Session, now: datetime, grace_s: float) -> list[str]:
    """Online receivers whose reports, made since their latest manifest was published
    `grace_s` ago or more, still name another manifest: they are to be sent it again (at
    most once per `grace_s` each, as publishing it again restarts the wait)."""
    published_before = now - timedelta(seconds=grace_s)
    rows = session.execute(
        select(Device.id, Device.manifest_seq, Device.status_extra).where(
            Device.online.is_(True),
            Device.manifest_seq.is_not(None),
            Device.manifest_published_at <= published_before,
            Device.last_seen > Device.manifest_published_at,
        )
    )
    behind = []
    for device_id, seq, extra in rows:
        reported = (extra or {}).get("manifest_seq") if isinstance(extra, dict) else None
        if isinstance(reported, int) and reported != seq:
            behind.append(device_id)
    return behind


def pending(
    session: Session,
    *,
    now: datetime,
    horizon_s: float,
    media_url: Callable[[str], str],
    force: bool = False,
    also: Collection[str] = (),
) -> list[PendingManifest]:
    """The manifests to publish: changed, older than half the horizon, those of `also`, or
    all when `force`."""
    horizon_until = now + timedelta(seconds=horizon_s)
    stale_before = now - timedelta(seconds=horizon_s / 2)
    by_device = items_by_device(session, now, horizon_until, media_url)
    result = []
    for device in session.scalars(select(Device).order_by(Device.id)):
        items = by_device.get(device.id, [])
        sha256 = digest(items)
        fresh = device.manifest_published_at is not None and (
            device.manifest_published_at >= stale_before
        )
        if not force and device.manifest_sha256 == sha256 and fresh and device.id not in also:
            continue
        body = protocol.ManifestBody(
            device_id=device.id,
            generated_at=clock.to_timestamp(now),
            horizon_until=clock.to_timestamp(horizon_until),
            items=tuple(items),
        )
        result.append(PendingManifest(device.id, body, sha256))
    return result


def mark_published(
    session: Session,
    published: Sequence[PendingManifest],
    at: datetime,
    seqs: Sequence[int],
) -> None:
    """Remember what each receiver was sent and its number (`seqs`, in the same order; the
    devices loaded in one query, not one each)."""
    wanted = {m.device_id: (m.sha256, seq) for m, seq in zip(published, seqs, strict=True)}
    for device in session.scalars(select(Device).where(Device.id.in_(wanted))):
        device.manifest_sha256, device.manifest_seq = wanted[device.id]
        device.manifest_published_at = at
