"""A receiver with two brokers in its config (`mqtt.hosts`): the one it is on is killed, it
moves to the other and plays what the server publishes there (wire.brokers.Failover).

Two mosquitto processes on loopback stand for two nodes of a cluster; they share nothing, so
what is proven is the receiver's side: the move, its backoff, its subscriptions on the new
broker. A real agent process, as in the field.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import RunningBroker

from broadcast.fleet.brokers import BrokerAccess, device_user, server_user
from devices.mqtt_link import MqttLink
from wire import protocol
from wire.brokers import BrokerAddress
from wire.config import broker_settings
from wire.protocol import DeviceStatus, EventKind, ReceiverState

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEVICE, DEVICE_PW = "loa-thon-1-01", "device-secret-1"
ZONES = ["thon-1", "xa-hoang-hop"]
MOVE_S = 15.0  # killed broker → on the other: ~1 s retry, 1 s grace, then ~2 s backoff


def running(broker) -> RunningBroker:
    return RunningBroker(broker.kind, broker.host, broker.port, broker.server_port)


def test_the_receiver_moves_to_the_second_broker_and_plays_there(
    port_broker, spawn, kit, media_server, server_key, tmp_path: Path
) -> None:
    access = BrokerAccess(
        users=(server_user(SERVER, SERVER_PW), device_user(DEVICE, DEVICE_PW, ZONES))
    )
    first = port_broker("mosquitto", access).start()
    second = port_broker("mosquitto", access).start()
    config = kit.receiver_config(tmp_path, DEVICE, ZONES, first.port, DEVICE_PW, server_key)
    config["mqtt"].update(
        hosts=[f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"],
        reconnect_max_s=2,
        failover_after_s=1,
    )
    path = kit.write_json(tmp_path / f"{DEVICE}.json", config)
    on_first = kit.watch_answers(running(first), SERVER, SERVER_PW)
    agent = spawn("devices.agent", ["--config", str(path)], tmp_path / "agent.log")
    on_second = None
    try:
        on_first.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE, timeout=10)
        agent.wait_log(f"connected to broker 127.0.0.1:{first.port} (1/2)")

        first.kill()  # the node the village is on dies: no goodbye
        on_second = kit.watch_answers(running(second), SERVER, SERVER_PW)
        moved = on_second.wait_state(
            DEVICE, lambda s: s.state is ReceiverState.IDLE, timeout=MOVE_S
        )
        assert moved.extra["broker"] == f"127.0.0.1:{second.port}"  # the state says where
        agent.wait_log(f"connected to broker 127.0.0.1:{second.port} (2/2)")
        assert f"trying broker 127.0.0.1:{second.port} (2/2)" in agent.log

        data = kit.fake_mp3(0.3, b"failover")
        url = media_server.add("failover.mp3", data)
        zone = protocol.zone_command_topic("thon-1")
        command, payload = kit.play_command(server_key, url, data, 41, stream=zone)
        on_second.publish(zone, payload)
        on_second.wait_event(DEVICE, command.id, EventKind.FINISHED, timeout=10)
        [line] = kit.played_lines(tmp_path / DEVICE / "played")
        assert line["command_id"] == command.id
        assert agent.alive()
    finally:
        for watcher in (on_first, on_second):
            if watcher is not None:
                watcher.close()


def test_a_first_broker_down_at_start_is_skipped(port_broker, kit) -> None:
    """In process: the link's very first attempt fails and the second broker takes it."""
    access = BrokerAccess(users=(device_user(DEVICE, DEVICE_PW, ZONES),))
    live = port_broker("mosquitto", access).start()
    down = kit.unused_port()
    settings = broker_settings(
        (BrokerAddress("127.0.0.1", down), BrokerAddress("127.0.0.1", live.port)),
        username=DEVICE,
        password=DEVICE_PW,
        reconnect_max_s=2,
    )
    link = MqttLink(DEVICE, settings, ZONES, lambda *_: None, lambda: None)
    link.open(will=DeviceStatus(DEVICE, ReceiverState.OFFLINE, "boot-1", time.time()))
    try:
        link.connect()
        kit.wait_until(lambda: link.connected, timeout=10)
        assert link.broker == f"127.0.0.1:{live.port}"
        assert link.brokers == (f"127.0.0.1:{down}", f"127.0.0.1:{live.port}")
    finally:
        link.expect_close()
        link.close()
