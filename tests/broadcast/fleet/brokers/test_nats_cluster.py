"""An N-node nats-server cluster's files (`write_cluster`, `loa nats-config`): the one renderer
shared with a single node, bcrypt hashes kept beside the `$7$` ones, one-line mistakes, nothing
half-written. The cluster run for real is in tests/loa/test_nats_config.py."""

from __future__ import annotations

import functools
import os
import re
import stat
from pathlib import Path

import pytest
from support import LOOPBACK

from broadcast.fleet.brokers import (
    BrokerAccess,
    BrokerError,
    BrokerUser,
    bcrypt_hash,
    device_user,
    server_user,
    verify_bcrypt,
)
from broadcast.fleet.brokers.nats import (
    NatsTls,
    plan_cluster,
    write_cluster,
    write_config,
)

ROUTE_SECRET = "route-secret-0123456789"


@functools.cache
def _access() -> BrokerAccess:
    """Made once (inside a test, so at the tests' bcrypt cost): every config shows the same
    hashes."""
    return BrokerAccess(
        (
            server_user("loa-server", "server-pw", bcrypt_hash=bcrypt_hash("server-pw")),
            device_user(
                "dev-a",
                "dev-pw",
                ["xa-1"],
                client_token="ab" * 16,
                bcrypt_hash=bcrypt_hash("dev-pw"),
            ),
        )
    )


def _section(text: str, start: str) -> str:
    """From the line `start` to the end of its block (a line that is just '}')."""
    lines = text.splitlines()
    first = lines.index(start)
    last = lines.index("}", first)
    return "\n".join(lines[first : last + 1])


def test_bcrypt_hashes_are_made_and_checked_by_libcrypt() -> None:
    made = bcrypt_hash("pw-1")
    assert re.fullmatch(r"\$2b\$04\$[./A-Za-z0-9]{53}", made)  # cost 4 in tests (conftest)
    assert verify_bcrypt("pw-1", made) and not verify_bcrypt("pw-2", made)
    assert not verify_bcrypt("pw-1", "$7$not-bcrypt")


def test_a_user_keeps_its_bcrypt_hash_in_the_access_file(tmp_path: Path) -> None:
    access = _access()
    access.save(tmp_path / "access.json")
    assert BrokerAccess.load(tmp_path / "access.json") == access
    plain = server_user("loa-server", "pw")
    assert "bcrypt_hash" not in plain.to_dict()  # files without one read as before
    with pytest.raises(ValueError, match="not a bcrypt hash"):
        BrokerUser("x", plain.password_hash, bcrypt_hash="$2b$10$short")


def test_three_nodes_on_loopback_share_the_one_node_rendering(tmp_path: Path) -> None:
    out = tmp_path / "cluster"
    nodes = plan_cluster(out, 3, [LOOPBACK], [1883], [6222], [8222])
    assert [(n.name, n.mqtt_port, n.cluster_port, n.monitor_port) for n in nodes] == [
        ("loa-1", 1883, 6222, 8222),
        ("loa-2", 1884, 6223, 8223),
        ("loa-3", 1885, 6224, 8224),
    ]
    files = write_cluster(out, nodes, _access(), ROUTE_SECRET, binary="/usr/sbin/nats-server")
    single = write_config(tmp_path / "one", _access(), {}, LOOPBACK, 1883).read_text()
    users = _section(single, "authorization {")
    assert users.count('password: "$2b$') == 2 and "server-pw" not in single
    for node in nodes:
        conf = files.configs[node.name]
        assert conf == (out / node.name / "nats-server.conf").resolve()
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        text = conf.read_text()
        assert _section(text, "authorization {") == users  # the same users, hashes and ACL
        assert f'server_name: "{node.name}"' in text
        assert f'http: "127.0.0.1:{node.monitor_port}"' in text
        assert f'store_dir: "{out.resolve() / node.name / "jetstream"}"' in text
        mqtt = _section(text, "mqtt {")
        assert f'host: "{LOOPBACK}"\n  port: {node.mqtt_port}' in mqtt
        assert "stream_replicas: 3" in mqtt and 'ack_wait: "5s"' in mqtt
        assert "max_ack_pending: 20" in mqtt
        cluster = _section(text, "cluster {")
        routes = re.findall(r"nats-route://loa-route:([^@]+)@([^\"]+)", cluster)
        others = [f"{LOOPBACK}:{o.cluster_port}" for o in nodes if o is not node]
        assert routes == [(ROUTE_SECRET, address) for address in others]
        assert f"port: {node.cluster_port}" in cluster and 'name: "loa"' in cluster
    script = files.start_script.read_text()
    assert os.access(files.start_script, os.X_OK)
    assert f'exec "/usr/sbin/nats-server" -c "{out.resolve()}/$1/nats-server.conf"' in script
    assert "loa-1|loa-2|loa-3)" in script
    unit = files.unit.read_text()
    assert files.unit.name == "loa-nats@.service"
    assert f'ExecStart="/usr/sbin/nats-server" -c "{out.resolve()}/%i/nats-server.conf"' in unit
    assert "User=nats" in unit and "Restart=on-failure" in unit


def test_hosts_of_their_own_keep_one_port_and_listen_everywhere(tmp_path: Path) -> None:
    hosts = ["10.0.0.1", "10.0.0.2", "node3.example.vn"]
    nodes = plan_cluster(tmp_path / "c", 3, hosts, store_dir=Path("/var/lib/loa-nats"))
    assert {(n.mqtt_port, n.cluster_port) for n in nodes} == {(1883, 6222)}
    assert nodes[2].store_dir == Path("/var/lib/loa-nats/loa-3")
    files = write_cluster(tmp_path / "c", nodes, _access(), ROUTE_SECRET)
    text = files.configs["loa-3"].read_text()
    assert 'host: "0.0.0.0"\n  port: 1883' in _section(text, "mqtt {")
    assert "@10.0.0.1:6222" in text and "@10.0.0.2:6222" in text and "node3" not in text


def test_fewer_than_three_nodes_keep_as_many_copies(tmp_path: Path) -> None:
    one = write_cluster(tmp_path / "1", plan_cluster(tmp_path / "1", 1), _access(), ROUTE_SECRET)
    text = one.configs["loa-1"].read_text()
    assert "cluster {" not in text and "stream_replicas" not in text
    two = write_cluster(tmp_path / "2", plan_cluster(tmp_path / "2", 2), _access(), ROUTE_SECRET)
    assert "stream_replicas: 2" in two.configs["loa-2"].read_text()


def test_tls_on_mqtt_and_with_a_ca_on_the_routes(tmp_path: Path) -> None:
    nodes = plan_cluster(tmp_path / "c", 3)
    tls = NatsTls(Path("/etc/loa-nats/node.pem"), Path("/etc/loa-nats/node.key"))
    text = (
        write_cluster(tmp_path / "c", nodes, _access(), ROUTE_SECRET, tls=tls)
        .configs["loa-1"]
        .read_text()
    )
    assert 'tls {cert_file: "/etc/loa-nats/node.pem", key_file: "/etc/loa-nats/node.key"}' in (
        _section(text, "mqtt {")
    )
    assert "tls" not in _section(text, "cluster {")
    with_ca = NatsTls(tls.certfile, tls.keyfile, Path("/etc/loa-nats/ca.pem"))
    text = (
        write_cluster(tmp_path / "c", nodes, _access(), ROUTE_SECRET, tls=with_ca)
        .configs["loa-1"]
        .read_text()
    )
    assert 'ca_file: "/etc/loa-nats/ca.pem", verify: true}' in _section(text, "cluster {")
    assert "ca_file" not in _section(text, "mqtt {")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"count": 0}, "--nodes must be 1..32, not 0"),
        ({"hosts": ["a", "b"]}, "--host: give one value for all nodes or one per node (3), not 2"),
        ({"mqtt_ports": [1883, 1884]}, "--mqtt-port: give one value for all nodes"),
        ({"cluster_ports": [70000]}, "bad --cluster-port port 70000 (must be 1..65535)"),
        ({"hosts": ["bad host"]}, "bad --host address 'bad host'"),
        (
            {"mqtt_ports": [6223]},
            "--cluster-port: port 6223 on 127.0.0.1 is also --mqtt-port of loa-1",
        ),
        (
            {"monitor_ports": [9000, 9000, 9001]},
            "--monitor-port: port 9000 on 127.0.0.1 is also --monitor-port of loa-1",
        ),
    ],
)
def test_plan_mistakes_name_the_option(
    tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    options: dict[str, object] = {"count": 3, **arguments}
    with pytest.raises(BrokerError) as caught:
        plan_cluster(tmp_path / "c", **options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message), caught.value


def test_users_without_a_bcrypt_hash_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    access = BrokerAccess((*_access().users, device_user("dev-old", "old-pw", ["xa-1"])))
    out = tmp_path / "c"
    with pytest.raises(BrokerError) as caught:
        write_cluster(out, plan_cluster(out, 3), access, ROUTE_SECRET)
    assert str(caught.value) == (
        "no bcrypt hash of the password of broker user(s) dev-old: nats-server could not let"
        " them log in"
    )
    with pytest.raises(BrokerError, match="route password"):
        write_cluster(out, plan_cluster(out, 3), _access(), "short")
    assert not out.exists()
    # the password in hand serves instead (checked against the `$7$` hash)
    files = write_cluster(
        out, plan_cluster(out, 3), access, ROUTE_SECRET, passwords={"dev-old": "old-pw"}
    )
    assert '"dev-old"' in files.configs["loa-2"].read_text()
