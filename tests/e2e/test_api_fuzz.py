"""Schemathesis against a running `loa serve` (embedded broker on loopback, no receivers): every
operation of `/api/v1/openapi.json` fuzzed with the token of every role (`ROLES`), the
stateful phase following the document's links (create → read → approve → send → cancel), and
no response may be a server error or differ from the document (status code, content type,
headers, body).

`make test` runs a bounded number of examples per operation (`LOA_FUZZ_EXAMPLES`, default 5,
a fixed seed: a couple of minutes on two cores); `make fuzz` runs many more with a random seed
(`make fuzz FUZZ_DB=postgresql` on PostgreSQL, whose text columns refuse more than SQLite's).
Schemathesis's report of a failure (with a curl line to reproduce it) is in the assertion
message, and the whole run in test-artifacts/fuzz/<role>.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from media_support import silent_mp3
from processes import LoaProcess
from service_support import approved_bulletin
from support import REPO_ROOT, free_ports

from broadcast.const import Role, ZoneKind
from broadcast.fleet import registry
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.models import Broadcast, Zone, utcnow

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "unsupported_method",  # a method a path does not take: 405 …
        "allow_header_conformance",  # … whose Allow header names the ones it takes
        "ensure_resource_availability",  # what a 201 made can be read by its link
    )
)
PHASES = "examples,coverage,fuzzing,stateful"
ROLES = {  # username: (role, zone): every role, bound where its work is
    "quantri": (Role.ADMIN, None),
    "canbo": (Role.OFFICER, "xa-an"),  # the commune's: its replay, its bulletins
    "lanhdao": (Role.LEADER, "xa-an"),
    "xem": (Role.VIEWER, None),
    "truongthon1": (Role.VILLAGE_HEAD, "thon-1"),
    "bientap": (Role.PROVINCE_EDITOR, None),
    "nguon": (Role.SOURCE, None),
}
PASSWORD = "mat-khau-fuzz-2026"
COMMUNE = "xa-an"  # the document's example of a commune
RUN_LIMIT_S = int(os.environ.get("LOA_FUZZ_LIMIT_S", "240"))  # one role's run, at most


@dataclass(frozen=True)
class Server:
    base: str
    tokens: dict[str, str]
    process: LoaProcess


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("LOA_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts")) / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _seed(settings: Settings) -> dict[str, str]:
    """A commune of two villages with a receiver each (ids as the document's examples), the
    users of the run with their tokens, one approved bulletin to schedule and send, and what
    the replay routes name: a broadcast that sounded in the commune (id 1, the least id the
    fuzzer tries) with a listener's feedback on it, the commune's page open."""
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        with service.db.session() as session:
            zones.create_zone(session, COMMUNE, "Xã An", ZoneKind.COMMUNE)
            session.get(Zone, COMMUNE).replay_public = True  # type: ignore[union-attr]
            for village in ("thon-1", "thon-2"):
                zones.create_zone(
                    session, village, f"Thôn {village[-1]}", ZoneKind.VILLAGE, COMMUNE
                )
                registry.register_device(
                    session,
                    settings,
                    service.fleet.public_key_text,
                    f"loa-{village}-01",
                    village,
                )
            tokens, admin_id = {}, 0
            for username, (role, zone) in ROLES.items():
                user = accounts.create_user(session, username, PASSWORD, role, zone)
                tokens[username] = accounts.create_token(session, user)
                admin_id = user.id if role is Role.ADMIN else admin_id
        approved_bulletin(service, admin_id, "Bản tin thử", "Họp dân lúc bảy giờ tối.")
        sounded = _sounded_broadcast(service)
        service.replay.give_feedback(COMMUNE, sounded, "Bà Lan", "Xin phát lại.", "127.0.0.1")
    finally:
        service.stop()
    return tokens


def _sounded_broadcast(service: BroadcastService) -> int:
    """A broadcast that finished in thôn 1 an hour ago, with media: on the commune's replay."""
    sha = service.media.put_bytes(silent_mp3())
    with service.db.session() as session:
        row = Broadcast(
            title="Tin đã phát",
            text="Mất điện từ 14 giờ.",
            priority="normal",
            zone_ids=["thon-1"],
            source="announcement",
            status="finished",
            play_at=utcnow() - timedelta(hours=1),
            media_sha256=sha,
        )
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server on SQLite, or on a fresh PostgreSQL database with `--db postgresql`."""
    data = tmp_path_factory.mktemp("fuzz") / "var"
    port, mqtt_port = free_ports(2)
    env = {}
    if request.config.getoption("--db") == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        env["LOA_DATABASE_URL"] = postgres.create_database("loa_fuzz")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        tokens = _seed(Settings(data_dir=data, port=port, mqtt_port=mqtt_port))
    process = LoaProcess(
        "serve",
        "--data",
        str(data),
        "--port",
        str(port),
        "--mqtt-port",
        str(mqtt_port),
        "--embedded-broker",
        env=env,
    )
    try:
        process.wait_for_line("Loa server on")
        yield Server(f"http://127.0.0.1:{port}", tokens, process)
        process.stop()
    finally:
        if process.process.poll() is None:
            process.kill()
        (artifacts_dir() / "server.log").write_text(process.output, encoding="utf-8")


@pytest.mark.integration
@pytest.mark.parametrize("username", list(ROLES))
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    server: Server, username: str
) -> None:
    examples = os.environ.get("LOA_FUZZ_EXAMPLES", "5")
    seed = os.environ.get("LOA_FUZZ_SEED", "20261206")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.base}/api/v1/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        PHASES,
        "--header",
        f"Authorization: Bearer {server.tokens[username]}",
        "--max-examples",
        examples,
        "--workers",
        "1",
        "--request-timeout",
        "120",  # a schedule renders its bulletin in the request: seconds for a long text
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--output-truncate",
        "false",
    ]
    if seed != "random":
        command += ["--seed", seed]
    try:
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT_S,
            check=False,
            cwd=artifacts_dir(),
        )
    except subprocess.TimeoutExpired as late:
        partial = late.stdout or ""  # bytes on POSIX, even in text mode
        if isinstance(partial, bytes):
            partial = partial.decode(errors="replace")
        pytest.fail(f"Schemathesis as {username} ran over {RUN_LIMIT_S} s:\n{partial[-5000:]}")
    report = run.stdout + run.stderr
    (artifacts_dir() / f"{username}.txt").write_text(report, encoding="utf-8")
    assert run.returncode == 0, f"Schemathesis as {username}:\n{report[-20000:]}"
    assert server.process.process.poll() is None, "the server died under the fuzzer"
