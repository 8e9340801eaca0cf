"""How written numbers are grouped, and how readings next to each other join.

Before reading: thousands may be grouped the English way ("1,105,650") or with spaces ("1 500
000 đồng"), and are regrouped with dots, as the number rules expect. After reading (every number
wrapped in quantity marks, see tts.numbers.quantity): a dash between two quantities is "đến"
("100-200mm", "18 tháng - 5 tuổi"), except in a series ("NPK 5-10-3"), a score ("thắng 3-1": "ba
một") and a position ("Vĩ Bắc - 107,5 độ"), and a number spelled out again in brackets ("02 (hai)
chiếc") is said once. The marks are removed at the end.
"""

import logging
import re

from .numbers import QUANTITY_END, QUANTITY_START, quantity

_LOGGER = logging.getLogger(__name__)

# "1,105,650": thousands grouped with commas, English style (a decimal has one comma only).
_COMMA_THOUSANDS = re.compile(r"(?<![\d,.])[0-9]{1,3}(?:,[0-9]{3}){2,}(?![\d,]|\.[0-9])")
# "1 500 000 đồng": thousands grouped with spaces, before a sum's or a count's word.
_SPACE_THOUSANDS = re.compile(
    r"(?<![\d.,])[1-9][0-9]{0,2}(?: [0-9]{3}){2,}"
    r"(?=\s?(?:đồng|đ|VNĐ|VND|USD|người|hộ|khẩu|con|tấn|kg)(?!\w))"
)
# "1.500.000,00 đồng": a sum's zero decimals are not said.
_ZERO_CENTS = re.compile(r"(?<=[0-9]),0+(?=\s?(?:đồng|đ|VNĐ|VND)(?!\w))")
_RANGE = re.compile(rf"{QUANTITY_END}\s*[-–—~]\s*{QUANTITY_START}")
# "18 tháng - 5 tuổi", "7 giờ - 11 giờ", "tháng 9 - tháng 12": a measure word beside the dash.
_MEASURE = r"(?:giờ|phút|giây|ngày|tuần|tháng|năm|tuổi|nghìn|ngàn|triệu|tỷ|đồng|lần|cấp)"
_RANGE_BY_WORD = re.compile(
    rf"(?<={QUANTITY_END})(\s+{_MEASURE})\s*[-–—]\s*(?={QUANTITY_START})"
    rf"|(?<={QUANTITY_END})\s*[-–—]\s*(?=(?i:{_MEASURE}|ngày|mùng|mồng)\s+{QUANTITY_START})"
)
# Three numbers or more joined by dashes are a series, not a range: "NPK 5-10-3".
_INSIDE = rf"[^{QUANTITY_START}{QUANTITY_END}]"
_ONE = rf"{QUANTITY_START}{_INSIDE}*{QUANTITY_END}"
_SERIES = re.compile(rf"{_ONE}(?:[-–]{_ONE}){{2,}}")
_SERIES_DASH = re.compile(rf"(?<={QUANTITY_END})[-–](?={QUANTITY_START})")
_SCORE = re.compile(
    rf"(?<!\w)(?i:thắng|thua|hòa|hoà|tỷ số|tỉ số)\s*:?\s*{QUANTITY_START}{_INSIDE}*$"
)
# "02 (hai) chiếc", "2.000.000 đồng (Hai triệu đồng chẵn)": the words repeat the number.
_RESTATED = re.compile(
    rf"{QUANTITY_START}([^{QUANTITY_START}{QUANTITY_END}]+){QUANTITY_END}((?:\s+[^\W\d_]+){{0,2}}?)"
    rf"\s*\(\s*([^()\d{QUANTITY_START}{QUANTITY_END}\n]{{1,160}}?)\s*\)"
)
_WEEKDAY_SAID = re.compile(rf"(?<!\w)(?:thứ (?:hai|ba|tư|năm|sáu|bảy)|chủ nhật){QUANTITY_END}?$")
_MARKS = re.compile(f"[{QUANTITY_START}{QUANTITY_END}]")
_WORD = re.compile(r"[^\W\d_]+")
# Number words written more than one way: "một trăm lẻ năm", "hai mươi bốn", "năm ngàn".
_SAME_NUMBER_WORD = {"lẻ": "linh", "tư": "bốn", "lăm": "năm", "ngàn": "nghìn", "mốt": "một"}


def regroup_commas(text: str) -> str:
    """Regroup "1,105,650" as "1.105.650" and drop the zero decimals of "1.500.000,00 đồng",
    before the phones and dates see the commas."""
    text = _COMMA_THOUSANDS.sub(lambda m: m.group(0).replace(",", "."), text)
    return _ZERO_CENTS.sub("", text)


def regroup_spaces(text: str) -> str:
    """Regroup "1 500 000 đồng" as "1.500.000 đồng", once the phones took their digit groups."""
    return _SPACE_THOUSANDS.sub(lambda m: m.group(0).replace(" ", "."), text)


def _words_key(text: str) -> str:
    """The number words of `text`, each in one spelling, without a final "chẵn" ("even")."""
    words = [_SAME_NUMBER_WORD.get(w, w) for w in _WORD.findall(text.casefold())]
    return " ".join(words[:-1] if words[-1:] == ["chẵn"] else words)


def _restated(match: re.Match[str]) -> str:
    """A number spelled out again in brackets, as contracts and decisions do, is said once."""
    spoken, after, words = match.groups()
    key = _words_key(words)
    if key in (_words_key(spoken), _words_key(spoken + after)):
        return quantity(spoken) + after
    return match.group(0)


def _range(match: re.Match[str]) -> str:
    """A dash between two quantities is "đến", except between the two halves of a position, a
    weekday and its date ("thứ 3 - 15/10") and in a score ("thắng 3-1": "ba một")."""
    before = match.string[max(0, match.start() - 40) : match.start()].casefold()
    after = match.string[match.end() : match.end() + 12].casefold()
    if before.endswith(("vĩ bắc", "vĩ nam")):
        return ", "
    if _WEEKDAY_SAID.search(before) and not after.startswith(("thứ", "chủ nhật")):
        return ", "
    return " " if _SCORE.search(before) else " đến "


def join(text: str) -> str:
    """Join the quantities of `text` (series, ranges, scores, restatements) and drop the marks."""
    text = _RESTATED.sub(_restated, text)
    text = _SERIES.sub(lambda m: _SERIES_DASH.sub(" ", m.group(0)), text)
    text = _RANGE_BY_WORD.sub(lambda m: f"{m.group(1) or ''} đến ", text)
    return _MARKS.sub(" ", _RANGE.sub(_range, text))
