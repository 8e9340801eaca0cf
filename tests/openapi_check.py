"""Every response the API tests get, checked against the OpenAPI document the app serves.

`CheckedClient` is the Flask test client of the web tests: a response to `/api/v1/…` must have a
status code its operation declares, a body that matches the declared schema for its content type
and the declared headers (openapi-core does the matching). A path or method the document does not
have must be answered with a JSON error: 404 for an unknown path, 405 with `Allow` for a method
the path does not take. So every API test also proves the document honest for what it does.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.testing import MockRequest
from werkzeug.test import TestResponse

from web.api import openapi

API_PREFIX = "/api/v1/"


@cache
def _spec() -> OpenAPI:
    return OpenAPI.from_dict(openapi.document())


def _explain(exc: BaseException) -> str:
    """openapi-core's error with the schema errors it wraps (which field, which rule)."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        for error in getattr(cause, "schema_errors", ()) or ():
            path = "/".join(str(part) for part in error.absolute_path)
            parts.append(f"  at /{path}: {error.message}")
        cause = cause.__cause__
    return "\n".join(parts)


def _check_undocumented(response: TestResponse, missing: Exception) -> None:
    """A path or method outside the document: only a JSON 404 or 405 (with Allow) may answer."""
    where = f"{response.request.method} {response.request.path}"
    expected = 405 if isinstance(missing, OperationNotFound) else 404
    assert response.status_code == expected, (
        f"{where} is not in the OpenAPI document ({missing}) but answered "
        f"{response.status_code}: {response.get_data(as_text=True)[:500]}"
    )
    assert response.is_json, f"{where}: {response.status_code} is not JSON"
    error_schema = openapi.SCHEMAS["Error"]
    jsonschema.validate(response.get_json(), error_schema)
    if expected == 405:
        assert response.headers.get("Allow"), f"{where}: a 405 without an Allow header"


def check_api_response(response: TestResponse) -> None:
    """Fail, naming the operation and the mismatch, unless the response conforms."""
    request = response.request
    if not request.path.startswith(API_PREFIX) or request.method in ("HEAD", "OPTIONS"):
        return
    try:
        # the operation is found from method and path alone (the request body is consumed)
        operation = MockRequest(request.host_url, request.method.lower(), request.path)
        _spec().validate_response(operation, WerkzeugOpenAPIResponse(response))
    except (PathNotFound, ServerNotFound, OperationNotFound) as missing:  # `//`: no server
        _check_undocumented(response, missing)
    except Exception as exc:  # openapi-core's validation errors have no common base to name
        body = response.get_data(as_text=True)
        raise AssertionError(
            f"{request.method} {request.full_path.rstrip('?')} answered {response.status_code}"
            f" ({response.content_type}) against the OpenAPI document:\n{_explain(exc)}\n"
            f"body: {body[:1000]}"
        ) from None


class CheckedClient(FlaskClient):
    """The Flask test client, checking each API response against the OpenAPI document."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        check_api_response(response)
        return response
