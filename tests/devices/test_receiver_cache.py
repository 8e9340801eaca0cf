"""The media cache: verified before it is visible, re-verified on use, bounded by LRU."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from devices.cache import CacheError, FetchCancelledError, MediaCache


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".mp3"))


def test_put_verifies_before_rename(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    data = b"announcement" * 100
    path = cache.put_chunks(sha(data), [data[:500], data[500:]])
    assert path == tmp_path / "c" / f"{sha(data)}.mp3"
    assert path.read_bytes() == data

    wrong = sha(b"something else")
    with pytest.raises(CacheError, match="sha256 mismatch"):
        cache.put_chunks(wrong, [data])
    assert not cache.path(wrong).exists()
    assert leftovers(tmp_path / "c") == []


def test_fetch_downloads_once_then_uses_cache(tmp_path: Path, media_server, kit) -> None:
    data = kit.fake_mp3(0.3, b"fetch-once")
    url = media_server.add("fetch-once.mp3", data)
    cache = MediaCache(tmp_path / "c", 1 << 20)
    path, downloaded = cache.fetch(url, sha(data), timeout_s=5)
    assert downloaded and path.read_bytes() == data
    path2, downloaded2 = cache.fetch(url, sha(data), timeout_s=5)
    assert (path2, downloaded2) == (path, False)
    assert media_server.hits["fetch-once.mp3"] == 1


def test_fetch_rejects_tampered_media(tmp_path: Path, media_server) -> None:
    url = media_server.add("tampered.mp3", b"evil bytes")
    cache = MediaCache(tmp_path / "c", 1 << 20)
    expected = sha(b"the genuine announcement")
    with pytest.raises(CacheError, match="sha256 mismatch"):
        cache.fetch(url, expected, timeout_s=5)
    assert list((tmp_path / "c").iterdir()) == []


def test_fetch_http_errors_are_short(tmp_path: Path, media_server) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    with pytest.raises(CacheError, match="download failed: HTTP 404"):
        cache.fetch(media_server.url("missing.mp3"), sha(b"x"), timeout_s=5)
    with pytest.raises(CacheError) as info:
        cache.fetch("http://127.0.0.1:9/a.mp3", sha(b"x"), timeout_s=5)
    assert info.value.detail == "download failed: 127.0.0.1:9: Connection refused"


def test_corrupt_cached_file_is_dropped(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    data = b"good data"
    path = cache.put_chunks(sha(data), [data])
    path.write_bytes(b"bit rot")
    assert cache.get(sha(data)) is None
    assert not path.exists()


def test_lru_eviction_keeps_recent_and_current(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 2500)
    blobs = [bytes([i]) * 1000 for i in range(3)]
    paths = [cache.put_chunks(sha(b), [b]) for b in blobs[:2]]
    os.utime(paths[0], (1_000, 1_000))
    os.utime(paths[1], (2_000, 2_000))
    assert cache.get(sha(blobs[0])) == paths[0]  # touch: blob 0 is now the most recent
    newest = cache.put_chunks(sha(blobs[2]), [blobs[2]])
    assert paths[0].exists() and newest.exists()
    assert not paths[1].exists()
    assert cache.total_bytes() <= 2500


def test_file_larger_than_limit_is_refused(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 100)
    data = b"x" * 101
    with pytest.raises(CacheError, match="exceeds the cache limit"):
        cache.put_chunks(sha(data), [data])
    assert list((tmp_path / "c").iterdir()) == []


def test_cancelled_download_leaves_nothing(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    cancel = threading.Event()

    def chunks():
        yield b"first"
        cancel.set()
        yield b"second"

    with pytest.raises(FetchCancelledError):
        cache.put_chunks(sha(b"firstsecond"), chunks(), cancel)
    assert list((tmp_path / "c").iterdir()) == []


def test_stale_partial_files_removed_at_start(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / ".part-abc").write_bytes(b"half a download")
    MediaCache(root, 1 << 20)
    assert list(root.iterdir()) == []


def test_bad_sha_is_refused(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    with pytest.raises(CacheError):
        cache.path("../../etc/passwd")


def test_pinned_files_are_never_evicted(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path / "c", 2500)
    blobs = [bytes([i]) * 1000 for i in range(4)]
    paths = [cache.put_chunks(sha(b), [b]) for b in blobs[:2]]
    os.utime(paths[0], (1_000, 1_000))  # the oldest: evicted first, unless pinned
    cache.pin({sha(blobs[0]), sha(blobs[1])})
    newest = cache.put_chunks(sha(blobs[2]), [blobs[2]])
    assert all(p.exists() for p in (*paths, newest))  # over the limit: the manifest wins
    cache.pin({sha(blobs[1])})
    cache.put_chunks(sha(blobs[3]), [blobs[3]])
    assert not paths[0].exists() and paths[1].exists()
    assert cache.total_bytes() <= 2500


def test_failures_say_whether_a_retry_can_help(tmp_path: Path, media_server) -> None:
    cache = MediaCache(tmp_path / "c", 1 << 20)
    url = media_server.add("permanent.mp3", b"wrong bytes")
    with pytest.raises(CacheError) as mismatch:
        cache.fetch(url, sha(b"right bytes"), timeout_s=5)
    with pytest.raises(CacheError) as missing:
        cache.fetch(media_server.url("nothing-here.mp3"), sha(b"x"), timeout_s=5)
    with pytest.raises(CacheError) as refused:
        cache.fetch("http://127.0.0.1:9/a.mp3", sha(b"x"), timeout_s=5)
    assert mismatch.value.permanent and missing.value.permanent
    assert not refused.value.permanent
