"""How each code a person sees reads, in the request's language: one table per enum.

The Vietnamese words are the domain's (`broadcast.const`, the bulletin desk's statuses), marked
there for Babel, so a page, the announcement page's and dashboard's scripts and the CSV exports
(written by the domain, in Vietnamese) say the same thing; here each is translated lazily, when
it is shown. Templates reach the tables as `LABELS` (`LABELS.PRIORITY`) and `label(table,
code)`, which shows an unknown code as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext
from flask_babel.speaklater import LazyString

from broadcast import const
from broadcast.desks import bulletins, source_bulletins


def _lazy(table: Mapping[str, str]) -> dict[str, LazyString]:
    return {str(code): lazy_gettext(text) for code, text in table.items()}


BROADCAST_STATUS = _lazy(const.BROADCAST_STATUS_LABELS)
DELIVERY_STATE = _lazy(const.DELIVERY_STATE_LABELS)
RECEIVER_STATE = _lazy(const.RECEIVER_STATE_LABELS)
BULLETIN_STATUS = _lazy(bulletins.STATUS_LABELS)
SCHEDULE_KIND = _lazy(const.SCHEDULE_KIND_LABELS)
CONTENT_KIND = _lazy(const.CONTENT_KIND_LABELS)
CONTENT_TYPE = _lazy(const.CONTENT_TYPE_LABELS)
PRIORITY = _lazy(const.PRIORITY_LABELS)
SOURCE = _lazy(const.SOURCE_LABELS)
ZONE_KIND = _lazy(const.ZONE_KIND_LABELS)
FORWARD_STATE = _lazy(source_bulletins.FORWARD_STATE_LABELS)

# What the scripts of the announcement page and the dashboard look a state up in: a receiver's,
# a delivery's or a broadcast's (the codes they share read the same in each table).
STATES = {**RECEIVER_STATE, **DELIVERY_STATE, **BROADCAST_STATUS}
LIVE_STATES = {
    **STATES,
    const.BroadcastStatus.CANCELLED.value: lazy_gettext(const.LIVE_ENDED_LABEL),
}


def label(table: Mapping[str, LazyString], code: object) -> str:
    """`code`'s words in `table`, or the code itself when the table does not know it."""
    text = str(code or "")
    found = table.get(text)
    return text if found is None else str(found)


__all__ = [
    "BROADCAST_STATUS",
    "BULLETIN_STATUS",
    "CONTENT_KIND",
    "CONTENT_TYPE",
    "DELIVERY_STATE",
    "FORWARD_STATE",
    "LIVE_STATES",
    "PRIORITY",
    "RECEIVER_STATE",
    "SCHEDULE_KIND",
    "SOURCE",
    "STATES",
    "ZONE_KIND",
    "label",
]
