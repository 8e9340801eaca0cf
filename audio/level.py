"""Bring one stream to −16 LUFS: gain a little high, limit, measure, then trim down exactly.

Why this order (see ``audio.loudness`` for why not ``loudnorm``): speech peaks stand 15-25 dB
above its loudness, so at −16 LUFS some must be limited, and limiting takes loudness away by an
amount that depends on the material (~1 LU for espeak). Setting the gain slightly above target,
limiting and measuring in one ffmpeg run, and then trimming down linearly lands on target without
a peak ever passing the ceiling. The first gain comes from a measurement (decoded input) or from
a quick estimate (plain WAV); if the limited result is still short of target, the run is repeated
with more gain (rarely: at most MAX_PASSES runs in all).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from audio.errors import AudioError
from audio.ffmpeg import (
    AudioSegment,
    check_readable,
    decode_measured,
    from_pcm,
    limit_and_measure,
    read_wav,
)
from audio.loudness import LIMITER_CEILING_DBFS, TARGET_LUFS, Loudness, estimate_lufs

_LOGGER = logging.getLogger(__name__)

#: Extra gain above the plain "target minus measured" one, before the limiter.
BASE_OVERSHOOT_DB = 1.0
#: An estimate (not a measurement) may be off by a dB or so: give it this much more.
ESTIMATE_MARGIN_DB = 1.0
#: Limiting N dB of peaks loses roughly this fraction of N in loudness; overshoot to cover it.
OVERSHOOT_PER_LIMITED_DB = 0.5
MAX_OVERSHOOT_DB = 8.0
#: A result this close under target is kept as it is (raising it would need another run).
AUDIBLE_SHORTFALL_LU = 1.0  # EBU R128's tolerance: less than this is not worth a warning
SHORTFALL_TOLERANCE_LU = 0.2
#: When a run falls short, the next adds this many times the shortfall (the limiter eats part).
RETRY_GAIN_FACTOR = 1.6
MAX_PASSES = 3

__all__ = ["Levelled", "first_gain_db", "level_pcm", "level_speech_file"]


@dataclass(frozen=True)
class Levelled:
    """A limited stream and the linear trim that brings it to target."""

    pcm: bytes  # limited PCM, broadcast format (b"" when it was written to a file)
    trim_db: float  # gain still to apply; ≤ 0 unless the limited peaks leave room
    loudness: Loudness  # of the limited stream, before the trim
    passes: int  # limiting runs it took


def first_gain_db(
    loudness_lufs: float,
    peak_dbfs: float,
    *,
    estimated: bool,
    target_lufs: float = TARGET_LUFS,
    ceiling_dbfs: float = LIMITER_CEILING_DBFS,
) -> float:
    """The gain for the first limiting run: target minus loudness, plus a material-aware margin."""
    gain = target_lufs - loudness_lufs
    limited_db = max(peak_dbfs + gain - ceiling_dbfs, 0.0)
    overshoot = BASE_OVERSHOOT_DB + OVERSHOOT_PER_LIMITED_DB * limited_db
    if estimated:
        overshoot += ESTIMATE_MARGIN_DB
    return gain + min(overshoot, MAX_OVERSHOOT_DB)


def level_pcm(
    pcm: bytes | Path,
    *,
    loudness_lufs: float,
    peak_dbfs: float,
    estimated: bool,
    name: str,
    dest: Path | None = None,
    target_lufs: float = TARGET_LUFS,
    filters: str = "",
) -> Levelled:
    """Limit PCM (bytes or a raw file; the result to dest if given) and work out the trim;
    `filters` (an ffmpeg chain) run first, on the input at its own level."""
    ceiling = LIMITER_CEILING_DBFS
    gain = first_gain_db(loudness_lufs, peak_dbfs, estimated=estimated, target_lufs=target_lufs)
    for passes in range(1, MAX_PASSES + 1):
        limited, measured = limit_and_measure(
            pcm,
            gain_db=gain,
            ceiling_dbfs=ceiling,
            dest=dest,
            filters=filters,
            what=f"levelling {name}",
        )
        if measured.silent:
            return Levelled(limited, 0.0, measured, passes)
        shortfall = target_lufs - measured.integrated_lufs
        if shortfall <= SHORTFALL_TOLERANCE_LU or passes == MAX_PASSES:
            break
        _LOGGER.debug(
            "%s: %.1f LU short of target after gain %.1f dB; another pass", name, shortfall, gain
        )
        gain += RETRY_GAIN_FACTOR * shortfall
    room = ceiling - (measured.sample_peak_dbfs if measured.sample_peak_dbfs is not None else 0.0)
    trim = min(shortfall, max(room, 0.0))
    if shortfall - trim > AUDIBLE_SHORTFALL_LU:
        _LOGGER.warning(
            "%s: ends %.1f LU under target (peaks %.0f dB above its loudness)",
            name, shortfall - trim, peak_dbfs - loudness_lufs,
        )  # fmt: skip
    _LOGGER.debug(
        "%s: gain %.1f dB, limited to %.1f LUFS, trim %.2f dB (%d pass(es))",
        name, gain, measured.integrated_lufs, trim, passes,
    )  # fmt: skip
    return Levelled(limited, trim, measured, passes)


def _load(path: Path) -> tuple[AudioSegment, float | None, float, bool]:
    """Samples, loudness (None if silent), peak and whether the loudness is only estimated.

    A plain PCM WAV is read by pydub and estimated in Python (no ffmpeg run); anything else is
    decoded and measured by ffmpeg in one run.
    """
    check_readable(path)
    try:
        segment = read_wav(path)
    except OSError as exc:
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    if segment is not None:
        if len(segment.raw_data) == 0:
            raise AudioError(f"audio file holds no samples: {path}")
        return segment, estimate_lufs(segment), segment.max_dBFS, True
    segment, measured = decode_measured(path)
    loudness = None if measured.silent else measured.integrated_lufs
    peak = measured.sample_peak_dbfs
    return segment, loudness, peak if peak is not None else segment.max_dBFS, False


def level_speech_file(
    path: str | os.PathLike[str], target_lufs: float = TARGET_LUFS, filters: str = ""
) -> AudioSegment:
    """Decode a speech file and return it at target loudness, peaks under the ceiling, through
    `filters` (an ffmpeg chain run on the input before the gain) when given.

    A silent file is returned as it is (with a warning): there is nothing to level.
    """
    path = Path(path)
    segment, loudness, peak, estimated = _load(path)
    if loudness is None:
        _LOGGER.warning("speech file %s is silent; using it as is", path)
        return segment
    levelled = level_pcm(
        segment.raw_data,
        loudness_lufs=loudness,
        peak_dbfs=peak,
        estimated=estimated,
        name=str(path),
        target_lufs=target_lufs,
        filters=filters,
    )
    result = from_pcm(levelled.pcm)
    return result.apply_gain(levelled.trim_db) if levelled.trim_db else result
