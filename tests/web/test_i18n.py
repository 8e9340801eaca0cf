"""The UI speaks Vietnamese by default and English when asked."""

from __future__ import annotations

from flask.testing import FlaskClient
from web_support import login

from broadcast.people import accounts
from broadcast.service import BroadcastService


def test_vietnamese_by_default_english_on_request(client: FlaskClient) -> None:
    login(client, "officer")
    page = client.get("/").get_data(as_text=True)
    assert 'lang="vi"' in page and "Phát thông báo khẩn" in page
    page = client.get("/?lang=en").get_data(as_text=True)
    assert 'lang="en"' in page and "Send urgent notice" in page
    page = client.get("/").get_data(as_text=True)  # remembered for the session
    assert "Send urgent notice" in page and "Phát thông báo khẩn" not in page
    page = client.get("/?lang=xx").get_data(as_text=True)  # unknown: the last choice stays
    assert 'lang="en"' in page


# --- the API's errors ---------------------------------------------------------------------

BAD_DATE = "/api/v1/reports/broadcasts?from=2026-02-30"
VIETNAMESE = "“Từ ngày” phải là một ngày dạng năm-tháng-ngày, ví dụ 2026-11-26"
ENGLISH = "“From date” must be a date as year-month-day, e.g. 2026-11-26"


def _api_error(client: FlaskClient, token: str, url: str, **headers: str) -> dict[str, str]:
    response = client.get(url, headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    return dict(response.get_json()["error"])


def test_api_errors_are_vietnamese_by_default_english_when_asked(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """The body keeps its shape (`message`, `field`); only the language of the message moves,
    its parameter (the field's label) translated with it."""
    token = tokens["viewer"]
    assert _api_error(client, token, BAD_DATE) == {"message": VIETNAMESE, "field": "from"}
    for headers in ({"Accept-Language": "en"}, {"Accept-Language": "en-GB,en;q=0.8"}):
        assert _api_error(client, token, BAD_DATE, **headers) == {
            "message": ENGLISH,
            "field": "from",
        }
    assert _api_error(client, token, BAD_DATE, **{"Accept-Language": "vi, en;q=0.5"}) == {
        "message": VIETNAMESE,
        "field": "from",
    }
    assert _api_error(client, token, BAD_DATE + "&lang=en")["message"] == ENGLISH
    assert (
        _api_error(client, token, BAD_DATE + "&lang=en", **{"Accept-Language": "vi"})["message"]
        == ENGLISH
    )  # the query string is the most explicit


def test_api_errors_follow_the_token_users_language(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    with service.db.session() as session:
        accounts.get_user(session, "viewer").locale = "en"
    assert _api_error(client, tokens["viewer"], BAD_DATE)["message"] == ENGLISH
    headers = {"Accept-Language": "vi"}  # what the request says wins over the stored choice
    assert _api_error(client, tokens["viewer"], BAD_DATE, **headers)["message"] == VIETNAMESE
    assert _api_error(client, tokens["officer"], BAD_DATE)["message"] == VIETNAMESE


def test_a_refusal_by_state_is_translated_with_its_status_label(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    """A 409 naming a bulletin's status: the label is a message id of its own."""
    draft = service.bulletins.create_bulletin(_user_id(service, "officer"), "Tin", "Nội dung.")
    url = f"/api/v1/bulletins/{draft}/approve"
    auth = {"Authorization": f"Bearer {tokens['leader']}"}
    response = client.post(url, headers=auth, json={})
    assert response.status_code == 409
    assert "đang ở trạng thái “Bản nháp”" in response.get_json()["error"]["message"]
    response = client.post(url, headers={**auth, "Accept-Language": "en"}, json={})
    message = response.get_json()["error"]["message"]
    assert response.status_code == 409 and "approve" in message and "“Draft”" in message, message


def _user_id(service: BroadcastService, name: str) -> int:
    with service.db.session() as session:
        return accounts.get_user(session, name).id
