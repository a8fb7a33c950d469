"""Chain parameters are checked when the chain is parsed, in one line naming the parameter, its value and what is
accepted: what pedalboard lets through to arithmetic that blows up (a negative cutoff, a filter above the Nyquist
frequency, 1000 dB of gain, a resampler asked for 1 GHz), and impulse responses that are not regular audio files
(a FIFO would block forever, a non-audio file passed as silence)."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pedalboard
import pytest

from encodec_fx.audio_io import write_audio
from encodec_fx.effects.files import process_file
from encodec_fx.effects.ranges import RANGES
from encodec_fx.effects.spec import parse_chain


@pytest.mark.parametrize("spec, message", [
    ("highpass(cutoff_frequency_hz=-1)", r"cutoff_frequency_hz=-1 is out of range; accepted: a number above 0 to "
                                         r"192000 Hz$"),
    ("highpass(0)", r"cutoff_frequency_hz=0 is out of range"),
    ("lowpass(1e6)", r"cutoff_frequency_hz=1e\+06 is out of range"),
    ("ladder(cutoff_hz=-5)", r"cutoff_hz=-5 is out of range"),
    ("peak(cutoff_frequency_hz=1000, gain_db=200)", r"gain_db=200 is out of range; accepted: a number from -120 to "
                                                    r"60 dB$"),
    ("gain(1000)", r"gain_db=1000 is out of range"),
    ("gain(gain_db=1e400)", r"gain_db=inf is out of range"),
    ("resample(target_sample_rate=1e9)", r"target_sample_rate=1e\+09 is out of range; accepted: a number from 1000 "
                                         r"to 384000 Hz$"),
    ("resample(target_sample_rate=10)", r"target_sample_rate=10 is out of range"),
    ("phaser(feedback=2)", r"feedback=2 is out of range; accepted: a number from -0.99 to 0.99$"),
    ("phaser(centre_frequency_hz=-1)", r"centre_frequency_hz=-1 is out of range"),
    ("compressor(attack_ms=-1)", r"attack_ms=-1 is out of range; accepted: a number from 0 to 10000 ms$"),
    ("bitcrush(bit_depth=0)", r"bit_depth=0 is out of range; accepted: a number from 1 to 32 bits$"),
    ("chorus(depth=5)", r"depth=5 is out of range; accepted: a number from 0 to 1$"),
])
def test_out_of_range_parameters_are_refused_when_parsed(spec, message):
    with pytest.raises(ValueError, match=rf"^stage 1 \({spec.replace('(', '[(]').replace(')', '[)]')}\): {message}"):
        parse_chain(f"gain(1) | {spec}")


def test_sane_values_at_the_edges_are_accepted():
    chain = parse_chain("highpass(20) | lowpass(192000) | gain(-120) | gain(60) | resample(target_sample_rate=1000) "
                        "| resample(target_sample_rate=384000) | phaser(feedback=-0.99) | compressor(attack_ms=0)")
    assert len(chain) == 8


def test_every_range_names_a_real_parameter():
    """A range for a parameter pedalboard does not have would silently check nothing."""
    for name, ranges in RANGES.items():
        plugin = getattr(pedalboard, name)
        for parameter in ranges:
            assert isinstance(getattr(plugin, parameter), property), f"{name}.{parameter}"


def test_a_filter_at_or_above_the_nyquist_frequency_is_refused_before_any_output(tmp_path):
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    write_audio(source, np.full((1, 4410), 0.3, np.float32), 44_100)
    for chain in (parse_chain("lowpass(30000)"), pedalboard.LowpassFilter(cutoff_frequency_hz=22_050)):
        with pytest.raises(ValueError, match=r"^stage 0 \(LowpassFilter\): cutoff_frequency_hz=\d+ is not below the "
                                             r"Nyquist frequency of this 44100 Hz audio; accepted: a frequency below "
                                             r"22050 Hz$"):
            process_file(source, out, chain)
    with pytest.raises(ValueError, match=r"^stage 0 \(Gain\): gain_db=1000 is out of range"):  # built in Python
        process_file(source, out, pedalboard.Gain(gain_db=1000))
    assert sorted(os.listdir(tmp_path)) == ["in.wav"]
    process_file(source, out, parse_chain("lowpass(22000)"))  # just below: the filter is sound there
    assert out.exists()


def parse_in_time(spec: str, seconds: float = 20.0) -> BaseException | None:
    """parse_chain's error, failing the test (not hanging it) if the parse blocks."""
    outcome: list[BaseException | None] = []

    def parse() -> None:
        try:
            parse_chain(spec)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)
    thread = threading.Thread(target=parse, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"parsing {spec!r} blocked for {seconds} s"
    return outcome[0]


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs are POSIX")
def test_impulse_responses_must_be_regular_audio_files(tmp_path):
    fifo, junk, ir = tmp_path / "fifo.wav", tmp_path / "junk.wav", tmp_path / "ir.wav"
    os.mkfifo(fifo)
    junk.write_bytes(b"this is not audio" * 100)
    write_audio(ir, np.r_[1.0, np.zeros(99)].astype(np.float32)[None], 44_100)
    cases = {f"convolution(impulse_response_filename='{fifo}')": f"impulse_response_filename='{fifo}' is not a "
                                                                  "regular file; accepted: an audio file",
             f"convolution('{junk}')": f"impulse_response_filename='{junk}' does not read as audio; accepted: an "
                                       "audio file",
             f"convolution('{tmp_path / 'missing.wav'}')": "cannot be read (No such file or directory)",
             f"convolution('{tmp_path}')": "is not a regular file",
             f"convolution('{ir}', mix=2)": "mix=2 is out of range; accepted: a number from 0 to 1"}
    for spec, message in cases.items():
        error = parse_in_time(spec)
        assert isinstance(error, ValueError) and message in str(error) and "\n" not in str(error), (spec, error)
    assert parse_in_time(f"convolution('{ir}')") is None
