"""MediaStore: content addressing, idempotence, atomic writes, hash validation."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from pathlib import Path

import pytest

import audio.store as audio_store
from audio import (
    AudioError,
    MediaNotFoundError,
    MediaStore,
    probe_duration_s,
    render_announcement,
)

DATA = b"\xff\xf3\x40\xc0" + bytes(100) + b"loa media"
SHA = hashlib.sha256(DATA).hexdigest()


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_clean(root: Path) -> None:
    """Only <sha[:2]>/<sha>.mp3 files: no temporary file left behind."""
    for path in all_files(root):
        relative = path.relative_to(root).as_posix()
        assert re.fullmatch(r"([0-9a-f]{2})/\1[0-9a-f]{62}\.mp3", relative), relative


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def test_put_bytes_stores_under_sha256(store: MediaStore) -> None:
    sha = store.put_bytes(DATA)
    assert sha == SHA
    path = store.path(sha)
    assert path == store.root / SHA[:2] / f"{SHA}.mp3"
    assert path.read_bytes() == DATA
    assert store.exists(sha)
    with store.open(sha) as handle:
        assert handle.read() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert_clean(store.root)


def test_put_bytes_is_idempotent(store: MediaStore) -> None:
    store.put_bytes(DATA)
    before = store.path(SHA).stat()
    assert store.put_bytes(bytearray(DATA)) == SHA
    assert store.put_bytes(memoryview(DATA)) == SHA
    after = store.path(SHA).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert all_files(store.root) == [store.path(SHA)]


def test_damaged_copy_is_replaced(store: MediaStore) -> None:
    path = store.path(SHA)
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA[:10])  # e.g. left by a copy made outside the store
    assert store.put_bytes(DATA) == SHA
    assert path.read_bytes() == DATA


def test_failed_write_leaves_nothing(
    store: MediaStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)

    def failing_replace(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(AudioError, match="No space left"):
        store.put_bytes(DATA)
    with pytest.raises(AudioError, match="No space left"):
        store.put_file(source)
    assert not store.exists(SHA)
    assert all_files(store.root) == []


def test_concurrent_puts_of_the_same_media(store: MediaStore) -> None:
    results: list[str] = []

    def put() -> None:
        results.append(store.put_bytes(DATA))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [SHA] * 8
    assert store.path(SHA).read_bytes() == DATA
    assert_clean(store.root)


def test_put_file_streams_and_matches_put_bytes(store: MediaStore, tmp_path: Path) -> None:
    big = os.urandom(2_500_000)  # several read chunks
    source = tmp_path / "render.mp3"
    source.write_bytes(big)
    sha = store.put_file(source)
    assert sha == hashlib.sha256(big).hexdigest()
    assert store.path(sha).read_bytes() == big
    assert store.put_bytes(big) == sha
    small = tmp_path / "small.mp3"
    small.write_bytes(DATA)
    assert store.put_file(small) == store.put_bytes(DATA) == SHA
    assert store.put_file(str(small)) == SHA  # again: already stored
    assert_clean(store.root)


def test_put_file_errors_name_the_file(store: MediaStore, tmp_path: Path) -> None:
    missing = tmp_path / "gone.mp3"
    with pytest.raises(AudioError, match=re.escape(str(missing))):
        store.put_file(missing)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=re.escape(str(empty))):
        store.put_file(empty)
    assert_clean(store.root)


def test_empty_bytes_are_refused(store: MediaStore) -> None:
    with pytest.raises(AudioError, match="empty"):
        store.put_bytes(b"")


@pytest.mark.parametrize(
    "bad",
    [
        SHA.upper(),
        SHA[:63],
        SHA + "0",
        "../" + SHA[3:],
        "../../etc/passwd",
        SHA[:62] + "/x",
        "g" * 64,
        " " + SHA[1:],
        SHA[:63] + "\n",
        "",
        None,
        SHA.encode(),
        int(SHA, 16),
    ],
)
def test_bad_sha_is_rejected(store: MediaStore, bad: object) -> None:
    for method in (store.path, store.exists, store.open):
        with pytest.raises(AudioError, match="not a sha256"):
            method(bad)  # type: ignore[arg-type]


def test_open_missing_media(store: MediaStore) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(MediaNotFoundError) as caught:
        store.open(missing)
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, AudioError)


def test_rendered_announcement_round_trip(store: MediaStore, speech_wav: Path) -> None:
    data = render_announcement([speech_wav])
    sha = store.put_bytes(data)
    assert probe_duration_s(store.path(sha)) == probe_duration_s(data)


def test_a_duration_is_measured_once_per_media(
    store: MediaStore, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages ask for every broadcast's length on each request: the frames are read once."""
    data = render_announcement([speech_wav])
    sha = store.put_bytes(data)
    absent = hashlib.sha256(b"not stored").hexdigest()
    assert store.duration_s(absent) is None
    read: list[Path] = []
    measure = audio_store.probe_duration_s

    def counted(source: Path) -> float:
        read.append(source)
        return measure(source)

    monkeypatch.setattr(audio_store, "probe_duration_s", counted)
    first = store.duration_s(sha)
    assert first == pytest.approx(probe_duration_s(data))
    assert store.duration_s(sha) == first
    assert read == [store.path(sha)]
    with pytest.raises(AudioError):
        store.duration_s("../etc/passwd")
