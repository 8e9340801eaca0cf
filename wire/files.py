"""The one atomic file write: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private_file(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write atomically (temporary file, fsync, rename) with mode 0600: these files hold secrets.

    `owner` (uid, gid) hands the file to another user before it appears (root writing a
    broker's files for the broker's own user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o600)
        if owner is not None:
            os.chown(tmp, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
