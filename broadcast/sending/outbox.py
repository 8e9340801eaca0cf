"""The outbox: what sends a broadcast (renders it, then one PLAY per topic) and what stops it."""


class Outbox:
    def _resume_pending(self) -> None:
        """Broadcasts left pending by a stop are rendered and dispatched now."""
        with self.db.session() as session:
            pending = session.scalars(
                select(Broadcast.id).where(Broadcast.status == BroadcastStatus.PENDING.value)
            ).all()
        for broadcast_id in pending:
            self._render_pool.submit(self._render_and_dispatch, broadcast_id)

    def _play_lead_s(self, priority: str) -> float:
        if priority == protocol.Priority.EMERGENCY:
            return self.settings.play_lead_s
        return self.settings.routine_play_lead_s

    def _status(self, broadcast_id: int) -> str:
        with self.db.session() as session:
            return broadcasts.get_broadcast(session, broadcast_id).status

    def _render_and_dispatch(self, broadcast_id: int) -> None:
        with self.db.session() as session:
            broadcast = broadcasts.get_broadcast(session, broadcast_id)
            if broadcast.status != BroadcastStatus.PENDING.value:
                return
            text, recording = broadcast.text, broadcast.recording_sha256
            priority, relay_url = broadcast.priority, broadcast.relay_url or ""
            relay = broadcast.content == ContentKind.RELAY.value
            topics = targets.command_topics(broadcast.zone_ids, broadcast.device_ids or [])
        try:
            sha256, engine = None, ContentKind.RELAY.value
            if not relay:
                rendered = self.renderer.render(text, recording)
                sha256, engine = rendered.sha256, rendered.engine
            if self.dispatcher is None:
                raise RuntimeError("this server runs without an MQTT connection")
            with self.dispatcher.exclusive():  # a cancel cannot slip in between check and send
                if self._status(broadcast_id) != BroadcastStatus.PENDING.value:
                    _LOGGER.info("broadcast %s was cancelled before it was sent", broadcast_id)
                    return
                now = time.time()
                # whole milliseconds: what the row stores is exactly what a re-sent copy says
                play_at = round(now + self._play_lead_s(priority), 3)
                valid_until = round(play_at + self.settings.item_valid_s, 3)
                with self.db.session() as session:
                    body = broadcasts.play_body(
                        broadcasts.get_broadcast(session, broadcast_id),
                        media_sha256=sha256,
                        media_url=self.settings.media_url(sha256) if sha256 else "",
                        play_at=play_at,
                        valid_until=valid_until,
                    )
                ttl_s = max(protocol.DEFAULT_COMMAND_TTL_S, valid_until - now + 60)
                sent = [self.dispatcher.send(topic, body, ttl_s=ttl_s) for topic in topics]
                with self.db.session() as session:
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
            with self.db.session() as session:
                broadcast = broadcasts.get_broadcast(session, broadcast_id)
                if broadcast.status == BroadcastStatus.PENDING.value:
                    broadcasts.mark_failed(broadcast, str(exc))
            return
        _LOGGER.info(
            "broadcast %s dispatched to %s (%s, %s)",
            broadcast_id,
            ", ".join(topics),
            sha256[:12] if sha256 else relay_url,
            engine,
        )

    def _stop(
        self,
        user_id: int,
        broadcast_id: int,
        zone_ids: list[str],
        device_ids: list[str],
        correction: str | None,
    ) -> None:
        """The STOP on every topic of the broadcast, then its status (and a series' end)."""
        assert self.dispatcher is not None
        # Under the publish lock no PLAY of it can slip in between (the render thread checks
        # the status under the same lock); the STOPs go first so a failed send leaves the
        # broadcast as it was, to be cancelled again.
        with self.dispatcher.exclusive():
            for topic in targets.command_topics(zone_ids, device_ids):
                self.dispatcher.send(topic, protocol.StopBody(broadcast_id=broadcast_id))
            with self.db.session() as session:
                broadcast = broadcasts.get_broadcast(session, broadcast_id)
                if not broadcasts.mark_cancelled(broadcast):
                    _LOGGER.info("broadcast %s ended before its STOP went out", broadcast_id)
                    return
                audit.record(
                    session,
                    session.get(User, user_id),
                    audit.Action.CANCEL,
                    f"broadcast:{broadcast_id}",
                    {"correction": correction[:500] if correction else None},
                )
                schedule = session.get(Schedule, broadcast.schedule_id or 0)
                if (
                    schedule is not None
                    and schedule.kind == ScheduleKind.SERIES
                    and schedule.ended_at is None
                ):
                    planning.end_schedule(session, schedule, utcnow())
                    _LOGGER.info("series %s ended by cancelling %s", schedule.id, broadcast_id)
        _LOGGER.warning("broadcast %s cancelled by user %s", broadcast_id, user_id)

    def _render_for_schedule(
        self, text: str, recording: str | None, repeat: int
    ) -> tuple[str, str, float]:
        """Media of a schedule, rendered now (cached): its sha256, engine and airtime."""
        rendered = self._render_pool.submit(self.renderer.render, text, recording).result()
        seconds = audio.probe_duration_s(self.media.path(rendered.sha256))
        return rendered.sha256, rendered.engine, seconds * repeat

