"""One label table per code a person reads (`web.labels`, worded in `broadcast.const`): every
member of each enum has its words, in Vietnamese and in English, and the codes that several
tables share read the same in each."""

from __future__ import annotations

from enum import StrEnum

import pytest
from flask import Flask
from flask_babel import force_locale

from broadcast import const
from broadcast.const import BroadcastStatus, ContentKind, DeliveryState, ScheduleKind, ZoneKind
from broadcast.desks.bulletins import BulletinStatus
from web import labels
from wire.protocol import ContentType, Priority, ReceiverState

TABLES: list[tuple[type[StrEnum], dict[str, object]]] = [
    (BroadcastStatus, labels.BROADCAST_STATUS),
    (DeliveryState, labels.DELIVERY_STATE),
    (ReceiverState, labels.RECEIVER_STATE),
    (BulletinStatus, labels.BULLETIN_STATUS),
    (ScheduleKind, labels.SCHEDULE_KIND),
    (ContentKind, labels.CONTENT_KIND),
    (ContentType, labels.CONTENT_TYPE),
    (Priority, labels.PRIORITY),
    (ZoneKind, labels.ZONE_KIND),
]


@pytest.mark.parametrize(
    ("enum", "table"), TABLES, ids=lambda value: getattr(value, "__name__", "")
)
def test_every_member_has_its_words_in_both_languages(
    app: Flask, enum: type[StrEnum], table: dict[str, object]
) -> None:
    assert set(table) == {member.value for member in enum}
    with app.test_request_context():
        for locale in ("vi", "en"):
            with force_locale(locale):
                words = {code: labels.label(table, code) for code in table}
            assert all(words.values()) and len(set(words.values())) == len(words), words
        with force_locale("en"):
            assert labels.label(labels.PRIORITY, "emergency") == "Emergency"
            assert labels.label(table, "no-such-code") == "no-such-code"


def test_shared_codes_read_the_same_in_each_table() -> None:
    """The scripts look every state up in one map: a receiver's "playing" is a delivery's."""
    for first in (const.RECEIVER_STATE_LABELS, const.DELIVERY_STATE_LABELS):
        for second in (const.DELIVERY_STATE_LABELS, const.BROADCAST_STATUS_LABELS):
            for code in set(first) & set(second):
                assert first[code] == second[code], code


def test_a_relay_is_spelled_once() -> None:
    assert ContentKind.RELAY == ContentType.RELAY
    assert [kind.content_type for kind in ContentKind] == [
        ContentType.MEDIA,
        ContentType.MEDIA,
        ContentType.RELAY,
    ]
