"""Command intake: the receiver's trust boundary, and the replay memory that survives restarts.

Every payload from the broker passes here before anything happens: the Ed25519 signature, the
expiry and the replay guard are checked, and the ids of accepted commands are persisted (an
atomic rewrite of the replay file), so a command replayed after a reboot is still refused. A bad
payload is logged and counted, never fatal. Kept apart from `devices.agent` so what a receiver
trusts can be read in one place, without the MQTT and playback around it.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from devices.config import write_private_file
from devices.protocol import Command, ProtocolError, ReplayGuard, verify_command

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")


class CommandIntake:
    """Verifies commands for one receiver and remembers the accepted ones in `replay_path`."""

    def __init__(self, device_id: str, public_key: Ed25519PublicKey, replay_path: Path) -> None:
        self.device_id = device_id
        self._public_key = public_key
        self._replay_path = replay_path
        self._guard = ReplayGuard(self._load_replay())
        self._guard_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._rejected = 0

    @property
    def rejected(self) -> int:
        """Commands dropped as unsigned, forged, expired, replayed or malformed."""
        with self._count_lock:
            return self._rejected

    def accept(self, topic: str, payload: bytes) -> Command | None:
        """The verified command, now remembered; None (logged and counted) if it is refused."""
        try:
            command = verify_command(payload, self._public_key)
            with self._guard_lock:
                self._guard.check_and_remember(command)
                self._save_replay()
        except ProtocolError as exc:
            with self._count_lock:
                self._rejected += 1
            _LOGGER.warning("%s: rejected command on %s: %s", self.device_id, topic, exc)
            return None
        return command

    # --- replay guard persistence ---------------------------------------------------------------

    def _load_replay(self) -> dict[str, float]:
        try:
            data = json.loads(self._replay_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning(
                "%s: ignoring unreadable %s: %s", self.device_id, self._replay_path, exc
            )
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def _save_replay(self) -> None:
        """Atomic rewrite; a failed write is logged, the in-memory guard still protects us."""
        try:
            write_private_file(self._replay_path, json.dumps(self._guard.to_dict()))
        except OSError as exc:
            _LOGGER.error("%s: cannot save %s: %s", self.device_id, self._replay_path, exc)
