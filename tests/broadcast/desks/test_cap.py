"""CAP 1.2 alerts: the OASIS specification's own examples and Vietnamese alerts read as CAP
says, mapped to Loa's priorities, communes, corrections and cancels; and every malformed or
hostile document refused with a ValidationError naming the element, and nothing else."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast.desks import cap
from broadcast.desks.cap import (
    Alert,
    Category,
    Certainty,
    Disposition,
    Geocode,
    MsgType,
    Reference,
    Scope,
    Severity,
    Status,
    Urgency,
    bulletin_from,
    priority_for,
    read_alert,
)
from broadcast.errors import ValidationError
from wire.protocol import Priority

DATA = Path(__file__).resolve().parents[2] / "data" / "cap"
# 08:00 in Thanh Hóa on the storm's day: the storm alerts are live.
NOW = datetime(2026, 9, 14, 1, 0, tzinfo=UTC)
SPEC_NOW = datetime(2003, 6, 17, 22, 0, tzinfo=UTC)  # the spec's thunderstorm is live
STORM = Reference(
    "pctt@thanhhoa.example", "TH-PCTT-2026-0914-01", datetime(2026, 9, 14, 0, 0, tzinfo=UTC)
)
UPDATE = Reference(
    "pctt@thanhhoa.example", "TH-PCTT-2026-0914-02", datetime(2026, 9, 14, 4, 0, tzinfo=UTC)
)


def _load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _read(name: str) -> Alert:
    return read_alert(_load(name))


def _storm(*changes: tuple[str, str]) -> bytes:
    """The storm alert with each (old, new) made once: `old` must occur exactly once."""
    text = _load("vn-storm-alert.xml").decode()
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text.encode()


def _vi(*changes: tuple[str, str], drop: tuple[str, ...] = ()) -> bytes:
    """The storm alert with its vi-VN block (info[1]) changed: each (old, new) made once there,
    each element named in `drop` removed."""
    head, mark, block = _load("vn-storm-alert.xml").decode().partition("<language>vi-VN</language>")
    for old, new in changes:
        assert block.count(old) == 1, old
        block = block.replace(old, new)
    for name in drop:
        block, count = re.subn(rf"<{name}>.*?</{name}>", "", block, count=1, flags=re.DOTALL)
        assert count == 1, name
    return (head + mark + block).encode()


def _refused(data: bytes | str, field: str, code: str) -> ValidationError:
    """Reading `data` raises a plain ValidationError naming `field`, with `code`."""
    with pytest.raises(ValidationError) as caught:
        read_alert(data)
    error = caught.value
    assert type(error) is ValidationError
    assert (error.field, error.code) == (field, code), error
    assert error.message and field in str(error)
    return error


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- the specification's examples (Appendix A) ---------------------------------------------


def test_the_homeland_security_advisory_reads_as_the_spec_prints_it() -> None:
    alert = _read("oasis-a1-homeland-security.xml")
    assert (alert.identifier, alert.sender) == ("43b080713727", "hsas@dhs.gov")
    assert alert.sent == _utc(2003, 4, 2, 19, 39, 1) and alert.sent.tzinfo is UTC
    assert (alert.status, alert.msg_type, alert.scope) == (
        Status.ACTUAL,
        MsgType.ALERT,
        Scope.PUBLIC,
    )
    assert alert.references == () and alert.chosen == 0
    info = alert.info
    assert info is not None
    assert info.language == "en-US"  # absent: CAP's default
    assert info.categories == (Category.SECURITY,)
    assert info.event == "Homeland Security Advisory System Update"
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.IMMEDIATE,
        Severity.SEVERE,
        Certainty.LIKELY,
    )
    assert info.headline == "Homeland Security Sets Code ORANGE"
    assert info.sender_name == "U.S. Government, Department of Homeland Security"
    assert info.expires is None
    [resource] = info.resources
    assert (resource.mime_type, resource.description) == ("image/gif", "Image file (GIF)")
    assert resource.uri == "http://www.dhs.gov/dhspublic/getAdvisoryImage"
    assert not resource.is_audio
    [area] = info.areas
    assert area == cap.Area("U.S. nationwide and interests worldwide", ())


def test_the_thunderstorm_warning_reads_with_its_geocodes_and_expiry() -> None:
    alert = _read("oasis-a2-thunderstorm.xml")
    assert alert.identifier == "KSTO1055887203" and alert.sent == _utc(2003, 6, 17, 21, 57)
    info = alert.info
    assert info is not None
    assert info.categories == (Category.MET,) and info.certainty is Certainty.OBSERVED
    assert info.expires == _utc(2003, 6, 17, 23, 0)
    [area] = info.areas
    assert area.description == (
        "EXTREME NORTH CENTRAL TUOLUMNE COUNTY IN CALIFORNIA, EXTREME NORTHEASTERN CALAVERAS"
        " COUNTY IN CALIFORNIA, SOUTHWESTERN ALPINE COUNTY IN CALIFORNIA"
    )
    assert area.geocodes == (
        Geocode("SAME", "006109"),
        Geocode("SAME", "006009"),
        Geocode("SAME", "006003"),
    )


def test_the_earthquake_update_reads_its_reference() -> None:
    alert = _read("oasis-a3-earthquake.xml")
    assert alert.msg_type is MsgType.UPDATE
    assert alert.references == (
        Reference("trinet@caltech.edu", "TRI13970876.1", _utc(2003, 6, 12, 3, 30)),
    )
    assert alert.key == Reference("trinet@caltech.edu", "TRI13970876.2", _utc(2003, 6, 12, 3, 56))
    assert alert.info is not None and alert.info.urgency is Urgency.PAST


def test_the_amber_alert_reads_both_languages_and_picks_the_first_without_vietnamese() -> None:
    alert = _read("oasis-a4-amber.xml")
    assert [info.language for info in alert.infos] == ["en-US", "es-US"]
    assert alert.chosen == 0 and alert.info is alert.infos[0]
    assert alert.infos[1].event == "Abducción de Niño"


@pytest.mark.parametrize(
    "name",
    [
        "oasis-a1-homeland-security.xml",
        "oasis-a2-thunderstorm.xml",
        "oasis-a3-earthquake.xml",
        "oasis-a4-amber.xml",
    ],
)
def test_the_spec_examples_name_no_vietnamese_commune(name: str) -> None:
    alert = _read(name)
    with pytest.raises(ValidationError) as caught:
        bulletin_from(alert, now=SPEC_NOW)
    assert (caught.value.field, caught.value.code) == ("info[0].area", "no_target")
    assert "VN-ADMIN" in caught.value.message


def test_the_thunderstorm_adapted_to_two_communes_is_an_emergency_there() -> None:
    bulletin = bulletin_from(_read("oasis-a2-thunderstorm-vn.xml"), now=SPEC_NOW)
    assert bulletin.disposition is Disposition.BROADCAST
    assert bulletin.priority is Priority.EMERGENCY  # Immediate, Severe
    assert bulletin.zone_codes == ("16012", "14836")  # the SAME code left is not read
    assert bulletin.valid_until == _utc(2003, 6, 17, 23, 0)
    assert bulletin.title == "SEVERE THUNDERSTORM WARNING"
    assert bulletin.text.startswith("SEVERE THUNDERSTORM WARNING. AT 254 PM PDT...NATIONAL")
    assert "ALPINE COUNTY...OR ABOUT" in bulletin.text and "  " not in bulletin.text
    assert bulletin.text.endswith(
        "WITH THIS STORM. TAKE COVER IN A SUBSTANTIAL SHELTER UNTIL THE STORM PASSES."
    )
    assert bulletin.references == () and bulletin.audio is None
    assert bulletin.key.identifier == "KSTO1055887203"


def test_the_advisory_adapted_to_a_province_targets_the_province() -> None:
    bulletin = bulletin_from(_read("oasis-a1-homeland-security-vn.xml"), now=SPEC_NOW)
    assert (bulletin.priority, bulletin.zone_codes) == (Priority.EMERGENCY, ("38",))
    assert bulletin.text.startswith("Homeland Security Sets Code ORANGE. The Department")
    assert bulletin.audio is None  # the GIF is no sound


def test_the_earthquake_update_adapted_corrects_the_first_report_at_normal_priority() -> None:
    bulletin = bulletin_from(_read("oasis-a3-earthquake-vn.xml"), now=SPEC_NOW)
    assert bulletin.disposition is Disposition.CORRECT
    assert bulletin.references == (
        Reference("trinet@caltech.edu", "TRI13970876.1", _utc(2003, 6, 12, 3, 30)),
    )
    assert (bulletin.priority, bulletin.zone_codes) == (Priority.NORMAL, ("16012",))  # Past
    assert bulletin.valid_until is None


def test_the_amber_alert_adapted_is_read_in_vietnamese() -> None:
    alert = _read("oasis-a4-amber-vn.xml")
    assert [info.language for info in alert.infos] == ["en-US", "es-US", "vi-VN"]
    assert alert.chosen == 2
    bulletin = bulletin_from(alert, now=SPEC_NOW)
    assert bulletin.info_path == "info[2]"
    assert bulletin.title == "Thông báo khẩn: tìm trẻ em bị bắt cóc"
    assert bulletin.text == (
        "Thông báo khẩn: tìm trẻ em bị bắt cóc. Lúc 19 giờ 15 phút ngày 11 tháng 6, một bé trai"
        " 2 tuổi mặc quần đỏ, áo phông trắng cổ xanh đã bị đưa đi bằng một xe ô tô hai cửa màu"
        " xanh. Ai nhìn thấy xin báo ngay cho công an xã hoặc gọi số 113."
    )
    assert (bulletin.priority, bulletin.zone_codes) == (Priority.EMERGENCY, ("38",))


# --- Vietnamese alerts: a storm, its update, its cancel ------------------------------------


def test_the_storm_bulletin_reaches_its_two_communes_at_once_in_vietnamese() -> None:
    alert = _read("vn-storm-alert.xml")
    assert alert.chosen == 1  # vi-VN, though en-US comes first
    assert alert.key == STORM
    bulletin = bulletin_from(alert, now=NOW)
    assert bulletin.disposition is Disposition.BROADCAST
    assert bulletin.priority is Priority.EMERGENCY
    # Both valueNames are read, each code once, in the alert's order.
    assert bulletin.zone_codes == ("16012", "14836")
    assert bulletin.valid_until == _utc(2026, 9, 14, 12, 0)
    assert bulletin.title == "Tin bão khẩn cấp: bão số 5 sắp đổ bộ"
    assert bulletin.text == (
        "Tin bão khẩn cấp: bão số 5 sắp đổ bộ. Hồi 6 giờ sáng nay, tâm bão số 5 cách bờ biển"
        " Thanh Hóa khoảng 120 km, sức gió mạnh nhất cấp 12, giật cấp 15. Chiều nay bão đổ bộ"
        " vào xã Hoằng Hợp và phường Hạc Thành. Bà con vùng ven biển di chuyển ngay đến nơi trú"
        " ẩn an toàn; tàu thuyền không ra khơi."
    )
    assert bulletin.audio == cap.Resource(
        description="Bản tin đọc sẵn",
        mime_type="audio/mpeg",
        uri="https://nguon.thanhhoa.example/ban-tin/bao-so-5.mp3",
        size=482133,
        digest="2d7a9c3e5f1b0a4c6e8d2f7b9a1c3e5d7f9b1a3c",
    )
    assert bulletin.reason == "" and bulletin.references == ()


def test_the_storm_update_corrects_the_bulletin_it_references() -> None:
    bulletin = bulletin_from(_read("vn-storm-update.xml"), now=NOW)
    assert bulletin.disposition is Disposition.CORRECT
    assert bulletin.references == (STORM,)
    assert bulletin.priority is Priority.PRIORITY  # Future, Severe
    assert bulletin.zone_codes == ("16012", "14836")
    assert bulletin.valid_until == _utc(2026, 9, 15, 0, 0)
    assert bulletin.text.startswith("Đính chính: bão số 5 đổi hướng, đổ bộ đêm nay. Bão số 5")


def test_the_storm_cancel_stops_both_earlier_alerts() -> None:
    bulletin = bulletin_from(_read("vn-storm-cancel.xml"), now=NOW)
    assert bulletin.disposition is Disposition.CANCEL
    assert bulletin.references == (STORM, UPDATE)
    assert bulletin.priority is None and bulletin.zone_codes == ()
    assert bulletin.text.startswith("Bão số 5 đã tan. Bão số 5 đã suy yếu")


def test_a_cancel_needs_no_info() -> None:
    data = _load("vn-storm-cancel.xml").decode()
    data = re.sub(r"<info>.*</info>", "", data, flags=re.DOTALL)
    alert = read_alert(data)
    assert alert.infos == () and alert.info is None and alert.chosen is None
    bulletin = bulletin_from(alert, now=NOW)
    assert (bulletin.disposition, bulletin.references, bulletin.text) == (
        Disposition.CANCEL,
        (STORM, UPDATE),
        "",
    )


@pytest.mark.parametrize("kind", ["Update", "Cancel"])
def test_an_update_or_cancel_without_references_is_refused(kind: str) -> None:
    alert = read_alert(_storm(("<msgType>Alert</msgType>", f"<msgType>{kind}</msgType>")))
    with pytest.raises(ValidationError) as caught:
        bulletin_from(alert, now=NOW)
    assert (caught.value.field, caught.value.code) == ("references", "missing")


def test_a_plain_vi_block_is_chosen_when_no_vi_vn_is_there() -> None:
    for language in ("VI", "vi_VN", "vi-Latn"):
        alert = read_alert(
            _storm(("<language>vi-VN</language>", f"<language>{language}</language>"))
        )
        assert alert.chosen == 1 and alert.info is not None and alert.info.language == language


def test_a_str_reads_as_the_bytes_do() -> None:
    assert read_alert(_load("vn-storm-alert.xml").decode()) == _read("vn-storm-alert.xml")


def test_enumerations_forgive_case_and_cap_1_0s_very_likely() -> None:
    alert = read_alert(
        _vi(
            ("<urgency>Immediate</urgency>", "<urgency>immediate</urgency>"),
            ("<severity>Extreme</severity>", "<severity>EXTREME</severity>"),
            ("<certainty>Likely</certainty>", "<certainty>Very Likely</certainty>"),
        )
    )
    info = alert.infos[1]
    assert (info.urgency, info.severity, info.certainty) == (
        Urgency.IMMEDIATE,
        Severity.EXTREME,
        Certainty.LIKELY,
    )


# --- the mapping ---------------------------------------------------------------------------

E, P, N = Priority.EMERGENCY, Priority.PRIORITY, Priority.NORMAL
# Rows: urgency; columns: severity Extreme, Severe, Moderate, Minor, Unknown.
TABLE = {
    Urgency.IMMEDIATE: (E, E, P, P, P),
    Urgency.EXPECTED: (E, E, P, P, P),
    Urgency.FUTURE: (P, P, N, N, N),
    Urgency.UNKNOWN: (P, P, N, N, N),
    Urgency.PAST: (N, N, N, N, N),
}


@pytest.mark.parametrize("urgency", list(Urgency))
@pytest.mark.parametrize("severity", list(Severity))
def test_urgency_and_severity_map_to_thong_tu_39(urgency: Urgency, severity: Severity) -> None:
    expected = TABLE[urgency][list(Severity).index(severity)]
    assert priority_for(urgency, severity) is expected


@pytest.mark.parametrize(
    ("status", "accepted", "disposition"),
    [
        (Status.ACTUAL, (), Disposition.BROADCAST),
        (Status.EXERCISE, (Status.ACTUAL,), Disposition.IGNORE),
        (Status.EXERCISE, (Status.ACTUAL, Status.EXERCISE), Disposition.BROADCAST),
        (Status.TEST, (Status.ACTUAL,), Disposition.IGNORE),
        (Status.TEST, (Status.TEST,), Disposition.BROADCAST),
        (Status.SYSTEM, tuple(Status), Disposition.IGNORE),
        (Status.DRAFT, tuple(Status), Disposition.IGNORE),
    ],
)
def test_only_actual_alerts_play_and_exercises_or_tests_where_allowed(
    status: Status, accepted: tuple[Status, ...], disposition: Disposition
) -> None:
    alert = read_alert(_storm(("<status>Actual</status>", f"<status>{status}</status>")))
    bulletin = bulletin_from(alert, now=NOW, accepted=accepted)
    assert bulletin.disposition is disposition
    if disposition is Disposition.IGNORE:
        assert f"status {status}" in bulletin.reason and "Actual" in bulletin.reason
        assert bulletin.zone_codes == () and bulletin.text == "" and bulletin.key == STORM


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("<scope>Public</scope>", "<scope>Restricted</scope>"), "scope Restricted"),
        (("<scope>Public</scope>", "<scope>Private</scope>"), "scope Private"),
        (("<msgType>Alert</msgType>", "<msgType>Ack</msgType>"), "msgType Ack"),
        (("<msgType>Alert</msgType>", "<msgType>Error</msgType>"), "msgType Error"),
    ],
)
def test_what_is_not_for_the_public_is_received_and_ignored(
    change: tuple[str, str], reason: str
) -> None:
    bulletin = bulletin_from(read_alert(_storm(change)), now=NOW)
    assert bulletin.disposition is Disposition.IGNORE and reason in bulletin.reason


def test_an_expired_alert_is_refused() -> None:
    late = datetime(2026, 9, 14, 12, 0, tzinfo=UTC)
    with pytest.raises(ValidationError) as caught:
        bulletin_from(_read("vn-storm-alert.xml"), now=late)
    assert (caught.value.field, caught.value.code) == ("info[1].expires", "expired")


def test_two_blocks_in_the_chosen_language_are_refused_rather_than_one_dropped() -> None:
    alert = read_alert(_storm(("<language>en-US</language>", "<language>vi-vn</language>")))
    with pytest.raises(ValidationError) as caught:
        bulletin_from(alert, now=NOW)
    assert (caught.value.field, caught.value.code) == ("info[1]", "ambiguous")


def test_an_alert_without_info_has_nothing_to_say() -> None:
    data = re.sub(r"<info>.*</info>", "", _load("vn-storm-alert.xml").decode(), flags=re.DOTALL)
    with pytest.raises(ValidationError) as caught:
        bulletin_from(read_alert(data), now=NOW)
    assert (caught.value.field, caught.value.code) == ("info", "missing")


@pytest.mark.parametrize("code", ["1601", "160120", "3", "16O12", "xã 16012", "١٦٠١٢"])
def test_an_administrative_code_that_is_not_2_or_5_digits_is_refused(code: str) -> None:
    alert = read_alert(_vi(("<value>14836</value>", f"<value>{code}</value>")))
    with pytest.raises(ValidationError) as caught:
        bulletin_from(alert, now=NOW)
    error = caught.value
    assert (error.field, error.code) == ("info[1].area[1].geocode[0].value", "bad_code")


def test_a_text_longer_than_loa_reads_is_refused() -> None:
    long = "Bà con chú ý. " * 2000
    for name in ("vn-storm-alert.xml", "vn-storm-cancel.xml"):
        data = (DATA / name).read_text().replace("<description>", f"<description>{long}")
        with pytest.raises(ValidationError) as caught:
            bulletin_from(read_alert(data), now=NOW)
        assert caught.value.code == "too_long" and caught.value.field.endswith("description")


def test_an_alert_with_only_audio_plays_the_audio() -> None:
    alert = read_alert(_vi(drop=("headline", "description", "instruction")))
    bulletin = bulletin_from(alert, now=NOW)
    assert bulletin.text == "" and bulletin.audio is not None
    assert bulletin.title == "Bão số 5"  # the event, when there is no headline


def test_an_alert_with_neither_text_nor_audio_is_refused() -> None:
    alert = read_alert(_vi(drop=("headline", "description", "instruction", "resource")))
    with pytest.raises(ValidationError) as caught:
        bulletin_from(alert, now=NOW)
    assert (caught.value.field, caught.value.code) == ("info[1].description", "missing")


# --- malformed and hostile documents -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"<alert",
        b"<a></b>",
        b"\xff\xfe\x00<",
        "<a>&x;</a>",
        b"<a>\x00</a>",
        "<a>\ud800</a>",
    ],
)
def test_what_is_not_xml_is_refused(data: bytes | str) -> None:
    _refused(data, "alert", "not_xml")


@pytest.mark.parametrize(
    "namespace",
    ["urn:oasis:names:tc:emergency:cap:1.1", "urn:oasis:names:tc:emergency:cap:1.0", ""],
)
def test_another_namespace_is_refused_naming_cap_1_2(namespace: str) -> None:
    declaration = f' xmlns="{namespace}"' if namespace else ""
    data = _storm(('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">', f"<alert{declaration}>"))
    error = _refused(data, "alert", "wrong_namespace")
    assert cap.NAMESPACE in error.message


def test_a_document_that_is_no_alert_is_refused() -> None:
    _refused(b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "alert", "not_cap")


@pytest.mark.parametrize(
    ("element", "field"),
    [
        ("identifier", "identifier"),
        ("sender", "sender"),
        ("sent", "sent"),
        ("status", "status"),
        ("msgType", "msgType"),
        ("scope", "scope"),
    ],
)
def test_a_missing_alert_element_is_named(element: str, field: str) -> None:
    text = _load("vn-storm-alert.xml").decode()
    text = re.sub(rf"<{element}>[^<]*</{element}>", "", text, count=1)
    _refused(text, field, "missing")


@pytest.mark.parametrize(
    ("element", "field"),
    [
        ("event", "info[1].event"),
        ("category", "info[1].category"),
        ("urgency", "info[1].urgency"),
        ("severity", "info[1].severity"),
        ("certainty", "info[1].certainty"),
        ("mimeType", "info[1].resource[0].mimeType"),
        ("resourceDesc", "info[1].resource[0].resourceDesc"),
        ("areaDesc", "info[1].area[0].areaDesc"),
        ("valueName", "info[1].area[0].geocode[0].valueName"),
    ],
)
def test_a_missing_info_element_is_named_by_its_path(element: str, field: str) -> None:
    _refused(_vi(drop=(element,)), field, "missing")


def test_a_missing_geocode_value_is_named_by_its_path() -> None:
    data = _vi(("<value>14836</value>", ""))
    _refused(data, "info[1].area[1].geocode[0].value", "missing")


def test_a_blank_element_counts_as_missing() -> None:
    _refused(_vi(("<event>Bão số 5</event>", "<event>  </event>")), "info[1].event", "missing")


def test_an_element_cap_allows_once_is_refused_twice() -> None:
    data = _storm(("<identifier>", "<identifier>X</identifier><identifier>"))
    _refused(data, "identifier", "duplicate")


@pytest.mark.parametrize(
    "sent",
    [
        "2026-09-14T07:00:00",  # no offset
        "2026-09-14 07:00:00+07:00",
        "2026-02-30T07:00:00+07:00",
        "2026-09-14T25:00:00+07:00",
        "2026-09-14T07:00:00+24:00",
        "14/09/2026 07:00",
        "yesterday",
    ],
)
def test_a_bad_date_is_refused(sent: str) -> None:
    data = _storm(("<sent>2026-09-14T07:00:00+07:00</sent>", f"<sent>{sent}</sent>"))
    _refused(data, "sent", "bad_date")


def test_a_date_outside_the_allowed_years_is_refused() -> None:
    data = _storm(
        ("<sent>2026-09-14T07:00:00+07:00</sent>", "<sent>1999-09-14T07:00:00+07:00</sent>")
    )
    _refused(data, "sent", "year_out_of_range")


def test_utc_written_as_z_or_minus_zero_reads_as_utc() -> None:
    for sent in ("2026-09-14T00:00:00Z", "2026-09-14T00:00:00-00:00"):
        data = _storm(("<sent>2026-09-14T07:00:00+07:00</sent>", f"<sent>{sent}</sent>"))
        assert read_alert(data).sent == STORM.sent


def test_an_expiry_before_the_alert_was_sent_is_refused() -> None:
    data = _vi(
        (
            "<expires>2026-09-14T19:00:00+07:00</expires>",
            "<expires>2026-09-14T06:00:00+07:00</expires>",
        )
    )
    _refused(data, "info[1].expires", "bad_date")


@pytest.mark.parametrize(
    ("references", "code"),
    [
        ("pctt@thanhhoa.example,TH-1", "bad_reference"),
        ("pctt@thanhhoa.example,,2026-09-14T07:00:00+07:00", "bad_reference"),
        ("a,b,c,d", "bad_reference"),
        ("pctt@thanhhoa.example,TH-1,tomorrow", "bad_date"),
    ],
)
def test_a_malformed_reference_is_refused(references: str, code: str) -> None:
    data = _storm(
        ("<scope>Public</scope>", f"<scope>Public</scope><references>{references}</references>")
    )
    _refused(data, "references[0]", code)


@pytest.mark.parametrize("identifier", ["TH 1", "TH,1", "TH&amp;1", "x" * 256])
def test_an_identifier_with_spaces_commas_or_too_long_is_refused(identifier: str) -> None:
    data = _storm(
        ("<identifier>TH-PCTT-2026-0914-01</identifier>", f"<identifier>{identifier}</identifier>")
    )
    _refused(data, "identifier", "too_long" if len(identifier) > 255 else "bad_value")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("<urgency>Immediate</urgency>", "<urgency>Soon</urgency>", "info[1].urgency"),
        ("<severity>Extreme</severity>", "<severity>Catastrophic</severity>", "info[1].severity"),
        ("<certainty>Likely</certainty>", "<certainty>Sure</certainty>", "info[1].certainty"),
        ("<category>Met</category>", "<category>Weather</category>", "info[1].category[0]"),
        ("<size>482133</size>", "<size>-1</size>", "info[1].resource[0].size"),
        ("<digest>2D7A", "<digest>not-a-digest", "info[1].resource[0].digest"),
    ],
)
def test_an_unknown_value_is_refused_naming_its_element(old: str, new: str, field: str) -> None:
    error = _refused(_vi((old, new)), field, "bad_value")
    assert "không" in error.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("<status>Actual</status>", "<status>Real</status>", "status"),
        ("<msgType>Alert</msgType>", "<msgType>Warning</msgType>", "msgType"),
        ("<scope>Public</scope>", "<scope>Everyone</scope>", "scope"),
    ],
)
def test_an_unknown_alert_value_is_refused(old: str, new: str, field: str) -> None:
    _refused(_storm((old, new)), field, "bad_value")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>"""

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE alert [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n'
        % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
        for level in range(1, 10)
    )
    + b"]>\n"
    + b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>'
)


@pytest.mark.parametrize(
    "data",
    [XXE, EXTERNAL_DTD, PARAMETER_ENTITY, BILLION_LAUGHS],
    ids=["xxe", "dtd", "param", "laughs"],
)
def test_doctypes_and_entities_are_refused_before_anything_is_expanded(data: bytes) -> None:
    started = time.monotonic()
    _refused(data, "alert", "forbidden_xml")
    assert time.monotonic() - started < 5.0  # an expansion would take far longer


def test_an_oversized_document_is_refused_before_it_is_parsed() -> None:
    padding = "Bão. " * (cap.MAX_BYTES // 5)
    data = _vi(("<description>", f"<description>{padding}"))
    error = _refused(data, "alert", "too_large")
    assert str(cap.MAX_BYTES) in error.message
    _refused(data.decode(), "alert", "too_large")


def test_a_document_just_under_the_bound_is_read() -> None:
    room = cap.MAX_BYTES - len(_load("vn-storm-alert.xml"))
    data = _vi(("<description>", "<description>" + " " * room))
    assert len(data) == cap.MAX_BYTES
    assert read_alert(data).identifier == STORM.identifier


@pytest.mark.parametrize("depth", [cap.MAX_DEPTH, 30_000])
def test_elements_nested_too_deep_are_refused(depth: int) -> None:
    nested = "<x>" * depth + "</x>" * depth
    data = _vi(("<event>Bão số 5</event>", f"<event>Bão số 5</event><extra>{nested}</extra>"))
    started = time.monotonic()
    _refused(data, "alert", "too_deep")
    assert time.monotonic() - started < 5.0


def test_unknown_elements_and_other_namespaces_are_passed_over() -> None:
    data = _storm(
        (
            "<scope>Public</scope>",
            "<scope>Public</scope><note>x</note>"
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
            "<ds:SignedInfo/></ds:Signature>",
        ),
    )
    assert read_alert(data) == _read("vn-storm-alert.xml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_damaged_alert_reads_or_is_refused_with_a_validation_error(data: st.DataObject) -> None:
    original = _load("vn-storm-alert.xml")
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, min(len(original), start + 40)))
    insert = data.draw(
        st.binary(max_size=12) | st.sampled_from([b"<", b">", b"&", b"</info>", b"<info>", b"]]>"])
    )
    damaged = original[:start] + insert + original[end:]
    try:
        alert = read_alert(damaged)
    except ValidationError as error:
        assert type(error) is ValidationError and error.field and error.code
        return
    try:
        bulletin_from(alert, now=NOW)
    except ValidationError as error:
        assert type(error) is ValidationError and error.field and error.code
