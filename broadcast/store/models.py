"""Storage model (SQLAlchemy 2). Datetimes are stored naive in UTC, shown in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    insert,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Zone(Base):
    """Province → communes → villages (thôn, bản, tổ dân phố); receivers belong to a zone."""

    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("code", name="uq_zones_code"),)

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), nullable=True)
    # mã đơn vị hành chính of a province (2 digits) or a commune (5): how the province's
    # systems and CAP alerts name it; unique when present, NULL for villages
    code: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # the voice a province or commune is read in (`broadcast.sending.voices`); "" for the
    # installation's engine, and for the villages, which follow their commune
    voice: Mapped[str] = mapped_column(String(63), default="", server_default="")
    # a commune's replay page and podcast (nghe lại, `desks.replay`): off until the commune
    # opts in, since an installation may not want its notices on the open web (0017)
    replay_public: Mapped[bool] = mapped_column(default=False, server_default=false())

    parent: Mapped[Zone | None] = relationship(remote_side="Zone.id", back_populates="children")
    children: Mapped[list[Zone]] = relationship(back_populates="parent")
    devices: Mapped[list[Device]] = relationship(back_populates="zone", order_by="Device.id")


class Device(Base):
    """A receiver (cụm loa): its broker credentials and its last reported state."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    mqtt_password_hash: Mapped[str] = mapped_column(String(300))
    # the secret end of its MQTT client id (`<id>-<token>`, in its config): an engine that lets
    # any login take any id (nats-server) cannot be guessed into closing it; "" = the id alone
    mqtt_client_token: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # a bcrypt hash of the same password, beside the `$7$` one: nats-server verifies only
    # bcrypt, so a cluster's config is written from it (`loa nats-config`); "" = none yet
    mqtt_password_bcrypt: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    online: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(20), default="offline")
    boot_id: Mapped[str] = mapped_column(String(64), default="")
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)
    current_broadcast_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # what the receiver's heartbeat reports beyond its state (cache, clock offset, …)
    status_extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # that heartbeat read against `receivers.health_ok` (media cached, clock in step), kept as
    # a column so a province's dashboard counts receivers needing attention in SQL
    health_ok: Mapped[bool] = mapped_column(default=True, server_default=true())
    # the zones whose commands the broker's access list let it hear when Loa last wrote that
    # list (`loa mqtt-config`, the embedded broker's file); None: never written since 0006
    broker_zones: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # the item list last published on its manifest topic, to publish only what changed
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    manifest_published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # its number on the manifest topic, which the receiver's state should report back
    manifest_seq: Mapped[int | None] = mapped_column(nullable=True)

    zone: Mapped[Zone] = relationship(back_populates="devices")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), nullable=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    locale: Mapped[str | None] = mapped_column(String(10), nullable=True)  # UI language
    # raised to revoke the account's calendar feed link (`desks.calendar.feed_token`)
    calendar_feed_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    zone: Mapped[Zone | None] = relationship()


class ApiToken(Base):
    """Bearer tokens for the JSON API; only the sha256 of a token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)

    user: Mapped[User] = relationship()


class Bulletin(Base):
    """Content (bản tin) that schedules turn into broadcasts: a text to synthesize, a recording
    (for ethnic-minority languages and voices no engine speaks) or a stream relay (tiếp sóng)."""

    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="tts", server_default="tts")
    recording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    relay_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # of a relay
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # whose it is: the zone of the account that wrote it (a commune, the province); None: made
    # by an installation-wide account. Staff of that zone and above see and edit it.
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), nullable=True, index=True)
    # approval (duyệt): draft → submitted → approved | rejected (→ edited: draft again)
    status: Mapped[str] = mapped_column(String(20), default="draft", server_default="draft")
    source_name: Mapped[str] = mapped_column(String(300), default="", server_default="")
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    review_comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    # nội bộ: its broadcasts stay off the public replay page and podcast (0017)
    internal: Mapped[bool] = mapped_column(default=False, server_default=false())

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])


class Schedule(Base):
    """When a bulletin plays (`broadcast.programme.rules.Rule` reads the timing columns).

    `run_at` (UTC) is the run of a one-off and the first run of a series; `time_of_day` (local
    HH:MM) with `weekdays` (0 = Monday), with `lunar_days` (1-30) and `lunar_month` (1-12) of
    the lunar kinds, or `cron` (local) the others; `valid_from`/`valid_to` are local dates.
    The media is rendered when the schedule is made (`media_sha256`, `airtime_s` = duration ×
    repeat), so overlaps are checked on real durations and receivers can fetch it ahead.
    `planned_until`: runs before it already have their broadcast row.
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"))
    kind: Mapped[str] = mapped_column(String(20))
    run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    time_of_day: Mapped[str | None] = mapped_column(String(5), nullable=True)
    weekdays: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(100), nullable=True)
    interval_h: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lunar_days: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    lunar_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_key: Mapped[str | None] = mapped_column(String(63), nullable=True)
    valid_from: Mapped[date | None] = mapped_column(nullable=True)
    valid_to: Mapped[date | None] = mapped_column(nullable=True)
    zone_ids: Mapped[list[str]] = mapped_column(JSON)
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    priority: Mapped[str] = mapped_column(String(20))
    repeat: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)
    media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tts_engine: Mapped[str] = mapped_column(String(20), default="", server_default="")
    airtime_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    planned_until: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    bulletin: Mapped[Bulletin] = relationship()


class Broadcast(Base):
    """One item played on a set of zones and devices: the broadcast log.

    An announcement is sent at once (`play_at` = dispatch + lead). Every run of a schedule has
    its own row, made ahead when it enters the manifest horizon (`occurrence_at`, unique per
    schedule; `item_id` is its id in the receivers' manifests).
    """

    __tablename__ = "broadcasts"
    __table_args__ = (
        UniqueConstraint("schedule_id", "occurrence_at", name="uq_broadcasts_occurrence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(20))
    repeat: Mapped[int] = mapped_column(default=1)
    zone_ids: Mapped[list[str]] = mapped_column(JSON)
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    source: Mapped[str] = mapped_column(String(20))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"), nullable=True)
    occurrence_at: Mapped[datetime | None] = mapped_column(nullable=True)
    item_id: Mapped[str] = mapped_column(String(100), default="", server_default="")
    play_at: Mapped[datetime | None] = mapped_column(nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    content: Mapped[str] = mapped_column(String(20), default="media", server_default="media")
    relay_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # of a relay
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str] = mapped_column(Text, default="")
    recording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # a live broadcast's chime, which its PLAY carries to play before the stream
    lead_in_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tts_engine: Mapped[str] = mapped_column(String(20), default="")
    command_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # nội bộ: kept off the public replay page and podcast (a bulletin's flag counts too, 0017)
    internal: Mapped[bool] = mapped_column(default=False, server_default=false())

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="broadcast", order_by="Delivery.device_id"
    )
    created_by: Mapped[User | None] = relationship()


class BroadcastZone(Base):
    """A zone a broadcast was aimed at: `Broadcast.zone_ids` as rows, indexed by zone, so "what
    sounded in this commune" reads the commune's rows, not every broadcast's list (0013)."""

    __tablename__ = "broadcast_zones"
    __table_args__ = (Index("ix_broadcast_zones_zone", "zone_id", "broadcast_id"),)

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    zone_id: Mapped[str] = mapped_column(String(63), primary_key=True)


@event.listens_for(Broadcast, "after_insert")
def _list_zones(_mapper: Any, connection: Connection, broadcast: Broadcast) -> None:
    """A broadcast's `broadcast_zones` rows, written with it whoever makes it (a broadcast's
    targets never change once it is stored)."""
    listed = sorted({z for z in broadcast.zone_ids or [] if isinstance(z, str)})
    if listed:
        connection.execute(
            insert(BroadcastZone),
            [{"broadcast_id": broadcast.id, "zone_id": zone_id} for zone_id in listed],
        )


class Delivery(Base):
    """What one receiver did with one broadcast, from its answer-back events."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "device_id"),
        # what sounded in a zone: its receivers' deliveries, not the province's (0013)
        Index("ix_deliveries_device_broadcast", "device_id", "broadcast_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    preempted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")


class BulletinForward(Base):
    """A province bulletin sent down to one commune (Thông tư 39/2020/TT-BTTTT) and what the
    commune did with it: received (in its inbox), placed (a schedule of its programme: by the
    officer for a normal one, at the head of the next run for a priority one; an emergency's
    broadcast), declined (with the reason) or played (its receivers finished it)."""

    __tablename__ = "bulletin_forwards"
    __table_args__ = (
        UniqueConstraint("bulletin_id", "commune_id", name="uq_bulletin_forwards_commune"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"), index=True)
    commune_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    priority: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"), nullable=True)
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), nullable=True)
    # UTC: the slot it was placed in, or the start of the programme run a priority one heads
    run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)  # among that run's
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")  # why declined
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    played_at: Mapped[datetime | None] = mapped_column(nullable=True)

    bulletin: Mapped[Bulletin] = relationship()
    commune: Mapped[Zone] = relationship()
    sent_by: Mapped[User | None] = relationship(foreign_keys=[sent_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class Sequence(Base):
    """The last sequence number of each message stream (an MQTT topic): persisted, so a
    restarted server goes on upward and receivers never take its messages for replays."""

    __tablename__ = "sequences"

    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class DevicePresence(Base):
    """Each time a receiver went online or offline: offline time in the monthly report."""

    __tablename__ = "device_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    online: Mapped[bool] = mapped_column()


class LoginAttempt(Base):
    """Recent sign-in attempts, for the login rate limit (shared by every web worker)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(80))
    # What the limits count by (`accounts.LoginSource`): the client's network, or
    # "device:<id>" for a device known for this user; the column kept its first name.
    source: Mapped[str] = mapped_column("remote_addr", String(100))
    success: Mapped[bool] = mapped_column()


class AuditEntry(Base):
    """One privileged action (nhật ký): who, what, when, from where. Append-only; each entry's
    `hash` covers its fields and the previous entry's hash (`broadcast.people.audit`)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(200))
    # where it happened (the acting account's zone), so a commune's admin reads its own; None:
    # installation-wide. Hashed when set (entries from before zones were recorded have none).
    zone_id: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest entry, one row: updating it first serializes writers (SQLite and
    PostgreSQL alike), so two processes never chain onto the same entry."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class InboundItem(Base):
    """One bulletin or CAP alert an external source-information system posted (HTTT nguồn):
    kept by its idempotency key, so a retried POST finds what the first one made."""

    __tablename__ = "inbound_items"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_inbound_items_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # the client's Idempotency-Key, or "cap:<sender> <identifier>" for a CAP alert
    key: Mapped[str] = mapped_column(String(600))
    body_sha256: Mapped[str] = mapped_column(String(64))  # the same key with another body: 409
    kind: Mapped[str] = mapped_column(String(10))  # "bulletin" or "cap"
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    disposition: Mapped[str] = mapped_column(String(20))  # broadcast, correct, cancel, ignore
    priority: Mapped[str | None] = mapped_column(String(20), nullable=True)
    zone_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # the communes
    title: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was ignored
    valid_until: Mapped[datetime | None] = mapped_column(nullable=True)
    # what the province desk made of it (`source_bulletins`); None until it was sent down
    sent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # a CAP alert's (sender, identifier): what a later Update or Cancel names in <references>
    cap_sender: Mapped[str | None] = mapped_column(String(255), nullable=True)
    cap_identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_items.id"), nullable=True)


class MediaBlob(Base):
    """An MP3 under its sha256, shared by every server of a PostgreSQL database (each keeps
    its media directory as a cache of it: `broadcast.store.media`). Written once, never
    changed; empty on SQLite, whose single server keeps media on files."""

    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


class InstallationFact(Base):
    """What every server of this database must agree on, by name (`signing_key`: the public
    key receivers pin, which each node's key file must match)."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """Góp ý: what a listener wrote about a broadcast on a commune's public replay page. Stored
    pending; the commune's officer approves it (shown under the item) or hides it (0017)."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_client", "client_key", "created_at"),
        Index("ix_feedback_broadcast", "broadcast_id", "created_at"),
        Index("ix_feedback_zone_status", "zone_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))  # the commune's page
    name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    # an HMAC of the client's network (`accounts.client_network`): counts, not an address
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    moderated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    moderated_at: Mapped[datetime | None] = mapped_column(nullable=True)
