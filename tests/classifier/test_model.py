"""The shipped ONNX file: it loads, its metadata agrees with the code, and it stays small."""

import json
import subprocess
import sys

import numpy as np
import onnx

from services.classifier import calibration, export, inference
from services.classifier.analysis import CryClassifier
from services.classifier.features import N_FRAMES, N_MELS, feature_parameters
from services.classifier.settings import ClassifierSettings
from services.classifier.sound_features import BLOCK_FRAMES, SOUND_N_MELS, sound_feature_parameters
from services.classifier.train import REASON_LABELS
from services.common.settings import REPO_ROOT


def test_file_is_small_and_valid() -> None:
    path = ClassifierSettings().model_path
    assert path.stat().st_size < 10 * 1024 * 1024
    onnx.checker.check_model(onnx.load(str(path)))


def test_metadata_matches_the_code(classifier: CryClassifier) -> None:
    metadata = classifier.metadata
    assert metadata.labels == REASON_LABELS
    assert metadata.features == json.loads(json.dumps(feature_parameters()))
    assert metadata.sound_features == json.loads(json.dumps(sound_feature_parameters()))
    assert metadata.version.startswith(export.MODEL_FAMILY + "-")
    assert 0 < metadata.cry_threshold < 1
    assert 1 / len(metadata.labels) <= metadata.not_sure_threshold < 1
    assert (
        metadata.calibration.method in calibration.CALIBRATION_METHODS
        and metadata.calibration.temperature > 0
    )
    assert len(metadata.calibration.bias) == len(metadata.calibration.prior) == len(metadata.labels)
    assert (inference.INPUT_NAMES, inference.OUTPUT_NAMES) == (export.INPUT_NAMES, export.OUTPUT_NAMES)
    assert (
        "scared" not in metadata.labels
        and "lonely" not in metadata.labels
        and "cold_hot" not in metadata.labels
    )


def test_outputs_have_the_right_shapes_and_windows_are_independent() -> None:
    session = inference.CryModelSession(ClassifierSettings().model_path)
    rng = np.random.default_rng(0)
    windows = rng.uniform(-80, 0, (3, N_MELS, N_FRAMES)).astype(np.float32)
    blocks = rng.uniform(0, 1, (4, BLOCK_FRAMES, SOUND_N_MELS)).astype(np.float32)
    cry_logit, reason_logits = session.run(windows, blocks)
    assert isinstance(cry_logit, float) and np.isfinite(cry_logit)
    assert reason_logits.shape == (3, len(session.metadata.labels))
    single_cry, single_reasons = session.run(windows[1:2], blocks)
    np.testing.assert_allclose(single_reasons[0], reason_logits[1], atol=1e-4)
    assert abs(single_cry - cry_logit) < 1e-4
    assert abs(session.run(windows, blocks[:1])[0] - cry_logit) > 1e-6  # the gate sees every block


def test_large_weights_are_stored_in_half_precision() -> None:
    graph = onnx.load(str(ClassifierSettings().model_path)).graph
    large = [t for t in graph.initializer if np.prod(t.dims) >= export.HALF_PRECISION_MIN_ELEMENTS]
    assert large and all(t.data_type == onnx.TensorProto.FLOAT16 for t in large)


def test_runtime_needs_neither_torch_nor_librosa() -> None:
    """The worker image has onnxruntime + numpy only (requirements/runtime.txt)."""
    check = (
        "import sys, services.classifier.analysis, services.classifier.__main__; "
        "heavy = sorted({'torch', 'librosa', 'numba', 'sklearn'} & set(sys.modules)); "
        "print(heavy, file=sys.stderr); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
