"""The outbox: what sends a broadcast (renders it, then one PLAY per topic, published as one
batch) and what stops it.

It is not a desk: nobody asks it anything. The desks hand it what they decided (an announcement
queued, a broadcast to stop, a schedule's media to render) and it does the sending on one render
thread, in the order given, under the dispatcher's publish lock where a STOP and a PLAY of the
same broadcast could otherwise cross.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

import audio
from broadcast import clock
from broadcast.const import LIVE_SOURCE, BroadcastStatus, ContentKind
from broadcast.people import targets, zones
from broadcast.sending import broadcasts, rendering
from broadcast.sending.dispatcher import Dispatcher
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast
from wire import protocol

_LOGGER = logging.getLogger(__name__)

# what else changes in the transaction that marks a broadcast cancelled (its audit entry, the
# end of its series), given by the desk that stops it
OnCancelled = Callable[[Session, Broadcast], None]


class Outbox:
    """Sends broadcasts and stops them; owns the render thread."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        media: audio.MediaStore,
        renderer: rendering.MediaRenderer,
        dispatcher: Callable[[], Dispatcher | None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._media = media
        self._renderer = renderer
        self._dispatcher = dispatcher  # read at each use: tests and the CLI swap it
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loa-render")

    @property
    def dispatcher(self) -> Dispatcher | None:
        return self._dispatcher()

    @property
    def connected(self) -> bool:
        """Whether this process can send at all (a CLI command runs without MQTT)."""
        return self.dispatcher is not None

    def shutdown(self) -> None:
        """Stop the render thread; what is queued and not started stays pending in the log and
        is sent by the next leader (`resume_pending`)."""
        self._render_pool.shutdown(wait=True, cancel_futures=True)

    def send(self, broadcast_id: int) -> Future[None]:
        """Queue a pending broadcast: rendered, then dispatched, on the render thread."""
        return self._render_pool.submit(self.render_and_dispatch, broadcast_id)

    def render(self, text: str, recording: str | None, voice: str = "") -> rendering.RenderedMedia:
        """Media rendered on the render thread (cached), waited for."""
        return self._render_pool.submit(self._renderer.render, text, recording, voice).result()

    def resume_pending(self) -> None:
        """Broadcasts left pending by a stop are rendered and dispatched now."""
        with self._db.session() as session:
            pending = session.scalars(
                select(Broadcast.id).where(Broadcast.status == BroadcastStatus.PENDING.value)
            ).all()
        for broadcast_id in pending:
            self.send(broadcast_id)

    def play_lead_s(self, priority: str) -> float:
        """How far ahead of now a PLAY of this priority starts: every receiver of a zone
        starts together once the command has reached them all."""
        if priority == protocol.Priority.EMERGENCY:
            return self._settings.play_lead_s
        return self._settings.routine_play_lead_s

    def _status(self, broadcast_id: int) -> str:
        with self._db.session() as session:
            return broadcasts.get_broadcast(session, broadcast_id).status

    def render_and_dispatch(self, broadcast_id: int) -> None:
        """Render a pending broadcast and send one PLAY per topic; a failure marks it failed."""
        with self._db.session() as session:
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            if broadcast.status != BroadcastStatus.PENDING.value:
                return
            text, recording = broadcast.text, broadcast.recording_sha256
            priority, relay_url = broadcast.priority, broadcast.relay_url or ""
            relay = broadcast.content == protocol.ContentType.RELAY
            live = relay and broadcast.source == LIVE_SOURCE
            topics = targets.command_topics(session, broadcast.zone_ids, broadcast.device_ids or [])
            voice = (
                ""
                if relay
                else zones.voice_for(session, broadcast.zone_ids, broadcast.device_ids or [])
            )
        try:
            sha256, engine, lead_in = None, ContentKind.RELAY.value, None
            if not relay:
                rendered = self._renderer.render(text, recording, voice)
                sha256, engine = rendered.sha256, rendered.engine
            elif live:
                lead_in = self._renderer.chime()
            if self.dispatcher is None:
                raise RuntimeError("this server runs without an MQTT connection")
            with self.dispatcher.exclusive():  # a cancel cannot slip in between check and send
                if self._status(broadcast_id) != BroadcastStatus.PENDING.value:
                    _LOGGER.info("broadcast %s was cancelled before it was sent", broadcast_id)
                    return
                now = time.time()
                # whole milliseconds: what the row stores is exactly what a re-sent copy says
                play_at = round(now + self.play_lead_s(priority), 3)
                valid_until = round(play_at + self._settings.item_valid_s, 3)
                carried = sha256 or lead_in
                with self._db.session() as session:
                    row = broadcasts.get_broadcast(session, broadcast_id)
                    row.lead_in_sha256 = lead_in
                    body = broadcasts.play_body(
                        row,
                        media_sha256=carried,
                        media_url=self._settings.media_url(carried) if carried else "",
                        play_at=play_at,
                        valid_until=valid_until,
                    )
                ttl_s = max(protocol.DEFAULT_COMMAND_TTL_S, valid_until - now + 60)
                # one batch: every number taken at once, every PUBACK awaited together
                sent = self.dispatcher.send_many([(topic, body) for topic in topics], ttl_s=ttl_s)
                with self._db.session() as session:
                    broadcasts.mark_dispatched(
                        broadcasts.get_broadcast(session, broadcast_id),
                        sha256,
                        engine,
                        sent[0].id if sent else "",
                        play_at=clock.from_timestamp(play_at),
                        valid_until=clock.from_timestamp(valid_until),
                    )
        except Exception as exc:
            _LOGGER.exception("broadcast %s failed", broadcast_id)
            with self._db.session() as session:
                broadcast = broadcasts.get_broadcast(session, broadcast_id)
                if broadcast.status == BroadcastStatus.PENDING.value:
                    broadcasts.mark_failed(broadcast, str(exc))
            return
        _LOGGER.info(
            "broadcast %s dispatched to %s (%s, %s)",
            broadcast_id,
            ", ".join(topics),
            sha256[:12] if sha256 else relay_url.partition("?")[0],  # a live token stays out
            engine,
        )

    def stop(
        self,
        broadcast_id: int,
        zone_ids: list[str],
        device_ids: list[str],
        on_cancelled: OnCancelled,
    ) -> bool:
        """The STOP on every topic of the broadcast, then its status and, in the same
        transaction, `on_cancelled`. False when it ended before the STOP went out."""
        dispatcher = self.dispatcher
        assert dispatcher is not None
        # Under the publish lock no PLAY of it can slip in between (the render thread checks
        # the status under the same lock); the STOPs go first so a failed send leaves the
        # broadcast as it was, to be cancelled again.
        with dispatcher.exclusive():
            stop = protocol.StopBody(broadcast_id=broadcast_id)
            with self._db.session() as session:
                topics = targets.command_topics(session, zone_ids, device_ids)
            dispatcher.send_many([(topic, stop) for topic in topics])
            with self._db.session() as session:
                broadcast = broadcasts.get_broadcast(session, broadcast_id)
                if not broadcasts.mark_cancelled(broadcast):
                    _LOGGER.info("broadcast %s ended before its STOP went out", broadcast_id)
                    return False
                on_cancelled(session, broadcast)
        return True

    def render_for_schedule(
        self, text: str, recording: str | None, repeat: int, voice: str = ""
    ) -> tuple[str, str, float]:
        """Media of a schedule, rendered now (cached): its sha256, engine and airtime."""
        rendered = self.render(text, recording, voice)
        seconds = audio.probe_duration_s(self._media.path(rendered.sha256))
        return rendered.sha256, rendered.engine, seconds * repeat
