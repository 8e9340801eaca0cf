"""The `loa` command line: one entry point for the server, the broker, receivers and admin tasks.

Receiver commands import only `devices` and `wire` (and the constants below), so a Pi does not
load the server's dependencies.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from broadcast.const import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_MQTT_PORT, DEMO_STREAM_PORT
from wire import logs
from wire.files import PUBLIC, write_atomic

if TYPE_CHECKING:
    from broadcast.desks.setup import Readiness, Setup
    from broadcast.errors import LoaError
    from broadcast.fleet.brokers.mosquitto import TlsListener
    from broadcast.service import BroadcastService
    from broadcast.settings import Settings

_LOGGER = logging.getLogger(__name__)

# A missing module outside these is a missing dependency, not a bug of ours.
OWN_PACKAGES = frozenset({"loa", "broadcast", "devices", "wire", "tts", "audio", "web"})


def _add_device_broker(parser: argparse.ArgumentParser) -> None:
    """Where receivers reach the broker, when it differs from the server's own link."""
    parser.add_argument("--mqtt-host", dest="device_mqtt_host", help="broker address for the Pi")
    parser.add_argument("--mqtt-port", dest="device_mqtt_port", type=int, help="broker port (1883)")
    parser.add_argument(
        "--mqtt-hosts",
        dest="device_mqtt_hosts",
        metavar="HOST:PORT,...",
        help="several brokers (a cluster's nodes) for the Pi, tried in order with failover",
    )
    parser.add_argument(
        "--mqtt-tls-ca",
        dest="device_mqtt_tls_ca",
        help="TLS to the broker: the CA file the Pi trusts (its PEM goes into the config),"
        " or 'system' for a public certificate",
    )


def _settings(args: argparse.Namespace):
    from broadcast.settings import Settings

    return Settings.load(args, os.environ)


def cmd_demo(args: argparse.Namespace) -> int:
    from broadcast.service import BroadcastService
    from loa import runner, seed

    if args.receivers < 1:
        print("loa: --receivers must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    chosen = args.stream_port is not None or "LOA_STREAM_PORT" in os.environ
    live_off = _demo_stream(settings, chosen)
    service = BroadcastService(settings)
    if args.province:
        demo = seed.seed_province_demo(service, args.receivers)
    else:
        demo = seed.seed_demo(service, args.receivers)

    def banner() -> None:
        played = settings.receivers_dir
        print(
            "\n".join(
                [
                    "",
                    "Loa demo is running (Ctrl-C stops everything).",
                    f"  Web:        {settings.public_url}/",
                    f"  Login:      admin / {demo.admin_password}",
                    *(
                        [
                            f"              {seed.PROVINCE_EDITOR}, canbo-xa-001 … "
                            f"canbo-xa-{seed.PROVINCE_COMMUNES:03d} (same password)"
                        ]
                        if args.province
                        else []
                    ),
                    f"  API token:  {demo.api_token}",
                    f"  MQTT:       {settings.mqtt_host}:{settings.mqtt_port} (embedded amqtt)",
                    f"  Live:       {_live_line(settings, live_off)}",
                    f"  Receivers:  {len(demo.receiver_configs)} simulated, writing what they play"
                    f" to {played}/<device>/played/ (log: played.jsonl)",
                    f"  Data:       {settings.data_dir}",
                    "",
                ]
            ),
            flush=True,
        )

    fleet = runner.Fleet(settings.devices_dir, len(demo.receiver_configs))
    return runner.run(
        service, embedded_broker=True, fleet=fleet, banner=banner, stream_optional=not chosen
    )


def _live_line(settings: Settings, off: str | None) -> str:
    """The banner's line on live broadcasts: where Icecast runs, or why it does not."""
    if settings.live_enabled:
        return f"Icecast on {settings.receiver_stream_url} (icecast2, listeners checked by Loa)"
    return off or "off (icecast2 did not start: see the log above)"


def _demo_stream(settings: Settings, chosen: bool) -> str | None:
    """The demo runs Icecast for live broadcasts on its usual port when icecast2 is installed
    and the port is free (unless a port was chosen); why not, if it does not."""
    from broadcast.fleet.brokers import port_is_free
    from broadcast.fleet.streaming import MISSING_MESSAGE, find_icecast

    if not chosen:
        if find_icecast() is None:
            settings.stream_port = 0
            return f"off ({MISSING_MESSAGE})"
        if not port_is_free(settings.host, DEMO_STREAM_PORT):
            settings.stream_port = 0
            return f"off (stream port {settings.host}:{DEMO_STREAM_PORT} is in use: --stream-port)"
        settings.stream_port = DEMO_STREAM_PORT
    return None if settings.live_enabled else "off (--stream-port 0)"


def cmd_serve(args: argparse.Namespace) -> int:
    from broadcast.service import BroadcastService
    from loa import runner

    settings = _settings(args)
    service = BroadcastService(settings)
    readiness = service.setup.readiness()
    if not readiness.ready:
        service.stop()
        print("\n".join(setup_steps(str(settings.data_dir), readiness)), file=sys.stderr)
        return 2

    def banner() -> None:
        brokers = ", ".join(str(address) for address in settings.server_brokers)
        print(f"Loa server on {settings.public_url}/ (MQTT {brokers})", flush=True)

    return runner.run(service, embedded_broker=args.embedded_broker, banner=banner)


def setup_steps(data: str, readiness: Readiness) -> list[str]:
    """What an operator runs on a data directory that cannot serve anyone yet (no zone to
    broadcast to, or no admin to sign in), with the right flags, in order."""
    data_flag = f"--data {shlex.quote(data)}"
    missing = [
        what
        for what, lacking in (("no zones", not readiness.zones), ("no admin", not readiness.admins))
        if lacking
    ]
    lines = [f"loa: {data} has {' and '.join(missing)} yet: nothing to serve. Set it up first:"]
    if not readiness.zones:
        lines += [
            "  a province (CSV columns code,name,kind,parent; see docs/zones-example.csv):",
            f"    loa zones import ZONES.csv {data_flag}",
            "  or one commune and its villages:",
            f'    loa zones add --kind commune --name "Xã …" [--code 12345] {data_flag}',
            f'    loa zones add --kind village --name "Thôn 1" --parent COMMUNE_ID {data_flag}',
        ]
    if not readiness.admins:
        lines.append("  the first admin (asks for a password):")
        lines.append(f"    loa user add admin --role admin {data_flag}")
    lines.append(f"then check with `loa zones list {data_flag}` and start `loa serve` again.")
    return lines


def _zone_desk(args: argparse.Namespace) -> tuple[Setup, BroadcastService]:
    """The set-up desk on the data directory (migrated), and what to stop afterwards."""
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    return service.setup, service


# the option each field of a zone's ValidationError came from
_ZONE_OPTIONS = {"kind": "--kind", "name": "--name", "code": "--code", "parent": "--parent"}


def _zone_error(exc: Exception, options: dict[str, str]) -> LoaError:
    """A domain refusal as the option the operator got wrong: `--parent: no zone has …`."""
    from broadcast.errors import LoaError, ValidationError

    if isinstance(exc, ValidationError):
        return LoaError(f"{options.get(exc.field, exc.field)}: {exc.message}")
    return LoaError(str(exc))


def cmd_zones_import(args: argparse.Namespace) -> int:
    from broadcast.desks.setup import ZoneFileError
    from broadcast.errors import LoaError

    data = _read_bytes(args.file)
    desk, service = _zone_desk(args)
    try:
        result = desk.import_zones(None, data)
    except ZoneFileError as exc:
        for problem in exc.problems:
            column = f", column {problem.column}" if problem.column else ""
            where = f"line {problem.line}{column}"
            print(f"loa: {args.file} {where}: {problem.message}", file=sys.stderr)
        count = len(exc.problems) + exc.more
        more = f" (the first {len(exc.problems)} shown)" if exc.more else ""
        print(
            f"loa: {args.file}: {count} problem{'s' if count != 1 else ''}{more},"
            " nothing was written",
            file=sys.stderr,
        )
        return 2
    except LoaError as exc:
        raise _zone_error(exc, {}) from None
    finally:
        service.stop()
    if not result.changed:
        print(f"{args.file}: nothing to change, its {result.rows} zones are already there")
        return 0
    done = [
        f"{len(ids)} {what}"
        for ids, what in (
            (result.created, "created"),
            (result.renamed, "renamed"),
            (result.coded, "given their code"),
            (result.moved, "moved"),
        )
        if ids
    ]
    print(f"{args.file}: {result.rows} zones read, {', '.join(done)}")
    if result.bound:
        print(f"bound to their commune (admins stay installation-wide): {', '.join(result.bound)}")
    if result.moved:
        _moved_receivers_hint(args)
    return 0


def cmd_zones_add(args: argparse.Namespace) -> int:
    from broadcast.errors import LoaError

    desk, service = _zone_desk(args)
    try:
        line = desk.add_zone(
            None, args.kind, args.name, args.code or "", args.parent or "", args.id or ""
        )
    except LoaError as exc:
        raise _zone_error(exc, {**_ZONE_OPTIONS, "id": "--id"}) from None
    finally:
        service.stop()
    code = f", code {line.code}" if line.code else ""
    parent = f" under {line.parent_id}" if line.parent_id else ""
    print(f"created {line.kind} {line.id} ({line.name}{code}){parent}")
    return 0


def cmd_zones_move(args: argparse.Namespace) -> int:
    from broadcast.errors import LoaError

    desk, service = _zone_desk(args)
    try:
        moved = desk.move_zone(None, args.zone, args.parent)
    except LoaError as exc:
        raise _zone_error(exc, {"parent": "--parent", "zone": "ZONE"}) from None
    finally:
        service.stop()
    where = f"under {moved.parent}" if moved.parent else "at the root"
    if not moved.changed:
        print(f"{moved.zone_id} is already {where}: nothing to change")
        return 0
    before = f"under {moved.previous_parent}" if moved.previous_parent else "at the root"
    print(f"{moved.zone_id} is now {where} (was {before})")
    if moved.bound:
        print(
            f"bound to {moved.zone_id}, which was the whole installation for them:"
            f" {', '.join(moved.bound)} (admins stay installation-wide)"
        )
    if moved.receivers:
        _moved_receivers_hint(args, moved.receivers)
    return 0


def _moved_receivers_hint(args: argparse.Namespace, count: int | None = None) -> None:
    """A receiver listens to its zone and every zone above it: after a move its config names
    the old chain, and the dashboard flags it until the new one is on the Pi."""
    data = f" --data {shlex.quote(args.data)}" if args.data else ""
    receivers = f"its {count} receivers" if count else "receivers under the moved zones"
    print(
        f"loa: {receivers} now sit under another zone: run `loa device refresh{data}` (it also"
        " updates the embedded broker) and copy each config to its Pi; with mosquitto, then"
        " `loa mqtt-config` and reload it",
        file=sys.stderr,
    )


def cmd_zones_list(args: argparse.Namespace) -> int:
    desk, service = _zone_desk(args)
    try:
        lines = desk.tree(None)
    finally:
        service.stop()
    if not lines:
        data = f" --data {shlex.quote(args.data)}" if args.data else ""
        print(f"no zones yet: `loa zones import FILE.csv{data}` or `loa zones add …{data}`")
        return 0
    for line in lines:
        code = f" {line.code}" if line.code else ""
        plural = "s" if line.devices != 1 else ""
        receivers = f", {line.devices} receiver{plural}" if line.devices else ""
        print(f"{'  ' * line.depth}{line.id}  {line.name}  ({line.kind}{code}{receivers})")
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from broadcast.fleet.brokers.embedded import serve

    return serve(args.host, args.port, Path(args.access))


def cmd_receiver(args: argparse.Namespace) -> int:
    from devices import agent

    return agent.main(["--config", args.config, "--log-level", args.log_level])


def cmd_fleet(args: argparse.Namespace) -> int:
    from devices import fleet

    argv = ["--config-dir", args.config_dir, "--log-level", args.log_level]
    if args.count is not None:
        argv += ["--count", str(args.count)]
    return fleet.main(argv)


def cmd_doctor(args: argparse.Namespace) -> int:
    from devices import doctor as device_doctor

    if args.config:
        return device_doctor.report(device_doctor.receiver_checks(Path(args.config)))
    from loa import doctor

    return device_doctor.report(doctor.server_checks(_settings(args)))


def cmd_user_add(args: argparse.Namespace) -> int:
    """A user bound to their zone (by id or administrative code), or installation-wide."""
    from broadcast.const import Role
    from broadcast.errors import LoaError, ValidationError
    from broadcast.people import accounts, audit, zones
    from broadcast.service import BroadcastService

    role = Role(args.role)
    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        with service.db.session() as session:
            zone = None
            if args.zone is not None:
                zone = zones.find_zone(session, args.zone)
                if zone is None:
                    raise LoaError(
                        f"--zone: no zone has the id or administrative code {args.zone!r}"
                        " (see `loa zones list`)"
                    )
            try:
                accounts.check_role_zone(session, role, zone)
            except ValidationError as exc:
                raise LoaError(
                    f"--zone: {exc.message} ({role.value}: {_ROLE_ZONES_TEXT[role.value]})"
                ) from None
            password = args.password or getpass.getpass(f"Password for {args.username}: ")
            try:
                user = accounts.create_user(
                    session, args.username, password, role, None if zone is None else zone.id
                )
            except ValidationError as exc:
                option = {"password": "--password", "zone": "--zone"}.get(exc.field, "username")
                raise LoaError(f"{option}: {exc.message}") from None
            audit.record(
                session,
                None,
                audit.Action.USER_CREATE,
                f"user:{user.id}",
                {"username": user.username, "role": user.role, "zone": user.zone_id},
            )
            where = "installation-wide" if zone is None else f"in {zone.kind} {zone.id}"
    finally:
        service.db.dispose()
    print(f"created user {args.username} ({args.role}, {where})")
    return 0


# which zone each role is bound to, for the help text and the refusals (as
# `broadcast.people.permissions.ZONE_KINDS` says; tests/loa/test_cli.py checks they agree)
_ROLE_ZONES_TEXT = {
    "admin": "none (installation-wide), a province or a commune",
    "province_editor": "none or a province",
    "officer": "a commune (none only before any province exists)",
    "leader": "a commune (none only before any province exists)",
    "viewer": "a commune (none only before any province exists)",
    "village_head": "a village",
    "source": "none or a province (a source-information system: API tokens only)",
}


def cmd_token_create(args: argparse.Namespace) -> int:
    from broadcast.people import accounts, audit
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        with service.db.session() as session:
            user = accounts.get_user(session, args.username)
            token = accounts.create_token(session, user)
            audit.record(session, None, audit.Action.TOKEN_CREATE, f"user:{user.id}")
    finally:
        service.db.dispose()
    print(token)
    return 0


def cmd_device_add(args: argparse.Namespace) -> int:
    """Register a receiver: broker credentials, keys and the config file to copy to the Pi."""
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        path = service.fleet.register_device(args.id, args.zone, name=args.name)
    finally:
        service.stop()
    print(path)
    print(
        "loa: regenerate the broker's access list (loa mqtt-config, then reload mosquitto)"
        " so the new receiver can log in",
        file=sys.stderr,
    )
    return 0


def cmd_device_refresh(args: argparse.Namespace) -> int:
    """Receivers registered before TLS was turned on (or the broker moved) get configs that
    say so; their passwords stay, so the broker's access list is unchanged."""
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        refreshed = service.fleet.refresh_device_configs(args.ids or None)
    finally:
        service.stop()
    for item in refreshed:
        print(item.path)
    renewed = [item.device_id for item in refreshed if item.new_password]
    if renewed:
        print(
            f"loa: new passwords for {', '.join(renewed)} (their old config was missing or stale):"
            " regenerate the broker's access list (loa mqtt-config, then reload mosquitto)",
            file=sys.stderr,
        )
    behind = [item.device_id for item in refreshed if item.broker_behind and not item.new_password]
    if behind:
        print(
            f"loa: the broker does not yet let {', '.join(behind)} hear all their zones:"
            " regenerate its access list (loa mqtt-config, then reload mosquitto)",
            file=sys.stderr,
        )
    print(f"loa: {len(refreshed)} config file(s) rewritten; copy each to its Pi", file=sys.stderr)
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """A new sequence epoch (and by default a new signing key): receivers that refuse a stream's
    commands as stale (`loa doctor --config` says so) accept the new epoch's at once."""
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        rotation = service.fleet.rotate_keys(new_key=not args.epoch_only)
    finally:
        service.stop()
    print(f"sequence epoch {rotation.epoch}")
    if not rotation.new_key:
        print(
            "loa: every command from now on carries the new epoch (running servers read it per"
            " message; the scheduler republishes every manifest within seconds)",
            file=sys.stderr,
        )
        return 0
    print(f"signing key {rotation.public_key}")
    print(
        "loa: the old signing key is gone. Restart every server process (they sign with the key"
        " they started with), then run `loa device refresh --data"
        f" {service.settings.data_dir}` and install each receiver's new config"
        " (deploy/install-receiver.sh WHEEL CONFIG): a receiver refuses"
        " the new key's commands until it has its new config",
        file=sys.stderr,
    )
    return 0


def cmd_stream_config(args: argparse.Namespace) -> int:
    """icecast.xml for live broadcasts: the installation's own random passwords (kept in the
    data directory's secrets.json, 0600) and every listener checked by Loa's web app."""
    from broadcast.errors import LoaError
    from broadcast.fleet.streaming import StreamPasswords, write_config
    from broadcast.settings import Secrets

    settings = _settings(args)
    if not settings.live_enabled:
        settings.stream_port = DEMO_STREAM_PORT
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secrets = Secrets(settings.data_dir)
    out = Path(args.out) if args.out else settings.stream_dir
    try:
        config = write_config(
            out,
            host=settings.host,
            port=settings.stream_port,
            passwords=StreamPasswords(
                secrets.stream_source_password, secrets.stream_admin_password
            ),
            listener_auth_url=settings.listener_check_url,
        )
    except OSError as exc:
        raise LoaError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {config} (Icecast on {settings.host}:{settings.stream_port})")
    print(
        f"run it with: icecast2 -c {shlex.quote(str(config))}; then start the server with"
        f" LOA_STREAM_PORT={settings.stream_port} (and LOA_STREAM_URL if receivers reach it"
        " by another name)"
    )
    return 0


def cmd_mqtt_config(args: argparse.Namespace) -> int:
    """mosquitto.conf, passwd and acl for the server and every registered receiver; with
    --certfile/--keyfile a TLS listener for receivers beside the server's plain local one."""
    from broadcast.errors import LoaError
    from broadcast.fleet import registry
    from broadcast.fleet.brokers import BrokerError
    from broadcast.fleet.brokers.mosquitto import check_tls, is_loopback, write_config
    from broadcast.service import BroadcastService

    tls = _tls_listener(args)
    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        with service.db.session() as session:
            access = registry.broker_access(session, service.secrets.mqtt_password)
            try:
                config = write_config(
                    Path(args.out),
                    access,
                    args.host,
                    None if args.no_plain else args.port,
                    tls=tls,
                    server_port=args.server_port,
                    server_tls_port=args.server_tls_port,
                    persistence_dir=Path(args.persistence_dir) if args.persistence_dir else None,
                    broker_user=args.broker_user,
                )
                names = check_tls(tls).names if tls is not None else ()
            except BrokerError as exc:
                raise LoaError(str(exc)) from None
            except OSError as exc:
                raise LoaError(f"cannot write {args.out}: {exc.strerror or exc}") from None
            # what each receiver may hear from now on (once mosquitto reloads): the server
            # flags a receiver registered in zones the broker does not allow it
            registry.record_broker_access(session, access)
    finally:
        service.stop()
    print(config)
    if tls is not None:
        print(
            f"loa: receivers connect with TLS to port {tls.port} as {' or '.join(names)}: give"
            " the server LOA_DEVICE_MQTT_HOST, LOA_DEVICE_MQTT_PORT and LOA_DEVICE_MQTT_TLS_CA"
            " so their configs say so",
            file=sys.stderr,
        )
    else:
        print(
            f"loa: receivers connect to port {args.port}, the server to 127.0.0.1:"
            f"{args.server_port} (LOA_MQTT_PORT={args.server_port},"
            f" LOA_DEVICE_MQTT_PORT={args.port})",
            file=sys.stderr,
        )
    if tls is None and not args.no_plain and not is_loopback(args.host):
        print(
            "loa: receivers' passwords would cross the network in clear text: give --certfile"
            " and --keyfile for a TLS listener",
            file=sys.stderr,
        )
    if args.broker_user is None and os.geteuid() == 0:
        print("loa: mosquitto would run as root: give --broker-user mosquitto", file=sys.stderr)
    return 0


def cmd_nats_config(args: argparse.Namespace) -> int:
    """A ready N-node nats-server cluster for the server and every registered receiver: each
    node's nats-server.conf (users and ACL as for one node, bcrypt hashes from the database and
    secrets.json, never a clear password), start.sh and a systemd template unit."""
    from broadcast.errors import LoaError
    from broadcast.fleet import registry
    from broadcast.fleet.brokers import BrokerError
    from broadcast.fleet.brokers.mosquitto import TlsListener, check_tls
    from broadcast.fleet.brokers.nats import NatsTls, is_loopback, plan_cluster, write_cluster
    from broadcast.service import BroadcastService
    from broadcast.settings import Settings

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise LoaError("--tls-cert and --tls-key go together (the nodes' certificate and key)")
        tls = NatsTls(
            Path(args.tls_cert), Path(args.tls_key), Path(args.tls_ca) if args.tls_ca else None
        )
    elif args.tls_ca:
        raise LoaError("--tls-ca is for TLS between the nodes: give --tls-cert and --tls-key too")
    try:
        nodes = plan_cluster(
            Path(args.out),
            args.nodes,
            args.node_hosts,
            args.node_mqtt_ports,
            args.node_cluster_ports,
            args.node_monitor_ports,
            Path(args.store_dir) if args.store_dir else None,
        )
        if tls is not None:
            report = check_tls(TlsListener(tls.certfile, tls.keyfile, tls.cafile))
            for warning in report.warnings:
                print(f"loa: {warning}", file=sys.stderr)
    except BrokerError as exc:
        raise LoaError(str(exc)) from None
    # only --data: the node options (--host, --mqtt-port) are not the server's own settings
    settings = Settings.load({"data": args.data}, os.environ)
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        with service.db.session() as session:
            behind = registry.devices_needing_refresh(session)
            if behind:
                shown = " ".join(behind[:20]) + (" …" if len(behind) > 20 else "")
                raise LoaError(
                    f"{len(behind)} receiver(s) have no bcrypt hash of their broker password or"
                    f" no secret client id (registered before Loa kept them): run `loa device"
                    f" refresh --data {settings.data_dir} {shown}` (passwords stay), copy the"
                    " new configs to their Pis, then run loa nats-config again"
                )
            access = registry.broker_access(
                session,
                service.secrets.mqtt_password,
                registry.server_bcrypt(service.secrets),
            )
            try:
                files = write_cluster(
                    Path(args.out),
                    nodes,
                    access,
                    service.secrets.nats_route_password,
                    tls=tls,
                    run_as=args.broker_user,
                )
            except BrokerError as exc:
                raise LoaError(str(exc)) from None
            except OSError as exc:
                raise LoaError(f"cannot write {args.out}: {exc.strerror or exc}") from None
            registry.record_broker_access(session, access)
    finally:
        service.stop()
    for path in files.configs.values():
        print(path)
    print(files.start_script)
    print(files.unit)
    addresses = ",".join(node.mqtt_address for node in nodes)
    steps = [
        f"loa: {len(nodes)} node(s): {', '.join(f'{n.name} {n.mqtt_address}' for n in nodes)}",
        f"loa: copy {Path(args.out).resolve()}/<node>/ to each node's host at the same path,"
        f" readable by {args.broker_user} (chown -R {args.broker_user}), with the unit to"
        f" /etc/systemd/system/; then on each: systemctl enable --now loa-nats@<node>"
        f" (or {files.start_script} <node>)",
        f"loa: give the server LOA_MQTT_HOSTS={addresses} and the receivers the same"
        " (LOA_DEVICE_MQTT_HOSTS), then loa device refresh",
    ]
    if len(nodes) < 3:
        steps.append(
            f"loa: {len(nodes)} node(s) survive no node's loss (JetStream needs a majority):"
            " use 3 for a province"
        )
    if tls is None and not all(is_loopback(node.host) for node in nodes):
        steps.append(
            "loa: passwords would cross the network in clear text: give --tls-cert and --tls-key"
        )
    for line in steps:
        print(line, file=sys.stderr)
    return 0


def _tls_listener(args: argparse.Namespace) -> TlsListener | None:
    """The TLS listener the options describe, or None; options that need it are refused."""
    from broadcast.errors import LoaError
    from broadcast.fleet.brokers.mosquitto import DEFAULT_TLS_PORT, TlsListener

    if not args.certfile and not args.keyfile:
        given = [
            option
            for option, value in (
                ("--cafile", args.cafile),
                ("--require-certificate", args.require_certificate),
                ("--tls-host", args.tls_host),
                ("--tls-port", args.tls_port is not None),
            )
            if value
        ]
        if given:
            raise LoaError(f"{given[0]} is for the TLS listener: give --certfile and --keyfile")
        return None
    if not (args.certfile and args.keyfile):
        raise LoaError("--certfile and --keyfile go together (the broker's certificate and key)")
    return TlsListener(
        certfile=Path(args.certfile),
        keyfile=Path(args.keyfile),
        cafile=Path(args.cafile) if args.cafile else None,
        port=args.tls_port if args.tls_port is not None else DEFAULT_TLS_PORT,
        host=args.tls_host or "",
        require_certificate=args.require_certificate,
    )


def cmd_normalize(args: argparse.Namespace) -> int:
    import tts

    text = Path(args.file).read_text(encoding="utf-8") if args.file else sys.stdin.read()
    if args.lines:
        for line in text.splitlines():
            print(tts.normalize(line) if line.strip() else "")
    else:
        print(tts.normalize(text))
    return 0


def _read_text(path: str | None) -> str:
    """A document from a file (or standard input); a file that cannot be read is one clear
    error naming it. A UTF-8 byte-order mark (Windows Notepad) is dropped."""
    from broadcast.errors import LoaError

    if path is None or path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LoaError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise LoaError(f"cannot read {path}: it is a directory") from None
    except UnicodeDecodeError as exc:
        raise LoaError(
            f"cannot read {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise LoaError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_bytes(path: str) -> bytes:
    """A file's bytes, or one clear error naming it."""
    from broadcast.errors import LoaError

    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise LoaError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise LoaError(f"cannot read {path}: it is a directory") from None
    except OSError as exc:
        raise LoaError(f"cannot read {path}: {exc.strerror or exc}") from None


def _make_script(document: str, args: argparse.Namespace):
    """`tts.make_script` with the opening options of `loa script` and `loa say --script`."""
    import tts
    from broadcast.errors import LoaError

    template = args.opening or tts.DEFAULT_OPENING
    try:
        if args.commune is not None:
            return tts.make_script(document, commune=args.commune, template=template)
        if args.opening is None:
            return tts.make_script(document)
        title = tts.make_script(document).title
        return tts.make_script(document, opening=tts.render_opening(template, title=title))
    except tts.TtsError as exc:
        hint = " (give --commune NAME)" if "{commune}" in str(exc) else ""
        raise LoaError(f"{exc}{hint}") from None


def cmd_script(args: argparse.Namespace) -> int:
    script = _make_script(_read_text(args.file), args)
    print(script.text)
    if args.dropped:
        print(f"cut from the document ({len(script.dropped)} lines):", file=sys.stderr)
        for line in script.dropped:
            print(f"  {line}", file=sys.stderr)
    return 0


class _ProgressBar:
    """`[#####.....] 3/32` redrawn in place on a terminal, so a long document shows it is
    moving; nothing is drawn when stderr is a file or a pipe (logs and tests stay clean)."""

    def __init__(self, stream, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _check_output(path: Path) -> None:
    """Fail before minutes of synthesis if the MP3 could not be written anyway."""
    from broadcast.errors import LoaError

    parent = path.parent
    if path.is_dir():
        raise LoaError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise LoaError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LoaError(f"cannot write {path}: directory {parent} is not writable")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to `path`, then rename: a failure never leaves a half-written MP3."""
    from broadcast.errors import LoaError

    try:
        write_atomic(path, data, mode=PUBLIC, fsync=True, suffix=".tmp")
    except OSError as exc:
        raise LoaError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_voice_add(args: argparse.Namespace) -> int:
    """Check a Piper voice and install it in the data directory, for communes to choose."""
    import tts
    from broadcast.errors import LoaError, ValidationError
    from broadcast.sending.voices import VoiceShelf

    settings = _settings(args)
    shelf = VoiceShelf(settings.voices_dir)
    try:
        name, check = shelf.add(Path(args.file), args.name)
    except tts.TtsError as exc:
        raise LoaError(str(exc)) from None
    except ValidationError as exc:
        raise LoaError(f"--name: {exc.message}") from None
    except OSError as exc:
        raise LoaError(
            f"cannot install into {settings.voices_dir}: {exc.strerror or exc}"
        ) from None
    speakers = f", {check.speakers} speakers" if check.speakers > 1 else ""
    print(
        f"installed voice {name}: {check.size:,} bytes, sha256 {check.sha256},"
        f" {check.language}, {check.sample_rate} Hz{speakers}; the test sentence took"
        f" {check.test_seconds:g} s"
    )
    data = f" --data {shlex.quote(args.data)}" if args.data else ""
    print(
        f"choose it for a commune on the admin's zones page, or `loa voice use {name}"
        f" --zone ZONE{data}`; with several servers, install it on each"
    )
    return 0


def cmd_voice_list(args: argparse.Namespace) -> int:
    from broadcast.sending.voices import VoiceShelf

    names = VoiceShelf(_settings(args).voices_dir).names()
    if not names:
        print("no Piper voice installed: `loa voice add FILE.onnx` (README: Better voices)")
    for name in names:
        print(name)
    return 0


def cmd_voice_use(args: argparse.Namespace) -> int:
    from broadcast.errors import LoaError, ValidationError
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    voice = "" if args.voice == "default" else args.voice
    try:
        zone_id = service.admin.set_voice(None, args.zone, voice)
    except ValidationError as exc:
        raise LoaError(f"{'VOICE' if exc.field == 'voice' else exc.field}: {exc.message}") from None
    except LoaError as exc:
        raise LoaError(f"--zone: {exc.message}") from None
    finally:
        service.stop()
    print(f"{zone_id} is read in {voice or 'the installation default voice'} from now on")
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    import audio
    import tts
    from broadcast.errors import LoaError

    if args.text is not None and args.file is not None:
        raise LoaError("give the text or -f FILE, not both")
    if args.text is None and args.file is None and sys.stdin.isatty():
        raise LoaError('nothing to say: give the text ("...") or -f FILE')
    if args.repeat < 1:
        raise LoaError(f"--repeat must be at least 1, got {args.repeat}")
    text = args.text if args.text is not None else _read_text(args.file)
    output = Path(args.output)
    _check_output(output)
    if args.script:
        text = _make_script(text, args).text
    options: dict[str, object] = {}
    if args.model is not None:
        if args.tts != "piper":
            raise LoaError("--model is the voice file of --tts piper")
        options["model"] = args.model
    if args.gtts_url is not None:
        if args.tts != "gtts":
            raise LoaError("--gtts-url is for --tts gtts")
        options["base_url"] = args.gtts_url
    try:
        data = Path(args.data or os.environ.get("LOA_DATA_DIR") or DEFAULT_DATA_DIR)
        synth = tts.Synthesizer(data / "tts-cache", engine=args.tts, **options)
        progress = _ProgressBar(sys.stderr) if sys.stderr.isatty() else None
        parts = synth.synthesize_parts(text, progress)
    except tts.TtsError as exc:
        if str(exc) == "text is empty":
            raise LoaError("nothing to say: the text is empty") from None
        raise LoaError(str(exc)) from None
    try:
        data = audio.render_announcement(
            [part.path for part in parts], repeat=args.repeat, chime=not args.no_chime
        )
        seconds = audio.probe(data).duration_s
    except audio.AudioError as exc:
        raise LoaError(str(exc)) from None
    _write_atomically(output, data)
    cached = sum(part.cached for part in parts)
    voices = ", ".join(sorted({part.engine for part in parts}))
    minutes, rest = divmod(round(seconds), 60)
    count = f"{len(parts)} part" + ("s" if len(parts) != 1 else "")
    print(
        f"{output}: {minutes}:{rest:02d}, {len(data) // 1024} KiB, {count} "
        f"({cached} from cache), voice {voices}"
    )
    return 0


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data directory (default: $LOA_DATA_DIR, else ./var)")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    _add_data(parser)
    # No defaults here: an option not given falls back to its LOA_* variable, then to the
    # default of broadcast.settings.Settings (Settings.load).
    parser.add_argument("--host", help="web address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="web port (8080)")
    parser.add_argument("--mqtt-host", help="MQTT broker address")
    parser.add_argument("--mqtt-port", type=int, help="MQTT port (1883)")
    parser.add_argument(
        "--mqtt-hosts",
        metavar="HOST:PORT,...",
        help="several brokers (a cluster's nodes), tried in order with failover"
        " (default: $LOA_MQTT_HOSTS; else --mqtt-host and --mqtt-port)",
    )
    parser.add_argument(
        "--mqtt-tls-ca",
        help="TLS to the broker: its CA file, or 'system' (default: $LOA_MQTT_TLS_CA; none)",
    )
    parser.add_argument("--public-url", help="base URL receivers fetch media from")
    parser.add_argument(
        "--stream-port",
        type=int,
        help="run Icecast for live broadcasts on this port (default: $LOA_STREAM_PORT; 0: off;"
        f" loa demo: {DEMO_STREAM_PORT} when icecast2 is installed)",
    )
    parser.add_argument(
        "--stream-url",
        help="where receivers reach it (default: $LOA_STREAM_URL, else the public URL's host)",
    )
    parser.add_argument("--tts", choices=["espeak", "gtts", "piper"], help="TTS engine (espeak)")
    parser.add_argument("--tts-model", help="voice model file, for --tts piper")
    parser.add_argument(
        "--play-lead",
        type=float,
        help="seconds between sending an emergency and its synchronized start (3)",
    )
    parser.add_argument(
        "--routine-play-lead",
        type=float,
        help="the same for routine items sent at once (10)",
    )
    parser.add_argument(
        "--no-approval",
        action="store_true",
        help="bulletins need no leader's approval (a commune with one officer)",
    )
    parser.add_argument(
        "--trusted-proxies",
        type=int,
        metavar="N",
        help="reverse proxies in front that set X-Forwarded-For (nginx: 1; default:"
        " $LOA_TRUSTED_PROXIES, else 0: the header is ignored)",
    )


def _add_opening(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commune", default=None, help="open with 'Đài truyền thanh xã NAME …'")
    parser.add_argument(
        "--opening", default=None, help="opening template, fields {commune} and {title}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loa", description="Loa: commune loudspeaker network")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR (default: $LOA_LOG_LEVEL)"
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=None,
        help="text (default) or json: one JSON object per line (default: $LOA_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole system on embedded defaults")
    _add_server_options(demo)
    demo.add_argument("--receivers", type=int, default=3, help="simulated receivers (3)")
    demo.add_argument(
        "--province",
        action="store_true",
        help="seed a province of 3 communes (a province editor, an officer per "
        "commune) instead of one commune",
    )
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run the web server, scheduler and dispatcher")
    _add_server_options(serve)
    serve.add_argument("--embedded-broker", action="store_true", help="also run amqtt in-process")
    serve.set_defaults(func=cmd_serve)

    broker = sub.add_parser("broker", help="run the embedded MQTT broker alone")
    broker.add_argument("--host", default=DEFAULT_HOST)
    broker.add_argument("--port", type=int, default=DEFAULT_MQTT_PORT)
    broker.add_argument("--access", required=True, help="access file (users and ACL)")
    broker.set_defaults(func=cmd_broker)

    receiver = sub.add_parser("receiver", help="run the receiver agent (on the Pi)")
    receiver.add_argument("--config", required=True, help="receiver config file (JSON)")
    receiver.set_defaults(func=cmd_receiver)

    fleet = sub.add_parser("fleet", help="run N simulated receivers in one process")
    fleet.add_argument("--config-dir", default=f"{DEFAULT_DATA_DIR}/devices")
    fleet.add_argument("--count", type=int, default=None)
    fleet.set_defaults(func=cmd_fleet)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    user_add = user.add_parser(
        "add",
        help="add a user (the first admin, say), bound to their zone",
        description="Add a user. Every account works only inside its zone (a province admin in"
        " the whole province, a commune's staff in their commune, a village head in their"
        " village); one with no --zone is installation-wide. Zones by role: "
        + "; ".join(f"{role}: {text}" for role, text in _ROLE_ZONES_TEXT.items())
        + ".",
    )
    _add_data(user_add)
    user_add.add_argument("username")
    user_add.add_argument("--role", default="admin", choices=list(_ROLE_ZONES_TEXT))
    user_add.add_argument(
        "--zone",
        default=None,
        metavar="ZONE",
        help="the zone the user is bound to: its id or administrative code (`loa zones list`);"
        " none: installation-wide",
    )
    user_add.add_argument("--password", default=None, help="(prompted when omitted)")
    user_add.set_defaults(func=cmd_user_add)

    zones = sub.add_parser(
        "zones", help="the zone tree: province → communes → villages"
    ).add_subparsers(dest="action", required=True)
    zones_import = zones.add_parser(
        "import",
        help="create or update zones from a CSV file (columns code,name,kind,parent; all or"
        " nothing; importing it again changes nothing)",
    )
    _add_data(zones_import)
    zones_import.add_argument("file", help="the CSV file (UTF-8, with or without BOM)")
    zones_import.set_defaults(func=cmd_zones_import, log_level_default="WARNING")
    zones_add = zones.add_parser("add", help="add one zone")
    _add_data(zones_add)
    zones_add.add_argument(
        "--kind", required=True, help="province (tỉnh), commune (xã, phường) or village (thôn)"
    )
    zones_add.add_argument("--name", required=True, help="its name (Xã Hoằng Hợp)")
    zones_add.add_argument(
        "--code", default=None, help="administrative unit code: 2 digits (province), 5 (commune)"
    )
    zones_add.add_argument("--parent", default=None, help="the zone above it: id or code")
    zones_add.add_argument("--id", default=None, help="its id (default: made from the name)")
    zones_add.set_defaults(func=cmd_zones_add, log_level_default="WARNING")
    zones_move = zones.add_parser(
        "move", help="put a zone under another (a commune under its province)"
    )
    _add_data(zones_move)
    zones_move.add_argument("zone", help="the zone to move: id or code")
    zones_move.add_argument("--parent", required=True, help="the zone above it: id or code")
    zones_move.set_defaults(func=cmd_zones_move, log_level_default="WARNING")
    zones_list = zones.add_parser("list", help="print the zone tree")
    _add_data(zones_list)
    zones_list.set_defaults(func=cmd_zones_list, log_level_default="WARNING")

    device = sub.add_parser("device", help="receivers").add_subparsers(dest="action", required=True)
    device_add = device.add_parser(
        "add", help="register a receiver and print its config file (copy it to the Pi)"
    )
    _add_data(device_add)
    device_add.add_argument("id", help="device id, a lowercase slug (loa-thon-1-01)")
    device_add.add_argument("--zone", required=True, help="the village (or commune) it serves")
    device_add.add_argument("--name", default="", help="a readable name (Cụm loa chợ)")
    _add_device_broker(device_add)
    device_add.set_defaults(func=cmd_device_add)
    device_refresh = device.add_parser(
        "refresh",
        help="rewrite receivers' config files with today's broker address, TLS and zones"
        " (each keeps its password and gets a secret client id if it has none; copy the files"
        " to the Pis again)",
    )
    _add_data(device_refresh)
    device_refresh.add_argument("ids", nargs="*", help="device ids (every receiver when none)")
    _add_device_broker(device_refresh)
    device_refresh.set_defaults(func=cmd_device_refresh)

    keys = sub.add_parser("keys", help="the command signing key").add_subparsers(
        dest="action", required=True
    )
    keys_rotate = keys.add_parser(
        "rotate",
        help="a new signing key and sequence epoch: the way back for receivers that refuse a"
        " stream as stale (loa doctor --config); receivers need their refreshed configs",
    )
    _add_data(keys_rotate)
    keys_rotate.add_argument(
        "--epoch-only",
        action="store_true",
        help="keep the key (it did not leak): receivers accept the new epoch over the air",
    )
    keys_rotate.set_defaults(func=cmd_keys_rotate)

    stream_config = sub.add_parser(
        "stream-config", help="write icecast.xml for live broadcasts (phát trực tiếp)"
    )
    _add_data(stream_config)
    stream_config.add_argument(
        "--out", default=None, help="directory to write it into (default: DATA/stream)"
    )
    stream_config.add_argument("--host", help="Icecast's listen address (default 127.0.0.1)")
    stream_config.add_argument(
        "--port", type=int, help="the web app's port, which Icecast asks about listeners (8080)"
    )
    stream_config.add_argument(
        "--stream-port", type=int, help=f"Icecast's port ({DEMO_STREAM_PORT})"
    )
    stream_config.set_defaults(func=cmd_stream_config)

    mqtt_config = sub.add_parser(
        "mqtt-config", help="write mosquitto.conf, passwd and acl for the server and receivers"
    )
    _add_data(mqtt_config)
    mqtt_config.add_argument("--out", required=True, help="directory to write them into")
    mqtt_config.add_argument(
        "--host", default=DEFAULT_HOST, help="plain listen address (127.0.0.1; loopback with TLS)"
    )
    mqtt_config.add_argument(
        "--port", type=int, default=DEFAULT_MQTT_PORT, help="plain port (1883)"
    )
    mqtt_config.add_argument("--no-plain", action="store_true", help="no plain listener: TLS only")
    mqtt_config.add_argument(
        "--server-port",
        type=int,
        default=None,
        help="without TLS: the server's own listener on 127.0.0.1 (receivers use --port)",
    )
    mqtt_config.add_argument(
        "--server-tls-port",
        type=int,
        default=None,
        help="with TLS: a TLS listener for servers on other hosts (the server's login only)",
    )
    mqtt_config.add_argument(
        "--certfile", default="", help="the broker's TLS certificate (PEM): adds a TLS listener"
    )
    mqtt_config.add_argument("--keyfile", default="", help="its private key (PEM, unencrypted)")
    mqtt_config.add_argument("--cafile", default="", help="CA of receivers' client certificates")
    mqtt_config.add_argument(
        "--require-certificate",
        action="store_true",
        help="receivers must also show a client certificate signed by --cafile",
    )
    mqtt_config.add_argument("--tls-port", type=int, default=None, help="TLS port (8883)")
    mqtt_config.add_argument(
        "--tls-host", default="", help="TLS listen address (default: every interface)"
    )
    mqtt_config.add_argument(
        "--persistence-dir", default="", help="where mosquitto keeps sessions (default: --out)"
    )
    mqtt_config.add_argument(
        "--broker-user",
        default=None,
        help="the system user mosquitto runs as (mosquitto): the files are handed to it",
    )
    mqtt_config.set_defaults(func=cmd_mqtt_config)

    nats_config = sub.add_parser(
        "nats-config",
        help="write a nats-server cluster (per-node configs, start.sh, systemd unit) for the"
        " server and receivers",
        description="Write a ready N-node nats-server cluster (MQTT on JetStream, each MQTT"
        " stream kept on min(3, N) nodes) for the server and every registered receiver:"
        " OUT/<node>/nats-server.conf (0600), OUT/start.sh <node> and the systemd template unit"
        " OUT/loa-nats@.service. Passwords come as the bcrypt hashes Loa keeps (receivers"
        " registered before it kept them are named, with the `loa device refresh` that fixes"
        " them). Nodes on one host (a trial on loopback) get consecutive ports unless one"
        " port per node is given.",
    )
    _add_data(nats_config)
    nats_config.add_argument("--out", required=True, help="directory to write them into")
    nats_config.add_argument(
        "--nodes", type=int, required=True, help="how many nodes (3 survive any one's loss)"
    )
    nats_config.add_argument(
        "--host",
        dest="node_hosts",
        nargs="+",
        default=["127.0.0.1"],
        metavar="H",
        help="each node's address as receivers and the other nodes reach it: one per node, or"
        " one for all (default 127.0.0.1: a trial on this machine)",
    )
    for flag, default, what in (
        ("--mqtt-port", 1883, "MQTT port"),
        ("--cluster-port", 6222, "port of the routes between nodes"),
        ("--monitor-port", 8222, "monitoring port, on 127.0.0.1 (/healthz)"),
    ):
        nats_config.add_argument(
            flag,
            dest="node_" + flag[2:].replace("-", "_") + "s",
            type=int,
            nargs="+",
            default=[default],
            metavar="P",
            help=f"{what}: one per node, or one for all ({default})",
        )
    nats_config.add_argument(
        "--store-dir",
        default="",
        help="where JetStream keeps its files, a folder per node (default: OUT/<node>/jetstream)",
    )
    nats_config.add_argument(
        "--tls-cert", default="", help="the nodes' TLS certificate (PEM): MQTT over TLS"
    )
    nats_config.add_argument("--tls-key", default="", help="its private key (PEM, unencrypted)")
    nats_config.add_argument(
        "--tls-ca",
        default="",
        help="CA of the nodes' certificate: the routes between nodes use TLS too (the"
        " certificate must name every node and allow client and server use)",
    )
    nats_config.add_argument(
        "--broker-user",
        default="nats",
        help="the system user nats-server runs as in the systemd unit (nats, Debian's)",
    )
    nats_config.set_defaults(func=cmd_nats_config)

    doctor = sub.add_parser(
        "doctor", help="check a server (--data) or a receiver (--config) and say what to fix"
    )
    _add_server_options(doctor)
    doctor.add_argument("--config", default=None, help="a receiver's config file: check the Pi")
    doctor.set_defaults(func=cmd_doctor, log_level_default="WARNING")

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    token_create = token.add_parser("create", help="print a new API token for a user")
    _add_data(token_create)
    token_create.add_argument("username")
    token_create.set_defaults(func=cmd_token_create)

    script = sub.add_parser(
        "script", help="print what an official document reads as on the loudspeakers"
    )
    script.add_argument("-f", "--file", default=None, help="the document (UTF-8; default stdin)")
    _add_opening(script)
    script.add_argument("--dropped", action="store_true", help="also print what was cut (stderr)")
    script.set_defaults(func=cmd_script, log_level_default="WARNING")

    voice = sub.add_parser(
        "voice", help="Piper voices communes may choose to be read in"
    ).add_subparsers(dest="action", required=True)
    voice_add = voice.add_parser(
        "add",
        help="check a Piper voice (.onnx with its .onnx.json beside it: Vietnamese, sample"
        " rate, a test sentence) and install it in the data directory",
    )
    _add_data(voice_add)
    voice_add.add_argument("file", help="the voice's .onnx file")
    voice_add.add_argument("--name", default=None, help="its name (default: the file's)")
    voice_add.set_defaults(func=cmd_voice_add, log_level_default="WARNING")
    voice_list = voice.add_parser("list", help="the voices installed")
    _add_data(voice_list)
    voice_list.set_defaults(func=cmd_voice_list, log_level_default="WARNING")
    voice_use = voice.add_parser("use", help="the voice a province or commune is read in")
    _add_data(voice_use)
    voice_use.add_argument("voice", help="an installed voice, or `default` (the server's)")
    voice_use.add_argument("--zone", required=True, help="the province or commune: id or code")
    voice_use.set_defaults(func=cmd_voice_use, log_level_default="WARNING")

    say = sub.add_parser("say", help="read a text or document into a broadcast MP3")
    say.add_argument("text", nargs="?", default=None, help="the text to read")
    say.add_argument("-f", "--file", default=None, help="read this file (UTF-8) instead")
    say.add_argument("-o", "--output", required=True, help="the MP3 to write")
    say.add_argument("--tts", default="espeak", help="engine: espeak (default), gtts or piper")
    say.add_argument("--model", default=None, help="Piper voice file (.onnx, .onnx.json beside)")
    say.add_argument("--gtts-url", default=None, help="another host for gtts (a relay)")
    say.add_argument("--repeat", type=int, default=1, help="read it N times (1)")
    say.add_argument("--no-chime", action="store_true", help="no chime before the reading")
    say.add_argument("--script", action="store_true", help="an official document: read its script")
    _add_opening(say)
    _add_data(say)
    say.set_defaults(func=cmd_say, log_level_default="WARNING")

    normalize = sub.add_parser("normalize", help="print the spoken form of a text")
    normalize.add_argument("-f", "--file", default=None)
    normalize.add_argument("--lines", action="store_true", help="one output line per input line")
    normalize.set_defaults(func=cmd_normalize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `say` and `script` print results, not a running log: they default to WARNING.
    log_level = args.log_level = (
        args.log_level
        or os.environ.get("LOA_LOG_LEVEL")
        or getattr(args, "log_level_default", "INFO")
    )
    logs.configure(str(log_level), args.log_format)
    from broadcast.errors import LoaError

    func: Callable[[argparse.Namespace], int] = args.func
    on_receiver = func in (cmd_receiver, cmd_fleet) or (func is cmd_doctor and args.config)
    try:
        if not on_receiver:
            # Receivers keep no audit log, and a Pi has only the receiver's packages.
            from broadcast.people import audit

            audit.set_origin(f"cli {getpass.getuser()}")
        return func(args)
    except LoaError as exc:
        print(f"loa: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OWN_PACKAGES:
            raise
        print(
            f"loa {args.command}: the server's packages are not installed ({exc.name} is "
            "missing): pip install 'loa[server]' (a receiver needs only `pip install loa`)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
