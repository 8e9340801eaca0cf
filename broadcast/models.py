"""Storage model (SQLAlchemy 2). Datetimes are stored naive in UTC, shown in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Zone(Base):
    """Commune → villages (thôn, xóm, tổ dân phố); receivers belong to a zone."""

    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), nullable=True)

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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    online: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(20), default="offline")
    boot_id: Mapped[str] = mapped_column(String(64), default="")
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)
    current_broadcast_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

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
    """Content (bản tin) that schedules turn into broadcasts: a text to synthesize, or a recording
    (for ethnic-minority languages and voices no engine speaks)."""

    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="tts", server_default="tts")
    recording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Schedule(Base):
    """When a bulletin plays: once at `run_at` (UTC) or daily at `time_of_day` (local HH:MM)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"))
    kind: Mapped[str] = mapped_column(String(20))
    run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    time_of_day: Mapped[str | None] = mapped_column(String(5), nullable=True)
    zone_ids: Mapped[list[str]] = mapped_column(JSON)
    priority: Mapped[str] = mapped_column(String(20))
    repeat: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    bulletin: Mapped[Bulletin] = relationship()


class Broadcast(Base):
    """One dispatch of content to a set of zones: the broadcast log."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(20))
    repeat: Mapped[int] = mapped_column(default=1)
    zone_ids: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str] = mapped_column(Text, default="")
    recording_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    media_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tts_engine: Mapped[str] = mapped_column(String(20), default="")
    command_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True)

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="broadcast", order_by="Delivery.device_id"
    )
    created_by: Mapped[User | None] = relationship()


class Delivery(Base):
    """What one receiver did with one broadcast, from its answer-back events."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "device_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[datetime | None] = mapped_column(nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")
