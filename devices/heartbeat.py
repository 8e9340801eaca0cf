"""What a receiver tells the server about itself in its retained state message (the heartbeat).

The state is republished every `heartbeat_s` and on every change, so the server's dashboard shows
within half a minute a receiver that is too hot, out of disk, behind on its downloads or drifting
in time. `Snapshot` is the scheduler's part (what plays, what waits); `status_extra` adds the
machine's facts. Every fact is optional: a laptop has no thermal zone, a test no /proc.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wire.protocol import ReceiverState

_LOGGER = logging.getLogger(__name__)

THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
UPTIME_PATH = Path("/proc/uptime")


@dataclass(frozen=True)
class Snapshot:
    """The scheduler's view at one moment; equal snapshots need no new state message."""

    state: ReceiverState
    broadcast_id: int | None = None
    item_id: str | None = None
    queued: int = 0
    manifest_items: int = 0
    manifest_seq: int | None = None
    cache_complete: float = 1.0
    preempted_items: int = 0
    amplifier_on: bool | None = None

    def changed_from(self, other: Snapshot | None) -> bool:
        """A change the server should see now (not only at the next heartbeat): everything but
        the cache's progress, which moves with every file of a large manifest; its completion
        counts, though: the server waits for it (every file of the programme is here), and a
        manifest whose files arrive while the receiver stays idle changes nothing else."""
        if other is None:
            return True
        if (self.cache_complete >= 1.0) != (other.cache_complete >= 1.0):
            return True
        keys = (
            "state",
            "broadcast_id",
            "item_id",
            "queued",
            "manifest_items",
            "manifest_seq",
            "preempted_items",
            "amplifier_on",
        )
        return any(getattr(self, key) != getattr(other, key) for key in keys)


def cpu_temperature_c(path: Path = THERMAL_PATH) -> float | None:
    """The SoC temperature (the kernel gives millidegrees); None where there is none."""
    try:
        return round(int(path.read_text(encoding="ascii").strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def disk_free_mb(path: Path) -> float | None:
    try:
        return round(shutil.disk_usage(path).free / (1024 * 1024), 1)
    except OSError:
        return None


def system_uptime_s(path: Path = UPTIME_PATH) -> float | None:
    try:
        return round(float(path.read_text(encoding="ascii").split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


def status_extra(
    snapshot: Snapshot,
    *,
    version: str,
    started_at: float,
    data_dir: Path,
    rejected_commands: int,
    clock_offset_s: float | None,
    zones: Sequence[str] = (),
    refused_topics: Sequence[str] = (),
    broker: str = "",
    thermal_path: Path = THERMAL_PATH,
    now: float | None = None,
) -> dict[str, Any]:
    """The `extra` object of the state message (names are the server's contract).

    `zones` are the zones whose commands the receiver subscribes to (its config file) and
    `refused_topics` the subscriptions the broker refused: the server compares them with the
    zones it registered the receiver in, so a receiver that hears nothing is seen. `broker` is
    the one (`host:port`) the receiver is on: with several (`mqtt.hosts`) it shows where a
    failover left it."""
    current = time.time() if now is None else now
    return {
        "current_item": snapshot.item_id,
        "queued": snapshot.queued,
        "manifest_items": snapshot.manifest_items,
        "manifest_seq": snapshot.manifest_seq,
        "cache_complete": round(snapshot.cache_complete, 3),
        "preempted_items": snapshot.preempted_items,
        "amplifier_on": snapshot.amplifier_on,
        "rejected_commands": rejected_commands,
        "clock_offset_s": None if clock_offset_s is None else round(clock_offset_s, 3),
        "version": version,
        "uptime_s": round(current - started_at, 1),
        "system_uptime_s": system_uptime_s(),
        "cpu_temp_c": cpu_temperature_c(thermal_path),
        "disk_free_mb": disk_free_mb(data_dir),
        "zones": list(zones),
        "refused_topics": list(refused_topics),
        "broker": broker,
    }
