"""Broadcast scripts: an official document cut down to what is read, with an opening.

Besides the real commune plan, the documents here are written the way such documents arrive:
two-column headers pasted onto one line, the signature before or after "Nơi nhận:", text
double-spaced by a .doc export, a letter's "V/v" subject wrapped over two lines.
"""

import pytest

from tts import DEFAULT_OPENING, BroadcastScript, TtsError, make_script, normalize, render_opening

QUYET_DINH = """\
ỦY BAN NHÂN DÂN                    CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
XÃ HOẰNG HỢP                              Độc lập - Tự do - Hạnh phúc
-------                                   ---------------
Số: 25/QĐ-UBND                     Hoằng Hợp, ngày 02 tháng 01 năm 2024

QUYẾT ĐỊNH
Về việc thành lập Ban chỉ đạo phòng, chống dịch bệnh động vật năm 2024

CHỦ TỊCH ỦY BAN NHÂN DÂN XÃ HOẰNG HỢP

Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;
Căn cứ Luật Thú y ngày 19 tháng 6 năm 2015;
Xét đề nghị của cán bộ Nông nghiệp xã.

QUYẾT ĐỊNH:

Điều 1. Thành lập Ban chỉ đạo phòng, chống dịch bệnh động vật xã Hoằng Hợp năm 2024, gồm các
ông, bà có tên sau:
1. Ông Nguyễn Văn An, Chủ tịch UBND xã - Trưởng ban;
2. Bà Lê Thị Bình, cán bộ Nông nghiệp - Phó Trưởng ban.
Điều 2. Ban chỉ đạo có nhiệm vụ tổ chức tiêm phòng cho đàn gia súc, gia cầm trên địa bàn xã.
Điều 3. Quyết định có hiệu lực kể từ ngày ký. Văn phòng UBND xã, các ông, bà có tên tại Điều 1
chịu trách nhiệm thi hành Quyết định này./.

Nơi nhận:                                  TM. ỦY BAN NHÂN DÂN
- Như Điều 3;                                    CHỦ TỊCH
- Lưu: VT.
                                                 (Đã ký)

                                             Nguyễn Văn An
"""

CONG_VAN = """\
ỦY BAN NHÂN DÂN                 CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
XÃ HOẰNG HỢP                         Độc lập – Tự do – Hạnh phúc
Số: 112/UBND-VP
V/v tăng cường công tác phòng,              Hoằng Hợp, ngày 15 tháng 3 năm 2024
chống cháy rừng mùa khô năm 2024

Kính gửi:
- Trưởng các thôn;
- Các hộ gia đình có rừng trồng.

Thực hiện Công văn số 356/UBND-NN ngày 10/3/2024 của UBND huyện Hoằng Hóa, Ủy ban nhân dân xã
đề nghị:
1. Các thôn tuyên truyền để nhân dân không đốt nương, đốt rác gần rừng.
2. Khi phát hiện cháy rừng, báo ngay cho UBND xã qua số điện thoại 0237.3865.123.
Nhận được Công văn này, đề nghị các thôn triển khai thực hiện./.
Nơi nhận:
- Như trên;
- Lưu: VT.
KT. CHỦ TỊCH
PHÓ CHỦ TỊCH
Lê Văn Cường
"""

# Exported from .doc: a blank line after every line, two between paragraphs; the signature
# comes first and "./." stands on its own line.
THONG_BAO = """\
ỦY BAN NHÂN DÂN

XÃ HOẰNG HỢP

Số: 08/TB-UBND

CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM

Độc lập - Tự do - Hạnh phúc

Hoằng Hợp, ngày 18 tháng 4 năm 2024


THÔNG BÁO

Lịch tiêm phòng bệnh dại cho chó, mèo

đợt 1 năm 2024


Thực hiện Kế hoạch số 45/KH-UBND ngày 02/4/2024 của UBND xã, Ủy ban nhân dân xã thông

báo lịch tiêm phòng như sau:


a) Thôn Đông, thôn Đoài: từ 7h30 đến 11h00 ngày 20/4/2024 tại nhà văn hóa thôn.


b) Thôn Nam, thôn Bắc: từ 13h30 đến 17h00 ngày 20/4/2024 tại nhà văn hóa thôn.


Đề nghị các hộ gia đình nuôi chó, mèo đưa vật nuôi đến tiêm đúng giờ


./.


TM. ỦY BAN NHÂN DÂN

CHỦ TỊCH


Nguyễn Văn An

Nơi nhận:

- Các thôn (t/h);

- Lưu: VT.
"""

KE_HOACH_CAPS = """\
ĐẢNG ỦY XÃ HOẰNG HỢP                ĐẢNG CỘNG SẢN VIỆT NAM
BAN CHỈ HUY QUÂN SỰ
*
Số: 03-KH/BCH                         Hoằng Hợp, ngày 05 tháng 5 năm 2024

KẾ HOẠCH
TUYÊN TRUYỀN PCCC VÀ CNCH NĂM 2024
-----

I. MỤC ĐÍCH, YÊU CẦU
Nâng cao ý thức của nhân dân về phòng cháy, chữa cháy.
II. NỘI DUNG
1.1 Tuyên truyền trên hệ thống loa truyền thanh xã mỗi tuần hai lần.
1.2 Tổ chức diễn tập tại thôn Đông vào tháng 6/2024.
III. TỔ CHỨC THỰC HIỆN
Giao Ban chỉ huy Quân sự xã chủ trì thực hiện Kế hoạch này./.
T/M BAN CHỈ HUY
CHỈ HUY TRƯỞNG
Trần Văn Dũng
"""


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def _reads_as(script: BroadcastScript, *paragraphs: str) -> None:
    """Normalizing the whole script reads each paragraph on its own: none is read into the next."""
    expected = [line for p in paragraphs if p for line in normalize(p).splitlines()]
    assert normalize(script.text).splitlines() == expected


def test_sample_plan(sample_text: str) -> None:
    script = make_script(sample_text)
    assert script.title == (
        "Kế hoạch triển khai thực hiện Chỉ thị số 07/CT-TTg ngày 21/3/2023 của Thủ tướng Chính "
        "phủ về việc tăng cường công tác truyền thông chính sách"
    )
    assert script.dropped == [
        "ỦY BAN NHÂN DÂN",
        "XÃ HOẰNG HỢP",
        "Số: /KH–UBND",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập – Tự do – Hạnh phúc",
        "Hoằng Hợp, ngày tháng 12 năm 2023",
        "Nơi nhận:",
        "- UBND huyện (b/c)",
        "- TTr ĐU, HĐND xã (b/c);",
        "- MTTQ,các đoàn thể xã (t/h);",
        "- Lưu: VT.",
        "CHỦ TỊCH",
        "Lê Văn Phượng",
    ]
    assert script.body.startswith("Thực hiện Kế hoạch số 182/KH-UBND ngày 27 tháng 10 năm 2023")
    assert script.body.endswith("cán bộ công chức triển khai thực hiện nghiêm túc, hiệu quả.")
    assert "\nI. MỤC ĐÍCH, YÊU CẦU\n" in script.body
    assert "\n- Nâng cao nhận thức, hành động" in script.body
    for cut in ("Nơi nhận", "Lê Văn Phượng", "CỘNG HÒA", "Số:", "./.", "ngày tháng 12"):
        assert cut not in script.text
    # Unwrapped into paragraphs, the body reads exactly as the document's lines did.
    raw_body = _between(sample_text, "Thực hiện Kế hoạch số 182", "Nơi nhận")
    assert normalize(script.body) == normalize(raw_body)
    assert script.text == f"{script.title}\n\n\n{script.body}"
    _reads_as(script, script.title, script.body)


def test_sample_plan_with_commune_opening(sample_text: str) -> None:
    script = make_script(sample_text, commune="Xã Hoằng Hợp")
    opening = f"Đài truyền thanh xã Hoằng Hợp xin thông báo: {script.title}."
    assert script.text.startswith(opening + "\n\nThực hiện Kế hoạch số 182")
    assert script.text.count("Kế hoạch triển khai thực hiện Chỉ thị số 07") == 1  # read once
    _reads_as(script, opening, script.body)


def test_decision_with_two_column_header_and_signature() -> None:
    script = make_script(QUYET_DINH)
    assert script.title == (
        "Quyết định về việc thành lập Ban chỉ đạo phòng, chống dịch bệnh động vật năm 2024"
    )
    paragraphs = script.body.split("\n\n")
    assert paragraphs[0] == "CHỦ TỊCH ỦY BAN NHÂN DÂN XÃ HOẰNG HỢP"  # the authority is read
    assert "Căn cứ Luật Thú y ngày 19 tháng 6 năm 2015;" in script.body
    assert "\nQUYẾT ĐỊNH:\n" in script.body
    assert "1. Ông Nguyễn Văn An, Chủ tịch UBND xã - Trưởng ban;" in paragraphs
    assert script.body.endswith("chịu trách nhiệm thi hành Quyết định này.")
    assert (
        "Điều 1. Thành lập Ban chỉ đạo phòng, chống dịch bệnh động vật xã Hoằng Hợp năm 2024, "
        "gồm các ông, bà có tên sau:"
    ) in paragraphs
    assert script.dropped[:4] == [
        "ỦY BAN NHÂN DÂN CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "XÃ HOẰNG HỢP Độc lập - Tự do - Hạnh phúc",
        "------- ---------------",
        "Số: 25/QĐ-UBND Hoằng Hợp, ngày 02 tháng 01 năm 2024",
    ]
    assert script.dropped[4:] == [
        "Nơi nhận: TM. ỦY BAN NHÂN DÂN",
        "- Như Điều 3; CHỦ TỊCH",
        "- Lưu: VT.",
        "(Đã ký)",
        "Nguyễn Văn An",
    ]
    raw_body = _between(QUYET_DINH, "CHỦ TỊCH ỦY BAN", "Nơi nhận")
    assert normalize(script.body) == normalize(raw_body)
    _reads_as(script, script.title, script.body)


def test_letter_with_subject_line_and_recipients() -> None:
    script = make_script(CONG_VAN, commune="Hoằng Hợp")
    assert script.title == "Về việc tăng cường công tác phòng, chống cháy rừng mùa khô năm 2024"
    assert script.body.startswith("Kính gửi:\n\n- Trưởng các thôn;\n\n- Các hộ gia đình")
    assert "2. Khi phát hiện cháy rừng, báo ngay cho UBND xã" in script.body
    assert script.body.endswith("đề nghị các thôn triển khai thực hiện.")
    assert "Hoằng Hợp, ngày 15 tháng 3 năm 2024" in script.dropped  # the other column
    assert "Số: 112/UBND-VP" in script.dropped
    assert script.dropped[-6:] == [
        "Nơi nhận:", "- Như trên;", "- Lưu: VT.", "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Lê Văn Cường",
    ]  # fmt: skip
    opening = (
        "Đài truyền thanh xã Hoằng Hợp xin thông báo: Về việc tăng cường công tác phòng, chống "
        "cháy rừng mùa khô năm 2024."
    )
    assert script.text.startswith(opening + "\n\nKính gửi:")
    _reads_as(script, opening, script.body)


def test_double_spaced_notice_with_signature_before_recipients() -> None:
    script = make_script(THONG_BAO)
    assert script.title == "Thông báo lịch tiêm phòng bệnh dại cho chó, mèo đợt 1 năm 2024"
    assert script.body.split("\n\n") == [
        "Thực hiện Kế hoạch số 45/KH-UBND ngày 02/4/2024 của UBND xã, Ủy ban nhân dân xã thông "
        "báo lịch tiêm phòng như sau:",
        "a) Thôn Đông, thôn Đoài: từ 7h30 đến 11h00 ngày 20/4/2024 tại nhà văn hóa thôn.",
        "b) Thôn Nam, thôn Bắc: từ 13h30 đến 17h00 ngày 20/4/2024 tại nhà văn hóa thôn.",
        "Đề nghị các hộ gia đình nuôi chó, mèo đưa vật nuôi đến tiêm đúng giờ",
    ]
    assert script.dropped[-7:] == [
        "Hoằng Hợp, ngày 18 tháng 4 năm 2024", "TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH",
        "Nguyễn Văn An", "Nơi nhận:", "- Các thôn (t/h);", "- Lưu: VT.",
    ]  # fmt: skip
    raw_body = _between(THONG_BAO, "Thực hiện Kế hoạch số 45", "./.")
    assert normalize(script.body) == normalize(raw_body)
    _reads_as(script, script.title, script.body)


def test_all_caps_title_keeps_its_abbreviations() -> None:
    script = make_script(KE_HOACH_CAPS)
    assert script.title == "Kế hoạch tuyên truyền PCCC và CNCH năm 2024"
    assert script.body.split("\n\n\n")[0] == "I. MỤC ĐÍCH, YÊU CẦU"
    assert "1.1. Tuyên truyền trên hệ thống loa truyền thanh xã mỗi tuần hai lần." in script.body
    assert script.body.endswith("chủ trì thực hiện Kế hoạch này.")
    assert "-----" in script.dropped and "*" not in script.body
    assert script.dropped[-3:] == ["T/M BAN CHỈ HUY", "CHỈ HUY TRƯỞNG", "Trần Văn Dũng"]
    raw_body = _between(KE_HOACH_CAPS, "I. MỤC ĐÍCH", "T/M BAN")
    assert normalize(script.body) == normalize(raw_body)
    _reads_as(script, script.title, script.body)


def test_plain_text_loses_nothing() -> None:
    text = "Thông báo lịch tiêm phòng dại cho chó, mèo.\nThời gian: 7h30 ngày 20/4/2024."
    script = make_script(text)
    assert (script.title, script.dropped) == ("", [])
    assert script.body == text.replace("\n", "\n\n")
    assert script.text == script.body
    opened = make_script(text, commune="Hoằng Hợp")
    assert opened.text == f"Đài truyền thanh xã Hoằng Hợp xin thông báo:\n\n{script.body}"


def test_own_heading_without_header_is_kept() -> None:
    text = "PHÒNG CHỐNG RÉT CHO TRÂU BÒ\nBà con che chắn chuồng trại, không thả trâu bò khi rét."
    script = make_script(text)
    assert script.dropped == [] and script.title == ""
    assert script.body.startswith("PHÒNG CHỐNG RÉT CHO TRÂU BÒ\n\n\nBà con che chắn")
    _reads_as(script, script.body)


def test_document_type_heading_without_header_is_the_title() -> None:
    text = "LỊCH CẮT ĐIỆN\nNgày 5/4/2024 cắt điện thôn Đông từ 7h00 đến 11h00 để sửa đường dây."
    script = make_script(text)
    assert (script.title, script.dropped) == ("Lịch cắt điện", [])
    assert script.body == "Ngày 5/4/2024 cắt điện thôn Đông từ 7h00 đến 11h00 để sửa đường dây."


def test_opening_given_as_text() -> None:
    script = make_script(THONG_BAO, opening="  Kính thưa bà con  nhân dân! ")
    assert script.text.startswith(f"Kính thưa bà con nhân dân!\n\n{script.title}\n\n\n")


def test_opening_template_without_title_reads_the_title_after_it(sample_text: str) -> None:
    script = make_script(sample_text, commune="Hoằng Hợp", template="Loa xã {commune} xin đọc:")
    assert script.text.startswith(f"Loa xã Hoằng Hợp xin đọc:\n\n{script.title}\n\n\nThực hiện")


def test_render_opening() -> None:
    assert render_opening(commune="Hoằng Hợp", title="Lịch họp") == (
        "Đài truyền thanh xã Hoằng Hợp xin thông báo: Lịch họp."
    )
    assert DEFAULT_OPENING.count("{") == 2
    with pytest.raises(TtsError, match=r"needs a value for \{commune\} \(given: title\)"):
        render_opening(title="Lịch họp")
    with pytest.raises(TtsError, match="malformed"):
        render_opening("Đài xã {commune", commune="X")
    with pytest.raises(TtsError, match="not a plain name"):
        render_opening("{title.__class__}", title="X")
    with pytest.raises(TtsError, match="not a plain name"):
        render_opening("Đài xã {}", commune="X")


@pytest.mark.parametrize("commune", ["", "  ", "Xã "])
def test_empty_commune_is_refused(commune: str) -> None:
    with pytest.raises(TtsError, match="commune name"):
        make_script("Họp thôn lúc 19h.", commune=commune)


@pytest.mark.parametrize(
    "document",
    ["", "   \n\n", "ỦY BAN NHÂN DÂN\nXÃ HOẰNG HỢP\nSố: 12/TB-UBND\n./.\nNơi nhận:\n- Lưu: VT."],
)
def test_nothing_to_read(document: str) -> None:
    with pytest.raises(TtsError, match="nothing to read"):
        make_script(document)


def test_script_is_frozen(sample_text: str) -> None:
    script = make_script(sample_text)
    with pytest.raises(AttributeError):
        script.title = "x"  # type: ignore[misc]
