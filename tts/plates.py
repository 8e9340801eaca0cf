"""Number plates of vehicles and boats: "36A-123.45", "29B1-234.56", "TH-90123-TS".

Read as numbers, "36A-123.45" becomes "thirty-six A, a hundred and twenty-three point forty-five"
or a range ("đến"). Police and traffic notices read a plate so that a listener can write it
down: the province digits, the series letters, then the number digit by digit in its groups:
"ba sáu A, một hai ba, bốn năm"; a fishing boat's "TH-90123-TS" "tê hát, chín không một hai ba,
tê ét".
"""

import logging
import re

from .letters import spell
from .numbers import quantity, read_digits

_LOGGER = logging.getLogger(__name__)

# Province (two digits), series (one or two capitals and an optional digit), then the number:
# "123.45", "12345" or "1234". A hyphen or a dot in the number tells it is a plate; without
# either, a word naming a plate must come just before ("biển số 37C 12345").
PLATE = re.compile(
    r"(?<![\w.,/-])([0-9]{2})\s?-?\s?([A-ZĐ]{1,2})([0-9]?)"
    r"(?:\s?[-–]\s?|\s)([0-9]{3}\.[0-9]{2}|[0-9]{4,5})(?![\w]|[.,][0-9])"
)
# Fishing boats: "TH-90123-TS", "QNg 91234 TS": the province, the number, "TS" (thủy sản).
BOAT = re.compile(r"(?<![\w-])([A-ZĐ][A-Za-zĐđ]{1,2})\s?-?\s?([0-9]{4,5})\s?-?\s?(TS)(?!\w)")
_NAMED = re.compile(r"(?i:biển số|biển kiểm soát|BKS|BS|xe)\s*:?\s*$")


def _plate(match: re.Match[str]) -> str:
    province, series, series_digit, number = match.groups()
    written = match.group(0)
    marked = "." in number or "-" in written or "–" in written
    if not marked and not _NAMED.search(match.string, max(0, match.start() - 20), match.start()):
        return written
    words = [read_digits(province), spell(series)]
    if series_digit:
        words.append(read_digits(series_digit))
    groups = number.split(".") if "." in number else [number[:3], number[3:]]
    spoken = " ".join(words) + ", " + ", ".join(read_digits(g) for g in groups if g)
    return quantity(spoken)


def _boat(match: re.Match[str]) -> str:
    province, number, fishery = match.groups()
    return quantity(f"{spell(province)}, {read_digits(number)}, {spell(fishery)}")


def substitute(text: str) -> str:
    """Read the number plates of `text` before letters and digits are pulled apart."""
    text = BOAT.sub(_boat, text)
    return PLATE.sub(_plate, text)
