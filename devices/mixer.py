"""The sound card's volume, set through the ALSA mixer (`amixer`) so every receiver of a commune
plays at the level the installer chose, even after a USB sound card was replaced.

Applied at start and whenever the amplifier switches on; a missing `amixer` or a failing command
is one warning per distinct problem (a receiver keeps playing at whatever level the card has).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from wire.config import MixerSettings

_LOGGER = logging.getLogger(__name__)

MIXER_TIMEOUT_S = 5.0


class Mixer:
    """Runs the configured mixer command with `{control}` and `{volume}` filled in."""

    def __init__(self, settings: MixerSettings, enabled: bool = True) -> None:
        self.settings = settings
        self.enabled = enabled and settings.volume is not None
        self._warned: set[str] = set()

    def argv(self) -> list[str]:
        control, volume = self.settings.control, str(self.settings.volume)
        return [
            arg.replace("{control}", control).replace("{volume}", volume)
            for arg in self.settings.command
        ]

    def apply(self) -> bool:
        """Set the volume; False (logged once per distinct problem) if it could not be set."""
        if not self.enabled:
            return False
        argv = self.argv()
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=MIXER_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            self._warn(f"{argv[0]} not found: the volume is left as it is")
            return False
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._warn(f"cannot run {argv[0]}: {exc}")
            return False
        if result.returncode != 0:
            tail = result.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = f": {tail[-1][:160]}" if tail else ""
            self._warn(f"{Path(argv[0]).name} exited with status {result.returncode}{reason}")
            return False
        _LOGGER.debug("volume of %s set to %s%%", self.settings.control, self.settings.volume)
        return True

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            _LOGGER.warning("mixer: %s", message)
