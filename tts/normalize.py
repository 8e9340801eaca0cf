"""Turn written Vietnamese administrative text into the words a reader would say.

Speech engines read digits, slashes and capitals badly: "07/CT-TTg" becomes letters and
"slash", "UBND" is spelled out or said in English, "21/3/2023" is read as a fraction and an
all-caps heading letter by letter. This module rewrites such text, with deterministic rules and
the dictionaries in tts/data only, into plain spoken Vietnamese: one block (paragraph, heading,
list item) per line, each ending with punctuation, with no digit and no word that espeak-ng's
Vietnamese voice would hand to its English rules.

The rules run in an order that matters (see `_speak_inline`): product names (tts/data/names.tsv:
"AVAC ASF LIVE") and numbers with hidden digits ("0237.3852.xxx") first, addresses and document
numbers before anything reads their digits, then the phrases read from their context (tts.phrases:
"CT UBND", "BĐ2", "QL.1A", "đất ONT"), house numbers (tts.addresses: "số nhà 12/3") and number
plates (tts.plates: "36A-123.45") before the abbreviations, phone numbers before dates, dates before
fractions, all numbers before the dash between two of them is said "đến", and the words last.
"""

import functools
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from . import addresses, dates, links, phones, phrases, plates, quantities
from .codes import DocumentNumbers
from .letters import (
    LETTER_NAMES,
    VOWELS,
    has_vietnamese_marks,
    is_syllable,
    respell_foreign,
    spell,
    split_marked,
    strip_tones,
)
from .lexicon import (
    default_abbreviations,
    document_codes,
    document_types,
    loanwords,
    names,
    units,
)
from .numbers import quantity, read_digits, read_int, read_number, roman_value
from .reflow import SENTENCE_END, Block, reflow
from .units import Units, units_for

_LOGGER = logging.getLogger(__name__)

__all__ = ["default_abbreviations", "normalize"]

# Every line break a pasted document may hold, page breaks included, becomes "\n".
_NEWLINES = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\ufe00-\ufe0f\ufeff]")
_SPACE_LIKE = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t]")
_VULGAR = {"½": "một phần hai", "⅓": "một phần ba", "¼": "một phần tư", "¾": "ba phần tư",
           "⅔": "hai phần ba"}  # fmt: skip
_VULGAR_FRACTION = re.compile("[" + "".join(_VULGAR) + "]")

_END_MARK = re.compile(r"\.?/\.")  # "./." closes Vietnamese official documents
_APOSTROPHE_IN_WORD = re.compile(r"(?<=[^\W\d_])['’](?=[^\W\d_])")  # "H'Mông", "Ea H'leo"
_QUOTES = re.compile(r"[“”„\"«»‘’'`]")
# Letters glued to digits ("QL1A", "H5N1", "F0", "12A") are read apart; "6H30" stays a time.
_LETTERS_DIGITS = re.compile(
    r"(?<=[A-ZĐ])(?<![0-9][HG])(?=[0-9])|(?<=[0-9])(?=[A-ZĐ])(?![HG](?:[0-9]|\b))"
)
# "PC06", "A01", "TB-03": a code's zero-padded number is said digit by digit ("pê xê không sáu").
_CODE_ZERO = re.compile(r"(?<!\w)([A-ZĐ]{1,4})-?(0[0-9]{1,3})(?!\w|[.,][0-9])")
# "ĐV108", "TBR225", "CT07": letters glued to a number name a code (a rice variety, a form), not
# the abbreviation they would be alone ("ĐV" is "đảng viên"): they are spelled. Places numbered
# this way ("TDP12") keep their name.
_GLUED_CODE = re.compile(r"(?<!\w)([A-ZĐ]{2,4})(?=[0-9]{2,}(?![0-9]))")
_NUMBERED_PLACES = frozenset({"TDP", "KP", "KDC", "KCN", "CCN"})
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:,[0-9]+)?")
# "Dịch ASF (dịch tả lợn châu Phi)": once the abbreviation is read, the brackets say it again.
_IN_BRACKETS = re.compile(r"\s*\(\s*([^()\n]{3,80}?)\s*\)")
_SENTENCE_START = re.compile(r"([.!?…]\s+)([^\W\d_])")
_WORD = re.compile(r"[^\W\d_]+")
_ROMAN_LETTERS = frozenset("IVXLC")
_RESPELL = {"f": "ph", "j": "gi", "w": "u", "z": "d", "F": "Ph", "J": "Gi", "W": "U", "Z": "D"}
_NOT_VIETNAMESE_LETTER = re.compile("[fjwzFJWZ]")


def _symbol_class() -> str:
    """A character class of the symbol blocks: emoji, dingbats, arrows, boxes, private use."""
    blocks = ((0xA1, 0xFF), (0x2000, 0x2BFF), (0x2E00, 0x2E7F), (0x3000, 0x303F),
              (0xE000, 0xF8FF), (0x1F000, 0x1FAFF))  # fmt: skip
    ranges: list[list[int]] = []
    for low, high in blocks:
        for code in range(low, high + 1):
            if unicodedata.category(chr(code)) not in ("So", "Sm", "Sk", "Co", "Cn"):
                continue
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


# Symbols left once every rule has read its own ("°", "%", "±"): emoji, stars, boxes, arrows.
_SYMBOLS = re.compile(f"[{_symbol_class()}]+")
_DASH_PAUSE = re.compile(r"\s+[-–—]+\s+|\s*[–—]+\s*")
_BRACKETS = re.compile(r"[()\[\]{}]")
_AMPERSAND = re.compile(r"\s*&\s*")
_SLASH_BETWEEN = re.compile(r"(?<=\w)\s*/\s*(?=\w)")
_NOISE = re.compile(r"[-–—_*#~^|<>=+\\/•@$§¤©®™°º]")
_ARROWS = re.compile(r"\s*[→⇒➔➜➝➞⟶]+\s*")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…])")
_PUNCT_BEFORE_PUNCT = re.compile(r"[,;:]\s*(?=[,.;:!?])")
_REPEATED_PUNCT = re.compile(r"([,;:!?])\1+")
_MISSING_SPACE = re.compile(r"([,;:!?])(?=[^\s\d,.;:!?…])|(\.)(?=[^\W\d_])")
_LEADING_PUNCT = re.compile(r"^[\s,.;:!?…]+")


@dataclass(frozen=True)
class _Rules:
    """The dictionaries and compiled patterns for one set of user abbreviations."""

    abbreviations: Mapping[str, str]
    pattern: re.Pattern[str] | None
    in_brackets: re.Pattern[str]
    documents: DocumentNumbers
    units: Units
    loanwords: Mapping[str, str]
    acronyms: frozenset[str]  # all-caps abbreviations in lower case, for "ubndxa@..." addresses
    names: Mapping[str, str]  # vaccine and product names (names.tsv), keyed in lower case
    name_pattern: re.Pattern[str]

    def say_name(self, match: re.Match[str]) -> str:
        return _match_case(match.group(0), self.names[" ".join(match.group(0).lower().split())])

    def expand(self, match: re.Match[str]) -> str:
        return self.abbreviations[match.group(0)]

    def drop_repeated(self, match: re.Match[str]) -> str:
        """Drop "(ATNĐ)" after "Áp thấp nhiệt đới": the abbreviation would repeat the words."""
        expansion = self.abbreviations[match.group(1)].casefold()
        before = " ".join(match.string[max(0, match.start() - 80) : match.start()].split())
        return "" if before.casefold().endswith(expansion) else match.group(0)


@functools.lru_cache(maxsize=32)
def _rules(extra: tuple[tuple[str, str], ...]) -> _Rules:
    extra_map = {
        unicodedata.normalize("NFC", k.strip()): v.strip()
        for k, v in extra
        if k.strip() and v.strip()
    }
    abbreviations = {**default_abbreviations(), **extra_map}
    keys = sorted(abbreviations, key=len, reverse=True)
    pattern = (
        re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + r")(?!\w)") if keys else None
    )
    alternatives = "|".join(map(re.escape, keys)) or "(?!)"
    return _Rules(
        abbreviations=abbreviations,
        pattern=pattern,
        in_brackets=re.compile(rf"\s*\(\s*({alternatives})\s*\)"),
        documents=DocumentNumbers(
            document_types(), {**document_codes(), **extra_map}, abbreviations
        ),
        units=units_for(tuple(sorted(units().items()))),
        loanwords=loanwords(),
        acronyms=frozenset(
            k.lower() for k in abbreviations if k.isalpha() and k.isupper() and k.isascii()
        ),
        names=names(),
        name_pattern=_name_pattern(names()),
    )


def _name_pattern(table: Mapping[str, str]) -> re.Pattern[str]:
    """Whole names in any case, the longest first, any run of spaces between their words."""
    keys = sorted(table, key=len, reverse=True)
    alternatives = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in keys) or "(?!)"
    return re.compile(rf"(?i)(?<![\w-])(?:{alternatives})(?![\w-])")


def _prepare(raw: str) -> str:
    """NFC, one kind of line break and space, ASCII digits, no control characters."""
    text = unicodedata.normalize("NFC", _NEWLINES.sub("\n", raw))
    text = _CONTROL.sub("", _SPACE_LIKE.sub(" ", text))
    if not text.isascii():
        text = "".join(
            str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in text
        )
        text = _VULGAR_FRACTION.sub(lambda m: f" {_VULGAR[m.group(0)]} ", text)
    return text


def _match_case(word: str, spoken: str) -> str:
    """Keep a capital first letter ("Zalo" -> "Da lô") so sentences still start with one."""
    if word[:1].isupper() and spoken:
        return spoken[0].upper() + spoken[1:]
    return spoken


@functools.lru_cache(maxsize=8192)
def _speak_word(word: str, loanword: str | None) -> str:
    """One word of letters as it should reach the voice (see tts.letters)."""
    if loanword is not None:
        return _match_case(word, loanword)
    if len(word) == 1:
        lowered = word.lower()
        return word if strip_tones(lowered) in VOWELS else LETTER_NAMES.get(lowered, word)
    if word.isupper():
        if set(word) <= _ROMAN_LETTERS and (value := roman_value(word)) is not None:
            return read_int(value)
        if is_syllable(word):  # typed without diacritics ("THONG BAO HOP"), it gets respelled
            lowered = word.lower()
            return respell_foreign(lowered) if lowered.isascii() else lowered
        return spell(word)
    if has_vietnamese_marks(word):
        # Vietnamese writes no f, j, w, z; espeak takes a word with one for English ("fê").
        word = _NOT_VIETNAMESE_LETTER.sub(lambda m: _RESPELL[m.group(0)], word)
        if is_syllable(word):
            return word
        pieces = split_marked(word)  # syllables run together are said one by one
        return " ".join(pieces) if pieces else word
    plain = _strip_foreign_marks(word)
    if not plain.isascii():
        return word  # another script: left to the voice
    return _match_case(word, respell_foreign(plain))


def _strip_foreign_marks(word: str) -> str:
    """Drop the marks Vietnamese does not write: "Müller" becomes "Muller"."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def _speak_words(text: str, rules: _Rules) -> str:
    """Make every word readable as Vietnamese: loanwords, capitals, acronyms, single letters."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        return _speak_word(word, rules.loanwords.get(word.lower()))

    return _WORD.sub(replace, text)


def _drop_said_twice(match: re.Match[str]) -> str:
    """Brackets repeating the words just before them are dropped."""
    said = " ".join(match.group(1).split()).casefold()
    before = " ".join(match.string[max(0, match.start() - 100) : match.start()].split())
    before = before.casefold()
    whole = before.endswith(said) and not before[-len(said) - 1 : -len(said)].isalnum()
    return "" if whole else match.group(0)


def _code_letters(letters: str) -> str:
    """The letters of a code, spelled, unless they name a numbered place ("TDP")."""
    return letters if letters in _NUMBERED_PLACES else spell(letters)


def _speak_inline(text: str, rules: _Rules) -> str:
    """Apply the word-level rules to one block of running text."""
    text = dates.BLANK_DATE.sub(" tháng năm ", text)
    text = _END_MARK.sub(".", text)
    text = _QUOTES.sub("", _APOSTROPHE_IN_WORD.sub("", text))
    text = links.substitute(text, rules.loanwords, rules.acronyms)
    text = rules.name_pattern.sub(rules.say_name, text)
    text = quantities.regroup_commas(text)
    text = phones.drop_masks(text)
    text = rules.documents.substitute(text)
    text = phrases.substitute(text)
    text = addresses.substitute(text)
    text = plates.substitute(text)
    text = dates.ORDINAL_RANGE.sub(dates.ordinal_range, text)
    text = dates.WEEKDAY_RANGE.sub(dates.weekday_range, text)
    text = dates.WEEKDAY_SHORT.sub(dates.weekday_short, text)
    text = _CODE_ZERO.sub(
        lambda m: f"{_code_letters(m.group(1))} {quantity(read_digits(m.group(2)))}", text
    )
    text = _GLUED_CODE.sub(lambda m: _code_letters(m.group(1)) + " ", text)
    text = _LETTERS_DIGITS.sub(" ", text)
    if rules.pattern is not None:
        text = rules.in_brackets.sub(rules.drop_repeated, text)
        text = rules.pattern.sub(rules.expand, text)
        text = _IN_BRACKETS.sub(_drop_said_twice, text)
    text = phones.substitute(text)
    text = quantities.regroup_spaces(text)
    text = dates.SCHOOL_YEAR.sub(dates.school_year, text)
    text = dates.SECOND_DAY_WORD.sub(r"\1", text)
    text = dates.WEEKDAY_THEN_DAY.sub(r"\1, ", text)
    text = dates.DATE_RANGE.sub(dates.date_range, text)
    text = dates.DATE.sub(dates.date, text)
    text = dates.SHORT_YEAR_DATE.sub(dates.short_year_date, text)
    text = dates.DAY_DASH_MONTH.sub(dates.day_dash_month, text)
    text = dates.QUARTER_YEAR.sub(dates.quarter_year, text)
    text = dates.NUMBER_OF_YEAR.sub(dates.number_of_year, text)
    text = dates.MONTH_YEAR.sub(dates.month_year, text)
    text = dates.DECIMAL_RATIO.sub(dates.decimal_ratio, text)
    text = dates.COUNT_RATIO.sub(r"\1 trên \2", text)
    text = dates.SLASH_PAIR.sub(dates.slash_pair, text)
    text = dates.COLON_RATIO.sub(dates.colon_ratio, text)
    text = dates.TIME.sub(dates.time_of_day, text)
    text = dates.HOUR_G.sub(dates.hour_g, text)
    text = dates.HOUR.sub(dates.hour, text)
    text = dates.ZERO_MINUTES.sub("", text)
    text = rules.units.substitute(text)
    text = dates.ROMAN_AFTER_WORD.sub(dates.roman_after_word, text)
    text = dates.ORDINAL.sub(dates.ordinal, text)
    text = dates.MONTH.sub(dates.month, text)
    text = _NUMBER.sub(lambda m: quantity(read_number(m.group(0))), text)
    text = quantities.join(text)
    text = _speak_words(text, rules)
    return _clean_up(text)


def _clean_up(text: str) -> str:
    """Replace the symbols left over by words or pauses and tidy spaces and punctuation."""
    text = _DASH_PAUSE.sub(", ", text)
    text = _BRACKETS.sub(", ", text)
    text = _AMPERSAND.sub(" và ", text)
    text = _SLASH_BETWEEN.sub(", ", text)
    text = _NOISE.sub(" ", text)
    if not text.isascii():
        text = _ARROWS.sub(", ", text)
        text = _SYMBOLS.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_BEFORE_PUNCT.sub("", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _MISSING_SPACE.sub(lambda m: (m.group(1) or m.group(2)) + " ", text)
    text = _LEADING_PUNCT.sub("", text)
    return text.strip(" ,;")


def _capitalize(text: str) -> str:
    """Upper-case the first letter, and each first letter after a full stop inside the text."""
    text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
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
        return _capitalize(LETTER_NAMES.get(block.marker.lower(), block.marker.lower()))
    return ""


def _speak_block(block: Block, rules: _Rules) -> str:
    body = _capitalize(_speak_inline(block.text, rules))
    if not any(char.isalnum() for char in body):  # only punctuation left: nothing to say
        body = ""
    if body and body[-1] == ",":
        body = body[:-1]
    if body and body[-1] not in SENTENCE_END:
        body += "."
    marker = _speak_marker(block)
    return f"{marker}. {body}".strip() if marker else body


def has_speech(raw: str) -> bool:
    """Whether `raw` has anything to say: False for a text of only symbols, punctuation,
    control or unassigned characters ("~", "!!!", "\\u0007"), which normalizes to nothing and
    which `Synthesizer` would refuse. Callers check it before accepting a text for later."""
    return isinstance(raw, str) and bool(normalize(raw).strip())


def normalize(raw: str, extra_abbreviations: Mapping[str, str] | None = None) -> str:
    """Return the spoken form of `raw`: one sentence-terminated block per line.

    `extra_abbreviations` (ABBR -> expansion) extends or overrides tts/data/abbreviations.tsv,
    e.g. with the names of a commune's villages or organisations.
    """
    rules = _rules(tuple(sorted((extra_abbreviations or {}).items())))
    text = _prepare(raw)
    spoken = [_speak_block(block, rules) for block in reflow(text, rules.abbreviations)]
    return "\n".join(line for line in spoken if line)
