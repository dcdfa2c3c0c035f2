"""Shared fixtures: one classifier per test session (the ONNX file is loaded once, as in the worker)."""

import pytest

from services.classifier.analysis import CryClassifier


@pytest.fixture(scope="session")
def classifier() -> CryClassifier:
    return CryClassifier.load()
