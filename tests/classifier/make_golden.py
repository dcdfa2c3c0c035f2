"""Regenerate golden.json after retraining: `python -m tests.classifier.make_golden`, then review."""

import json
from pathlib import Path

from services.classifier.analysis import CryClassifier

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "cry"
GOLDEN = Path(__file__).with_name("golden.json")


def golden_answers(classifier: CryClassifier) -> dict[str, dict]:
    answers = {}
    for path in sorted(SAMPLES.glob("*.ogg")):
        answer = classifier.analyse(path.read_bytes()).to_json_dict()
        answers[path.name] = {
            key: answer[key] for key in ("status", "label", "probabilities", "model_version")
        }
        answers[path.name]["cry_probability"] = answer["quality"].get("cry_probability")
    return answers


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden_answers(CryClassifier.load()), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN}")
