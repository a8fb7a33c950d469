"""The command line: converts checkpoints, reports errors in one line without a traceback, ends on Ctrl-C with
status 130 as a process but lets the KeyboardInterrupt through to a Python caller (so Ctrl-C stops a test run)."""

from __future__ import annotations

import argparse
import ast
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from encodec_fx import DEFAULT_MODEL, EncodecConfig, EncodecModel
from encodec_fx.audio_io import write_audio
from encodec_fx.cli import build_parser, command_line_message, main

from conftest import ctrl_c_reaches, original_model


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


NO_TORCH_PROBE = """
import sys
from encodec_fx.cli import main
for arguments, status in {commands!r}:
    try:
        assert main(arguments) == status, arguments
    except SystemExit as exit:  # --help
        assert exit.code == status, (arguments, exit.code)
print(sorted(module for module in sys.modules if module.partition(".")[0] == "torch"))
"""


def test_help_info_and_bad_paths_answer_without_importing_torch(tmp_path):
    """Torch takes seconds to import: the parser, `info` (which reads the header alone) and the one-file
    commands' errors about their input and output (said before a model loads) do without it."""
    from encodec_fx import EncodecConfig, compress_file
    audio, archive = tmp_path / "tone.wav", tmp_path / "tone.ecfx"
    with AudioFile(str(audio), "w", samplerate=24_000, num_channels=1) as file:
        file.write((0.3 * np.sin(np.arange(12_000) / 10))[None].astype(np.float32))
    compress_file(audio, archive, EncodecModel(EncodecConfig(num_filters=4)), bandwidth=1.5, model_name="tiny",
                  mode="raw", progress=False)
    commands = [["--help"], *([command, "--help"] for command in
                              ("convert", "compress", "decompress", "fx", "info", "train-lm", "train-codec")),
                ["info", str(archive)], ["info", str(archive), "--json"]]
    missing, nowhere = str(tmp_path / "missing.wav"), str(tmp_path / "nowhere" / "out")
    refused = {  # command line: what its one-line error says
        ("compress", missing, nowhere + ".ecfx"): "no audio file at",
        ("compress", str(audio), nowhere + ".ecfx", "--device", "cpu"): "there is no folder",
        ("compress", str(audio), str(archive)): "exists; pass --force",
        ("compress", str(audio), nowhere + ".wav"): "expected one of .ecfx",
        ("decompress", str(archive), nowhere + ".wav"): "there is no folder",
        ("decompress", str(audio), nowhere + ".wav"): "not an encodec-fx archive",
        ("transcode", str(archive), str(archive)): "it is the input file",
        ("fx", missing, nowhere + ".wav", "--chain", "gain(-1)"): "no audio file at",
        ("fx", str(audio), str(audio), "--chain", "gain(-1)", "--force"): "it is the input file"}
    commands = [(command, 0) for command in commands] + [(list(command), 1) for command in refused]
    result = subprocess.run([sys.executable, "-c", NO_TORCH_PROBE.format(commands=commands)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert '"coding_mode": "raw"' in result.stdout and result.stdout.splitlines()[-1] == "[]"
    errors = result.stderr.splitlines()
    assert len(errors) == len(refused), errors
    for line, (command, words) in zip(errors, refused.items()):
        assert line.startswith(f"encodec-fx {command[0]}: error: ") and words in line, (line, words)
    assert not (tmp_path / "nowhere").exists() and sorted(path.name for path in tmp_path.iterdir()) == \
        ["tone.ecfx", "tone.wav"]


INTERRUPT_PROBE = """
import sys, time
from encodec_fx.cli import archive, main
def wait(args):
    print("ready", flush=True)
    time.sleep(120)
archive.info = wait  # a command that runs until interrupted
sys.exit(main())
"""


def test_ctrl_c_ends_the_process_with_status_130_and_one_line():
    process = subprocess.Popen([sys.executable, "-c", INTERRUPT_PROBE, "info", "any.ecfx"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches)
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        _, error = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert error == "encodec-fx info: interrupted\n"


def test_ctrl_c_during_an_in_process_call_reaches_the_caller(monkeypatch, capsys):
    """main(argv) from Python (the tests do it everywhere) must not swallow Ctrl-C and return 130."""
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr("encodec_fx.cli.archive.info", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["info", "any.ecfx"])
    assert capsys.readouterr().err == ""


ROOT = Path(__file__).resolve().parent.parent
# Modules that implement commands (they take the parsed options) may name options in their errors.
COMMAND_MODULES = ("encodec_fx/cli/", "encodec_fx/train/command.py")


def raised_texts(path: Path) -> list[str]:
    """The literal text of every `raise` statement's message in a module (f-strings' fixed parts too), less
    the commands it quotes in backticks (`python -m training.ship --lm FILE` names another program's options)."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            texts += [re.sub(r"`[^`]*(`|$)", "", part.value) for part in ast.walk(node.exc)
                      if isinstance(part, ast.Constant) and isinstance(part.value, str)]
    return texts


def test_library_errors_advise_python_arguments_not_command_line_options():
    """`pass --force` from a function whose parameter is `overwrite=True` misleads a Python caller."""
    offending = [f"{path.relative_to(ROOT)}: {text!r}" for package in ("encodec_fx", "entropy")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if not str(path.relative_to(ROOT)).startswith(COMMAND_MODULES)
                 for text in raised_texts(path) if re.search(r"(?<![\w-])--[a-z]", text)]
    assert not offending



@pytest.mark.parametrize("command", [["decompress", "{missing}", "{out}.wav"], ["info", "{missing}"],
                                     ["transcode", "{missing}", "{out}.ecfx", "-b", "3"]])
def test_a_missing_archive_is_named_in_words(command, tmp_path, capsys):
    missing = tmp_path / "nope.ecfx"
    argv = [part.format(missing=missing, out=tmp_path / "out") for part in command]
    assert main(argv) == 1
    assert capsys.readouterr().err == f"encodec-fx {command[0]}: error: {missing}: no such file or directory\n"


def test_an_os_error_kept_as_text_reads_in_words_whatever_its_quotes():
    """A journal keeps only the text of a worker's error; the progress line rewords it the same way."""
    for path in ["in/a.wav", "it's.wav"]:
        assert command_line_message(ValueError(str(FileNotFoundError(2, "No such file or directory", path)))) == \
            f"{path}: no such file or directory"


def test_the_python_api_names_its_parameter_and_the_command_line_its_option(tmp_path, capsys):
    audio = tmp_path / "tone.wav"
    write_audio(audio, np.zeros((1, 2400), np.float32), 24_000)
    with pytest.raises(FileExistsError, match=r"tone.wav exists; pass overwrite=True to replace it$") as error:
        write_audio(audio, np.zeros((1, 2400), np.float32), 24_000)
    assert command_line_message(error.value) == f"{audio} exists; pass --force to replace it"
    weights = tmp_path / "weights.safetensors"  # weights without a config.json beside them
    EncodecModel(EncodecConfig(num_filters=4)).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").rename(weights)
    with pytest.raises(FileNotFoundError, match=r"put it there or pass config=EncodecConfig\(\.\.\.\)$"):
        EncodecModel.from_pretrained(weights)
    assert main(["convert", str(weights), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.endswith("put it there or pass --config\n")
    assert main(["compress", str(audio), str(tmp_path / "a.ecfx"), "--model", str(weights)]) == 1
    assert capsys.readouterr().err.endswith(
        "put it there or convert it with `encodec-fx convert SOURCE OUTPUT --config CONFIG` first\n")


# --- help texts: on every option, argument and command, in one style ---------------------------------------

PROPER_NOUNS = {"Adam", "AdamW", "EnCodec", "Opus", "Ray"}  # may begin a help text with a capital


def help_style_problems(text: str | None, where: str) -> list[str]:
    """Option, argument and command help: present, in lower case like argparse's own ("show this help
    message and exit") unless it begins with a name or an abbreviation (LM, INPUT), and no full stop."""
    if not text or text == argparse.SUPPRESS or not text.strip():
        return [f"{where}: no help"]
    first = text.split()[0].rstrip(",:;").removesuffix("'s")
    problems = []
    if first[:1].isupper() and not first[1:2].isupper() and first not in PROPER_NOUNS:
        problems.append(f"{where}: {text!r} begins with a capital")
    if text.rstrip().endswith("."):
        problems.append(f"{where}: {text!r} ends with a full stop")
    return problems


def parser_help_problems(parser: argparse.ArgumentParser, where: str) -> list[str]:
    """Every argument of `parser` has help in that style; its description is sentences (a capital, a full stop)."""
    description = (parser.description or "").strip()
    problems = [] if description[:1].isupper() and description.endswith(".") else \
        [f"{where}: description {description[:40]!r}... is not sentences"]
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            problems += help_style_problems(action.help, f"{where} {'/'.join(action.option_strings) or action.dest}")
    return problems


def test_every_command_option_and_argument_has_help_in_one_style():
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    assert {"convert", "compress", "decompress", "fx", "info", "train-lm", "train-codec"} <= set(commands.choices)
    problems = parser_help_problems(parser, "encodec-fx")
    for name, command in commands.choices.items():
        problems += help_style_problems(summaries.get(name), f"encodec-fx {name} (in the command list)")
        problems += parser_help_problems(command, f"encodec-fx {name}")
    assert not problems


def test_train_lm_defaults_to_the_shipped_codec_as_compress_does():
    parser = build_parser()
    assert parser.parse_args(["train-lm", "audio", "lm.safetensors"]).model == DEFAULT_MODEL
    assert parser.parse_args(["compress", "a.wav", "a.ecfx"]).model == DEFAULT_MODEL
