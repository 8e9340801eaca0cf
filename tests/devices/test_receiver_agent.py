"""The agent in-process, with no broker reachable: verification, replay memory and the worker.

Without a broker paho just keeps retrying, which is itself part of the contract (one log line
naming host:port); commands are fed straight to the handler the paho thread would call.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devices import protocol
from devices.agent import ReceiverAgent
from devices.config import ReceiverConfig
from devices.players import FileSinkPlayer
from devices.protocol import EventKind, ReceiverState


class Recorder:
    """Wraps `agent._event` so the test sees the answer-back without a broker."""

    def __init__(self, agent: ReceiverAgent) -> None:
        self.events: list[tuple[str, int | None, EventKind, str]] = []
        original = agent._event

        def record(
            command: protocol.Command, broadcast_id: int | None, kind: EventKind, detail: str = ""
        ) -> None:
            self.events.append((command.id, broadcast_id, kind, detail))
            original(command, broadcast_id, kind, detail)

        agent._event = record  # type: ignore[method-assign]

    def kinds(self, command_id: str) -> list[tuple[EventKind, str]]:
        return [(kind, detail) for cid, _, kind, detail in self.events if cid == command_id]


@pytest.fixture
def make_agent(tmp_path: Path, kit, server_key):
    agents: list[ReceiverAgent] = []

    def make(realtime: bool = False, port: int | None = None, **extra: Any) -> ReceiverAgent:
        data = kit.receiver_config(
            tmp_path, "loa-unit-1", ["thon-1"], port or kit.unused_port(), "pw", server_key, **extra
        )
        config = ReceiverConfig.from_dict(data)
        player = FileSinkPlayer(tmp_path / "played", config.device_id, realtime=realtime)
        agent = ReceiverAgent(config, player)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


def topic() -> str:
    return protocol.zone_command_topic("thon-1")


def test_rejections_are_counted_and_replays_remembered(
    make_agent, server_key, media_server, kit, tmp_path: Path
) -> None:
    data = kit.fake_mp3(0.1, b"unit-replay")
    url = media_server.add("unit-replay.mp3", data)
    agent = make_agent()
    command, payload = kit.play_command(server_key, url, data)
    unsigned = json.dumps(command.to_unsigned()).encode()
    forged = kit.play_command(protocol.generate_private_key(), url, data)[1]
    expired_cmd = protocol.new_command(command.body, ttl_s=60, now=time.time() - 3600)
    expired = protocol.sign_command(expired_cmd, server_key)
    bad_sig = json.dumps({**json.loads(payload), "sig": base64.b64encode(b"x" * 64).decode()})
    for bad in (unsigned, forged, expired, bad_sig.encode(), b"\xff\xfe", b"[1, 2]", b"{" * 70_000):
        agent._accept(topic(), bad)
    assert agent.rejected_count == 7
    agent._accept(topic(), payload)
    agent._accept(topic(), payload)
    assert agent.rejected_count == 8
    remembered = json.loads((tmp_path / "loa-unit-1" / "data" / "replay.json").read_text())
    assert command.id in remembered

    again = make_agent()
    again._accept(topic(), payload)
    assert again.rejected_count == 1


def test_worker_plays_and_logs_unreachable_broker(
    make_agent, server_key, media_server, kit, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="devices.agent")
    port = kit.unused_port()
    agent = make_agent(port=port)
    recorder = Recorder(agent)
    agent.start()
    kit.wait_until(
        lambda: f"broker 127.0.0.1:{port} unreachable: Connection refused; retrying" in caplog.text
    )
    data = kit.fake_mp3(0.1, b"unit-play")
    command, payload = kit.play_command(
        server_key, media_server.add("unit-play.mp3", data), data, broadcast_id=5, repeat=2
    )
    agent._accept(topic(), payload)
    kit.wait_until(lambda: recorder.kinds(command.id)[-1:] == [(EventKind.FINISHED, "")])
    assert [k for k, _ in recorder.kinds(command.id)] == [
        EventKind.RECEIVED,
        EventKind.FETCHED,
        EventKind.STARTED,
        EventKind.FINISHED,
    ]
    lines = kit.played_lines(tmp_path / "played")
    assert [(line["broadcast_id"], line["repeat_index"]) for line in lines] == [(5, 0), (5, 1)]
    kit.wait_until(lambda: agent.state is ReceiverState.IDLE)
    agent.stop()
    agent.stop()  # idempotent
    assert agent.state is ReceiverState.OFFLINE


def test_stop_interrupts_current_and_drops_queued(
    make_agent, server_key, media_server, kit, tmp_path: Path
) -> None:
    agent = make_agent(realtime=True)
    recorder = Recorder(agent)
    agent.start()
    long_data = kit.fake_mp3(30, b"unit-long")
    long_url = media_server.add("unit-long.mp3", long_data)
    short_data = kit.fake_mp3(0.1, b"unit-short")
    short_url = media_server.add("unit-short.mp3", short_data)
    current, current_payload = kit.play_command(server_key, long_url, long_data, broadcast_id=1)
    queued, queued_payload = kit.play_command(server_key, long_url, long_data, broadcast_id=1)
    other, other_payload = kit.play_command(server_key, short_url, short_data, broadcast_id=2)
    for payload in (current_payload, queued_payload, other_payload):
        agent._accept(topic(), payload)
    kit.wait_until(lambda: agent.state is ReceiverState.PLAYING)

    stop = protocol.new_command(protocol.StopBody(broadcast_id=1))
    began = time.monotonic()
    agent._accept(topic(), protocol.sign_command(stop, server_key))
    kit.wait_until(lambda: recorder.kinds(other.id)[-1:] == [(EventKind.FINISHED, "")])
    assert time.monotonic() - began < 5
    assert recorder.kinds(current.id)[-1] == (EventKind.FAILED, "stopped")
    assert recorder.kinds(queued.id) == [(EventKind.RECEIVED, ""), (EventKind.FAILED, "stopped")]
    assert recorder.kinds(stop.id) == [(EventKind.RECEIVED, "stop")]
    lines = kit.played_lines(tmp_path / "played")
    assert [(line["command_id"], line["stopped"]) for line in lines] == [
        (current.id, True),
        (other.id, False),
    ]


def test_emergency_jumps_the_queue(
    make_agent, server_key, media_server, kit, tmp_path: Path
) -> None:
    agent = make_agent(realtime=True)
    recorder = Recorder(agent)
    agent.start()
    blocker_data = kit.fake_mp3(0.8, b"unit-blocker")
    blocker_url = media_server.add("unit-blocker.mp3", blocker_data)
    data = kit.fake_mp3(0.05, b"unit-emergency")
    url = media_server.add("unit-emergency.mp3", data)
    blocker, blocker_payload = kit.play_command(server_key, blocker_url, blocker_data, 1)
    agent._accept(topic(), blocker_payload)
    kit.wait_until(lambda: agent.state is ReceiverState.PLAYING)
    normal, normal_payload = kit.play_command(server_key, url, data, 2)
    urgent, urgent_payload = kit.play_command(
        server_key, url, data, 3, priority=protocol.Priority.EMERGENCY
    )
    agent._accept(topic(), normal_payload)
    agent._accept(topic(), urgent_payload)
    kit.wait_until(lambda: recorder.kinds(normal.id)[-1:] == [(EventKind.FINISHED, "")])
    assert [line["command_id"] for line in kit.played_lines(tmp_path / "played")] == [
        blocker.id,
        urgent.id,
        normal.id,
    ]
    assert [line["priority"] for line in kit.played_lines(tmp_path / "played")][1] == "emergency"


def test_sha_mismatch_and_play_at(
    make_agent, server_key, media_server, kit, tmp_path: Path
) -> None:
    agent = make_agent()
    recorder = Recorder(agent)
    agent.start()
    data = kit.fake_mp3(0.05, b"unit-genuine")
    url = media_server.add("unit-swapped.mp3", b"swapped on the server")
    bad, bad_payload = kit.play_command(server_key, url, data)
    agent._accept(topic(), bad_payload)
    kit.wait_until(lambda: recorder.kinds(bad.id)[-1:] == [(EventKind.FAILED, "sha256 mismatch")])
    assert kit.played_lines(tmp_path / "played") == []
    assert list((tmp_path / "loa-unit-1" / "data" / "cache").iterdir()) == []

    good_url = media_server.add("unit-later.mp3", data)
    at = time.time() + 0.6
    later, later_payload = kit.play_command(server_key, good_url, data, play_at=at)
    agent._accept(topic(), later_payload)
    kit.wait_until(lambda: recorder.kinds(later.id)[-1:] == [(EventKind.FINISHED, "")])
    started = kit.played_lines(tmp_path / "played")[0]["started_at"]
    assert datetime.fromisoformat(started).timestamp() >= at - 0.01
