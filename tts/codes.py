"""Document numbers ("07/CT-TTg", "09/2017/NĐ-CP", "104/2016/QH13", "18-NQ/TW") read aloud.

Generic normalizers read "07/CT-TTg" as a fraction or as letters and slashes. An official
reading it aloud names the document and who issued it: "chỉ thị số không bảy của Thủ tướng
Chính phủ". The kind ("CT") is not repeated when the text just named it ("Chỉ thị số 07/CT-TTg"
-> "Chỉ thị số không bảy của ..."), and the issuer is not repeated when the clause goes on with
"của Thủ tướng Chính phủ" anyway. A number's leading zero is kept, as officials read it.
"""

import logging
import re
from collections.abc import Callable, Mapping

from .letters import spell
from .numbers import read_code_number, read_int

_LOGGER = logging.getLogger(__name__)

_CODE_PART = r"[A-ZĐ][A-Za-zĐđƯư&]*[0-9]*"
_CODE = rf"{_CODE_PART}(?:\s?[-–]\s?{_CODE_PART})*"
# "07/CT-TTg", "09/2017/NĐ-CP", "/KH-UBND" (number left blank); the code has two letters or more.
DOC_NUMBER = re.compile(
    rf"(?<![\w/%])(?:([0-9]+)(?:/([0-9]{{4}}))?)?/(?=[A-ZĐ][A-Za-zĐđƯư&])({_CODE})(?!\w)"
)
# "Số: ..../TB-UBND", "Số: ___/QĐ-UBND": the number left blank, to be filled in by hand.
BLANK_NUMBER = re.compile(r"(?:\.{2,}+|…++|_{2,}+)\s*(?=/[A-ZĐ])")
# Party documents: "18-NQ/TW", "05-CT/TU".
PARTY_DOC_NUMBER = re.compile(rf"(?<![\w/])([0-9]+)-({_CODE_PART})/({_CODE})(?!\w)")
# Standards: "QCVN 01:2009/BYT", "TCVN 5574:2018", "QCVN 01-1:2018/BYT": number, year, issuer.
STANDARD = re.compile(
    rf"(?<!\w)(QCVN|TCVN|QCĐP|TCCS|ISO)\s?([0-9]+(?:-[0-9]+)*):([0-9]{{4}})(?:/({_CODE}))?(?!\w)"
)
# "Đề án 06", "Tổ công tác 06", "Chỉ thị số 05": a name's leading zero is said ("không sáu").
NAMED_NUMBER = re.compile(
    r"(?<!\w)((?i:đề án|chỉ thị|nghị quyết|nghị định|quyết định|kế hoạch|công văn|thông tư|"
    r"thông báo|tờ trình|công điện|tổ công tác|chuyên án)\s+(?:(?i:số)\s+)?)(0[0-9]+)"
    r"(?![\w/-]|[.,][0-9])"
)
_PART = re.compile(r"([^0-9]+)([0-9]*)")
_NAMES_REGULATION = re.compile(r"quy định(?:\s+số)?\s*$")
_SPLIT = re.compile(r"\s?[-–]\s?")
_NUMBER_WORD = re.compile(r"(?i:số)\s*:?\s*$")
_FORM = re.compile(r"(?i:mẫu)(?:\s+(?i:tờ khai|biểu|số))*\s*:?\s*$")
_CLAUSE_END = re.compile(r"[.;:!?\n]")
_LOOK_AHEAD = 100  # characters of the clause searched for "của <issuer>"


def _party_kind(match: re.Match[str]) -> str:
    """The Party writes both its decisions and its regulations "QĐ": "Quy định 144-QĐ/TW" is a
    regulation ("quy định"), a "QĐ" the text does not name a decision."""
    kind = match.group(2)
    before = match.string[max(0, match.start() - 30) : match.start()].casefold()
    return "QyĐ" if kind == "QĐ" and _NAMES_REGULATION.search(before) else kind


class DocumentNumbers:
    """Reads document numbers with one set of dictionaries (kinds, issuers, abbreviations)."""

    def __init__(
        self,
        types: Mapping[str, str],
        codes: Mapping[str, str],
        abbreviations: Mapping[str, str],
    ) -> None:
        self._types = types
        self._codes = codes
        self._abbreviations = abbreviations

    def part(self, part: str) -> str:
        """Spoken form of one issuer part: "TTg", "UBND", "QH13", "GD&ĐT"."""
        match = _PART.fullmatch(part)
        letters, digits = (match.group(1), match.group(2)) if match else (part, "")
        spoken = self._codes.get(letters) or self._abbreviations.get(letters)
        if spoken is None:
            pieces = letters.split("&")
            spoken = " và ".join(
                self._codes.get(p) or self._abbreviations.get(p) or spell(p) for p in pieces if p
            )
        if not digits:
            return spoken
        if letters.endswith("QH"):  # "QH13": the 13th legislature
            return f"{spoken} khóa {read_int(int(digits))}"
        return f"{spoken} {read_int(int(digits))}"

    def _spoken_parts(self, parts: list[str]) -> tuple[str, str]:
        """(kind name or "", issuers) of a code split at its hyphens."""
        kind = self._types.get(parts[0], "") if len(parts) > 1 else ""
        issuers = parts[1:] if kind else parts
        return kind, ", ".join(self.part(p) for p in issuers)

    def _form_name(self, parts: list[str], before: str) -> str:
        """A form's code word by word: "TK-SDDPNN" -> "tờ khai sử dụng đất phi nông nghiệp", the
        kind left out when the words `before` just said it ("Tờ khai mẫu 01/TK-...")."""
        kind = self._types.get(parts[0])
        if kind and kind in before:
            parts = parts[1:]
        return " ".join(self._types.get(p) or self.part(p) for p in parts)

    def _issuer_repeated(self, text: str, end: int, issuer_code: str, issuer: str) -> bool:
        """True when the clause after the number says "của <issuer>" itself."""
        tail = text[end : end + _LOOK_AHEAD]
        stop = _CLAUSE_END.search(tail)
        tail = tail[: stop.start()] if stop else tail
        names = [re.escape(issuer_code)]
        if issuer:
            names.append(re.escape(issuer))
        # "của UBND huyện", "của Ban Thường vụ Tỉnh ủy": up to three words may come between.
        repeat = rf"\bcủa\s+(?:[^\W\d_]+\s+){{0,3}}?(?:{'|'.join(names)})(?!\w)"
        return re.search(repeat, tail, re.IGNORECASE) is not None

    def speak(
        self, text: str, start: int, end: int, number: str | None, year: str | None, code: str
    ) -> str:
        """The spoken document number found at text[start:end]."""
        parts = [p for p in _SPLIT.split(code) if p]
        kind, issuer = self._spoken_parts(parts)
        issuer_code = parts[1] if kind and len(parts) > 1 else parts[0]
        if self._issuer_repeated(text, end, issuer_code, issuer.split(", ")[0]):
            issuer = ""
        before = text[max(0, start - 40) : start]
        said_number = _NUMBER_WORD.search(before) is not None
        before_words = _NUMBER_WORD.sub("", before).rstrip().lower()
        # "Chỉ thị số 07/CT-TTg", "Thông báo kết luận số 45-TB/HU": the kind was just said.
        kind_named = bool(kind) and kind in " ".join(before_words.split()[-5:])
        of_issuer = f"của {issuer}" if issuer else ""
        if number is None:  # "Số: /KH-UBND": the number is filled in by hand later
            return " ".join(w for w in (kind, of_issuer) if w) or issuer
        spoken = read_code_number(number)
        if year:  # "100/2019": a pause, or "một trăm năm hai nghìn" is heard as 105 thousand
            spoken += f", năm {read_int(int(year))}"
        if _FORM.search(before):  # "mẫu số 01/TK-SDDPNN": a form's code names it, no issuer
            named = " ".join(_NUMBER_WORD.sub("", before).lower().split()[-4:])
            return f"{spoken}, {self._form_name(parts, named)}"
        if kind and said_number and not kind_named:  # "Số: 182/KH-UBND"
            return f"{spoken}, {kind} {of_issuer}".strip()
        words = [] if kind_named or not kind else [kind]
        if not said_number:
            words.append("số")
        words += [spoken, of_issuer]
        return " ".join(w for w in words if w)

    def _standard(self, match: re.Match[str]) -> str:
        """A standard's number, year and issuer: "QCVN 01:2009/BYT" -> "QCVN không một năm hai
        nghìn không trăm linh chín của Bộ Y tế"."""
        kind, number, year, issuer = match.groups()
        spoken = " gạch ".join(read_code_number(p) for p in number.split("-"))
        spoken = f"{kind} {spoken}, năm {read_int(int(year))}"
        if issuer:
            spoken += " của " + ", ".join(self.part(p) for p in _SPLIT.split(issuer) if p)
        return spoken

    def substitute(self, text: str) -> str:
        """Replace every document number and standard of `text` by its spoken form."""
        text = STANDARD.sub(self._standard, text)
        text = BLANK_NUMBER.sub("", text)
        text = DOC_NUMBER.sub(self._replacer(lambda m: (m.group(1), m.group(2), m.group(3))), text)
        text = PARTY_DOC_NUMBER.sub(
            self._replacer(lambda m: (m.group(1), None, f"{_party_kind(m)}-{m.group(3)}")),
            text,
        )
        return NAMED_NUMBER.sub(lambda m: m.group(1) + read_code_number(m.group(2)), text)

    def _replacer(
        self, fields: Callable[[re.Match[str]], tuple[str | None, str | None, str]]
    ) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            number, year, code = fields(match)
            return self.speak(match.string, match.start(), match.end(), number, year, code)

        return replace
