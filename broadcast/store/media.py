"""Media every server of one database can serve: the MP3s in PostgreSQL, each server's media
directory a read-through cache of them.

Why: two `loa serve` on two hosts share one PostgreSQL and nothing else (no NFS). A bulletin
rendered on one must download from the other once the first is gone, so the bytes live where
both look, under their sha256 (the name receivers verify), written once (`INSERT … ON CONFLICT
DO NOTHING`) and checked after writing (PostgreSQL's own `sha256()` of the stored row). Each
server still serves from its files, so HTTP `ETag`, `Range` and 304s stay what `send_file`
gives; a file it lacks is fetched from the database and verified first.

`media_store(engine, root)` is what the service uses: this on PostgreSQL, the plain files
(`audio.MediaStore`) on SQLite, whose single server needs nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

import audio
from audio.store import SUFFIX
from broadcast.store.models import MediaBlob, utcnow

_LOGGER = logging.getLogger(__name__)

_BATCH = 500  # shas asked about in one query when copying a media directory in


def media_store(engine: Engine, root: str | os.PathLike[str]) -> audio.MediaStore:
    """The media store of a server on this database: shared through it on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        return DatabaseMedia(root, engine)
    return audio.MediaStore(root)


class DatabaseMedia(audio.MediaStore):
    """`audio.MediaStore` whose files are a cache of the `media` table: what is stored goes to
    both, what is missing here is read from the database."""

    def __init__(self, root: str | os.PathLike[str], engine: Engine) -> None:
        super().__init__(root)
        self._engine = engine

    def __repr__(self) -> str:
        return f"DatabaseMedia({str(self.root)!r}, {self._engine.url.render_as_string()!r})"

    def path(self, sha: str) -> Path:
        """The local file, fetched from the database first when this server lacks it."""
        path = self._file(sha)
        if not path.is_file():
            self._fetch(sha)
        return path

    def exists(self, sha: str) -> bool:
        if super().exists(sha):
            return True
        with self._engine.connect() as connection:
            found = connection.execute(select(MediaBlob.size).where(MediaBlob.sha256 == sha))
            return found.first() is not None

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        data = bytes(data)
        sha = super().put_bytes(data)
        self._save(sha, data)
        return sha

    def put_file(self, path: str | os.PathLike[str]) -> str:
        sha = super().put_file(path)
        self._save(sha, self._file(sha).read_bytes())
        return sha

    def copy_in(self) -> int:
        """Copy every media file of this directory the database lacks into it (a server's
        media from before it shared a database, or one left by a crash between its two
        writes); returns how many. Each file is checked against its name first."""
        copied = 0
        local = sorted(self._local_shas())
        for start in range(0, len(local), _BATCH):
            batch = local[start : start + _BATCH]
            with self._engine.connect() as connection:
                held = set(
                    connection.scalars(select(MediaBlob.sha256).where(MediaBlob.sha256.in_(batch)))
                )
            for sha in batch:
                if sha in held:
                    continue
                data = self._file(sha).read_bytes()
                if hashlib.sha256(data).hexdigest() != sha:
                    _LOGGER.error("media file %s does not match its name: not copied", sha)
                    continue
                self._save(sha, data)
                copied += 1
        if copied:
            _LOGGER.info("copied %d media files of %s into the database", copied, self.root)
        return copied

    def _local_shas(self) -> Iterable[str]:
        for path in self.root.glob(f"??/*{SUFFIX}"):
            sha = path.name.removesuffix(SUFFIX)
            if self.is_valid_sha(sha) and path.parent.name == sha[:2] and path.is_file():
                yield sha

    def _save(self, sha: str, data: bytes) -> None:
        """Written once; what the row holds is then hashed by PostgreSQL and must be `sha`
        (a row damaged before is replaced by these checked bytes)."""
        with self._engine.begin() as connection:
            connection.execute(
                insert(MediaBlob)
                .values(sha256=sha, size=len(data), data=data, stored_at=utcnow())
                .on_conflict_do_nothing(index_elements=[MediaBlob.sha256])
            )
            stored = connection.execute(
                select(func.encode(func.sha256(MediaBlob.data), "hex")).where(
                    MediaBlob.sha256 == sha
                )
            ).scalar_one()
            if stored != sha:
                _LOGGER.error("media %s in the database was damaged: written again", sha)
                connection.execute(
                    update(MediaBlob)
                    .where(MediaBlob.sha256 == sha)
                    .values(size=len(data), data=data, stored_at=utcnow())
                )

    def _fetch(self, sha: str) -> bool:
        """Bring the database's copy into this directory; False when there is none (or it is
        damaged: never cached, never served)."""
        with self._engine.connect() as connection:
            data = connection.execute(
                select(MediaBlob.data).where(MediaBlob.sha256 == sha)
            ).scalar_one_or_none()
        if data is None:
            return False
        if hashlib.sha256(data).hexdigest() != sha:
            _LOGGER.error("media %s in the database does not match its sha256: not served", sha)
            return False
        super().put_bytes(data)
        _LOGGER.info("media %s fetched from the database (%d bytes)", sha, len(data))
        return True
