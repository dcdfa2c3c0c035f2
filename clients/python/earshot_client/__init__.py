"""Earshot's skip_kws from Python: ``skip_kws`` for whole tracks, ``stream`` for live ones, ``MicGate``."""

from earshot_client.client import (
    FinalResult,
    Interval,
    LiveStream,
    StreamError,
    TrackError,
    TrackResult,
    skip_kws,
    stream,
)
from earshot_client.micgate import MicGate

__all__ = [
    "FinalResult",
    "Interval",
    "LiveStream",
    "MicGate",
    "StreamError",
    "TrackError",
    "TrackResult",
    "skip_kws",
    "stream",
]
