"""Server settings and the secrets kept in the data directory.

Everything the server writes lives under one data directory (`./var` by default): the SQLite
database, the media store, the TTS cache, the signing key, generated receiver configs and broker
files. Secrets are generated on first use and kept in files with mode 0600: there are no default
passwords anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import secrets
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast import const
from broadcast.errors import LoaError
from broadcast.store.locks import FileLock
from wire import protocol
from wire.brokers import AddressError, BrokerAddress, parse_address_list
from wire.config import ConfigError, TlsSettings, read_ca_pem, tls_context
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

# As a CA setting: trust the system's CAs (a broker with a public certificate).
SYSTEM_CAS = "system"
_SERVER_TLS_LABELS = {
    "ca_file": "LOA_MQTT_TLS_CA",
    "cert_file": "LOA_MQTT_TLS_CERT",
    "key_file": "LOA_MQTT_TLS_KEY",
}


@dataclass(frozen=True)
class RedeliveryPolicy:
    """When the leader re-sends a command no receiver answered, and when it gives up."""

    first_after_s: float = 10.0
    max_interval_s: float = 300.0
    max_attempts: int = 8
    answer_window_s: float = 30 * 60.0


@dataclass
class Settings:
    data_dir: Path
    host: str = const.DEFAULT_HOST
    port: int = const.DEFAULT_WEB_PORT
    mqtt_host: str = const.DEFAULT_HOST
    mqtt_port: int = const.DEFAULT_MQTT_PORT
    # TLS on the server's own link to the broker (LOA_MQTT_TLS_CA when not given): "" = plain
    # MQTT (the embedded broker, or mosquitto's plain listener on 127.0.0.1), "system" = trust
    # the system's CAs (a public certificate), else the CA file (PEM) of the broker's certificate;
    # a client certificate and key (LOA_MQTT_TLS_CERT, LOA_MQTT_TLS_KEY) if the broker wants one.
    mqtt_tls_ca: str = ""
    mqtt_tls_cert: str = ""
    mqtt_tls_key: str = ""
    # Several brokers (the nodes of a cluster) for the server's link, tried in order with
    # failover (`wire.brokers`): LOA_MQTT_HOSTS="node1:1883,node2:1883". Empty = mqtt_host/port.
    mqtt_hosts: tuple[BrokerAddress, ...] = ()
    # The broker as receivers' config files give it (registration, admin download, QR code),
    # when it is not the server's own link: the server on mosquitto's plain listener on
    # 127.0.0.1, receivers on the TLS port of the broker's public name. Empty or 0 = the
    # server's (LOA_DEVICE_MQTT_HOST, LOA_DEVICE_MQTT_PORT, LOA_DEVICE_MQTT_TLS_CA).
    device_mqtt_host: str = ""
    device_mqtt_port: int = 0
    device_mqtt_tls_ca: str = ""
    # The brokers receivers' configs list (`mqtt.hosts`), when several (LOA_DEVICE_MQTT_HOSTS).
    device_mqtt_hosts: tuple[BrokerAddress, ...] = ()
    database_url: str = ""
    public_url: str = ""
    tts_engine: str = "espeak"
    tts_options: dict[str, object] = field(default_factory=dict)
    # Synchronized start: a PLAY sent now carries play_at = now + lead, so every receiver of a
    # zone starts together once it has fetched the media (3G: seconds). Emergencies get the
    # shortest lead; routine items sent at once can afford a longer one.
    play_lead_s: float = 3.0
    routine_play_lead_s: float = 10.0
    # How long after its play_at an item may still start (a late or preempted one is dropped
    # after it); a series item stays valid for its whole interval instead.
    item_valid_s: float = 15 * 60
    manifest_horizon_s: float = protocol.MANIFEST_HORIZON_S
    manifest_refresh_s: float = 3600.0  # the periodic manifest job (and planning pass)
    misfire_grace_s: float = 15 * 60  # a planned run found late by less than this still fires
    lock_retry_s: float = 3.0  # how often a standby process retries the scheduler lock
    overlap_window_days: int = 14  # how far ahead an open-ended schedule is checked for overlaps
    redelivery: RedeliveryPolicy = field(default_factory=RedeliveryPolicy)
    redelivery_sweep_s: float = 5.0  # how often the leader looks for unanswered commands
    # Bulletins need a leader's approval before they air (`broadcast.desks.bulletins`); a tiny
    # commune with one officer turns it off and bulletins are created approved.
    require_approval: bool = True
    # How many reverse proxies in front of the web app append to X-Forwarded-For (nginx: 1;
    # LOA_TRUSTED_PROXIES). 0 ignores the header: a client could write anything in it. Behind a
    # proxy, 0 makes every client look like the proxy's address to the sign-in limits and the
    # audit log, and makes /metrics open to anyone (a loopback proxy looks local).
    trusted_proxies: int = 0
    # Whether a source system's audio URL may point into a loopback or private network (the
    # province's HTTT nguồn on its own LAN; LOA_SOURCE_PRIVATE_AUDIO=1). Off, such an address is
    # refused, so a source account cannot make the server read its neighbours.
    source_private_audio: bool = False
    # Live broadcasts (phát trực tiếp) go through Icecast (`fleet.streaming`): `loa serve` and
    # `loa demo` run it on this port (LOA_STREAM_PORT; 0 = no live broadcasts), on the web
    # host; `stream_url` is where receivers reach it (LOA_STREAM_URL; default: the public URL's
    # host on that port).
    stream_port: int = 0
    stream_url: str = ""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.database_url:
            # Settings built directly (tests, benchmarks) still follow LOA_DATABASE_URL, so a
            # PostgreSQL test run reaches every service it starts.
            self.database_url = os.environ.get("LOA_DATABASE_URL", "") or (
                f"sqlite:///{self.data_dir / 'loa.db'}"
            )
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        if self.trusted_proxies < 0:
            raise LoaError(f"trusted proxies must be 0 or more, not {self.trusted_proxies}")

    @classmethod
    def load(
        cls, args: argparse.Namespace | Mapping[str, object] | None, env: Mapping[str, str]
    ) -> Settings:
        """The one way a server process gets its settings (`loa serve`, `loa demo`, the admin
        commands, gunicorn's workers): a command-line option given wins over its LOA_*
        variable, which wins over the default. LoaError names the option or variable and the
        bad value."""
        given = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
        values: dict[str, object] = {}
        for source in SOURCES:
            option = given.get(source.option)
            if option is not None and option is not False:
                values[source.field] = source.parse(str(option), source.option_name)
            elif env.get(source.env, "").strip():
                values[source.field] = source.parse(env[source.env].strip(), source.env)
        values.setdefault("data_dir", Path(const.DEFAULT_DATA_DIR))
        model = values.pop("tts_model", None)
        if model and values.get("tts_engine") != "piper":
            raise LoaError(
                "LOA_TTS_MODEL (--tts-model) is the voice file of the piper engine:"
                " set LOA_TTS=piper (--tts piper) too"
            )
        if model:
            values["tts_options"] = {"model": model}
        return cls(**values)  # type: ignore[arg-type]

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def tts_cache_dir(self) -> Path:
        return self.data_dir / "tts-cache"

    @property
    def voices_dir(self) -> Path:
        """The Piper voices communes may choose (`loa voice add`)."""
        return self.data_dir / "voices"

    @property
    def devices_dir(self) -> Path:
        """Receiver config files generated at registration (they hold device passwords)."""
        return self.data_dir / "devices"

    @property
    def receivers_dir(self) -> Path:
        """Where simulated receivers keep their cache and write what they play."""
        return self.data_dir / "receivers"

    @property
    def broker_access_path(self) -> Path:
        return self.data_dir / "broker" / "access.json"

    @property
    def scheduler_lock_path(self) -> Path:
        """Held (flock) by the one process that runs the scheduler and publishes manifests."""
        return self.data_dir / "scheduler.lock"

    @property
    def publish_lock_path(self) -> Path:
        """Held while a sequence number is taken and its message published, so the broker gets
        every stream's messages in sequence order even from several processes."""
        return self.data_dir / "publish.lock"

    @property
    def server_brokers(self) -> tuple[BrokerAddress, ...]:
        """The brokers of the server's own link, in the order tried."""
        return self.mqtt_hosts or (BrokerAddress(self.mqtt_host, self.mqtt_port),)

    @property
    def receiver_brokers(self) -> tuple[BrokerAddress, ...]:
        """The brokers receivers' configs list: LOA_DEVICE_MQTT_HOSTS, else the one broker of
        LOA_DEVICE_MQTT_HOST/PORT when either is set, else the server's own."""
        if self.device_mqtt_hosts:
            return self.device_mqtt_hosts
        if self.device_mqtt_host or self.device_mqtt_port or not self.mqtt_hosts:
            return (BrokerAddress(self.receiver_mqtt_host, self.receiver_mqtt_port),)
        return self.mqtt_hosts

    @property
    def receiver_mqtt_host(self) -> str:
        return self.device_mqtt_host or self.mqtt_host

    @property
    def receiver_mqtt_port(self) -> int:
        return self.device_mqtt_port or self.mqtt_port

    def mqtt_tls_context(self) -> ssl.SSLContext | None:
        """The TLS context of the server's own broker link, or None for plain MQTT; LoaError
        naming the setting and the file when one cannot be used."""
        if not self.mqtt_tls_ca:
            if self.mqtt_tls_cert or self.mqtt_tls_key:
                raise LoaError("LOA_MQTT_TLS_CERT and LOA_MQTT_TLS_KEY need LOA_MQTT_TLS_CA")
            return None
        tls = TlsSettings(
            ca_file="" if self.mqtt_tls_ca == SYSTEM_CAS else self.mqtt_tls_ca,
            cert_file=self.mqtt_tls_cert,
            key_file=self.mqtt_tls_key,
        )
        try:
            return tls_context(tls, labels=_SERVER_TLS_LABELS)
        except ConfigError as exc:
            raise LoaError(f"the server's MQTT TLS: {exc}") from None

    def receiver_mqtt_tls(self) -> TlsSettings | None:
        """What receivers' configs get as `mqtt.tls`: the CA's PEM inline, so the config file
        is all a Pi needs; no CA for "system"; None (plain MQTT) when neither side uses TLS."""
        ca = self.device_mqtt_tls_ca or self.mqtt_tls_ca
        if not ca:
            return None
        if ca == SYSTEM_CAS:
            return TlsSettings()
        try:
            return TlsSettings(ca_pem=read_ca_pem(Path(ca)))
        except ConfigError as exc:
            raise LoaError(f"the receivers' broker CA: {exc}") from None

    @property
    def live_enabled(self) -> bool:
        """Whether this installation has a streaming engine for live broadcasts."""
        return self.stream_port > 0

    @property
    def stream_dir(self) -> Path:
        """Icecast's config and log (`loa stream-config`, or the engine `loa serve` starts)."""
        return self.data_dir / "stream"

    @property
    def stream_source(self) -> tuple[str, int]:
        """Where this server feeds live mounts: the engine on this machine."""
        return _local_host(self.host), self.stream_port

    @property
    def receiver_stream_url(self) -> str:
        """The base URL of live mounts as receivers reach them."""
        if self.stream_url:
            return self.stream_url.rstrip("/")
        host = urllib.parse.urlsplit(self.public_url).hostname or _local_host(self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.stream_port}"

    @property
    def listener_check_url(self) -> str:
        """Where Icecast asks whether a listener may hear a live mount (`web.live`)."""
        host = _local_host(self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/live/listeners"

    def media_url(self, sha256: str) -> str:
        return f"{self.public_url.rstrip('/')}/media/{sha256}.mp3"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.media_dir, self.tts_cache_dir, self.devices_dir):
            path.mkdir(parents=True, exist_ok=True)


def _local_host(host: str) -> str:
    """How a process on this machine reaches a server listening on `host`."""
    if host in ("", "0.0.0.0", "localhost"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def _text(value: str, name: str) -> str:
    return value


def _port(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise LoaError(f"{name} must be a port number from 1 to 65535, not {value!r}")
    return int(value)


def _port_or_off(value: str, name: str) -> int:
    return 0 if value == "0" else _port(value, name)


def _addresses(value: str, name: str) -> tuple[BrokerAddress, ...]:
    try:
        return parse_address_list(value)
    except AddressError as exc:
        raise LoaError(f"{name} (comma-separated host:port) {exc}") from None


def _count(value: str, name: str) -> int:
    if not value.isdigit():
        raise LoaError(f"{name} must be a whole number, 0 or more, not {value!r}")
    return int(value)


def _seconds(low: float, high: float) -> Callable[[str, str], float]:
    def parse(value: str, name: str) -> float:
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not low <= seconds <= high:  # also refuses nan and inf
            raise LoaError(
                f"{name} must be a number of seconds from {low:g} to {high:g}, not {value!r}"
            )
        return seconds

    return parse


def _tts_engine(value: str, name: str) -> str:
    if value not in TTS_ENGINES:
        raise LoaError(f"{name} must be one of {', '.join(TTS_ENGINES)}, not {value!r}")
    return value


def _approval(value: str, name: str) -> bool:
    if name == "--no-approval":
        return False  # the flag was given
    return _yes_no(value, name, "1 (bulletins need approval)")


def _yes_no(value: str, name: str, yes: str = "1") -> bool:
    answer = value.lower()
    if answer not in ("1", "yes", "true", "0", "no", "false"):
        raise LoaError(f"{name} must be {yes} or 0, not {value!r}")
    return answer in ("1", "yes", "true")


TTS_ENGINES = ("espeak", "gtts", "piper")


@dataclass(frozen=True)
class Source:
    """Where one setting comes from: its command-line option (the argparse dest) and its
    environment variable, and how their text becomes the value."""

    field: str
    option: str
    env: str
    parse: Callable[[str, str], object]
    flag: str = ""  # the option as typed, when it is not the dest's spelling

    @property
    def option_name(self) -> str:
        return self.flag or "--" + self.option.replace("_", "-")


SOURCES = (
    Source("data_dir", "data", "LOA_DATA_DIR", lambda value, name: Path(value)),
    Source("host", "host", "LOA_HOST", _text),
    Source("port", "port", "LOA_PORT", _port),
    Source("public_url", "public_url", "LOA_PUBLIC_URL", _text),
    Source("database_url", "database_url", "LOA_DATABASE_URL", _text),
    Source("mqtt_host", "mqtt_host", "LOA_MQTT_HOST", _text),
    Source("mqtt_port", "mqtt_port", "LOA_MQTT_PORT", _port),
    Source("mqtt_hosts", "mqtt_hosts", "LOA_MQTT_HOSTS", _addresses),
    Source("mqtt_tls_ca", "mqtt_tls_ca", "LOA_MQTT_TLS_CA", _text),
    Source("mqtt_tls_cert", "mqtt_tls_cert", "LOA_MQTT_TLS_CERT", _text),
    Source("mqtt_tls_key", "mqtt_tls_key", "LOA_MQTT_TLS_KEY", _text),
    Source("device_mqtt_host", "device_mqtt_host", "LOA_DEVICE_MQTT_HOST", _text, "--mqtt-host"),
    Source("device_mqtt_port", "device_mqtt_port", "LOA_DEVICE_MQTT_PORT", _port, "--mqtt-port"),
    Source(
        "device_mqtt_hosts",
        "device_mqtt_hosts",
        "LOA_DEVICE_MQTT_HOSTS",
        _addresses,
        "--mqtt-hosts",
    ),
    Source(
        "device_mqtt_tls_ca", "device_mqtt_tls_ca", "LOA_DEVICE_MQTT_TLS_CA", _text, "--mqtt-tls-ca"
    ),
    Source("tts_engine", "tts", "LOA_TTS", _tts_engine, "--tts"),
    Source("tts_model", "tts_model", "LOA_TTS_MODEL", _text),
    Source("play_lead_s", "play_lead", "LOA_PLAY_LEAD_S", _seconds(0, 60)),
    Source("routine_play_lead_s", "routine_play_lead", "LOA_ROUTINE_PLAY_LEAD_S", _seconds(0, 600)),
    Source("require_approval", "no_approval", "LOA_REQUIRE_APPROVAL", _approval),
    Source("trusted_proxies", "trusted_proxies", "LOA_TRUSTED_PROXIES", _count),
    Source("source_private_audio", "source_private_audio", "LOA_SOURCE_PRIVATE_AUDIO", _yes_no),
    Source("stream_port", "stream_port", "LOA_STREAM_PORT", _port_or_off),
    Source("stream_url", "stream_url", "LOA_STREAM_URL", _text),
)


class Secrets:
    """Generated secrets of one installation: Flask key, broker password, signing key."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "secrets.json"
        self._key_path = data_dir / "keys" / "server_ed25519.pem"
        self._values: dict[str, str] = {}
        if self._path.exists():
            self._values = json.loads(self._path.read_text(encoding="utf-8"))

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Held while a missing secret is made: web workers starting together on a new data
        directory must all end up with the same Flask key and signing key, not one each."""
        lock = FileLock(self._path.parent / ".secrets.lock")
        lock.acquire(blocking=True)
        try:
            yield
        finally:
            lock.release()

    def _get(self, name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
        if name not in self._values:
            with self._creating():
                if self._path.exists():  # another process may have just written it
                    self._values = json.loads(self._path.read_text(encoding="utf-8"))
                if name not in self._values:
                    self._values[name] = make()
                    write_private_file(self._path, json.dumps(self._values, indent=2) + "\n")
        return self._values[name]

    def ensure_shared(self) -> None:
        """Make every secret the servers of one database must share now, at the first start,
        not when first used: a second node is provisioned by copying `secrets.json` (and the
        key), and a copy taken before a secret existed would make it one of its own (another
        answer-back session, another broker password, sessions signed with another key)."""
        for name in (
            "flask_secret_key",
            "mqtt_password",
            "mqtt_client_token",
            "stream_token_key",  # a live stream's listen token, checked by whichever node
            "stream_source_password",  # one Icecast fed by whichever node leads the live
            "stream_admin_password",
            "calendar_feed_key",  # the officers' calendar feed links, answered by any node
        ):
            getattr(self, name)

    def shared_fingerprint(self) -> str:
        """What identifies the shared secrets without showing them (`loa doctor` compares the
        database's record with each node's)."""
        shared = [self.flask_secret_key, self.mqtt_password, self.mqtt_client_token]
        return hashlib.sha256("\n".join(shared).encode()).hexdigest()[:16]

    @property
    def flask_secret_key(self) -> str:
        return self._get("flask_secret_key")

    @property
    def mqtt_password(self) -> str:
        return self._get("mqtt_server_password")

    @property
    def mqtt_client_token(self) -> str:
        """The secret end of the server's MQTT client ids (`loa-server-<token>[-<process>]`):
        on an engine that lets any login take any id (nats-server), a stolen receiver's login
        cannot guess them to close the server's connections or wipe its answer-back session."""
        return self._get("mqtt_client_token", lambda: secrets.token_hex(16))

    def mqtt_password_bcrypt(self, make: Callable[[str], str]) -> str:
        """A bcrypt hash of the broker password (what nats-server verifies), made by `make` from
        the password the first time and kept beside it, so configs written later are the same."""
        password = self.mqtt_password  # first: `_get` holds a lock no nested `_get` may take
        return self._get("mqtt_server_password_bcrypt", lambda: make(password))

    @property
    def nats_route_password(self) -> str:
        """What the nodes of a nats-server cluster show each other on their routes."""
        return self._get("nats_route_password")

    @property
    def stream_source_password(self) -> str:
        """What the server's feed shows Icecast to speak on a live mount."""
        return self._get("stream_source_password")

    @property
    def stream_admin_password(self) -> str:
        """Icecast's admin login (and its relay login): nobody uses it, it only must not be a
        default."""
        return self._get("stream_admin_password")

    @property
    def stream_token_key(self) -> str:
        """The key of live mounts' listen tokens (`fleet.streaming.listen_token`)."""
        return self._get("stream_token_key")

    @property
    def calendar_feed_key(self) -> str:
        """The key of the accounts' calendar feed links (`desks.calendar.feed_token`)."""
        return self._get("calendar_feed_key")

    def signing_key(self) -> Ed25519PrivateKey:
        if self._key_path.exists():
            return protocol.private_key_from_pem(self._key_path.read_bytes())
        with self._creating():
            if self._key_path.exists():
                return protocol.private_key_from_pem(self._key_path.read_bytes())
            key = protocol.generate_private_key()
            write_private_file(self._key_path, protocol.private_key_to_pem(key).decode("ascii"))
        _LOGGER.info("generated the command signing key %s", self._key_path)
        return key

    def replace_signing_key(self) -> Ed25519PrivateKey:
        """A new command signing key, written over the old one atomically (`loa keys rotate`):
        the old private key is gone, so nothing can sign with it from this directory again."""
        with self._creating():
            key = protocol.generate_private_key()
            write_private_file(self._key_path, protocol.private_key_to_pem(key).decode("ascii"))
        _LOGGER.info("replaced the command signing key %s", self._key_path)
        return key
