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


def references_at_every_bandwidth(theirs, original, x, mask=None):
    """{bandwidth: (transformers' codes, scales and last-frame padding, the original's frames)} as each reference's
    encode at that bandwidth gives them, from one encode of each at the top bandwidth: a residual quantizer's codes
    at a lower bandwidth are the first rows of these, bit for bit (the encoder does not depend on the bandwidth,
    and codebook k quantizes what the first k - 1 left), and the rows are the ones each reference's own rule takes
    (`get_num_quantizers_for_bandwidth`). The encoders run on every input once instead of once per bandwidth."""
    config = theirs.config
    top = theirs.encode(x, mask, config.target_bandwidths[-1])
    frames = original_codes(original, x, config.target_bandwidths[-1]) if original is not None else None
    references = {}
    for bandwidth in config.target_bandwidths:
        n_q = theirs.quantizer.get_num_quantizers_for_bandwidth(bandwidth)
        prefix = None if frames is None else \
            [(codes[:, :original.quantizer.get_num_quantizers_for_bandwidth(original.frame_rate, bandwidth)], scale)
             for codes, scale in frames]
        references[bandwidth] = (top.audio_codes[:, :, :n_q], top.audio_scales, top.last_frame_pad_length, prefix)
    return references


@torch.no_grad()
def test_codes_and_audio_match_both_references(model_trio):
    ours, theirs, original = model_trio
    config = ours.config
    for name, length in lengths(config).items():
        x = audio(config, length)
        references = references_at_every_bandwidth(theirs, original, x)
        for bandwidth in config.target_bandwidths:
            encoded = ours.encode(x, bandwidth=bandwidth)
            reference_codes, reference_scales, reference_pad, frames = references[bandwidth]
            assert torch.equal(encoded.audio_codes, reference_codes), (name, bandwidth)
            assert encoded.last_frame_pad_length == reference_pad

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
            expected = theirs.decode(reference_codes, reference_scales,
                                     last_frame_pad_length=reference_pad).audio_values
            assert decoded.shape == expected.shape
            torch.testing.assert_close(decoded, expected, atol=ATOL, rtol=0)
            torch.testing.assert_close(decoded, original.decode(frames), atol=ATOL, rtol=0)


def same(a, b) -> bool:
    """Tensors equal, or both None."""
    return a is None and b is None or a is not None and b is not None and torch.equal(a, b)


@torch.no_grad()
def test_the_references_codes_at_a_lower_bandwidth_are_the_first_rows_of_their_top_bandwidths(model_trio):
    """What `references_at_every_bandwidth` builds on: each reference's own encode at every bandwidth, alone and in
    a padded batch of two (transformers'). The rows a bandwidth takes are the quantizer's business, not the
    length's: a short input does."""
    _, theirs, original = model_trio
    config = theirs.config
    length = 3_001
    x = audio(config, length, batch=2, seed=4)
    mask = torch.ones(2, length, dtype=torch.long)
    mask[0, length // 2:] = 0
    x[0, :, length // 2:] = 0
    for inputs, masks, reference_original in ((x[1:], None, original), (x, mask, None)):
        references = references_at_every_bandwidth(theirs, reference_original, inputs, masks)
        for bandwidth in config.target_bandwidths:
            codes, scales, pad, frames = references[bandwidth]
            direct = theirs.encode(inputs, masks, bandwidth)
            assert torch.equal(codes, direct.audio_codes) and pad == direct.last_frame_pad_length, bandwidth
            assert len(scales) == len(direct.audio_scales) and all(map(same, scales, direct.audio_scales))
            if reference_original is not None:
                direct_frames = original_codes(original, inputs, bandwidth)
                assert len(frames) == len(direct_frames), bandwidth
                for (prefix, scale), (direct_codes, direct_scale) in zip(frames, direct_frames):
                    assert torch.equal(prefix, direct_codes) and same(scale, direct_scale), bandwidth


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
    references = references_at_every_bandwidth(theirs, None, x, mask)
    for bandwidth in config.target_bandwidths:
        encoded = ours.encode(x, mask, bandwidth)
        reference_codes, reference_scales, reference_pad, _ = references[bandwidth]
        assert torch.equal(encoded.audio_codes, reference_codes)
        decoded = ours.decode(encoded.audio_codes, encoded.audio_scales, mask,
                              last_frame_pad_length=encoded.last_frame_pad_length)
        expected = theirs.decode(reference_codes, reference_scales, mask, last_frame_pad_length=reference_pad)
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
