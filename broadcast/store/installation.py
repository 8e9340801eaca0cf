"""Facts every server of one database must agree on, kept in the database (`installation`).

`secrets`: a fingerprint of the secrets every node must share (`secrets.json`: the broker
password, the server's MQTT client-id token, the Flask key), recorded at first start, compared
by `loa doctor`.

`signing_key`: the public key commands are signed with. Receivers pin it (their config file
carries it), so every node serving one database must sign with the same private key file: the
first server to start records its key here, `loa keys rotate` replaces it, and a node whose
key file differs (a second host whose key was not copied, a node left behind by a rotation)
refuses to start and fails `loa doctor`, naming the file to copy.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from broadcast.store.models import InstallationFact, utcnow

SIGNING_KEY = "signing_key"
SECRETS = "secrets"  # a fingerprint of secrets.json's shared part (`Secrets.shared_fingerprint`)
_UPSERT_DIALECTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def recorded(engine: Engine, name: str) -> str | None:
    """The value recorded under `name`, or None before anyone recorded one."""
    with engine.connect() as connection:
        return connection.execute(
            select(InstallationFact.value).where(InstallationFact.name == name)
        ).scalar_one_or_none()


def agree(engine: Engine, name: str, value: str) -> str:
    """Record `value` under `name` unless a value is recorded already; return what is recorded
    (ours, or the one a first server wrote before us: whoever is first wins, atomically)."""
    insert = _UPSERT_DIALECTS[engine.dialect.name]
    with engine.begin() as connection:
        connection.execute(
            insert(InstallationFact)
            .values(name=name, value=value, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=[InstallationFact.name])
        )
        return connection.execute(
            select(InstallationFact.value).where(InstallationFact.name == name)
        ).scalar_one()


def replace(engine: Engine, name: str, value: str) -> None:
    """Record `value` under `name`, over any older one (`loa keys rotate`)."""
    insert = _UPSERT_DIALECTS[engine.dialect.name]
    statement = insert(InstallationFact).values(name=name, value=value, updated_at=utcnow())
    with engine.begin() as connection:
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[InstallationFact.name],
                set_={"value": value, "updated_at": statement.excluded.updated_at},
            )
        )


def key_mismatch(key_path: str, ours: str, expected: str) -> str:
    """What is wrong with a node whose signing key differs (the server's refusal, the
    doctor's finding); `KEY_FIX` says what to do."""
    return (
        f"the signing key {key_path} ({ours}) is not the one this database's receivers"
        f" trust ({expected})"
    )


KEY_FIX = (
    "copy keys/server_ed25519.pem (and secrets.json) from a server that signs with it into"
    " this data directory, or run `loa keys rotate` to replace the key everywhere"
)


def secrets_mismatch(data_dir: object) -> str:
    """A node whose secrets.json is not the other servers' (taken before they were made, or
    never copied): another broker password and answer-back session; `SECRETS_FIX` says what
    to do."""
    return f"{data_dir}/secrets.json is not the one the other servers of this database use"


SECRETS_FIX = "copy secrets.json from the server that started first, then restart this one"
