"""The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`.

Written as data next to the routes it describes; a test checks that every route of the blueprint
is in it (and nothing else), and that it is a valid OpenAPI document.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from web.api import bp

_LOGGER = logging.getLogger(__name__)

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
TIME = nullable("string", format="date-time", description="UTC, ISO 8601")
IDS = array(STRING)
PRIORITY = {
    "type": "string",
    "enum": ["emergency", "priority", "normal"],
    "description": "Thông tư 39/2020/TT-BTTTT: khẩn cấp, ưu tiên, thông thường",
}

BROADCAST_FIELDS: dict[str, Any] = {
    "id": INTEGER,
    "title": STRING,
    "status": {
        "type": "string",
        "enum": [
            "pending",
            "scheduled",
            "dispatched",
            "finished",
            "partial",
            "failed",
            "cancelled",
            "missed",
        ],
    },
    "priority": PRIORITY,
    "repeat": INTEGER,
    "zones": IDS,
    "devices": IDS,
    "source": STRING,
    "schedule": nullable("integer"),
    "item_id": nullable("string"),
    "content": {"type": "string", "enum": ["media", "relay"]},
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
}

SCHEMAS: dict[str, dict[str, Any]] = {
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
    "Zone": {
        "type": "object",
        "properties": {
            "id": STRING,
            "name": STRING,
            "kind": {"type": "string", "enum": ["commune", "village"]},
            "parent": nullable("string"),
            "devices": IDS,
        },
    },
    "Device": {
        "type": "object",
        "properties": {
            "id": STRING,
            "name": STRING,
            "zone": STRING,
            "online": {"type": "boolean"},
            "state": STRING,
            "last_seen": TIME,
            "status": {"type": "object", "description": "the receiver's last heartbeat"},
            "manifest_published_at": TIME,
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "device": STRING,
            "state": {
                "type": "string",
                "enum": [
                    "queued",
                    "received",
                    "fetched",
                    "playing",
                    "preempted",
                    "finished",
                    "failed",
                    "stopped",
                ],
            },
            "detail": nullable("string"),
            "received_at": TIME,
            "fetched_at": TIME,
            "started_at": TIME,
            "preempted_at": TIME,
            "finished_at": TIME,
        },
    },
    "Broadcast": {
        "type": "object",
        "properties": {
            **BROADCAST_FIELDS,
            "deliveries": array(ref("Delivery")),
        },
    },
    "BroadcastSummary": {
        "type": "object",
        "description": "A broadcast in a list: its deliveries counted per state",
        "properties": {
            **BROADCAST_FIELDS,
            "deliveries_total": INTEGER,
            "delivery_counts": {
                "type": "object",
                "additionalProperties": INTEGER,
                "description": 'delivery state → receivers in it, e.g. {"finished": 12}',
            },
        },
    },
    "AnnouncementRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "maxLength": 20000},
            "zones": IDS,
            "devices": IDS,
            "priority": PRIORITY,
            "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
            "title": STRING,
        },
    },
    "CancelRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "correction": {"type": "string", "description": "announced as an emergency"}
        },
    },
    "CancelResult": {
        "type": "object",
        "properties": {
            "cancelled": ref("Broadcast"),
            "correction": {"oneOf": [ref("Broadcast"), {"type": "null"}]},
        },
    },
    "ScheduleRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["bulletin", "kind"],
        "description": "Times are local (Asia/Ho_Chi_Minh).",
        "properties": {
            "bulletin": {
                "type": "integer",
                "minimum": 1,
                "maximum": 2**31 - 1,
                "description": "an approved bulletin",
            },
            "kind": {"type": "string", "enum": ["once", "daily", "weekdays", "cron", "series"]},
            "zones": IDS,
            "devices": IDS,
            "priority": PRIORITY,
            "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
            "run_at": {"type": "string", "examples": ["2026-12-01T06:00"]},
            "time_of_day": {"type": "string", "examples": ["17:00"]},
            "weekdays": array({"type": "integer", "minimum": 0, "maximum": 6}),
            "cron": {"type": "string", "examples": ["0 6 * * 1-5"]},
            "interval_h": {"type": "integer", "minimum": 1, "maximum": 72},
            "series_key": STRING,
            "valid_from": {"type": "string", "format": "date"},
            "valid_to": {"type": "string", "format": "date"},
        },
    },
    "Schedule": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "bulletin": INTEGER,
            "title": STRING,
            "kind": STRING,
            "zones": IDS,
            "devices": IDS,
            "priority": PRIORITY,
            "repeat": INTEGER,
            "run_at": TIME,
            "time_of_day": nullable("string"),
            "weekdays": array(INTEGER),
            "cron": nullable("string"),
            "interval_h": nullable("integer"),
            "series_key": nullable("string"),
            "valid_from": nullable("string", format="date"),
            "valid_to": nullable("string", format="date"),
            "airtime_s": nullable("number"),
            "active": {"type": "boolean"},
            "ended_at": TIME,
            "replaced_by": nullable("integer"),
            "created_at": TIME,
            "next_run": TIME,
        },
    },
    "Bulletin": {
        "type": "object",
        "properties": {
            "id": INTEGER,
            "title": STRING,
            "kind": {"type": "string", "enum": ["tts", "recording", "relay"]},
            "status": {"type": "string", "enum": ["draft", "submitted", "approved", "rejected"]},
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
            "history": array(
                {
                    "type": "object",
                    "properties": {
                        "at": TIME,
                        "action": STRING,
                        "user": STRING,
                        "comment": nullable("string"),
                    },
                }
            ),
        },
    },
    "BulletinRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "title": STRING,
            "text": {"type": "string", "maxLength": 20000},
            "make_script": {
                "type": "boolean",
                "description": "turn an official document into its broadcast script first",
            },
            "submit": {"type": "boolean", "description": "submit for approval at once"},
        },
    },
    "BulletinEdit": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"title": STRING, "text": STRING},
    },
    "Review": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"comment": {"type": "string", "description": "required to reject"}},
    },
    "SendRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "zones": IDS,
            "devices": IDS,
            "priority": PRIORITY,
            "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
        },
    },
    "BroadcastLog": {
        "type": "object",
        "properties": {
            "page": INTEGER,
            "pages": INTEGER,
            "per_page": INTEGER,
            "total": INTEGER,
            "filter": {"type": "object"},
            "broadcasts": array(
                {
                    "type": "object",
                    "properties": {
                        "id": INTEGER,
                        "at": TIME,
                        "title": STRING,
                        "source": STRING,
                        "content": STRING,
                        "priority": PRIORITY,
                        "status": STRING,
                        "zones": IDS,
                        "devices": IDS,
                        "created_by": STRING,
                        "deliveries": {
                            "type": "object",
                            "properties": {
                                key: INTEGER
                                for key in ("targeted", "finished", "failed", "stopped", "waiting")
                            },
                        },
                    },
                }
            ),
        },
    },
    "MonthlySummary": {
        "type": "object",
        "properties": {
            "month": {"type": "string", "examples": ["2026-11"]},
            "start": TIME,
            "end": TIME,
            "measured_until": TIME,
            "generated_at": TIME,
            "zones": array(
                {
                    "type": "object",
                    "properties": {
                        "zone": STRING,
                        "name": STRING,
                        "kind": STRING,
                        "broadcasts": INTEGER,
                        "by_priority": {"type": "object"},
                        "cancelled": INTEGER,
                        "minutes": {"type": "number"},
                        "broadcasts_of_unknown_length": INTEGER,
                        "deliveries_targeted": INTEGER,
                        "deliveries_finished": INTEGER,
                        "delivery_rate": nullable("number"),
                        "devices": INTEGER,
                        "offline_hours": {"type": "number"},
                    },
                }
            ),
            "devices": array(
                {
                    "type": "object",
                    "properties": {
                        "device": STRING,
                        "name": STRING,
                        "zone": STRING,
                        "offline_hours": {"type": "number"},
                        "online_share": nullable("number"),
                        "online_now": {"type": "boolean"},
                    },
                }
            ),
        },
    },
}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERRORS = {
    "400": ok(ref("Error"), "invalid input; `field` names it"),
    "401": ok(ref("Error"), "missing or unknown token"),
    "403": ok(ref("Error"), "the token's user may not do this"),
    "404": ok(ref("Error"), "not found, or not visible to this user"),
}


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
    tag: str = "",
) -> dict[str, Any]:
    result: dict[str, Any] = {"summary": summary, "responses": {**responses}}
    if not public:
        result["responses"].update(ERRORS)
    else:
        result["security"] = []
    if body is not None:
        result["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
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
        "schema": INTEGER,
        "description": description,
    }


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema or STRING, "description": description}


BROADCAST_ID = path_id("broadcast_id", "a broadcast")
BULLETIN_ID = path_id("bulletin_id", "a bulletin")
SCHEDULE_ID = path_id("schedule_id", "a schedule")


def bulletin_step(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "post": operation(
            summary,
            {"200": ok(ref("Bulletin"))},
            body=body,
            params=[BULLETIN_ID],
            tag="bulletins",
        )
    }


LOG_FILTERS = [
    query("zone", "a zone id: broadcasts that reached it"),
    query("from", "first local date, YYYY-MM-DD"),
    query("to", "last local date, YYYY-MM-DD"),
    query("source", "announcement, bulletin, correction or schedule"),
    query("content", "media or relay"),
    query("priority", "emergency, priority or normal"),
    query("page", "page number (from 1)", INTEGER),
    query("per_page", "rows per page (1–500, default 50)", INTEGER),
]

PATHS: dict[str, dict[str, Any]] = {
    "/health": {
        "get": operation(
            "Liveness of the web server", {"200": ok({"type": "object"})}, public=True, tag="system"
        )
    },
    "/openapi.json": {
        "get": operation(
            "This document", {"200": ok({"type": "object"})}, public=True, tag="system"
        )
    },
    "/zones": {
        "get": operation(
            "Zones the caller may see (a village head: their own village)",
            {"200": ok(array(ref("Zone")))},
            tag="zones",
        )
    },
    "/devices": {
        "get": operation(
            "Receivers (cụm loa) in the zones the caller may see, with their last heartbeat,"
            " a page at a time",
            {
                "200": {
                    **ok(array(ref("Device"))),
                    "headers": {
                        "X-Total-Count": {
                            "schema": INTEGER,
                            "description": "receivers matching, on every page",
                        },
                        "Link": {
                            "schema": STRING,
                            "description": 'the next page, as `<url>; rel="next"`, if any',
                        },
                    },
                }
            },
            params=[
                query("zone", "a zone id: its receivers and those of its sub-zones"),
                query("online", "true or false", {"type": "boolean"}),
                query("page", "page number (from 1)", INTEGER),
                query("per_page", "receivers per page (1–1000, default 100)", INTEGER),
            ],
            tag="devices",
        )
    },
    "/announcements": {
        "get": operation(
            "The newest broadcasts the caller may see, deliveries counted per state",
            {"200": ok(array(ref("BroadcastSummary")))},
            params=[query("limit", "at most this many (1–200, default 50)", INTEGER)],
            tag="announcements",
        ),
        "post": operation(
            "Send an announcement now (phát thông báo): synthesized, signed, sent to the zones",
            {"201": ok(ref("Broadcast"), "accepted; follow `Location` for its deliveries")},
            body=ref("AnnouncementRequest"),
            tag="announcements",
        ),
    },
    "/announcements/recording": {
        "post": {
            **operation(
                "Send a recorded announcement now (a voice or language no engine speaks)",
                {"201": ok(ref("Broadcast"))},
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
                                "recording": {"type": "string", "format": "binary"},
                                "zones": {"type": "string", "description": "comma-separated"},
                                "devices": {"type": "string", "description": "comma-separated"},
                                "priority": PRIORITY,
                                "repeat": {"type": "integer", "minimum": 1, "maximum": 10},
                                "title": STRING,
                            },
                        }
                    }
                },
            },
        }
    },
    "/announcements/{broadcast_id}": {
        "get": operation(
            "A broadcast with one delivery record per receiver (answer-back)",
            {"200": ok(ref("Broadcast"))},
            params=[BROADCAST_ID],
            tag="announcements",
        )
    },
    "/announcements/{broadcast_id}/cancel": {
        "post": operation(
            "Dừng / đính chính: stop it everywhere, optionally announce a correction",
            {"200": ok(ref("CancelResult"))},
            body=ref("CancelRequest"),
            params=[BROADCAST_ID],
            tag="announcements",
        )
    },
    "/schedules": {
        "get": operation(
            "Active schedules (the programme)", {"200": ok(array(ref("Schedule")))}, tag="schedules"
        ),
        "post": operation(
            "Schedule an approved bulletin; overlaps in a zone are refused (400, field `time`)",
            {"201": ok(ref("Schedule"))},
            body=ref("ScheduleRequest"),
            tag="schedules",
        ),
    },
    "/schedules/{schedule_id}": {
        "get": operation(
            "A schedule and its next run",
            {"200": ok(ref("Schedule"))},
            params=[SCHEDULE_ID],
            tag="schedules",
        ),
        "delete": operation(
            "Cancel a schedule: its waiting runs leave the receivers' manifests",
            {"204": {"description": "cancelled"}},
            params=[SCHEDULE_ID],
            tag="schedules",
        ),
    },
    "/bulletins": {
        "get": operation(
            "Bulletins, newest first (not for village heads)",
            {"200": ok(array(ref("Bulletin")))},
            params=[query("status", "draft, submitted, approved or rejected")],
            tag="bulletins",
        ),
        "post": operation(
            "Push a bulletin down (officer or admin): optionally made into a broadcast script "
            "and submitted for approval at once",
            {"201": ok(ref("Bulletin"))},
            body=ref("BulletinRequest"),
            tag="bulletins",
        ),
    },
    "/bulletins/{bulletin_id}": {
        "get": operation(
            "A bulletin with its history (created, submitted, reviewed)",
            {"200": ok(ref("Bulletin"))},
            params=[BULLETIN_ID],
            tag="bulletins",
        ),
        "patch": operation(
            "Edit a draft or rejected bulletin (a rejected one becomes a draft again)",
            {"200": ok(ref("Bulletin"))},
            body=ref("BulletinEdit"),
            params=[BULLETIN_ID],
            tag="bulletins",
        ),
    },
    "/bulletins/{bulletin_id}/submit": bulletin_step("Submit for approval (trình duyệt)"),
    "/bulletins/{bulletin_id}/approve": bulletin_step(
        "Approve (leader or admin; not one's own)", ref("Review")
    ),
    "/bulletins/{bulletin_id}/reject": bulletin_step(
        "Reject with a comment (leader or admin)", ref("Review")
    ),
    "/bulletins/{bulletin_id}/send": {
        "post": operation(
            "Send an approved bulletin now (phát ngay)",
            {"201": ok(ref("Broadcast"))},
            body=ref("SendRequest"),
            params=[BULLETIN_ID],
            tag="bulletins",
        )
    },
    "/reports/broadcasts": {
        "get": operation(
            "The broadcast log with delivery counts (a village head: their own village)",
            {"200": ok(ref("BroadcastLog"))},
            params=LOG_FILTERS,
            tag="reports",
        )
    },
    "/reports/monthly": {
        "get": operation(
            "The monthly summary per zone: broadcasts, minutes, delivery rate, offline time",
            {"200": ok(ref("MonthlySummary"))},
            params=[
                {**query("month", "YYYY-MM"), "required": True},
                query("zone", "one zone and its villages"),
            ],
            tag="reports",
        )
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loa API",
            "version": "1",
            "description": (
                "Commune loudspeaker network (đài truyền thanh cấp xã). Authenticate with "
                "`Authorization: Bearer <token>` (`loa token create USERNAME`); every call "
                "has the same authorization as the web pages. Errors are JSON objects whose "
                "`error.field` names the input at fault."
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
