"""Torch networks (training only; the services run the exported ONNX graph with onnxruntime).

BaselineCNN is the reference baseline, kept as the yardstick: three Conv+Pool blocks with 32/64/128
channels, Dense(128), Dropout(0.5) and a softmax over the labels. What ships is CryModel: the reason model
(StatsReasonNet) and the cry gate (SoundGate: a linear head on the frozen, pretrained aiSFX sound embedding).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from services.classifier.features import N_FRAMES, N_MELS, TOP_DB

_DB_CENTRE = -TOP_DB / 2
_DB_SCALE = TOP_DB / 4


def _scale(log_mel: torch.Tensor) -> torch.Tensor:
    """(B, mels, frames) dB relative to the maximum (range -80..0) to (B, 1, mels, frames) around zero."""
    return ((log_mel - _DB_CENTRE) / _DB_SCALE).unsqueeze(1)


class BaselineCNN(nn.Module):
    """The reference baseline: Conv(32)+Pool, Conv(64)+Pool, Conv(128)+Pool, Dense(128), Dropout(0.5)."""

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 1
        for width in (32, 64, 128):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*blocks)
        flat = 128 * (N_MELS // 8) * (N_FRAMES // 8)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, n_outputs)
        )

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(_scale(log_mel)))


# Mel bands below the 4 kHz band limit (band 89 is centred near 3.9 kHz); the ones above hold only the floor.
INFORMATIVE_MELS = 90


class StatsReasonNet(nn.Module):
    """Reason model on clip statistics: per-band mean and spread of the log-mel and of its change.

    About 700 weakly labelled cries support little more than a regularised linear model; this one trains in
    seconds, so it can be cross-validated and refitted well inside the training budget.
    """

    def __init__(self, n_outputs: int, hidden: int = 0, dropout: float = 0.2) -> None:
        super().__init__()
        n_statistics = 3 * INFORMATIVE_MELS
        self.register_buffer("centre", torch.zeros(n_statistics))
        self.register_buffer("spread", torch.ones(n_statistics))
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(n_statistics, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or n_statistics, n_outputs))
        self.head = nn.Sequential(*layers)

    @staticmethod
    def statistics(log_mel: torch.Tensor) -> torch.Tensor:
        bands = log_mel[:, :INFORMATIVE_MELS]
        change = bands[:, :, 1:] - bands[:, :, :-1]
        return torch.cat([bands.mean(dim=2), bands.std(dim=2), change.std(dim=2)], dim=1)

    @torch.no_grad()
    def fit_normalisation(self, log_mels: torch.Tensor) -> None:
        """Standardise the statistics with the training set's mean and spread (stored in the graph)."""
        values = torch.cat([self.statistics(log_mels[i : i + 256]) for i in range(0, len(log_mels), 256)])
        self.centre.copy_(values.mean(dim=0))
        self.spread.copy_(values.std(dim=0).clamp_min(1e-3))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head((self.statistics(log_mel) - self.centre) / self.spread)


class SoundEmbeddingNet(nn.Module):
    """aiSFX's embedding CNN (frozen, in its checkpoint's layout): four double 3x3 conv blocks, 64-512 wide.

    Input (blocks, BLOCK_FRAMES, SOUND_N_MELS); output (blocks, 512): mean over frequency, max over time.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        channels = [1, width, 2 * width, 4 * width, 8 * width]
        for index in range(4):
            self.add_module(f"conv_block{index + 1}", _DoubleConv(channels[index], channels[index + 1]))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        hidden = blocks.unsqueeze(1)
        for index in range(4):
            hidden = getattr(self, f"conv_block{index + 1}")(hidden)
            if index < 3:
                hidden = nn.functional.max_pool2d(hidden, 2)
        return hidden.mean(dim=3).amax(dim=2)


class _DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def load_sound_embedding() -> SoundEmbeddingNet:
    """The pretrained weights, from the aisfx wheel (requirements/train.txt; imported without running it)."""
    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the aisfx package is missing: run make setup")
    checkpoint = Path(spec.submodule_search_locations[0]) / "models" / "checkpoint.pth"
    # A pickled (state_dict, dataset table) pair from a trusted wheel, hence weights_only=False.
    state, _datasets = torch.load(checkpoint, map_location="cpu", weights_only=False)
    prefix = "embedding_net."
    net = SoundEmbeddingNet()
    net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return net.eval().requires_grad_(False)


def clip_embedding(block_embeddings: torch.Tensor) -> torch.Tensor:
    """(blocks, 512) -> (1024,): the mean and the maximum over the recording's blocks."""
    return torch.cat([block_embeddings.mean(dim=0), block_embeddings.amax(dim=0)])


class SoundGate(nn.Module):
    """Cry or not: a linear head (standardisation folded in by sound_gate.py) on the clip embedding."""

    def __init__(self, embedding: SoundEmbeddingNet, weights: torch.Tensor, bias: float) -> None:
        super().__init__()
        self.embedding = embedding
        self.head = nn.Linear(len(weights), 1)
        with torch.no_grad():
            self.head.weight.copy_(weights[None, :])
            self.head.bias.fill_(bias)

    def forward(self, sound_blocks: torch.Tensor) -> torch.Tensor:
        """(blocks, frames, mels) of ONE recording -> (1,) cry logit."""
        return self.head(clip_embedding(self.embedding(sound_blocks)))


class CryModel(nn.Module):
    """What is exported: one graph, two inputs: the recording's gate blocks and its log-mel windows."""

    def __init__(self, gate: SoundGate, reasons: nn.Module) -> None:
        super().__init__()
        self.gate = gate
        self.reasons = reasons

    def forward(self, log_mel: torch.Tensor, sound_blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gate(sound_blocks), self.reasons(log_mel)
