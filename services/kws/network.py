"""The spotter network (torch, training only): a non-causal temporal CNN with a bounded receptive field.

Input: log-mel frames (10 ms hop). A stride-2 convolution halves the frame rate to 20 ms, then
residual dilated convolutions see ``context_frames`` input frames on each side (about 0.8 s), and a
1×1 convolution gives one keyword-presence probability per 20 ms frame. Because the receptive field
is bounded, the same network runs over a whole track in one call (offline scan) or over chunks with
that much left and right context (streaming), with identical scores.

Networks trained alike from different seeds disagree on unseen voices (reports/ablation.md), so the
shipped model may be an ensemble: ``SpotterEnsemble`` averages its members' logits, written as one 1×1
head over their stacked embeddings, so the exported graph has the same inputs and outputs either way.
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


class FrameSpotter(nn.Module):
    """A spotter given by its frame logits; what it exports (``forward``) is their probabilities."""

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))


class SpotterNet(FrameSpotter):
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

    def embeddings(self, features: torch.Tensor) -> torch.Tensor:
        """The head's input, (batch, CHANNELS, score frames)."""
        x = (features.transpose(1, 2) - self.feature_mean) / self.feature_std
        return self.blocks(self.stem(x))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.embeddings(features)).squeeze(1)


class SpotterEnsemble(FrameSpotter):
    """The mean of the members' logits: ``head`` holds each member's head weights divided by the number
    of members, over the members' embeddings stacked channel-wise (what voice enrollment reads)."""

    def __init__(self, members: list[SpotterNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.head = nn.Conv1d(CHANNELS * len(members), 1, kernel_size=1)
        head_weights = torch.cat([member.head.weight for member in members], dim=1)
        with torch.no_grad():
            self.head.weight.copy_(head_weights / len(members))
            self.head.bias.copy_(torch.stack([member.head.bias for member in members]).mean(dim=0))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([member.embeddings(features) for member in self.members], dim=1)
        return self.head(stacked).squeeze(1)


def context_frames() -> int:
    """Input frames on each side that can influence a score frame."""
    return 1 + SCORE_STRIDE * sum(DILATIONS)
