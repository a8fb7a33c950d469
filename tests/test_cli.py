"""The command line: converts checkpoints, and reports errors in one line without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from encodec_fx import EncodecModel
from encodec_fx.cli import main

from conftest import original_model


def test_convert_original_checkpoint(tmp_path, capsys):
    original = original_model("24khz", seed=4)
    source = tmp_path / "encodec_24khz.th"
    torch.save(original.state_dict(), source)
    assert main(["convert", str(source), str(tmp_path / "hub")]) == 0
    assert "24000 Hz, 1 channel(s), bandwidths 1.5, 3, 6, 12, 24 kbps" in capsys.readouterr().out
    converted = EncodecModel.from_pretrained(tmp_path / "hub")
    assert torch.equal(converted.quantizer.layers[3].codebook.embed,
                       original.quantizer.vq.layers[3]._codebook.embed)
    # refuses to write into the now non-empty directory
    assert main(["convert", str(source), str(tmp_path / "hub")]) == 1
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert main(["convert", str(source), str(tmp_path / "hub"), "--force"]) == 0


def test_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "encodec_fx.cli", "convert", str(tmp_path / "missing.th"),
                             str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("encodec-fx convert: error: no model at")
    assert not (tmp_path / "out").exists()


def test_an_unforeseen_failure_is_one_line_that_says_how_to_see_the_traceback(tmp_path, capsys, monkeypatch):
    """Errors no check foresaw (a library's RuntimeError, say) must not end the command in a traceback."""
    def fail(*args, **kwargs):
        raise RuntimeError("More samples were provided than can be buffered!\nThis is an internal error.")
    monkeypatch.setattr(EncodecModel, "from_pretrained", fail)
    arguments = ["convert", str(tmp_path / "x.th"), str(tmp_path / "out")]
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert error == ("encodec-fx convert: error: unexpected RuntimeError: More samples were provided than can be "
                     "buffered! (rerun with ENCODEC_FX_TRACEBACK=1 for the traceback, and please report it)\n")
    monkeypatch.setenv("ENCODEC_FX_TRACEBACK", "0")
    assert main(arguments) == 1
    capsys.readouterr()
    monkeypatch.setenv("ENCODEC_FX_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="More samples"):
        main(arguments)
