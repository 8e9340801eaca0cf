"""Spoken form of administrative text (tts.normalize), on rules and on the real sample."""

import re

import pytest

from tts import normalize


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("ngày 21/3/2023", "Ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba."),
        (
            "Hạn chót 21/3/2023",
            "Hạn chót ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba.",
        ),
        ("ngày 09/02/2017", "Ngày chín tháng hai năm hai nghìn không trăm mười bảy."),
        ("ngày 21-3-2023", "Ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba."),
        (
            "ngày 27 tháng 10 năm 2023",
            "Ngày hai mươi bảy tháng mười năm hai nghìn không trăm hai mươi ba.",
        ),
        ("Quốc khánh 2/9", "Quốc khánh ngày hai tháng chín."),
        ("tháng 4/2024", "Tháng tư năm hai nghìn không trăm hai mươi tư."),
        ("từ tháng 4 đến tháng 5", "Từ tháng tư đến tháng năm."),
        ("Họp lúc 6h30", "Họp lúc sáu giờ ba mươi phút."),
        ("Kết thúc 17:00", "Kết thúc mười bảy giờ."),
        ("Từ 7h-11h thứ 4", "Từ bảy giờ đến mười một giờ thứ tư."),
        (
            "giai đoạn 2022-2027",
            "Giai đoạn hai nghìn không trăm hai mươi hai đến hai nghìn không trăm hai mươi bảy.",
        ),
        ("Tăng 3,5%", "Tăng ba phẩy năm phần trăm."),
        ("Hỗ trợ 1.500.000 đồng", "Hỗ trợ một triệu năm trăm nghìn đồng."),
        ("Giá 50.000đ/m2", "Giá năm mươi nghìn đồng một mét vuông."),
        ("Tốc độ 60km/h", "Tốc độ sáu mươi ki lô mét trên giờ."),
        ("Lượng mưa 100-200mm", "Lượng mưa một trăm đến hai trăm mi li mét."),
        ("NPK 5-10-3", "En pê ca năm, mười, ba."),
        ("Tỷ lệ 85,5%", "Tỷ lệ tám mươi lăm phẩy năm phần trăm."),
        ("Rét đậm, -2°C", "Rét đậm, âm hai độ xê."),
        ("Có 05 hộ, thời gian 03 ngày", "Có năm hộ, thời gian ba ngày."),
        ("Gọi 0912-345-678", "Gọi không chín một hai, ba bốn năm, sáu bảy tám."),
        ("quý IV, lần thứ XIII", "Quý bốn, lần thứ mười ba."),
    ],
)
def test_dates_times_numbers(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # The kind is not repeated after the text named it, and is said when it did not.
        ("Chỉ thị 07/CT-TTg", "Chỉ thị số không bảy của Thủ tướng Chính phủ."),
        ("Chỉ thị số 07/CT-TTg", "Chỉ thị số không bảy của Thủ tướng Chính phủ."),
        ("Căn cứ 07/CT-TTg", "Căn cứ chỉ thị số không bảy của Thủ tướng Chính phủ."),
        ("Kế hoạch 182/KH-UBND", "Kế hoạch số một trăm tám mươi hai của Ủy ban nhân dân."),
        (
            "Nghị định 09/2017/NĐ-CP",
            "Nghị định số không chín, năm hai nghìn không trăm mười bảy của Chính phủ.",
        ),
        (
            "Luật số 104/2016/QH13",
            "Luật số một trăm linh bốn, năm hai nghìn không trăm mười sáu của Quốc hội khóa mười "
            "ba.",
        ),
        ("Tờ trình 12/TTr-UBND", "Tờ trình số mười hai của Ủy ban nhân dân."),
        ("Nghị quyết 18-NQ/TW", "Nghị quyết số mười tám của Trung ương."),
        ("Số: /KH–UBND", "Số: kế hoạch của Ủy ban nhân dân."),
        ("Số: 45/TB-UBND", "Số: bốn mươi lăm, thông báo của Ủy ban nhân dân."),
        # The issuer is not repeated when the clause names it anyway.
        (
            "Quyết định 407/QĐ-TTg ngày 30/3/2022 của Thủ tướng Chính phủ",
            "Quyết định số bốn trăm linh bảy ngày ba mươi tháng ba năm hai nghìn không trăm hai "
            "mươi hai của Thủ tướng Chính phủ.",
        ),
    ],
)
def test_document_numbers(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_abbreviations() -> None:
    assert normalize("UBND xã, HĐND huyện, MTTQ,các đoàn thể") == (
        "Ủy ban nhân dân xã, Hội đồng nhân dân huyện, Mặt trận Tổ quốc, các đoàn thể."
    )
    assert normalize("Đ/c Chủ tịch TP, CB CC, HTX (b/c)") == (
        "Đồng chí Chủ tịch thành phố, cán bộ công chức, hợp tác xã, báo cáo."
    )
    assert normalize("BHYT, BHXH, THCS, THPT, PCCC, CSGT, ATTP, BTTTT") == (
        "Bảo hiểm y tế, bảo hiểm xã hội, trung học cơ sở, trung học phổ thông, phòng cháy chữa "
        "cháy, cảnh sát giao thông, an toàn thực phẩm, Bộ Thông tin và Truyền thông."
    )
    # Only whole words in the exact case: "CT" inside a word or in lower case is not "chỉ
    # thị"; an unknown acronym is spelled with Vietnamese letter names, never said in English.
    assert normalize("CTV ct") == "Xê tê vê xê tê."
    assert normalize("Cây ATM, mã QR") == "Cây a tê em, mã cu a."


def test_extra_abbreviations_extend_and_override() -> None:
    extra = {"HH": "Hoằng Hợp", "TTg": "thủ tướng"}
    assert normalize("UBND xã HH", extra_abbreviations=extra) == "Ủy ban nhân dân xã Hoằng Hợp."
    assert normalize("QĐ của TTg", extra_abbreviations=extra) == "Quyết định của thủ tướng."
    assert normalize("xã HH") == "Xã hát hát."  # no leak from one call's extras into the next


def test_headings_lowercased_with_roman_numerals() -> None:
    text = "I. MỤC ĐÍCH, YÊU CẦU\n1. Mục đích\n- Nhằm cụ thể hóa\nII. CÔNG TÁC PCCC CỦA UBND XÃ"
    assert normalize(text).splitlines() == [
        "Mục một. Mục đích, yêu cầu.",
        "Một. Mục đích.",
        "Nhằm cụ thể hóa.",
        "Mục hai. Công tác phòng cháy chữa cháy của Ủy ban nhân dân xã.",
    ]


def test_reflow_single_spaced_text() -> None:
    text = "Kính mời bà con\ntham dự họp\nlúc 7h30.\n\nMọi thắc mắc\nxin liên hệ\n\nTrưởng thôn"
    assert normalize(text).splitlines() == [
        "Kính mời bà con tham dự họp lúc bảy giờ ba mươi phút.",
        "Mọi thắc mắc xin liên hệ.",
        "Trưởng thôn.",
    ]


def test_empty_and_symbol_only_text() -> None:
    assert normalize("") == ""
    assert normalize(" \n\n  \n") == ""
    assert normalize("./.") == ""


@pytest.fixture(scope="module")
def spoken_sample(sample_text: str) -> str:
    return normalize(sample_text)


def test_sample_has_nothing_a_voice_would_spell(spoken_sample: str) -> None:
    assert "UBND" not in spoken_sample
    assert "TTg" not in spoken_sample
    assert "/" not in spoken_sample
    assert not re.search(r"[0-9]", spoken_sample)
    assert "“" not in spoken_sample


def test_sample_lines_are_whole_sentences(spoken_sample: str) -> None:
    lines = spoken_sample.splitlines()
    assert len(lines) == 32  # one per paragraph, heading and list item of the plan
    for line in lines:
        assert line == line.strip() and "  " not in line
        assert line[-1] in ".!?;:", line
    # Hard-wrapped sentences are joined back, including "của Thủ / tướng" and "KH- / UBND".
    assert any("của Thủ tướng Chính phủ về việc tăng cường" in line for line in lines)
    assert any(
        "Kế hoạch số một trăm năm mươi ngày một tháng sáu năm hai nghìn không trăm hai mươi hai "
        "của Ủy ban nhân dân tỉnh" in line
        for line in lines
    )


def test_sample_headings_and_lists(spoken_sample: str) -> None:
    lines = spoken_sample.splitlines()
    assert lines[0] == "Ủy ban nhân dân xã hoằng hợp."
    assert "Cộng hòa xã hội chủ nghĩa việt nam." in lines
    assert "Mục một. Mục đích, yêu cầu." in lines
    assert "Mục hai. Nội dung tuyên truyền." in lines
    assert "Hai. Yêu cầu." in lines
    assert "Kế hoạch." in lines
    assert "Chủ tịch." in lines
    assert lines[-1] == "Lê Văn Phượng."
    assert "Lưu: văn thư." in lines
    assert not any(line.isupper() for line in lines)
    assert (
        "giai đoạn hai nghìn không trăm hai mươi hai đến hai nghìn không trăm hai mươi bảy"
        in spoken_sample
    )


def test_sample_reads_document_numbers_and_closing_lines(spoken_sample: str) -> None:
    lines = spoken_sample.splitlines()
    # "07/CT-TTg ngày 21/3/2023 của Thủ tướng Chính phủ": the issuer is said once.
    assert (
        "Triển khai thực hiện Chỉ thị số không bảy ngày hai mươi mốt tháng ba năm hai nghìn "
        "không trăm hai mươi ba của Thủ tướng Chính phủ về việc" in spoken_sample
    )
    assert "Số: kế hoạch của Ủy ban nhân dân." in lines
    assert "Mặt trận Tổ quốc, các đoàn thể xã, thực hiện." in lines  # "(t/h)"
    assert "Thường trực Đảng ủy, Hội đồng nhân dân xã, báo cáo." in lines


def test_normalize_is_deterministic(sample_text: str, spoken_sample: str) -> None:
    for _ in range(5):
        assert normalize(sample_text) == spoken_sample
