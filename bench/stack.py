"""What the benchmarks that need the whole server share: a seeded province, the stack that serves it
(mosquitto with every receiver's login, the database, gunicorn `web.wsgi:app` as
docs/deployment.md starts it), simulated receivers heartbeating, and the /proc readers that say
what each part costs. `web_load` and `footprint` import it; no benchmark imports another.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from broadcast.const import BroadcastStatus, DeliveryState, Role, ScheduleKind, ZoneKind  # noqa: E402
from broadcast.desks.scheduling import ScheduleRequest  # noqa: E402
from broadcast.fleet import registry  # noqa: E402
from broadcast.fleet.brokers.access import (  # noqa: E402
    BrokerAccess,
    BrokerUser,
    hash_password,
)
from broadcast.fleet.brokers.mosquitto import MosquittoBroker  # noqa: E402
from broadcast.people import accounts, zones  # noqa: E402
from broadcast.people.permissions import Action  # noqa: E402
from broadcast.sending import broadcasts  # noqa: E402
from broadcast.service import BroadcastService  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.models import Device, User, utcnow  # noqa: E402
from devices.heartbeat import Snapshot, status_extra  # noqa: E402
from wire import protocol  # noqa: E402

LOOPBACK = "127.0.0.1"
HEARTBEAT_S = 30.0
RECEIVERS_PER_VILLAGE = 10
VILLAGES_PER_COMMUNE = 5
HISTORY_DAYS = 7
DAILY_TIMES = ("06:00", "17:00")
USER_ROLES = (Role.OFFICER, Role.LEADER, Role.VIEWER, Role.ADMIN)
USER_PASSWORD = "bench-user-password"
# The receivers' broker logins share one cheap hash: this benchmark measures the web app, not
# mosquitto's PBKDF2 at 1,000 CONNECTs (production hashes use 10,000 iterations).
RECEIVER_PASSWORD = "bench-receiver-password"
BENCH_HASH_ITERATIONS = 100
CLIENTS_PER_PROCESS = 250  # paho's select() watches fds < 1024; a client holds three
REQUEST_TIMEOUT_S = 10.0
BULLETIN_TEXT = (
    "Đài truyền thanh xã xin thông báo: lịch tiêm chủng mở rộng tháng này diễn ra tại trạm y tế "
    "xã từ 7 giờ 30 đến 11 giờ sáng thứ Bảy. Đề nghị bà con đưa trẻ đến đúng giờ."
)
KB_PER_MB = 1024.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --- the province ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Province:
    device_ids: list[str]
    users: list[tuple[str, str, str]]  # (username, password, API token)
    admin_token: str
    communes: list[str] = field(default_factory=list)
    # device id → the zones whose command topics it listens on (village, commune, province)
    listens: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # username → role
    server_mqtt_password: str = ""


@dataclass(frozen=True)
class Tree:
    """A province as issue 13 draws it: one province zone (code 2 digits), `communes` communes
    (5-digit codes) of `villages` villages of `per_village` receivers each; one officer per
    commune bound to it, `editors` province editors bound to the province, an installation-wide
    admin."""

    communes: int = 100
    villages: int = 5
    per_village: int = 4
    editors: int = 10

    @property
    def receivers(self) -> int:
        return self.communes * self.villages * self.per_village


PROVINCE_ID, PROVINCE_NAME, PROVINCE_CODE = "tinh-bench", "Tỉnh Thử Tải", "38"


def seed_province(service: BroadcastService, receivers: int, users: int) -> Province:
    """Zones, receivers, users, daily bulletins and a week of history, through the domain.

    Receivers are stored as the registry stores them, but with one shared cheap broker hash and
    no config files (`registry.register_device` costs a PBKDF2 and a file each: half a minute
    for 1,000 on this machine, and this benchmark is about the web app)."""
    villages: list[str] = []
    communes: list[str] = []
    cheap_hash = hash_password(RECEIVER_PASSWORD, iterations=BENCH_HASH_ITERATIONS)
    village_count = max(1, -(-receivers // RECEIVERS_PER_VILLAGE))
    device_ids = [f"loa-{n:05d}" for n in range(receivers)]
    with service.db.session() as session:
        for v in range(village_count):
            commune = f"xa-{v // VILLAGES_PER_COMMUNE + 1:03d}"
            if commune not in communes:
                zones.create_zone(session, commune, f"Xã {commune[3:]}", ZoneKind.COMMUNE)
                communes.append(commune)
            village = f"{commune}-thon-{v % VILLAGES_PER_COMMUNE + 1}"
            zones.create_zone(session, village, f"Thôn {village[-1]}", ZoneKind.VILLAGE, commune)
            villages.append(village)
        for n, device_id in enumerate(device_ids):
            zone_id = villages[n // RECEIVERS_PER_VILLAGE]
            session.add(
                Device(id=device_id, name=device_id, zone_id=zone_id, mqtt_password_hash=cheap_hash)
            )
        admin = accounts.create_user(session, "bench-admin", USER_PASSWORD, Role.ADMIN)
        admin_token = accounts.create_token(session, admin)
        admin_id = admin.id
        made = []
        for n in range(users):
            # one argon2 hash costs ~0.3 s: the users share the admin's (each login verifies it)
            user = User(
                username=f"user{n:03d}",
                password_hash=admin.password_hash,
                role=USER_ROLES[n % len(USER_ROLES)].value,
            )
            session.add(user)
            session.flush()
            made.append((user.username, USER_PASSWORD, accounts.create_token(session, user)))
    _add_daily(service, communes, admin_id)
    _add_history(service, communes, admin_id)
    return Province(device_ids, made, admin_token)


def seed_tree(service: BroadcastService, tree: Tree) -> Province:
    """A province under one province zone, through the domain (`zones.create_zone`, users bound
    by `accounts.check_role_zone`), with the daily bulletins and a week of history of
    `seed_province`. Receivers and users are stored as there (one cheap shared hash each)."""
    cheap_hash = hash_password(RECEIVER_PASSWORD, iterations=BENCH_HASH_ITERATIONS)
    communes: list[str] = []
    listens: dict[str, list[str]] = {}
    with service.db.session() as session:
        zones.create_zone(
            session, PROVINCE_ID, PROVINCE_NAME, ZoneKind.PROVINCE, code=PROVINCE_CODE
        )
        for c in range(tree.communes):
            commune = f"xa-{c + 1:03d}"
            zones.create_zone(
                session,
                commune,
                f"Xã {c + 1:03d}",
                ZoneKind.COMMUNE,
                PROVINCE_ID,
                code=f"{int(PROVINCE_CODE) * 1000 + c + 1:05d}",
            )
            communes.append(commune)
            for v in range(tree.villages):
                village = f"{commune}-thon-{v + 1}"
                zones.create_zone(session, village, f"Thôn {v + 1}", ZoneKind.VILLAGE, commune)
                for _ in range(tree.per_village):
                    device_id = f"loa-{len(listens):05d}"
                    session.add(
                        Device(
                            id=device_id,
                            name=device_id,
                            zone_id=village,
                            mqtt_password_hash=cheap_hash,
                        )
                    )
                    listens[device_id] = [village, commune, PROVINCE_ID]
        admin = accounts.create_user(session, "bench-admin", USER_PASSWORD, Role.ADMIN)
        admin_token = accounts.create_token(session, admin)
        admin_id = admin.id
        accounts_made: list[tuple[str, Role, str]] = [
            (f"bientap{n:02d}", Role.PROVINCE_EDITOR, PROVINCE_ID) for n in range(tree.editors)
        ] + [(f"canbo-{commune}", Role.OFFICER, commune) for commune in communes]
        made, roles = [], {}
        for username, role, zone_id in accounts_made:
            # one argon2 hash costs ~0.3 s: the users share the admin's (each login verifies it)
            accounts.check_role_zone(session, role, zones.get_zone(session, zone_id))
            user = User(
                username=username,
                password_hash=admin.password_hash,
                role=role.value,
                zone_id=zone_id,
            )
            session.add(user)
            session.flush()
            made.append((username, USER_PASSWORD, accounts.create_token(session, user)))
            roles[username] = role.value
    _add_daily(service, communes, admin_id)
    _add_history(service, communes, admin_id)
    return Province(
        list(listens),
        made,
        admin_token,
        communes=communes,
        listens=listens,
        roles=roles,
        server_mqtt_password=service.secrets.mqtt_password,
    )


def _add_daily(service: BroadcastService, communes: list[str], admin_id: int) -> None:
    """A daily bulletin at 06:00 and 17:00 in every commune (the leader plans its runs)."""
    desk = service.bulletins
    bulletin_id = desk.create_bulletin(admin_id, "Bản tin hằng ngày", BULLETIN_TEXT)
    desk.submit(admin_id, bulletin_id)
    desk.approve(admin_id, bulletin_id, "bench")
    for commune in communes:
        for time_of_day in DAILY_TIMES:
            service.scheduling.schedule(
                admin_id,
                ScheduleRequest(
                    bulletin_id=bulletin_id,
                    kind=ScheduleKind.DAILY,
                    zone_ids=[commune],
                    priority=protocol.Priority.NORMAL,
                    time_of_day=time_of_day,
                ),
            )


def _add_history(service: BroadcastService, communes: list[str], admin_id: int) -> None:
    """A week of finished broadcasts per commune, as the log of a running province looks."""
    now = utcnow()
    with service.db.session() as session:
        admin = accounts.require_user(session, admin_id, Action.ADMINISTER)
        for day in range(HISTORY_DAYS, 0, -1):
            for commune in communes:
                zone = zones.get_zone(session, commune)
                for slot in range(len(DAILY_TIMES)):
                    at = now - timedelta(days=day, hours=6 * slot)
                    broadcasts.create_broadcast(
                        session,
                        text=BULLETIN_TEXT,
                        zone_list=[zone],
                        priority=protocol.Priority.NORMAL,
                        repeat=1,
                        source="announcement",
                        created_by=admin,
                        title=f"Thông báo {commune} {at:%d/%m %H:%M}",
                        status=BroadcastStatus.FINISHED,
                        delivery_state=DeliveryState.FINISHED,
                        created_at=at,
                        dispatched_at=at,
                        play_at=at,
                    )


# --- the simulated receivers --------------------------------------------------------------------


def _receivers_worker(
    port: int,
    device_ids: list[str],
    phases: list[float],
    start_at: float,
    period_s: float,
    ready: Any,
    results: Any,
    stop: Any,
    topics: list[list[str]] | None = None,
    worker_no: int = 0,
    jobs: Any = None,
    answers: Any = None,
    hold_answers: Any = None,
    nice: int = 0,
) -> None:
    """Receivers in one process: connect as the agent does, then publish the retained state every
    `period_s` at their own phase (monotonic `start_at + phase + k * period_s`).

    With `topics` (per receiver), each also subscribes to those command topics as the agent does
    and notes what arrives (epoch time, CRC-32 of the payload, nothing parsed: a plain
    subscriber); a thread answers `jobs` (`Arrivals.wait`). While `hold_answers` is set, the
    `received` answers wait until the job that measures their arrival is answered. `nice`
    lowers the process's scheduling priority (simulated receivers stand in for machines of
    their own, so they take the cores only when the server side leaves them idle)."""
    if nice:
        os.nice(nice)
    data_dir = Path(tempfile.gettempdir())
    started_at = time.time()
    boot_id = os.urandom(8).hex()
    connected = threading.Semaphore(0)
    clients: list[mqtt.Client] = []
    arrivals = Arrivals(len(device_ids), hold_answers) if topics is not None else None

    def status(device_id: str, state: protocol.ReceiverState) -> bytes:
        snapshot = Snapshot(state, manifest_items=4, cache_complete=1.0)
        extra = status_extra(
            snapshot,
            version="bench",
            started_at=started_at,
            data_dir=data_dir,
            rejected_commands=0,
            clock_offset_s=0.012,
        )
        message = protocol.DeviceStatus(
            device_id, state, f"{boot_id}-{device_id}", time.time(), None, "bench", extra
        )
        return message.to_json()

    for number, device_id in enumerate(device_ids):
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=device_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(device_id, RECEIVER_PASSWORD)
        topic = protocol.device_state_topic(device_id)
        client.will_set(topic, status(device_id, protocol.ReceiverState.OFFLINE), 1, True)

        def on_connect(
            c: mqtt.Client,
            _u: object,
            _f: object,
            reason: Any,
            _p: object,
            device_id: str = device_id,
            topic: str = topic,
            number: int = number,
        ) -> None:
            if not reason.is_failure:  # the agent publishes its state on every (re)connect
                c.publish(topic, status(device_id, protocol.ReceiverState.IDLE), 1, True)
                if topics is None:
                    connected.release()
                else:
                    c.subscribe([(t, 1) for t in topics[number]])

        client.on_connect = on_connect
        if arrivals is not None:
            client.on_subscribe = lambda *_args: connected.release()
            client.on_message = arrivals.handler(number, device_id)
        client.connect_async(LOOPBACK, port, keepalive=60)
        client.loop_start()
        clients.append(client)
    deadline = time.monotonic() + 120
    count = 0
    for _ in device_ids:
        if not connected.acquire(timeout=max(0.1, deadline - time.monotonic())):
            break
        count += 1
    ready.put(count)
    if arrivals is not None and jobs is not None:
        threading.Thread(
            target=arrivals.serve, args=(worker_no, jobs, answers, stop), daemon=True
        ).start()
    published = failed = 0
    due = [start_at + phase for phase in phases]
    while not stop.is_set():
        index = min(range(len(due)), key=due.__getitem__)
        wait = due[index] - time.monotonic()
        if wait > 0 and stop.wait(min(wait, 1.0)):
            break
        if due[index] > time.monotonic():
            continue
        device_id = device_ids[index]
        info = clients[index].publish(
            protocol.device_state_topic(device_id),
            status(device_id, protocol.ReceiverState.IDLE),
            qos=1,
            retain=True,
        )
        published += 1
        failed += info.rc != mqtt.MQTT_ERR_SUCCESS
        due[index] += period_s
    for client in clients:
        client.disconnect()
        client.loop_stop()
    results.put({"published": published, "failed": failed})


_BROADCAST_ID = re.compile(rb'"broadcast_id":(\d+)')
_COMMAND_ID = re.compile(rb'"id":"([0-9a-f]{1,64})"')


def _received(device_id: str, command_id: str, broadcast_id: int) -> bytes:
    """The `received` event the agent publishes for a PLAY it verified."""
    event = protocol.DeviceEvent(
        device_id, command_id, broadcast_id, protocol.EventKind.RECEIVED, time.time()
    )
    return event.to_json()


class Arrivals:
    """What the command topics brought each receiver of a worker process: (epoch time, CRC-32)."""

    def __init__(self, size: int, hold_answers: Any = None) -> None:
        self._cond = threading.Condition()
        self._got: list[list[tuple[float, int]]] = [[] for _ in range(size)]
        self._hold_answers = hold_answers
        self._held: list[tuple[mqtt.Client, str, str, int]] = []

    def handler(self, number: int, device_id: str) -> Any:
        """The receiver's on_message: note the arrival, then answer a PLAY `received` once per
        broadcast, as the agent does after verifying it (unanswered, the server would send it
        again on the receiver's own topic, `broadcast.sending.redelivery`); while answers are
        held, it answers once the arrival is measured (`serve`)."""
        own = self._got[number]
        answered: set[int] = set()
        topic = protocol.device_event_topic(device_id)

        def on_message(client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            at = time.time()
            payload = message.payload
            with self._cond:
                own.append((at, zlib.crc32(payload)))
                self._cond.notify_all()
            found = _BROADCAST_ID.search(payload)
            if found is None or b'"kind":"play"' not in payload:
                return
            broadcast_id = int(found.group(1))
            if broadcast_id in answered:
                return
            answered.add(broadcast_id)
            command = _COMMAND_ID.search(payload)
            command_id = command.group(1).decode() if command else ""
            if self._hold_answers is not None and self._hold_answers.is_set():
                with self._cond:  # answered once measured: nothing but a note until then
                    self._held.append((client, device_id, command_id, broadcast_id))
                return
            client.publish(topic, _received(device_id, command_id, broadcast_id), qos=1)

        return on_message

    def wait(self, since: float, crcs: frozenset[int], timeout_s: float) -> tuple[float, int]:
        """(latest first arrival, receivers that had one): the moment every receiver here had
        one of `crcs` that arrived after `since`, or what was there at the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                firsts = [
                    next((at for at, crc in got if at >= since and crc in crcs), None)
                    for got in self._got
                ]
                have = [at for at in firsts if at is not None]
                left = deadline - time.monotonic()
                if len(have) == len(firsts) or left <= 0:
                    return max(have, default=0.0), len(have)
                self._cond.wait(min(left, 0.5))

    def serve(self, worker_no: int, jobs: Any, answers: Any, stop: Any) -> None:
        """Answer (job id, since, crcs, timeout) until `stop` or a None job."""
        while not stop.is_set():
            try:
                job = jobs.get(timeout=1.0)
            except queue.Empty:
                continue
            if job is None:
                return
            job_id, since, crcs, timeout_s = job
            last, count = self.wait(since, frozenset(crcs), timeout_s)
            answers.put((worker_no, job_id, last, count))
            self.release_held()

    def release_held(self) -> None:
        """Publish the answers held back while an arrival was measured."""
        with self._cond:
            held, self._held = self._held, []
        for client, device_id, command_id, broadcast_id in held:
            client.publish(
                protocol.device_event_topic(device_id),
                _received(device_id, command_id, broadcast_id),
                qos=1,
            )


# --- reading /proc --------------------------------------------------------------------------------


def process_memory(pid: int) -> dict[str, float]:
    """RSS, PSS, USS and peak RSS (VmHWM) of one process in MB; empty once it is gone."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, value = line.partition(":")
            fields[name.strip()] = int(value.split()[0])
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError, IndexError):
        return {}
    peak = next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
    )
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {
        "rss_mb": fields.get("Rss", 0) / KB_PER_MB,
        "pss_mb": fields.get("Pss", 0) / KB_PER_MB,
        "uss_mb": uss / KB_PER_MB,
        "peak_rss_mb": peak / KB_PER_MB,
    }


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants that are alive now (from /proc/PID/task/*/children)."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 10_000:
        current = pending.pop()
        if not Path(f"/proc/{current}").exists():
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


# --- processes ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, with that of its children that exited and
    were reaped (a database's short-lived backends); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (MB) summed over a process and its descendants."""
    total = {"rss_mb": 0.0, "pss_mb": 0.0, "uss_mb": 0.0}
    for member in process_tree(pid):
        memory = process_memory(member)
        for key in total:
            total[key] += memory.get(key, 0.0)
    return total


class Gunicorn:
    """`gunicorn web.wsgi:app` as docs/deployment.md starts it; output to a log file."""

    def __init__(self, folder: Path, port: int, env: dict[str, str], workers: int, threads: int):
        self.log_path = folder / "gunicorn.log"
        self.workers = workers
        full_env = {**os.environ, **env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn",
                    "--workers", str(workers),
                    "--threads", str(threads),
                    "--bind", f"{LOOPBACK}:{port}",
                    "--graceful-timeout", "20",
                    "web.wsgi:app",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(REPO),
            )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_serving(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(set(re.findall(r"web worker (\d+) serving", self.log))) >= self.workers:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(
            f"gunicorn workers not serving within {timeout_s} s:\n{self.log[-3000:]}"
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def list_devices(base: str, token: str) -> list[dict[str, Any]]:
    """Every receiver the token may see, a page of 1,000 at a time (at most 100 pages)."""
    found: list[dict[str, Any]] = []
    for page in range(1, 101):
        response = requests.get(
            f"{base}/api/v1/devices?per_page=1000&page={page}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT_S * 3,
        )
        response.raise_for_status()
        found += response.json()
        if len(found) >= int(response.headers.get("X-Total-Count", len(found))):
            break
    return found


def wait_devices(base: str, token: str, count: int, timeout_s: float) -> float:
    """Until every receiver is online and has its manifest; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = list_devices(base, token)
        if len(seen) == count and all(d["online"] and d["manifest_published_at"] for d in seen):
            return time.monotonic() - started
        time.sleep(1.0)
    online = sum(1 for d in seen if d["online"])
    manifests = sum(1 for d in seen if d["manifest_published_at"])
    raise RuntimeError(f"{online}/{count} online, {manifests} manifests within {timeout_s} s")


@dataclass
class Stack:
    """The running server side of one benchmark: broker, database, gunicorn."""

    folder: Path
    base: str
    province: Province
    broker: MosquittoBroker
    gunicorn: Gunicorn
    postgres: Any = None
    mqtt_port: int = 0
    settings: Settings | None = None

    def stop(self) -> None:
        self.gunicorn.stop()
        self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_stack(
    receivers: int,
    users: int,
    database: str,
    workers: int,
    threads: int,
    tree: Tree | None = None,
    extra_broker_users: tuple[BrokerUser, ...] = (),
) -> tuple[Stack, dict[str, float]]:
    """Seed a province in a fresh data directory (`seed_tree(tree)` when given, else
    `seed_province`), then start mosquitto (with `extra_broker_users` besides the server's and
    the receivers' logins) and gunicorn on it."""
    folder = Path(tempfile.mkdtemp(prefix="loa-bench-web-"))
    os.chmod(folder, 0o755)  # PostgreSQL runs as its own user under root
    timings: dict[str, float] = {}
    port, mqtt_port, server_mqtt_port = free_port(), free_port(), free_port()
    postgres, database_url = None, ""
    if database == "postgresql":
        sys.path.insert(0, str(REPO / "tests"))
        from postgres import PostgresServer

        postgres = PostgresServer(folder / "postgres")
        postgres.start()
        database_url = postgres.create_database("loa")
    data = folder / "var"
    settings = Settings(
        data_dir=data,
        port=port,
        mqtt_port=server_mqtt_port,  # the server's own listener on mosquitto
        device_mqtt_port=mqtt_port,  # the receivers'
        host=LOOPBACK,
        database_url=database_url,
    )
    started = time.monotonic()
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        if tree is not None:
            province = seed_tree(service, tree)
        else:
            province = seed_province(service, receivers, users)
        with service.db.session() as session:
            access = registry.broker_access(session, service.secrets.mqtt_password)
        access = BrokerAccess(users=(*access.users, *extra_broker_users))
    finally:
        service.stop()
    timings["seed_s"] = time.monotonic() - started
    broker = MosquittoBroker(
        folder / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    env = {
        "LOA_DATA_DIR": str(data),
        "LOA_HOST": LOOPBACK,
        "LOA_PORT": str(port),
        "LOA_MQTT_HOST": LOOPBACK,
        "LOA_MQTT_PORT": str(server_mqtt_port),
        "LOA_DATABASE_URL": database_url,
        "LOA_LOG_LEVEL": "INFO",
    }
    started = time.monotonic()
    gunicorn = Gunicorn(folder, port, env, workers, threads)
    stack = Stack(
        folder, f"http://{LOOPBACK}:{port}", province, broker, gunicorn, postgres, mqtt_port,
        settings,
    )  # fmt: skip
    try:
        gunicorn.wait_serving()
    except BaseException:
        stack.stop()
        raise
    timings["gunicorn_start_s"] = time.monotonic() - started
    return stack, timings


class ReceiverFleet:
    """The simulated receivers, spread over worker processes, heartbeating at even phases."""

    def __init__(
        self,
        port: int,
        device_ids: list[str],
        period_s: float,
        listens: dict[str, list[str]] | None = None,
        per_process: int = CLIENTS_PER_PROCESS,
        nice: int = 0,
    ) -> None:
        """With `listens` (device id → zones), every receiver also subscribes to its zones'
        command topics and `arrived` says when commands reached them all; `hold_answers`, while
        set, makes them plain subscribers that answer only after `arrived` has measured them.
        `nice`: the receivers' processes' niceness."""
        context = mp.get_context("spawn")
        self.ready, self.results, self.stop_event = (
            context.Queue(),
            context.Queue(),
            context.Event(),
        )
        self.answers = context.Queue()
        self.hold_answers = context.Event()
        workers = max(1, -(-len(device_ids) // per_process))
        self.jobs = [context.Queue() for _ in range(workers)]
        self._job_no = 0
        start_at = time.monotonic() + 5.0
        total = len(device_ids)
        phases = [n * period_s / total for n in range(total)]
        topics = (
            [[protocol.zone_command_topic(z) for z in listens[d]] for d in device_ids]
            if listens is not None
            else None
        )
        self.processes = [
            context.Process(
                target=_receivers_worker,
                args=(
                    port,
                    device_ids[w::workers],
                    phases[w::workers],
                    start_at,
                    period_s,
                    self.ready,
                    self.results,
                    self.stop_event,
                    topics[w::workers] if topics is not None else None,
                    w,
                    self.jobs[w],
                    self.answers,
                    self.hold_answers,
                    nice,
                ),
            )
            for w in range(workers)
        ]
        for process in self.processes:
            process.start()
        self.expected = total

    def wait_connected(self, timeout_s: float = 180.0) -> int:
        deadline = time.monotonic() + timeout_s
        return sum(
            self.ready.get(timeout=max(1.0, deadline - time.monotonic())) for _ in self.processes
        )

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes if p.pid)

    def arrived(self, since: float, crcs: set[int], timeout_s: float) -> tuple[float, int]:
        """(the moment the last receiver had one of `crcs` arrived after `since`, how many
        receivers had one): every worker process answers for its own receivers."""
        self._job_no += 1
        for jobs in self.jobs:
            jobs.put((self._job_no, since, sorted(crcs), timeout_s))
        last, count, pending = 0.0, 0, len(self.jobs)
        deadline = time.monotonic() + timeout_s + 30
        while pending and time.monotonic() < deadline:
            try:
                _worker, job_no, at, have = self.answers.get(timeout=1.0)
            except queue.Empty:
                continue
            if job_no == self._job_no:
                pending -= 1
                last, count = max(last, at), count + have
        return last, count

    def stop(self) -> dict[str, int]:
        self.stop_event.set()
        for jobs in self.jobs:
            jobs.put(None)
        totals = {"published": 0, "failed": 0}
        for _ in self.processes:
            with contextlib.suppress(queue.Empty):
                for key, value in self.results.get(timeout=60).items():
                    totals[key] += value
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        return totals


def mosquitto_pid(broker: MosquittoBroker) -> int | None:
    process = broker._process
    return process.pid if process is not None else None
