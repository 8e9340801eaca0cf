"""The Vietnamese lunar calendar (`broadcast.programme.lunar`) against published tables.

`YEARS` is Hồ Ngọc Đức's published Vietnamese calendar for the lunar years 2020-2035 (the
TK21 table of his amlich-hnd.js, https://www.informatik.uni-leipzig.de/~duc/amlich/, computed
for UTC+7 with his precise algorithm): each year's Tết (1/1) as a solar date, its leap month
(0: none) and its months' lengths in order ("L" 30 days, "s" 29; the leap month follows the
month it repeats). Every day of those years is checked. The leap months agree with the
Vietnamese lists of leap years (2020 the 4th, 2023 the 2nd, 2025 the 6th, 2028 the 5th, 2031 the
3rd: wiindi.net "Năm Nhuận là gì? Năm 2020 có phải là năm Nhuận", xemtuong.net "Cách tính năm
nhuận âm lịch"); 2033's leap 11th month is the table's (the Chinese calendar has it too, the
"2033 problem"). Tết 2030 is on 2 February in Vietnam and 3 February in China (viet-jo.com,
2006-07-06, quoting the Vietnamese calendar office; scienceinfo.net "Why is the Vietnamese and
Chinese New Year a day different?"): a Chinese (UTC+8) library would be a day off there.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from broadcast.programme import lunar

YEARS = [
    (2020, date(2020, 1, 25), 4, "sLLLsLssLssLL"),
    (2021, date(2021, 2, 12), 0, "sLLsLsLsLsLs"),
    (2022, date(2022, 2, 1), 0, "LsLsLLsLsLsL"),
    (2023, date(2023, 1, 22), 2, "sLssLLsLLsLsL"),
    (2024, date(2024, 2, 10), 0, "sLssLsLLsLLs"),
    (2025, date(2025, 1, 29), 6, "LsLssLsLsLLLs"),
    (2026, date(2026, 2, 17), 0, "LsLssLssLLLs"),
    (2027, date(2027, 2, 6), 0, "LLsLssLssLLs"),
    (2028, date(2028, 1, 26), 5, "LLLsLssLssLLs"),
    (2029, date(2029, 2, 13), 0, "LLsLsLsLssLs"),
    (2030, date(2030, 2, 2), 0, "LLsLLsLsLsLs"),
    (2031, date(2031, 1, 23), 3, "sLsLLsLLsLsLs"),
    (2032, date(2032, 2, 11), 0, "sLsLsLLsLLsL"),
    (2033, date(2033, 1, 31), 11, "sLssLsLsLLLsL"),
    (2034, date(2034, 2, 19), 0, "sLssLssLLLsL"),
    (2035, date(2035, 2, 8), 0, "LsLssLssLLsL"),
]


def _published_months(year: int, tet: date, leap: int, lengths: str) -> list[lunar.LunarMonth]:
    numbers = [(m, False) for m in range(1, 13)]
    if leap:
        numbers.insert(leap, (leap, True))
    assert len(numbers) == len(lengths)
    months, first = [], tet
    for (month, is_leap), code in zip(numbers, lengths, strict=True):
        length = 30 if code == "L" else 29
        months.append(lunar.LunarMonth(year, month, is_leap, first, length))
        first += timedelta(days=length)
    return months


@pytest.mark.parametrize(("year", "tet", "leap", "lengths"), YEARS, ids=[str(y[0]) for y in YEARS])
def test_every_day_of_the_year_is_the_published_one(
    year: int, tet: date, leap: int, lengths: str
) -> None:
    for month in _published_months(year, tet, leap, lengths):
        assert lunar.month_of(month.first) == month
        for offset in range(month.length):
            assert lunar.lunar_day(month.first + timedelta(days=offset)) == lunar.LunarDay(
                offset + 1, month.month, year, month.leap
            )


def test_the_years_follow_one_another() -> None:
    for (year, tet, leap, lengths), following in itertools.pairwise(YEARS):
        last = _published_months(year, tet, leap, lengths)[-1]
        assert last.first + timedelta(days=last.length) == following[1]


def test_leap_months_in_2020_to_2035() -> None:
    found = {
        (month.year, month.month)
        for month in lunar.months_from(date(2020, 1, 25))
        if month.leap and month.year <= 2035
    }
    assert found == {(2020, 4), (2023, 2), (2025, 6), (2028, 5), (2031, 3), (2033, 11)}


def test_vietnamese_not_chinese_tet_2030() -> None:
    assert lunar.lunar_day(date(2030, 2, 2)) == lunar.LunarDay(1, 1, 2030)
    assert lunar.lunar_day(date(2030, 2, 1)) == lunar.LunarDay(29, 12, 2029)


def test_to_solar_and_a_thirtieth_in_a_short_month() -> None:
    assert lunar.to_solar(10, 3, 2026) == date(2026, 4, 26)  # giỗ Tổ Hùng Vương 2026
    assert lunar.to_solar(15, 6, 2025, leap=True) == date(2025, 8, 8)
    short = lunar.month_of(date(2026, 2, 17))  # tháng Giêng 2026: 30 days
    assert short.length == 30
    twelfth = lunar.month_of(date(2026, 2, 16))  # tháng Chạp 2025: 29 days
    assert twelfth.length == 29
    assert twelfth.day(30) == twelfth.day(29) == date(2026, 2, 16)


def test_months_stop_at_the_end_of_the_span() -> None:
    months = list(lunar.months_from(date(2100, 10, 1)))
    assert months and months[-1].first.year == 2100
