"""Codec augmentation for training (encodec_fx.augment): the batched path equals coding each example alone, damage
is seeded per example and replayable, the loss models have the statistics they claim, and the transforms
follow audiomentations' (tested inside its real Compose) and torch-audiomentations' conventions."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from encodec_fx.augment import (
    Draw,
    EncodecCompression,
    EncodecPacketLoss,
    TorchEncodecCompression,
    TorchEncodecPacketLoss,
    code_batch,
)
from encodec_fx.augment.bandwidths import codebooks_per_frame, draw_schedule
from encodec_fx.augment.errors import drop_codebooks, flip_bits
from encodec_fx.augment.losses import conceal, lost_packets
from encodec_fx.effects import BandwidthSchedule, Chain, EncodecCompressor, EncodecDecoder, EncodecEncoder

from effects_models import noise, tiny_model

TOLERANCE = 1e-5  # the bound; float32 rounding of batched against single convolutions is ~1e-7 here


def batch(examples: int = 4, channels: int = 2, samples: int = 16000, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(noise(examples, channels, samples, seed=seed))


# --- the batched path ------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, kbps, channels, rate", [
    ("24khz", [1.5, 6.0, 24.0, 3.0], 2, 16000),
    ("24khz", [12.0, 1.5, 1.5, 6.0], 1, 24000),
    ("48khz", [3.0, 24.0, 6.0, 12.0], 1, 44100),
    ("48khz", [6.0, 3.0, 24.0, 3.0], 2, 16000),
])
@pytest.mark.parametrize("per_call", [None, 4])
def test_each_example_coded_as_alone_at_its_bandwidth(preset, kbps, channels, rate, per_call):
    model, audio = tiny_model(preset), batch(channels=channels, samples=rate // 2)
    draws = [Draw(bandwidth=b, seed=i) for i, b in enumerate(kbps)]
    out = code_batch(model, audio, rate, draws, per_call=per_call)
    assert out.shape == audio.shape and out.dtype == audio.dtype
    for example, draw, coded in zip(audio, draws, out):
        alone = EncodecCompressor(bandwidth=draw.bandwidth, model=model)(example.numpy(), rate)
        np.testing.assert_allclose(coded.numpy(), alone, atol=TOLERANCE, rtol=0)


def test_bandwidths_differ_per_example():
    """The masks are per example: an example coded at 1.5 kbps is not the one at 24 kbps."""
    model, audio = tiny_model(), batch(examples=2)
    audio[1] = audio[0]
    out = code_batch(model, audio, 16000, [Draw(1.5, 0), Draw(24.0, 0)])
    assert np.abs((out[0] - out[1]).numpy()).max() > 1e-3


def test_switching_schedule_equals_the_bandwidth_schedule_effect():
    model, audio = tiny_model(), batch(examples=1, channels=1, samples=24000)
    schedule = ((0.0, 1.5), (0.4, 6.0), (0.7, 3.0))
    out = code_batch(model, audio, 24000, [Draw(6.0, 0, schedule=schedule)])
    chain = Chain([EncodecEncoder(6.0, model=model), BandwidthSchedule(list(schedule)), EncodecDecoder(model=model)])
    np.testing.assert_allclose(out[0].numpy(), chain(audio[0].numpy(), 24000), atol=TOLERANCE, rtol=0)


def test_lengths_keep_each_example_and_zero_its_padding():
    model, audio = tiny_model(), batch(examples=2, channels=1)
    audio[1, :, 9000:] = 0
    out = code_batch(model, audio, 16000, [Draw(6.0, 0)] * 2, lengths=[16000, 9000])
    assert bool((out[1, :, 9000:] == 0).all()) and float(out[1, :, :9000].abs().max()) > 0
    np.testing.assert_allclose(out[0].numpy(), code_batch(model, audio[:1], 16000, [Draw(6.0, 0)])[0].numpy(),
                               atol=TOLERANCE, rtol=0)


# --- damage: seeded per example, replayable --------------------------------------------------------

def lossy(seed: int = 3, **settings) -> TorchEncodecPacketLoss:
    values = dict(burst_length=(2.0, 4.0), concealment="repeat", bit_error_rate=(0.0, 1e-3), codebook_dropout=0.2,
                  min_bandwidth=1.5, max_bandwidth=24.0, model=tiny_model(), p=1.0, sample_rate=16000, seed=seed)
    return TorchEncodecPacketLoss(0.1, 0.3, **(values | settings))


def test_an_example_replays_alone_from_its_logged_draw():
    transform, audio = lossy(), batch()
    out = transform(audio).samples
    logged = [json.loads(json.dumps(draw.as_dict())) for draw in transform.transform_parameters["draws"]]
    assert len({entry["seed"] for entry in logged}) == 4 and all(0.1 <= e["loss_rate"] <= 0.3 for e in logged)
    for index in (0, 3):  # alone, in another position, after a JSON round trip
        replayed = code_batch(tiny_model(), audio[index:index + 1], 16000, [Draw.from_dict(logged[index])])
        np.testing.assert_allclose(replayed[0].numpy(), out[index].numpy(), atol=TOLERANCE, rtol=0)
    clean = code_batch(tiny_model(), audio, 16000, [Draw(d["bandwidth"], 0) for d in logged])
    assert np.abs((clean - out).numpy()).max() > 1e-3  # the damage did something


def test_a_seed_reproduces_a_run_and_another_seed_does_not():
    audio = batch()
    first, again, other = (lossy(seed).forward(audio).samples for seed in (5, 5, 6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_gilbert_elliott_has_the_rate_and_mean_burst_it_is_given():
    rng, packets = np.random.default_rng(0), 400_000
    for rate, burst in ((0.2, 4.0), (0.05, 1.5), (0.3, None)):
        lost = lost_packets(rng, packets, rate, burst)
        starts = np.flatnonzero(lost[1:] & ~lost[:-1]).size + int(lost[0])
        mean_burst = lost.sum() / starts
        expected = burst if burst is not None else 1 / (1 - rate)  # independent losses: geometric runs
        # bursts of mean b are about packets · rate / b independent runs: the rate's error is ~ sqrt(b / that)
        assert abs(lost.mean() - rate) < 0.01, (rate, burst, lost.mean())
        assert abs(mean_burst - expected) < 0.05 * expected, (rate, burst, mean_burst)


def test_repeat_concealment_repeats_the_last_received_frame():
    tokens = np.arange(6)[None, None, :].repeat(2, axis=1)  # [streams, n_q, frames]
    received = np.ones(tokens.shape, dtype=bool)
    lost = np.array([True, False, True, True, False, True])
    repeated, arrived = conceal(tokens, received, lost, "repeat")
    np.testing.assert_array_equal(repeated[0, 0], [0, 1, 1, 1, 4, 4])
    np.testing.assert_array_equal(arrived[0, 0], [False, True, True, True, True, True])
    _, zeros = conceal(tokens, received, lost, "zeros")
    np.testing.assert_array_equal(zeros[0, 1], ~lost)


def test_bit_errors_flip_bits_at_their_rate():
    rng, tokens = np.random.default_rng(1), np.random.default_rng(2).integers(0, 1024, 200_000)
    flipped = flip_bits(rng, tokens, 0.01, 10)
    bits = np.unpackbits((tokens ^ flipped).astype(">u2").view(np.uint8)).sum()
    assert abs(bits / (tokens.size * 10) - 0.01) < 0.0005  # binomial: sd 2.2e-5 of the rate
    assert flipped.max() < 1024 and flip_bits(rng, tokens, 0.0, 10) is tokens


def test_codebook_dropout_keeps_at_least_one_and_fewer_than_before():
    kept = np.full(10_000, 8)
    dropped = drop_codebooks(np.random.default_rng(0), kept, 0.25)
    assert abs((dropped < 8).mean() - 0.25) < 0.02  # binomial: sd 0.004
    assert dropped.min() == 1 and set(np.unique(dropped)) <= set(range(1, 9))
    np.testing.assert_array_equal(drop_codebooks(np.random.default_rng(0), np.ones(5, int), 1.0), 1)


def test_switching_schedules_cover_the_signal():
    rng = np.random.default_rng(0)
    schedule = draw_schedule(rng, (1.5, 6.0), (0.2, 0.5), 3.0, 6.0)
    times = [time for time, _ in schedule]
    assert times[0] == 0 and times[-1] < 3.0 and all(0.2 <= b - a <= 0.5 for a, b in zip(times, times[1:]))
    kept = codebooks_per_frame(tiny_model().config, 6.0, schedule, np.array([0.0, times[1] - 1e-3, times[1]]))
    assert kept[0] == kept[1] == 8 and kept[2] == tiny_model().config.num_quantizers_for_bandwidth(schedule[1][1])


# --- torch-audiomentations conventions ------------------------------------------------------------

def test_torch_transform_modes_p_eval_and_outputs():
    model, audio = tiny_model(), batch()
    per_batch = TorchEncodecCompression(model=model, mode="per_batch", p=1.0, sample_rate=16000, seed=0)
    per_batch(audio)
    assert len({draw.bandwidth for draw in per_batch.transform_parameters["draws"]}) == 1
    assert list(per_batch.parameters()) == []  # the codec's weights stay out of a training model's parameters
    never = TorchEncodecCompression(model=model, p=0.0, sample_rate=16000, output_type="tensor")
    assert torch.equal(never(audio), audio)
    always = TorchEncodecCompression(model=model, p=1.0, sample_rate=16000, seed=1)
    always.eval()
    assert always(audio).samples is audio
    always.train()
    out = always(audio, sample_rate=16000)
    assert out.sample_rate == 16000 and bool(always.transform_parameters["should_apply"].all())
    always.freeze_parameters()
    assert torch.equal(always(audio).samples, out.samples)
    with pytest.raises(ValueError, match="frozen parameters are for 4 examples, got a batch of 2"):
        always(audio[:2])


def test_torch_transform_pickles_and_draws_the_same():
    transform = lossy(seed=9)
    copy = pickle.loads(pickle.dumps(transform))
    assert torch.equal(copy(batch()).samples, transform(batch()).samples)


# --- audiomentations, for real ---------------------------------------------------------------------

def test_inside_audiomentations_compose():
    audiomentations = pytest.importorskip("audiomentations")  # in the test extra: CI runs it
    codec = EncodecCompression(1.5, 6.0, model=tiny_model(), p=1.0, seed=0)
    loss = EncodecPacketLoss(0.1, 0.2, burst_length=3, concealment="repeat", model=tiny_model(), p=1.0, seed=0)
    chain = audiomentations.Compose([audiomentations.Gain(min_gain_db=-3, max_gain_db=-3, p=1.0), codec, loss])
    for shape in ((8000,), (2, 8000)):
        samples = noise(*shape)
        out = chain(samples, 16000)
        assert out.shape == samples.shape and out.dtype == np.float32 and np.abs(out - samples).max() > 1e-3
        assert codec.parameters["bandwidth"] in (1.5, 3.0, 6.0) and 0.1 <= loss.parameters["loss_rate"] <= 0.2
    chain.freeze_parameters()
    np.testing.assert_array_equal(chain(samples, 16000), chain(samples, 16000))
    assert "EncodecPacketLoss" in repr(chain)


# --- bad parameters and input ---------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda m: EncodecCompression(0.5, 6.0, model=m), r"min_bandwidth must be from 1.5 to 24.0 kbps"),
    (lambda m: EncodecCompression(1.5, 48.0, model=m), r"max_bandwidth must be from 1.5 to 24.0 kbps"),
    (lambda m: EncodecCompression(12.0, 6.0, model=m), r"min_bandwidth \(12.0\) must not exceed"),
    (lambda m: EncodecCompression(4.0, 5.0, model=m), r"no target bandwidth"),
    (lambda m: EncodecCompression(bandwidths=[5.0], model=m), r"bandwidths\[0\] must be one of"),
    (lambda m: EncodecCompression(model=m, p=1.5), r"EncodecCompression.p must be a probability"),
    (lambda m: EncodecCompression(model=m, switch_seconds=0), r"switch_seconds must be positive"),
    (lambda m: EncodecPacketLoss(0.0, 1.2, model=m), r"max_loss_rate must be a probability"),
    (lambda m: EncodecPacketLoss(0.0, 0.6, burst_length=1.0, model=m),
     r"the most is burst_length / \(1 \+ burst_length\) = 0.5"),
    (lambda m: EncodecPacketLoss(burst_length=0.5, model=m), r"burst_length must be a number or a \(min, max\)"),
    (lambda m: EncodecPacketLoss(packet_frames=0, model=m), r"packet_frames must be an integer from 1"),
    (lambda m: EncodecPacketLoss(concealment="silence", model=m), r"concealment must be one of"),
    (lambda m: EncodecPacketLoss(bit_error_rate=0.7, model=m), r"bit_error_rate must be .* from 0.0 to 0.5"),
    (lambda m: EncodecPacketLoss(model=m, seed=-1), r"seed must be None, an integer"),
    (lambda m: TorchEncodecCompression(model=m, mode="per_channel"), r"mode must be one of"),
    (lambda m: TorchEncodecCompression(model=m, output_type="list"), r"output_type must be one of"),
])
def test_bad_settings_are_refused_when_built(make, message):
    with pytest.raises(ValueError, match=message):
        make(tiny_model())


def test_bad_input_is_refused():
    model, transform = tiny_model(), TorchEncodecCompression(model=tiny_model(), p=1.0, sample_rate=16000)
    audio = batch()
    audio[1, 0, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        transform(audio)
    with pytest.raises(ValueError, match=r"examples of 2 lengths \(8000 to 16000 samples\); pad .* lengths="):
        transform([torch.zeros(1, 16000), torch.zeros(1, 8000)])
    with pytest.raises(ValueError, match=r"samples must be a float tensor \(batch, channels, samples\)"):
        transform(torch.zeros(16000))
    with pytest.raises(ValueError, match="sample_rate is required"):
        TorchEncodecCompression(model=model, p=1.0)(batch())
    with pytest.raises(ValueError, match="Draw.bandwidth must be one of the model's target bandwidths"):
        code_batch(model, batch(examples=1), 16000, [Draw(5.0, 0)])
