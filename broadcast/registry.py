"""Device registry: registering a receiver creates its broker credentials and its config file."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.brokers import BrokerAccess, device_user, hash_password, server_user
from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.errors import ValidationError
from broadcast.models import Device, Zone
from broadcast.settings import Settings
from broadcast.zones import ancestors_and_self
from devices import protocol
from devices.config import MqttSettings, PlayerSettings, ReceiverConfig

_LOGGER = logging.getLogger(__name__)


def register_device(
    session: Session,
    settings: Settings,
    public_key_text: str,
    device_id: str,
    zone_id: str,
    name: str = "",
    player: PlayerSettings | None = None,
) -> tuple[Device, Path]:
    """Create the device and write its receiver config (with a fresh password) under devices/."""
    if not protocol.ID_PATTERN.fullmatch(device_id):
        raise ValidationError("id", f"device id {device_id!r} must be a lowercase slug")
    if session.get(Device, device_id) is not None:
        raise ValidationError("id", f"device {device_id!r} already exists")
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise ValidationError("zone", f"unknown zone {zone_id!r}")
    device = Device(id=device_id, name=name or device_id, zone_id=zone.id, mqtt_password_hash="")
    session.add(device)
    session.flush()
    return device, issue_credentials(session, settings, public_key_text, device, player)


def issue_credentials(
    session: Session,
    settings: Settings,
    public_key_text: str,
    device: Device,
    player: PlayerSettings | None = None,
) -> Path:
    """Give the device a new password and (re)write its config file; the old password stops working
    once the broker's access list is rewritten."""
    password = secrets.token_urlsafe(24)
    device.mqtt_password_hash = hash_password(password)
    session.flush()
    receiver_dir = settings.receivers_dir / device.id
    config = ReceiverConfig(
        device_id=device.id,
        zones=[zone.id for zone in ancestors_and_self(device.zone)],
        mqtt=MqttSettings(
            host=settings.receiver_mqtt_host,
            port=settings.receiver_mqtt_port,
            username=device.id,
            password=password,
            tls=settings.receiver_mqtt_tls(),
        ),
        server_public_key=public_key_text,
        data_dir=str(receiver_dir),
        player=player or PlayerSettings(kind="file", dir=str(receiver_dir / "played")),
    )
    path = settings.devices_dir / f"{device.id}.json"
    config.save(path)
    _LOGGER.info("wrote receiver config %s", path)
    return path


def broker_access(session: Session, server_password: str) -> BrokerAccess:
    """Who may connect to the broker and which topics each may use: the server and every device
    (`broadcast.brokers.access`: the server publishes commands and every manifest; a device
    reads its own and its zones' commands and its own manifest, writes its own state and events).
    """
    users = [server_user(SERVER_MQTT_USERNAME, server_password)]
    for device in session.scalars(select(Device).order_by(Device.id)):
        zone_ids = [zone.id for zone in ancestors_and_self(device.zone)]
        users.append(device_user(device.id, "", zone_ids, password_hash=device.mqtt_password_hash))
    return BrokerAccess(users=tuple(users))
