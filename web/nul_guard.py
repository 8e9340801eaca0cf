"""NUL characters are refused before anything stores them: PostgreSQL's text columns cannot hold
one (a server error there, on any page or API call that saves or looks up what was typed), and
no notice, name or id ever needs one. One check for every request: query, form and JSON body."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Request

NUL = "\x00"
# JSON can carry a NUL only as the escape \u0000; an escaped backslash before "u0000" is text
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
MESSAGE = "contains a NUL character (\\u0000), which cannot be stored: remove it"


def field_with_nul(request: Request) -> str | None:
    """The name of the first input of `request` holding a NUL character, or None."""
    for name, value in request.args.items(multi=True):
        if NUL in name or NUL in value:
            return name
    if request.mimetype in FORMS:
        for name, value in request.form.items(multi=True):
            if NUL in name or NUL in value:
                return name
    elif request.is_json:
        data = request.get_data(cache=True)
        if _JSON_NUL.search(data):
            return _json_field(data)
    return None


def _json_field(data: bytes) -> str:
    """The top-level key under which the body's NUL is ("body" if it cannot be told)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return "body"
    if not isinstance(document, dict):
        return "body"
    for key, value in document.items():
        if NUL in key or _holds_nul(value):
            return key
    return "body"


def _holds_nul(value: Any) -> bool:
    """Whether a parsed JSON value has a NUL in any string or key (walked without recursion)."""
    waiting = [value]
    while waiting:
        item = waiting.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            waiting.extend(item.keys())
            waiting.extend(item.values())
        elif isinstance(item, list):
            waiting.extend(item)
    return False
