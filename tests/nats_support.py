"""A nats-server cluster on loopback, written by `loa nats-config` and run node by node from its
start.sh, each node a child process of the test stopped (or SIGKILLed) by its own handle.

Shared by tests/loa/test_nats_config.py (the cluster as the command writes it) and
tests/e2e/test_nats_cluster_faults.py (nodes killed under a running server and fleet)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support import LOOPBACK, REPO_ROOT, MqttProbe, RunningBroker, free_ports

from broadcast.fleet.brokers.net import accepts_connections

CLUSTER_READY_S = 30  # measured 2–8 s on this 2-core machine under load


def loa(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """One `loa` command run to its end, its output captured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "loa.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def healthy(monitor_port: int) -> bool:
    """The node answers /healthz with 200 (up, and JetStream with it)."""
    url = f"http://{LOOPBACK}:{monitor_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class Node:
    name: str
    mqtt_port: int
    cluster_port: int
    monitor_port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.mqtt_port}"


class NatsCluster:
    """`loa nats-config --nodes N` on free loopback ports, written into `out` from the data
    directory `data`; `start`/`kill`/`stop` run each node by its own process handle."""

    def __init__(self, data: Path, out: Path, logs: Path, count: int = 3) -> None:
        ports = free_ports(3 * count)
        self.nodes = [
            Node(f"loa-{i + 1}", ports[i], ports[count + i], ports[2 * count + i])
            for i in range(count)
        ]
        self.data, self.out, self.logs = data, out, logs
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def addresses(self) -> str:
        """Every node's MQTT address, comma-separated (LOA_MQTT_HOSTS)."""
        return ",".join(node.address for node in self.nodes)

    def broker(self, index: int) -> RunningBroker:
        """Node `index` as the MQTT probes of tests/support.py reach it."""
        return RunningBroker("nats", LOOPBACK, self.nodes[index].mqtt_port)

    def write(self) -> subprocess.CompletedProcess[str]:
        """Run `loa nats-config` for these nodes (again after registering receivers)."""
        return loa(
            "nats-config", "--data", str(self.data), "--out", str(self.out),
            "--nodes", str(len(self.nodes)), "--host", LOOPBACK,
            "--mqtt-port", *(str(n.mqtt_port) for n in self.nodes),
            "--cluster-port", *(str(n.cluster_port) for n in self.nodes),
            "--monitor-port", *(str(n.monitor_port) for n in self.nodes),
        )  # fmt: skip

    def start(self, *indices: int) -> None:
        """Start the given nodes (all by default) from start.sh; `wait_healthy` waits for them."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for index in indices or range(len(self.nodes)):
            node = self.nodes[index]
            running = self._processes.get(node.name)
            assert running is None or running.poll() is not None, f"{node.name} is running"
            with (self.logs / f"{node.name}.log").open("ab") as log:
                self._processes[node.name] = subprocess.Popen(
                    [str(self.out / "start.sh"), node.name],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )

    def wait_healthy(self, *indices: int, timeout_s: float = CLUSTER_READY_S) -> float:
        """Wait until the given nodes (all by default) answer /healthz; the seconds it took."""
        began = time.monotonic()
        waiting = [self.nodes[i] for i in indices or range(len(self.nodes))]
        while waiting and time.monotonic() - began < timeout_s:
            for node in waiting:
                process = self._processes.get(node.name)
                assert process is not None and process.poll() is None, (
                    f"{node.name} exited: {self.logs}/{node.name}.log"
                )
            waiting = [node for node in waiting if not healthy(node.monitor_port)]
            if waiting:
                time.sleep(0.2)
        assert not waiting, (
            f"nodes {[n.name for n in waiting]} not healthy within {timeout_s} s: {self.logs}"
        )
        return time.monotonic() - began

    def wait_listening(self, index: int, timeout_s: float = CLUSTER_READY_S) -> None:
        """Wait until node `index` accepts MQTT connections. A restarted node serves MQTT long
        before its /healthz passes: that waits for every stream and consumer to catch up, which
        took from 20 s to more than 2 min here."""
        node = self.nodes[index]
        deadline = time.monotonic() + timeout_s
        while not accepts_connections(LOOPBACK, node.mqtt_port, timeout_s=0.5):
            assert time.monotonic() < deadline, f"{node.name} not listening within {timeout_s} s"
            time.sleep(0.2)

    def kill(self, index: int) -> None:
        """SIGKILL one node: no goodbye to its clients nor to the other nodes."""
        process = self._processes[self.nodes[index].name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, *indices: int) -> None:
        """Stop the given nodes (all by default) as systemd would (SIGINT, then SIGKILL)."""
        chosen = [self.nodes[i].name for i in indices or range(len(self.nodes))]
        processes = [self._processes[n] for n in chosen if n in self._processes]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self) -> NatsCluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def login_within(
    broker: RunningBroker, client_id: str, username: str, password: str, clean: bool, until: float
) -> tuple[MqttProbe, bool]:
    """A connected probe and its session-present flag; while JetStream places the MQTT streams
    a node may not answer CONNECT yet, so it is retried until `until`."""
    while True:
        probe = MqttProbe(broker, client_id, username, password, clean_session=clean)
        try:
            code, present = probe.connect()
        except (AssertionError, OSError) as exc:
            failure: object = exc
        else:
            if not code.is_failure:
                return probe, present
            failure = code
        probe.close()
        if time.monotonic() >= until:
            raise AssertionError(f"{username} could not log in on {broker.port}: {failure}")
        time.sleep(0.5)
