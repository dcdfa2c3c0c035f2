"""Training-data augmentations that widen the voices heard: vocal tract warping, SpecAugment masks,
keywords run on into their carriers, and the natural voices' wider prosody."""

import numpy as np
import pytest

from services.kws import augment
from services.kws.corpus import KEYWORD, Voice
from services.kws.dataset import MUSIC_SHARE, Augmenter, OverMusic, VoiceAudio, compose
from services.kws.features import N_MELS, SAMPLE_RATE, log_mel, mel_band_centres_hz
from services.kws.speech_plan import plan_split, wide_prosody_takes


def tone_features(hz: float) -> np.ndarray:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return log_mel((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32))


def peak_hz(features: np.ndarray) -> float:
    return float(mel_band_centres_hz()[int(np.argmax(features.mean(axis=0)))])


def test_warp_of_one_changes_nothing():
    features = tone_features(1000.0)
    assert np.array_equal(augment.vocal_tract_warp(features, 1.0), features)


@pytest.mark.parametrize("alpha", [0.85, 1.18])
def test_warp_moves_a_formant_by_alpha_below_the_knee(alpha: float):
    features = tone_features(1500.0)
    warped = augment.vocal_tract_warp(features, alpha)
    assert warped.shape == features.shape and warped.dtype == features.dtype
    band_step = 1.09  # neighbouring mel bands are about 9% apart at 1.5 kHz
    assert peak_hz(warped) / (alpha * peak_hz(features)) == pytest.approx(1.0, abs=band_step - 1)


def test_warp_is_monotonic_and_pins_the_top_of_the_band():
    features = np.tile(np.arange(N_MELS, dtype=np.float32), (3, 1))  # each band holds its own index
    for alpha in (0.84, 1.19):
        warped = augment.vocal_tract_warp(features, alpha)
        assert np.all(np.diff(warped[0]) >= 0)
        assert warped[0, -1] >= N_MELS - 2  # F_MAX maps onto itself: the top band moves less than one band
        assert abs(warped[0, N_MELS // 2] - N_MELS // 2) > 2  # while the middle moves


def test_masks_fill_bounded_stretches_and_leave_the_input_alone():
    features = np.random.default_rng(2).standard_normal((16, 200, N_MELS)).astype(np.float32)
    fill = np.full(N_MELS, 7.0, np.float32)
    masked = augment.mask_features(features, fill, np.random.default_rng(3), 2, 5, 8)
    assert not np.any(features == 7.0)
    filled = masked == 7.0
    assert filled.any()
    for example in filled:
        full_bands = example.all(axis=0).sum()
        full_frames = example.all(axis=1).sum()
        assert full_bands <= 10 and full_frames <= 16
        assert np.array_equal(example, example.all(axis=0)[None, :] | example.all(axis=1)[:, None])
    again = augment.mask_features(features, fill, np.random.default_rng(3), 2, 5, 8)
    assert np.array_equal(masked, again)


def _voice() -> VoiceAudio:
    rng = np.random.default_rng(0)
    carriers = [rng.standard_normal(8000).astype(np.float32) for _ in range(3)]
    return VoiceAudio("test:voice", True, [], [], carriers, [])


def test_run_on_composition_has_short_pauses_exact_span_and_the_same_draws():
    keyword = np.ones(4000, np.float32)
    voice = _voice()
    for seed in range(20):
        run_on_rng, paused_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        run_on, (start, end) = compose(keyword, voice, run_on_rng, run_on=True)
        paused, (paused_start, _) = compose(keyword, voice, paused_rng, run_on=False)
        assert np.array_equal(run_on[start:end], keyword)
        if start:
            assert start - 8000 <= 0.03 * SAMPLE_RATE
            assert paused_start - 8000 >= 0.03 * SAMPLE_RATE - 1
        assert len(run_on) - end <= 8000 + 0.03 * SAMPLE_RATE
        assert run_on_rng.random() == paused_rng.random()  # evaluation tracks draw the same numbers


def test_wide_prosody_takes_are_seeded_and_in_range():
    voice = Voice("rhvoice", "anna")
    takes = wide_prosody_takes(voice)
    assert takes == wide_prosody_takes(voice)
    assert sum(take.text == KEYWORD for take in takes) == 40
    assert all(0.2 <= take.rate <= 1.9 and 0.5 <= take.pitch <= 2.5 for take in takes)
    assert max(take.pitch for take in takes) > 1.5  # above the 75% of default pitch every split has


def test_only_natural_training_voices_get_the_wide_takes():
    assert len({plan.voice.key: plan for plan in plan_split("train")}["rhvoice:anna"].keywords) == 20
    plans = {plan.voice.key: plan for plan in plan_split("train", wide_prosody=True)}
    assert len(plans["rhvoice:anna"].keywords) == 20 + 40
    assert all(take.rate <= 1 and take.pitch <= 1 for take in plans["rhvoice:anna"].keywords[:20])
    espeak = [plan for key, plan in plans.items() if key.startswith("espeak")]
    assert all(take.rate <= 1 and take.pitch <= 1 for plan in espeak for take in plan.keywords)
    test_plans = plan_split("test")
    assert all(take.rate <= 1 and take.pitch <= 1 for plan in test_plans for take in plan.keywords)


def test_a_speed_too_close_to_one_to_resample_leaves_the_span_where_the_audio_is():
    keyword = np.ones(6880, np.float32)
    voice = _voice()
    for seed in range(10):
        audio, (start, end) = compose(keyword, voice, np.random.default_rng(seed), speed=1.0005)
        assert end <= len(audio)
        assert np.array_equal(audio[start:end], keyword)


@pytest.mark.parametrize("codec", ["mp3", "opus"])
def test_codec_round_trip_takes_tracks_longer_than_a_client_upload(codec: str):
    minutes = (np.random.default_rng(5).standard_normal(150 * SAMPLE_RATE) * 0.1).astype(np.float32)
    assert len(augment.codec_round_trip(minutes, codec, 24000)) == len(minutes)


@pytest.mark.parametrize("curve", augment.SATURATION_CURVES)
def test_saturation_adds_harmonics_and_keeps_the_level(curve: str):
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    bent = augment.saturate(tone, curve, drive=4.0)
    spectrum = np.abs(np.fft.rfft(bent))  # 1 Hz bins; the tone itself has no energy at its harmonics
    assert augment.rms(bent) == pytest.approx(augment.rms(tone), rel=1e-3)
    assert spectrum[[880, 1320, 1760]].max() > 0.05 * spectrum[440]


def test_saturation_names_the_curves_it_knows():
    with pytest.raises(ValueError, match="arctan"):
        augment.saturate(np.ones(10, np.float32), "tanh", 2.0)


def test_speech_over_music_is_at_the_ratio_asked_and_never_clips():
    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    music = np.sin(np.arange(3 * SAMPLE_RATE) * 2 * np.pi * 440 / SAMPLE_RATE).astype(np.float32)
    mixed = OverMusic(music, snr_db=10.0)(speech, rng)
    assert len(mixed) == len(speech)
    assert 20 * np.log10(augment.rms(speech) / augment.rms(mixed - speech)) == pytest.approx(10.0, abs=0.01)
    loud = OverMusic(music, snr_db=-20.0)(speech, rng)
    assert np.abs(loud).max() <= 1.0


def test_an_augmenter_with_music_draws_some_of_its_noise_from_the_tunes():
    rng = np.random.default_rng(0)
    tune = np.full(SAMPLE_RATE, 0.5, np.float32)  # a constant: no other noise source is one
    backgrounds, noises = [np.zeros(SAMPLE_RATE, np.float32)], [augment.coloured_noise(SAMPLE_RATE, rng, 1.0)]
    augmenter = Augmenter(rirs=[], backgrounds=backgrounds, noises=noises, music=[tune])
    draws = [augmenter.noise(800, rng) for _ in range(300)]
    share = np.mean([bool(np.all(draw == 0.5)) for draw in draws])
    assert share == pytest.approx(MUSIC_SHARE, abs=0.08)
    without = Augmenter(rirs=[], backgrounds=backgrounds, noises=noises)
    assert not any(np.all(without.noise(800, rng) == 0.5) for _ in range(100))
