"""Token-domain effects do what they say, reproducibly, and refuse bad parameters clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from encodec_fx.effects import (
    BandwidthSchedule,
    CodebookTruncation,
    EncodecDecoder,
    EncodecEncoder,
    PacketLoss,
    TokenSubstitution,
)

from effects_models import noise, tiny_model


def encode(preset: str = "24khz", bandwidth: float = 6.0, samples: int = 24000, rate: int = 24000):
    return EncodecEncoder(bandwidth, model=tiny_model(preset))(noise(samples, seed=7), rate)


def decode(codes, preset: str = "24khz", rate: int = 24000) -> np.ndarray:
    return EncodecDecoder(model=tiny_model(preset))(codes, rate)


# --- CodebookTruncation ------------------------------------------------------------------------

def test_truncation_to_two_codebooks_is_encoding_at_1_5_kbps():
    truncated = CodebookTruncation(2)(encode(bandwidth=6.0), 24000)
    direct = encode(bandwidth=1.5)
    np.testing.assert_array_equal(truncated.audio_codes, direct.audio_codes)
    assert truncated.bandwidth == 1.5
    np.testing.assert_array_equal(decode(truncated), decode(direct))


@pytest.mark.parametrize("bad", [0, 2.5, "2", True])
def test_truncation_refuses_impossible_counts_when_made(bad):
    with pytest.raises(ValueError, match=r"CodebookTruncation.num_codebooks must be an integer of at least 1"):
        CodebookTruncation(bad)


@pytest.mark.parametrize("bad", [0, 9, 2.5, "2", True])
def test_truncation_refuses_impossible_counts_when_used(bad):
    effect = CodebookTruncation(2)
    effect.num_codebooks = bad
    with pytest.raises(ValueError, match=r"CodebookTruncation.num_codebooks .*from 1 to 8"):
        effect(encode(), 24000)


# --- TokenSubstitution -------------------------------------------------------------------------

def test_zero_substitution_rate_is_identity():
    codes = encode()
    same = TokenSubstitution(rate=0.0, seed=1)(codes, 24000)
    np.testing.assert_array_equal(same.audio_codes, codes.audio_codes)
    np.testing.assert_array_equal(decode(same), decode(codes))


def test_substitution_changes_about_rate_times_tokens_reproducibly():
    codes = encode(samples=48000)
    effect = TokenSubstitution(rate=0.1, seed=3)
    damaged = effect(codes, 24000)
    changed = damaged.audio_codes != codes.audio_codes
    total = codes.audio_codes.size
    assert abs(changed.sum() - 0.1 * total) < 5 * np.sqrt(total * 0.1 * 0.9)
    assert damaged.audio_codes.min() >= 0 and damaged.audio_codes.max() < codes.config.codebook_size
    np.testing.assert_array_equal(effect(codes, 24000).audio_codes, damaged.audio_codes)
    effect.seed = 4
    assert (effect(codes, 24000).audio_codes != damaged.audio_codes).any()
    assert not np.allclose(decode(damaged), decode(codes))


def test_substitution_without_seed_differs_between_calls():
    codes = encode()
    effect = TokenSubstitution(rate=0.5)
    assert (effect(codes, 24000).audio_codes != effect(codes, 24000).audio_codes).any()


@pytest.mark.parametrize("name, value, message", [
    ("rate", -0.1, "TokenSubstitution.rate .*0.0 to 1.0"),
    ("rate", 1.5, "TokenSubstitution.rate .*0.0 to 1.0"),
    ("rate", "0.1", "TokenSubstitution.rate"),
    ("seed", -1, r"TokenSubstitution.seed must be None or an integer from 0 to 2\*\*64 - 1"),
    ("seed", 2 ** 64, r"TokenSubstitution.seed .*2\*\*64 - 1"),  # numpy's OverflowError
    ("seed", 1.5, "TokenSubstitution.seed"),
])
def test_substitution_refuses_bad_parameters(name, value, message):
    with pytest.raises(ValueError, match=message):
        TokenSubstitution(**{"rate": 0.1, "seed": 0, name: value})
    effect = TokenSubstitution(rate=0.1, seed=0)
    setattr(effect, name, value)  # parameters are plain attributes: checked again when used
    with pytest.raises(ValueError, match=message):
        effect(encode(), 24000)


# --- PacketLoss --------------------------------------------------------------------------------

@pytest.mark.parametrize("concealment", ["zeros", "repeat"])
def test_zero_loss_rate_is_identity(concealment):
    codes = encode()
    same = PacketLoss(rate=0.0, packet_frames=3, concealment=concealment, seed=0)(codes, 24000)
    np.testing.assert_array_equal(same.audio_codes, codes.audio_codes)
    assert same.received.all()
    np.testing.assert_array_equal(decode(same), decode(codes))


def test_lost_packets_are_whole_frames_and_reproducible():
    codes = encode(samples=48000)
    effect = PacketLoss(rate=0.3, packet_frames=4, concealment="zeros", seed=5)
    lossy = effect(codes, 24000)
    lost_frames = ~lossy.on_timeline(lossy.received)[0, 0]
    assert (~lossy.on_timeline(lossy.received) == lost_frames).all()  # every codebook and stream alike
    packets = lost_frames[: lost_frames.size // 4 * 4].reshape(-1, 4)
    assert (packets.all(axis=1) | ~packets.any(axis=1)).all()  # whole packets
    assert 0 < lost_frames.mean() < 0.6
    np.testing.assert_array_equal(effect(codes, 24000).received, lossy.received)
    np.testing.assert_array_equal(lossy.audio_codes, codes.audio_codes)
    assert not np.allclose(decode(lossy), decode(codes))


def test_repeat_concealment_repeats_the_last_received_frame():
    codes = encode(samples=48000)
    lossy = PacketLoss(rate=0.4, packet_frames=2, concealment="repeat", seed=6)(codes, 24000)
    zeros = PacketLoss(rate=0.4, packet_frames=2, concealment="zeros", seed=6)(codes, 24000)
    lost = ~zeros.on_timeline(zeros.received)[0, 0]
    original, repeated = codes.on_timeline(codes.audio_codes), lossy.on_timeline(lossy.audio_codes)
    last = -1
    for frame, is_lost in enumerate(lost):
        if not is_lost:
            last = frame
            np.testing.assert_array_equal(repeated[..., frame], original[..., frame])
        elif last >= 0:
            np.testing.assert_array_equal(repeated[..., frame], original[..., last])
        else:
            assert not lossy.on_timeline(lossy.received)[..., frame].any()


def test_total_loss_decodes_to_the_zero_latent():
    lossy = PacketLoss(rate=1.0, concealment="zeros")(encode(), 24000)
    assert not lossy.received.any()
    audio = decode(lossy)
    assert audio.shape == (24000,) and np.isfinite(audio).all()


@pytest.mark.parametrize("name, value, message", [
    ("rate", 2.0, "PacketLoss.rate"),
    ("packet_frames", 0, "PacketLoss.packet_frames .*from 1 to"),
    ("packet_frames", 2 ** 70, "PacketLoss.packet_frames .*from 1 to 2147483647"),  # numpy's OverflowError
    ("concealment", "noise", r"PacketLoss.concealment .*\('zeros', 'repeat'\)"),
    ("seed", "abc", "PacketLoss.seed"),
])
def test_packet_loss_refuses_bad_parameters(name, value, message):
    with pytest.raises(ValueError, match=message):
        PacketLoss(**{"rate": 0.1, "seed": 0, name: value})
    effect = PacketLoss(rate=0.1, seed=0)
    setattr(effect, name, value)  # parameters are plain attributes: checked again when used
    with pytest.raises(ValueError, match=message):
        effect(encode(), 24000)


def test_chunked_timeline_round_trips_and_runs_in_time_order():
    codes = encode("48khz", samples=100000, rate=48000)
    assert codes.audio_codes.shape[0] == 3 and codes.last_frame_pad_length > 0
    again = codes.with_timeline(codes.on_timeline(codes.audio_codes), codes.on_timeline(codes.received))
    np.testing.assert_array_equal(codes.on_timeline(again.audio_codes), codes.on_timeline(codes.audio_codes))
    assert codes.on_timeline(codes.received).shape[-1] == codes.num_frames
    times = codes.frame_times()
    assert times.shape == (codes.num_frames,) and times[0] == 0 and times[-1] < 100000 / 48000
    lossy = PacketLoss(rate=0.5, packet_frames=10, seed=1)(codes, 48000)
    assert decode(lossy, "48khz", 48000).shape == (100000,)


# --- BandwidthSchedule -------------------------------------------------------------------------

def test_constant_schedule_is_truncation():
    codes = encode()
    scheduled = BandwidthSchedule([(0.0, 1.5)])(codes, 24000)
    np.testing.assert_allclose(decode(scheduled), decode(CodebookTruncation(2)(codes, 24000)), atol=1e-5)


def test_schedule_switches_bandwidth_at_its_breakpoints():
    codes = encode(samples=48000)
    scheduled = BandwidthSchedule([(0.0, 6.0), (0.5, 1.5), (1.2, 3.0)])(codes, 24000)
    kept = scheduled.on_timeline(scheduled.received)[0].sum(axis=0)
    times = codes.frame_times()
    expected = np.where(times < 0.5, 8, np.where(times < 1.2, 2, 4))
    np.testing.assert_array_equal(kept, expected)


BAD_SCHEDULES = [
    ([], "non-empty"),
    ([(1.0, 1.5), (0.5, 3.0)], "increasing"),
    ([(-1.0, 1.5)], "non-negative"),
    ([(0.0, 6.0), (float("nan"), 1.5)], "non-negative"),  # never switched, silently
    ((0.0, 1.5), "pairs"),
]


@pytest.mark.parametrize("schedule, message", BAD_SCHEDULES)
def test_schedule_refuses_bad_schedules_when_made(schedule, message):
    with pytest.raises(ValueError, match=f"BandwidthSchedule.schedule must be .*{message}"):
        BandwidthSchedule(schedule)


@pytest.mark.parametrize("schedule, message", BAD_SCHEDULES + [
    ([(0.0, 5.0)], r"has 5.0 kbps, but the codes' model takes kbps in \[1.5, 3.0, 6.0, 12.0, 24.0\]"),
    ([(0.0, 12.0)], "encode at 12.0 kbps or more"),
])
def test_schedule_refuses_bad_schedules_when_used(schedule, message):
    effect = BandwidthSchedule([(0.0, 1.5)])
    effect.schedule = schedule
    with pytest.raises(ValueError, match=f"BandwidthSchedule.schedule.*{message}"):
        effect(encode(), 24000)


def test_token_effects_refuse_audio():
    with pytest.raises(TypeError, match="Codes"):
        CodebookTruncation(2)(noise(2400), 24000)


def test_codes_refuse_inconsistent_contents():
    codes = encode()
    with pytest.raises(ValueError, match="indices from"):
        dataclasses.replace(codes, audio_codes=codes.audio_codes + codes.config.codebook_size)
    with pytest.raises(ValueError, match="received must be a bool array"):
        dataclasses.replace(codes, received=codes.received[:, :, :2])
    with pytest.raises(ValueError, match="integer numpy array"):
        dataclasses.replace(codes, audio_codes=codes.audio_codes.astype(np.float32))
