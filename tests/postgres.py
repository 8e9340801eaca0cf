"""A real PostgreSQL server for the tests: initdb into a temporary folder, listening on a free
loopback port, stopped by its own process handle. `make_standby` copies one with Debian's
`pg_basebackup -R` into a streaming replica that `promote()` turns into a primary.

PostgreSQL refuses to run as root, so under root (CI containers) the server runs as the
`postgres` user that Debian's package creates. A missing PostgreSQL fails the tests that asked
for it, naming what to install.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
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
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_other_user:
            shutil.chown(self.directory, "postgres")
        initdb = [_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        self._run(*initdb, "-E", "UTF8")
        self.launch()

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def launch(self) -> None:
        """Start the server on its data directory, made by `start()` or by `make_standby`."""
        data = self.data
        sockets = self.directory / "sockets"
        sockets.mkdir(exist_ok=True)
        if self._as_other_user:
            shutil.chown(sockets, "postgres")
        log = (self.directory / "server.log").open("ab")
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

    def query(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would: no shutdown checkpoint, and its sessions
        end when they notice it gone. Under root the handle is `runuser`'s, so the postmaster's
        pid is read from its own `postmaster.pid`."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._as_other_user:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=10)

    def promote(self) -> None:
        """`pg_ctl promote` a standby, waiting until it accepts writes."""
        self._run(_bin("pg_ctl"), "promote", "-w", "-t", "30", "-D", str(self.data))

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


REPLICATION_USER = "replicator"


def make_standby(primary: PostgresServer, directory: Path, password: str) -> PostgresServer:
    """A streaming replica of `primary`, made and started as an operator would on Debian: a
    replication role with a password, a pg_hba.conf line letting it connect for replication
    (first, so the test server's blanket `trust` does not answer for it), `pg_basebackup -R`
    (which writes `standby.signal` and `primary_conninfo`) with a replication slot, then the
    server started on a port of its own, streaming."""
    primary.query(f"CREATE ROLE {REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD '{password}'")
    hba = primary.data / "pg_hba.conf"
    line = f"host replication {REPLICATION_USER} {LOOPBACK}/32 scram-sha-256\n"
    hba.write_text(line + hba.read_text())
    primary.query("SELECT pg_reload_conf()")
    standby = PostgresServer(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if standby._as_other_user:
        shutil.chown(directory, "postgres")
    done = subprocess.run(
        [
            *standby._as_other_user,
            "env", f"PGPASSWORD={password}",
            _bin("pg_basebackup"),
            "-h", LOOPBACK, "-p", str(primary.port), "-U", REPLICATION_USER,
            "-D", str(standby.data),
            "-R",  # standby.signal + primary_conninfo in postgresql.auto.conf
            "-X", "stream", "-c", "fast",
            "-C", "-S", "loa_standby",  # a slot: the primary keeps WAL the standby still needs
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed: {done.stderr.strip()[-2000:]}")
    standby.launch()
    deadline = time.monotonic() + START_TIMEOUT_S
    while primary.query("SELECT state FROM pg_stat_replication") != [("streaming",)]:
        if time.monotonic() > deadline:
            standby.stop()
            raise RuntimeError("the standby does not stream from the primary")
        time.sleep(0.2)
    return standby
