"""``python -m services.kws train``: synthesise, augment, train the spotter and export it to ONNX.

Reproducible: every random choice comes from seeded generators (one per training window, so the
data does not depend on the number of worker processes), and torch runs deterministically.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from services.kws import augment
from services.kws.dataset import (
    SCORE_HOP_MS,
    SCORE_OFFSET_MS,
    TRAINING_TIMING,
    Augmenter,
    VoiceAudio,
    load_voice_audio,
    training_features,
    training_window,
)
from services.kws.detector import NO_HOLD
from services.kws.evaluation import (
    ScoredTracks,
    choose_threshold,
    evaluate_voice,
    score_voice,
    summarise,
    voice_tracks,
)
from services.kws.export import base_metadata, export_onnx, read_metadata, write_metadata
from services.kws.features import N_MELS
from services.kws.labels import frame_labels
from services.kws.model import SpotterModel
from services.kws.network import FrameSpotter, SpotterEnsemble, SpotterNet, context_frames
from services.kws.speech_plan import plan_split
from services.kws.spotter import KeywordSpotter
from services.kws.synthesis import SpeechCache

log = logging.getLogger(__name__)
HOLD_RATIOS = (NO_HOLD, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1)  # tried in this order: ties keep the earlier


@dataclass(frozen=True)
class TrainingConfig:
    windows: int = 32000
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 20261122
    workers: int = 2
    threads: int = 1
    rirs: int = 300
    crop_frames: int = 200  # each batch trains on a random 2 s crop of the 3 s windows: a third less compute
    # Networks trained on the same windows from seeds seed, seed + 1, ...; more than one is exported as
    # their ensemble (``SpotterEnsemble``). Members train in parallel, ``workers`` at a time, each with
    # ``threads // workers`` threads. Three: the smallest ensemble as good as six on the validation
    # voices (reports/ablation.md).
    members: int = 3
    # Ways to widen the voices and channels heard, off in the shipped recipe: reports/ablation.md measured
    # them (e.g. --wide-prosody --run-on-probability 0.3 --warp-probability 0.8 --spec-masks 2, and
    # --device-probability 0.3 against self-triggers) and found no gain beyond the spread between seeds.
    wide_prosody: bool = False  # natural voices' extra takes at wider speed and pitch
    run_on_probability: float = 0.0  # keywords and confusables with no real pause around them
    warp_probability: float = 0.0  # vocal tract length warping of the features
    spec_masks: int = 0  # SpecAugment band masks and time masks per example and batch
    device_probability: float = 0.0  # windows played through an overdriven speaker and an AGC
    music_beds: int = 0  # random tunes that the noise under a window may be (``dataset.Augmenter``)

    @property
    def data_key(self) -> str:
        """Names the training windows these settings make (everything that shapes them)."""
        spec = f"{self.windows}|{self.seed}|{self.rirs}|{self.wide_prosody}|{self.run_on_probability}"
        spec += f"|{self.warp_probability}"
        if self.device_probability:  # only when on, so the shipped recipe's windows keep their name
            # "agc attack": the device's AGC got an attack time, so windows made before it differ
            spec += f"|device {self.device_probability}|agc attack"
        if self.music_beds:
            spec += f"|music {self.music_beds}"
        return hashlib.sha256(spec.encode()).hexdigest()[:10]


_WORKER_STATE: dict[str, object] = {}


def _init_worker(voices: list[VoiceAudio], augmenter: Augmenter, config: TrainingConfig) -> None:
    _WORKER_STATE["voices"] = voices
    _WORKER_STATE["augmenter"] = augmenter
    _WORKER_STATE["config"] = config


def _make_windows(seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    voices = _WORKER_STATE["voices"]
    augmenter = _WORKER_STATE["augmenter"]
    config: TrainingConfig = _WORKER_STATE["config"]  # type: ignore[assignment]
    features, labels, weights = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        audio, spans = training_window(voices, augmenter, rng, config.run_on_probability)
        frames = training_features(audio, rng, config.warp_probability)
        label, weight = frame_labels((len(frames) + 1) // 2, spans, TRAINING_TIMING)
        features.append(frames.astype(np.float16))
        labels.append(label)
        weights.append(weight)
    return np.stack(features), np.stack(labels), np.stack(weights)


def build_training_set(
    cache: SpeechCache, config: TrainingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthesise what is missing, then make ``config.windows`` augmented windows with frame labels."""
    plans = plan_split("train", config.wide_prosody)
    cache.synthesise(request for plan in plans for request in plan.requests())
    voices = load_voice_audio(plans, cache)
    rng = np.random.default_rng(config.seed)
    augmenter = Augmenter.create(rng, config.rirs, config.device_probability, config.music_beds)
    seeds = [config.seed * 1000 + index for index in range(config.windows)]
    batches = [seeds[start : start + 500] for start in range(0, len(seeds), 500)]
    initargs = (voices, augmenter, config)
    with ProcessPoolExecutor(config.workers, initializer=_init_worker, initargs=initargs) as pool:
        parts = list(pool.map(_make_windows, batches))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))  # type: ignore[return-value]


def train_network(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray, config: TrainingConfig
) -> SpotterNet:
    """Masked frame-wise binary cross-entropy, AdamW with a one-cycle schedule; every batch gets fresh
    SpecAugment masks (filled with the feature mean, i.e. zero after normalisation)."""
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(config.threads)
    sample = features[:: max(1, len(features) // 2000)].astype(np.float32).reshape(-1, N_MELS)
    net = SpotterNet(torch.from_numpy(sample.mean(axis=0)), torch.from_numpy(sample.std(axis=0) + 1e-3))
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=1e-3)
    steps_per_epoch = len(features) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    order_rng = np.random.default_rng(config.seed)
    mask_rng = np.random.default_rng(config.seed + 1)
    fill = sample.mean(axis=0)
    for epoch in range(config.epochs):
        started, total = time.time(), 0.0
        net.train()
        order = order_rng.permutation(len(features))
        for step in range(steps_per_epoch):
            index = np.sort(order[step * config.batch_size : (step + 1) * config.batch_size])
            first = 2 * int(order_rng.integers(0, (features.shape[1] - config.crop_frames) // 2 + 1))
            frames = slice(first, first + config.crop_frames)
            scores = slice(first // 2, (first + config.crop_frames) // 2)
            batch = features[index, frames].astype(np.float32)
            if config.spec_masks:
                batch = augment.mask_features(batch, fill, mask_rng, masks=config.spec_masks)
            logits = net.logits(torch.from_numpy(batch))
            loss_per_frame = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.from_numpy(labels[index, scores]), reduction="none"
            )
            weight = torch.from_numpy(weights[index, scores])
            loss = (loss_per_frame * weight).sum() / weight.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
            if (step + 1) % 50 == 0:
                mean_loss = total / (step + 1)
                log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, steps_per_epoch, mean_loss)
        log.info(
            "epoch %d/%d loss %.4f (%.0f s)",
            epoch + 1,
            config.epochs,
            total / steps_per_epoch,
            time.time() - started,
        )
    net.eval()
    return net


def train_members(
    features: np.ndarray, labels: np.ndarray, weights: np.ndarray, config: TrainingConfig
) -> FrameSpotter:
    """``config.members`` networks from consecutive seeds; one is returned as it is, more as an ensemble.
    Forked processes share the windows copy-on-write and send back only the weights."""
    if config.members == 1:
        return train_network(features, labels, weights, config)
    seeds = [config.seed + member for member in range(config.members)]
    processes = min(config.workers, config.members)
    member_config = replace(config, threads=max(1, config.threads // processes))
    _WORKER_STATE["windows"] = (features, labels, weights, member_config)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        states = list(pool.map(_train_member, seeds))
    del _WORKER_STATE["windows"]
    members = []
    for state in states:
        member = SpotterNet(torch.zeros(N_MELS), torch.ones(N_MELS))
        member.load_state_dict(state)
        members.append(member.eval())
    return SpotterEnsemble(members).eval()


def _train_member(seed: int) -> dict[str, torch.Tensor]:
    features, labels, weights, config = _WORKER_STATE["windows"]  # type: ignore[misc]
    log.info("member with seed %d: training", seed)
    return train_network(features, labels, weights, replace(config, seed=seed)).state_dict()


def save_training_set(path: Path, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=arrays[0], labels=arrays[1], weights=arrays[2])


def weights_fingerprint(net: torch.nn.Module) -> str:
    """Short hash of the trained weights: part of the model version, identical for identical training."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:8]


def validation_scores(spotter: KeywordSpotter, cache: SpeechCache, seed: int) -> list[ScoredTracks]:
    """Frame scores of the validation voices' tracks, through the training channel augmentations."""
    plans = plan_split("validation")
    cache.synthesise(request for plan in plans for request in plan.requests())
    rng = np.random.default_rng(seed + 1)
    augmenter = Augmenter.create(rng, 50)
    return [
        score_voice(spotter, voice_tracks(voice, rng, augmenter)) for voice in load_voice_audio(plans, cache)
    ]


def select_threshold(model_path: Path, cache: SpeechCache, seed: int) -> float:
    """Choose the threshold and the hold ratio on the validation voices and write them: the threshold as
    both the microphone threshold and the initial playback threshold (``calibrate`` refines the latter).

    Each hold ratio gets ``choose_threshold``'s threshold; the ratio with the highest recall there wins,
    ties going to the higher ratio (shorter intervals). A hold can only lengthen detections that already
    reach the threshold, so it adds no false interval; it lets one interval cover a keyword whose score
    dips below the threshold mid-word, which otherwise splits into two intervals that each fall short."""
    model = SpotterModel(model_path)
    scored = validation_scores(KeywordSpotter(model), cache, seed)
    candidates = []  # (recall, hold ratio, threshold)
    for hold_ratio in HOLD_RATIOS:
        spotter = KeywordSpotter(model.with_metadata(hold_ratio=hold_ratio))
        threshold = choose_threshold(spotter, scored)
        results = [evaluate_voice(spotter, item, threshold) for item in scored]
        summary = summarise(results, threshold, rounds=1)
        log.info(
            "validation voices, hold ratio %.1f, threshold %.2f: recall %.1f%%, %.2f false intervals per "
            "hour, confusable tracks %.1f%%",
            hold_ratio,
            threshold,
            100 * summary.recall,
            summary.false_per_hour,
            100 * summary.confusable_false_rate,
        )
        candidates.append((summary.recall, hold_ratio, threshold))
    _, hold_ratio, threshold = max(candidates, key=lambda candidate: candidate[0])  # the first of a tie
    metadata = read_metadata(model_path)
    metadata["playback_threshold"] = threshold
    metadata["mic_threshold"] = threshold
    metadata["hold_ratio"] = hold_ratio
    write_metadata(model_path, metadata)
    return threshold


def run_training(config: TrainingConfig, model_path: Path, cache: SpeechCache, data_path: Path) -> Path:
    """The whole ``train`` command: data, network, ONNX export, validation threshold."""
    started = time.time()
    if data_path.exists():
        with np.load(data_path) as stored:
            arrays = (stored["features"], stored["labels"], stored["weights"])
        log.info("training windows loaded from %s", data_path)
    else:
        arrays = build_training_set(cache, config)
        save_training_set(data_path, arrays)
    log.info("%d training windows ready after %.0f s", len(arrays[0]), time.time() - started)
    net = train_members(*arrays, config)
    metadata = base_metadata(
        f"1.0.0+{weights_fingerprint(net)}", context_frames(), SCORE_HOP_MS, SCORE_OFFSET_MS
    )
    export_onnx(net, model_path, metadata)
    threshold = select_threshold(model_path, cache, config.seed)
    log.info(
        "model %s written to %s, validation threshold %.2f, %.0f s in all",
        metadata["version"],
        model_path,
        threshold,
        time.time() - started,
    )
    return model_path
