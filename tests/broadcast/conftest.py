"""A broadcast service on a fresh data directory, with a test commune and users of every role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import Users, make_service, seed_commune

from broadcast.service import BroadcastService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[BroadcastService]:
    svc = make_service(tmp_path / "data")
    yield svc
    svc.stop()


@pytest.fixture
def users(service: BroadcastService) -> Users:
    return seed_commune(service)
