"""`loa demo --province`'s seed: a small province people can look at, through the domain."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import recording_service
from sqlalchemy import select

from broadcast.people import accounts, zones
from broadcast.store.models import Device, Schedule, User, Zone
from loa import seed


def test_province_demo_binds_each_account_to_its_zone_and_seeds_again_without_doubling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _sent = recording_service(tmp_path / "data")
    # the long sample plan is not rendered here: the schedules only need an airtime
    monkeypatch.setattr(
        service.outbox, "render_for_schedule", lambda *_: ("0" * 64, "espeak", 600.0)
    )
    try:
        first = seed.seed_province_demo(service, receivers=7, realtime=False)
        again = seed.seed_province_demo(service, receivers=7, realtime=False)
        assert len(first.receiver_configs) == len(again.receiver_configs) == 7
        with service.db.session() as session:
            province = session.get(Zone, seed.PROVINCE[0])
            assert province is not None and province.code == seed.PROVINCE[2]
            communes = [z for z in province.children if z.kind == "commune"]
            assert sorted(z.code for z in communes) == ["38001", "38002", "38003"]
            assert all(len(z.children) == seed.PROVINCE_VILLAGES for z in communes)
            bound = {u.username: (u.role, u.zone_id) for u in session.scalars(select(User))}
            assert bound == {
                "admin": ("admin", None),
                "bientap": ("province_editor", "tinh-demo"),
                "canbo-xa-001": ("officer", "xa-001"),
                "canbo-xa-002": ("officer", "xa-002"),
                "canbo-xa-003": ("officer", "xa-003"),
            }
            officer = session.scalars(select(User).where(User.username == "canbo-xa-002")).one()
            seen = zones.scope_ids(session, officer)
            assert seen is not None and "xa-001" not in seen and "xa-002-thon-1" in seen
            villages = {d.zone_id for d in session.scalars(select(Device))}
            assert len(villages) == 6  # 7 receivers round-robin over every village
            assert session.scalars(select(Schedule)).all()
            assert accounts.authenticate(session, "bientap", first.admin_password) is None
            assert accounts.authenticate(session, "bientap", again.admin_password) is not None
    finally:
        service.stop()
