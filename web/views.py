"""Small helpers shared by the blueprints: the current user's row and how things read.

Presentation only (wording of schedules, device health, in the request's language through
Flask-Babel); the rules live in `broadcast`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask_babel import gettext as _
from flask_babel import lazy_gettext

from broadcast import clock
from broadcast.desks.records import DeviceRecord, ScheduleRecord

if TYPE_CHECKING:
    from broadcast.desks.calendar import LunarDay

_LOGGER = logging.getLogger(__name__)

RAM = 15  # rằm: the full moon, the 15th of a lunar month
WEEKDAY_LABELS = (
    lazy_gettext("Thứ Hai"),
    lazy_gettext("Thứ Ba"),
    lazy_gettext("Thứ Tư"),
    lazy_gettext("Thứ Năm"),
    lazy_gettext("Thứ Sáu"),
    lazy_gettext("Thứ Bảy"),
    lazy_gettext("Chủ nhật"),
)


def describe_schedule(schedule: ScheduleRecord) -> str:
    """'Hằng ngày 06:00', 'Thứ Hai, Thứ Tư lúc 17:00', 'Chuỗi “bao-so-3” mỗi 2 giờ từ …'."""
    kind = schedule.kind
    if kind == "daily":
        text = _("Hằng ngày %(time)s", time=schedule.time_of_day)
    elif kind == "weekdays":
        days = ", ".join(str(WEEKDAY_LABELS[day]) for day in schedule.weekdays or [])
        text = _("%(days)s lúc %(time)s", days=days, time=schedule.time_of_day)
    elif kind == "lunar_monthly":
        text = _(
            "Hằng tháng âm lịch, ngày %(days)s, lúc %(time)s",
            days=", ".join(str(day) for day in schedule.lunar_days),
            time=schedule.time_of_day,
        )
    elif kind == "lunar_yearly":
        text = _(
            "Hằng năm ngày %(days)s/%(month)s âm lịch, lúc %(time)s",
            days=", ".join(str(day) for day in schedule.lunar_days),
            month=schedule.lunar_month,
            time=schedule.time_of_day,
        )
    elif kind == "cron":
        text = _("Theo lịch cron “%(cron)s”", cron=schedule.cron)
    elif kind == "series":
        text = _(
            "Chuỗi “%(series)s” mỗi %(hours)s giờ từ %(start)s",
            series=schedule.series_key,
            hours=schedule.interval_h,
            start=clock.format_local(schedule.run_at),
        )
    else:
        text = _("Một lần %(at)s", at=clock.format_local(schedule.run_at))
    if schedule.valid_from or schedule.valid_to:
        first = schedule.valid_from.strftime("%d/%m/%Y") if schedule.valid_from else "…"
        last = schedule.valid_to.strftime("%d/%m/%Y") if schedule.valid_to else "…"
        text += " " + _("(từ %(first)s đến %(last)s)", first=first, last=last)
    return text


def lunar_text(day: LunarDay | None) -> str:
    """A day's lunar date, short enough for a phone's day heading: 'Rằm tháng 5 âm lịch',
    'Mùng 1 tháng 6 nhuận âm lịch', '20/5 âm lịch'."""
    if day is None:
        return ""
    month = _("%(month)s nhuận", month=day.month) if day.leap else str(day.month)
    if day.day == RAM:
        return _("Rằm tháng %(month)s âm lịch", month=month)
    if day.day == 1:
        return _("Mùng 1 tháng %(month)s âm lịch", month=month)
    return _("%(day)s/%(month)s âm lịch", day=day.day, month=month)


@dataclass(frozen=True)
class DeviceHealth:
    """What the dashboard shows of a receiver's heartbeat (its `status_extra`, written by
    `devices.heartbeat.status_extra`)."""

    cache: str  # media of its manifest already on the receiver: "100 % (6 mục)"
    cache_ok: bool
    clock: str  # its clock's offset: "+0,4 s"
    clock_ok: bool
    machine: str  # temperature and free disk, when the receiver reports them
    zones: str = ""  # why it does not hear the zones it is registered in, and what to run


@dataclass(frozen=True)
class HealthWords:
    """The phrases of `device_health` in the request's language: a page listing a province's
    thousand receivers translates them once, not twice per receiver."""

    items: str  # "(%(count)s mục)"
    disk_free: str  # "trống %(mb)s MB"

    @classmethod
    def current(cls) -> HealthWords:
        return cls(_("(%(count)s mục)"), _("trống %(mb)s MB"))


def device_health(device: DeviceRecord, words: HealthWords | None = None) -> DeviceHealth:
    """How a receiver's last heartbeat reads; whether it is healthy is the desk's
    (`DeviceRecord.health`)."""
    words = words or HealthWords.current()
    found = device.health
    cache = "—"
    if found.cache_complete is not None:
        cache = f"{found.cache_complete * 100:.0f} %"
        items = device.manifest_items
        if items is not None:
            cache += " " + words.items % {"count": round(items)}
    clock_text = "—"
    if found.clock_offset_s is not None:
        clock_text = f"{found.clock_offset_s:+.1f} s".replace(".", ",")
    machine = []
    temperature = device.cpu_temp_c
    if temperature is not None:
        machine.append(f"{temperature:.0f} °C")
    disk = device.disk_free_mb
    if disk is not None:
        machine.append(words.disk_free % {"mb": round(disk)})
    machine_text = " · ".join(machine) or "—"
    return DeviceHealth(
        cache, found.cache_ok, clock_text, found.clock_ok, machine_text, zone_problem(device)
    )


def zone_problem(device: DeviceRecord) -> str:
    """Why a receiver does not hear the zones it is registered in, and what to run; "" if it
    does (`DeviceRecord.zone_check`). A receiver that hears nothing must not go unnoticed."""
    found = device.zone_check
    if found.ok:
        return ""
    if not found.config_ok:
        listening = ", ".join(found.listening or ()) or _("không khu vực nào")
        return _(
            "Nghe sai khu vực: máy thu nghe %(listening)s nhưng được đăng ký ở %(expected)s."
            " Chạy `loa device refresh %(device)s`, chép tệp cấu hình mới vào máy thu, rồi chạy"
            " `loa mqtt-config` và nạp lại mosquitto.",
            listening=listening,
            expected=", ".join(found.expected),
            device=device.id,
        )
    if found.not_allowed:
        text = _(
            "Broker chưa cho nghe %(zones)s: máy thu không nhận được lệnh của khu vực này.",
            zones=", ".join(found.not_allowed),
        )
    else:
        text = _("Broker từ chối đăng ký %(topics)s.", topics=", ".join(found.refused_topics))
    fix = _("Chạy `loa mqtt-config` rồi nạp lại mosquitto (broker nhúng: khởi động lại máy chủ).")
    return f"{text} {fix}"
