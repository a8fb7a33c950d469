"""The effects demos run as a user runs them (a subprocess, `python demos/NAME.py`) and write sane output.

They get a tiny random-weight model saved to disk and a short input, so each takes seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from effects_models import noise, tiny_model

DEMOS = Path(__file__).resolve().parent.parent / "demos"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    tiny_model("24khz").save_pretrained(directory)
    return directory


def run_demo(name: str, *arguments: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run([sys.executable, str(DEMOS / name), *arguments], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def read(path: Path) -> tuple[np.ndarray, int]:
    with AudioFile(str(path)) as file:
        return file.read(file.frames), int(file.samplerate)


def assert_sane(audio: np.ndarray) -> None:
    assert np.isfinite(audio).all()
    assert 0 < np.abs(audio).max() < 10


def test_lofi_chain_on_the_test_signal(tmp_path, model_dir):
    out = run_demo("lofi_chain.py", "--model", str(model_dir), "--seconds", "0.5", "--output", "lofi.wav", cwd=tmp_path)
    audio, rate = read(tmp_path / "lofi.wav")
    assert rate == 44100 and audio.shape == (2, 22050)
    assert_sane(audio)
    assert "EncodecEncoder -> TokenSubstitution -> EncodecDecoder" in out


def test_lofi_chain_streams_a_file(tmp_path, model_dir):
    with AudioFile(str(tmp_path / "in.wav"), "w", samplerate=32000, num_channels=1, bit_depth=32) as file:
        file.write(noise(1, 16000))
    run_demo("lofi_chain.py", "in.wav", "--model", str(model_dir), "--output", "out.wav", cwd=tmp_path)
    audio, rate = read(tmp_path / "out.wav")
    assert rate == 32000 and audio.shape == (1, 16000)
    assert_sane(audio)


def test_packet_loss_writes_audio_and_spectrograms(tmp_path, model_dir):
    out = run_demo("packet_loss.py", "--model", str(model_dir), "--seconds", "0.5", "--loss", "0.5",
                   "--prefix", "pl", cwd=tmp_path)
    clean, rate = read(tmp_path / "pl_clean.wav")
    damaged, _ = read(tmp_path / "pl_damaged.wav")
    assert rate == 24000 and clean.shape == damaged.shape == (1, 12000)
    assert_sane(clean)
    assert not np.allclose(clean, damaged, atol=1e-3)
    assert (tmp_path / "pl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "% of frames lost" in out


def test_packet_loss_without_matplotlib_still_writes_audio(tmp_path, model_dir):
    blocker = tmp_path / "no_matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    out = run_demo("packet_loss.py", "--model", str(model_dir), "--seconds", "0.3", "--prefix", "pl", cwd=tmp_path,
                   env={"PYTHONPATH": str(blocker.parent)})
    hint = [line for line in out.splitlines() if "matplotlib" in line]
    assert hint == ["no spectrogram plot: matplotlib is not installed (pip install 'encodec-fx[demos]')"]
    assert (tmp_path / "pl_damaged.wav").exists() and not (tmp_path / "pl.png").exists()


def test_live_blocks_reports_latency_and_real_time_factor(tmp_path, model_dir):
    out = run_demo("live_blocks.py", "--model", str(model_dir), "--seconds", "0.5", "--block", "1024",
                   "--output", "live.wav", cwd=tmp_path)
    assert "chain latency 4154 samples (94.2 ms)" in out  # the 24 kHz model's round trip, resampled to 44.1 kHz
    assert "real-time factor" in out and "bandwidth 6 -> 1.5 kbps" in out
    audio, rate = read(tmp_path / "live.wav")
    assert rate == 44100 and audio.shape == (2, 22050)
    assert_sane(audio)


def test_demos_explain_a_missing_model_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(DEMOS / "lofi_chain.py"), "--model", str(tmp_path / "none")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lofi_chain: error: ")


def test_quickstart_codes_with_the_shipped_model_and_fidelity_grows_with_bandwidth(tmp_path):
    printed = run_demo("quickstart.py", cwd=tmp_path)
    snr = [float(line.rsplit("SI-SNR", 1)[1].split()[0]) for line in printed.splitlines() if "kbps: codes" in line]
    assert len(snr) == 5 and snr[-1] > snr[0] + 2, printed
    assert "packet loss | decoder: (1, 72000) float32" in printed
