"""Command line of the kws service: ``python -m services.kws <subcommand>``.

Each subcommand is one ``add_parser`` call and one handler function taking the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from services.common.audio import AudioRejected
from services.common.settings import CACHE_DIR
from services.kws.thresholds import FALSE_WEIGHT, MISS_WEIGHT

KWS_CACHE = CACHE_DIR / "kws"
ABLATION_SWITCHES = (
    "wide_prosody",
    "run_on_probability",
    "warp_probability",
    "spec_masks",
    "device_probability",
    "music_beds",
    "seed",
    "members",
)


def scan(args: argparse.Namespace) -> int:
    from services.kws.spotter import KeywordSpotter

    spotter = KeywordSpotter.load(args.model)
    failed = 0
    for path in args.files:
        try:
            result = spotter.scan(Path(path).read_bytes())
        except AudioRejected as error:
            failed += 1
            rejection = {"file": path, "error": error.code, "message": error.message}
            print(json.dumps(rejection, ensure_ascii=False))
            continue
        if args.json:
            print(json.dumps({"file": path, **result.to_json_dict()}, ensure_ascii=False))
        else:
            spans = (
                ", ".join(f"{i.start_ms}-{i.end_ms} ms ({i.score:.2f})" for i in result.intervals) or "none"
            )
            print(f"{path}: {result.duration_ms} ms, skip_kws: {spans}")
    return 1 if failed else 0


def train(args: argparse.Namespace) -> int:
    from services.kws.model import MODEL_PATH
    from services.kws.synthesis import SpeechCache
    from services.kws.training import TrainingConfig, run_training

    ablation = {name: getattr(args, name) for name in ABLATION_SWITCHES if getattr(args, name) is not None}
    config = TrainingConfig(
        windows=args.windows, epochs=args.epochs, workers=args.workers, threads=args.threads, **ablation
    )
    cache = SpeechCache(KWS_CACHE / "synth", workers=args.workers)
    data_path = KWS_CACHE / f"training_windows_{config.data_key}.npz"
    run_training(config, args.model or MODEL_PATH, cache, data_path)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from services.kws.model_card import run_evaluation

    run_evaluation(args.model, KWS_CACHE, workers=args.workers)
    return 0


def build_bank(_: argparse.Namespace) -> int:
    from services.kws.enrollment_eval import build_bank as build

    build(KWS_CACHE)
    return 0


def enroll_evaluate(_: argparse.Namespace) -> int:
    from services.kws.enrollment_eval import run_enrollment_evaluation

    run_enrollment_evaluation(KWS_CACHE)
    return 0


def calibrate(args: argparse.Namespace) -> int:
    from services.kws.calibration import run_calibration

    run_calibration(args.model, KWS_CACHE / "calibration", args.miss_weight, args.false_weight)
    return 0


def simulate(args: argparse.Namespace) -> int:
    from services.kws.simulation import run_simulation

    run_simulation(args.model, KWS_CACHE / "simulation")
    return 0


def samples(args: argparse.Namespace) -> int:
    from services.kws.samples import make_samples
    from services.kws.synthesis import SpeechCache

    print(make_samples(SpeechCache(KWS_CACHE / "synth")))
    return 0


def playback_sim(args: argparse.Namespace) -> int:
    import asyncio

    from services.kws.playback import DOCUMENTED_PREBUFFER_MS, run_playback_sim

    prebuffer = DOCUMENTED_PREBUFFER_MS if args.prebuffer_ms is None else args.prebuffer_ms
    in_time = asyncio.run(run_playback_sim(prebuffer, args.keywords, args.speed, args.chunk_ms))
    return 0 if in_time else 1


def run(_: argparse.Namespace) -> int:
    from services.kws.worker import main as run_worker

    run_worker()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.kws", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "run", help="the worker: consume kws.scan and kws.enroll jobs until SIGTERM"
    ).set_defaults(handler=run)

    scan_parser = commands.add_parser("scan", help="skip_kws intervals of audio files")
    scan_parser.add_argument("files", nargs="+")
    scan_parser.add_argument("--json", action="store_true", help="one JSON object per line and file")
    scan_parser.set_defaults(handler=scan)

    train_parser = commands.add_parser("train", help="synthesise data, train and export the spotter")
    train_parser.add_argument("--windows", type=int, default=32000)
    train_parser.add_argument("--epochs", type=int, default=12)
    train_parser.add_argument("--workers", type=int, default=2)
    train_parser.add_argument("--threads", type=int, default=2)
    # ablation switches; unset means TrainingConfig's default
    train_parser.add_argument(
        "--wide-prosody",
        action=argparse.BooleanOptionalAction,
        help="natural training voices' extra takes at wider speed and pitch",
    )
    train_parser.add_argument("--run-on-probability", type=float, help="keywords with no real pause")
    train_parser.add_argument("--warp-probability", type=float, help="vocal tract length warping")
    train_parser.add_argument("--spec-masks", type=int, help="SpecAugment masks per example")
    train_parser.add_argument(
        "--device-probability", type=float, help="windows played through an overdriven speaker and an AGC"
    )
    train_parser.add_argument("--music-beds", type=int, help="random tunes that the noise may be")
    train_parser.add_argument("--seed", type=int, help="another draw of data and weights")
    train_parser.add_argument("--members", type=int, help="networks from consecutive seeds, as one ensemble")
    train_parser.set_defaults(handler=train)

    evaluate_parser = commands.add_parser("evaluate", help="held-out voices: write MODEL_CARD.md")
    evaluate_parser.add_argument("--workers", type=int, default=2)
    evaluate_parser.set_defaults(handler=evaluate)

    commands.add_parser(
        "build-bank", help="general frames mixed into every voice enrollment (models/marusya_bank.npz)"
    ).set_defaults(handler=build_bank)
    commands.add_parser(
        "enroll-evaluate", help="enroll held-out voices with 10/30/100 clips; write MODEL_CARD.md's section"
    ).set_defaults(handler=enroll_evaluate)
    calibrate_parser = commands.add_parser(
        "calibrate", help="choose the playback threshold against the echo path"
    )
    calibrate_parser.add_argument(
        "--miss-weight",
        type=float,
        default=MISS_WEIGHT,
        help="loss of the mic firing where playback does not",
    )
    calibrate_parser.add_argument(
        "--false-weight",
        type=float,
        default=FALSE_WEIGHT,
        help="loss of playback firing where the mic does not",
    )
    calibrate_parser.set_defaults(handler=calibrate)
    commands.add_parser("simulate", help="self-trigger report with and without muting").set_defaults(
        handler=simulate
    )
    commands.add_parser("samples", help="re-make the committed clips in samples/playback").set_defaults(
        handler=samples
    )
    sim = commands.add_parser(
        "playback-sim", help="stream tracks through a gateway of its own; is each interval in time?"
    )
    sim.add_argument("--prebuffer-ms", type=float, default=None, help="player pre-buffer, ms")
    sim.add_argument("--keywords", type=int, default=4, help="keywords in the composed long track")
    sim.add_argument("--speed", type=float, default=1.0, help="clock speed; 1 is real time")
    sim.add_argument("--chunk-ms", type=int, default=20, help="audio per message")
    sim.set_defaults(handler=playback_sim)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
