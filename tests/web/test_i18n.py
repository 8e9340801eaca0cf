"""The UI speaks Vietnamese by default and English when asked."""

from __future__ import annotations

from flask.testing import FlaskClient
from web_support import login


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
