"""Programme rules (lịch phát): when a schedule plays, as pure functions of its rule.

Kinds: once; daily; chosen weekdays; cron (standard 5 fields, local time, Sunday = 0 or 7, the
usual "day of month OR day of week" when both are restricted); a series repeating every N
hours until a newer series with the same key replaces it (storm bulletins, QĐ 18/2021/QĐ-TTg:
every 2 hours until replaced); and two kinds by the Vietnamese lunar calendar (`lunar`), at a
local time: chosen days of every lunar month (rằm and mùng một: 15 and 1) and chosen days of one
lunar month every year (giỗ Tổ Hùng Vương: 10 of the 3rd month). Any kind may have a validity
window of local dates (inclusive).

In a lunar leap year (a leap month repeats the month before it, tháng nhuận) a monthly lunar
schedule plays in the leap month too (it is a month: rằm comes in it as in any other), and a
yearly one plays in the regular month only, never again in the leap month: anniversaries and
festivals are kept in the regular month, as Vietnamese practice has it. Day 30 in a month of 29
days plays on that month's last day (the 29th), once even when 29 is chosen too.

Times are entered in Asia/Ho_Chi_Minh and stored in UTC (naive). Vietnam has no daylight saving
time, so no local time is skipped or repeated. `occurrences()` expands a rule over a window with
APScheduler 3.11's own triggers (`get_next_fire_time`), in a bounded loop. Two APScheduler 3
habits differ from cron and are corrected here: day-of-week 0 is Monday there (Sunday in cron),
and restricted day-of-month and day-of-week must both match there (either, in cron).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from broadcast import clock
from broadcast.const import LOCAL_TZ, MAX_CRON_CHARS, MAX_INTERVAL_H, ScheduleKind
from broadcast.errors import N_, ValidationError
from broadcast.programme import lunar
from wire.protocol import ID_PATTERN

_LOGGER = logging.getLogger(__name__)

MAX_OCCURRENCES = 2000  # bound of every expansion loop
LUNAR_YEAR_DAYS = 390  # a lunar year with a leap month lasts 383-385 days
MIN_GAP_S = 15 * 60  # two runs of one schedule at least this far apart
SERIES_START_SLACK = timedelta(minutes=10)  # "now" typed a minute ago still means now
_CRON_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class Rule:
    """When a schedule plays. Datetimes are naive UTC; `time_of_day` and dates are local."""

    kind: ScheduleKind
    run_at: datetime | None = None  # once: the run; series: the first run
    time_of_day: str = ""  # daily, weekdays: "HH:MM"
    weekdays: tuple[int, ...] = ()  # weekdays: 0 = Monday … 6 = Sunday
    cron: str = ""  # cron: "minute hour day month weekday"
    interval_h: int = 0  # series
    lunar_days: tuple[int, ...] = ()  # lunar kinds: days 1-30 of the lunar month
    lunar_month: int = 0  # lunar yearly: the month, 1-12
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def window_start(self) -> datetime | None:
        return local_midnight(self.valid_from) if self.valid_from else None

    @property
    def window_end(self) -> datetime | None:
        """Exclusive: the local midnight after `valid_to`."""
        return local_midnight(self.valid_to + timedelta(days=1)) if self.valid_to else None


def local_midnight(day: date) -> datetime:
    """00:00 of a local date, as naive UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=LOCAL_TZ).astimezone(UTC).replace(tzinfo=None)


def local_today(now: datetime) -> date:
    return now.replace(tzinfo=UTC).astimezone(LOCAL_TZ).date()


# --- expansion --------------------------------------------------------------------------------


def trigger(rule: Rule) -> BaseTrigger:
    """The APScheduler trigger that fires on the rule's runs (before its validity window).
    The lunar kinds have none: `_lunar_runs` expands them."""
    if rule.kind.lunar:
        raise ValueError(f"a {rule.kind.value} rule has no APScheduler trigger")
    if rule.kind is ScheduleKind.ONCE:
        assert rule.run_at is not None
        return DateTrigger(run_date=rule.run_at.replace(tzinfo=UTC))
    if rule.kind is ScheduleKind.SERIES:
        assert rule.run_at is not None and rule.interval_h > 0
        return IntervalTrigger(
            hours=rule.interval_h, start_date=rule.run_at.replace(tzinfo=UTC), timezone=UTC
        )
    if rule.kind is ScheduleKind.CRON:
        return cron_trigger(rule.cron)
    hour, minute = (int(part) for part in rule.time_of_day.split(":"))
    if rule.kind is ScheduleKind.WEEKDAYS:
        days = ",".join(str(day) for day in sorted(rule.weekdays))
        return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=LOCAL_TZ)
    return CronTrigger(hour=hour, minute=minute, timezone=LOCAL_TZ)


def occurrences(
    rule: Rule, start: datetime, end: datetime, limit: int = MAX_OCCURRENCES
) -> list[datetime]:
    """Every run in [start, end) within the validity window, in order, at most `limit`.

    Remembered (`_remembered`): a pure function of its arguments, and a province's pages expand
    the same few rules over the same day or week for hundreds of schedules."""
    return list(_remembered(rule, start, end, limit))


@functools.lru_cache(maxsize=4096)
def _remembered(rule: Rule, start: datetime, end: datetime, limit: int) -> tuple[datetime, ...]:
    return tuple(_expand(rule, start, end, limit))


def _expand(rule: Rule, start: datetime, end: datetime, limit: int) -> list[datetime]:
    low = max(start, rule.window_start) if rule.window_start else start
    high = min(end, rule.window_end) if rule.window_end else end
    if low >= high or limit <= 0:
        return []
    if rule.kind.lunar:
        return list(itertools.islice(_lunar_runs(rule, low, high), limit))
    fires = trigger(rule)
    found: list[datetime] = []
    current = fires.get_next_fire_time(None, low.replace(tzinfo=UTC))
    for _ in range(MAX_OCCURRENCES + 1):
        if current is None or len(found) >= limit:
            break
        at = current.astimezone(UTC).replace(tzinfo=None)
        if at >= high:
            break
        if at >= low:  # a one-off's trigger also answers with a time already past
            found.append(at)
        following = fires.get_next_fire_time(current, current)
        if following is not None and following <= current:
            break
        current = following
    return found


def _lunar_runs(rule: Rule, low: datetime, high: datetime) -> Iterator[datetime]:
    """A lunar rule's runs in [low, high), in order: its days of each lunar month from the one
    `low` lies in (only the regular month `lunar_month` of a yearly rule), at `time_of_day`."""
    hour, minute = (int(part) for part in rule.time_of_day.split(":"))
    at_time = time(hour, minute)
    for month in lunar.months_from(local_today(low)):
        if month.first > local_today(high):
            return
        if rule.kind is ScheduleKind.LUNAR_YEARLY and (
            month.leap or month.month != rule.lunar_month
        ):
            continue
        for day in sorted({month.day(number) for number in rule.lunar_days}):
            local = datetime.combine(day, at_time, tzinfo=LOCAL_TZ)
            at = local.astimezone(UTC).replace(tzinfo=None)
            if low <= at < high:
                yield at


def next_occurrence(rule: Rule, after: datetime, within_days: int = 3660) -> datetime | None:
    """The first run at or after `after`: looked up in the remembered runs of its local day
    and the next (the same for every request that day), else expanded from `after`."""
    until = after + timedelta(days=within_days)
    day = local_midnight(local_today(after))
    for at in _remembered(rule, day, day + timedelta(days=2), MAX_OCCURRENCES):
        if after <= at < until:
            return at
    runs = _expand(rule, after, until, 1)
    return runs[0] if runs else None


def first_overlap(
    mine: Sequence[datetime], my_airtime_s: float, theirs: Sequence[datetime], airtime_s: float
) -> tuple[datetime, datetime] | None:
    """The first pair of runs (mine, theirs) that sound at the same time, if any.

    Both lists are sorted and each run lasts its list's airtime, so one merge pass finds it:
    a run that ends before the other list's current run starts cannot meet any later one of
    that list (they start later still), and is passed over.
    """
    mine_length, their_length = timedelta(seconds=my_airtime_s), timedelta(seconds=airtime_s)
    i = j = 0
    while i < len(mine) and j < len(theirs):
        my_end, their_end = mine[i] + mine_length, theirs[j] + their_length
        if mine[i] < their_end and theirs[j] < my_end:
            return mine[i], theirs[j]
        if my_end <= theirs[j]:
            i += 1
        else:
            j += 1
    return None


def too_close(runs: Sequence[datetime], min_gap_s: float) -> tuple[datetime, datetime] | None:
    """Two consecutive runs closer than `min_gap_s` (a schedule overlapping itself)."""
    gap = timedelta(seconds=min_gap_s)
    for earlier, later in itertools.pairwise(runs):
        if later - earlier < gap:
            return earlier, later
    return None


# --- cron -------------------------------------------------------------------------------------


def cron_trigger(expression: str) -> BaseTrigger:
    """A trigger with standard cron meaning; ValueError names what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    minute, hour, day, month, weekday = fields
    days = _cron_weekdays(weekday)
    apscheduler_days = "*" if len(days) == 7 else ",".join(str((d - 1) % 7) for d in sorted(days))
    common = {"minute": minute, "hour": hour, "month": month, "timezone": LOCAL_TZ}
    if day.startswith("*") or weekday.startswith("*"):
        return CronTrigger(day=day, day_of_week=apscheduler_days, **common)
    return OrTrigger(
        [CronTrigger(day=day, **common), CronTrigger(day_of_week=apscheduler_days, **common)]
    )


def _cron_weekdays(field: str) -> set[int]:
    """A cron day-of-week field as a set of cron day numbers (0 = Sunday … 6)."""
    values: set[int] = set()
    for part in field.split(","):
        body, slash, step_text = part.partition("/")
        step = int(step_text) if slash and step_text.isdigit() else 1
        if slash and (not step_text.isdigit() or step < 1):
            raise ValueError(f"bad step in weekday field {field!r}")
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            first, last = body.split("-", 1)
            low, high = _cron_day(first), _cron_day(last)
        else:
            low = high = _cron_day(body)
            if slash:
                high = 6
        if low > high:
            raise ValueError(f"weekday range {body!r} runs backwards")
        values.update(value % 7 for value in range(low, high + 1, step))
    return values


def _cron_day(token: str) -> int:
    token = token.strip().lower()
    if token in _CRON_DAY_NAMES:
        return _CRON_DAY_NAMES[token]
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    raise ValueError(f"{token!r} is not a weekday (0-7 or sun-sat)")


# --- rules from a form ------------------------------------------------------------------------


def make_rule(
    kind: object,
    *,
    now: datetime,
    run_at: str = "",
    time_of_day: str = "",
    weekdays: Sequence[object] = (),
    cron: str = "",
    interval_h: object = None,
    valid_from: str = "",
    valid_to: str = "",
    lunar_days: Sequence[object] = (),
    lunar_month: object = None,
) -> Rule:
    """Validate what a person entered; every ValidationError names its field (in Vietnamese)."""
    try:
        schedule_kind = ScheduleKind(kind)
    except ValueError as exc:
        choices = ", ".join(k.value for k in ScheduleKind)
        raise ValidationError(
            "kind",
            N_("loại lịch %(kind)s không có (chọn %(choices)s)"),
            "unknown_choice",
            kind=repr(kind),
            choices=choices,
        ) from exc
    first_day = _parse_date(valid_from, "valid_from")
    last_day = _parse_date(valid_to, "valid_to")
    if first_day and last_day and last_day < first_day:
        raise ValidationError(
            "valid_to", N_("ngày kết thúc trước ngày bắt đầu"), "ends_before_start"
        )
    if last_day and last_day < local_today(now):
        raise ValidationError("valid_to", N_("ngày kết thúc đã qua"), "in_the_past")
    rule = Rule(kind=schedule_kind, valid_from=first_day, valid_to=last_day)
    if schedule_kind is ScheduleKind.ONCE:
        at = clock.parse_local(run_at, "run_at")
        if at <= now:
            raise ValidationError("run_at", N_("thời điểm phát đã qua"), "in_the_past")
        rule = replace(rule, run_at=at)
    elif schedule_kind is ScheduleKind.SERIES:
        rule = replace(rule, run_at=_series_start(run_at, now), interval_h=_interval(interval_h))
    elif schedule_kind is ScheduleKind.CRON:
        expression = " ".join(str(cron or "").split())
        if len(expression) > MAX_CRON_CHARS:  # PostgreSQL would refuse it with a server error
            raise ValidationError(
                "cron",
                N_("biểu thức cron dài quá %(max)s ký tự"),
                "too_long",
                max=MAX_CRON_CHARS,
            )
        try:
            cron_trigger(expression)
        except ValueError as exc:
            raise ValidationError(
                "cron", N_("biểu thức cron không hợp lệ: %(detail)s"), "invalid_cron", detail=exc
            ) from exc
        rule = replace(rule, cron=expression)
    else:
        rule = replace(rule, time_of_day=clock.parse_time_of_day(time_of_day, "time_of_day"))
        if schedule_kind is ScheduleKind.WEEKDAYS:
            rule = replace(rule, weekdays=_weekdays(weekdays))
        elif schedule_kind.lunar:
            rule = replace(rule, lunar_days=_lunar_days(lunar_days))
        if schedule_kind is ScheduleKind.LUNAR_YEARLY:
            rule = replace(rule, lunar_month=_lunar_month(lunar_month))
    # a lunar year with a leap month lasts up to 385 days: a yearly lunar date may be that far
    within = LUNAR_YEAR_DAYS if schedule_kind.lunar else 366
    if next_occurrence(rule, max(now, rule.window_start or now), within_days=within) is None:
        raise ValidationError(
            "time", N_("lịch này không có lần phát nào trong một năm tới"), "never_runs"
        )
    return rule


def _parse_date(text: str, field: str) -> date | None:
    return clock.parse_date(text, field)


def _series_start(text: str, now: datetime) -> datetime:
    """A series starts at the given local time, or now when none is given (or a minute ago)."""
    if not (text or "").strip():
        return now.replace(microsecond=0) + timedelta(seconds=1)
    at = clock.parse_local(text, "run_at")
    if at < now - SERIES_START_SLACK:
        raise ValidationError("run_at", N_("giờ bắt đầu đã qua"), "in_the_past")
    return max(at, now.replace(microsecond=0) + timedelta(seconds=1))


def _interval(value: object) -> int:
    try:
        hours = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "interval_h", N_("số giờ lặp lại phải là số nguyên"), "not_integer"
        ) from exc
    if not 1 <= hours <= MAX_INTERVAL_H:
        raise ValidationError(
            "interval_h",
            N_("lặp lại mỗi 1 đến %(max)s giờ"),
            "out_of_range",
            max=MAX_INTERVAL_H,
        )
    return hours


def _weekdays(values: Sequence[object]) -> tuple[int, ...]:
    days: set[int] = set()
    for value in values or ():
        try:
            day = int(str(value))
        except ValueError as exc:
            raise ValidationError(
                "weekdays",
                N_("%(value)s không phải thứ trong tuần"),
                "not_a_weekday",
                value=repr(value),
            ) from exc
        if not 0 <= day <= 6:
            raise ValidationError(
                "weekdays",
                N_("%(value)s không phải thứ trong tuần (0 = thứ Hai)"),
                "not_a_weekday",
                value=repr(value),
            )
        days.add(day)
    if not days:
        raise ValidationError("weekdays", N_("chọn ít nhất một ngày trong tuần"), "required")
    return tuple(sorted(days))


def _whole_number(value: object, field: str, low: int, high: int) -> int:
    """An integer from `low` to `high` (a JSON number or a form's text), else a ValidationError
    naming `field`."""
    try:
        if isinstance(value, bool):
            raise TypeError("JSON true is not the number 1")
        number = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            field,
            N_("%(value)s không phải số nguyên từ %(low)s đến %(high)s"),
            "not_integer",
            value=repr(value)[:40],
            low=low,
            high=high,
        ) from exc
    if not low <= number <= high:
        raise ValidationError(
            field,
            N_("%(value)s không nằm trong khoảng %(low)s đến %(high)s"),
            "out_of_range",
            value=number,
            low=low,
            high=high,
        )
    return number


def _lunar_days(values: Sequence[object]) -> tuple[int, ...]:
    """Days of a lunar month, 1-30 (30 in a 29-day month: its last day)."""
    if isinstance(values, str | int):
        values = [part for part in str(values).replace(",", " ").split() if part]
    days = {_whole_number(value, "lunar_days", 1, lunar.LONG_MONTH) for value in values or ()}
    if not days:
        raise ValidationError(
            "lunar_days", N_("chọn ít nhất một ngày âm lịch (1 đến 30)"), "required"
        )
    return tuple(sorted(days))


def _lunar_month(value: object) -> int:
    if value is None or str(value).strip() == "":
        raise ValidationError("lunar_month", N_("chọn tháng âm lịch (1 đến 12)"), "required")
    return _whole_number(value, "lunar_month", 1, 12)


def clean_series_key(value: object) -> str:
    key = str(value or "").strip().lower()
    if not ID_PATTERN.fullmatch(key):
        raise ValidationError(
            "series_key",
            N_("mã chuỗi bản tin viết thường, không dấu, nối bằng '-' (vd. bao-so-3)"),
            "invalid_slug",
        )
    return key


def rule_of(
    kind: str,
    run_at: datetime | None,
    time_of_day: str | None,
    weekdays: Sequence[int] | None,
    cron: str | None,
    interval_h: int | None,
    valid_from: date | None,
    valid_to: date | None,
    lunar_days: Sequence[int] | None = None,
    lunar_month: int | None = None,
) -> Rule:
    """A stored schedule's rule (the columns of `models.Schedule`)."""
    return Rule(
        kind=ScheduleKind(kind),
        run_at=run_at,
        time_of_day=time_of_day or "",
        weekdays=tuple(weekdays or ()),
        cron=cron or "",
        interval_h=interval_h or 0,
        valid_from=valid_from,
        valid_to=valid_to,
        lunar_days=tuple(lunar_days or ()),
        lunar_month=lunar_month or 0,
    )
