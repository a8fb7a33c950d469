"""Streaming encoder and decoder against the offline path, on a small causal model with random weights:
identical codes and audio within 1e-5 for any block sizes, stream lengths, bandwidths and batches."""

from __future__ import annotations

import random

import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel, StreamingDecoder, StreamingEncoder, round_trip_latency

from conftest import randomize

ATOL = 1e-5
LENGTH = 2_987  # ten frames, the last one partial: past the start-up of seven frames


@pytest.fixture(scope="module")
def model() -> EncodecModel:
    return randomize(EncodecModel(EncodecConfig.encodec_24khz(num_filters=4)))


def audio(length: int, batch: int = 1, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, 1, length, generator=generator)


def random_sizes(total: int, seed: int, largest: int) -> list[int]:
    rng = random.Random(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.randint(1, largest))
    return sizes


def blocks(x: torch.Tensor, sizes: int | list[int]) -> list[torch.Tensor]:
    """x cut along time into blocks of the given size(s); the last block may be shorter."""
    if isinstance(sizes, int):
        sizes = [sizes] * -(-x.shape[-1] // sizes)
    bounds = [0]
    for size in sizes:
        bounds.append(min(bounds[-1] + size, x.shape[-1]))
    return [x[..., start:end] for start, end in zip(bounds, bounds[1:])]


def stream(streamer: StreamingEncoder | StreamingDecoder, pieces: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([streamer.push(piece) for piece in pieces] + [streamer.flush()], dim=-1)


def offline(model: EncodecModel, x: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        codes = model.encode(x, bandwidth=bandwidth).audio_codes
        return codes[0], model.decode(codes).audio_values


BLOCK_SIZES = {"1": 1, "7": 7, "100": 100, "320": 320, "333": 333, "1000": 1000,
               "varying": random_sizes(LENGTH, seed=0, largest=700), "whole": LENGTH}


@pytest.mark.parametrize("batch", [1, 2])
@torch.no_grad()
def test_quantizing_time_major_frames_gives_the_offline_codes(model, batch):
    """The streaming encoder quantises a contiguous time-major copy (fast for a few frames); the
    offline path quantises the references' transposed view. Same codes at every length."""
    generator = torch.Generator().manual_seed(batch)
    quantizer = model.quantizer
    for frames in range(1, 21):
        embeddings = torch.randn(batch, model.config.hidden_size, frames, generator=generator)
        expected = quantizer.encode(embeddings, 8)
        assert torch.equal(quantizer.encode_frames(embeddings.transpose(1, 2).contiguous(), 8), expected), frames


@pytest.mark.parametrize("sizes", BLOCK_SIZES.values(), ids=BLOCK_SIZES.keys())
def test_encoder_codes_equal_offline_for_any_block_sizes(model, sizes):
    x = audio(LENGTH)
    codes, _ = offline(model, x, 6.0)
    assert torch.equal(stream(StreamingEncoder(model, 6.0), blocks(x, sizes)), codes)


FRAME_BLOCKS = {"1": 1, "2": 2, "7": 7, "varying": random_sizes(10, seed=0, largest=4), "whole": 10}


@pytest.mark.parametrize("sizes", FRAME_BLOCKS.values(), ids=FRAME_BLOCKS.keys())
def test_decoder_audio_equals_offline_for_any_block_sizes(model, sizes):
    codes, expected = offline(model, audio(LENGTH), 6.0)
    decoded = stream(StreamingDecoder(model), blocks(codes, sizes))
    assert decoded.shape == expected.shape
    torch.testing.assert_close(decoded, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("bandwidth", [1.5, 24.0])
@pytest.mark.parametrize("batch", [1, 2])
def test_bandwidths_and_batches(model, bandwidth, batch):
    x = audio(LENGTH, batch)
    codes, expected = offline(model, x, bandwidth)
    assert codes.shape[:2] == (batch, model.config.num_quantizers_for_bandwidth(bandwidth))
    streamed = stream(StreamingEncoder(model, bandwidth), blocks(x, 333))
    assert torch.equal(streamed, codes)
    torch.testing.assert_close(stream(StreamingDecoder(model), blocks(streamed, 3)), expected, atol=ATOL, rtol=0)


OTHER_CAUSAL_CONFIGS = {
    "dilated": dict(num_residual_layers=3),
    "stereo": dict(audio_channels=2),
    "odd_shapes": dict(upsampling_ratios=[4, 3], kernel_size=5, last_kernel_size=3, residual_kernel_size=5,
                       compress=1, use_conv_shortcut=False, num_lstm_layers=1),
}


@pytest.mark.parametrize("overrides", OTHER_CAUSAL_CONFIGS.values(), ids=OTHER_CAUSAL_CONFIGS.keys())
def test_other_causal_configurations(overrides):
    other = randomize(EncodecModel(EncodecConfig.encodec_24khz(num_filters=4, **overrides)))
    x = 0.1 * torch.randn(2, other.config.audio_channels, 1_234, generator=torch.Generator().manual_seed(3))
    codes, expected = offline(other, x, 24.0)
    for size in (13, 500):
        streamed = stream(StreamingEncoder(other, 24.0), blocks(x, size))
        assert torch.equal(streamed, codes), size
        torch.testing.assert_close(stream(StreamingDecoder(other), blocks(streamed, 2)), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("length", [1, 5, 319, 320, 321, 2239, 2240, 2241])
@pytest.mark.parametrize("size", [3, 64, 4000])
def test_stream_lengths_at_the_start_and_end_edges(model, length, size):
    """Streams too short for a convolution to start are computed as the offline path does at flush."""
    x = audio(length)
    codes, expected = offline(model, x, 6.0)
    assert torch.equal(stream(StreamingEncoder(model, 6.0), blocks(x, size)), codes)
    torch.testing.assert_close(stream(StreamingDecoder(model), blocks(codes, 1)), expected, atol=ATOL, rtol=0)


def test_decoder_needs_no_lookahead_once_started(model):
    """Frame t gives its audio as soon as it is in, except that the first audio waits for the first
    convolution's left padding: kernel_size frames."""
    codes, _ = offline(model, audio(LENGTH), 6.0)
    decoder, hop, startup = StreamingDecoder(model), model.config.hop_length, model.config.kernel_size
    lengths = [decoder.push(codes[..., t: t + 1]).shape[-1] for t in range(codes.shape[-1])]
    assert lengths == [0] * (startup - 1) + [startup * hop] + [hop] * (codes.shape[-1] - startup)


def test_round_trip_latency_is_the_worst_lag_of_a_sample_by_sample_stream(model):
    x = audio(LENGTH)
    encoder, decoder = StreamingEncoder(model, 6.0), StreamingDecoder(model)
    outputs, lags, produced = [], [], 0
    for index, sample in enumerate(blocks(x, 1)):
        outputs.append(decoder.push(encoder.push(sample)))
        produced += outputs[-1].shape[-1]  # the samples out so far, kept as a running sum
        lags.append(index + 1 - produced)
    outputs += [decoder.push(encoder.flush()), decoder.flush()]
    latency = round_trip_latency(model)
    assert max(lags) == latency == 7 * 320 - 1
    assert max(lags[latency + 1:]) == model.config.hop_length - 1  # once running: a frame at most
    _, expected = offline(model, x, 6.0)
    torch.testing.assert_close(torch.cat(outputs, dim=-1), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("frames_per_step", [2, 3])
def test_round_trip_latency_of_a_stream_coded_a_step_at_a_time(model, frames_per_step):
    """Input pushed only in whole steps of `frames_per_step` hops: the lag grows to a step at most
    once running, and the start waits for the step that completes the first output."""
    x, step = audio(3 * LENGTH), frames_per_step * model.config.hop_length
    encoder, decoder = StreamingEncoder(model, 6.0), StreamingDecoder(model)
    outputs, lags = [], []
    for index in range(x.shape[-1]):
        if (index + 1) % step == 0:
            outputs.append(decoder.push(encoder.push(x[..., index + 1 - step: index + 1])))
        lags.append(index + 1 - sum(out.shape[-1] for out in outputs))
    latency = round_trip_latency(model, frames_per_step)
    assert max(lags) == latency == -(-7 // frames_per_step) * step - 1
    assert max(lags[latency + 1:]) == step - 1
    with pytest.raises(ValueError, match="frames_per_step must be a positive integer"):
        round_trip_latency(model, 0)


def test_flush_and_reset_start_a_new_stream(model):
    x = audio(LENGTH)
    codes, expected = offline(model, x, 6.0)
    encoder, decoder = StreamingEncoder(model, 6.0), StreamingDecoder(model)
    encoder.push(audio(1_000, seed=2))
    decoder.push(codes[..., :8])
    encoder.reset()
    decoder.reset()
    for _ in range(2):  # flush ends a stream and starts the next
        assert torch.equal(stream(encoder, blocks(x, 500)), codes)
        torch.testing.assert_close(stream(decoder, blocks(codes, 4)), expected, atol=ATOL, rtol=0)


def test_decoder_takes_a_different_number_of_codebooks_per_block(model):
    codes, _ = offline(model, audio(LENGTH), 24.0)
    first, second = codes[:, :, :5], codes[:, :2, 5:]
    with torch.no_grad():
        embeddings = torch.cat([model.quantizer.decode(first), model.quantizer.decode(second)], dim=-1)
        expected = model.decoder(embeddings)
    torch.testing.assert_close(stream(StreamingDecoder(model), [first, second]), expected, atol=ATOL, rtol=0)


def test_empty_streams_and_blocks(model):
    encoder, decoder = StreamingEncoder(model, 6.0), StreamingDecoder(model)
    assert encoder.flush().shape == (0, 8, 0)
    assert decoder.flush().shape == (0, 1, 0)
    assert encoder.push(audio(0)).shape == (1, 8, 0)
    assert encoder.flush().shape == (1, 8, 0)
    assert decoder.push(torch.zeros(1, 8, 0, dtype=torch.long)).shape == (1, 1, 0)
    assert decoder.flush().shape == (1, 1, 0)


@pytest.mark.parametrize("config", [
    EncodecConfig.encodec_48khz(num_filters=4),
    EncodecConfig.encodec_24khz(num_filters=4, chunk_length_s=1.0, overlap=0.01),
    EncodecConfig.encodec_24khz(num_filters=4, normalize=True),
    EncodecConfig.encodec_24khz(num_filters=4, norm_type="time_group_norm"),
], ids=["48khz_non_causal", "chunked", "normalised", "group_norm"])
def test_models_that_need_the_whole_input_are_rejected(config):
    model = EncodecModel(config)
    for make in (lambda: StreamingEncoder(model, config.target_bandwidths[0]), lambda: StreamingDecoder(model),
                 lambda: round_trip_latency(model)):
        with pytest.raises(ValueError, match="streaming needs"):
            make()


def test_bad_blocks_are_rejected(model):
    encoder, decoder = StreamingEncoder(model, 6.0), StreamingDecoder(model)
    with pytest.raises(ValueError, match="expected a tensor"):
        encoder.push(torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="dtype"):
        encoder.push(torch.zeros(1, 1, 10, dtype=torch.int16))
    encoder.push(audio(10))
    with pytest.raises(ValueError, match="batch"):
        encoder.push(audio(10, batch=2))
    with pytest.raises(ValueError, match="integer tensor"):
        decoder.push(torch.zeros(1, 8, 3))
    with pytest.raises(ValueError, match="indices"):
        decoder.push(torch.full((1, 8, 3), 1024))
    with pytest.raises(ValueError, match="bandwidth"):
        StreamingEncoder(model, 5.0)
    with pytest.raises(ValueError, match=r"codes block is empty \(shape \(0, 8, 3\)\)"):  # a reshape error
        decoder.push(torch.zeros(0, 8, 3, dtype=torch.long))
    decoded = decoder.push(torch.ones(1, 8, 3, dtype=torch.int16))  # any integer type: was an embedding error
    assert decoded.shape[:2] == (1, 1)


@pytest.fixture
def one_thread():
    """One thread, as streaming is meant to run: with several, a long random-weight input meets a
    near-tie between two codewords that the split of the work across threads can flip."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_long_input_coded_in_pieces_equals_coding_it_whole(model, one_thread):
    """A minute of audio pushed a second at a time (as `encodec-fx compress` reads files), decoded in
    blocks of 75 frames: the state carried across pieces stays exact over a long stream."""
    x = audio(60 * 24_000 + 123, seed=5)
    codes, expected = offline(model, x, 6.0)
    streamed = stream(StreamingEncoder(model, 6.0), blocks(x, 24_000))
    assert torch.equal(streamed, codes)
    torch.testing.assert_close(stream(StreamingDecoder(model), blocks(streamed, 75)), expected, atol=ATOL, rtol=0)
