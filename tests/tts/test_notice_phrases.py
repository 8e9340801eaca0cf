"""Hundreds of realistic notice phrases (tests/data/notice_phrases.txt) come out as plain spoken
Vietnamese: no digit, slash or symbol a voice would spell or skip, no word espeak-ng reads in
English, every line a finished sentence."""

import re
import unicodedata
from pathlib import Path

import pytest

from tts import normalize
from tts.phonemes import language_switches, phonemes

PHRASES = Path(__file__).parents[1] / "data" / "notice_phrases.txt"
_LEFT_OVER = re.compile(r"[0-9/\\%&@#*~^|<>=+°_\[\]{}()\"“”]")


def _phrases() -> list[str]:
    lines = PHRASES.read_text(encoding="utf-8").splitlines()
    return [line.replace("\\n", "\n") for line in lines if line.strip() and line[0] != "#"]


PHRASE_LIST = _phrases()


def test_the_set_is_large_and_has_no_repeats() -> None:
    assert len(PHRASE_LIST) >= 500
    assert len(set(PHRASE_LIST)) == len(PHRASE_LIST)


@pytest.mark.parametrize("written", PHRASE_LIST, ids=range(len(PHRASE_LIST)))
def test_phrase_is_plain_spoken_vietnamese(written: str) -> None:
    spoken = normalize(written)
    assert spoken, written
    assert not _LEFT_OVER.search(spoken), spoken
    assert not [c for c in spoken if unicodedata.category(c) in ("So", "Sm", "Co")], spoken
    for line in spoken.splitlines():
        assert line == line.strip() and "  " not in line and line[-1] in ".!?…;:", repr(line)
    assert spoken.count("\n") <= written.count("\n"), spoken


def test_no_phrase_switches_to_english() -> None:
    spoken = [normalize(p) for p in PHRASE_LIST]
    switched = {
        s: language_switches(s) for s in spoken if re.search(r"\((?!vi\))[a-z-]+\)", phonemes(s))
    }
    assert switched == {}


_WEEKDAYS = ("thứ Ba", "thứ 3", "T3", "CN", "Chủ nhật")
_JOINS = (" ", ", ", " (", ", ngày ", " ngày ", " (ngày ", " - ")
_DATES = ("15/10", "15/10/2024", "15-10-2024", "15 tháng 10", "15/10/24")


@pytest.mark.parametrize("prefix", ["", "ngày ", "Sáng ", "vào ngày ", "các ngày "])
def test_weekday_and_date_in_every_form(prefix: str) -> None:
    """ "ngày thứ Ba 15/10", "thứ 3 (15/10)", "CN - 15/10/24": the day named once, its date after
    a pause or "ngày", never a range, never "ngày ngày"."""
    named = prefix.strip() in ("ngày", "vào ngày")
    for weekday in _WEEKDAYS:
        for join in _JOINS:
            for date in _DATES:
                written = f"{prefix}{weekday}{join}{date}{')' if '(' in join else ''} họp dân"
                spoken = normalize(written).lower()
                assert "tháng mười" in spoken and "đến" not in spoken, (written, spoken)
                assert "ngày ngày" not in spoken and not re.search(r"[0-9]", spoken), spoken
                assert not re.search(r"(?:thứ \w+|chủ nhật) (?:mười|hai|ba)", spoken), spoken
                if named:
                    assert not re.search(r"(?:thứ \w+|chủ nhật),? ngày", spoken), spoken
