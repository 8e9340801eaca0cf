"""Several brokers: the server's list (LOA_MQTT_HOSTS), the receivers' (LOA_DEVICE_MQTT_HOSTS),
and receiver configs written, refreshed and put in a QR code with `mqtt.hosts`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from service_support import add_devices, seed_commune

from broadcast.desks.administration import compact_config
from broadcast.errors import LoaError
from broadcast.fleet import registry
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.models import Device
from wire.brokers import BrokerAddress
from wire.config import ReceiverConfig

N1, N2, N3 = (BrokerAddress(f"node{n}.example", 1883) for n in (1, 2, 3))


def test_the_server_list_comes_from_its_option_or_variable(tmp_path: Path) -> None:
    env = {
        "LOA_DATA_DIR": str(tmp_path),
        "LOA_MQTT_HOSTS": "node1.example:1883, node2.example:1883",
    }
    settings = Settings.load(None, env)
    assert settings.server_brokers == (N1, N2)
    assert settings.receiver_brokers == (N1, N2)  # receivers default to the server's brokers
    given = Settings.load({"mqtt_hosts": "node3.example:1883"}, env)
    assert given.server_brokers == (N3,)
    single = Settings.load(None, {"LOA_DATA_DIR": str(tmp_path), "LOA_MQTT_PORT": "1999"})
    assert single.server_brokers == (BrokerAddress("127.0.0.1", 1999),)
    with pytest.raises(LoaError, match=r"LOA_MQTT_HOSTS .*entry 2"):
        Settings.load(None, {**env, "LOA_MQTT_HOSTS": "node1.example:1883,node2.example"})
    with pytest.raises(LoaError, match="--mqtt-hosts"):
        Settings.load({"device_mqtt_hosts": "x:0"}, env)


def test_the_receivers_list_wins_then_their_single_broker(tmp_path: Path) -> None:
    env = {"LOA_DATA_DIR": str(tmp_path), "LOA_MQTT_HOSTS": "node1.example:1883"}
    devices = Settings.load(None, {**env, "LOA_DEVICE_MQTT_HOSTS": "node2.example:1883,n3:8883"})
    assert devices.receiver_brokers == (N2, BrokerAddress("n3", 8883))
    one = Settings.load(None, {**env, "LOA_DEVICE_MQTT_HOST": "mqtt.xa.example"})
    assert one.receiver_brokers == (BrokerAddress("mqtt.xa.example", 1883),)


def test_configs_carry_hosts_when_there_are_several(service: BroadcastService) -> None:
    seed_commune(service)
    service.settings.device_mqtt_hosts = (N1, N2, N3)
    add_devices(service, {"loa-a-01": "thon-a"})
    path = service.settings.devices_dir / "loa-a-01.json"
    written = json.loads(path.read_text())
    assert written["mqtt"]["hosts"] == [str(N1), str(N2), str(N3)]
    assert (written["mqtt"]["host"], written["mqtt"]["port"]) == (N1.host, N1.port)
    config = ReceiverConfig.load(path)
    assert config.mqtt.brokers == (N1, N2, N3)

    # the QR code's compact form reads back to the same config
    compact = json.loads(compact_config(path.read_bytes()))
    assert compact["mqtt"]["hosts"] == written["mqtt"]["hosts"]
    assert ReceiverConfig.from_dict(compact) == config

    # back to one broker: a refresh drops the list and keeps the password
    service.settings.device_mqtt_hosts = ()
    service.settings.device_mqtt_host = "mqtt.xa.example"
    with service.db.session() as session:
        device = session.get(Device, "loa-a-01")
        registry.refresh_config(session, service.settings, service.fleet.public_key_text, device)
    refreshed = json.loads(path.read_text())
    assert "hosts" not in refreshed["mqtt"]
    assert refreshed["mqtt"]["host"] == "mqtt.xa.example"
    assert refreshed["mqtt"]["password"] == written["mqtt"]["password"]
