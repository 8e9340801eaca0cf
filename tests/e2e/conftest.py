"""Fixtures of the end-to-end tests: `loa` processes stopped by their own handles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from processes import LoaProcess


@pytest.fixture
def loa_processes() -> Iterator[list[LoaProcess]]:
    """Processes a test starts; any still running at teardown are stopped by their handle."""
    started: list[LoaProcess] = []
    yield started
    for process in reversed(started):
        process.kill()
