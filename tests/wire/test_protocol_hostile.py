"""Hostile payloads at the protocol's parse functions (no agent, no broker).

Whatever bytes arrive on a topic, `verify_command`, `DeviceEvent.from_json` and
`DeviceStatus.from_json` either return a message whose every field the server can store, or
raise `ProtocolError`: never RecursionError, OverflowError, UnicodeError or anything else that
would end in a traceback instead of the `malformed` count.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from broadcast import clock
from wire import protocol

TOPIC = protocol.zone_command_topic("thon-1")
KEY = protocol.generate_private_key()
NOW = 1_900_000_000.0
INT64 = 2**63

DEEP = 60_000
HOSTILE: list[bytes] = [
    b"[" * DEEP + b"]" * DEEP,  # the payload
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b"[" * 2000 + b"]" * 2000,  # deep, yet within what the interpreter would parse
    b'{"at": ' + b"9" * 5000 + b"}",  # beyond Python's integer-string limit
    b'{"at": 1e999}',
    b'{"at": NaN}',
    b'{"at": -Infinity}',
    b'{"device_id": "\\ud800"}',  # a lone surrogate
    b'{"device_id": "\xff\xfe"}',  # invalid UTF-8
    "{}".encode("utf-16"),  # valid JSON, but not UTF-8
    b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
    b"[]",
    b"42",
    b'"text"',
    b"null",
    b"",
    b" " * (protocol.MAX_MESSAGE_BYTES + 1),
]


def _event(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "device_id": "loa-a-01",
        "command_id": "c1",
        "broadcast_id": 7,
        "kind": "received",
        "at": NOW,
        "detail": "",
        "item_id": "b7",
    }
    data.update(fields)
    return data


def _state(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "device_id": "loa-a-01",
        "state": "idle",
        "boot_id": "boot-1",
        "at": NOW,
        "current_broadcast": None,
        "version": "0.1.0",
        "extra": {"cache_complete": 1.0},
    }
    data.update(fields)
    return data


def _signed(data: dict[str, Any]) -> bytes:
    """`data` as the server would sign it (ASCII-escaped on the wire, so surrogates pass)."""
    signature = KEY.sign(protocol.canonical_json(data))
    return json.dumps({**data, "sig": base64.b64encode(signature).decode()}).encode()


def _envelope(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "kind": "stop",
        "id": "c1",
        "issued_at": NOW,
        "expires_at": NOW + 60,
        "stream": TOPIC,
        "seq": 1,
        "body": {"broadcast_id": 3},
    }
    data.update(fields)
    return data


def _parse_all(payload: bytes) -> None:
    """Every parse function on `payload`: a storable result or ProtocolError, nothing else."""
    for parse in (protocol.DeviceEvent.from_json, protocol.DeviceStatus.from_json):
        try:
            result = parse(payload)
        except protocol.ProtocolError:
            continue
        _assert_storable(result)
    with contextlib.suppress(protocol.ProtocolError):
        protocol.verify_command(payload, KEY.public_key(), now=NOW)


def _assert_storable(message: protocol.DeviceEvent | protocol.DeviceStatus) -> None:
    """What the server's answer-back writer does with the fields must not fail."""
    clock.from_timestamp(message.at)
    if isinstance(message, protocol.DeviceEvent):
        assert message.broadcast_id is None or 0 <= message.broadcast_id < 2**31
        assert len(message.detail) <= 500
        assert len(message.item_id) <= 100
    else:
        assert message.current_broadcast is None or 0 <= message.current_broadcast < 2**31
        assert len(message.boot_id) <= 64
        json.dumps(message.extra, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_payloads_are_malformed_for_every_parse_function(payload: bytes) -> None:
    for parse in (protocol.DeviceEvent.from_json, protocol.DeviceStatus.from_json):
        with pytest.raises(protocol.ProtocolError) as caught:
            parse(payload)
        assert caught.value.reason == "malformed"
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.verify_command(payload, KEY.public_key(), now=NOW)
    assert caught.value.reason == "malformed"


def test_the_deep_payload_names_its_nesting() -> None:
    with pytest.raises(protocol.ProtocolError, match="nested"):
        protocol.load_json_object(b"[" * DEEP + b"]" * DEEP)
    with pytest.raises(protocol.ProtocolError, match="nested deeper than 16"):
        protocol.DeviceEvent.from_json(b'{"a":' * 17 + b"1" + b"}" * 17)


def test_answers_are_capped_far_below_commands() -> None:
    padded = _event(detail="x" * (protocol.MAX_ANSWER_BYTES + 1))
    with pytest.raises(protocol.ProtocolError, match="too large"):
        protocol.DeviceEvent.from_json(json.dumps(padded).encode())
    assert protocol.MAX_ANSWER_BYTES < protocol.MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    "fields",
    [
        {"at": 1e300},  # a finite time no datetime can hold
        {"at": -1.0},
        {"broadcast_id": 2**40},
        {"broadcast_id": -1},
        {"broadcast_id": 1e300},
        {"broadcast_id": True},
        {"kind": ["received"]},
        {"device_id": "LOA"},
        {"detail": {"a": 1}},
    ],
)
def test_event_fields_that_cannot_be_stored_are_malformed(fields: dict[str, Any]) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.DeviceEvent.from_json(json.dumps(_event(**fields)).encode())
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "fields",
    [
        {"at": 1e300},
        {"current_broadcast": 2**31},
        {"boot_id": "b" * 65},
        {"extra": [1]},
        {"state": "dancing"},
    ],
)
def test_state_fields_that_cannot_be_stored_are_malformed(fields: dict[str, Any]) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.DeviceStatus.from_json(json.dumps(_state(**fields)).encode())
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "fields",
    [
        {"seq": 1e300},
        {"seq": 2**64},
        {"issued_at": 1e300, "expires_at": 1e301},
        {"body": {"broadcast_id": 2**40}},
        {"body": {"broadcast_id": 1e300}},
        {"kind": "play", "body": {"broadcast_id": 1, "repeat": 1e300}},
        {"kind": "play", "body": {"broadcast_id": 1, "duration_s": 1e300, "content": "relay"}},
    ],
)
def test_signed_envelopes_with_unusable_numbers_are_malformed(fields: dict[str, Any]) -> None:
    payload = _signed(_envelope(**fields))
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.verify_command(payload, KEY.public_key(), now=NOW)
    assert caught.value.reason == "malformed"


def test_genuine_messages_still_parse() -> None:
    event = protocol.DeviceEvent.from_json(json.dumps(_event()).encode())
    assert (event.broadcast_id, event.at) == (7, NOW)
    status = protocol.DeviceStatus.from_json(json.dumps(_state()).encode())
    assert status.extra == {"cache_complete": 1.0}
    pair = json.dumps(_event(detail="Thông báo 😀")).encode()  # a surrogate PAIR is one char
    assert protocol.DeviceEvent.from_json(pair).detail == "Thông báo 😀"
    command = protocol.verify_command(_signed(_envelope()), KEY.public_key(), now=NOW)
    assert command.body == protocol.StopBody(broadcast_id=3)


# --- hypothesis: a class of hostile inputs --------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**400, 2**63, 2**31, -(2**63) - 1]),
)
_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["\ud800", "\udfff", "a\udc00b"]))
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    """JSON as an attacker may write it: escapes for surrogates, 1e999 for an infinity."""
    return json.dumps(value, allow_nan=True).replace("Infinity", "1e999").encode("ascii")


@st.composite
def _hostile_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "nested", "value", "event", "state"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "nested":
        depth = draw(st.integers(1, 5_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]))
        middle = b"1" if opener != b"[" else b""
        return opener * depth + middle + closer * depth
    if kind == "value":
        return _dumps(draw(_JSON))
    template = _event() if kind == "event" else _state()
    field = draw(st.sampled_from(sorted(template)))
    template[field] = draw(_JSON)
    return _dumps(template)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_hostile_bytes())
def test_any_payload_parses_to_something_storable_or_is_refused(payload: bytes) -> None:
    _parse_all(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(["kind", "id", "issued_at", "expires_at", "seq", "body", "v"]),
    value=_JSON,
)
def test_a_signed_envelope_with_any_field_value_is_accepted_or_refused(
    field: str, value: Any
) -> None:
    data = _envelope(**{field: value})
    try:
        protocol.canonical_json(data)
    except (UnicodeEncodeError, ValueError):
        assume(False)  # the server cannot even sign it
    with contextlib.suppress(protocol.ProtocolError):
        protocol.verify_command(_signed(data), KEY.public_key(), now=NOW, check_expiry=False)
