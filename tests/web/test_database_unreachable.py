"""A database that cannot be reached (its server died, a standby not promoted yet) is answered
503 with Retry-After, in the API's JSON and as a plain page, with one log line instead of a
traceback per request; once it is back, so is every answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from web_support import login

from broadcast.service import BroadcastService


@contextmanager
def _database_gone(service: BroadcastService) -> Iterator[None]:
    """Every new connection is refused, as by a dead server; pooled ones are dropped."""
    dbapi_error = service.db.engine.dialect.loaded_dbapi.OperationalError

    def refuse(*_args: Any) -> None:
        raise dbapi_error("connection refused: the server is gone")

    service.db.engine.dispose()
    event.listen(service.db.engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(service.db.engine, "do_connect", refuse)


def test_an_unreachable_database_is_a_503_and_then_nothing(
    service: BroadcastService,
    client: FlaskClient,
    tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"Authorization": f"Bearer {tokens['officer']}"}
    login(client, "officer")
    with _database_gone(service):
        api = client.get("/api/v1/announcements", headers=headers)
        page = client.get("/")
        english = client.get("/api/v1/zones?lang=en", headers=headers)
    assert api.status_code == 503 and api.headers["Retry-After"] == "10"
    assert "cơ sở dữ liệu" in api.get_json()["error"]["message"]
    assert english.get_json()["error"]["message"].startswith("The database cannot be reached")
    assert page.status_code == 503 and page.mimetype == "text/plain"
    assert "cơ sở dữ liệu" in page.get_data(as_text=True)
    unreachable = [r for r in caplog.records if "database unreachable" in r.getMessage()]
    assert len(unreachable) == 3 and not any(r.exc_info for r in caplog.records)
    assert client.get("/api/v1/announcements", headers=headers).status_code == 200
    assert client.get("/").status_code == 200
