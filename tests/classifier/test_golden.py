"""Golden answers on the committed sample clips: any change in decoding, features or model shows up here.

After an intended retrain, regenerate with `python -m tests.classifier.make_golden` and review the diff.
"""

import json

import pytest

from services.classifier.analysis import CryClassifier
from tests.classifier.make_golden import GOLDEN, SAMPLES, golden_answers

EXPECTED = json.loads(GOLDEN.read_text())


def test_every_sample_has_a_golden_answer() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SAMPLES.glob("*.ogg"))


def test_samples_answer_as_recorded(classifier: CryClassifier) -> None:
    actual = golden_answers(classifier)
    for name, expected in EXPECTED.items():
        answer = actual[name]
        assert answer["model_version"] == expected["model_version"], "model changed: regenerate golden.json"
        assert (answer["status"], answer["label"]) == (expected["status"], expected["label"]), name
        assert answer["cry_probability"] == pytest.approx(expected["cry_probability"], abs=2e-3), name
        for label, p in expected["probabilities"].items():
            assert answer["probabilities"][label] == pytest.approx(p, abs=2e-3), name


def test_non_cries_among_the_samples_are_turned_away() -> None:
    assert EXPECTED["speech-espeak.ogg"]["status"] == "not_a_cry"
    assert EXPECTED["dog-esc10.ogg"]["status"] in {"not_a_cry", "bad_audio"}
