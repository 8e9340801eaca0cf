"""The Piper voices installed on this server, which communes may choose to be read in.

`loa voice add FILE.onnx` checks a voice (`tts.check_piper_voice`: its .onnx.json, Vietnamese,
its sample rate, a test sentence that really sounds) and copies both files into
`DATA/voices/<name>.onnx` (+ `.onnx.json`). A commune (or its province) then chooses it on the
admin pages or with `loa voice use`; what is sent to its receivers is read in that voice
(`zones.voice_for`, `MediaRenderer`). "" stands for the installation's own engine
(`LOA_TTS`, espeak-ng by default). With several servers on one database, each holds its own
copy: run `loa voice add` on each.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import tts
from broadcast.errors import N_, ValidationError
from wire.files import atomic_output

DEFAULT = ""  # the installation's engine
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MODEL_SUFFIX = ".onnx"
CONFIG_SUFFIX = ".onnx.json"


class VoiceShelf:
    """The folder of installed voices: what can be chosen, and where each one's files are."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self) -> list[str]:
        """Every installed voice (both of its files present), sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path.name[: -len(MODEL_SUFFIX)]
            for path in self.directory.glob(f"*{MODEL_SUFFIX}")
            if NAME.match(path.name[: -len(MODEL_SUFFIX)]) and self._config(path).is_file()
        )

    def model(self, name: str) -> Path:
        """The model file of an installed voice; ValidationError (field "voice") otherwise."""
        if not isinstance(name, str) or name not in self.names():
            raise ValidationError(
                "voice",
                N_("máy chủ này không có giọng đọc “%(name)s”"),
                "unknown_voice",
                name=str(name)[:100],
            )
        return self.directory / f"{name}{MODEL_SUFFIX}"

    def clean(self, value: object) -> str:
        """A commune's choice from a form or the API: "" (the installation's engine) or an
        installed voice."""
        if value is None or value == DEFAULT:
            return DEFAULT
        if not isinstance(value, str):
            raise ValidationError("voice", N_("giọng đọc phải là tên một giọng"), "not_text")
        self.model(value)
        return value

    def add(self, model: Path, name: str | None = None) -> tuple[str, tts.VoiceCheck]:
        """Check a voice and install it under `name` (default: its file's name); an installed
        voice of that name is replaced. TtsError or ValidationError say what is wrong; nothing
        is installed then."""
        chosen = name if name is not None else Path(model).name.removesuffix(MODEL_SUFFIX)
        if not NAME.match(chosen):
            raise ValidationError(
                "name",
                N_("tên giọng đọc chỉ gồm chữ không dấu, số, “-”, “_”, “.” (tối đa 63 ký tự)"),
                "bad_name",
            )
        check = tts.check_piper_voice(model)
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{chosen}{MODEL_SUFFIX}"
        # the config first: a model is offered only once its config is beside it
        for source, destination in ((check.config, self._config(target)), (check.model, target)):
            with atomic_output(destination, mode=0o644, fsync=True) as output:
                shutil.copyfile(source, output.path)
        return chosen, check

    @staticmethod
    def _config(model: Path) -> Path:
        return model.with_name(model.name[: -len(MODEL_SUFFIX)] + CONFIG_SUFFIX)
