"""The loudspeaker amplifier's power relay, switched through gpiozero.

A village amplifier left on all day wastes power and hums; switched on at the moment audio starts
it would swallow the first second (the chime) while it warms up. So the scheduler switches it on
`warmup_s` before an item's start and off after `idle_off_s` without playing. Times come in as
arguments, so the rules are tested without waiting, and gpiozero's MockFactory stands in for the
Pi's GPIO in tests (`pin_factory: "mock"`).

gpiozero is imported only when a pin is configured: a receiver without amplifier control (the
demo, the tests' other receivers) does not need it.
"""

from __future__ import annotations

import logging
from typing import Any

from wire.config import AmplifierSettings

_LOGGER = logging.getLogger(__name__)


class AmplifierError(Exception):
    """The configured pin cannot be driven; the message names the field to fix."""


class Amplifier:
    """Power control of one amplifier; without a pin every call is a no-op and it is 'ready'."""

    def __init__(self, settings: AmplifierSettings) -> None:
        self.pin = settings.pin
        self.idle_off_s = settings.idle_off_s
        self.warmup_s = settings.warmup_s if settings.pin is not None else 0.0
        self.factory: Any = None
        self._device: Any = None
        self.on_since: float | None = None
        self.last_used = 0.0
        if settings.pin is None:
            return
        try:
            from gpiozero import OutputDevice

            if settings.pin_factory == "mock":
                from gpiozero.pins.mock import MockFactory

                self.factory = MockFactory()
            self._device = OutputDevice(
                settings.pin, active_high=True, initial_value=False, pin_factory=self.factory
            )
        except ImportError as exc:
            if exc.name == "gpiozero" or "gpiozero" in str(exc):
                raise AmplifierError(
                    "field 'amplifier.pin' is set but gpiozero is not installed "
                    "(pip install gpiozero), or no GPIO driver works on this board: "
                    f"{exc}"
                ) from exc
            raise AmplifierError(f"field 'amplifier.pin' {settings.pin}: {exc}") from exc
        except Exception as exc:  # gpiozero raises many kinds (bad pin, pin in use, no board)
            raise AmplifierError(f"field 'amplifier.pin' {settings.pin}: {exc}") from exc
        _LOGGER.info("amplifier on GPIO%d (%s pins)", settings.pin, settings.pin_factory)

    @property
    def controlled(self) -> bool:
        return self._device is not None

    @property
    def is_on(self) -> bool:
        return self.on_since is not None

    def ready_at(self, now: float) -> float:
        """When audio may start if it was wanted now (switching on first if needed)."""
        if not self.controlled:
            return now
        if self.on_since is None:
            return now + self.warmup_s
        return max(now, self.on_since + self.warmup_s)

    def switch_on(self, now: float) -> bool:
        """Power on (if off); True if it was switched now. Counts as use."""
        self.last_used = now
        if not self.controlled or self.on_since is not None:
            return False
        self._device.on()
        self.on_since = now
        _LOGGER.info("amplifier on (audio in %.1f s)", self.warmup_s)
        return True

    def touch(self, now: float) -> None:
        """Audio is playing: the idle timer starts again."""
        self.last_used = now

    def off_due_at(self) -> float | None:
        """When the idle timeout will switch it off (if nothing plays meanwhile)."""
        if self.on_since is None:
            return None
        return max(self.last_used, self.on_since) + self.idle_off_s

    def switch_off(self, now: float) -> bool:
        if not self.controlled or self.on_since is None:
            return False
        self._device.off()
        self.on_since = None
        _LOGGER.info("amplifier off after %.0f s without audio", now - self.last_used)
        return True

    def close(self) -> None:
        if self._device is None:
            return
        self._device.off()
        self.on_since = None
        self._device.close()
        self._device = None
