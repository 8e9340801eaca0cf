"""The OpenAPI document describes exactly the API's routes and is a valid OpenAPI 3.1 document;
the API tests' client checks their responses against it (`openapi_check`), and fails when one
does not conform."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from werkzeug.wrappers import Response

import web.api
from broadcast.desks.overview import Overview
from broadcast.errors import Conflict
from wire.protocol import ID_PATTERN


def _api_routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), path))
    return routes


def test_the_document_is_served_without_a_token_and_is_valid(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    document = response.get_json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_route_is_documented_and_nothing_else(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == _api_routes(app)


def test_every_protected_operation_documents_its_errors(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:
                continue
            assert {"400", "401", "403", "404"} <= set(operation["responses"]), (method, path)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_request_bodies_say_413_and_the_optional_ones_are_optional(
    app: Flask, client: FlaskClient, tokens: dict[str, str]
) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    optional = set()
    for method, path, operation in _operations(document):
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
            if not operation["requestBody"]["required"]:
                optional.add((method, path))
    # both read their body only if there is one (a correction, a comment)
    assert optional == {
        ("post", "/announcements/{broadcast_id}/cancel"),
        ("post", "/bulletins/{bulletin_id}/approve"),
    }
    too_large = app.config["MAX_CONTENT_LENGTH"] + 1
    response = client.post(
        "/api/v1/announcements",
        data=b"{" + b" " * too_large + b"}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    )
    assert response.status_code == 413 and response.get_json()["error"]["message"]


def test_state_conflicts_are_documented_as_409(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    with_409 = {(m, p) for m, p, op in _operations(document) if "409" in op["responses"]}
    assert with_409 == {
        ("post", "/announcements/{broadcast_id}/cancel"),
        ("post", "/live"),
        ("post", "/live/{broadcast_id}/feed"),
        ("post", "/live/{broadcast_id}/end"),
        ("post", "/schedules"),
        ("delete", "/schedules/{schedule_id}"),
        ("patch", "/bulletins/{bulletin_id}"),
        ("post", "/bulletins/{bulletin_id}/submit"),
        ("post", "/bulletins/{bulletin_id}/approve"),
        ("post", "/bulletins/{bulletin_id}/reject"),
        ("post", "/bulletins/{bulletin_id}/send"),
        ("post", "/province-bulletins"),
        ("post", "/province-bulletins/inbox/{forward_id}/place"),
        ("post", "/province-bulletins/inbox/{forward_id}/decline"),
        ("post", "/province-bulletins/inbox/{forward_id}/head"),
        ("post", "/province-bulletins/inbox/reorder"),
        ("post", "/source/bulletins"),
        ("post", "/source/cap"),
    }


def test_links_lead_to_operations_and_ids_are_bounded(client: FlaskClient) -> None:
    """Stateful fuzzing follows the links (create → read → cancel); ids fit an INTEGER column
    (PostgreSQL's is 32 bits: 2147483648 in a path answered 500 there); a zone named in a path
    (a commune's replay) has the zone id's shape, 63 characters at most."""
    document = client.get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"]: (m, p, op) for m, p, op in _operations(document)}
    assert len(operations) == sum(1 for _ in _operations(document))  # ids are unique
    followed = set()
    for _method, _path, operation in _operations(document):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                _method, _target_path, target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link.get("parameters", {})) <= names, link
                followed.add(link["operationId"])
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["schema"]["type"] == "string":
                assert parameter["schema"]["pattern"] == ID_PATTERN.pattern, parameter
            elif parameter["in"] == "path":
                assert parameter["schema"] == {"type": "integer", "minimum": 1,
                                               "maximum": 2**31 - 1}  # fmt: skip
    assert {"getAnnouncement", "cancelAnnouncement", "approveBulletin", "createSchedule",
            "cancelSchedule", "sendBulletin"} <= followed  # fmt: skip


def test_the_check_fails_a_body_that_breaks_the_document(
    client: FlaskClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API tests' client is no rubber stamp: a zone without its fields fails the test."""
    monkeypatch.setattr(web.api, "zone_json", lambda zone: {"id": zone.id})
    with pytest.raises(AssertionError, match="GET /api/v1/zones answered 200"):
        client.get("/api/v1/zones", headers={"Authorization": f"Bearer {tokens['admin']}"})


def test_the_check_fails_a_status_the_operation_does_not_declare(
    client: FlaskClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def clash(*_args: object) -> None:
        raise Conflict("zone", "a state this operation never refuses for")

    monkeypatch.setattr(Overview, "zones", clash)
    with pytest.raises(AssertionError, match="answered 409"):
        client.get("/api/v1/zones", headers={"Authorization": f"Bearer {tokens['admin']}"})


def test_the_check_fails_a_missing_required_header(
    app: Flask, client: FlaskClient, tokens: dict[str, str]
) -> None:
    @app.after_request
    def drop_the_total(response: Response) -> Response:
        response.headers.pop("X-Total-Count", None)
        return response

    with pytest.raises(AssertionError, match="X-Total-Count"):
        client.get("/api/v1/devices", headers={"Authorization": f"Bearer {tokens['admin']}"})


def test_query_bounds_in_the_document_are_the_codes(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """Each bounded number in a query is taken at its documented ends and refused past them."""
    document = client.get("/api/v1/openapi.json").get_json()
    checked = []
    for method, path, operation in _operations(document):
        user = "source" if operation.get("tags") == ["source"] else "admin"
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        params = operation.get("parameters", [])
        required = {
            p["name"]: p["schema"]["examples"][0]
            for p in params
            if p["in"] == "query" and p.get("required")
        }
        for parameter in params:
            schema = parameter["schema"]
            if parameter["in"] != "query" or schema.get("type") != "integer":
                continue
            name, low, high = parameter["name"], schema["minimum"], schema["maximum"]
            url = f"/api/v1{path}"
            for value, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
                response = client.open(
                    url, method=method, query_string={**required, name: value}, headers=headers
                )
                assert response.status_code == status, (path, name, value, response.get_json())
                if status == 400:
                    assert response.get_json()["error"]["field"] == name
            checked.append((path, name))
    assert len(checked) == 6  # page and per_page twice, limit twice


def test_the_month_pattern_is_the_codes(client: FlaskClient, tokens: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {tokens['leader']}"}
    for month, status in (("2000-01", 200), ("2100-12", 200), ("2026-13", 400), ("26-11", 400)):
        response = client.get(f"/api/v1/reports/monthly?month={month}", headers=headers)
        assert response.status_code == status, (month, response.get_json())
