"""Dates, times, weekdays and ordinals, and the "a/b" that is a date, a fraction or a ratio.

"21/3/2023" is "ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba", "15/9" a day
of September, "6h30" and "17:00" times, "thứ 4" Wednesday ("thứ tư", never "thứ bốn"). The
same "1/2" is a date ("Quốc khánh 2/9") or a fraction ("1/2 số hộ"): it is read as a fraction
only where the words around it say so, and "18/20 tiêu chí" is a score ("mười tám trên hai
mươi"). Every reading is wrapped in quantity marks so that "7h - 11h" reads "... đến ...".
"""

import logging
import re

from .numbers import (
    quantity,
    read_code_number,
    read_fraction,
    read_int,
    read_month,
    read_number,
    read_ordinal,
    roman_value,
)

_LOGGER = logging.getLogger(__name__)

_DAY_WORDS = ("ngày", "mồng", "mùng")
# Words before a date-like "a/b" after which it is still a date, with "ngày" put in front.
# Words around an "a/b" that make it a fraction ("1/2 số hộ", "chiếm 1/3") or a score.
_FRACTION_BEFORE = frozenset((
    "chiếm", "bằng", "gần", "hơn", "còn", "giảm", "tăng", "mất", "khoảng", "xỉ", "trên", "dưới",
    "lực",  # "thị lực 8/10": eyesight is said as a fraction
))  # fmt: skip
_FRACTION_AFTER = (
    "số", "diện tích", "dân số", "tổng", "lượng", "khối lượng", "thời gian", "quãng", "chiều",
    "giá", "mức", "phần", "lãnh thổ", "sản lượng", "lực lượng", "cốc", "chén", "bát", "viên",
    "liều", "quả", "trong", "của", "các", "những",
)  # fmt: skip
# "đạt 19/19", "trực 24/7", "tỷ lệ", "số 5/2" (a number, never "số ngày năm tháng hai") and a
# rank out of so many ("xếp thứ 3/12").
_RATIO_BEFORE = frozenset(("đạt", "trực", "lệ", "vụ", "số", "thứ"))
_RATIO_AFTER = (
    "điểm", "tiêu chí", "chỉ tiêu", "xã", "phường", "thôn", "bản", "xóm", "tổ", "hộ", "người",
    "trường", "lớp", "học sinh", "phiếu", "đơn vị", "câu", "huyện", "tỉnh", "ca", "đại biểu",
    "thành viên", "cơ sở", "doanh nghiệp", "hợp tác xã", "mục tiêu", "nội dung", "bệnh nhân",
    "vụ", "trường hợp", "hồ sơ", "đơn", "gia đình", "công trình", "hạng mục", "cử tri", "thửa",
    "đội",
)  # fmt: skip
_WEEKDAY = r"(?:(?i:thứ)\s*(?:[2-7]|(?i:hai|ba|tư|năm|sáu|bảy))|(?i:chủ nhật)|CN)"
# "ngày thứ Ba", "ngày chủ nhật": the day is named, so the date after it takes no second "ngày".
_NAMED_WEEKDAY = re.compile(
    rf"(?<!\w)(?<![cC]ác )(?<![nN]hững )(?i:ngày)\s+\x01?{_WEEKDAY}\x02?\s*([,(\-–]?)\s*$"
)
# "ngày thứ 3, ngày 15/10": the second "ngày" is dropped (see _NAMED_WEEKDAY).
SECOND_DAY_WORD = re.compile(
    rf"(?<!\w)((?i:ngày)\s+\x01?{_WEEKDAY}\x02?\s*[,(\-–]?\s*)(?i:ngày)\s+(?=[0-9])"
)
# "thứ Ba 15 tháng 10": a pause between the weekday and the day ("thứ ba, mười lăm").
WEEKDAY_THEN_DAY = re.compile(rf"(?<!\w)({_WEEKDAY}\x02?)\s+(?=[0-9]{{1,2}}\s+(?i:tháng)\b)")
# "các ngày 5, 6, 7/11": the days before the date were already said after "ngày".
_DAY_LIST = re.compile(
    r"(?<!\w)(?i:ngày|mồng|mùng)(?:\s*,?\s*\x01?[0-9]{1,2}\x02?){1,6}\s*(?:,|và)\s*$"
)
# "tỷ lệ 1:10", "nam nữ 1:1": a ratio, not a time (a time has two digits of minutes).
COLON_RATIO = re.compile(
    r"(?<![\w:.,])([0-9]+(?:,[0-9]+)?):([0-9]+(?:\.[0-9]{3})*(?:,[0-9]+)?)(?![\w:]|[.,][0-9])"
)
_RATIO_WORDS = re.compile(r"(?i:tỷ lệ|tỉ lệ|pha|trộn|bản đồ)")
_DATE_BEFORE = frozenset(("ngày", "mồng", "mùng", "sáng", "trưa", "chiều", "tối", "đêm", "hôm",
                          "từ", "đến", "tới", "trước", "sau", "hết"))  # fmt: skip
_PREVIOUS_WORD = re.compile(r"([^\W\d_]+)[\s\x01\x02:,]*$")

DATE_RANGE = re.compile(
    r"(?<![\d/.,])(?<![tT]hứ )(?<![tT]hứ)((?i:ngày|mồng|mùng)\s+)?([0-9]{1,2})\s*[-–]\s*"
    r"([0-9]{1,2})/([0-9]{1,2})(?:/([0-9]{4}))?(?![\d/]|[.,]\d)"
)
DATE = re.compile(
    r"(?<![\d/.,])((?i:ngày|mồng|mùng)\s+)?([0-9]{1,2})([/.-])([0-9]{1,2})\3([0-9]{4})(?![\d/])"
)
# "ngày 15/10/24": a year of two digits, only after a word that says it is a date.
SHORT_YEAR_DATE = re.compile(
    r"(?<![\d/.,])([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{2})(?![\d/]|[.,][0-9])"
)
_DAY_WORD_BEFORE = re.compile(r"(?<!\w)(?i:ngày|mồng|mùng)\s+$")
_WEEKDAY_BEFORE = re.compile(rf"{_WEEKDAY}\x02?\s*[,(\-–]?\s*$")
# "ngày 12-9" is a date, but "ngày 10-12 tháng Giêng" a range of days.
DAY_DASH_MONTH = re.compile(
    r"((?i:ngày|mồng|mùng)\s+)([0-9]{1,2})-([0-9]{1,2})(?![\d/-])(?!\s*(?i:tháng)\b)"
)
QUARTER_YEAR = re.compile(r"((?i:quý))\s+([IV]+|[1-4])\s*/\s*([0-9]{4})(?![\d/])")
# "ngày .../.../2025", "ngày xx/xx/2025": a date left blank but for its year, as in a template
# ("ngày    tháng    năm 2025"): said "tháng ... năm" so no dot or "ích" is read.
_BLANK = r"(?:\.{2,}+|…++|[xX]{2}|_{2,}+)"
BLANK_DATE = re.compile(rf"(?<!\w){_BLANK}\s*/\s*{_BLANK}\s*/\s*(?=[0-9]{{4}}(?![0-9]))")
# "số 12/2023", "đợt 1/2025", "lần 2/2024": a numbered act or round of a year, not a month.
NUMBER_OF_YEAR = re.compile(r"((?i:số|đợt|lần|kỳ|kì)\s+)([0-9]+)/([0-9]{4})(?![\d/])")
MONTH_YEAR = re.compile(
    r"(?<![\d/.,])(?:((?i:tháng)\s+)([0-9]{1,2})[/-]|([0-9]{1,2})/)([0-9]{4})(?![\d/])"
)
DECIMAL_RATIO = re.compile(r"(?<![\d/.,])([0-9]+,[0-9]+)/([0-9]+)(?![\d/]|[.,]\d)")
# "1.120/1.236 hộ": a count out of a count written with thousands, "trên".
COUNT_RATIO = re.compile(
    r"(?<![\d/.,])([0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,3})/([0-9]{1,3}(?:\.[0-9]{3})+)(?![\d/]|[.,]\d)"
)
SLASH_PAIR = re.compile(r"(?<![\d/.,])([0-9]{1,3})/([0-9]{1,3})(h\b)?(?![\d/]|[.,]\d)")
TIME = re.compile(
    r"(?<![\w:.,])([0-9]{1,2})(?:[hHgG]|:)([0-9]{2})(?::([0-9]{2}))?"
    r"(?:\s*phút|['’p](?![^\W\d_]))?(?![\w:])"
)
# "8g sáng", "lúc 8g": "g" is "giờ" beside a time of day ("50g" alone stays grams).
HOUR_G = re.compile(r"(?<![\w:.,])([0-9]{1,2})g(?!\w)")
_HOUR_G_BEFORE = re.compile(r"(?<!\w)(?i:lúc|hồi)\s$")
_HOUR_G_AFTER = re.compile(r"\s+(?i:sáng|trưa|chiều|tối|đêm)(?!\w)")
HOUR = re.compile(r"(?<![\w:.,])([0-9]{1,3})[hH](?!\w)")
ZERO_MINUTES = re.compile(r"(?<=giờ)\s+00(?!\d)(?:\s*phút)?")
WEEKDAY_RANGE = re.compile(
    r"((?i:thứ))\s*([2-7])\s*[-–]\s*(?:(?i:thứ)\s*)?([2-7]|CN|(?i:chủ nhật))(?!\w)"
)
# "xếp thứ 1-2", "thứ 8 - 10": ranks, not weekdays (those run from 2 to 7, see WEEKDAY_RANGE).
ORDINAL_RANGE = re.compile(
    r"((?i:thứ))\s*([0-9]{1,2})\s*[-–]\s*(?:(?i:thứ)\s*)?([0-9]{1,2})"
    r"(?![\w/-]|[.,][0-9]|\s*(?i:tháng|ngày))"
)
WEEKDAY_SHORT = re.compile(r"(?<![\w/])T([2-7])(?!\w)")
ORDINAL = re.compile(r"((?i:thứ))\s+([0-9]+)(?![0-9/]|[.,][0-9])")
MONTH = re.compile(r"((?i:tháng))\s+([0-9]{1,2})(?![0-9/]|[.,][0-9])")
ROMAN_AFTER_WORD = re.compile(
    r"(?<!\w)((?i:quý|khóa|khoá|phần|chương|mục|đợt|thế kỷ|thế kỉ|đại hội|thứ|giai đoạn|hạng|"
    r"loại|nhóm|vùng|tập|kỳ|kì|cấp|bậc|khu vực|tiểu mục|lần thứ|phụ lục|biểu|mẫu))"
    r"\s+([IVXL]+)(?!\w|\.\w)"
)
SCHOOL_YEAR = re.compile(
    r"((?i:năm học|niên khóa|niên khoá|niên học)\s+)([0-9]{4})\s*[-–]\s*([0-9]{4})(?![\d/])"
)


def _valid_date(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _day_prefix(prefix: str | None, text: str, start: int) -> str:
    """The words before a date: as written, or "ngày"; none after "ngày thứ Ba" but a pause."""
    named = _NAMED_WEEKDAY.search(text[max(0, start - 24) : start])
    if named is None:
        if prefix is None and _DAY_LIST.search(text[max(0, start - 40) : start]):
            return ""
        return prefix or "ngày "
    return "" if named.group(1) else ", "


def date_range(match: re.Match[str]) -> str:
    """Reads a range of days, "15-16/9": "ngày mười lăm đến mười sáu tháng chín"."""
    prefix, first, last, month, year = match.groups()
    if not (_valid_date(int(first), int(month)) and _valid_date(int(last), int(month))):
        return match.group(0)
    spoken = f"{read_int(int(first))} đến {read_int(int(last))} tháng {read_month(int(month))}"
    if year:
        spoken += f" năm {read_int(int(year))}"
    return quantity(_day_prefix(prefix, match.string, match.start()) + spoken)


def date(match: re.Match[str]) -> str:
    """Reads a full date, "21/3/2023" or "ngày 09-02-2017": "ngày ... tháng ... năm ..."."""
    prefix, day, _, month, year = match.groups()
    d, m = int(day), int(month)
    if not _valid_date(d, m):
        return match.group(0)
    said = f"{read_int(d)} tháng {read_month(m)} năm {read_int(int(year))}"
    return quantity(_day_prefix(prefix, match.string, match.start()) + said)


def short_year_date(match: re.Match[str]) -> str:
    """Reads "ngày 15/10/24", "thứ Ba 15/10/24" with the year "hai mươi tư"; elsewhere three
    numbers with slashes may be anything."""
    day, _, month, year = match.groups()
    d, m = int(day), int(month)
    text, start = match.string, match.start()
    said_day = _DAY_WORD_BEFORE.search(text, max(0, start - 6), start) is not None
    after_weekday = _WEEKDAY_BEFORE.search(text, max(0, start - 16), start) is not None
    if not _valid_date(d, m) or not (said_day or after_weekday):
        return match.group(0)
    said = f"{read_int(d)} tháng {read_month(m)} năm {read_int(int(year))}"
    return quantity(("" if said_day else _day_prefix(None, text, start)) + said)


def day_dash_month(match: re.Match[str]) -> str:
    """Reads "ngày 12-9" as a date; without "ngày", "12-9" stays a range."""
    prefix, day, month = match.groups()
    d, m = int(day), int(month)
    if not _valid_date(d, m):
        return match.group(0)
    return quantity(f"{prefix}{read_int(d)} tháng {read_month(m)}")


def quarter_year(match: re.Match[str]) -> str:
    """Reads a quarter of a year, "quý IV/2023": "quý bốn năm hai nghìn ..."."""
    word, number, year = match.groups()
    value = int(number) if number.isdigit() else roman_value(number)
    if value is None:
        return match.group(0)
    return quantity(f"{word} {read_int(value)} năm {read_int(int(year))}")


def number_of_year(match: re.Match[str]) -> str:
    """Reads a numbered act of a year, "số 12/2023": "số mười hai, năm hai nghìn ...", with the
    pause of document numbers ("số 100/2019" is not "một trăm năm ...", 105)."""
    prefix, number, year = match.groups()
    spoken = (
        read_code_number(number) if prefix.strip().casefold() == "số" else read_int(int(number))
    )
    return f"{prefix}{quantity(spoken + ', năm ' + read_int(int(year)))}"


def month_year(match: re.Match[str]) -> str:
    """Reads a month of a year, "tháng 9/2023" or "12/2023": "tháng chín năm ..."."""
    prefix, month_after_word, month_alone, year = match.groups()
    m = int(month_after_word or month_alone)
    if not 1 <= m <= 12:
        return match.group(0)
    return quantity(f"{prefix or 'tháng '}{read_month(m)} năm {read_int(int(year))}")


def _previous_word(text: str, start: int) -> str:
    found = _PREVIOUS_WORD.search(text[max(0, start - 30) : start])
    return found.group(1).lower() if found else ""


def _next_words(text: str, end: int) -> str:
    return " " + " ".join(text[end : end + 30].lower().split()) + " "


def _followed_by(text: str, end: int, phrases: tuple[str, ...]) -> bool:
    after = _next_words(text, end)
    return any(after.startswith(f" {p} ") for p in phrases)


def slash_pair(match: re.Match[str]) -> str:
    """A lone "a/b": a date unless the words around make it a fraction or a score."""
    first, second, hours = match.groups()
    a, b = int(first), int(second)
    text, start, end = match.string, match.start(), match.end()
    before = _previous_word(text, start)
    unit = " giờ" if hours else ""
    if (a, b) == (24, 7) and before not in _DATE_BEFORE:  # "trực 24/7": all day, every day
        return quantity("hai mươi tư trên bảy")
    if before not in _DAY_WORDS:
        proper = 0 < a < b
        if proper and _followed_by(text, end, _FRACTION_AFTER):  # "3/5 số phiếu"
            return quantity(read_fraction(a, b))
        if before in _RATIO_BEFORE or _followed_by(text, end, _RATIO_AFTER) or hours:
            first_said = read_ordinal(a) if before == "thứ" else read_int(a)  # "thứ nhất trên 12"
            return quantity(f"{first_said} trên {read_int(b)}{unit}")
        if proper and before in _FRACTION_BEFORE:  # "chiếm 3/4"
            return quantity(read_fraction(a, b))
    if _valid_date(a, b):
        prefix = "" if before in _DAY_WORDS else _day_prefix(None, text, start)
        return quantity(f"{prefix}{read_int(a)} tháng {read_month(b)}")
    return quantity(f"{read_int(a)} trên {read_int(b)}{unit}")


def colon_ratio(match: re.Match[str]) -> str:
    """Reads "tỷ lệ 1:10" as "một trên mười", a map's "1:50.000" as "một phần năm mươi nghìn";
    leaves "7:30" to the times unless a ratio word comes before it."""
    first, second = match.groups()
    before = match.string[max(0, match.start() - 30) : match.start()]
    words = _RATIO_WORDS.findall(before)
    is_time = len(second) == 2 and "," not in first and int(first) <= 24
    if is_time and not words:
        return match.group(0)
    joint = "phần" if any(w.lower() == "bản đồ" for w in words) else "trên"
    return quantity(f"{read_number(first)} {joint} {read_number(second)}")


def decimal_ratio(match: re.Match[str]) -> str:
    """Reads a mark, "9,5/10": "chín phẩy năm trên mười"."""
    return quantity(f"{read_number(match.group(1))} trên {read_number(match.group(2))}")


def time_of_day(match: re.Match[str]) -> str:
    """Reads a time, "6h30", "17:00", "7g30", "14h00'": "sáu giờ ba mươi phút"."""
    hour, minute = int(match.group(1)), int(match.group(2))
    second = int(match.group(3)) if match.group(3) else 0
    if hour > 24 or minute > 59 or second > 59:
        return match.group(0)
    spoken = f"{read_int(hour)} giờ"
    if minute:
        spoken += f" {read_int(minute)} phút"
    if second:
        spoken += f" {read_int(second)} giây"
    return quantity(spoken)


def hour_g(match: re.Match[str]) -> str:
    """Reads "8g sáng", "lúc 8g" as "tám giờ"; "50g" elsewhere stays grams."""
    value = int(match.group(1))
    text, start, end = match.string, match.start(), match.end()
    beside_time = _HOUR_G_BEFORE.search(text, max(0, start - 5), start) or _HOUR_G_AFTER.match(
        text, end
    )
    if value > 24 or not beside_time:
        return match.group(0)
    return quantity(f"{read_int(value)} giờ")


def hour(match: re.Match[str]) -> str:
    """Reads "7h", "24h", "48h" as "bảy giờ": a time and a duration are said the same."""
    value = int(match.group(1))
    # "48h", "72h": beyond a day only a duration, and only in lower case ("30H" is a plate).
    if value <= 24 or match.group(0).endswith("h"):
        return quantity(f"{read_int(value)} giờ")
    return match.group(0)


def school_year(match: re.Match[str]) -> str:
    """Reads "năm học 2023-2024", one school year, with a pause rather than "đến"."""
    prefix, first, last = match.groups()
    return f"{prefix}{read_int(int(first))}, {read_int(int(last))}"


def weekday_range(match: re.Match[str]) -> str:
    """Reads a run of weekdays, "thứ 2-6": "thứ hai đến thứ sáu", up to "chủ nhật"."""
    word, first, last = match.groups()
    end = f"thứ {read_ordinal(int(last))}" if last.isdigit() else "chủ nhật"
    return quantity(f"{word} {read_ordinal(int(first))}") + " đến " + quantity(end)


def ordinal_range(match: re.Match[str]) -> str:
    """Reads a range of ranks, "xếp thứ 1-2": "thứ nhất đến thứ hai"; weekdays are left."""
    word, first, last = match.groups()
    if 2 <= int(first) <= 7 and 2 <= int(last) <= 7:
        return match.group(0)
    spoken = quantity(f"{word} {read_ordinal(int(first))}")
    return spoken + " đến " + quantity(f"thứ {read_ordinal(int(last))}")


def weekday_short(match: re.Match[str]) -> str:
    """Reads the weekdays of timetables, "T2" to "T7": "thứ hai" to "thứ bảy"."""
    return quantity(f"thứ {read_ordinal(int(match.group(1)))}")


def ordinal(match: re.Match[str]) -> str:
    """Reads ordinals and weekdays: "thứ 4" is "thứ tư", "thứ 1" is "thứ nhất"."""
    return quantity(f"{match.group(1)} {read_ordinal(int(match.group(2)))}")


def month(match: re.Match[str]) -> str:
    """Reads a month: "tháng 4" is "tháng tư"."""
    m = int(match.group(2))
    return quantity(f"{match.group(1)} {read_month(m)}") if 1 <= m <= 12 else match.group(0)


def roman_after_word(match: re.Match[str]) -> str:
    """Reads roman numerals after their word: "quý IV", "khóa XIV", "lần thứ XIII"."""
    word, numeral = match.groups()
    value = roman_value(numeral)
    if value is None:
        return match.group(0)
    spoken = read_ordinal(value) if word.lower().endswith("thứ") else read_int(value)
    return f"{word} {spoken}"
