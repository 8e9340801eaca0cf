"""The test commune (a commune, two villages) and users of every role."""

from __future__ import annotations

import pytest
from service_support import Users, seed_commune

from broadcast.service import BroadcastService


@pytest.fixture
def users(service: BroadcastService) -> Users:
    return seed_commune(service)
