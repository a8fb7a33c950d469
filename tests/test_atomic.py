"""Writers never clobber, never leave orphans, and name a full disk or a refused permission: `entropy.atomic`
through its real system calls, and the real command line in subprocesses racing, killed, terminated, on a
full tmpfs (a user namespace; there through `main`, in one process), under a file size limit and as a user who
may not write."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from entropy import atomic
from entropy.atomic import create_temporary, remove_stale, replacing, temporary_pattern

from conftest import small_filesystem_works

COMMAND = [sys.executable, "-m", "encodec_fx.cli"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="signals, links and locks are POSIX")


def leftovers(folder: Path) -> list[str]:
    """Names in `folder` that are temporaries of this package."""
    return sorted(path.name for path in folder.iterdir() if atomic.ANY_TEMPORARY.fullmatch(path.name))


# --- the library ---------------------------------------------------------------------------------


def test_a_file_that_appears_while_writing_is_left_alone_and_the_write_fails(tmp_path):
    out = tmp_path / "out.bin"
    with pytest.raises(FileExistsError, match="already exists .*another writer.*pass overwrite=True"):
        with replacing(out) as (temporary,):
            temporary.write_bytes(b"mine")
            out.write_bytes(b"theirs")  # another writer, between any check and the move into place
    assert out.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["out.bin"]


def test_with_overwrite_the_last_writer_wins_whole_with_usual_permissions(tmp_path):
    out = tmp_path / "out.bin"
    with replacing(out, overwrite=True) as (temporary,):
        temporary.write_bytes(b"mine")
        out.write_bytes(b"theirs")
    umask = os.umask(0)
    os.umask(umask)
    assert out.read_bytes() == b"mine" and os.listdir(tmp_path) == ["out.bin"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_of_several_files_none_is_written_when_one_is_taken(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    with pytest.raises(FileExistsError, match="b.json already exists"):
        with replacing(first, second) as (one, two):
            one.write_text("1")
            two.write_text("2")
            second.write_text("theirs")
    assert not first.exists() and second.read_text() == "theirs" and leftovers(tmp_path) == []


@POSIX
def test_the_exclusive_rename_fallback_refuses_an_existing_file(tmp_path):
    """renameat2(RENAME_NOREPLACE) / renamex_np(RENAME_EXCL), used where a file system has no hard links."""
    source, taken, free = tmp_path / "source", tmp_path / "taken", tmp_path / "free"
    source.write_text("new")
    taken.write_text("old")
    try:
        with pytest.raises(FileExistsError, match="taken already exists"):
            atomic._rename_no_replace(source, taken)
    except AssertionError:
        pytest.skip("this system has no exclusive rename (the O_EXCL placeholder is used instead)")
    assert taken.read_text() == "old" and source.read_text() == "new"
    assert atomic._rename_no_replace(source, free) and free.read_text() == "new" and not source.exists()


def test_temporaries_are_named_after_their_destination_and_process(tmp_path):
    temporary = create_temporary(tmp_path / "song.flac")
    try:
        assert re.fullmatch(rf"\.song\.flac\.encodec-fx-{os.getpid()}-[0-9a-f]{{8}}\.tmp\.flac", temporary.name)
        assert temporary_pattern(tmp_path / "song.flac").fullmatch(temporary.name)
        assert remove_stale(tmp_path / "song.flac") == [] and temporary.exists()  # ours, alive
    finally:
        atomic.discard(temporary)
    assert os.listdir(tmp_path) == []


@POSIX
def test_a_living_writers_temporary_is_kept_and_a_killed_ones_removed(tmp_path):
    """The proof of death is the writer's lock, let go by the kernel when it dies, even by kill -9."""
    out = tmp_path / "out.wav"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from entropy.atomic import create_temporary; "
                               "print(create_temporary(sys.argv[1]), flush=True); time.sleep(60)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        temporary = Path(holder.stdout.readline().strip())
        assert temporary.exists() and str(holder.pid) in temporary.name
        assert remove_stale(out) == [] and temporary.exists()
    finally:
        holder.kill()
        holder.wait()
    assert temporary.exists()  # killed: nothing of it ran to remove its temporary
    assert remove_stale(out) == [temporary] and not temporary.exists()


# --- the command line: races, kills, signals -----------------------------------------------------


def write_noise(path: Path, seconds: float, rate: int = 16_000) -> None:
    from encodec_fx.audio_io import write_audio
    noise = np.random.default_rng(0).standard_normal((1, int(seconds * rate))).astype(np.float32) * 0.3
    write_audio(path, noise, rate)


def start_fx(source: Path, out: Path, gain_db: float, *extra: str) -> subprocess.Popen:
    """`fx` with a tiny block size, so that it writes for a while."""
    return subprocess.Popen([*COMMAND, "fx", str(source), str(out), "--chain", f"gain(gain_db={gain_db})",
                             "--block-size", "8", "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_temporary(run: subprocess.Popen, out: Path, timeout: float = 120) -> Path:
    """The temporary `run` writes `out` through, once it exists (the run is then past every check)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.encodec-fx-{run.pid}-[0-9a-f]{{8}}\.tmp\.wav")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in out.parent.iterdir():
            try:
                if pattern.fullmatch(path.name) and path.stat().st_size > 0:  # the write, not the writability probe
                    return path
            except FileNotFoundError:  # the probe, removed between the listing and the look
                pass
        assert run.poll() is None, f"the run ended before it was caught writing: {run.communicate()}"
        time.sleep(0.002)
    raise AssertionError("the run never started writing")


@pytest.fixture(scope="module")
def noise(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "noise.wav"
    write_noise(path, 12.0)
    return path


@POSIX
@pytest.mark.parametrize("force", [False, True], ids=["without --force", "with --force"])
def test_two_runs_racing_to_one_output(noise, tmp_path, force):
    """A is stopped mid-write (past its existence check), B runs to the end, A goes on: without --force A fails
    in one line and B's file stays; with --force A's whole file replaces B's."""
    from encodec_fx.audio_io import read_audio
    out = tmp_path / "out.wav"
    flags = ["--force"] if force else []
    first = start_fx(noise, out, -6.0, *flags)
    try:
        wait_for_temporary(first, out)
        first.send_signal(signal.SIGSTOP)
        second = subprocess.run([*COMMAND, "fx", str(noise), str(out), "--chain", "gain(gain_db=6.0)", "--quiet",
                                 *flags], capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        seconds = out.read_bytes()
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    source = read_audio(noise)
    if force:
        assert first.returncode == 0, stderr
        np.testing.assert_allclose(read_audio(out), source * 10 ** (-6 / 20), rtol=1e-5, atol=1e-7)  # A's, whole
    else:
        assert first.returncode == 1
        assert stderr.strip().splitlines() == [f"encodec-fx fx: error: {out} already exists (another writer may "
                                               "have made it while this one was writing); it is left as it is: "
                                               "pass --force to replace it"]
        assert out.read_bytes() == seconds  # B's, untouched
        np.testing.assert_allclose(read_audio(out), source * 10 ** (6 / 20), rtol=1e-5, atol=1e-7)
    assert leftovers(tmp_path) == []


@POSIX
def test_kill_9_leaves_a_temporary_that_the_next_run_removes(noise, tmp_path):
    out = tmp_path / "out.wav"
    victim = start_fx(noise, out, -6.0)
    temporary = wait_for_temporary(victim, out)
    victim.kill()
    victim.wait()
    assert temporary.exists() and not out.exists()  # the orphan nothing in the killed process could remove
    rerun = subprocess.run([*COMMAND, "fx", str(noise), str(out), "--chain", "gain(gain_db=1.0)", "--quiet"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]


@POSIX
def test_sigterm_unwinds_removing_the_temporary(noise, tmp_path):
    out = tmp_path / "out.wav"
    run = start_fx(noise, out, -6.0)
    wait_for_temporary(run, out)
    run.terminate()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143
    assert stderr.strip().splitlines() == ["encodec-fx fx: terminated"]
    assert os.listdir(tmp_path) == []


# --- full disks and refused permissions ---------------------------------------------------------


WRITERS = """
import sys
from pathlib import Path
import numpy as np
from encodec_fx.cli import main
out = Path(sys.argv[1])
for command in (["fx", sys.argv[2], str(out / "fx.wav"), "--chain", "gain(1)", "--quiet"],
                ["decompress", sys.argv[3], str(out / "d.wav"), "--quiet"]):
    print(f"status={main(command)}", flush=True)
noise = np.random.default_rng(0).standard_normal((1, 200_000)).astype(np.float32)
def attempt(name, write):
    try:
        write()
        print(name, "wrote")
    except OSError as error:
        print(name, "error", type(error).__name__, error.errno, error)
from encodec_fx.audio_io import write_audio
attempt("write_audio", lambda: write_audio(out / "a.flac", noise, 16_000))
from encodec_fx.compress import compress_file
from encodec_fx.model import EncodecModel
attempt("compress_file", lambda: compress_file(sys.argv[2], out / "a.ecfx", EncodecModel.from_pretrained(
    "encodec-fx-24khz"), bandwidth=24.0, model_name="encodec-fx-24khz", mode="raw", progress=False))
from encodec_fx.train.export import export_generator
from encodec_fx import EncodecConfig, EncodecModel
attempt("export_generator", lambda: export_generator(EncodecModel(EncodecConfig(num_filters=4)), out / "m.safetensors"))
from entropy.lm import EntropyLM, LMConfig, save_lm
lm = EntropyLM(LMConfig(n_q=4, dim=64, num_heads=4, num_layers=2))
attempt("save_lm", lambda: save_lm(lm, out / "lm.safetensors"))
"""


@pytest.mark.skipif(not small_filesystem_works(), reason="needs unshare and user namespaces to mount a small tmpfs")
def test_a_full_disk_reads_as_such_in_every_writer_and_leaves_nothing(noise, tmp_path):
    """A real ENOSPC: a 64 KiB tmpfs. fx and decompress used to say "unexpected RuntimeError: Unable to write
    data to audio file"; the library's writers (audio, archive, export, LM) say the same one line. The commands
    run through `main`, their entry point, in the one process on the tmpfs that also tries the library's writers
    (a process each cost seconds of starting Python and torch)."""
    from encodec_fx.compress import compress_file
    from encodec_fx.model import EncodecModel
    archive = tmp_path / "noise.ecfx"
    compress_file(noise, archive, EncodecModel.from_pretrained("encodec-fx-24khz"), bandwidth=6.0,
                  model_name="encodec-fx-24khz", mode="raw", progress=False)
    out = tmp_path / "out"
    out.mkdir()
    script = (f"mount -t tmpfs -o size=32k tmpfs {out} && "
              f"{sys.executable} -c '{WRITERS}' {out} {noise} {archive}; ls -A {out}; echo listed")
    result = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    lines, errors = result.stdout.splitlines(), result.stderr.splitlines()
    assert lines.count("status=1") == 2, result.stderr
    assert f"encodec-fx fx: error: no space left on device writing {out}/fx.wav" in errors
    assert f"encodec-fx decompress: error: no space left on device writing {out}/d.wav" in errors
    for name, path in [("write_audio", "a.flac"), ("compress_file", "a.ecfx"), ("export_generator", "m.safetensors"),
                       ("save_lm", "lm.safetensors")]:
        assert f"{name} error OSError 28 no space left on device writing {out}/{path}" in lines, result.stdout
    assert lines[-1] == "listed" and lines[-2].startswith("save_lm")  # the folder is empty: nothing left
    assert "Traceback" not in result.stderr


@POSIX
def test_a_file_size_limit_reads_as_a_full_disk(noise, tmp_path):
    """RLIMIT_FSIZE (ulimit -f): the command ignores SIGXFSZ, so the write fails with EFBIG, said in one line."""
    out = tmp_path / "out.wav"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
    result = subprocess.run([*COMMAND, "fx", str(noise), str(out), "--chain", "gain(1)", "--quiet"],
                            capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"encodec-fx fx: error: no space left on device writing {out}: "
                                                  "the file size limit (ulimit -f) is reached"]
    assert os.listdir(tmp_path) == []


def lock_folder(folder: Path) -> bool:
    """Make `folder` refuse new files to this user: read-only permissions, or for root (whom permissions do not
    stop) the immutable attribute; False if neither can be done here."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return True
    return shutil.which("chattr") is not None and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0


def unlock_folder(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    os.chmod(folder, 0o755)


@POSIX
def test_an_unwritable_folder_is_said_before_the_work(noise, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if not lock_folder(folder):
        pytest.skip("cannot make a folder unwritable to this user here (root without chattr)")
    try:
        for command, out in ((["fx", "--chain", "gain(1)"], folder / "out.wav"),
                             (["compress", "--coding", "raw"], folder / "out.ecfx")):
            result = subprocess.run([*COMMAND, *command, str(noise), str(out), "--quiet"],
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 1
            assert result.stderr.strip().splitlines() == [f"encodec-fx {command[0]}: error: permission denied "
                                                          f"writing {out}"]
        assert os.listdir(folder) == []
    finally:
        unlock_folder(folder)


def test_ctrl_c_while_placing_several_files_takes_back_those_already_placed(tmp_path, monkeypatch):
    """All or none holds for Ctrl-C and SIGTERM (KeyboardInterrupt) as for errors: here the interrupt comes
    after both files are in place, before the folder's fsync."""
    import entropy.atomic

    def interrupted(folder):
        raise KeyboardInterrupt
    monkeypatch.setattr(entropy.atomic, "fsync_folder", interrupted)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        with entropy.atomic.replacing(first, second) as (one, two):
            one.write_text("1")
            two.write_text("2")
    assert sorted(path.name for path in tmp_path.iterdir()) == []
