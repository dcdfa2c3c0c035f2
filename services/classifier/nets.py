"""Torch networks (training only; the services run the exported ONNX graph with onnxruntime).

BaselineCNN is the reference baseline, kept as the yardstick: three Conv+Pool blocks with 32/64/128
channels, Dense(128), Dropout(0.5) and a softmax over the labels. CryNet is what ships: a smaller CNN
with batch norm and global pooling, fast enough for a 5 ms budget, used twice (cry detector, reasons).
"""

from __future__ import annotations

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


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class CryNet(nn.Module):
    """Small CNN: a strided stem, three Conv+BN+Pool blocks, mean+max pooling over time and frequency."""

    def __init__(self, n_outputs: int, width: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.Sequential(
            _conv_block(width, 2 * width),
            _conv_block(2 * width, 4 * width),
            _conv_block(4 * width, 4 * width),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * width, n_outputs))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        hidden = self.blocks(self.stem(_scale(log_mel)))
        pooled = torch.cat([hidden.mean(dim=(2, 3)), hidden.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


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


class CryModel(nn.Module):
    """What is exported: one graph, two outputs (cry logit, reason logits) from one log-mel batch."""

    def __init__(self, detector: nn.Module, reasons: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.reasons = reasons

    def forward(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detector(log_mel)[:, 0], self.reasons(log_mel)
