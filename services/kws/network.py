"""The spotter network (torch, training only): a non-causal temporal CNN with a bounded receptive field.

Input: log-mel frames (10 ms hop). A stride-2 convolution halves the frame rate to 20 ms, then
residual dilated convolutions see ``context_frames`` input frames on each side (about 0.8 s), and a
1×1 convolution gives one keyword-presence probability per 20 ms frame. Because the receptive field
is bounded, the same network runs over a whole track in one call (offline scan) or over chunks with
that much left and right context (streaming), with identical scores.
"""

from __future__ import annotations

import torch
from torch import nn

from services.kws.features import N_MELS

CHANNELS = 48
DILATIONS = (1, 2, 4, 8, 16, 1, 2, 4)
SCORE_STRIDE = 2  # input frames per score frame


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, dilation=dilation, padding=dilation)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.norm(self.conv(x)))


class SpotterNet(nn.Module):
    """features (batch, frames, N_MELS) → probabilities (batch, ceil(frames / 2))."""

    def __init__(self, feature_mean: torch.Tensor, feature_std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("feature_mean", feature_mean.reshape(1, N_MELS, 1).float())
        self.register_buffer("feature_std", feature_std.reshape(1, N_MELS, 1).float())
        self.stem = nn.Sequential(
            nn.Conv1d(N_MELS, CHANNELS, kernel_size=3, stride=SCORE_STRIDE, padding=1),
            nn.BatchNorm1d(CHANNELS),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(CHANNELS, dilation) for dilation in DILATIONS))
        self.head = nn.Conv1d(CHANNELS, 1, kernel_size=1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        x = (features.transpose(1, 2) - self.feature_mean) / self.feature_std
        return self.head(self.blocks(self.stem(x))).squeeze(1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))


def context_frames() -> int:
    """Input frames on each side that can influence a score frame."""
    return 1 + SCORE_STRIDE * sum(DILATIONS)
