"""Vietnamese number reading (tts.numbers)."""

import pytest

from tts.numbers import (
    read_code_number,
    read_digits,
    read_fraction,
    read_int,
    read_month,
    read_number,
    read_ordinal,
    roman_value,
)


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("0", "không"),
        ("5", "năm"),
        ("10", "mười"),
        ("11", "mười một"),
        ("14", "mười bốn"),
        ("15", "mười lăm"),
        ("20", "hai mươi"),
        ("21", "hai mươi mốt"),
        ("24", "hai mươi tư"),
        ("25", "hai mươi lăm"),
        ("101", "một trăm linh một"),
        ("105", "một trăm linh năm"),
        ("110", "một trăm mười"),
        ("115", "một trăm mười lăm"),
        ("1000", "một nghìn"),
        ("1005", "một nghìn không trăm linh năm"),
        ("2023", "hai nghìn không trăm hai mươi ba"),
        ("10.000", "mười nghìn"),
        ("1.500.000", "một triệu năm trăm nghìn"),
        ("1.000.005", "một triệu không trăm linh năm"),
        ("2.000.000.021", "hai tỷ không trăm hai mươi mốt"),
        ("3,5", "ba phẩy năm"),
        ("0,25", "không phẩy hai mươi lăm"),
        ("3,05", "ba phẩy không năm"),
        ("07", "bảy"),  # a count padded with a zero: "07 ngày"
        ("0912", "không chín một hai"),  # four digits or more after a zero: a code
        ("1.2", "một chấm hai"),
    ],
)
def test_read_number(written: str, spoken: str) -> None:
    assert read_number(written) == spoken


def test_read_int_large_and_digits() -> None:
    assert read_int(1_000_000_000) == "một tỷ"
    assert read_int(1_000_000_000_000) == "một nghìn tỷ"
    assert read_digits("0912") == "không chín một hai"
    assert read_number("12345678901234567") == read_digits("12345678901234567")


def test_month_ordinal_roman() -> None:
    assert read_month(4) == "tư"
    assert read_month(12) == "mười hai"
    assert read_ordinal(1) == "nhất"
    assert read_ordinal(4) == "tư"
    assert read_ordinal(2) == "hai"
    assert [roman_value(r) for r in ("I", "II", "IV", "IX", "XIII", "XIV")] == [1, 2, 4, 9, 13, 14]
    assert roman_value("IIII") is None
    assert roman_value("") is None


def test_code_numbers_and_fractions() -> None:
    assert read_code_number("07") == "không bảy"  # "Chỉ thị số 07/CT-TTg" keeps its zero
    assert read_code_number("182") == "một trăm tám mươi hai"
    assert read_fraction(1, 2) == "một phần hai"
    assert read_fraction(3, 4) == "ba phần tư"
    assert read_fraction(2, 3) == "hai phần ba"
