"""The normalizer's dictionaries, kept as TSV files in tts/data so a commune can extend them.

Everything a reader must know by heart (what "UBND" stands for, how "km/h" is said, that "Zalo"
is "Da lô") lives in data, not in code: abbreviations.tsv, document_types.tsv,
document_codes.tsv, units.tsv, loanwords.tsv, names.tsv, roads.tsv and land_uses.tsv. Each is
KEY<TAB>spoken form, "#" comments; in_context.tsv has two more columns (the words around an
abbreviation).
"""

import functools
import hashlib
import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from .errors import TtsError

_LOGGER = logging.getLogger(__name__)


def load_tsv(name: str) -> dict[str, str]:
    """Read a KEY<TAB>value file from tts/data; '#' starts a comment line, keys are NFC."""
    table: dict[str, str] = {}
    text = resources.files("tts").joinpath("data", name).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("\t")
        if not sep or not key.strip() or not value.strip():
            raise TtsError(f"tts/data/{name}:{number}: expected KEY<TAB>expansion, got {line!r}")
        key = unicodedata.normalize("NFC", key.strip())
        if key in table:
            raise TtsError(f"tts/data/{name}:{number}: {key!r} is listed twice")
        table[key] = unicodedata.normalize("NFC", value.strip())
    _LOGGER.debug("loaded %d entries from tts/data/%s", len(table), name)
    return table


@dataclass(frozen=True)
class InContext:
    """An abbreviation read as `spoken` only next to one of its words (in_context.tsv)."""

    abbreviation: str
    spoken: str
    after: tuple[str, ...]
    before: tuple[str, ...]


@functools.cache
def in_context() -> tuple[InContext, ...]:
    """in_context.tsv: abbreviations that mean a word only in some company ("CT UBND")."""
    lists: dict[str, tuple[str, ...]] = {}
    entries: dict[str, InContext] = {}
    for key, value in load_tsv("in_context.tsv").items():
        if key.startswith("@"):
            lists[key] = _words(value, lists)
            continue
        fields = [f.strip() for f in value.split("\t")]
        if len(fields) != 3:
            raise TtsError(f"tts/data/in_context.tsv: {key!r}: expected 4 columns")
        spoken, after, before = fields
        entries[key] = InContext(key, spoken, _words(after, lists), _words(before, lists))
    return tuple(entries.values())


def _words(column: str, lists: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The words of one in_context.tsv column, "@NAME" lists expanded."""
    words: list[str] = []
    for word in (w.strip() for w in column.split("|")):
        if word.startswith("@"):
            if word not in lists:
                raise TtsError(f"tts/data/in_context.tsv: {word} is used before it is defined")
            words += lists[word]
        elif word and word != "-":
            words.append(unicodedata.normalize("NFC", word))
    return tuple(words)


@functools.cache
def roads() -> Mapping[str, str]:
    """roads.tsv: road designations read before a road number ("QL" -> "quốc lộ")."""
    return MappingProxyType(load_tsv("roads.tsv"))


@functools.cache
def land_uses() -> Mapping[str, str]:
    """land_uses.tsv: land-use codes, the kind of land said after "đất" ("ONT")."""
    return MappingProxyType(load_tsv("land_uses.tsv"))


@functools.cache
def default_abbreviations() -> Mapping[str, str]:
    """abbreviations.tsv: exact-case whole-word abbreviations of running text ("UBND")."""
    return MappingProxyType(load_tsv("abbreviations.tsv"))


@functools.cache
def document_types() -> Mapping[str, str]:
    """document_types.tsv: the kind part of a document number ("CT" -> "chỉ thị")."""
    return MappingProxyType(load_tsv("document_types.tsv"))


@functools.cache
def document_codes() -> Mapping[str, str]:
    """document_codes.tsv: issuer parts read differently inside document numbers ("TU")."""
    return MappingProxyType(load_tsv("document_codes.tsv"))


@functools.cache
def units() -> Mapping[str, str]:
    """units.tsv: unit symbols after a number ("km" -> "ki lô mét")."""
    return MappingProxyType(load_tsv("units.tsv"))


@functools.cache
def names() -> Mapping[str, str]:
    """names.tsv: vaccine, medicine and product names as announcers say them, keyed in lower
    case; a name may be several words ("AVAC ASF LIVE")."""
    return MappingProxyType({k.lower(): v for k, v in load_tsv("names.tsv").items()})


@functools.cache
def loanwords() -> Mapping[str, str]:
    """loanwords.tsv: foreign words respelled the Vietnamese way, keyed in lower case."""
    return MappingProxyType({k.lower(): v for k, v in load_tsv("loanwords.tsv").items()})


@functools.cache
def fingerprint() -> str:
    """A hash of the normalizer's code and dictionaries: caches keyed on raw text include it, so
    any change to how text is read invalidates them."""
    digest = hashlib.sha256()
    package = resources.files("tts")
    sources = [package.joinpath(name) for name in sorted(p.name for p in package.iterdir())]
    data = package.joinpath("data")
    sources += [data.joinpath(name) for name in sorted(p.name for p in data.iterdir())]
    for source in sources:
        if source.is_file() and source.name.endswith((".py", ".tsv")):
            digest.update(source.name.encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()
