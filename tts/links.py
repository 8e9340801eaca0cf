"""Web addresses and e-mail addresses, said the way people dictate them.

"https://dichvucong.gov.vn" becomes "dích vu cong chấm gốp chấm vê en": the scheme is dropped,
dots are "chấm", "@" is "a còng", a name written without diacritics is cut into Vietnamese
syllables and anything else is spelled with Vietnamese letter names, so that espeak never
switches to English in the middle of an address.
"""

import logging
import re
from collections.abc import Mapping

from .letters import segment_name, spell
from .numbers import read_digits, read_integer_string

_LOGGER = logging.getLogger(__name__)

_TLD = r"(?:vn|com|net|org|gov|edu|info|int|io|asia|biz)"
URL = re.compile(
    rf"(?i)(?<![\w@.])(?:https?://|www\.)[\w.-]+[\w](?:/[\w./?=&%#~+-]*[\w/])?"
    rf"|(?<![\w@.-])[a-z0-9-]++(?:\.[a-z0-9-]+)*\.{_TLD}(?![\w.])(?:/[\w./?=&%#~+-]*[\w/])?"
)
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+(?<!\.)")
_SCHEME = re.compile(r"(?i)^https?://")
_PIECES = re.compile(r"([^\W_]+|[./@:\-_?=&])")
_JOINERS = {
    ".": "chấm", "/": "gạch chéo", "@": "a còng", "-": "gạch ngang", "_": "gạch dưới",
    ":": "hai chấm", "?": "hỏi", "=": "bằng", "&": "và",
}  # fmt: skip


def _piece(piece: str, loanwords: Mapping[str, str], known: frozenset[str]) -> str:
    """One name between dots: a loanword, Vietnamese syllables, a number or spelled letters."""
    lowered = piece.lower()
    if lowered in loanwords:
        return loanwords[lowered]
    if lowered.isdigit():
        return read_integer_string(lowered) if len(lowered) <= 4 else read_digits(lowered)
    words: list[str] = []
    for run in re.findall(r"[^\W\d_]+|\d+", lowered):
        if run.isdigit():
            words.append(read_digits(run))
            continue
        syllables = segment_name(run, known) if len(run) > 2 else None
        words.append(" ".join(syllables) if syllables else spell(run))
    return " ".join(words)


def speak_address(
    address: str, loanwords: Mapping[str, str], known: frozenset[str] = frozenset()
) -> str:
    """The spoken form of a web or e-mail address; `known` acronyms are spelled inside names.

    A web address is said up to its site name: nobody can note "/portal/Pages/default.aspx"
    from a loudspeaker, and the site's own search finds the page.
    """
    address = _SCHEME.sub("", address)
    if "@" not in address:
        address = address.split("/", 1)[0]
    words: list[str] = []
    for piece in _PIECES.findall(address):
        words.append(_JOINERS.get(piece) or _piece(piece, loanwords, known))
    return " ".join(w for w in words if w)


def substitute(text: str, loanwords: Mapping[str, str], known: frozenset[str]) -> str:
    """Replace e-mail and web addresses in `text` by their spoken forms."""
    text = EMAIL.sub(lambda m: speak_address(m.group(0), loanwords, known), text)
    return URL.sub(lambda m: speak_address(m.group(0), loanwords, known), text)
