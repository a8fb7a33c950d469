"""Shared helpers: the reference implementations, built with random weights.

`PRESETS`, `import_original_encodec`, `randomize` and `original_model` live in benchmarks/common.py,
which the benchmark scripts use too; tests import them from here (`from conftest import randomize`).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from unittest import mock

# Under pytest-xdist each worker gets its share of the cores, and so do the commands it starts: torch's
# default (a thread per core in every worker) oversubscribes the CPU, and spinning OpenMP threads made
# the suite several times slower on a 2-core machine.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _share = max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))

import numpy as np  # noqa: E402  (after the thread share, which torch reads when it loads)
import pytest  # noqa: E402
import torch  # noqa: E402

from encodec_fx import EncodecConfig, EncodecModel
from entropy.lm import EntropyLM, LMConfig, save_lm

_BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
sys.path.insert(0, _BENCHMARKS)  # only while importing: benchmarks/ holds generic names (common, effects, ...)
try:
    from common import PRESETS, import_original_encodec, original_model, randomize
finally:
    sys.path.remove(_BENCHMARKS)

__all__ = ["PRESETS", "import_original_encodec", "original_model", "randomize",  # what tests import from here
           "transformers_model", "model_trio", "sample_codes", "peaked", "Trickle",
           "summation_order_tolerance", "probability_tolerance", "small_filesystem_works", "save_tiny_codecs_and_lm",
           "run_probe", "ctrl_c_reaches", "held_ray_turn"]


def ctrl_c_reaches() -> None:
    """`preexec_fn` of a child the test will Ctrl-C: a shell's background job (`pytest ... &`) starts with SIGINT
    ignored, every child inherits that, and Python leaves an ignored SIGINT ignored, so the signal would never
    arrive. The child gets the default disposition back, as a terminal's foreground process has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def held_ray_turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The machine's one Ray turn, held until the block ends (see `ray_turn`); a fixture of a wider scope
    that keeps one cluster for several tests holds it for as long as its cluster lives."""
    if sys.platform == "win32":
        yield
        return
    import fcntl
    with open(tmp_path_factory.getbasetemp().parent / "ray-turn.lock", "w") as lock:  # shared by the workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def ray_turn(tmp_path_factory: pytest.TempPathFactory):
    """One Ray cluster on the machine at a time, across the test workers: a CI run lost a pytest worker
    (no traceback: a Ray driver exits with its raylet) while it and a docs block started clusters at the same
    moment. Every test that starts a cluster, in this process or in a command it runs, holds this turn."""
    with held_ray_turn(tmp_path_factory):
        yield


@pytest.fixture(autouse=True)
def effects_decode_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The effects' machinery (streaming = batch, resampling, token effects) is tested bit for bit, so effects
    decode at "exact" here; tests/test_precision.py tests their default precision (`encodec_fx.precision`)."""
    monkeypatch.setattr("encodec_fx.precision.EFFECT_DEFAULT", "exact")


def summation_order_tolerance(magnitude: float, reduction: int, layers: int, compared: int) -> float:
    """How far two float32 computations of the same values may differ when only the order of their
    sums differs (batched against stepwise, one CPU kernel against another).

    Each rounding error is at most half an ulp of the running sum; over a sum of `reduction` terms they
    add like a random walk, about sqrt(reduction) * eps * magnitude, and the layers' errors add up.
    The largest of `compared` such near-Gaussian differences lies about sqrt(2 ln compared) standard
    deviations out. Nothing here depends on the CPU: the bound follows from the arithmetic alone."""
    epsilon = torch.finfo(torch.float32).eps
    return magnitude * epsilon * math.sqrt(reduction) * layers * math.sqrt(2 * math.log(max(compared, 2)))


def probability_tolerance(logits: torch.Tensor, reduction: int, layers: int) -> float:
    """`summation_order_tolerance` carried through a softmax: a change dz in the logits moves each
    probability by p·(dz_i − Σ p_j dz_j), at most half of max |dz|."""
    return 0.5 * summation_order_tolerance(logits.abs().max().item(), reduction, layers, logits.numel())


class Trickle(io.RawIOBase):
    """A non-seekable stream (a pipe, a socket) that hands out at most `per_read` bytes per read."""

    def __init__(self, data: bytes, per_read: int) -> None:
        self._data, self._per_read = io.BytesIO(data), per_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self._data.read(min(self._per_read, len(buffer)))
        buffer[:len(piece)] = piece
        return len(piece)


def transformers_model(ours: EncodecModel):
    """transformers' EncodecModel with our model's configuration and weights."""
    import transformers
    model = transformers.EncodecModel(transformers.EncodecConfig(**ours.config.to_dict()))
    model.load_state_dict(ours.state_dict())
    return model.eval()


@pytest.fixture(scope="session", params=sorted(PRESETS))
def model_trio(request, tmp_path_factory):
    """(ours, transformers', original) for one preset, all holding the same random weights; ours is
    loaded from the original's `.th` file, so the original layout is exercised too."""
    original = original_model(request.param)
    path = tmp_path_factory.mktemp("original") / f"encodec_{request.param}.th"
    torch.save(original.state_dict(), path)
    ours = EncodecModel.from_pretrained(path)
    return ours, transformers_model(ours), original


def sample_codes(lm, batch: int, num_codebooks: int, num_frames: int, seed: int = 0) -> np.ndarray:
    """Codes [B, K, T] drawn from a `PortableLM`'s own predictions, frame by frame and codebook by
    codebook (an intra-frame LM's later codebooks depend on the frame's earlier ones)."""
    rng = np.random.default_rng(seed)
    state, previous, frames = lm.initial_state(batch, num_codebooks), None, []
    for _ in range(num_frames):
        frame = lm.next_frame(previous, state)
        current = np.zeros((batch, num_codebooks), np.int64)
        for k in range(num_codebooks):
            probabilities = frame.probabilities(k).astype(np.float64)
            current[:, k] = [rng.choice(len(row), p=row / row.sum()) for row in probabilities]
            frame.observe(k, current[:, k])
        frames.append(current)
        previous = current
    return np.stack(frames, axis=-1)


def peaked(lm: torch.nn.Module) -> torch.nn.Module:
    """A random LM made to predict as sharply as a trained one (a fresh one is almost uniform),
    its intra-frame embeddings, if any, as strong as its transformer's output."""
    with torch.no_grad():
        for head in lm.linears:
            head.weight.mul_(8.0)
        for embedding in getattr(lm, "intra", []):
            embedding.weight.mul_(50.0)
    return lm.eval()


def small_filesystem_works() -> bool:
    """Whether this machine lets an unprivileged user namespace mount a tmpfs (Linux with user namespaces)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


def save_tiny_codecs_and_lm(root: Path) -> None:
    """The archive tests' models in `root`: codec24/ and codec48/ (4 filters, seeded random weights) and a
    one-layer lm.safetensors, small enough to code seconds of audio quickly. Seeded throughout (the
    convolutions' default initialisation draws from torch's global generator), so that the models do not
    depend on which tests ran before."""
    for name, config in {"codec24": EncodecConfig(num_filters=4),
                         "codec48": EncodecConfig.encodec_48khz(num_filters=4)}.items():
        torch.manual_seed(11)
        randomize(EncodecModel(config), seed=11).save_pretrained(root / name)
    torch.manual_seed(0)
    save_lm(EntropyLM(LMConfig(n_q=32, dim=32, num_heads=4, num_layers=1, past_context=20)), root / "lm.safetensors")


def run_probe(script: str, environment: dict | None, *arguments: str) -> tuple[str, str]:
    """The two words a probe `script` prints (torch's CPU capability and a hash), with `arguments` as its
    sys.argv[1:]: from a fresh process with `environment` set, or, given None, from this process, whose
    kernels are the native ones, as a fresh process's with nothing set (starting a process, with torch's
    import, costs more than the probe). The script may set torch's thread count; this process's is restored."""
    if environment is None:
        output, threads_before = io.StringIO(), torch.get_num_threads()
        try:
            with redirect_stdout(output), mock.patch.object(sys, "argv", ["-c", *arguments]):
                exec(script, {"__name__": "__main__"})
        finally:
            torch.set_num_threads(threads_before)
        capability, digest = output.getvalue().split()
        return capability, digest
    result = subprocess.run([sys.executable, "-c", script, *arguments], check=True, capture_output=True, text=True,
                            env={**os.environ, **environment}, cwd=Path(__file__).resolve().parents[1])
    capability, digest = result.stdout.split()
    return capability, digest
