"""The announcement chime, synthesized: no third-party recording, so no licence to track.

Why a chime: listeners in the village hear the loudspeaker from afar; a short, recognizable
bell-like arpeggio tells them an official notice follows. It is generated from sine partials with
an exponential (bell) decay, identical on every machine and cached in memory after the first use.
The notes sit between 500 Hz and 1.1 kHz (harmonics up to ~3 kHz), where horn loudspeakers are
efficient.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from array import array
from collections.abc import Sequence

from audio.ffmpeg import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH, AudioSegment

_LOGGER = logging.getLogger(__name__)

# (relative frequency, relative amplitude, relative decay time): a warm, mostly harmonic bell.
_PARTIALS: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 1.0),
    (2.0, 0.30, 0.55),
    (3.0, 0.12, 0.35),
    (4.2, 0.05, 0.20),
)
_ATTACK_S = 0.006
_RELEASE_S = 0.060
_PEAK = 10 ** (-3 / 20)  # -3 dBFS; the programme sets the final loudness

C5, E5, G5, C6 = 523.25, 659.26, 783.99, 1046.50

# (onset s, frequency Hz, decay time constant s, amplitude)
OPENING_NOTES: tuple[tuple[float, float, float, float], ...] = (
    (0.00, C5, 0.45, 1.0),
    (0.28, E5, 0.45, 0.9),
    (0.56, G5, 0.45, 0.85),
    (0.84, C6, 0.55, 0.85),
)
OPENING_LENGTH_S = 1.85

CLOSING_NOTES: tuple[tuple[float, float, float, float], ...] = (
    (0.00, G5, 0.40, 0.9),
    (0.30, E5, 0.40, 0.9),
    (0.60, C5, 0.50, 1.0),
)
CLOSING_LENGTH_S = 1.40


def _synthesize(
    notes: Sequence[tuple[float, float, float, float]], length_s: float
) -> AudioSegment:
    """Render notes into a mono 16-bit segment at the broadcast sample rate."""
    total = round(length_s * SAMPLE_RATE)
    buffer = [0.0] * total
    release_start = total - round(_RELEASE_S * SAMPLE_RATE)
    for onset_s, frequency, decay_s, amplitude in notes:
        start = round(onset_s * SAMPLE_RATE)
        for ratio, partial_amp, decay_ratio in _PARTIALS:
            omega = 2 * math.pi * frequency * ratio / SAMPLE_RATE
            if omega >= math.pi:  # above Nyquist: would alias
                continue
            decay = math.exp(-1.0 / (decay_s * decay_ratio * SAMPLE_RATE))
            attack_n = _ATTACK_S * SAMPLE_RATE
            level = amplitude * partial_amp
            for n in range(total - start):
                if level < 1e-5:
                    break
                gain = level if n >= attack_n else level * n / attack_n
                buffer[start + n] += gain * math.sin(omega * n)
                level *= decay
    for i in range(max(release_start, 0), total):
        buffer[i] *= (total - i) / (total - release_start)
    peak = max(abs(v) for v in buffer) or 1.0
    scale = _PEAK * 32767 / peak
    samples = array("h", (round(v * scale) for v in buffer))
    if sys.byteorder == "big":
        samples.byteswap()
    return AudioSegment(
        data=samples.tobytes(), sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE,
        channels=CHANNELS,
    )  # fmt: skip


@functools.cache
def opening_chime() -> AudioSegment:
    """The rising four-note chime that opens every announcement (built once per process)."""
    segment = _synthesize(OPENING_NOTES, OPENING_LENGTH_S)
    _LOGGER.debug("opening chime built: %d ms", len(segment))
    return segment


@functools.cache
def closing_chime() -> AudioSegment:
    """The falling three-note chime that can close an announcement (built once per process)."""
    segment = _synthesize(CLOSING_NOTES, CLOSING_LENGTH_S)
    _LOGGER.debug("closing chime built: %d ms", len(segment))
    return segment
