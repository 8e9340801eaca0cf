"""What a request may carry, refused in one place with a 400 that names the field.

Python reads JSON more generously than anything behind it can hold: integers of any size (a row
id is 32 bits on PostgreSQL, 64 on SQLite), lone UTF-16 surrogates such as "\\ud800" (no UTF-8
form, so no column takes them), NUL characters (PostgreSQL text refuses them), NaN and
infinities (`1e999` parses to `inf`), and nesting deep enough to exhaust the interpreter's
stack. Every JSON body of `/api/v1` is read through `json_object`, which refuses all of these,
and unknown fields, before a view sees the body; `integer` and friends then read one field each,
as JSON says it (a JSON integer is not `2.7`, `"3"` or `true`; `3.0` is 3, as JSON Schema has
it). Ids in URLs go through `IdConverter` (the `int` converter of the whole app), ASCII digits
bounded to MAX_ID, the range of an id on every supported database: a larger one is a 404, like
any id that names nothing. Dates are bounded by the domain (`broadcast.clock`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from broadcast.errors import N_, ValidationError

_LOGGER = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1  # no JSON integer beyond 64 bits is held anywhere
INT64_MIN = -(2**63)
MAX_ID = 2**31 - 1  # the largest row id: ids are INTEGER columns, 32 bits on PostgreSQL
MAX_DEPTH = 16  # a body is an object of lists at most; this leaves room and no more
_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")
# Query arguments only ever compared with a few known values, any other value ignored (the
# document says so for `lang`): a NUL there is one more value to ignore, not a 400.
IGNORED_ARGS = frozenset({"lang"})


class IdConverter(IntegerConverter):
    """`<int:…>` for the whole app: at most MAX_ID, else a 404 saying so (raised here rather
    than "no match", which would make werkzeug answer 405 when the path has other methods).
    ASCII digits only: werkzeug's `\\d+` also matches "٣" or "３", which `int` reads as 3, so
    `/broadcasts/٣` would act on broadcast 3 though no id is written so."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        if len(value) > 10 or int(value) > MAX_ID:
            raise NotFound(f"no such id: {value[:24]} is beyond the largest id ({MAX_ID})")
        return int(super().to_python(value))


def init_app(app: Flask) -> None:
    """Before any blueprint adds its routes: their `<int:…>` ids become bounded ones; and
    before any other check of a request, NUL in what it carries is refused. Doubled slashes
    are not merged: werkzeug answered an empty path segment (`/replay/communes//items`, an
    empty commune) with an HTML 308 to another URL, where the API answers a JSON 404."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.merge_slashes = False
    app.before_request(refuse_nul)


def refuse_nul() -> ResponseReturnValue | None:
    """A NUL in a query, a form field, a file name or a path segment: PostgreSQL's text (and
    a comparison with it) refuses the character, so it would end as a 500 there. The API
    answers the JSON error naming the field, a page the 400 error page. `IGNORED_ARGS` never
    reach the database: a schema-valid `?lang=` is never refused."""
    if request.url_rule is None:  # no route: the 404 (or 405) says more than the NUL
        return None
    named: list[tuple[str, str]] = [
        (key, value) for key, value in request.args.items(multi=True) if key not in IGNORED_ARGS
    ]
    named += [(key, str(value)) for key, value in (request.view_args or {}).items()]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        named += [(key or "", value) for key, value in request.form.items(multi=True)]
        # a part may have no name at all: werkzeug keys it None
        named += [
            (key or "", upload.filename or "") for key, upload in request.files.items(multi=True)
        ]
    for key, value in named:
        if "\x00" in key or "\x00" in value:
            field = key.replace("\x00", "")[:64] or "?"
            if request.path.startswith("/api/"):
                message = f"{field}: a text may not contain NUL (\\u0000)"
                return jsonify({"error": {"field": field, "message": message}}), 400
            abort(400, description=f"{field}: a text may not contain NUL (\\u0000): remove it")
    return None


# --- JSON bodies ------------------------------------------------------------------------------


class _Unholdable:
    """A number JSON may write but Loa cannot hold (found by `_check`, which names its field)."""

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 24 else f"{text[:20]}…"


def _parse_int(text: str) -> int | _Unholdable:
    if len(text.lstrip("-")) > 19:  # more digits than any 64-bit number (and int() is quadratic)
        return _Unholdable(text)
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _Unholdable(text)


def _parse_float(text: str) -> float | _Unholdable:
    value = float(text)
    return value if math.isfinite(value) else _Unholdable(text)


def loads(raw: bytes | str) -> Any:
    """Strict JSON: a ValidationError naming the field for anything Loa cannot hold."""
    try:
        value = json.loads(
            raw,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_Unholdable,  # NaN, Infinity, -Infinity: not JSON at all
        )
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # also a UnicodeDecodeError: bytes that are not UTF-8/16/32
        raise ValidationError(
            "body", N_("không phải JSON hợp lệ (%(detail)s)"), "invalid_json", detail=str(exc)
        ) from None
    _check(value)
    return value


def _check(document: Any) -> None:
    """Walk the parsed document (iteratively: its depth is what is being checked)."""
    pending: list[tuple[Any, str, str, int]] = [(document, "body", "", 1)]
    while pending:
        value, field, where, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, _Unholdable):
            raise ValidationError(
                field,
                N_(
                    "%(where)s: %(value)s không phải số Loa lưu được (số nguyên từ %(min)s đến"
                    " %(max)s, số hữu hạn)"
                ),
                "unholdable_number",
                where=where or field,
                value=value.text,
                min=INT64_MIN,
                max=INT64_MAX,
            )
        if isinstance(value, str):
            _check_text(value, field, where or field)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, "body", N_("một tên trường"))
                top = key[:64] if depth == 1 else field
                pending.append((item, top, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            pending.extend(
                (item, field, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)
            )


def _check_text(text: str, field: str, where: str) -> None:
    if text.isascii() and "\x00" not in text:
        return
    found = _UNSTORABLE_CHARACTER.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        raise ValidationError(
            field, N_("%(where)s: văn bản không được chứa ký tự NUL (U+0000)"), "nul", where=where
        )
    raise ValidationError(
        field,
        N_(
            "%(where)s: U+%(char)s là một nửa của cặp surrogate UTF-16, không phải một ký tự;"
            " hãy gửi văn bản Unicode hợp lệ"
        ),
        "lone_surrogate",
        where=where,
        char=f"{ord(found.group()):04X}",
    )


def _too_deep() -> ValidationError:
    return ValidationError("body", N_("JSON lồng quá %(max)s tầng"), "too_deep", max=MAX_DEPTH)


def json_object(example: str, accepted: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, checked by `loads`; an unknown field is refused by name with
    the accepted ones listed. `optional`: an empty body reads as `{}`."""
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return {}
    if not request.is_json:
        raise ValidationError(
            "body",
            N_("hãy gửi một đối tượng JSON (Content-Type: application/json), ví dụ %(example)s"),
            "not_json",
            example=example,
        )
    data = loads(raw)
    if not isinstance(data, dict):
        raise ValidationError(
            "body",
            N_("hãy gửi một đối tượng JSON, ví dụ %(example)s"),
            "not_an_object",
            example=example,
        )
    allowed = tuple(accepted)
    for key in data:
        if key not in allowed:
            raise ValidationError(
                key if len(key) <= 64 else "body",
                N_("trường lạ %(key)s; các trường nhận: %(accepted)s"),
                "unknown_field",
                key=repr(key[:64]),
                accepted=", ".join(allowed),
            )
    return data


# --- fields -----------------------------------------------------------------------------------


def integer(
    data: dict[str, Any], key: str, default: int | None = None, *, low: int = INT64_MIN,
    high: int = INT64_MAX,
) -> int | None:  # fmt: skip
    """A JSON integer from `low` to `high` (absent or null: `default`). Not a fraction such
    as 2.7, not a string, not true/false (Python's bool is an int; JSON's is not); 3.0 is 3,
    as JSON Schema's `integer` (the document's) says, so a client that writes it is obeyed."""
    value = data.get(key)
    if value is None:
        return default
    return _whole(value, key, key, low, high)


def integers(
    data: dict[str, Any], key: str, *, low: int = INT64_MIN, high: int = INT64_MAX
) -> list[int]:
    """A list of JSON integers (absent or null: empty)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(
            key,
            N_("một danh sách số nguyên, ví dụ [%(example)s]"),
            "not_a_list",
            example=max(low, 0),
        )
    return [_whole(item, key, f"{key}[{index}]", low, high) for index, item in enumerate(value)]


def _whole(value: object, field: str, where: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():  # JSON Schema's integer takes 3.0
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        shown = json.dumps(value)[:40]
        raise ValidationError(
            field,
            N_("%(where)s: một số nguyên (số nguyên JSON), không phải %(value)s"),
            "not_integer",
            where=where,
            value=shown,
        )
    if not low <= value <= high:
        raise ValidationError(
            field,
            N_("%(where)s: một số nguyên từ %(min)s đến %(max)s"),
            "out_of_range",
            where=where,
            min=low,
            max=high,
        )
    return value


def text(data: dict[str, Any], key: str, default: str = "") -> str:
    """A JSON string (absent or null: `default`)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError(
            key,
            N_("một văn bản (chuỗi JSON), không phải %(value)s"),
            "not_text",
            value=json.dumps(value)[:40],
        )
    return value


def flag(data: dict[str, Any], key: str, default: bool = False) -> bool:
    """JSON true or false (absent or null: `default`)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(key, N_("true hoặc false"), "not_a_flag")
    return value
