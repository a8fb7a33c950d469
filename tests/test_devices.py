"""Choosing where the model runs: `device=` in the API and `--device` on the command line, checked
before any work, with one clear error for a device this machine lacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from encodec_fx import DEFAULT_MODEL, EncodecCompressor, EncodecModel
from encodec_fx.cli import main
from encodec_fx.devices import resolve_device
from encodec_fx.effects.spec import parse_chain

from effects_models import noise, tiny_model


@pytest.mark.parametrize("name, message", [("gpu", "unknown device 'gpu'; accepted: cpu, cuda, cuda:N or mps"),
                                           ("meta", "unsupported device 'meta'"),
                                           (3.5, "unknown device 3.5")])
def test_unknown_devices_name_the_accepted_ones(name, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(name)


def test_cpu_resolves_and_cuda_resolves_only_where_there_is_one():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == torch.device("cuda", torch.cuda.current_device())
        with pytest.raises(ValueError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="CUDA is not available here .*; use cpu"):
            resolve_device("cuda:0")


def test_from_pretrained_loads_onto_the_device_and_checks_it_first(tmp_path):
    model = EncodecModel.from_pretrained(DEFAULT_MODEL, device="cpu")
    assert model.device == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):  # not "no model at ...": checked first
        EncodecModel.from_pretrained(tmp_path / "missing", device="gpu")


def test_model_device_follows_the_model():
    model = EncodecModel(tiny_model().config).to("meta")
    assert model.device == torch.device("meta")


def test_effect_device_runs_the_same_model_and_refuses_a_model_elsewhere():
    audio = noise(1, 24_000)
    on_cpu = EncodecCompressor(bandwidth=1.5, device="cpu")
    assert on_cpu.model.device == torch.device("cpu") and "device='cpu'" in repr(on_cpu)
    np.testing.assert_array_equal(on_cpu(audio, 24_000), EncodecCompressor(bandwidth=1.5)(audio, 24_000))
    elsewhere = EncodecModel(tiny_model().config).to("meta")
    with pytest.raises(ValueError, match="EncodecCompressor: the model is on meta, but device is cpu"):
        EncodecCompressor(model=elsewhere, device="cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        EncodecCompressor(device="gpu")


def test_chain_text_gives_codec_stages_the_default_device_unless_they_name_one():
    chain = parse_chain("encodec(bandwidth=3) | gain(gain_db=1)", default_device="cpu")
    assert chain[0].device == torch.device("cpu")
    with pytest.raises(ValueError, match=r"stage 0 \(encodec\(device='gpu'\)\): unknown device 'gpu'"):
        parse_chain("encodec(device='gpu')", default_device="cpu")


def test_the_command_line_gives_every_command_the_device_by_name():
    """`--device` is checked while the command line is parsed and handed on as a name, "cpu" without importing
    torch: every consumer (models, chains, trainers, job specs, scripts) takes the same kind of value."""
    from encodec_fx.cli import build_parser
    from encodec_fx.devices import device_argument
    assert build_parser().parse_args(["compress", "a.wav", "a.ecfx"]).device == "cpu"
    assert build_parser().parse_args(["fx", "a.wav", "b.wav", "--chain", "gain(1)", "--device", "cpu:0"]).device \
        == "cpu:0"
    assert device_argument("cpu") == "cpu" and isinstance(device_argument("cpu:0"), str)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "in.wav"
    with AudioFile(str(path), "w", 24_000, 1) as file:
        file.write(noise(1, 12_000))
    return path


def test_cli_device_cpu_writes_what_the_default_writes(wav, tmp_path):
    assert main(["compress", str(wav), str(tmp_path / "default.ecfx")]) == 0
    assert main(["compress", str(wav), str(tmp_path / "cpu.ecfx"), "--device", "cpu"]) == 0
    assert (tmp_path / "default.ecfx").read_bytes() == (tmp_path / "cpu.ecfx").read_bytes()
    assert main(["decompress", str(tmp_path / "cpu.ecfx"), str(tmp_path / "out.wav"), "--device", "cpu"]) == 0
    assert main(["fx", str(wav), str(tmp_path / "fx.wav"), "--chain", "encodec", "--device", "cpu", "--quiet"]) == 0


@pytest.mark.parametrize("command", ["compress", "decompress", "fx", "train-lm", "train-codec"])
def test_cli_refuses_an_unknown_device_before_any_work(command, wav, tmp_path, capsys):
    """The command's parser refuses the value, exiting with status 2 as `encodec-fx` does; run in this process
    (`main` is the command's entry point; a process per command cost 2 s of starting Python and torch)."""
    output = tmp_path / "out"
    args = {"compress": [str(wav), str(output)], "decompress": [str(wav), str(output)],
            "fx": [str(wav), str(output), "--chain", "encodec"],
            "train-lm": [str(tmp_path), str(output), "--model", DEFAULT_MODEL],
            "train-codec": [str(tmp_path), str(output)]}[command]
    with pytest.raises(SystemExit) as exit:  # any other exception, a traceback, goes on up and fails the test
        main([command, *args, "--device", "gpu"])
    stderr = capsys.readouterr().err
    assert exit.value.code == 2 and "Traceback" not in stderr
    assert stderr.splitlines()[-1] == (f"encodec-fx {command}: error: argument --device: unknown device "
                                       "'gpu'; accepted: cpu, cuda, cuda:N or mps")
    assert not output.exists()
