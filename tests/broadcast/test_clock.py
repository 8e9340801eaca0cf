"""Times: entered in Asia/Ho_Chi_Minh, stored in UTC."""

from __future__ import annotations

from datetime import datetime

import pytest

from broadcast import clock
from broadcast.errors import ValidationError


def test_local_to_utc_and_back() -> None:
    stored = clock.parse_local("2026-11-26T17:00", "run_at")
    assert stored == datetime(2026, 11, 26, 10, 0)
    assert clock.format_local(stored) == "26/11/2026 17:00"
    assert clock.iso_utc(stored) == "2026-11-26T10:00:00+00:00"


@pytest.mark.parametrize("text", ["25:00", "7h", "", "12:60"])
def test_bad_time_of_day(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        clock.parse_time_of_day(text, "time_of_day")
    assert info.value.field == "time_of_day"


def test_time_of_day_normalized() -> None:
    assert clock.parse_time_of_day("6:00", "t") == "06:00"
