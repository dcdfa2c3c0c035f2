"""The echo path b(v, x): how the device's own playback reaches its microphone at volume v = 1..10.

Pure numpy/scipy. In order: the speaker's band-pass, a soft-clipping nonlinearity that grows with the
volume, the acoustic level at the microphone, room reverberation, the microphone's noise floor, and
the device's automatic gain control (a level follower towards a target with a gain ceiling, quick to
catch a loud onset and slow to let go).
All constants are stated here, once; they model a small smart speaker, not a measured device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from services.kws import augment

SAMPLE_RATE = 16000
VOLUMES = tuple(range(1, 11))


@dataclass(frozen=True)
class EchoPath:
    """Constants of the simulated device."""

    speaker_low_hz: float = 200.0
    speaker_high_hz: float = 6500.0
    clipping_drive_per_volume: float = 0.45  # tanh drive = 1 + this × (v - 1)
    level_db_at_volume_1: float = -42.0  # echo level at the microphone (dBFS of the RMS) at v = 1
    level_db_per_volume: float = 3.5
    noise_floor_db: float = -66.0
    agc_target_db: float = -26.0
    agc_max_gain_db: float = 24.0
    agc_attack_s: float = 0.01
    agc_release_s: float = 0.4

    def apply(
        self, samples: np.ndarray, volume: int, rir: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """b(v, x): the microphone signal when the device plays ``samples`` at ``volume``."""
        x = augment.band_limit(samples, self.speaker_low_hz, self.speaker_high_hz, order=2)
        drive = 1.0 + self.clipping_drive_per_volume * (volume - 1)
        peak = np.abs(x).max() + 1e-9
        x = np.tanh(drive * x / peak) / np.tanh(drive)
        level_db = self.level_db_at_volume_1 + self.level_db_per_volume * (volume - 1)
        x = x * (10 ** (level_db / 20) / augment.rms(x))
        x = scipy.signal.fftconvolve(x, rir)[: len(x)]
        noise = augment.coloured_noise(len(x), rng, 1.0) * 10 ** (self.noise_floor_db / 20)
        return self.agc(x + noise).astype(np.float32)

    def agc(self, samples: np.ndarray) -> np.ndarray:
        """The device's automatic gain control with this path's target, ceiling, attack and release."""
        return augment.automatic_gain(
            samples, self.agc_target_db, self.agc_max_gain_db, self.agc_attack_s, self.agc_release_s
        )
