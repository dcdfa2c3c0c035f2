"""Classifier settings from ``EARSHOT_*`` environment variables."""

from pathlib import Path

from services.common.settings import CACHE_DIR, SHARED_DATA_DIR, EarshotSettings

CLASSIFIER_DIR = Path(__file__).resolve().parent


class ClassifierSettings(EarshotSettings):
    """Where the data, the model and the caches live, and how much audio one request may carry."""

    data_dir: Path = SHARED_DATA_DIR
    model_path: Path = CLASSIFIER_DIR / "cry_model.onnx"
    model_card_path: Path = CLASSIFIER_DIR / "MODEL_CARD.md"
    cache_dir: Path = CACHE_DIR / "classifier"
    max_audio_bytes: int = 20 * 1024 * 1024
    max_audio_seconds: float = 120.0
    inference_threads: int = 1
    training_threads: int = 2
    seed: int = 20261122
