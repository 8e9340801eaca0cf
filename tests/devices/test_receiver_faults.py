"""The receiver under the faults of the field, on both brokers, with real agent processes.

Power cuts (SIGKILL) mid-download and mid-programme, a receiver offline while the server keeps
sending, the broker gone when the receiver boots, a flood of hostile messages, and two receivers
that must start together. Times are short but real: items a few seconds apart.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broadcast.fleet.brokers import BrokerAccess, device_user, server_user
from wire import protocol
from wire.protocol import EventKind, Priority, ReceiverState

pytestmark = pytest.mark.integration

SERVER, SERVER_PW = "loa-server", "server-secret-1"
DEVICE = "loa-thon-1-01"
ZONES = ["thon-1", "xa-hoang-hop"]
DEVICE_TOPIC = protocol.device_command_topic(DEVICE)
MANIFEST_TOPIC = protocol.device_manifest_topic(DEVICE)
# How close to `play_at` a start must be here: this checks the mechanism (not early, not late by
# whole scheduling steps, a second or more); the precision itself is measured by
# bench/text_to_sound.py (start spread). On two cores shared with other test workers a process
# is sometimes not scheduled for 100-300 ms, so a tighter bound would time a unit test.
ON_TIME_S = 0.4


def access(devices: dict[str, list[str]]) -> BrokerAccess:
    users = [server_user(SERVER, SERVER_PW)]
    users += [device_user(device, f"{device}-pw", zones) for device, zones in devices.items()]
    return BrokerAccess(users=tuple(users))


def passwords(devices: dict[str, list[str]]) -> dict[str, str]:
    """What `access` gave each login (nats-server needs them)."""
    return {SERVER: SERVER_PW, **{device: f"{device}-pw" for device in devices}}


def watch(kit, port: int, name: str = "server") -> Any:
    return kit.connect_watcher(
        "127.0.0.1",
        port,
        SERVER,
        SERVER_PW,
        [protocol.STATE_TOPIC_FILTER, protocol.EVENT_TOPIC_FILTER],
        f"{name}-{time.monotonic_ns()}",
    )


def kinds(watcher, device: str, item_or_command: str) -> list[tuple[EventKind, str]]:
    return [
        (e.kind, e.detail)
        for e in watcher.events(device)
        if item_or_command in (e.item_id, e.command_id)
    ]


def wait_item(watcher, kit, item_id: str, kind: EventKind, device: str = DEVICE) -> Any:
    def find() -> Any:
        return next(
            (e for e in watcher.events(device) if e.item_id == item_id and e.kind is kind), None
        )

    return kit.wait_until(find, timeout=15)


@pytest.fixture
def receiver(tmp_path: Path, kit, server_key, spawn) -> Callable[..., Any]:
    """Start `python -m devices.agent` for `device` on the broker at `port`."""

    def start(port: int, name: str, device: str = DEVICE, **extra: Any) -> Any:
        config = kit.receiver_config(
            tmp_path, device, ZONES, port, f"{device}-pw", server_key, **extra
        )
        config["mqtt"]["reconnect_max_s"] = 2
        path = kit.write_json(tmp_path / f"{device}.json", config)
        return spawn("devices.agent", ["--config", str(path)], tmp_path / f"{name}.log")

    return start


def test_offline_receiver_skips_what_expired_and_resyncs_its_manifest(
    broker_kind: str, broker_factory, receiver, kit, media_server, server_key, tmp_path: Path
) -> None:
    """Killed mid-download, offline while an urgent item expires and a new manifest comes."""
    broker = broker_factory(broker_kind, access({DEVICE: ZONES}), passwords({DEVICE: ZONES}))
    watcher = watch(kit, broker.server_port)
    try:
        first = receiver(broker.port, "first")
        watcher.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE)
        news = kit.tone_mp3(20.0, 1100)  # 80 kB
        news_name = f"news-{broker_kind}.mp3"
        news_url = media_server.add(news_name, news)
        media_server.slow[news_name] = 16_000  # about 5 s over a poor link
        _, first_manifest = kit.manifest_command(
            server_key,
            DEVICE,
            [kit.media_body(news_url, news, 51, item_id="news", play_at=time.time() + 60)],
        )
        watcher.publish(MANIFEST_TOPIC, first_manifest, retain=True)
        cache = tmp_path / DEVICE / "data" / "cache"
        kit.wait_until(lambda: any(p.stat().st_size > 0 for p in cache.glob(".part-*")))
        first.kill9()  # the power goes in the middle of the download
        assert list(cache.glob("*.mp3")) == [] and list(cache.glob(".part-*"))

        warning = kit.tone_mp3(0.3, 1110)
        urgent, urgent_payload = kit.play_command(
            server_key,
            media_server.add(f"storm-{broker_kind}.mp3", warning),
            warning,
            52,
            stream=DEVICE_TOPIC,
            item_id="storm",
            priority=Priority.EMERGENCY,
            valid_until=time.time() + 1.0,
        )
        watcher.publish(DEVICE_TOPIC, urgent_payload)  # queued by the broker for the receiver
        del media_server.slow[news_name]
        weather = kit.tone_mp3(0.3, 1120)
        weather_url = media_server.add(f"weather-{broker_kind}.mp3", weather)
        at = time.time() + 5.0
        resync, resync_payload = kit.manifest_command(
            server_key,
            DEVICE,
            [
                kit.media_body(news_url, news, 51, item_id="news", play_at=at),
                kit.media_body(weather_url, weather, 53, item_id="weather", play_at=at + 0.5),
            ],
        )
        watcher.publish(MANIFEST_TOPIC, resync_payload, retain=True)
        time.sleep(max(0.0, urgent.body.valid_until - time.time()) + 0.2)

        second = receiver(broker.port, "second")
        wait_item(watcher, kit, "storm", EventKind.FAILED)
        assert kinds(watcher, DEVICE, "storm") == [
            (EventKind.RECEIVED, ""),
            (EventKind.FAILED, "expired"),
        ]
        wait_item(watcher, kit, "weather", EventKind.FINISHED)
        news_steps = kinds(watcher, DEVICE, "news")
        assert (EventKind.FETCHED, "downloaded") in news_steps
        assert [k for k, _ in news_steps][-2:] == [EventKind.STARTED, EventKind.FINISHED]
        lines = kit.played_lines(tmp_path / DEVICE / "played")
        assert [line["item_id"] for line in lines] == ["news", "weather"]
        assert lines[0]["sha256"] == hashlib.sha256(news).hexdigest()
        copy = (tmp_path / DEVICE / "played" / lines[0]["file"]).read_bytes()
        assert copy == news  # the half download was never played
        assert media_server.hits[news_name] == 2  # fetched again from the start
        assert abs(kit.started_at(lines[0]) - at) < ON_TIME_S
        assert list(cache.glob(".part-*")) == []
        state = watcher.wait_state(DEVICE, lambda s: s.extra.get("manifest_seq") == resync.seq)
        assert state.boot_id in {s.boot_id for s in watcher.states(DEVICE)}
        assert second.terminate() == 0
        assert "Traceback" not in second.log
    finally:
        watcher.close()


def test_a_flood_of_bad_messages_plays_nothing(
    broker_kind: str, broker_factory, receiver, kit, media_server, server_key, tmp_path: Path
) -> None:
    broker = broker_factory(broker_kind, access({DEVICE: ZONES}), passwords({DEVICE: ZONES}))
    watcher = watch(kit, broker.server_port)
    try:
        agent = receiver(broker.port, "agent", heartbeat_s=1)
        watcher.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE)
        data = kit.tone_mp3(0.2, 1200)
        url = media_server.add(f"flood-{broker_kind}.mp3", data)
        older, older_payload = kit.play_command(server_key, url, data, 61, stream=DEVICE_TOPIC)
        newer, newer_payload = kit.play_command(server_key, url, data, 62, stream=DEVICE_TOPIC)
        for payload in (older_payload, newer_payload):
            watcher.publish(DEVICE_TOPIC, payload)
        watcher.wait_event(DEVICE, newer.id, EventKind.FINISHED)

        other_key = protocol.generate_private_key()
        zone = protocol.zone_command_topic("thon-1")
        bad: list[bytes] = []
        for index in range(200):  # malformed in every way a parser can meet
            bad.append(
                [
                    b"",
                    b"\x00\xff" * index,
                    b"{" * (index + 1),
                    b'{"kind": "play"}',
                    b"[" + str(index).encode() + b"]",
                ][index % 5]
            )
        for _ in range(200):  # forged
            bad.append(kit.play_command(other_key, url, data, 63, stream=DEVICE_TOPIC)[1])
        bad += [older_payload] * 200  # replayed
        for _ in range(200):  # expired
            bad.append(
                kit.sign(
                    server_key,
                    kit.media_body(url, data, 64),
                    stream=DEVICE_TOPIC,
                    ttl_s=30,
                    now=time.time() - 600,
                )[1]
            )
        for _ in range(200):  # genuine, but signed for another topic
            bad.append(kit.play_command(server_key, url, data, 65, stream=zone)[1])
        assert len(bad) == 1000
        infos = [watcher.client.publish(DEVICE_TOPIC, payload, qos=1) for payload in bad]
        for info in infos:
            info.wait_for_publish(10)
        state = watcher.wait_state(
            DEVICE, lambda s: s.extra.get("rejected_commands") == 1000, timeout=30
        )
        assert state.online
        assert agent.alive()
        assert agent.log.count("rejected command on") == 1000
        after, after_payload = kit.play_command(server_key, url, data, 66, stream=DEVICE_TOPIC)
        watcher.publish(DEVICE_TOPIC, after_payload)
        watcher.wait_event(DEVICE, after.id, EventKind.FINISHED)
        lines = kit.played_lines(tmp_path / DEVICE / "played")
        assert [line["broadcast_id"] for line in lines] == [61, 62, 66]
        assert {e.command_id for e in watcher.events(DEVICE)} == {older.id, newer.id, after.id}
        assert agent.terminate() == 0
        assert "Traceback" not in agent.log
    finally:
        watcher.close()


def test_reboot_mid_programme_plays_on_without_broker_and_rejoins(
    broker_kind: str, port_broker, receiver, kit, media_server, server_key, tmp_path: Path
) -> None:
    broker = port_broker(broker_kind, access({DEVICE: ZONES}), passwords({DEVICE: ZONES})).start()
    watcher = watch(kit, broker.server_port)
    realtime = {"kind": "file", "dir": str(tmp_path / DEVICE / "played"), "realtime": True}
    try:
        first = receiver(broker.port, "first", player=realtime)
        watcher.wait_state(DEVICE, lambda s: s.state is ReceiverState.IDLE)
        start = time.time() + 2.0
        items = []
        for index, (offset, seconds) in enumerate(((0.0, 1.0), (1.5, 1.5), (7.0, 0.5))):
            data = kit.tone_mp3(seconds, 1300 + index)
            url = media_server.add(f"prog-{broker_kind}-{index}.mp3", data)
            items.append(
                kit.media_body(
                    url,
                    data,
                    70 + index,
                    item_id=f"prog-{index}",
                    play_at=start + offset,
                    valid_until=start + 20,
                )
            )
        _, programme = kit.manifest_command(server_key, DEVICE, items)
        watcher.publish(MANIFEST_TOPIC, programme, retain=True)
        wait_item(watcher, kit, "prog-1", EventKind.STARTED)
        first.kill9()  # the power goes during the second item
        watcher.close()
        broker.kill()  # and in the commune's server room too

        second = receiver(broker.port, "second", player=realtime)
        second.wait_log("unreachable")
        played_dir = tmp_path / DEVICE / "played"
        kit.wait_until(lambda: len(kit.played_lines(played_dir)) == 3, timeout=15)
        lines = kit.played_lines(played_dir)
        assert [line["item_id"] for line in lines] == ["prog-0", "prog-1", "prog-2"]
        assert not any(line["stopped"] for line in lines)
        assert abs(kit.started_at(lines[0]) - start) < ON_TIME_S
        assert kit.started_at(lines[1]) > start + 1.5  # started again, from its beginning
        assert abs(kit.started_at(lines[2]) - (start + 7.0)) < ON_TIME_S  # at its time
        assert "Traceback" not in second.log

        broker.start()  # the broker comes back: the receiver joins by itself
        watcher = watch(kit, broker.server_port, "server-again")
        boot = second.log.split("started (boot ", 1)[1].split(")", 1)[0]
        rejoined = watcher.wait_state(DEVICE, lambda s: s.online and s.boot_id == boot)
        assert rejoined.extra["manifest_items"] == 0  # the whole programme was played
        assert second.alive()
        assert second.terminate() == 0
    finally:
        watcher.close()


def test_two_receivers_start_together(
    broker_kind: str, broker_factory, receiver, kit, media_server, server_key, tmp_path: Path
) -> None:
    devices = {"loa-sync-a": ZONES, "loa-sync-b": ZONES}
    broker = broker_factory(broker_kind, access(devices), passwords(devices))
    watcher = watch(kit, broker.server_port)
    try:
        agents = [receiver(broker.port, device, device=device) for device in devices]
        for device in devices:
            watcher.wait_state(device, lambda s: s.state is ReceiverState.IDLE)
        data = kit.tone_mp3(0.3, 1400)
        url = media_server.add(f"sync-{broker_kind}.mp3", data)
        zone = protocol.zone_command_topic("thon-1")
        at = time.time() + 2.0
        _, payload = kit.play_command(
            server_key, url, data, 81, stream=zone, item_id="sync", play_at=at
        )
        watcher.publish(zone, payload)
        starts = []
        for device in devices:
            started = wait_item(watcher, kit, "sync", EventKind.STARTED, device)
            wait_item(watcher, kit, "sync", EventKind.FINISHED, device)
            [line] = kit.played_lines(tmp_path / device / "played")
            # the event carries the moment the run recorded just before the player began (not
            # when it was published, which waits for the start window): never after the sound.
            # How close before is the machine's scheduling, bounded by the on-time promise below
            # (a 5 ms bound here failed at a load of 11 on two cores; 1 µs: the log keeps µs).
            assert -1e-6 <= kit.started_at(line) - started.at < ON_TIME_S, (started.at, line)
            starts.append(kit.started_at(line))
        assert all(abs(start - at) < ON_TIME_S for start in starts), [s - at for s in starts]
        assert abs(starts[0] - starts[1]) < ON_TIME_S
        for agent in agents:
            assert agent.terminate() == 0
    finally:
        watcher.close()
