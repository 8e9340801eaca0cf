"""The one atomic file write: a reader sees the old file or the new one, never half of either.

Every file Loa replaces (configs, keys, caches, media, catalogs, a receiver's state) is written
to a temporary file beside its target, given its mode before the first byte, and renamed over
the target only once complete; a failure removes the temporary and leaves the old file alone.
`write_atomic` writes bytes or text in hand; `atomic_output` lends the temporary's path to a
writer that streams (a download, an engine or ffmpeg writing a file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE = 0o600  # the default: nothing is readable by others unless a caller says so
PUBLIC = 0o644  # media and output served or read by other users


class AtomicOutput:
    """A temporary file that becomes its target in one rename, or never appears at all.

    `path` is where to write (open it, or hand its name to a program). `commit` renames it; leaving
    `atomic_output`'s block commits unless an exception left it first (then it is removed).
    """

    def __init__(self, path: Path, target: Path | None, fsync: bool, fsync_directory: bool) -> None:
        self.path = path
        self.target = target
        self._fsync = fsync
        self._fsync_directory = fsync_directory
        self._synced = False
        self._done = False

    def sync(self) -> None:
        """Flush the written bytes to disk now (`commit` does it otherwise): call it before
        taking a lock around `commit`, so the lock is not held for a slow flush."""
        if self._fsync and not self._synced:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._synced = True

    def commit(self, target: Path | None = None) -> None:
        """Rename the temporary over `target` (default: the one given to `atomic_output`).

        A content-addressed store names the file after its bytes, so it may give the target
        only here; it must be on the same file system as the temporary."""
        if self._done:
            return
        final = Path(target) if target is not None else self.target
        if final is None:
            raise ValueError(f"no target to rename {self.path} to")
        self.sync()
        if final.parent != self.path.parent:
            final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, final)
        self._done = True
        self.target = final
        if self._fsync_directory:
            _fsync_directory(final.parent)

    def discard(self) -> None:
        """Remove the temporary; the target is left as it was."""
        if not self._done:
            self._done = True
            self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(
    target: Path | None,
    *,
    mode: int = PRIVATE,
    fsync: bool = False,
    fsync_directory: bool = False,
    owner: tuple[int, int] | None = None,
    directory: Path | None = None,
    prefix: str | None = None,
    suffix: str = "",
) -> Iterator[AtomicOutput]:
    """A temporary file in `directory` (default: the target's) to write; renamed over `target`
    when the block ends normally, removed when it raises.

    `mode` is set before anything is written; `owner` (uid, gid) hands the file to another user
    before it appears (root writing a broker's files). `fsync` flushes the file before the
    rename, `fsync_directory` the directory after it (so the rename itself survives a power
    cut). `prefix`/`suffix` name the temporary (default prefix `.<target name>.`), so a
    cleaner can recognise leftovers of a crash."""
    folder = Path(directory) if directory is not None else _parent_of(target)
    folder.mkdir(parents=True, exist_ok=True)
    if prefix is None:
        prefix = f".{target.name}." if target is not None else ".tmp-"
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    output = AtomicOutput(Path(name), target, fsync, fsync_directory)
    try:
        os.close(fd)
        os.chmod(output.path, mode)
        if owner is not None:
            os.chown(output.path, *owner)
        yield output
        output.commit()
    finally:
        output.discard()


def write_atomic(
    path: Path,
    data: bytes | str,
    *,
    mode: int = PRIVATE,
    fsync: bool = True,
    fsync_directory: bool = False,
    owner: tuple[int, int] | None = None,
    prefix: str | None = None,
    suffix: str = "",
) -> None:
    """Replace `path` with `data` (text is written as UTF-8), all or nothing."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with (
        atomic_output(
            path,
            mode=mode,
            fsync=fsync,
            fsync_directory=fsync_directory,
            owner=owner,
            prefix=prefix,
            suffix=suffix,
        ) as output,
        output.path.open("wb") as handle,
    ):
        handle.write(payload)


def write_private_file(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write atomically with mode 0600 and fsync: these files hold secrets.

    `owner` (uid, gid) hands the file to another user before it appears (root writing a
    broker's files for the broker's own user)."""
    write_atomic(path, text, mode=PRIVATE, fsync=True, owner=owner)


def _parent_of(target: Path | None) -> Path:
    if target is None:
        raise ValueError("atomic_output needs a target or a directory")
    return target.parent


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
