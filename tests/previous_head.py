"""A single-commune database as the release before provinces (migration 0006) left it: a
commune at the root, two villages, a receiver, an admin, an officer and a village head."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from broadcast.people import accounts
from broadcast.store.db import make_engine, upgrade

PREVIOUS_HEAD = "0006"
PASSWORD = "correct horse battery"
# username → (role, zone)
USERS = {"admin": ("admin", None), "chi": ("officer", None), "truong-a": ("village_head", "thon-a")}


def database_url(data_dir: Path) -> str:
    """The database a `loa` process on `data_dir` uses: PostgreSQL under `--db postgresql`."""
    return os.environ.get("LOA_DATABASE_URL") or f"sqlite:///{data_dir / 'loa.db'}"


def make_single_commune(url: str) -> None:
    data_dir = Path(url.removeprefix("sqlite:///")).parent if url.startswith("sqlite") else None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine, PREVIOUS_HEAD)
        with engine.begin() as connection:
            for zone_id, name, kind, parent in (
                ("xa-hoang-hop", "Xã Hoằng Hợp", "commune", None),
                ("thon-a", "Thôn A", "village", "xa-hoang-hop"),
                ("thon-b", "Thôn B", "village", "xa-hoang-hop"),
            ):
                connection.execute(
                    text("INSERT INTO zones (id, name, kind, parent_id) VALUES (:i, :n, :k, :p)"),
                    {"i": zone_id, "n": name, "k": kind, "p": parent},
                )
            connection.execute(
                text(
                    "INSERT INTO devices (id, name, zone_id, mqtt_password_hash, created_at,"
                    " online, state, boot_id) VALUES ('loa-thon-a-01', '', 'thon-a', '-',"
                    " '2026-12-01 00:00:00', false, 'offline', '')"
                )
            )
            for username, (role, zone) in USERS.items():
                connection.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, zone_id, full_name,"
                        " active, created_at) VALUES (:u, :h, :r, :z, '', true,"
                        " '2026-12-01 00:00:00')"
                    ),
                    {"u": username, "h": accounts._HASHER.hash(PASSWORD), "r": role, "z": zone},
                )
    finally:
        engine.dispose()
