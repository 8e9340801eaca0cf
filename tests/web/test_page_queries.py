"""The pages a province editor and a commune officer open cost the same number of SQL statements
in a province of 2 communes as in one of 6, each with its receivers, a week of broadcasts
delivered to them and the province's own (issue 13 item 6: a province's pages must not grow
with its receivers). A count, not a timing: `bench/pages_profile.py` times them at 100
communes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from service_support import CALENDAR_PROVINCE, add_calendar_communes, seed_calendar_province
from sqlalchemy import select
from support import sql_statements
from web_support import login

from broadcast.desks import overview
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Delivery, Device, DevicePresence, Zone, utcnow

PAGES = ("/", "/bulletins/", "/calendar/", "/reports/", "/reports/monthly")
PROVINCE_PAGES = ("/province/", "/province/monthly")
DAYS = 3


def _history(service: BroadcastService, first: int, last: int) -> None:
    """Communes `first`..`last` (`add_calendar_communes`), a broadcast a day in each delivered
    to its receivers, a change of presence per receiver, and the province's broadcasts
    delivered to every receiver (the new ones included)."""
    add_calendar_communes(service, first, last)
    now = utcnow()
    with service.db.session() as session:
        for n in range(first, last + 1):
            commune = f"lich-xa-{n:03d}"
            devices = [f"loa-{commune}-t{v}" for v in (1, 2)]
            for day in range(DAYS):
                at = now - timedelta(days=day, hours=1)
                broadcast = Broadcast(
                    title=f"Tin {commune} {day}",
                    text="Tin",
                    priority="normal",
                    zone_ids=[commune],
                    source="announcement",
                    status="finished",
                    created_at=at,
                )
                session.add(broadcast)
                session.flush()
                session.add_all(
                    Delivery(broadcast_id=broadcast.id, device_id=d, state="finished")
                    for d in devices
                )
            session.add_all(
                DevicePresence(device_id=d, at=now - timedelta(hours=2), online=False)
                for d in devices
            )
        province = list(
            session.scalars(select(Broadcast).where(Broadcast.title.like("Tin toàn tỉnh %")))
        )
        if not province:
            for day in range(DAYS):
                province.append(
                    Broadcast(
                        title=f"Tin toàn tỉnh {day}",
                        text="Tin",
                        priority="normal",
                        zone_ids=[CALENDAR_PROVINCE],
                        source="announcement",
                        status="finished",
                        created_at=now - timedelta(days=day, hours=2),
                    )
                )
            session.add_all(province)
            session.flush()
        delivered = set(session.scalars(select(Delivery.device_id).where(
            Delivery.broadcast_id == province[0].id)))  # fmt: skip
        devices = session.scalars(
            select(Device.id)
            .join(Zone, Zone.id == Device.zone_id)
            .where(Zone.parent_id.like("lich-xa-%"))
        )
        for device_id in set(devices) - delivered:
            session.add_all(
                Delivery(broadcast_id=b.id, device_id=device_id, state="failed") for b in province
            )


def _counts(service: BroadcastService, app: Flask, who: str, pages: tuple[str, ...]) -> dict:
    client = app.test_client()
    login(client, who)
    found = {}
    for page in pages:
        assert client.get(page).status_code == 200, page  # warm: whatever is read once
        with sql_statements(service.db.engine) as seen:
            assert client.get(page).status_code == 200, page
        found[page] = len(seen)
    return found


@pytest.mark.parametrize(
    ("who", "pages"),
    [
        ("lich-editor", PAGES + PROVINCE_PAGES),
        ("lich-officer-1", PAGES),
    ],
)
def test_pages_do_not_grow_with_the_province(
    service: BroadcastService,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    who: str,
    pages: tuple[str, ...],
) -> None:
    monkeypatch.setattr(overview, "FULL_LIST_UP_TO", 3)  # the province's dashboard, at 4 and 12
    seed_calendar_province(service)
    _history(service, 1, 2)
    small = _counts(service, app, who, pages)
    _history(service, 3, 6)
    large = _counts(service, app, who, pages)
    assert large == small
