"""A live broadcast through real processes: `loa demo` with its Icecast (a real icecast2 on a
free loopback port), a tone fed as the microphone over chunked HTTP, the village's receivers
cutting a routine notice for it and playing it (no other receiver does), "Kết thúc" stopping it
and the notice playing again, the recording kept as the broadcast's media, and a listener
without the mount's token refused by Icecast.

A missing icecast2 FAILS this test (never skips): `.ci/run` installs it.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from processes import LoaProcess, http_bytes, http_json, played_lines
from support import LOOPBACK, free_ports

from broadcast.fleet import streaming

TONE_HZ = 440
WAIT_S = 30.0
ROUTINE = "Thông báo: chiều nay họp thôn tại nhà văn hóa, mời bà con đến đúng giờ."


def _tone_mp3(seconds: float) -> subprocess.Popen[bytes]:
    """A microphone: a tone as MP3 on stdout, in real time."""
    return subprocess.Popen(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:duration={seconds}",
            "-c:a", "libmp3lame", "-b:a", "48k", "-f", "mp3", "pipe:1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )  # fmt: skip


def _feed(port: int, token: str, broadcast_id: int, source: Any, answer: dict[str, Any]) -> None:
    """POST the microphone to the live feed as it comes (chunked), as a browser does."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=WAIT_S)
    try:
        connection.putrequest("POST", f"/api/v1/live/{broadcast_id}/feed")
        connection.putheader("Authorization", f"Bearer {token}")
        connection.putheader("Content-Type", "audio/mpeg")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        while chunk := source.read1(1024):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        answer["status"] = response.status
        answer["body"] = response.read()
    except OSError as exc:  # the server may stop reading once the broadcast has ended
        answer["error"] = exc
    finally:
        connection.close()


def _listen_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read(1024)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _dominant_hz(mp3: Path) -> float:
    pcm = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(mp3),
         "-ac", "1", "-ar", "8000", "-f", "s16le", "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    samples = np.frombuffer(pcm, dtype=np.int16).astype(float)
    assert samples.size > 8000, f"{mp3}: under a second of sound"
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / 8000)[int(np.argmax(spectrum))])


def _wait(what: str, check: Any, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what} within {timeout_s} s")
        time.sleep(0.2)


def test_live_broadcast_reaches_only_its_village_and_ends(
    tmp_path: Path, loa_processes: list[LoaProcess]
) -> None:
    assert streaming.find_icecast(), streaming.MISSING_MESSAGE
    port, mqtt_port, stream_port = free_ports(3)
    data = tmp_path / "var"
    demo = LoaProcess(
        "demo", "--data", str(data), "--port", str(port), "--mqtt-port", str(mqtt_port),
        "--stream-port", str(stream_port), "--receivers", "4",
    )  # fmt: skip
    loa_processes.append(demo)
    token = demo.wait_for_line("API token:").split(":", 1)[1].strip()
    assert f"Live:       Icecast on http://127.0.0.1:{stream_port}" in demo.output
    base = f"http://{LOOPBACK}:{port}"
    village = {"loa-thon-1-01", "loa-thon-1-02"}
    elsewhere = {"loa-thon-2-01", "loa-thon-2-02"}
    receivers = data / "receivers"

    def states_of(broadcast_id: int) -> dict[str, str]:
        _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        return {d["device"]: d["state"] for d in body["deliveries"]}

    # a routine notice is playing in the village when the live broadcast starts
    status, routine = http_json(
        "POST",
        f"{base}/api/v1/announcements",
        token,
        {"text": ROUTINE, "zones": ["thon-1"], "priority": "normal", "repeat": 3},
    )
    assert status == 201, routine
    _wait(
        "the routine notice playing", lambda: set(states_of(routine["id"]).values()) == {"playing"}
    )

    status, created = http_json(
        "POST", f"{base}/api/v1/live", token, {"zones": ["thon-1"], "minutes": 2}
    )
    assert status == 201, created
    broadcast_id = created["id"]
    assert created["source"] == "live" and created["content"] == "relay"

    microphone = _tone_mp3(25)
    answer: dict[str, Any] = {}
    feeder = threading.Thread(
        target=_feed, args=(port, token, broadcast_id, microphone.stdout, answer), daemon=True
    )
    feeder.start()
    try:
        # every receiver of the village plays the stream
        def playing() -> bool:
            _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
            states = {d["device"]: d["state"] for d in body["deliveries"]}
            return set(states) == village and set(states.values()) == {"playing"}

        _wait("playing on every receiver of thon-1", playing)
        assert set(states_of(routine["id"]).values()) == {"preempted"}
        _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        assert "?" not in body["relay_url"]  # the token travels in the signed PLAY only
        key = json.loads((data / "secrets.json").read_text())["stream_token_key"]
        stream_url = streaming.stream_url(f"http://{LOOPBACK}:{stream_port}", key, broadcast_id)
        assert stream_url.startswith(body["relay_url"] + "?token=")
        parts = urllib.parse.urlsplit(stream_url)
        # Icecast lets in only the mount's token: none, or another mount's, is refused
        bare = f"http://{LOOPBACK}:{stream_port}{parts.path}"
        other = streaming.listen_token("x" * 43, parts.path)
        assert _listen_status(bare) == 401
        assert _listen_status(f"{bare}?token={other}") == 401
        assert _listen_status(stream_url) == 200
        time.sleep(4)  # a few seconds of speech

        # Kết thúc: STOP everywhere
        status, ended = http_json("POST", f"{base}/api/v1/live/{broadcast_id}/end", token)
        assert status == 200, ended
        assert ended["status"] == "cancelled"

        def stopped() -> dict[str, Any] | None:
            _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
            states = {d["state"] for d in body["deliveries"]}
            return body if states == {"stopped"} else None

        _wait("stopped on every receiver", stopped)
        feeder.join(timeout=WAIT_S)
        assert not feeder.is_alive()
    finally:
        microphone.kill()
        microphone.wait(timeout=10)

    _wait(
        "the routine notice played again after the live broadcast",
        lambda: set(states_of(routine["id"]).values()) == {"finished"},
        timeout_s=90,
    )
    chimes: dict[str, dict[str, Any]] = {}
    for device_id in village:
        plays = [p for p in played_lines(receivers, device_id) if p["broadcast_id"] == broadcast_id]
        # the chime first, as every notice begins, then the voice
        chimes[device_id], *voice = plays
        assert chimes[device_id]["content"] == "media", (device_id, plays)
        assert voice and all(p["content"] == "relay" for p in voice), (device_id, plays)
        assert voice[-1]["stopped"] is True
        assert voice[0]["started_at"] >= chimes[device_id]["finished_at"]
        chime = receivers / device_id / "played" / chimes[device_id]["file"]
        assert 500 < _dominant_hz(chime) < 1100, device_id  # its bell notes, C5 to C6
        heard = receivers / device_id / "played" / voice[0]["file"]
        assert abs(_dominant_hz(heard) - TONE_HZ) < 10, device_id
    assert len({line["sha256"] for line in chimes.values()}) == 1
    starts = [datetime.fromisoformat(line["started_at"]) for line in chimes.values()]
    assert max(starts) - min(starts) < timedelta(seconds=0.5)  # in step, as any emergency
    for device_id in elsewhere:
        assert all(p["broadcast_id"] != broadcast_id for p in played_lines(receivers, device_id))
    # after the end, the token opens nothing
    assert _listen_status(stream_url) == 401

    # the recording is the broadcast's media: the log plays it back
    def recorded() -> str | None:
        _status, body = http_json("GET", f"{base}/api/v1/announcements/{broadcast_id}", token)
        return body["media_sha256"]

    sha256 = _wait("recorded", recorded)
    recording = tmp_path / "recording.mp3"
    recording.write_bytes(http_bytes(f"{base}/media/{sha256}.mp3"))
    assert abs(_dominant_hz(recording) - TONE_HZ) < 10
    assert demo.stop() == 0
    assert "Traceback" not in demo.output, demo.output
