"""Constants of the domain, in one place."""

from __future__ import annotations

from enum import StrEnum
from zoneinfo import ZoneInfo

from broadcast.errors import N_, Msgid
from wire.protocol import ContentType, Priority, ReceiverState

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_WEB_PORT = 8080
DEFAULT_MQTT_PORT = 1883
DEMO_STREAM_PORT = 8010  # Icecast of `loa demo`, for live broadcasts
DEFAULT_DATA_DIR = "var"
SERVER_MQTT_USERNAME = "loa-server"

MAX_TEXT_CHARS = 20_000
MAX_TITLE_CHARS = 300  # the title columns' length
MAX_REPEAT = 10
MAX_INTERVAL_H = 72  # a series repeats at most this many hours apart
MAX_CRON_CHARS = 100  # the cron column's length


class ZoneKind(StrEnum):
    """The zone tree: province → commune → village; receivers (cụm loa) hang under villages.
    `broadcast.people.zones.check_placement` holds which kind may sit under which."""

    PROVINCE = "province"  # tỉnh, thành phố (trực thuộc trung ương)
    COMMUNE = "commune"  # xã, phường, đặc khu
    VILLAGE = "village"  # thôn, bản, xóm, ấp, tổ dân phố


class Role(StrEnum):
    ADMIN = "admin"  # quản trị
    OFFICER = "officer"  # cán bộ văn hóa – thông tin
    LEADER = "leader"  # lãnh đạo
    VILLAGE_HEAD = "village_head"  # trưởng thôn
    VIEWER = "viewer"  # xem
    PROVINCE_EDITOR = "province_editor"  # biên tập viên tỉnh: writes bulletins for communes
    SOURCE = "source"  # hệ thống thông tin nguồn: an external system posting over the API only


class BroadcastStatus(StrEnum):
    PENDING = "pending"  # waiting for speech synthesis
    SCHEDULED = "scheduled"  # a planned run, in the receivers' manifests, not yet due
    DISPATCHED = "dispatched"  # command published (or a planned run came due)
    FINISHED = "finished"  # every target receiver reported finished
    PARTIAL = "partial"  # every receiver answered, some failed
    FAILED = "failed"  # could not be rendered or dispatched
    CANCELLED = "cancelled"  # stopped by a person (dừng / đính chính); final
    MISSED = "missed"  # a planned run the server was not running for (past the grace period)


class DeliveryState(StrEnum):
    QUEUED = "queued"
    RECEIVED = "received"
    FETCHED = "fetched"
    PLAYING = "playing"
    PREEMPTED = "preempted"  # cut by a higher priority; may play again (resume)
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"  # ended by a cancel (dừng): cut on air, or will never play


# a delivery in one of these is over: the receiver will say nothing more of it
FINAL_DELIVERY_STATES = frozenset(
    {DeliveryState.FINISHED.value, DeliveryState.FAILED.value, DeliveryState.STOPPED.value}
)
# a broadcast in one of these has ended: nothing of it can sound any more, nothing to stop
ENDED_BROADCAST_STATUSES = frozenset(
    {
        BroadcastStatus.FINISHED.value,
        BroadcastStatus.PARTIAL.value,
        BroadcastStatus.FAILED.value,
        BroadcastStatus.CANCELLED.value,
    }
)


class ScheduleKind(StrEnum):
    ONCE = "once"  # one run at a local date and time
    DAILY = "daily"  # every day at a local time
    WEEKDAYS = "weekdays"  # chosen weekdays at a local time
    CRON = "cron"  # a standard 5-field cron expression, in local time
    SERIES = "series"  # every N hours until a newer series of the same key replaces it
    LUNAR_MONTHLY = "lunar_monthly"  # chosen lunar days of every lunar month, leap ones too
    LUNAR_YEARLY = "lunar_yearly"  # chosen days of one lunar month every lunar year

    @property
    def lunar(self) -> bool:
        """Timed by the Vietnamese lunar calendar (`lunar_days`, `lunar_month`)."""
        return self in (ScheduleKind.LUNAR_MONTHLY, ScheduleKind.LUNAR_YEARLY)


class ContentKind(StrEnum):
    """What a bulletin is made of (`Bulletin.kind`). How it travels to the receivers is the
    wire's `ContentType` (`Broadcast.content`): a text and a recording are both media, and a
    relay is the wire's relay, spelled there once."""

    TTS = "tts"  # a text, synthesized
    RECORDING = "recording"  # an uploaded recording, played as it is
    RELAY = ContentType.RELAY.value  # a live stream relayed for a set time (tiếp sóng)

    @property
    def content_type(self) -> ContentType:
        """How a broadcast of this content travels (`Broadcast.content`, the wire's body)."""
        return ContentType.RELAY if self is ContentKind.RELAY else ContentType.MEDIA


# How each code reads, one table per enum: the Vietnamese text is the message id (N_), the CSV
# exports write it as it is and `web.labels` translates it into the request's language. The
# bulletin's statuses are worded beside their enum (`broadcast.desks.bulletins.STATUS_LABELS`).
BROADCAST_STATUS_LABELS: dict[str, Msgid] = {
    BroadcastStatus.PENDING: N_("Đang chuẩn bị"),
    BroadcastStatus.SCHEDULED: N_("Đã lên lịch"),
    BroadcastStatus.DISPATCHED: N_("Đã gửi"),
    BroadcastStatus.FINISHED: N_("Đã phát xong"),
    BroadcastStatus.PARTIAL: N_("Phát một phần"),
    BroadcastStatus.FAILED: N_("Lỗi"),
    BroadcastStatus.CANCELLED: N_("Đã dừng"),
    BroadcastStatus.MISSED: N_("Lỡ giờ (máy chủ không chạy)"),
}
# a live broadcast's end is its speaker's "Kết thúc", not a stop
LIVE_ENDED_LABEL = N_("Đã kết thúc")
DELIVERY_STATE_LABELS: dict[str, Msgid] = {
    DeliveryState.QUEUED: N_("Chờ gửi"),
    DeliveryState.RECEIVED: N_("Đã nhận lệnh"),
    DeliveryState.FETCHED: N_("Đã tải âm thanh"),
    DeliveryState.PLAYING: N_("Đang phát"),
    DeliveryState.PREEMPTED: N_("Bị ngắt (tin khẩn hơn)"),
    DeliveryState.FINISHED: N_("Đã phát xong"),
    DeliveryState.FAILED: N_("Lỗi"),
    DeliveryState.STOPPED: N_("Đã dừng phát"),
}
RECEIVER_STATE_LABELS: dict[str, Msgid] = {
    ReceiverState.IDLE: N_("Sẵn sàng"),
    ReceiverState.FETCHING: N_("Đang tải"),
    ReceiverState.PLAYING: N_("Đang phát"),
    ReceiverState.PREEMPTED: N_("Bị ngắt (tin khẩn hơn)"),
    ReceiverState.OFFLINE: N_("Mất kết nối"),
}
SCHEDULE_KIND_LABELS: dict[str, Msgid] = {
    ScheduleKind.ONCE: N_("Một lần"),
    ScheduleKind.DAILY: N_("Hằng ngày"),
    ScheduleKind.WEEKDAYS: N_("Theo thứ"),
    ScheduleKind.CRON: N_("Theo lịch cron"),
    ScheduleKind.SERIES: N_("Chuỗi bản tin"),
    ScheduleKind.LUNAR_MONTHLY: N_("Hằng tháng âm lịch"),
    ScheduleKind.LUNAR_YEARLY: N_("Hằng năm âm lịch"),
}
ZONE_KIND_WORDS: dict[str, Msgid] = {  # inside a sentence ("a village cannot be under …")
    ZoneKind.PROVINCE: N_("tỉnh"),
    ZoneKind.COMMUNE: N_("xã"),
    ZoneKind.VILLAGE: N_("thôn"),
}
ZONE_KIND_LABELS: dict[str, Msgid] = {  # a zone's level, as a column or a choice shows it
    ZoneKind.PROVINCE: N_("Tỉnh, thành phố"),
    ZoneKind.COMMUNE: N_("Xã, phường, đặc khu"),
    ZoneKind.VILLAGE: N_("Thôn, bản, tổ dân phố"),
}
CONTENT_KIND_LABELS: dict[str, Msgid] = {
    ContentKind.TTS: N_("Văn bản"),
    ContentKind.RECORDING: N_("Bản ghi âm"),
    ContentKind.RELAY: N_("Tiếp sóng"),
}
CONTENT_TYPE_LABELS: dict[str, Msgid] = {
    ContentType.MEDIA: N_("Âm thanh"),
    ContentType.RELAY: N_("Tiếp sóng"),
}
PRIORITY_LABELS: dict[str, Msgid] = {
    Priority.EMERGENCY: N_("Khẩn cấp"),
    Priority.PRIORITY: N_("Ưu tiên"),
    Priority.NORMAL: N_("Thông thường"),
}
LIVE_SOURCE = "live"  # `Broadcast.source` of a live broadcast (phát trực tiếp)
SOURCE_LABELS: dict[str, Msgid] = {  # `Broadcast.source`: how it was sent
    "announcement": N_("Thông báo"),
    "bulletin": N_("Bản tin phát ngay"),
    "correction": N_("Đính chính"),
    LIVE_SOURCE: N_("Phát trực tiếp"),
    "schedule": N_("Theo lịch phát"),
}

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_RELAY_MINUTES = 360  # wire.protocol.MAX_RELAY_S
MAX_URL_CHARS = 1000
