"""The officer's bulletin flow: document → editable script → bulletin → preview → schedule."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient
from web_support import csrf_token, login

SAMPLE = (
    Path(__file__).parent.parent / "tts" / "data" / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"
)


def test_document_becomes_an_editable_script(client: FlaskClient) -> None:
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
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
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
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
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
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
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
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
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
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
    login(client, "head-a")
    assert client.get("/bulletins/").status_code == 403
    assert client.get("/bulletins/new").status_code == 403


def _saved(client: FlaskClient, title: str, text: str) -> tuple[str, str]:
    token = csrf_token(client, "/bulletins/new")
    response = client.post(
        "/bulletins/new",
        data={"action": "save", "title": title, "script": text, "csrf_token": token},
    )
    return response.headers["Location"], token


def _schedule(client: FlaskClient, url: str, token: str, **fields: object) -> str:
    """Post the schedule form; returns the flashed messages and the page after the redirect."""
    data = {"zones": ["thon-a"], "priority": "normal", "repeat": "1", "csrf_token": token}
    data.update(fields)  # type: ignore[arg-type]
    page = client.post(f"{url}/schedule", data=data, follow_redirects=True).get_data(as_text=True)
    flashes = re.findall(r'<p class="flash [^"]*" role="alert">([^<]*)</p>', page)
    return "\n".join(flashes) + "\n" + page


def test_schedule_form_offers_every_kind(client: FlaskClient) -> None:
    login(client, "officer")
    url, _token = _saved(client, "Tin", "Nội dung.")
    page = client.get(url).get_data(as_text=True)
    for kind in ("once", "daily", "weekdays", "cron", "series"):
        assert f'name="kind" value="{kind}"' in page
    for field in ('name="weekdays" value="0"', 'name="cron"', 'name="interval_h"',
                  'name="series_key"', 'name="valid_from"', 'name="valid_to"',
                  'name="devices" value="loa-b-01"'):  # fmt: skip
        assert field in page


def test_each_kind_is_scheduled_and_described(client: FlaskClient) -> None:
    login(client, "officer")
    url, token = _saved(client, "Tin tuần", "Nội dung.")
    page = _schedule(
        client, url, token, kind="weekdays", time_of_day="06:30", weekdays=["0", "2"],
        valid_from="2030-01-01", valid_to="2030-03-31",
    )  # fmt: skip
    assert "Đã đặt lịch phát." in page.split("<!doctype")[0], page[:3000]
    assert "Thứ Hai, Thứ Tư lúc 06:30 (từ 01/01/2030 đến 31/03/2030)" in page
    page = _schedule(client, url, token, kind="cron", cron="0 20 * * 0", zones=["thon-b"])
    assert "Theo lịch cron “0 20 * * 0”" in page
    page = _schedule(
        client, url, token, kind="series", interval_h="2", series_key="bao-so-3",
        zones=[], devices=["loa-b-01"],
    )  # fmt: skip
    assert "Chuỗi “bao-so-3” mỗi 2 giờ từ" in page
    index = client.get("/bulletins/").get_data(as_text=True)
    assert index.count("Tin tuần") == 4  # three schedules and the bulletin
    assert "loa-b-01" in index


def test_overlap_is_explained_in_the_form(client: FlaskClient) -> None:
    login(client, "officer")
    url, token = _saved(client, "Bản tin chiều", "Bản tin chiều.")
    assert "Đã đặt lịch phát." in _schedule(client, url, token, kind="daily", time_of_day="17:00")
    other, _ = _saved(client, "Tin khác", "Tin khác.")
    page = _schedule(client, other, token, kind="daily", time_of_day="17:00", zones=["xa-test"])
    assert "Trùng giờ" in page and "“Bản tin chiều”" in page and "tại Thôn A" in page
    assert "(time)" in page
    page = _schedule(client, other, token, kind="weekdays", time_of_day="06:00")
    assert "chọn ít nhất một ngày trong tuần (weekdays)" in page


def test_relay_bulletin_from_the_bulletins_page(client: FlaskClient) -> None:
    login(client, "officer")
    index = client.get("/bulletins/").get_data(as_text=True)
    assert 'id="relay-form"' in index
    token = csrf_token(client, "/bulletins/")
    response = client.post(
        "/bulletins/relay",
        data={
            "title": "Thời sự VOV1",
            "relay_url": "https://stream.example.vn/vov1",
            "minutes": "30",
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Đã lưu bản tiếp sóng." in page and "Tiếp sóng 30 phút" in page
    assert "https://stream.example.vn/vov1" in page
    assert "Nghe thử" not in page and 'name="repeat"' not in page
    bad = client.post(
        "/bulletins/relay",
        data={
            "title": "x",
            "relay_url": "file:///etc/passwd",
            "minutes": "30",
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert "(relay_url)" in bad.get_data(as_text=True)
