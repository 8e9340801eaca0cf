"""The public test set tests/data/normalize_cases.tsv (real notices, written -> spoken), and
what libespeak-ng makes of the spoken forms: Vietnamese throughout, never an English switch."""

import re
from collections import Counter
from pathlib import Path

import pytest

from tts import normalize
from tts.phonemes import language_switches, phonemes

CASES = Path(__file__).parents[1] / "data" / "normalize_cases.tsv"


def _load_cases() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    lines = CASES.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert lines[header].split("\t") == ["category", "written", "spoken"]
    for number, line in enumerate(lines[header + 1 :], start=header + 2):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 3, f"normalize_cases.tsv:{number}: expected 3 fields"
        category, written, spoken = (f.replace("\\n", "\n") for f in fields)
        rows.append((category, written, spoken))
    return rows


CASE_ROWS = _load_cases()


def test_the_set_is_large_and_varied() -> None:
    counts = Counter(category for category, _, _ in CASE_ROWS)
    assert len(CASE_ROWS) >= 200
    assert len(counts) >= 15
    assert min(counts.values()) >= 5, counts
    written = [w for _, w, _ in CASE_ROWS]
    assert len(set(written)) == len(written), "a case is listed twice"


@pytest.mark.parametrize(
    ("category", "written", "spoken"),
    CASE_ROWS,
    ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASE_ROWS)],
)
def test_case(category: str, written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def _switches(text: str) -> list[str]:
    """Words of `text` that espeak-ng's Vietnamese voice reads in another language."""
    return language_switches(text) if re.search(r"\((?!vi\))[a-z-]+\)", phonemes(text)) else []


def test_phonemes_show_a_language_switch_when_there_is_one() -> None:
    # The check below would pass vacuously if the marker never appeared: prove it does.
    assert "(en)" in phonemes("UBND xã, hotline")
    assert language_switches("UBND xã, hotline") == ["UBND", "hotline"]
    assert "(en)" not in phonemes("Ủy ban nhân dân xã, hót lai")


def test_no_spoken_form_switches_to_english() -> None:
    found = {spoken: _switches(spoken) for _, _, spoken in CASE_ROWS}
    assert {s: words for s, words in found.items() if words} == {}


def test_the_sample_is_read_as_vietnamese_throughout(sample_text: str) -> None:
    spoken = normalize(sample_text)
    assert "(en)" in phonemes(sample_text)  # the raw plan has "UBND", "TTg", "./."
    assert "(en)" not in phonemes(spoken)
    assert _switches(spoken) == []
