"""The normalizer's dictionaries, kept as TSV files in tts/data so a commune can extend them.

Everything a reader must know by heart (what "UBND" stands for, how "km/h" is said, that "Zalo"
is "Da lô") lives in data, not in code: abbreviations.tsv, document_types.tsv,
document_codes.tsv, units.tsv and loanwords.tsv. Each is KEY<TAB>spoken form, "#" comments.
"""

import functools
import hashlib
import logging
import unicodedata
from collections.abc import Mapping
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
