"""Chunk-by-chunk coding of the 48 kHz model equals coding the whole input, for any block sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.chunked import ChunkedDecoder, ChunkedEncoder

from conftest import randomize


@pytest.fixture(scope="module")
def model() -> EncodecModel:
    return randomize(EncodecModel(EncodecConfig.encodec_48khz(num_filters=4)), seed=7)


def blocks(audio: torch.Tensor, sizes: list[int]):
    start, index = 0, 0
    while start < audio.shape[-1]:
        size = sizes[index % len(sizes)]
        yield audio[..., start: start + size]
        start, index = start + size, index + 1


@pytest.mark.parametrize("length", [480, 20_000, 48_000, 2 * 47_520 + 480, 2 * 47_520 + 1_000])
@pytest.mark.parametrize("sizes", [[48_000], [1_000], [777, 20_000, 5]])
@torch.no_grad()
def test_equals_whole_input(model, length, sizes):
    audio = 0.1 * torch.randn(2, 2, length, generator=torch.Generator().manual_seed(length))
    whole = model.encode(audio, bandwidth=6.0)
    encoder, decoder = ChunkedEncoder(model, 6.0), ChunkedDecoder(model)
    chunks = [chunk for block in blocks(audio, sizes) for chunk in encoder.push(block)] + encoder.flush()
    assert len(chunks) == whole.audio_codes.shape[0]
    for index, (codes, scale) in enumerate(chunks):
        expected = whole.audio_codes[index][..., : codes.shape[-1]]
        assert torch.equal(codes, expected) and torch.equal(scale, whole.audio_scales[index])
    pieces = [decoder.push(codes, scale) for codes, scale in chunks] + [decoder.flush()]
    decoded = model.decode(whole.audio_codes, whole.audio_scales,
                           last_frame_pad_length=whole.last_frame_pad_length).audio_values
    assert torch.equal(torch.cat(pieces, dim=-1), decoded)


def test_foreign_numpy_blocks_code_like_native_ones_and_bad_samples_are_refused_at_once(model):
    audio = (0.1 * torch.randn(1, 2, 50_000, generator=torch.Generator().manual_seed(3))).numpy()
    encoder = ChunkedEncoder(model, 6.0)
    native = encoder.push(audio) + encoder.flush()
    for foreign in (audio.astype(">f4"), np.ascontiguousarray(audio[..., ::-1])[..., ::-1]):  # torch refused both
        coded = encoder.push(foreign) + encoder.flush()
        assert all(torch.equal(a[0], b[0]) for a, b in zip(coded, native)) and len(coded) == len(native)
    for bad, message in [(np.zeros((1, 2, 10), np.int16), "has dtype torch.int16"),  # accepted until a chunk
                         (np.full((1, 2, 10), np.nan, np.float32), "contains NaN or infinite")]:
        with pytest.raises(ValueError, match="audio block " + message):
            encoder.push(bad)


def test_unchunked_model_is_refused():
    model = EncodecModel(EncodecConfig(num_filters=4))
    with pytest.raises(ValueError, match="needs a chunked model"):
        ChunkedEncoder(model, 1.5)
    with pytest.raises(ValueError, match="needs a chunked model"):
        ChunkedDecoder(model)


def test_encode_chunk_refuses_more_than_a_chunk(model):
    with pytest.raises(ValueError, match="a chunk has at most 48000 samples, got 48001"):
        model.encode_chunk(torch.zeros(1, 2, 48_001), 6.0)


def test_bad_blocks_and_chunks_are_refused(model):
    with pytest.raises(ValueError, match=r"bandwidth 5.0 kbps is not supported"):  # before any chunk is complete
        ChunkedEncoder(model, 5.0)
    encoder = ChunkedEncoder(model, 6.0)
    with pytest.raises(ValueError, match=r"audio block is list; expected a tensor or array \(batch, 2, samples\)"):
        encoder.push([0.0] * 10)
    encoder.push(torch.zeros(1, 2, 10).numpy())  # numpy blocks are taken: two used to fail in torch.cat
    encoder.push(torch.zeros(1, 2, 10).numpy())
    with pytest.raises(ValueError, match=r"audio block has batch 2, but this stream has batch 1; call reset\(\)"):
        encoder.push(torch.zeros(2, 2, 10))
    (codes, scale), = encoder.flush()

    decoder = ChunkedDecoder(model)
    assert decoder.flush().shape == (0, 2, 0)  # shaped as StreamingDecoder's
    with pytest.raises(ValueError, match=r"needs the audio_scales"):  # was decoded unscaled
        decoder.push(codes, None)
    decoder.push(codes, scale)
    with pytest.raises(ValueError, match=r"chunk of shape \(2, 2, 48000\) after chunks of \(1, 2\)"):
        decoder.add(torch.zeros(2, 2, 48_000))
