"""Text of an uploaded document (.txt or .docx), for the officer's broadcast script.

Communes receive plans and notices as Word files or plain text saved by whatever editor is at
hand, so a .txt may be UTF-8 (with or without a byte-order mark) or UTF-16 (Windows Notepad's
"Unicode"); anything else is refused with a message naming the file rather than read as
mojibake. A .docx gives its paragraphs and table cells in document order. The speech package
(`tts`) only ever sees the resulting text.
"""

from __future__ import annotations

import codecs
import io
import logging
import zipfile
import zlib
from pathlib import PurePath

import docx
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph

from broadcast.errors import N_, ValidationError

_LOGGER = logging.getLogger(__name__)

FIELD = "document_file"
MAX_DOCUMENT_BYTES = 1024 * 1024
ACCEPTED_SUFFIXES = (".txt", ".docx")
# What a .docx (a zip) may unzip to before it is parsed. Parsing costs grow with the XML (5 MB of
# short paragraphs: 3 s of CPU and 125 MB), so a small upload that unzips to 100 MB (a "zip
# bomb") is refused from its listing and a bounded read, never parsed. A real document within
# the 1 MB upload limit unzips to a few MB at most, its XML compressing 5 to 20 times.
MAX_EXPANDED_BYTES = 5 * 1024 * 1024
MAX_ENTRIES = 500  # a Word file has a few dozen parts
MAX_RATIO = 100  # unzipped/zipped size of one part, checked for parts beyond RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
_READ_CHUNK = 64 * 1024


def extract_text(file_name: str, data: bytes) -> str:
    """The text of an uploaded document; a ValidationError naming the file otherwise."""
    name = PurePath(file_name or "").name or N_("tệp không tên")
    suffix = PurePath(name).suffix.lower()
    if suffix not in ACCEPTED_SUFFIXES:
        message = (
            N_(
                "Không nhận tệp “%(name)s”: chỉ nhận văn bản .txt hoặc tài liệu Word .docx."
                " Hãy lưu lại dưới dạng .docx."
            )
            if suffix in (".doc", ".rtf", ".odt")
            else N_("Không nhận tệp “%(name)s”: chỉ nhận văn bản .txt hoặc tài liệu Word .docx.")
        )
        raise ValidationError(FIELD, message, "unsupported_type", name=name)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationError(
            FIELD,
            N_("Tệp “%(name)s” quá lớn (%(kb)s KB): tối đa 1 MB."),
            "too_large",
            name=name,
            kb=-(-len(data) // 1024),
        )
    text = _docx_text(name, data) if suffix == ".docx" else _plain_text(name, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise ValidationError(
            FIELD, N_("Tệp “%(name)s” không có nội dung chữ."), "empty", name=name
        )
    _LOGGER.info("document %s: %d characters", name, len(text))
    return text.strip()


def _plain_text(name: str, data: bytes) -> str:
    """UTF-8 (BOM optional) or UTF-16 (BOM, or the zero bytes of mostly-ASCII text)."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(data) >= 2 and data.count(0) * 4 >= len(data):
        # no BOM but many zero bytes: UTF-16 text, its byte order seen from where they fall
        encoding = "utf-16-le" if data[1::2].count(0) >= data[0::2].count(0) else "utf-16-be"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValidationError(
            FIELD,
            N_(
                "Tệp “%(name)s” không phải văn bản UTF-8 hoặc UTF-16 (có thể là bảng mã cũ như"
                " TCVN3, VNI): hãy mở tệp và lưu lại với bảng mã UTF-8."
            ),
            "not_utf8",
            name=name,
        ) from exc


def _check_expansion(name: str, data: bytes) -> None:
    """Refuse a .docx that would unzip to more than MAX_EXPANDED_BYTES, from the sizes its zip
    declares (entries, total, ratio per part) and then by reading every part with a bounded
    decompression: a part whose header understates its size is cut at the stated size and
    fails its CRC, so nothing beyond the budget is ever inflated, here or by python-docx."""
    damaged = _damaged(name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise damaged from exc
    with archive:
        parts = archive.infolist()
        if len(parts) > MAX_ENTRIES:
            raise ValidationError(
                FIELD,
                N_(
                    "Tệp “%(name)s” có %(parts)s phần nén bên trong (tài liệu Word chỉ có vài"
                    " chục, tối đa %(max)s): không phải tài liệu Word bình thường."
                ),
                "zip_bomb",
                name=name,
                parts=len(parts),
                max=MAX_ENTRIES,
            )
        declared = sum(part.file_size for part in parts)
        if declared > MAX_EXPANDED_BYTES:
            raise _too_big(name, declared)
        for part in parts:
            if part.file_size > RATIO_FLOOR and part.file_size > MAX_RATIO * max(
                part.compress_size, 1
            ):
                raise ValidationError(
                    FIELD,
                    N_(
                        "Tệp “%(name)s”: phần “%(part)s” nén %(packed)s byte thành %(size)s byte"
                        " (hơn %(ratio)s lần): không phải tài liệu Word bình thường."
                    ),
                    "zip_bomb",
                    name=name,
                    part=part.filename[:80],
                    packed=part.compress_size,
                    size=part.file_size,
                    ratio=MAX_RATIO,
                )
        budget = MAX_EXPANDED_BYTES
        try:
            for part in parts:
                with archive.open(part) as member:
                    while chunk := member.read(_READ_CHUNK):
                        budget -= len(chunk)
                        if budget < 0:
                            raise _too_big(name, MAX_EXPANDED_BYTES - budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise damaged from exc  # a CRC that fails (a lying header), corrupt data
        except (NotImplementedError, RuntimeError) as exc:
            raise damaged from exc  # a compression zipfile lacks, a password


def _too_big(name: str, size: int) -> ValidationError:
    return ValidationError(
        FIELD,
        N_(
            "Tệp “%(name)s” giải nén ra %(mb)s MB, quá %(max)s MB cho phép: tài liệu Word bình"
            " thường không lớn như vậy (có thể tệp hỏng hoặc cố ý gây quá tải)."
        ),
        "zip_bomb",
        name=name,
        mb=-(-size // 1048576),
        max=MAX_EXPANDED_BYTES // 1048576,
    )


def _damaged(name: str) -> ValidationError:
    return ValidationError(
        FIELD,
        N_("Tệp “%(name)s” không đọc được như tài liệu Word (.docx): tệp hỏng hoặc sai loại."),
        "damaged",
        name=name,
    )


def _docx_text(name: str, data: bytes) -> str:
    """Paragraphs and table cells (row by row, a merged cell once) in document order."""
    _check_expansion(name, data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, OpcError, KeyError, ValueError) as exc:
        raise _damaged(name) from exc
    lines: list[str] = []
    for block in document.iter_inner_content():
        _block_lines(block, lines)
    return "\n".join(lines)


def _block_lines(block: Paragraph | Table, lines: list[str]) -> None:
    if isinstance(block, Paragraph):
        lines.append(block.text)
        return
    for row in block.rows:
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per grid column
                continue
            seen.add(id(cell._tc))
            for inner in cell.iter_inner_content():
                _block_lines(inner, lines)
