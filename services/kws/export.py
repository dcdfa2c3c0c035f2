"""Write the trained network as one ONNX file with the detector's settings in its metadata (training only)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from services.kws.detector import NO_HOLD, OnsetSearch
from services.kws.features import HOP, N_MELS, SAMPLE_RATE

EMBEDDINGS_OUTPUT = "embeddings"


def export_onnx(net: torch.nn.Module, path: Path, metadata: dict[str, object]) -> None:
    """Export ``net`` (features (1, frames, mels) → scores (1, score frames)) and attach ``metadata``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 300, N_MELS)
    torch.onnx.export(
        net,
        (example,),
        str(path),
        input_names=["features"],
        output_names=["scores"],
        dynamic_axes={"features": {1: "frames"}, "scores": {1: "score_frames"}},
        opset_version=17,
        dynamo=False,
    )
    add_embedding_output(path)
    write_metadata(path, metadata)


def add_embedding_output(path: Path) -> None:
    """Expose the input of the final 1×1 head convolution as a second output, ``embeddings``
    (1, channels, score frames): voice enrollment fits its own head on them. The ``scores`` output, and
    every weight, stay exactly as they were."""
    model = onnx.load(str(path))
    if any(output.name == EMBEDDINGS_OUTPUT for output in model.graph.output):
        return
    (head,) = [node for node in model.graph.node if node.op_type == "Conv" and "head.weight" in node.input]
    model.graph.node.append(onnx.helper.make_node("Identity", [head.input[0]], [EMBEDDINGS_OUTPUT]))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(EMBEDDINGS_OUTPUT, onnx.TensorProto.FLOAT, [1, None, None])
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_metadata(path: Path, metadata: dict[str, object]) -> None:
    """Replace the ``earshot_kws`` metadata entry (JSON) of the ONNX file at ``path``."""
    model = onnx.load(str(path))
    entries = {entry.key: entry.value for entry in model.metadata_props}
    entries["earshot_kws"] = json.dumps(metadata, ensure_ascii=False, sort_keys=True)
    del model.metadata_props[:]
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def read_metadata(path: Path) -> dict[str, object]:
    model = onnx.load(str(path))
    return json.loads({entry.key: entry.value for entry in model.metadata_props}["earshot_kws"])


def base_metadata(
    version: str, context_frames: int, score_hop_ms: float, score_offset_ms: float
) -> dict[str, object]:
    """A freshly trained model's metadata; train then sets the thresholds and ``hold_ratio`` from the
    validation voices, and ``calibrate`` rewrites ``playback_threshold``."""
    return {
        "keyword": "Маруся",
        "version": version,
        "sample_rate": SAMPLE_RATE,
        "feature_hop_ms": HOP * 1000 / SAMPLE_RATE,
        "score_hop_ms": score_hop_ms,
        "score_offset_ms": score_offset_ms,
        "context_frames": context_frames,
        "playback_threshold": 0.5,
        "mic_threshold": 0.5,
        "smoothing_frames": 3,
        "min_frames": 3,
        "pad_before_ms": 100,
        # The smallest of 100, 150, 200 ms at which every validation keyword is covered to its end (an
        # espeak-ng voice's trailing vowel outlasts the detection by up to 31 ms): reports/ablation.md.
        "pad_after_ms": 150,
        "merge_gap_ms": 0,
        "hold_ratio": NO_HOLD,
        # A keyword said over a second starts up to this long before the network is sure of it.
        "onset_reach_ms": 1000.0,
        "onset_quiet_db": OnsetSearch.quiet_db,
        "onset_pause_ms": OnsetSearch.pause_ms,
    }
