"""The test commune (a commune, two villages) and users of every role; a leading service
whose MQTT messages are recorded, with three receivers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from service_support import RecordingDispatcher, Users, add_devices, recording_service, seed_commune

from broadcast.service import BroadcastService

RECEIVERS = {"loa-a-01": "thon-a", "loa-a-02": "thon-a", "loa-b-01": "thon-b"}


@pytest.fixture
def users(service: BroadcastService) -> Users:
    return seed_commune(service)


@dataclass
class Leader:
    service: BroadcastService
    sent: RecordingDispatcher
    users: Users


class ManualClock:
    """The time a test sets; the leader's re-delivery sweeps, its own periodic ones included,
    read it instead of the real clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def start_leader(data_dir: Path, clock: ManualClock | None = None) -> Leader:
    """A started service (it holds its data directory's scheduler lock, so it leads); with a
    `clock`, its re-delivery sweeps never run on real time."""
    service, recorder = recording_service(data_dir)
    if clock is not None:
        service.leader.clock = clock
    users = seed_commune(service)
    add_devices(service, RECEIVERS)
    service.start()
    assert service.leading
    return Leader(service, recorder, users)


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[Leader]:
    started = start_leader(tmp_path / "data")
    yield started
    started.service.stop()
