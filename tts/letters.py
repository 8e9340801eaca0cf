"""Letters, syllables and foreign words, made into text a Vietnamese voice reads as Vietnamese.

espeak-ng's Vietnamese voice reads a word with its English rules when the spelling does not look
Vietnamese: an acronym ("UBND" becomes "ubnd" said in English), a brand ("Zalo", "Facebook"), a
toneless syllable ending in a stop ("dich", "hat") or several syllables written as one word
("thanhhoa"). This module decides what each such word becomes:

* an all-capital word that is a Vietnamese syllable ("KẾ", "HOẠCH", "BAN") is simply lowered:
  all-caps headings are read as words, never letter by letter;
* an all-capital word that is not ("UBND" when the dictionary lacks it, "ATM") is spelled with
  Vietnamese letter names: "u bê en đê", "a tê em";
* a foreign word is respelled into Vietnamese syllables ("thanhhoa" -> "thanh hoa",
  "Sinlaku" -> "sin la cu", "gov" -> "góp"), unless loanwords.tsv knows it.
"""

import functools
import logging
import re
import unicodedata
from collections.abc import Iterator

_LOGGER = logging.getLogger(__name__)

# How Vietnamese read letters aloud, as in acronyms: "UBND" -> "u bê en đê".
LETTER_NAMES: dict[str, str] = {
    "a": "a", "ă": "á", "â": "ớ", "b": "bê", "c": "xê", "d": "đê", "đ": "đê", "e": "e",
    "ê": "ê", "f": "ép", "g": "giê", "h": "hát", "i": "i", "j": "di", "k": "ca", "l": "e lờ",
    "m": "em", "n": "en", "o": "o", "ô": "ô", "ơ": "ơ", "p": "pê", "q": "quy", "r": "e rờ",
    "s": "ét", "t": "tê", "u": "u", "ư": "ư", "v": "vê", "w": "vê kép", "x": "ích",
    "y": "i dài", "z": "dét",
}  # fmt: skip

VOWELS = frozenset("aăâeêioôơuưy")
_TONES = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng
_VIETNAMESE_ONLY = frozenset("đăâêôơư")

_ONSET = r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnprstvx])"
# Vowel groups of Vietnamese syllables, longest first.
_NUCLEI = (
    "iêu", "oai", "oay", "oeo", "uây", "uôi", "uya", "uyê", "ươi", "ươu", "yêu", "uyu",
    "ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "ia", "iê", "iu", "oa", "oă", "oe", "oi",
    "ôi", "ơi", "oo", "ua", "uâ", "uê", "ui", "uô", "uơ", "uy", "ưa", "ưi", "ươ", "ưu", "yê",
    "a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y",
)  # fmt: skip
_SYLLABLE = re.compile(_ONSET + "?(?:" + "|".join(_NUCLEI) + ")(?:ng|nh|ch|[cmnpt])?")

# Toneless ASCII spelling, for words written without diacritics (web addresses, brands).
_ASCII_ONSETS = (
    "ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
    "b", "c", "d", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "",
)  # fmt: skip
# Nuclei ending in a glide take no final consonant.
_OPEN_NUCLEI = (
    "oai", "oay", "oeo", "uay", "uoi", "ieu", "yeu", "uou", "ai", "ao", "au", "ay", "eo", "eu",
    "iu", "oi", "ui", "uu", "ia", "ua", "uya",
)  # fmt: skip
_CLOSED_NUCLEI = (
    "uye",
    "ie",
    "ye",
    "uo",
    "oa",
    "oe",
    "oo",
    "ue",
    "uy",
    "a",
    "e",
    "i",
    "o",
    "u",
    "y",
)
_CODAS = ("ng", "nh", "ch", "c", "m", "n", "p", "t", "")
_STOPS = ("c", "ch", "p", "t")
_VE = ("eo", "êu")
# Toneless rhymes only exist with a circumflex or horn: "tien" is "tiên", "ruou" is "rươu".
_RHYME_MARKS = (
    ("uou", "ươu"), ("ie", "iê"), ("ye", "yê"), ("uo", "uô"), ("eu", "êu"), ("uu", "ưu"),
    ("ue", "uê"),
)  # fmt: skip

# A loose respelling of foreign letters before syllables are sought: "f" -> "ph", "w" -> "u".
_FOREIGN = (
    (re.compile(r"([a-z])\1+"), r"\1"),
    (re.compile(r"ck|q(?!u)"), "c"),
    (re.compile(r"sh"), "s"),
    (re.compile(r"f"), "ph"),
    (re.compile(r"w"), "u"),
    (re.compile(r"z"), "d"),
    (re.compile(r"j"), "gi"),
    (re.compile(r"^y(?=[aeiou])"), "d"),
    (re.compile(r"c(?=[eiy])"), "x"),
    (re.compile(r"k(?=[aou])"), "c"),
    (re.compile(r"g(?=[ey])"), "gh"),
    (re.compile(r"x(?=[^aeiouy]|$)"), "c"),
)
# Final consonants Vietnamese does not have, as its loanwords end them: "AIDS" -> "ết".
_FOREIGN_CODAS = {"k": "c", "l": "n", "s": "t", "d": "t", "b": "p", "v": "p", "g": "c", "x": "c"}
_FOREIGN_ALONE = {"s": "x", "k": "c", "d": "đ", "z": "d", "f": "ph", "j": "gi", "w": "u"}


def strip_tones(word: str) -> str:
    """`word` without its tone marks, keeping the letters ă â ê ô ơ ư đ."""
    decomposed = unicodedata.normalize("NFD", word)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))


def is_syllable(word: str) -> bool:
    """True when `word` (any case) is spelled like one Vietnamese syllable: "HOẠCH", "ban".

    Words typed without diacritics ("THONG", "TIEN") count when they split into one syllable.
    """
    base = strip_tones(word.lower())
    if _SYLLABLE.fullmatch(base):
        return True
    if not base.isascii():
        return False
    found = split_syllables(base)
    return found is not None and len(found) == 1


def has_vietnamese_marks(word: str) -> bool:
    """True when `word` carries a tone mark or a letter only Vietnamese uses."""
    lowered = word.lower()
    return any(c in _VIETNAMESE_ONLY for c in lowered) or strip_tones(lowered) != lowered


def spell(letters: str) -> str:
    """Vietnamese letter names for an acronym: "UBND" -> "u bê en đê", "F0" -> "ép"."""
    names = [LETTER_NAMES.get(c, "") for c in strip_tones(letters.lower())]
    return " ".join(n for n in names if n)


def _add_acute(rhyme: str) -> str:
    """Put a sắc tone on the last vowel before the final consonant: "ich" -> "ích"."""
    for i in range(len(rhyme) - 1, -1, -1):
        if rhyme[i] in VOWELS:
            accented = unicodedata.normalize("NFC", rhyme[i] + "\u0301")
            return rhyme[:i] + accented + rhyme[i + 1 :]
    return rhyme


def _spoken_syllable(onset: str, nucleus: str, coda: str) -> str:
    """One toneless syllable written so espeak keeps it Vietnamese."""
    rhyme = nucleus + coda
    for plain, marked in _RHYME_MARKS:
        if plain in rhyme:
            rhyme = rhyme.replace(plain, marked, 1)
            break
    if coda in _STOPS:  # a stop-final syllable always has a sắc or nặng tone
        rhyme = _add_acute(rhyme)
    elif (onset == "b" and rhyme.startswith("uy")) or (onset == "v" and rhyme[:2] in _VE):
        # espeak takes toneless "buy" and "veo" for English: give them a tone.
        i = 1 if onset == "b" else 0
        rhyme = rhyme[:i] + unicodedata.normalize("NFC", rhyme[i] + "\u0301") + rhyme[i + 1 :]
    if onset == "g" and strip_tones(rhyme[0]) in "eêiy":  # Vietnamese spelling: "ghe", "ghi"
        onset = "gh"
    elif onset == "c" and strip_tones(rhyme[0]) in "eêiy":  # "ke", "ki"
        onset = "k"
    elif onset == "k" and strip_tones(rhyme[0]) not in "eêiy":  # "co", "ca"
        onset = "c"
    return onset + rhyme


def _syllables_at(word: str, start: int, loose: bool) -> Iterator[tuple[int, str, bool]]:
    """Every syllable that `word` can start with at `start`: (end, spoken form, has onset).

    `loose` also accepts foreign final consonants and a lone consonant as its own syllable
    ("s" -> "xơ"), so that every word splits.
    """
    found = False
    for onset in _ASCII_ONSETS:
        if not word.startswith(onset, start):
            continue
        after_onset = start + len(onset)
        for nucleus in _OPEN_NUCLEI + _CLOSED_NUCLEI:
            if not word.startswith(nucleus, after_onset):
                continue
            after_nucleus = after_onset + len(nucleus)
            codas: tuple[str, ...] = ("",) if nucleus in _OPEN_NUCLEI else _CODAS
            if loose and nucleus not in _OPEN_NUCLEI:
                codas = (*codas, *_FOREIGN_CODAS)
            for coda in codas:
                if word.startswith(coda, after_nucleus):
                    spoken_coda = coda if coda in _CODAS else _FOREIGN_CODAS[coda]
                    found = True
                    yield (
                        after_nucleus + len(coda),
                        _spoken_syllable(onset, nucleus, spoken_coda),
                        bool(onset),
                    )
    if not found and loose and word[start] not in VOWELS:
        yield start + 1, _FOREIGN_ALONE.get(word[start], word[start]) + "ơ", True


@functools.lru_cache(maxsize=4096)
def _segments(word: str, loose: bool, known: frozenset[str]) -> tuple[str, ...] | None:
    """Split a lower-case ASCII word into the fewest pieces: syllables or `known` acronyms.

    Ties go to fewer syllables without an initial consonant after the first ("dichvucong" is
    "dích vu cong", not "dích vúc ong"). A known acronym ("ubnd" in "ubndxahoanghop") is
    spelled with letter names.
    """
    # best[i] = (cost of the rest from i, spoken piece at i, where it ends), from the end.
    best: list[tuple[tuple[int, int], str, int] | None] = [None] * (len(word) + 1)
    best[len(word)] = ((0, 0), "", len(word))
    for start in range(len(word) - 1, -1, -1):
        options = list(_syllables_at(word, start, loose))
        options += [(start + len(k), spell(k), True) for k in known if word.startswith(k, start)]
        for end, spoken, has_onset in options:
            rest = best[end]
            if rest is None:
                continue
            cost = (rest[0][0] + 1, rest[0][1] + (not has_onset and start > 0))
            current = best[start]
            if current is None or cost < current[0]:
                best[start] = (cost, spoken, end)
    if best[0] is None:
        return None
    pieces: list[str] = []
    step = best[0]
    while step is not None and step[1]:
        _, spoken, end = step
        pieces.append(spoken)
        step = best[end]
    return tuple(pieces)


def segment_name(word: str, known: frozenset[str] = frozenset()) -> list[str] | None:
    """A name written as one word ("ubndxahoanghop") as syllables and spelled acronyms."""
    lowered = word.lower()
    if not lowered.isascii() or not lowered.isalpha():
        return None
    found = _segments(lowered, False, known)
    return list(found) if found is not None else None


@functools.lru_cache(maxsize=4096)
def split_marked(word: str) -> tuple[str, ...] | None:
    """A word with Vietnamese marks that is several syllables run together ("Eĩ", "Hàbình"),
    split into the fewest syllables; None when some letters belong to no syllable ("Krông",
    "Đắk": names espeak reads well as they are)."""
    # best[i] = (pieces from i to the end, where the first piece ends), filled from the end.
    best: list[tuple[int, int] | None] = [None] * (len(word) + 1)
    best[len(word)] = (0, len(word))
    for start in range(len(word) - 1, -1, -1):
        for end in range(start + 1, min(len(word), start + 8) + 1):
            rest = best[end]
            if rest is None or not is_syllable(word[start:end]):
                continue
            current = best[start]
            if current is None or rest[0] + 1 < current[0]:
                best[start] = (rest[0] + 1, end)
    if best[0] is None:
        return None
    pieces: list[str] = []
    start, step = 0, best[0]
    while step is not None and start < len(word):
        pieces.append(word[start : step[1]])
        start, step = step[1], best[step[1]]
    return tuple(pieces)


def split_syllables(word: str) -> list[str] | None:
    """A toneless ASCII word as Vietnamese syllables: "thanhhoa" -> ["thanh", "hoa"]."""
    lowered = word.lower()
    if not lowered.isascii() or not lowered.isalpha():
        return None
    found = _segments(lowered, False, frozenset())
    return list(found) if found is not None else None


def respell_foreign(word: str) -> str:
    """A foreign word in Vietnamese syllables: "Doksuri" -> "dóc su ri", "gov" -> "góp".

    A word without a vowel ("vn", "www", "km") cannot be said as syllables and is spelled.
    """
    lowered = word.lower()
    if not any(c in "aeiouy" for c in lowered):
        return spell(lowered)
    plain = split_syllables(lowered)
    if plain is not None:
        return " ".join(plain)
    loose = lowered
    for pattern, replacement in _FOREIGN:
        loose = pattern.sub(replacement, loose)
    found = _segments(loose, True, frozenset())
    if found is None:  # only when a loose spelling still has no syllable at all
        return spell(lowered)
    return " ".join(found)
