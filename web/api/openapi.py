"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`.

Written as data next to the routes it describes. Tests check that every route of the blueprint
is in it (and nothing else), that it is a valid OpenAPI document, and that every response the API
tests get conforms to it (`tests/openapi_check.py`); Schemathesis fuzzes a running server
against it (`tests/e2e/test_api_fuzz.py`, `make fuzz`). Request constraints are the code's: a
request of the documented shape is refused only for what it names (an unknown zone, a bulletin
in the wrong state), never for its shape.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from broadcast.const import (
    MAX_CRON_CHARS,
    MAX_INTERVAL_H,
    MAX_REPEAT,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    BroadcastStatus,
    ContentKind,
    DeliveryState,
    ScheduleKind,
    ZoneKind,
)
from broadcast.desks.bulletins import MAX_COMMENT_CHARS, BulletinStatus
from broadcast.desks.live import DEFAULT_MINUTES, MAX_MINUTES
from broadcast.desks.replay import MODERATION_PAGE, NAME_CHARS, FeedbackStatus
from broadcast.desks.replay import TEXT_CHARS as FEEDBACK_CHARS
from broadcast.desks.reporting import CONTENT_LABELS, SOURCE_LABELS
from broadcast.desks.source_bulletins import ForwardState
from web import MAX_REQUEST_BYTES
from web.api import bp
from wire.protocol import ID_PATTERN, Priority

_LOGGER = logging.getLogger(__name__)

JSON = "application/json"
MAX_ID = 2**31 - 1  # the id columns are INTEGER: PostgreSQL refuses a larger one (a 500)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": item, **extra}


def nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A response object: every property is always present (null when it has no value)."""
    return {"type": "object", "required": list(properties), "properties": properties, **extra}


def request_obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A request body: an object with these fields and no others."""
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = nullable("string", format="date-time", description="UTC, ISO 8601")
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
# zone and device ids (`wire.protocol.ID_PATTERN`)
NAME_ID = {"type": "string", "pattern": ID_PATTERN.pattern, "examples": ["thon-1"]}
IDS = array(STRING)
ZONE_IDS = array(NAME_ID, description="zone ids (a commune reaches all its villages)")
DEVICE_IDS = array(
    {**NAME_ID, "examples": ["loa-thon-1-01"]}, description="receiver ids, beside the zones"
)
# at least one zone or device: the code refuses an empty choice (field `zones`)
TARGETED = [
    {"required": ["zones"], "properties": {"zones": {"minItems": 1}}},
    {"required": ["devices"], "properties": {"devices": {"minItems": 1}}},
]
PRIORITY = {
    "type": "string",
    "enum": [level.value for level in Priority],
    "description": "Thông tư 39/2020/TT-BTTTT: khẩn cấp, ưu tiên, thông thường",
}
REPEAT = {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT}
TEXT = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT_CHARS,
    "pattern": r"\S",
    "description": "what is read aloud; not only spaces",
}
TITLE = {"type": "string", "maxLength": MAX_TITLE_CHARS}
# a request's title: `web.inputs.text` reads null as absent (the default title)
TITLE_IN = {**TITLE, "type": ["string", "null"]}
COMMENT = {"type": "string", "maxLength": MAX_COMMENT_CHARS}
# local dates and times, years 2000-2099 (what a commune's programme and reports need)
YEAR = "20[0-9]{2}"
DATE_TEXT = f"{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
LOCAL_DATE = {
    "type": "string",
    "format": "date",
    "pattern": f"^{DATE_TEXT}$",
    "description": "a local (Asia/Ho_Chi_Minh) date",
    "examples": ["2026-12-31"],
}
LOCAL_DATETIME = {
    "type": "string",
    "pattern": f"^{DATE_TEXT}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
    "description": "a local (Asia/Ho_Chi_Minh) date and time",
    "examples": ["2026-12-01T06:00"],
}
MONTH = {
    "type": "string",
    "pattern": f"^({YEAR}|2100)-(0[1-9]|1[0-2])$",
    "description": "YYYY-MM, a local calendar month",
    "examples": ["2026-11"],
}
TIME_OF_DAY = {
    "type": "string",
    "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
    "description": "local HH:MM",
    "examples": ["17:00"],
}

BROADCAST_FIELDS: dict[str, Any] = {
    "id": INTEGER,
    "title": STRING,
    "status": {"type": "string", "enum": [status.value for status in BroadcastStatus]},
    "priority": PRIORITY,
    "repeat": INTEGER,
    "zones": IDS,
    "devices": IDS,
    "source": {"type": "string", "enum": list(SOURCE_LABELS)},
    "schedule": nullable("integer"),
    "item_id": nullable("string"),
    "content": {"type": "string", "enum": list(CONTENT_LABELS)},
    "relay_url": nullable("string"),
    "duration_s": nullable("number"),
    "error": nullable("string"),
    "media_sha256": nullable("string"),
    "created_at": TIME,
    "dispatched_at": TIME,
    "play_at": TIME,
    "valid_until": TIME,
    "corrects": nullable("integer"),
    "cancelled_at": TIME,
    "internal": {
        **BOOLEAN,
        "description": "nội bộ: kept off the commune's public replay page and podcast",
    },
}
DELIVERY_STATE = {"type": "string", "enum": [state.value for state in DeliveryState]}
INTERNAL_CHOICE = {
    "type": ["boolean", "null"],  # `web.inputs.flag`: null is the default
    "default": False,
    "description": "nội bộ: never on the commune's public replay page (nghe lại) nor its podcast",
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "SourceItem": obj(
        {
            "id": ID,
            "key": {**STRING, "description": "the Idempotency-Key, or cap:<sender> <identifier>"},
            "kind": {"type": "string", "enum": ["bulletin", "cap"]},
            "received_at": TIME,
            "disposition": {
                "type": "string",
                "enum": ["broadcast", "correct", "cancel", "ignore"],
                "description": "what Loa did: sent it down, sent it as the correction of the "
                "alerts it references, stopped them, or received and ignored it (`reason`)",
            },
            "priority": {**PRIORITY, "type": ["string", "null"], "enum": [*PRIORITY["enum"], None]},
            "communes": array(NAME_ID, description="the communes it went down to"),
            "title": STRING,
            "reason": STRING,
            "valid_until": TIME,
            "sent_id": nullable("integer", description="the province bulletin it became"),
            "replaces": nullable("integer", description="the item it corrects or stops"),
        }
    ),
    "SourceBulletinRequest": request_obj(
        {
            "title": TITLE,
            "text": TEXT,
            "audio_url": {
                "type": "string",
                "maxLength": 1000,
                "description": "an http(s) address of the recording, fetched and validated",
            },
            "priority": PRIORITY,
            "communes": array(
                {"type": "string", "minLength": 1, "maxLength": 63},
                minItems=1,
                maxItems=1000,
                description="zone ids or administrative unit codes (a province: all its communes)",
            ),
            "valid_until": {
                "type": "string",
                "description": "ISO 8601 with an offset, e.g. 2026-12-08T17:00+07:00",
            },
        },
        required=["priority", "communes"],
    ),
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": STRING,
                    "field": {"type": "string", "description": "the input at fault"},
                },
            }
        },
    },
    "Zone": obj(
        {
            "id": STRING,
            "name": STRING,
            "kind": {"type": "string", "enum": [kind.value for kind in ZoneKind]},
            "parent": nullable("string"),
            "code": nullable(
                "string",
                description="mã đơn vị hành chính: 2 digits for a province, 5 for a commune",
            ),
            "devices": IDS,
        }
    ),
    "Device": obj(
        {
            "id": STRING,
            "name": STRING,
            "zone": STRING,
            "online": BOOLEAN,
            "state": STRING,
            "last_seen": TIME,
            "status": {"type": "object", "description": "the receiver's last heartbeat"},
            "manifest_published_at": TIME,
        }
    ),
    "Delivery": obj(
        {
            "device": STRING,
            "state": DELIVERY_STATE,
            "detail": nullable("string"),
            "received_at": TIME,
            "fetched_at": TIME,
            "started_at": TIME,
            "preempted_at": TIME,
            "finished_at": TIME,
        }
    ),
    "Broadcast": obj({**BROADCAST_FIELDS, "deliveries": array(ref("Delivery"))}),
    "BroadcastSummary": obj(
        {
            **BROADCAST_FIELDS,
            "deliveries_total": INTEGER,
            "delivery_counts": {
                "type": "object",
                "propertyNames": DELIVERY_STATE,
                "additionalProperties": INTEGER,
                "description": 'delivery state → receivers in it, e.g. {"finished": 12}',
            },
        },
        description="A broadcast in a list: its deliveries counted per state",
    ),
    "AnnouncementRequest": request_obj(
        {
            "text": TEXT,
            "zones": ZONE_IDS,
            "devices": DEVICE_IDS,
            "priority": {**PRIORITY, "default": Priority.EMERGENCY.value},
            "repeat": {**REPEAT, "default": 1},
            "title": {**TITLE_IN, "description": "default: the text's first line"},
            "internal": INTERNAL_CHOICE,
        },
        required=["text"],
        anyOf=TARGETED,
        examples=[
            {
                "text": "Thông báo khẩn: mất điện từ 14h00 đến 16h00.",
                "zones": ["thon-1"],
                "priority": "emergency",
                "repeat": 1,
            }
        ],
    ),
    "LiveRequest": request_obj(
        {
            "zones": ZONE_IDS,
            "devices": DEVICE_IDS,
            "priority": {**PRIORITY, "default": Priority.EMERGENCY.value},
            "minutes": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_MINUTES,
                "default": DEFAULT_MINUTES,
                "description": "the longest it may last: receivers stop then even without an end",
            },
            "title": {**TITLE_IN, "description": "default: Phát trực tiếp: <the speaker's name>"},
            "internal": {
                **INTERNAL_CHOICE,
                "description": "nội bộ: its recording never on the commune's public replay page",
            },
        },
        anyOf=TARGETED,
        examples=[{"zones": ["thon-1"], "priority": "emergency", "minutes": 15}],
    ),
    "LiveFeedResult": obj(
        {
            "seconds": {**NUMBER, "description": "how long the feed ran"},
            "recording": nullable(
                "string",
                pattern="^[0-9a-f]{64}$",
                description="the recording's sha256 (/media/<sha256>.mp3); null: nothing was heard",
            ),
        }
    ),
    "CancelRequest": request_obj(
        {
            "correction": {
                "type": ["string", "null"],
                "maxLength": MAX_TEXT_CHARS,
                "pattern": r"^$|\S",
                "description": "announced as an emergency to the same targets; empty or null:"
                " only stop",
            }
        }
    ),
    "CancelResult": obj(
        {
            "cancelled": ref("Broadcast"),
            "correction": {"oneOf": [ref("Broadcast"), {"type": "null"}]},
        }
    ),
    "ScheduleRequest": request_obj(
        {
            "bulletin": {**ID, "description": "an approved bulletin"},
            "kind": {"type": "string", "enum": [kind.value for kind in ScheduleKind]},
            "zones": ZONE_IDS,
            "devices": DEVICE_IDS,
            "priority": {**PRIORITY, "default": Priority.NORMAL.value},
            "repeat": {**REPEAT, "default": 1},
            "run_at": {
                **LOCAL_DATETIME,
                "description": "once: when; series: the first run (default now)",
            },
            "time_of_day": {
                **TIME_OF_DAY,
                "description": "daily, weekdays and the lunar kinds: local HH:MM",
            },
            "weekdays": array(
                {"type": "integer", "minimum": 0, "maximum": 6},
                minItems=1,
                description="weekdays: 0 = Monday … 6 = Sunday",
            ),
            "cron": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_CRON_CHARS,
                "description": "cron: 5 standard fields, local time",
                "examples": ["0 6 * * 1-5"],
            },
            "interval_h": {"type": "integer", "minimum": 1, "maximum": MAX_INTERVAL_H},
            "lunar_days": array(
                {"type": "integer", "minimum": 1, "maximum": 30},
                minItems=1,
                description=(
                    "lunar_monthly, lunar_yearly: days of the lunar month (âm lịch, Vietnam's"
                    " UTC+7 calendar); 30 in a month of 29 days plays on its last day. Monthly"
                    " plays in a leap month too; yearly in the regular month only"
                ),
                examples=[[1, 15]],
            ),
            "lunar_month": {
                "type": "integer",
                "minimum": 1,
                "maximum": 12,
                "description": "lunar_yearly: the lunar month (10/3 âm lịch: 3)",
            },
            "series_key": {
                **NAME_ID,
                "description": "series: a newer series of the same key replaces the older",
                "examples": ["bao-so-3"],
            },
            "valid_from": LOCAL_DATE,
            "valid_to": {**LOCAL_DATE, "description": "the last local date; not in the past"},
        },
        required=["bulletin", "kind"],
        description="Times are local (Asia/Ho_Chi_Minh). What each kind needs is required.",
        anyOf=TARGETED,
        allOf=[
            {
                "if": {"properties": {"kind": {"const": kind}}},
                "then": {"required": needs},
            }
            for kind, needs in (
                (ScheduleKind.ONCE.value, ["run_at"]),
                (ScheduleKind.DAILY.value, ["time_of_day"]),
                (ScheduleKind.WEEKDAYS.value, ["time_of_day", "weekdays"]),
                (ScheduleKind.CRON.value, ["cron"]),
                (ScheduleKind.SERIES.value, ["interval_h"]),
                (ScheduleKind.LUNAR_MONTHLY.value, ["time_of_day", "lunar_days"]),
                (ScheduleKind.LUNAR_YEARLY.value, ["time_of_day", "lunar_days", "lunar_month"]),
            )
        ],
    ),
    "Schedule": obj(
        {
            "id": INTEGER,
            "bulletin": INTEGER,
            "title": STRING,
            "kind": {"type": "string", "enum": [kind.value for kind in ScheduleKind]},
            "zones": IDS,
            "devices": IDS,
            "priority": PRIORITY,
            "repeat": INTEGER,
            "run_at": TIME,
            "time_of_day": nullable("string"),
            "weekdays": array(INTEGER),
            "cron": nullable("string"),
            "interval_h": nullable("integer"),
            "lunar_days": array(INTEGER),
            "lunar_month": nullable("integer"),
            "series_key": nullable("string"),
            "valid_from": nullable("string", format="date"),
            "valid_to": nullable("string", format="date"),
            "airtime_s": nullable("number"),
            "active": BOOLEAN,
            "ended_at": TIME,
            "replaced_by": nullable("integer"),
            "created_at": TIME,
            "next_run": TIME,
        }
    ),
    "Bulletin": {
        **obj(
            {
                "id": INTEGER,
                "title": STRING,
                "kind": {"type": "string", "enum": [kind.value for kind in ContentKind]},
                "status": {"type": "string", "enum": [status.value for status in BulletinStatus]},
                "text": STRING,
                "recording_sha256": nullable("string"),
                "relay_url": nullable("string"),
                "duration_s": nullable("number"),
                "source_name": nullable("string"),
                "created_by": nullable("string"),
                "created_at": TIME,
                "updated_at": TIME,
                "submitted_at": TIME,
                "reviewed_by": nullable("string"),
                "reviewed_at": TIME,
                "review_comment": nullable("string"),
                "internal": {
                    **BOOLEAN,
                    "description": "nội bộ: its broadcasts stay off the public replay page",
                },
                "history": array(
                    obj(
                        {
                            "at": TIME,
                            "action": STRING,
                            "user": STRING,
                            "comment": nullable("string"),
                        }
                    ),
                    description="one bulletin's page only, not in lists",
                ),
            }
        ),
        "required": [
            "id",
            "title",
            "kind",
            "status",
            "text",
            "recording_sha256",
            "relay_url",
            "duration_s",
            "source_name",
            "created_by",
            "created_at",
            "updated_at",
            "submitted_at",
            "reviewed_by",
            "reviewed_at",
            "review_comment",
            "internal",
        ],  # fmt: skip; `history` only where one bulletin is answered
    },
    "BulletinRequest": request_obj(
        {
            "title": {**TITLE_IN, "description": "default: the text's first line"},
            "text": TEXT,
            "make_script": {
                "type": ["boolean", "null"],
                "default": False,
                "description": "turn an official document into its broadcast script first",
            },
            "submit": {
                "type": ["boolean", "null"],
                "default": False,
                "description": "submit for approval at once",
            },
            "internal": INTERNAL_CHOICE,
        },
        required=["text"],
        examples=[
            {
                "title": "Tiêm phòng dại đợt 2",
                "text": "Ngày 05/12/2026 trạm y tế tiêm phòng dại cho chó, mèo tại nhà văn hóa.",
                "make_script": True,
                "submit": True,
            }
        ],
    ),
    "BulletinEdit": request_obj(
        {
            "title": TITLE_IN,
            "text": {**TEXT, "description": "the new script of a spoken bulletin (required there)"},
        }
    ),
    "Approval": request_obj({"comment": COMMENT}, examples=[{"comment": "Đồng ý phát."}]),
    "Rejection": request_obj(
        {"comment": {**COMMENT, "minLength": 1, "pattern": r"\S", "description": "why"}},
        required=["comment"],
        examples=[{"comment": "Ghi rõ giờ tiêm."}],
    ),
    "SendRequest": request_obj(
        {
            "zones": ZONE_IDS,
            "devices": DEVICE_IDS,
            "priority": {**PRIORITY, "default": Priority.NORMAL.value},
            "repeat": {**REPEAT, "default": 1},
        },
        anyOf=TARGETED,
        examples=[{"zones": ["thon-1"], "priority": "normal", "repeat": 1}],
    ),
    "BroadcastLog": obj(
        {
            "page": INTEGER,
            "pages": INTEGER,
            "per_page": INTEGER,
            "total": INTEGER,
            "filter": {"type": "object", "additionalProperties": STRING},
            "broadcasts": array(
                obj(
                    {
                        "id": INTEGER,
                        "at": TIME,
                        "title": STRING,
                        "source": STRING,
                        "content": STRING,
                        "priority": PRIORITY,
                        "status": STRING,
                        "zones": IDS,
                        "devices": IDS,
                        "created_by": nullable("string"),
                        "deliveries": obj(
                            {
                                key: INTEGER
                                for key in ("targeted", "finished", "failed", "stopped", "waiting")
                            }
                        ),
                    }
                )
            ),
        }
    ),
    "MonthlySummary": obj(
        {
            "month": {"type": "string", "examples": ["2026-11"]},
            "start": TIME,
            "end": TIME,
            "measured_until": TIME,
            "generated_at": TIME,
            "zones": array(
                obj(
                    {
                        "zone": STRING,
                        "name": STRING,
                        "kind": STRING,
                        "broadcasts": INTEGER,
                        "by_priority": {"type": "object", "additionalProperties": INTEGER},
                        "cancelled": INTEGER,
                        "minutes": NUMBER,
                        "broadcasts_of_unknown_length": INTEGER,
                        "deliveries_targeted": INTEGER,
                        "deliveries_finished": INTEGER,
                        "delivery_rate": nullable("number"),
                        "devices": INTEGER,
                        "offline_hours": NUMBER,
                    }
                )
            ),
            "devices": array(
                obj(
                    {
                        "device": STRING,
                        "name": STRING,
                        "zone": STRING,
                        "offline_hours": NUMBER,
                        "online_share": nullable("number"),
                        "online_now": BOOLEAN,
                    }
                )
            ),
        }
    ),
}


def ok(schema: dict[str, Any], description: str = "OK", **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


# any container ffmpeg reads: a browser's Opus, an encoder's MP3, bytes as they come
LIVE_FEED_TYPES = ("audio/webm", "audio/ogg", "audio/mpeg", "application/octet-stream")


def failure(description: str) -> dict[str, Any]:
    return ok(ref("Error"), description)


LOCATION = {
    "Location": {
        "required": True,
        "schema": STRING,
        "description": "where to read what was made",
    }
}
ERRORS = {
    "400": failure("invalid input; `field` names it"),
    "401": failure("missing or unknown token"),
    "403": failure("the token's user may not do this"),
    "404": failure("not found, or not visible to this user"),
}
DATABASE_UNREACHABLE = ok(
    ref("Error"),
    "the database cannot be reached (its server died, a standby is not promoted yet):"
    " nothing was done; try again after `Retry-After` seconds",
    headers={"Retry-After": {"required": True, "schema": STRING, "description": "seconds"}},
)
TOO_LARGE = failure(f"the request body is larger than {MAX_REQUEST_BYTES // (1024 * 1024)} MiB")


# Every authenticated operation reads it (`web.i18n`): the language of error messages, before
# Accept-Language and the token user's own choice; any other value is ignored.
LANG = {
    "name": "lang",
    "in": "query",
    "schema": {"type": "string"},
    "description": "Language of error messages: vi (default) or en; other values are ignored.",
}


def operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    conflict: str = "",
    public: bool = False,
    tag: str = "",
) -> dict[str, Any]:
    """One operation; `conflict` describes its 409 (the state refuses it), if it has one."""
    result: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses},
    }
    if not public:
        result["responses"].update(ERRORS)
        params = [*(params or []), LANG]
    else:
        result["security"] = []
    result["responses"].setdefault("503", DATABASE_UNREACHABLE)
    if conflict:
        result["responses"]["409"] = failure(conflict)
    if body is not None:
        result["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
        result["responses"]["413"] = TOO_LARGE
    if params:
        result["parameters"] = params
    if tag:
        result["tags"] = [tag]
    return result


def path_id(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": ID,
        "description": description,
    }


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema or STRING, "description": description}


def page(name: str, description: str, highest: int, default: int) -> dict[str, Any]:
    """A page number or size, as `web.api.page_number` reads it."""
    schema = {"type": "integer", "minimum": 1, "maximum": highest, "default": default}
    return query(name, description, schema)


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: what to call next with a value of this response (stateful fuzzing)."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}


BROADCAST_ID = path_id("broadcast_id", "a broadcast")
BULLETIN_ID = path_id("bulletin_id", "a bulletin")
SCHEDULE_ID = path_id("schedule_id", "a schedule")
BROADCAST_LINKS = {
    "GetAnnouncement": link("getAnnouncement", "its deliveries", broadcast_id="$response.body#/id"),
    "CancelAnnouncement": link("cancelAnnouncement", "stop it", broadcast_id="$response.body#/id"),
}
BULLETIN_LINKS = {
    name: link(operation_id, description, bulletin_id="$response.body#/id")
    for name, operation_id, description in (
        ("GetBulletin", "getBulletin", "read it"),
        ("EditBulletin", "editBulletin", "edit a draft or rejected one"),
        ("SubmitBulletin", "submitBulletin", "submit a draft"),
        ("ApproveBulletin", "approveBulletin", "approve a submitted one"),
        ("RejectBulletin", "rejectBulletin", "return a submitted one"),
        ("SendBulletin", "sendBulletin", "send an approved one now"),
    )
} | {
    "ScheduleBulletin": {
        "operationId": "createSchedule",
        "description": "schedule an approved one",
        "requestBody": {"bulletin": "$response.body#/id"},
    }
}
SCHEDULE_LINKS = {
    "GetSchedule": link("getSchedule", "read it", schedule_id="$response.body#/id"),
    "CancelSchedule": link("cancelSchedule", "cancel it", schedule_id="$response.body#/id"),
}
CREATED_BROADCAST = ok(
    ref("Broadcast"),
    "accepted; follow `Location` for its deliveries",
    headers=LOCATION,
    links=BROADCAST_LINKS,
)


def bulletin_step(
    operation_id: str,
    summary: str,
    conflict: str,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    return {
        "post": operation(
            operation_id,
            summary,
            {"200": ok(ref("Bulletin"), links=BULLETIN_LINKS)},
            body=body,
            body_required=body_required,
            params=[BULLETIN_ID],
            conflict=conflict,
            tag="bulletins",
        )
    }


LOG_FILTERS = [
    query("zone", "a zone id: broadcasts that reached it"),
    query("from", "first local date, YYYY-MM-DD", LOCAL_DATE),
    query("to", "last local date, YYYY-MM-DD (not before `from`)", LOCAL_DATE),
    query("source", "how it was sent", {"type": "string", "enum": list(SOURCE_LABELS)}),
    query(
        "content", "spoken/recorded or a relay", {"type": "string", "enum": list(CONTENT_LABELS)}
    ),
    query("priority", "its priority", PRIORITY),
    page("page", "page number", 100_000, 1),
    page("per_page", "rows per page", 500, 50),
]
NOT_APPROVED = "the bulletin is not approved (field `bulletin`)"

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "one per request; a retry sends the same key and creates nothing twice",
}
SOURCE_ANSWERS = {
    "201": ok(ref("SourceItem"), "received", headers=LOCATION),
    "200": ok(ref("SourceItem"), "a retry: what the first request made"),
}
SOURCE_CONFLICT = "the same key came with another request"
PATHS: dict[str, dict[str, Any]] = {
    "/source/bulletins": {
        "post": {
            **operation(
                "postSourceBulletin",
                "A bulletin from the source-information system, sent down to the communes "
                "(Thông tư 39: emergency plays at once, priority first in the next programme, "
                "normal waits for the commune to place it)",
                {**SOURCE_ANSWERS, "413": TOO_LARGE},
                params=[IDEMPOTENCY_KEY],
                conflict=SOURCE_CONFLICT,
                tag="source",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": ref("SourceBulletinRequest")},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["audio", "priority", "communes", "title"],
                            "properties": {
                                "audio": {"type": "string", "format": "binary"},
                                "title": TITLE,
                                "priority": PRIORITY,
                                "communes": {"type": "string", "description": "comma-separated"},
                                "valid_until": STRING,
                            },
                        }
                    },
                },
            },
        }
    },
    "/source/cap": {
        "post": {
            **operation(
                "postCapAlert",
                "A CAP 1.2 alert: geocodes VN-ADMIN name the communes, urgency and severity "
                "the priority, Update and Cancel correct or stop the alerts they reference",
                {**SOURCE_ANSWERS, "413": TOO_LARGE},
                conflict=SOURCE_CONFLICT,
                tag="source",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "description": "the alert's XML"}}
                    for media in ("application/cap+xml", "application/xml", "text/xml")
                },
            },
        }
    },
    "/source/items": {
        "get": operation(
            "listSourceItems",
            "What this source posted, newest first",
            {"200": ok(array(ref("SourceItem")))},
            params=[page("limit", "at most this many", 200, 50)],
            tag="source",
        )
    },
    "/source/items/{item_id}": {
        "get": operation(
            "getSourceItem",
            "One item this source posted and what became of it",
            {"200": ok(ref("SourceItem"))},
            params=[path_id("item_id", "an item this source posted")],
            tag="source",
        )
    },
    "/health": {
        "get": operation(
            "health",
            "Liveness of the web server",
            {"200": ok(obj({"status": {"const": "ok"}}))},
            public=True,
            tag="system",
        )
    },
    "/openapi.json": {
        "get": operation(
            "openapi",
            "This document",
            {"200": ok({"type": "object"})},
            public=True,
            tag="system",
        )
    },
    "/zones": {
        "get": operation(
            "listZones",
            "Zones the caller may see (a village head: their own village)",
            {"200": ok(array(ref("Zone")))},
            tag="zones",
        )
    },
    "/devices": {
        "get": operation(
            "listDevices",
            "Receivers (cụm loa) in the zones the caller may see, with their last heartbeat,"
            " a page at a time",
            {
                "200": ok(
                    array(ref("Device")),
                    headers={
                        "X-Total-Count": {
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                            "description": "receivers matching, on every page",
                        },
                        "Link": {
                            "schema": STRING,
                            "description": 'the next page, as `<url>; rel="next"`, if any',
                        },
                    },
                )
            },
            params=[
                query("zone", "a zone id: its receivers and those of its sub-zones"),
                query("online", "true or false", BOOLEAN),
                page("page", "page number", 1_000_000, 1),
                page("per_page", "receivers per page", 1000, 100),
            ],
            tag="devices",
        )
    },
    "/announcements": {
        "get": operation(
            "listAnnouncements",
            "The newest broadcasts the caller may see, deliveries counted per state",
            {"200": ok(array(ref("BroadcastSummary")))},
            params=[page("limit", "at most this many", 200, 50)],
            tag="announcements",
        ),
        "post": operation(
            "createAnnouncement",
            "Send an announcement now (phát thông báo): synthesized, signed, sent to the zones",
            {"201": CREATED_BROADCAST},
            body=ref("AnnouncementRequest"),
            tag="announcements",
        ),
    },
    "/announcements/recording": {
        "post": {
            **operation(
                "createRecordingAnnouncement",
                "Send a recorded announcement now (a voice or language no engine speaks)",
                {"201": CREATED_BROADCAST, "413": TOO_LARGE},
                tag="announcements",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["recording"],
                            "properties": {
                                "recording": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "mp3, m4a, ogg, wav or webm",
                                },
                                "zones": {"type": "string", "description": "comma-separated"},
                                "devices": {"type": "string", "description": "comma-separated"},
                                "priority": PRIORITY,
                                "repeat": REPEAT,
                                "title": TITLE,
                                "internal": {
                                    "type": "string",
                                    "enum": ["true", "false"],
                                    "default": "false",
                                    "description": INTERNAL_CHOICE["description"],
                                },
                            },
                            "anyOf": [
                                {"required": ["zones"], "properties": {"zones": {"minLength": 1}}},
                                {
                                    "required": ["devices"],
                                    "properties": {"devices": {"minLength": 1}},
                                },
                            ],
                        }
                    }
                },
            },
        }
    },
    "/announcements/{broadcast_id}": {
        "get": operation(
            "getAnnouncement",
            "A broadcast with one delivery record per receiver (answer-back)",
            {"200": ok(ref("Broadcast"))},
            params=[BROADCAST_ID],
            tag="announcements",
        )
    },
    "/announcements/{broadcast_id}/cancel": {
        "post": operation(
            "cancelAnnouncement",
            "Dừng / đính chính: stop it everywhere, optionally announce a correction",
            {
                "200": ok(
                    ref("CancelResult"),
                    links={
                        "GetCancelled": link(
                            "getAnnouncement",
                            "the stopped broadcast",
                            broadcast_id="$response.body#/cancelled/id",
                        )
                    },
                ),
                "503": failure(
                    "the MQTT broker or the database cannot be reached: nothing was stopped"
                ),
            },
            body=ref("CancelRequest"),
            body_required=False,
            params=[BROADCAST_ID],
            conflict="already stopped, or ended and no correction was given (`broadcast`)",
            tag="announcements",
        )
    },
    "/live": {
        "post": operation(
            "startLive",
            "Go live (phát trực tiếp): the signed PLAY of the broadcast's stream goes out at"
            " once; feed it with /live/{broadcast_id}/feed",
            {
                "201": CREATED_BROADCAST,
                "503": failure("the MQTT broker or the database cannot be reached"),
            },
            body=ref("LiveRequest"),
            conflict="this server runs no streaming engine: live broadcasts are off (`live`)",
            tag="live",
        )
    },
    "/live/{broadcast_id}/feed": {
        "post": {
            **operation(
                "feedLive",
                "The speaker's audio, sent as it is captured (chunked); answered when it ends",
                {"200": ok(ref("LiveFeedResult")), "413": TOO_LARGE},
                params=[BROADCAST_ID],
                conflict="the broadcast has ended, or is being fed already",
                tag="live",
            ),
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    # any container ffmpeg reads: a browser's Opus, an encoder's MP3, raw bytes
                    for media in (
                        "audio/webm",
                        "audio/ogg",
                        "audio/mpeg",
                        "application/octet-stream",
                    )
                },
            },
        }
    },
    "/live/{broadcast_id}/end": {
        "post": operation(
            "endLive",
            "Kết thúc: the STOP on every loudspeaker the live broadcast reached",
            {"200": ok(ref("Broadcast"))},
            params=[BROADCAST_ID],
            conflict="it has ended already (`broadcast`)",
            tag="live",
        )
    },
    "/schedules": {
        "get": operation(
            "listSchedules",
            "Active schedules (the programme)",
            {"200": ok(array(ref("Schedule")))},
            tag="schedules",
        ),
        "post": operation(
            "createSchedule",
            "Schedule an approved bulletin",
            {"201": ok(ref("Schedule"), headers=LOCATION, links=SCHEDULE_LINKS)},
            body=ref("ScheduleRequest"),
            conflict=f"{NOT_APPROVED}, or its runs would sound at the same time as another"
            " schedule's in a related zone (field `time`, the clash named)",
            tag="schedules",
        ),
    },
    "/schedules/{schedule_id}": {
        "get": operation(
            "getSchedule",
            "A schedule and its next run",
            {"200": ok(ref("Schedule"))},
            params=[SCHEDULE_ID],
            tag="schedules",
        ),
        "delete": operation(
            "cancelSchedule",
            "Cancel a schedule: its waiting runs leave the receivers' manifests",
            {"204": {"description": "cancelled"}},
            params=[SCHEDULE_ID],
            conflict="it already ended: cancelled or replaced (field `schedule`)",
            tag="schedules",
        ),
    },
    "/bulletins": {
        "get": operation(
            "listBulletins",
            "Bulletins, newest first (not for village heads)",
            {"200": ok(array(ref("Bulletin")))},
            params=[
                query(
                    "status",
                    "only those in this state",
                    {"type": "string", "enum": [status.value for status in BulletinStatus]},
                )
            ],
            tag="bulletins",
        ),
        "post": operation(
            "createBulletin",
            "Push a bulletin down (officer or admin): optionally made into a broadcast script "
            "and submitted for approval at once",
            {"201": ok(ref("Bulletin"), headers=LOCATION, links=BULLETIN_LINKS)},
            body=ref("BulletinRequest"),
            tag="bulletins",
        ),
    },
    "/bulletins/{bulletin_id}": {
        "get": operation(
            "getBulletin",
            "A bulletin with its history (created, submitted, reviewed)",
            {"200": ok(ref("Bulletin"))},
            params=[BULLETIN_ID],
            tag="bulletins",
        ),
        "patch": operation(
            "editBulletin",
            "Edit a draft or rejected bulletin (a rejected one becomes a draft again)",
            {"200": ok(ref("Bulletin"), links=BULLETIN_LINKS)},
            body=ref("BulletinEdit"),
            params=[BULLETIN_ID],
            conflict="it is submitted or approved (field `status`)",
            tag="bulletins",
        ),
    },
    "/bulletins/{bulletin_id}/submit": bulletin_step(
        "submitBulletin",
        "Submit for approval (trình duyệt)",
        "it is not a draft (field `status`)",
    ),
    "/bulletins/{bulletin_id}/approve": bulletin_step(
        "approveBulletin",
        "Approve (leader or admin; not one's own)",
        "it is not waiting for approval (field `status`)",
        ref("Approval"),
        body_required=False,
    ),
    "/bulletins/{bulletin_id}/reject": bulletin_step(
        "rejectBulletin",
        "Return with a comment (leader or admin)",
        "it is not waiting for approval (field `status`)",
        ref("Rejection"),
    ),
    "/bulletins/{bulletin_id}/send": {
        "post": operation(
            "sendBulletin",
            "Send an approved bulletin now (phát ngay)",
            {"201": CREATED_BROADCAST},
            body=ref("SendRequest"),
            params=[BULLETIN_ID],
            conflict=NOT_APPROVED,
            tag="bulletins",
        )
    },
    "/reports/broadcasts": {
        "get": operation(
            "reportBroadcasts",
            "The broadcast log with delivery counts (a village head: their own village)",
            {"200": ok(ref("BroadcastLog"))},
            params=LOG_FILTERS,
            tag="reports",
        )
    },
    "/reports/monthly": {
        "get": operation(
            "reportMonthly",
            "The monthly summary per zone: broadcasts, minutes, delivery rate, offline time",
            {"200": ok(ref("MonthlySummary"))},
            params=[
                {**query("month", "the local calendar month", MONTH), "required": True},
                query("zone", "one zone and its villages"),
            ],
            tag="reports",
        )
    },
}


# --- the province report (toàn tỉnh, `web.api.province`) ----------------------------------

COMMUNE_FIGURES = obj(
    {
        "zone": STRING,
        "name": STRING,
        "code": nullable("string", description="mã đơn vị hành chính"),
        "receivers": INTEGER,
        "online": INTEGER,
        "attention": {**INTEGER, "description": "offline or unhealthy (media, clock, zones)"},
        "broadcasts": {**INTEGER, "description": "with a delivery to one of its receivers"},
        "by_priority": {"type": "object", "additionalProperties": INTEGER},
        "cancelled": INTEGER,
        "minutes": {**NUMBER, "description": "airtime played; the province's: the communes' sum"},
        "broadcasts_of_unknown_length": INTEGER,
        "deliveries_targeted": {**INTEGER, "description": "stopped deliveries left out"},
        "deliveries_finished": INTEGER,
        "delivery_rate": nullable("number"),
        "offline_hours": nullable(
            "number", description="its receivers' offline time; null on the dashboard"
        ),
        "province_bulletins": obj(
            {key: INTEGER for key in ("played", "waiting", "declined")},
            description="the province's bulletins this commune played, holds, declined",
        ),
    },
)
SCHEMAS["ProvinceReport"] = obj(
    {
        "province": nullable(
            "string", description="None: the communes of an installation without a province"
        ),
        "name": STRING,
        "month": {"type": "string", "examples": ["2026-11"]},
        "start": TIME,
        "end": TIME,
        "measured_until": TIME,
        "generated_at": TIME,
        "communes": array(COMMUNE_FIGURES),
        "total": COMMUNE_FIGURES,
    }
)
PROVINCE_PARAM = query("province", "a province's zone id (default: the account's, or the first)")
PATHS["/province/dashboard"] = {
    "get": operation(
        "provinceDashboard",
        "This month per commune of a province: receivers, minutes, delivery rate, province "
        "bulletins (accounts bound to a province, or installation-wide)",
        {"200": ok(ref("ProvinceReport"))},
        params=[PROVINCE_PARAM],
        tag="reports",
    )
}
PATHS["/province/monthly"] = {
    "get": operation(
        "provinceMonthly",
        "A month per commune of a province, and the province's total",
        {"200": ok(ref("ProvinceReport"))},
        params=[
            {**query("month", "the local calendar month", MONTH), "required": True},
            PROVINCE_PARAM,
        ],
        tag="reports",
    )
}
# --- bulletins from the province (TT-39) ------------------------------------------------------

FORWARD_STATE = {
    "type": "string",
    "enum": [state.value for state in ForwardState],
    "description": "received (in the commune's inbox), placed (in its programme, or sent at"
    " once), declined (with a reason), played (its receivers finished it)",
}
COMMUNE_STATUS_FIELDS: dict[str, Any] = {
    "id": {**INTEGER, "description": "the forward: this bulletin in this commune"},
    "bulletin": INTEGER,
    "commune": STRING,
    "commune_name": STRING,
    "priority": PRIORITY,
    "state": FORWARD_STATE,
    "run_at": {**TIME, "description": "UTC: the slot it was placed in, or the run it heads"},
    "position": nullable("integer", description="among the priority items heading that run"),
    "schedule": nullable("integer"),
    "broadcast": nullable("integer", description="an emergency's broadcast"),
    "reason": {**STRING, "description": "why the commune declined it"},
    "decided_by": nullable("string"),
    "decided_at": TIME,
    "played_at": TIME,
    "deliveries": {**INTEGER, "description": "to the commune's receivers, every run"},
    "finished": INTEGER,
    "rate": nullable("number", description="finished / deliveries"),
}
INBOX_ITEM_FIELDS: dict[str, Any] = {
    **COMMUNE_STATUS_FIELDS,
    "title": STRING,
    "kind": STRING,
    "text": STRING,
    "sent_by": nullable("string"),
    "sent_at": TIME,
}
SCHEMAS.update(
    {
        "CommuneStatus": obj(COMMUNE_STATUS_FIELDS),
        "SentBulletin": obj(
            {
                "bulletin": INTEGER,
                "title": STRING,
                "sent_at": TIME,
                "sent_by": nullable("string"),
                "counts": {"type": "object", "additionalProperties": INTEGER},
                "communes": array(ref("CommuneStatus")),
            }
        ),
        "InboxItem": obj(INBOX_ITEM_FIELDS),
        "Inbox": obj(
            {
                "waiting": array(ref("InboxItem")),
                "runs": array(
                    obj(
                        {"commune": STRING, "run_at": TIME, "items": array(ref("InboxItem"))},
                        description="the priority items heading one run, in play order",
                    )
                ),
                "decided": array(ref("InboxItem")),
            }
        ),
        "SendDownRequest": request_obj(
            {
                "bulletin": {**ID, "description": "an existing bulletin of the province"},
                "title": TITLE_IN,
                "text": {**TEXT, "description": "a bulletin written now (without `bulletin`)"},
                "communes": {
                    "oneOf": [
                        {**array(NAME_ID), "minItems": 1},
                        {"const": "all", "description": "every commune the caller reaches"},
                    ]
                },
                "priority": {**PRIORITY, "default": Priority.NORMAL.value},
            },
            required=["communes"],
            oneOf=[{"required": ["bulletin"]}, {"required": ["text"]}],
            examples=[{"text": "Lịch tiêm phòng…", "communes": "all", "priority": "normal"}],
        ),
        "PlaceRequest": request_obj(
            {
                "run_at": {**LOCAL_DATETIME, "description": "local time of the slot"},
                "zones": {**ZONE_IDS, "description": "zones of the commune (default: all of it)"},
                "repeat": {**REPEAT, "default": 1},
            },
            required=["run_at"],
        ),
        "DeclineRequest": request_obj(
            {"reason": {**COMMENT, "minLength": 1, "pattern": r"\S"}}, required=["reason"]
        ),
        "ReorderRequest": request_obj(
            {"order": array(ID, minItems=1, description="every forward heading the run")},
            required=["order"],
        ),
    }
)
FORWARD_ID = path_id("forward_id", "a province bulletin in a commune's inbox")
PATHS.update(
    {
        "/province-bulletins": {
            "post": operation(
                "sendDown",
                "Send a bulletin down to communes (province editor, admin): normal waits in"
                " each commune's inbox, priority heads its next programme run, emergency plays"
                " at once",
                {"201": ok(ref("SentBulletin"), headers=LOCATION)},
                body=ref("SendDownRequest"),
                conflict="already sent to one of the communes, not approved, or a commune's own"
                " bulletin",
                tag="province",
            ),
            "get": operation(
                "listSentDown",
                "Bulletins sent down to the caller's communes, each commune's state",
                {"200": ok(array(ref("SentBulletin")))},
                tag="province",
            ),
        },
        "/province-bulletins/{bulletin_id}": {
            "get": operation(
                "getSentDown",
                "One bulletin in each commune: received, placed (when), played, declined (why)",
                {"200": ok(ref("SentBulletin"))},
                params=[BULLETIN_ID],
                tag="province",
            )
        },
        "/province-bulletins/inbox": {
            "get": operation(
                "getInbox",
                "The commune's inbox (Bản tin từ tỉnh): waiting, heading runs, decided",
                {"200": ok(ref("Inbox"))},
                tag="province",
            )
        },
        "/province-bulletins/inbox/{forward_id}/place": {
            "post": operation(
                "placeForward",
                "Place a waiting bulletin in a slot of the commune's programme",
                {"200": ok(ref("InboxItem"))},
                body=ref("PlaceRequest"),
                params=[FORWARD_ID],
                conflict="not waiting any more, or the slot clashes (field `time`)",
                tag="province",
            )
        },
        "/province-bulletins/inbox/{forward_id}/head": {
            "post": operation(
                "headForward",
                "Put a waiting priority bulletin at the head of the commune's next programme"
                " run (it had none in the horizon when the bulletin came)",
                {"200": ok(ref("InboxItem"))},
                params=[FORWARD_ID],
                conflict="not a waiting priority one, or still no run in the next 48 h",
                tag="province",
            )
        },
        "/province-bulletins/inbox/{forward_id}/decline": {
            "post": operation(
                "declineForward",
                "Decline a waiting normal bulletin, with the reason the province reads",
                {"200": ok(ref("InboxItem"))},
                body=ref("DeclineRequest"),
                params=[FORWARD_ID],
                conflict="not waiting any more, or a priority one (it must play)",
                tag="province",
            )
        },
        "/province-bulletins/inbox/reorder": {
            "post": operation(
                "reorderHeads",
                "The order of the priority items heading one run (all of them)",
                {"200": ok(ref("Inbox"))},
                body=ref("ReorderRequest"),
                conflict="not priority items heading a run, or the run has started",
                tag="province",
            )
        },
    }
)

# --- nghe lại: the commune's replay page, internal items, feedback (`web.api.replay`) ---------

FEEDBACK_STATUS = {"type": "string", "enum": list(FeedbackStatus.ALL)}
SCHEMAS.update(
    {
        "ReplayCommune": obj(
            {
                "id": NAME_ID,
                "name": STRING,
                "public": {
                    **BOOLEAN,
                    "description": "its page and podcast are open (off until turned on)",
                },
                "pending": {**INTEGER, "minimum": 0, "description": "feedback awaiting a decision"},
                "page_url": {**STRING, "description": "the public page (404 while closed)"},
                "podcast_url": {**STRING, "description": "the RSS podcast (404 while closed)"},
            }
        ),
        "ReplayCommuneEdit": request_obj(
            {"public": {**BOOLEAN, "description": "open (true) or close (false) the page"}},
            required=["public"],
            examples=[{"public": True}],
        ),
        "ReplayItem": obj(
            {
                "broadcast": ID,
                "title": STRING,
                "played_at": TIME,
                "internal": {**BOOLEAN, "description": "its own flag"},
                "bulletin_internal": {
                    **BOOLEAN,
                    "description": "its bulletin's flag (a schedule's run): change it there",
                },
                "public": {**BOOLEAN, "description": "listed (while the commune's page is open)"},
            }
        ),
        "InternalRequest": request_obj(
            {"internal": {**BOOLEAN, "description": "true: off the page and podcast"}},
            required=["internal"],
            examples=[{"internal": True}],
        ),
        "InternalResult": obj({"id": ID, "internal": BOOLEAN}),
        "Feedback": obj(
            {
                "id": ID,
                "broadcast": ID,
                "commune": NAME_ID,
                "item_title": STRING,
                "name": {**STRING, "maxLength": NAME_CHARS, "description": "may be empty"},
                "text": {**STRING, "minLength": 1, "maxLength": FEEDBACK_CHARS},
                "status": FEEDBACK_STATUS,
                "created_at": TIME,
                "moderated_at": TIME,
            }
        ),
        "ModerationRequest": request_obj(
            {
                "decision": {
                    "type": "string",
                    "enum": [FeedbackStatus.APPROVED, FeedbackStatus.HIDDEN],
                    "description": "approved: shown under the item; hidden: kept, never shown",
                }
            },
            required=["decision"],
            examples=[{"decision": "approved"}],
        ),
    }
)
COMMUNE_PARAM = {
    "name": "commune",
    "in": "path",
    "required": True,
    "schema": {**NAME_ID, "examples": ["xa-an"]},
    "description": "a commune's zone id",
}
PATHS.update(
    {
        "/replay/communes": {
            "get": operation(
                "listReplayCommunes",
                "The communes whose replay (nghe lại) the caller manages: open or not, and"
                " how much feedback waits",
                {"200": ok(array(ref("ReplayCommune")))},
                tag="replay",
            )
        },
        "/replay/communes/{commune}": {
            "get": operation(
                "getReplayCommune",
                "One commune's replay settings",
                {"200": ok(ref("ReplayCommune"))},
                params=[COMMUNE_PARAM],
                tag="replay",
            ),
            "patch": operation(
                "editReplayCommune",
                "Open or close the commune's public replay page and podcast",
                {"200": ok(ref("ReplayCommune"))},
                body=ref("ReplayCommuneEdit"),
                params=[COMMUNE_PARAM],
                tag="replay",
            ),
        },
        "/replay/communes/{commune}/items": {
            "get": operation(
                "listReplayItems",
                "What sounded in the commune in the last 30 days (internal ones included) and"
                " whether each is public",
                {"200": ok(array(ref("ReplayItem")))},
                params=[COMMUNE_PARAM],
                tag="replay",
            )
        },
        "/replay/broadcasts/{broadcast_id}/internal": {
            "post": operation(
                "setBroadcastInternal",
                "Mark a broadcast internal (nội bộ) or not: needs the replay of every zone it"
                " was aimed at (a province's broadcast is the province's to hide)",
                {"200": ok(ref("InternalResult"))},
                body=ref("InternalRequest"),
                params=[BROADCAST_ID],
                tag="replay",
            )
        },
        "/replay/bulletins/{bulletin_id}/internal": {
            "post": operation(
                "setBulletinInternal",
                "Mark a bulletin internal or not: its runs and sent copies follow it",
                {"200": ok(ref("InternalResult"))},
                body=ref("InternalRequest"),
                params=[BULLETIN_ID],
                tag="replay",
            )
        },
        "/replay/feedback": {
            "get": operation(
                "listFeedback",
                f"Listeners' feedback (góp ý) on the caller's communes, newest first (at most"
                f" {MODERATION_PAGE})",
                {"200": ok(array(ref("Feedback")))},
                params=[
                    query(
                        "status",
                        "only those in this state (default: all)",
                        {
                            "type": "string",
                            "enum": [*FeedbackStatus.ALL, "all"],
                            "default": "all",
                        },
                    )
                ],
                tag="replay",
            )
        },
        "/replay/feedback/{feedback_id}/moderate": {
            "post": operation(
                "moderateFeedback",
                "Approve (shown under the item) or hide a feedback; either may be changed later",
                {"200": ok(ref("Feedback"))},
                body=ref("ModerationRequest"),
                params=[path_id("feedback_id", "a listener's feedback")],
                tag="replay",
            )
        },
    }
)


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loa API",
            "version": "1",
            "description": (
                "Commune loudspeaker network (đài truyền thanh cấp xã). Authenticate with "
                "`Authorization: Bearer <token>` (`loa token create USERNAME`); every call "
                "has the same authorization as the web pages, in the token's user's zone: "
                "what lies outside it (another commune's bulletin, schedule or broadcast) is "
                "404, and what only sounds there from above (a province's broadcast) is "
                "read-only. Errors are JSON objects whose `error.field` names the input at "
                "fault: 400 for input that is wrong in itself, "
                "409 for a request the current state refuses (a bulletin not yet approved, a "
                "broadcast already stopped, a clashing schedule), 413 for a request body over "
                f"{MAX_REQUEST_BYTES // (1024 * 1024)} MiB, and 405, with an `Allow` header "
                "naming the methods it takes, for a method a path does not take. No input may "
                "contain a NUL character (400)."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": PATHS,
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document())
