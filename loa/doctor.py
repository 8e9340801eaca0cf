"""`loa doctor --data DIR` on the server: what a running Loa needs, checked, with what to fix.

The database (reachable, schema at the newest migration; on PostgreSQL, which server of the URL
answered and whether it takes writes), the set-up (zones and an admin), receivers that do not
hear the zones they are registered in, the data directory and its disk, the signing key
(present, private, and the one the database records: every server of one database must sign
with the key its receivers pin), the broker (reachable, and the server's own login accepted),
speech synthesis with the configured engine, and the clock. Read-only: it changes nothing (it
does not even migrate the database). Receivers have their own: `loa doctor --config`.
"""

from __future__ import annotations

import logging
import stat
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.desks.setup import Setup
from broadcast.errors import LoaError
from broadcast.fleet import receivers
from broadcast.settings import Secrets, Settings
from broadcast.store import db, installation
from broadcast.store.models import Device
from devices.doctor import Check, clock_check, disk_check, mqtt_login_check, tcp_check
from wire import protocol

_LOGGER = logging.getLogger(__name__)


def database_check(url: str) -> Check:
    """Reachable, at the newest migration, and (PostgreSQL) which server of the URL answered
    and whether it takes writes: a standby never may."""
    head = db.head_revision()
    shown = url.split("@")[-1] if "@" in url else url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return Check("database", False, f"{shown} does not exist yet",
                     "start the server once (`loa serve`): it creates and migrates it")  # fmt: skip
    try:
        engine = db.make_engine(url)
        try:
            current = db.current_revision(engine)
            reached = db.server_reached(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        problem = f"{shown}: {exc.__class__.__name__}: {exc}"[:300]
        return Check("database", False, problem, "check the server and LOA_DATABASE_URL")
    where = f" (reached {reached})" if reached is not None else ""
    if reached is not None and reached.read_only:
        return Check(
            "database", False, f"{shown}{where}: Loa cannot write there",
            "name the primary in LOA_DATABASE_URL and keep target_session_attrs=read-write"
            " (Loa's default); a standby takes writes only once promoted",
        )  # fmt: skip
    if current != head:
        return Check(
            "database", False, f"{shown}{where} is at migration {current or 'none'}, code"
            f" needs {head}", "start the server once (`loa serve`): it migrates on start",
        )  # fmt: skip
    return Check("database", True, f"{shown}{where} at migration {head}")


def key_check(path: Path) -> Check:
    if not path.exists():
        fix = "start the server once: it generates the key (receivers need its public key)"
        return Check("signing key", False, f"{path} is missing", fix)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("signing key", False, f"{path} is readable by others (mode {mode:o})",
                     f"chmod 600 {path}")  # fmt: skip
    return Check("signing key", True, f"{path} (mode {mode:o})")


def fleet_key_check(database_url: str, path: Path) -> Check:
    """The node's key is the one the database records (`broadcast.store.installation`): every
    server of one database signs with the key its receivers pin."""
    try:
        ours = protocol.public_key_to_text(
            protocol.private_key_from_pem(path.read_bytes()).public_key()
        )
    except (OSError, ValueError, protocol.ProtocolError) as exc:
        return Check("fleet's key", False, f"{path}: {exc}"[:300],
                     "copy keys/server_ed25519.pem from a working server")  # fmt: skip
    engine = db.make_engine(database_url)
    try:
        expected = installation.recorded(engine, installation.SIGNING_KEY)
    except SQLAlchemyError as exc:
        return Check("fleet's key", False, f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        engine.dispose()
    if expected is None:
        return Check("fleet's key", True, f"{ours} (the database records none yet: the next"
                     " server to start records it)")  # fmt: skip
    if expected != ours:
        problem = installation.key_mismatch(str(path), ours, expected)
        return Check("fleet's key", False, problem, installation.KEY_FIX)
    return Check("fleet's key", True, f"{ours}, as the database records")


def shared_secrets_check(settings: Settings) -> Check:
    """The node's secrets.json is the one the other servers of its database use (the broker
    login and the answer-back session they hand over to one another)."""
    ours = Secrets(settings.data_dir).shared_fingerprint()
    engine = db.make_engine(settings.database_url)
    try:
        expected = installation.recorded(engine, installation.SECRETS)
    except SQLAlchemyError as exc:
        return Check("shared secrets", False, f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        engine.dispose()
    if expected is not None and expected != ours:
        problem = installation.secrets_mismatch(settings.data_dir)
        return Check("shared secrets", False, problem, installation.SECRETS_FIX)
    return Check("shared secrets", True, f"secrets.json {ours}")


def speech_check(settings: Settings) -> Check:
    import tts

    try:
        with tempfile.TemporaryDirectory() as folder:
            synth = tts.Synthesizer(
                Path(folder), engine=settings.tts_engine, **settings.tts_options
            )
            result = synth.synthesize("Xin chào bà con.")
            size = result.path.stat().st_size
    except Exception as exc:  # any engine failure is the finding here
        return Check("speech", False, f"{settings.tts_engine}: {exc}"[:300],
                     "see README 'Vietnamese speech' for the engine's needs")  # fmt: skip
    return Check("speech", True, f"{result.engine} spoke a test sentence ({size} bytes)")


ZONE_PROBLEMS_SHOWN = 5  # a province may have hundreds after a reorganisation: name a few


def describe_zone_check(found: receivers.ZoneCheck) -> str:
    """One receiver's zone problem, in words (English: the doctor's language)."""
    if not found.config_ok:
        listening = ", ".join(found.listening or ()) or "no zone"
        return (
            f"{found.device_id} listens to {listening} but is registered in"
            f" {', '.join(found.expected)} (its config file is stale)"
        )
    if found.not_allowed:
        return (
            f"{found.device_id}: the broker's access list does not let it hear"
            f" {', '.join(found.not_allowed)}"
        )
    return f"{found.device_id}: the broker refused {', '.join(found.refused_topics)}"


def zone_fix(problems: list[receivers.ZoneCheck]) -> str:
    """What to run, naming the receivers whose config must be refreshed and copied."""
    stale_configs = [found.device_id for found in problems if not found.config_ok]
    steps = []
    if stale_configs:
        shown = " ".join(stale_configs[:ZONE_PROBLEMS_SHOWN])
        more = " …" if len(stale_configs) > ZONE_PROBLEMS_SHOWN else ""
        steps.append(f"`loa device refresh {shown}{more}` and copy each config to its receiver")
    steps.append("`loa mqtt-config` and reload mosquitto (embedded broker: restart the server)")
    return ", then ".join(steps)


def receivers_check(database_url: str) -> Check:
    """Receivers that do not hear the zones they are registered in (`receivers.zone_check`):
    a stale config on the receiver, or a broker access list not rewritten since."""
    database = db.Database(database_url)
    try:
        with database.session() as session:
            devices = session.scalars(select(Device).order_by(Device.id)).all()
            problems = [found for found in map(receivers.zone_check, devices) if not found.ok]
    except SQLAlchemyError as exc:
        return Check("receivers' zones", False, f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        database.dispose()
    if not problems:
        return Check("receivers' zones", True,
                     f"{len(devices)} receivers hear the zones they are registered in")  # fmt: skip
    detail = "; ".join(describe_zone_check(found) for found in problems[:ZONE_PROBLEMS_SHOWN])
    if len(problems) > ZONE_PROBLEMS_SHOWN:
        detail += f"; and {len(problems) - ZONE_PROBLEMS_SHOWN} more"
    heading = f"{len(problems)} of {len(devices)} receivers do not hear their zones: "
    return Check("receivers' zones", False, heading + detail, zone_fix(problems))


def setup_check(settings: Settings) -> Check:
    """Zones to broadcast to and an admin to sign in: without them `loa serve` refuses to
    start (the steps it prints are the fix)."""
    database = db.Database(settings.database_url)
    try:
        found = Setup(database).readiness()
    except SQLAlchemyError as exc:
        return Check("set-up", False, f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        database.dispose()
    detail = f"zones: {found.zones}, communes: {found.communes}, active admins: {found.admins}"
    if found.ready:
        return Check("set-up", True, detail)
    data = f"--data {settings.data_dir}"
    steps = []
    if not found.zones:
        steps.append(f"`loa zones import FILE.csv {data}` (or `loa zones add`)")
    if not found.admins:
        steps.append(f"`loa user add admin --role admin {data}`")
    return Check("set-up", False, detail, ", then ".join(steps))


def server_checks(settings: Settings) -> list[Check]:
    checks = [
        disk_check("data directory", settings.data_dir),
        database_check(settings.database_url),
    ]
    if checks[-1].ok:
        checks.append(setup_check(settings))
        checks.append(receivers_check(settings.database_url))
    key_path = settings.data_dir / "keys" / "server_ed25519.pem"
    checks.append(key_check(key_path))
    if checks[1].ok and key_path.exists():
        checks.append(fleet_key_check(settings.database_url, key_path))
    if checks[1].ok and (settings.data_dir / "secrets.json").exists():
        checks.append(shared_secrets_check(settings))
    brokers = settings.server_brokers
    reachable = []
    for address in brokers:  # every node of a cluster: the server fails over between them
        name = "broker" if len(brokers) == 1 else f"broker {address}"
        check = tcp_check(name, address.host, address.port, f"start the broker on {address}")
        checks.append(check)
        if check.ok:
            reachable.append(address)
    secrets_file = settings.data_dir / "secrets.json"
    tls = None
    tls_ok = True
    try:
        tls = settings.mqtt_tls_context()
    except LoaError as exc:
        tls_ok = False
        checks.append(Check("broker TLS", False, str(exc), "fix LOA_MQTT_TLS_CA/CERT/KEY"))
    if tls_ok and reachable and secrets_file.exists():
        checks.append(
            mqtt_login_check(
                "broker login",
                reachable[0].host,
                reachable[0].port,
                SERVER_MQTT_USERNAME,
                Secrets(settings.data_dir).mqtt_password,
                "regenerate the broker's users: `loa mqtt-config`, then reload mosquitto",
                tls,
            )
        )
    checks.append(speech_check(settings))
    checks.append(clock_check())
    return checks
