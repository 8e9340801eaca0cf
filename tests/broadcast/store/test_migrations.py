"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from previous_head import PASSWORD, USERS, database_url, make_single_commune
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from broadcast.desks.setup import Setup
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.db import Database, downgrade, make_engine, upgrade
from broadcast.store.models import Base, Zone


def test_migrations_match_models(service: BroadcastService) -> None:
    with service.db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = [
            change
            for change in compare_metadata(context, Base.metadata)
            if not (change[0] == "remove_table" and change[1].name == "apscheduler_jobs")
        ]
    assert diff == []


def test_0003_keeps_existing_rows_and_downgrades(tmp_path: Path) -> None:
    """A database of the previous release (0002) upgrades with its schedules and broadcasts
    intact (new columns get their defaults) and downgrades again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bulletins (id, title, text, kind, created_at)"
                " VALUES (1, 'Bản tin', 'Nội dung', 'tts', '2026-11-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO schedules (id, bulletin_id, kind, time_of_day, zone_ids, priority,"
                " repeat, active, created_at) VALUES (1, 1, 'daily', '17:00', '[\"thon-a\"]',"
                " 'normal', 1, 1, '2026-11-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO broadcasts (id, title, text, priority, repeat, zone_ids, source,"
                " schedule_id, status, error, tts_engine, created_at) VALUES (1, 'Bản tin',"
                " 'Nội dung', 'normal', 1, '[\"thon-a\"]', 'schedule', 1, 'finished', '',"
                " 'espeak', '2026-11-01 10:00:00')"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        schedule = connection.execute(
            text("SELECT device_ids, tts_engine, planned_until FROM schedules")
        ).one()
        assert tuple(schedule)[:2] == ("[]", "")
        # planned up to the upgrade: the runs the old release fired are not taken for missed
        assert str(schedule[2]) > "2026-11-01"
        row = connection.execute(
            text("SELECT device_ids, item_id, content, occurrence_at FROM broadcasts")
        ).one()
        assert tuple(row) == ("[]", "", "media", None)
    downgrade(engine, "0002")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("broadcasts")}
        assert "occurrence_at" not in columns and "recording_sha256" in columns
        assert "sequences" not in inspect(connection).get_table_names()
        assert connection.execute(text("SELECT count(*) FROM schedules")).scalar() == 1
    engine.dispose()


def test_0005_adds_device_health_to_existing_receivers_and_downgrades(tmp_path: Path) -> None:
    """Receivers of the previous release start healthy (their next heartbeat says otherwise)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    upgrade(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO zones (id, name, kind) VALUES ('thon-a', 'Thôn A', 'village')")
        )
        connection.execute(
            text(
                "INSERT INTO devices (id, name, zone_id, mqtt_password_hash, created_at, online,"
                " state, boot_id) VALUES ('loa-a-01', '', 'thon-a', '-', '2026-11-01 00:00:00',"
                " 1, 'idle', 'b')"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, health_ok FROM devices")).one() == (
            "loa-a-01",
            1,
        )
    downgrade(engine, "0004")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("devices")}
        assert "health_ok" not in columns and "status_extra" in columns
        assert connection.execute(text("SELECT count(*) FROM devices")).scalar() == 1
    engine.dispose()


def test_0006_adds_broker_zones_unknown_for_existing_receivers(tmp_path: Path) -> None:
    """Receivers of the previous release get NULL (not known yet: no alarm) and downgrade."""
    engine = make_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO zones (id, name, kind) VALUES ('thon-a', 'Thôn A', 'village')")
        )
        connection.execute(
            text(
                "INSERT INTO devices (id, name, zone_id, mqtt_password_hash, created_at, online,"
                " state, boot_id) VALUES ('loa-a-01', '', 'thon-a', '-', '2026-12-01 00:00:00',"
                " 1, 'idle', 'b')"
            )
        )
    upgrade(engine, "0006")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT id, broker_zones FROM devices")).one()
        assert tuple(row) == ("loa-a-01", None)
    downgrade(engine, "0005")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("devices")}
        assert "broker_zones" not in columns and "health_ok" in columns
    engine.dispose()


def test_0007_upgrades_a_single_commune_in_place(tmp_path: Path) -> None:
    """A single-commune database of the previous release (on SQLite, or PostgreSQL with
    `--db postgresql`) gains zone codes (none yet, its commune still at the root); a province
    added and the commune moved under it, every user keeps role and password (its officer,
    unbound while the installation was the commune, is bound to it: the same zones); codes are
    unique when present; it downgrades again keeping its zones."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, parent_id, code FROM zones ORDER BY id"))
        assert [tuple(row) for row in rows] == [
            ("thon-a", "xa-hoang-hop", None),
            ("thon-b", "xa-hoang-hop", None),
            ("xa-hoang-hop", None, None),
        ]
    database = Database(url)
    desk = Setup(database)
    desk.add_zone(None, "province", "Tỉnh Thanh Hóa", code="38")
    assert desk.move_zone(None, "xa-hoang-hop", "38").receivers == 1
    desk.add_zone(None, "commune", "Xã Hoằng Tiến", code="16015", parent="38")
    with database.session() as session:
        for username, (role, zone) in USERS.items():
            user = accounts.authenticate(session, username, PASSWORD)
            expected = "xa-hoang-hop" if role == "officer" else zone
            assert user is not None and (user.role, user.zone_id) == (role, expected)
        assert zones.find_zone(session, "38") is not None
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Zone(id="xa-khac", name="Xã Khác", kind="commune", code="16015"))
    database.dispose()
    downgrade(engine, "0006")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("zones")}
        assert "code" not in columns
        rows = connection.execute(text("SELECT id, parent_id FROM zones ORDER BY id"))
        assert ("xa-hoang-hop", "tinh-thanh-hoa") in [tuple(row) for row in rows]
    engine.dispose()


def test_0008_gives_existing_receivers_no_client_token_and_downgrades(tmp_path: Path) -> None:
    """Receivers of the previous release (SQLite, or PostgreSQL with `--db postgresql`) keep
    connecting as their device id (an empty token) until `loa device refresh`; a token is
    stored, and the column goes again on downgrade."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        tokens = connection.execute(text("SELECT mqtt_client_token FROM devices")).scalars().all()
        assert tokens and set(tokens) == {""}
        connection.execute(text("UPDATE devices SET mqtt_client_token = :t"), {"t": "ab" * 16})
    downgrade(engine, "0007")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("devices")}
        assert "mqtt_client_token" not in columns and "health_ok" in columns
    engine.dispose()


def test_0012_leaves_existing_receivers_without_a_bcrypt_hash_and_downgrades(
    tmp_path: Path,
) -> None:
    """Receivers of the previous release have no bcrypt hash until `loa device refresh` (which
    `loa nats-config` names); the column goes again on downgrade."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        hashes = connection.execute(text("SELECT mqtt_password_bcrypt FROM devices")).scalars()
        assert set(hashes.all()) == {""}
    downgrade(engine, "0011")
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("devices")}
        assert "mqtt_password_bcrypt" not in columns and "mqtt_client_token" in columns
    engine.dispose()


def test_0010_adds_an_empty_forwarding_record_and_downgrades(tmp_path: Path) -> None:
    """An existing installation has sent nothing down: the table comes empty, keeps one row
    per bulletin and commune, and goes again on downgrade."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM bulletin_forwards")).scalar() == 0
        uniques = inspect(connection).get_unique_constraints("bulletin_forwards")
        assert [u["column_names"] for u in uniques] == [["bulletin_id", "commune_id"]]
    downgrade(engine, "0009")
    with engine.connect() as connection:
        assert "bulletin_forwards" not in inspect(connection).get_table_names()
        assert "zone_id" in {c["name"] for c in inspect(connection).get_columns("bulletins")}
    engine.dispose()


def test_0013_lists_each_broadcasts_zones_as_rows_and_downgrades(tmp_path: Path) -> None:
    """Broadcasts of the previous release get one `broadcast_zones` row per zone of their JSON
    list (a repeated id once, a stored non-list none), which "what sounded here" now reads."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine, "0012")
    with engine.begin() as connection:
        for broadcast_id, zone_ids in (
            (1, '["thon-a", "thon-b", "thon-a"]'),
            (2, '["xa-hoang-hop"]'),
            (3, "null"),
        ):
            connection.execute(
                text(
                    "INSERT INTO broadcasts (id, title, text, priority, repeat, zone_ids, source,"
                    " status, error, tts_engine, created_at) VALUES (:i, 'Tin', 'Nội dung',"
                    " 'normal', 1, :z, 'announcement', 'finished', '', 'espeak',"
                    " '2026-12-01 10:00:00')"
                ),
                {"i": broadcast_id, "z": zone_ids},
            )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT broadcast_id, zone_id FROM broadcast_zones ORDER BY 1, 2")
        ).all()
        assert [tuple(row) for row in rows] == [(1, "thon-a"), (1, "thon-b"), (2, "xa-hoang-hop")]
    downgrade(engine, "0012")
    with engine.connect() as connection:
        assert "broadcast_zones" not in inspect(connection).get_table_names()
        indexes = {i["name"] for i in inspect(connection).get_indexes("deliveries")}
        assert "ix_deliveries_device_broadcast" not in indexes
    engine.dispose()


def test_0018_keeps_every_commune_private_and_every_item_public_and_downgrades(
    tmp_path: Path,
) -> None:
    """An existing installation publishes nothing until a commune opts in (its replay is off),
    and none of its bulletins or broadcasts is internal (a row written without the new columns
    gets the defaults); the columns and the feedback table go again on downgrade."""
    url = database_url(tmp_path / "data")
    make_single_commune(url)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO broadcasts (id, title, text, priority, repeat, zone_ids, source,"
                " status, error, tts_engine, created_at) VALUES (1, 'Tin', 'Nội dung',"
                " 'normal', 1, '[\"xa-hoang-hop\"]', 'announcement', 'finished', '', 'espeak',"
                " '2026-12-01 10:00:00')"
            )
        )
        public = connection.execute(text("SELECT DISTINCT replay_public FROM zones")).scalars()
        assert [bool(value) for value in public.all()] == [False]
        internal = connection.execute(text("SELECT internal FROM broadcasts")).scalars()
        assert [bool(value) for value in internal.all()] == [False]
        assert connection.execute(text("SELECT count(*) FROM feedback")).scalar() == 0
    downgrade(engine, "0017")
    with engine.connect() as connection:
        assert "feedback" not in inspect(connection).get_table_names()
        for table, column in (
            ("zones", "replay_public"),
            ("bulletins", "internal"),
            ("broadcasts", "internal"),
        ):
            assert column not in {c["name"] for c in inspect(connection).get_columns(table)}
    engine.dispose()
