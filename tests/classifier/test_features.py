"""The numpy log-mel must match librosa (the reference baseline's implementation) closely."""

import librosa
import numpy as np
import pytest
import soxr

from services.classifier import features, sound_features
from tests.audio_files import tone


def librosa_log_mel(window: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=features.fit_window(window),
        sr=features.SAMPLE_RATE,
        n_fft=features.N_FFT,
        hop_length=features.HOP_LENGTH,
        n_mels=features.N_MELS,
    )
    return librosa.power_to_db(mel, ref=np.max, top_db=features.TOP_DB)


def test_filterbank_matches_librosa() -> None:
    reference = librosa.filters.mel(sr=features.SAMPLE_RATE, n_fft=features.N_FFT, n_mels=features.N_MELS)
    np.testing.assert_allclose(features.mel_filterbank(), reference, atol=1e-6)


@pytest.mark.parametrize("kind", ["noise", "tone", "short", "silence"])
def test_log_mel_matches_librosa(kind: str) -> None:
    rng = np.random.default_rng(1)
    signal = {
        "noise": rng.standard_normal(features.WINDOW_SAMPLES).astype(np.float32) * 0.1,
        "tone": tone(5.0, features.SAMPLE_RATE, 523.0),
        "short": tone(1.3, features.SAMPLE_RATE, 880.0)
        + rng.standard_normal(int(1.3 * 22050)).astype(np.float32) * 0.01,
        "silence": np.zeros(features.WINDOW_SAMPLES, dtype=np.float32),
    }[kind]
    ours = features.log_mel(signal)
    assert ours.shape == (features.N_MELS, features.N_FRAMES) == (128, 200)
    np.testing.assert_allclose(ours, librosa_log_mel(signal), atol=1e-3)


def test_long_recordings_are_covered_to_the_end() -> None:
    twelve_seconds = np.arange(12 * features.SAMPLE_RATE, dtype=np.float32)
    windows = features.split_windows(twelve_seconds)
    assert windows.shape == (
        4,
        features.WINDOW_SAMPLES,
    )  # starts at 0, 2.5, 5 and 7 s (the last ends at 12 s)
    assert windows[-1, -1] == twelve_seconds[-1]


def test_short_recordings_get_one_zero_padded_window() -> None:
    windows = features.split_windows(np.ones(22050, dtype=np.float32))
    assert windows.shape == (1, features.WINDOW_SAMPLES)
    assert windows[0, :22050].all() and not windows[0, 22050:].any()


def test_band_limit_removes_everything_above_4_khz() -> None:
    high = tone(2.0, features.SAMPLE_RATE, 6000.0)
    low = tone(2.0, features.SAMPLE_RATE, 1000.0)
    limited = features.band_limit(high + low, features.SAMPLE_RATE)
    back = features.to_model_rate(limited)
    spectrum = np.abs(np.fft.rfft(back[4000:40000]))
    frequencies = np.fft.rfftfreq(36000, 1 / features.SAMPLE_RATE)
    assert spectrum[frequencies > 4100].max() < 0.01 * spectrum.max()


def test_sound_filterbank_matches_librosa() -> None:
    reference = librosa.filters.mel(
        sr=sound_features.SOUND_SAMPLE_RATE,
        n_fft=features.N_FFT,
        n_mels=sound_features.SOUND_N_MELS,
        fmin=0.0,
        fmax=sound_features.SOUND_SAMPLE_RATE / 2,
        htk=True,
        norm=1.0,
    )
    np.testing.assert_allclose(sound_features.sound_mel_filterbank(), reference, atol=1e-6)


def test_sound_spectrogram_matches_librosa() -> None:
    phone = np.random.default_rng(2).standard_normal(6 * features.PHONE_SAMPLE_RATE).astype(np.float32) * 0.1
    upsampled = soxr.resample(
        phone, features.PHONE_SAMPLE_RATE, sound_features.SOUND_SAMPLE_RATE, quality="HQ"
    )
    upsampled = upsampled / np.abs(upsampled).max()
    power = (
        np.abs(librosa.stft(upsampled, n_fft=features.N_FFT, hop_length=sound_features.SOUND_HOP_LENGTH)) ** 2
    )
    mel = librosa.feature.melspectrogram(
        S=power, sr=sound_features.SOUND_SAMPLE_RATE, n_mels=sound_features.SOUND_N_MELS, htk=True, norm=1.0
    )
    reference = (np.log10(mel * sound_features.SOUND_LOG_GAIN + 1) / sound_features.SOUND_LOG_MAXIMUM).T
    np.testing.assert_allclose(sound_features.sound_spectrogram(phone), reference, atol=1e-4)


def test_sound_blocks_cover_long_recordings_within_the_cap() -> None:
    one_second = np.ones(features.PHONE_SAMPLE_RATE, dtype=np.float32)
    assert sound_features.sound_blocks(one_second).shape == (1, 100, 96)  # zero-padded to one block
    minute = np.random.default_rng(3).standard_normal(60 * features.PHONE_SAMPLE_RATE).astype(np.float32)
    starts = sound_features.block_starts(len(sound_features.sound_spectrogram(minute)))
    assert len(starts) == sound_features.MAX_BLOCKS and starts[0] == 0
    assert starts[-1] + sound_features.BLOCK_FRAMES > 0.95 * 60 * sound_features.SOUND_SAMPLE_RATE / 1024
