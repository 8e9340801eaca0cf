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
from piper_voice import make_voice
from support import free_port

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


def test_gtts_that_cannot_reach_google_is_listed_with_the_reason(
    listen: ModuleType, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    setting = listen.gtts_setting(tmp_path, base_url=url, timeout=2)
    assert setting["engine"] == "gtts"
    assert "gTTS failed" in setting["unavailable"]
    assert len(setting["unavailable"]) <= 160


def test_a_piper_voice_is_measured_only_when_it_passes_the_check(
    listen: ModuleType, tmp_path: Path
) -> None:
    voice = make_voice(tmp_path, ["Xin chào bà con."])
    assert listen.piper_setting(str(voice)) == {"engine": "piper", "model": str(voice.resolve())}
    missing = tmp_path / "vi_VN-missing.onnx"
    refused = listen.piper_setting(str(missing))
    assert refused["unavailable"].startswith(f"{missing}: ")
    assert "LOA_PIPER_MODEL" in listen.piper_setting(None)["unavailable"]


def _run(cer: float) -> dict:
    return {
        "seed": None,
        "overall": {"cer": cer, "wer": 2 * cer},
        "halves": {"odd": cer, "even": cer},
        "notices": {"storm": {"cer": cer}},
    }


def test_the_table_lists_an_engine_not_measured_and_judges_the_goal_on_the_defaults(
    listen: ModuleType,
) -> None:
    reason = "gTTS failed: Failed to connect"
    result = {
        "notices": ["storm"],
        "chars": 1000,
        "base": "defaults",
        "results": {
            "defaults": {
                "setting": "product defaults",
                "audio_s": 60.0,
                "asr_s": 30.0,
                "channels": {"snr10": [_run(0.39)], "clean": [_run(0.29)]},
            },
            "gtts": {
                "setting": {"engine": "gtts", "unavailable": reason},
                "unavailable": reason,
                "channels": {},
            },
            "rate130_chain": {
                "setting": listen.SETTINGS["rate130_chain"],
                "audio_s": 70.0,
                "asr_s": 35.0,
                "channels": {"clean": [_run(0.5)], "snr10": [_run(0.6)]},
            },
        },
        "comparison": {},
        "model": {
            "name": "Whisper base",
            "versions": {"faster-whisper": "1"},
            "compute_type": "int8",
            "beam_size": 5,
            "source": "PyPI",
        },
        "machine": "test",
        "took_s": 60.0,
        "measured": "today",
    }
    lines = listen.table(result)
    assert f"| `gtts` | — | not measured: {reason} | |" in "\n".join(lines)
    rows = [line for line in lines if line.startswith("| `defaults` |")]
    assert [row.split(" | ")[1] for row in rows] == ["clean", "snr10"]  # the channels' order
    goal = next(line for line in lines if line.startswith("Goal"))
    assert "`defaults`" in goal and "**met** (0.290 and 0.390)" in goal
