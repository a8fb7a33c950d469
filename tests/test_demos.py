"""The effects demos run as a user runs them (a process of its own, as `python demos/NAME.py`: see DEMO_SERVER)
and write sane output; bad input gets a one-line error before any work, and no output is left partial or
overwritten unasked.

They get a tiny random-weight model saved to disk and a short input, so each takes seconds. The error
cases call a demo's `main(argv)` in this process, which is quicker than starting one."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from effects_models import noise, tiny_model
from test_cli import parser_help_problems

DEMOS = Path(__file__).resolve().parent.parent / "demos"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    tiny_model("24khz").save_pretrained(directory)
    return directory


# Runs demos as `python demos/NAME.py ARGS` runs them, each in a process of its own: one process imports the
# third-party libraries the demos import (not this project's modules, whose import is quick, so that none is
# loaded that a demo does not import; not matplotlib, which a demo imports itself or finds blocked), then forks a
# child per request that
# takes the request's folder, environment and sys.path (the demo's folder, then PYTHONPATH), points stdin at
# /dev/null and stdout and stderr at files, and runs the script as __main__ (an uncaught exception prints its
# traceback; SystemExit sets the status). A process per demo spent most of its time starting Python and torch.
DEMO_SERVER = """
import json, os, runpy, sys, traceback
quiet = os.dup(2)
os.dup2(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
import numpy, pedalboard, pedalboard.io, scipy.signal, torch
assert "matplotlib" not in sys.modules
sys.stderr.flush()
os.dup2(quiet, 2)
library_path = sys.path[1:]  # without the current folder, which -c puts first
print("ready", flush=True)
for line in sys.stdin:
    script, arguments, folder, environment, stdout, stderr = json.loads(line)
    child = os.fork()
    if child == 0:
        os.chdir(folder)
        os.environ.update(environment)
        extra = [entry for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[:] = [os.path.dirname(script), *extra, *library_path]
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, name in ((1, stdout), (2, stderr)):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv, status = [script, *arguments], 0
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            status = exit.code
            if status is None:
                status = 0
            elif not isinstance(status, int):
                print(status, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(status)
    print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
"""


@pytest.fixture(scope="module")
def demo_process(tmp_path_factory):
    """A function running a demo as `python demos/NAME.py` does, in a child of DEMO_SERVER: (its status, stdout,
    stderr), stderr beginning with what the imports wrote (which a fresh process would write each time)."""
    folder = tmp_path_factory.mktemp("demo-runs")
    server = subprocess.Popen([sys.executable, "-c", DEMO_SERVER, str(folder / "imports-stderr.txt")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=folder,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert server.stdout.readline() == "ready\n"
    imports = (folder / "imports-stderr.txt").read_text()
    runs = iter(range(1_000_000))

    def run(script: Path, arguments: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
        number = next(runs)
        stdout, stderr = folder / f"{number}.out", folder / f"{number}.err"
        server.stdin.write(json.dumps([str(script), arguments, str(cwd), env, str(stdout), str(stderr)]) + "\n")
        server.stdin.flush()
        ready, _, _ = select.select([server.stdout], [], [], 600)
        assert ready, f"{script.name} ran past 600 s"
        status = int(server.stdout.readline())
        return status, stdout.read_text(), imports + stderr.read_text()
    yield run
    server.stdin.close()
    server.wait(timeout=60)


@pytest.fixture
def run_demo(demo_process):
    def run(name: str, *arguments: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        status, stdout, stderr = demo_process(DEMOS / name, list(arguments), cwd, env or {})
        assert status == 0, stderr
        return stdout
    return run


def read(path: Path) -> tuple[np.ndarray, int]:
    with AudioFile(str(path)) as file:
        return file.read(file.frames), int(file.samplerate)


def assert_sane(audio: np.ndarray) -> None:
    assert np.isfinite(audio).all()
    assert 0 < np.abs(audio).max() < 10


def test_lofi_chain_on_the_test_signal(tmp_path, model_dir, run_demo):
    out = run_demo("lofi_chain.py", "--model", str(model_dir), "--seconds", "0.5", "--output", "lofi.wav", cwd=tmp_path)
    audio, rate = read(tmp_path / "lofi.wav")
    assert rate == 44100 and audio.shape == (2, 22050)
    assert_sane(audio)
    assert "EncodecEncoder -> TokenSubstitution -> EncodecDecoder" in out


def test_lofi_chain_streams_a_file(tmp_path, model_dir, run_demo):
    with AudioFile(str(tmp_path / "in.wav"), "w", samplerate=32000, num_channels=1, bit_depth=32) as file:
        file.write(noise(1, 16000))
    run_demo("lofi_chain.py", "in.wav", "--model", str(model_dir), "--output", "out.wav", cwd=tmp_path)
    audio, rate = read(tmp_path / "out.wav")
    assert rate == 32000 and audio.shape == (1, 16000)
    assert_sane(audio)


def test_packet_loss_writes_audio_and_spectrograms(tmp_path, model_dir, run_demo):
    out = run_demo("packet_loss.py", "--model", str(model_dir), "--seconds", "0.5", "--loss", "0.5",
                   "--prefix", "pl", cwd=tmp_path)
    clean, rate = read(tmp_path / "pl_clean.wav")
    damaged, _ = read(tmp_path / "pl_damaged.wav")
    assert rate == 24000 and clean.shape == damaged.shape == (1, 12000)
    assert_sane(clean)
    # the damage reaches the audio; how far depends on the random model (the seeded tiny one barely listens to
    # its codes: 47 % of frames lost move its output by at most 1e-3), so no size is asserted
    assert not np.array_equal(clean, damaged)
    assert (tmp_path / "pl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "% of frames lost" in out


def test_packet_loss_without_matplotlib_still_writes_audio(tmp_path, model_dir, run_demo):
    blocker = tmp_path / "no_matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked for this test')\n")
    out = run_demo("packet_loss.py", "--model", str(model_dir), "--seconds", "0.3", "--prefix", "pl", cwd=tmp_path,
                   env={"PYTHONPATH": str(blocker.parent)})
    hint = [line for line in out.splitlines() if "matplotlib" in line]
    assert hint == ["no spectrogram plot: matplotlib is not installed (pip install 'encodec-fx[demos]')"]
    assert (tmp_path / "pl_damaged.wav").exists() and not (tmp_path / "pl.png").exists()


def test_live_blocks_reports_latency_and_real_time_factor(tmp_path, model_dir, run_demo):
    out = run_demo("live_blocks.py", "--model", str(model_dir), "--seconds", "0.5", "--block", "1024",
                   "--output", "live.wav", cwd=tmp_path)
    # the model's 2239-sample round trip plus the resampler's look-ahead each way, in 44.1 kHz samples
    from encodec_fx import EncodecModel
    from encodec_fx.effects import EncodecCompressor
    latency = EncodecCompressor(6.0, model=EncodecModel.from_pretrained(model_dir)).latency_at(44100)
    assert 4114 < latency < 4254  # 2239 · 44100 / 24000 = 4114, and each look-ahead is under 1 ms
    assert f"chain latency {latency} samples ({1000 * latency / 44100:.1f} ms)" in out
    assert "real-time factor" in out and "bandwidth 6 -> 1.5 kbps" in out
    audio, rate = read(tmp_path / "live.wav")
    assert rate == 44100 and audio.shape == (2, 22050)
    assert_sane(audio)


def test_demos_explain_a_missing_model_in_one_line(tmp_path, demo_process):
    status, _, stderr = demo_process(DEMOS / "lofi_chain.py", ["--model", str(tmp_path / "none")], tmp_path, {})
    assert status == 1
    assert stderr.count("\n") == 1 and stderr.startswith("lofi_chain: error: ")


def test_quickstart_codes_with_the_shipped_model_and_fidelity_grows_with_bandwidth(tmp_path, run_demo):
    printed = run_demo("quickstart.py", cwd=tmp_path)
    snr = [float(line.rsplit("SI-SNR", 1)[1].split()[0]) for line in printed.splitlines() if "kbps: codes" in line]
    assert len(snr) == 5 and snr[-1] > snr[0] + 2, printed
    assert "packet loss | decoder: (1, 72000) float32" in printed


# --- bad input: one line on stderr, exit status 1, before any work -----------------------------------


def demo_module(name: str):
    """demos/NAME.py loaded afresh as a module (the demos are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_main(name: str):
    return demo_module(name).main


@pytest.mark.parametrize("name", ["live_blocks", "lofi_chain", "packet_loss", "quickstart"])
def test_demo_help_shows_the_whole_docstring_and_every_option_has_help(name, monkeypatch):
    """`--help` used to show the docstring's first line, cut mid-sentence; and --seed had no help."""
    parsers = []

    def capture(self, args=None, namespace=None):
        parsers.append(self)
        raise SystemExit(0)
    module = demo_module(name)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        module.main([])
    parser, = parsers
    shown = parser.format_help()
    assert [line for line in module.__doc__.splitlines() if line.strip() not in shown] == []
    assert parser_help_problems(parser, name) == []


def assert_refused(name: str, *arguments: str, capsys) -> str:
    """Runs the demo, which must refuse with one line on stderr and print nothing else; the message."""
    assert demo_main(name)(list(arguments)) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith(f"{name}: error: "), err
    assert out == "", out  # refused before any work
    return err[len(f"{name}: error: "):].rstrip("\n")


def write_wav(path: Path, frames: int, rate: int = 24000) -> Path:
    with AudioFile(str(path), "w", samplerate=rate, num_channels=1, bit_depth=32) as file:
        if frames:
            file.write(noise(1, frames))
    return path


@pytest.mark.parametrize("arguments, message", [
    (["missing.wav"], "no audio file at missing.wav"),
    (["in.ecfx"], "cannot read in.ecfx as audio"),
    (["empty.wav"], "empty.wav holds no audio samples"),
])
def test_quickstart_refuses_bad_input_in_one_line(tmp_path, model_dir, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.ecfx").write_bytes(b"ECFX not audio")
    write_wav(tmp_path / "empty.wav", 0)
    assert message in assert_refused("quickstart", *arguments, "--model", str(model_dir), capsys=capsys)


def test_quickstart_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    assert "no model at" in assert_refused("quickstart", "--model", str(tmp_path / "none"), capsys=capsys)


@pytest.mark.parametrize("name", ["lofi_chain", "packet_loss", "live_blocks"])
@pytest.mark.parametrize("seconds", ["nan", "inf", "0", "-1"])
def test_demos_refuse_a_test_signal_of_no_finite_positive_length(tmp_path, model_dir, monkeypatch, capsys, name,
                                                                 seconds):
    monkeypatch.chdir(tmp_path)
    message = assert_refused(name, "--model", str(model_dir), "--seconds", seconds, capsys=capsys)
    assert message.startswith("--seconds must be from")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["--bandwidth", "--later-bandwidth"])
def test_live_blocks_checks_both_bandwidths_before_running(model_dir, capsys, flag):
    message = assert_refused("live_blocks", "--model", str(model_dir), "--seconds", "0.1", flag, "7", capsys=capsys)
    assert message.startswith(f"{flag}: bandwidth 7.0 kbps is not supported by this model; choose one of")


@pytest.mark.parametrize("arguments, message", [
    (["--threads", "100000"], "--threads must be from 1 to"),  # torch crashes on so many
    (["--threads", "0"], "--threads must be from 1 to"),
    (["--block", "0"], "--block must be from 1 to"),
])
def test_live_blocks_bounds_threads_and_block(model_dir, capsys, arguments, message):
    assert assert_refused("live_blocks", "--model", str(model_dir), *arguments, capsys=capsys).startswith(message)


@pytest.mark.parametrize("name, arguments, message", [
    ("live_blocks", ["--output", "nodir/x.wav"], "cannot write nodir/x.wav: there is no folder nodir"),
    ("live_blocks", ["--output", "x.txt"], "cannot write x.txt: expected one of"),
    ("packet_loss", ["--prefix", "nodir/p"], "cannot write nodir/p_clean.wav: there is no folder nodir"),
    ("lofi_chain", ["--output", "nodir/x.wav"], "cannot write nodir/x.wav: there is no folder nodir"),
])
def test_demos_check_where_they_write_before_running(tmp_path, model_dir, monkeypatch, capsys, name, arguments,
                                                     message):
    monkeypatch.chdir(tmp_path)
    assert message in assert_refused(name, "--model", str(model_dir), *arguments, capsys=capsys)


@pytest.mark.parametrize("name, output", [("lofi_chain", "--output"), ("live_blocks", "--output"),
                                          ("packet_loss", "--prefix")])
def test_demos_refuse_an_empty_input(tmp_path, model_dir, monkeypatch, capsys, name, output):
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "empty.wav", 0)
    message = assert_refused(name, "empty.wav", "--model", str(model_dir), output, "out.wav", capsys=capsys)
    assert message == "empty.wav holds no audio samples"
    assert [path.name for path in tmp_path.iterdir()] == ["empty.wav"]


@pytest.mark.parametrize("name, arguments", [
    ("lofi_chain", ["in.wav", "--output", "in.wav"]),
    ("lofi_chain", ["in.wav", "--output", "./in.wav"]),
    ("live_blocks", ["in.wav", "--output", "in.wav"]),
    ("packet_loss", ["in_clean.wav", "--prefix", "in"]),
])
def test_demos_never_overwrite_their_input_even_with_force(tmp_path, model_dir, monkeypatch, capsys, name, arguments):
    monkeypatch.chdir(tmp_path)
    data = write_wav(tmp_path / arguments[0], 2400).read_bytes()
    assert "is the input file" in assert_refused(name, *arguments, "--force", "--model", str(model_dir), capsys=capsys)
    assert (tmp_path / arguments[0]).read_bytes() == data


def test_lofi_chain_overwrites_an_existing_output_only_with_force(tmp_path, model_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lofi.wav").write_bytes(b"keep me")
    arguments = ["--model", str(model_dir), "--seconds", "0.1"]
    assert assert_refused("lofi_chain", *arguments, capsys=capsys) == "lofi.wav exists; pass --force to replace it"
    assert (tmp_path / "lofi.wav").read_bytes() == b"keep me"
    assert demo_main("lofi_chain")([*arguments, "--force"]) == 0
    assert read(tmp_path / "lofi.wav")[0].shape == (2, 4410)


def test_demo_outputs_appear_whole_or_not_at_all(tmp_path, model_dir, monkeypatch, capsys):
    """A failure while writing leaves no output, partial or temporary: the lo-fi WAV, and none of
    packet_loss's three files when the last of them fails."""
    monkeypatch.chdir(tmp_path)

    def failing(position: int):
        """A writer that fails half way, having written part of the file its argument `position` names."""
        def fail(*arguments, **options):
            Path(arguments[position]).write_bytes(b"partial")
            raise OSError("disk full")
        return fail

    packet_loss = demo_module("packet_loss")
    monkeypatch.setattr(packet_loss, "pyplot", lambda: object())  # as if matplotlib were there, and failed
    monkeypatch.setattr(packet_loss, "plot", failing(1))
    assert packet_loss.main(["--model", str(model_dir), "--seconds", "0.1", "--prefix", "pl"]) == 1
    lofi_chain = demo_module("lofi_chain")
    monkeypatch.setattr("encodec_fx.audio_io.AudioFile", failing(0))  # the file write_audio opens
    assert lofi_chain.main(["--model", str(model_dir), "--seconds", "0.1"]) == 1
    assert capsys.readouterr().err.splitlines() == ["packet_loss: error: disk full", "lofi_chain: error: disk full"]
    assert not list(tmp_path.iterdir())
