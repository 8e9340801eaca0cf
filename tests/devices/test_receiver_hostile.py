"""Hostile payloads on a receiver's command topics, through a real broker to a real agent
process: each is counted in `rejected_commands` and logged in one line (no traceback), and the
next genuine command still plays."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcast.fleet.brokers import BrokerAccess, device_user, server_user
from wire import protocol
from wire.protocol import EventKind, ReceiverState

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEVICE = "loa-thon-1-01"
ZONES = ["thon-1", "xa-hoang-hop"]
DEEP = 60_000

HOSTILE = [
    b"[" * DEEP + b"]" * DEEP,  # the payload: RecursionError in json.loads
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"kind": "play", "seq": ' + b"9" * 5000 + b"}",  # past Python's integer-string limit
    b'{"kind": "play", "seq": 1e999, "sig": "AAAA"}',
    b'{"kind": "play", "seq": NaN, "sig": "AAAA"}',
    b'{"kind": "play", "id": "\\ud800", "sig": "AAAA"}',  # a lone surrogate
    b'{"kind": "\xff\xfe"}',  # invalid UTF-8
    "{}".encode("utf-16"),
    b"[]",
    b"12",
    b"x" * (protocol.MAX_MESSAGE_BYTES + 1),
]


def test_hostile_commands_are_counted_and_the_next_genuine_one_plays(
    broker_kind: str, broker_factory, kit, media_server, server_key, spawn, tmp_path: Path
) -> None:
    access = BrokerAccess(
        users=(server_user(SERVER, SERVER_PW), device_user(DEVICE, f"{DEVICE}-pw", ZONES))
    )
    broker = broker_factory(broker_kind, access, {SERVER: SERVER_PW, DEVICE: f"{DEVICE}-pw"})
    watcher = kit.watch_answers(broker, SERVER, SERVER_PW)
    try:
        config = kit.receiver_config(
            tmp_path, DEVICE, ZONES, broker.port, f"{DEVICE}-pw", server_key, heartbeat_s=1
        )
        path = kit.write_json(tmp_path / f"{DEVICE}.json", config)
        agent = spawn("devices.agent", ["--config", str(path)], tmp_path / "agent.log")
        watcher.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE)

        zone = protocol.zone_command_topic("thon-1")
        device_topic = protocol.device_command_topic(DEVICE)
        for index, payload in enumerate(HOSTILE):
            watcher.publish(zone if index % 2 else device_topic, payload)
        watcher.wait_state(
            DEVICE, lambda s: s.extra.get("rejected_commands") == len(HOSTILE), timeout=20
        )
        kit.wait_until(lambda: agent.log.count("rejected command on") == len(HOSTILE))
        assert "nested too deeply" in agent.log
        assert "Traceback" not in agent.log
        assert agent.alive()

        data = kit.tone_mp3(0.2, 1200)
        url = media_server.add(f"after-hostile-{broker_kind}.mp3", data)
        command, payload = kit.play_command(server_key, url, data, 31, stream=zone)
        watcher.publish(zone, payload)
        watcher.wait_event(DEVICE, command.id, EventKind.FINISHED)
        played = kit.played_lines(tmp_path / DEVICE / "played")
        assert [line["broadcast_id"] for line in played] == [31]
        assert "Traceback" not in agent.log
        assert agent.terminate() == 0
    finally:
        watcher.close()
