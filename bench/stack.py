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
from dataclasses import dataclass
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
from broadcast.fleet.brokers.access import hash_password  # noqa: E402
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
    _add_history(service, communes, admin_id)
    return Province(device_ids, made, admin_token)


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
) -> None:
    """Receivers in one process: connect as the agent does, then publish the retained state every
    `period_s` at their own phase (monotonic `start_at + phase + k * period_s`)."""
    data_dir = Path(tempfile.gettempdir())
    started_at = time.time()
    boot_id = os.urandom(8).hex()
    connected = threading.Semaphore(0)
    clients: list[mqtt.Client] = []

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

    for device_id in device_ids:
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
        ) -> None:
            if not reason.is_failure:  # the agent publishes its state on every (re)connect
                c.publish(topic, status(device_id, protocol.ReceiverState.IDLE), 1, True)
                connected.release()

        client.on_connect = on_connect
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
    response = requests.get(
        f"{base}/api/v1/devices?per_page=1000",
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_S * 3,
    )
    response.raise_for_status()
    return list(response.json())


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
    receivers: int, users: int, database: str, workers: int, threads: int
) -> tuple[Stack, dict[str, float]]:
    """Seed a province in a fresh data directory, then start mosquitto and gunicorn on it."""
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
        province = seed_province(service, receivers, users)
        with service.db.session() as session:
            access = registry.broker_access(session, service.secrets.mqtt_password)
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

    def __init__(self, port: int, device_ids: list[str], period_s: float) -> None:
        context = mp.get_context("spawn")
        self.ready, self.results, self.stop_event = (
            context.Queue(),
            context.Queue(),
            context.Event(),
        )
        workers = max(1, -(-len(device_ids) // CLIENTS_PER_PROCESS))
        start_at = time.monotonic() + 5.0
        total = len(device_ids)
        phases = [n * period_s / total for n in range(total)]
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

    def stop(self) -> dict[str, int]:
        self.stop_event.set()
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
