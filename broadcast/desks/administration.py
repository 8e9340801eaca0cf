"""Administration (quản trị): users, zones, receivers and the audit log, for admins only.

Every method checks that the acting user is an active admin (PermissionDenied otherwise) and
every change writes its audit entry in the same transaction. Passwords are never shown except
once, to the admin who generated them, and never logged.

A receiver's config file holds its broker password, so reading it (as a file or as a QR code for
the installer's phone) is itself audited (`DEVICE_CONFIG`). The QR code holds the config's
*compact form*: the same JSON without the fields that equal their defaults, which
`wire.config.ReceiverConfig.from_dict` reads back to the same config (checked before it is
encoded). That keeps the code small enough for a phone camera (about version 12 instead of 26).

Where: an admin bound to a zone works only in its subtree (a province admin in its communes
and their villages, a commune admin in its commune); one bound to no zone, everywhere. Users,
zones, receivers and audit entries outside the subtree are hidden: asking for one by id is a
NotFound, as for one that does not exist. A zone's id or code in the wrong subtree is refused
as unknown too.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast.const import Role, ZoneKind
from broadcast.desks import setup
from broadcast.errors import N_, NotFound, PermissionDenied, ValidationError
from broadcast.fleet import receivers
from broadcast.people import accounts, audit, permissions, zones
from broadcast.people.permissions import Action
from broadcast.sending.voices import VoiceShelf
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import AuditEntry, Device, User, Zone
from broadcast.store.paging import Page, clamp_page
from wire import protocol
from wire.config import ConfigError, MqttSettings, ReceiverConfig

_LOGGER = logging.getLogger(__name__)

AUDIT_PER_PAGE = 50
DEVICES_PER_PAGE = 100
MAX_NAME_CHARS = 200
MAX_QR_VERSION = 25  # beyond it a phone camera struggles with a code on a screen
QR_CA_FILE = "/etc/loa/mqtt-ca.pem"  # where a QR-installed Pi keeps a CA too large for the code
_USERNAME = re.compile(r"^[^\s\x00-\x1f]{1,80}$")
# what `broadcast.people.audit.verify` reports, as stable codes the page can word in any language
AUDIT_PROBLEMS = {
    "an entry is missing": "missing",
    "the link to the previous entry is broken": "link",
    "the entry was changed": "changed",
    "the newest entries were removed": "truncated",
}
_CONFIG_REQUIRED = frozenset({"device_id", "zones", "mqtt", "server_public_key", "data_dir"})
_CONFIG_REQUIRED_INNER = {"mqtt": frozenset({"host", "port", "username", "password"})}

RegisterDevice = Callable[..., Path]


# --- rows the pages show -------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    full_name: str
    role: str
    zone_id: str | None
    zone_name: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class ZoneRow:
    id: str
    name: str
    kind: str
    parent_id: str | None
    parent_name: str
    devices: int
    code: str | None = None  # mã đơn vị hành chính (a province's or a commune's)
    depth: int = 0  # below the top of the admin's tree (0: its own zone, or the root)


@dataclass(frozen=True)
class ZoneChoice:
    """A zone an account may be bound to; id "" is none (installation-wide)."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class ZoneForm:
    """What the admin may create: the kinds, and the zones each may sit under (None: at the
    root, for an installation-wide admin only)."""

    kinds: tuple[str, ...]
    parents: dict[str, tuple[ZoneChoice | None, ...]]


@dataclass(frozen=True)
class DeviceRow:
    id: str
    name: str
    zone_id: str
    zone_name: str
    online: bool
    state: str
    last_seen: datetime | None
    has_config: bool


@dataclass(frozen=True)
class DevicePage(Page[DeviceRow]):
    zone_id: str  # the zone filter, "" for every zone


@dataclass(frozen=True)
class NewPassword:
    """A password to show once: generated for a new user or a reset (None when the admin
    typed it)."""

    user_id: int
    username: str
    password: str | None


@dataclass(frozen=True)
class QrCode:
    svg: bytes
    payload: str
    version: int
    error: str
    ca_file: str = ""  # the broker's CA left out of the code: copy it to this file on the Pi


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    username: str
    action: str
    target: str
    detail: str
    origin: str


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    entries: int
    broken_seq: int | None
    problem: str  # "", or one of AUDIT_PROBLEMS' codes


@dataclass(frozen=True)
class AuditPage(Page[AuditRow]):
    check: AuditCheck


VOICED_KINDS = (ZoneKind.PROVINCE.value, ZoneKind.COMMUNE.value)


@dataclass(frozen=True)
class VoiceChoice:
    zone_id: str
    name: str
    kind: str
    voice: str  # "" for the installation's engine


@dataclass(frozen=True)
class VoicePage:
    voices: tuple[str, ...]  # installed (`loa voice add`)
    places: tuple[VoiceChoice, ...]


# --- the service ---------------------------------------------------------------------------


class Administration:
    """The admin pages' one entry point (`BroadcastService.admin`)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        register_device: RegisterDevice,
        voices: VoiceShelf | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._register_device = register_device
        self._voices = voices if voices is not None else VoiceShelf(settings.voices_dir)

    # users

    def list_users(self, user_id: int) -> list[UserRow]:
        """The accounts bound inside the admin's zone (every account for an installation-wide
        admin; installation-wide accounts only to them)."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            query = select(User).order_by(User.username)
            scope = zones.scope_ids(session, admin)
            if scope is not None:
                query = query.where(User.zone_id.in_(scope))
            return [_user_row(user) for user in session.scalars(query)]

    def user_zone_choices(self, user_id: int) -> dict[str, list[ZoneChoice]]:
        """Role → the zones this admin may bind an account of that role to (in tree order;
        "" first when it may be installation-wide): what the users page offers, exactly what
        `create_user` and `change_role` accept. A role with no choice is absent."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            lines = setup.zone_tree(session, admin)
            found: dict[str, list[ZoneChoice]] = {}
            for role in Role:
                choices: list[ZoneChoice] = []
                if admin.zone is None and _binds(session, role, None):
                    choices.append(ZoneChoice("", "", ""))
                kinds = set(permissions.zone_kinds(role))
                choices.extend(
                    ZoneChoice(line.id, line.name, line.kind)
                    for line in lines
                    if ZoneKind(line.kind) in kinds
                )
                if choices:
                    found[role.value] = choices
            return found

    def create_user(
        self,
        user_id: int,
        username: str,
        role: str,
        zone_id: str = "",
        full_name: str = "",
        password: str = "",
    ) -> NewPassword:
        """A new account; without a typed password one is generated (shown once)."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            name = _clean_username(session, username)
            chosen_role = _clean_role(role)
            zone = _clean_user_zone(session, admin, chosen_role, zone_id)
            generated = not password
            secret = accounts.generate_password() if generated else _clean_password(password)
            user = accounts.create_user(
                session,
                name,
                secret,
                chosen_role,
                zone.id if zone is not None else None,
                full_name=_clean_text(full_name, "full_name", N_("Họ tên"), required=False),
            )
            audit.record(
                session,
                admin,
                audit.Action.USER_CREATE,
                f"user:{user.id}",
                {
                    "username": user.username,
                    "role": user.role,
                    "zone": user.zone_id,
                    "password": "generated" if generated else "typed",
                },
            )
            return NewPassword(user.id, user.username, secret if generated else None)

    def set_active(self, user_id: int, target_id: int, active: bool) -> None:
        """Disable (khóa) or enable an account; an admin cannot lock themself out, so some
        admin always remains."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            user = _target_user(session, admin, target_id)
            if not active:
                _check_not_self(admin, user)
            if user.active == active:
                return
            user.active = active
            audit.record(
                session,
                admin,
                audit.Action.USER_UPDATE,
                f"user:{user.id}",
                {"username": user.username, "active": active},
            )
        _LOGGER.info("user %s %s by admin %s", target_id, "enabled" if active else "disabled",
                     user_id)  # fmt: skip

    def reset_password(self, user_id: int, target_id: int) -> NewPassword:
        """A new generated password, shown once to the admin."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            user = _target_user(session, admin, target_id)
            secret = accounts.generate_password()
            accounts.set_password(user, secret)
            revoked = accounts.revoke_tokens(session, user)  # a reset means: trust nothing old
            audit.record(
                session,
                admin,
                audit.Action.USER_PASSWORD,
                f"user:{user.id}",
                {"username": user.username, "password": "generated", "tokens_revoked": revoked},
            )
            return NewPassword(user.id, user.username, secret)

    def change_role(self, user_id: int, target_id: int, role: str, zone_id: str = "") -> None:
        """A new role and the zone it is bound to (a zone of the admin's, one the role may have)."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            user = _target_user(session, admin, target_id)
            chosen_role = _clean_role(role)
            zone = _clean_user_zone(session, admin, chosen_role, zone_id)
            if not permissions.allowed(chosen_role, Action.ADMINISTER):  # may not lock self out
                _check_not_self(admin, user)
            previous = {"role": user.role, "zone": user.zone_id}
            user.role = chosen_role.value
            user.zone_id = zone.id if zone is not None else None
            if previous == {"role": user.role, "zone": user.zone_id}:
                return
            audit.record(
                session,
                admin,
                audit.Action.USER_UPDATE,
                f"user:{user.id}",
                {
                    "username": user.username,
                    "role": user.role,
                    "zone": user.zone_id,
                    "previous_role": previous["role"],
                    "previous_zone": previous["zone"],
                },
            )

    # zones

    def list_zones(self, user_id: int) -> list[ZoneRow]:
        """The admin's zone and every zone below it (all zones for an installation-wide
        admin), parents before their children."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            return _zone_rows(session, setup.zone_tree(session, admin))

    def zone_form(self, user_id: int) -> ZoneForm:
        """The kinds of zone this admin may create and where each may go (`create_zone`
        accepts exactly these): a commune admin, villages of its commune; a province admin,
        communes of its province and villages below; an installation-wide admin, anything."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            lines = setup.zone_tree(session, admin)
            parents: dict[str, tuple[ZoneChoice | None, ...]] = {}
            for kind in ZoneKind:
                allowed = zones.PARENT_KINDS[kind]
                options: list[ZoneChoice | None] = []
                if admin.zone is None and None in allowed:
                    options.append(None)
                options.extend(
                    ZoneChoice(line.id, line.name, line.kind)
                    for line in lines
                    if ZoneKind(line.kind) in allowed
                )
                if options:
                    parents[kind.value] = tuple(options)
            return ZoneForm(tuple(parents), parents)

    def create_zone(
        self,
        user_id: int,
        kind: str,
        name: str,
        parent_id: str = "",
        code: str = "",
        zone_id: str = "",
    ) -> ZoneRow:
        """A province, commune or village (`setup.add_zone`: the tree rules, the code's
        digits, an id made from the name when none is given), under a zone of the admin's."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            zone = setup.add_zone(
                session, admin, kind, name, code=code, parent=parent_id, zone_id=zone_id
            )
            parent = zone.parent
            return ZoneRow(
                zone.id,
                zone.name,
                zone.kind,
                zone.parent_id,
                parent.name if parent is not None else "",
                0,
                zone.code,
            )

    def edit_zone(self, user_id: int, zone_id: str, name: str, code: str | None = None) -> None:
        """A new name and, when `code` is given, administrative code ("" removes it), for a
        zone below the admin's own: its own zone is named by the level above."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            zone = session.get(Zone, zone_id)
            if zone is None or not zones.in_scope(session, admin, zone.id):
                raise NotFound(N_("không có khu vực “%(id)s”"), "not_found", id=zone_id)
            if zone.id == admin.zone_id:
                raise PermissionDenied(
                    N_("khu vực của tài khoản do cấp trên đặt tên và mã"), "own_zone"
                )
            clean_name = _clean_text(name, "name", N_("Tên khu vực"))
            detail: dict[str, Any] = {}
            if clean_name != zone.name:
                detail.update(name=clean_name, previous_name=zone.name)
                zone.name = clean_name
            if code is not None:
                clean_code = zones.clean_code(ZoneKind(zone.kind), code)
                taken = zones.by_code(session, clean_code) if clean_code is not None else None
                if taken is not None and taken.id != zone.id:
                    raise ValidationError(
                        "code",
                        N_("mã hành chính %(value)s đã là của khu vực khác"),
                        "taken",
                        value=clean_code,
                    )
                if clean_code != zone.code:
                    detail.update(zone_code=clean_code, previous_code=zone.code)
                    zone.code = clean_code
            if not detail:
                return
            session.flush()
            audit.record(session, admin, audit.Action.ZONE_UPDATE, f"zone:{zone.id}", detail)

    def voice_page(self, user_id: int) -> VoicePage:
        """The voices installed on this server and the provinces and communes of the admin's
        (its own included) with the voice each is read in."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            query = select(Zone.id, Zone.voice).where(Zone.kind.in_(VOICED_KINDS))
            chosen = {zone_id: voice for zone_id, voice in session.execute(query)}
            places = tuple(
                VoiceChoice(line.id, line.name, line.kind, chosen.get(line.id, ""))
                for line in setup.zone_tree(session, admin)
                if line.kind in VOICED_KINDS
            )
        return VoicePage(tuple(self._voices.names()), places)

    def set_voice(self, user_id: int | None, zone_ref: str, voice: object) -> str:
        """The voice a province or commune of the admin's (its own too: it is how it sounds,
        not what it is called) is read in from now on; "" for the installation's engine.
        `user_id` None is the console (`loa voice use`). Returns the zone's id."""
        chosen = self._voices.clean(voice)
        with self._db.session() as session:
            admin = _admin(session, user_id) if user_id is not None else None
            zone = zones.find_zone(session, zone_ref)
            if zone is None or (admin is not None and not zones.in_scope(session, admin, zone.id)):
                raise NotFound(N_("không có khu vực “%(id)s”"), "not_found", id=zone_ref[:70])
            if zone.kind not in VOICED_KINDS:
                raise ValidationError(
                    "voice", N_("chỉ tỉnh và xã chọn giọng đọc; thôn theo xã"), "not_commune"
                )
            if chosen == zone.voice:
                return zone.id
            detail = {"voice": chosen, "previous_voice": zone.voice}
            zone.voice = chosen
            session.flush()
            audit.record(session, admin, audit.Action.ZONE_UPDATE, f"zone:{zone.id}", detail)
            return zone.id

    # devices

    def device_page(
        self, user_id: int, page: int = 1, zone_id: str = "", per_page: int = DEVICES_PER_PAGE
    ) -> DevicePage:
        """Receivers by id, a page at a time (a province registers thousands), optionally those
        of one zone and its sub-zones; a page past the end shows the last one."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            chosen = session.get(Zone, zone_id) if zone_id else None
            if zone_id and (chosen is None or not zones.in_scope(session, admin, chosen.id)):
                raise ValidationError(
                    "zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id[:63]
                )
            if chosen is not None:
                zone_ids = zones.subtree_ids(session, [chosen])
            else:
                zone_ids = zones.scope_ids(session, admin)
            total = receivers.count_devices(session, zone_ids)
            page = clamp_page(page, total, per_page)
            found = receivers.list_devices(
                session, zone_ids, offset=(page - 1) * per_page, limit=per_page
            )
            rows = [self._device_row(device) for device in found]
            return DevicePage(rows, page, per_page, total, zone_id)

    def get_device(self, user_id: int, device_id: str) -> DeviceRow:
        with self._db.session() as session:
            admin = _admin(session, user_id)
            return self._device_row(_device(session, admin, device_id))

    def _device_row(self, device: Device) -> DeviceRow:
        return DeviceRow(
            device.id,
            device.name,
            device.zone_id,
            device.zone.name,
            device.online,
            device.state,
            device.last_seen,
            self._config_path(device.id).exists(),
        )

    def register_device(self, user_id: int, device_id: str, zone_id: str, name: str = "") -> Path:
        """A new receiver (`service.fleet.register_device`: broker credentials, its config
        file, its manifest), checked here first so every mistake reads in Vietnamese."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            new_id = _clean_slug(device_id, "id", N_("Mã cụm loa"))
            if session.get(Device, new_id) is not None:
                raise ValidationError(
                    "id", N_("mã cụm loa “%(id)s” đã có"), "already_exists", id=new_id
                )
            zone = session.get(Zone, zone_id) if zone_id else None
            if zone is None or not zones.in_scope(session, admin, zone.id):
                raise ValidationError("zone", N_("hãy chọn khu vực (thôn) của cụm loa"), "required")
            clean_name = _clean_text(name, "name", N_("Tên cụm loa"), required=False)
        return self._register_device(new_id, zone_id, name=clean_name, user_id=user_id)

    def device_config(self, user_id: int, device_id: str) -> bytes:
        """The receiver's config file (it holds the device's broker password): audited."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            data = self._read_config(session, admin, device_id)
            audit.record(
                session, admin, audit.Action.DEVICE_CONFIG, f"device:{device_id}", {"form": "file"}
            )
            return data

    def device_config_qr(self, user_id: int, device_id: str) -> QrCode:
        """The config's compact form as a QR code (SVG), for the installer's phone: audited."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            data = self._read_config(session, admin, device_id)
            code = config_qr(data)
            audit.record(
                session,
                admin,
                audit.Action.DEVICE_CONFIG,
                f"device:{device_id}",
                {"form": "qr", "version": code.version},
            )
            return code

    def device_qr_ca_file(self, user_id: int, device_id: str) -> str:
        """Where the installer must copy the broker's CA when the QR code leaves it out (too
        large for a phone camera), or "" when the code carries it; not audited: no secret."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            return config_qr(self._read_config(session, admin, device_id)).ca_file

    def _config_path(self, device_id: str) -> Path:
        return self._settings.devices_dir / f"{device_id}.json"

    def _read_config(self, session: Session, admin: User, device_id: str) -> bytes:
        _device(session, admin, device_id)
        try:
            return self._config_path(device_id).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(
                N_("không có tệp cấu hình của cụm loa “%(id)s”"), "no_config", id=device_id
            ) from exc

    # the audit log

    def audit_page(self, user_id: int, page: int = 1, per_page: int = AUDIT_PER_PAGE) -> AuditPage:
        """Newest first, with the verification of the whole chain. An admin bound to a zone
        reads the entries of accounts bound inside it (not those of the level above, nor the
        console's); the chain is checked whole, `entries` counts what they may read."""
        with self._db.session() as session:
            admin = _admin(session, user_id)
            result = audit.verify(session)
            scope = zones.scope_ids(session, admin)
            wanted = select(AuditEntry)
            counted = select(func.count(AuditEntry.id))
            if scope is not None:
                wanted = wanted.where(AuditEntry.zone_id.in_(scope))
                counted = counted.where(AuditEntry.zone_id.in_(scope))
            total = session.scalar(counted) or 0
            page = clamp_page(page, total, per_page)
            entries = session.scalars(
                wanted.order_by(AuditEntry.seq.desc()).offset((page - 1) * per_page).limit(per_page)
            )
            rows = [
                AuditRow(
                    entry.seq,
                    entry.at,
                    entry.username,
                    entry.action,
                    entry.target,
                    json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)
                    if entry.detail
                    else "",
                    entry.origin,
                )
                for entry in entries
            ]
            check = AuditCheck(
                result.ok,
                result.entries if scope is None else total,
                result.broken_seq,
                AUDIT_PROBLEMS.get(result.problem, "other") if result.problem else "",
            )
            if not result.ok:
                _LOGGER.error("audit chain broken at %s: %s", result.broken_seq, result.problem)
            return AuditPage(rows, page, per_page, total, check)


# --- the receiver config in a QR code -------------------------------------------------------


def compact_config(data: bytes) -> str:
    """The config JSON without the fields equal to their defaults, in compact separators;
    ReceiverConfig.from_dict reads it back to the same config (else the whole JSON is used)."""
    try:
        full = json.loads(data)
        config = ReceiverConfig.from_dict(full)
    except (ValueError, ConfigError) as exc:
        raise ValidationError(
            "config", N_("tệp cấu hình của cụm loa bị hỏng: %(detail)s"), "damaged", detail=exc
        ) from exc
    base = ReceiverConfig(
        device_id=config.device_id,
        zones=config.zones,
        mqtt=MqttSettings(
            config.mqtt.host, config.mqtt.port, config.mqtt.username, config.mqtt.password
        ),
        server_public_key=config.server_public_key,
        data_dir=config.data_dir,
    ).to_dict()
    compact = _trim(full, base, _CONFIG_REQUIRED)
    if ReceiverConfig.from_dict(compact) != config:  # never lose a setting
        compact = full
    return json.dumps(compact, ensure_ascii=False, separators=(",", ":"))


def config_qr(data: bytes) -> QrCode:
    """The QR code of a config's compact form. When the broker's CA inline (`mqtt.tls.ca_pem`)
    makes it too large for a phone camera, the code names `QR_CA_FILE` instead: the installer
    copies the CA there (or uses the downloaded file, which always holds it)."""
    payload = compact_config(data)
    try:
        return qr_svg(payload)
    except ValidationError:
        compact = json.loads(payload)
        tls = compact.get("mqtt", {}).get("tls") or {}
        if "ca_pem" not in tls:
            raise
        del tls["ca_pem"]
        tls["ca_file"] = QR_CA_FILE
        code = qr_svg(json.dumps(compact, ensure_ascii=False, separators=(",", ":")))
        return replace(code, ca_file=QR_CA_FILE)


def _trim(full: dict[str, Any], base: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in full.items():
        default = base.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            inner = _trim(value, default, _CONFIG_REQUIRED_INNER.get(key, frozenset()))
            if inner or key in keep:
                out[key] = inner
        elif key in keep or key not in base or value != default:
            out[key] = value
    return out


def qr_svg(payload: str) -> QrCode:
    """An SVG QR code of `payload` (error correction M, or L when M would be too large)."""
    for error in ("m", "l"):
        try:
            code = segno.make(payload, error=error, micro=False, boost_error=False)
        except segno.DataOverflowError:
            continue
        if isinstance(code.version, int) and code.version <= MAX_QR_VERSION:
            buffer = io.BytesIO()
            code.save(buffer, kind="svg", scale=4, border=4, title="Loa receiver config")
            return QrCode(buffer.getvalue(), payload, code.version, code.error or error)
    raise ValidationError(
        "config",
        N_("cấu hình quá lớn để đưa vào mã QR; hãy tải tệp cấu hình và chép vào máy thu"),
        "too_large",
    )


# --- checks --------------------------------------------------------------------------------


def _admin(session: Session, user_id: int) -> User:
    return accounts.require_user(session, user_id, Action.ADMINISTER)


def _user_row(user: User) -> UserRow:
    return UserRow(
        user.id,
        user.username,
        user.full_name,
        user.role,
        user.zone_id,
        user.zone.name if user.zone is not None else "",
        user.active,
        user.created_at,
    )


def _target_user(session: Session, admin: User, target_id: int) -> User:
    """The account `target_id` if bound inside the admin's zone; else NotFound, as if it did
    not exist (an installation-wide account is in an installation-wide admin's scope only)."""
    user = session.get(User, target_id)
    if user is None or not zones.in_scope(session, admin, user.zone_id):
        raise NotFound(N_("không có người dùng %(id)s"), "not_found", id=target_id)
    return user


def _device(session: Session, admin: User, device_id: str) -> Device:
    """The receiver `device_id` if its zone is the admin's; else NotFound, as if unknown."""
    device = session.get(Device, device_id)
    if device is None or not zones.in_scope(session, admin, device.zone_id):
        raise NotFound(N_("không có cụm loa “%(id)s”"), "not_found", id=device_id)
    return device


def _zone_rows(session: Session, lines: list[setup.ZoneLine]) -> list[ZoneRow]:
    parents = {line.parent_id for line in lines if line.parent_id is not None}
    names: dict[str, str] = {
        zone_id: name
        for zone_id, name in session.execute(select(Zone.id, Zone.name).where(Zone.id.in_(parents)))
    }
    return [
        ZoneRow(
            line.id,
            line.name,
            line.kind,
            line.parent_id,
            names.get(line.parent_id, "") if line.parent_id is not None else "",
            line.devices,
            line.code,
            line.depth,
        )
        for line in lines
    ]


def _binds(session: Session, role: Role, zone: Zone | None) -> bool:
    """Whether an account of `role` may be bound to `zone` (`accounts.check_role_zone`)."""
    try:
        accounts.check_role_zone(session, role, zone)
    except ValidationError:
        return False
    return True


def _check_not_self(admin: User, user: User) -> None:
    """An admin may not lock or demote themself; so the acting admin always remains."""
    if user.id == admin.id:
        raise ValidationError(
            "user", N_("không thể tự khóa hoặc tự bỏ quyền quản trị của mình"), "self"
        )


def _clean_username(session: Session, username: str) -> str:
    name = (username or "").strip()
    if not _USERNAME.fullmatch(name):
        raise ValidationError(
            "username",
            N_("tên đăng nhập dài 1 đến 80 ký tự, không có khoảng trắng"),
            "invalid_username",
        )
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise ValidationError(
            "username", N_("tên đăng nhập “%(name)s” đã có người dùng"), "already_exists", name=name
        )
    return name


def _clean_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError as exc:
        raise ValidationError(
            "role", N_("hãy chọn một vai trò trong danh sách"), "unknown_choice"
        ) from exc


def _clean_user_zone(session: Session, admin: User, role: Role, zone_id: str) -> Zone | None:
    """The zone an account of `role` is bound to: one the role may have
    (`accounts.check_role_zone`) and inside the admin's own zone; none (installation-wide) only
    from an installation-wide admin."""
    zone = session.get(Zone, zone_id) if zone_id else None
    if zone_id and zone is None:
        raise ValidationError(
            "zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id[:63]
        )
    if admin.zone is not None and (zone is None or not zones.in_scope(session, admin, zone.id)):
        raise ValidationError(
            "zone",
            N_("hãy chọn một khu vực thuộc “%(zone)s”"),
            "zone_out_of_reach",
            zone=admin.zone.name,
        )
    accounts.check_role_zone(session, role, zone)
    return zone


def _clean_password(password: str) -> str:
    if len(password) < accounts.MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password",
            N_("mật khẩu phải có ít nhất %(min)s ký tự (để trống để hệ thống tạo mật khẩu)"),
            "too_short",
            min=accounts.MIN_PASSWORD_LENGTH,
        )
    return password


def _clean_text(text: str, field_name: str, label: str, required: bool = True) -> str:
    value = " ".join((text or "").split())
    if required and not value:
        raise ValidationError(
            field_name, N_("“%(label)s” không được để trống"), "required", label=label
        )
    if len(value) > MAX_NAME_CHARS:
        raise ValidationError(
            field_name,
            N_("“%(label)s” dài tối đa %(max)s ký tự"),
            "too_long",
            label=label,
            max=MAX_NAME_CHARS,
        )
    return value


def _clean_slug(text: str, field_name: str, label: str) -> str:
    value = (text or "").strip()
    if not protocol.ID_PATTERN.fullmatch(value):
        raise ValidationError(
            field_name,
            N_(
                "“%(label)s” chỉ gồm chữ thường không dấu, số và dấu gạch ngang (ví dụ thon-3),"
                " tối đa 63 ký tự"
            ),
            "invalid_slug",
            label=label,
        )
    return value


__all__ = [
    "AUDIT_PROBLEMS",
    "Administration",
    "AuditCheck",
    "AuditPage",
    "AuditRow",
    "DeviceRow",
    "NewPassword",
    "QrCode",
    "UserRow",
    "ZoneChoice",
    "ZoneForm",
    "ZoneRow",
    "compact_config",
    "config_qr",
    "qr_svg",
]
