"""The one place that runs ffmpeg and configures pydub.

Why: the target machines have no system ffmpeg or ffprobe; the only encoder is the static binary
shipped in the imageio-ffmpeg wheel, and it comes without ffprobe. pydub's
``AudioSegment.from_file`` calls ffprobe for any non-WAV input, so this module decodes such input
itself (ffmpeg → raw PCM on a pipe), measures loudness in the same run (the ``ebur128`` filter),
and encodes MP3 or Opus the same way. pydub is used for what it is good at: cutting, joining and
gain on PCM. Nothing here ever needs ffprobe. Logs are read with ``-loglevel level+…`` so that
ffmpeg's own errors can be told apart from its informational output.

Import pydub through this module (``from audio.ffmpeg import AudioSegment``) so that it is
configured before use and its import-time warnings about a missing PATH ffmpeg stay quiet.
"""

from __future__ import annotations

import array
import functools
import itertools
import logging
import os
import re
import struct
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import imageio_ffmpeg

from audio.errors import AudioError
from audio.loudness import EBUR128_FILTER, Loudness, parse_ebur128_summary

if TYPE_CHECKING:
    from audio.formats import OutputFormat

_LOGGER = logging.getLogger(__name__)

#: pydub imports audioop, which left the standard library in Python 3.13 (PEP 594); the
#: `audioop-lts` package brings it back and `loa[server]` depends on it there.
AUDIOOP_MISSING = (
    "pydub cannot work without the audioop module, which Python 3.13 no longer ships: "
    "install the audioop-lts package (pip install audioop-lts; pip install 'loa[server]' "
    "brings it on Python 3.13 and later)"
)

try:
    with warnings.catch_warnings():
        # pydub looks for ffmpeg on PATH when imported and warns that it is missing (we point it
        # at the bundled binary right below); Python 3.11 warns that audioop, which pydub uses,
        # is deprecated.
        warnings.filterwarnings("ignore", message=r".*ffmpeg or avconv.*", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=r".*audioop.*", category=DeprecationWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError
except ModuleNotFoundError as _missing:
    if _missing.name not in ("audioop", "pyaudioop"):
        raise
    # The server still starts (pages, API, receivers' answers); only making sound says why not.
    _LOGGER.error("%s", AUDIOOP_MISSING)

    class _Unavailable(type):
        """Any use of the stand-in class, or of anything on it, is that clear error."""

        def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
            raise AudioError(AUDIOOP_MISSING)

        def __getattr__(cls, name: str) -> NoReturn:
            raise AudioError(AUDIOOP_MISSING)

    class AudioSegment(metaclass=_Unavailable):  # type: ignore[no-redef]
        """Stands in for pydub's AudioSegment when pydub cannot be imported."""

    class CouldntDecodeError(Exception):  # type: ignore[no-redef]
        """Never raised: nothing is decoded without pydub."""


#: The broadcast format: every PCM segment in this package and every MP3 it writes uses it.
SAMPLE_RATE = 22050
PARALLEL_ENCODERS = max(1, min(4, os.cpu_count() or 1))
PARALLEL_MIN_SECONDS = 60  # below this, one encoder is as fast as the split costs
QUIET_SEARCH_SECONDS = 5
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes, signed 16-bit little-endian
BITRATE_KBPS = 32

#: Seconds a single ffmpeg run may take before it is treated as hung.
FFMPEG_TIMEOUT_S = 300.0

__all__ = [
    "BITRATE_KBPS",
    "CHANNELS",
    "SAMPLE_RATE",
    "SAMPLE_WIDTH",
    "AudioSegment",
    "FfmpegRun",
    "check_readable",
    "configure_pydub",
    "decode_args",
    "decode_measured",
    "encode_pcm",
    "encoders",
    "ffmpeg_exe",
    "from_pcm",
    "limit_and_measure",
    "log_errors",
    "loudness_from_log",
    "measure_segment",
    "read_wav",
    "run_ffmpeg",
    "to_broadcast_format",
]


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg (IMAGEIO_FFMPEG_EXE overrides it)."""
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise AudioError(f"no ffmpeg binary available: {exc}") from exc
    _LOGGER.debug("using ffmpeg at %s", exe)
    return exe


def configure_pydub() -> None:
    """Point pydub at the bundled ffmpeg so its own export/conversion paths work too."""
    AudioSegment.converter = ffmpeg_exe()


@dataclass(frozen=True)
class FfmpegRun:
    """What one ffmpeg run left: its stdout, its log (stderr, lines tagged ``[level]``), status."""

    stdout: bytes
    log: str
    returncode: int


_LINE_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")
_ERROR_TAGS = ("[error]", "[fatal]", "[panic]")


def log_errors(log: str) -> list[str]:
    """The error lines of a ``level+``-tagged ffmpeg log, without their ``[...]`` prefixes."""
    return [
        _LINE_PREFIX.sub("", line).strip()
        for line in log.splitlines()
        if any(tag in line for tag in _ERROR_TAGS)
    ]


def _failure_detail(log: str, returncode: int) -> str:
    """The most telling line of a failed run: its last error, else its last line."""
    errors = log_errors(log)
    if errors:
        return errors[-1]
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return _LINE_PREFIX.sub("", lines[-1]) if lines else f"exit status {returncode}"


def run_ffmpeg(
    args: list[str],
    *,
    stdin: bytes | None = None,
    what: str,
    loglevel: str = "error",
    check: bool = True,
) -> FfmpegRun:
    """Run the bundled ffmpeg with args; a failure to run (or, with check, a non-zero exit) is an
    AudioError that says what was being done and ffmpeg's own reason.
    """
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel",
               f"level+{loglevel}", *args]  # fmt: skip
    _LOGGER.debug("ffmpeg: %s", command)
    try:
        result = subprocess.run(
            command,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg timed out after {FFMPEG_TIMEOUT_S:.0f} s {what}") from exc
    except OSError as exc:
        raise AudioError(f"cannot run ffmpeg {what}: {exc}") from exc
    log = result.stderr.decode("utf-8", "replace")
    if check and result.returncode != 0:
        raise AudioError(f"ffmpeg failed {what}: {_failure_detail(log, result.returncode)}")
    return FfmpegRun(stdout=result.stdout, log=log, returncode=result.returncode)


@functools.cache
def encoders() -> frozenset[str]:
    """Names of the encoders the bundled ffmpeg has (``ffmpeg -encoders``), read once."""
    listing = run_ffmpeg(["-encoders"], what="listing encoders").stdout.decode("utf-8", "replace")
    names = set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2 and len(fields[0]) == 6 and fields[0][0] in "AVS":
            names.add(fields[1])
    return frozenset(names)


def check_readable(path: Path) -> None:
    """AudioError naming the file unless it is an existing, non-empty regular file."""
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"audio input is not a regular file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty: {path}")


def from_pcm(pcm: bytes) -> AudioSegment:
    """A segment over raw broadcast-format PCM (s16le, mono, 22.05 kHz)."""
    return AudioSegment(
        data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE, channels=CHANNELS
    )


def to_broadcast_format(segment: AudioSegment) -> AudioSegment:
    """Convert any PCM segment to mono, 16-bit, 22.05 kHz."""
    if segment.channels != CHANNELS:
        segment = segment.set_channels(CHANNELS)
    if segment.sample_width != SAMPLE_WIDTH:
        segment = segment.set_sample_width(SAMPLE_WIDTH)
    if segment.frame_rate != SAMPLE_RATE:
        segment = segment.set_frame_rate(SAMPLE_RATE)
    return segment


def read_wav(path: Path) -> AudioSegment | None:
    """Fast path for 16-bit 22.05 kHz PCM WAV (espeak's output): pydub reads it, no subprocess.

    Returns None when pydub cannot read the file (float or compressed WAV, odd headers) or when
    it would have to resample (pydub's resampler is crude; ffmpeg's is not); the caller then
    lets ffmpeg decode it. pydub's own ``from_wav`` is not used: its fallback calls ffprobe.
    """
    with path.open("rb") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        handle.seek(0)
        try:
            segment = AudioSegment(data=handle.read())
        except (CouldntDecodeError, ValueError, EOFError, IndexError, struct.error) as exc:
            _LOGGER.debug("pydub cannot read %s directly (%s); decoding with ffmpeg", path, exc)
            return None
    if segment.frame_rate != SAMPLE_RATE or segment.sample_width != SAMPLE_WIDTH:
        return None
    return to_broadcast_format(segment)


#: Decoding for the programme: resample and downmix first, then measure exactly what is kept.
_DECODE_FILTER = f"aresample={SAMPLE_RATE},aformat=channel_layouts=mono,{EBUR128_FILTER}"


def decode_args(path: Path) -> list[str]:
    """ffmpeg input and filter options that decode path's first audio stream to the broadcast
    format (mono 22.05 kHz) and measure its loudness on the way (ebur128 passes audio through).
    """
    return [
        "-i", f"file:{path.resolve()}",
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-af", _DECODE_FILTER,
    ]  # fmt: skip


_PCM_OUTPUT = ["-c:a", "pcm_s16le", "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE), "-f", "s16le"]


def loudness_from_log(log: str, what: str) -> Loudness:
    """The ebur128 summary of a run; AudioError if the run printed none."""
    loudness = parse_ebur128_summary(log)
    if loudness is None:
        raise AudioError(f"ffmpeg printed no loudness measurement {what}")
    return loudness


def decode_measured(path: str | os.PathLike[str]) -> tuple[AudioSegment, Loudness]:
    """Decode any audio file to a mono 16-bit 22.05 kHz segment and measure its loudness.

    One ffmpeg run does both, so levelling a speech file costs no extra pass. Raises AudioError
    naming the file if it is missing, empty, not audio or has no audio stream.
    """
    path = Path(path)
    check_readable(path)
    what = f"decoding {path}"
    result = run_ffmpeg([*decode_args(path), *_PCM_OUTPUT, "pipe:1"], what=what, loglevel="info")
    segment = from_pcm(result.stdout)
    if len(segment.raw_data) == 0:
        raise AudioError(f"audio file holds no samples: {path}")
    return segment, loudness_from_log(result.log, what)


def measure_segment(segment: AudioSegment, what: str = "measuring loudness") -> Loudness:
    """Integrated loudness (BS.1770) of a PCM segment, measured by ffmpeg's ebur128 filter."""
    segment = to_broadcast_format(segment)
    result = run_ffmpeg(
        [
            "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", str(CHANNELS), "-i", "pipe:0",
            "-af", EBUR128_FILTER, "-f", "null", "-",
        ],
        stdin=segment.raw_data,
        what=what,
        loglevel="info",
    )  # fmt: skip
    return loudness_from_log(result.log, what)


def _pcm_input(pcm: bytes | Path) -> tuple[list[str], bytes | None]:
    """ffmpeg input options for broadcast-format raw PCM given as bytes (stdin) or a file."""
    source = "pipe:0" if isinstance(pcm, bytes) else f"file:{pcm.resolve()}"
    options = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", str(CHANNELS), "-i", source]
    return options, pcm if isinstance(pcm, bytes) else None


def limit_and_measure(
    pcm: bytes | Path,
    *,
    gain_db: float,
    ceiling_dbfs: float,
    dest: Path | None = None,
    filters: str = "",
    what: str = "levelling",
) -> tuple[bytes, Loudness]:
    """Run `filters` (an ffmpeg chain that keeps the length, e.g. the programme's speech
    processing; it sees the input at its own level, so the gain below stays linear), apply
    gain_db, hold peaks under ceiling_dbfs with a look-ahead limiter, and measure the result
    (BS.1770) in the same run. Returns the limited PCM (b"" when written to dest).

    The limiter is delay-compensated, so the output has exactly as many samples as the input.
    """
    inputs, stdin = _pcm_input(pcm)
    limit = 10 ** (ceiling_dbfs / 20)
    chain = (
        f"{filters + ',' if filters else ''}"
        f"volume={gain_db:.2f}dB:precision=float,"
        f"alimiter=limit={limit:.6f}:attack=5:release=50:level=false:latency=true,"
        f"{EBUR128_FILTER}"
    )
    output = f"file:{dest.resolve()}" if dest is not None else "pipe:1"
    result = run_ffmpeg(
        [*inputs, "-af", chain, *_PCM_OUTPUT, "-y", output],
        stdin=stdin,
        what=what,
        loglevel="info",
    )
    return result.stdout, loudness_from_log(result.log, what)


def encode_pcm(
    pcm: bytes | Path,
    fmt: OutputFormat,
    *,
    gain_db: float = 0.0,
    what: str = "encoding",
) -> bytes:
    """Encode broadcast-format PCM (raw s16le mono 22.05 kHz, as bytes or a file) to fmt.

    ``gain_db`` (a final trim, normally ≤ 0) is applied in floating point. No tags, no Xing
    header: the output is byte-for-byte the same for the same input (the media store deduplicates
    renders) and trivially streamable.
    """
    if isinstance(pcm, bytes) and fmt.value == "mp3":
        pieces = split_at_quiet_points(pcm, PARALLEL_ENCODERS)
        if len(pieces) > 1:
            with ThreadPoolExecutor(len(pieces), thread_name_prefix="loa-encode") as pool:
                parts = pool.map(lambda piece: _encode_one(piece, fmt, gain_db, what), pieces)
                return b"".join(parts)
    return _encode_one(pcm, fmt, gain_db, what)


def _encode_one(pcm: bytes | Path, fmt: OutputFormat, gain_db: float, what: str) -> bytes:
    inputs, stdin = _pcm_input(pcm)
    filters = ["-af", f"volume={gain_db:.2f}dB:precision=float"] if gain_db else []
    return run_ffmpeg([*inputs, *filters, *fmt.ffmpeg_output_args()], stdin=stdin, what=what).stdout


def split_at_quiet_points(pcm: bytes, pieces: int) -> list[bytes]:
    """Cut long PCM into `pieces` parts at the quietest 20 ms near each even cut, so the parts can
    be encoded on separate cores and their MP3 frames joined (each part's encoder delay then falls
    in a pause, where it cannot be heard). Short audio stays whole.
    """
    frame_bytes = SAMPLE_WIDTH * CHANNELS
    total_frames = len(pcm) // frame_bytes
    if pieces < 2 or total_frames < PARALLEL_MIN_SECONDS * SAMPLE_RATE:
        return [pcm]
    samples = array.array("h", pcm[: total_frames * frame_bytes])
    window = SAMPLE_RATE // 50
    reach = QUIET_SEARCH_SECONDS * SAMPLE_RATE
    cuts = [0]
    for index in range(1, pieces):
        middle = total_frames * index // pieces
        start = max(cuts[-1] + window, middle - reach)
        best, best_energy = middle, None
        for offset in range(start, min(total_frames - window, middle + reach), window):
            energy = sum(map(abs, samples[offset : offset + window]))
            if best_energy is None or energy < best_energy:
                best, best_energy = offset, energy
        cuts.append(best)
    cuts.append(total_frames)
    return [pcm[a * frame_bytes : b * frame_bytes] for a, b in itertools.pairwise(cuts)]


try:
    configure_pydub()
except AudioError as _exc:  # the media store works without ffmpeg; rendering will report it
    _LOGGER.warning("%s", _exc)
