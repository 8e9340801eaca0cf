"""From content to stored media: speech (or a recording) assembled into what receivers play.

The daily bulletin is the same text every day, so every step is cached: the speech by the
synthesizer, the assembled programme by a recipe index (speech file → media sha256), and the raw
text by a text index (text, normalizer, engine → media sha256), so a repeat costs one hash and
one file lookup whatever the length of the text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import audio
import tts
from broadcast.const import MAX_UPLOAD_BYTES, ContentKind
from broadcast.errors import N_, ValidationError
from broadcast.sending.voices import VoiceShelf
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

# bump when the programme layout or sound changes, so old renders are not reused (2: the speech
# processing for horn loudspeakers, audio.programme.SPEECH_FILTERS)
RECIPE_VERSION = 2


@dataclass(frozen=True)
class RenderedMedia:
    sha256: str
    engine: str  # the speech engine that spoke, or "recording"
    cached: bool


class MediaRenderer:
    """Speech (in the installation's engine, or a commune's chosen voice from `voices`) or a
    recording, assembled into the media receivers play."""

    def __init__(
        self,
        synthesizer: tts.Synthesizer,
        store: audio.MediaStore,
        index_dir: Path,
        voices: VoiceShelf | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.store = store
        self.index_dir = index_dir
        self.voices = voices
        index_dir.mkdir(parents=True, exist_ok=True)
        self._chime_sha256: str | None = None
        self._voiced: dict[str, tts.Synthesizer] = {}
        self._voiced_guard = threading.Lock()

    def chime(self) -> str:
        """The opening chime in the media store (made once per process): what a live
        broadcast's receivers play before its stream."""
        if self._chime_sha256 is None or not self.store.exists(self._chime_sha256):
            self._chime_sha256 = self.store.put_bytes(audio.render_chime())
        return self._chime_sha256

    def render(
        self, text: str, recording_sha256: str | None = None, voice: str = ""
    ) -> RenderedMedia:
        """`text` read in `voice` (a commune's choice; "" for the installation's engine), or
        the recording, after the chime."""
        synthesizer = self._synthesizer(voice)
        text_key = None if recording_sha256 is not None else self._text_key(synthesizer, text)
        if text_key is not None:
            known = self._lookup(text_key)
            if known is not None:
                return RenderedMedia(known, synthesizer.engine.name, cached=True)
        rendered = self._render(synthesizer, text, recording_sha256)
        if text_key is not None and rendered.engine == synthesizer.engine.name:
            write_private_file(self.index_dir / text_key, json.dumps({"sha256": rendered.sha256}))
        return rendered

    def _synthesizer(self, voice: str) -> tts.Synthesizer:
        """The installation's synthesizer, or one per chosen voice (made once; a voice taken
        off the server since it was chosen reads in the installation's engine, and says so)."""
        if not voice or self.voices is None:
            return self.synthesizer
        with self._voiced_guard:
            if voice not in self._voiced:
                try:
                    self._voiced[voice] = tts.Synthesizer(
                        self.synthesizer.cache_dir,
                        engine="piper",
                        extra_abbreviations=self.synthesizer.extra_abbreviations,
                        model=self.voices.model(voice),
                    )
                except (ValidationError, tts.TtsError) as exc:
                    _LOGGER.warning("voice %s cannot be used (%s): the default reads", voice, exc)
                    return self.synthesizer
            return self._voiced[voice]

    def _render(
        self, synthesizer: tts.Synthesizer, text: str, recording_sha256: str | None
    ) -> RenderedMedia:
        if recording_sha256 is not None:
            source, engine = self.store.path(recording_sha256), ContentKind.RECORDING.value
            speech_cached = True
        else:
            speech = synthesizer.synthesize(text)
            source, engine, speech_cached = speech.path, speech.engine, speech.cached
        recipe = self._recipe_key(source)
        known = self._lookup(recipe)
        if known is not None:
            return RenderedMedia(known, engine, cached=speech_cached)
        sha256 = self.store.put_bytes(audio.render_announcement([source]))
        write_private_file(self.index_dir / recipe, json.dumps({"sha256": sha256}))
        return RenderedMedia(sha256, engine, cached=False)

    @staticmethod
    def _text_key(synthesizer: tts.Synthesizer, text: str) -> str:
        """Raw text → media without normalizing again: the key covers the normalizer's code and
        dictionaries, the engine and its options. A fallback voice is never indexed this way, so
        the chosen engine is tried again next time."""
        engine = synthesizer.engine
        recipe = {
            "v": RECIPE_VERSION,
            "normalizer": tts.normalizer_fingerprint(),
            "abbreviations": sorted(synthesizer.extra_abbreviations.items()),
            "engine": engine.name,
            "options": {k: str(v) for k, v in engine.cache_options().items()},
            "text": text,
        }
        return "text-" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _recipe_key(source: Path) -> str:
        """Sources are content-addressed files (speech cache, media store): the name is the key."""
        recipe = {"v": RECIPE_VERSION, "source": source.name, "chime": True}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    def _lookup(self, recipe: str) -> str | None:
        path = self.index_dir / recipe
        try:
            sha256 = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return sha256 if self.store.exists(sha256) else None


@dataclass(frozen=True)
class StoredRecording:
    sha256: str
    duration_s: float


def store_recording(media: audio.MediaStore, upload: Path, original_name: str) -> StoredRecording:
    """An uploaded recording (a bulletin's, or an announcement from a phone): validated,
    loudness-normalized and transcoded (`audio.import_recording`), then kept in the media store.
    Refusals are ValidationErrors on the field `recording`, with the problem as their code."""
    try:
        info = audio.import_recording(
            upload, original_name=original_name, max_bytes=MAX_UPLOAD_BYTES
        )
    except audio.RecordingError as exc:
        raise ValidationError(
            "recording",
            N_("không nhận bản ghi âm: %(problem)s"),
            exc.problem.value,
            problem=RECORDING_PROBLEMS[exc.problem],
        ) from exc
    except audio.AudioError as exc:
        raise ValidationError("recording", N_("không xử lý được bản ghi âm"), "unreadable") from exc
    return StoredRecording(media.put_bytes(info.mp3), info.duration_s)


RECORDING_PROBLEMS = {
    audio.RecordingProblem.MISSING: N_("không tìm thấy tệp, hãy ghi lại"),
    audio.RecordingProblem.EMPTY: N_("tệp rỗng, hãy ghi lại"),
    audio.RecordingProblem.TOO_LARGE: N_("tệp quá lớn"),
    audio.RecordingProblem.NOT_AUDIO: N_("tệp này không phải bản ghi âm"),
    audio.RecordingProblem.NO_SOUND_TRACK: N_("tệp không có tiếng"),
    audio.RecordingProblem.UNSUPPORTED: N_("định dạng âm thanh chưa hỗ trợ"),
    audio.RecordingProblem.DAMAGED: N_("tệp bị hỏng, không đọc hết được; hãy ghi lại"),
    audio.RecordingProblem.TOO_SHORT: N_("bản ghi quá ngắn (ít nhất nửa giây)"),
    audio.RecordingProblem.TOO_LONG: N_("bản ghi quá dài (tối đa 30 phút)"),
    audio.RecordingProblem.SILENT: N_(
        "bản ghi im lặng, không nghe thấy tiếng; kiểm tra micrô rồi ghi lại"
    ),
}
