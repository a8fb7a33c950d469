"""Side by side with transformers and the original package on random weights: codes identical,
audio within 1e-5, for every bandwidth and awkward lengths."""

from __future__ import annotations

import pytest
import torch

ATOL = 1e-5


def lengths(config) -> dict[str, int]:
    """Lengths that stress padding and chunking."""
    if config.chunk_length is None:
        return {"not_hop_multiple": 24_000 // 2 + 123, "hop_multiple": 320 * 40, "tiny": 5}
    stride, chunk = config.chunk_stride, config.chunk_length
    return {"shorter_than_chunk": 20_000 + 7, "exact_chunk": chunk,
            "chunk_multiple": 2 * stride + (chunk - stride), "three_chunks": 2 * stride + 1_000}


def audio(config, length: int, batch: int = 1, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, config.audio_channels, length, generator=generator)


def original_codes(original, x, bandwidth):
    original.set_target_bandwidth(bandwidth)
    return original.encode(x)


@torch.no_grad()
def test_codes_and_audio_match_both_references(model_trio):
    ours, theirs, original = model_trio
    config = ours.config
    for name, length in lengths(config).items():
        x = audio(config, length)
        for bandwidth in config.target_bandwidths:
            encoded = ours.encode(x, bandwidth=bandwidth)
            reference = theirs.encode(x, bandwidth=bandwidth)
            assert torch.equal(encoded.audio_codes, reference.audio_codes), (name, bandwidth)
            assert encoded.last_frame_pad_length == reference.last_frame_pad_length

            frames = original_codes(original, x, bandwidth)
            assert len(frames) == encoded.audio_codes.shape[0], (name, bandwidth)
            last = encoded.audio_codes.shape[-1] - encoded.last_frame_pad_length
            for index, (codes, scale) in enumerate(frames):
                ours_codes = encoded.audio_codes[index]
                if index == len(frames) - 1:
                    ours_codes = ours_codes[..., :last]
                assert torch.equal(ours_codes, codes), (name, bandwidth, index)
                if scale is not None:
                    assert torch.equal(encoded.audio_scales[index], scale)

            decoded = ours.decode(encoded.audio_codes, encoded.audio_scales,
                                  last_frame_pad_length=encoded.last_frame_pad_length).audio_values
            expected = theirs.decode(reference.audio_codes, reference.audio_scales,
                                     last_frame_pad_length=reference.last_frame_pad_length).audio_values
            assert decoded.shape == expected.shape
            torch.testing.assert_close(decoded, expected, atol=ATOL, rtol=0)
            torch.testing.assert_close(decoded, original.decode(frames), atol=ATOL, rtol=0)


@torch.no_grad()
def test_forward_returns_input_length_and_matches_original(model_trio):
    ours, _, original = model_trio
    config = ours.config
    bandwidth = config.target_bandwidths[-1]
    for length in lengths(config).values():
        x = audio(config, length, seed=2)
        output = ours(x, bandwidth=bandwidth)
        assert output.audio_values.shape == x.shape
        original.set_target_bandwidth(bandwidth)
        torch.testing.assert_close(output.audio_values, original(x), atol=ATOL, rtol=0)


@torch.no_grad()
def test_padded_batch_of_two_matches_transformers(model_trio):
    ours, theirs, _ = model_trio
    config = ours.config
    lengths_ = sorted(lengths(config).values())[-2:]
    x = audio(config, lengths_[1], batch=2, seed=3)
    mask = torch.ones(2, lengths_[1], dtype=torch.long)
    mask[0, lengths_[0]:] = 0
    x[0, :, lengths_[0]:] = 0
    for bandwidth in config.target_bandwidths:
        encoded = ours.encode(x, mask, bandwidth)
        reference = theirs.encode(x, mask, bandwidth)
        assert torch.equal(encoded.audio_codes, reference.audio_codes)
        decoded = ours.decode(encoded.audio_codes, encoded.audio_scales, mask,
                              last_frame_pad_length=encoded.last_frame_pad_length)
        expected = theirs.decode(reference.audio_codes, reference.audio_scales, mask,
                                 last_frame_pad_length=reference.last_frame_pad_length)
        assert decoded[0].shape == x.shape
        torch.testing.assert_close(decoded[0], expected[0], atol=ATOL, rtol=0)
    both = ours(x, mask, config.target_bandwidths[0])
    assert both.audio_values.shape == x.shape


@pytest.mark.parametrize("access", ["index", "key", "attribute"])
@torch.no_grad()
def test_outputs_read_like_transformers(model_trio, access):
    ours = model_trio[0]
    x = audio(ours.config, 3_000)
    encoded = ours.encode(x)
    decoded = ours.decode(encoded.audio_codes, encoded.audio_scales)
    values = {"index": decoded[0], "key": decoded["audio_values"], "attribute": decoded.audio_values}[access]
    assert values is decoded.audio_values
    codes, scales, pad = encoded
    assert codes is encoded["audio_codes"] and scales is encoded[1] and pad == encoded.last_frame_pad_length
    assert ours.encode(x, return_dict=False)[0].shape == codes.shape
