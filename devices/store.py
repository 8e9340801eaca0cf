"""What a receiver keeps on its SD card so that a reboot or a power cut changes nothing it plays.

Three files in the data directory, each replaced atomically (temporary file, fsync, rename), so a
power cut leaves the old copy or the new one, never half of one:

* `manifest.json`: the signed manifest exactly as it came from the broker; it is verified again
  (signature, device, topic) when the agent starts, so an edited file is refused;
* `commands.json`: the signed play commands not yet played (same re-verification);
* `memory.json`: the items that ended (never started again) and the STOPs received.

The replay guards live in `replay.json`, owned by `devices.intake`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from wire.files import write_atomic

_LOGGER = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
COMMANDS_FILE = "commands.json"
MEMORY_FILE = "memory.json"


class ReceiverStore:
    """The receiver's persisted programme; a failed write is logged, never fatal."""

    def __init__(self, data_dir: Path, device_id: str = "") -> None:
        self.data_dir = Path(data_dir)
        self.device_id = device_id

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / MANIFEST_FILE

    def save_manifest(self, payload: bytes) -> bool:
        return self._write(self.manifest_path, payload)

    def load_manifest(self) -> bytes | None:
        try:
            return self.manifest_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _LOGGER.error("%s: cannot read %s: %s", self.device_id, self.manifest_path, exc)
            return None

    def save_commands(self, commands: dict[str, dict[str, str]]) -> bool:
        return self._write(self.data_dir / COMMANDS_FILE, _dump(commands))

    def load_commands(self) -> dict[str, dict[str, str]]:
        data = self._read_json(self.data_dir / COMMANDS_FILE)
        commands = {}
        for command_id, entry in data.items():
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("topic"), str)
                and isinstance(entry.get("payload"), str)
            ):
                commands[str(command_id)] = {"topic": entry["topic"], "payload": entry["payload"]}
        return commands

    def save_memory(self, memory: dict[str, Any]) -> bool:
        return self._write(self.data_dir / MEMORY_FILE, _dump(memory))

    def load_memory(self) -> dict[str, Any]:
        return self._read_json(self.data_dir / MEMORY_FILE)

    def _write(self, path: Path, data: bytes) -> bool:
        try:
            write_atomic(path, data)
        except OSError as exc:
            _LOGGER.error("%s: cannot save %s: %s", self.device_id, path, exc)
            return False
        return True

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning("%s: ignoring unreadable %s: %s", self.device_id, path, exc)
            return {}
        if not isinstance(data, dict):
            _LOGGER.warning("%s: ignoring %s: not a JSON object", self.device_id, path)
            return {}
        return data


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
