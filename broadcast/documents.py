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
from pathlib import PurePath

import docx
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph

from broadcast.errors import ValidationError

_LOGGER = logging.getLogger(__name__)

FIELD = "document_file"
MAX_DOCUMENT_BYTES = 1024 * 1024
ACCEPTED_SUFFIXES = (".txt", ".docx")


def extract_text(file_name: str, data: bytes) -> str:
    """The text of an uploaded document; a ValidationError naming the file otherwise."""
    name = PurePath(file_name or "").name or "tệp không tên"
    suffix = PurePath(name).suffix.lower()
    if suffix not in ACCEPTED_SUFFIXES:
        hint = " Hãy lưu lại dưới dạng .docx." if suffix in (".doc", ".rtf", ".odt") else ""
        raise ValidationError(
            FIELD, f"Không nhận tệp “{name}”: chỉ nhận văn bản .txt hoặc tài liệu Word .docx.{hint}"
        )
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationError(
            FIELD, f"Tệp “{name}” quá lớn ({-(-len(data) // 1024)} KB): tối đa 1 MB."
        )
    text = _docx_text(name, data) if suffix == ".docx" else _plain_text(name, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise ValidationError(FIELD, f"Tệp “{name}” không có nội dung chữ.")
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
            f"Tệp “{name}” không phải văn bản UTF-8 hoặc UTF-16 (có thể là bảng mã cũ như TCVN3,"
            " VNI): hãy mở tệp và lưu lại với bảng mã UTF-8.",
        ) from exc


def _docx_text(name: str, data: bytes) -> str:
    """Paragraphs and table cells (row by row, a merged cell once) in document order."""
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, OpcError, KeyError, ValueError) as exc:
        raise ValidationError(
            FIELD, f"Tệp “{name}” không đọc được như tài liệu Word (.docx): tệp hỏng hoặc sai loại."
        ) from exc
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
