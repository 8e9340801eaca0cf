"""The one atomic file write: its mode from the first byte, beside its target, all or nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wire.files import PUBLIC, atomic_output, write_atomic, write_private_file


def test_the_file_is_private_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "new" / "secret.json"
    write_private_file(path, "mật khẩu\n")
    assert path.read_text(encoding="utf-8") == "mật khẩu\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    write_private_file(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_private_file(path, "new \udc80\n")  # a lone surrogate cannot be written as UTF-8
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]


def test_write_atomic_sets_the_mode_asked_for_whatever_the_umask(tmp_path: Path) -> None:
    public = tmp_path / "out.mp3"
    old_umask = os.umask(0o077)
    try:
        write_atomic(public, b"ID3", mode=PUBLIC)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    write_atomic(tmp_path / "state.json", "{}")
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3", "state.json"]


def test_the_temporary_has_its_mode_before_the_first_byte_beside_its_target(
    tmp_path: Path,
) -> None:
    target = tmp_path / "media" / "a.mp3"
    with atomic_output(target, mode=PUBLIC, prefix=".incoming-", suffix=".tmp") as output:
        assert output.path.parent == target.parent
        assert output.path.name.startswith(".incoming-") and output.path.name.endswith(".tmp")
        assert output.path.stat().st_size == 0
        assert stat.S_IMODE(output.path.stat().st_mode) == 0o644
        output.path.write_bytes(b"sound")
    assert target.read_bytes() == b"sound"
    assert [p.name for p in target.parent.iterdir()] == ["a.mp3"]


def test_a_streaming_writer_is_seen_whole_or_not_at_all(tmp_path: Path) -> None:
    """Another process writes the temporary by name (as ffmpeg or a speech engine does); until
    the block ends a reader sees only the old file."""
    target = tmp_path / "speech.wav"
    target.write_bytes(b"old")
    with atomic_output(target) as output:
        subprocess.run(
            [sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(b'new' * 1000)",
             str(output.path)],
            check=True, timeout=30,
        )  # fmt: skip
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["speech.wav"]


def test_a_failure_in_the_block_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target, fsync=True) as output:
        output.path.write_text("half of the ne")
        raise RuntimeError("download cut")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failed_rename_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    (target / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError), atomic_output(target) as output:
        output.path.write_bytes(b"data")
    assert target.is_dir() and [p.name for p in tmp_path.iterdir()] == ["busy"]


def test_the_target_may_be_named_after_the_content(tmp_path: Path) -> None:
    """A content-addressed store learns the name from the bytes; it may also drop them."""
    with atomic_output(None, directory=tmp_path, prefix=".incoming-") as output:
        output.path.write_bytes(b"abc")
        output.commit(tmp_path / "ab" / "abc.mp3")
    assert (tmp_path / "ab" / "abc.mp3").read_bytes() == b"abc"
    with atomic_output(None, directory=tmp_path) as output:
        output.path.write_bytes(b"abc")
        output.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ab"]
    with pytest.raises(ValueError), atomic_output(None, directory=tmp_path) as output:
        output.path.write_bytes(b"nameless")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ab"]


def test_commit_inside_the_block_is_final(tmp_path: Path) -> None:
    """A cache renames under its own lock; what follows in the block does not undo it."""
    target = tmp_path / "a.mp3"
    lock = threading.Lock()
    with atomic_output(target, fsync=True) as output:
        output.path.write_bytes(b"verified")
        output.sync()
        with lock:
            output.commit()
        assert target.read_bytes() == b"verified"
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp3"]
