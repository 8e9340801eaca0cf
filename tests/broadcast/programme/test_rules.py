"""Programme rules: the one pure function that expands a schedule into its runs.

Times are local (Asia/Ho_Chi_Minh, UTC+7, no DST) in, naive UTC out.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from broadcast.const import ScheduleKind
from broadcast.errors import ValidationError
from broadcast.programme import rules as programmes
from broadcast.programme.rules import Rule, first_overlap, occurrences

# Thursday 26/11/2026 10:00 in Hà Nội
NOW = datetime(2026, 11, 26, 3, 0)


def _local(runs: list[datetime]) -> list[str]:
    """Runs as local 'Www dd/mm HH:MM' for readable assertions."""
    from broadcast import clock

    return [clock.format_local(at, "%a %d/%m %H:%M") for at in runs]


def test_daily_is_local_time_stored_in_utc() -> None:
    runs = occurrences(Rule(ScheduleKind.DAILY, time_of_day="17:00"), NOW, NOW + timedelta(days=3))
    assert runs == [datetime(2026, 11, d, 10, 0) for d in (26, 27, 28)]


def test_daily_before_local_midnight_is_the_previous_utc_day() -> None:
    runs = occurrences(Rule(ScheduleKind.DAILY, time_of_day="06:00"), NOW, NOW + timedelta(days=2))
    assert runs == [datetime(2026, 11, 26, 23, 0), datetime(2026, 11, 27, 23, 0)]
    assert _local(runs) == ["Fri 27/11 06:00", "Sat 28/11 06:00"]


def test_chosen_weekdays() -> None:
    rule = Rule(ScheduleKind.WEEKDAYS, time_of_day="06:30", weekdays=(0, 2, 6))  # Mon, Wed, Sun
    runs = occurrences(rule, NOW, NOW + timedelta(days=8))
    assert _local(runs) == ["Sun 29/11 06:30", "Mon 30/11 06:30", "Wed 02/12 06:30"]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 6 * * 0", ["Sun 29/11 06:00", "Sun 06/12 06:00"]),  # Sunday is 0, as in cron
        ("0 6 * * 7", ["Sun 29/11 06:00", "Sun 06/12 06:00"]),  # and 7
        ("0 6 * * sun", ["Sun 29/11 06:00", "Sun 06/12 06:00"]),
        ("30 17 * * 1-5", ["Thu 26/11 17:30", "Fri 27/11 17:30", "Mon 30/11 17:30"]),
        ("0 5-6 1 12 *", ["Tue 01/12 05:00", "Tue 01/12 06:00"]),
        # day of month OR day of week when both are given, as cron does
        ("0 7 1 * 6", ["Sat 28/11 07:00", "Tue 01/12 07:00", "Sat 05/12 07:00"]),
        ("0 6 * * */3", ["Sat 28/11 06:00", "Sun 29/11 06:00", "Wed 02/12 06:00"]),
    ],
)
def test_cron_has_cron_meaning(cron: str, expected: list[str]) -> None:
    runs = occurrences(Rule(ScheduleKind.CRON, cron=cron), NOW, NOW + timedelta(days=11))
    assert _local(runs)[: len(expected)] == expected


def test_series_repeats_every_n_hours_within_its_window() -> None:
    rule = Rule(ScheduleKind.SERIES, run_at=NOW, interval_h=2, valid_to=date(2026, 11, 26))
    runs = occurrences(rule, NOW - timedelta(hours=5), NOW + timedelta(days=3))
    assert _local(runs) == [f"Thu 26/11 {h:02d}:00" for h in range(10, 24, 2)]


def test_series_expansion_jumps_to_the_window_start() -> None:
    rule = Rule(ScheduleKind.SERIES, run_at=NOW, interval_h=3)
    runs = occurrences(rule, NOW + timedelta(days=300, minutes=1), NOW + timedelta(days=301))
    assert runs[0] == NOW + timedelta(days=300, hours=3)
    assert len(runs) == 7  # 03:00 … 21:00 after day 300; the end is exclusive


def test_validity_window_is_inclusive_local_dates() -> None:
    rule = Rule(
        ScheduleKind.DAILY,
        time_of_day="06:00",
        valid_from=date(2026, 11, 28),
        valid_to=date(2026, 11, 30),
    )
    runs = occurrences(rule, NOW, NOW + timedelta(days=10))
    assert _local(runs) == ["Sat 28/11 06:00", "Sun 29/11 06:00", "Mon 30/11 06:00"]


def test_once_is_one_run_or_none() -> None:
    at = datetime(2026, 11, 27, 1, 0)
    rule = Rule(ScheduleKind.ONCE, run_at=at)
    assert occurrences(rule, NOW, NOW + timedelta(days=2)) == [at]
    assert occurrences(rule, at + timedelta(seconds=1), NOW + timedelta(days=2)) == []
    assert occurrences(rule, NOW, at) == []  # the end is exclusive


def test_expansion_is_bounded() -> None:
    rule = Rule(ScheduleKind.CRON, cron="* * * * *")
    assert len(occurrences(rule, NOW, NOW + timedelta(days=365))) == programmes.MAX_OCCURRENCES
    assert len(occurrences(rule, NOW, NOW + timedelta(days=1), limit=7)) == 7


def test_impossible_cron_has_no_next_run() -> None:
    assert programmes.next_occurrence(Rule(ScheduleKind.CRON, cron="0 0 31 2 *"), NOW) is None
    leap = programmes.next_occurrence(Rule(ScheduleKind.CRON, cron="0 0 29 2 *"), NOW)
    assert _local([leap]) == ["Tue 29/02 00:00"]  # 2028


@given(
    kind=st.sampled_from([ScheduleKind.DAILY, ScheduleKind.WEEKDAYS, ScheduleKind.SERIES]),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    days=st.sets(st.integers(0, 6), min_size=1),
    interval=st.integers(1, 72),
    offset_min=st.integers(0, 60 * 24 * 30),
    span_h=st.integers(1, 24 * 20),
)
def test_runs_are_ordered_unique_and_inside_the_window(
    kind: ScheduleKind,
    hour: int,
    minute: int,
    days: set[int],
    interval: int,
    offset_min: int,
    span_h: int,
) -> None:
    rule = Rule(
        kind,
        run_at=NOW,
        time_of_day=f"{hour:02d}:{minute:02d}",
        weekdays=tuple(sorted(days)),
        interval_h=interval,
    )
    start = NOW + timedelta(minutes=offset_min)
    end = start + timedelta(hours=span_h)
    runs = occurrences(rule, start, end)
    assert runs == sorted(set(runs))
    assert all(start <= at < end for at in runs)
    if kind is ScheduleKind.DAILY:
        assert len(runs) in (span_h // 24, span_h // 24 + 1)
    if kind is ScheduleKind.SERIES:
        assert all(b - a == timedelta(hours=interval) for a, b in itertools.pairwise(runs))
        assert all((at - NOW) % timedelta(hours=interval) == timedelta(0) for at in runs)


# --- overlaps ---------------------------------------------------------------------------------


def test_first_overlap_finds_the_first_clash() -> None:
    mine = [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    theirs = [NOW + timedelta(minutes=30), NOW + timedelta(hours=2, minutes=4)]
    assert first_overlap(mine, 300, theirs, 600) == (mine[2], theirs[1])
    assert first_overlap(mine, 300, theirs[:1], 600) is None
    # touching is not overlapping: one ends as the other starts
    assert first_overlap([NOW], 60, [NOW + timedelta(seconds=60)], 60) is None
    assert first_overlap([NOW + timedelta(seconds=59)], 60, [NOW], 60) is not None


@settings(max_examples=1000)
@example(mine=[2], theirs=[0, 1], a=0, b=2)  # runs ending together: found by CI
@example(mine=[118, 119], theirs=[26, 28], a=0, b=92)
@given(
    mine=st.lists(st.integers(0, 2000), max_size=12, unique=True),
    theirs=st.lists(st.integers(0, 2000), max_size=12, unique=True),
    a=st.integers(0, 300),
    b=st.integers(0, 300),
)
def test_first_overlap_agrees_with_brute_force(
    mine: list[int], theirs: list[int], a: int, b: int
) -> None:
    mine_at = [NOW + timedelta(seconds=x) for x in sorted(mine)]
    theirs_at = [NOW + timedelta(seconds=x) for x in sorted(theirs)]
    clashes = [
        (x, y)
        for x in mine_at
        for y in theirs_at
        if x < y + timedelta(seconds=b) and y < x + timedelta(seconds=a)
    ]
    found = first_overlap(mine_at, a, theirs_at, b)
    assert (found is None) == (not clashes)
    if found is not None:
        assert found in clashes
        assert found[0] == min(x for x, _ in clashes)


def test_too_close() -> None:
    runs = [NOW, NOW + timedelta(minutes=20), NOW + timedelta(minutes=30)]
    assert programmes.too_close(runs, 15 * 60) == (runs[1], runs[2])
    assert programmes.too_close(runs[:2], 15 * 60) is None


# --- rules from a form ------------------------------------------------------------------------


def test_make_rule_for_each_kind() -> None:
    once = programmes.make_rule("once", now=NOW, run_at="2026-11-27T08:00")
    assert once.run_at == datetime(2026, 11, 27, 1, 0)
    weekly = programmes.make_rule("weekdays", now=NOW, time_of_day="6:30", weekdays=["4", "0"])
    assert weekly.weekdays == (0, 4) and weekly.time_of_day == "06:30"
    cron = programmes.make_rule("cron", now=NOW, cron="  0  6 * *  1-5 ")
    assert cron.cron == "0 6 * * 1-5"
    series = programmes.make_rule("series", now=NOW, interval_h="2")
    assert series.interval_h == 2 and series.run_at == NOW + timedelta(seconds=1)
    windowed = programmes.make_rule(
        "daily", now=NOW, time_of_day="17:00", valid_from="2026-12-01", valid_to="2026-12-31"
    )
    assert windowed.valid_from == date(2026, 12, 1) and windowed.valid_to == date(2026, 12, 31)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "hourly"}, "kind"),
        ({"kind": "once", "run_at": "2026-11-26T09:00"}, "run_at"),  # an hour ago
        ({"kind": "once", "run_at": "ngày mai"}, "run_at"),
        ({"kind": "daily", "time_of_day": "25:00"}, "time_of_day"),
        ({"kind": "weekdays", "time_of_day": "06:00", "weekdays": []}, "weekdays"),
        ({"kind": "weekdays", "time_of_day": "06:00", "weekdays": ["7"]}, "weekdays"),
        ({"kind": "cron", "cron": "0 6 * *"}, "cron"),
        ({"kind": "cron", "cron": "0 25 * * *"}, "cron"),
        ({"kind": "cron", "cron": "0 6 * * 1-9"}, "cron"),
        ({"kind": "cron", "cron": "0 0 31 2 *"}, "time"),  # never
        ({"kind": "series", "interval_h": "0"}, "interval_h"),
        ({"kind": "series", "interval_h": "hai"}, "interval_h"),
        ({"kind": "series", "interval_h": "2", "run_at": "2026-11-25T10:00"}, "run_at"),
        ({"kind": "daily", "time_of_day": "06:00", "valid_from": "26/11/2026"}, "valid_from"),
        (
            {
                "kind": "daily",
                "time_of_day": "6:00",
                "valid_from": "2026-12-02",
                "valid_to": "2026-12-01",
            },
            "valid_to",
        ),
        ({"kind": "daily", "time_of_day": "06:00", "valid_to": "2026-11-25"}, "valid_to"),
    ],
)
def test_make_rule_names_the_bad_field(fields: dict[str, object], field: str) -> None:
    kind = fields.pop("kind")
    with pytest.raises(ValidationError) as info:
        programmes.make_rule(kind, now=NOW, **fields)  # type: ignore[arg-type]
    assert info.value.field == field


def test_series_key_is_a_slug() -> None:
    assert programmes.clean_series_key(" Bao-So-3 ") == "bao-so-3"
    with pytest.raises(ValidationError) as info:
        programmes.clean_series_key("bão số 3")
    assert info.value.field == "series_key"


def test_a_window_beyond_a_year_is_accepted() -> None:
    rule = programmes.make_rule("daily", now=NOW, time_of_day="06:00", valid_from="2030-01-01")
    assert programmes.next_occurrence(rule, NOW) == datetime(2029, 12, 31, 23, 0)
