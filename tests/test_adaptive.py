"""lm-adaptive coding: the LM mixed with the segment's own code statistics stays exact (same bits in
every process, thread count and instruction set; rows independent) and codes real speech smaller."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel, pretrained
from encodec_fx.audio_io import read_audio
from entropy.adaptive import LOG_BITS, AdaptiveMixer, fixed_log
from entropy.coding import decode_codes, decode_many, encode_codes, encode_many
from entropy.lm import EntropyLM, LMConfig, load_lm
from entropy.portable_lm import PortableLM

from conftest import peaked, run_probe

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_LM = pretrained.ROOT / DEFAULT_MODEL / pretrained.LM_FILE
RECORDING = ROOT / "tests" / "data" / "speech-nl-fillets.flac"
SCALAR_CPU = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
              "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "MKL_CBWR": "COMPATIBLE"}
AVX2_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


@pytest.fixture(scope="module")
def small_lm() -> EntropyLM:
    torch.manual_seed(2)
    return peaked(EntropyLM(LMConfig(n_q=4, dim=32, num_heads=4, num_layers=2, past_context=16, intra_frame=True)))


def test_fixed_log_is_the_natural_log_in_fixed_point():
    values = np.array([1, 2, 3, 1000, 4095, 4096, 4097, 123_456_789, (1 << 52) + 12345])
    exact = np.array([math.log(int(v)) for v in values]) * (1 << LOG_BITS)
    assert np.abs(fixed_log(values) - exact).max() <= 0.5 + exact.max() * 2.0 ** -11
    assert fixed_log(np.array([1]))[0] == 0 and fixed_log(np.array([2]))[0] == round(math.log(2) * 1024)


def test_a_fresh_mixer_is_the_lm_bit_for_bit(small_lm):
    lm = PortableLM(small_lm)
    frame = lm.next_frame(None, lm.initial_state(2, 4))
    mixer = AdaptiveMixer(2, 4, 1024)
    mixer.start_frame()
    assert np.array_equal(mixer.probabilities(0, frame.logit_steps(0).numpy()), frame.probabilities(0))
    with pytest.raises(ValueError, match="observed after its probabilities"):
        mixer.observe(1, np.zeros(2, np.int64), np.ones(2, bool))


def test_it_learns_what_the_lm_cannot_know(small_lm):
    """Codes that repeat a short pattern the random LM never saw: the counts catch on, the LM cannot."""
    pattern = np.random.default_rng(3).integers(0, 1024, (4, 6))
    codes = np.tile(pattern, 20)  # 120 frames (measured 8 % of the LM's bytes; 4 % over 240)
    lm_bytes = len(encode_codes(codes, "lm", lm=small_lm))
    adaptive = encode_codes(codes, "lm-adaptive", lm=small_lm)
    assert len(adaptive) < 0.5 * lm_bytes, (len(adaptive), lm_bytes)
    assert np.array_equal(decode_codes(adaptive, 4, 120, "lm-adaptive", lm=small_lm), codes)


def test_rows_stay_independent_lost_ones_included(small_lm):
    rng = np.random.default_rng(4)
    rows = [np.tile(rng.integers(0, 1024, (3, 5)), 8)[:, :frames] for frames in (40, 9, 33, 1)]
    payloads = encode_many(rows, "lm-adaptive", lm=small_lm)
    frames = [row.shape[1] for row in rows]
    assert all(np.array_equal(got, row) for got, row in
               zip(decode_many(payloads, 3, frames, "lm-adaptive", lm=small_lm), rows))
    damaged = [payloads[0], None, payloads[2][:6] + bytes([payloads[2][6] ^ 0xFF]) + payloads[2][7:], payloads[3]]
    results = decode_many(damaged, 3, frames, "lm-adaptive", lm=small_lm)
    assert np.array_equal(results[0], rows[0]) and np.array_equal(results[3], rows[3])
    assert all(isinstance(results[i], ValueError) for i in (1, 2))
    assert np.array_equal(decode_codes(payloads[2], 3, 33, "lm-adaptive", lm=small_lm), rows[2])
    assert payloads[2] == encode_codes(rows[2], "lm-adaptive", lm=small_lm)  # alone, the same bytes


PROBE = textwrap.dedent("""
    import hashlib, sys
    import numpy as np, torch
    from entropy.coding import encode_many
    from entropy.lm import load_lm
    from entropy.portable_lm import PortableLM
    torch.set_num_threads(int(sys.argv[2]))
    rng = np.random.default_rng(0)
    rows = [np.tile(rng.integers(0, 1024, (4, 7)), 6) for _ in range(3)]  # 42 frames, repeating
    rows = [np.where(rng.random(row.shape) < 0.3, rng.integers(0, 1024, row.shape), row) for row in rows]
    payloads = encode_many(rows, "lm-adaptive", lm=PortableLM(load_lm(sys.argv[1])))
    print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(b"".join(payloads)).hexdigest())
""")


def probe(environment: dict | None, threads: int = 1) -> tuple[str, str]:
    """(torch's CPU capability, hash of lm-adaptive payloads of three rows): `run_probe` of PROBE."""
    return run_probe(PROBE, environment, str(SHIPPED_LM), str(threads))


def test_payloads_are_the_same_bytes_under_other_instruction_sets_processes_and_threads():
    native_capability, native = probe(None)  # in this process
    scalar_capability, scalar = probe(SCALAR_CPU, threads=2)
    assert scalar_capability == "DEFAULT"  # the setting took effect: the kernels were others
    assert scalar == native, f"{native_capability} and {scalar_capability} kernels disagree"
    assert probe(AVX2_CPU)[1] == native


def test_real_speech_codes_smaller_than_with_the_lm_alone():
    """The saving on a recording the LM never saw, at 1.5 kbps (measured 1.9 %; the validation
    split's figures are in README.md)."""
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    audio = torch.from_numpy(read_audio(RECORDING, 24_000).mean(0, keepdims=True))[None]
    with torch.inference_mode():
        codes = model.encode(audio, bandwidth=1.5).audio_codes[0, 0].numpy().astype(np.int64)
    rows = [codes[:, start:start + 375] for start in range(0, codes.shape[1], 375)]  # compress's 5-s segments
    lm = PortableLM(load_lm(SHIPPED_LM))
    plain = sum(len(payload) for payload in encode_many(rows, "lm", lm=lm))
    payloads = encode_many(rows, "lm-adaptive", lm=lm)
    adaptive = sum(len(payload) for payload in payloads)
    assert adaptive < 0.99 * plain, (adaptive, plain)
    decoded = decode_many(payloads, 2, [row.shape[1] for row in rows], "lm-adaptive", lm=lm)
    assert all(np.array_equal(got, row) for got, row in zip(decoded, rows))
    assert all(isinstance(payload, bytes) for payload in payloads)
