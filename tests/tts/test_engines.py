"""The engine registry and real espeak-ng synthesis through libespeak-ng."""

import threading
import wave
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

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
