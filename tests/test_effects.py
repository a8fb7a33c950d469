"""The effect protocol (pedalboard's) and the codec effects: layouts, dtypes, rates, channels."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.effects import Codes, EncodecCompressor, EncodecDecoder, EncodecEncoder, codec
from encodec_fx.effects.model_source import load_effect_model
from encodec_fx.partial_decode import decode_received
from encodec_fx.resample import resample

from conftest import randomize
from effects_models import noise, tiny_model


@pytest.fixture(scope="module")
def compressor() -> EncodecCompressor:
    return EncodecCompressor(6.0, model=tiny_model("24khz"))


# --- layouts and dtypes ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4410,), (2, 4410), (4410, 2), (1, 4410), (4410, 1), (3, 4410)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_keeps_input_layout_and_is_float32(compressor, shape, dtype):
    output = compressor(noise(*shape, dtype=dtype), 44100)
    assert output.shape == shape
    assert output.dtype == np.float32


def test_both_2d_layouts_give_the_same_audio(compressor):
    audio = noise(2, 4410)
    np.testing.assert_array_equal(compressor(audio.T, 44100).T, compressor(audio, 44100))


def test_process_is_call_and_reset_keeps_parameters(compressor):
    audio = noise(2400)
    compressor.reset()
    assert compressor.bandwidth == 6.0
    np.testing.assert_array_equal(compressor.process(audio, 24000), compressor(audio, 24000))


@pytest.mark.parametrize("bad, error", [
    (np.zeros((4, 100), dtype=np.int16), TypeError),
    (np.zeros(100, dtype=np.int32), TypeError),
    (np.zeros(100, dtype=np.float16), TypeError),
    (np.zeros((2, 0), dtype=np.float32), ValueError),
    ([0.0, 0.1, 0.2], TypeError),
    (np.zeros((2, 3, 100), dtype=np.float32), ValueError),
    (np.zeros((64, 64), dtype=np.float32), ValueError),
])
def test_bad_arrays_raise_like_pedalboard(compressor, bad, error):
    with pytest.raises(error):
        compressor(bad, 24000)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e39])  # 1e39 is finite in float64, not in float32
def test_samples_that_are_not_finite_in_float32_are_named(compressor, value):
    audio = noise(1, 2400, dtype=np.float64)
    audio[0, -1] = value
    with pytest.raises(ValueError, match=r"^audio contains NaN or infinite samples, or samples beyond float32's range"):
        compressor(audio, 24000)


def test_big_endian_floats_work_as_in_pedalboard(compressor):
    audio = noise(2, 4800)
    np.testing.assert_array_equal(compressor(audio.astype(">f4"), 24000), compressor(audio, 24000))


@pytest.mark.parametrize("rate", [0, -24000, 44100.5, "44100", None, float("nan"),
                                  8, 123_456_789, 10**12])  # a kHz mix-up, a corrupt header: gigabytes of filter
def test_bad_sample_rate_is_named(compressor, rate):
    with pytest.raises(ValueError, match="sample_rate"):
        compressor(noise(2400), rate)
    with pytest.raises(ValueError, match="sample_rate must be a whole number of Hz from 1000 to 768000"):
        compressor.latency_at(rate)


@pytest.mark.parametrize("reset", [None, 0, "no"])
def test_reset_must_be_a_bool(compressor, reset):
    with pytest.raises(ValueError, match=r"reset must be True \(a whole signal\) or False"):  # None streamed
        compressor(noise(2400), 24000, reset=reset)


def test_latency_at_takes_a_whole_float_rate_as_processing_does(compressor):
    assert compressor.latency_at(44100.0) == compressor.latency_at(44100)


def test_bad_buffer_size_is_named(compressor):
    with pytest.raises(ValueError, match="buffer_size"):
        compressor(noise(2400), 24000, buffer_size=0)


# --- rates and time alignment ------------------------------------------------------------------

def test_at_the_model_rate_the_compressor_is_the_model():
    model = tiny_model("24khz")
    audio = noise(5000)
    with torch.inference_mode():
        expected = model(torch.from_numpy(audio)[None, None], bandwidth=3.0).audio_values[0, 0].numpy()
    np.testing.assert_allclose(EncodecCompressor(3.0, model=model)(audio, 24000), expected, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 16000, 48000, 8000])
def test_resampling_round_trip_is_time_aligned_and_keeps_length(rate):
    length = rate // 5 + 7
    t = np.arange(length) / rate
    tone = np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    at_model_rate = resample(tone, rate, 24000)
    assert at_model_rate.shape[-1] == -(-length * 24000 // rate)
    back = resample(at_model_rate, 24000, rate, length)
    assert back.shape == tone.shape
    inner = slice(length // 10, -length // 10)  # the filter's zero padding fades the ends
    # passband ripple of the Kaiser (β = 5) filter is ~0.2 %; one sample of delay would be > 0.3
    np.testing.assert_allclose(back[0, inner], tone[0, inner], atol=5e-3)


@pytest.mark.parametrize("rate", [44100, 16000])
def test_other_rates_code_like_resampling_by_hand(rate):
    model = tiny_model("24khz")
    audio = noise(2, rate // 5, seed=3)
    at_model_rate = resample(audio, rate, 24000)
    with torch.inference_mode():
        decoded = model(torch.from_numpy(at_model_rate)[:, None], bandwidth=6.0).audio_values[:, 0].numpy()
    expected = resample(decoded, 24000, rate, audio.shape[1])
    np.testing.assert_allclose(EncodecCompressor(6.0, model=model)(audio, rate), expected, atol=1e-5)


# --- channels ----------------------------------------------------------------------------------

def test_mono_model_codes_each_channel_independently(compressor):
    audio = noise(3, 4410, seed=1)
    together = compressor(audio, 44100)
    for channel in range(3):
        np.testing.assert_allclose(together[channel], compressor(audio[channel], 44100), atol=1e-5)


def test_stereo_model_keeps_stereo_and_averages_duplicated_mono():
    model = tiny_model("48khz")
    stereo = EncodecCompressor(6.0, model=model)(noise(4410, 2), 44100)
    assert stereo.shape == (4410, 2)
    mono = noise(4800, seed=2)
    with torch.inference_mode():
        decoded = model(torch.from_numpy(np.stack([mono, mono]))[None], bandwidth=6.0).audio_values[0].numpy()
    np.testing.assert_allclose(EncodecCompressor(6.0, model=model)(mono, 48000), decoded.mean(axis=0), atol=1e-5)


def test_stereo_model_refuses_more_than_two_channels():
    with pytest.raises(ValueError, match="3 channels"):
        EncodecCompressor(6.0, model=tiny_model("48khz"))(noise(3, 4800), 48000)


# --- encoder, decoder and their parameters -----------------------------------------------------

@pytest.mark.parametrize("preset", ["24khz", "48khz"])
def test_encoder_then_decoder_is_the_compressor(preset):
    model = tiny_model(preset)
    audio = noise(7000, 2, seed=4)
    codes = EncodecEncoder(6.0, model=model)(audio, 44100)
    assert isinstance(codes, Codes)
    assert (codes.sample_rate, codes.layout.num_channels, codes.layout.num_samples) == (44100, 2, 7000)
    assert codes.bandwidth == 6.0 and codes.frame_rate == model.config.frame_rate
    np.testing.assert_array_equal(EncodecDecoder(model=model)(codes, 44100),
                                  EncodecCompressor(6.0, model=model)(audio, 44100))


def test_bandwidth_is_a_plain_attribute_checked_when_used():
    encoder = EncodecEncoder(6.0, model=tiny_model("24khz"))
    audio = noise(2400)
    assert encoder(audio, 24000).num_codebooks == 8
    encoder.bandwidth = 1.5
    assert encoder(audio, 24000).num_codebooks == 2
    encoder.bandwidth = 7.0
    with pytest.raises(ValueError, match=r"bandwidth 7.0 .*\[1.5, 3.0, 6.0, 12.0, 24.0\]"):
        encoder(audio, 24000)


@pytest.mark.parametrize("effect", [EncodecCompressor, EncodecEncoder])
@pytest.mark.parametrize("preset, bandwidth, accepted", [("24khz", 7.0, r"\[1.5, 3.0, 6.0, 12.0, 24.0\]"),
                                                         ("48khz", 1.5, r"\[3.0, 6.0, 12.0, 24.0\]"),
                                                         ("24khz", "6", "")])
def test_a_bandwidth_the_model_lacks_is_refused_when_the_effect_is_made(effect, preset, bandwidth, accepted):
    with pytest.raises(ValueError, match=rf"^bandwidth {re.escape(repr(bandwidth))} kbps is not supported by this "
                                         rf"model; choose one of {accepted}"):
        effect(bandwidth, model=tiny_model(preset))


@pytest.mark.parametrize("effect", [EncodecCompressor, EncodecEncoder, EncodecDecoder])
def test_no_model_is_the_default_model_or_says_to_pass_one(effect):
    """model=None means the package's default model, loaded once; where its weights are absent, the error says so."""
    try:
        default = load_effect_model(None, effect.__name__)
    except (TypeError, OSError) as error:  # no default model here: the effect says so as the loader does
        with pytest.raises(type(error), match=re.escape(str(error).split(":")[0])):
            effect()
    else:
        assert effect().model is default


def test_model_loads_from_a_pretrained_path(tmp_path):
    model = tiny_model("24khz")
    model.save_pretrained(tmp_path)
    audio = noise(2400)
    np.testing.assert_array_equal(EncodecCompressor(6.0, model=str(tmp_path))(audio, 24000),
                                  EncodecCompressor(6.0, model=model)(audio, 24000))
    with pytest.raises(TypeError, match="EncodecModel"):
        EncodecCompressor(6.0, model=42)


def test_decoder_refuses_what_it_cannot_decode():
    model = tiny_model("24khz")
    codes = EncodecEncoder(6.0, model=model)(noise(4410), 44100)
    with pytest.raises(ValueError, match="44100 Hz"):
        EncodecDecoder(model=model)(codes, 48000)
    other = EncodecModel(EncodecConfig.encodec_24khz(num_filters=8, num_lstm_layers=1))
    with pytest.raises(ValueError, match="another configuration"):
        EncodecDecoder(model=other)(codes, 44100)
    with pytest.raises(TypeError, match="Codes"):
        EncodecDecoder(model=model)(noise(4410), 44100)
    with pytest.raises(TypeError, match="numpy array"):
        EncodecEncoder(model=model)(codes, 44100)


@pytest.mark.parametrize("preset", ["24khz", "48khz"])
def test_partial_decoding_with_everything_received_is_model_decoding(preset):
    model = tiny_model(preset)
    codes = EncodecEncoder(6.0, model=model)(noise(2, 60000, seed=5), 48000)
    tokens = torch.from_numpy(codes.audio_codes)
    scales = [None] * tokens.shape[0] if codes.audio_scales is None else list(torch.from_numpy(codes.audio_scales))
    with torch.inference_mode():
        expected = model.decode(tokens, scales, torch.ones(codes.model_num_samples),
                                last_frame_pad_length=codes.last_frame_pad_length).audio_values
        partial = decode_received(model, tokens, torch.from_numpy(codes.received), scales,
                                  codes.last_frame_pad_length, codes.model_num_samples)
    torch.testing.assert_close(partial, expected, atol=1e-5, rtol=1e-5)


def test_effects_and_models_pickle_for_worker_processes():
    """Weight-norm layers refuse pickling as modules; the model pickles as config and state dict."""
    effect = EncodecCompressor(bandwidth=3.0, model=tiny_model())
    audio = noise(2, 8000)
    restored = pickle.loads(pickle.dumps(effect))
    np.testing.assert_array_equal(restored(audio, 44_100), effect(audio, 44_100))
    model = pickle.loads(pickle.dumps(tiny_model("48khz")))
    assert model.config == tiny_model("48khz").config and not model.training
    for key, value in tiny_model("48khz").state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_long_signals_are_coded_by_the_streaming_codec_with_the_whole_signals_result(monkeypatch):
    """Whole, the activations of every layer for a minute of stereo took 1.3 GB; streamed, the
    memory does not grow with the length."""
    model, audio = tiny_model(), noise(2, 36_000)
    with torch.inference_mode():
        codes = model.encode(torch.from_numpy(audio[:, None]), bandwidth=6.0).audio_codes
        expected = model.decode(codes).audio_values[:, 0, : audio.shape[-1]].numpy()
    monkeypatch.setattr(codec, "STREAMED_FROM_SECONDS", 1.0)  # 1.5 s streams
    monkeypatch.setattr(EncodecModel, "encode", lambda *args, **kwargs: pytest.fail("coded whole"))
    monkeypatch.setattr(EncodecModel, "decode", lambda *args, **kwargs: pytest.fail("decoded whole"))
    streamed = EncodecEncoder(bandwidth=6.0, model=model)(audio, 24_000)
    np.testing.assert_array_equal(streamed.audio_codes, codes.numpy())
    np.testing.assert_allclose(EncodecDecoder(model=model)(streamed, 24_000), expected, rtol=0, atol=1e-6)


def test_long_signals_of_models_that_cannot_stream_are_coded_whole(monkeypatch):
    model = randomize(EncodecModel(EncodecConfig(num_filters=4, num_lstm_layers=1, use_causal_conv=False)))
    audio = noise(1, 36_000)
    whole = EncodecCompressor(bandwidth=6.0, model=model)(audio, 24_000)
    monkeypatch.setattr(codec, "STREAMED_FROM_SECONDS", 1.0)  # the streaming codec refuses this model
    np.testing.assert_array_equal(EncodecCompressor(bandwidth=6.0, model=model)(audio, 24_000), whole)
