"""`loa nats-config`: receivers without a bcrypt hash are named with the command that fixes
them, and what it writes runs as a real 3-node nats-server cluster on loopback: a receiver
logs in on every node, a retained manifest and a queued QoS 1 command cross nodes."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest
from nats_support import CLUSTER_READY_S, NatsCluster, loa, login_within
from service_support import make_service, seed_commune
from support import MqttProbe, connected

from broadcast.fleet.brokers.nats import find_nats_server
from broadcast.settings import Secrets
from broadcast.store.models import Device
from wire import protocol
from wire.config import ReceiverConfig


def _one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("loa: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def _data_with_receiver(data: Path) -> None:
    service = make_service(data)
    try:
        seed_commune(service)
        service.fleet.register_device("loa-a-01", "thon-a")
    finally:
        service.stop()


def test_receivers_without_a_bcrypt_hash_are_named_with_the_refresh_that_fixes_them(
    tmp_path: Path,
) -> None:
    data, out = tmp_path / "data", tmp_path / "nats"
    _data_with_receiver(data)
    service = make_service(data)
    try:
        with service.db.session() as session:  # as migration 0012 leaves a receiver
            session.get(Device, "loa-a-01").mqtt_password_bcrypt = ""
    finally:
        service.stop()
    argv = ("nats-config", "--data", str(data), "--out", str(out), "--nodes", "3")
    _one_clear_line(loa(*argv), f"`loa device refresh --data {data} loa-a-01`")
    assert not out.exists()
    _one_clear_line(loa(*argv, "--host", "a", "b"), "--host: give one value for all nodes")
    _one_clear_line(loa(*argv, "--tls-ca", "ca.pem"), "--tls-ca", "--tls-cert")
    _one_clear_line(
        loa(*argv, "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "k")),
        str(tmp_path / "no.pem"),
        "does not exist",
    )
    refreshed = loa("device", "refresh", "--data", str(data), "loa-a-01")
    assert refreshed.returncode == 0, refreshed.stderr
    written = loa(*argv)
    assert written.returncode == 0, written.stderr
    assert len(written.stdout.split()) == 5  # three configs, start.sh, the unit
    assert "LOA_MQTT_HOSTS=127.0.0.1:1883,127.0.0.1:1884,127.0.0.1:1885" in written.stderr


@pytest.mark.integration
def test_three_nodes_from_nats_config_serve_receivers_on_any_node(tmp_path: Path) -> None:
    assert find_nats_server() is not None, "install the Debian package 'nats-server'"
    data = tmp_path / "data"
    _data_with_receiver(data)
    with NatsCluster(data, tmp_path / "nats", tmp_path / "logs") as cluster:
        written = cluster.write()
        assert written.returncode == 0, written.stderr
        cluster.start()
        cluster.wait_healthy()
        until = time.monotonic() + CLUSTER_READY_S
        _cross_nodes(cluster, data, tmp_path / "nats", until)


def _cross_nodes(cluster: NatsCluster, data: Path, out: Path, until: float) -> None:
    nodes = [cluster.broker(index) for index in range(len(cluster.nodes))]
    login = ReceiverConfig.load(data / "devices" / "loa-a-01.json").mqtt
    assert login.password not in (out / "loa-1" / "nats-server.conf").read_text()
    server_secrets = Secrets(data)
    server_password = server_secrets.mqtt_password
    server_id = f"loa-server-{server_secrets.mqtt_client_token}"
    probes: list[MqttProbe] = []
    try:
        for node in nodes:  # the receiver's bcrypt hash, from the database, on every node
            probe, _present = login_within(
                node, login.client_id, login.username, login.password, True, until
            )
            probe.close()
        device = protocol.device_command_topic("loa-a-01")
        manifest = protocol.device_manifest_topic("loa-a-01")
        # a persistent session on node 2, then the receiver goes offline
        receiver, _present = login_within(
            nodes[1], login.client_id, login.username, login.password, False, until
        )
        probes.append(receiver)
        receiver.subscribe_ok(device)
        receiver.close()
        # the server, on node 1: a retained manifest and a QoS 1 command for it
        server = connected(nodes[0], "loa-server", server_password, f"{server_id}-t")
        probes.append(server)
        signed = secrets.token_hex(8).encode()
        command = secrets.token_hex(8).encode()
        server.publish(manifest, signed, retain=True)
        server.publish(device, command)
        # back, on node 3: the queued command, and the retained manifest for a late subscriber
        again, present = login_within(
            nodes[2], login.client_id, login.username, login.password, False, until
        )
        probes.append(again)
        assert present, "the receiver's session did not reach node 3"
        assert again.expect(device, timeout_s=15).payload == command
        again.subscribe_ok(manifest)
        got = again.expect(manifest)
        assert (got.payload, got.retain) == (signed, True)
    finally:
        for probe in probes:
            probe.close()
