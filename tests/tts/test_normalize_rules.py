"""The decisions behind tts.normalize, one rule at a time (the broad set is in
tests/data/normalize_cases.tsv)."""

import pytest

from tts import normalize
from tts.letters import (
    is_syllable,
    respell_foreign,
    segment_name,
    spell,
    split_marked,
    split_syllables,
)
from tts.lexicon import in_context
from tts.phonemes import phonemes


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # A date unless the words around it say fraction or score.
        ("Quốc khánh 2/9", "Quốc khánh ngày hai tháng chín."),
        ("Uống 1/2 viên", "Uống một phần hai viên."),
        ("Chiếm 1/3", "Chiếm một phần ba."),
        ("Đạt 5/7 chỉ tiêu", "Đạt năm trên bảy chỉ tiêu."),
        ("Đạt 19/19 tiêu chí", "Đạt mười chín trên mười chín tiêu chí."),
        ("Ngày 1/2 số hộ đi họp", "Ngày một tháng hai số hộ đi họp."),
        ("Tỷ lệ ½", "Tỷ lệ một phần hai."),
        # A dash between two quantities is "đến", except in a series or a school year.
        ("Cấp 12-13", "Cấp mười hai đến mười ba."),
        ("Từ 1/6-15/6", "Từ ngày một tháng sáu đến ngày mười lăm tháng sáu."),
        ("NPK 16-16-8", "En pê ca mười sáu, mười sáu, tám."),
        (
            "Năm học 2024-2025",
            "Năm học hai nghìn không trăm hai mươi tư, hai nghìn không trăm hai mươi lăm.",
        ),
        # Rates: "một" after a unit or a counting word, "trên" in compound units.
        ("50.000 đồng/kg", "Năm mươi nghìn đồng một ki lô gam."),
        ("60km/h", "Sáu mươi ki lô mét trên giờ."),
        ("Lượng mưa 100mm/24h", "Lượng mưa một trăm mi li mét trên hai mươi tư giờ."),
        # Times and weekdays.
        ("14h00", "Mười bốn giờ."),
        ("Lúc 9 giờ 00", "Lúc chín giờ."),
        ("T2-T6", "Thứ hai đến thứ sáu."),
        ("Thứ 4", "Thứ tư."),
        ("CN", "Chủ nhật."),
    ],
)
def test_numbers_in_context(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Gọi 113", "Gọi một một ba."),
        ("Có 113 hộ", "Có một trăm mười ba hộ."),  # a count, not the police
        ("113/114/115", "Một một ba, một một bốn, một một năm."),
        ("SĐT 0912345678", "Số điện thoại không chín một hai, ba bốn năm, sáu bảy tám."),
        ("Hotline 1900 1234", "Hót lai một chín không không, một hai ba bốn."),
        (
            "CCCD 038095001234",
            "Căn cước công dân không ba tám, không chín năm, không không một, hai ba bốn.",
        ),
    ],
)
def test_numbers_to_dial_or_copy(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_abbreviation_in_brackets_after_its_words_is_not_repeated() -> None:
    assert normalize("Áp thấp nhiệt đới (ATNĐ) mạnh lên") == "Áp thấp nhiệt đới mạnh lên."
    assert normalize("Đơn vị (ATNĐ) mạnh lên") == "Đơn vị, áp thấp nhiệt đới, mạnh lên."


def test_all_caps_lines_are_joined_only_when_one_title_was_cut() -> None:
    assert normalize("ỦY BAN NHÂN DÂN\nXÃ HOẰNG HỢP") == "Ủy ban nhân dân xã hoằng hợp."
    assert normalize("TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH") == "Thay mặt ủy ban nhân dân.\nChủ tịch."
    assert normalize("CHƯƠNG I\nQUY ĐỊNH CHUNG") == "Chương một.\nQuy định chung."


def test_letters_spelling_and_syllables() -> None:
    assert spell("UBND") == "u bê en đê"
    assert spell("ATM") == "a tê em"
    assert is_syllable("HOẠCH") and is_syllable("nghiêng") and is_syllable("THONG")
    assert not is_syllable("UBND") and not is_syllable("II")
    assert split_syllables("thanhhoa") == ["thanh", "hoa"]
    assert split_syllables("dich") == ["dích"]  # a toneless stop-final syllable gets a tone
    assert segment_name("ubndxahoanghop", frozenset({"ubnd"})) == [
        "u bê en đê",
        "xa",
        "hoang",
        "hóp",
    ]
    assert split_marked("Hàbình") == ("Hà", "bình")
    assert split_marked("Krông") is None  # a name espeak reads well as it is
    assert respell_foreign("www") == "vê kép vê kép vê kép"  # no vowel: spelled


@pytest.mark.parametrize("word", ["hotline", "dich", "website", "Zalo", "UBND", "Wipha", "fê"])
def test_words_espeak_takes_for_english_come_out_vietnamese(word: str) -> None:
    assert "(en)" in phonemes(word)
    assert "(en)" not in phonemes(normalize(word))


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # A title before the organ it heads, or after "đồng chí"; otherwise what it was.
        ("CT UBND xã", "Chủ tịch Ủy ban nhân dân xã."),
        ("Đ/c CT dự họp", "Đồng chí Chủ tịch dự họp."),
        ("CT số 05", "Chỉ thị số năm."),
        ("CT-UBND", "Chỉ thị Ủy ban nhân dân."),
        ("CA xã", "Công an xã."),
        ("Mỗi CA 4 người", "Mỗi ca bốn người."),
        ("BTC hội thi", "Ban tổ chức hội thi."),
        ("Hướng dẫn của BTC", "Hướng dẫn của Bộ Tài chính."),
        # "BĐ" before a level is an alarm, after "tờ" a map sheet.
        ("Trên BĐ3", "Trên báo động ba."),
        ("Tờ BĐ số 3", "Tờ bản đồ số ba."),
        # "ĐT" before a road number is a provincial road, before a phone a telephone.
        ("ĐT.741", "Đường tỉnh bảy trăm bốn mươi mốt."),
        ("ĐT 0912 345 678", "Điện thoại không chín một hai, ba bốn năm, sáu bảy tám."),
        ("ĐT 113", "Điện thoại một một ba."),
        ("Đường ĐH.02", "Đường huyện không hai."),  # "đường" is not said twice
        # "Km" before a number is a chainage; "km" after one a distance.
        ("Km 15+300", "Ki lô mét mười lăm cộng ba trăm."),
        ("Cách 15 km", "Cách mười lăm ki lô mét."),
        ("Từ Km 5 - Km 6+100", "Từ ki lô mét năm đến ki lô mét sáu cộng một trăm."),
        # A land-use code where the text speaks of land, and nowhere else.
        ("Đất LUC", "Đất chuyên trồng lúa nước."),
        ("LUC", "Lúc."),
        ("Đất ở tại đô thị (ODT)", "Đất ở tại đô thị."),
        # A water level's sign is said; a dash between two numbers is still "đến".
        ("Mực nước -0,3m", "Mực nước âm không phẩy ba mét."),
        ("Sóng cao 2 -3m", "Sóng cao hai đến ba mét."),
    ],
)
def test_phrases_read_from_their_context(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_in_context_lists_are_expanded() -> None:
    entries = {e.abbreviation: e for e in in_context()}
    assert "UBND" in entries["CT"].after and "Đ/c" in entries["CT"].before
    assert entries["BĐ"].before == ("tờ",)
    assert not any(w.startswith("@") for e in entries.values() for w in e.after + e.before)
