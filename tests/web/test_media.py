"""`/media/<sha256>.mp3`, what receivers download: content-addressed, so its ETag is its name,
ranges and revalidation work, and on PostgreSQL any server serves what another one stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update

from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store import media
from broadcast.store.models import MediaBlob
from web import create_app

SOUND = b"ID3" + bytes(range(256)) * 40


def _check_served(app: Flask, sha: str) -> None:
    client = app.test_client()
    whole = client.get(f"/media/{sha}.mp3")
    assert whole.status_code == 200 and whole.data == SOUND
    assert whole.headers["ETag"] == f'"{sha}"' and whole.mimetype == "audio/mpeg"
    assert "immutable" in whole.headers["Cache-Control"]
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(f"/media/{sha}.mp3", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == SOUND[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(SOUND)}"
    again = client.get(f"/media/{sha}.mp3", headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and not again.data
    assert client.get(f"/media/{'0' * 64}.mp3").status_code == 404


def test_media_is_served_with_its_etag_ranges_and_revalidation(
    service: BroadcastService, app: Flask
) -> None:
    _check_served(app, service.media.put_bytes(SOUND))


@pytest.mark.integration  # a PostgreSQL server
def test_media_stored_by_one_server_is_served_by_another_with_its_own_data_directory(
    tmp_path: Path, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.create_database(f"loa_web_media_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    monkeypatch.setenv("LOA_DATABASE_URL", url)
    first = BroadcastService(Settings(data_dir=tmp_path / "a", port=8099), connect_mqtt=False)
    sha = first.media.put_bytes(SOUND)
    first.stop()
    second_dir = tmp_path / "b"
    (second_dir / "keys").mkdir(parents=True)
    key = tmp_path / "a" / "keys" / "server_ed25519.pem"
    (second_dir / "keys" / key.name).write_bytes(key.read_bytes())  # the fleet's one key
    second = BroadcastService(Settings(data_dir=second_dir, port=8099), connect_mqtt=False)
    try:
        assert isinstance(second.media, media.DatabaseMedia)
        assert not second.media._file(sha).exists()
        app = create_app(second, {"TESTING": True})
        _check_served(app, sha)
        elsewhere = media.media_store(second.db.engine, tmp_path / "c" / "media")
        damaged = elsewhere.put_bytes(SOUND + b"!")  # stored by another node, then damaged
        with second.db.engine.begin() as connection:
            connection.execute(
                update(MediaBlob).where(MediaBlob.sha256 == damaged).values(data=b"ID3 other")
            )
        assert app.test_client().get(f"/media/{damaged}.mp3").status_code == 404
    finally:
        second.stop()
