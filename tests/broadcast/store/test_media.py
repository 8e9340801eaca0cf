"""Media two servers share through one PostgreSQL database (`broadcast.store.media`): written
once and checked, each server's directory a read-through cache, a damaged copy never served.

Always on a real PostgreSQL server (whatever `--db` says): the shared store exists only there.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, update

import audio
from broadcast.store import db, media
from broadcast.store.models import MediaBlob

pytestmark = pytest.mark.integration  # a PostgreSQL server

SOUND = b"ID3" + bytes(range(256)) * 40


@pytest.fixture
def engine(postgres_server: object) -> Iterator[Engine]:
    url = postgres_server.create_database(f"loa_media_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    engine = create_engine(url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(MediaBlob)).scalar_one()


def test_media_stored_on_one_server_is_served_by_another(tmp_path: Path, engine: Engine) -> None:
    a = media.media_store(engine, tmp_path / "a" / "media")
    b = media.media_store(engine, tmp_path / "b" / "media")
    assert isinstance(a, media.DatabaseMedia) and isinstance(b, media.DatabaseMedia)
    sha = a.put_bytes(SOUND)
    assert sha == hashlib.sha256(SOUND).hexdigest()
    assert a.put_bytes(SOUND) == sha and _rows(engine) == 1  # written once
    assert not b._file(sha).exists() and b.exists(sha)  # known to B before it has the file
    assert b.path(sha).read_bytes() == SOUND  # fetched into B's cache, then served from it
    with b.open(sha) as reader:
        assert reader.read() == SOUND
    missing = "0" * 64
    assert not b.exists(missing) and not b.path(missing).exists()


def test_a_recording_added_from_a_file_reaches_the_database(tmp_path: Path, engine: Engine) -> None:
    source = tmp_path / "upload.mp3"
    source.write_bytes(SOUND)
    sha = media.media_store(engine, tmp_path / "a").put_file(source)
    assert media.media_store(engine, tmp_path / "b").path(sha).read_bytes() == SOUND


def test_a_damaged_row_is_never_served_and_is_repaired_by_the_next_write(
    tmp_path: Path, engine: Engine
) -> None:
    a = media.media_store(engine, tmp_path / "a")
    sha = a.put_bytes(SOUND)
    with engine.begin() as connection:
        connection.execute(update(MediaBlob).values(data=b"ID3 not the sound"))
    b = media.media_store(engine, tmp_path / "b")
    assert not b.path(sha).exists()  # checked against its name: not cached, not served
    a.put_bytes(SOUND)  # the row is checked by PostgreSQL after every write
    assert b.path(sha).read_bytes() == SOUND


def test_a_media_directory_from_before_is_copied_in_once(tmp_path: Path, engine: Engine) -> None:
    """What a server kept on files before sharing its database goes in at its start (a file
    whose bytes do not match its name stays out)."""
    files = audio.MediaStore(tmp_path / "a")
    kept = [files.put_bytes(SOUND + bytes([n])) for n in range(3)]
    damaged = files.put_bytes(b"ID3 damaged later")
    files.path(damaged).write_bytes(b"ID3 changed on disk")
    shared = media.media_store(engine, tmp_path / "a")
    assert isinstance(shared, media.DatabaseMedia)
    assert shared.copy_in() == 3 and shared.copy_in() == 0
    other = media.media_store(engine, tmp_path / "b")
    assert all(other.exists(sha) for sha in kept) and not other.exists(damaged)


def test_sqlite_installations_keep_media_on_files(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'loa.db'}")
    store = media.media_store(engine, tmp_path / "media")
    assert type(store) is audio.MediaStore
    engine.dispose()
