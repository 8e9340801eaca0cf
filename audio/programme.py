"""Assemble one announcement: chime, speech (read `repeat` times), optional closing chime → MP3.

Why: the commune loudspeaker convention is an attention signal, then the notice, and urgent
notices are read several times. Speech from different engines (espeak WAV, gTTS MP3) arrives at
different levels, so each part is brought to one loudness before mixing; the result is encoded
once in the broadcast format (MP3 mono 32 kbps 22.05 kHz) that cheap receivers play everywhere.
The whole render happens in memory and returns bytes, so a failure never leaves a partial file.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from audio import chime as chimes
from audio import mp3
from audio.errors import AudioError
from audio.ffmpeg import BITRATE_KBPS, CHANNELS, SAMPLE_RATE, AudioSegment, decode_file, encode_mp3

_LOGGER = logging.getLogger(__name__)

#: Loudness of speech in the MP3: the gated RMS of 50 ms windows (dBFS, see active_dbfs).
SPEECH_TARGET_DBFS = -16.0
#: The chime sits a little below the speech so it calls attention without startling.
CHIME_TARGET_DBFS = -20.0
#: No sample of the MP3 goes above this (a look-ahead limiter at encoding enforces it).
PEAK_CEILING_DBFS = -1.0
#: The 16-bit mix is built this much below the targets and raised in floating point while
#: encoding, so speech whose peaks would clip at the target is limited instead of turned down.
#: TTS speech has 15-20 dB between its peaks and its active level; -16 dBFS alone would leave
#: only 15 dB.
MIX_HEADROOM_DB = 6.0
#: Loudness gates (see active_dbfs).
ABSOLUTE_GATE_DBFS = -70.0
RELATIVE_GATE_DB = 20.0
LOUDNESS_WINDOW_MS = 50
#: After levelling, what is this quiet at either end of a speech file is trimmed away.
SILENCE_GATE_DBFS = -50.0

LEAD_IN_MS = 200  # lets the amplifier settle before the first note
CHIME_TO_SPEECH_MS = 600
BETWEEN_PARTS_MS = 400  # between the speech files of one reading
SPEECH_TO_CLOSING_MS = 600
TAIL_MS = 300
EDGE_FADE_MS = 10  # de-click the edges of trimmed speech
TRIM_KEEP_MS = 80  # silence kept at each end of a speech file after trimming

MAX_REPEAT = 10


def active_dbfs(segment: AudioSegment) -> float | None:
    """Loudness as the RMS of the speaking windows only; None if the segment is silent.

    Why not ``segment.dBFS``: it averages pauses in, so a slow reader would be boosted more than a
    fast one. Windows are gated twice, as in EBU R128: below an absolute floor (digital silence,
    hiss) and then more than RELATIVE_GATE_DB below the level of what is left (pauses between
    words), so the measure does not depend on the input level.
    """
    full_scale = segment.max_possible_amplitude
    floor = full_scale * 10 ** (ABSOLUTE_GATE_DBFS / 20)
    powers = []
    for start in range(0, len(segment), LOUDNESS_WINDOW_MS):
        rms = float(segment[start : start + LOUDNESS_WINDOW_MS].rms)
        if rms > floor:
            powers.append(rms * rms)
    if not powers:
        return None
    relative_gate = (sum(powers) / len(powers)) * 10 ** (-RELATIVE_GATE_DB / 10)
    speaking = [power for power in powers if power >= relative_gate]
    return 10 * math.log10(sum(speaking) / len(speaking) / full_scale**2)


def match_loudness(segment: AudioSegment, target_dbfs: float) -> AudioSegment:
    """Apply the gain that brings the active loudness to target, never beyond the peak ceiling.

    The ceiling keeps the 16-bit mix from clipping; the encoder's limiter does the rest.
    """
    level = active_dbfs(segment)
    if level is None:
        return segment
    gain = target_dbfs - level
    headroom = PEAK_CEILING_DBFS - segment.max_dBFS
    if gain > headroom:
        _LOGGER.debug("gain %.1f dB capped to %.1f dB by the peak ceiling", gain, headroom)
        gain = headroom
    return segment.apply_gain(gain)


def _trim_silence(segment: AudioSegment) -> AudioSegment:
    """Drop leading and trailing silence (engines pad differently) so gaps are what we set."""
    threshold = SILENCE_GATE_DBFS
    lead = _silent_prefix_ms(segment, threshold)
    if lead >= len(segment):
        return segment
    tail = _silent_prefix_ms(segment.reverse(), threshold)
    start = max(lead - TRIM_KEEP_MS, 0)
    end = min(len(segment) - tail + TRIM_KEEP_MS, len(segment))
    return segment[start:end]


def _silent_prefix_ms(segment: AudioSegment, threshold_dbfs: float, step_ms: int = 10) -> int:
    position = 0
    while position < len(segment) and segment[position : position + step_ms].dBFS < threshold_dbfs:
        position += step_ms
    return min(position, len(segment))


def _prepare_speech(path: Path) -> AudioSegment:
    """Decode, trim, loudness-match and de-click one speech file."""
    segment = decode_file(path)
    if active_dbfs(segment) is None:
        _LOGGER.warning("speech file %s is silent; using it as is", path)
        return segment
    segment = _trim_silence(match_loudness(segment, SPEECH_TARGET_DBFS - MIX_HEADROOM_DB))
    fade = min(EDGE_FADE_MS, len(segment) // 2)
    return segment.fade_in(fade).fade_out(fade)


@functools.cache
def _levelled_opening_chime() -> AudioSegment:
    return match_loudness(chimes.opening_chime(), CHIME_TARGET_DBFS - MIX_HEADROOM_DB)


@functools.cache
def _levelled_closing_chime() -> AudioSegment:
    return match_loudness(chimes.closing_chime(), CHIME_TARGET_DBFS - MIX_HEADROOM_DB)


def _silence(ms: int) -> AudioSegment:
    return AudioSegment.silent(duration=ms, frame_rate=SAMPLE_RATE)


def _check_arguments(speech_files: Iterable[object], repeat: int, gap_ms: int) -> list[Path]:
    if isinstance(speech_files, str | bytes | os.PathLike):
        raise AudioError("speech_files must be a sequence of paths, not a single path")
    try:
        items = list(speech_files)
    except TypeError as exc:
        raise AudioError(f"speech_files must be a sequence of paths, got {speech_files!r}") from exc
    if not items:
        raise AudioError("no speech files to render")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise AudioError(f"repeat must be an integer from 1 to {MAX_REPEAT}, got {repeat!r}")
    if isinstance(gap_ms, bool) or not isinstance(gap_ms, int) or not 0 <= gap_ms <= 60_000:
        raise AudioError(f"gap_ms must be an integer from 0 to 60000, got {gap_ms!r}")
    paths = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise AudioError(f"speech file must be a path, got {item!r}")
        paths.append(Path(item))
    return paths


def compose_announcement(
    speech_files: Sequence[str | os.PathLike[str]],
    repeat: int = 1,
    chime: bool = True,
    gap_ms: int = 1000,
    *,
    closing_chime: bool = False,
) -> AudioSegment:
    """The announcement as PCM (mono 16-bit 22.05 kHz), before encoding; see render_announcement.

    The mix is MIX_HEADROOM_DB below the final level; render_announcement adds it back.
    """
    paths = _check_arguments(speech_files, repeat, gap_ms)
    parts = [_prepare_speech(path) for path in paths]
    reading = parts[0]
    for part in parts[1:]:
        reading = reading + _silence(BETWEEN_PARTS_MS) + part

    programme = _silence(LEAD_IN_MS)
    if chime:
        programme = programme + _levelled_opening_chime() + _silence(CHIME_TO_SPEECH_MS)
    for index in range(repeat):
        if index:
            programme = programme + _silence(gap_ms)
        programme = programme + reading
    if closing_chime:
        programme = programme + _silence(SPEECH_TO_CLOSING_MS) + _levelled_closing_chime()
    return programme + _silence(TAIL_MS)


def render_announcement(
    speech_files: Sequence[str | os.PathLike[str]],
    repeat: int = 1,
    chime: bool = True,
    gap_ms: int = 1000,
    *,
    closing_chime: bool = False,
) -> bytes:
    """Render chime + speech (read `repeat` times, `gap_ms` apart) to broadcast MP3 bytes.

    The speech files (WAV, MP3 or anything ffmpeg decodes) are read in order with short pauses
    between them, each brought to the same loudness. The result is MPEG-2 Layer III, mono,
    22.05 kHz, 32 kbps CBR; it is checked from its own frame headers before being returned.
    Raises AudioError (naming the file when one is at fault) on any bad input.
    """
    started = time.perf_counter()
    paths = _check_arguments(speech_files, repeat, gap_ms)
    programme = compose_announcement(
        paths, repeat=repeat, chime=chime, gap_ms=gap_ms, closing_chime=closing_chime
    )
    data = encode_mp3(programme, gain_db=MIX_HEADROOM_DB, limit_dbfs=PEAK_CEILING_DBFS)
    info = mp3.probe(data)
    if (
        info.layer != 3
        or info.sample_rate != SAMPLE_RATE
        or info.channels != CHANNELS
        or info.bitrates_kbps != frozenset({BITRATE_KBPS})
    ):
        raise AudioError(f"encoder produced an unexpected stream: {info}")
    _LOGGER.info(
        "rendered announcement: %d file(s) x%d, %.1f s, %d bytes in %.2f s",
        len(paths), repeat, info.duration_s, len(data), time.perf_counter() - started,
    )  # fmt: skip
    return data
