"""Collection runs under faults, through the real command in a subprocess: Ctrl-C in the middle of a run
with two workers, and a disk that fills up (a real, small tmpfs mounted in a user namespace)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ctrl_c_reaches, small_filesystem_works
from test_collection import cli, write_tone

COMMAND = [sys.executable, "-m", "encodec_fx.cli"]


def records(out) -> list[dict]:
    """Every line of the journal, each of which must be whole JSON."""
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def after_queued(out) -> dict[str, dict]:
    """Each output's latest record; every input was journaled as queued before any worker took it."""
    lines = records(out)
    queued = [record["output"] for record in lines if record["status"] == "queued"]
    assert queued and lines[:len(queued)] == [r for r in lines if r["status"] == "queued"]
    return {record["output"]: record for record in lines}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process is POSIX")
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_ctrl_c_leaves_whole_outputs_a_consistent_journal_and_the_next_run_does_the_rest(engine, tmp_path, capsys,
                                                                                        request):
    """For Ray, the run starts its own local cluster, which Ctrl-C must stop with the actors mid-file."""
    if engine == "ray":
        request.getfixturevalue("ray_turn")
    source, out = tmp_path / "in", tmp_path / "out"
    # 12 s clips: when the first is done, both workers are mid-file with a clip's work to go (the margin to be
    # interrupted); six: files done, interrupted and not yet started, and less for the rerun to do
    for number in range(6):
        write_tone(source / f"set{number % 2}" / f"clip{number:02d}.wav", 24_000, 1, 12.0, seed=number)
    run = subprocess.Popen([*COMMAND, "compress", str(source), "-o", str(out), "-b", "6", "--coding", "static",
                            "--workers", "2", "--engine", engine, "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:  # wait for the first finished file
        if (out / "journal.jsonl").exists() and '"status": "done"' in (out / "journal.jsonl").read_text():
            break
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be interrupted: give it more work"
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["encodec-fx compress: interrupted"]

    latest = after_queued(out)
    done = {key for key, record in latest.items() if record["status"] == "done"}
    assert 1 <= len(done) < 6
    for key in done:  # what the journal says is done is there, whole
        assert (out / key).stat().st_size == latest[key]["output_bytes"]
    files = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    assert files == done | {"journal.jsonl"}  # no partial output, no temporary, nothing unrecorded
    assert all(record["error"] == "interrupted before it finished"
               for record in latest.values() if record["status"] == "failed")

    # the rest, in this process (the journal decides what is left, not the engine; starting workers costs seconds)
    assert cli("compress", source, "-o", out, "-b", "6", "--coding", "static", "--workers", "1") == 0
    assert f"{6 - len(done)} done, {len(done)} already done, 0 failed" in capsys.readouterr().out
    assert len(list(out.rglob("*.ecfx"))) == 6


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """In /proc and not a zombie (an orphan that an init without reaping leaves there)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_run_killed_outright_takes_its_workers_with_it_and_the_next_run_does_the_rest(tmp_path, capsys):
    """SIGKILL to the run itself (kill -9, the OOM killer): the workers die with it, nothing partial is left,
    and a file finished in the instant of the kill is one the journal names (queued), so the next run redoes
    it instead of refusing to replace it."""
    source, out = tmp_path / "in", tmp_path / "out"
    for number in range(6):
        write_tone(source / f"clip{number}.wav", 24_000, 1, 12.0, seed=number)
    run = subprocess.Popen([*COMMAND, "compress", str(source), "-o", str(out), "-b", "6", "--coding", "static",
                            "--workers", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:  # wait for the first finished file
        if (out / "journal.jsonl").exists() and '"status": "done"' in (out / "journal.jsonl").read_text():
            break
        time.sleep(0.02)
    workers = children(run.pid)
    assert run.poll() is None and len(workers) == 2, "the run ended before it could be killed: give it more work"
    run.kill()
    _, stderr = run.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)  # they are not our children: /proc says when they are gone
    assert not any(map(alive, workers)), "a worker outlived the run"
    assert "Traceback" not in stderr

    latest = after_queued(out)
    done = {key for key, record in latest.items() if record["status"] == "done"}
    files = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    # A worker may finish its file in the instant between the kill and the parent's "done" line: such a file
    # (at most one per worker) is whole, its latest record "queued", and the next run redoes it.
    finished_unrecorded = files - done - {"journal.jsonl"}
    assert not [name for name in files if Path(name).name.startswith(".")]  # no temporary left
    assert 1 <= len(done) < 6 and done | {"journal.jsonl"} <= files
    assert all(latest[key]["output_bytes"] == (out / key).stat().st_size for key in done)
    assert len(finished_unrecorded) <= 2, finished_unrecorded
    assert all(latest.get(key, {}).get("status") == "queued" for key in finished_unrecorded), finished_unrecorded
    then = {key: (out / key).read_bytes() for key in finished_unrecorded}
    assert cli("compress", source, "-o", out, "-b", "6", "--coding", "static", "--workers", "1") == 0  # as above
    assert f"{6 - len(done)} done, {len(done)} already done, 0 failed" in capsys.readouterr().out
    assert all((out / key).read_bytes() == data for key, data in then.items())  # they were whole


@pytest.mark.skipif(not small_filesystem_works(), reason="needs unshare and user namespaces to mount a small tmpfs")
def test_a_full_disk_fails_that_file_in_one_line_leaves_nothing_of_it_and_the_run_goes_on(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    write_tone(source / "a.wav", 24_000, 1, 1.0)
    write_tone(source / "b.wav", 24_000, 1, 20.0, seed=1)  # about 60 kB at 24 kbps: more than the disk holds
    write_tone(source / "c.wav", 24_000, 1, 1.0, seed=2)
    out.mkdir()
    compress = " ".join([*COMMAND, "compress", str(source), "-o", str(out), "-b", "24", "--coding", "static",
                         "--workers", "2", "--quiet"])
    # the tmpfs lives as long as the namespace: what it holds is listed from inside
    script = (f"mount -t tmpfs -o size=32k tmpfs {out} && {compress}; echo status=$?; "
              f"find {out} -type f -printf 'file %P\\n'; cat {out}/journal.jsonl")
    result = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    assert "status=1" in lines, result.stderr
    assert sorted(line[5:] for line in lines if line.startswith("file ")) == ["a.ecfx", "c.ecfx", "journal.jsonl"]
    journal = {record["output"]: record for record in map(json.loads, (line for line in lines if line[:1] == "{"))}
    assert (journal["a.ecfx"]["status"], journal["c.ecfx"]["status"]) == ("done", "done")
    error = journal["b.ecfx"]["error"]
    assert journal["b.ecfx"]["status"] == "failed" and "\n" not in error
    assert error.startswith("no space left on the device for") and "b.ecfx" in error
    assert f"failed: {source / 'b.wav'}: no space left on the device" in result.stdout
    assert "2 done, 0 already done, 1 failed" in result.stdout and "Traceback" not in result.stderr
