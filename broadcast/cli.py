"""The `loa` command line: one entry point for the server, the broker, receivers and admin tasks.

Receiver commands import only `devices`, so a Pi does not load the server's dependencies.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from broadcast.const import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_WEB_PORT

_LOGGER = logging.getLogger(__name__)


def _settings(args: argparse.Namespace):
    from broadcast.settings import Settings

    return Settings(
        data_dir=Path(args.data),
        host=getattr(args, "host", DEFAULT_HOST),
        port=getattr(args, "port", DEFAULT_WEB_PORT),
        mqtt_host=getattr(args, "mqtt_host", DEFAULT_HOST),
        mqtt_port=getattr(args, "mqtt_port", DEFAULT_MQTT_PORT),
        public_url=getattr(args, "public_url", "") or "",
        tts_engine=getattr(args, "tts", "espeak"),
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from broadcast import runner, seed
    from broadcast.service import BroadcastService

    if args.receivers < 1:
        print("loa: --receivers must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    service = BroadcastService(settings)
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
                    f"  API token:  {demo.api_token}",
                    f"  MQTT:       {settings.mqtt_host}:{settings.mqtt_port} (embedded amqtt)",
                    f"  Receivers:  {len(demo.receiver_configs)} simulated, writing what they play"
                    f" to {played}/<device>/played/ (log: played.jsonl)",
                    f"  Data:       {settings.data_dir}",
                    "",
                ]
            ),
            flush=True,
        )

    fleet = runner.Fleet(settings.devices_dir, len(demo.receiver_configs))
    return runner.run(service, embedded_broker=True, fleet=fleet, banner=banner)


def cmd_serve(args: argparse.Namespace) -> int:
    from broadcast import runner
    from broadcast.service import BroadcastService

    settings = _settings(args)
    service = BroadcastService(settings)

    def banner() -> None:
        print(
            f"Loa server on {settings.public_url}/ (MQTT {settings.mqtt_host}:"
            f"{settings.mqtt_port})",
            flush=True,
        )

    return runner.run(service, embedded_broker=args.embedded_broker, banner=banner)


def cmd_broker(args: argparse.Namespace) -> int:
    from broadcast.brokers.embedded import serve

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


def cmd_user_add(args: argparse.Namespace) -> int:
    from broadcast import accounts
    from broadcast.const import Role
    from broadcast.service import BroadcastService

    password = args.password or getpass.getpass(f"Password for {args.username}: ")
    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        with service.db.session() as session:
            accounts.create_user(session, args.username, password, Role(args.role), args.zone)
    finally:
        service.db.dispose()
    print(f"created user {args.username} ({args.role})")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from broadcast import accounts
    from broadcast.service import BroadcastService

    service = BroadcastService(_settings(args), connect_mqtt=False)
    try:
        with service.db.session() as session:
            token = accounts.create_token(session, accounts.get_user(session, args.username))
    finally:
        service.db.dispose()
    print(token)
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    import tts

    text = Path(args.file).read_text(encoding="utf-8") if args.file else sys.stdin.read()
    if args.lines:
        for line in text.splitlines():
            print(tts.normalize(line) if line.strip() else "")
    else:
        print(tts.normalize(text))
    return 0


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=DEFAULT_DATA_DIR, help="data directory (default ./var)")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    _add_data(parser)
    parser.add_argument("--host", default=DEFAULT_HOST, help="web address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_WEB_PORT, help="web port (8080)")
    parser.add_argument("--mqtt-host", default=DEFAULT_HOST, help="MQTT broker address")
    parser.add_argument("--mqtt-port", type=int, default=DEFAULT_MQTT_PORT, help="MQTT port (1883)")
    parser.add_argument("--public-url", default="", help="base URL receivers fetch media from")
    parser.add_argument("--tts", default="espeak", choices=["espeak", "gtts"], help="TTS engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loa", description="Loa: commune loudspeaker network")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole system on embedded defaults")
    _add_server_options(demo)
    demo.add_argument("--receivers", type=int, default=3, help="simulated receivers (3)")
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
    user_add = user.add_parser("add", help="add a user (the first admin, say)")
    _add_data(user_add)
    user_add.add_argument("username")
    user_add.add_argument(
        "--role", default="admin", choices=["admin", "officer", "leader", "village_head", "viewer"]
    )
    user_add.add_argument("--zone", default=None, help="village id, for a village head")
    user_add.add_argument("--password", default=None, help="(prompted when omitted)")
    user_add.set_defaults(func=cmd_user_add)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    token_create = token.add_parser("create", help="print a new API token for a user")
    _add_data(token_create)
    token_create.add_argument("username")
    token_create.set_defaults(func=cmd_token_create)

    normalize = sub.add_parser("normalize", help="print the spoken form of a text")
    normalize.add_argument("-f", "--file", default=None)
    normalize.add_argument("--lines", action="store_true", help="one output line per input line")
    normalize.set_defaults(func=cmd_normalize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "apscheduler.scheduler", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    from broadcast.errors import LoaError

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LoaError as exc:
        print(f"loa: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
