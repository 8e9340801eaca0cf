"""Fixtures of the end-to-end tests: `loa` processes stopped by their own handles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import LoaProcess
from support import REPO_ROOT


@pytest.fixture
def loa_processes(request: pytest.FixtureRequest) -> Iterator[list[LoaProcess]]:
    """Processes a test starts; any still running at teardown are stopped by their handle. When
    the test failed, each one's output is kept in test-artifacts/processes/<test>.log."""
    started: list[LoaProcess] = []
    yield started
    for process in reversed(started):
        process.kill()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and started:
        folder = Path(os.environ.get("LOA_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts"))
        log = folder / "processes" / f"{request.node.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            for process in started:
                out.write(f"----- loa {' '.join(process.args)} -----\n{process.output}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item, for fixtures to see whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
