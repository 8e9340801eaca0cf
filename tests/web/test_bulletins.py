"""The officer's bulletin flow: document → editable script → draft → approval → schedule; the
leader's approvals; what viewers and village heads may not do."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import docx
import pytest
from flask.testing import FlaskClient
from service_support import Users
from web_support import csrf_token, login

from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry

Saver = Callable[[str, str], tuple[str, str]]  # (title, text) → (detail url, CSRF token)
SAMPLE = (
    Path(__file__).parent.parent / "tts" / "data" / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"
)


def _id(url: str) -> int:
    return int(url.rstrip("/").rsplit("/", 1)[-1])


def _approve(service: BroadcastService, users: Users, url: str) -> None:
    """The officer submits the bulletin at `url` and the leader approves it."""
    service.bulletins.submit(users.officer, _id(url))
    service.bulletins.approve(users.leader, _id(url))


def _flashes(page: str) -> str:
    return "\n".join(re.findall(r'<p class="flash [^"]*" role="alert">([^<]*)</p>', page))


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
    page = client.get(detail_url).get_data(as_text=True)
    assert "Kế hoạch 07" in page and "Bản nháp" in page and 'id="schedule-form"' not in page
    assert client.post(f"{detail_url}/submit", data={"csrf_token": token}).status_code == 302
    assert "Chờ duyệt" in client.get(detail_url).get_data(as_text=True)
    login(client, "leader")
    leader_token = csrf_token(client, detail_url)
    assert "Kế hoạch 07" in client.get("/bulletins/").get_data(as_text=True)  # "Chờ duyệt"
    client.post(f"{detail_url}/approve", data={"csrf_token": leader_token})
    login(client, "officer")

    bulletin_id = _id(detail_url)
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


def test_schedule_errors_are_shown(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
    detail_url = client.post(
        "/bulletins/new",
        data={"action": "save", "title": "X", "script": "Nội dung.", "csrf_token": token},
    ).headers["Location"]
    _approve(service, users, detail_url)
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
    page = client.get(detail_url).get_data(as_text=True)
    assert "Bản ghi âm" in page and "Bản nháp" in page and "ghi-am.wav" in page
    preview = client.post(f"{detail_url}/preview", data={"csrf_token": token})
    sha = preview.headers["Location"].rsplit("preview=", 1)[1]
    assert client.get(f"/media/{sha}.mp3").status_code == 200


def test_village_head_has_no_bulletins(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    bulletin = service.bulletins.create_bulletin(users.officer, "Tin", "Nội dung.")
    login(client, "head-a")
    token = csrf_token(client, "/")
    for url in ("/bulletins/", "/bulletins/?status=submitted", "/bulletins/new",
                f"/bulletins/{bulletin}", f"/bulletins/{bulletin}/edit"):  # fmt: skip
        assert client.get(url).status_code == 403, url
    for action in ("submit", "approve", "reject", "preview", "schedule", "send", "edit"):
        response = client.post(
            f"/bulletins/{bulletin}/{action}",
            data={"csrf_token": token, "comment": "x", "title": "x", "text": "x"},
        )
        assert response.status_code == 403, action
    for url in ("/bulletins/new", "/bulletins/relay"):
        data = {"csrf_token": token, "action": "save", "script": "x", "relay_url": "http://a.vn"}
        assert client.post(url, data=data).status_code == 403, url


def _saved(client: FlaskClient, title: str, text: str) -> tuple[str, str]:
    token = csrf_token(client, "/bulletins/new")
    response = client.post(
        "/bulletins/new",
        data={"action": "save", "title": title, "script": text, "csrf_token": token},
    )
    return response.headers["Location"], token


@pytest.fixture
def approved(client: FlaskClient, service: BroadcastService, users: Users) -> Saver:
    """Save a bulletin as the officer and have it approved: (detail url, CSRF token)."""

    def save(title: str, text: str) -> tuple[str, str]:
        url, token = _saved(client, title, text)
        _approve(service, users, url)
        return url, token

    return save


def _schedule(client: FlaskClient, url: str, token: str, **fields: object) -> str:
    """Post the schedule form; returns the flashed messages and the page after the redirect."""
    data = {"zones": ["thon-a"], "priority": "normal", "repeat": "1", "csrf_token": token}
    data.update(fields)  # type: ignore[arg-type]
    page = client.post(f"{url}/schedule", data=data, follow_redirects=True).get_data(as_text=True)
    flashes = re.findall(r'<p class="flash [^"]*" role="alert">([^<]*)</p>', page)
    return "\n".join(flashes) + "\n" + page


def test_schedule_form_offers_every_kind(client: FlaskClient, approved: Saver) -> None:
    login(client, "officer")
    url, _token = approved("Tin", "Nội dung.")
    page = client.get(url).get_data(as_text=True)
    for kind in ("once", "daily", "weekdays", "cron", "series"):
        assert f'name="kind" value="{kind}"' in page
    for field in ('name="weekdays" value="0"', 'name="cron"', 'name="interval_h"',
                  'name="series_key"', 'name="valid_from"', 'name="valid_to"',
                  'name="devices" value="loa-b-01"'):  # fmt: skip
        assert field in page


def test_each_kind_is_scheduled_and_described(client: FlaskClient, approved: Saver) -> None:
    login(client, "officer")
    url, token = approved("Tin tuần", "Nội dung.")
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


def test_overlap_is_explained_in_the_form(client: FlaskClient, approved: Saver) -> None:
    login(client, "officer")
    url, token = approved("Bản tin chiều", "Bản tin chiều.")
    assert "Đã đặt lịch phát." in _schedule(client, url, token, kind="daily", time_of_day="17:00")
    other, _ = approved("Tin khác", "Tin khác.")
    page = _schedule(client, other, token, kind="daily", time_of_day="17:00", zones=["xa-test"])
    assert "Trùng giờ" in page and "“Bản tin chiều”" in page and "tại Thôn A" in page
    assert "(time)" in page
    page = _schedule(client, other, token, kind="weekdays", time_of_day="06:00")
    assert "chọn ít nhất một ngày trong tuần (weekdays)" in page


def test_relay_bulletin_from_the_bulletins_page(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
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
    assert "https://stream.example.vn/vov1" in page and "Bản nháp" in page
    _approve(service, users, response.request.path)
    page = client.get(response.request.path).get_data(as_text=True)
    assert 'id="schedule-form"' in page
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


# --- documents --------------------------------------------------------------------------------


def _upload(client: FlaskClient, name: str, data: bytes) -> str:
    token = csrf_token(client, "/bulletins/new")
    response = client.post(
        "/bulletins/new",
        data={"csrf_token": token, "opening": "on", "document_file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _script_of(page: str) -> str:
    found = re.search(r'<textarea id="script" name="script"[^>]*>(.*?)</textarea>', page, re.S)
    assert found is not None, page
    return found.group(1)


def test_txt_and_docx_uploads_become_scripts(client: FlaskClient) -> None:
    login(client, "officer")
    page = _upload(client, "thong-bao.txt", "Họp dân lúc 14h ngày 21/3.".encode("utf-16"))
    assert "Họp dân lúc 14h" in _script_of(page) and "Đài truyền thanh" in _script_of(page)
    assert 'name="source_name" value="thong-bao.txt"' in page

    document = docx.Document()
    document.add_paragraph("THÔNG BÁO lịch tiêm chủng")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {
        (0, 0): "Thôn",
        (0, 1): "Giờ",
        (1, 0): "Thôn A",
        (1, 1): "7h30",
    }.items():
        table.cell(row, col).text = text
    document.add_paragraph("Đề nghị bà con đến đúng giờ.")
    data = io.BytesIO()
    document.save(data)
    page = _upload(client, "lich-tiem.docx", data.getvalue())
    script = _script_of(page)
    order = [script.index(text) for text in ("Thôn A", "7h30", "Đề nghị bà con")]
    assert order == sorted(order)
    token = csrf_token(client, "/bulletins/new")
    response = client.post(
        "/bulletins/new",
        data={"action": "save", "title": "Lịch tiêm", "script": script,
              "source_name": "lich-tiem.docx", "csrf_token": token},
    )  # fmt: skip
    assert "lich-tiem.docx" in client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("bao-cao.pdf", b"%PDF-1.4", "chỉ nhận văn bản .txt"),
        ("rong.txt", b"   ", "không có nội dung"),
        ("cu.txt", b"Th\xf4ng b\xe1o", "UTF-8"),
        ("lon.txt", b"a" * (1024 * 1024 + 10), "tối đa 1 MB"),
        ("hong.docx", b"PK\x03\x04", "không đọc được"),
    ],
)
def test_refused_uploads_are_explained(
    client: FlaskClient, name: str, data: bytes, words: str
) -> None:
    login(client, "officer")
    page = _upload(client, name, data)
    flashes = _flashes(page)
    assert f"“{name}”" in flashes and words in flashes and "(document_file)" in flashes
    assert 'id="document"' in page  # back on the first step, nothing saved


# --- approval ---------------------------------------------------------------------------------


def test_reject_then_approve_through_the_pages(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "officer")
    url, token = _saved(client, "Tin họp", "Họp dân lúc 14h.")
    page = client.get(url).get_data(as_text=True)
    assert 'id="submit-form"' in page and 'id="review-form"' not in page
    client.post(f"{url}/submit", data={"csrf_token": token})
    page = client.get(url).get_data(as_text=True)
    assert 'id="submit-form"' not in page and "Sửa</a>" not in page

    login(client, "leader")
    token = csrf_token(client, url)
    listing = client.get("/bulletins/").get_data(as_text=True)
    assert "Tin họp" in listing and 'aria-current="page">Chờ duyệt' in listing
    page = client.get(url).get_data(as_text=True)
    assert 'id="review-form"' in page and "Nghe thử" in page
    assert 'id="schedule-form"' not in page and "Phát ngay</button>" not in page
    page = client.post(f"{url}/reject", data={"csrf_token": token, "comment": " "},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "lý do" in _flashes(page) and "(comment)" in _flashes(page)
    page = client.post(f"{url}/reject", data={"csrf_token": token, "comment": "Ghi rõ địa điểm."},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Đã trả lại bản tin." in _flashes(page) and "Bị trả lại" in page
    assert "Tin họp" not in client.get("/bulletins/").get_data(as_text=True).split("<h2")[1]

    login(client, "officer")
    token = csrf_token(client, f"{url}/edit")
    page = client.get(url).get_data(as_text=True)
    assert "Ghi rõ địa điểm." in page
    response = client.post(
        f"{url}/edit",
        data={
            "csrf_token": token,
            "title": "Tin họp dân",
            "text": "Họp dân lúc 14h ở nhà văn hóa.",
        },
    )
    assert response.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Tin họp dân" in page and "Bản nháp" in page and "nhà văn hóa" in page
    client.post(f"{url}/submit", data={"csrf_token": token})

    login(client, "admin")
    token = csrf_token(client, url)
    page = client.post(f"{url}/approve", data={"csrf_token": token, "comment": "Đồng ý."},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Đã duyệt bản tin." in _flashes(page) and 'id="schedule-form"' in page
    history = page.split('id="history"')[1].split("</ol>")[0]
    for step in ("Tạo bản tin", "Trình duyệt", "Trả lại", "Sửa bản tin", "Duyệt", "officer",
                 "leader", "admin", "Ghi rõ địa điểm.", "Đồng ý."):  # fmt: skip
        assert step in history, step
    with service.db.session() as session:
        actions = [
            entry.action
            for entry in session.query(AuditEntry)
            .filter(AuditEntry.target == f"bulletin:{_id(url)}")
            .order_by(AuditEntry.seq)
        ]
    assert actions == ["bulletin.create", "bulletin.submit", "bulletin.reject", "bulletin.edit",
                       "bulletin.submit", "bulletin.approve"]  # fmt: skip


def test_unapproved_bulletins_cannot_be_scheduled_or_sent(client: FlaskClient) -> None:
    login(client, "officer")
    url, token = _saved(client, "Tin", "Nội dung.")
    page = client.get(url).get_data(as_text=True)
    assert 'id="needs-approval"' in page
    page = _schedule(client, url, token, kind="daily", time_of_day="06:00")
    assert "Bản nháp" in _flashes(page) and "(bulletin)" in _flashes(page)
    response = client.post(
        f"{url}/send", data={"csrf_token": token, "zones": ["thon-a"]}, follow_redirects=True
    )
    assert "chỉ bản tin đã duyệt" in _flashes(response.get_data(as_text=True))
    assert "Hằng ngày 06:00" not in client.get("/bulletins/").get_data(as_text=True)


def test_leader_reviews_but_does_not_write(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    bulletin = service.bulletins.create_bulletin(users.officer, "Tin", "Nội dung.")
    service.bulletins.submit(users.officer, bulletin)
    service.bulletins.approve(users.admin, bulletin)
    login(client, "leader")
    token = csrf_token(client, f"/bulletins/{bulletin}")
    page = client.get("/").get_data(as_text=True)
    assert "Duyệt bản tin" in page and "/bulletins/?status=submitted" in page
    listing = client.get("/bulletins/?status=all").get_data(as_text=True)
    assert "Soạn bản tin mới" not in listing and 'id="relay-form"' not in listing
    assert client.get("/bulletins/new").status_code == 403
    for url, data in (
        ("/bulletins/new", {"action": "save", "title": "x", "script": "Tin."}),
        ("/bulletins/relay", {"relay_url": "https://a.example.vn/x", "minutes": "5"}),
        (f"/bulletins/{bulletin}/schedule", {"kind": "daily", "time_of_day": "06:00",
                                              "zones": ["thon-a"]}),
        (f"/bulletins/{bulletin}/send", {"zones": ["thon-a"]}),
        (f"/bulletins/{bulletin}/submit", {}),
    ):  # fmt: skip
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, url


def test_viewer_reads_and_changes_nothing(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    bulletin = service.bulletins.create_bulletin(users.officer, "Tin xem", "Nội dung xem.")
    service.bulletins.submit(users.officer, bulletin)
    login(client, "viewer")
    token = csrf_token(client, f"/bulletins/{bulletin}")
    listing = client.get("/bulletins/").get_data(as_text=True)
    assert "Tin xem" in listing and "Soạn bản tin mới" not in listing
    page = client.get(f"/bulletins/{bulletin}").get_data(as_text=True)
    assert "Nội dung xem." in page and 'id="history"' in page
    for marker in ('id="review-form"', 'id="submit-form"', "Nghe thử", 'id="schedule-form"'):
        assert marker not in page, marker
    for action in ("submit", "approve", "reject", "preview", "schedule", "send", "edit"):
        response = client.post(
            f"/bulletins/{bulletin}/{action}",
            data={"csrf_token": token, "comment": "x", "title": "x", "text": "x"},
        )
        assert response.status_code == 403, action
    assert client.get(f"/bulletins/{bulletin}/edit").status_code == 403
    with service.db.session() as session:
        assert service.bulletins.get_bulletin(session, bulletin).status == "submitted"


def test_status_filters_and_unknown_ones(client: FlaskClient, service: BroadcastService,
                                         users: Users) -> None:  # fmt: skip
    draft = service.bulletins.create_bulletin(users.officer, "Bản nháp một", "Tin.")
    waiting = service.bulletins.create_bulletin(users.officer, "Đang chờ", "Tin.")
    service.bulletins.submit(users.officer, waiting)
    login(client, "officer")
    page = client.get("/bulletins/").get_data(as_text=True)  # the officer sees all by default
    assert "Bản nháp một" in page and "Đang chờ" in page
    page = client.get("/bulletins/?status=draft").get_data(as_text=True)
    assert f"/bulletins/{draft}" in page and f'/bulletins/{waiting}"' not in page
    page = client.get("/bulletins/?status=lost").get_data(as_text=True)
    assert "(status)" in _flashes(page) and "Đang chờ" in page
    assert client.get("/bulletins/999").status_code == 404
