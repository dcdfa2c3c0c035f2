"""Command line of the cry classifier: run the worker, classify files, train the model, evaluate it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.classifier.settings import ClassifierSettings


def classify(arguments: argparse.Namespace, settings: ClassifierSettings) -> int:
    """One JSON answer per file; a rejected recording is an answer too (exit code 0)."""
    from services.classifier.analysis import CryClassifier

    classifier = CryClassifier.load(settings)
    for name in arguments.files:
        path = Path(name)
        if not path.is_file():
            print(f"no such file: {name}", file=sys.stderr)
            return 2
        analysis = classifier.analyse(path.read_bytes())
        if arguments.json:
            print(json.dumps({"file": name, **analysis.to_json_dict()}, ensure_ascii=False))
        else:
            print(f"{name}: {analysis.status} {analysis.label or ''} — {analysis.message}")
    return 0


def train(_: argparse.Namespace, settings: ClassifierSettings) -> int:
    from services.classifier.evaluate import write_model_card
    from services.classifier.train import train as run_training

    run_training(settings)
    write_model_card(settings)
    return 0


def evaluate(_: argparse.Namespace, settings: ClassifierSettings) -> int:
    from services.classifier.evaluate import write_model_card

    write_model_card(settings)
    return 0


def age_prior(_: argparse.Namespace, settings: ClassifierSettings) -> int:
    from services.classifier.age_prior import write_age_prior
    from services.classifier.train import REASON_LABELS
    from services.common.evidence import AGE_PRIOR_FILE, load_evidence_config

    counts = write_age_prior(settings.data_dir, REASON_LABELS, load_evidence_config())["counts"]
    for band, by_reason in counts.items():
        print(f"{band:>8}: " + ", ".join(f"{label} {n}" for label, n in by_reason.items()))
    print(f"wrote {AGE_PRIOR_FILE}")
    return 0


def run(_: argparse.Namespace, __: ClassifierSettings) -> int:
    from services.classifier.worker import main as run_worker

    run_worker()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.classifier", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="the worker: consume cry.classify jobs until SIGTERM").set_defaults(
        handler=run
    )
    classify_parser = commands.add_parser("classify", help="classify audio files")
    classify_parser.add_argument("files", nargs="+", help="audio files (ogg, mp3, m4a, wav, flac)")
    classify_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    classify_parser.set_defaults(handler=classify)
    commands.add_parser(
        "train", help="retrain from the shared data; rewrites the ONNX file and the model card"
    ).set_defaults(handler=train)
    commands.add_parser(
        "evaluate", help="cross-validate baselines and the shipped model; writes MODEL_CARD.md"
    ).set_defaults(handler=evaluate)
    commands.add_parser(
        "age-prior", help="count reasons per age band in the corpus; writes services/common/age_prior.json"
    ).set_defaults(handler=age_prior)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments, ClassifierSettings())


if __name__ == "__main__":
    sys.exit(main())
