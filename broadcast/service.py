"""The broadcast service: the one object that wires storage, speech, audio, scheduling and MQTT.

It does nothing a person asks for itself: it builds the desks (`announcements`, `scheduling`,
`bulletins`, `fleet`, `reports`, `province_reports`, `admin`, `replay`), each given exactly what it
needs, and the web layer and the CLI call them. It owns the background parts (the outbox's render
thread, the scheduler, the dispatcher, the answer-back writer), starts and stops them together,
and wires leadership and the receivers' answer-back.

Several processes may run a service on one data directory (web workers, the dev reloader). Each
serves the web and API and publishes what its users send; only the one holding the scheduler
lock (`broadcast.programme.leadership`) plans runs, fires them, publishes manifests and hears the
receivers' answer-back. The others learn nothing by themselves: a change they make bumps the
programme revision (`broadcast.store.sequences`) and the leader, watching it every few seconds,
re-plans and republishes.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from collections.abc import Sequence

import tts
from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.desks.administration import Administration
from broadcast.desks.announcements import AnnouncementDesk
from broadcast.desks.bulletins import BulletinDesk
from broadcast.desks.calendar import CalendarDesk
from broadcast.desks.fleet import FleetDesk
from broadcast.desks.inbound import SourceIntake
from broadcast.desks.live import LiveDesk
from broadcast.desks.metrics import MetricsReading
from broadcast.desks.overview import Overview
from broadcast.desks.province_reports import ProvinceReports
from broadcast.desks.replay import ReplayDesk
from broadcast.desks.reporting import Reports
from broadcast.desks.scheduling import SchedulingDesk
from broadcast.desks.setup import Setup
from broadcast.desks.sign_in import SignInDesk
from broadcast.desks.source_bulletins import SourceBulletinDesk
from broadcast.errors import LoaError
from broadcast.fleet.brokers import secret_client_id
from broadcast.programme.leader import ProgrammeLeader
from broadcast.programme.leadership import Leadership
from broadcast.sending import broadcasts, rendering
from broadcast.sending.answerback import Answer, AnswerBackWriter, Rejected
from broadcast.sending.dispatcher import Dispatcher
from broadcast.sending.outbox import Outbox
from broadcast.sending.voices import VoiceShelf
from broadcast.settings import Secrets, Settings
from broadcast.store import installation, media, sequences
from broadcast.store.db import Database
from broadcast.store.db import DatabaseUnreachable as DatabaseUnreachable  # for the web's 503
from broadcast.store.locks import process_lock
from wire import protocol

_LOGGER = logging.getLogger(__name__)


class BroadcastService:
    def __init__(
        self,
        settings: Settings,
        connect_mqtt: bool = True,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self.secrets = Secrets(settings.data_dir)
        settings.receiver_mqtt_tls()  # a receivers' CA that cannot be read stops the start here
        self.db = Database(settings.database_url)
        self.db.migrate()
        self.signing_key = self.secrets.signing_key()
        self._check_signing_key()
        self.media = media.media_store(self.db.engine, settings.media_dir)
        if isinstance(self.media, media.DatabaseMedia):
            self.media.copy_in()  # media from before this database was shared, once
        self.synthesizer = tts.Synthesizer(
            settings.tts_cache_dir, engine=settings.tts_engine, **settings.tts_options
        )
        self.voices = VoiceShelf(settings.voices_dir)
        self.renderer = rendering.MediaRenderer(
            self.synthesizer, self.media, settings.data_dir / "renders", self.voices
        )
        self.dispatcher = dispatcher
        self.outbox = Outbox(settings, self.db, self.media, self.renderer, lambda: self.dispatcher)
        self.bulletins = BulletinDesk(
            settings,
            self.db,
            self.media,
            render=lambda text, recording: self.outbox.render(text, recording).sha256,
            send=self.outbox.send,
        )
        self.announcements = AnnouncementDesk(
            self.db, self.media, self.outbox, programme_changed=self._programme_changed
        )
        self.live = LiveDesk(settings, self.db, self.media, self.outbox, self.secrets)
        self.scheduling = SchedulingDesk(
            settings, self.db, self.outbox, programme_changed=self._programme_changed
        )
        self.source_bulletins = SourceBulletinDesk(
            settings,
            self.db,
            self.outbox,
            self.scheduling,
            programme_changed=self._programme_changed,
        )
        self.reports = Reports(self.db, self.media)
        self.province_reports = ProvinceReports(self.db, self.reports)
        self.fleet = FleetDesk(
            settings,
            self.db,
            self.secrets,
            protocol.public_key_to_text(self.signing_key.public_key()),
            programme_changed=self._programme_changed,
        )
        self.admin = Administration(
            self.db, settings, register_device=self.fleet.register_device, voices=self.voices
        )
        self.calendar = CalendarDesk(self.db, self.media, self.secrets)
        self.replay = ReplayDesk(self.db, self.media, self.secrets.flask_secret_key)
        self.metrics = MetricsReading(self.db)
        self.overview = Overview(self.db)
        self.sign_in = SignInDesk(self.db)
        self.setup = Setup(self.db)
        self.inbound = SourceIntake(
            self.db, settings, self.media, forwarder=lambda: self.source_bulletins
        )
        self.leader = ProgrammeLeader(
            settings, self.db, lambda: self.dispatcher, self.outbox.render_for_schedule
        )
        self.scheduler = self.leader.scheduler
        self.leadership = Leadership(
            process_lock(self.db.engine, "scheduler", settings.scheduler_lock_path),
            settings.lock_retry_s,
            on_elected=self._on_elected,
            on_tick=self.leader.tick,
            on_lost=self._lost_leadership,
            on_paused=self.leader.paused,
            on_resumed=self._on_resumed,
        )
        self._started = False
        self.answers = AnswerBackWriter(self._apply_answers)
        if dispatcher is None and connect_mqtt:
            self.dispatcher = Dispatcher(
                settings.mqtt_host,
                settings.mqtt_port,
                SERVER_MQTT_USERNAME,
                self.secrets.mqtt_password,
                self.signing_key,
                next_seq=self._next_seq,
                publish_lock=process_lock(self.db.engine, "publish", settings.publish_lock_path),
                on_status=self.answers.put,
                on_event=self.answers.put,
                on_reconnect=self.leader.broker_restored,
                tls=settings.mqtt_tls_context(),
                on_rejected=lambda device_id, reason: self.answers.put(Rejected(device_id, reason)),
                epoch=self._epoch,
                numbers=self._numbers,
                brokers=settings.server_brokers,
                client_id=secret_client_id(SERVER_MQTT_USERNAME, self.secrets.mqtt_client_token),
            )

    def _check_signing_key(self) -> None:
        """Every server of one database signs with the key its receivers pin: the first one
        records it, and a node whose key file differs refuses to start (what to copy named).
        Their shared secrets are recorded the same way; a node whose differ is logged (and
        flagged by `loa doctor`): it would not resume the answer-back session."""
        self.secrets.ensure_shared()
        secrets_recorded = installation.agree(
            self.db.engine, installation.SECRETS, self.secrets.shared_fingerprint()
        )
        if secrets_recorded != self.secrets.shared_fingerprint():
            problem = installation.secrets_mismatch(self.settings.data_dir)
            _LOGGER.error("%s: %s", problem, installation.SECRETS_FIX)
        ours = protocol.public_key_to_text(self.signing_key.public_key())
        expected = installation.agree(self.db.engine, installation.SIGNING_KEY, ours)
        if expected != ours:
            self.db.dispose()
            key_path = self.settings.data_dir / "keys" / "server_ed25519.pem"
            problem = installation.key_mismatch(str(key_path), ours, expected)
            raise LoaError(f"{problem}: {installation.KEY_FIX}")

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.answers.start()
        if self.dispatcher is not None:
            self.dispatcher.start()
        self._started = True
        self.leadership.start()

    def stop(self) -> None:
        if self._started:
            self.leadership.stop_watching()
        self.leader.stop()
        self.outbox.shutdown()
        self.leadership.release()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.answers.stop()
        self.db.dispose()

    @property
    def leading(self) -> bool:
        """Whether this process runs the scheduler (and publishes manifests)."""
        return self.leadership.leading

    def _lost_leadership(self) -> None:
        """Another process took the scheduler while our database connection was down: stop
        this process (SIGTERM, a clean stop) so nothing fires twice; its supervisor (gunicorn,
        systemd) starts it again and it stands by."""
        _LOGGER.critical("scheduler lock lost to another process: stopping (pid %d)", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    def _on_elected(self) -> None:
        self.leader.elected()
        self.outbox.resume_pending()

    def _on_resumed(self) -> None:
        self.leader.resumed()
        self.outbox.resume_pending()

    def _next_seq(self, stream: str) -> int:
        return sequences.next_value(self.db.engine, stream)

    def _epoch(self) -> int:
        return sequences.current_value(self.db.engine, sequences.EPOCH)

    def _numbers(self, topics: Sequence[str]) -> tuple[list[int], int]:
        """A batch's sequence numbers and the epoch, in one transaction."""
        taken, epoch = sequences.take(self.db.engine, topics)
        return sequences.numbered(topics, taken), epoch

    # --- the programme -------------------------------------------------------------------------

    def _programme_changed(self) -> None:
        """Tell the leader (this process or another) to plan and publish again."""
        sequences.next_value(self.db.engine, sequences.PROGRAMME_REVISION)
        if self.leading:
            self.leader.refresh()

    # --- answer-back --------------------------------------------------------------------------

    def _apply_answers(self, answers: Sequence[Answer]) -> None:
        """Receivers' states (in arrival order) and events (`broadcasts.apply_events`, in
        arrival order) in one transaction (`broadcast.sending.answerback` batches them off the
        MQTT thread); the two touch different rows, so neither waits for the other."""
        statuses = [answer for answer in answers if isinstance(answer, protocol.DeviceStatus)]
        events = [answer for answer in answers if isinstance(answer, protocol.DeviceEvent)]
        rejected = Counter(
            answer.device_id or "unknown" for answer in answers if isinstance(answer, Rejected)
        )
        with self.db.session() as session:
            changes = broadcasts.apply_statuses(session, statuses)
            broadcasts.apply_events(session, events)
            for device_id, count in rejected.items():
                sequences.add(session, sequences.REJECTED_ANSWERS + device_id, count)
        returned = [
            status.device_id
            for status, change in zip(statuses, changes, strict=True)
            if change == broadcasts.StatusChange.RETURNED
        ]
        for device_id in returned:
            self.leader.device_returned(device_id)

    def _on_status(self, status: protocol.DeviceStatus) -> None:
        """One state, written at once (tests and callers that need it stored on return)."""
        self._apply_answers([status])

    def _on_event(self, event: protocol.DeviceEvent) -> None:
        self._apply_answers([event])
