"""Shared fixtures: a broadcast service on a fresh data directory, and real MQTT brokers.

`broker_kind` parametrizes a test over the embedded amqtt broker and mosquitto (the production
broker); `broker_factory` starts one (or nats-server, the clustered candidate) on a free loopback
port and stops it at teardown. A missing mosquitto or nats-server FAILS the test (never skips):
CI must prove the product on the brokers it ships with.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
from argon2 import PasswordHasher, profiles
from service_support import Province, make_service, seed_two_communes
from support import (
    BROKER_KINDS,
    LOOPBACK,
    PRODUCT_BROKER_KINDS,
    AmqttProcess,
    RunningBroker,
    free_port,
    free_ports,
)

from broadcast.fleet.brokers import BrokerAccess, BrokerError
from broadcast.fleet.brokers import access as broker_access
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.fleet.brokers.nats import NatsBroker
from broadcast.people import accounts
from broadcast.service import BroadcastService

_LOGGER = logging.getLogger(__name__)

# Property tests check what code does, never how fast: Hypothesis' 200 ms per example failed
# them on a loaded machine (tests/README.md: speed is measured in bench/, beside a floor).
hypothesis.settings.register_profile("loa", deadline=None)
hypothesis.settings.load_profile("loa")

__all__ = ["BROKER_KINDS", "RunningBroker", "broker_factory", "broker_kind", "free_port"]

BrokerFactory = Callable[..., RunningBroker]


@pytest.fixture(params=PRODUCT_BROKER_KINDS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    """'amqtt', 'mosquitto' or 'nats': run the test once per broker back-end the product is
    tested on (nats needs the passwords: `broker_factory(kind, access, passwords)`)."""
    return str(request.param)


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start a broker of a kind with an access description; all are stopped at teardown.

    nats-server cannot read the access file's password hashes: it needs `passwords` (username →
    password) to hash them its way (`broadcast.fleet.brokers.nats`)."""
    started: list[AmqttProcess | MosquittoBroker | NatsBroker] = []

    def start(
        kind: str, access: BrokerAccess, passwords: dict[str, str] | None = None
    ) -> RunningBroker:
        if kind not in BROKER_KINDS:
            raise ValueError(f"unknown broker kind {kind!r}; expected one of {BROKER_KINDS}")
        last_error: BrokerError | None = None
        for attempt in range(3):  # another process may grab the free port before we bind it
            port, other_port = free_ports(2)
            server_port = port  # amqtt: one listener for all
            directory = tmp_path / f"{kind}-{len(started)}-{attempt}"
            broker: AmqttProcess | MosquittoBroker | NatsBroker
            if kind == "amqtt":
                broker = AmqttProcess(directory, LOOPBACK, port, access)
            elif kind == "nats":
                if passwords is None:
                    raise ValueError("a nats broker needs the users' passwords")
                broker = NatsBroker(directory, LOOPBACK, port, access, passwords)
            else:
                server_port = other_port
                broker = MosquittoBroker(directory, LOOPBACK, port, access, server_port=server_port)
            started.append(broker)
            try:
                broker.start()
            except BrokerError as exc:
                last_error = exc
            else:
                return RunningBroker(kind, LOOPBACK, port, server_port)
            if "already in use" not in str(last_error):
                break
        pytest.fail(f"{kind} broker did not start: {last_error}", pytrace=False)

    yield start
    for broker in reversed(started):
        broker.stop()


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost takes a tenth of a second or more per hash and most tests
    create five users: in-process tests hash with argon2's cheapest profile (they check who may
    log in, not the hash's strength), and receivers' bcrypt hashes (for nats-server) with
    bcrypt's lowest cost. `loa` processes that tests start keep the real cost."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_HASHER", PasswordHasher.from_parameters(profiles.CHEAPEST))
        patch.setattr(broker_access, "BCRYPT_COST", 4)
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the database every service in the tests uses (postgresql: a real server is "
        "started, with a fresh database for each test)",
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    from postgres import PostgresServer

    folder = Path(tempfile.mkdtemp(prefix="loa-postgres-"))
    server = PostgresServer(folder)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def database_choice(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With `--db postgresql`, every service of the test (and every `loa` process it starts)
    gets a fresh PostgreSQL database through LOA_DATABASE_URL."""
    kind = str(request.config.getoption("--db"))
    if kind == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = f"loa_test_{abs(hash(request.node.nodeid)) % 10**12}"
        monkeypatch.setenv("LOA_DATABASE_URL", server.create_database(name))  # type: ignore[attr-defined]
    return kind


@pytest.fixture
def service(tmp_path: Path) -> Iterator[BroadcastService]:
    """A service with storage, speech and audio but no MQTT link, on tmp_path/data."""
    svc = make_service(tmp_path / "data")
    yield svc
    svc.stop()


@pytest.fixture
def province(service: BroadcastService) -> Province:
    """A province with two communes, their villages, a receiver in each commune and accounts
    at every level (`service_support.seed_two_communes`); beside the test commune when a test
    also seeds that."""
    return seed_two_communes(service)
