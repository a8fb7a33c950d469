"""Each bad input raises ValueError naming the problem and what is accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecFeatureExtractor, EncodecModel

from conftest import randomize


@pytest.fixture(scope="module")
def model() -> EncodecModel:
    return randomize(EncodecModel(EncodecConfig(num_filters=4)))


@pytest.fixture(scope="module")
def stereo_model() -> EncodecModel:
    return randomize(EncodecModel(EncodecConfig.encodec_48khz(num_filters=4)))


GOOD = torch.zeros(1, 1, 1000)


@pytest.mark.parametrize("audio, message", [
    (torch.zeros(1, 2, 1000), r"has 2 channels; this model takes 1"),
    (torch.zeros(1000), r"shape \(1000,\); expected \(batch, 1, samples\)"),
    (torch.zeros(1, 1, 0), r"is empty .* expected at least one sample"),
    (torch.zeros(0, 1, 100), r"is empty"),
    (torch.full((1, 1, 100), float("nan")), r"NaN or infinite"),
    (torch.full((1, 1, 100), float("inf")), r"NaN or infinite"),
    (torch.zeros(1, 1, 100, dtype=torch.int16), r"dtype torch.int16; expected floating-point"),
    (np.zeros((1, 1, 100), dtype=np.int32), r"dtype torch.int32; expected floating-point"),
    ([[0.0] * 10], r"must be a torch.Tensor or numpy array"),
])
def test_bad_audio(model, audio, message):
    with pytest.raises(ValueError, match=message):
        model.encode(audio)


def test_wrong_channel_count_on_stereo_model(stereo_model):
    with pytest.raises(ValueError, match=r"has 1 channels; this model takes 2"):
        stereo_model.encode(torch.zeros(1, 1, 100))


def test_sampling_rate_must_be_the_models(model):
    with pytest.raises(ValueError, match=r"sampled at 44100 Hz, but this model takes 24000 Hz"):
        model.encode(GOOD, sampling_rate=44_100)
    model.encode(GOOD, sampling_rate=24_000)


@pytest.mark.parametrize("pad", [-1, 4, 10])
def test_last_frame_padding_must_leave_a_frame(model, pad):
    codes = torch.zeros(1, 1, 2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=rf"last_frame_pad_length must be from 0 to 3 .*, got {pad}"):
        model.decode(codes, last_frame_pad_length=pad)
    assert model.decode(codes, last_frame_pad_length=3).audio_values.shape[-1] == model.config.hop_length


def test_bandwidth_of_the_wrong_type_is_shown_as_given(model):
    with pytest.raises(ValueError, match=r"bandwidth '6' kbps is not supported"):
        model.encode(GOOD, bandwidth="6")


@pytest.mark.parametrize("bandwidth", [2.0, 0.0, 48.0])
def test_unsupported_bandwidth(model, bandwidth):
    with pytest.raises(ValueError, match=rf"bandwidth {bandwidth} kbps .* one of \[1.5, 3.0, 6.0, 12.0, 24.0\]"):
        model.encode(GOOD, bandwidth=bandwidth)


def test_stereo_model_has_its_own_bandwidths(stereo_model):
    with pytest.raises(ValueError, match=r"one of \[3.0, 6.0, 12.0, 24.0\]"):
        stereo_model.encode(torch.zeros(1, 2, 100), bandwidth=1.5)


def test_padding_mask_shape(model):
    with pytest.raises(ValueError, match=r"padding_mask has shape \(1, 999\); expected \(batch, samples\)"):
        model.encode(GOOD, torch.ones(1, 999))


@pytest.mark.parametrize("codes, message", [
    (torch.zeros(1, 1, 33, 4, dtype=torch.long), r"33 codebooks; this model has 1 to 32"),
    (torch.full((1, 1, 2, 4), 1024), r"indices from 1024 to 1024; expected 0 to 1023"),
    (torch.full((1, 1, 2, 4), -1), r"indices from -1 to -1; expected 0 to 1023"),
    (torch.zeros(1, 2, 4, dtype=torch.long), r"expected an integer tensor \[chunks, batch, n_q, frames\]"),
    (torch.zeros(1, 1, 2, 4), r"expected an integer tensor"),
    (torch.zeros(2, 1, 2, 4, dtype=torch.long), r"2 chunks; this model codes audio as one chunk"),
    (torch.zeros(1, 1, 2, 0, dtype=torch.long), r"empty \(shape \(1, 1, 2, 0\)\); expected at least one chunk"),
    (torch.zeros(1, 0, 2, 4, dtype=torch.long), r"empty \(shape \(1, 0, 2, 4\)\)"),
])
def test_bad_codes(model, codes, message):
    with pytest.raises(ValueError, match=message):
        model.decode(codes, [None] * codes.shape[0] if codes.dim() == 4 else [None])


def test_decode_needs_scales_for_normalised_model(stereo_model):
    encoded = stereo_model.encode(torch.rand(1, 2, 500) - 0.5)
    with pytest.raises(ValueError, match=r"needs the audio_scales"):
        stereo_model.decode(encoded.audio_codes, None)
    with pytest.raises(ValueError, match=r"got 2 audio_scales for 1 chunks"):
        stereo_model.decode(encoded.audio_codes, encoded.audio_scales * 2)


def test_forward_needs_codes_and_scales_together(model):
    with pytest.raises(ValueError, match="give both audio_codes and audio_scales"):
        model(GOOD, audio_codes=torch.zeros(1, 1, 2, 4, dtype=torch.long))


@pytest.mark.parametrize("raw, kwargs, message", [
    (np.zeros(100), {"sampling_rate": 48_000}, r"sampled at 48000 Hz, but this model takes 24000 Hz"),
    (np.zeros((2, 100)), {}, r"shape \(2, 100\); this extractor takes mono audio shaped \(samples,\)"),
    (np.zeros(0), {}, r"is empty"),
    (np.array([0.0, np.nan]), {}, r"NaN or infinite"),
    (np.zeros(10, dtype=np.int16), {}, r"dtype int16; expected floating-point"),
    ([np.zeros(10), np.zeros(3, dtype=np.int64)], {}, r"raw_audio\[1\] has dtype int64"),
    (np.zeros(10), {"padding": True, "truncation": True}, r"padding and truncation are both set"),
    (np.zeros(10), {"padding": "sideways"}, r"padding must be True, False"),
    (np.zeros(10), {"return_tensors": "tf"}, r"return_tensors must be None, 'np' or 'pt'"),
    ([np.zeros(10), np.zeros(3)], {"padding": False, "return_tensors": "pt"}, r"different lengths \[10, 3\]"),
    ([], {}, r"raw_audio is empty"),
])
def test_feature_extractor_bad_input(raw, kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncodecFeatureExtractor()(raw, **kwargs)


def test_feature_extractor_stereo_shape():
    with pytest.raises(ValueError, match=r"shape \(100,\); this extractor takes stereo audio shaped \(2, samples\)"):
        EncodecFeatureExtractor(feature_size=2, sampling_rate=48_000)(np.zeros(100))


@pytest.mark.parametrize("kwargs, message", [
    ({"norm_type": "batch_norm"}, r"norm_type must be 'weight_norm' or 'time_group_norm'"),
    ({"codebook_size": 1000}, r"codebook_size must be a power of 2"),
    ({"target_bandwidths": []}, r"at least one bandwidth"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncodecConfig(**kwargs)
