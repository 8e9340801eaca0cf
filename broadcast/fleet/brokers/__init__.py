"""MQTT broker back-ends for Loa: one access description, three brokers.

`BrokerAccess` (users, `$7$` password hashes, per-user topic ACLs) is rendered for the embedded
amqtt broker (`broadcast.fleet.brokers.embedded`, the single-machine default), for mosquitto
(`broadcast.fleet.brokers.mosquitto`, production) or for nats-server
(`broadcast.fleet.brokers.nats`, the clustered candidate, which also needs the passwords).
Every failure a person can fix surfaces as a one-line `BrokerError` naming the host:port or the
file.

    access = BrokerAccess((server_user("loa-server", pw), device_user("dev-1", pw1, ["xa-1"])))
    access.save(path)                                  # JSON, mode 0600
    EmbeddedBroker("127.0.0.1", 1883, access).start()  # or MosquittoBroker(dir, host, ...)

amqtt and mosquitto behave the same for Loa's clients (tests/broadcast/fleet/brokers proves it
on each; nats-server too, except that it cannot bind client ids to logins, so Loa's clients use
secret ones, `secret_client_id`); see
`broadcast.fleet.brokers.amqtt_broker` for the amqtt 0.12 behaviour corrected to match mosquitto.
"""

from __future__ import annotations

import logging

from broadcast.fleet.brokers.access import (
    DEVICE_COMMAND_FILTER,
    ZONE_COMMAND_FILTER,
    BrokerAccess,
    BrokerError,
    BrokerUser,
    bcrypt_hash,
    device_user,
    filter_covers,
    hash_password,
    locked_hash,
    new_client_token,
    secret_client_id,
    server_user,
    topic_matches,
    verify_bcrypt,
    verify_password,
)
from broadcast.fleet.brokers.net import format_address, port_is_free, wait_for_port

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "DEVICE_COMMAND_FILTER",
    "ZONE_COMMAND_FILTER",
    "BrokerAccess",
    "BrokerError",
    "BrokerUser",
    "bcrypt_hash",
    "device_user",
    "filter_covers",
    "format_address",
    "hash_password",
    "locked_hash",
    "new_client_token",
    "port_is_free",
    "secret_client_id",
    "server_user",
    "topic_matches",
    "verify_bcrypt",
    "verify_password",
    "wait_for_port",
]
