"""PortableLM: the LM's coding arithmetic gives the same bits on every CPU and stays the float LM's
model (what lets an LM archive decode on another machine)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel, pretrained
from encodec_fx.audio_io import read_audio
from encodec_fx.cli import main
from entropy.archive import ArchiveReader
from entropy.lm import EntropyLM, LMConfig, load_lm
from entropy.portable_lm import (
    ACTIVATION_LEVELS,
    EXACT_FLOAT32,
    WEIGHT_LEVELS,
    IntegerLinear,
    PortableLM,
    exp_table,
    int8_products_are_exact,
    normal_cdf_table,
    sin_cos,
)

from conftest import peaked, run_probe, sample_codes

SHIPPED_LM = pretrained.ROOT / DEFAULT_MODEL / pretrained.LM_FILE
RECORDING = Path(__file__).resolve().parent / "data" / "speech-nl-fillets.flac"

# Other instruction sets on this very CPU: torch's scalar kernels with oneDNN and MKL held to SSE4,
# and everything held to AVX2 (whose int8 kernels saturate on wider operands than PortableLM's).
SCALAR_CPU = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
              "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "MKL_CBWR": "COMPATIBLE"}
AVX2_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


@pytest.fixture(scope="module")
def shipped_lm() -> EntropyLM:
    return load_lm(SHIPPED_LM)


def run_steps(lm: PortableLM | EntropyLM, codes: np.ndarray) -> np.ndarray:
    """Probabilities [T, B, K, card] of every frame of codes [B, K, T] (float32)."""
    batch, num_codebooks, length = codes.shape
    state, previous, steps = lm.initial_state(batch, num_codebooks), None, []
    for t in range(length):
        if isinstance(lm, PortableLM):
            steps.append(lm.step(previous, state, codes[:, :, t]))
        else:
            steps.append(lm.step(None if previous is None else torch.from_numpy(previous), state,
                                 torch.from_numpy(codes[:, :, t]))[0].numpy())
        previous = codes[:, :, t]
    return np.stack(steps)


def bits_per_token(probabilities: np.ndarray, codes: np.ndarray) -> float:
    chosen = np.take_along_axis(probabilities.astype(np.float64), codes.transpose(2, 0, 1)[..., None], -1)
    return float(-np.log2(chosen).mean())


def test_shipped_lm_codes_real_codes_as_well_as_in_float(shipped_lm):
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    audio = torch.from_numpy(read_audio(RECORDING, 24_000))[None]
    with torch.inference_mode():
        codes = model.encode(audio, bandwidth=6.0).audio_codes[0, 0].numpy()  # [8, 300]
    codes = codes[:, :300].reshape(8, 2, 150).transpose(1, 0, 2).copy()  # two rows of 150 frames
    portable = bits_per_token(run_steps(PortableLM(shipped_lm), codes), codes)
    reference = bits_per_token(run_steps(shipped_lm, codes), codes)
    assert reference < 9.0  # the trained LM predicts these codes: the comparison means something
    assert abs(portable / reference - 1) < 1e-3, (portable, reference)


PROBE = textwrap.dedent("""
    import hashlib, sys
    import numpy as np, torch
    from entropy.lm import load_lm
    from entropy.portable_lm import PortableLM
    torch.set_num_threads(int(sys.argv[2]))
    lm = PortableLM(load_lm(sys.argv[1]))
    codes = np.random.default_rng(0).integers(0, 1024, (3, 8, 40))
    state, previous, digest = lm.initial_state(3, 8), None, hashlib.sha256()
    for t in range(codes.shape[-1]):
        digest.update(lm.step(previous, state, codes[:, :, t]).tobytes())
        previous = codes[:, :, t]
    print(torch.backends.cpu.get_cpu_capability(), digest.hexdigest())
""")


def probe(environment: dict | None, threads: int = 1) -> tuple[str, str]:
    """(torch's CPU capability, hash of 40 frames of probabilities): `run_probe` of PROBE."""
    return run_probe(PROBE, environment, str(SHIPPED_LM), str(threads))


# The probe, then the command line decompressing an archive with the process's own thread count, in one process
# with scalar kernels (a start of Python and torch, and a load of the LM, fewer): the probe's two words on the
# first line, the command's status on the last.
SCALAR_PROBE_AND_DECOMPRESS = "import torch\nown_threads = torch.get_num_threads()\n" + PROBE + """
torch.set_num_threads(own_threads)
from encodec_fx.cli import main
print(main(["decompress", sys.argv[3], sys.argv[4]]))
"""


@pytest.fixture(scope="module")
def scalar_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """The recording compressed in this process (native kernels), then SCALAR_PROBE_AND_DECOMPRESS run under
    SCALAR_CPU with two threads: (the run, the archive, the decompressed file)."""
    folder = tmp_path_factory.mktemp("scalar")
    archive, decoded = folder / "speech.ecfx", folder / "speech.wav"
    assert main(["compress", str(RECORDING), str(archive), "-b", "6"]) == 0
    run = subprocess.run([sys.executable, "-c", SCALAR_PROBE_AND_DECOMPRESS, str(SHIPPED_LM), "2", str(archive),
                          str(decoded)], capture_output=True, text=True, env={**os.environ, **SCALAR_CPU},
                         cwd=Path(__file__).resolve().parents[1])
    return run, archive, decoded


def test_probabilities_are_the_same_bits_under_other_instruction_sets_and_threads(scalar_run):
    native_capability, native = probe(None)  # in this process
    run, _, _ = scalar_run
    assert run.stdout, run.stderr
    scalar_capability, scalar = run.stdout.splitlines()[0].split()  # SCALAR_CPU, two threads
    assert scalar_capability == "DEFAULT"  # the setting took effect: the kernels were others
    assert scalar == native, f"{native_capability} and {scalar_capability} kernels disagree"
    assert probe(AVX2_CPU)[1] == native


def test_a_row_gets_the_same_bits_alone_and_in_any_batch(shipped_lm):
    lm = PortableLM(shipped_lm)
    codes = np.random.default_rng(1).integers(0, 1024, (3, 4, 30))
    together = run_steps(lm, codes)
    assert np.array_equal(run_steps(lm, codes[1:2])[:, 0], together[:, 1])
    assert np.array_equal(run_steps(lm, codes[::-1].copy())[:, 2], together[:, 0])


@pytest.mark.parametrize("intra_frame", [False, True])
def test_a_small_lm_matches_its_float_self(intra_frame):
    torch.manual_seed(0)
    lm = peaked(EntropyLM(LMConfig(n_q=4, dim=32, num_heads=4, num_layers=2, past_context=10,
                                   intra_frame=intra_frame)))
    codes = sample_codes(PortableLM(lm), 2, 4, 25, seed=2)  # longer than past_context
    portable, reference = run_steps(PortableLM(lm), codes), run_steps(lm, codes)
    # measured +0.24 % and +0.6 %: 7-bit heads round these artificially large logits harder than a
    # trained LM's
    assert abs(bits_per_token(portable, codes) / bits_per_token(reference, codes) - 1) < 1e-2


def test_integer_products_are_exact_in_both_kernels():
    generator = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(300, 800, generator=generator), torch.randn(300, generator=generator)
    x = torch.cat([torch.randn(5, 1, 800, generator=generator), torch.ones(1, 1, 800), -torch.ones(1, 1, 800)])
    in_float, in_int8 = IntegerLinear(weight, bias, int8=False), IntegerLinear(weight, bias, int8=True)
    assert WEIGHT_LEVELS * ACTIVATION_LEVELS * 800 < EXACT_FLOAT32  # no partial sum can round
    rows = torch.round(x / x.abs().amax(-1, keepdim=True) * ACTIVATION_LEVELS)
    exact = rows.double() @ in_float.weight.double()  # float64 holds these sums exactly
    assert torch.equal((rows @ in_float.weight).double(), exact)
    if int8_products_are_exact():  # checked at run time: only then does PortableLM use int8 kernels
        assert torch.equal(in_int8(x), in_float(x))
    reference = torch.nn.functional.linear(x, weight, bias)
    assert (in_float(x) - reference).std() < 0.03 * reference.std()  # 7-bit rounding, still the layer


def test_tables_hold_the_functions_they_stand_for():
    table = exp_table(24)
    assert table[0] == 1 << 24 and table[-1] >= 1
    steps = torch.arange(len(table), dtype=torch.float64)
    assert (table.double() - torch.exp(-steps / 64) * 2 ** 24).abs().max() <= 0.5 + 1e-6
    cdf = normal_cdf_table().double()
    x = torch.linspace(-6, 6, len(cdf), dtype=torch.float64)
    assert (cdf - 0.5 * (1 + torch.special.erf(x / math.sqrt(2)))).abs().max() < 2e-6
    phase = torch.linspace(0, 3000, 10001, dtype=torch.float64)
    sine, cosine = sin_cos(phase)
    assert (sine - torch.sin(phase)).abs().max() < 1e-12 and (cosine - torch.cos(phase)).abs().max() < 1e-12


def test_bad_codes_are_refused(shipped_lm):
    lm = PortableLM(shipped_lm)
    state = lm.initial_state(1, 4)
    with pytest.raises(ValueError, match=r"shape \[1, 4\]"):
        lm.next_frame(np.zeros((1, 5), np.int64), state)
    with pytest.raises(ValueError, match="lie in 0..1023"):
        lm.next_frame(np.full((1, 4), 1024), state)
    with pytest.raises(ValueError, match="n_codebooks"):
        lm.initial_state(1, 33)


def test_an_intra_frame_lm_reads_a_frame_codebook_by_codebook():
    lm = PortableLM(EntropyLM(LMConfig(n_q=3, dim=16, num_heads=2, num_layers=1, past_context=4,
                                       intra_frame=True)).eval())
    frame = lm.next_frame(None, lm.initial_state(1, 3))
    frame.probabilities(0)
    with pytest.raises(ValueError, match="codebooks 0..0 observed first"):
        frame.probabilities(1)
    with pytest.raises(ValueError, match="expected 0, got 1"):
        frame.observe(1, np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="lie in 0..1023"):
        frame.observe(0, np.full(1, 1024))
    frame.observe(0, np.zeros(1, np.int64))
    assert frame.probabilities(1).shape == (1, 1024)
    with pytest.raises(ValueError, match="needs the frame's codes"):
        lm.step(None, lm.initial_state(1, 3))


def test_an_archive_written_with_native_kernels_decodes_with_scalar_ones(scalar_run):
    run, archive, decoded = scalar_run  # compressed in this process (native kernels), decompressed with scalar ones
    with ArchiveReader(archive) as reader:
        assert reader.header["coding_mode"] == "lm"  # the LM wins on speech: its probabilities are what is tested
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == "0", run.stderr
    assert read_audio(decoded, 24_000).shape == read_audio(RECORDING, 24_000).shape


def test_a_caller_asking_for_bfloat16_products_gets_the_same_bits_and_keeps_the_setting(shipped_lm):
    codes = np.random.default_rng(4).integers(0, 1024, (2, 8, 12))
    reference = run_steps(PortableLM(shipped_lm), codes)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # oneDNN: bfloat16 products
    try:
        assert np.array_equal(run_steps(PortableLM(shipped_lm), codes), reference)
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    finally:
        torch.set_float32_matmul_precision(precision)


def test_int8_and_float32_products_give_the_same_probabilities(shipped_lm, monkeypatch):
    codes = np.random.default_rng(5).integers(0, 1024, (3, 8, 20))
    automatic = run_steps(PortableLM(shipped_lm), codes)  # int8 kernels where checked exact
    monkeypatch.setattr("entropy.portable_lm.int8_products_are_exact", lambda: False)
    assert np.array_equal(run_steps(PortableLM(shipped_lm), codes), automatic)


def test_moving_the_window_to_the_front_keeps_every_cached_frame():
    lm = PortableLM(EntropyLM(LMConfig(n_q=2, dim=16, num_heads=2, num_layers=1, past_context=4)).eval())
    state = lm.initial_state(1, 2)
    for buffer in state.buffers():
        buffer.copy_(torch.arange(buffer.numel(), dtype=buffer.dtype).view(buffer.shape))
    state.start, state.end = 5, state.keys[0].shape[2]  # the window fills the buffers' end
    cached = state.keys + state.values + state.key_steps
    windows = [buffer[:, :, state.start:state.end].clone() for buffer in cached]
    state.make_room()
    assert (state.start, state.end) == (0, windows[0].shape[2])
    for buffer, window in zip(cached, windows):
        assert torch.equal(buffer[:, :, state.start:state.end], window)
