"""Writing the shipped ONNX file: both networks in one graph, and all the runtime needs in metadata."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import torch

from services.classifier.features import N_FRAMES, N_MELS, feature_parameters
from services.classifier.nets import CryModel

MODEL_FAMILY = "earshot-cry"
INPUT_NAME = "log_mel"
OUTPUT_NAMES = ("cry_logit", "reason_logits")


def export_model(
    model: CryModel,
    path: Path,
    labels: list[str],
    cry_threshold: float,
    not_sure_threshold: float,
    temperature: float,
    extra_metadata: dict[str, str],
) -> str:
    """Export to ``path``; return the model version (family + hash of the weights: reproducible)."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, N_MELS, N_FRAMES)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAMES[0]: {0: "batch"}, OUTPUT_NAMES[1]: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    graph = onnx.load(str(path))
    weights_hash = hashlib.sha256(b"".join(t.raw_data for t in graph.graph.initializer)).hexdigest()[:10]
    version = f"{MODEL_FAMILY}-{weights_hash}"
    metadata = {
        "version": version,
        "labels": json.dumps(labels),
        "cry_threshold": repr(float(cry_threshold)),  # full precision: rounding would move the cry budget
        "not_sure_threshold": repr(float(not_sure_threshold)),
        "temperature": repr(float(temperature)),
        "features": json.dumps(feature_parameters()),
        **extra_metadata,
    }
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(path))
    return version
