"""Text to sound at commune scale, and the synchronized start: issue 6, benchmarks 2 and 3.

2. A 300-character urgent text → every one of N receivers has started playback: announce call
   (HTTP POST /api/v1/announcements) → synthesis, encoding, signing, dispatch over mosquitto →
   each receiver verifies the command, downloads the MP3 over HTTP from the server's media
   endpoint, checks its sha256 and starts. p50/p99 over the rounds of "announce → the LAST
   receiver has started", next to the floor measured in the same run: synthesis + encoding of
   the same text alone, in this process, with nothing else running.
3. The spread of the actual start instants across the N receivers for one `play_at`
   (max − min per round), each receiver's offset from `play_at`, and the floor: as many bare
   threads doing the agent's own wait for one moment, laid out like the fleet, each holding
   still once started as a playing receiver's thread does.

A phase per emergency play lead (`loa serve --play-lead`, the server restarted in between):
lead 0 measures the pipeline itself (each receiver starts as soon as it has the verified media;
benchmark 2's goal is checked there), the product's 3 s lead the synchronized start (benchmark
3's goal is checked on the longest lead).

Real parts only, loopback only: mosquitto (as a province would run), `loa serve` (web, dispatcher,
answer-back, SQLite) with espeak-ng, and `loa fleet` processes running N real `ReceiverAgent`s
with the file player, their files on tmpfs by default (see TMPFS). Every text is different (no
synthesis or render cache hit) and one unmeasured warm-up round goes first in each phase. Every
loop is bounded in count and time.

Clocks: all processes share the host's CLOCK_REALTIME (`time.time()`). The announce instant is
taken here just before the POST; the dispatch instant is the server's own (`play_at` − lead,
exact to the millisecond); `received` and `fetched` are the receivers' answer-back events (`at` =
their `time.time()`); a receiver's start is the file player's `started_at` in `played.jsonl`,
taken as its `play()` begins (the agent's `started` event carries the same instant, a few µs
earlier, and is reported too).

    python bench/text_to_sound.py --receivers 200 --rounds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import audio  # noqa: E402
import tts  # noqa: E402
from broadcast.const import SERVER_MQTT_USERNAME  # noqa: E402
from broadcast.fleet import registry  # noqa: E402
from broadcast.fleet.brokers import wait_for_port  # noqa: E402
from broadcast.fleet.brokers.mosquitto import MosquittoBroker  # noqa: E402
from broadcast.service import BroadcastService  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.db import Database  # noqa: E402
from broadcast.store.models import Schedule, User  # noqa: E402
from devices.playback import wait_until  # noqa: E402
from devices.players.file_sink import PLAYED_LOG  # noqa: E402
from devices.starts import SETTLE_S  # noqa: E402
from loa import seed  # noqa: E402
from wire import protocol  # noqa: E402

_LOGGER = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
COMMUNE = seed.COMMUNE[0]
TEXT_CHARS = 300
GOAL_LAST_STARTED_P99_S = 2.0
GOAL_SPREAD_P99_S = 0.005
SETUP_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 30.0
RECEIVERS_PER_TIMEOUT = 500  # beyond this many receivers a round may wait longer, in proportion
# Before each announcement the system is at rest: the server has written the last round's
# answer-back and the receivers have published their states (CPU use below IDLE_CPU_SHARE of a
# core over a SETTLE_STEP_S window), or SETTLE_MAX_S has passed.
SETTLE_STEP_S = 0.25
SETTLE_MAX_S = 10.0
IDLE_CPU_SHARE = 0.1
STOP_TIMEOUT_S = 30.0
DEFAULT_PLAY_LEAD_S = Settings.play_lead_s  # the product's emergency lead (3 s)
# Where the simulated receivers keep their files. On one host N receivers share one disk, whose
# journal serializes their fsyncs (replay memory, queue, cache: several per command each); real
# receivers fsync on their own SD cards in parallel. `tmpfs` gives each its own cheap storage.
TMPFS, DISK = "tmpfs", "disk"
SHM = "/dev/shm"
# Real receivers each have a CPU of their own; one `loa fleet` process for all of them would
# make 200 receivers (800 threads) take turns on one GIL, which costs them more CPU than their
# work (measured: 2.7 CPU-s per announcement in 1 process, 1.4 in 4). A few processes use the
# host's cores as receivers would; one per receiver would cost 200 interpreters.
DEFAULT_FLEET_PROCESSES = 4
MAX_AGENTS_PER_PROCESS = 250
VILLAGES_PER_COMMUNE = 5
WAKE_FLOOR_LEAD_S = 0.5  # the bare threads are started this long before their common moment
WAKE_FLOOR_HOLD_S = 0.2  # and end this long after it
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Sentences of urgent notices (bão, lũ, mất điện, …); `{…}` fields differ per round.
_SENTENCES = (
    "Thông báo khẩn của Ủy ban nhân dân xã Hoằng Hợp về cơn bão số {n} đang tiến vào đất liền.",
    "Đề nghị bà con thôn {v} khẩn trương gia cố nhà cửa, chằng chống mái tôn trước {h} giờ.",
    "Các hộ ở vùng trũng thấp ven sông Mã đưa người già, trẻ em đến nhà văn hóa thôn {w}.",
    "Tàu thuyền đang hoạt động trên biển phải vào nơi trú ẩn an toàn trước {h} giờ {m} phút.",
    "Lượng mưa dự báo từ {a} đến {b} mm, nguy cơ lũ quét và sạt lở đất rất cao.",
    "Điện lực sẽ cắt điện toàn xã từ {h} giờ {m} phút ngày {d}/{mo} để bảo đảm an toàn.",
    "Mọi thông tin xin gọi số 0237 386 {p} của Ban chỉ huy phòng chống thiên tai xã.",
    "Lực lượng dân quân, công an xã trực tại trụ sở Ủy ban nhân dân xã suốt đêm nay.",
    "Không ra đồng, không đánh bắt thủy sản, không qua ngầm tràn khi nước chảy xiết.",
    "Trường tiểu học và trường trung học cơ sở cho học sinh nghỉ học ngày {d} tháng {mo}.",
    "Trạm y tế xã chuẩn bị sẵn thuốc men và xe cứu thương, trực cấp cứu {k} giờ liên tục.",
    "Đề nghị các trưởng thôn báo cáo tình hình về Ủy ban nhân dân xã trước {h} giờ {m} phút.",
)


def urgent_texts(count: int, chars: int = TEXT_CHARS) -> list[str]:
    """`count` different urgent notices of about `chars` characters (cut at a word boundary)."""
    texts: list[str] = []
    for index in range(count):
        fields = {
            "n": index + 3,
            "v": index % 9 + 1,
            "w": (index + 4) % 9 + 1,
            "h": 13 + index % 8,
            "m": (index * 7) % 60,
            "a": 100 + 10 * index,
            "b": 250 + 15 * index,
            "d": index % 28 + 1,
            "mo": index % 12 + 1,
            "p": 1000 + 37 * index,
            "k": 24 + index,
        }
        parts: list[str] = []
        position = index
        while sum(len(part) + 1 for part in parts) <= chars:
            parts.append(_SENTENCES[position % len(_SENTENCES)].format(**fields))
            position += 1
        text = " ".join(parts)[: chars - 1]
        text = text[: text.rfind(" ")].rstrip(",;:") + "."
        texts.append(text)
    if len(set(texts)) != count or len({tts.normalize(t) for t in texts}) != count:
        raise RuntimeError("the benchmark texts are not all different")
    return texts


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (`fanout.py`'s): with fewer than 100 values p99 is the max."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": statistics.median(values),
        "p99_s": _pct(values, 0.99),
        "max_s": max(values),
    }


class _Child:
    """A process of ours, output to a log file, in its own process group; stopped by its own
    handle (SIGINT, then SIGKILL of its group if it hangs)."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_s(self) -> float:
        """User + system CPU time of the process (all its threads) so far."""
        return _cpu_s(self.process.pid)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class AnswerBack:
    """Hears every receiver's state and events as the server does (the server's broker user,
    another client id): what each receiver reported, per broadcast and kind, with its `at`."""

    def __init__(self, port: int, password: str) -> None:
        self._cond = threading.Condition()
        self.events: dict[tuple[int, str], dict[str, float]] = {}
        self.states: dict[str, str] = {}
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="loa-bench-answerback",
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(SERVER_MQTT_USERNAME, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(LOOPBACK, port, keepalive=60)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the answer-back listener could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe([(protocol.STATE_TOPIC_FILTER, 1), (protocol.EVENT_TOPIC_FILTER, 1)])

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic.endswith("/event"):
                event = protocol.DeviceEvent.from_json(message.payload)
                if event.broadcast_id is None:
                    return
                with self._cond:
                    key = (event.broadcast_id, event.kind.value)
                    self.events.setdefault(key, {}).setdefault(event.device_id, event.at)
                    self._cond.notify_all()
            elif message.topic.endswith("/state"):
                status = protocol.DeviceStatus.from_json(message.payload)
                with self._cond:
                    self.states[status.device_id] = status.state.value
                    self._cond.notify_all()
        except protocol.ProtocolError as exc:
            _LOGGER.warning("unreadable answer-back on %s: %s", message.topic, exc)

    def wait_online(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                online = sum(1 for state in self.states.values() if state != "offline")
                if online >= count:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"only {online} of {count} receivers online")
                self._cond.wait(min(left, 1.0))

    def wait_events(
        self, broadcast_id: int, kind: str, count: int, timeout_s: float
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                got = self.events.get((broadcast_id, kind), {})
                if len(got) >= count:
                    return dict(got)
                left = deadline - time.monotonic()
                if left <= 0:
                    failed = self.events.get((broadcast_id, "failed"), {})
                    raise RuntimeError(
                        f"broadcast {broadcast_id}: {len(got)} of {count} receivers reported "
                        f"{kind!r} in time; failed: {len(failed)}"
                    )
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _wake_trial(count: int, moment: float) -> tuple[float, float]:
    """`count` bare threads doing the agent's wait for one common moment: (first, last) start.
    Once started, each holds still (as a receiver's thread then plays) until every thread has
    had time to start: threads ending, and being joined, would be work of their own."""
    starts = [0.0] * count
    hold = threading.Event()

    def play(index: int) -> None:
        if wait_until(moment, threading.Event()):  # each run has a cancel event of its own
            starts[index] = time.time()
        hold.wait(10)

    threads = [threading.Thread(target=play, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, moment - time.time()) + WAKE_FLOOR_HOLD_S)
    hold.set()
    for thread in threads:
        thread.join(timeout=10)
    if not all(starts):
        raise RuntimeError("a bare thread of the start-spread floor did not start")
    return min(starts), max(starts)


def _wake_floor_worker(jobs: Any, results: Any) -> None:
    """The floor of the start spread, in a process laid out like a fleet process: bare threads,
    each doing the agent's own wait (`devices.playback.wait_until`), then holding still, nothing
    else running."""
    for _ in range(10_000):
        job = jobs.get(timeout=3600)
        if job is None:
            return
        results.put(_wake_trial(*job))


class WakeFloor:
    """As many processes of bare threads as the fleet has, measuring the host's own start
    spread for as many receivers (see the worker)."""

    def __init__(self, processes: int) -> None:
        context = mp.get_context("spawn")
        self._results = context.Queue()
        self._workers: list[tuple[Any, Any]] = []
        for _ in range(processes):
            jobs = context.Queue()
            worker = context.Process(
                target=_wake_floor_worker, args=(jobs, self._results), daemon=True
            )
            worker.start()
            self._workers.append((jobs, worker))
        self.measure(processes)  # not counted: waits until every worker has started

    def measure(self, count: int) -> float:
        moment = time.time() + WAKE_FLOOR_LEAD_S
        workers = len(self._workers)
        for index, (jobs, _worker) in enumerate(self._workers):
            jobs.put((len(range(index, count, workers)), moment))
        spans = [self._results.get(timeout=30) for _ in self._workers]
        return max(last for _first, last in spans) - min(first for first, _last in spans)

    def close(self) -> None:
        for jobs, _worker in self._workers:
            jobs.put(None)
        for _jobs, worker in self._workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()


def _api(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _player_starts(receivers_dir: Path, device_ids: list[str], broadcast_id: int) -> list[float]:
    """Each receiver's file-player start of `broadcast_id` (epoch seconds), from played.jsonl."""
    starts = []
    for device_id in device_ids:
        log = receivers_dir / device_id / "played" / PLAYED_LOG
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        found = [
            datetime.fromisoformat(entry["started_at"]).timestamp()
            for entry in map(json.loads, filter(None, lines))
            if entry["broadcast_id"] == broadcast_id
        ]
        if len(found) != 1:
            raise RuntimeError(f"{device_id} played broadcast {broadcast_id} {len(found)} times")
        starts.append(found[0])
    return starts


class Floor:
    """Synthesis and encoding of a text alone, here, with nothing else running: the work no
    pipeline can skip before the first receiver can download anything."""

    def __init__(self, folder: Path) -> None:
        self.synthesizer = tts.Synthesizer(folder / "tts-floor")
        self.synthesizer.synthesize("Khởi động bộ đọc.")  # load espeak-ng once, as the server has
        audio.render_announcement([self.synthesizer.synthesize("Khởi động.").path])

    def measure(self, text: str) -> tuple[float, float, int]:
        started = time.perf_counter()
        speech = self.synthesizer.synthesize(text)
        synthesized = time.perf_counter()
        data = audio.render_announcement([speech.path])
        encoded = time.perf_counter()
        if speech.cached:
            raise RuntimeError("the floor's synthesis came from the cache")
        return synthesized - started, encoded - synthesized, len(data)


def _prepare(
    folder: Path,
    receivers: int,
    play_lead_s: float,
    receiver_storage: Path | None,
    communes: int = 0,
    villages: int = VILLAGES_PER_COMMUNE,
) -> tuple[Settings, str, str, list[str]]:
    """Seed a commune with `receivers` file-player receivers (or, with `communes`, a province
    of that many communes of `villages` villages, the receivers spread over them); return
    settings, API token, the server's broker password and the zones an announcement targets
    (the commune, or every commune). The demo's daily bulletins are cancelled: only the rounds'
    announcements play. With `receiver_storage`, the receivers keep their files there (their
    data directories are under the server's `receivers/`, which becomes a link to it)."""
    settings = Settings(
        data_dir=folder / "server",
        port=_free_port(),
        mqtt_port=_free_port(),  # the server's own listener on mosquitto
        device_mqtt_port=_free_port(),  # the receivers'
        play_lead_s=play_lead_s,
    )
    if receiver_storage is not None:
        settings.data_dir.mkdir(parents=True)
        settings.receivers_dir.symlink_to(receiver_storage, target_is_directory=True)
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        if communes:
            demo = seed.seed_province_demo(service, receivers, communes, villages, realtime=False)
            targets = [commune for commune, _villages in seed.province_zone_ids(communes, villages)]
        else:
            demo = seed.seed_demo(service, receivers=receivers, realtime=False)
            targets = [COMMUNE]
        with service.db.session() as session:
            admin = session.query(User).filter(User.username == "admin").one().id
            daily = [s.id for s in session.query(Schedule).filter(Schedule.active.is_(True))]
        for schedule_id in daily:
            service.scheduling.cancel(admin, schedule_id)
        password = service.secrets.mqtt_password
    finally:
        service.stop()
    return settings, demo.api_token, password, targets


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _split_fleet(devices_dir: Path, folder: Path, processes: int) -> list[Path]:
    """The receiver configs in `processes` folders (round-robin), one `loa fleet` each."""
    files = sorted(devices_dir.glob("*.json"))
    dirs = []
    for index in range(processes):
        target = folder / f"fleet-{index}"
        target.mkdir(parents=True)
        for path in files[index::processes]:
            shutil.copy2(path, target / path.name)
        dirs.append(target)
    return dirs


def _round(
    base: str,
    token: str,
    answers: AnswerBack,
    settings: Settings,
    lead_s: float,
    device_ids: list[str],
    text: str,
    processes: dict[str, list[Any]],
    zones: list[str],
) -> dict[str, Any]:
    """One urgent announcement to `zones` (the whole commune, or every commune of a province);
    every instant of it (epoch seconds) and the CPU time each kind of process spent on it."""
    count = len(device_ids)
    cpu_before = {k: sum(c.cpu_s() for c in group) for k, group in processes.items()}
    announced = time.time()
    status, body = _api(
        "POST",
        f"{base}/api/v1/announcements",
        token,
        {"text": text, "zones": zones, "priority": "emergency", "repeat": 1},
    )
    answered = time.time()
    if status != 201:
        raise RuntimeError(f"announce answered HTTP {status}: {body}")
    broadcast_id = int(body["id"])
    # 2,000 agents on 2 cores (a province) take longer than 200: the wait grows with them
    timeout = lead_s + ROUND_TIMEOUT_S * max(1.0, count / RECEIVERS_PER_TIMEOUT)
    fetched = answers.wait_events(broadcast_id, "fetched", count, timeout)
    cpu_ready = {k: sum(c.cpu_s() for c in group) for k, group in processes.items()}
    started = answers.wait_events(broadcast_id, "started", count, timeout)
    answers.wait_events(broadcast_id, "finished", count, timeout)  # the next round starts clean
    received = answers.wait_events(broadcast_id, "received", count, 1.0)
    cpu_after = {k: sum(c.cpu_s() for c in group) for k, group in processes.items()}
    view = _dispatched_view(base, token, broadcast_id)
    play_at = datetime.fromisoformat(view["play_at"]).timestamp()
    return {
        "cpu_s": {k: cpu_after[k] - cpu_before[k] for k in cpu_after},
        # from the moment the bench heard the last `fetched` to the last `finished`: every
        # receiver's start and end of play and what it reports about them
        "cpu_from_ready_s": {k: cpu_after[k] - cpu_ready[k] for k in cpu_after},
        "chars": len(text),
        "announced": announced,
        "api_answered": answered,
        "dispatched": play_at - lead_s,  # the server's own clock: play_at = now + lead
        "play_at": play_at,
        "received": [received[d] for d in device_ids],
        "fetched": [fetched[d] for d in device_ids],
        "started": [started[d] for d in device_ids],
        "player_started": _player_starts(settings.receivers_dir, device_ids, broadcast_id),
        "media_bytes": _media_size(settings, view.get("media_sha256")),
    }


def _dispatched_view(base: str, token: str, broadcast_id: int) -> dict[str, Any]:
    """The broadcast as the API shows it once marked dispatched (the server records that after
    publishing, so fast receivers may have finished before it is written)."""
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while True:
        status, view = _api("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        if status == 200 and view["play_at"] is not None:
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"broadcast {broadcast_id}: HTTP {status}, not marked dispatched")
        time.sleep(0.1)


def _media_size(settings: Settings, sha256: str | None) -> int:
    if not sha256:
        return 0
    return audio.MediaStore(settings.media_dir).path(sha256).stat().st_size


def _analyse(
    lead_s: float,
    rounds: list[dict[str, Any]],
    floors: list[tuple[float, float, int]],
    wake: list[float],
) -> dict[str, Any]:
    """One phase (one play lead): per-round figures, then their p50/p99 over the rounds."""
    receivers = len(rounds[0]["started"])
    last_started = [max(r["player_started"]) - r["announced"] for r in rounds]
    ready = [max(r["fetched"]) - r["announced"] for r in rounds]
    spread = [max(r["player_started"]) - min(r["player_started"]) for r in rounds]
    offsets = [s - r["play_at"] for r in rounds for s in r["player_started"]]
    not_ready = sum(1 for r in rounds for f in r["fetched"] if f > r["play_at"])
    synthesis = [f[0] for f in floors]
    encoding = [f[1] for f in floors]

    def per_receiver_ms(key: str, kind: str) -> float:
        return statistics.median(r[key][kind] for r in rounds) / receivers * 1000

    return {
        "play_lead_s": lead_s,
        "rounds": len(rounds),
        "last_started": _summary(last_started),
        "ready": _summary(ready),
        "stages": {
            "api_answer": _summary([r["api_answered"] - r["announced"] for r in rounds]),
            "announce_to_dispatch": _summary([r["dispatched"] - r["announced"] for r in rounds]),
            "dispatch_to_last_received": _summary(
                [max(r["received"]) - r["dispatched"] for r in rounds]
            ),
            "dispatch_to_last_fetched": _summary(
                [max(r["fetched"]) - r["dispatched"] for r in rounds]
            ),
            "received_to_fetched_each": _summary(
                [f - v for r in rounds for f, v in zip(r["fetched"], r["received"], strict=True)]
            ),
            "last_fetched_to_last_started": _summary(
                [max(r["player_started"]) - max(r["fetched"]) for r in rounds]
            ),
        },
        "floor": {
            "synthesis": _summary(synthesis),
            "encoding": _summary(encoding),
            "synthesis_plus_encoding": _summary(
                [a + b for a, b in zip(synthesis, encoding, strict=True)]
            ),
        },
        "spread": _summary(spread),
        "agent_spread": _summary([max(r["started"]) - min(r["started"]) for r in rounds]),
        "wake_floor_spread": _summary(wake),
        "offset_from_play_at": {
            "p50_s": statistics.median(offsets),
            "p99_s": _pct(offsets, 0.99),
            "max_s": max(offsets),
        },
        "not_ready_at_play_at": not_ready,
        "cpu_per_round_s": {
            kind: statistics.median(r["cpu_s"][kind] for r in rounds) for kind in rounds[0]["cpu_s"]
        },
        # the CPU work of one announcement spread over every core: no order of that work can
        # have the last receiver ready sooner on this machine
        "cpu_bound_s": statistics.median(sum(r["cpu_s"].values()) for r in rounds)
        / (os.cpu_count() or 1),
        "fleet_cpu_per_receiver_ms": per_receiver_ms("cpu_s", "fleet"),
        "server_cpu_per_receiver_ms": per_receiver_ms("cpu_s", "server"),
        "fleet_cpu_from_ready_per_receiver_ms": per_receiver_ms("cpu_from_ready_s", "fleet"),
        "media_bytes": statistics.median(r["media_bytes"] for r in rounds),
        "chars": [min(r["chars"] for r in rounds), max(r["chars"] for r in rounds)],
        "per_round_last_started_s": [round(v, 4) for v in last_started],
        "per_round_spread_ms": [round(v * 1000, 3) for v in spread],
    }


class Server:
    """`loa serve` on the benchmark's data directory, restarted with another play lead between
    phases (the broker, the receivers and their sessions stay)."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.child: _Child | None = None
        self.starts = 0

    def start(self, lead_s: float) -> _Child:
        self.starts += 1
        settings = self.settings
        self.child = _Child(
            [
                sys.executable, "-m", "loa.cli", "--log-level", "WARNING", "serve",
                "--data", str(settings.data_dir), "--port", str(settings.port),
                "--mqtt-port", str(settings.mqtt_port), "--play-lead", repr(lead_s),
            ],
            self.folder / f"server-{self.starts}.log",
        )  # fmt: skip
        if not _wait_port(settings.port, self.child):
            raise RuntimeError(f"loa serve did not listen:\n{self.child.tail()}")
        return self.child

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None


class _Pid:
    """A process we did not start as a `_Child` (the broker), read the same way."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_s(self) -> float:
        try:
            return _cpu_s(self.pid)
        except OSError:
            return 0.0


def run(
    receivers: int,
    rounds: int,
    leads: list[float],
    fleet_processes: int = DEFAULT_FLEET_PROCESSES,
    storage: str = TMPFS,
    communes: int = 0,
    villages: int = VILLAGES_PER_COMMUNE,
) -> dict[str, Any]:
    """Set everything up once, then for each play lead: restart the server with it, one
    unmeasured warm-up announcement, `rounds` measured ones. With `communes`, the receivers
    are spread over a province of that many communes and each announcement targets them all."""
    # paho's select() watches fds < 1024: an agent holds three, so at most 250 per process
    fleet_processes = max(fleet_processes, -(-receivers // MAX_AGENTS_PER_PROCESS))
    folder = Path(tempfile.mkdtemp(prefix="loa-bench-tts-"))
    receiver_storage = (
        Path(tempfile.mkdtemp(prefix="loa-bench-receivers-", dir=SHM)) if storage == TMPFS else None
    )
    fleets: list[_Child] = []
    broker: MosquittoBroker | None = None
    server: Server | None = None
    answers: AnswerBack | None = None
    wake_floor: WakeFloor | None = None
    texts = urgent_texts(len(leads) * (rounds + 1))
    try:
        began = time.monotonic()
        settings, token, password, zones = _prepare(
            folder, receivers, leads[0], receiver_storage, communes, villages
        )
        database = Database(settings.database_url)
        with database.session() as session:
            access = registry.broker_access(session, password)
        database.dispose()
        broker = MosquittoBroker(
            folder / "mosquitto",
            LOOPBACK,
            settings.receiver_mqtt_port,
            access,
            server_port=settings.mqtt_port,
        )
        broker.start()
        server = Server(settings, folder)
        server.start(leads[0])
        answers = AnswerBack(settings.mqtt_port, password)
        for index, config_dir in enumerate(
            _split_fleet(settings.devices_dir, folder, fleet_processes)
        ):
            argv = [sys.executable, "-m", "devices.fleet", "--config-dir", str(config_dir)]
            fleets.append(_Child([*argv, "--log-level", "WARNING"], folder / f"fleet-{index}.log"))
        answers.wait_online(receivers, SETUP_TIMEOUT_S)
        wake_floor = WakeFloor(fleet_processes)
        floor = Floor(folder)
        device_ids = sorted(p.stem for p in settings.devices_dir.glob("*.json"))
        setup_s = time.monotonic() - began
        base = f"http://{LOOPBACK}:{settings.port}"
        phases = []
        for phase, lead_s in enumerate(leads):
            if phase:
                server.stop()
                server.start(lead_s)
            assert server.child is not None
            broker_pid = broker._process.pid if broker._process is not None else 0
            processes: dict[str, list[Any]] = {
                "server": [server.child],
                "fleet": fleets,
                "broker": [_Pid(broker_pid)],
            }
            _settle(processes)  # manifests and states settle

            def announce(text: str, lead_s: float = lead_s, processes: Any = processes) -> Any:
                return _round(
                    base, token, answers, settings, lead_s, device_ids, text, processes, zones
                )

            batch = texts[phase * (rounds + 1) : (phase + 1) * (rounds + 1)]
            announce(batch[0])  # warm-up, not counted
            results, floors, wakes = [], [], []
            for text in batch[1:]:
                _settle(processes)
                got = announce(text)
                results.append(got)
                floors.append(floor.measure(text))
                wakes.append(wake_floor.measure(receivers))
                print(_progress(lead_s, len(results), got, wakes[-1]), file=sys.stderr, flush=True)
            phases.append(_analyse(lead_s, results, floors, wakes))
        children = [*fleets, *([server.child] if server.child else [])]
        for child in children:
            if not child.alive():
                raise RuntimeError(f"{child.log_path.name} exited:\n{child.tail()}")
        logs = sorted(folder.glob("*.log"))
        result = _result(receivers, rounds, fleet_processes, storage, setup_s, phases, logs)
        result["communes"] = communes
        result["zones"] = len(zones)
        return result
    finally:
        if wake_floor is not None:
            wake_floor.close()
        if answers is not None:
            answers.close()
        for child in reversed(fleets):
            child.stop()
        if server is not None:
            server.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
        if receiver_storage is not None:
            shutil.rmtree(receiver_storage, ignore_errors=True)


def _settle(processes: dict[str, list[Any]]) -> None:
    """Wait until the server and the receivers are idle (bounded by SETTLE_MAX_S)."""
    children = [child for group in processes.values() for child in group]
    before = sum(child.cpu_s() for child in children)
    for _ in range(round(SETTLE_MAX_S / SETTLE_STEP_S)):
        time.sleep(SETTLE_STEP_S)
        now = sum(child.cpu_s() for child in children)
        if now - before < IDLE_CPU_SHARE * SETTLE_STEP_S:
            return
        before = now


def _progress(lead_s: float, number: int, got: dict[str, Any], wake_s: float) -> str:
    starts = got["player_started"]
    return (
        f"lead {lead_s:g} s, round {number}: last started {max(starts) - got['announced']:.3f} s,"
        f" spread {(max(starts) - min(starts)) * 1e3:.1f} ms (bare threads {wake_s * 1e3:.1f} ms)"
        ", CPU " + ", ".join(f"{k} {v:.2f} s" for k, v in got["cpu_s"].items())
    )


def _result(
    receivers: int,
    rounds: int,
    fleet_processes: int,
    storage: str,
    setup_s: float,
    phases: list[dict[str, Any]],
    logs: list[Path],
) -> dict[str, Any]:
    """The JSON result; the goals are checked on the phases they are about: text to sound on
    the shortest lead (the pipeline itself), the spread on the longest (every receiver had time
    to be ready)."""
    fastest = min(phases, key=lambda p: p["play_lead_s"])
    synchronized = max(phases, key=lambda p: p["play_lead_s"])
    return {
        "benchmark": "text_to_sound",
        "receivers": receivers,
        "rounds": rounds,
        "fleet_processes": fleet_processes,
        "receiver_storage": storage,
        "broker": "mosquitto",
        "cores": os.cpu_count(),
        "setup_s": round(setup_s, 1),
        "default_play_lead_s": DEFAULT_PLAY_LEAD_S,
        "logs_with_tracebacks": [p.name for p in logs if "Traceback" in p.read_text("utf-8")],
        "phases": phases,
        "goal_last_started_p99_s": GOAL_LAST_STARTED_P99_S,
        "goal_spread_p99_s": GOAL_SPREAD_P99_S,
        "goal_met": fastest["last_started"]["p99_s"] < GOAL_LAST_STARTED_P99_S,
        "spread_goal_met": synchronized["spread"]["p99_s"] < GOAL_SPREAD_P99_S,
        "goal_phase_lead_s": fastest["play_lead_s"],
        "spread_phase_lead_s": synchronized["play_lead_s"],
    }


def _wait_port(port: int, child: _Child, timeout_s: float = SETUP_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            return False
        if wait_for_port(LOOPBACK, port, 0.2):
            return True
    return False


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def _s(value: float) -> str:
    return f"{value:.2f} s"


def table(result: dict) -> list[str]:
    """The markdown sections of bench/RESULTS.md for one result of `run`."""
    n, phases = result["receivers"], result["phases"]
    fastest = next(p for p in phases if p["play_lead_s"] == result["goal_phase_lead_s"])
    synced = next(p for p in phases if p["play_lead_s"] == result["spread_phase_lead_s"])
    lines = [
        f"## Text to sound: a 300-character urgent text to {n:,} receivers",
        "",
        f"Announce call (HTTP POST) → every one of {n:,} real receivers (`loa fleet`, "
        f"{result['fleet_processes']} process(es), file player, files on "
        f"{result['receiver_storage']}) has started playback: synthesis (espeak-ng), encoding, "
        "signing, dispatch over mosquitto, download over HTTP from `loa serve`, sha256 "
        f"verification. {result['rounds']} rounds per play lead, each a different text of "
        f"{fastest['chars'][0]}–{fastest['chars'][1]} characters (no cache hit), after one "
        f"warm-up; MP3 of {fastest['media_bytes'] / 1000:.0f} kB. Lead 0: each receiver starts "
        "as soon as it has the verified media (the pipeline itself); lead "
        f"{result['default_play_lead_s']:g} s: the product's synchronized emergency start. "
        "Floor: synthesis + encoding of the same text alone, in the same run, nothing else "
        f"running. Goal: p99 < {result['goal_last_started_p99_s']:g} s (on lead "
        f"{result['goal_phase_lead_s']:g} s).",
        "",
        "| play lead | announce → last started p50 | p99 | announce → last ready p50 | p99 "
        "| floor (synthesis + encoding) p50 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        lines.append(
            f"| {phase['play_lead_s']:g} s | {_s(phase['last_started']['p50_s'])} | "
            f"{_s(phase['last_started']['p99_s'])} | {_s(phase['ready']['p50_s'])} | "
            f"{_s(phase['ready']['p99_s'])} | "
            f"{_ms(phase['floor']['synthesis_plus_encoding']['p50_s'])} |"
        )
    stages = fastest["stages"]
    floor = fastest["floor"]
    rows = [
        ("announce → API answered 201 (stored, audited, queued)", "api_answer"),
        ("announce → dispatched (API, synthesis, encoding, signing)", "announce_to_dispatch"),
        ("dispatched → last receiver verified the command", "dispatch_to_last_received"),
        ("dispatched → last receiver downloaded and verified the MP3", "dispatch_to_last_fetched"),
        ("one receiver: command verified → MP3 verified", "received_to_fetched_each"),
        ("last MP3 verified → last start", "last_fetched_to_last_started"),
    ]
    lines += [
        "",
        f"Where the time goes at lead {fastest['play_lead_s']:g} s (dispatch = the server's "
        "`play_at` − lead):",
        "",
        "| stage | p50 | p99 |",
        "|---|---:|---:|",
        *(
            f"| {label} | {_ms(stages[key]['p50_s'])} | {_ms(stages[key]['p99_s'])} |"
            for label, key in rows
        ),
        f"| floor: synthesis alone | {_ms(floor['synthesis']['p50_s'])} | "
        f"{_ms(floor['synthesis']['p99_s'])} |",
        f"| floor: encoding alone (chime, loudness, MP3) | {_ms(floor['encoding']['p50_s'])} | "
        f"{_ms(floor['encoding']['p99_s'])} |",
        "",
        f"CPU per announcement (median): server {_s(fastest['cpu_per_round_s']['server'])} "
        f"({fastest['server_cpu_per_receiver_ms']:.1f} ms per receiver), receivers "
        f"{_s(fastest['cpu_per_round_s']['fleet'])} "
        f"({fastest['fleet_cpu_per_receiver_ms']:.1f} ms each)"
        + (
            f", mosquitto {_s(fastest['cpu_per_round_s']['broker'])}"
            if "broker" in fastest["cpu_per_round_s"]
            else ""
        )
        + f": on {result['cores']} cores no "
        f"order of that work has the last receiver ready sooner than "
        f"{_s(fastest['cpu_bound_s'])} after dispatch.",
        "",
        f"Goal met: **{'yes' if result['goal_met'] else 'no'}**.",
        *_why_slow(result, fastest),
        "",
        f"## Synchronized start across {n:,} receivers",
        "",
        "Spread of the actual start instants for one `play_at` (max − min per round: the file "
        "player's start, one host clock), and each receiver's offset from `play_at`, at lead "
        f"{synced['play_lead_s']:g} s. Floor: {n:,} bare threads in "
        f"{result['fleet_processes']} process(es), as the fleet, each doing the agent's own wait "
        "(`devices.playback.wait_until`) for one moment then holding still (as a playing "
        "receiver's thread does), nothing else running, in the same run. "
        f"Goal: spread p99 < {result['goal_spread_p99_s'] * 1000:g} ms.",
        "",
        "| play lead | start spread p50 | p99 | floor p50 | offset from `play_at` p50 | p99 | "
        "not ready at `play_at` |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in (p for p in phases if p["play_lead_s"] > 0):  # lead 0 starts unsynchronized
        lines.append(
            f"| {phase['play_lead_s']:g} s | {_ms(phase['spread']['p50_s'])} | "
            f"{_ms(phase['spread']['p99_s'])} | {_ms(phase['wake_floor_spread']['p50_s'])} | "
            f"{_ms(phase['offset_from_play_at']['p50_s'])} | "
            f"{_ms(phase['offset_from_play_at']['p99_s'])} | "
            f"{phase['not_ready_at_play_at']} of {phase['rounds'] * n:,} |"
        )
    lines += [
        "",
        f"CPU from the last receiver ready to the last one finished: "
        f"{synced['fleet_cpu_from_ready_per_receiver_ms']:.1f} ms per receiver. "
        f"Goal met: **{'yes' if result['spread_goal_met'] else 'no'}**.",
        *_why_spread(result, synced),
        "",
    ]
    return lines


def _why_slow(result: dict, phase: dict) -> list[str]:
    """The explanation of a missed text-to-sound goal, from the run's own numbers."""
    if result["goal_met"]:
        return []
    cpu = phase["cpu_per_round_s"]
    return [
        "",
        f"Why: {result['receivers']:,} simulated receivers and the server share "
        f"{result['cores']} cores. One announcement costs the server {_s(cpu['server'])} of CPU "
        "(answer-back written to the database, the MP3 served "
        f"{result['receivers']:,} times) and the receivers {_s(cpu['fleet'])} "
        f"({phase['fleet_cpu_per_receiver_ms']:.1f} ms each: the command verified and its "
        "replay memory and queue written atomically, the MP3 downloaded, hashed and written, "
        "events and state published), so the last receiver cannot be ready sooner than "
        f"{_s(phase['cpu_bound_s'])} after dispatch however the work is ordered; under load "
        "a fleet process's threads also spend CPU handing its one GIL around. On real "
        "receivers that work runs on each receiver's own CPU, in parallel.",
    ]


def _why_spread(result: dict, phase: dict) -> list[str]:
    """What the spread is made of, from the run's own numbers (why, if the goal is missed)."""
    n, floor = result["receivers"], phase["wake_floor_spread"]
    lead = "Why" if not result["spread_goal_met"] else "What keeps it near the floor"
    lines = [
        "",
        f"{lead}: {n:,} receivers start at one instant on {result['cores']} cores. Bare threads "
        f"alone spread by {_ms(floor['p50_s'])} (p50; p99 {_ms(floor['p99_s'])}): each must be "
        "woken and take its process's GIL in turn. A receiver's start does no more than that: "
        "its thread records the moment and launches the player. Everything that follows waits "
        "until no start of its process is imminent and "
        f"{SETTLE_S * 1000:g} ms past the moment (`devices.starts`; the margin is for the "
        "receivers of the other fleet processes, which a process cannot see): its `started` "
        "event and `playing` state, the file player's copy and log line, and here, the player "
        "returning at once, `finished`, the persisted programme and `idle`, "
        f"{phase['fleet_cpu_from_ready_per_receiver_ms']:.1f} ms of CPU per receiver from the "
        "last one ready to the last one finished. The rest above the floor is the fleet's "
        "heavier processes and the host, which now and then stalls a whole process for "
        "milliseconds or more, the bare threads' too (with "
        f"{phase['rounds']} rounds, p99 is the worst one). The fleet keeps Python's default GIL "
        "switch interval: 0.5 ms, tried, made the spread worse. A real receiver has its own "
        "CPU: nothing of another receiver's runs at its start.",
    ]
    if phase["not_ready_at_play_at"]:
        lines[-1] += (
            f" {phase['not_ready_at_play_at']} of {phase['rounds'] * n:,} starts had their "
            "media only after `play_at` (late by design: an item still valid plays at once)."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per play lead")
    parser.add_argument(
        "--leads",
        type=float,
        nargs="+",
        default=[0.0, DEFAULT_PLAY_LEAD_S],
        help="emergency play leads, seconds, one phase each (`loa serve --play-lead`)",
    )
    parser.add_argument(
        "--fleet-processes",
        type=int,
        default=DEFAULT_FLEET_PROCESSES,
        help=f"`loa fleet` processes sharing the receivers ({DEFAULT_FLEET_PROCESSES})",
    )
    parser.add_argument(
        "--storage",
        choices=[TMPFS, DISK],
        default=TMPFS,
        help="where the receivers keep their files (default: tmpfs)",
    )
    parser.add_argument(
        "--communes",
        type=int,
        default=0,
        help="spread the receivers over a province of this many communes and announce to all",
    )
    parser.add_argument("--villages", type=int, default=VILLAGES_PER_COMMUNE)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(
        args.receivers, args.rounds, args.leads, args.fleet_processes, args.storage,
        args.communes, args.villages,
    )  # fmt: skip
    print("\n".join(table(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
