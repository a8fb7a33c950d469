"""Streaming (reset=False): blocks of any size give the batch output, `latency` samples late."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.effects import (
    BandwidthSchedule,
    Chain,
    CodebookTruncation,
    EncodecCompressor,
    EncodecDecoder,
    EncodecEncoder,
    PacketLoss,
    TokenSubstitution,
)
from encodec_fx.resample import Resampler, resample
from encodec_fx.stream import default_frames_per_step
from encodec_fx.streaming import round_trip_latency
from encodec_fx.streaming_layers import StreamingLayers

from effects_models import noise, tiny_model

CONSTANT, VARYING = [512], [1000, 1, 333, 0, 4096, 7]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models, small blocks: threads only add overhead on shared cores
    yield
    torch.set_num_threads(threads)


def stream(effect, audio: np.ndarray, rate: int, sizes: list[int], latency: int, slack: int = 0) -> np.ndarray:
    """Blocks of `sizes` (cycled), then zeros to flush; checks each call returns exactly the samples
    taken in so far less the latency (less up to `slack` more, held by native plugins); returns
    as many samples as `audio` has."""
    signal = np.concatenate([audio, np.zeros(audio.shape[:-1] + (latency + slack,), audio.dtype)], axis=-1)
    outputs, taken, index = [], 0, 0
    while taken < signal.shape[-1]:
        size = sizes[index % len(sizes)]
        index += 1
        outputs.append(effect(signal[..., taken: taken + size], rate, reset=False))
        taken = min(taken + size, signal.shape[-1])
        assert max(0, taken - latency - slack) <= sum(out.shape[-1] for out in outputs) <= max(0, taken - latency)
    return np.concatenate(outputs, axis=-1)[..., : audio.shape[-1]]


def batch_of_stream(effect, audio: np.ndarray, rate: int, latency: int) -> np.ndarray:
    """The batch output of everything the stream was given (the input and its flush)."""
    padded = np.concatenate([audio, np.zeros(audio.shape[:-1] + (latency,), audio.dtype)], axis=-1)
    return effect(padded, rate)[..., : audio.shape[-1]]


@pytest.mark.parametrize("rates", [(44100, 24000), (24000, 44100), (48000, 44100), (16000, 24000)])
@pytest.mark.parametrize("sizes", [CONSTANT, VARYING])
def test_streaming_resampler_is_the_batch_filter(rates, sizes):
    audio = noise(2, 9000)
    resampler = Resampler(*rates)
    outputs, taken, index = [], 0, 0
    while taken < audio.shape[-1]:
        outputs.append(resampler.process(audio[:, taken: taken + sizes[index % len(sizes)]]))
        taken, index = min(taken + sizes[index % len(sizes)], audio.shape[-1]), index + 1
        assert sum(out.shape[-1] for out in outputs) == resampler.output_length(taken)
    streamed = np.concatenate(outputs + [resampler.flush()], axis=-1)
    expected = resample(audio, *rates)
    assert streamed.shape == expected.shape
    # every output is the same dot product of the same taps with the same inputs, whichever block holds them
    np.testing.assert_array_equal(streamed, expected)


@pytest.mark.parametrize("rate", [24000, 44100])
@pytest.mark.parametrize("sizes", [CONSTANT, VARYING])
def test_causal_codec_streams_the_batch_output(rate, sizes):
    compressor = EncodecCompressor(6.0, model=tiny_model("24khz"))
    latency = compressor.latency_at(rate)
    audio = noise(2, rate // 2)
    streamed = stream(compressor, audio, rate, sizes, latency)
    assert streamed.shape == audio.shape
    np.testing.assert_allclose(streamed, batch_of_stream(compressor, audio, rate, latency), atol=1e-4)
    assert compressor.latency == latency


def test_a_refused_block_leaves_the_stream_as_it_was():
    """A NaN block used to be taken in before it was refused, shifting everything after it."""
    effect, clean = EncodecCompressor(model=tiny_model()), EncodecCompressor(model=tiny_model())
    block = noise(2, 4000)
    bad = block.copy()
    bad[:, -1] = np.nan
    outputs = [effect(block, 24000, reset=False)]
    with pytest.raises(ValueError, match="NaN"):
        effect(bad, 24000, reset=False)
    outputs += [effect(block, 24000, reset=False) for _ in range(3)]
    expected = [clean(block, 24000, reset=False) for _ in range(4)]
    for output, wanted in zip(outputs, expected):
        np.testing.assert_array_equal(output, wanted)


def test_causal_codec_latency_is_the_round_trip_latency_at_the_model_rate():
    model = tiny_model("24khz")
    assert EncodecCompressor(model=model).latency_at(24000) == round_trip_latency(model)
    assert EncodecCompressor(model=model).latency == round_trip_latency(model)  # before any stream: model rate
    assert EncodecCompressor(model=model).latency_at(44100) > round_trip_latency(model) * 44100 / 24000


@pytest.mark.parametrize("rate", [24000, 44100])
def test_causal_stream_is_the_offline_output_of_the_input_itself(rate):
    """The flush changes nothing but the last samples that the output resampler looks ahead from."""
    compressor = EncodecCompressor(6.0, model=tiny_model("24khz"))
    audio = noise(2, rate // 2)
    streamed = stream(compressor, audio, rate, VARYING, compressor.latency_at(rate))
    tail = Resampler(24000, rate).latency
    offline = compressor(audio, rate)
    np.testing.assert_allclose(streamed[:, : audio.shape[-1] - tail], offline[:, : audio.shape[-1] - tail], atol=1e-4)


@pytest.mark.parametrize("frames_per_step", [1, 3])
@pytest.mark.parametrize("rate", [24000, 44100])
@pytest.mark.parametrize("sizes", [CONSTANT, VARYING])
def test_any_frames_per_step_streams_the_batch_output(frames_per_step, rate, sizes):
    model = tiny_model("24khz")
    compressor = EncodecCompressor(6.0, model=model, frames_per_step=frames_per_step)
    latency = compressor.latency_at(rate)
    audio = noise(2, rate // 2)
    streamed = stream(compressor, audio, rate, sizes, latency)  # checks the latency is exact at every call
    np.testing.assert_allclose(streamed, batch_of_stream(compressor, audio, rate, latency), atol=1e-4)
    assert f"frames_per_step={frames_per_step}" in repr(compressor)


def test_the_default_step_is_the_largest_that_adds_no_latency():
    model = tiny_model("24khz")
    assert default_frames_per_step(model) == 7  # the first output waits for 7 frames anyway
    for rate in (24000, 44100):
        default = EncodecCompressor(model=model).latency_at(rate)
        one = EncodecCompressor(model=model, frames_per_step=1).latency_at(rate)
        assert default == one
        assert EncodecCompressor(model=model, frames_per_step=3).latency_at(rate) > one  # 9 frames: two more
        assert EncodecCompressor(model=model, frames_per_step=8).latency_at(rate) > one
    assert default_frames_per_step(tiny_model("48khz")) == 1


def test_frames_per_step_must_match_between_encoder_and_decoder():
    model = tiny_model("24khz")
    matched = Chain([EncodecEncoder(6.0, model=model, frames_per_step=4),
                     EncodecDecoder(model=model, frames_per_step=4)])
    audio = noise(2, 12000)
    latency = matched.latency_at(24000)
    np.testing.assert_allclose(stream(matched, audio, 24000, CONSTANT, latency),
                               batch_of_stream(matched, audio, 24000, latency), atol=1e-4)
    mismatched = Chain([EncodecEncoder(6.0, model=model, frames_per_step=4), EncodecDecoder(model=model)])
    with pytest.raises(ValueError, match="give the decoder the encoder's frames_per_step"):
        for block in np.split(audio, 24, axis=-1):
            mismatched(block, 24000, reset=False)


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "4"])
def test_bad_frames_per_step_is_refused(value):
    with pytest.raises(ValueError, match="frames_per_step must be a positive integer"):
        EncodecCompressor(model=tiny_model("24khz"), frames_per_step=value)


def test_numpy_integers_are_integers():
    assert EncodecCompressor(model=tiny_model("24khz"), frames_per_step=np.int64(7)).latency_at(24000) \
        == EncodecCompressor(model=tiny_model("24khz"), frames_per_step=7).latency_at(24000)


def test_frames_per_step_is_for_the_causal_model_only():
    with pytest.raises(ValueError, match="streams by whole 1 s chunks"):
        EncodecEncoder(model=tiny_model("48khz"), frames_per_step=2)


@pytest.mark.parametrize("rate, sizes", [(48000, [4800]), (48000, [4096, 777, 1]), (44100, [4096, 777, 1])])
def test_chunked_codec_streams_chunk_by_chunk(rate, sizes):
    compressor = EncodecCompressor(6.0, model=tiny_model("48khz"))
    latency = compressor.latency_at(rate)
    assert latency == (48000 - 1 if rate == 48000 else pytest.approx(rate, abs=100))  # about one chunk
    audio = noise(2, int(rate * 2.5))  # three chunks, cross-faded
    streamed = stream(compressor, audio, rate, sizes, latency)
    np.testing.assert_allclose(streamed, batch_of_stream(compressor, audio, rate, latency), atol=1e-4)


def test_chunked_codec_streams_mono_through_the_stereo_model():
    compressor = EncodecCompressor(12.0, model=tiny_model("48khz"))
    latency = compressor.latency_at(48000)
    audio = noise(100000)
    streamed = stream(compressor, audio, 48000, [3000, 1234], latency)
    assert streamed.shape == audio.shape
    np.testing.assert_allclose(streamed, batch_of_stream(compressor, audio, 48000, latency), atol=1e-4)


@pytest.mark.parametrize("shape", [(3000,), (3000, 2)])
def test_streams_keep_mono_and_channels_last_layouts(shape):
    compressor = EncodecCompressor(6.0, model=tiny_model("24khz"))
    audio = noise(*shape)
    first = compressor(audio[:2000], 24000, reset=False)
    second = compressor(audio[2000:], 24000, reset=False)
    assert first.shape == ((0,) if len(shape) == 1 else (0, 2))
    assert second.shape == ((3000 - 2239,) if len(shape) == 1 else (3000 - 2239, 2))
    with pytest.raises(ValueError, match="this stream's blocks are"):
        compressor(noise(2, 100) if len(shape) == 1 else noise(100, 3), 24000, reset=False)


def token_chain(model) -> Chain:
    return Chain([EncodecEncoder(6.0, model=model), CodebookTruncation(4),
                  BandwidthSchedule([(0.0, 3.0), (0.1, 1.5), (0.2, 3.0)]),
                  TokenSubstitution(rate=0.05, seed=3),
                  PacketLoss(rate=0.3, packet_frames=2, concealment="repeat", seed=1),
                  EncodecDecoder(model=model)])


@pytest.mark.parametrize("sizes", [CONSTANT, VARYING])
def test_token_effects_stream_the_batch_damage(sizes):
    chain = token_chain(tiny_model("24khz"))
    latency = chain.latency_at(24000)
    assert latency == round_trip_latency(tiny_model("24khz"))  # the decoder carries the whole path's latency
    audio = noise(2, 12000)
    streamed = stream(chain, audio, 24000, sizes, latency)
    np.testing.assert_allclose(streamed, batch_of_stream(chain, audio, 24000, latency), atol=1e-4)


@pytest.mark.parametrize("sizes", [[6000], [6000, 1, 2500]])
def test_token_effects_stream_on_the_chunked_timeline(sizes):
    model = tiny_model("48khz")
    chain = Chain([EncodecEncoder(6.0, model=model),
                   PacketLoss(rate=0.3, packet_frames=5, concealment="repeat", seed=2),
                   TokenSubstitution(rate=0.02, seed=4), EncodecDecoder(model=model)])
    latency = chain.latency_at(48000)
    audio = noise(2, 120000)
    streamed = stream(chain, audio, 48000, sizes, latency)
    np.testing.assert_allclose(streamed, batch_of_stream(chain, audio, 48000, latency), atol=1e-4)


def test_unseeded_damage_is_drawn_once_per_stream():
    codes = EncodecEncoder(6.0, model=tiny_model("24khz"))
    substitution = TokenSubstitution(rate=0.5)
    blocks = [codes(block, 24000, reset=False) for block in np.split(noise(2, 9600), 4, axis=-1)]
    first = [substitution(block, 24000, reset=False).audio_codes for block in blocks]
    substitution.reset()
    second = [substitution(block, 24000, reset=False).audio_codes for block in blocks]
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("sizes", [CONSTANT, VARYING])
def test_chains_mixing_native_plugins_stream_the_batch_output(sizes):
    model = tiny_model("24khz")
    chain = Chain([pedalboard.HighpassFilter(80), pedalboard.Gain(-3), EncodecCompressor(3.0, model=model),
                   Chain([pedalboard.Reverb(room_size=0.3), pedalboard.Compressor(threshold_db=-20)]),
                   EncodecEncoder(1.5, model=model), EncodecDecoder(model=model), pedalboard.Gain(2)])
    rate = 44100
    latency = chain.latency_at(rate)
    assert latency == 2 * EncodecCompressor(model=model).latency_at(rate)  # natives count as 0
    audio = noise(2, 15000)
    # pieces of ≤ 2 samples wait for the next block (pedalboard would misread their layout)
    streamed = stream(chain, audio, rate, sizes, latency, slack=2)
    assert streamed.shape == audio.shape
    np.testing.assert_allclose(streamed, batch_of_stream(chain, audio, rate, latency + 2), atol=1e-4)


def test_native_segments_get_no_block_longer_than_their_first():
    """pedalboard re-initialises on a block longer than the first: MP3Compressor would give garbage."""
    chain = Chain([pedalboard.Gain(1), pedalboard.MP3Compressor()])
    audio = noise(2, 30000)
    expected = chain(audio, 44100)
    chain.reset()  # as in pedalboard, a batch call leaves native plugins in their end state
    outputs, taken = [], 0
    for size in [5, 1, 1, 1, 5, 2, 1] * 10000:
        if taken >= audio.shape[-1]:
            break
        outputs.append(chain(audio[:, taken: taken + size], 44100, reset=False))
        taken += size
    streamed = np.concatenate(outputs, axis=-1)
    assert 0 < streamed.shape[-1] < audio.shape[-1]  # MP3 withholds its own latency, reported by no plugin
    np.testing.assert_array_equal(streamed, expected[:, : streamed.shape[-1]])


def test_parameters_change_between_blocks():
    model = tiny_model("24khz")
    encoder = EncodecEncoder(6.0, model=model)
    audio = noise(1, 9600)
    whole = EncodecEncoder(6.0, model=model)(audio, 24000).audio_codes[0, 0]
    first = encoder(audio[:, :4800], 24000, reset=False)
    encoder.bandwidth = 1.5
    second = encoder(audio[:, 4800:], 24000, reset=False)
    frames = first.num_frames
    np.testing.assert_array_equal(first.audio_codes[0, 0], whole[:, :frames])
    assert second.first_frame == frames and second.num_codebooks == 2
    np.testing.assert_array_equal(second.audio_codes[0, 0], whole[:2, frames: frames + second.num_frames])

    gain = Chain([pedalboard.Gain(0.0), CodebookTruncation(1)][:1])
    loud = gain(audio[:, :100], 24000, reset=False)
    gain[0].gain_db = 20.0
    np.testing.assert_allclose(gain(audio[:, 100:200], 24000, reset=False), audio[:, 100:200] * 10, rtol=1e-4)
    np.testing.assert_allclose(loud, audio[:, :100], rtol=1e-6)


def test_bandwidth_automation_is_a_bandwidth_schedule():
    """Lowering the compressor's bandwidth between blocks lowers it from the next frame completed,
    as a BandwidthSchedule switching at that frame does offline."""
    model = tiny_model("24khz")
    compressor, frames = EncodecCompressor(6.0, model=model), EncodecEncoder(6.0, model=model)
    latency = compressor.latency_at(24000)
    audio = noise(2, 12000)
    signal = np.concatenate([audio, np.zeros((2, latency), np.float32)], axis=-1)
    blocks = np.array_split(signal, 7, axis=-1)
    outputs = [compressor(block, 24000, reset=False) for block in blocks[:3]]
    switch = sum(frames(block, 24000, reset=False).num_frames for block in blocks[:3])
    compressor.bandwidth = 1.5
    outputs += [compressor(block, 24000, reset=False) for block in blocks[3:]]
    streamed = np.concatenate(outputs, axis=-1)[:, : audio.shape[-1]]
    schedule = BandwidthSchedule([(0.0, 6.0), ((switch - 0.5) / model.config.frame_rate, 1.5)])
    offline = Chain([EncodecEncoder(6.0, model=model), schedule, EncodecDecoder(model=model)])
    np.testing.assert_allclose(streamed, batch_of_stream(offline, audio, 24000, latency), atol=1e-4)
    assert not np.allclose(streamed, batch_of_stream(compressor, audio, 24000, latency), atol=1e-3)


def test_loss_rate_automation_drops_exactly_the_blocks_it_was_raised_for():
    encoder, loss = EncodecEncoder(6.0, model=tiny_model("24khz")), PacketLoss(seed=0)
    received = []
    for index, block in enumerate(np.split(noise(2, 24000), 8, axis=-1)):
        loss.rate = 1.0 if index in (3, 4) else 0.0
        received.append(loss(encoder(block, 24000, reset=False), 24000, reset=False).received)
    assert all(r.all() for i, r in enumerate(received) if i not in (3, 4))
    assert all(r.size and not r.any() for i, r in enumerate(received) if i in (3, 4))


def test_reset_starts_a_new_stream_and_keeps_parameters():
    compressor = EncodecCompressor(1.5, model=tiny_model("24khz"))
    audio = noise(2, 6000)
    first = np.concatenate([compressor(block, 24000, reset=False) for block in np.split(audio, 4, axis=-1)], axis=-1)
    compressor.reset()
    assert compressor.bandwidth == 1.5
    again = np.concatenate([compressor(block, 24000, reset=False) for block in np.split(audio, 4, axis=-1)], axis=-1)
    np.testing.assert_array_equal(first, again)
    compressor(audio, 24000)  # a batch call resets too
    np.testing.assert_array_equal(compressor(audio[:, :3000], 24000, reset=False), first[:, : 3000 - 2239])


def test_stream_mistakes_are_explained():
    model = tiny_model("24khz")
    compressor = EncodecCompressor(model=model)
    compressor(noise(2, 1000), 24000, reset=False)
    with pytest.raises(ValueError, match="this stream runs at 24000 Hz"):
        compressor(noise(2, 1000), 44100, reset=False)
    encoder, decoder = EncodecEncoder(model=model), EncodecDecoder(model=model)
    blocks = [encoder(block, 24000, reset=False) for block in np.split(noise(2, 4800), 2, axis=-1)]
    with pytest.raises(ValueError, match="starts at frame"):
        decoder(blocks[1], 24000, reset=False)
    with pytest.raises(ValueError, match="decode them with reset=True"):
        EncodecDecoder(model=model)(encoder(noise(2, 4800), 24000), 24000, reset=False)
    with pytest.raises(ValueError, match="decode them with reset=False"):
        decoder(blocks[0], 24000)
    with pytest.raises(TypeError, match="only 32-bit and 64-bit floating point"):
        compressor((noise(2, 1000) * 32767).astype(np.int16), 24000, reset=False)
    with pytest.raises(TypeError, match="PacketLoss takes Codes"):
        PacketLoss(0.1)(noise(2, 1000), 24000, reset=False)
    with pytest.raises(ValueError, match="PacketLoss.rate must be a probability"):
        PacketLoss(1.5)(blocks[0], 24000, reset=False)


@pytest.mark.parametrize("size", ["tiny", "full"])
def test_causal_frames_complete_only_at_whole_hops(size):
    """What lets the encoder stream push whole hops only without delaying any frame."""
    model = tiny_model("24khz") if size == "tiny" else EncodecModel(EncodecConfig.encodec_24khz())
    encoder, hop = StreamingLayers(model.encoder.layers), model.config.hop_length
    assert all(encoder.output_length(n) == encoder.output_length(n - n % hop) for n in range(12 * hop))
