"""benchmarks/quality.py's pieces on two short synthetic files, a tiny random codec and real Opus."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.train.losses import MultiScaleMelLoss

from conftest import randomize

RATE = 24_000
OPUS_MISSING = "opusenc/opusdec not found: install opus-tools (apt-get install -y opus-tools) to test the Opus baseline"


def _load_quality():
    spec = importlib.util.spec_from_file_location("quality", Path(__file__).parents[1] / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _load_quality()


def voice_like(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonics under a syllable-rate envelope, with a little noise: not a steady tone, so that a
    misalignment by even a few samples shows in the SI-SNR."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * tone * envelope + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return randomize(EncodecModel(EncodecConfig.encodec_24khz(num_filters=4, num_lstm_layers=1)))


@pytest.fixture
def audio_dir(tmp_path):
    for name, f0 in (("speech-000001.wav", 140.0), ("music-000001.wav", 330.0)):
        with AudioFile(str(tmp_path / name), "w", samplerate=RATE, num_channels=1) as file:
            file.write(voice_like(1.0, f0, seed=int(f0))[None])
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def require_opus():
    assert shutil.which("opusenc") and shutil.which("opusdec"), OPUS_MISSING


def test_groups_come_from_file_names():
    assert [quality.group_of(Path(name)) for name in ("speech-1.flac", "voices-5.flac", "music-2.flac",
                                                      "recordings-3.flac", "mixtures-4.flac", "other.flac")] == \
           ["speech", "voices", "music", "music", "mixtures", None]


def test_codec_round_trip_keeps_length(model):
    audio = voice_like(0.5, 200.0, seed=1)
    decoded = quality.codec_round_trip(model, audio, 6.0)
    assert decoded.shape == audio.shape and decoded.dtype == np.float32


def test_scores_are_perfect_for_identical_audio_and_worse_for_noise():
    mel = MultiScaleMelLoss(RATE)
    audio = voice_like(0.5, 200.0, seed=2)
    same = quality.scores(audio, audio, RATE, mel)
    noisy = quality.scores(audio + 0.05 * np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32),
                           audio, RATE, mel)
    assert same["si_snr"] > 60 and same["mel"] < 1e-6
    assert noisy["si_snr"] < 20 and noisy["mel"] > 0.01


def test_opus_round_trip_is_aligned_and_near_its_bitrate(tmp_path):
    require_opus()
    audio = voice_like(2.0, 180.0, seed=3)
    decoded, kbps = quality.opus_round_trip(audio, RATE, 12.0, tmp_path)
    assert decoded.shape == audio.shape
    mel = MultiScaleMelLoss(RATE)
    aligned = quality.scores(decoded, audio, RATE, mel)["si_snr"]
    shifted = quality.scores(np.roll(decoded, 24), audio, RATE, mel)["si_snr"]
    assert aligned > 5 and aligned > shifted + 5  # pre-skip removed and rates converted without delay
    assert 12 <= kbps < 20  # hard CBR, plus the Ogg headers of a 2 s file


def test_evaluate_and_table_cover_every_system_and_group(model, audio_dir):
    require_opus()
    files = sorted(p for p in audio_dir.iterdir() if quality.group_of(p))
    results = quality.evaluate(files, model, [1.5, 6.0], [6.0], log=lambda line: None)
    assert set(results) == {(system, group) for system in ("EnCodec 1.5 kbps", "EnCodec 6 kbps", "Opus 6 kbps")
                            for group in ("speech", "music")}
    assert all(len(values["mel"]) == 1 for values in results.values())
    table = quality.markdown_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("| system | speech SI-SNR dB | speech mel | music SI-SNR dB | music mel |")
    assert [line.split(" | ")[0] for line in lines[2:5]] == ["| EnCodec 1.5 kbps", "| EnCodec 6 kbps", "| Opus 6 kbps"]
    assert "speech: 1 files, music: 1 files" in table and "Opus 6 kbps" in table.splitlines()[-1]
    balance = quality.balance_table(results).splitlines()
    assert balance[0].startswith("| system | group | 0.125–0.25 kHz |") and balance[0].endswith("| 8–12 kHz |")
    assert len(balance) == 2 + 6 and all(len(line.split(" | ")) == 9 for line in balance[2:])


def test_the_group_balance_sums_the_files_band_energies():
    """A system that halves one file's amplitude and keeps the other: −6 dB on the first alone, and on the
    group the energy-weighted balance, not the mean of the files' dB."""
    quiet, loud = voice_like(1.0, 150.0, seed=4), 2 * voice_like(1.0, 150.0, seed=4)
    bands = [quality.band_levels(audio, RATE) for audio in (quiet, loud)]
    results = {("half the first", "speech"): {"bands_in": bands, "bands_out": [bands[0] / 4, bands[1]]}}
    row = quality.balance_table(results).splitlines()[2].split(" | ")[2:]
    expected = 10 * np.log10((0.25 * 1 + 4) / (1 + 4))  # energies 1 and 4, the first down to a quarter
    assert [float(cell.strip(" |")) for cell in row] == pytest.approx([expected] * 7, abs=0.05)


def test_main_prints_the_table_and_refuses_an_empty_folder(model, audio_dir, tmp_path, capsys):
    require_opus()
    model.save_pretrained(tmp_path / "codec")
    assert quality.main([str(audio_dir), "--model", str(tmp_path / "codec"), "--bandwidths", "3", "--opus", "12",
                         "--seconds", "0.5"]) == 0
    assert "| EnCodec 3 kbps |" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert quality.main([str(tmp_path / "empty")]) == 1
    assert "no speech-*, voices-*" in capsys.readouterr().err
