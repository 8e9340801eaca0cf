"""Phrases of commune notices whose reading depends on the words around them.

"CT UBND xã" is the chairman, while "CT" alone is a directive; "BĐ2" is flood alarm level two
and "tờ BĐ số 12" a map sheet; "ĐT 741" is a provincial road and "ĐT 0912 345 678" a telephone;
"LUC" after "đất" is paddy land and "lúc" anywhere else. Spelled out, "QL.1A", "Km 15+300" or
"đất ONT" mean nothing to a listener. This pass reads them from their context, with the words in
tts/data (in_context.tsv, roads.tsv, land_uses.tsv), before the abbreviation and number rules
see them. Every pattern is compiled once (`_patterns`).
"""

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .lexicon import InContext, in_context, land_uses, roads
from .numbers import quantity, read_code_number, read_int, roman_value

_LOGGER = logging.getLogger(__name__)

# "BĐ2", "BĐ III", "báo động số 2", "BĐ I-II", "BĐ1-BĐ2": a flood alarm level or two.
_LEVEL = r"(?:[0-9]|I{1,3}|IV)(?![\w])"
ALARM = re.compile(
    rf"(?<!\w)(BĐ|(?i:báo động)(?:\s+số)?)\s?\.?\s?({_LEVEL})(?:\s*[-–]\s*(?:BĐ\s?)?({_LEVEL}))?"
    r"(?![.,]?[0-9])"
)
# "cấp III-IV", "cấp độ I - II": a range of roman levels (a range of digits is read later).
ROMAN_RANGE = re.compile(r"(?<!\w)((?i:cấp)(?:\s+độ)?)\s+([IVX]+)\s*[-–]\s*([IVX]+)(?!\w)")
# "+0,5m", "-0,3m": a water level above or below a mark, said with its sign.
LEVEL_SIGN = re.compile(r"(?<![\w.,+\-−])(?<![0-9]\s)([+\-−])(?=[0-9]+(?:,[0-9]+)?\s?c?m(?!\w))")
# "H=12,3m": the water level of a gauge.
GAUGE = re.compile(r"(?<!\w)H\s*=\s*(?=[+\-−]?[0-9]+(?:,[0-9]+)?\s?m(?!\w))")
_WATER_LEVEL = re.compile(r"(?i:mực nước)[^.;:!?\n]{0,40}$")
# "Km 15+300", "Km15": a chainage along a road (kilometre, plus metres).
CHAINAGE = re.compile(
    r"(?<![\w.,])(?<![0-9]\s)(Km|KM|km)\s?([0-9]{1,4})(?:\s?\+\s?([0-9]{1,3}))?(?![0-9]|[.,][0-9])"
)
# "cúm A/H1N1", "A(H5N1)": the subtype of a flu virus belongs to its "A", with no pause.
FLU = re.compile(r"(?<!\w)A\s?(?:/\s?|\(\s?)(H[0-9]{1,2}N[0-9]{1,2})(?:\s?\))?(?!\w)")
# "NPK 16-16-8", "NPK 5-10-3": a fertilizer's grade, three shares said apart, never a range.
NPK = re.compile(r"(?<!\w)(NPK)[\s.:]*([0-9]{1,2})-([0-9]{1,2})-([0-9]{1,2})(?![\w-]|[.,][0-9])")
_SIGN = {"+": "cộng", "-": "âm", "−": "âm"}
_NUMBER_NEXT = re.compile(r"\s+[+\-−]?[0-9]")
_CLAUSE = re.compile(r"[^.;!?\n]*$")
_PHONE_GROUP = re.compile(r"[ .-]?[0-9]")
_EMERGENCY = frozenset({"111", "112", "113", "114", "115"})
_CODE_JOINER = re.compile(r"\s*([+,])\s*")


def _variants(words: tuple[str, ...]) -> list[str]:
    """The words as written, and with a capital first letter at the start of a sentence."""
    found = dict.fromkeys(words)
    for word in words:
        found.setdefault(word[:1].upper() + word[1:])
    return sorted(found, key=len, reverse=True)


@dataclass(frozen=True)
class _Context:
    """One in_context.tsv entry, its words compiled: checked only where its abbreviation is."""

    spoken: str
    after: re.Pattern[str] | None  # matched right after the abbreviation
    before: re.Pattern[str] | None  # searched at the end of the text before it
    reach: int  # how far back a word before it may start

    def holds(self, text: str, start: int, end: int) -> bool:
        if self.after is not None and self.after.match(text, end):
            return True
        if self.before is None:
            return False
        return self.before.search(text, max(0, start - self.reach), start) is not None


def _context(entry: InContext) -> _Context:
    after = before = None
    if entry.after:
        words = "|".join(map(re.escape, _variants(entry.after)))
        after = re.compile(rf"(?:\s*[,/]\s*|\s+và\s+|\s+)(?:{words})(?!\w)")
    if entry.before:
        words = "|".join(map(re.escape, _variants(entry.before)))
        before = re.compile(rf"(?<!\w)(?:{words}) $")
    reach = max((len(w) for w in entry.before), default=0) + 1
    return _Context(entry.spoken, after, before, reach)


@dataclass(frozen=True)
class _Patterns:
    in_context: re.Pattern[str]
    contexts: Mapping[str, _Context]
    road: re.Pattern[str]
    roads: Mapping[str, str]
    land: re.Pattern[str]
    land_in_brackets: re.Pattern[str]
    land_uses: Mapping[str, str]


@functools.cache
def _patterns() -> _Patterns:
    entries = in_context()
    road_names = roads()
    prefixes = "|".join(sorted(map(re.escape, road_names), key=len, reverse=True))
    uses = land_uses()
    code = "(?:" + "|".join(sorted(uses, key=len, reverse=True)) + r")(?!\w)"
    return _Patterns(
        in_context=re.compile(
            r"(?<!\w)(?:"
            + "|".join(sorted((re.escape(e.abbreviation) for e in entries), key=len, reverse=True))
            + r")(?!\w)"
        ),
        contexts={e.abbreviation: _context(e) for e in entries},
        # "QL1A", "QL.14", "ĐT 741", "ĐH.02": the prefix, then a number of up to three digits.
        road=re.compile(
            rf"(?<![\w/])({prefixes})(?:\s?\.\s?|\s)?([0-9]{{1,3}})([A-Z])?(?![\w]|[.,/][0-9])"
        ),
        roads=road_names,
        land=re.compile(
            r"(?<!\w)((?:[Đđ]ất|(?i:mục đích sử dụng)(?:\s+đất)?|(?i:loại đất))\s*:?\s*)"
            rf"({code}(?:\s*[+,]\s*{code})*)"
        ),
        land_in_brackets=re.compile(rf"\s*\(\s*({code})\s*\)"),
        land_uses=uses,
    )


def _in_context(patterns: _Patterns, match: re.Match[str]) -> str:
    context = patterns.contexts[match.group(0)]
    return context.spoken if context.holds(match.string, *match.span()) else match.group(0)


def _level(numeral: str) -> str:
    value = int(numeral) if numeral.isdigit() else roman_value(numeral)
    return read_int(value or 0)


def _alarm(match: re.Match[str]) -> str:
    word, low, high = match.groups()
    spoken = "báo động" if word == "BĐ" else word
    spoken += " " + _level(low)
    if high:
        spoken += f" đến {_level(high)}"
    # "trên BĐ2 0,25m": a pause keeps the level apart from the height ("hai, không phẩy ...").
    return spoken + "," if _NUMBER_NEXT.match(match.string, match.end()) else spoken


def _roman_range(match: re.Match[str]) -> str:
    word, low, high = match.groups()
    low_value, high_value = roman_value(low), roman_value(high)
    if low_value is None or high_value is None:
        return match.group(0)
    return f"{word} {read_int(low_value)} đến {read_int(high_value)}"


def _gauge(match: re.Match[str]) -> str:
    """A gauge's "H=" is said "mực nước", unless the clause just said it."""
    before = match.string[max(0, match.start() - 60) : match.start()]
    return "" if _WATER_LEVEL.search(before) else "mực nước "


def _chainage(match: re.Match[str]) -> str:
    unit, kilometres, metres = match.groups()
    if metres is None and unit != "Km":  # "15 km", "KM" (a sale): not a chainage
        return match.group(0)
    spoken = f"ki lô mét {read_int(int(kilometres))}"
    if metres is not None:
        spoken += f" cộng {read_int(int(metres))}"
    return quantity(spoken)


def _road(patterns: _Patterns, match: re.Match[str]) -> str:
    prefix, number, letter = match.groups()
    # "ĐT" is also "điện thoại": a phone has a leading zero or more digit groups.
    if prefix == "ĐT" and (
        number.startswith("0")
        or number in _EMERGENCY
        or _PHONE_GROUP.match(match.string, match.end())
    ):
        return match.group(0)
    name = patterns.roads[prefix]
    before = " ".join(match.string[max(0, match.start() - 20) : match.start()].split()).casefold()
    if before.endswith(name):  # "đường huyện ĐH 02", "tỉnh lộ TL 512": said once
        name = ""
    elif before.endswith("đường") and name.startswith("đường "):  # "đường ĐT 506"
        name = name.removeprefix("đường ")
    spoken = f"{name} {read_code_number(number)}".strip()
    return f"{spoken} {letter}" if letter else spoken


def _land(patterns: _Patterns, match: re.Match[str]) -> str:
    lead, codes = match.groups()
    parts = _CODE_JOINER.split(codes)
    said_land = lead.rstrip().casefold().endswith("đất") and ":" not in lead
    spoken = []
    for i, part in enumerate(parts):
        if part == "+":
            spoken.append(" và ")
        elif part == ",":
            spoken.append(", ")
        else:
            name = patterns.land_uses[part]
            spoken.append(name if i == 0 and said_land else f"đất {name}")
    return lead + "".join(spoken)


def _land_in_brackets(patterns: _Patterns, match: re.Match[str]) -> str:
    """A code in brackets after land words: dropped when they named it, read when they did not."""
    before = _CLAUSE.search(match.string[max(0, match.start() - 60) : match.start()])
    clause = " ".join((before.group(0) if before else "").split()).casefold()
    if "đất" not in clause:
        return match.group(0)
    name = patterns.land_uses[match.group(1)]
    return "" if clause.endswith(f"đất {name}".casefold()) else f" (đất {name})"


def substitute(text: str) -> str:
    """Read the context-dependent phrases of `text`: titles and organisations, alarm levels,
    water levels, roads and chainages, land-use codes, flu subtypes, fertilizer grades."""
    patterns = _patterns()
    text = FLU.sub(r"A \1", text)
    text = NPK.sub(
        lambda m: f"{m.group(1)} " + ", ".join(read_int(int(g)) for g in m.groups()[1:]), text
    )
    text = CHAINAGE.sub(_chainage, text)
    text = patterns.road.sub(functools.partial(_road, patterns), text)
    text = ALARM.sub(_alarm, text)
    text = ROMAN_RANGE.sub(_roman_range, text)
    text = GAUGE.sub(_gauge, text)
    text = LEVEL_SIGN.sub(lambda m: _SIGN[m.group(1)] + " ", text)
    text = patterns.land_in_brackets.sub(functools.partial(_land_in_brackets, patterns), text)
    text = patterns.land.sub(functools.partial(_land, patterns), text)
    return patterns.in_context.sub(functools.partial(_in_context, patterns), text)
