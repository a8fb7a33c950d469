"""The fast inference path against the reference modules: codes identical, audio within 1e-5, and it
follows weight changes and leaves training alone."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.conv import pad1d
from encodec_fx.fast_path import FastPath
from encodec_fx.kernels import few_output_conv, interleave_phases, pad_into, polyphase_weights, tap_weights

from conftest import PRESETS, randomize, summation_order_tolerance

ATOL = 1e-5


def audio(config: EncodecConfig, seconds: float, batch: int = 1, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, config.audio_channels, int(seconds * config.sampling_rate) + 7,
                             generator=generator)


def coded(model: EncodecModel, x: torch.Tensor, bandwidth: float, fast: bool):
    model.fast = fast
    encoded = model.encode(x, bandwidth=bandwidth)
    decoded = model.decode(encoded.audio_codes, encoded.audio_scales,
                           last_frame_pad_length=encoded.last_frame_pad_length).audio_values
    return encoded, decoded


@pytest.fixture(scope="module", params=sorted(PRESETS))
def full_model(request) -> EncodecModel:
    return randomize(EncodecModel(PRESETS[request.param]()), seed=3)


@torch.no_grad()
def test_fast_equals_plain_at_every_bandwidth(full_model):
    config = full_model.config
    x = audio(config, 2.0)  # 48 kHz: three chunks, the last one short
    for bandwidth in config.target_bandwidths:
        fast, fast_audio = coded(full_model, x, bandwidth, fast=True)
        plain, plain_audio = coded(full_model, x, bandwidth, fast=False)
        assert torch.equal(fast.audio_codes, plain.audio_codes), bandwidth
        for fast_scale, plain_scale in zip(fast.audio_scales, plain.audio_scales):
            assert fast_scale is plain_scale is None or torch.equal(fast_scale, plain_scale)
        torch.testing.assert_close(fast_audio, plain_audio, atol=ATOL, rtol=0)


@pytest.mark.parametrize("threads", [1, 2])
@torch.no_grad()
def test_fast_encoder_is_bit_exact_whatever_the_thread_count(full_model, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = audio(full_model.config, 0.5, batch=2, seed=threads) / 0.1  # louder: more ELUs saturate
        fast = FastPath(full_model)
        assert torch.equal(fast.encode(x), full_model.encoder(x))
        embeddings = full_model.encoder(x[..., :4_007])
        torch.testing.assert_close(fast.decode(embeddings), full_model.decoder(embeddings), atol=ATOL, rtol=0)
    finally:
        torch.set_num_threads(before)


@pytest.fixture()
def small_model() -> EncodecModel:
    return randomize(EncodecModel(EncodecConfig.encodec_24khz(num_filters=4)), seed=1)


@torch.no_grad()
def test_input_is_left_untouched(small_model):
    x = audio(small_model.config, 0.2)
    kept = x.clone()
    small_model.encode(x)
    assert torch.equal(x, kept)


@torch.no_grad()
def test_weights_loaded_after_a_fast_call_are_used(small_model):
    x = audio(small_model.config, 0.3)
    before = coded(small_model, x, 6.0, fast=True)[1]
    small_model.load_state_dict(randomize(EncodecModel(small_model.config), seed=2).state_dict())
    after, after_audio = coded(small_model, x, 6.0, fast=True)
    reference, reference_audio = coded(small_model, x, 6.0, fast=False)
    assert not torch.allclose(before, after_audio)
    assert torch.equal(after.audio_codes, reference.audio_codes)
    torch.testing.assert_close(after_audio, reference_audio, atol=ATOL, rtol=0)

    small_model.decoder.layers[-1].conv.bias.add_(1.0)  # an in-place edit is seen too
    shifted = coded(small_model, x, 6.0, fast=True)[1]
    torch.testing.assert_close(shifted, after_audio + 1.0, atol=ATOL, rtol=0)


def test_a_model_made_under_inference_mode_codes_and_sees_edits():
    """Inference tensors have no version counter: such a model must still code, and see writes."""
    with torch.inference_mode():
        model = randomize(EncodecModel(EncodecConfig.encodec_24khz(num_filters=4)), seed=4)
        x = audio(model.config, 0.3)
        fast, fast_audio = coded(model, x, 6.0, fast=True)
        plain, plain_audio = coded(model, x, 6.0, fast=False)
        assert torch.equal(fast.audio_codes, plain.audio_codes)
        torch.testing.assert_close(fast_audio, plain_audio, atol=ATOL, rtol=0)

        model.decoder.layers[-1].conv.bias.add_(1.0)
        model.quantizer.layers[0].codebook.embed.mul_(-1.0)
        edited, edited_audio = coded(model, x, 6.0, fast=True)
        reference, reference_audio = coded(model, x, 6.0, fast=False)
        assert not torch.equal(edited.audio_codes, fast.audio_codes)
        assert torch.equal(edited.audio_codes, reference.audio_codes)
        torch.testing.assert_close(edited_audio, reference_audio, atol=ATOL, rtol=0)


def test_training_with_autograd_takes_the_reference_path(small_model):
    x = audio(small_model.config, 0.2)
    with torch.no_grad():
        small_model(x)  # compiles the fast path
    small_model.train()
    optimizer = torch.optim.SGD(small_model.parameters(), lr=0.1)
    loss = small_model.decoder(small_model.encoder(x)).pow(2).mean() + small_model(x).audio_values.pow(2).mean()
    loss.backward()
    for name, parameter in [*small_model.encoder.named_parameters(), *small_model.decoder.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    optimizer.step()

    small_model.eval()
    fast = small_model(x).audio_values
    assert fast.grad_fn is None  # evaluation: fast path, no graph
    small_model.fast = False
    torch.testing.assert_close(fast, small_model(x).audio_values, atol=ATOL, rtol=0)  # trained weights


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_padding_into_a_buffer(mode):
    x = torch.randn(2, 3, 50)
    out = torch.empty(2, 3, 50 + 4 + 3)
    assert torch.equal(pad_into(out, x, 4, 3, mode), pad1d(x, 4, 3, mode))
    torch.testing.assert_close(pad_into(out, x, 4, 3, mode, elu_alpha=1.0), pad1d(F.elu(x), 4, 3, mode))


@pytest.mark.parametrize("stride", [2, 5])
def test_polyphase_transposed_convolution(stride):
    x, weight, bias = torch.randn(2, 6, 11), torch.randn(6, 4, 2 * stride), torch.randn(4)
    phase_weight, phase_bias = polyphase_weights(weight, bias, stride)
    y = interleave_phases(F.conv1d(F.pad(x, (1, 1)), phase_weight, phase_bias), stride)
    torch.testing.assert_close(y, F.conv_transpose1d(x, weight, bias, stride), atol=1e-5, rtol=0)


def test_few_output_convolution():
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*shape, generator=generator) for shape in ((2, 16, 40), (2, 16, 7), (2,)))
    y = few_output_conv(x, tap_weights(weight), bias, dilation=2)
    # the two sum 16 × 7 products per output in different orders; rounding scales with the sum of their sizes
    scale = F.conv1d(x.abs(), weight.abs(), bias.abs(), dilation=2).max().item()
    tolerance = summation_order_tolerance(scale, reduction=16 * 7, layers=1, compared=y.numel())
    torch.testing.assert_close(y, F.conv1d(x, weight, bias, dilation=2), atol=tolerance, rtol=0)


def test_chunks_are_batched_in_runs_of_equal_shape():
    from encodec_fx.model import batches_of_equal_chunks
    full, short = torch.zeros(1, 8, 150, dtype=torch.long), torch.zeros(1, 8, 40, dtype=torch.long)
    scale = torch.ones(1, 1)
    pieces = [(full, scale)] * 5 + [(short, scale)]
    batches = batches_of_equal_chunks(pieces, 4)
    assert [len(batch) for batch in batches] == [4, 1, 1]
    assert batches[-1][0][0] is short
    assert [len(batch) for batch in batches_of_equal_chunks([(full, None), (full, scale)], 4)] == [1, 1]
