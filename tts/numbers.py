"""Read numbers aloud the Vietnamese way.

Vietnamese number reading has context-dependent words that a generic digit-to-word table gets
wrong: "mốt" (1 after "mươi"), "lăm" (5 after "mười"/"mươi"), "tư" (4 after "mươi"), "linh"
(zero tens inside a hundred), "không trăm" (zero hundreds inside a larger number). Thousands are
separated by "." and decimals by "," in Vietnamese documents.
"""

import logging
import re

_LOGGER = logging.getLogger(__name__)

DIGITS: tuple[str, ...] = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

# Larger numbers than this are read digit by digit (phone numbers, identifiers, account numbers).
_MAX_CARDINAL_DIGITS = 15

_GROUPED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")
_PLAIN = re.compile(r"[0-9]+")


def read_digits(digits: str) -> str:
    """Read a string of digits one by one: "07" -> "không bảy"."""
    return " ".join(DIGITS[int(d)] for d in digits)


def _read_triple(n: int, full: bool) -> list[str]:
    """Words for 0 <= n < 1000; `full` when a higher group precedes (adds "không trăm", "linh")."""
    hundreds, tens, units = n // 100, (n // 10) % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if hundreds or full:
                words.append("linh")
            words.append(DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else DIGITS[units])
    else:
        words += [DIGITS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(units, DIGITS[units]))
    return words


def _read_below_billion(n: int, full: bool) -> list[str]:
    """Words for 0 < n < 10^9, groups of three digits with "triệu" and "nghìn"."""
    words: list[str] = []
    for value, unit in ((n // 1_000_000, "triệu"), ((n // 1000) % 1000, "nghìn"), (n % 1000, "")):
        if value == 0:
            continue
        words += _read_triple(value, full)
        if unit:
            words.append(unit)
        full = True
    return words


def read_int(n: int) -> str:
    """Read a non-negative integer: 2023 -> "hai nghìn không trăm hai mươi ba"."""
    if n < 0:
        return "âm " + read_int(-n)
    if n == 0:
        return DIGITS[0]
    billions, rest = divmod(n, 1_000_000_000)
    words: list[str] = []
    if billions:
        words += [read_int(billions), "tỷ"]
    if rest:
        words += _read_below_billion(rest, full=bool(billions))
    return " ".join(words)


def read_integer_string(digits: str) -> str:
    """Read an integer as written.

    Documents pad counts with a zero ("05 hộ", "03 ngày"): up to three digits that is still
    the number ("năm hộ"). Four digits or more with a leading zero is a code or an identifier
    ("0912", "001203004567"), and a very long number an account: those are read digit by digit.
    """
    if (len(digits) > 3 and digits.startswith("0")) or len(digits) > _MAX_CARDINAL_DIGITS:
        return read_digits(digits)
    return read_int(int(digits))


def read_code_number(digits: str) -> str:
    """A document's or a house's number as written: "07" -> "không bảy", "182" unchanged."""
    if len(digits) > 1 and digits.startswith("0"):
        return read_digits(digits)
    return read_integer_string(digits)


def read_fraction(numerator: int, denominator: int) -> str:
    """A fraction: 1/2 -> "một phần hai", 3/4 -> "ba phần tư"."""
    return f"{read_int(numerator)} phần {read_month(denominator)}"


def read_number(token: str) -> str:
    """Read a written number: "1.500.000", "3,5", "07", "2023", "1.2" (section number).

    "." groups of exactly three digits are thousands separators; any other "." is read "chấm"
    (section numbers, versions); "," is the decimal comma, read "phẩy".
    """
    integer, _, fraction = token.partition(",")
    if _GROUPED.fullmatch(integer):
        spoken = read_integer_string(integer.replace(".", ""))
    elif _PLAIN.fullmatch(integer):
        spoken = read_integer_string(integer)
    else:
        spoken = " chấm ".join(read_integer_string(part) for part in integer.split(".") if part)
    if fraction:
        if fraction.startswith("0") or len(fraction) > 3:
            spoken += " phẩy " + read_digits(fraction)
        else:
            spoken += " phẩy " + read_int(int(fraction))
    return spoken


def read_month(month: int) -> str:
    """Month names: "tháng tư" (not "bốn"), otherwise the plain number."""
    return "tư" if month == 4 else read_int(month)


def read_ordinal(n: int) -> str:
    """After "thứ": "thứ nhất", "thứ tư", otherwise the plain number."""
    return {1: "nhất", 4: "tư"}.get(n) or read_int(n)


_ROMAN = re.compile(r"(XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50}


def roman_value(numeral: str) -> int | None:
    """Value (1 to 89) of an upper-case roman numeral, or None when it is not one."""
    if not numeral or not _ROMAN.fullmatch(numeral):
        return None
    total = 0
    for i, char in enumerate(numeral):
        value = _ROMAN_VALUES[char]
        following = _ROMAN_VALUES[numeral[i + 1]] if i + 1 < len(numeral) else 0
        total += -value if value < following else value
    return total


# Every number read by the normalizer is wrapped in these marks until the end, so that a dash
# between two readings ("7h - 11h", "100-200mm", "15/9 - 20/9") can be said "đến".
QUANTITY_START = "\x01"
QUANTITY_END = "\x02"


def quantity(spoken: str) -> str:
    """`spoken` marked as one quantity (see QUANTITY_START)."""
    return f"{QUANTITY_START}{spoken}{QUANTITY_END}"
