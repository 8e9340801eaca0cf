"""The province pages (/province/) and API (/api/v1/province/…) on the hand-counted October
2025 of `province_support`: who gets them, what they show, the drill-down links, the CSV, and
the nav link. Every API response is checked against the OpenAPI document (`CheckedClient`)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask.testing import FlaskClient
from province_support import seed_october, seed_province
from service_support import Users
from web_support import login

from broadcast.people import accounts
from broadcast.service import BroadcastService


@pytest.fixture
def ids(service: BroadcastService, users: Users) -> dict[str, int]:
    found = seed_province(service)
    seed_october(service)
    return found


def _token(service: BroadcastService, name: str) -> dict[str, str]:
    with service.db.session() as session:
        token = accounts.create_token(session, accounts.get_user(session, name))
    return {"Authorization": f"Bearer {token}"}


def _rows(page: str) -> dict[str, str]:
    """The commune rows of a page's table by zone id."""
    return dict(re.findall(r'<tr data-zone="([^"]+)"[^>]*>(.*?)</tr>', page, re.S))


def test_the_dashboard_of_a_province_account(client: FlaskClient, ids: dict[str, int]) -> None:
    login(client, "tinh")
    response = client.get("/province/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<title>Toàn tỉnh" in page
    assert 'id="nav-province"' in page
    rows = _rows(page)
    assert list(rows) == ["xa-ba", "xa-hai", "xa-test"]  # never Tỉnh Khác's Xã Khác
    assert "Xã Khác" not in page
    # drill down to the commune's own dashboard and monthly report
    assert 'href="/?zone=xa-test"' in rows["xa-test"]
    assert re.search(
        r'href="/reports/monthly\?zone=xa-test&amp;month=\d{4}-\d{2}"', rows["xa-test"]
    )
    assert 'bulletins">0 / 0 / 0<' in rows["xa-hai"]  # until the forwarding table exists


def test_the_monthly_report(client: FlaskClient, ids: dict[str, int]) -> None:
    login(client, "tinh")
    page = client.get("/province/monthly?month=2025-10").get_data(as_text=True)
    assert "Báo cáo tổng hợp hoạt động truyền thanh toàn tỉnh tháng 10/2025" in page
    rows = _rows(page)
    assert list(rows) == ["xa-ba", "xa-hai", "xa-test", "tinh-test"]
    assert "12,0" in rows["xa-test"] and "75,0 %" in rows["xa-test"]
    assert "22,0" in rows["tinh-test"]  # the communes' minutes summed
    assert "(1 lượt chưa rõ thời lượng)" in rows["xa-hai"]
    assert 'offline">748,0<' in rows["xa-test"] and 'offline">772,0<' in rows["tinh-test"]
    assert 'href="/reports/monthly?zone=xa-hai&amp;month=2025-10"' in rows["xa-hai"]
    assert 'class="stack"' in page  # the table stacks on a phone


def test_the_csv(client: FlaskClient, ids: dict[str, int]) -> None:
    login(client, "admin-tinh")
    response = client.get("/province/monthly.csv?month=2025-10")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "loa-bao-cao-tinh-2025-10.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == ["xa-ba", "xa-hai", "xa-test", "tinh-test"]
    assert client.get("/province/monthly.csv?month=2025-13").status_code == 400


def test_a_bad_month_is_explained(client: FlaskClient, ids: dict[str, int]) -> None:
    login(client, "tinh")
    response = client.get("/province/monthly?month=tháng-mười")
    assert response.status_code == 400
    assert "Bộ lọc chưa đúng" in response.get_data(as_text=True)


def test_installation_wide_accounts_choose_the_province(
    client: FlaskClient, ids: dict[str, int]
) -> None:
    login(client, "admin")
    page = client.get("/province/?province=tinh-test").get_data(as_text=True)
    assert 'id="province-choice"' in page
    assert list(_rows(page)) == ["xa-ba", "xa-hai", "xa-test"]
    page = client.get("/province/monthly?province=tinh-khac&month=2025-10").get_data(as_text=True)
    assert list(_rows(page)) == ["xa-khac", "tinh-khac"]
    assert client.get("/province/?province=nowhere").status_code == 404


# officer and viewer: the single commune's staff, bound to it when it joined the province
@pytest.mark.parametrize("name", ["officer-xa", "viewer-xa", "head-a", "officer", "viewer"])
def test_commune_and_village_accounts_are_refused(
    client: FlaskClient, ids: dict[str, int], name: str
) -> None:
    login(client, name)
    assert 'id="nav-province"' not in client.get("/").get_data(as_text=True)
    for url in ("/province/", "/province/monthly?month=2025-10", "/province/monthly.csv"):
        assert client.get(url).status_code in (403, 404), url


def test_a_province_account_cannot_read_another_province(
    client: FlaskClient, ids: dict[str, int]
) -> None:
    login(client, "tinh")
    for url in (
        "/province/?province=tinh-khac",
        "/province/monthly?province=tinh-khac",
        "/province/monthly.csv?province=tinh-khac",
    ):
        assert client.get(url).status_code == 404, url


def test_no_nav_link_without_a_province(client: FlaskClient, users: Users) -> None:
    login(client, "admin")
    assert 'id="nav-province"' not in client.get("/").get_data(as_text=True)
    assert client.get("/province/").status_code == 200  # the root commune, if asked


def test_english(client: FlaskClient, ids: dict[str, int]) -> None:
    login(client, "tinh")
    page = client.get("/province/monthly?month=2025-10&lang=en").get_data(as_text=True)
    assert "Whole province" in page
    assert "Báo cáo tổng hợp" not in page


# --- the API ---------------------------------------------------------------------------------


def test_api_monthly(client: FlaskClient, service: BroadcastService, ids: dict[str, int]) -> None:
    response = client.get("/api/v1/province/monthly?month=2025-10", headers=_token(service, "tinh"))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["province"], body["month"]) == ("tinh-test", "2025-10")
    communes = {row["zone"]: row for row in body["communes"]}
    assert list(communes) == ["xa-ba", "xa-hai", "xa-test"]
    xa = communes["xa-test"]
    assert (xa["receivers"], xa["online"], xa["attention"]) == (3, 2, 2)
    assert (xa["minutes"], xa["delivery_rate"]) == (12.0, 0.75)
    assert xa["province_bulletins"] == {"played": 0, "waiting": 0, "declined": 0}
    assert communes["xa-ba"]["delivery_rate"] is None
    assert (xa["offline_hours"], body["total"]["offline_hours"]) == (748.0, 772.0)
    assert body["total"]["minutes"] == 22.0
    assert body["total"]["broadcasts"] == 4


def test_api_dashboard(client: FlaskClient, service: BroadcastService, ids: dict[str, int]) -> None:
    headers = _token(service, "admin")
    body = client.get("/api/v1/province/dashboard?province=tinh-test", headers=headers).get_json()
    assert [row["zone"] for row in body["communes"]] == ["xa-ba", "xa-hai", "xa-test"]
    assert body["total"]["receivers"] == 4
    assert body["total"]["offline_hours"] is None  # the monthly report's
    assert client.get("/api/v1/province/dashboard", headers=headers).status_code == 200


def test_api_refusals(client: FlaskClient, service: BroadcastService, ids: dict[str, int]) -> None:
    assert client.get("/api/v1/province/dashboard").status_code == 401
    for name in ("officer-xa", "head-a"):
        response = client.get("/api/v1/province/dashboard", headers=_token(service, name))
        assert response.status_code == 403, name
    tinh = _token(service, "tinh")
    assert client.get(
        "/api/v1/province/dashboard?province=tinh-khac", headers=tinh
    ).status_code == (404)
    for month in ("", "2025-13", "10-2025", "1999-01"):
        response = client.get(f"/api/v1/province/monthly?month={month}", headers=tinh)
        assert response.status_code == 400, month
        assert response.get_json()["error"]["field"] == "month"
