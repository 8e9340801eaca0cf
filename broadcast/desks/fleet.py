"""The fleet desk (đội loa): receivers registered, their config files rewritten, and the keys
that sign what they obey rotated.

A receiver's config file carries its broker login and the server's public key, so both what the
embedded broker allows (its access file) and the key the configs name are kept here. The
public key is the one receivers trust: after `rotate_keys` with a new key, configs written by
this desk carry the new one, while a running dispatcher keeps signing with the key it started
with until its process restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select

from broadcast.errors import N_, ValidationError
from broadcast.fleet import receivers, registry
from broadcast.people import accounts, audit, zones
from broadcast.people.permissions import Action
from broadcast.settings import Secrets, Settings
from broadcast.store import installation, sequences
from broadcast.store.db import Database
from broadcast.store.models import Device, User
from wire import protocol

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshedConfig:
    device_id: str
    path: Path
    new_password: bool  # the old config was gone or stale: the broker's access list changed
    # the broker's access list, as Loa last wrote it, does not let it hear all its zones yet
    broker_behind: bool = False


@dataclass(frozen=True)
class KeyRotation:
    epoch: int  # the new sequence epoch every message carries from now on
    public_key: str  # the signing key's public half (base64), new or unchanged
    new_key: bool


class FleetDesk:
    """`service.fleet`: receivers registered and refreshed, keys rotated."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        secrets: Secrets,
        public_key_text: str,
        programme_changed: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._secrets = secrets
        self.public_key_text = public_key_text  # what receivers' configs name (base64)
        self._programme_changed = programme_changed

    def register_device(
        self, device_id: str, zone_id: str, name: str = "", user_id: int | None = None
    ) -> Path:
        """A new receiver: broker credentials, its config file, and a manifest of its own.
        From the web an admin (`user_id`) registers it, in a zone of theirs; the CLI passes
        no user."""
        with self._db.session() as session:
            admin = (
                None
                if user_id is None
                else accounts.require_user(session, user_id, Action.ADMINISTER)
            )
            if admin is not None and not zones.in_scope(session, admin, zone_id):
                raise ValidationError(
                    "zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id[:63]
                )
            _device, path = registry.register_device(
                session, self._settings, self.public_key_text, device_id, zone_id, name=name
            )
            audit.record(
                session,
                admin,
                audit.Action.DEVICE_REGISTER,
                f"device:{device_id}",
                {"zone": zone_id},
            )
        self._refresh_broker_access()
        self._programme_changed()
        return path

    def refresh_device_configs(
        self, device_ids: list[str] | None = None, user_id: int | None = None
    ) -> list[RefreshedConfig]:
        """Rewrite receivers' configs (all when `device_ids` is None) with today's broker
        address, TLS, zones and key; each keeps its password unless its old config is gone.
        The console (no `user_id`) or an installation-wide admin only: it touches the fleet."""
        refreshed: list[RefreshedConfig] = []
        with self._db.session() as session:
            actor = (
                None if user_id is None else accounts.require_installation_admin(session, user_id)
            )
            query = select(Device).order_by(Device.id)
            if device_ids is not None:
                known = set(session.scalars(select(Device.id).where(Device.id.in_(device_ids))))
                unknown = [device_id for device_id in device_ids if device_id not in known]
                if unknown:
                    raise ValidationError(
                        "id", N_("không có cụm loa “%(id)s”"), "unknown_device", id=unknown[0]
                    )
                query = query.where(Device.id.in_(device_ids))
            for device in session.scalars(query):
                path, new_password = registry.refresh_config(
                    session, self._settings, self.public_key_text, device
                )
                audit.record(
                    session,
                    actor,
                    audit.Action.DEVICE_CONFIG,
                    f"device:{device.id}",
                    {"form": "refresh", "new_password": new_password},
                )
                refreshed.append(RefreshedConfig(device.id, path, new_password))
        # new passwords, and zones the embedded broker must now allow (mosquitto: the command
        # says to run `loa mqtt-config`)
        self._refresh_broker_access()
        with self._db.session() as session:
            behind = {
                device.id
                for device in session.scalars(
                    select(Device).where(Device.id.in_([item.device_id for item in refreshed]))
                )
                if receivers.zone_check(device).not_allowed
            }
        return [replace(item, broker_behind=item.device_id in behind) for item in refreshed]

    def _refresh_broker_access(self) -> None:
        """The embedded broker follows its access file: rewrite it, so a receiver registered
        now can log in without a restart. (mosquitto: `loa mqtt-config`, then reload it.)"""
        path = self._settings.broker_access_path
        if not path.exists():
            return
        with self._db.session() as session:
            access = registry.broker_access(session, self._secrets.mqtt_password)
            access.save(path)
            registry.record_broker_access(session, access)
        _LOGGER.info("broker access file %s rewritten", path)

    def rotate_keys(self, new_key: bool = True, user_id: int | None = None) -> KeyRotation:
        """The way back for receivers that refuse a stream's commands as stale (they accepted a
        sequence far beyond its counter: a leaked key, a bug, a restored database): a new
        sequence epoch, which they accept at once and after which the older epoch is refused
        everywhere; with `new_key`, also a new signing key, which receivers trust only from
        their config file (`loa device refresh`), since whoever holds the old key could sign
        anything. Processes already running read the epoch per message but keep the key they
        started with: restart them after a new key. The console (no `user_id`) or an
        installation-wide admin only: every receiver of every commune trusts the key."""
        actor_id = None
        if user_id is not None:
            with self._db.session() as session:
                actor_id = accounts.require_installation_admin(session, user_id).id
        if new_key:
            signing_key = self._secrets.replace_signing_key()
            self.public_key_text = protocol.public_key_to_text(signing_key.public_key())
            installation.replace(self._db.engine, installation.SIGNING_KEY, self.public_key_text)
        epoch = sequences.advance_epoch(self._db.engine, int(time.time()))
        with self._db.session() as session:
            audit.record(
                session,
                None if actor_id is None else session.get(User, actor_id),
                audit.Action.KEYS_ROTATE,
                "keys",
                {"epoch": epoch, "new_key": new_key, "public_key": self.public_key_text},
            )
        _LOGGER.warning(
            "new sequence epoch %d (signing key %s, %s)",
            epoch,
            self.public_key_text,
            "new" if new_key else "kept",
        )
        return KeyRotation(epoch, self.public_key_text, new_key)
