"""A real PostgreSQL server for the tests: initdb into a temporary folder, listening on a free
loopback port, stopped by its own process handle.

PostgreSQL refuses to run as root, so under root (CI containers) the server runs as the
`postgres` user that Debian's package creates. A missing PostgreSQL fails the tests that asked
for it, naming what to install.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
from support import LOOPBACK, free_port

START_TIMEOUT_S = 30.0


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} not found: install Debian's postgresql package (.ci/run does)"
        )
    return candidates[-1]


class PostgresServer:
    """`directory` must be reachable by the `postgres` user when running as root (pytest's
    own temporary folders are not: use `tempfile.mkdtemp()`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._as_other_user: list[str] = []
        if os.geteuid() == 0:
            self._as_other_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_other_user, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed: {done.stderr.strip()[-2000:]}")

    def start(self) -> None:
        data = self.directory / "data"
        sockets = self.directory / "sockets"
        for folder in (self.directory, sockets):
            folder.mkdir(parents=True, exist_ok=True)
        if self._as_other_user:
            shutil.chown(self.directory, "postgres")
            shutil.chown(sockets, "postgres")
        self._run(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        log = (self.directory / "server.log").open("wb")
        self._process = subprocess.Popen(
            [
                *self._as_other_user,
                _bin("postgres"),
                "-D", str(data),
                "-p", str(self.port),
                "-k", str(sockets),
                "-c", f"listen_addresses={LOOPBACK}",
                "-c", "fsync=off",  # a throwaway server: durability is not under test
                "-c", "max_connections=300",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.directory / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"PostgreSQL on {LOOPBACK}:{self.port} did not start: {tail}"
                    ) from None
                time.sleep(0.2)

    def dsn(self, database: str) -> str:
        return f"host={LOOPBACK} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (psycopg 3)."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()  # "smart" shutdown is SIGTERM; fast is SIGINT
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
