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
    "nhà",
    "em", "liều", "mũi", "gói", "bộ", "chuyến", "xe", "thẻ", "đợt", "cây", "gốc", "hồ sơ",
    "nhân khẩu", "phòng", "hội", "thôn", "xã", "đơn vị", "bình", "lọ", "hũ", "chai", "lứa",
)  # fmt: skip
# After a sum of money any word is what the sum is counted in: "50.000đ/liều", "đồng/hộ nghèo".
MONEY_RATE = re.compile(rf"(?<=đồng)({QUANTITY_END}?)/(?=[^\W\d_])")
# A minus sign is glued to its temperature ("-2°C", "− 3 độ"); "18 - 20 độ" is a range.
MINUS = re.compile(rf"(?<![\w\d.,])(?<![0-9]\s)(?:[-–]|−\s?)(?={NUMBER}\s?(?:°|ºC|oC\b|độ\b))")
# "60 x 40", "1,5x2m", "5m x 20m": dimensions, "nhân".
MULTIPLY = re.compile(
    r"(?:(?<=\d)|(?<=\d%)|(?<=\d[a-zA-Z²³])|(?<=\d[a-zA-Z][a-zA-Z0-9²³]))\s*[x×]\s*(?=\d)"
)
# "1tr5", "2tr25": millions and the hundreds of thousands after them, as people write prices.
MILLIONS = re.compile(r"(?<![\w.,])([0-9]{1,3})tr([0-9]{1,3})(?!\w|[.,][0-9])")
# "tăng x2": so many times as much.
TIMES = re.compile(r"(?<![\w.,])[x×]\s?(?=[0-9]+(?![\w.,]|[.,][0-9]))")
# "1m60": a person's height, metres then centimetres.
HEIGHT = re.compile(r"(?<![\w.,])([12])m([0-9]{2})(?![\w.,])")
# "256 tàu/1.024 lao động", "1.200 hộ/4.500 khẩu": two counts of the same people, "với".
WITH_COUNT = re.compile(
    rf"(?<!\w)((?i:hộ|tàu|thuyền|tàu thuyền|phương tiện|chiếc|lồng bè|lồng|bè))\s*/\s*"
    rf"(?=[0-9]|{QUANTITY_START})"
)
# "mg/1 lít", "mm/24h": a rate over a number is said "trên".
PER_NUMBER = re.compile(rf"(?<=[^\W\d_]|{QUANTITY_END})\s*/\s*(?=\d|{QUANTITY_START})")
# "1.000m3/h": time symbols that are no unit of their own after a number.
_PER_SYMBOLS = {"h": "giờ"}
# "đạt 85%/tổng đàn", "95%/KH": a share of a whole, said without a pause.
PERCENT_OF = re.compile(
    r"(?<=%)\s*/\s*(?=(?:tổng|kế hoạch|KH|chỉ tiêu|dân số|diện tích|số)(?!\w))", re.IGNORECASE
)
EQUALS = re.compile(r"\s*=\s*(?=[\w\d])")
_COMPARISON = {
    "~": "khoảng",
    ">": "trên",
    "<": "dưới",
    "≥": "từ",
    "≤": "không quá",
    "±": "cộng trừ",
    "≈": "khoảng",
}
COMPARISON = re.compile(r"(?<![\w\d])([~><≥≤±≈])\s*(?=\d)")
# "khoảng ~50", "gần ~2 tỷ": the sign says the word just written; said once.
_SAID_BEFORE = re.compile(r"(?<!\w)(?i:khoảng|chừng|xấp xỉ|gần|ước|ước tính|dự kiến)\s*$")


def _comparison(match: re.Match[str]) -> str:
    sign = match.group(1)
    before = match.string[max(0, match.start() - 12) : match.start()]
    if sign in "~≈" and _SAID_BEFORE.search(before):
        return ""
    return _COMPARISON[sign] + " "


def _millions(match: re.Match[str]) -> str:
    millions, rest = match.groups()
    thousands = int(rest.ljust(3, "0"))
    return quantity(f"{read_number(millions)} triệu {read_number(str(thousands))} nghìn")


def _height(match: re.Match[str]) -> str:
    return quantity(f"{read_number(match.group(1))} mét {read_number(match.group(2))}")


class Units:
    """Unit readings for one units table."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = table
        names = "|".join(sorted(map(re.escape, table), key=len, reverse=True))
        self.with_number = re.compile(rf"(?<![\d.,])({NUMBER})\s?({names})(?![^\W_]|[²³])")
        # "12.5%", "3.5m": an English decimal point before a unit (a section number has no unit).
        self.dot_decimal = re.compile(
            rf"(?<![\d.,])([0-9]+)\.([0-9]{{1,2}})"
            rf"(?=\s?(?:{names}|triệu|tỷ|nghìn|ngàn)(?![^\W_]|[²³]))"
        )
        per = sorted({*table, *_PER_WORDS, *_PER_SYMBOLS}, key=len, reverse=True)
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
        return f" một {self._table.get(unit) or _PER_SYMBOLS.get(unit, unit)}"

    def _alone(self, match: re.Match[str]) -> str:
        return self._table[match.group(1)]

    def substitute(self, text: str) -> str:
        """Read numbers with units, rates and lone unit symbols in `text`."""
        text = MINUS.sub("âm ", text)
        text = HEIGHT.sub(_height, text)
        text = MILLIONS.sub(_millions, text)
        text = MULTIPLY.sub(" nhân ", text)
        text = TIMES.sub("gấp ", text)
        text = COMPARISON.sub(_comparison, text)
        text = EQUALS.sub(" bằng ", text)
        text = PERCENT_OF.sub(" ", text)
        text = self.dot_decimal.sub(r"\1,\2", text)
        text = self.with_number.sub(self._with_number, text)
        text = self.rate.sub(self._rate, text)
        text = MONEY_RATE.sub(r"\1 một ", text)
        text = WITH_COUNT.sub(r"\1 với ", text)
        text = PER_NUMBER.sub(" trên ", text)
        return self.alone.sub(self._alone, text)


@functools.lru_cache(maxsize=8)
def units_for(table: tuple[tuple[str, str], ...]) -> Units:
    """Units for a table given as sorted items (hashable, so it is compiled once)."""
    return Units(dict(table))
