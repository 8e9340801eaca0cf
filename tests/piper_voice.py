"""A minimal Piper voice generated for the tests: a real ONNX model and config that the real
`piper` package loads, phonemizes for (espeak-ng, Vietnamese) and runs with onnxruntime.

No Vietnamese voice can be downloaded in CI, so the model does not speak: each phoneme id
becomes one hop of a tone whose loudness follows the id. Everything around the model (our
engine, piper's phonemizer and runtime, WAV output, our cache) is the real thing. A real voice
can still be tested by setting LOA_PIPER_MODEL.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from piper import voice as piper_voice
from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

HOP = 256
SAMPLE_RATE = 16000
SPECIAL = ("_", "^", "$", " ")  # piper's pad, begin, end, and the word gap


def _phonemes(texts: list[str]) -> set[str]:
    """Every phoneme piper gives for `texts`, from piper's own process-wide phonemizer under its
    lock. The espeak-ng inside piper's bridge is one global state: a second EspeakPhonemizer
    initializes it again, and doing that in a process where a voice had already used it (or
    was using it on a service's thread) crashed a test worker."""
    with piper_voice._ESPEAK_PHONEMIZER_LOCK:
        if piper_voice._ESPEAK_PHONEMIZER is None:
            piper_voice._ESPEAK_PHONEMIZER = EspeakPhonemizer(ESPEAK_DATA_DIR)
        phonemizer = piper_voice._ESPEAK_PHONEMIZER
        sentences = [sentence for text in texts for sentence in phonemizer.phonemize("vi", text)]
    return {phoneme for sentence in sentences for phoneme in sentence}


def make_voice(directory: Path, texts: list[str]) -> Path:
    """Write `<directory>/vi_VN-loa_test-x_low.onnx` (+ `.onnx.json`) knowing every phoneme
    espeak-ng gives for `texts`; returns the model path."""
    seen = _phonemes(texts)
    symbols = [*SPECIAL, *sorted(seen - set(SPECIAL))]
    tone = (0.4 * np.sin(np.arange(HOP) * 2 * np.pi * 4 / HOP)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input"], ["ids"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["ids", "last_axis"], ["ids_3d"]),
            helper.make_node("Mul", ["ids_3d", "step"], ["louder"]),
            helper.make_node("Add", ["louder", "base"], ["gain"]),
            helper.make_node("Mul", ["gain", "tone"], ["frames"]),
            helper.make_node("Reshape", ["frames", "audio_shape"], ["output"]),
        ],
        "loa-test-voice",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "samples"])],
        [
            numpy_helper.from_array(np.array([2], dtype=np.int64), "last_axis"),
            numpy_helper.from_array(np.array(0.5 / len(symbols), dtype=np.float32), "step"),
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "base"),
            numpy_helper.from_array(tone, "tone"),
            numpy_helper.from_array(np.array([1, 1, 1, -1], dtype=np.int64), "audio_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = directory / "vi_VN-loa_test-x_low.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    config = {
        "audio": {"sample_rate": SAMPLE_RATE},
        "espeak": {"voice": "vi"},
        "num_symbols": len(symbols),
        "num_speakers": 1,
        "phoneme_id_map": {symbol: [index] for index, symbol in enumerate(symbols)},
    }
    Path(f"{path}.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return path
