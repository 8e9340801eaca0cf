"""Schedules by the lunar calendar (`rules`, kinds lunar_monthly and lunar_yearly): their runs
fall on the right solar days, across a leap month and in a month of 29 days.

The 2025 lunar year (`test_lunar.YEARS`): 1st month from 29/1 (30 days), 2nd 28/2 (29), 3rd 29/3
(30), 4th 28/4 (29), 5th 27/5 (29), 6th 25/6 (30), leap 6th 25/7 (29), 7th 23/8 (30), 8th 22/9.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from broadcast import clock
from broadcast.const import ScheduleKind
from broadcast.errors import ValidationError
from broadcast.programme import rules as programmes
from broadcast.programme.rules import Rule, local_midnight, next_occurrence, occurrences


def _days(runs: list[datetime]) -> list[str]:
    return [clock.format_local(at, "%d/%m/%Y %H:%M") for at in runs]


def _span(first: date, last: date) -> tuple[datetime, datetime]:
    return local_midnight(first), local_midnight(last + timedelta(days=1))


def test_every_ram_and_mung_mot_plays_in_the_leap_month_too() -> None:
    rule = Rule(ScheduleKind.LUNAR_MONTHLY, time_of_day="06:00", lunar_days=(1, 15))
    runs = occurrences(rule, *_span(date(2025, 6, 1), date(2025, 9, 30)))
    assert _days(runs) == [
        "10/06/2025 06:00",  # rằm of the 5th month
        "25/06/2025 06:00",  # mùng một of the 6th
        "09/07/2025 06:00",  # rằm of the 6th
        "25/07/2025 06:00",  # mùng một of the leap 6th
        "08/08/2025 06:00",  # rằm of the leap 6th
        "23/08/2025 06:00",  # the 7th
        "06/09/2025 06:00",
        "22/09/2025 06:00",  # the 8th
    ]
    assert runs[0] == datetime(2025, 6, 9, 23, 0)  # 06:00 in Hà Nội is 23:00 UTC the day before


def test_a_yearly_date_plays_in_the_regular_month_not_the_leap_one() -> None:
    rule = Rule(ScheduleKind.LUNAR_YEARLY, time_of_day="19:00", lunar_days=(15,), lunar_month=6)
    runs = occurrences(rule, *_span(date(2025, 1, 1), date(2026, 12, 31)))
    assert _days(runs) == ["09/07/2025 19:00", "28/07/2026 19:00"]


def test_gio_to_hung_vuong_across_a_leap_second_month() -> None:
    """10/3 âm lịch: 2023 has a leap 2nd month before it; each is the day off the government
    announced (29/4/2023, 18/4/2024, 7/4/2025, 26/4/2026)."""
    rule = Rule(ScheduleKind.LUNAR_YEARLY, time_of_day="07:00", lunar_days=(10,), lunar_month=3)
    runs = occurrences(rule, *_span(date(2023, 1, 1), date(2026, 12, 31)))
    assert _days(runs) == [
        "29/04/2023 07:00",
        "18/04/2024 07:00",
        "07/04/2025 07:00",
        "26/04/2026 07:00",
    ]


def test_day_30_of_a_29_day_month_plays_on_its_last_day_once() -> None:
    rule = Rule(ScheduleKind.LUNAR_MONTHLY, time_of_day="17:00", lunar_days=(29, 30))
    runs = occurrences(rule, *_span(date(2025, 3, 1), date(2025, 4, 30)))
    # the 2nd month has 29 days (ends 28/3), the 3rd 30 (29/3-27/4)
    assert _days(runs) == ["28/03/2025 17:00", "26/04/2025 17:00", "27/04/2025 17:00"]
    only_30 = Rule(ScheduleKind.LUNAR_MONTHLY, time_of_day="17:00", lunar_days=(30,))
    runs = occurrences(only_30, *_span(date(2025, 3, 1), date(2025, 4, 30)))
    assert _days(runs) == ["28/03/2025 17:00", "27/04/2025 17:00"]


def test_tet_is_the_vietnamese_one() -> None:
    rule = Rule(ScheduleKind.LUNAR_YEARLY, time_of_day="00:00", lunar_days=(1,), lunar_month=1)
    runs = occurrences(rule, *_span(date(2030, 1, 1), date(2030, 12, 31)))
    assert _days(runs) == ["02/02/2030 00:00"]  # China's is on 3/2


def test_window_limit_and_next_run() -> None:
    rule = Rule(
        ScheduleKind.LUNAR_MONTHLY,
        time_of_day="06:00",
        lunar_days=(15,),
        valid_from=date(2025, 7, 1),
        valid_to=date(2025, 8, 31),
    )
    runs = occurrences(rule, *_span(date(2025, 1, 1), date(2025, 12, 31)))
    assert _days(runs) == ["09/07/2025 06:00", "08/08/2025 06:00"]
    assert len(occurrences(rule, *_span(date(2025, 1, 1), date(2025, 12, 31)), limit=1)) == 1
    assert next_occurrence(rule, datetime(2025, 7, 10)) == datetime(2025, 8, 7, 23, 0)


NOW = datetime(2026, 12, 7, 3, 0)  # 7/12/2026, 28/10 âm lịch


def test_make_rule_for_the_lunar_kinds() -> None:
    monthly = programmes.make_rule(
        "lunar_monthly", now=NOW, time_of_day="6:00", lunar_days=["15", "1", "15"]
    )
    assert monthly == Rule(ScheduleKind.LUNAR_MONTHLY, time_of_day="06:00", lunar_days=(1, 15))
    yearly = programmes.make_rule(
        "lunar_yearly", now=NOW, time_of_day="07:00", lunar_days=[10], lunar_month="3"
    )
    assert (yearly.lunar_days, yearly.lunar_month) == ((10,), 3)
    # 27/10 âm lịch has just passed: the next is a lunar year ahead
    yearly_past = programmes.make_rule(
        "lunar_yearly", now=NOW, time_of_day="07:00", lunar_days=[27], lunar_month=10
    )
    assert yearly_past.lunar_month == 10


def test_a_yearly_date_more_than_a_solar_year_ahead_is_accepted() -> None:
    """The day after 15/6/2027 âm lịch (18/7/2027) the next 15/6 is 383 days away (2028 has a
    leap 5th month): not "never runs within a year"."""
    now = datetime(2027, 7, 19, 3, 0)
    rule = programmes.make_rule(
        "lunar_yearly", now=now, time_of_day="07:00", lunar_days=[15], lunar_month=6
    )
    assert next_occurrence(rule, now) == datetime(2028, 8, 5, 0, 0)


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"lunar_days": []}, "lunar_days", "required"),
        ({"lunar_days": [0]}, "lunar_days", "out_of_range"),
        ({"lunar_days": [31]}, "lunar_days", "out_of_range"),
        ({"lunar_days": ["rằm"]}, "lunar_days", "not_integer"),
        ({"lunar_days": [True]}, "lunar_days", "not_integer"),
        ({"lunar_days": [15], "lunar_month": None}, "lunar_month", "required"),
        ({"lunar_days": [15], "lunar_month": 13}, "lunar_month", "out_of_range"),
        ({"lunar_days": [15], "lunar_month": 0}, "lunar_month", "out_of_range"),
        ({"lunar_days": [15], "lunar_month": "3.5"}, "lunar_month", "not_integer"),
    ],
)
def test_bad_lunar_fields_name_the_field(fields: dict, field: str, code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        programmes.make_rule("lunar_yearly", now=NOW, time_of_day="07:00", **fields)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_stored_rule_round_trips() -> None:
    rule = programmes.rule_of("lunar_yearly", None, "07:00", None, None, None, None, None, [10], 3)
    assert rule == Rule(
        ScheduleKind.LUNAR_YEARLY, time_of_day="07:00", lunar_days=(10,), lunar_month=3
    )
    with pytest.raises(ValueError):
        programmes.trigger(rule)
