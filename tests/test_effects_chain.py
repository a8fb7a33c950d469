"""Chain: native pedalboard plugins and our effects in one list, checked and run as by hand."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest

from encodec_fx.effects import Chain, CodebookTruncation, EncodecCompressor, EncodecDecoder, EncodecEncoder, PacketLoss
from encodec_fx.effects.chain import native_segments

from effects_models import noise, tiny_model

RATE = 44100


@pytest.fixture(scope="module")
def model():
    return tiny_model("24khz")


def test_mixed_chain_equals_running_the_pieces_by_hand(model):
    highpass, gain, compressor, limiter = (pedalboard.HighpassFilter(200), pedalboard.Gain(6),
                                           EncodecCompressor(3.0, model=model), pedalboard.Limiter())
    audio = noise(2, 8820, seed=1)
    expected = limiter(compressor(pedalboard.Pedalboard([highpass, gain])(audio, RATE), RATE), RATE)
    np.testing.assert_array_equal(Chain([highpass, gain, compressor, limiter])(audio, RATE), expected)


def test_chain_through_codes_equals_running_the_pieces_by_hand(model):
    stages = [pedalboard.HighpassFilter(100), EncodecEncoder(6.0, model=model), CodebookTruncation(4),
              PacketLoss(0.2, packet_frames=2, seed=3), EncodecDecoder(model=model), pedalboard.Gain(-3)]
    audio = noise(8820, 2, seed=2, dtype=np.float64)
    signal = audio
    for stage in stages:
        signal = stage(signal, RATE)
    output = Chain(stages)(audio, RATE)
    assert output.shape == audio.shape and output.dtype == np.float32
    np.testing.assert_array_equal(output, signal)


def test_consecutive_native_plugins_form_one_native_segment(model):
    compressor = EncodecCompressor(6.0, model=model)
    stages = [pedalboard.Gain(1), pedalboard.Reverb(), compressor, pedalboard.Gain(2)]
    segments = native_segments(stages)
    assert [type(s) for s in segments] == [pedalboard.Pedalboard, EncodecCompressor, pedalboard.Pedalboard]
    assert list(segments[0]) == stages[:2] and list(segments[2]) == stages[3:]


def test_native_containers_and_chains_nest(model):
    inner = Chain([EncodecEncoder(6.0, model=model), CodebookTruncation(2)])
    mix = pedalboard.Mix([pedalboard.Gain(0), pedalboard.Gain(-6)])
    stages = [pedalboard.Pedalboard([pedalboard.Gain(1)]), pedalboard.Chain([pedalboard.Gain(-1)]), mix,
              inner, EncodecDecoder(model=model)]
    chain = Chain(stages)
    assert (chain.input_kind, chain.output_kind) == ("audio", "audio")
    assert (inner.input_kind, inner.output_kind) == ("audio", "codes")
    audio = noise(4410, seed=3)
    expected = stages[4](inner(pedalboard.Pedalboard(stages[:3])(audio, RATE), RATE), RATE)
    np.testing.assert_array_equal(chain(audio, RATE), expected)
    outer = Chain([pedalboard.Gain(2), chain])
    np.testing.assert_array_equal(outer(audio, RATE), chain(pedalboard.Gain(2)(audio, RATE), RATE))


def test_chain_may_start_from_codes(model):
    codes = EncodecEncoder(6.0, model=model)(noise(4410), RATE)
    chain = Chain([CodebookTruncation(2), EncodecDecoder(model=model), pedalboard.Gain(3)])
    assert chain.input_kind == "codes"
    expected = pedalboard.Gain(3)(EncodecDecoder(model=model)(CodebookTruncation(2)(codes, RATE), RATE), RATE)
    np.testing.assert_array_equal(chain(codes, RATE), expected)
    with pytest.raises(TypeError, match="starts on codes"):
        chain(noise(4410), RATE)


def test_empty_chain_passes_audio_through_as_float32():
    audio = noise(4410, 2, dtype=np.float64)
    output = Chain()(audio, RATE)
    assert output.dtype == np.float32 and output.shape == audio.shape
    np.testing.assert_array_equal(output, audio.astype(np.float32))
    assert Chain().input_kind is None


# --- flow checks -------------------------------------------------------------------------------

def test_audio_stage_after_codes_is_refused_with_its_index_and_name(model):
    with pytest.raises(ValueError, match=r"stage 2 \(Gain\) takes audio, but stage 1 \(EncodecEncoder\) "
                                         r"gives codes: put an EncodecDecoder between them"):
        Chain([pedalboard.Gain(1), EncodecEncoder(model=model), pedalboard.Gain(2)])


def test_codes_stage_after_audio_is_refused(model):
    with pytest.raises(ValueError, match=r"stage 1 \(CodebookTruncation\) takes codes, .*EncodecEncoder"):
        Chain([pedalboard.Gain(1), CodebookTruncation(2)])
    with pytest.raises(ValueError, match=r"stage 1 \(EncodecDecoder\) takes codes"):
        Chain([EncodecCompressor(model=model), EncodecDecoder(model=model)])


def test_non_stages_are_refused_with_their_index():
    with pytest.raises(TypeError, match=r"stage 1 \(str\)"):
        Chain([pedalboard.Gain(1), "reverb"])


def test_refused_changes_leave_the_chain_as_it_was(model):
    gain, encoder, decoder = pedalboard.Gain(1), EncodecEncoder(model=model), EncodecDecoder(model=model)
    chain = Chain([gain, pedalboard.Gain(2)])
    before = list(chain)
    with pytest.raises(ValueError, match=r"stage 2 \(Gain\)"):
        chain.insert(1, encoder)
    with pytest.raises(ValueError, match=r"stage 1 \(CodebookTruncation\)"):
        chain[1] = CodebookTruncation(2)
    assert list(chain) == before
    chain[1:1] = [encoder, decoder]
    assert list(chain) == [gain, encoder, decoder, before[1]]
    with pytest.raises(ValueError, match=r"stage 2 \(Gain\)"):
        chain.remove(decoder)
    assert len(chain) == 4


def test_an_effect_object_is_used_once_in_a_chain(model):
    """Chain([compressor, compressor]) streamed garbage (0.09 off the batch result) without a word."""
    compressor = EncodecCompressor(6.0, model=model)
    for stages in ([compressor, compressor], [compressor, Chain([compressor])]):
        with pytest.raises(ValueError, match=r"EncodecCompressor object .* appears twice in the chain: .* "
                                             r"use a second instance"):
            Chain(stages)
    chain = Chain([compressor])
    with pytest.raises(ValueError, match="appears twice"):
        chain.append(compressor)
    assert list(chain) == [compressor]
    Chain([compressor, EncodecCompressor(6.0, model=model)])  # two instances sharing a model are fine


def test_a_chain_cannot_contain_itself(model):
    chain = Chain([pedalboard.Gain(0)])
    with pytest.raises(ValueError, match="a Chain cannot contain itself"):  # a RecursionError when run
        chain.append(chain)
    with pytest.raises(ValueError, match="a Chain cannot contain itself"):
        chain.insert(0, Chain([Chain([chain])]))
    assert len(chain) == 1
    with pytest.raises(ValueError, match="sample_rate must be a whole number of Hz from 1000 to 768000"):
        chain.latency_at(0)


def test_list_protocol(model):
    gain, highpass, compressor = pedalboard.Gain(1), pedalboard.HighpassFilter(), EncodecCompressor(model=model)
    chain = Chain([gain])
    chain.append(compressor)
    chain.insert(0, highpass)
    assert len(chain) == 3 and list(chain) == [highpass, gain, compressor]
    assert chain[0] is highpass and chain[-1] is compressor and chain[1:] == [gain, compressor]
    assert chain.index(compressor) == 2 and gain in chain
    chain.remove(gain)
    chain[0] = pedalboard.Gain(2)
    assert [type(stage) for stage in chain] == [pedalboard.Gain, EncodecCompressor]
    del chain[0]
    assert list(chain) == [compressor]


def test_a_nested_chain_changed_after_nesting_is_checked_when_run(model):
    inner = Chain([EncodecEncoder(model=model), EncodecDecoder(model=model)])
    outer = Chain([inner, pedalboard.Gain(1)])
    del inner[1]
    with pytest.raises(ValueError, match=r"stage 1 \(Gain\) takes audio, but stage 0 \(Chain\) gives codes"):
        outer(noise(4410), RATE)


def test_chain_follows_the_effect_protocol(model):
    chain = Chain([pedalboard.Gain(1), EncodecCompressor(model=model)])
    audio = noise(4410)
    with pytest.raises(TypeError, match="only 32-bit and 64-bit floating point"):
        chain(np.zeros(4410, dtype=np.int16), RATE)
    with pytest.raises(ValueError, match="buffer_size"):
        chain(audio, RATE, buffer_size=0)
    chain.reset()
    np.testing.assert_array_equal(chain.process(audio, RATE, buffer_size=512), chain(audio, RATE, 512))
