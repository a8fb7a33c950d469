"""LM training: encodes a folder with a codec, learns its tokens, saves weights naming the codec."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.audio_io import audio_files
from encodec_fx.checkpoints import weights_sha256
from encodec_fx.cli import main
from encodec_fx.train.lm_tokens import encode_file
from entropy.lm import load_lm, read_lm_metadata

from conftest import randomize


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("codec")
    model = randomize(EncodecModel(EncodecConfig(num_filters=4, target_bandwidths=[1.5, 3.0])), seed=2)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """Repetitive tones (predictable tokens) at another rate and in stereo, to exercise resampling."""
    directory = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for index in range(6):
        t = np.arange(16_000 * 2) / 16_000
        tone = 0.3 * np.sign(np.sin(2 * np.pi * rng.choice([110, 220, 330]) * t))
        with AudioFile(str(directory / f"tone{index}.wav"), "w", samplerate=16_000, num_channels=2) as file:
            file.write(np.stack([tone, 0.5 * tone]).astype(np.float32))
    return directory


def test_encode_file_codes_each_channel(codec_dir, audio_dir):
    codec = EncodecModel.from_pretrained(codec_dir)
    sequences = encode_file(codec, audio_files(audio_dir)[0])
    assert len(sequences) == 2  # mono codec: two channels coded separately
    assert sequences[0].shape == (codec.config.num_quantizers, 150)  # 2 s at 75 frames/s


def test_training_learns_and_names_its_codec(codec_dir, audio_dir, tmp_path, capsys):
    output = tmp_path / "lm.safetensors"
    assert main(["train-lm", str(audio_dir), str(output), "--model", str(codec_dir), "--size", "small", "--steps", "60",
          "--batch-size", "4", "--crop-frames", "64", "--warmup-steps", "5", "--eval-every", "30",
          "--held-out-percent", "30", "--learning-rate", "0.003"]) == 0
    printed = capsys.readouterr().out
    assert "bits/token held out" in printed
    metadata = read_lm_metadata(output)
    codec = EncodecModel.from_pretrained(codec_dir)
    assert metadata["codec"]["sha256"] == weights_sha256(codec.state_dict())
    # untrained: about log2(1024) = 10 bits per token; the tones are predictable
    assert all(bits < 6.0 for bits in metadata["bits_per_token"].values()), metadata
    lm = load_lm(output)
    assert lm.config.n_q == codec.config.num_quantizers and lm.config.past_context == int(3.5 * 75)
    assert main(["train-lm", str(audio_dir), str(output), "--model", str(codec_dir)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no audio folder"):
        audio_files(tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds no audio files"):
        audio_files(tmp_path)


@pytest.mark.parametrize("setting, value, message", [
    ("steps", 0, "steps must be positive, got 0"),
    ("batch_size", -1, "batch_size must be positive, got -1"),
    ("warmup_steps", -5, "warmup_steps must be at least 0, got -5"),
    ("held_out_percent", 101, "held_out_percent must be from 0 to 100, got 101"),
])
def test_training_settings_out_of_range_are_refused(setting, value, message):
    from entropy.train_settings import LMTrainingConfig
    with pytest.raises(ValueError, match=message):
        LMTrainingConfig(**{setting: value})


def test_cli_refuses_a_bad_setting_before_encoding_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("encodec_fx.train.lm_tokens.encode_file", lambda *args: pytest.fail("encoded before refusing"))
    assert main(["train-lm", str(tmp_path), str(tmp_path / "lm.safetensors"), "--model", "encodec-fx-24khz",
                 "--steps", "0"]) == 1
    assert "steps must be positive, got 0" in capsys.readouterr().err
    assert not (tmp_path / "lm.safetensors").exists()


def test_cli_refuses_an_output_folder_that_does_not_exist_before_encoding_anything(tmp_path, capsys, monkeypatch):
    """Checked first: the LM is written only after all the training steps."""
    monkeypatch.setattr("encodec_fx.train.lm_tokens.encode_file", lambda *args: pytest.fail("encoded before refusing"))
    output = tmp_path / "missing" / "lm.safetensors"
    assert main(["train-lm", str(tmp_path), str(output), "--model", "encodec-fx-24khz"]) == 1
    assert f"cannot write {output}: there is no folder {output.parent}" in capsys.readouterr().err


def test_a_stereo_codec_refuses_a_file_of_more_channels_before_encoding_anything(tmp_path, capsys, monkeypatch):
    """It used to code the first two channels without a word, as compress and the effects never do."""
    codec = tmp_path / "codec48"
    EncodecModel(EncodecConfig.encodec_48khz(num_filters=4)).save_pretrained(codec)
    audio = tmp_path / "audio"
    audio.mkdir()
    for name, channels in [("a.wav", 2), ("b.wav", 3)]:
        with AudioFile(str(audio / name), "w", samplerate=48_000, num_channels=channels) as file:
            file.write(np.zeros((channels, 4800), np.float32))
    monkeypatch.setattr("encodec_fx.train.lm_tokens.encode_file", lambda *args: pytest.fail("encoded before refusing"))
    assert main(["train-lm", str(audio), str(tmp_path / "lm.safetensors"), "--model", str(codec)]) == 1
    assert f"{audio / 'b.wav'} has 3 channels; this stereo codec codes 1 or 2" in capsys.readouterr().err
