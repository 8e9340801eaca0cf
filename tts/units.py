"""Quantities with units: "150km", "25°C", "85,5%", "1.500.000đ", "6 tấn/ha", "60km/h".

A voice spells "km" and reads "/" as a slash. Units come from tts/data/units.tsv; a rate after a
unit or a counting word ("đồng/kg", "đồng/người/tháng") is said with "một", as people say prices
and yields ("năm mươi nghìn đồng một ki lô gam"), and a temperature below zero with "âm".
"""

import functools
import logging
import re
from collections.abc import Mapping

from .letters import is_syllable
from .numbers import QUANTITY_END, QUANTITY_START, quantity, read_number

_LOGGER = logging.getLogger(__name__)

NUMBER = r"[0-9]+(?:\.[0-9]{3})*(?:,[0-9]+)?"
# Words that a rate is counted in: "đồng/người/tháng", "kg/sào", "lượt/ngày".
_PER_WORDS = (
    "tháng", "năm", "ngày", "tuần", "giờ", "phút", "giây", "người", "hộ", "khẩu", "lượt", "con",
    "cái", "chiếc", "suất", "xuất", "buổi", "lần", "ca", "sào", "mẫu", "công", "tấn", "tạ",
    "yến", "cân", "lít", "bao", "thùng", "hecta", "héc ta", "học sinh", "trẻ", "lớp", "cháu",
    "hội viên", "đoàn viên", "lao động", "vụ", "kỳ", "quý", "chỉ", "lượng", "m2", "m²", "m3", "m³",
)  # fmt: skip
MINUS = re.compile(rf"(?<![\w\d.,])[-−–](?=\s?{NUMBER}\s?(?:°|ºC|oC\b|độ\b))")
MULTIPLY = re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)")
# "mg/1 lít", "mm/24h": a rate over a number is said "trên".
PER_NUMBER = re.compile(rf"(?<=[^\W\d_]|{QUANTITY_END})\s*/\s*(?=\d|{QUANTITY_START})")
EQUALS = re.compile(r"\s*=\s*(?=[\w\d])")
_COMPARISON = {
    "~": "khoảng",
    ">": "trên",
    "<": "dưới",
    "≥": "từ",
    "≤": "không quá",
    "±": "cộng trừ",
}
COMPARISON = re.compile(r"(?<![\w\d])([~><≥≤±])\s*(?=\d)")


class Units:
    """Unit readings for one units table."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = table
        names = "|".join(sorted(map(re.escape, table), key=len, reverse=True))
        self.with_number = re.compile(rf"(?<![\d.,])({NUMBER})\s?({names})(?![^\W_]|[²³])")
        per = sorted({*table, *_PER_WORDS}, key=len, reverse=True)
        self.rate = re.compile(
            rf"(?<=[^\W\d_]|{QUANTITY_END})/((?:{'|'.join(map(re.escape, per))}))(?![^\W_]|[²³])"
        )
        # Unit symbols that cannot be taken for a word may also stand alone ("đơn vị km/h").
        alone = [u for u in table if len(u) > 1 and not is_syllable(u) and u not in ("tr", "oC")]
        alone_names = "|".join(sorted(map(re.escape, alone), key=len, reverse=True))
        self.alone = re.compile(rf"(?<![\w/])({alone_names})(?![\w/²³])")

    def _with_number(self, match: re.Match[str]) -> str:
        return quantity(f"{read_number(match.group(1))} {self._table[match.group(2)]}")

    def _rate(self, match: re.Match[str]) -> str:
        unit = match.group(1)
        return f" một {self._table.get(unit, unit)}"

    def _alone(self, match: re.Match[str]) -> str:
        return self._table[match.group(1)]

    def substitute(self, text: str) -> str:
        """Read numbers with units, rates and lone unit symbols in `text`."""
        text = MINUS.sub("âm ", text)
        text = MULTIPLY.sub(" nhân ", text)
        text = COMPARISON.sub(lambda m: _COMPARISON[m.group(1)] + " ", text)
        text = EQUALS.sub(" bằng ", text)
        text = self.with_number.sub(self._with_number, text)
        text = self.rate.sub(self._rate, text)
        text = PER_NUMBER.sub(" trên ", text)
        return self.alone.sub(self._alone, text)


@functools.lru_cache(maxsize=8)
def units_for(table: tuple[tuple[str, str], ...]) -> Units:
    """Units for a table given as sorted items (hashable, so it is compiled once)."""
    return Units(dict(table))
