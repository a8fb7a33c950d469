"""Shipped models: installing a run with `training.ship` (maintainer tooling), resolving the name offline, and the
shipped model as the default of the effects and the command line. The pretrained root points at a
temporary folder, so the package's own folder is never touched."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile
from safetensors import safe_open

from encodec_fx import DEFAULT_MODEL, EncodecCompressor, EncodecModel, pretrained
from encodec_fx.checkpoints import weights_sha256
from encodec_fx.cli import main
from entropy.archive import ArchiveReader
from entropy.lm import load_lm, read_lm_metadata
from training import ship

TRAINING_LOG = "train.log"


def write(path, audio, rate=24_000):
    with AudioFile(str(path), "w", samplerate=rate, num_channels=audio.shape[0]) as file:
        file.write(audio.astype(np.float32))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny codec trained two steps and an LM trained three steps on its codes, in a temporary folder."""
    base = tmp_path_factory.mktemp("run")
    audio = base / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(24_000) / 24_000
    for index, frequency in enumerate((110, 220, 330, 440, 550)):
        write(audio / f"tone{index}.wav", (0.3 * np.sin(2 * np.pi * frequency * t) +
                                           0.02 * rng.standard_normal(t.shape))[None])
    run = base / "codec"
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        assert main(["train-codec", str(audio), str(run), "--num-filters", "4", "--batch-size", "2",
                     "--segment-seconds", "0.2", "--discriminator-filters", "4", "--eval-every", "2",
                     "--held-out-percent", "30", "--steps", "2"]) == 0
        assert main(["train-lm", str(audio), str(run / "lm.safetensors"), "--model", str(run / "model"),
                     "--size", "small", "--steps", "3", "--batch-size", "2", "--crop-frames", "32",
                     "--warmup-steps", "1", "--eval-every", "3", "--held-out-percent", "30"]) == 0
    (run / TRAINING_LOG).write_text(log.getvalue())
    return run


@pytest.fixture(scope="module")
def shipped(run_dir, tmp_path_factory):
    """The run installed as DEFAULT_MODEL (with its LM) and as "tiny-no-lm" (without) in a temporary root."""
    root = tmp_path_factory.mktemp("pretrained")
    licenses = root.parent / "LICENSES.md"
    licenses.write_text("# Corpus sources and licenses\n\n| source | license |\n|---|---|\n| tones | CC0 |\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretrained, "ROOT", root)
        ship.install(run_dir, DEFAULT_MODEL, run_dir / "lm.safetensors", corpus_licenses=licenses,
                     train_log=run_dir / TRAINING_LOG, compute="2 steps on a laptop CPU, 1 s")
        ship.install(run_dir, "tiny-no-lm")
        yield root


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the hub fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a shipped model was looked up on the hub")
    monkeypatch.setattr("encodec_fx.checkpoints._download", refuse)


@pytest.fixture
def audio_file(tmp_path):
    path = tmp_path / "in.wav"
    write(path, 0.2 * np.random.default_rng(1).standard_normal((1, 12_000)), rate=16_000)
    return path


def test_ship_writes_fp16_weights_config_lm_and_card(shipped, run_dir):
    folder = shipped / DEFAULT_MODEL
    assert sorted(path.name for path in folder.iterdir()) == ["MODEL_CARD.md", "config.json", "lm.safetensors",
                                                              "model.safetensors", "preprocessor_config.json"]
    with safe_open(str(folder / "model.safetensors"), "pt") as file:
        keys = list(file.keys())
        assert {file.get_tensor(key).dtype for key in keys} == {torch.float16}
    assert not [key for key in keys if key.endswith(("cluster_size", "embed_avg"))]
    assert (folder / "model.safetensors").stat().st_size <= ship.MAX_MB * 1e6
    assert all(path.stat().st_mode & 0o444 == 0o444 for path in folder.iterdir())  # readable by every user
    assert json.loads((folder / "config.json").read_text())["num_filters"] == 4
    card = (folder / "MODEL_CARD.md").read_text()
    for expected in ("# encodec-fx-24khz", "- steps trained: 2", "- segment seconds: 0.2", "2 steps on a laptop CPU",
                     "| tones | CC0 |", "### Corpus sources and licenses", "si_snr@24", "MIT", "encodec-fx-24khz-lm",
                     weights_sha256(EncodecModel.from_pretrained(folder).state_dict())):
        assert expected in card, expected
    assert "## Entropy-coding LM" not in (shipped / "tiny-no-lm" / "MODEL_CARD.md").read_text()


def test_shipped_lm_is_fp16_and_names_the_shipped_codec(shipped, run_dir):
    path = shipped / DEFAULT_MODEL / "lm.safetensors"
    with safe_open(str(path), "pt") as file:
        assert {file.get_tensor(key).dtype for key in file.keys()} == {torch.float16}
    metadata = read_lm_metadata(path)
    codec = EncodecModel.from_pretrained(shipped / DEFAULT_MODEL)
    assert metadata["codec"] == {"name": DEFAULT_MODEL, "sha256": weights_sha256(codec.state_dict())}
    assert metadata["trained_with_codec"]["name"] == "model"
    assert "bits_per_token" in metadata
    original, installed = load_lm(run_dir / "lm.safetensors"), load_lm(path)
    for key, value in original.state_dict().items():
        assert torch.equal(installed.state_dict()[key], value.half().float()), key


def test_shipped_name_loads_offline_into_float32(shipped, run_dir, offline, monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    (tmp_path / DEFAULT_MODEL).mkdir()  # a folder of that name here does not shadow the shipped model
    monkeypatch.chdir(tmp_path)
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    trained = EncodecModel.from_pretrained(run_dir / "model").state_dict()
    state = model.state_dict()
    for key, value in state.items():
        assert value.dtype == trained[key].dtype, key
        expected = torch.zeros_like(value) if key.endswith(("cluster_size", "embed_avg")) else trained[key]
        assert torch.equal(value, expected.half().to(value.dtype)), key
    assert pretrained.is_shipped("tiny-no-lm") and not pretrained.is_shipped("facebook/encodec_24khz")
    assert DEFAULT_MODEL in pretrained.shipped_names() and "tiny-no-lm" in pretrained.shipped_names()


def test_registered_name_without_files_says_how_to_get_them(monkeypatch, tmp_path, offline):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"shipped model 'encodec-fx-24khz' is missing config.json and "
                                                r"model.safetensors in .*: .*python -m training.ship RUN_DIR"):
        EncodecModel.from_pretrained(DEFAULT_MODEL)
    with pytest.raises(FileNotFoundError, match="shipped model 'encodec-fx-24khz' is missing"):
        EncodecCompressor(6.0)
    with pytest.raises(FileNotFoundError, match=r"shipped LM 'encodec-fx-24khz-lm' is missing"):
        pretrained.shipped_lm_path("encodec-fx-24khz-lm")


def test_unshipped_plain_names_are_not_taken_for_shipped_ones(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no model at some-other-model: .*shipped model name"):
        EncodecModel.from_pretrained("some-other-model")
    assert pretrained.default_lm("some-other-model") is None
    assert not pretrained.is_shipped_lm("some-other-model-lm")


def test_codec_effects_default_to_the_shipped_model(shipped, monkeypatch, offline):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    audio = (0.1 * np.random.default_rng(2).standard_normal(4800)).astype(np.float32)
    default = EncodecCompressor(3.0)
    assert default.model.config.num_filters == 4
    assert EncodecCompressor(3.0).model is default.model  # loaded once, shared
    explicit = EncodecCompressor(3.0, model=EncodecModel.from_pretrained(shipped / DEFAULT_MODEL))
    np.testing.assert_array_equal(default(audio, 24_000), explicit(audio, 24_000))


def test_compress_defaults_to_the_shipped_codec_and_lm_and_decompress_finds_them(shipped, monkeypatch, offline,
                                                                                  audio_file, tmp_path, capsys):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    archive = tmp_path / "out.ecfx"
    # --coding lm: the default keeps the smallest archive, and this random LM loses to static coding
    assert main(["compress", str(audio_file), str(archive), "-b", "3", "--coding", "lm"]) == 0
    assert "lm coding" in capsys.readouterr().out
    with ArchiveReader(archive) as reader:
        header = reader.header
    assert header["codec"]["name"] == DEFAULT_MODEL and header["lm"]["name"] == DEFAULT_MODEL + "-lm"
    assert main(["decompress", str(archive), str(tmp_path / "back.wav")]) == 0
    with AudioFile(str(tmp_path / "back.wav")) as file:
        assert (file.samplerate, file.num_channels, file.frames) == (16_000, 1, 12_000)


@pytest.mark.parametrize("options, mode", [(["--no-lm"], "static"), (["--coding", "raw"], "raw"),
                                           (["--model", "tiny-no-lm"], "static")])
def test_compress_without_an_lm(shipped, monkeypatch, audio_file, tmp_path, capsys, options, mode):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    archive = tmp_path / "out.ecfx"
    assert main(["compress", str(audio_file), str(archive), *options]) == 0
    assert f"{mode} coding" in capsys.readouterr().out
    with ArchiveReader(archive) as reader:
        assert reader.header["lm"] is None
    assert main(["decompress", str(archive), str(tmp_path / "back.wav")]) == 0


def test_decompress_names_a_missing_shipped_lm(shipped, monkeypatch, audio_file, tmp_path, capsys):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    archive = tmp_path / "out.ecfx"
    assert main(["compress", str(audio_file), str(archive), "--coding", "lm"]) == 0
    other = tmp_path / "root"
    (other / DEFAULT_MODEL).mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (other / DEFAULT_MODEL / name).write_bytes((shipped / DEFAULT_MODEL / name).read_bytes())
    monkeypatch.setattr(pretrained, "ROOT", other)
    capsys.readouterr()
    assert main(["decompress", str(archive), str(tmp_path / "back.wav")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "shipped LM 'encodec-fx-24khz-lm' is missing" in error


def test_fx_defaults_to_the_shipped_model(shipped, monkeypatch, audio_file, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    assert main(["fx", str(audio_file), str(tmp_path / "out.wav"), "--chain", "encodec(bandwidth=1.5)", "--quiet"]) == 0
    with AudioFile(str(tmp_path / "out.wav")) as file:
        assert (file.samplerate, file.frames) == (16_000, 12_000)


def test_ship_refuses_oversize_models_existing_installs_and_bad_names(shipped, run_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    with pytest.raises(ValueError, match=r"fp16 weights take .* MB, over the 0.01 MB limit"):
        ship.install(run_dir, "tiny", max_mb=0.01)
    assert not list(tmp_path.iterdir())  # nothing half-written
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    assert ship.main([str(run_dir), "--name", "tiny-no-lm"]) == 1
    with pytest.raises(ValueError, match="model name 'Tiny/1' must be lowercase"):
        ship.install(run_dir, "Tiny/1")
    with pytest.raises(FileNotFoundError, match="no trained codec in"):
        ship.install(tmp_path, "tiny", force=True)


@pytest.mark.parametrize("max_mb", [float("nan"), float("inf"), 0.0, -1.0])
def test_ship_refuses_a_size_limit_that_is_not_a_positive_number(monkeypatch, tmp_path, capsys, max_mb):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    with pytest.raises(ValueError, match=rf"--max-mb must be a positive number of megabytes .*got {max_mb}"):
        ship.install(tmp_path, "tiny", max_mb=max_mb)  # refused before the run is even looked at
    assert ship.main([str(tmp_path), "--name", "tiny", "--max-mb", str(max_mb)]) == 1
    assert "--max-mb must be a positive number" in capsys.readouterr().err


def test_ship_names_the_file_of_bad_card_inputs(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "root")
    binary = tmp_path / "LICENSES.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match=r"LICENSES.md is not UTF-8 text \(byte 0\): give a text or markdown file"):
        ship.install(tmp_path, "tiny", corpus_licenses=binary)
    log = tmp_path / "train.log"
    log.write_text("start\nstep 2/2 (1.00 s/step): l1 0.4 | validation: si_snr@1.5 abc, mel@1.5 1.5\n")
    with pytest.raises(ValueError, match=r"train.log, line 2: validation metric 'si_snr@1.5 abc' is not a name and a "
                                         r"number"):
        ship.install(tmp_path, "tiny", train_log=log)


def test_ship_refuses_a_damaged_training_state_in_one_line(run_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path / "root")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model").symlink_to(run_dir / "model")
    (run / "training_state.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="training_state.pt is damaged or not a train-codec state: it is not a file "
                                         "of tensors"):
        ship.install(run, "tiny")
    assert not (tmp_path / "root").exists()


def test_ship_command_line_replaces_with_force(shipped, run_dir, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "ROOT", shipped)
    assert ship.main([str(run_dir), "--name", "tiny-no-lm", "--force", "--compute", "none"]) == 0
    assert "installed tiny-no-lm" in capsys.readouterr().out
    assert "- compute: none" in (shipped / "tiny-no-lm" / "MODEL_CARD.md").read_text()


def test_last_validation_line_of_a_training_log():
    log = ("step 1/4 (1.00 s/step): l1 0.5 | validation: si_snr@1.5 -3.000, mel@1.5 2.000\n"
           "noise\nstep 4/4 (1.00 s/step): l1 0.4 | validation: si_snr@1.5 1.250, mel@1.5 1.500\n")
    assert ship.last_validation(log) == (4, {"si_snr@1.5": 1.25, "mel@1.5": 1.5})
    assert ship.last_validation("nothing") is None


def test_an_lm_is_added_to_an_already_shipped_codec(shipped, run_dir, monkeypatch, tmp_path, capsys):
    """`ship --lm LM` without a run: the codec stays byte for byte, the LM and the card's LM section arrive."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "later").mkdir()
    for path in (shipped / "tiny-no-lm").iterdir():
        (root / "later" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(pretrained, "ROOT", root)
    weights = (root / "later" / "model.safetensors").read_bytes()
    # the run's fp32 codec, not the shipped one
    with pytest.raises(ValueError, match="trained on another codec's tokens"):
        ship.install_lm(run_dir / "lm.safetensors", "later")
    assert not (root / "later" / "lm.safetensors").exists()
    lm_file = tmp_path / "lm.safetensors"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train-lm", str(run_dir.parent / "audio"), str(lm_file), "--model", "later", "--size", "small",
                     "--steps", "2", "--batch-size", "2", "--crop-frames", "32", "--warmup-steps", "1"]) == 0
    assert ship.main(["--lm", str(lm_file), "--name", "later"]) == 0
    assert (root / "later" / "model.safetensors").read_bytes() == weights
    card = (root / "later" / "MODEL_CARD.md").read_text()
    assert card.index("## Training") < card.index("## Entropy-coding LM") < card.index("## License")
    assert read_lm_metadata(root / "later" / "lm.safetensors")["codec"]["name"] == "later"
    assert ship.main(["--lm", str(lm_file), "--name", "later"]) == 1
    assert "already holds an LM; pass --force" in capsys.readouterr().err
    assert ship.main(["--lm", str(lm_file), "--name", "later", "--force"]) == 0
    assert (root / "later" / "MODEL_CARD.md").read_text().count("## Entropy-coding LM") == 1
    assert sorted(path.name for path in (root / "later").iterdir()) == [
        "MODEL_CARD.md", "config.json", "lm.safetensors", "model.safetensors", "preprocessor_config.json"]
