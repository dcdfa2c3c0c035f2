"""Writing the shipped ONNX file: both networks in one graph, and all the runtime needs in metadata."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from services.classifier.calibration import Calibration
from services.classifier.features import N_FRAMES, N_MELS, feature_parameters
from services.classifier.nets import CryModel
from services.classifier.sound_features import BLOCK_FRAMES, SOUND_N_MELS, sound_feature_parameters

MODEL_FAMILY = "earshot-cry"
INPUT_NAMES = ("log_mel", "sound_blocks")
OUTPUT_NAMES = ("cry_logit", "reason_logits")
# Weight tensors at least this large are stored as float16 and cast back to float32 when the session loads:
# the pretrained gate embedding would otherwise make the file 19 MB (the limit is 10 MB).
HALF_PRECISION_MIN_ELEMENTS = 4096


def export_model(
    model: CryModel,
    path: Path,
    labels: list[str],
    cry_threshold: float,
    not_sure_threshold: float,
    calibration: Calibration,
    extra_metadata: dict[str, str],
) -> str:
    """Export to ``path``; return the model version (family + hash of the weights: reproducible)."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    examples = (torch.zeros(1, N_MELS, N_FRAMES), torch.zeros(2, BLOCK_FRAMES, SOUND_N_MELS))
    torch.onnx.export(
        model,
        examples,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={
            INPUT_NAMES[0]: {0: "windows"},
            INPUT_NAMES[1]: {0: "blocks"},
            OUTPUT_NAMES[1]: {0: "windows"},
        },
        opset_version=17,
        dynamo=False,
    )
    graph = onnx.load(str(path))
    store_large_weights_as_float16(graph.graph)
    weights_hash = hashlib.sha256(b"".join(t.raw_data for t in graph.graph.initializer)).hexdigest()[:10]
    version = f"{MODEL_FAMILY}-{weights_hash}"
    metadata = {
        "version": version,
        "labels": json.dumps(labels),
        "cry_threshold": repr(float(cry_threshold)),  # full precision: rounding would move the cry budget
        "not_sure_threshold": repr(float(not_sure_threshold)),
        "calibration": calibration.to_json(),
        "features": json.dumps(feature_parameters()),
        "sound_features": json.dumps(sound_feature_parameters()),
        "sound_embedding": "aiSFX X-Sequential-CE (A. B. Ma and A. Lerch, ISMIR 2022), CC BY 4.0, frozen",
        **extra_metadata,
    }
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(path))
    return version


def store_large_weights_as_float16(graph: onnx.GraphProto) -> None:
    """Replace each large float32 initializer by a float16 copy plus a Cast node of the original name."""
    casts = []
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        if values.size < HALF_PRECISION_MIN_ELEMENTS:
            continue
        name, half_name = initializer.name, f"{initializer.name}_float16"
        graph.initializer[index].CopyFrom(numpy_helper.from_array(values.astype(np.float16), half_name))
        casts.append(onnx.helper.make_node("Cast", [half_name], [name], to=onnx.TensorProto.FLOAT))
    for offset, cast in enumerate(casts):
        graph.node.insert(offset, cast)
