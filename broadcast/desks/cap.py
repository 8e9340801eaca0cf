"""CAP 1.2 alerts (OASIS Common Alerting Protocol) from a source-information system (hệ thống
thông tin nguồn, or a disaster agency): read safely, then mapped to what Loa broadcasts.

Two pure steps, so the inbound API can check an alert before it stores anything:

- `read_alert(data)` reads the XML (namespace `urn:oasis:names:tc:emergency:cap:1.2`) into a
  frozen `Alert`, or raises a `ValidationError` whose field is the element's path in the alert
  ("sent", "info[0].urgency", "info[0].area[1].geocode[0].value"; "alert" for the document
  itself). The XML comes from outside: `defusedxml` refuses any DOCTYPE (so no external entity,
  XXE, and no entity expansion, billion laughs), the document is at most MAX_BYTES and its
  elements at most MAX_DEPTH deep.
- `bulletin_from(alert, now=…, accepted=…)` says what Loa does with it (`CapBulletin`):

  - priority (Thông tư 39) from `urgency` × `severity` (`priority_for`): khẩn cấp interrupts
    every loudspeaker, so it needs both a threat to life or property (Extreme, Severe) and action
    now or within the hour (Immediate, Expected); one of the two alone is ưu tiên (heard first in
    the next programme); the rest (Past, or neither) is thông thường. `certainty` is kept, unused;
  - communes: every `info.area.geocode` whose valueName is VN-ADMIN (or "mã ĐVHC") carries an
    administrative unit code, 5 digits for a commune, 2 for a province (all its communes);
    other geocodes (SAME, FIPS, …) and polygons are not read;
  - msgType: Alert → a new broadcast; Update → the broadcasts of the alerts in `references` are
    stopped and this one goes out as their correction; Cancel → they are stopped; Ack and Error
    → nothing. Earlier alerts are found by (sender, identifier), the idempotency key;
  - `expires` → the bulletin's validity (an alert already expired is refused);
  - status: only Actual is broadcast, Exercise and Test too where the installation allows them
    (`accepted`); System and Draft never, nor a scope other than Public: such alerts are
    received and ignored (`Disposition.IGNORE` with a reason), as CAP tells recipients to do;
  - the spoken text is headline + description + instruction, whitespace collapsed, each part
    ended as a sentence; the info block read is the first in vi-VN, else in any "vi", else the
    first (`info.language` is en-US when absent).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from broadcast.clock import check_year
from broadcast.const import MAX_TEXT_CHARS, MAX_TITLE_CHARS
from broadcast.errors import N_, ValidationError
from wire.protocol import Priority

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_BYTES = 256 * 1024
# CAP's deepest element is alert/info/area/geocode/value (5); an XML signature goes to about 7.
MAX_DEPTH = 16
MAX_ID_CHARS = 255
DEFAULT_LANGUAGE = "en-US"  # CAP 1.2, info.language: "if not present, assumed value is en-US"
# The geocode valueNames whose values are Vietnamese administrative unit codes (mã đơn vị hành
# chính), compared case-insensitively.
ADMIN_CODE_NAME = "VN-ADMIN"
ADMIN_CODE_NAMES = frozenset({ADMIN_CODE_NAME.casefold(), "mã đvhc"})
_ADMIN_CODE = re.compile(r"[0-9]{2}|[0-9]{5}")  # a province's 2 digits or a commune's 5

_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)", re.ASCII
)
_ID_FORBIDDEN = re.compile(r"[\s,<&]")  # CAP: no spaces, commas or restricted characters
_DIGEST = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")  # SHA-1 as CAP says; SHA-256 tolerated
_SENTENCE_END = ".!?…:;"


class Status(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class Scope(StrEnum):
    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class Category(StrEnum):
    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"  # responsive action now
    EXPECTED = "Expected"  # within the next hour
    FUTURE = "Future"  # in the near future
    PAST = "Past"  # no longer required
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"  # extraordinary threat to life or property
    SEVERE = "Severe"  # significant threat to life or property
    MODERATE = "Moderate"  # possible threat to life or property
    MINOR = "Minor"  # minimal to no known threat
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Reference:
    """One earlier alert, as `references` names it (and as this alert is named by later ones)."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class Geocode:
    name: str  # valueName
    value: str


@dataclass(frozen=True)
class Area:
    description: str  # areaDesc
    geocodes: tuple[Geocode, ...]


@dataclass(frozen=True)
class Resource:
    description: str  # resourceDesc
    mime_type: str
    uri: str | None
    size: int | None  # bytes
    digest: str | None  # lowercase hex

    @property
    def is_audio(self) -> bool:
        """Audio Loa could fetch: an audio type at an http(s) address."""
        return self.mime_type.lower().startswith("audio/") and bool(
            self.uri and re.match(r"https?://", self.uri, re.IGNORECASE)
        )


@dataclass(frozen=True)
class Info:
    language: str
    categories: tuple[Category, ...]
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    sender_name: str | None
    headline: str | None
    description: str | None
    instruction: str | None
    expires: datetime | None  # aware, UTC
    areas: tuple[Area, ...]
    resources: tuple[Resource, ...]


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime  # aware, UTC
    status: Status
    msg_type: MsgType
    scope: Scope
    references: tuple[Reference, ...]
    infos: tuple[Info, ...]
    chosen: int | None  # the index in `infos` of the block Loa reads (None: no info)

    @property
    def info(self) -> Info | None:
        """The info block read aloud: vi-VN first, then any Vietnamese, then the first."""
        return None if self.chosen is None else self.infos[self.chosen]

    @property
    def key(self) -> Reference:
        """This alert as a later one's `references` names it."""
        return Reference(self.sender, self.identifier, self.sent)


class Disposition(StrEnum):
    BROADCAST = "broadcast"  # Alert: a new bulletin to the communes
    CORRECT = "correct"  # Update: the referenced broadcasts stopped, this one their correction
    CANCEL = "cancel"  # Cancel: the referenced broadcasts stopped, nothing new plays
    IGNORE = "ignore"  # received, not for the loudspeakers (`reason` says why)


@dataclass(frozen=True)
class CapBulletin:
    """What Loa does with one alert: plain values the inbound desk turns into broadcasts."""

    disposition: Disposition
    key: Reference  # this alert: (sender, identifier) is the idempotency key
    reason: str = ""  # why it is ignored
    references: tuple[Reference, ...] = ()  # the alerts an Update corrects or a Cancel stops
    priority: Priority | None = None
    zone_codes: tuple[str, ...] = ()  # administrative unit codes, in the alert's order
    title: str = ""
    text: str = ""  # what is read aloud
    valid_until: datetime | None = None  # aware, UTC: info.expires
    audio: Resource | None = None  # the first audio resource at an http(s) address
    info_path: str = ""  # "info[1]": the block read, for messages about it


# --- reading ------------------------------------------------------------------------------


class _TooDeep(Exception):
    pass


class _BoundedTree:
    """A tree builder that stops the parse once elements nest deeper than MAX_DEPTH, before a
    hostile document makes every later step walk a deep tree."""

    def __init__(self) -> None:
        self._builder = TreeBuilder()
        self._depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep
        return self._builder.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> Element:
        return self._builder.close()


def _parse_xml(data: bytes | str) -> Element:
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise ValidationError(
            "alert",
            N_("cảnh báo dài %(size)s byte; chỉ đọc tối đa %(max)s byte"),
            "too_large",
            size=size,
            max=MAX_BYTES,
        )
    parser = DefusedXMLParser(
        target=_BoundedTree(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        return parser.close()
    except _TooDeep:
        raise ValidationError(
            "alert", N_("các phần tử lồng nhau quá %(max)s tầng"), "too_deep", max=MAX_DEPTH
        ) from None
    except DefusedXmlException:
        message = N_("không nhận DOCTYPE, khai báo entity hay tham chiếu ra ngoài")
        raise ValidationError("alert", message, "forbidden_xml") from None
    except (ParseError, UnicodeError) as error:
        raise ValidationError(
            "alert", N_("không phải XML đúng dạng (%(detail)s)"), "not_xml", detail=str(error)
        ) from None


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _all(element: Element, name: str) -> list[Element]:
    return element.findall(_tag(name))


def _optional(element: Element, name: str, parent: str) -> str | None:
    """The stripped text of the one `name` child, None when absent or blank (a ValidationError
    when it appears twice: CAP allows one)."""
    found = _all(element, name)
    if len(found) > 1:
        message = N_("<%(element)s> có %(count)s lần")
        raise ValidationError(
            _path(parent, name), message, "duplicate", element=name, count=len(found)
        )
    return ((found[0].text or "").strip() or None) if found else None


def _required(element: Element, name: str, parent: str) -> str:
    text = _optional(element, name, parent)
    if text is None:
        raise ValidationError(
            _path(parent, name), N_("thiếu <%(element)s>"), "missing", element=name
        )
    return text


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], text: str, field: str, aliases: dict[str, _E] | None = None) -> _E:
    """A CAP enumeration's value; case is forgiven, anything else is refused."""
    wanted = " ".join(text.split()).casefold()
    for member in kind:
        if member.value.casefold() == wanted:
            return member
    if aliases and wanted in aliases:
        return aliases[wanted]
    allowed = ", ".join(member.value for member in kind)
    raise ValidationError(
        field,
        N_("“%(value)s” không phải một trong %(allowed)s"),
        "bad_value",
        value=text[:40],
        allowed=allowed,
    )


def _date(text: str, field: str) -> datetime:
    """A CAP date and time (with its UTC offset; "Z" tolerated) → aware UTC."""
    if not _DATE.fullmatch(text):
        message = N_("“%(value)s” không phải ngày giờ CAP như 2026-11-26T17:00:00+07:00")
        raise ValidationError(field, message, "bad_date", value=text[:40])
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            field, N_("“%(value)s” không phải ngày có thật"), "bad_date", value=text[:40]
        ) from None
    check_year(value.year, field)
    return value.astimezone(UTC)


def _identifier(element: Element, name: str, parent: str) -> str:
    text = _required(element, name, parent)
    field = _path(parent, name)
    if len(text) > MAX_ID_CHARS:
        message = N_("<%(element)s> dài quá %(max)s ký tự")
        raise ValidationError(field, message, "too_long", element=name, max=MAX_ID_CHARS)
    if _ID_FORBIDDEN.search(text):
        message = N_("<%(element)s> không được chứa dấu cách, dấu phẩy, '<' hay '&' (“%(value)s”)")
        raise ValidationError(field, message, "bad_value", element=name, value=text[:40])
    return text


def _references(text: str | None) -> tuple[Reference, ...]:
    """`references`: space-separated "sender,identifier,sent" triples."""
    found: list[Reference] = []
    for index, item in enumerate((text or "").split()):
        field = f"references[{index}]"
        parts = item.split(",")
        if len(parts) != 3 or not all(parts):
            message = N_("“%(value)s” không có dạng sender,identifier,sent")
            raise ValidationError(field, message, "bad_reference", value=item[:80])
        sender, identifier, sent = parts
        if len(sender) > MAX_ID_CHARS or len(identifier) > MAX_ID_CHARS:
            message = N_("sender hoặc identifier dài quá %(max)s ký tự")
            raise ValidationError(field, message, "too_long", max=MAX_ID_CHARS)
        found.append(Reference(sender, identifier, _date(sent, field)))
    return tuple(found)


def _area(element: Element, path: str) -> Area:
    geocodes = []
    for index, geocode in enumerate(_all(element, "geocode")):
        at = f"{path}.geocode[{index}]"
        geocodes.append(
            Geocode(_required(geocode, "valueName", at), _required(geocode, "value", at))
        )
    return Area(" ".join(_required(element, "areaDesc", path).split()), tuple(geocodes))


def _resource(element: Element, path: str) -> Resource:
    size_text = _optional(element, "size", path)
    size = None
    if size_text is not None:
        if not size_text.isascii() or not size_text.isdigit() or len(size_text) > 15:
            message = N_("“%(value)s” không phải kích thước tính bằng byte")
            raise ValidationError(_path(path, "size"), message, "bad_value", value=size_text[:40])
        size = int(size_text)
    digest = _optional(element, "digest", path)
    if digest is not None and not _DIGEST.fullmatch(digest):
        message = N_("“%(value)s” không phải mã băm SHA-1 dạng thập lục phân")
        raise ValidationError(_path(path, "digest"), message, "bad_value", value=digest[:80])
    return Resource(
        description=_required(element, "resourceDesc", path),
        mime_type=_required(element, "mimeType", path),
        uri=_optional(element, "uri", path),
        size=size,
        digest=digest.lower() if digest else None,
    )


def _info(element: Element, path: str, sent: datetime) -> Info:
    categories = []
    for index, category in enumerate(_all(element, "category")):
        field = f"{path}.category[{index}]"
        categories.append(_choice(Category, (category.text or "").strip(), field))
    if not categories:
        raise ValidationError(
            _path(path, "category"), N_("thiếu <%(element)s>"), "missing", element="category"
        )
    expires_text = _optional(element, "expires", path)
    expires = None
    if expires_text is not None:
        expires = _date(expires_text, _path(path, "expires"))
        if expires <= sent:
            message = N_("<expires> không sau <sent> của cảnh báo")
            raise ValidationError(_path(path, "expires"), message, "bad_date")
    certainty = _required(element, "certainty", path)
    return Info(
        language=_optional(element, "language", path) or DEFAULT_LANGUAGE,
        categories=tuple(categories),
        event=_required(element, "event", path),
        urgency=_choice(Urgency, _required(element, "urgency", path), _path(path, "urgency")),
        severity=_choice(Severity, _required(element, "severity", path), _path(path, "severity")),
        # CAP 1.2 keeps CAP 1.0's "Very Likely" as an equivalent of "Likely".
        certainty=_choice(
            Certainty, certainty, _path(path, "certainty"), {"very likely": Certainty.LIKELY}
        ),
        sender_name=_optional(element, "senderName", path),
        headline=_optional(element, "headline", path),
        description=_optional(element, "description", path),
        instruction=_optional(element, "instruction", path),
        expires=expires,
        areas=tuple(
            _area(area, f"{path}.area[{index}]") for index, area in enumerate(_all(element, "area"))
        ),
        resources=tuple(
            _resource(resource, f"{path}.resource[{index}]")
            for index, resource in enumerate(_all(element, "resource"))
        ),
    )


def _language(info: Info) -> str:
    """A language tag as compared: case and "vi_VN" for "vi-VN" forgiven."""
    return info.language.casefold().replace("_", "-")


def _chosen(infos: tuple[Info, ...]) -> int | None:
    languages = [_language(info) for info in infos]
    for index, language in enumerate(languages):
        if language == "vi-vn":
            return index
    for index, language in enumerate(languages):
        if language.split("-")[0] == "vi":
            return index
    return 0 if infos else None


def read_alert(data: bytes | str) -> Alert:
    """A CAP 1.2 alert, checked; a ValidationError naming the element at fault otherwise."""
    root = _parse_xml(data)
    if root.tag != _tag("alert"):
        namespace, _, name = root.tag[1:].rpartition("}") if root.tag[:1] == "{" else ("", "", "")
        if (name or root.tag) == "alert":
            message = N_(
                "không gian tên của cảnh báo là “%(namespace)s”; Loa đọc CAP 1.2 (%(cap)s)"
            )
            raise ValidationError(
                "alert",
                message,
                "wrong_namespace",
                namespace=namespace or N_("không có"),
                cap=NAMESPACE,
            )
        message = N_("tài liệu là <%(element)s>, không phải <alert> của CAP")
        raise ValidationError("alert", message, "not_cap", element=(name or root.tag)[:40])
    identifier = _identifier(root, "identifier", "")
    sender = _identifier(root, "sender", "")
    sent = _date(_required(root, "sent", ""), "sent")
    status = _choice(Status, _required(root, "status", ""), "status")
    msg_type = _choice(MsgType, _required(root, "msgType", ""), "msgType")
    scope = _choice(Scope, _required(root, "scope", ""), "scope")
    references = _references(_optional(root, "references", ""))
    infos = tuple(
        _info(info, f"info[{index}]", sent) for index, info in enumerate(_all(root, "info"))
    )
    return Alert(
        identifier, sender, sent, status, msg_type, scope, references, infos, _chosen(infos)
    )


# --- mapping ------------------------------------------------------------------------------

_THREAT = frozenset({Severity.EXTREME, Severity.SEVERE})
_SOON = frozenset({Urgency.IMMEDIATE, Urgency.EXPECTED})
# Never broadcast, whatever the installation accepts: system messages and drafts.
_NEVER = frozenset({Status.SYSTEM, Status.DRAFT})


def priority_for(urgency: Urgency, severity: Severity) -> Priority:
    """Thông tư 39's level: khẩn cấp for a threat to life or property needing action now or
    within the hour; ưu tiên for one of the two; thông thường for the rest."""
    if urgency is Urgency.PAST:
        return Priority.NORMAL
    if severity in _THREAT and urgency in _SOON:
        return Priority.EMERGENCY
    if severity in _THREAT or urgency in _SOON:
        return Priority.PRIORITY
    return Priority.NORMAL


def zone_codes(info: Info, path: str) -> tuple[str, ...]:
    """The administrative unit codes of an info block's areas, each once, in order."""
    codes: dict[str, None] = {}
    for area_index, area in enumerate(info.areas):
        for index, geocode in enumerate(area.geocodes):
            if unicodedata.normalize("NFC", geocode.name).casefold() not in ADMIN_CODE_NAMES:
                continue
            if not _ADMIN_CODE.fullmatch(geocode.value):
                field = f"{path}.area[{area_index}].geocode[{index}].value"
                message = N_(
                    "“%(value)s” không phải mã đơn vị hành chính: 5 chữ số cho xã, 2 cho tỉnh"
                )
                raise ValidationError(field, message, "bad_code", value=geocode.value[:40])
            codes[geocode.value] = None
    return tuple(codes)


def spoken_text(info: Info) -> str:
    """Headline, description and instruction, whitespace collapsed, each ended as a sentence
    so the speech pauses between them."""
    parts = []
    for part in (info.headline, info.description, info.instruction):
        text = " ".join((part or "").split())
        if text:
            parts.append(text if text[-1] in _SENTENCE_END else f"{text}.")
    return " ".join(parts)


def _text_to_read(info: Info | None, path: str) -> str:
    text = spoken_text(info) if info else ""
    if len(text) > MAX_TEXT_CHARS:
        message = N_("lời cần đọc dài quá %(max)s ký tự")
        raise ValidationError(_path(path, "description"), message, "too_long", max=MAX_TEXT_CHARS)
    return text


def _ignored(alert: Alert, accepted: Collection[Status]) -> str:
    if alert.msg_type in (MsgType.ACK, MsgType.ERROR):
        return f"a msgType {alert.msg_type} answers another system: nothing to broadcast"
    if alert.status is not Status.ACTUAL and (
        alert.status in _NEVER or alert.status not in accepted
    ):
        allowed = ({Status.ACTUAL} | set(accepted)) - _NEVER
        return f"status {alert.status}: this installation broadcasts only " + ", ".join(
            status.value for status in Status if status in allowed
        )
    if alert.scope is not Scope.PUBLIC:
        return f"scope {alert.scope}: not for public loudspeakers"
    return ""


def bulletin_from(
    alert: Alert, *, now: datetime, accepted: Collection[Status] = (Status.ACTUAL,)
) -> CapBulletin:
    """What Loa does with `alert` at `now` (aware); `accepted`: the statuses this installation
    broadcasts (Actual, and Exercise or Test where it allows them). A ValidationError names the
    element that keeps a bulletin from being made."""
    reason = _ignored(alert, accepted)
    if reason:
        return CapBulletin(Disposition.IGNORE, alert.key, reason=reason)
    if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL) and not alert.references:
        message = N_("cảnh báo %(msg_type)s phải nêu cảnh báo trước trong <references>")
        raise ValidationError("references", message, "missing", msg_type=alert.msg_type.value)
    info = alert.info
    path = f"info[{alert.chosen}]"
    if alert.msg_type is MsgType.CANCEL:
        text = _text_to_read(info, path)
        return CapBulletin(Disposition.CANCEL, alert.key, references=alert.references, text=text)
    if info is None or alert.chosen is None:
        raise ValidationError(
            "info",
            N_("cảnh báo %(msg_type)s cần một <info> để đọc"),
            "missing",
            msg_type=alert.msg_type.value,
        )
    for index, other in enumerate(alert.infos):
        if index != alert.chosen and _language(other) == _language(info):
            message = N_(
                "<info> thứ hai bằng %(language)s: Loa đọc một lời mỗi cảnh báo, hãy gửi mỗi"
                " lời một cảnh báo"
            )
            raise ValidationError(f"info[{index}]", message, "ambiguous", language=info.language)
    if info.expires is not None and info.expires <= now:
        message = N_("cảnh báo đã hết hạn lúc %(expires)s")
        raise ValidationError(
            _path(path, "expires"), message, "expired", expires=info.expires.isoformat()
        )
    codes = zone_codes(info, path)
    if not codes:
        message = N_(
            "không vùng nào nêu xã hay tỉnh bằng mã đơn vị hành chính (một <geocode> có"
            " valueName %(name)s)"
        )
        raise ValidationError(_path(path, "area"), message, "no_target", name=ADMIN_CODE_NAME)
    text = _text_to_read(info, path)
    audio = next((resource for resource in info.resources if resource.is_audio), None)
    if not text and audio is None:
        message = N_("không có gì để đọc: không có <headline>, <description> hay <instruction>")
        raise ValidationError(_path(path, "description"), message, "missing")
    title = " ".join((info.headline or info.event).split())
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "…"
    disposition = Disposition.CORRECT if alert.msg_type is MsgType.UPDATE else Disposition.BROADCAST
    return CapBulletin(
        disposition,
        alert.key,
        references=alert.references if disposition is Disposition.CORRECT else (),
        priority=priority_for(info.urgency, info.severity),
        zone_codes=codes,
        title=title,
        text=text,
        valid_until=info.expires,
        audio=audio,
        info_path=path,
    )
