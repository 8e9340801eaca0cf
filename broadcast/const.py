"""Constants of the domain, in one place."""

from __future__ import annotations

from enum import StrEnum
from zoneinfo import ZoneInfo

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_WEB_PORT = 8080
DEFAULT_MQTT_PORT = 1883
DEFAULT_DATA_DIR = "var"
SERVER_MQTT_USERNAME = "loa-server"

MAX_TEXT_CHARS = 20_000
MAX_REPEAT = 10


class ZoneKind(StrEnum):
    COMMUNE = "commune"  # xã / phường
    VILLAGE = "village"  # thôn, xóm, tổ dân phố


class Role(StrEnum):
    ADMIN = "admin"  # quản trị
    OFFICER = "officer"  # cán bộ văn hóa – thông tin
    LEADER = "leader"  # lãnh đạo
    VILLAGE_HEAD = "village_head"  # trưởng thôn
    VIEWER = "viewer"  # xem


class BroadcastStatus(StrEnum):
    PENDING = "pending"  # waiting for speech synthesis
    DISPATCHED = "dispatched"  # command published to the receivers
    FINISHED = "finished"  # every target receiver reported finished
    PARTIAL = "partial"  # every receiver answered, some failed
    FAILED = "failed"  # could not be rendered or dispatched


class DeliveryState(StrEnum):
    QUEUED = "queued"
    RECEIVED = "received"
    FETCHED = "fetched"
    PLAYING = "playing"
    FINISHED = "finished"
    FAILED = "failed"


class ScheduleKind(StrEnum):
    ONCE = "once"
    DAILY = "daily"


class ContentKind(StrEnum):
    TTS = "tts"  # a text, synthesized
    RECORDING = "recording"  # an uploaded recording, played as it is


MAX_UPLOAD_BYTES = 20 * 1024 * 1024
