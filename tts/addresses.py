"""House numbers and alleys: "số nhà 12/3", "ngõ 45/12", "hẻm 7/2A", "SN 15", "H. Hoằng Hóa".

Read as a date, "số nhà 12/3" would become "the twelfth of March". In an address the slash
separates a house from the alley it stands in, and people say it "trên": "số nhà mười hai trên
ba". "SN" is "số nhà" before a house number and "sinh năm" before a year of birth ("SN 1960"),
and an address may shorten its levels to an initial: ", H. Hoằng Hóa, T. Thanh Hóa".
"""

import logging
import re

from .numbers import quantity, read_code_number

_LOGGER = logging.getLogger(__name__)

_PART = r"[0-9]{1,4}[A-Z]?"
# "số nhà 12/3", "nhà số 5/2", "ngõ 45/12/3", "ngách 12A/4", "hẻm 7", "kiệt 12/5", "SN 12/3"
# and "số 12/3" when a street word follows ("số 12/3 ngõ 45", "số 7/2 đường Lê Lợi").
HOUSE = re.compile(
    rf"(?<!\w)((?i:số nhà|nhà số|ngõ|ngách|hẻm|kiệt|ngõ số|hẻm số)\s+|SN\s*)"
    rf"({_PART}(?:/{_PART})*)(?![\w/]|[.,][0-9])"
    rf"|(?<!\w)((?i:số)\s+)({_PART}(?:/{_PART})+)(?=\s*,?\s+(?i:ngõ|ngách|hẻm|kiệt|đường|phố)\b)"
)
_YEAR_OF_BIRTH = re.compile(r"(?:19|20)[0-9]{2}")
# "xã Hoằng Hợp, H. Hoằng Hóa, T. Thanh Hóa": an address's levels by their initial, after a comma.
_LEVELS = {"X": "xã", "H": "huyện", "T": "tỉnh", "P": "phường", "Q": "quận", "TX": "thị xã",
           "TT": "thị trấn", "Tx": "thị xã", "Tt": "thị trấn"}  # fmt: skip
LEVEL_INITIAL = re.compile(r"(?<=,)(\s*)(TX|TT|Tx|Tt|[XHTPQ])\.\s?(?=[A-ZĐ]\w*[^\W\d_A-ZĐ])")


# "Q.1", "P.5": a district or a ward of a city by its number.
NUMBERED_LEVEL = re.compile(r"(?<![\w.])([QP])\.\s?([0-9]{1,2})(?![\w]|[.,/][0-9])")


def _part(part: str) -> str:
    """A house number as written, then its letter: "12A" -> "mười hai A"."""
    if part[-1].isalpha():
        return f"{read_code_number(part[:-1])} {part[-1]}"
    return read_code_number(part)


def _house(match: re.Match[str]) -> str:
    word = match.group(1) or match.group(3)
    number = match.group(2) or match.group(4)
    if word.strip() == "SN":
        if _YEAR_OF_BIRTH.fullmatch(number):  # "SN 1960": a year of birth, read by the dates
            return f"sinh năm {number}"
        word = "số nhà "
    return word + quantity(" trên ".join(_part(p) for p in number.split("/")))


def substitute(text: str) -> str:
    """Read house numbers, alleys and abbreviated levels of `text` before the dates can take
    them."""
    text = LEVEL_INITIAL.sub(lambda m: f"{m.group(1)}{_LEVELS[m.group(2)]} ", text)
    text = NUMBERED_LEVEL.sub(lambda m: f"{_LEVELS[m.group(1)]} {m.group(2)}", text)
    return HOUSE.sub(_house, text)
