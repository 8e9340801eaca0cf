"""Report pages: every role may read them, a village head only for their own village (403 for
another zone, on the pages and the exports); CSV exports with a BOM; filters that are wrong
are explained, not a traceback."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from service_support import Province
from web_support import login

from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Delivery, utcnow

ROLES = ("admin", "officer", "head-a", "viewer", "leader")


def _add(
    service: BroadcastService, title: str, zones: list[str], devices: dict[str, str], at: datetime
) -> int:
    with service.db.session() as session:
        broadcast = Broadcast(
            title=title,
            text=title,
            priority="emergency",
            zone_ids=zones,
            source="announcement",
            status="finished",
            created_at=at,
        )
        session.add(broadcast)
        session.flush()
        for device_id, state in devices.items():
            session.add(Delivery(broadcast_id=broadcast.id, device_id=device_id, state=state))
        return broadcast.id


@pytest.fixture
def logged(service: BroadcastService, users: object) -> dict[str, int]:
    now = utcnow() - timedelta(minutes=5)
    return {
        "a": _add(service, "Tin thôn A <b>đậm</b>", ["thon-a"], {"loa-a-01": "finished"}, now),
        "b": _add(service, "Tin thôn B", ["thon-b"], {"loa-b-01": "failed"}, now),
        "all": _add(
            service,
            "=cmd|' /C calc'!A0",
            ["xa-test"],
            {"loa-a-01": "finished", "loa-b-01": "finished"},
            now - timedelta(minutes=1),
        ),
    }


def _rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_every_role_may_read_reports(app: Flask, logged: dict[str, int]) -> None:
    for username in ROLES:
        client = app.test_client()
        login(client, username)
        for url in (
            "/reports/",
            "/reports/monthly",
            "/reports/broadcasts.csv",
            "/reports/deliveries.csv",
            "/reports/monthly.csv",
        ):
            assert client.get(url).status_code == 200, (username, url)
        assert 'href="/reports/"' in client.get("/").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    for url in ("/reports/", "/reports/monthly", "/reports/broadcasts.csv", "/reports/monthly.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_log_page(client: FlaskClient, logged: dict[str, int]) -> None:
    login(client, "officer")
    page = client.get("/reports/").get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'<tr data-broadcast="(\d+)">', page)]
    assert ids == [logged["b"], logged["a"], logged["all"]]
    assert "Tin thôn A &lt;b&gt;đậm&lt;/b&gt;" in page and "<b>đậm</b>" not in page
    page = client.get("/reports/?zone=thon-b").get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'<tr data-broadcast="(\d+)">', page)]
    assert ids == [logged["b"], logged["all"]]
    assert 'href="/reports/broadcasts.csv?zone=thon-b"' in page
    assert '<option value="thon-b" selected lang="vi">' in page


def test_village_head_sees_only_own_village(client: FlaskClient, logged: dict[str, int]) -> None:
    login(client, "head-a")
    page = client.get("/reports/").get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'<tr data-broadcast="(\d+)">', page)]
    assert ids == [logged["a"], logged["all"]]
    assert 'value="thon-b"' not in page and 'value="xa-test"' not in page
    for url in (
        "/reports/?zone=thon-b",
        "/reports/?zone=xa-test",
        "/reports/broadcasts.csv?zone=thon-b",
        "/reports/deliveries.csv?zone=xa-test",
        "/reports/monthly?zone=thon-b",
        "/reports/monthly.csv?zone=xa-test",
    ):
        assert client.get(url).status_code == 403, url
    rows = _rows(client.get("/reports/deliveries.csv").data)
    assert {row[4] for row in rows[1:]} == {"loa-a-01"}
    monthly = client.get("/reports/monthly").get_data(as_text=True)
    assert re.findall(r'<tr data-zone="([^"]+)"', monthly) == ["thon-a"]
    assert re.findall(r'<tr data-device="([^"]+)"', monthly) == ["loa-a-01"]
    assert [row[1] for row in _rows(client.get("/reports/monthly.csv").data)[1:]] == ["thon-a"]


def test_a_village_head_reads_a_commune_wide_row_by_the_communes_name(
    client: FlaskClient, logged: dict[str, int]
) -> None:
    """The head may not filter by the commune, but its broadcasts reach their loudspeakers: the
    row names the commune as everyone else reads it, not by its id."""
    login(client, "head-a")
    page = client.get("/reports/").get_data(as_text=True)
    row = re.search(rf'<tr data-broadcast="{logged["all"]}">.*?</tr>', page, re.S)
    assert row is not None
    assert "xa-test" not in row.group() and "Xã Thử" in row.group(), row.group()


def test_csv_exports(client: FlaskClient, logged: dict[str, int]) -> None:
    login(client, "viewer")
    response = client.get("/reports/broadcasts.csv?zone=thon-a&priority=emergency")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="loa-broadcasts-') and ".csv" in disposition
    rows = _rows(response.data)
    assert rows[0][0] == "Mã lượt phát"
    by_id = {int(row[0]): row for row in rows[1:]}
    assert set(by_id) == {logged["a"], logged["all"]}
    assert by_id[logged["all"]][2] == "'=cmd|' /C calc'!A0"
    assert by_id[logged["all"]][10:12] == ["1", "1"]  # counted in thôn A only
    deliveries = _rows(client.get("/reports/deliveries.csv").data)
    assert len(deliveries) == 1 + 4


def test_bad_filter_is_explained(client: FlaskClient, logged: dict[str, int]) -> None:
    login(client, "officer")
    response = client.get("/reports/?from=26/11/2026")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Từ ngày" in page and "Traceback" not in page
    assert client.get("/reports/?zone=thon-z").status_code == 400
    assert client.get("/reports/?page=abc").status_code == 400
    assert client.get("/reports/broadcasts.csv?priority=x").status_code == 400
    response = client.get("/reports/monthly?month=2026-13")
    assert response.status_code == 400 and "Tháng" in response.get_data(as_text=True)
    assert client.get("/reports/monthly.csv?month=abc").status_code == 400


def test_pagination_links_keep_the_filter(
    client: FlaskClient, service: BroadcastService, logged: dict[str, int]
) -> None:
    start = utcnow() - timedelta(days=1)
    for number in range(55):
        _add(service, f"Tin {number}", ["thon-b"], {}, start + timedelta(minutes=number))
    login(client, "officer")
    page = client.get("/reports/?zone=thon-b").get_data(as_text=True)
    assert page.count("<tr data-broadcast=") == 50
    assert "Trang 1 / 2" in page
    assert 'href="/reports/?page=2&amp;zone=thon-b"' in page
    second = client.get("/reports/?page=2&zone=thon-b").get_data(as_text=True)
    assert second.count("<tr data-broadcast=") == 57 - 50


def test_monthly_page_and_csv(client: FlaskClient, logged: dict[str, int]) -> None:
    login(client, "leader")
    page = client.get("/reports/monthly").get_data(as_text=True)
    assert re.findall(r'<tr data-zone="([^"]+)"', page) == ["xa-test", "thon-a", "thon-b"]
    assert "Báo cáo tổng hợp hoạt động truyền thanh tháng" in page
    assert 'class="printable"' in page
    local = utcnow() - timedelta(minutes=6) + timedelta(hours=7)  # the broadcasts' month
    response = client.get(f"/reports/monthly.csv?month={local:%Y-%m}&zone=thon-a")
    assert response.status_code == 200
    assert f"loa-bao-cao-thang-{local:%Y-%m}.csv" in response.headers["Content-Disposition"]
    rows = _rows(response.data)
    assert [row[1] for row in rows[1:]] == ["thon-a"]
    header = rows[0]
    thon_a = dict(zip(header, rows[1], strict=True))
    assert thon_a["Tổng số lượt phát"] == "2"
    assert thon_a["Số lượt cụm loa phát xong"] == "2"
    assert thon_a["Tỉ lệ phát thành công (%)"] == "100.0"


def test_a_province_s_monthly_page_lists_its_communes(
    client: FlaskClient, province: Province
) -> None:
    """A province's page: its communes, each a link to its own page with villages and
    receivers; the CSV keeps every zone."""
    login(client, "tinh-editor")
    page = client.get("/reports/monthly").get_data(as_text=True)
    assert re.findall(r'<tr data-zone="([^"]+)"', page) == [
        province.province, province.commune_a, province.commune_b
    ]  # fmt: skip
    assert 'id="choose-commune"' in page and "data-device=" not in page
    assert f"zone={province.commune_a}" in page
    rows = _rows(client.get("/reports/monthly.csv").data)
    assert len(rows) == 1 + 6  # the province, 2 communes, 3 villages
    commune = client.get(f"/reports/monthly?zone={province.commune_a}").get_data(as_text=True)
    assert re.findall(r'<tr data-zone="([^"]+)"', commune) == [
        province.commune_a, province.village_a, province.village_a2
    ]  # fmt: skip
    assert re.findall(r'<tr data-device="([^"]+)"', commune) == [province.device_a]
    english = client.get("/reports/monthly?lang=en").get_data(as_text=True)
    assert "click a commune's name" in english
