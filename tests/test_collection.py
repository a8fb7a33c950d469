"""Collection runs: inputs and outputs, the journal and resuming, local workers, a killed worker, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx.collection.compress import CompressJob
from encodec_fx.collection.inputs import WorkItem, check_output_dir, find_inputs, plan
from encodec_fx.collection.journal import JOURNAL_NAME
from encodec_fx.collection.run import run_collection
from entropy.archive import ArchiveHeader, ArchiveReader

from conftest import held_ray_turn

AUDIO = {".wav", ".flac"}
# rate, channels, seconds: mono to 6 channels, 8 to 48 kHz
SHAPES = {"a.wav": (16_000, 1, 1.0), "sub/b.flac": (44_100, 2, 1.5), "sub/deeper/c.wav": (48_000, 6, 0.5),
          "d.wav": (8_000, 1, 1.2)}


def write_tone(path, rate: int, channels: int, seconds: float, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(round(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    audio = 0.2 * np.sin(2 * np.pi * 330 * time)[None] + 0.02 * rng.standard_normal((channels, len(time)))
    with AudioFile(str(path), "w", samplerate=rate, num_channels=channels) as file:
        file.write(audio.astype(np.float32))


@pytest.fixture
def collection(tmp_path):
    root = tmp_path / "in"
    for number, (name, shape) in enumerate(SHAPES.items()):
        write_tone(root / name, *shape, seed=number)
    (root / "junk.wav").write_bytes(b"RIFF, but not audio")
    return root


def at_the_model_rate(root) -> None:
    """The collection's audio rewritten as 0.5 s of 24 kHz mono under the same names, for the tests of worker
    processes whose point is not the audio: a worker that resamples first imports scipy.signal (a second)."""
    for number, name in enumerate(SHAPES):
        write_tone(root / name, 24_000, 1, 0.5, seed=number)


def job(**changes) -> CompressJob:
    return CompressJob(**({"model": "encodec-fx-24khz", "bandwidth": 1.5, "coding": "static"} | changes))


def journal(output_dir) -> list[dict]:
    return [json.loads(line) for line in (output_dir / JOURNAL_NAME).read_text().splitlines()]


def archives(output_dir) -> dict[str, bytes]:
    return {p.relative_to(output_dir).as_posix(): p.read_bytes() for p in sorted(output_dir.rglob("*.ecfx"))}


# --- inputs and outputs -------------------------------------------------------------------------


def test_folders_mirror_their_tree_and_manifests_list_files(collection, tmp_path):
    items = plan(find_inputs([collection], AUDIO), tmp_path / "out", ".ecfx")
    assert [item.key for item in items] == ["a.ecfx", "d.ecfx", "junk.ecfx", "sub/b.ecfx", "sub/deeper/c.ecfx"]
    (collection / "list.txt").write_text("# a comment\nsub/b.flac\n\n" + str(collection / "a.wav") + "\n")
    (collection / "list.jsonl").write_text(json.dumps({"path": "d.wav", "speaker": 3}) + "\n")
    listed = find_inputs([collection / "list.txt", collection / "list.jsonl"], AUDIO)
    assert [relative.as_posix() for _, relative in listed] == ["sub/b.flac", "a.wav", "d.wav"]


def test_two_inputs_for_one_output_are_refused_naming_both(collection, tmp_path):
    other = tmp_path / "other"
    write_tone(other / "a.flac", 16_000, 1, 0.2)
    with pytest.raises(ValueError, match=r"a\.wav and .*other/a\.flac would both write"):
        plan(find_inputs([collection, other], AUDIO), tmp_path / "out", ".ecfx")
    with pytest.raises(ValueError, match="listed twice"):
        plan(find_inputs([collection / "a.wav", collection / "a.wav"], AUDIO), tmp_path / "out", ".ecfx")
    with pytest.raises(ValueError, match="would both write"):  # through the run: refused before the folder is made
        run_collection(job(), [collection, other], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["", "out", "sub/out"])
def test_an_output_folder_in_an_input_folder_is_refused(collection, inside):
    with pytest.raises(ValueError, match="inside input folder"):
        check_output_dir(collection / inside, [collection])


def test_missing_inputs_and_bad_manifests_are_named(collection, tmp_path):
    with pytest.raises(FileNotFoundError, match="no file or folder at .*nothing"):
        find_inputs([tmp_path / "nothing"], AUDIO)
    (tmp_path / "bad.jsonl").write_text('{"file": "a.wav"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: each line must be an object with a \"path\""):
        find_inputs([tmp_path / "bad.jsonl"], AUDIO)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no input files"):
        find_inputs([tmp_path / "empty"], AUDIO)


# --- runs ---------------------------------------------------------------------------------------


def test_workers_give_the_same_bytes_and_a_bad_file_is_recorded_not_fatal(collection, tmp_path):
    one = run_collection(job(), [collection], tmp_path / "one", workers=1, progress=False)
    two = run_collection(job(), [collection], tmp_path / "two", workers=2, progress=False)
    ballast = np.ones(1 << 26)  # 512 MiB more in this process while it starts the workers again
    heavy = run_collection(job(), [collection], tmp_path / "heavy", workers=2, progress=False)
    assert ballast.sum() == 1 << 26
    peaks = [max(r["worker_peak_rss_mb"] for r in run.records if r["status"] == "done") for run in (two, heavy)]
    assert abs(peaks[1] - peaks[0]) < 128, peaks  # a worker's own peak, not its parent's (ru_maxrss survives exec)
    for summary in (one, two):
        assert (summary.done, summary.skipped, summary.failed) == (4, 0, 1)
        assert summary.failures[0][0] == "junk.ecfx" and "cannot read" in summary.failures[0][1]
    assert archives(tmp_path / "one") == archives(tmp_path / "two") and len(archives(tmp_path / "one")) == 4
    records = {record["output"]: record for record in journal(tmp_path / "two")}
    c = records["sub/deeper/c.ecfx"]
    assert (c["status"], c["sample_rate"], c["channels"], c["duration_seconds"]) == ("done", 48_000, 6, 0.5)
    assert c["output_bytes"] == (tmp_path / "two/sub/deeper/c.ecfx").stat().st_size
    assert len(c["source"]["sha256"]) == 64 and c["codec"]["name"] == "encodec-fx-24khz"
    assert records["junk.ecfx"]["status"] == "failed" and "cannot read" in records["junk.ecfx"]["error"]
    assert "4 done, 0 already done, 1 failed" in two.line() and JOURNAL_NAME in two.line()


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(collection, tmp_path):
    out = tmp_path / "out"
    run_collection(job(), [collection], out, workers=1, progress=False)
    before = archives(out)
    again = run_collection(job(), [collection], out, workers=1, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 4, 1)  # the junk file is retried, and fails again
    write_tone(collection / "a.wav", 16_000, 1, 1.0, seed=99)  # changed input
    damaged = out / "sub/b.ecfx"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))  # damaged output: its CRC fails
    (out / "d.ecfx").unlink()  # lost output
    redo = run_collection(job(), [collection], out, workers=1, progress=False)
    assert (redo.done, redo.skipped) == (3, 1)
    assert archives(out)["sub/b.ecfx"] == before["sub/b.ecfx"] and archives(out)["a.ecfx"] != before["a.ecfx"]
    other = run_collection(job(bandwidth=3.0), [collection], out, workers=1, progress=False)
    assert (other.done, other.skipped) == (4, 0)  # other options: everything is redone
    shorter = run_collection(job(bandwidth=3.0, segment_seconds=0.5), [collection], out, workers=1, progress=False)
    assert (shorter.done, shorter.skipped) == (4, 0)
    with ArchiveReader(out / "sub/b.ecfx") as reader:  # 1.5 s (113 frames) in segments of 0.5067 s (38 frames)
        assert ArchiveHeader.from_dict(reader.header).segments == 3


class TextShards:
    """A sharded job without a model (as tokenize is one with): each input's row is its text, a shard a JSON
    list of rows."""

    suffix = ".json"
    input_suffixes = {".txt"}
    shard_rows = 2

    def options(self) -> dict:
        return {"command": "text-shards"}

    def setup(self) -> None:
        pass

    def run(self, item: WorkItem) -> dict:
        return {"row": item.source.read_text()}

    def is_whole(self, item: WorkItem, record: dict) -> bool:
        return False

    def shard_name(self, number: int) -> str:
        return f"shard-{number}.json"

    def write_shard(self, destination, rows: list) -> None:
        old = json.loads(destination.read_text()) if destination.exists() else []
        destination.write_text(json.dumps([row if kind == "new" else old[row] for kind, row in rows]))

    def shard_row_count(self, path) -> int:
        return len(json.loads(path.read_text()))


def test_a_journal_record_without_an_output_name_does_not_stop_a_sharded_run(tmp_path):
    """Once: a record of an input with no output name (a hand-edited or foreign journal line) beside the name
    of a shard this run no longer makes was sorted with it, a TypeError before any work."""
    (tmp_path / "in").mkdir()
    for name in "abcde":
        (tmp_path / "in" / f"{name}.txt").write_text(name * 3)
    out = tmp_path / "out"
    first = run_collection(TextShards(), [tmp_path / "in"], out, workers=1, progress=False)
    assert (first.done, first.failed) == (5, 0) and (out / "shard-2.json").exists()
    (tmp_path / "in" / "e.txt").unlink()  # shard-2 is no longer this run's
    with open(out / JOURNAL_NAME, "a", encoding="utf-8") as file:
        file.write(json.dumps({"input": "gone.txt", "status": "failed", "error": "written by hand"}) + "\n")
    again = run_collection(TextShards(), [tmp_path / "in"], out, workers=1, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 4, 0)
    assert sorted(path.name for path in out.iterdir()) == [JOURNAL_NAME, "shard-0.json", "shard-1.json"]
    assert json.loads((out / "shard-1.json").read_text()) == ["ccc", "ddd"]


def test_an_output_the_journal_did_not_write_is_kept_unless_forced(collection, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.ecfx").write_bytes(b"someone else's file")
    summary = run_collection(job(), [collection / "a.wav"], out, workers=1, progress=False)
    assert summary.failed == 1 and "pass overwrite=True" in summary.failures[0][1]  # the library's words
    assert capsys.readouterr().out.startswith(f"failed: {collection / 'a.wav'}: {out / 'a.ecfx'} exists")
    from encodec_fx.cli import command_line_message
    assert command_line_message(ValueError(summary.failures[0][1])).endswith("pass --force to replace it")
    assert (out / "a.ecfx").read_bytes() == b"someone else's file"
    forced = run_collection(job(), [collection / "a.wav"], out, workers=1, overwrite=True, progress=False)
    assert forced.done == 1 and (out / "a.ecfx").read_bytes()[:4] != b"some"


class KilledOnC(CompressJob):
    """The real job, whose worker process is killed by SIGKILL when it reaches c.wav."""

    def run(self, item: WorkItem) -> dict:
        if item.source.name == "c.wav":
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(item)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_worker_costs_only_its_file_and_the_next_run_redoes_it(collection, tmp_path):
    at_the_model_rate(collection)
    out = tmp_path / "out"
    killed = run_collection(KilledOnC(model="encodec-fx-24khz", bandwidth=1.5, coding="static"), [collection],
                            out, workers=2, progress=False)
    assert killed.done == 3 and sorted(key for key, _ in killed.failures) == ["junk.ecfx", "sub/deeper/c.ecfx"]
    assert "SIGKILL" in dict(killed.failures)["sub/deeper/c.ecfx"]
    assert not (out / "sub/deeper/c.ecfx").exists()
    assert not [p for p in out.rglob("*") if p.is_file() and p.name.startswith(".")]  # no temporary left
    # in this process: the journal decides what is redone, not the engine (two more workers cost seconds to start)
    resumed = run_collection(job(), [collection], out, workers=1, progress=False)
    assert (resumed.done, resumed.skipped) == (1, 3) and (out / "sub/deeper/c.ecfx").exists()


@pytest.mark.parametrize("arguments, message", [
    ({"engine": "spark"}, "engine must be one of local, ray"),
    ({"workers": 0}, "workers must be a whole number"),
    ({"address": "127.0.0.1:1"}, "the `address` argument names a Ray cluster"),
])
def test_bad_run_options_are_refused_before_any_work(collection, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        run_collection(job(), [collection], tmp_path / "out", progress=False, **arguments)
    assert not (tmp_path / "out").exists()


# --- Ray ----------------------------------------------------------------------------------------


def test_without_ray_the_error_names_the_extra(collection, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives import
    with pytest.raises(ValueError, match=r"pip install 'encodec-fx\[ray\]'"):
        run_collection(job(), [collection], tmp_path / "out", engine="ray", progress=False)


def test_an_unreachable_ray_cluster_is_named_before_any_work(collection, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is in the test extras; this runs where they are installed")
    assert not ray.is_initialized()
    with pytest.raises(ValueError, match=r"no Ray cluster answers at the `address` argument 127\.0\.0\.1:9"):
        run_collection(job(), [collection], tmp_path / "out", engine="ray", address="127.0.0.1:9", progress=False)
    assert not (tmp_path / "out").exists()  # refused before the output folder is made


class TestOnOneRayCluster:
    """Tests on one real local Ray cluster of two CPUs and two GPUs (logical: Ray places by count), started
    before the first of them and stopped after the last (each start costs seconds). The cluster holds the
    machine's Ray turn for as long as it lives."""

    @pytest.fixture(scope="class")
    @classmethod
    def ray_cluster(cls, tmp_path_factory):
        ray = pytest.importorskip("ray", reason="Ray is in the test extras; this runs where they are installed")
        with held_ray_turn(tmp_path_factory):
            ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
            try:
                yield ray
            finally:
                ray.shutdown()

    def test_gpus_per_worker_is_for_ray_and_more_than_the_cluster_has_is_refused(self, collection, tmp_path,
                                                                                ray_cluster):
        with pytest.raises(ValueError, match="use it with engine='ray'") as refused:
            run_collection(job(), [collection], tmp_path / "local", gpus_per_worker=1, progress=False)
        from encodec_fx.cli import command_line_message
        assert command_line_message(refused.value).startswith("--gpus-per-worker reserves GPUs for Ray actors: use "
                                                              "it with --engine ray")
        with pytest.raises(ValueError, match=r"no machine of the Ray cluster has the 3 GPUs per worker asked for "
                                             r"\(the most on one is 2\)"):
            run_collection(job(), [collection], tmp_path / "ray", engine="ray", gpus_per_worker=3, progress=False)

    def test_no_more_actors_than_the_gpus_hold(self, collection, tmp_path, ray_cluster):
        """Two GPUs for four workers of one GPU each: two actors do the work."""
        at_the_model_rate(collection)
        summary = run_collection(job(), [collection], tmp_path / "out", engine="ray", workers=4, gpus_per_worker=1,
                                 progress=False)
        assert (summary.done, summary.failed) == (4, 1)

    def test_ray_actors_give_the_same_bytes_as_local_workers(self, collection, tmp_path, ray_cluster):
        local = run_collection(job(), [collection], tmp_path / "local", workers=1, progress=False)
        on_ray = run_collection(job(), [collection], tmp_path / "ray", workers=2, engine="ray", progress=False)
        assert (on_ray.done, on_ray.failed) == (local.done, local.failed) == (4, 1)
        assert archives(tmp_path / "ray") == archives(tmp_path / "local")
        assert ray_cluster.is_initialized()  # a cluster the caller started is left running


# --- the command line ---------------------------------------------------------------------------


def cli(*args: str) -> int:
    from encodec_fx.cli import main
    return main([*map(str, args), "--quiet"])


def test_the_commands_run_over_folders_resume_verify_and_decode(collection, tmp_path, capsys):
    archives_dir, audio_dir = tmp_path / "archives", tmp_path / "audio"
    assert cli("compress", collection, "-o", archives_dir, "-b", "1.5", "--coding", "static", "--workers", "1") == 1
    assert "4 done, 0 already done, 1 failed" in capsys.readouterr().out  # the junk file: status 1
    assert cli("compress", collection / "a.wav", collection / "d.wav", "-o", archives_dir, "-b", "1.5",
               "--coding", "static", "--workers", "1") == 0
    assert "0 done, 2 already done, 0 failed" in capsys.readouterr().out
    assert cli("verify", archives_dir, "--workers", "1") == 0
    assert cli("decompress", archives_dir, "-o", audio_dir, "--format", "flac", "--workers", "1") == 0
    with AudioFile(str(audio_dir / "sub/deeper/c.flac")) as file:
        assert (file.samplerate, file.num_channels, file.frames) == (48_000, 6, 24_000)
    damaged = archives_dir / "a.ecfx"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a segment
    damaged.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli("verify", archives_dir, "--workers", "1") == 1
    out = capsys.readouterr().out
    assert "failed: " in out and "a.ecfx" in out and "3 done, 0 already done, 1 failed" in out


def test_fx_runs_a_chain_over_a_folder(collection, tmp_path, capsys):
    out = tmp_path / "fx"
    assert cli("fx", collection, "-o", out, "--chain", "gain(-6) | encodec(bandwidth=1.5)", "--format", "flac",
               "--workers", "1") == 1  # the junk file
    assert "4 done, 0 already done, 1 failed" in capsys.readouterr().out
    with AudioFile(str(out / "sub/b.flac")) as file:
        assert (file.samplerate, file.num_channels, file.frames) == (44_100, 2, 66_150)
    assert cli("fx", collection, "-o", tmp_path / "other", "--chain", "nonsense(3)") == 1
    assert "unknown effect 'nonsense'" in capsys.readouterr().err and not (tmp_path / "other").exists()


@pytest.mark.parametrize("mode", ["lm", "lm-adaptive"])
def test_lm_coded_archives_verify_decompress_and_transcode_as_collections(mode, tmp_path, capsys):
    archives_dir, source = tmp_path / "lm", tmp_path / "in" / "a.wav"
    write_tone(source, 16_000, 1, 0.3)  # 23 frames: the LM codes frame by frame, each step of each command slow
    assert cli("compress", source, "-o", archives_dir, "-b", "3", "--coding", mode) == 0
    assert cli("verify", archives_dir / "a.ecfx", "--journal-dir", tmp_path / "journal") == 0
    record = journal(tmp_path / "journal")[-1]
    assert (record["status"], record["coding_mode"]) == ("done", mode)
    assert cli("decompress", archives_dir, "-o", tmp_path / "audio") == 0
    assert cli("transcode", archives_dir, "-o", tmp_path / "lower", "-b", "1.5") == 0
    assert cli("transcode", archives_dir / "a.ecfx", tmp_path / "one.ecfx", "-b", "1.5") == 0
    assert (tmp_path / "lower" / "a.ecfx").read_bytes() == (tmp_path / "one.ecfx").read_bytes()  # the mode kept


def test_one_file_keeps_its_form_and_a_wrong_form_is_one_line(collection, tmp_path, capsys):
    assert cli("compress", collection / "a.wav", tmp_path / "a.ecfx", "-b", "1.5") == 0
    assert (tmp_path / "a.ecfx").exists()
    assert cli("compress", collection / "a.wav", collection / "d.wav", tmp_path / "x.ecfx") == 1
    assert "give INPUT OUTPUT.ecfx for one file, or inputs and -o/--output-dir" in capsys.readouterr().err


# --- verify --against, and damage named --------------------------------------------------------


def damage(path, how: str) -> None:
    """Damage an archive the way disks and copies do: a flipped bit in a segment, a file cut short, a
    flipped bit in the index or in the footer."""
    data = bytearray(path.read_bytes())
    if how == "segment":
        data[-60] ^= 0xFF  # in the last segment (the static coding's table makes the header long)
    elif how == "truncated":
        del data[-60:]
    elif how == "index":
        data[-8] ^= 0xFF  # the index's CRC, before the footer (index length, magic: 6 bytes; version 3)
    elif how == "footer":
        data[-1] ^= 0xFF  # its magic
    path.write_bytes(bytes(data))


def test_verify_against_measures_each_archive_and_names_what_is_damaged(collection, tmp_path, capsys):
    (collection / "junk.wav").unlink()
    archives_dir, journal_dir = tmp_path / "archives", tmp_path / "journal"
    assert cli("compress", collection, "-o", archives_dir, "-b", "6", "--coding", "static", "--workers", "1") == 0
    capsys.readouterr()
    assert cli("verify", archives_dir, "--against", collection, "--journal-dir", journal_dir, "--workers", "2") == 0
    out = capsys.readouterr().out
    records = {record["output"]: record for record in journal(journal_dir)}
    assert len(records) == 4 and all(record["status"] == "done" for record in records.values())
    for record in records.values():
        assert 2 < record["si_snr_db"] < 40 and 0 < record["mel_distance"] < 5, record
    assert records["sub/b.verified"]["original"] == str(collection / "sub/b.flac")
    assert "SI-SNR mean" in out and "4 file(s)" in out and "sub/b.ecfx" in out

    # the measure can tell: against another recording of the same shape, SI-SNR drops far below
    other = tmp_path / "other"
    other.mkdir()
    other_audio = np.random.default_rng(3).standard_normal((1, 16_000)).astype(np.float32) * 0.2
    with AudioFile(str(other / "a.wav"), "w", samplerate=16_000, num_channels=1) as file:
        file.write(other_audio)
    assert cli("verify", archives_dir / "a.ecfx", "--against", other / "a.wav", "--journal-dir",
               tmp_path / "j2") == 0
    assert journal(tmp_path / "j2")[-1]["si_snr_db"] < records["a.verified"]["si_snr_db"] - 10

    for name, how in [("a.ecfx", "segment"), ("d.ecfx", "truncated"), ("sub/b.ecfx", "index"),
                      ("sub/deeper/c.ecfx", "footer")]:
        damage(archives_dir / name, how)
    (collection / "a.wav").rename(tmp_path / "a.wav")  # an original gone too
    capsys.readouterr()  # one worker: the failures' words are made where the job runs, the same in either engine
    assert cli("verify", archives_dir, "--against", collection, "--workers", "1") == 1
    lines = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in capsys.readouterr().out.splitlines()
             if line.startswith("failed: ")}
    assert "segment(s) damaged" in lines[str(archives_dir / "a.ecfx")]
    assert "truncated" in lines[str(archives_dir / "d.ecfx")]
    assert "the index is damaged" in lines[str(archives_dir / "sub/b.ecfx")]
    assert "no footer" in lines[str(archives_dir / "sub/deeper/c.ecfx")]
    assert len(lines) == 4 and all("\n" not in line for line in lines.values())


def test_verify_against_a_missing_original_fails_that_archive_only(collection, tmp_path, capsys):
    archives_dir = tmp_path / "archives"
    assert cli("compress", collection / "a.wav", collection / "d.wav", "-o", archives_dir, "-b", "1.5",
               "--coding", "static", "--workers", "1") == 0
    (collection / "d.wav").unlink()
    capsys.readouterr()
    assert cli("verify", archives_dir, "--against", collection, "--workers", "1") == 1
    out = capsys.readouterr().out
    assert "no original for it: nothing at" in out and "d.ecfx" in out and "1 done, 0 already done, 1 failed" in out
    assert cli("verify", archives_dir, "--against", collection / "a.wav") == 1  # one file for many archives
    assert "--against" in capsys.readouterr().err


def test_si_snr_from_running_sums_is_the_training_metric():
    import torch

    from encodec_fx.collection.quality import si_snr_from_sums
    from encodec_fx.train.losses import si_snr
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((2, 5000)) + 0.3
    estimate = 0.7 * reference + 0.1 * rng.standard_normal((2, 5000)) - 0.2
    sums = [estimate.size, estimate.sum(), reference.sum(), (estimate**2).sum(), (reference**2).sum(),
            (estimate * reference).sum()]
    expected = si_snr(torch.from_numpy(estimate)[None], torch.from_numpy(reference)[None]).item()
    assert si_snr_from_sums(*sums) == pytest.approx(expected, abs=1e-6) and 15 < expected < 30


# --- scripts without a __main__ guard -----------------------------------------------------------


def test_a_script_without_a_main_guard_runs_workers_that_do_not_rerun_it(collection, tmp_path):
    (collection / "junk.wav").unlink()
    at_the_model_rate(collection)
    script = tmp_path / "script.py"
    script.write_text(
        "from encodec_fx.collection import CompressJob, run_collection\n"
        "print('script body ran', flush=True)\n"
        f"job = CompressJob(model='encodec-fx-24khz', bandwidth=1.5, coding='static')\n"
        f"print(run_collection(job, [{str(collection)!r}], 'out', workers=2, progress=False).line())\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("script body ran") == 1 and "4 done" in result.stdout
    assert len(archives(tmp_path / "out")) == 4


class DefinedInMain(CompressJob):
    pass


def test_a_job_class_the_workers_cannot_import_is_one_line(collection, tmp_path, monkeypatch):
    monkeypatch.setattr(DefinedInMain, "__module__", "__main__")  # as if defined in the caller's script
    monkeypatch.setattr(sys.modules["__main__"], "DefinedInMain", DefinedInMain, raising=False)
    with pytest.raises(ValueError, match="define the job's class in a module"):
        run_collection(DefinedInMain(model="encodec-fx-24khz", bandwidth=1.5), [collection], tmp_path / "out",
                       workers=2, progress=False)
