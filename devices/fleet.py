"""`loa fleet`: many simulated receivers in one process, for demos and load tests.

A commune has dozens of loudspeakers; starting a Python process (and a paho thread pair) per
receiver on one laptop is wasteful, so the fleet runs N `ReceiverAgent`s side by side, each with
its own config file, credentials, cache and player, exactly as N Pis would.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from devices.agent import LOG_LEVELS, ReceiverAgent, configure_logging, load_config, run_agents
from wire.config import ConfigError, ReceiverConfig

_LOGGER = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class FleetError(Exception):
    """A fleet that cannot start; the message says which directory or file to fix."""


def load_fleet(config_dir: Path, count: int | None = None) -> list[ReceiverConfig]:
    """The first `count` configs (`*.json`, sorted by name) of `config_dir`; all if None."""
    if not config_dir.is_dir():
        raise FleetError(f"{config_dir}: not a directory")
    files = sorted(config_dir.glob("*.json"))
    if count is not None:
        if count < 1:
            raise FleetError("--count must be at least 1")
        if len(files) < count:
            raise FleetError(
                f"{config_dir}: --count {count} but only {len(files)} receiver config(s) there"
            )
        files = files[:count]
    if not files:
        raise FleetError(f"{config_dir}: no receiver configs (*.json)")
    configs = [load_config(path) for path in files]
    seen: dict[str, Path] = {}
    for path, config in zip(files, configs, strict=True):
        if config.device_id in seen:
            raise FleetError(
                f"{path}: device_id {config.device_id!r} is also used by {seen[config.device_id]}"
            )
        seen[config.device_id] = path
    data_dirs: dict[str, Path] = {}
    for path, config in zip(files, configs, strict=True):
        key = str(Path(config.data_dir).resolve())
        if key in data_dirs:
            raise FleetError(f"{path}: data_dir is shared with {data_dirs[key]}")
        data_dirs[key] = path
    return configs


def _exit_with_parent(parent_pid: int) -> bool:
    """Ask Linux for SIGTERM when our parent dies (even by SIGKILL), so simulated receivers never
    outlive the demo that started them. False if the parent is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent_pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loa fleet", description="Run several simulated receivers in one process."
    )
    parser.add_argument(
        "--config-dir", required=True, type=Path, help="folder of receiver configs (*.json)"
    )
    parser.add_argument("--count", type=int, default=None, help="run the first N (default: all)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    parser.add_argument(
        "--exit-with-parent",
        type=int,
        default=None,
        metavar="PID",
        help="stop when process PID (the demo that started this fleet) is gone",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    if args.exit_with_parent is not None and not _exit_with_parent(args.exit_with_parent):
        return 0
    try:
        configs = load_fleet(args.config_dir, args.count)
        agents = [ReceiverAgent(config) for config in configs]
    except (FleetError, ConfigError) as exc:
        print(f"loa fleet: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"loa fleet: cannot prepare {exc.filename or 'data_dir'}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    _LOGGER.info("running %d receivers: %s", len(agents), ", ".join(a.device_id for a in agents))
    try:
        return run_agents(agents)
    except ConfigError as exc:  # another agent runs on one of their data directories
        print(f"loa fleet: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run the imported module, not `__main__`, so log lines say `devices.fleet`.
    from devices.fleet import main as _main

    sys.exit(_main())
