"""The receiver's config file: written by the server when a device is registered, read by the agent.

It is JSON so the Pi needs nothing beyond the standard library to read it. Example::

    {"device_id": "loa-thon-1-01", "zones": ["thon-1", "xa-hoang-hop"],
     "mqtt": {"host": "127.0.0.1", "port": 1883, "username": "loa-thon-1-01", "password": "…"},
     "server_public_key": "<base64 Ed25519>", "data_dir": "/var/lib/loa",
     "player": {"kind": "file", "dir": "/var/lib/loa/played"}}
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devices.protocol import ProtocolError, check_id

_LOGGER = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file a person must fix; the message names the file and the field."""


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    username: str
    password: str
    keepalive: int = 30


@dataclass(frozen=True)
class PlayerSettings:
    """`file` writes what would play (demo, tests); `command` runs e.g. mpg123 on the Pi.

    `realtime` makes the file sink take as long as the MP3 would sound (demo); off for tests.
    """

    kind: str = "file"
    dir: str = ""
    argv: list[str] = field(default_factory=lambda: ["mpg123", "-q", "{file}"])
    realtime: bool = False


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
            config = cls(
                device_id=check_id(str(need(data, "device_id", "")), "device_id"),
                zones=[check_id(str(z), "zone id") for z in zones],
                mqtt=MqttSettings(
                    host=str(need(mqtt, "host", "mqtt.")),
                    port=int(need(mqtt, "port", "mqtt.")),
                    username=str(need(mqtt, "username", "mqtt.")),
                    password=str(need(mqtt, "password", "mqtt.")),
                    keepalive=int(mqtt.get("keepalive", 30)),
                ),
                server_public_key=str(need(data, "server_public_key", "")),
                data_dir=str(need(data, "data_dir", "")),
                player=PlayerSettings(
                    kind=str(player.get("kind", "file")),
                    dir=str(player.get("dir", "")),
                    argv=[str(a) for a in player.get("argv", ["mpg123", "-q", "{file}"])],
                    realtime=realtime,
                ),
                cache_limit_mb=int(data.get("cache_limit_mb", 200)),
                http_timeout_s=float(data.get("http_timeout_s", 30.0)),
            )
        except ConfigError:
            raise  # already names the file and field (ConfigError is a ValueError)
        except ProtocolError as exc:
            raise ConfigError(f"{source}: {exc.detail}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        if config.player.kind not in ("file", "command"):
            raise ConfigError(f"{source}: field 'player.kind' must be 'file' or 'command'")
        if not 1 <= config.mqtt.port <= 65535:
            raise ConfigError(f"{source}: field 'mqtt.port' must be 1..65535")
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


def write_private_file(path: Path, text: str) -> None:
    """Write atomically (temporary file, fsync, rename) with mode 0600: these files hold secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
