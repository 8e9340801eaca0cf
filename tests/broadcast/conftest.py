"""The test commune (a commune, two villages) and users of every role; a leading service
whose MQTT messages are recorded, with three receivers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[Leader]:
    """A started service (it holds its data directory's scheduler lock, so it leads)."""
    service, recorder = recording_service(tmp_path / "data")
    users = seed_commune(service)
    add_devices(service, RECEIVERS)
    service.start()
    assert service.leading
    yield Leader(service, recorder, users)
    service.stop()
