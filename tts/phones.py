"""Phone numbers, emergency numbers and identifiers, read digit by digit in their groups.

"0912 345 678" is "không chín một hai, ba bốn năm, sáu bảy tám": a listener writes it down group
by group. "113", "114", "115" (police, fire, ambulance) are said "một một ba" when the text
calls them ("gọi 113", "113/114/115"), but "113 hộ" stays a hundred and thirteen households.
An account or identity card number is read digit by digit too. A number with hidden digits
("0237.3852.xxx", "1234***789") is read as far as it is shown (`drop_masks`).
"""

import logging
import re

from .numbers import read_digits

_LOGGER = logging.getLogger(__name__)

_GROUP = r"[0-9]{2,}"
_DIGITS = rf"[0-9]{{3,}}(?:[ .-]{_GROUP})*"
# Words after which a number is one to dial or to copy, not a quantity.
_CALL_WORDS = (
    r"gọi|gọi điện|liên hệ|liên lạc|điện thoại|đt|sđt|tel|hotline|đường dây nóng|tổng đài|"
    r"số máy|di động|zalo|fax|quay số|bấm số|nhắn tin|nhắn|stk|số tài khoản|tài khoản|cccd|cmnd|"
    r"căn cước|căn cước công dân|chứng minh nhân dân|mã số thuế|mst|mã số|mã hồ sơ|số hiệu|"
    r"mã bảo hiểm xã hội|mã bảo hiểm y tế|mã thẻ|số thẻ|mã định danh|số định danh"
)
_BRIDGE = r"(?:\s*:|\s+(?:số|ngay|đến|tới|qua|theo|là|máy|cho))*\s*"
_NEXT = rf"(?:\s*(?:,|/|hoặc|hay|và|-)\s*{_DIGITS}(?![\d/]|[.,]\d))*"
CALLED = re.compile(
    rf"(?<!\w)((?i:{_CALL_WORDS}){_BRIDGE})({_DIGITS}(?![\d/]|[.,]\d){_NEXT})(?![^\W_])"
)
EMERGENCY = re.compile(r"(?<![\d.,/])(11[1-5](?:\s*[/,;]\s*11[1-5])+)(?![\d/])")
_SERVICE = (
    r"cứu hỏa|cứu hoả|cấp cứu|cứu thương|công an|cảnh sát|cứu nạn|cứu hộ|phòng cháy|chữa cháy|"
    r"báo cháy"
)
EMERGENCY_AFTER_SERVICE = re.compile(rf"((?i:{_SERVICE})\s*:?\s*)(11[1-5])(?![\d/]|[.,]\d)")
# A number that can only be a phone: a leading 0 and 9 to 11 digits, or a 1800/1900 line.
MOBILE = re.compile(
    r"(?<![\w.,/-])"
    r"(?:0[0-9]{1,3}(?:[-. ][0-9]{2,8}){1,3}|0[0-9]{9,10}|1[89]00(?:[ .]?[0-9]{2,4}){1,2})"
    r"(?![\w-]|[.,][0-9])"
)
_SEPARATORS = re.compile(r"[ .-]+")
# "+84 912 345 678": the country code, then the number without its leading zero.
INTERNATIONAL = re.compile(
    r"(?<![\w+])\+84[ .-]?([0-9]{2,3}(?:[ .-]?[0-9]{3,4}){2})(?![\w]|[.,][0-9])"
)
# Eight digits or more in one run, not a round sum ("5000000"): an identifier, read by digits.
LONG_RUN = re.compile(
    r"(?<![\w.,/-])[0-9]{8,}(?<!000)(?![\w/-]|[.,][0-9]|\s?(?:đồng|đ|VNĐ|VND)(?!\w))"
)
# "0237.3852.xxx", "09xx.xxx.123", "1234***789": a number with digits hidden or left to fill in.
# The digits shown are read in their groups and the placeholders left unsaid ("ích ích ích"
# means nothing, and the dot before them would end the sentence). Possessive, so linear.
MASKED = re.compile(
    r"(?<![\w.,*-])(?=[0-9]*+(?:[.-]?[0-9]++)*+[.-]?(?:[xX]{2}|\*))"
    r"(?:[0-9]++|[xX]{2,}+|\*++)(?:[.-]?(?:[0-9]++|[xX]{2,}+|\*++))*+(?![\w*])"
)
# "số hiệu 12-345", "số seri 123-456-789", "Số hiệu văn bản 123-456": an identifier's digit
# groups, read digit by digit, never a range ("mười hai đến ba trăm ...") or a sum.
IDENTIFIER = re.compile(
    r"(?<!\w)((?i:số hiệu|số seri|số sê ri|số sê-ri|số series|seri|số khung|số máy|mã hiệu|mã số)"
    r"(?:\s+[^\W\d_]+){0,2}\s*:?\s*)([0-9]+(?:[-.][0-9]+)+)(?![\w-]|[.,][0-9])"
)
# "0912 xxx xxx", "36A-xxx.xx": placeholders after the digits shown, apart from them.
MASK_TAIL = re.compile(
    r"(?:(?<=[0-9])[ .\-/]|(?<=[0-9][A-Z])[.\-])(?:[xX]{2,}+|\*{2,}+)"
    r"(?:[ .\-/](?:[xX]{2,}+|\*{2,}+))*+(?![\w*])"
)
_MASK = re.compile(r"[xX]+|\*+")
# "3520 2055 12345": digit groups apart that are no sum written with spaces ("1 250 000" has
# groups of three after the first), nine digits or more: an account or card number, read by
# digits in its groups.
SPACED_ID = re.compile(r"(?<![\w.,/-])[0-9]{2,6}(?: [0-9]{2,6}){2,}(?![\w/-]|[.,][0-9])")
# "(0237) 3852 112": the area code in brackets belongs to the number.
AREA_CODE = re.compile(r"\((0[0-9]{2,3})\)\s?(?=[0-9]{3})")


def _grouped(number: str) -> str:
    """Digits in the groups written, or 4-3-3 when written as one run: "không chín một hai, ..."."""
    groups = [g for g in _SEPARATORS.split(number) if g]
    if len(groups) == 1 and len(groups[0]) in (10, 11) and groups[0].startswith("0"):
        run = groups[0]
        groups = [run[:4], run[4:7], run[7:]]
    return ", ".join(read_digits(g) for group in groups for g in _chunks(group))


def _chunks(group: str) -> list[str]:
    """A long run of digits ("3851234", "038095001234") in threes and fours, to note easily."""
    chunks: list[str] = []
    while len(group) > 5:
        size = 4 if len(group) == 8 else 3
        chunks.append(group[:size])
        group = group[size:]
    return [*chunks, group]


def _several(numbers: str) -> str:
    """Several numbers joined by "/", ",", "hoặc": each read in groups, the joins kept."""
    parts = re.split(r"(\s*(?:,|/|hoặc|hay|và)\s*|\s+-\s+)", numbers)
    spoken: list[str] = []
    for part in parts:
        stripped = part.strip()
        if not stripped:
            continue
        if stripped in (",", "/", "-"):
            spoken.append(",")
        elif stripped[0].isdigit():
            spoken.append(_grouped(stripped))
        else:
            spoken.append(stripped)
    return " ".join(spoken).replace(" ,", ",")


def _called(match: re.Match[str]) -> str:
    return match.group(1) + _several(match.group(2))


def _mobile(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    if match.group(0).startswith("0") and not 9 <= digits <= 11:
        return match.group(0)
    return _grouped(match.group(0))


def _masked(match: re.Match[str]) -> str:
    """The digits shown, in their groups: the placeholders are not said. Letters alone are a
    word or a roman numeral ("thế kỷ XX"), left as they are; stars alone say nothing."""
    if not any(c.isdigit() for c in match.group(0)) and "*" not in match.group(0):
        return match.group(0)
    groups = [g for g in _SEPARATORS.split(_MASK.sub(" ", match.group(0))) if g]
    return ", ".join(read_digits(g) for group in groups for g in _chunks(group))


def _spaced_id(match: re.Match[str]) -> str:
    first, *rest = match.group(0).split(" ")
    short = len(match.group(0)) - len(rest) < 9  # "12 15 20": a few numbers, not an account
    if short or (len(first) <= 3 and all(len(g) == 3 for g in rest)):
        return match.group(0)
    return _grouped(match.group(0))


def drop_masks(text: str) -> str:
    """Read the digits shown of numbers with hidden digits ("0237.3852.xxx", "36A-xxx.xx"),
    before any rule takes the placeholders for letters or the dots for sentence ends."""
    return MASK_TAIL.sub("", MASKED.sub(_masked, text))


def substitute(text: str) -> str:
    """Read phone numbers, emergency numbers and identifiers in `text` digit by digit."""
    text = AREA_CODE.sub(r"\1 ", text)
    text = INTERNATIONAL.sub(lambda m: "cộng tám tư, " + _grouped(m.group(1)), text)
    text = CALLED.sub(_called, text)
    text = IDENTIFIER.sub(lambda m: m.group(1) + _grouped(m.group(2)), text)
    text = EMERGENCY.sub(lambda m: _several(m.group(1)), text)
    text = EMERGENCY_AFTER_SERVICE.sub(lambda m: m.group(1) + read_digits(m.group(2)), text)
    text = MOBILE.sub(_mobile, text)
    text = SPACED_ID.sub(_spaced_id, text)
    return LONG_RUN.sub(lambda m: _grouped(m.group(0)), text)
