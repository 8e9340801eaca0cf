"""From an official document to what the commune radio reads aloud (kịch bản phát thanh).

A Vietnamese administrative document (Nghị định 30/2020/NĐ-CP layout) carries much that is
never read on the loudspeakers: the issuing agency, the national motto, the document number and
the place and date above the title; the "./." end mark, the recipients ("Nơi nhận:") and the
signature block below the body. The officer reads the title and the body, often after an
opening such as "Đài truyền thanh xã Hoằng Hợp xin thông báo: …".

The script stays in written form (numbers, abbreviations) so the officer can check and edit it;
`tts.normalize` makes it speakable at synthesis. Paragraphs are unwrapped (a document pasted
from a .doc keeps its page's line breaks), one per line with a blank line between them, and a
paragraph that ends without punctuation (a title, a heading) is followed by two blank lines, so
normalization never reads it into the next one.
"""

import logging
import re
import string
import unicodedata
from collections.abc import Container
from dataclasses import dataclass, field

from .errors import TtsError
from .normalize import default_abbreviations
from .reflow import SENTENCE_END, Block, reflow

_LOGGER = logging.getLogger(__name__)

DEFAULT_OPENING = "Đài truyền thanh xã {commune} xin thông báo: {title}."
DEFAULT_OPENING_UNTITLED = "Đài truyền thanh xã {commune} xin thông báo:"

DOCUMENT_TYPES = (
    "KẾ HOẠCH", "QUYẾT ĐỊNH", "THÔNG BÁO", "CÔNG VĂN", "BÁO CÁO", "TỜ TRÌNH", "CHỈ THỊ",
    "NGHỊ QUYẾT", "HƯỚNG DẪN", "CHƯƠNG TRÌNH", "GIẤY MỜI", "THƯ MỜI", "THƯ NGỎ", "THƯ KÊU GỌI",
    "LỜI KÊU GỌI", "LỜI HIỆU TRIỆU", "QUY CHẾ", "QUY ĐỊNH", "ĐỀ ÁN", "PHƯƠNG ÁN", "BIÊN BẢN",
    "THÔNG CÁO", "CÔNG ĐIỆN", "THÔNG TRI", "BẢN TIN", "LỊCH", "GIẤY TRIỆU TẬP", "ĐIỀU LỆ",
)  # fmt: skip

_SPACES = re.compile(r"\s+")
# Above the title.
_NATIONAL_NAME = re.compile(
    r"CỘNG\s+H(?:ÒA|OÀ)\s+XÃ\s+HỘI\s+CHỦ\s+NGHĨA\s+VIỆT\s+NAM|ĐẢNG\s+CỘNG\s+SẢN\s+VIỆT\s+NAM", re.I
)  # the state's name, or the Party's on Party documents
_MOTTO = re.compile(r"Độc\s+lập\s*[-–—,]\s*Tự\s+do\s*[-–—,]\s*Hạnh\s+phúc", re.I)
_NUMBER_LINE = re.compile(r"^Số\s*[:.]|^Số\s*[0-9]*\s*/", re.I)
_PLACE_DATE = re.compile(r"^[^\W\d_][^,]{0,60},\s*ngày\b", re.I)
_RULE = re.compile(r"^[-–—_=*~.·•+\s]+$")  # the lines (or star) drawn under headings
_SUBJECT = re.compile(r"^V\s*/\s*v\b\.?\s*:?\s*", re.I)  # "V/v" (về việc): a letter's subject
_COLUMN_GAP = re.compile(r"\s{3,}")  # two columns of the header pasted onto one line
_TYPE = re.compile(
    r"^(?:" + "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in DOCUMENT_TYPES) + r")(?!\w)"
)
_AUTHORITY = re.compile(r"^(?:CHỦ\s+TỊCH|GIÁM\s+ĐỐC|BAN\s|ỦY\s+BAN|BỘ\s+TRƯỞNG|THỦ\s+TƯỚNG)")
_NOT_SUBJECT = re.compile(r"^(?:Kính\s+gửi|Căn\s+cứ|Thực\s+hiện)\b", re.I)
# Below the body.
_END_MARK = re.compile(r"\s*\.?\s*/\s*\.\s*$")  # "./."
_RECIPIENTS = re.compile(r"^Nơi\s+nhận\b", re.I)
_SIGNING_FOR = re.compile(r"^(?:T/M|K/T|T/L|(?:TM|KT|TL|TUQ|Q|TQ)\.)\s*\S")  # "TM.", "KT."
_POSITION = re.compile(
    r"^(?:PHÓ\s+)?(?:CHỦ\s+TỊCH|BÍ\s+THƯ|TRƯỞNG\s+BAN|GIÁM\s+ĐỐC|HIỆU\s+TRƯỞNG|TRƯỞNG\s+THÔN"
    r"|TRƯỞNG\s+CÔNG\s+AN(?:\s+XÃ)?|CHỦ\s+NHIỆM|TRƯỞNG\s+PHÒNG|CHÁNH\s+VĂN\s+PHÒNG|TRƯỞNG\s+TRẠM"
    r"|THỦ\s+TRƯỞNG|TỔ\s+TRƯỞNG|KHU\s+TRƯỞNG|TRƯỞNG\s+KHU\s+PHỐ|NGƯỜI\s+KÝ|NGƯỜI\s+LẬP)$"
)
_SIGNED = re.compile(r"^\((?:đã\s+ký|ký\b)", re.I)  # "(Đã ký)", "(Ký, ghi rõ họ tên)"
_COMMUNE_PREFIX = re.compile(r"^xã(?:\s+|$)", re.I)


@dataclass(frozen=True)
class BroadcastScript:
    """What an official document becomes when read on the loudspeakers.

    `text` is what is read (opening, title, body) in written form; `dropped` lists the lines
    that were cut (header, recipients, signature), to show the officer what will not be read.
    """

    title: str
    body: str
    text: str
    dropped: list[str] = field(default_factory=list)


def render_opening(template: str = DEFAULT_OPENING, **values: str) -> str:
    """Fill an opening template such as "Đài truyền thanh xã {commune} xin thông báo: {title}."

    Fields are plain names; a field without a value is an error naming it, not a blank.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise TtsError(f"opening template {template!r} is malformed: {exc}") from exc
    for name in fields:
        if not name.isidentifier():
            raise TtsError(
                f"opening template {template!r}: {{{name}}} is not a plain name such as {{commune}}"
            )
        if name not in values:
            given = ", ".join(sorted(values)) or "none"
            raise TtsError(
                f"opening template {template!r} needs a value for {{{name}}} (given: {given})"
            )
    return _SPACES.sub(" ", template.format(**values)).strip()


def make_script(
    document_text: str,
    opening: str | None = None,
    *,
    commune: str | None = None,
    template: str = DEFAULT_OPENING,
) -> BroadcastScript:
    """Cut an official document down to what should be read and prepend an opening.

    `opening` is used as given. Without it, `commune` (a commune name, with or without "Xã")
    fills `template`, whose fields are {commune} and {title}. When the opening names the
    title, the title is not read a second time.
    """
    # Lines keep their inner runs of spaces: they separate the two columns of a pasted header.
    lines = [line.strip() for line in unicodedata.normalize("NFC", document_text).splitlines()]
    abbreviations = default_abbreviations()
    head_end, subject, subject_lines = _header(lines)
    tail_start = _tail_start(lines, head_end)
    dropped: list[str] = []
    for index, line in enumerate(lines[:head_end]):
        if index in subject_lines:  # only the other column of a subject line was cut
            dropped += [part for part in _COLUMN_GAP.split(line)[1:] if part]
        elif line:
            dropped.append(line)

    region: list[str] = []
    for line in lines[head_end:tail_start]:
        if _RULE.match(line):
            dropped.append(line)
            continue
        if _END_MARK.search(line):
            line = _END_MARK.sub("", line)
            line = line + "." if line and line[-1] not in SENTENCE_END else line
        region.append(line)
    dropped += [line for line in lines[tail_start:] if line]
    dropped = [_SPACES.sub(" ", line) for line in dropped]
    blocks = [block for block in reflow("\n".join(region), abbreviations) if block.text]

    title, title_blocks = _title(blocks, subject, abbreviations)
    body = _join([_paragraph(block) for block in blocks[title_blocks:]])
    if not title and not body:
        raise TtsError("the document has nothing to read once its header and signature are cut")

    if opening is None and commune is not None:
        name = _COMMUNE_PREFIX.sub("", _SPACES.sub(" ", commune).strip())
        if not name:
            raise TtsError("the commune name for the opening is empty")
        if not title and template == DEFAULT_OPENING:
            template = DEFAULT_OPENING_UNTITLED
        opening = render_opening(template, commune=name, title=title)
    opening = _SPACES.sub(" ", opening).strip() if opening else ""

    paragraphs = [opening] if opening else []
    if title and title not in opening:
        paragraphs.append(title)
    text = _join([*paragraphs, body] if body else paragraphs)
    _LOGGER.debug(
        "script: title %r, %d body blocks, %d lines dropped", title, len(blocks) - title_blocks,
        len(dropped),
    )  # fmt: skip
    return BroadcastScript(title=title, body=body, text=text, dropped=dropped)


def _is_heading(line: str) -> bool:
    letters = [char for char in line if char.isalpha()]
    return len(letters) >= 2 and all(char.isupper() for char in letters)


def _header(lines: list[str]) -> tuple[int, str, range]:
    """Where the header (agency, national name and motto, number, place and date, the rules
    under them) ends, and the letter's subject ("V/v …", read as the title) if it has one.

    Only a block holding a national name, motto, number or place-and-date line counts as a
    header: a text that starts with a heading of its own loses nothing.
    """
    end = 0  # just after the last line that proves a header
    subject, subject_lines = "", range(0)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _TYPE.match(line) and _is_heading(line):
            break
        if _SUBJECT.match(line):
            start = index
            subject, index = _subject(lines, index)
            subject_lines, end = range(start, index), index
            continue
        strong = (
            _NATIONAL_NAME.search(line)
            or _MOTTO.search(line)
            or _NUMBER_LINE.match(line)
            or _PLACE_DATE.match(line)
        )
        if strong:
            end = index + 1
        elif line and not _RULE.match(line) and not _is_heading(line):
            break  # the body has begun
        index += 1
    while end < len(lines) and (not lines[end] or _RULE.match(lines[end])):
        end += 1
    return end, subject, subject_lines


def _subject(lines: list[str], index: int) -> tuple[str, int]:
    """The "V/v" subject at `index` with its wrapped lines; the index after it."""
    first = _COLUMN_GAP.split(lines[index])[0]  # "V/v …        Hoằng Hợp, ngày …"
    parts = [_SUBJECT.sub("", first)]
    index += 1
    while index < len(lines) and len(parts) < 4:
        line = lines[index]
        if not line:
            if index + 1 < len(lines) and lines[index + 1][:1].islower():
                index += 1  # a blank line between wrapped lines of a pasted .doc
                continue
            break
        if not line[:1].islower():
            break  # a wrapped subject line goes on in lower case
        parts.append(_COLUMN_GAP.split(line)[0])
        index += 1
    subject = " ".join(parts).strip()
    return (f"Về việc {subject}" if subject else ""), index


def _tail_start(lines: list[str], start: int) -> int:
    """Index of the first line after the body: recipients, signature, or after "./."."""
    for index in range(start, len(lines)):
        line = lines[index]
        if _RECIPIENTS.match(line) or _SIGNED.match(line) or _POSITION.match(line):
            return index
        if _SIGNING_FOR.match(line) and _is_heading(line):
            return index
        if _END_MARK.search(line):
            return index + 1
    return len(lines)


def _sentence_case(heading: str, abbreviations: Container[str]) -> str:
    """ "KẾ HOẠCH TUYÊN TRUYỀN PCCC" -> "Kế hoạch tuyên truyền PCCC": spoken as words, and
    abbreviations and document numbers keep their capitals."""
    words = [
        word if word in abbreviations or any(char.isdigit() for char in word) else word.lower()
        for word in heading.split()
    ]
    return _capitalize(" ".join(words))


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lower-case a capitalized first word ("Triển khai" -> "triển khai"), not an acronym."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return text[:1].lower() + text[1:]
    return text


def _is_subject(block: Block) -> bool:
    """The line under a document type: "Về việc …", "Triển khai thực hiện …", not the body."""
    text = block.text
    if block.kind != "text" or _NOT_SUBJECT.match(text) or len(text) > 400:
        return False
    if block.heading:
        return not _AUTHORITY.match(text)
    return bool(re.match(r"^(?:Về\s+việc|V\s*/\s*v)\b", text, re.I)) or text[-1] not in ".:;!?"


def _title(blocks: list[Block], subject: str, abbreviations: Container[str]) -> tuple[str, int]:
    """The one-line title and how many blocks it took from the start of `blocks`."""
    first = blocks[0] if blocks else None
    if (
        first is None
        or not (first.kind == "text" and first.heading and _TYPE.match(first.text))
        or first.text.endswith(":")
    ):
        return _capitalize(subject), 0
    title = _sentence_case(first.text, abbreviations)
    if len(blocks) > 1 and _is_subject(blocks[1]):
        second = blocks[1]
        rest = _sentence_case(second.text, abbreviations) if second.heading else second.text
        rest = _SUBJECT.sub("về việc ", rest)
        return f"{title} {_lower_first(rest)}", 2
    if subject:
        return f"{title} {_lower_first(subject)}", 1
    return title, 1


def _paragraph(block: Block) -> str:
    """A block on one line, its list marker written back in a form reflow reads the same way."""
    if block.kind == "bullet":
        return f"- {block.text}"
    if block.kind in ("roman", "numbered"):
        return f"{block.marker}. {block.text}"
    if block.kind == "lettered":
        return f"{block.marker}) {block.text}"
    return block.text


def _join(paragraphs: list[str]) -> str:
    """One blank line between paragraphs, two after one without final punctuation."""
    out = ""
    for paragraph in paragraphs:
        if out:
            out += "\n\n" if out[-1] in SENTENCE_END else "\n\n\n"
        out += paragraph
    return out
