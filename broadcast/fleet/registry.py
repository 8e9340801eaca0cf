"""Device registry: registering a receiver creates its broker credentials and its config file."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.errors import N_, ValidationError
from broadcast.fleet import receivers
from broadcast.fleet.brokers import (
    ZONE_COMMAND_FILTER,
    BrokerAccess,
    bcrypt_hash,
    device_user,
    hash_password,
    new_client_token,
    secret_client_id,
    server_user,
    verify_password,
)
from broadcast.people.zones import ancestors_and_self
from broadcast.settings import Secrets, Settings
from broadcast.store.models import Device, Zone
from wire import protocol
from wire.config import (
    ConfigError,
    MqttSettings,
    PlayerSettings,
    ReceiverConfig,
    broker_settings,
)

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
        raise ValidationError(
            "id",
            N_("mã cụm loa “%(id)s” chỉ gồm chữ thường không dấu, số và dấu gạch ngang"),
            "invalid_slug",
            id=device_id,
        )
    if device_id.startswith(SERVER_MQTT_USERNAME):
        # the server's broker login and client ids (loa-server, loa-server-<process>)
        raise ValidationError(
            "id",
            N_("mã cụm loa “%(id)s” dành riêng cho máy chủ: hãy chọn tên khác"),
            "reserved",
            id=device_id,
        )
    if session.get(Device, device_id) is not None:
        raise ValidationError("id", N_("mã cụm loa “%(id)s” đã có"), "already_exists", id=device_id)
    zone = session.get(Zone, zone_id)
    if zone is None:
        raise ValidationError("zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id)
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
    """Give the device a new password (hashed for mosquitto and for nats-server) and client id
    token and (re)write its config file; the old password and client id stop working once the
    broker's access list is rewritten."""
    password = secrets.token_urlsafe(24)
    device.mqtt_password_hash = hash_password(password)
    device.mqtt_password_bcrypt = bcrypt_hash(password)
    device.mqtt_client_token = new_client_token()
    session.flush()
    receiver_dir = settings.receivers_dir / device.id
    config = ReceiverConfig(
        device_id=device.id,
        zones=_zone_ids(device),
        mqtt=_broker_login(settings, device, password),
        server_public_key=public_key_text,
        data_dir=str(receiver_dir),
        player=player or PlayerSettings(kind="file", dir=str(receiver_dir / "played")),
    )
    path = settings.devices_dir / f"{device.id}.json"
    config.save(path)
    _LOGGER.info("wrote receiver config %s", path)
    return path


def refresh_config(
    session: Session, settings: Settings, public_key_text: str, device: Device
) -> tuple[Path, bool]:
    """Rewrite a receiver's config with the server's broker address, TLS, zones and key of now
    (after TLS is turned on, the broker moves, or the receiver changes zone), keeping the rest
    of it and its password. A receiver without a client id token (registered before tokens)
    gets one: its config then names `<device id>-<token>`; one without a bcrypt hash (for
    nats-server) gets one of the password it keeps. Without a readable old config, or when its
    password no longer matches, a new password is issued: True then, and the broker's access
    list must be rewritten.
    """
    path = settings.devices_dir / f"{device.id}.json"
    try:
        old = ReceiverConfig.load(path)
    except ConfigError as exc:
        _LOGGER.warning("issuing new credentials for %s: %s", device.id, exc)
        return issue_credentials(session, settings, public_key_text, device), True
    if not verify_password(old.mqtt.password, device.mqtt_password_hash):
        _LOGGER.warning("issuing new credentials for %s: its config's password is stale", device.id)
        return issue_credentials(session, settings, public_key_text, device, old.player), True
    if not device.mqtt_client_token:
        device.mqtt_client_token = new_client_token()
    if not device.mqtt_password_bcrypt:
        device.mqtt_password_bcrypt = bcrypt_hash(old.mqtt.password)
    session.flush()
    login = _broker_login(settings, device, old.mqtt.password)
    fresh = replace(
        old,
        zones=_zone_ids(device),
        mqtt=replace(old.mqtt, host=login.host, port=login.port, hosts=login.hosts,
                     username=login.username, tls=login.tls, client_id=login.client_id),
        server_public_key=public_key_text,
    )  # fmt: skip
    fresh.save(path)
    _LOGGER.info("rewrote receiver config %s", path)
    return path, False


def _zone_ids(device: Device) -> list[str]:
    """The receiver's zone and every zone above it: the command topics it listens on."""
    return [zone.id for zone in ancestors_and_self(device.zone)]


def _broker_login(settings: Settings, device: Device, password: str) -> MqttSettings:
    return broker_settings(
        settings.receiver_brokers,
        username=device.id,
        password=password,
        tls=settings.receiver_mqtt_tls(),
        client_id=secret_client_id(device.id, device.mqtt_client_token),
    )


def record_broker_access(session: Session, access: BrokerAccess) -> None:
    """Remember, for every device, the zones `access` (just written for the broker) lets it
    hear, and read its health again: a receiver registered in zones its broker does not allow
    needs attention (`receivers.zone_check`). Called wherever the access list is written."""
    prefix, suffix = ZONE_COMMAND_FILTER.split("+")
    for device in session.scalars(select(Device)):
        user = access.user(device.id)
        topics = user.subscribe if user is not None else ()
        device.broker_zones = [
            topic[len(prefix) : -len(suffix)]
            for topic in topics
            if topic.startswith(prefix) and topic.endswith(suffix)
        ]
        device.health_ok = receivers.device_health_ok(device)


def broker_access(session: Session, server_password: str, server_bcrypt: str = "") -> BrokerAccess:
    """Who may connect to the broker and which topics each may use: the server and every device
    (`broadcast.fleet.brokers.access`: the server publishes commands and every manifest; a device
    reads its own and its zones' commands and its own manifest, writes its own state and events).
    Each user carries its bcrypt hash where one is stored (`server_bcrypt` for the server's).
    """
    users = [server_user(SERVER_MQTT_USERNAME, server_password, bcrypt_hash=server_bcrypt)]
    for device in session.scalars(select(Device).order_by(Device.id)):
        users.append(
            device_user(
                device.id,
                "",
                _zone_ids(device),
                password_hash=device.mqtt_password_hash,
                client_token=device.mqtt_client_token,
                bcrypt_hash=device.mqtt_password_bcrypt,
            )
        )
    return BrokerAccess(users=tuple(users))


def server_bcrypt(secrets_file: Secrets) -> str:
    """The bcrypt hash of the server's broker password, made once and kept in secrets.json
    beside the password (the settings floor cannot hash: bcrypt lives with the brokers)."""
    return secrets_file.mqtt_password_bcrypt(bcrypt_hash)


def devices_needing_refresh(session: Session) -> list[str]:
    """Receivers a nats-server cluster cannot serve as they are: no bcrypt hash of their
    password (registered before it was kept) or no secret client id (before tokens), which any
    other login could take there. `loa device refresh` gives them both, keeping passwords."""
    query = (
        select(Device.id)
        .where((Device.mqtt_password_bcrypt == "") | (Device.mqtt_client_token == ""))
        .order_by(Device.id)
    )
    return list(session.scalars(query))
