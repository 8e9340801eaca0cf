"""The Vietnamese lunar calendar (âm lịch): which lunar day a solar day is, and back.

Villages keep the lunar calendar (rằm = the 15th, mùng một = the 1st, Tết, giỗ Tổ Hùng Vương
10/3), so a commune schedules by it. The Vietnamese calendar is computed for UTC+7 (since 1968,
on the 105° E meridian) and differs from the Chinese one (UTC+8) in some months: Tết 2030 is on
2 February in Vietnam, 3 February in China. The conversion is Hồ Ngọc Đức's algorithm for time
zone 7, from the `lunar-vn` package (MIT, no dependencies); `tests/broadcast/programme/
test_lunar.py` holds it to his published tables for 2020-2035, every leap month included.

Months: a lunar month has 29 or 30 days; a leap month (tháng nhuận) repeats the month before it
(2025: the 6th month, then the leap 6th). Nothing here knows schedules: `rules` decides what a
monthly or yearly lunar schedule does in a leap month or a 29-day month.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import lunar_vn

TIME_ZONE = 7.0  # Vietnam's, not China's 8.0
LONG_MONTH = 30


@dataclass(frozen=True)
class LunarDay:
    """A lunar date: day 1-30 of month 1-12 of the lunar year (`leap`: of the leap month)."""

    day: int
    month: int
    year: int
    leap: bool = False


@dataclass(frozen=True)
class LunarMonth:
    """One lunar month: its number, whether it is the leap one, its first solar day, length."""

    year: int
    month: int
    leap: bool
    first: date
    length: int  # 29 or 30

    def day(self, number: int) -> date:
        """The solar date of lunar day `number`; a 30 in a 29-day month is its last day."""
        return self.first + timedelta(days=min(number, self.length) - 1)


@functools.lru_cache(maxsize=8192)
def lunar_day(solar: date) -> LunarDay:
    """The lunar date of a solar date (1900-2100); ValueError outside that span."""
    found = lunar_vn.solar_to_lunar(solar, time_zone=TIME_ZONE)
    return LunarDay(found.day, found.month, found.year, found.leap)


def month_of(solar: date) -> LunarMonth:
    """The lunar month a solar date lies in."""
    today = lunar_day(solar)
    first = solar - timedelta(days=today.day - 1)
    # the next month begins 29 or 30 days after this one did
    length = LONG_MONTH if lunar_day(first + timedelta(days=29)).day == LONG_MONTH else 29
    return LunarMonth(today.year, today.month, today.leap, first, length)


def months_from(solar: date) -> Iterator[LunarMonth]:
    """The lunar month of `solar` and every one after it, until the end of the conversion's
    span (year 2100)."""
    try:
        current = month_of(solar)
        while True:
            yield current
            current = month_of(current.first + timedelta(days=current.length))
    except ValueError:
        return


def to_solar(day: int, month: int, year: int, *, leap: bool = False) -> date:
    """The solar date of a lunar date (a 30 in a 29-day month: its last day)."""
    first = lunar_vn.convert_lunar_to_solar(1, month, year, int(leap), time_zone=TIME_ZONE)
    return month_of(first).day(day)
