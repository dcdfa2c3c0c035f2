

def test_a_speed_too_close_to_one_to_resample_leaves_the_span_where_the_audio_is():
    keyword = np.ones(6880, np.float32)
    voice = _voice()
    for seed in range(10):
        audio, (start, end) = compose(keyword, voice, np.random.default_rng(seed), speed=1.0005)
        assert end <= len(audio)
        assert np.array_equal(audio[start:end], keyword)
