"""The replay memory and the signed bytes, at the protocol level (no agent, no broker).

`ReplayGuard` forgets expired ids only when the soonest expiry has passed (one pass then, none
otherwise); it must refuse and forget exactly what a full pass on every check would.
"""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from wire import protocol

TOPIC = protocol.zone_command_topic("thon-1")


class PassEveryCheck:
    """The guard's contract written the plain way: drop expired ids on every check."""

    def __init__(self, seen: dict[str, float], limit: int) -> None:
        self.seen = dict(seen)
        self.limit = limit

    def check_and_remember(self, command_id: str, expires_at: float, now: float) -> bool:
        self.seen = {cid: exp for cid, exp in self.seen.items() if exp >= now}
        if command_id in self.seen:
            return False
        if len(self.seen) >= self.limit:
            del self.seen[min(self.seen, key=self.seen.__getitem__)]
        self.seen[command_id] = expires_at
        return True


def _command(command_id: str, expires_at: float) -> protocol.Command:
    return protocol.Command(
        protocol.CommandKind.STOP,
        command_id,
        expires_at - 60,
        expires_at,
        TOPIC,
        1,
        protocol.StopBody(broadcast_id=None),
    )


@settings(max_examples=200, deadline=None)
@given(
    initial=st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 40).map(float), max_size=4),
    steps=st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 40), st.integers(0, 10)),
        max_size=40,
    ),
    limit=st.integers(1, 5),
)
def test_replay_guard_forgets_and_refuses_as_a_full_pass_would(
    initial: dict[str, float], steps: list[tuple[str, int, int]], limit: int
) -> None:
    guard = protocol.ReplayGuard(initial, limit=limit)
    reference = PassEveryCheck(initial, limit)
    now = 0.0
    for command_id, lifetime, advance in steps:
        now += advance
        expected = reference.check_and_remember(command_id, now + lifetime, now)
        try:
            guard.check_and_remember(_command(command_id, now + lifetime), now=now)
            accepted = True
        except protocol.ProtocolError as exc:
            assert exc.reason == "replayed"
            accepted = False
        assert accepted == expected
        assert guard.to_dict() == reference.seen


def test_signature_covers_the_canonical_json_of_every_other_field() -> None:
    key = protocol.generate_private_key()
    body = protocol.PlayBody(
        broadcast_id=7,
        item_id="b7",
        media_url="http://127.0.0.1:8080/media/" + "a" * 64 + ".mp3",
        media_sha256="a" * 64,
        priority=protocol.Priority.EMERGENCY,
        title="Thông báo khẩn: mất điện",
        play_at=1_764_140_403.0,
        valid_until=1_764_141_303.0,
    )
    command = protocol.new_command(body, stream=TOPIC, seq=3, now=1_764_140_400.0)
    payload = protocol.sign_command(command, key)
    data = json.loads(payload)
    signature = base64.b64decode(data.pop("sig"))
    expected = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert protocol.canonical_json(data) == expected.encode("utf-8")
    assert "Thông báo khẩn" in expected  # UTF-8, not \u escapes
    key.public_key().verify(signature, expected.encode("utf-8"))
    verified = protocol.verify_command(payload, key.public_key(), now=1_764_140_401.0)
    assert verified == command
