"""A stream locked by one far-future sequence, and the signed way back, with a real agent
process on a real broker: the locked receiver refuses the server's normal commands as stale,
`loa doctor --config` names the stream and what to run, a new epoch (same key) plays at once,
the old epoch is refused afterwards, and a new key (a refreshed config) starts afresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from service_support import make_service

from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.fleet.brokers import BrokerAccess, device_user, server_user
from loa.cli import main as loa
from wire import protocol
from wire.protocol import EventKind, ReceiverState

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEVICE = "loa-thon-1-01"
ZONES = ["thon-1", "xa-hoang-hop"]
FAR = 10**12  # what a leaked key or a bug signed
EPOCH = 1_765_000_000  # a rotation's epoch: its Unix time


def _play(
    kit, key, url: str, data: bytes, broadcast_id: int, stream: str, seq: int, epoch: int = 0
) -> tuple[protocol.Command, bytes]:
    command = protocol.new_command(
        kit.media_body(url, data, broadcast_id), stream=stream, seq=seq, epoch=epoch
    )
    return command, protocol.sign_command(command, key)


def _doctor(config_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    loa(["doctor", "--config", str(config_path)])
    return capsys.readouterr().out


def test_a_locked_stream_comes_back_with_a_new_epoch_and_then_a_new_key(
    broker_kind: str,
    broker_factory,
    kit,
    media_server,
    server_key,
    spawn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    access = BrokerAccess(
        users=(server_user(SERVER, SERVER_PW), device_user(DEVICE, f"{DEVICE}-pw", ZONES))
    )
    broker = broker_factory(broker_kind, access, {SERVER: SERVER_PW, DEVICE: f"{DEVICE}-pw"})
    watcher = kit.watch_answers(broker, SERVER, SERVER_PW)
    config: dict[str, Any] = kit.receiver_config(
        tmp_path, DEVICE, ZONES, broker.port, f"{DEVICE}-pw", server_key, heartbeat_s=1
    )
    config_path = kit.write_json(tmp_path / f"{DEVICE}.json", config)
    zone = protocol.zone_command_topic("thon-1")
    device_topic = protocol.device_command_topic(DEVICE)
    data = kit.tone_mp3(0.2, 1300)
    url = media_server.add(f"epochs-{broker_kind}.mp3", data)
    played_dir = tmp_path / DEVICE / "played"

    boots: set[str] = set()

    def start(name: str) -> Any:
        agent = spawn("devices.agent", ["--config", str(config_path)], tmp_path / f"{name}.log")
        state = watcher.wait_state(
            DEVICE, lambda s: s.state is ReceiverState.IDLE and s.boot_id not in boots
        )
        boots.add(state.boot_id)
        return agent

    def plays(payload: bytes, command: protocol.Command, topic: str = zone) -> None:
        watcher.publish(topic, payload)
        watcher.wait_event(DEVICE, command.id, EventKind.FINISHED)

    def refused(agent: Any, payload: bytes, reason: str, topic: str = zone) -> None:
        def refusals() -> list[str]:
            return [line for line in agent.log.splitlines() if "rejected command on" in line]

        before = len(refusals())
        watcher.publish(topic, payload)
        kit.wait_until(lambda: len(refusals()) == before + 1)
        assert reason in refusals()[-1], refusals()[-1]

    try:
        agent = start("first")
        # The lock-out: one far-future sequence accepted, then the server's next one refused.
        far, far_payload = _play(kit, server_key, url, data, 1, zone, FAR)
        plays(far_payload, far)
        refused(agent, _play(kit, server_key, url, data, 2, zone, 43)[1], "stale: sequence 43")
        out = _doctor(config_path, capsys)
        assert f"[FAIL] command streams: {zone} refused 1 command(s) as stale since" in out, out
        assert f"stored sequence {FAR} (epoch 0) is {FAR - 43} ahead of the server's latest" in out
        assert "→ on the server: `loa keys rotate --data DIR`" in out and "--epoch-only" in out

        # `loa keys rotate --epoch-only`: the same key, a newer epoch. It plays at once.
        back, back_payload = _play(kit, server_key, url, data, 3, zone, 44, EPOCH)
        plays(back_payload, back)
        assert "[OK  ] command streams:" in _doctor(config_path, capsys)

        # The old epoch is over on every stream: a replay of the far-future command, a new
        # epoch-0 one above it, and epoch 0 on a stream that has not seen the new epoch yet.
        refused(agent, far_payload, "old_epoch")
        refused(agent, _play(kit, server_key, url, data, 4, zone, FAR + 1)[1], "old_epoch")
        refused(
            agent,
            _play(kit, server_key, url, data, 5, device_topic, 7)[1],
            "old_epoch",
            device_topic,
        )
        assert agent.terminate() == 0

        # `loa keys rotate` with a new key, after `loa device refresh` installed the config:
        # the receiver starts its streams afresh and trusts only the new key.
        new_key = protocol.generate_private_key()
        config["server_public_key"] = protocol.public_key_to_text(new_key.public_key())
        kit.write_json(config_path, config)
        agent = start("second")
        assert "the server key changed" in agent.log
        fresh, fresh_payload = _play(kit, new_key, url, data, 6, zone, 45, EPOCH + 1)
        plays(fresh_payload, fresh)
        refused(agent, _play(kit, server_key, url, data, 7, zone, 46, EPOCH + 1)[1], "signature")
        assert "[OK  ] command streams:" in _doctor(config_path, capsys)

        assert [line["broadcast_id"] for line in kit.played_lines(played_dir)] == [1, 3, 6]
        assert "Traceback" not in agent.log
        assert agent.terminate() == 0
        remembered = json.loads((tmp_path / DEVICE / "data" / "replay.json").read_text())
        assert remembered["epoch"] == EPOCH + 1
    finally:
        watcher.close()


def test_the_servers_own_rotation_unlocks_a_receiver(
    broker_kind: str,
    broker_factory,
    kit,
    spawn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same story with the real server's dispatcher: what it sends after `loa keys rotate
    --epoch-only` is accepted by a receiver that refused its commands before."""
    data = tmp_path / "server"
    setup = make_service(data)
    server_password, signing_key = setup.secrets.mqtt_password, setup.signing_key
    setup.stop()
    access = BrokerAccess(
        users=(
            server_user(SERVER_MQTT_USERNAME, server_password),
            device_user(DEVICE, f"{DEVICE}-pw", ZONES),
        )
    )
    passwords = {SERVER_MQTT_USERNAME: server_password, DEVICE: f"{DEVICE}-pw"}
    broker = broker_factory(broker_kind, access, passwords)
    watcher = kit.watch_answers(broker, SERVER_MQTT_USERNAME, server_password)
    service = make_service(data, mqtt_port=broker.server.port, connect_mqtt=True)
    try:
        service.start()
        dispatcher = service.dispatcher
        assert dispatcher is not None
        config = kit.receiver_config(
            tmp_path, DEVICE, ZONES, broker.port, f"{DEVICE}-pw", signing_key
        )
        path = kit.write_json(tmp_path / f"{DEVICE}.json", config)
        agent = spawn("devices.agent", ["--config", str(path)], tmp_path / "agent.log")
        watcher.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE)
        zone = protocol.zone_command_topic("thon-1")

        def answered(command: protocol.Command) -> None:
            watcher.wait_event(DEVICE, command.id, EventKind.RECEIVED)

        answered(dispatcher.send(protocol.device_command_topic(DEVICE), protocol.StopBody(1)))
        # The receiver's first message on its zone's stream is far ahead (a bug, a leaked key;
        # once a stream has a sequence, a jump of more than MAX_SEQ_JUMP is refused).
        far = protocol.new_command(protocol.StopBody(2), stream=zone, seq=FAR)
        watcher.publish(zone, protocol.sign_command(far, signing_key))
        answered(far)
        locked = dispatcher.send(zone, protocol.StopBody(3))
        agent.wait_log(f"stale: sequence {locked.seq} on {zone}")

        assert loa(["keys", "rotate", "--epoch-only", "--data", str(data)]) == 0
        capsys.readouterr()
        unlocked = dispatcher.send(zone, protocol.StopBody(4))  # the running server follows
        assert unlocked.epoch > 0
        answered(unlocked)
        assert not [e for e in watcher.events(DEVICE) if e.command_id == locked.id]
        assert "Traceback" not in agent.log
        assert agent.terminate() == 0
    finally:
        service.stop()
        watcher.close()
