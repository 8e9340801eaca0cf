"""The one atomic file write: private from its first byte, and all or nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wire.files import write_private_file


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
