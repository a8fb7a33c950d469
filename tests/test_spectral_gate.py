"""The spectral-balance gate: it passes a transparent codec and catches low-passes and tilts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal

from encodec_fx import DEFAULT_MODEL, EncodecModel
from encodec_fx.audio_io import read_audio
from encodec_fx.train.spectral_gate import (
    OCTAVE_BANDS,
    band_balance,
    pink_noise,
    sine_sweep,
    spectral_gate,
    within_tolerance,
)

RATE = 24_000
SPEECH = Path(__file__).parent / "data" / "speech-nl-fillets.flac"


def low_pass(cutoff: float):
    sos = signal.butter(8, cutoff, fs=RATE, output="sos")
    return lambda audio: signal.sosfilt(sos, audio).astype(np.float32)


def test_a_transparent_codec_passes_and_a_gain_reads_as_its_decibels():
    assert spectral_gate(lambda audio: audio, RATE).passed
    balance = band_balance(0.5 * pink_noise(2, RATE), pink_noise(2, RATE), RATE)
    np.testing.assert_allclose(balance, 20 * np.log10(0.5), atol=1e-6)  # exact up to float rounding


def test_a_1_khz_low_pass_fails_in_the_bands_above_it():
    result = spectral_gate(low_pass(1000), RATE)
    assert not result.passed
    for balance in result.balances.values():
        assert np.all(balance[:2] > -1) and np.all(balance[4:] < -20)  # 125–500 Hz kept, ≥ 2 kHz gone


@pytest.mark.parametrize("tilt_db", [4.0, -4.0])
def test_a_tilt_of_more_than_3_db_fails(tilt_db):
    boosted = lambda audio: audio * 10 ** (tilt_db / 20)  # noqa: E731
    assert not spectral_gate(boosted, RATE).passed
    assert within_tolerance(np.full(len(OCTAVE_BANDS), 2.9))
    assert within_tolerance(np.r_[np.zeros(len(OCTAVE_BANDS) - 1), 5.9])  # above 8 kHz: ±6 dB
    assert not within_tolerance(np.r_[np.zeros(len(OCTAVE_BANDS) - 1), 6.1])


def test_a_band_the_recording_leaves_empty_is_not_measured_but_a_weak_band_is():
    rng = np.random.default_rng(1)
    band_limited = low_pass(3000)(pink_noise(4, RATE))  # above 4 kHz: more than 30 dB down
    hiss = lambda audio: audio + 1e-3 * rng.standard_normal(len(audio)).astype(np.float32)  # noqa: E731
    result = spectral_gate(hiss, RATE, {"band-limited": band_limited})
    balance = result.balances["band-limited"]
    assert np.all(np.isnan(balance[5:])) and np.all(np.abs(balance[:4]) < 0.5)
    assert result.passed and "| empty | empty | yes |" in result.table()
    weak_top = band_limited + high_pass(8000)(pink_noise(4, RATE, seed=2)) * 0.3  # −10 dB, measured
    dropped = spectral_gate(low_pass(8000), RATE, {"weak top octave": weak_top})
    assert not np.isnan(dropped.balances["weak top octave"][6]) and not dropped.passed


def high_pass(cutoff: float):
    sos = signal.butter(8, cutoff, btype="highpass", fs=RATE, output="sos")
    return lambda audio: signal.sosfilt(sos, audio).astype(np.float32)


@pytest.mark.parametrize("garbage", [np.nan, np.inf])
def test_a_codec_that_outputs_nan_or_inf_fails_even_where_the_input_is_empty(garbage):
    band_limited = low_pass(3000)(pink_noise(4, RATE))
    result = spectral_gate(lambda audio: np.full_like(audio, garbage), RATE, {"band-limited": band_limited})
    assert not result.passed and all(np.all(balance == np.inf) for balance in result.balances.values())


def test_the_sweep_and_the_noise_fill_every_octave():
    for audio in (pink_noise(4, RATE), sine_sweep(4, RATE)):
        levels = 10 * np.log10(np.array([np.sum(np.abs(np.fft.rfft(audio)[int(lo * 4):int(hi * 4)]) ** 2)
                                         for lo, hi in OCTAVE_BANDS]))
        assert levels.max() - levels.min() < 4  # within a few dB of equal energy per octave


@pytest.mark.xfail(strict=True, reason="issue 16: the shipped codec is a ~1 kHz low-pass; remove this mark "
                                       "when a model that passes ships")
def test_the_shipped_model_passes_the_gate_at_6_kbps():
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    speech = read_audio(SPEECH, RATE).mean(axis=0).astype(np.float32)

    def round_trip(audio: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(audio)[None, None], bandwidth=6.0).audio_values[0, 0].numpy()

    result = spectral_gate(round_trip, RATE, {"speech": speech})
    assert result.passed, "\n" + result.table()
