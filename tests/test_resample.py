"""The package's one resampler: its filter's response, its stream equal to the whole signal, and files
read through it."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx.audio_io import open_audio, resampled
from encodec_fx.resample import Resampler, resample, resampled_length

RATE_PAIRS = [(44_100, 24_000), (24_000, 44_100), (48_000, 24_000), (16_000, 24_000), (8_000, 48_000)]


def gain_db(frequency: float, from_rate: int, to_rate: int) -> float:
    """Output over input RMS of a 2 s tone, on the middle second (away from the filter's edges)."""
    t = np.arange(2 * from_rate) / from_rate
    tone = np.sin(2 * np.pi * frequency * t).astype(np.float32)[None]
    out = resample(tone, from_rate, to_rate)[0]
    middle = out[len(out) // 4: 3 * len(out) // 4]
    return 10 * np.log10(np.mean(middle**2) / 0.5)


@pytest.mark.parametrize("from_rate, to_rate", RATE_PAIRS)
def test_the_passband_is_flat_and_what_would_alias_is_removed(from_rate, to_rate):
    nyquist = min(from_rate, to_rate) / 2
    for fraction in (0.1, 0.5, 0.9):
        assert abs(gain_db(fraction * nyquist, from_rate, to_rate)) < 0.3
    if from_rate > to_rate:  # a tone the output rate cannot hold must not come back folded
        for fraction in (1.05, 1.3):
            if fraction * nyquist < from_rate / 2:
                assert gain_db(fraction * nyquist, from_rate, to_rate) < -60


@pytest.mark.parametrize("from_rate, to_rate", RATE_PAIRS)
def test_a_stream_with_its_flush_is_the_whole_signal(from_rate, to_rate):
    audio = np.random.default_rng(0).standard_normal((2, 7001)).astype(np.float32)
    resampler = Resampler(from_rate, to_rate)
    pieces, start = [], 0
    for size in [1, 500, 0, 33, 4000, 7]:
        pieces.append(resampler.process(audio[:, start: start + size]))
        start += size
    pieces.append(resampler.process(audio[:, start:]))
    assert sum(piece.shape[-1] for piece in pieces) == resampler.output_length(audio.shape[-1])
    streamed = np.concatenate(pieces + [resampler.flush()], axis=-1)
    whole = resample(audio, from_rate, to_rate)
    assert streamed.shape[-1] == whole.shape[-1] == resampled_length(7001, from_rate, to_rate)
    np.testing.assert_array_equal(streamed, whole)  # the same dot products, whichever block holds the inputs


def test_equal_rates_pass_the_audio_through():
    audio = np.ones((1, 10), np.float32)
    assert resample(audio, 24_000, 24_000) is audio
    resampler = Resampler(24_000, 24_000)
    assert resampler.latency == 0 and resampler.process(audio) is audio and resampler.flush().shape == (1, 0)


def test_a_flush_with_nothing_withheld_is_shaped_as_the_blocks():
    resampler = Resampler(44_100, 24_000)
    pieces = [resampler.process(np.ones((2, 500), np.float32)), resampler.flush()]
    assert resampler.flush().shape == (2, 0)  # nothing pushed since: no samples, still two channels
    assert np.concatenate(pieces, axis=-1).shape == (2, resampled_length(500, 44_100, 24_000))


@pytest.mark.parametrize("frames", [1, 3, 70_000, 200_001])  # pedalboard cannot write (2, 2)
def test_a_file_read_at_another_rate_is_the_whole_signal_resampled(tmp_path, frames):
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (2, frames)).astype(np.float32)
    with AudioFile(str(tmp_path / "a.wav"), "w", samplerate=44_100, num_channels=2, bit_depth=32) as file:
        file.write(audio)
    with open_audio(tmp_path / "a.wav") as file:
        reader = resampled(file, 24_000)
        assert reader.frames == resampled_length(frames, 44_100, 24_000)
        read = np.concatenate([reader.read(24_000) for _ in range(-(-reader.frames // 24_000) + 1)], axis=-1)
    np.testing.assert_array_equal(read, resample(audio, 44_100, 24_000))
