"""Undo the hard line wrapping of text pasted from office documents.

Text extracted from .doc/.pdf files keeps the page's line breaks: a sentence is cut mid-phrase,
often with a blank line after every wrapped line, while real paragraphs are separated by one
more blank line. A speech engine pauses at each break, so the lines are joined back into
blocks (paragraphs, headings, list items) before anything is read aloud.
"""

import logging
import re
from collections.abc import Container
from dataclasses import dataclass, field

from .numbers import roman_value

_LOGGER = logging.getLogger(__name__)

# A line ending with one of these ends its sentence: the next line is never glued onto it.
SENTENCE_END = ".!?…;:"

# Dashes, plus signs and the symbols word processors put before list items ("❖", "➢", "✓").
_BULLET = re.compile(r"[-–—•+*●▪◦·❖➢➤►▶▸◆◇■□○✓✔✗✘→⇒☞]+(?:\s+|(?=[^\W\d_]))")
# "I.", "II)", "III/", "IV - NỘI DUNG"; "1.", "1.2.", "2)", "3/", "(1)", "1 - Mục đích"; "a)", "b.",
# "(c)": the marker of a head or a list item.
_ROMAN_HEAD = re.compile(r"([IVXL]+)(?:[.)/]\s+|\s+[-–]\s+(?=[^\W\d_]))")
_NUMBERED = re.compile(
    r"([0-9]{1,2}(?:\.[0-9]{1,2})*)[.)/]\s+|([0-9]{1,2}(?:\.[0-9]{1,2})+)\s+(?=[^\W\d_])"
    r"|\(([0-9]{1,2})\)\s*|([0-9]{1,2})\s+[-–]\s+(?=[^\W\d_])"
)
_LETTERED = re.compile(r"([a-zđA-ZĐ])\)\s+|([A-ZĐa-zđ])\.\s+(?=[^\W\d_])|\(([a-zđ])\)\s*")
_WORD = re.compile(r"[^\W\d_]+")
# All-caps lines run on only when they are one name or title cut in two: the next line names a
# place ("ỦY BAN NHÂN DÂN / XÃ HOẰNG HỢP"), one of them joins words ("... CÔNG TÁC PHÒNG CHỐNG /
# VÀ TÌM KIẾM CỨU NẠN"), or the first is long enough to have been wrapped. Short all-caps lines
# are separate units otherwise, as in a signature ("TM. ỦY BAN NHÂN DÂN / CHỦ TỊCH").
_HEADING_GOES_ON = re.compile(
    r"(?:XÃ|HUYỆN|TỈNH|THÔN|XÓM|BẢN|PHƯỜNG|THỊ TRẤN|THỊ XÃ|THÀNH PHỐ|QUẬN|VÀ|CỦA|VỀ|NĂM|"
    r"GIAI ĐOẠN|TẠI|ĐẾN|TRÊN|TRONG|CHO|VỚI|THEO|NHẰM|ĐỐI VỚI)(?!\w)"
)
_HEADING_CUT = re.compile(r"(?<!\w)(?:VÀ|CỦA|VỀ|CHO|TẠI|VỚI|TRONG|THEO|NHẰM|CÁC|NHỮNG|[-–])$")
_WRAPPED_HEADING = 40  # characters: a longer all-caps line was probably wrapped
# "CHƯƠNG II", "Phần 3", "MỤC 1": a section head alone on its line is a sentence of its own.
_SECTION_HEAD = re.compile(r"(?i:chương|phần|mục|điều|tiết)\s+(?:[IVXL]+|[0-9]+)[.:]?")
# A line of running text without final punctuation is a heading, a title or a list line, and
# ends its sentence, unless it was visibly cut mid-sentence: the next line starts in lower case
# or with a digit ("bà con / tham dự họp"), or the line ends with a comma, a hyphen or a word that
# cannot end a sentence ("... ngày 27 tháng 10 năm 2023 của / UBND huyện").
_CUT_AFTER = re.compile(
    r"(?:[,\-–—(/&]|(?<!\w)(?i:của|và|hoặc|hay|các|những|mọi|về|cho|tại|với|trong|theo|nhằm|từ|"
    r"đến|tới|ngày|số|là|thì|mà|để|do|bởi|như|gồm|bao gồm|đồng chí|đ/c|lúc|hồi|vào|căn cứ|về việc|"
    r"đã|sẽ|đang|kể từ))$"
)
# "Thực hiện / Kế hoạch số 12/KH-UBND": a verb that takes a document, then a line naming one. The
# verb may end a heading ("Tổ chức thực hiện / UBND xã giao ..."), so the document must follow.
_ACTS_ON = re.compile(
    r"(?<!\w)(?i:thực hiện|triển khai|quán triệt|thi hành|hướng dẫn|ban hành|tinh thần|chấp hành)$"
)
_DOCUMENT = re.compile(
    r"(?:Kế hoạch|Quyết định|Nghị định|Nghị quyết|Chỉ thị|Công văn|Công điện|Thông báo|Thông tư|"
    r"Luật|Bộ luật|Hiến pháp|Pháp lệnh|Chương trình|Đề án|Hướng dẫn|Văn bản|Kết luận|Quy chế|"
    r"Quy định|Điều lệ|Phong trào|Cuộc vận động)(?!\w)"
)
# A line opening on a number ("Kết quả / 15 hộ đã nộp thuế") starts a sentence after a title,
# but goes on a long line the page wrapped ("... tiêm vắc xin cho / 15 trẻ").
_WRAPPED_TEXT = 50
# "... nhân dân xã / Hoằng Hợp được biết", "... kính mời ông / Nguyễn Văn An": a word that names a
# place or a person, then a line opening on a name of two capitalised words, is a name cut in two.
_NAME_AFTER = re.compile(
    r"(?<!\w)(?i:xã|huyện|tỉnh|thôn|xóm|bản|làng|ấp|phường|quận|thị trấn|thị xã|thành phố|sông|"
    r"ông|bà|anh|chị|cụ)$"
)
_SPACES = re.compile(r"\s+")
_HYPHEN_END = re.compile(r"\w-$")


@dataclass
class Block:
    """One spoken unit: a paragraph, a heading or a list item, with its marker kept apart."""

    kind: str  # "text", "bullet", "numbered", "roman", "lettered"
    marker: str  # the marker as written ("I", "1.2", "a"), empty for text and bullets
    heading: bool  # all in capitals: read in lower case, never letter by letter
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The block's lines joined; a word split by a trailing hyphen ("KH-" + "UBND") rejoins."""
        out = ""
        for line in self.lines:
            if not out:
                out = line
            elif _HYPHEN_END.search(out) and line[:1].isalnum():
                out += line
            else:
                out += " " + line
        return out


def _split_marker(line: str) -> tuple[str, str, str]:
    """(kind, marker, rest) for a line starting a list item or a head, else ("", "", line)."""
    match = _ROMAN_HEAD.match(line)
    if match and roman_value(match.group(1)) is not None:
        return "roman", match.group(1), line[match.end() :]
    match = _NUMBERED.match(line)
    if match:
        return "numbered", next(g for g in match.groups() if g), line[match.end() :]
    match = _LETTERED.match(line)
    if match:
        return "lettered", next(g for g in match.groups() if g), line[match.end() :]
    match = _BULLET.match(line)
    if match:
        return "bullet", "", line[match.end() :]
    return "", "", line


def _is_heading(line: str, abbreviations: Container[str]) -> bool:
    """All letters in capitals and at least one word that is not a known abbreviation."""
    letters = [c for c in line if c.isalpha()]
    if len(letters) < 2 or any(not c.isupper() for c in letters):
        return False
    return any(len(w) > 1 and w not in abbreviations for w in _WORD.findall(line))


def _double_spaced(gaps: list[int]) -> bool:
    """True when most lines are followed by one blank line, as in text extracted from .doc."""
    return sum(1 for g in gaps if g == 1) > sum(1 for g in gaps if g == 0)


def _text_goes_on(last: str, line: str) -> bool:
    """True when running-text `line` continues `last`, cut mid-sentence (see _CUT_AFTER,
    _ACTS_ON, _WRAPPED_TEXT)."""
    first = next((c for c in line if c.isalnum()), "")
    if _CUT_AFTER.search(last[-12:]):
        return True
    if first.isdigit():
        return len(last) >= _WRAPPED_TEXT
    if not first.isupper() or (_ACTS_ON.search(last[-14:]) and _DOCUMENT.match(line)):
        return True
    return bool(_NAME_AFTER.search(last[-12:])) and _opens_on_a_name(line)


def _opens_on_a_name(line: str) -> bool:
    """True when `line` opens on two capitalised words, not acronyms: "Hoằng Hợp được biết"."""
    words = line.split(maxsplit=2)[:2]
    return len(words) == 2 and all(w[:1].isupper() and not w.isupper() for w in words)


def _heading_goes_on(last: str, line: str) -> bool:
    """True when all-caps `line` continues the all-caps `last` (see _HEADING_GOES_ON)."""
    return bool(
        _HEADING_GOES_ON.match(line) or _HEADING_CUT.search(last) or len(last) >= _WRAPPED_HEADING
    )


def reflow(text: str, abbreviations: Container[str]) -> list[Block]:
    """Split raw text into blocks, joining hard-wrapped lines.

    A line that does not end a sentence continues into the next non-empty line unless that
    line starts a new block (bullet, numbered or lettered item, roman-numeral head, all-caps
    heading after ordinary text), the line is a section head alone ("CHƯƠNG II"), two all-caps
    lines are separate units (see _HEADING_GOES_ON), a line of running text was not cut
    mid-sentence (a title or a list line: see _CUT_AFTER) or a paragraph gap separates them: two
    blank lines in double-spaced text, one blank line otherwise.
    """
    entries: list[tuple[str, int]] = []
    blank = 0
    for raw in text.splitlines():
        line = _SPACES.sub(" ", raw).strip()
        if not line:
            blank += 1
            continue
        entries.append((line, blank))
        blank = 0
    paragraph_gap = 2 if _double_spaced([gap for _, gap in entries[1:]]) else 1

    blocks: list[Block] = []
    for line, gap in entries:
        kind, marker, rest = _split_marker(line)
        heading = _is_heading(rest, abbreviations)
        current = blocks[-1] if blocks else None
        if current is not None and not kind and gap < paragraph_gap:
            if not current.lines:  # a marker alone on its line ("1."): its text follows
                current.lines.append(line)
                current.heading = heading
                continue
            last = current.lines[-1]
            if (
                last[-1] not in SENTENCE_END
                and heading == current.heading
                and not _SECTION_HEAD.fullmatch(last)
                and (_heading_goes_on(last, line) if heading else _text_goes_on(last, line))
            ):
                current.lines.append(line)
                continue
        blocks.append(
            Block(kind=kind or "text", marker=marker, heading=heading, lines=[rest] if rest else [])
        )
    _LOGGER.debug("reflowed %d lines into %d blocks", len(entries), len(blocks))
    return blocks
