"""The receiver's config file: written by the server when a device is registered, read by the agent.

It is JSON so the Pi needs nothing beyond the standard library to read it. Example::

    {"device_id": "loa-thon-1-01", "zones": ["thon-1", "xa-hoang-hop"],
     "mqtt": {"host": "127.0.0.1", "port": 1883, "username": "loa-thon-1-01", "password": "…"},
     "server_public_key": "<base64 Ed25519>", "data_dir": "/var/lib/loa",
     "player": {"kind": "file", "dir": "/var/lib/loa/played"}}

`mqtt.tls` (absent or null: plain MQTT, the embedded single-machine default) turns TLS on:
`ca_pem` (the CA that signed the broker's certificate, inline: what the server writes) or
`ca_file` (a PEM file on the Pi), neither = the system's trusted CAs (a public certificate);
`cert_file` + `key_file` for a client certificate when the broker requires one. The broker's
certificate must name `mqtt.host`. `mqtt.client_id` (absent: the device id) is
`<device_id>-<secret token>`, written by the server so no other login can guess it.

`mqtt.hosts` (`["node1.example:1883", "node2.example:1883", …]`) lists several brokers, the nodes
of a cluster, tried in order with failover and backoff (`wire.brokers`); `mqtt.host`/`port`, if
also given, are ignored (the server writes them as the first, for older agents). A lost
connection is retried on the same broker for `mqtt.failover_after_s` (10 s) before the next.

Optional, with defaults that suit a Pi: `amplifier` (the relay that powers the loudspeaker
amplifier: `pin` null = not controlled), `mixer` (ALSA volume, applied with the command and
mpg123 players only, so a demo never touches a laptop's volume), `heartbeat_s`, `preempt_policy`
(what happens to an item an emergency cuts: `resume` restarts it afterwards while still valid,
`drop` ends it), `cache_limit_mb`, `http_timeout_s`. Every field is checked here and a mistake
names its field.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wire.brokers import (
    DEFAULT_FAILOVER_AFTER_S,
    AddressError,
    BrokerAddress,
    parse_address,
    unique,
)
from wire.files import write_private_file
from wire.protocol import ProtocolError, check_id

_LOGGER = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file a person must fix; the message names the file and the field."""


PEM_CERTIFICATE_BEGIN = "-----BEGIN CERTIFICATE-----"
TLS_FIELDS = ("ca_file", "ca_pem", "cert_file", "key_file")
_SSL_POSITION = re.compile(r"\s*\(_ssl\.c:\d+\)")


@dataclass(frozen=True)
class TlsSettings:
    """TLS to the broker: whom to trust (`ca_pem` inline or `ca_file`; neither = the system's
    CAs) and an optional client certificate. Paths are read when the link opens, not here, so
    the server can check a receiver's config without the Pi's files."""

    ca_file: str = ""
    ca_pem: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class MqttSettings:
    """The broker login; reconnects back off from 1 s to `reconnect_max_s`; `tls` None = plain.

    `hosts` lists every broker as `host:port` when there are several (a cluster), in the order
    tried; `host`/`port` are then its first (what an older agent reads). Empty = the one broker
    `host`/`port`. A lost connection moves on after `failover_after_s` (`wire.brokers`).

    `client_id` is `<device id>-<secret token>` (written by the server): an engine that lets any
    login connect with any id (nats-server) then cannot be made to close this receiver's
    connection by a guess; empty = the device id (configs written before it)."""

    host: str
    port: int
    username: str
    password: str
    keepalive: int = 30
    reconnect_max_s: float = 30.0
    tls: TlsSettings | None = None
    hosts: tuple[str, ...] = ()
    failover_after_s: float = DEFAULT_FAILOVER_AFTER_S
    client_id: str = ""

    @property
    def brokers(self) -> tuple[BrokerAddress, ...]:
        """The brokers in the order a link tries them."""
        if self.hosts:
            return tuple(parse_address(text) for text in self.hosts)
        return (BrokerAddress(self.host, self.port),)

    def client_id_of(self, device_id: str) -> str:
        """The MQTT client id the receiver `device_id` connects with."""
        return self.client_id or device_id


def broker_settings(brokers: Sequence[BrokerAddress], **login: Any) -> MqttSettings:
    """MqttSettings for `brokers` in the config's normal form: `hosts` only when several."""
    first = brokers[0]
    hosts = tuple(str(address) for address in brokers) if len(brokers) > 1 else ()
    return MqttSettings(host=first.host, port=first.port, hosts=hosts, **login)


DEFAULT_PLAYER_ARGV = ("mpg123", "-q", "{file}")
DEFAULT_RELAY_ARGV = ("mpg123", "-q", "{url}")
DEFAULT_REMOTE_ARGV = ("mpg123", "-R")
PLAYER_KINDS = ("file", "command", "mpg123")
DEFAULT_MIXER_COMMAND = ("amixer", "-q", "sset", "{control}", "{volume}%")
PIN_FACTORIES = ("native", "mock")
PREEMPT_POLICIES = ("resume", "drop")


@dataclass(frozen=True)
class PlayerSettings:
    """`file` writes what would play (demo, tests); `command` runs e.g. mpg123 on the Pi;
    `mpg123` runs `remote_argv` (mpg123 in remote-control mode, plus e.g. `-o alsa`) before the
    start with the file loaded and paused, so the start is one write (what a Pi installs).

    `realtime` makes the file sink take as long as the MP3 would sound (demo); off for tests.
    `relay_argv` plays a live stream (`{url}`) with the command player; it is stopped after the
    relay's duration.
    """

    kind: str = "file"
    dir: str = ""
    argv: list[str] = field(default_factory=lambda: list(DEFAULT_PLAYER_ARGV))
    realtime: bool = False
    relay_argv: list[str] = field(default_factory=lambda: list(DEFAULT_RELAY_ARGV))
    remote_argv: list[str] = field(default_factory=lambda: list(DEFAULT_REMOTE_ARGV))


@dataclass(frozen=True)
class AmplifierSettings:
    """The GPIO pin (BCM number) of the relay that powers the amplifier; None = not controlled.

    The amplifier is switched on `warmup_s` before audio and off after `idle_off_s` without
    playing. `pin_factory` is `native` (the board's real GPIO, gpiozero's own choice of driver)
    or `mock` (gpiozero's MockFactory: tests and machines without GPIO).
    """

    pin: int | None = None
    warmup_s: float = 1.0
    idle_off_s: float = 120.0
    pin_factory: str = "native"


@dataclass(frozen=True)
class MixerSettings:
    """The ALSA volume set at start and whenever the amplifier switches on; None = leave it."""

    control: str = "Master"
    volume: int | None = 85
    command: list[str] = field(default_factory=lambda: list(DEFAULT_MIXER_COMMAND))


@dataclass(frozen=True)
class ReceiverConfig:
    device_id: str
    zones: list[str]
    mqtt: MqttSettings
    server_public_key: str
    data_dir: str
    player: PlayerSettings = field(default_factory=PlayerSettings)
    cache_limit_mb: int = 200
    http_timeout_s: float = 30.0
    amplifier: AmplifierSettings = field(default_factory=AmplifierSettings)
    mixer: MixerSettings = field(default_factory=MixerSettings)
    heartbeat_s: float = 30.0
    preempt_policy: str = "resume"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        mqtt = data["mqtt"]
        if mqtt["hosts"]:
            mqtt["hosts"] = list(mqtt["hosts"])
        else:
            del mqtt["hosts"]  # one broker: the config reads as it always did
        return data

    def save(self, path: Path) -> None:
        write_private_file(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ReceiverConfig:
        def need(mapping: dict[str, Any], key: str, where: str) -> Any:
            if key not in mapping:
                raise ConfigError(f"{source}: missing field '{where}{key}'")
            return mapping[key]

        try:
            mqtt = need(data, "mqtt", "")
            if not isinstance(mqtt, dict):
                raise ConfigError(f"{source}: field 'mqtt' must be an object")
            player = data.get("player", {})
            if not isinstance(player, dict):
                raise ConfigError(f"{source}: field 'player' must be an object")
            realtime = player.get("realtime", False)
            if not isinstance(realtime, bool):
                raise ConfigError(f"{source}: field 'player.realtime' must be true or false")
            zones = need(data, "zones", "")
            if not isinstance(zones, list):
                raise ConfigError(f"{source}: field 'zones' must be a list of zone ids")
            fields = _Fields(source)
            config = cls(
                device_id=check_id(str(need(data, "device_id", "")), "device_id"),
                zones=[check_id(str(z), "zone id") for z in zones],
                mqtt=broker_settings(
                    fields.brokers(mqtt, need),
                    username=str(need(mqtt, "username", "mqtt.")),
                    password=str(need(mqtt, "password", "mqtt.")),
                    keepalive=int(mqtt.get("keepalive", 30)),
                    reconnect_max_s=fields.number(mqtt, "reconnect_max_s", "mqtt.", 30.0, 1.0),
                    tls=fields.tls(mqtt.get("tls")),
                    failover_after_s=fields.number(
                        mqtt, "failover_after_s", "mqtt.", DEFAULT_FAILOVER_AFTER_S, 0.0
                    ),
                    client_id=fields.client_id(mqtt.get("client_id"), data.get("device_id")),
                ),
                server_public_key=str(need(data, "server_public_key", "")),
                data_dir=str(need(data, "data_dir", "")),
                player=PlayerSettings(
                    kind=str(player.get("kind", "file")),
                    dir=str(player.get("dir", "")),
                    argv=fields.words(player, "argv", "player.", DEFAULT_PLAYER_ARGV),
                    realtime=realtime,
                    relay_argv=fields.words(player, "relay_argv", "player.", DEFAULT_RELAY_ARGV),
                    remote_argv=fields.words(player, "remote_argv", "player.", DEFAULT_REMOTE_ARGV),
                ),
                cache_limit_mb=int(data.get("cache_limit_mb", 200)),
                http_timeout_s=float(data.get("http_timeout_s", 30.0)),
                amplifier=fields.amplifier(data.get("amplifier", {})),
                mixer=fields.mixer(data.get("mixer", {})),
                heartbeat_s=fields.number(data, "heartbeat_s", "", 30.0, minimum=1.0),
                preempt_policy=fields.choice(data, "preempt_policy", "", PREEMPT_POLICIES),
            )
        except ConfigError:
            raise  # already names the file and field (ConfigError is a ValueError)
        except ProtocolError as exc:
            raise ConfigError(f"{source}: {exc.detail}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        if config.player.kind not in PLAYER_KINDS:
            raise ConfigError(
                f"{source}: field 'player.kind' must be 'file', 'command' or 'mpg123'"
            )
        return config

    @classmethod
    def load(cls, path: Path) -> ReceiverConfig:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must hold a JSON object")
        return cls.from_dict(data, source=str(path))


_CLIENT_ID_TAIL = re.compile(r"^[A-Za-z0-9]{1,64}$")


class _Fields:
    """Typed reads of optional fields; every ConfigError names the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: field '{name}' {message}")

    def client_id(self, value: Any, device_id: Any) -> str:
        """`mqtt.client_id`: absent, empty, or `<device_id>-<token>` (letters and digits)."""
        if value is None or value == "":
            return ""
        if not isinstance(value, str):
            raise self.fail("mqtt.client_id", "must be a string")
        prefix = f"{device_id}-"
        if value != device_id and not (
            value.startswith(prefix) and _CLIENT_ID_TAIL.fullmatch(value[len(prefix) :])
        ):
            raise self.fail("mqtt.client_id", f"must be '{prefix}' and the token the server wrote")
        return value

    def section(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(name, "must be an object")
        return value

    def number(
        self,
        mapping: dict[str, Any],
        key: str,
        where: str,
        default: float,
        minimum: float = 0.0,
    ) -> float:
        value = mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}{key}", "must be a number")
        if value < minimum:
            raise self.fail(f"{where}{key}", f"must be at least {minimum:g}")
        return float(value)

    def choice(
        self, mapping: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]
    ) -> str:
        value = mapping.get(key, allowed[0])
        if value not in allowed:
            options = " or ".join(repr(a) for a in allowed)
            raise self.fail(f"{where}{key}", f"must be {options}, not {value!r}")
        return str(value)

    def words(
        self, mapping: dict[str, Any], key: str, where: str, default: tuple[str, ...]
    ) -> list[str]:
        value = mapping.get(key, list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}{key}", "must be a non-empty list of strings")
        return list(value)

    def brokers(
        self, mqtt: dict[str, Any], need: Callable[[dict[str, Any], str, str], Any]
    ) -> tuple[BrokerAddress, ...]:
        """`mqtt.hosts` (a list of `host:port`) when given, else `mqtt.host` and `mqtt.port`."""
        if "hosts" not in mqtt:
            port = int(need(mqtt, "port", "mqtt."))
            if not 1 <= port <= 65535:
                raise self.fail("mqtt.port", "must be 1..65535")
            return (BrokerAddress(str(need(mqtt, "host", "mqtt.")), port),)
        hosts = mqtt["hosts"]
        if not isinstance(hosts, list) or not hosts:
            raise self.fail("mqtt.hosts", "must be a non-empty list of 'host:port'")
        addresses = []
        for index, text in enumerate(hosts):
            try:
                addresses.append(parse_address(text))
            except AddressError as exc:
                raise self.fail(f"mqtt.hosts[{index}]", str(exc)) from None
        try:
            return unique(addresses)
        except AddressError as exc:
            raise self.fail("mqtt.hosts", str(exc)) from None

    def amplifier(self, value: Any) -> AmplifierSettings:
        section = self.section(value, "amplifier")
        pin = section.get("pin")
        if pin is not None and (isinstance(pin, bool) or not isinstance(pin, int) or pin < 0):
            raise self.fail("amplifier.pin", "must be a GPIO number (BCM) or null")
        return AmplifierSettings(
            pin=pin,
            warmup_s=self.number(section, "warmup_s", "amplifier.", 1.0),
            idle_off_s=self.number(section, "idle_off_s", "amplifier.", 120.0),
            pin_factory=self.choice(section, "pin_factory", "amplifier.", PIN_FACTORIES),
        )

    def tls(self, value: Any) -> TlsSettings | None:
        if value is None:
            return None
        section = self.section(value, "mqtt.tls")
        unknown = sorted(set(section) - set(TLS_FIELDS))
        if unknown:
            # a misspelt "cafile" must not quietly fall back to trusting the system's CAs
            raise self.fail(
                f"mqtt.tls.{unknown[0]}", f"is unknown (known: {', '.join(TLS_FIELDS)})"
            )
        for key in TLS_FIELDS:
            if not isinstance(section.get(key, ""), str):
                raise self.fail(f"mqtt.tls.{key}", "must be a string")
        tls = TlsSettings(**{key: section.get(key, "") for key in TLS_FIELDS})
        if tls.ca_file and tls.ca_pem:
            raise self.fail("mqtt.tls.ca_pem", "and 'mqtt.tls.ca_file' exclude each other")
        if tls.ca_pem and PEM_CERTIFICATE_BEGIN not in tls.ca_pem:
            raise self.fail(
                "mqtt.tls.ca_pem", f"must be a PEM certificate ({PEM_CERTIFICATE_BEGIN})"
            )
        if tls.key_file and not tls.cert_file:
            raise self.fail("mqtt.tls.key_file", "needs 'mqtt.tls.cert_file' too")
        return tls

    def mixer(self, value: Any) -> MixerSettings:
        section = self.section(value, "mixer")
        control = section.get("control", "Master")
        if not isinstance(control, str) or not control.strip():
            raise self.fail("mixer.control", "must be an ALSA control name")
        volume = section.get("volume", 85)
        if volume is not None and (
            isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100
        ):
            raise self.fail("mixer.volume", "must be 0..100 (percent) or null")
        return MixerSettings(
            control=control,
            volume=volume,
            command=self.words(section, "command", "mixer.", DEFAULT_MIXER_COMMAND),
        )


def tls_context(
    tls: TlsSettings, source: str = "", labels: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """The client TLS context for `tls`: certificate and host name verified, TLS 1.2 or newer.

    Every file problem is a ConfigError naming the field and the file (prefixed by `source`,
    the config file, when given), so a receiver stops at start instead of failing each retry.
    `labels` names the fields otherwise (the server's settings are environment variables).
    """
    prefix = f"{source}: " if source else ""

    def fail(name: str, message: str) -> ConfigError:
        label = (labels or {}).get(name) or f"field 'mqtt.tls.{name}'"
        return ConfigError(f"{prefix}{label} {message}")

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if tls.ca_pem:
            context.load_verify_locations(cadata=tls.ca_pem)
        elif tls.ca_file:
            context.load_verify_locations(cafile=_readable(tls.ca_file, "ca_file", fail))
    except ssl.SSLError as exc:
        if tls.ca_pem:
            raise fail("ca_pem", f"is not a PEM CA certificate ({_ssl_reason(exc)})") from None
        raise fail(
            "ca_file", f"is not a PEM CA certificate: {tls.ca_file} ({_ssl_reason(exc)})"
        ) from None
    if tls.cert_file:
        cert = _readable(tls.cert_file, "cert_file", fail)
        key = _readable(tls.key_file, "key_file", fail) if tls.key_file else None
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise fail(
                "cert_file",
                f"is not a PEM certificate with its unencrypted key: {cert} ({_ssl_reason(exc)})",
            ) from None
    return context


def read_ca_pem(path: Path) -> str:
    """A CA certificate file's PEM text, to put inline into receiver configs (`mqtt.tls.ca_pem`);
    ConfigError naming the file if it is missing, unreadable or not a PEM certificate."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"CA certificate file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"CA certificate file {path} is not PEM text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read CA certificate file {path} ({exc.strerror})") from None
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        reason = _ssl_reason(exc) if isinstance(exc, ssl.SSLError) else str(exc)
        raise ConfigError(
            f"CA certificate file {path} is not a PEM certificate ({reason})"
        ) from None
    return text


def _readable(path: str, name: str, fail: Callable[[str, str], ConfigError]) -> str:
    try:
        with open(path, "rb"):
            return path
    except OSError as exc:
        raise fail(name, f"cannot be read: {path} ({exc.strerror})") from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason in words ("key values mismatch"), without its source-file position."""
    text = str(exc.reason or exc.strerror or exc)
    return _SSL_POSITION.sub("", text).strip().lower().replace("_", " ")
