"""Faults of a 3-node nats-server cluster under a running province in miniature (issue 14): the
cluster as `loa nats-config` writes it (Debian's nats-server, loopback, JetStream on files,
stream replicas 3), a real `loa serve` and a real `loa fleet` (FileSink receivers), each node a
child process of the test that is SIGKILLed by its own handle. Every wait is bounded.

Each village lists the nodes in its own order (its nearest first), so killing one node takes
away one village's broker and not the other's; the server is given its own order. Receivers
and server keep their default failover (a lost node given up within 10 s, `wire.brokers`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nats_support import NatsCluster, login_within
from processes import LoaProcess, http_json, played_lines, plays_of, wait_devices
from support import LOOPBACK, free_ports

from broadcast.const import LOCAL_TZ
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast, Delivery, Sequence
from loa import seed
from wire import protocol
from wire.brokers import parse_address_list
from wire.config import ReceiverConfig

from .test_faults import ALERT, FINAL, without_daily_bulletins

COUNT = 6  # three receivers in each of the demo's two villages
SERVER_MOVES_S = 20.0
IN_STEP_S = 0.5  # loose: this machine is loaded; bench/ measures the real spread
SETTLE_S = 90.0


@dataclass
class Site:
    data: Path
    settings: Settings
    cluster: NatsCluster
    base: str
    token: str
    devices: dict[str, str]  # device id → village
    server: LoaProcess | None = None
    fleet: LoaProcess | None = None

    def node_of(self, village: str, orders: dict[str, tuple[int, ...]]) -> str:
        return self.cluster.nodes[orders[village][0]].address


def _prepare(
    tmp_path: Path, cluster: NatsCluster, village_orders: dict[str, tuple[int, ...]]
) -> Site:
    """Seed the demo commune, give each village's receivers its order of the nodes, write the
    cluster's configs from the database and start it."""
    data = cluster.data
    (port,) = free_ports(1)
    settings = Settings(
        data_dir=data, port=port, device_mqtt_hosts=parse_address_list(cluster.addresses)
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=COUNT, realtime=False)
    without_daily_bulletins(service)
    service.stop()
    devices = dict(seed.demo_device_ids(COUNT))
    for device_id, village in devices.items():
        path = settings.devices_dir / f"{device_id}.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        hosts = [cluster.nodes[index].address for index in village_orders[village]]
        first = parse_address_list(hosts[0])[0]
        config["mqtt"].update(hosts=hosts, host=first.host, port=first.port)
        path.write_text(json.dumps(config), encoding="utf-8")
    written = cluster.write()
    assert written.returncode == 0, written.stderr
    cluster.start()
    cluster.wait_healthy()
    return Site(data, settings, cluster, f"http://{LOOPBACK}:{port}", demo.api_token, devices)


def _start_server(
    site: Site, started: list[LoaProcess], order: tuple[int, ...], play_lead_s: float = 3.0
) -> LoaProcess:
    hosts = ",".join(site.cluster.nodes[index].address for index in order)
    server = LoaProcess(
        "serve", "--data", str(site.data), "--port", str(site.settings.port),
        "--mqtt-hosts", hosts, "--play-lead", str(play_lead_s),
    )  # fmt: skip
    started.append(server)
    server.wait_for_line("Loa server on")
    site.server = server
    return server


def _start_fleet(site: Site, started: list[LoaProcess]) -> LoaProcess:
    fleet = LoaProcess(
        "fleet", "--config-dir", str(site.settings.devices_dir), "--count", str(COUNT)
    )
    started.append(fleet)
    site.fleet = fleet
    return fleet


def _online(site: Site, ready: Any = None, timeout_s: float = 60, what: str = "online") -> dict:
    listed = wait_devices(site.base, site.token, COUNT, ready, timeout_s=timeout_s, what=what)
    return {d["id"]: d for d in listed}


def _announce(site: Site, zones: list[str], text: str = ALERT) -> int:
    status, created = http_json(
        "POST",
        f"{site.base}/api/v1/announcements",
        site.token,
        {"text": text, "zones": zones, "priority": "emergency"},
    )
    assert status == 201, created
    return created["id"]


def _settled(site: Site, broadcast_id: int, timeout_s: float = SETTLE_S) -> dict:
    """The announcement once it and each of its deliveries are final (else AssertionError)."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        _status, body = http_json(
            "GET", f"{site.base}/api/v1/announcements/{broadcast_id}", site.token
        )
        if body["status"] in FINAL and all(d["state"] in FINAL for d in body["deliveries"]):
            return body
        time.sleep(0.5)
    raise AssertionError(f"announcement {broadcast_id} not settled within {timeout_s} s: {body}")


def _played_once_in_step(site: Site, broadcast_id: int, devices: Iterable[str]) -> None:
    devices = set(devices)
    plays = plays_of(site.data / "receivers", devices, broadcast_id)
    assert plays == dict.fromkeys(devices, 1), f"plays of {broadcast_id}: {plays}"
    starts = [
        datetime.fromisoformat(p["started_at"])
        for device in devices
        for p in played_lines(site.data / "receivers", device)
        if p["broadcast_id"] == broadcast_id
    ]
    spread = (max(starts) - min(starts)).total_seconds()
    assert spread <= IN_STEP_S, f"starts of {broadcast_id} spread over {spread:.3f} s"


def _all_finished(site: Site, body: dict) -> None:
    assert body["status"] == "finished", body
    assert {d["device"] for d in body["deliveries"]} == set(site.devices), body["deliveries"]
    assert all(d["state"] == "finished" for d in body["deliveries"]), body["deliveries"]


def _no_delivery_open(site: Site) -> None:
    """Every delivery of an announcement in the database is final (none left waiting for an
    answer; a scheduled run hours ahead is rightly still open)."""
    database = Database(site.settings.database_url)
    try:
        with database.session() as session:
            rows = (
                session.query(Delivery)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .filter(Broadcast.schedule_id.is_(None))
            )
            states = {(d.broadcast_id, d.device_id): d.state for d in rows}
    finally:
        database.dispose()
    assert states, "no delivery recorded"
    open_ = {key: state for key, state in states.items() if state not in FINAL}
    assert not open_, f"deliveries left open: {open_}"


def _no_traceback(*processes: LoaProcess | None) -> None:
    for process in processes:
        if process is not None:
            assert "Traceback" not in process.output, process.output[-4000:]


def _stop(site: Site) -> None:
    assert site.fleet is not None and site.fleet.stop() == 0
    assert site.server is not None and site.server.stop() == 0
    _no_traceback(site.server, site.fleet)


def test_killing_a_villages_node_during_an_emergency(
    tmp_path: Path, loa_processes: list[LoaProcess]
) -> None:
    """Village thon-1 is on node 1, thon-2 on node 3, the server on node 2. Node 1 is SIGKILLed
    right after the emergency is accepted (its dispatch under way): thon-1's receivers move to
    another node and every receiver plays it once, all within IN_STEP_S."""
    orders = {"thon-1": (0, 1, 2), "thon-2": (2, 0, 1)}
    with NatsCluster(tmp_path / "var", tmp_path / "nats", tmp_path / "nats-logs") as cluster:
        site = _prepare(tmp_path, cluster, orders)
        _start_server(site, loa_processes, (1, 2, 0), play_lead_s=25)
        _start_fleet(site, loa_processes)
        dead = site.node_of("thon-1", orders)
        before = _online(site, lambda d: d["status"].get("broker"))
        on_dead = {i for i, d in before.items() if d["status"]["broker"] == dead}
        assert on_dead == {i for i, v in site.devices.items() if v == "thon-1"}, before

        broadcast_id = _announce(site, ["thon-1", "thon-2"])
        cluster.kill(0)

        body = _settled(site, broadcast_id)
        # on another node, every subscription granted (a refused one is asked for again)
        _online(
            site,
            lambda d: (
                d["status"].get("broker") not in (None, dead)
                and not d["status"].get("refused_topics")
            ),
            what="off the dead node with every subscription granted",
        )
        time.sleep(2.0)  # a late duplicate (a redelivery after the reconnect) would show by now
        _played_once_in_step(site, broadcast_id, site.devices)
        _all_finished(site, body)
        _no_delivery_open(site)
        _stop(site)


def test_killing_the_servers_node(tmp_path: Path, loa_processes: list[LoaProcess]) -> None:
    """The server is on node 1, the receivers on nodes 2 and 3. Node 1 is SIGKILLed right after
    an emergency is accepted: the server moves to another node, that emergency and one sent
    after the kill are played once everywhere and every delivery is answered (none left
    open)."""
    orders = {"thon-1": (1, 2, 0), "thon-2": (2, 1, 0)}
    with NatsCluster(tmp_path / "var", tmp_path / "nats", tmp_path / "nats-logs") as cluster:
        site = _prepare(tmp_path, cluster, orders)
        server = _start_server(site, loa_processes, (0, 1, 2), play_lead_s=5)
        _start_fleet(site, loa_processes)
        _online(site)
        first = _announce(site, ["thon-1", "thon-2"])
        cluster.kill(0)
        killed = time.monotonic()
        moved = _wait_output(server, "connected to MQTT broker", ("(2/3)", "(3/3)"), 60)
        # the grace on the lost node (10 s) and a login elsewhere; 34 s before wire.brokers
        # gave a lost broker up as soon as its next wait outlasted the grace (about 6 s now)
        assert time.monotonic() - killed <= SERVER_MOVES_S, moved
        second = _announce(site, ["thon-1", "thon-2"], "Thông báo khẩn lần hai: đê đã an toàn.")
        for broadcast_id in (first, second):
            body = _settled(site, broadcast_id)
            _all_finished(site, body)
        time.sleep(2.0)
        for broadcast_id in (first, second):
            plays = plays_of(site.data / "receivers", site.devices, broadcast_id)
            assert plays == dict.fromkeys(site.devices, 1), (broadcast_id, plays, moved)
        _played_once_in_step(site, second, site.devices)
        _no_delivery_open(site)
        _stop(site)


def _wait_output(process: LoaProcess, text: str, any_of: tuple[str, ...], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in list(process.lines):
            if text in line and any(part in line for part in any_of):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} with {any_of} within {timeout_s} s:\n{process.output}")


def _schedule(site: Site, title: str, hours_ahead: int) -> int:
    """A bulletin approved and scheduled once, `hours_ahead` from now, for the whole commune:
    every receiver's manifest changes."""
    status, bulletin = http_json(
        "POST",
        f"{site.base}/api/v1/bulletins",
        site.token,
        {"title": title, "text": f"{title}: họp dân tại nhà văn hóa.", "submit": True},
    )
    assert status == 201, bulletin
    status, approved = http_json(
        "POST", f"{site.base}/api/v1/bulletins/{bulletin['id']}/approve", site.token, {}
    )
    assert status == 200, approved
    run_at = datetime.now(LOCAL_TZ) + timedelta(hours=hours_ahead)
    status, schedule = http_json(
        "POST",
        f"{site.base}/api/v1/schedules",
        site.token,
        {
            "bulletin": bulletin["id"],
            "kind": "once",
            "run_at": run_at.strftime("%Y-%m-%dT%H:%M"),
            "zones": ["xa-hoang-hop"],
        },
    )
    assert status == 201, schedule
    return schedule["id"]


def _cancel_schedule(site: Site, schedule_id: int) -> None:
    request = urllib.request.Request(f"{site.base}/api/v1/schedules/{schedule_id}", method="DELETE")
    request.add_header("Authorization", f"Bearer {site.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _latest_manifest_seqs(site: Site) -> dict[str, int]:
    """The sequence number of the last manifest the server signed for each receiver."""
    database = Database(site.settings.database_url)
    try:
        with database.session() as session:
            values = {s.stream: s.value for s in session.query(Sequence)}
    finally:
        database.dispose()
    return {d: values.get(protocol.device_manifest_topic(d), 0) for d in site.devices}


def _every_receiver_has_the_latest_manifest(site: Site, timeout_s: float = 60) -> dict:
    """The devices listed once each holds the last manifest signed for it, none deaf to a
    subscription."""
    deadline = time.monotonic() + timeout_s
    lagging: dict = {}
    while time.monotonic() < deadline:
        latest = _latest_manifest_seqs(site)
        _status, listed = http_json("GET", f"{site.base}/api/v1/devices?per_page=1000", site.token)
        held = {d["id"]: d["status"].get("manifest_seq") for d in listed}
        refused = {d["id"]: d["status"].get("refused_topics") for d in listed}
        lagging = {
            d: (held.get(d), seq, refused.get(d))
            for d, seq in latest.items()
            if held.get(d) != seq or refused.get(d)
        }
        if not lagging and all(seq > 0 for seq in latest.values()):
            return {d["id"]: d for d in listed}
        time.sleep(0.5)
    raise AssertionError(
        f"receivers without the latest manifest or deaf (held, latest, refused): {lagging}"
    )


def test_a_node_killed_and_back_while_manifests_change(
    tmp_path: Path, loa_processes: list[LoaProcess]
) -> None:
    """thon-2's node is SIGKILLed; the programme changes while it is down and again as it comes
    back (each change re-signs every receiver's manifest): every receiver ends holding the last
    manifest the server signed for it, with nothing refused."""
    orders = {"thon-1": (0, 1, 2), "thon-2": (1, 2, 0)}
    with NatsCluster(tmp_path / "var", tmp_path / "nats", tmp_path / "nats-logs") as cluster:
        site = _prepare(tmp_path, cluster, orders)
        _start_server(site, loa_processes, (2, 0, 1))
        _start_fleet(site, loa_processes)
        _every_receiver_has_the_latest_manifest(site)
        cluster.kill(1)
        first = _schedule(site, "Họp dân", 2)
        cluster.start(1)
        second = _schedule(site, "Tiêm phòng", 3)
        _cancel_schedule(site, first)
        cluster.wait_listening(1)
        third = _schedule(site, "Thu thuế", 4)
        held = _every_receiver_has_the_latest_manifest(site)
        assert {d["status"]["manifest_items"] for d in held.values()} == {2}, (second, third)
        _stop(site)


def _retained_manifests(site: Site, node: int, timeout_s: float = 30) -> dict[str, bytes]:
    """Each receiver's retained manifest as a newcomer on `node` gets it (the receiver's own
    login, another client id, a clean session)."""
    until = time.monotonic() + timeout_s
    found: dict[str, bytes] = {}
    for device in site.devices:
        login = ReceiverConfig.load(site.settings.devices_dir / f"{device}.json").mqtt
        probe, _present = login_within(
            site.cluster.broker(node), f"{login.client_id}-look", login.username,
            login.password, True, until,
        )  # fmt: skip
        try:
            topic = protocol.device_manifest_topic(device)
            probe.subscribe_ok(topic)
            got = probe.expect(topic, timeout_s=max(1.0, until - time.monotonic()))
            assert got.retain, f"{device}: the manifest came, but not as retained"
            found[device] = got.payload
        finally:
            probe.close()
    return found


def _dispatched(site: Site, broadcast_id: int, timeout_s: float = 30) -> dict:
    """The announcement once it has left the outbox (its PUBACKs in, or given up waiting)."""
    url = f"{site.base}/api/v1/announcements/{broadcast_id}"
    deadline = time.monotonic() + timeout_s
    while True:
        _status, body = http_json("GET", url, site.token)
        if body["status"] != "pending" or time.monotonic() >= deadline:
            return body
        time.sleep(0.3)


def _first_connections(fleet: LoaProcess, after: int) -> dict[str, str]:
    """Each receiver's first 'connected to broker' line among the fleet's lines from `after`."""
    first: dict[str, str] = {}
    for line in fleet.lines[after:]:
        if ": connected to broker " in line:
            device = line.split(": connected to broker ")[0].rsplit(" ", 1)[-1]
            first.setdefault(device, line)
    return first


def test_the_whole_cluster_restarted(tmp_path: Path, loa_processes: list[LoaProcess]) -> None:
    """With the receivers and the server stopped, an emergency queued in the receivers' sessions
    and every manifest retained, all three nodes are SIGKILLed and started again: the retained
    manifests are the same bytes, each receiver comes back to its session (session present)
    and plays the queued emergency once, and every delivery is answered."""
    orders = {"thon-1": (0, 1, 2), "thon-2": (1, 2, 0)}
    with NatsCluster(tmp_path / "var", tmp_path / "nats", tmp_path / "nats-logs") as cluster:
        site = _prepare(tmp_path, cluster, orders)
        _start_server(site, loa_processes, (2, 0, 1))
        fleet = _start_fleet(site, loa_processes)
        _schedule(site, "Họp dân", 2)
        _every_receiver_has_the_latest_manifest(site)
        retained = _retained_manifests(site, 2)
        assert fleet.stop() == 0  # receivers gone, their persistent sessions kept

        broadcast_id = _announce(site, ["thon-1", "thon-2"])
        body = _dispatched(site, broadcast_id)
        assert body["status"] == "dispatched", body
        assert site.server is not None and site.server.stop() == 0

        for index in range(len(cluster.nodes)):
            cluster.kill(index)
        cluster.start()
        cluster.wait_healthy()
        assert _retained_manifests(site, 0) == retained

        _start_server(site, loa_processes, (2, 0, 1))
        fleet = _start_fleet(site, loa_processes)
        body = _settled(site, broadcast_id)
        _all_finished(site, body)
        time.sleep(2.0)
        plays = plays_of(site.data / "receivers", site.devices, broadcast_id)
        assert plays == dict.fromkeys(site.devices, 1), plays
        first = _first_connections(fleet, 0)
        assert set(first) == set(site.devices), first
        assert all("session present: True" in line for line in first.values()), first
        _no_delivery_open(site)
        _stop(site)
