"""BrokerAccess: `$7$` hashes compatible with mosquitto_passwd, ACL semantics, the access file."""

from __future__ import annotations

import json
import logging
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support import MqttProbe, RunningBroker, connected

from broadcast.fleet.brokers import (
    BrokerAccess,
    BrokerError,
    BrokerUser,
    device_user,
    filter_covers,
    hash_password,
    locked_hash,
    new_client_token,
    secret_client_id,
    server_user,
    topic_matches,
    verify_password,
)
from wire import protocol

_LOGGER = logging.getLogger(__name__)

HASH_FORMAT = re.compile(r"^\$7\$\d+\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def _mosquitto_passwd() -> str:
    """The Debian `mosquitto` package's tool; its absence fails the test (CI must not skip)."""
    tool = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin")
    if tool is None:
        pytest.fail("mosquitto_passwd not found: install the Debian package 'mosquitto'")
    return tool


def _mosquitto_hash(tmp_path: Path, username: str, password: str) -> str:
    passwd = tmp_path / "made-by-mosquitto_passwd"
    subprocess.run(
        [_mosquitto_passwd(), "-c", "-b", str(passwd), username, password],
        check=True,
        capture_output=True,
        timeout=10,
    )
    name, password_hash = passwd.read_text().strip().split(":", 1)
    assert name == username
    return password_hash


def test_hash_format_and_verification() -> None:
    made = hash_password("s3cret-pässword")
    assert HASH_FORMAT.match(made), made
    assert verify_password("s3cret-pässword", made)
    assert not verify_password("s3cret-password", made)
    assert hash_password("same") != hash_password("same"), "every hash needs its own salt"
    assert verify_password("x", hash_password("x", iterations=101))


@pytest.mark.parametrize(
    "bad",
    ["", "plain", "$6$abc$def", "$7$", "$7$abc$AAAA$AAAA", "$7$10$!!!!$AAAA", "$7$10$AAAA$AAAA"],
)
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert not verify_password("", bad)
    with pytest.raises(ValueError):
        BrokerUser("someone", bad)


def test_a_mosquitto_passwd_hash_verifies_in_ours(tmp_path: Path) -> None:
    theirs = _mosquitto_hash(tmp_path, "dev-a", "their-secret")
    assert HASH_FORMAT.match(theirs), theirs
    assert verify_password("their-secret", theirs)
    assert not verify_password("their-secreT", theirs)


# nats-server cannot read `$7$` hashes at all: it is given the passwords (test_nats.py)
@pytest.mark.parametrize("broker_kind", ["amqtt", "mosquitto"])
def test_one_hash_format_serves_both_brokers(
    broker_kind: str,
    broker_factory: Callable[[str, BrokerAccess], RunningBroker],
    tmp_path: Path,
) -> None:
    """Our hash is accepted by mosquitto and mosquitto_passwd's by the embedded broker."""
    ours = hash_password("our-secret")
    theirs = _mosquitto_hash(tmp_path, "theirs", "their-secret")
    access = BrokerAccess((BrokerUser("ours", ours), BrokerUser("theirs", theirs)))
    broker = broker_factory(broker_kind, access)
    for username, password in (("ours", "our-secret"), ("theirs", "their-secret")):
        connected(broker, username, password, username).close()
        refused = MqttProbe(broker, username, username, password + "x")
        try:
            assert refused.connect()[0].is_failure
        finally:
            refused.close()


def test_roles_follow_the_protocol_topics() -> None:
    server = server_user("loa-server", "pw")
    assert server.may_publish(protocol.device_command_topic("dev-a"))
    assert server.may_publish(protocol.zone_command_topic("xa-1"))
    assert server.may_publish(protocol.device_manifest_topic("dev-a"))
    assert server.may_subscribe(protocol.STATE_TOPIC_FILTER)
    assert server.may_subscribe(protocol.EVENT_TOPIC_FILTER)
    assert not server.may_subscribe(f"{protocol.TOPIC_ROOT}/#")
    assert not server.may_publish(protocol.device_state_topic("dev-a"))

    device = device_user("dev-a", "pw", ["xa-1", "thon-2", "xa-1"])
    assert device.username == "dev-a"
    assert device.subscribe == (
        protocol.device_command_topic("dev-a"),
        protocol.device_manifest_topic("dev-a"),
        protocol.zone_command_topic("xa-1"),
        protocol.zone_command_topic("thon-2"),
    )
    assert device.publish == (
        protocol.device_state_topic("dev-a"),
        protocol.device_event_topic("dev-a"),
    )
    assert not device.may_subscribe(protocol.device_command_topic("dev-b"))
    assert not device.may_subscribe(protocol.device_manifest_topic("dev-b"))
    assert not device.may_subscribe(f"{protocol.TOPIC_ROOT}/device/+/manifest")
    assert not device.may_publish(protocol.device_manifest_topic("dev-a"))
    assert not device.may_subscribe(f"{protocol.TOPIC_ROOT}/device/+/cmd")
    assert not device.may_publish(protocol.device_state_topic("dev-b"))
    assert not device.may_publish(protocol.device_command_topic("dev-a"))
    for bad_id in ("Bad Id", "dev-a\n"):  # check_id alone lets a trailing newline through
        with pytest.raises(ValueError):
            device_user(bad_id, "pw", [])


def test_topic_matching_and_covering() -> None:
    assert topic_matches("a/+/c", "a/b/c") and not topic_matches("a/+/c", "a/b/c/d")
    assert topic_matches("a/#", "a/b/c") and topic_matches("#", "a")
    assert not topic_matches("#", "$SYS/x")
    assert filter_covers("a/+/c", "a/b/c") and filter_covers("a/+/c", "a/+/c")
    assert not filter_covers("a/+/c", "a/#") and not filter_covers("a/+/c", "+/+/c")
    assert filter_covers("a/#", "a/+/c") and not filter_covers("a/b", "a/b/c")


@pytest.mark.parametrize(
    ("username", "topic"),
    [
        ("has:colon", "a/b"),
        ("new\nline", "a/b"),
        ("trailing-newline\n", "a/b"),
        ("ok", "a/b\n"),
        ("", "a/b"),
        ("ok", "a/b\ntopic x/#"),
        ("ok", "a#"),
    ],
)
def test_names_and_topics_cannot_inject_into_mosquitto_files(username: str, topic: str) -> None:
    with pytest.raises(ValueError):
        BrokerUser(username, hash_password("pw"), publish=(topic,))


def test_access_save_load_round_trip(tmp_path: Path) -> None:
    access = BrokerAccess(
        (
            server_user("loa-server", "a"),
            device_user("dev-a", "b", ["xa-1"]),
            device_user("dev-b", "c", []),
        )
    )
    path = tmp_path / "deep" / "broker-access.json"
    access.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = BrokerAccess.load(path)
    assert loaded == access
    assert loaded.user("dev-b") is not None and loaded.user("nobody") is None
    access.save(path)  # replacing keeps 0600 and leaves no temporary files behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["broker-access.json"]
    with pytest.raises(ValueError, match="duplicate"):
        BrokerAccess((server_user("x", "a"), server_user("x", "b")))


def test_a_login_is_bound_to_its_client_id() -> None:
    access = BrokerAccess(
        (
            server_user("loa-server", "a"),
            device_user("dev-a", "b", []),
            device_user("dev-b", "c", []),
        )
    )
    assert access.client_id_refusal("dev-a", "dev-a") is None
    for taken in ("dev-b", "loa-server", "loa-server-1a2b3c", "anything"):
        assert "only with client id 'dev-a'" in (access.client_id_refusal("dev-a", taken) or "")
    for own in ("loa-server", "loa-server-1a2b3c", "loa-server-doctor"):
        assert access.client_id_refusal("loa-server", own) is None
    assert "belongs to user 'dev-a'" in (access.client_id_refusal("loa-server", "dev-a") or "")
    # an access file written before the binding: the server's role keeps free ids
    old = access.to_dict()
    for user in old["users"]:
        del user["any_client_id"]
    assert BrokerAccess.from_dict(old) == access


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"version": 99, "users": []}), "version"),
        (json.dumps({"version": 1, "users": [{"username": "x", "password_hash": "plain"}]}), "$7$"),
        (json.dumps({"version": 1, "users": [{"username": "x", "password_hash": 1}]}), "$7$"),
        (json.dumps({"version": 1, "users": [{"username": "a:b", "password_hash": ""}]}), "a:b"),
        (json.dumps({"version": 1, "users": [{"username": "x", "extra": 1}]}), "extra"),
        (json.dumps({"version": 1, "users": [{"username": "x", "publish": "a"}]}), "publish"),
    ],
)
def test_bad_access_file_is_one_line_naming_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "broker-access.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BrokerError) as caught:
        BrokerAccess.load(path)
    message = str(caught.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_an_empty_password_locks_the_user_and_stored_hashes_are_reused() -> None:
    with pytest.raises(ValueError):
        hash_password("")
    locked = device_user("dev-a", "", ["xa-1"])
    assert HASH_FORMAT.match(locked.password_hash)
    assert not verify_password("", locked.password_hash)
    assert not verify_password("", server_user("loa-server", "").password_hash)
    stored = hash_password("kept")
    rebuilt = device_user("dev-a", "", ["xa-1"], password_hash=stored)
    assert rebuilt.password_hash == stored and rebuilt.subscribe == locked.subscribe
    assert server_user("loa-server", "", password_hash=stored).password_hash == stored
    with pytest.raises(ValueError):
        server_user("loa-server", "", password_hash="plain")


def test_a_receiver_may_also_connect_with_its_secret_client_id() -> None:
    """`<device id>-<token>` (what its config names) is the receiver's too, nobody else's."""
    token = new_client_token()
    assert len(token) == 32 and int(token, 16) >= 0  # 128 bits, hex
    secret_a = secret_client_id("dev-a", token)
    access = BrokerAccess(
        (
            server_user("loa-server", "a"),
            device_user("dev-a", "b", [], client_token=token),
            device_user("dev-b", "c", [], client_token=new_client_token()),
        )
    )
    assert access.client_id_refusal("dev-a", secret_a) is None
    assert access.client_id_refusal("dev-a", "dev-a") is None
    refusal = access.client_id_refusal("dev-b", secret_a) or ""
    assert "only with client id 'dev-b' or its secret one" in refusal
    assert access.client_id_refusal("dev-a", f"dev-a-{new_client_token()}") is not None
    assert "belongs to user 'dev-a'" in (access.client_id_refusal("loa-server", secret_a) or "")
    assert BrokerAccess.from_dict(access.to_dict()) == access
    assert secret_client_id("dev-a", "") == "dev-a"
    with pytest.raises(ValueError, match="must start with 'dev-a-'"):
        BrokerUser("dev-a", locked_hash(), client_ids=("dev-b-1234",))
