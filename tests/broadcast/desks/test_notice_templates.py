"""Notice templates: the packaged file loads, every template fills, blanks are required or
optional as declared, values are inserted literally, and malformed files are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broadcast.desks import notice_templates
from broadcast.desks.notice_templates import TemplateFileError, fill, get_template, load, templates
from broadcast.errors import ValidationError
from wire.protocol import Priority


def test_the_packaged_templates_cover_the_common_notices() -> None:
    ids = {template.id for template in templates()}
    assert {"bao", "lu", "chay", "mat_dien", "tiem_chung", "hop_thon", "sat_lo", "nang_nong"} <= ids
    assert get_template("chay").priority is Priority.EMERGENCY
    assert get_template("hop_thon").priority is Priority.PRIORITY
    assert notice_templates.DATA_FILE.name == "notice_templates.json"


@pytest.mark.parametrize("template", templates(), ids=lambda t: t.id)
def test_every_template_fills_with_its_examples(template: notice_templates.NoticeTemplate) -> None:
    assert all(field.example for field in template.fields), "each blank shows an example"
    full = fill(template, {field.key: field.example for field in template.fields})
    required_only = fill(
        template, {field.key: field.example for field in template.fields if field.required}
    )
    for text in (full, required_only):
        assert not any(mark in text for mark in "{}[]"), text
        assert "  " not in text and " ." not in text and " ," not in text, text
    for field in template.fields:
        assert field.example.rstrip(".") in full
        if not field.required:
            assert field.example not in required_only
    assert "«" in template.preview() and "[" not in template.preview()


def test_optional_parts_are_dropped_and_values_cleaned() -> None:
    text = fill(
        "mat_dien",
        {"tu": " 7  giờ ", "den": "9 giờ\x07", "ngay": "14/9.", "ly_do": "sửa {khu_vuc} [x]"},
    )
    assert text == (
        "Thông báo lịch cắt điện: điện lực sẽ tạm ngừng cấp điện từ 7 giờ đến 9 giờ ngày 14/9"
        " để sửa {khu_vuc} [x]. Đề nghị bà con chủ động sắp xếp sinh hoạt và sản xuất."
    )
    long_value = fill("chay", {"dia_diem": "x" * 500})
    assert "x" * notice_templates.MAX_VALUE_CHARS in long_value
    assert "x" * (notice_templates.MAX_VALUE_CHARS + 1) not in long_value


def test_a_missing_required_blank_names_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        fill("hop_thon", {"thoi_gian": "19 giờ", "dia_diem": "  "})
    assert caught.value.field == "dia_diem"
    assert caught.value.message == "Chưa điền “Địa điểm” của mẫu “Họp thôn”"
    with pytest.raises(ValidationError) as unknown:
        get_template("dong-dat")
    assert unknown.value.field == "template"


def _write(path: Path, template: dict[str, Any]) -> Path:
    base = {
        "id": "thu",
        "title": "Thử",
        "priority": "emergency",
        "text": "Họp lúc {gio}[ tại {noi}].",
        "fields": [
            {"key": "gio", "label": "Giờ", "required": True},
            {"key": "noi", "label": "Nơi", "required": False},
        ],
    }
    path.write_text(json.dumps({"templates": [{**base, **template}]}), encoding="utf-8")
    return path


def test_a_well_formed_file_loads(tmp_path: Path) -> None:
    [template] = load(_write(tmp_path / "t.json", {}))
    assert fill(template, {"gio": "8 giờ"}) == "Họp lúc 8 giờ."
    assert fill(template, {"gio": "8 giờ", "noi": "đình làng"}) == "Họp lúc 8 giờ tại đình làng."


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"text": "Họp lúc {gio} tại {noi}."}, "must stand inside [ ]"),
        ({"text": "Họp lúc {gio}[ tại {noi}] {khac}."}, "has no field"),
        ({"text": "Họp lúc {gio}."}, "not used"),
        ({"text": "Họp lúc {gio}[ tại {noi}."}, "unbalanced"),
        ({"text": "Họp lúc {gio}[ tại [{noi}]]."}, "unbalanced or nested"),
        ({"priority": "loud"}, "unknown priority"),
        ({"id": "Thu Nghiem"}, "lowercase"),
        ({"fields": "gio"}, "'fields' must be a list"),
        ({"title": ""}, "'title' must be a non-empty text"),
    ],
)
def test_malformed_files_are_refused(
    tmp_path: Path, change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(TemplateFileError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        load(_write(tmp_path / "t.json", change))


def test_duplicate_ids_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.json", {})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["templates"].append(data["templates"][0])
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TemplateFileError, match="appears twice"):
        load(path)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(TemplateFileError, match="cannot read"):
        load(broken)


def test_titles_and_labels_are_extracted_for_translation_but_not_the_texts() -> None:
    """What web/babel.cfg hands to the English catalog: every title and field label, with the
    line it stands on; never a text (it is broadcast in Vietnamese)."""
    with notice_templates.DATA_FILE.open("rb") as source:
        found = list(notice_templates.extract_messages(source, None, None, {}))
    messages = {message for _line, _func, message, _comments in found}
    packaged = notice_templates.templates()
    wanted = {t.title for t in packaged} | {f.label for t in packaged for f in t.fields}
    assert messages == wanted
    assert not messages & {t.text for t in packaged}
    lines = notice_templates.DATA_FILE.read_text(encoding="utf-8").splitlines()
    for line, _func, message, _comments in found:
        assert f'"{message}"' in lines[line - 1], (line, message)
    storm = notice_templates.get_template("bao")
    assert "«WHEN»" in storm.preview(lambda label: "WHEN" if label.startswith("Thời") else label)
