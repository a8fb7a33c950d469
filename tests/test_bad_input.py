"""Each bad input raises ValueError naming the problem and what is accepted."""

from __future__ import annotations

import warnings

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


def test_big_endian_arrays_code_like_native_ones(model):
    audio = np.random.default_rng(0).standard_normal((1, 1, 1000)).astype(np.float32) * 0.1
    codes = model.encode(audio).audio_codes
    assert torch.equal(model.encode(audio.astype(">f4")).audio_codes, codes)  # torch refused it


def test_sampling_rate_of_the_wrong_type_is_shown_as_given(model):
    with pytest.raises(ValueError, match=r"sampled at '24000' Hz, but this model takes 24000 Hz"):
        model.encode(GOOD, sampling_rate="24000")


def test_sampling_rate_must_be_the_models(model):
    with pytest.raises(ValueError, match=r"sampled at 44100 Hz, but this model takes 24000 Hz"):
        model.encode(GOOD, sampling_rate=44_100)
    model.encode(GOOD, sampling_rate=24_000)


@pytest.mark.parametrize("pad", [-1, 4, 10, 1.0, None])  # a float or None met a deep TypeError
def test_last_frame_padding_must_leave_a_frame(model, pad):
    codes = torch.zeros(1, 1, 2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=rf"last_frame_pad_length must be an integer from 0 to 3 .*, got {pad}"):
        model.decode(codes, last_frame_pad_length=pad)
    assert model.decode(codes, last_frame_pad_length=3).audio_values.shape[-1] == model.config.hop_length
    assert model.decode(codes, last_frame_pad_length=torch.tensor(3)).audio_values.shape[-1] == model.config.hop_length


def test_integer_pcm_scale_floats_are_warned_about(model):
    """int16 audio converted without dividing by 32768: the 24 kHz model codes it into garbage."""
    loud = np.random.default_rng(0).normal(0, 8000, (1, 1, 1000)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"input_values peaks more than 40 dB above full scale: expected floats "
                                          r"in \[-1, 1\] \(integer PCM converted without scaling\?") as caught:
        model.encode(loud)
    assert [warning.filename for warning in caught] == [__file__]  # the caller's line, not the package's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.encode(loud / 32768)  # a hot mix a little over full scale is not warned about
        model.encode(loud / 1000)


def test_a_loud_stream_is_warned_about_once(model):
    from encodec_fx import StreamingEncoder
    loud = torch.from_numpy(np.random.default_rng(0).normal(0, 8000, (1, 1, 320)).astype(np.float32))
    encoder = StreamingEncoder(model, 6.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(5):
            encoder.push(loud)
    assert [(str(w.message).split(" peaks")[0], w.filename) for w in caught] == [("audio block", __file__)]


def test_a_bandwidth_array_must_hold_one_value(model):
    for bandwidth in (np.array([6.0]), torch.tensor([6.0, 3.0])):  # met numpy's and torch's truth-value errors
        with pytest.raises(ValueError, match=r"bandwidth .* kbps is not supported by this model"):
            model.encode(GOOD, bandwidth=bandwidth)
    expected = model.encode(GOOD, bandwidth=6.0).audio_codes
    for bandwidth in (np.array(6.0), torch.tensor(6.0), np.float32(6.0)):
        assert torch.equal(model.encode(GOOD, bandwidth=bandwidth).audio_codes, expected)


def test_a_reversed_numpy_view_codes_like_its_copy(model):
    audio = np.random.default_rng(0).normal(0, 0.1, (1, 1, 1000)).astype(np.float32)
    reversed_view = audio[..., ::-1]  # negative strides, which torch.from_numpy refuses
    assert torch.equal(model.encode(reversed_view).audio_codes, model.encode(reversed_view.copy()).audio_codes)


def test_object_arrays_are_refused_by_name(model):
    audio = GOOD.numpy()
    with pytest.raises(ValueError, match="input_values has dtype object; expected floating-point samples"):
        model.encode(audio.astype(object))
    with pytest.raises(ValueError, match="padding_mask has dtype object; expected 1 for samples and 0 for padding"):
        model.encode(audio, padding_mask=np.full(audio.shape[::2], None))


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
    (torch.zeros(1, 1, 2, 0, dtype=torch.long), r"empty \(shape \(1, 1, 2, 0\)\); expected \[chunks, batch, n_q, "
                                                r"frames\] with at least one entry in each"),
    (torch.zeros(1, 0, 2, 4, dtype=torch.long), r"empty \(shape \(1, 0, 2, 4\)\)"),
    (torch.zeros(1, 1, 2, 4, dtype=torch.bool), r"\(1, 1, 2, 4\) torch.bool; expected an integer tensor"),
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


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.uint8])  # uint8 was refused: 1024 wrapped to 0
def test_codes_of_any_integer_type_decode_like_long(model, dtype):
    codes = torch.randint(0, 256, (1, 1, 2, 5))
    expected = model.decode(codes).audio_values
    torch.testing.assert_close(model.decode(codes.to(dtype)).audio_values, expected, rtol=0, atol=0)
    torch.testing.assert_close(model.decode_chunk(codes[0].to(dtype)), expected, rtol=0, atol=0)


@pytest.mark.parametrize("scale, message", [
    (torch.ones(3, 1), r"audio_scales\[0\] is \(3, 1\); expected the finite, positive float tensor "
                       r"\(batch, 1\) = \(1, 1\)"),
    (torch.tensor([[float("nan")]]), r"audio_scales\[0\] is \(1, 1\); expected the finite, positive"),  # was NaN audio
    (torch.zeros(1, 1), r"finite, positive"),
    (2.0, r"audio_scales\[0\] is float; expected"),
])
def test_bad_scales(stereo_model, scale, message):
    codes = stereo_model.encode(torch.rand(1, 2, 500) - 0.5).audio_codes
    with pytest.raises(ValueError, match=message):
        stereo_model.decode(codes, [scale])


def test_decode_chunk_checks_codes_and_scale_like_decode(stereo_model):
    codes, scales, _ = stereo_model.encode(torch.rand(1, 2, 500) - 0.5)
    with pytest.raises(ValueError, match=r"this model normalises its input: decode needs the audio_scales"):
        stereo_model.decode_chunk(codes[0])  # was decoded unscaled, silently
    with pytest.raises(ValueError, match=r"codes holds indices from \d+ to 1024; expected 0 to 1023"):
        stereo_model.decode_chunk(torch.cat([codes[0], torch.full_like(codes[0], 1024)], dim=-1), scales[0])
    with pytest.raises(ValueError,
                       match=r"codes is \(2, 2\) torch.int64; expected an integer tensor \[batch, n_q, frames\]"):
        stereo_model.decode_chunk(codes[0, 0], scales[0])


@pytest.mark.parametrize("mask, message", [
    (torch.ones(1, 99_999), r"padding_mask is \(1, 99999\); expected \(batch, samples\) with batch 1 and at most "
                            r"the 1280 samples"),  # was cut to 1280 silently
    (torch.ones(2, 1000), r"padding_mask is \(2, 1000\)"),
    ([1] * 1000, r"padding_mask is list"),
])
def test_bad_decode_padding_mask(model, mask, message):
    codes = model.encode(GOOD).audio_codes
    with pytest.raises(ValueError, match=message):
        model.decode(codes, padding_mask=mask)


@pytest.mark.parametrize("mask, message", [
    (torch.ones(1, 3, 1000), r"padding_mask has shape \(1, 3, 1000\); expected \(batch, samples\) = \(1, 1000\)"),
    (1, r"padding_mask has shape int"),
])
def test_bad_encode_padding_mask(model, mask, message):
    with pytest.raises(ValueError, match=message):
        model.encode(GOOD, mask)


def test_forward_decodes_given_codes_without_input(model):
    codes, scales, _ = model.encode(GOOD)
    audio = model(None, audio_codes=codes, audio_scales=scales).audio_values
    torch.testing.assert_close(audio, model.decode(codes, scales).audio_values, rtol=0, atol=0)


def test_forward_with_codes_takes_the_length_of_an_array_only(model):
    encoded = model.encode(GOOD)
    with pytest.raises(ValueError, match="input_values must be a torch.Tensor or numpy array .* got list"):
        model(list(GOOD), audio_codes=encoded.audio_codes, audio_scales=encoded.audio_scales)


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
    ({"target_bandwidths": []}, r"target_bandwidths must be a list of positive kbps in increasing order, got \[\]"),
    ({"target_bandwidths": "6"}, r"target_bandwidths must be a list .*, got '6'"),  # not silently [6.0]
    ({"target_bandwidths": [float("nan")]}, r"target_bandwidths must be a list"),
    ({"target_bandwidths": [24.0, 1.5]}, r"target_bandwidths must increase"),  # else 24 kbps gave 2 codebooks
    ({"target_bandwidths": [0.1]}, r"reach only 0.1 kbps; one codebook takes 0.75 kbps"),
    ({"num_filters": -16}, r"num_filters must be a positive integer, got -16"),
    ({"audio_channels": 0}, r"audio_channels must be a positive integer"),
    ({"sampling_rate": "24000"}, r"sampling_rate must be a positive integer, got '24000'"),
    ({"num_lstm_layers": 0}, r"num_lstm_layers must be a positive integer"),
    ({"use_causal_conv": "false"}, r"use_causal_conv must be true or false, got 'false'"),  # a truthy string
    ({"upsampling_ratios": [8, 0]}, r"upsampling_ratios must be a list of positive integers"),
    ({"codebook_dim": 64}, r"codebook_dim must equal hidden_size \(128\)"),
    ({"pad_mode": "foo"}, r"pad_mode must be one of reflect, constant"),
    ({"trim_right_ratio": -1.0}, r"trim_right_ratio must be from 0 to 1"),
    ({"chunk_length_s": 0.1}, r"needs both chunk_length_s and overlap"),  # coded only the first chunk
    ({"chunk_length_s": 1.0, "overlap": 1.0}, r"overlap must be a fraction from 0 up to \(not including\) 1"),
    ({"chunk_length_s": 1e-5, "overlap": 0.0}, r"chunk_length_s must be at least one frame"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncodecConfig(**kwargs)


def test_bad_config_file_names_the_file_and_the_field(tmp_path, model):
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"sampling_rate": -24000}')
    with pytest.raises(ValueError, match=r"config.json: sampling_rate must be a positive integer, got -24000"):
        EncodecModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_bytes(b'{"sampling_rate": "\xff"}')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        EncodecConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"an EnCodec config is a dict of fields, got NoneType"):
        EncodecConfig.from_dict(None)


def test_reading_a_file_with_no_samples_says_so(tmp_path):
    """pedalboard refuses to read 0 frames with a message about reading whole files at once."""
    from pedalboard.io import AudioFile

    from encodec_fx.audio_io import read_audio
    for name, frames in [("empty.wav", 0), ("one.wav", 1)]:
        with AudioFile(str(tmp_path / name), "w", samplerate=24_000, num_channels=1) as file:
            file.write(np.zeros((1, frames), np.float32))
    with pytest.raises(ValueError, match=r"empty.wav holds no audio samples$"):
        read_audio(tmp_path / "empty.wav")
    assert read_audio(tmp_path / "one.wav", 8000).shape == (1, 1)  # ceil(1 · 8000 / 24000) samples
