"""Notice templates (mẫu thông báo): ready texts a village head fills in and sends at once.

The templates live in `broadcast/desks/data/notice_templates.json` (bão, lũ, cháy, mất điện, tiêm
chủng, họp thôn, sạt lở, nắng nóng, …). A template's text holds `{key}` placeholders, one per
declared field; a part in square brackets, `[ tại {khu_vuc}]`, is dropped when a placeholder in
it is left empty. A required field may stand anywhere; an optional one only inside brackets, so
an empty optional field never leaves a gap in the sentence. The file is checked when loaded.

Filling is pure: `fill(template_id, values)` returns the text, or raises a ValidationError
naming the first required field left empty (its key is the form field, its label in the
message). Values are cleaned (spaces collapsed, control characters and a trailing full stop
removed, at most MAX_VALUE_CHARS characters) and inserted literally, never interpreted.

Titles and field labels are UI: `extract_messages` hands them to Babel (web/babel.cfg), so the
English catalog translates them. The texts are not: they are read aloud to villagers, in
Vietnamese, whatever the language of the page.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from broadcast.errors import N_, Msgid, ValidationError
from wire.protocol import Priority

_LOGGER = logging.getLogger(__name__)

DATA_FILE = Path(__file__).parent / "data" / "notice_templates.json"
MAX_VALUE_CHARS = 200
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class TemplateField:
    key: str  # the form field, e.g. "thoi_gian"
    label: str  # what the person reads, e.g. "Thời gian họp"
    required: bool
    example: str = ""


@dataclass(frozen=True)
class NoticeTemplate:
    id: str
    title: str
    priority: Priority  # what the form suggests; the person may change it
    text: str
    fields: tuple[TemplateField, ...]

    def field(self, key: str) -> TemplateField | None:
        return next((field for field in self.fields if field.key == key), None)

    def preview(self, translate: Callable[[str], str] = str) -> str:
        """The text with each placeholder shown as its label: «Thời gian họp» (a label in the
        page's language with `translate`, e.g. the request's gettext)."""
        text = self.text.replace("[", "").replace("]", "")
        return _PLACEHOLDER.sub(lambda m: f"«{translate(self._label(m.group(1)))}»", text)

    def _label(self, key: str) -> str:
        field = self.field(key)
        return field.label if field is not None else key


class TemplateFileError(ValueError):
    """The templates file is malformed (an operator's mistake, reported with its place)."""


def _clean_value(value: object) -> str:
    if value is None:
        return ""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(value))
    text = " ".join(text.split())[:MAX_VALUE_CHARS].strip()
    return text.rstrip(".;,").rstrip()


def fill(template: NoticeTemplate | str, values: Mapping[str, object]) -> str:
    """The template's text with the values in; ValidationError(key, …) for a missing one."""
    chosen = get_template(template) if isinstance(template, str) else template
    clean = {field.key: _clean_value(values.get(field.key)) for field in chosen.fields}
    for field in chosen.fields:
        if field.required and not clean[field.key]:
            raise ValidationError(
                field.key,
                N_("Chưa điền “%(label)s” của mẫu “%(title)s”"),
                "required",
                label=Msgid(field.label),
                title=Msgid(chosen.title),
            )

    def optional_part(match: re.Match[str]) -> str:
        part = match.group(1)
        keys = _PLACEHOLDER.findall(part)
        return part if all(clean[key] for key in keys) else ""

    text = _OPTIONAL.sub(optional_part, chosen.text)
    text = _PLACEHOLDER.sub(lambda m: clean[m.group(1)], text)
    return " ".join(text.split())


def templates() -> tuple[NoticeTemplate, ...]:
    """The templates of the packaged data file, in its order (loaded once)."""
    return _packaged()


def get_template(template_id: object) -> NoticeTemplate:
    for template in templates():
        if template.id == template_id:
            return template
    raise ValidationError(
        "template", N_("không có mẫu thông báo “%(id)s”"), "unknown_choice", id=template_id
    )


@lru_cache(maxsize=1)
def _packaged() -> tuple[NoticeTemplate, ...]:
    return load(DATA_FILE)


def load(path: Path) -> tuple[NoticeTemplate, ...]:
    """Read and check a templates file; TemplateFileError says what is wrong where."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateFileError(f"{path}: cannot read the templates: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
        raise TemplateFileError(f"{path}: expected an object with a 'templates' list")
    found: list[NoticeTemplate] = []
    for index, item in enumerate(data["templates"]):
        template = _parse(item, f"{path}: template {index + 1}")
        if any(other.id == template.id for other in found):
            raise TemplateFileError(f"{path}: template id {template.id!r} appears twice")
        found.append(template)
    _LOGGER.debug("%d notice templates from %s", len(found), path)
    return tuple(found)


def _text(item: Mapping[str, object], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise TemplateFileError(f"{where}: '{name}' must be a non-empty text")
    return value.strip()


def _parse(item: object, where: str) -> NoticeTemplate:
    if not isinstance(item, dict):
        raise TemplateFileError(f"{where}: expected an object")
    template_id = _text(item, "id", where)
    where = f"{where} ({template_id})"
    if not _KEY.fullmatch(template_id):
        raise TemplateFileError(f"{where}: the id must be lowercase letters, digits and _")
    try:
        priority = Priority(item.get("priority", Priority.EMERGENCY.value))
    except ValueError as exc:
        raise TemplateFileError(f"{where}: unknown priority {item.get('priority')!r}") from exc
    raw_fields = item.get("fields")
    if not isinstance(raw_fields, list):
        raise TemplateFileError(f"{where}: 'fields' must be a list")
    fields: list[TemplateField] = []
    for raw in raw_fields:
        if not isinstance(raw, dict):
            raise TemplateFileError(f"{where}: each field must be an object")
        key = _text(raw, "key", where)
        if not _KEY.fullmatch(key) or any(field.key == key for field in fields):
            raise TemplateFileError(f"{where}: bad or repeated field key {key!r}")
        fields.append(
            TemplateField(
                key=key,
                label=_text(raw, "label", where),
                required=bool(raw.get("required", True)),
                example=str(raw.get("example", "")),
            )
        )
    template = NoticeTemplate(
        id=template_id,
        title=_text(item, "title", where),
        priority=priority,
        text=_text(item, "text", where),
        fields=tuple(fields),
    )
    _check_text(template, where)
    return template


def _check_text(template: NoticeTemplate, where: str) -> None:
    text = template.text
    if text.count("[") != text.count("]") or _OPTIONAL.sub("", text).count("[") > 0:
        raise TemplateFileError(f"{where}: unbalanced or nested [ ] in the text")
    declared = {field.key: field for field in template.fields}
    outside = _OPTIONAL.sub("", text)
    used = set(_PLACEHOLDER.findall(text))
    for key in used:
        if key not in declared:
            raise TemplateFileError(f"{where}: placeholder {{{key}}} has no field")
    for key, field in declared.items():
        if key not in used:
            raise TemplateFileError(f"{where}: field {key!r} is not used in the text")
        if not field.required and key in _PLACEHOLDER.findall(outside):
            raise TemplateFileError(
                f"{where}: optional field {key!r} must stand inside [ ] in the text"
            )
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise TemplateFileError(f"{where}: stray brace in the text")


def extract_messages(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extractor of a templates file (web/babel.cfg): each title and field label, with
    its line, for the English catalog; the texts stay out (they are broadcast in Vietnamese)."""
    text = fileobj.read().decode("utf-8")
    lines = text.splitlines()
    for template in json.loads(text).get("templates", []):
        title = template.get("title", "")
        messages = [(title, "title")]
        for field in template.get("fields", []):
            messages.append((field.get("label", ""), f"label in “{title}”"))
        for message, what in messages:
            quoted = json.dumps(message, ensure_ascii=False)
            line = next((n for n, row in enumerate(lines, 1) if quoted in row), 0)
            yield line, None, message, [f"notice template {what}"]
