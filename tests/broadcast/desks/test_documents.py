"""A .docx that unzips to far more than it weighs (a "zip bomb") is refused from its listing and
a bounded read, quickly and without inflating it; a real Word file still reads.

The bombs are made here, small on disk: a real python-docx document whose `word/document.xml`
is 100 MB of short paragraphs (340 KB zipped). Before the check, reading one cost seconds of
CPU per 5 MB and hundreds of MB of memory. Memory is measured with tracemalloc (what Python
allocates: the inflated bytes would be Python objects), never time.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import docx
import pytest

from broadcast.desks import documents
from broadcast.errors import ValidationError

XML_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w='
    b'"http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
PARAGRAPHS = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * 1000  # 34 KB
MB = 1024 * 1024


def _word_file(*paragraphs: str) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _bomb(expanded_mb: int, extra_parts: int = 0, blob_mb: int = 0) -> bytes:
    """A real .docx whose document.xml is `expanded_mb` MB of paragraphs, written in chunks
    (never held whole in memory), with `extra_parts` empty parts and a `blob_mb` MB part of
    zeros beside it."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_word_file("x"))) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for part in source.infolist():
            if part.filename != "word/document.xml":
                bomb.writestr(part, source.read(part.filename))
                continue
            with bomb.open("word/document.xml", "w") as member:
                member.write(XML_HEAD)
                for _ in range(expanded_mb * MB // len(PARAGRAPHS)):
                    member.write(PARAGRAPHS)
                member.write(b"</w:body></w:document>")
        for index in range(extra_parts):
            bomb.writestr(f"extra/part{index}.xml", b"")
        if blob_mb:
            with bomb.open("word/media/blob.bin", "w") as member:
                for _ in range(blob_mb):
                    member.write(bytes(MB))
    return out.getvalue()


def _understate(data: bytes, name: bytes, size: int) -> bytes:
    """The zip with the central directory claiming `size` bytes for part `name` (a lying
    header: what the listing says is not what the stream inflates to)."""
    patched = bytearray(data)
    at = patched.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", patched, at + 28)[0]
        if patched[at + 46 : at + 46 + name_length] == name:
            struct.pack_into("<I", patched, at + 24, size)
            return bytes(patched)
        at = patched.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"no part {name!r}")


def _refusal(name: str, data: bytes) -> tuple[str, float]:
    """The refusal's message and the peak of what Python allocated (MB) while reading."""
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as refused:
            documents.extract_text(name, data)
        peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
    assert refused.value.field == documents.FIELD
    assert name in refused.value.message, refused.value.message
    return refused.value.message, peak


def test_a_docx_that_unzips_to_100_mb_is_refused_without_inflating_it() -> None:
    data = _bomb(100)
    assert len(data) < documents.MAX_DOCUMENT_BYTES  # it passes the upload limit
    message, peak = _refusal("ke-hoach.docx", data)
    assert "giải nén ra 101 MB, quá 5 MB" in message
    assert peak < 8, f"{peak:.1f} MB allocated to refuse it"


def test_a_header_that_understates_a_part_is_caught_by_the_bounded_read() -> None:
    data = _understate(_bomb(100), b"word/document.xml", 4096)
    message, peak = _refusal("gia-mao.docx", data)
    assert "không đọc được" in message  # cut at the stated 4 KB, its CRC fails
    assert peak < 8, f"{peak:.1f} MB allocated to refuse it"


def test_one_part_that_inflates_a_hundredfold_is_refused_by_name() -> None:
    message, peak = _refusal("anh.docx", _bomb(0, blob_mb=3))
    assert "word/media/blob.bin" in message and "hơn 100 lần" in message
    assert peak < 8, f"{peak:.1f} MB allocated to refuse it"


def test_thousands_of_parts_are_refused() -> None:
    message, _peak = _refusal("nhieu-phan.docx", _bomb(0, extra_parts=2000))
    assert "phần nén bên trong" in message


def test_a_real_word_file_still_reads() -> None:
    paragraphs = [f"Đoạn {index}: thông báo lịch tiêm phòng cho bà con." for index in range(400)]
    text = documents.extract_text("lich-tiem.docx", _word_file(*paragraphs))
    assert text.splitlines() == paragraphs
    damaged = _word_file("x")[:-200]
    with pytest.raises(ValidationError, match="không đọc được"):
        documents.extract_text("hong.docx", damaged)
