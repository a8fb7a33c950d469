"""training/average.py: the mean of checkpoints of one codec."""

from __future__ import annotations

import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from training.average import average, main

from conftest import randomize


def saved(tmp_path, name, seed, **config):
    path = tmp_path / name
    randomize(EncodecModel(EncodecConfig(num_filters=4, **config)), seed=seed).save_pretrained(path)
    return path


def test_the_mean_of_checkpoints_holds_the_mean_of_every_weight_and_codes(tmp_path):
    paths = [saved(tmp_path, f"m{seed}", seed) for seed in (1, 2, 3)]
    mean = average(paths, tmp_path / "mean")
    states = [EncodecModel.from_pretrained(path).state_dict() for path in paths]
    loaded = EncodecModel.from_pretrained(tmp_path / "mean").state_dict()
    for name, tensor in loaded.items():
        expected = sum(state[name].double() for state in states) / 3
        torch.testing.assert_close(tensor, expected.to(tensor.dtype), rtol=0, atol=1e-6 * expected.abs().max())
    assert not torch.equal(loaded["encoder.layers.0.conv.bias"], states[0]["encoder.layers.0.conv.bias"])
    with torch.inference_mode():
        codes = mean.encode(torch.randn(1, 1, 4800), bandwidth=6.0).audio_codes
    assert codes.shape[-2:] == (8, 15)


def test_models_of_another_codec_a_single_model_or_an_existing_folder_are_refused(tmp_path, capsys):
    first, other = saved(tmp_path, "a", 1), saved(tmp_path, "b", 2, num_lstm_layers=1)
    with pytest.raises(ValueError, match="has another configuration than"):
        average([first, other], tmp_path / "mean")
    with pytest.raises(ValueError, match="at least two models, got 1"):
        average([first], tmp_path / "mean")
    assert main([str(first), str(first), str(first)]) == 1
    assert f"{first} exists; give a new folder" in capsys.readouterr().err
    assert not (tmp_path / "mean").exists()
