"""Time conversions: stored in UTC (naive), entered and shown in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, date, datetime

from broadcast.const import LOCAL_TZ
from broadcast.errors import N_, ValidationError

# The years a date entered anywhere (a schedule, a report filter, a week) may fall in. Python's
# calendar ends at year 1 and 9999, where adding a day or a time-zone offset overflows; a
# commune's programme and its reports have no use for either end.
FIRST_YEAR = 2000
LAST_YEAR = 2100


def to_local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL_TZ)


def format_local(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    local = to_local(value)
    return "" if local is None else local.strftime(fmt)


def iso_utc(value: datetime | None) -> str | None:
    """API form: ISO 8601 with an explicit UTC offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat()


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def to_timestamp(value: datetime) -> float:
    """Stored (naive UTC) → epoch seconds, as the wire protocol carries times."""
    return value.replace(tzinfo=UTC).timestamp()


def check_year(year: int, field: str) -> None:
    """A ValidationError naming `field` unless `year` is FIRST_YEAR to LAST_YEAR: the one bound
    every date parsed from a person's or a client's input goes through."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationError(
            field,
            N_("năm phải từ %(first)s đến %(last)s, không phải %(year)s"),
            "year_out_of_range",
            first=FIRST_YEAR,
            last=LAST_YEAR,
            year=year,
        )


def parse_date(text: str, field: str, message: str = "", **params: object) -> date | None:
    """'2026-11-26' → a date within the allowed years; '' → None; else a ValidationError
    (code "not_a_date") naming `field` with `message`, a message id formatted with `params`
    and `text`, the first 40 characters given (default: one with an example)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(
            field,
            message or N_("“%(text)s” không phải ngày dạng 2026-11-26"),
            "not_a_date",
            **{**params, "text": text[:40]},
        ) from exc
    check_year(value.year, field)
    return value


def parse_local(text: str, field: str) -> datetime:
    """'2026-11-26T17:00' or '2026-11-26 17:00' in local time (or with an offset) → naive UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError) as exc:
        raise ValidationError(
            field,
            N_("“%(text)s” không phải ngày giờ dạng 2026-11-26T17:00"),
            "not_a_datetime",
            text=str(text)[:40],
        ) from exc
    check_year(value.year, field)  # before the offset is applied: it could overflow year 1 or 9999
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(UTC).replace(tzinfo=None)


def parse_time_of_day(text: str, field: str) -> str:
    """'6:00' / '17:00' → 'HH:MM'."""
    try:
        hour_text, minute_text = text.strip().split(":")
        hour, minute = int(hour_text), int(minute_text)
    except (AttributeError, ValueError) as exc:
        raise ValidationError(
            field, N_("“%(text)s” không phải giờ dạng 17:00"), "not_a_time", text=str(text)[:40]
        ) from exc
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValidationError(
            field, N_("“%(text)s” không phải giờ trong ngày"), "not_a_time", text=text
        )
    return f"{hour:02d}:{minute:02d}"
