"""The clustered broker: NATS server (Debian's `nats-server`) with its MQTT gateway.

NATS keeps MQTT sessions, QoS 1 queues and retained messages in JetStream (file storage under
the given directory), which replicates them across a cluster. One renderer (`_render`) writes
nats-server.conf for one node (`write_config`, what `NatsBroker` and the MQTT integration tests
run) and for each node of an N-node cluster (`write_cluster`, `loa nats-config`): no anonymous
access, one user per `BrokerUser` allowed on MQTT connections only, its ACL as NATS
publish/subscribe permissions (MQTT `a/+/b` is the NATS subject `a.*.b`, `#` is `>`). Files
are 0600 and written atomically, and nothing is written unless every input checks out.

What NATS cannot take from Loa as it is (measured; docs/deployment.md has the comparison):

* passwords: nats-server 2.9 verifies bcrypt hashes or clear text, not the mosquitto `$7$`
  (PBKDF2) hashes of the access file, and has no auth callout (2.10); Loa keeps a bcrypt hash
  beside each `$7$` one (`BrokerUser.bcrypt_hash`), and a caller may instead hand the
  passwords (checked against the `$7$` hashes), which the config gets bcrypt hashes of;
* client ids: NATS cannot bind a login to its client id (mosquitto's
  `use_username_as_clientid`); any login may connect with any client id, close that client's
  connection and, with a clean session, delete its queued commands. Loa's answer is client ids
  no other login can guess (`access.secret_client_id`: receivers' configs and the server carry
  them; tests/broadcast/fleet/brokers/test_integration.py and test_nats.py).

`NatsBroker` runs the binary with that config as a child process on a given MQTT port (its NATS
client port is left to the kernel, on loopback).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from broadcast.fleet.brokers.access import (
    BrokerAccess,
    BrokerError,
    BrokerUser,
    bcrypt_hash,
    verify_password,
)
from broadcast.fleet.brokers.engine import log_explanation, stop_child
from broadcast.fleet.brokers.net import accepts_connections, check_port_free, format_address
from wire import protocol
from wire.files import write_atomic, write_private_file

_LOGGER = logging.getLogger(__name__)

CONFIG_NAME = "nats-server.conf"
LOG_FILE_NAME = "nats-server.log"
STORE_DIR_NAME = "jetstream"
START_SCRIPT_NAME = "start.sh"
UNIT_NAME = "loa-nats@.service"
CLUSTER_NAME = "loa"
ROUTE_USER = "loa-route"
MISSING_MESSAGE = "nats-server not found: install the Debian package 'nats-server'"
DEBIAN_BINARY = "/usr/sbin/nats-server"
DEBIAN_USER = "nats"  # the system user Debian's package creates and runs nats-server as
_SBIN_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"
# As mosquitto's limits (broadcast.fleet.brokers.mosquitto): 4 times what a receiver accepts.
MAX_PAYLOAD_BYTES = 4 * protocol.MAX_MESSAGE_BYTES
# QoS 1 messages on their way to one MQTT client before it acknowledges (mosquitto: 20).
MAX_ACK_PENDING = 20
# A QoS 1 message not acknowledged within this is sent again, also to the session's next
# connection: a receiver whose link died (or whose node was killed) gets it this late at most.
ACK_WAIT_S = 5
# Copies of each MQTT stream (sessions, queued commands, retained messages) in a cluster: any
# one node may die and a majority of the copies is left.
MAX_REPLICAS = 3
_SAFE_PATH = re.compile(r'^[^\n\r\x00"\\]+$')
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")
_SUBJECT_LEVEL = re.compile(r"^[A-Za-z0-9_-]+$")
# a path inside "…" in start.sh and in the unit's ExecStart: nothing the shell expands or
# systemd reads as a specifier
_SCRIPT_PATH = re.compile(r'^[^\n\r\x00"\\$`%]+$')
_ROUTE_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,}$")
_LOG_PREFIX = re.compile(r"^\[\d+\] [\d/]+ [\d:.]+ ")


def find_nats_server() -> str | None:
    """The nats-server binary: on PATH, or in sbin (Debian installs it in /usr/sbin)."""
    return shutil.which("nats-server") or shutil.which("nats-server", path=_SBIN_DIRS)


def mqtt_to_subject(topic_filter: str) -> str:
    """The NATS subject (filter) an MQTT topic filter is: '/' → '.', '+' → '*', '#' → '>'."""
    levels = []
    for level in topic_filter.split("/"):
        if level in ("+", "#"):
            levels.append("*" if level == "+" else ">")
        elif _SUBJECT_LEVEL.fullmatch(level):
            levels.append(level)
        else:
            raise BrokerError(
                f"topic filter {topic_filter!r} cannot be a NATS permission: each level must be"
                " letters, digits, '-' or '_' (or a wildcard)"
            )
    return ".".join(levels)


def _checked_path(path: Path) -> str:
    text = str(path)
    if not _SAFE_PATH.fullmatch(text) or text != text.strip():
        raise BrokerError(f"nats-server cannot use the path {text!r} (no quotes or backslashes)")
    return text


def _render_user(user: BrokerUser, password_hash: str) -> str:
    # nats-server delivers a QoS 1 subscription through a JetStream consumer to the subject
    # $MQTT.sub.<random>, subscribed with the client's own permissions; MQTT clients themselves
    # cannot subscribe to $MQTT/... (refused, measured), so this grants them nothing more.
    publish = json.dumps([mqtt_to_subject(t) for t in user.publish])
    subscribe = json.dumps([*(mqtt_to_subject(t) for t in user.subscribe), "$MQTT.sub.>"])
    return (
        f"    {{user: {json.dumps(user.username)}, password: {json.dumps(password_hash)},"
        f' allowed_connection_types: ["MQTT"],'
        f" permissions: {{publish: {{allow: {publish}}}, subscribe: {{allow: {subscribe}}}}}}}"
    )


def _user_lines(
    access: BrokerAccess, passwords: Mapping[str, str], *, every_user: bool = False
) -> list[str]:
    """Each user's line with a bcrypt hash: of the password in `passwords` (checked against its
    `$7$` hash), else its stored `bcrypt_hash`. A user with neither is left out (nobody can log
    in as it), or with `every_user` refused, all such users named in one line."""
    lines: list[str] = []
    missing: list[str] = []
    for user in access.users:
        password = passwords.get(user.username)
        if password is not None:
            if not verify_password(password, user.password_hash):
                raise BrokerError(
                    f"the password given for broker user {user.username!r} does not match its"
                    " hash in the access file"
                )
            lines.append(_render_user(user, bcrypt_hash(password)))
        elif user.bcrypt_hash:
            lines.append(_render_user(user, user.bcrypt_hash))
        else:
            missing.append(user.username)
    if missing and every_user:
        raise BrokerError(
            f"no bcrypt hash of the password of broker user(s) {', '.join(missing)}:"
            " nats-server could not let them log in"
        )
    return lines


@dataclass(frozen=True)
class NatsTls:
    """TLS for a cluster: `certfile`/`keyfile` on every node's MQTT listener (receivers and the
    server connect with TLS); with `cafile`, the routes between nodes too, each node showing the
    same certificate and checking the others' against `cafile` (so it must name every node's
    host and allow client as well as server use). Paths are the same on every node."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None


@dataclass(frozen=True)
class _Cluster:
    listen_host: str
    port: int
    routes: tuple[str, ...]  # host:port of the other nodes
    route_password: str
    replicas: int


def _render(
    *,
    name: str,
    mqtt_host: str,
    mqtt_port: int,
    store: Path,
    users: Sequence[str],
    cluster: _Cluster | None = None,
    monitor_port: int | None = None,
    tls: NatsTls | None = None,
) -> str:
    """nats-server.conf of one node, the one place its text is made."""
    if not _SUBJECT_LEVEL.fullmatch(name):
        raise BrokerError(f"bad NATS server name {name!r} (letters, digits, '-', '_')")
    lines = [
        "# Written by Loa (broadcast.fleet.brokers.nats); regenerate it instead of editing.",
        f"server_name: {json.dumps(name)}",
        'host: "127.0.0.1"',
        "port: -1",
        f"max_payload: {MAX_PAYLOAD_BYTES}",
    ]
    if monitor_port is not None:
        # readiness (/healthz) and state, on loopback only
        lines.append(f'http: "127.0.0.1:{int(monitor_port)}"')
    lines += [
        "jetstream {",
        f"  store_dir: {json.dumps(_checked_path(store))}",
        "}",
    ]
    if cluster is not None:
        secret = cluster.route_password
        routes = ", ".join(
            json.dumps(f"nats-route://{ROUTE_USER}:{secret}@{route}") for route in cluster.routes
        )
        lines += [
            "cluster {",
            f"  name: {json.dumps(CLUSTER_NAME)}",
            f"  host: {json.dumps(cluster.listen_host)}",
            f"  port: {int(cluster.port)}",
            "  no_advertise: true",
            f"  authorization {{user: {json.dumps(ROUTE_USER)}, password: {json.dumps(secret)}}}",
            f"  routes: [{routes}]",
        ]
        if tls is not None and tls.cafile is not None:
            lines.append(f"  tls {{{_tls_fields(tls, with_ca=True)}}}")
        lines.append("}")
    lines += [
        "mqtt {",
        f"  host: {json.dumps(mqtt_host)}",
        f"  port: {int(mqtt_port)}",
        f"  max_ack_pending: {MAX_ACK_PENDING}",
        f'  ack_wait: "{ACK_WAIT_S}s"',
    ]
    if cluster is not None:
        lines.append(f"  stream_replicas: {int(cluster.replicas)}")
    if tls is not None:
        lines.append(f"  tls {{{_tls_fields(tls, with_ca=False)}}}")
    lines += [
        "}",
        "authorization {",
        "  users: [",
        *users,
        "  ]",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _tls_fields(tls: NatsTls, *, with_ca: bool) -> str:
    # absolute, not resolved: a renewed certificate arrives behind the same symlink (certbot)
    fields = [
        f"cert_file: {json.dumps(_checked_path(Path(tls.certfile).absolute()))}",
        f"key_file: {json.dumps(_checked_path(Path(tls.keyfile).absolute()))}",
    ]
    if with_ca and tls.cafile is not None:
        fields += [
            f"ca_file: {json.dumps(_checked_path(Path(tls.cafile).absolute()))}",
            "verify: true",
        ]
    return ", ".join(fields)


def _check_host(host: str, what: str) -> str:
    if not isinstance(host, str) or not _SAFE_HOST.fullmatch(host):
        raise BrokerError(f"bad {what} address {host!r}")
    return host


def _check_port(port: int, what: str) -> int:
    if not 1 <= int(port) <= 65535:
        raise BrokerError(f"bad {what} port {port} (must be 1..65535)")
    return int(port)


def write_config(
    directory: Path,
    access: BrokerAccess,
    passwords: Mapping[str, str],
    host: str,
    port: int,
    *,
    store_dir: Path | None = None,
    server_name: str | None = None,
) -> Path:
    """Write nats-server.conf (0600) for one node into `directory`; return its path.

    `passwords` maps usernames to passwords, each checked against the user's `$7$` hash in
    `access`; a user without one logs in with its stored bcrypt hash, and a user with neither
    is left out (nobody can log in as it). The MQTT listener is `host`:`port`; NATS's own
    client port is a kernel-chosen one on loopback. JetStream keeps its files in `store_dir`
    (default: jetstream/ in `directory`).
    """
    _check_host(host, "MQTT listen")
    _check_port(port, "MQTT")
    users = _user_lines(access, passwords)
    directory = Path(directory).resolve()
    store = Path(store_dir).resolve() if store_dir else directory / STORE_DIR_NAME
    text = _render(
        name=server_name or f"loa-{int(port)}", mqtt_host=host, mqtt_port=port, store=store,
        users=users,
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = directory / CONFIG_NAME
    write_private_file(config_path, text)
    return config_path


@dataclass(frozen=True)
class ClusterNode:
    """One node of a cluster: the address receivers, the server and the other nodes reach it
    by, its MQTT, route (cluster) and loopback monitoring ports, and where JetStream keeps its
    files on it."""

    name: str
    host: str
    mqtt_port: int
    cluster_port: int
    monitor_port: int
    store_dir: Path

    @property
    def mqtt_address(self) -> str:
        return format_address(self.host, self.mqtt_port)

    @property
    def route_address(self) -> str:
        return format_address(self.host, self.cluster_port)


@dataclass(frozen=True)
class ClusterFiles:
    """What `write_cluster` wrote: each node's config (by node name), the start script and the
    systemd unit."""

    configs: dict[str, Path]
    start_script: Path
    unit: Path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plan_cluster(
    out: Path,
    count: int,
    hosts: Sequence[str] = ("127.0.0.1",),
    mqtt_ports: Sequence[int] = (1883,),
    cluster_ports: Sequence[int] = (6222,),
    monitor_ports: Sequence[int] = (8222,),
    store_dir: Path | None = None,
) -> list[ClusterNode]:
    """The nodes of a `count`-node cluster, named loa-1..loa-N. `hosts` and each list of ports
    hold one value for every node or one per node; a port given once is the same on every host,
    and goes up by one from node to node on a host that runs several (a trial on one machine).
    JetStream's files go to `store_dir`/<node> (default: <out>/<node>/jetstream). Raises
    BrokerError naming the option (its command-line flag) for any mistake."""
    if not 1 <= count <= 32:
        raise BrokerError(f"--nodes must be 1..32, not {count}")

    def per_node(values: Sequence[object], flag: str) -> list[object]:
        if len(values) == 1:
            return list(values) * count
        if len(values) != count:
            raise BrokerError(
                f"{flag}: give one value for all nodes or one per node ({count}), not {len(values)}"
            )
        return list(values)

    node_hosts = [_check_host(str(h), "--host") for h in per_node(hosts, "--host")]
    shared = {host for host in node_hosts if node_hosts.count(host) > 1}
    ports: dict[str, list[int]] = {}
    for flag, values in (
        ("--mqtt-port", mqtt_ports),
        ("--cluster-port", cluster_ports),
        ("--monitor-port", monitor_ports),
    ):
        given = [_check_port(int(p), flag) for p in per_node(values, flag)]  # type: ignore[call-overload]
        if len(values) == 1:
            seen: dict[str, int] = {}
            for index, host in enumerate(node_hosts):
                given[index] += seen.get(host, 0) if host in shared else 0
                seen[host] = seen.get(host, 0) + 1
        ports[flag] = [_check_port(p, flag) for p in given]
    taken: dict[tuple[str, int], str] = {}
    for index, host in enumerate(node_hosts):
        for flag, values in ports.items():
            key = (host, values[index])
            if key in taken:
                raise BrokerError(
                    f"{flag}: port {values[index]} on {host} is also {taken[key]}: give each node"
                    " on one host ports of its own"
                )
            taken[key] = f"{flag} of loa-{index + 1}"
    out = Path(out).resolve()
    nodes = []
    for index, host in enumerate(node_hosts):
        name = f"loa-{index + 1}"
        store = Path(store_dir).resolve() / name if store_dir else out / name / STORE_DIR_NAME
        _checked_path(store)
        nodes.append(
            ClusterNode(
                name=name, host=host, mqtt_port=ports["--mqtt-port"][index],
                cluster_port=ports["--cluster-port"][index],
                monitor_port=ports["--monitor-port"][index], store_dir=store,
            )
        )  # fmt: skip
    return nodes


def write_cluster(
    out: Path,
    nodes: Sequence[ClusterNode],
    access: BrokerAccess,
    route_password: str,
    *,
    passwords: Mapping[str, str] | None = None,
    tls: NatsTls | None = None,
    binary: str | None = None,
    run_as: str = DEBIAN_USER,
) -> ClusterFiles:
    """Write a ready cluster into `out`: <node>/nats-server.conf for each node (0600: it holds
    the route secret and the bcrypt hashes), start.sh (`start.sh loa-2` runs node loa-2 in the
    foreground) and the systemd template unit loa-nats@.service (`systemctl enable --now
    loa-nats@loa-2` on that node's host, running as `run_as`). Every user must have a bcrypt
    hash (or its password in `passwords`). Everything is rendered and checked first; nothing is
    written unless all of it checks out, and each file is replaced atomically.
    """
    if not nodes:
        raise BrokerError("a cluster needs at least one node")
    if not _ROUTE_SECRET.fullmatch(route_password or ""):
        raise BrokerError("the route password must be 16 or more letters, digits, '-' or '_'")
    if not _SUBJECT_LEVEL.fullmatch(run_as):
        raise BrokerError(f"bad system user {run_as!r} to run nats-server as")
    users = _user_lines(access, passwords or {}, every_user=True)
    out = Path(out).resolve()
    replicas = min(MAX_REPLICAS, len(nodes))
    texts: dict[Path, str] = {}
    for node in nodes:
        listen = node.host if is_loopback(node.host) else "0.0.0.0"
        cluster = (
            _Cluster(
                listen_host=listen,
                port=node.cluster_port,
                routes=tuple(other.route_address for other in nodes if other is not node),
                route_password=route_password,
                replicas=replicas,
            )
            if len(nodes) > 1
            else None
        )
        texts[out / node.name / CONFIG_NAME] = _render(
            name=node.name, mqtt_host=listen, mqtt_port=node.mqtt_port, store=node.store_dir,
            users=users, cluster=cluster, monitor_port=node.monitor_port, tls=tls,
        )  # fmt: skip
    program = binary or find_nats_server() or DEBIAN_BINARY
    for named in (program, str(out)):
        if not _SCRIPT_PATH.fullmatch(named):
            raise BrokerError(
                f"the start script and unit cannot name {named!r} ($, `, % or quotes)"
            )
    script = _start_script(out, program, [node.name for node in nodes])
    unit = _unit(out, program, run_as)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path, text in texts.items():
        path.parent.mkdir(exist_ok=True, mode=0o700)
        write_private_file(path, text)
    script_path = out / START_SCRIPT_NAME
    unit_path = out / UNIT_NAME
    write_atomic(script_path, script, mode=0o755)
    write_atomic(unit_path, unit, mode=0o644)
    return ClusterFiles(
        configs={node.name: out / node.name / CONFIG_NAME for node in nodes},
        start_script=script_path,
        unit=unit_path,
    )


def _start_script(out: Path, program: str, names: Sequence[str]) -> str:
    choices = "|".join(names)
    return f"""#!/bin/sh
# Written by Loa (loa nats-config): runs one node of the nats-server cluster in the foreground.
# Usage: {out}/{START_SCRIPT_NAME} NODE   (NODE: {", ".join(names)})
set -eu
case "${{1:-}}" in
  {choices}) ;;
  *) echo "usage: $0 NODE ({", ".join(names)})" >&2; exit 2 ;;
esac
exec "{program}" -c "{out}/$1/{CONFIG_NAME}"
"""


def _unit(out: Path, program: str, run_as: str) -> str:
    return f"""# Written by Loa (loa nats-config): one node of the nats-server cluster that Loa's
# receivers and server use. On each node's host: systemctl enable --now loa-nats@<node>
[Unit]
Description=Loa MQTT broker, nats-server cluster node %i
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={run_as}
Group={run_as}
ExecStart="{program}" -c "{out}/%i/{CONFIG_NAME}"
ExecReload=/bin/kill -s HUP $MAINPID
KillSignal=SIGINT
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
# /var/lib/loa-nats, owned by {run_as}: for --store-dir /var/lib/loa-nats
StateDirectory=loa-nats
StateDirectoryMode=0700

[Install]
WantedBy=multi-user.target
"""


class NatsBroker:
    """nats-server (one node, MQTT on JetStream) as a child process with its own directory."""

    def __init__(
        self,
        directory: Path,
        host: str,
        port: int,
        access: BrokerAccess,
        passwords: Mapping[str, str],
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.access = access
        self.passwords = dict(passwords)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE_NAME

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10) -> None:
        """Start nats-server; return once its MQTT listener accepts connections."""
        if self._process is not None:
            raise BrokerError(f"nats-server on {self.address} was already started")
        binary = find_nats_server()
        if binary is None:
            raise BrokerError(MISSING_MESSAGE)
        check_port_free(self.host, self.port)
        config_path = write_config(
            self.directory, self.access, self.passwords, self.host, self.port
        )
        self._log = self.log_path.open("ab")
        log_start = self._log.tell()
        self._process = subprocess.Popen(
            [binary, "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            cwd=self.directory,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                line = self._error_line(log_start)
                self.stop()
                where = "" if str(config_path) in line else f" (config {config_path})"
                raise BrokerError(
                    f"nats-server for {self.address} exited with code {code}: {line}{where}"
                )
            if accepts_connections(self.host, self.port, timeout_s=0.2):
                break
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerError(
                    f"nats-server did not listen on {self.address} within {timeout_s:g} s;"
                    f" see {self.log_path}"
                )
            time.sleep(0.05)
        _LOGGER.info(
            "nats-server (pid %d) MQTT on %s, config %s",
            self._process.pid,
            self.address,
            config_path,
        )

    def reload(self, access: BrokerAccess) -> None:
        """Rewrite the config for `access` and have the running nats-server re-read it (SIGHUP:
        users and permissions change, connections stay), as `systemctl reload` does a node."""
        if self._process is None or self._process.poll() is not None:
            raise BrokerError(f"nats-server on {self.address} is not running")
        write_config(self.directory, access, self.passwords, self.host, self.port)
        self.access = access
        self._process.send_signal(signal.SIGHUP)

    def stop(self, timeout_s: float = 5) -> None:
        """Terminate our own nats-server, kill it if it does not exit; idempotent."""
        process, self._process = self._process, None
        stop_child(process, "nats-server", timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _error_line(self, offset: int) -> str:
        """nats-server's own explanation: its [FTL]/[ERR] lines, else its last line."""
        return log_explanation(
            self.log_path, offset, _LOG_PREFIX, lambda line: line.startswith(("[FTL]", "[ERR]"))
        )


__all__ = [
    "ClusterFiles",
    "ClusterNode",
    "NatsBroker",
    "NatsTls",
    "bcrypt_hash",
    "find_nats_server",
    "mqtt_to_subject",
    "plan_cluster",
    "write_cluster",
    "write_config",
]
