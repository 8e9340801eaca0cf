"""Loudness policy and measurement: every programme and recording leaves at −16 LUFS.

Why −16 LUFS (EBU R128 / ITU-R BS.1770 integrated loudness): speech from espeak, gTTS and a
phone's microphone arrives at levels 20 dB apart; the commune loudspeakers need one level, loud
enough for the street but with room for peaks. −16 LUFS with peaks under −1.5 dBTP is the usual
target for spoken-word distribution.

Why not ffmpeg's ``loudnorm`` filter (measured for ~70 s of espeak speech on 2 cores): its
measuring pass takes ~0.97 s and its one-pass dynamic mode ~1.25 s, because both run a true-peak
limiter at 192 kHz; the two-pass total is ~2.2 s against a budget of 0.3 s for the whole
text-to-MP3 path. Its second pass is linear only when the measured peaks fit under the ceiling,
and TTS speech (peak-to-loudness ratio ~18 dB, more than the 14.5 dB that −16 LUFS / −1.5 dBTP
leave) makes it fall back to the dynamic mode, which then lands at −16.7 LUFS, not −16.

What this package does instead (``audio.level``): the same BS.1770 measurement with ffmpeg's
``ebur128`` filter at the broadcast sample rate (~0.06 s for 70 s), a linear gain set a little
*above* what −16 LUFS needs, a look-ahead limiter for the peaks, a second measurement of the
limited audio in that same run, then a final linear trim *down* to −16.0 LUFS. The trim is
linear and only lowers the level, so it cannot raise a peak again; a limiter alone would leave
the result 1 LU or more under target, since limiting 4 dB of peaks takes loudness away.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydub is imported through audio.ffmpeg, which silences its warnings
    from pydub import AudioSegment

_LOGGER = logging.getLogger(__name__)

#: Integrated loudness of every rendered programme and imported recording (of the PCM that goes
#: into the encoder; 32 kbps MP3 coding takes another 0.2-0.5 LU off speech).
TARGET_LUFS = -16.0
#: The limiter's sample-peak ceiling: 0.5 dB under the −1.5 dBTP true-peak target, the margin
#: that inter-sample peaks of band-limited 22.05 kHz speech need.
LIMITER_CEILING_DBFS = -2.0
#: ``ebur128`` reports −70 LUFS (the absolute gate) for silence; anything this low holds no sound.
SILENCE_LUFS = -69.9

#: The ffmpeg filter that measures loudness and sample peak (it passes the audio through).
EBUR128_FILTER = "ebur128=framelog=quiet:peak=sample"

#: Gated-RMS estimate (see estimate_lufs): window and gates, as in BS.1770 but unweighted.
_WINDOW_MS = 50
_ABSOLUTE_GATE_DBFS = -70.0
_RELATIVE_GATE_DB = 20.0

_NUMBER = r"-?(?:\d+(?:\.\d+)?|inf)"
_SUMMARY = re.compile(
    rf"Integrated loudness:\s*I:\s*(?P<i>{_NUMBER})\s*LUFS"
    rf"(?:(?:(?!Integrated loudness:).)*?Loudness range:\s*LRA:\s*(?P<lra>{_NUMBER})\s*LU)?"
    rf"(?:(?:(?!Integrated loudness:).)*?Sample peak:\s*Peak:\s*(?P<peak>{_NUMBER})\s*dBFS)?",
    re.DOTALL,
)

__all__ = [
    "EBUR128_FILTER",
    "LIMITER_CEILING_DBFS",
    "SILENCE_LUFS",
    "TARGET_LUFS",
    "Loudness",
    "estimate_lufs",
    "parse_ebur128_summary",
]


@dataclass(frozen=True)
class Loudness:
    """What ffmpeg's ebur128 summary says about a stream."""

    integrated_lufs: float
    range_lu: float | None = None
    sample_peak_dbfs: float | None = None

    @property
    def silent(self) -> bool:
        """True when nothing passed the BS.1770 absolute gate (silence or near-silence)."""
        return not math.isfinite(self.integrated_lufs) or self.integrated_lufs <= SILENCE_LUFS


def _number(text: str | None) -> float | None:
    return float(text) if text is not None else None


def parse_ebur128_summary(log: str) -> Loudness | None:
    """The last ebur128 summary in an ffmpeg log, or None if the log holds none."""
    matches = list(_SUMMARY.finditer(log))
    if not matches:
        return None
    last = matches[-1]
    return Loudness(
        integrated_lufs=float(last.group("i")),
        range_lu=_number(last.group("lra")),
        sample_peak_dbfs=_number(last.group("peak")),
    )


def estimate_lufs(segment: AudioSegment) -> float | None:
    """A quick loudness estimate in Python (gated RMS of 50 ms windows); None if silent.

    Why: a plain WAV from espeak can be levelled without a separate ffmpeg measuring run; the
    estimate only sets the first gain (within a dB or two of BS.1770 for speech), the real
    measurement follows in the limiting run. Windows are gated as in BS.1770: below an absolute
    floor, then more than 20 dB below the level of what is left (pauses between words).
    """
    full_scale = segment.max_possible_amplitude
    floor = full_scale * 10 ** (_ABSOLUTE_GATE_DBFS / 20)
    powers = []
    for start in range(0, len(segment), _WINDOW_MS):
        rms = float(segment[start : start + _WINDOW_MS].rms)
        if rms > floor:
            powers.append(rms * rms)
    if not powers:
        return None
    relative_gate = (sum(powers) / len(powers)) * 10 ** (-_RELATIVE_GATE_DB / 10)
    speaking = [power for power in powers if power >= relative_gate]
    return 10 * math.log10(sum(speaking) / len(speaking) / full_scale**2)
