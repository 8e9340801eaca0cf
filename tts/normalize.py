"""Turn written Vietnamese administrative text into the words a reader would say.

Speech engines read digits, slashes and capitals badly: "07/CT-TTg" becomes letters and
"slash", "UBND" is spelled out, "21/3/2023" is read as a fraction and an all-caps heading letter
by letter. This module rewrites such text, with deterministic rules only, into plain spoken
Vietnamese: one block (paragraph, heading, list item) per line, each ending with punctuation.
"""

import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from .errors import TtsError
from .numbers import (
    read_digits,
    read_int,
    read_integer_string,
    read_month,
    read_number,
    read_ordinal,
    roman_value,
)
from .reflow import SENTENCE_END, Block, reflow

_LOGGER = logging.getLogger(__name__)

# Vietnamese names of letters, for lettered list items "a)", "b)".
_LETTER_NAMES = {
    "a": "a", "b": "bê", "c": "xê", "d": "dê", "đ": "đê", "e": "e", "g": "giê", "h": "hát",
    "i": "i", "k": "ca", "l": "e lờ", "m": "em mờ", "n": "en nờ", "o": "o", "p": "pê",
}  # fmt: skip

_UNITS = {
    "km²": "ki lô mét vuông", "km2": "ki lô mét vuông", "m²": "mét vuông", "m2": "mét vuông",
    "m³": "mét khối", "m3": "mét khối", "km": "ki lô mét", "kg": "ki lô gam", "ha": "héc ta",
    "cm": "xăng ti mét", "mm": "mi li mét", "m": "mét", "g": "gam", "l": "lít",
    "đ": "đồng", "VNĐ": "đồng", "VND": "đồng", "tr": "triệu",
}  # fmt: skip

# Document numbers: "07/CT-TTg", "09/2017/NĐ-CP", "/KH-UBND" (number left blank), "QH14".
_CODE_PART = r"[A-ZĐ][A-Za-zĐđ&]*[0-9]*"
_CODE = rf"{_CODE_PART}(?:[-–]{_CODE_PART})*"
_DOC_NUMBER = re.compile(rf"(?<![\w/])(?:([0-9]+)(?:/([0-9]{{4}}))?)?/({_CODE})(?!\w)")
# Party documents: "18-NQ/TW".
_PARTY_DOC_NUMBER = re.compile(rf"(?<![\w/])([0-9]+)-({_CODE_PART})/({_CODE_PART})(?!\w)")
_CODE_SPLIT = re.compile(r"([^0-9]+)([0-9]*)")

_DATE = re.compile(
    r"(?<![0-9/.,])((?i:ngày)\s+)?([0-9]{1,2})([/-])([0-9]{1,2})\3([0-9]{4})(?![0-9/])"
)
_NUMBER_OF_YEAR = re.compile(r"((?i:số)\s+)([0-9]+)/([0-9]{4})(?![0-9/])")
_MONTH_YEAR = re.compile(r"(?<![0-9/.,])((?i:tháng)\s+)?([0-9]{1,2})/([0-9]{4})(?![0-9/])")
_DAY_MONTH = re.compile(
    r"(?<![0-9/.,])((?i:ngày)\s+)?([0-9]{1,2})/([0-9]{1,2})(?![0-9/]|[.,][0-9])"
)
_OPERAND = r"[0-9]+(?:[.,:hH][0-9]+)*[hH]?"
_RANGE = re.compile(rf"(?<![\w/.,:–-])({_OPERAND})\s*[-–]\s*({_OPERAND})(?![\w/–-])")
_TIME_HM = re.compile(r"(?<![\w:.,])([0-9]{1,2})[hH:]([0-9]{2})(?:\s*phút|['p])?(?![\w:])")
_TIME_H = re.compile(r"(?<![\w:.,])([0-9]{1,2})[hH](?!\w)")
_PERCENT = re.compile(r"\s?%")
_UNIT_NAMES = "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
_UNIT = re.compile(rf"(?<=[0-9])\s?({_UNIT_NAMES})(?![\w²³])")
_PER_UNIT = re.compile(rf"(?<=\w)/({_UNIT_NAMES}|h)(?![\w²³])")  # "đ/m2", "km/h"
# Phone numbers: a leading 0 and groups of digits, 9 to 11 digits in all ("0912-345-678").
_PHONE = re.compile(r"(?<![\w.,/-])0[0-9]{1,3}(?:[-. ][0-9]{2,4}){1,3}(?![\w-]|[.,][0-9])")
_ROMAN_AFTER_WORD = re.compile(
    r"((?i:quý|khóa|khoá|phần|chương|mục|đợt|thế kỷ|thế kỉ|đại hội|thứ))\s+([IVXL]+)(?!\w)"
)
_ORDINAL = re.compile(r"((?i:thứ))\s+([0-9]+)(?![0-9/]|[.,][0-9])")
_MONTH = re.compile(r"((?i:tháng))\s+([0-9]{1,2})(?![0-9/]|[.,][0-9])")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:,[0-9]+)?")

_END_MARK = re.compile(r"\.?/\.")  # "./." closes Vietnamese official documents
_QUOTES = re.compile(r"[“”„\"«»‘’'`]")
_DASH_PAUSE = re.compile(r"\s+[-–—]+\s+")
_BRACKETS = re.compile(r"[()\[\]{}]")
_AMPERSAND = re.compile(r"\s*&\s*")
_SLASH_BETWEEN = re.compile(r"(?<=\w)\s*/\s*(?=\w)")
_NOISE = re.compile(r"[-–—_*#~^|<>=+\\/•]")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…])")
_PUNCT_BEFORE_PUNCT = re.compile(r"[,;:]\s*(?=[,.;:!?])")
_MISSING_SPACE = re.compile(r"([,;:!?])(?=[^\s\d,.;:!?…])")


def _load_tsv(name: str) -> dict[str, str]:
    """Read a KEY<TAB>value file from tts/data; '#' starts a comment line."""
    table: dict[str, str] = {}
    text = resources.files("tts").joinpath("data", name).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("\t")
        if not sep or not key.strip() or not value.strip():
            raise TtsError(f"tts/data/{name}:{number}: expected KEY<TAB>expansion, got {line!r}")
        table[unicodedata.normalize("NFC", key.strip())] = value.strip()
    return table


@functools.cache
def default_abbreviations() -> Mapping[str, str]:
    """The shipped abbreviation dictionary (tts/data/abbreviations.tsv), loaded once."""
    return MappingProxyType(_load_tsv("abbreviations.tsv"))


@functools.cache
def _document_codes() -> Mapping[str, str]:
    return MappingProxyType(_load_tsv("document_codes.tsv"))


@dataclass(frozen=True)
class _Rules:
    """Abbreviation tables and the matching regex for one set of user extensions."""

    abbreviations: Mapping[str, str]
    codes: Mapping[str, str]
    pattern: re.Pattern[str] | None

    def expand(self, match: re.Match[str]) -> str:
        return self.abbreviations[match.group(0)]

    def code_part(self, part: str) -> str:
        """Spoken form of one part of a document code: "TTg", "UBND", "QH14"."""
        match = _CODE_SPLIT.fullmatch(part)
        letters, digits = (match.group(1), match.group(2)) if match else (part, "")
        spoken = self.codes.get(letters) or self.abbreviations.get(letters) or letters
        return f"{spoken} {read_int(int(digits))}" if digits else spoken


@functools.lru_cache(maxsize=32)
def _rules(extra: tuple[tuple[str, str], ...]) -> _Rules:
    extra_map = {unicodedata.normalize("NFC", k): v for k, v in extra if k.strip() and v.strip()}
    abbreviations = {**default_abbreviations(), **extra_map}
    codes = {**_document_codes(), **extra_map}
    keys = sorted(abbreviations, key=len, reverse=True)
    pattern = (
        re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + r")(?!\w)") if keys else None
    )
    return _Rules(abbreviations=abbreviations, codes=codes, pattern=pattern)


def _doc_number(rules: _Rules, match: re.Match[str]) -> str:
    number, year, code = match.groups()
    spoken_code = " ".join(rules.code_part(p) for p in re.split("[-–]", code))
    if number is None:
        return spoken_code
    spoken = read_integer_string(number)
    if year:
        spoken += " năm " + read_int(int(year))
    return f"{spoken}, {spoken_code}"


def _party_doc_number(rules: _Rules, match: re.Match[str]) -> str:
    number, kind, issuer = match.groups()
    return f"{read_integer_string(number)}, {rules.code_part(kind)} {rules.code_part(issuer)}"


def _date(match: re.Match[str]) -> str:
    prefix, day, _, month, year = match.groups()
    d, m = int(day), int(month)
    if not (1 <= d <= 31 and 1 <= m <= 12):
        return match.group(0)
    return f"{prefix or 'ngày '}{read_int(d)} tháng {read_month(m)} năm {read_int(int(year))}"


def _number_of_year(match: re.Match[str]) -> str:
    prefix, number, year = match.groups()
    return f"{prefix}{read_integer_string(number)} năm {read_int(int(year))}"


def _month_year(match: re.Match[str]) -> str:
    prefix, month, year = match.groups()
    m = int(month)
    if not 1 <= m <= 12:
        return match.group(0)
    return f"{prefix or 'tháng '}{read_month(m)} năm {read_int(int(year))}"


def _day_month(match: re.Match[str]) -> str:
    prefix, day, month = match.groups()
    d, m = int(day), int(month)
    if not (1 <= d <= 31 and 1 <= m <= 12):
        return match.group(0)
    return f"{prefix or 'ngày '}{read_int(d)} tháng {read_month(m)}"


def _time_hm(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 24 or minute > 59:
        return match.group(0)
    return f"{read_int(hour)} giờ" + (f" {read_int(minute)} phút" if minute else "")


def _time_h(match: re.Match[str]) -> str:
    hour = int(match.group(1))
    return f"{read_int(hour)} giờ" if hour <= 24 else match.group(0)


def _roman_after_word(match: re.Match[str]) -> str:
    word, numeral = match.groups()
    value = roman_value(numeral)
    if value is None:
        return match.group(0)
    return f"{word} {read_ordinal(value) if word.lower() == 'thứ' else read_int(value)}"


def _ordinal(match: re.Match[str]) -> str:
    return f"{match.group(1)} {read_ordinal(int(match.group(2)))}"


def _month(match: re.Match[str]) -> str:
    m = int(match.group(2))
    return f"{match.group(1)} {read_month(m)}" if 1 <= m <= 12 else match.group(0)


def _unit(match: re.Match[str]) -> str:
    return " " + _UNITS[match.group(1)]


def _per_unit(match: re.Match[str]) -> str:
    return " trên " + _UNITS.get(match.group(1), "giờ")


def _phone(match: re.Match[str]) -> str:
    groups = re.split(r"[-. ]", match.group(0))
    if not 9 <= sum(map(len, groups)) <= 11:
        return match.group(0)
    return ", ".join(read_digits(g) for g in groups)


def _protected_spans(text: str, rules: _Rules) -> list[tuple[int, int]]:
    """Spans of abbreviations and document numbers, which keep their capitals in headings."""
    spans = [m.span() for m in _DOC_NUMBER.finditer(text)]
    spans += [m.span() for m in _PARTY_DOC_NUMBER.finditer(text)]
    if rules.pattern is not None:
        spans += [m.span() for m in rules.pattern.finditer(text)]
    return sorted(spans)


def _lower_heading(text: str, rules: _Rules) -> str:
    """Lower-case an all-caps heading except its abbreviations, so nothing is spelled out."""
    text = _ROMAN_AFTER_WORD.sub(_roman_after_word, text)
    out: list[str] = []
    position = 0
    for start, end in _protected_spans(text, rules):
        if start < position:
            continue
        out += [text[position:start].lower(), text[start:end]]
        position = end
    out.append(text[position:].lower())
    return "".join(out)


# Word-level rules after document numbers, in an order that matters: dates before phone numbers
# and ranges, ranges before times, and all of them before the generic number rule.
_STEPS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_DATE, _date),
    (_NUMBER_OF_YEAR, _number_of_year),
    (_MONTH_YEAR, _month_year),
    (_DAY_MONTH, _day_month),
    (_PHONE, _phone),
    (_RANGE, r"\1 đến \2"),
    (_TIME_HM, _time_hm),
    (_TIME_H, _time_h),
    (_DASH_PAUSE, ", "),
    (_PERCENT, " phần trăm"),
    (_UNIT, _unit),
    (_PER_UNIT, _per_unit),
    (_ROMAN_AFTER_WORD, _roman_after_word),
    (_ORDINAL, _ordinal),
    (_MONTH, _month),
)


def _speak_inline(text: str, rules: _Rules) -> str:
    """Apply the word-level rules to one block of running text."""
    text = _QUOTES.sub("", _END_MARK.sub(".", text))
    text = _DOC_NUMBER.sub(functools.partial(_doc_number, rules), text)
    text = _PARTY_DOC_NUMBER.sub(functools.partial(_party_doc_number, rules), text)
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    if rules.pattern is not None:
        text = rules.pattern.sub(rules.expand, text)
    text = _NUMBER.sub(lambda m: read_number(m.group(0)), text)
    return _clean_up(text)


def _clean_up(text: str) -> str:
    """Replace the symbols left over by words or pauses and tidy spaces and punctuation."""
    text = _BRACKETS.sub(", ", text)
    text = _AMPERSAND.sub(" và ", text)
    text = _SLASH_BETWEEN.sub(" trên ", text)
    text = _NOISE.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_BEFORE_PUNCT.sub("", text)
    text = _MISSING_SPACE.sub(r"\1 ", text)
    return text.strip(" ,;")


def _capitalize(text: str) -> str:
    for i, char in enumerate(text):
        if char.isalpha():
            return text[:i] + char.upper() + text[i + 1 :]
    return text


def _speak_marker(block: Block) -> str:
    """The spoken list marker: "Mục một" for "I.", "Một chấm hai" for "1.2.", "Bê" for "b)"."""
    if block.kind == "roman":
        return f"Mục {read_int(roman_value(block.marker) or 0)}"
    if block.kind == "numbered":
        return _capitalize(" chấm ".join(read_int(int(p)) for p in block.marker.split(".")))
    if block.kind == "lettered":
        return _capitalize(_LETTER_NAMES.get(block.marker.lower(), block.marker.lower()))
    return ""


def _speak_block(block: Block, rules: _Rules) -> str:
    body = block.text
    if block.heading:
        body = _lower_heading(body, rules)
    body = _capitalize(_speak_inline(body, rules))
    if not any(char.isalnum() for char in body):  # only punctuation left: nothing to say
        body = ""
    if body and body[-1] == ",":
        body = body[:-1]
    if body and body[-1] not in SENTENCE_END:
        body += "."
    marker = _speak_marker(block)
    return f"{marker}. {body}".strip() if marker else body


def normalize(raw: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
    """Return the spoken form of `raw`: one sentence-terminated block per line.

    `extra_abbreviations` (ABBR -> expansion) extends or overrides tts/data/abbreviations.tsv,
    e.g. with the names of a commune's villages or organisations.
    """
    rules = _rules(tuple(sorted((extra_abbreviations or {}).items())))
    text = unicodedata.normalize("NFC", raw)
    spoken = [_speak_block(block, rules) for block in reflow(text, rules.abbreviations)]
    return "\n".join(line for line in spoken if line)
