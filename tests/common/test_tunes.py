"""Random tunes: a valid MIDI file, rendered by fluidsynth, the same for the same seed."""

from __future__ import annotations

import numpy as np

from services.common.tunes import TUNE_SECONDS, random_midi, random_tune


def test_a_tune_is_a_type_0_midi_file_and_its_seed_decides_it():
    midi = random_midi(np.random.default_rng(3))
    assert midi[:4] == b"MThd" and midi[8:10] == b"\x00\x00" and midi[14:18] == b"MTrk"
    assert midi.endswith(b"\xff\x2f\x00")  # end of track
    assert random_midi(np.random.default_rng(3)) == midi != random_midi(np.random.default_rng(4))


def test_a_rendered_tune_sounds_for_the_tunes_length_at_the_rate_asked():
    samples = random_tune(np.random.default_rng(3), 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    frames = samples[: len(samples) // 1600 * 1600].reshape(-1, 1600)  # 100 ms
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 10 ** (-50 / 20))
    assert TUNE_SECONDS - 1 <= (loud[-1] - loud[0] + 1) / 10 <= TUNE_SECONDS + 2
    assert len(random_tune(np.random.default_rng(3), 8000)) == len(samples) // 2
    assert np.array_equal(random_tune(np.random.default_rng(3), 16000), samples)
