"""A zone's programme as an iCalendar feed (RFC 5545), for the officer's phone calendar.

The phone's calendar app subscribes to the link on the calendar page (`calendar.feed`), which
carries the account's secret instead of a session: each planned run is an event, in UTC, named
by its bulletin, with where it sounds, its priority and kind, and its day in the lunar calendar.
Written with the `icalendar` package, in the account's language.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from flask_babel import gettext as _

from broadcast.const import LOCAL_TZ_NAME
from broadcast.desks.calendar import Entry, Feed
from web.labels import PRIORITY, SCHEDULE_KIND, SOURCE
from web.views import lunar_text

PRODUCT_ID = "-//Loa//Lich phat//VI"
MIN_EVENT = timedelta(minutes=1)  # an announcement of unknown length still shows as a minute


def calendar_bytes(feed: Feed, host: str) -> bytes:
    """The feed as an .ics file; `host` names the installation in the events' UIDs."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", _("Loa: lịch phát %(zone)s", zone=feed.zone.name))
    calendar.add("x-wr-timezone", LOCAL_TZ_NAME)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    stamp = datetime.now(UTC).replace(microsecond=0)
    for entry, lunar in feed.entries:
        calendar.add_component(_event(entry, lunar_text(lunar), feed, host, stamp))
    return calendar.to_ical()


def _event(entry: Entry, lunar: str, feed: Feed, host: str, stamp: datetime) -> icalendar.Event:
    start = entry.at.replace(tzinfo=UTC)
    end = max(entry.end.replace(tzinfo=UTC), start + MIN_EVENT)
    where = ", ".join([feed.zone_names.get(z, z) for z in entry.zone_ids] + list(entry.device_ids))
    kind = SCHEDULE_KIND.get(entry.kind) or SOURCE.get(entry.kind) or entry.kind
    details = [str(PRIORITY.get(entry.priority, entry.priority)), str(kind)]
    if lunar:
        details.append(lunar)
    if entry.conflicts:
        details.append(_("Trùng giờ"))
    event = icalendar.Event()
    event.add("uid", f"{_source(entry)}-{int(start.timestamp())}@{host}")
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", entry.title)
    event.add("location", where)
    event.add("description", " · ".join(details))
    event.add("transp", "TRANSPARENT")  # a broadcast does not make the officer busy
    return event


def _source(entry: Entry) -> str:
    if entry.schedule_id is not None:
        return f"loa-schedule-{entry.schedule_id}"
    return f"loa-broadcast-{entry.broadcast_id}"
