"""The engine registry and real espeak-ng synthesis through libespeak-ng."""

import threading
import wave
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from tts import TtsError, normalize
from tts.engines import Engine, EspeakEngine, engine_names, get_engine, register_engine


def _read_wav(path: Path) -> tuple[wave._wave_params, array]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        samples = array("h", wav.readframes(params.nframes))
    return params, samples


def _duration(path: Path) -> float:
    params, _ = _read_wav(path)
    return params.nframes / params.framerate


def test_registry_knows_builtin_engines() -> None:
    assert {"espeak", "gtts"} <= set(engine_names())
    assert isinstance(get_engine("espeak"), EspeakEngine)


def test_unknown_engine_lists_known_ones() -> None:
    with pytest.raises(TtsError, match=r"unknown tts engine 'festival'.*espeak.*gtts"):
        get_engine("festival")


def test_bad_engine_options() -> None:
    with pytest.raises(TtsError, match="bad options for tts engine 'espeak'"):
        get_engine("espeak", colour="red")
    with pytest.raises(TtsError, match="rate"):
        get_engine("espeak", rate=5)
    with pytest.raises(TtsError, match="timeout"):
        get_engine("gtts", timeout=None)
    with pytest.raises(TtsError, match=r"pitch must be 0\.\.100"):
        get_engine("espeak", pitch=101)
    with pytest.raises(TtsError, match="pitch_range"):
        get_engine("espeak", pitch_range=True)
    with pytest.raises(TtsError, match="sentence_pause_ms"):
        get_engine("espeak", sentence_pause_ms=-1)


def test_engine_name_cannot_be_taken_twice() -> None:
    class Impostor(EspeakEngine):
        name: ClassVar[str] = "espeak"

    with pytest.raises(TtsError, match="already taken"):
        register_engine(Impostor)
    assert register_engine(EspeakEngine) is EspeakEngine  # registering again is harmless
    assert issubclass(EspeakEngine, Engine)


def test_espeak_speaks_vietnamese(tmp_path: Path) -> None:
    out = tmp_path / "speech.wav"
    EspeakEngine().synthesize(normalize("UBND xã thông báo: ngày 21/3/2023 họp lúc 7h30."), out)
    params, samples = _read_wav(out)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 22050)
    assert params.nframes / params.framerate > 0.5
    assert max(abs(s) for s in samples) > 1000
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 100


def test_espeak_rate_changes_duration(tmp_path: Path) -> None:
    text = "Kính mời bà con tham dự cuộc họp thôn vào tối nay."
    EspeakEngine(rate=120).synthesize(text, tmp_path / "slow.wav")
    EspeakEngine(rate=240).synthesize(text, tmp_path / "fast.wav")
    assert _duration(tmp_path / "slow.wav") > 1.5 * _duration(tmp_path / "fast.wav")


def _longest_silence_s(path: Path) -> float:
    """The longest run of samples under 1 % of full scale."""
    params, samples = _read_wav(path)
    longest = run = 0
    for sample in samples:
        run = run + 1 if abs(sample) < 328 else 0
        longest = max(longest, run)
    return longest / params.framerate


def test_espeak_pauses_are_what_is_set(tmp_path: Path) -> None:
    """Sentences and paragraphs are followed by exactly the set silence; by default espeak
    leaves its own ~0.4 s at both."""
    text = "Một hai ba bốn năm. Sáu bảy tám chín mười.\nMột hai ba bốn năm."
    EspeakEngine(sentence_pause_ms=None, paragraph_pause_ms=None).synthesize(text, tmp_path / "a")
    EspeakEngine(sentence_pause_ms=700, paragraph_pause_ms=1200).synthesize(text, tmp_path / "b")
    EspeakEngine(sentence_pause_ms=700, paragraph_pause_ms=200).synthesize(text, tmp_path / "c")
    assert _longest_silence_s(tmp_path / "a") < 0.6
    assert 1.2 <= _longest_silence_s(tmp_path / "b") < 1.4
    assert 0.7 <= _longest_silence_s(tmp_path / "c") < 0.9
    assert _duration(tmp_path / "b") > _duration(tmp_path / "a") + 0.5


def _median_f0_hz(path: Path) -> float:
    """The voice's median pitch: autocorrelation peak (60–400 Hz) of the loud 40 ms frames."""
    params, samples = _read_wav(path)
    signal = np.array(samples, dtype=float)
    size, rate = int(0.04 * params.framerate), params.framerate
    low, high = rate // 400, rate // 60
    found = []
    for start in range(0, len(signal) - size, size):
        frame = signal[start : start + size]
        if np.sqrt(np.mean(frame**2)) < 1000:
            continue
        correlation = np.correlate(frame, frame, "full")[size - 1 :]
        found.append(rate / (low + int(np.argmax(correlation[low:high]))))
    return float(np.median(found))


def test_espeak_pitch_raises_the_voice(tmp_path: Path) -> None:
    text = "Kính mời bà con tham dự cuộc họp thôn."
    EspeakEngine(pitch=20).synthesize(text, tmp_path / "low.wav")
    EspeakEngine().synthesize(text, tmp_path / "usual.wav")
    EspeakEngine(pitch=80).synthesize(text, tmp_path / "high.wav")
    low, usual, high = (_median_f0_hz(tmp_path / f"{n}.wav") for n in ("low", "usual", "high"))
    assert low * 1.1 < usual < high / 1.1
    assert EspeakEngine(pitch=30).cache_options() != EspeakEngine(pitch=70).cache_options()


def test_espeak_unknown_voice(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="no voice 'xx-nowhere'"):
        EspeakEngine(voice="xx-nowhere").synthesize("xin chào", tmp_path / "x.wav")
    # The library is still usable afterwards.
    EspeakEngine().synthesize("xin chào", tmp_path / "ok.wav")
    assert _duration(tmp_path / "ok.wav") > 0.2


def test_espeak_is_safe_from_many_threads(tmp_path: Path) -> None:
    """libespeak-ng is one global state: concurrent calls must not mix their audio."""
    texts = [
        "Xin chào.",
        "Thông báo lịch tiêm chủng cho trẻ em dưới năm tuổi tại trạm y tế xã.",
        "Ủy ban nhân dân xã đề nghị các hộ gia đình chủ động phòng chống bão số ba, "
        "gia cố nhà cửa, chặt tỉa cây xanh và không ra khơi khi có lệnh cấm biển.",
    ]
    solo = []
    for i, text in enumerate(texts):
        EspeakEngine().synthesize(text, tmp_path / f"solo-{i}.wav")
        solo.append(_duration(tmp_path / f"solo-{i}.wav"))
    assert solo[0] < solo[1] < solo[2]

    barrier = threading.Barrier(6, timeout=10)

    def job(n: int) -> tuple[int, float]:
        index = n % len(texts)
        out = tmp_path / f"thread-{n}.wav"
        barrier.wait()
        EspeakEngine().synthesize(texts[index], out)
        return index, _duration(out)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(job, range(6), timeout=60))
    for index, duration in results:
        assert duration == pytest.approx(solo[index], rel=0.05)
