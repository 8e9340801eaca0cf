"""The intelligibility benchmark's own arithmetic: text comparison, edit distance, the channel.

`bench/listen.py` is not a package; it is loaded from its path. Nothing here runs the listener
(faster-whisper is installed only by `make bench-listen`).
"""

from __future__ import annotations

import importlib.util
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

RATE = 16_000


@pytest.fixture(scope="module")
def listen() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "listen.py"
    spec = importlib.util.spec_from_file_location("bench_listen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_spoken_words_keeps_diacritics_drops_case_and_punctuation(listen: ModuleType) -> None:
    decomposed = unicodedata.normalize("NFD", "Đài  truyền-thanh, xã HOẰNG Hợp!\n(số 07)")
    assert listen.spoken_words(decomposed) == "đài truyền thanh xã hoằng hợp số 07"
    assert listen.spoken_words("hỏa") != listen.spoken_words("hoa")  # a tone is a letter


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [
        ("kitten", "sitting", 3),
        ("", "", 0),
        ("abc", "", 3),
        ("abc", "abc", 0),
        ("abc", "xabcx", 2),
        ("hoa", "hỏa", 1),
    ],
)
def test_edit_errors_sum_to_the_levenshtein_distance(
    listen: ModuleType, ref: str, hyp: str, distance: int
) -> None:
    errors = listen.edit_errors(ref, hyp)
    assert len(errors) == len(ref)
    assert sum(errors) == (distance if ref else 0)


def test_edit_errors_are_charged_where_they_happen(listen: ModuleType) -> None:
    assert listen.edit_errors("abcd", "abxd") == [0, 0, 1, 0]
    assert listen.edit_errors("abcd", "abd") == [0, 0, 1, 0]
    assert listen.edit_errors("abcd", "abcdzz") == [0, 0, 0, 2]  # insertions: the item before
    assert listen.edit_errors("abcd", "zabcd") == [1, 0, 0, 0]  # at the start: the first
    assert listen.edit_errors(["một", "hai", "ba"], ["một", "ba"]) == [0, 1, 0]


def test_score_counts_characters_words_and_paragraphs(listen: ModuleType) -> None:
    ref = listen.reference("Một hai ba.\nBốn năm!")
    assert ref.text == "một hai ba bốn năm"
    result = listen.score(ref, listen.spoken_words("một hai ba. bốn nam"))
    assert (result.char_errors, result.chars) == (1, len(ref.text))
    assert (result.word_errors, result.words) == (1, 5)
    assert result.paragraphs == [(0, 10, 0, 3), (1, 7, 1, 2)]
    assert result.cer == pytest.approx(1 / 18)
    assert result.wer == pytest.approx(0.2)


def _tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return np.sin(2 * np.pi * freq * t).astype(np.float32)


def _gain_db(listen: ModuleType, freq: float) -> float:
    tone = _tone(freq)
    out = listen.band_limit(tone, RATE)
    return 10 * np.log10(np.mean(out**2) / np.mean(tone**2))


def test_band_limit_passes_the_horns_band_only(listen: ModuleType) -> None:
    assert _gain_db(listen, 1000) == pytest.approx(0.0, abs=0.2)
    assert _gain_db(listen, 300) == pytest.approx(-3.0, abs=0.3)  # the corners: -3 dB
    assert _gain_db(listen, 5000) == pytest.approx(-3.0, abs=0.3)
    assert _gain_db(listen, 100) < -35
    assert _gain_db(listen, 7500) < -13


def test_noise_is_repeatable_per_seed_and_mostly_low(listen: ModuleType) -> None:
    one = listen.outdoor_noise(RATE * 4, RATE, seed=1)
    assert np.array_equal(one, listen.outdoor_noise(RATE * 4, RATE, seed=1))
    assert not np.array_equal(one, listen.outdoor_noise(RATE * 4, RATE, seed=2))
    assert np.sqrt(np.mean(one.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    low = np.mean(listen.band_limit(one, RATE, 20, 500, 4) ** 2)
    high = np.mean(listen.band_limit(one, RATE, 2000, 7000, 4) ** 2)
    assert low > 5 * high  # pink, brown and wind: outdoor noise leans to the low end


@pytest.mark.parametrize("snr_db", [10.0, 5.0])
def test_horn_channel_mixes_at_the_asked_snr(listen: ModuleType, snr_db: float) -> None:
    # speech-like: a 1 kHz tone that sounds for half of every second
    speech = _tone(1000, 4.0) * np.tile(np.r_[np.ones(RATE // 2), np.zeros(RATE // 2)], 4)
    noisy = listen.horn_channel(speech.astype(np.float32), RATE, snr_db, seed=3)
    assert listen.measured_snr_db(speech, noisy, RATE) == pytest.approx(snr_db, abs=0.05)
    clean = listen.horn_channel(speech.astype(np.float32), RATE, None, seed=3)
    assert np.allclose(clean, listen.band_limit(speech, RATE))
