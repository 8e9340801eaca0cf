"""The officer's bulletin flow: document → editable script → bulletin → preview → schedule."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient
from service_support import PASSWORD

SAMPLE = (
    Path(__file__).parent.parent / "tts" / "data" / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"
)


def _csrf(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def _login(client: FlaskClient, username: str) -> None:
    token = _csrf(client, "/auth/login")
    client.post(
        "/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )


def test_document_becomes_an_editable_script(client: FlaskClient) -> None:
    _login(client, "officer")
    token = _csrf(client, "/bulletins/new")
    page = client.post(
        "/bulletins/new",
        data={"document": SAMPLE.read_text(encoding="utf-8"), "csrf_token": token, "opening": "on"},
    ).get_data(as_text=True)
    script = re.search(r'<textarea id="script" name="script"[^>]*>(.*?)</textarea>', page, re.S)
    assert script is not None, page
    text = script.group(1)
    assert "Đài truyền thanh" in text
    assert "triển khai thực hiện Chỉ thị số 07/CT-TTg" in text
    assert "Nơi nhận" not in text
    assert "Nơi nhận" in page  # shown among what will not be read

    response = client.post(
        "/bulletins/new",
        data={"action": "save", "title": "Kế hoạch 07", "script": text, "csrf_token": token},
    )
    assert response.status_code == 302
    detail_url = response.headers["Location"]
    assert "Kế hoạch 07" in client.get(detail_url).get_data(as_text=True)

    bulletin_id = detail_url.rstrip("/").rsplit("/", 1)[-1]
    response = client.post(
        f"/bulletins/{bulletin_id}/schedule",
        data={
            "kind": "daily",
            "time_of_day": "06:00",
            "zones": ["xa-test"],
            "priority": "normal",
            "repeat": "1",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert "Hằng ngày 06:00" in client.get("/bulletins/").get_data(as_text=True)


def test_preview_renders_audio(client: FlaskClient) -> None:
    _login(client, "officer")
    token = _csrf(client, "/bulletins/new")
    response = client.post(
        "/bulletins/new",
        data={
            "action": "save",
            "title": "Tiêm chủng",
            "script": "Lịch tiêm chủng lúc 7h30.",
            "csrf_token": token,
        },
    )
    detail_url = response.headers["Location"]
    response = client.post(f"{detail_url}/preview", data={"csrf_token": token})
    assert response.status_code == 302 and "preview=" in response.headers["Location"]
    sha = response.headers["Location"].rsplit("preview=", 1)[1]
    media = client.get(f"/media/{sha}.mp3")
    assert media.status_code == 200 and media.mimetype == "audio/mpeg"


def test_schedule_errors_are_shown(client: FlaskClient) -> None:
    _login(client, "officer")
    token = _csrf(client, "/bulletins/new")
    detail_url = client.post(
        "/bulletins/new",
        data={"action": "save", "title": "X", "script": "Nội dung.", "csrf_token": token},
    ).headers["Location"]
    response = client.post(
        f"{detail_url}/schedule",
        data={
            "kind": "daily",
            "time_of_day": "25:00",
            "zones": ["xa-test"],
            "priority": "normal",
            "repeat": "1",
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert "time_of_day" in response.get_data(as_text=True)


def test_bad_recording_is_refused_clearly(client: FlaskClient, tmp_path: Path) -> None:
    _login(client, "officer")
    token = _csrf(client, "/bulletins/new")
    response = client.post(
        "/bulletins/recording",
        data={
            "title": "Thông báo tiếng Mông",
            "csrf_token": token,
            "recording": (tmp_path.joinpath("x.mp3").open("wb+"), "thong-bao.mp3"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "thong-bao.mp3" in page and "tệp rỗng" in page


def test_recording_becomes_playable_content(client: FlaskClient, tmp_path: Path) -> None:
    import math
    import wave

    path = tmp_path / "ghi-am.wav"
    with wave.open(str(path), "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(16000)
        recording.writeframes(
            b"".join(
                int(6000 * math.sin(2 * math.pi * 300 * i / 16000)).to_bytes(
                    2, "little", signed=True
                )
                for i in range(16000 * 2)
            )
        )
    _login(client, "officer")
    token = _csrf(client, "/bulletins/new")
    with path.open("rb") as upload:
        response = client.post(
            "/bulletins/recording",
            data={
                "title": "Thông báo tiếng Thái",
                "csrf_token": token,
                "recording": (upload, "ghi-am.wav"),
            },
            content_type="multipart/form-data",
        )
    assert response.status_code == 302, response.get_data(as_text=True)
    detail_url = response.headers["Location"]
    assert "Bản ghi âm" in client.get(detail_url).get_data(as_text=True)
    preview = client.post(f"{detail_url}/preview", data={"csrf_token": token})
    sha = preview.headers["Location"].rsplit("preview=", 1)[1]
    assert client.get(f"/media/{sha}.mp3").status_code == 200


def test_village_head_has_no_bulletins(client: FlaskClient) -> None:
    _login(client, "head-a")
    assert client.get("/bulletins/").status_code == 403
    assert client.get("/bulletins/new").status_code == 403
