"""The optional Piper engine: its error paths, both back-ends (package and command), and the
real package end to end (with LOA_PIPER_MODEL's voice when the operator has one)."""

import json
import logging
import os
import re
import stat
import sys
import types
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest
from piper_voice import make_voice

from tts import Synthesizer, TtsError, normalize
from tts.engines import PiperEngine, engine_names, get_engine
from tts.engines import piper as piper_module

REAL_MODEL = os.environ.get("LOA_PIPER_MODEL")

# A stand-in for the piper command line: writes a short tone as WAV and records how it was run.
FAKE_PIPER = """\
import json, math, sys, wave
from array import array
args = sys.argv[1:]
text = sys.stdin.buffer.read().decode("utf-8")
record = args[args.index("--output_file") + 1] + ".call.json"
with open(record, "w", encoding="utf-8") as f:
    json.dump({"args": args, "text": text}, f, ensure_ascii=False)
if "hỏng" in text:
    sys.stderr.write("piper: the voice is broken\\n")
    sys.exit(3)
samples = array("h", (int(8000 * math.sin(i / 8)) for i in range(11025)))
with wave.open(args[args.index("--output_file") + 1], "wb") as wav:
    wav.setnchannels(1)
    wav.setsampwidth(2)
    wav.setframerate(22050)
    wav.writeframes(samples.tobytes())
"""


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    """A voice file pair as downloaded (the model bytes are only read by piper itself)."""
    model = tmp_path / "voices" / "vi_VN-test-low.onnx"
    model.parent.mkdir()
    model.write_bytes(b"onnx model bytes")
    Path(f"{model}.json").write_text(
        json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "vi"}}), encoding="utf-8"
    )
    return model


@pytest.fixture
def fake_piper(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "piper"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{FAKE_PIPER}", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def no_piper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the piper-tts package nor a piper binary on PATH."""
    monkeypatch.setitem(sys.modules, "piper", None)  # `import piper` raises ImportError
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _wav(path: Path) -> tuple[wave._wave_params, array]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        return params, array("h", wav.readframes(params.nframes))


def test_piper_is_registered() -> None:
    assert "piper" in engine_names()


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vi_VN-vais1000-medium.onnx"
    with pytest.raises(TtsError, match=re.escape(f"piper voice model {missing} does not exist")):
        get_engine("piper", model=str(missing))
    with pytest.raises(TtsError, match=r"vi_VN-vais1000-medium\.onnx does not exist"):
        Synthesizer(tmp_path / "cache", engine="piper", model=str(missing))


def test_missing_model_config_names_the_json(voice: Path) -> None:
    Path(f"{voice}.json").unlink()
    with pytest.raises(
        TtsError, match=re.escape(f"piper voice config {voice}.json does not exist")
    ):
        PiperEngine(model=voice)


def test_unreadable_model_config(voice: Path) -> None:
    Path(f"{voice}.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TtsError, match="not readable JSON"):
        PiperEngine(model=voice)


def test_no_model_at_all_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOA_PIPER_MODEL", raising=False)
    with pytest.raises(TtsError) as caught:
        PiperEngine()
    message = str(caught.value)
    assert "--model" in message and "LOA_PIPER_MODEL" in message
    assert "huggingface.co/rhasspy/piper-voices" in message


def test_model_from_environment(monkeypatch: pytest.MonkeyPatch, voice: Path, fake_piper: Path):
    monkeypatch.setenv("LOA_PIPER_MODEL", str(voice))
    assert PiperEngine(command=str(fake_piper)).model == voice


@pytest.mark.usefixtures("no_piper")
def test_piper_not_installed_says_how_to_install(voice: Path) -> None:
    with pytest.raises(TtsError) as caught:
        PiperEngine(model=voice)
    message = str(caught.value)
    assert "piper is missing" in message
    assert "pip install piper-tts" in message
    assert "huggingface.co/rhasspy/piper-voices" in message


def test_named_command_not_found(voice: Path, tmp_path: Path) -> None:
    with pytest.raises(TtsError, match=r"piper command .* not found.*pip install piper-tts"):
        PiperEngine(model=voice, command=str(tmp_path / "no-such-piper"))


@pytest.mark.parametrize(
    ("option", "value"), [("speaker", -1), ("length_scale", 10), ("timeout", 0)]
)
def test_bad_options(voice: Path, fake_piper: Path, option: str, value: object) -> None:
    with pytest.raises(TtsError, match=option):
        PiperEngine(model=voice, command=str(fake_piper), **{option: value})


def test_command_backend(tmp_path: Path, voice: Path, fake_piper: Path) -> None:
    synth = Synthesizer(
        tmp_path / "cache", engine="piper", model=str(voice), command=str(fake_piper),
        length_scale=1.2, speaker=0,
    )  # fmt: skip
    result = synth.synthesize("UBND xã thông báo:\nhọp thôn lúc 19h.")
    assert (result.engine, result.format, result.cached) == ("piper", "wav", False)
    params, samples = _wav(result.path)
    assert (params.nchannels, params.framerate, params.nframes) == (1, 22050, 11025)
    assert max(samples) > 4000
    calls = list((tmp_path / "cache").glob("*.call.json"))
    assert len(calls) == 1
    call = json.loads(calls[0].read_text(encoding="utf-8"))
    assert call["text"] == normalize("UBND xã thông báo:\nhọp thôn lúc 19h.")
    args = call["args"]
    assert args[args.index("--model") + 1] == str(voice)
    assert args[args.index("--config") + 1] == f"{voice}.json"
    assert args[args.index("--length_scale") + 1] == "1.2"
    assert args[args.index("--speaker") + 1] == "0"
    assert synth.synthesize("UBND xã thông báo:\nhọp thôn lúc 19h.").cached is True


def test_failing_command_falls_back_to_espeak(
    tmp_path: Path, voice: Path, fake_piper: Path, caplog: pytest.LogCaptureFixture
) -> None:
    synth = Synthesizer(tmp_path / "cache", engine="piper", model=voice, command=str(fake_piper))
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize("Giọng đọc hỏng.")
    assert result.engine == "espeak"
    assert "status 3" in caplog.text and "the voice is broken" in caplog.text
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_voice_identity_is_in_the_cache_key(tmp_path: Path, voice: Path, fake_piper: Path):
    def key(**options: Any) -> str:
        engine = PiperEngine(command=str(fake_piper), **options)
        return Synthesizer(tmp_path / "cache", engine="espeak").cache_key(engine, "Xin chào.")

    base = key(model=voice)
    assert key(model=voice, length_scale=1.3) != base
    moved = tmp_path / "elsewhere" / voice.name
    moved.parent.mkdir()
    moved.write_bytes(voice.read_bytes())
    Path(f"{moved}.json").write_bytes(Path(f"{voice}.json").read_bytes())
    assert key(model=moved) == base  # the same voice, wherever its file lies
    Path(f"{moved}.json").write_text('{"audio": {"sample_rate": 16000}}', encoding="utf-8")
    assert key(model=moved) != base


class _FakeVoice:
    """Stands in for piper.PiperVoice: the package back-end's calls, without onnxruntime."""

    loads: list[tuple[Path, Path]] = []  # noqa: RUF012 - shared record across loads

    def __init__(self) -> None:
        self.texts: list[tuple[str, Any]] = []

    @classmethod
    def load(cls, model: Path, config_path: Path) -> "_FakeVoice":
        cls.loads.append((model, config_path))
        if Path(model).read_bytes() == b"corrupt":
            raise RuntimeError("INVALID_PROTOBUF: cannot parse the model")
        return cls()

    def synthesize_wav(self, text: str, wav: wave.Wave_write, syn_config: Any) -> None:
        self.texts.append((text, syn_config))
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(array("h", [3000, -3000] * 4000).tobytes())


@pytest.fixture
def fake_package(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("piper")
    module.PiperVoice = _FakeVoice  # type: ignore[attr-defined]
    module.SynthesisConfig = lambda **kw: kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "piper", module)
    monkeypatch.setattr(piper_module, "_voices", {})
    _FakeVoice.loads = []
    return module


@pytest.mark.usefixtures("fake_package")
def test_package_backend_loads_the_voice_once(tmp_path: Path, voice: Path) -> None:
    first = Synthesizer(tmp_path / "a", engine="piper", model=voice, length_scale=1.1)
    second = Synthesizer(tmp_path / "b", engine="piper", model=voice)
    one = first.synthesize("Xin chào bà con.")
    two = second.synthesize("Họp thôn lúc 19h.")
    assert (one.engine, two.engine) == ("piper", "piper")
    assert _FakeVoice.loads == [(voice, Path(f"{voice}.json"))]
    assert _wav(one.path)[0].framerate == 16000


@pytest.mark.usefixtures("fake_package")
def test_package_backend_bad_model(tmp_path: Path, voice: Path) -> None:
    voice.write_bytes(b"corrupt")
    with pytest.raises(
        TtsError, match=re.escape(f"cannot load piper voice {voice}: INVALID_PROTOBUF")
    ):
        PiperEngine(model=voice).synthesize("Xin chào.", tmp_path / "x.wav")


def test_piper_package_speaks_a_vietnamese_text(tmp_path: Path) -> None:
    """The real piper package end to end: our normalization, piper's Vietnamese phonemizer,
    onnxruntime, the WAV and our cache. With LOA_PIPER_MODEL, a real voice; otherwise a voice
    generated for the test (`piper_voice`), since none can be downloaded in CI."""
    text = "Ủy ban nhân dân xã thông báo: ngày 21/3/2023 họp thôn lúc 7h30 tại nhà văn hóa."
    model = REAL_MODEL or str(make_voice(tmp_path / "voice", [normalize(text)]))
    synth = Synthesizer(tmp_path / "cache", engine="piper", model=model)
    result = synth.synthesize(text)
    assert (result.engine, result.format, result.cached) == ("piper", "wav", False)
    params, samples = _wav(result.path)
    assert (params.nchannels, params.sampwidth) == (1, 2)
    assert params.nframes / params.framerate > 1.0
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 100
    assert synth.synthesize(text).cached is True


# --- checking a voice before it is offered (`loa voice add`) ---------------------------------


def _spoken_voice(folder: Path) -> Path:
    """A generated voice that knows every phoneme of the check's test sentence."""
    return make_voice(folder, [normalize(piper_module.TEST_SENTENCE)])


def test_a_voice_that_speaks_the_test_sentence_passes_the_check(tmp_path: Path) -> None:
    model = _spoken_voice(tmp_path / "voice")
    check = piper_module.check_voice(model)
    assert (check.language, check.sample_rate, check.speakers) == ("vi", 16000, 1)
    assert check.size == model.stat().st_size and len(check.sha256) == 64
    assert 0.5 <= check.test_seconds <= 60


def _edited(model: Path, **changes: object) -> Path:
    config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    Path(f"{model}.json").write_text(json.dumps(config), encoding="utf-8")
    return model


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"espeak": {"voice": "en-us"}}, "not a Vietnamese voice|must be a Vietnamese one"),
        ({"audio": {"sample_rate": 99}}, "sample_rate must be 8000 to 48000 Hz"),
        ({"audio": {"sample_rate": True}}, "sample_rate must be"),
        ({"audio": None}, "sample_rate must be"),
        ({"phoneme_id_map": None}, "no phoneme_id_map"),
    ],
)
def test_a_config_that_is_not_a_vietnamese_piper_voice_is_refused(
    tmp_path: Path, changes: dict[str, object], complaint: str
) -> None:
    model = _edited(_spoken_voice(tmp_path / "voice"), **changes)
    with pytest.raises(TtsError, match=complaint):
        piper_module.check_voice(model)


def test_a_voice_that_does_not_speak_the_sentence_is_refused(tmp_path: Path) -> None:
    """A voice knowing none of the sentence's sounds gives (next to) nothing: not offered."""
    model = make_voice(tmp_path / "voice", [])
    with pytest.raises(TtsError, match="the voice does not speak it"):
        piper_module.check_voice(model)


def test_only_a_model_file_with_its_config_is_checked(tmp_path: Path) -> None:
    model = _spoken_voice(tmp_path / "voice")
    with pytest.raises(TtsError, match=r"a Piper voice is a \.onnx file"):
        piper_module.check_voice(Path(f"{model}.json"))
    Path(f"{model}.json").unlink()
    with pytest.raises(TtsError, match=r"config .* does not exist"):
        piper_module.check_voice(model)
    Path(f"{model}.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(TtsError, match="not a Piper voice config"):
        piper_module.check_voice(model)
