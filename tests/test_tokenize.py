"""Tokenizing for ML: the batch tokenizer against `model.encode` per item, pickling, Parquet outputs that
Hugging Face datasets and Ray Data read."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel
from encodec_fx.audio_io import read_audio
from encodec_fx.collection import TokenizeJob, run_collection
from encodec_fx.tokenizer import EncodecTokenizer

from test_collection import write_tone

RATE = 24_000


@pytest.fixture(scope="module")
def model():
    return EncodecModel.from_pretrained(DEFAULT_MODEL)


def alone(model, audio: np.ndarray, bandwidth: float) -> np.ndarray:
    with torch.inference_mode():
        return model.encode(torch.from_numpy(audio)[None, None], bandwidth=bandwidth).audio_codes[0, 0].numpy()


def clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = (24_000, 7_001, 15_360, 321, 640)  # three of whole frames (320 samples)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_a_padded_batch_gives_each_item_its_own_codes(model):
    tokenizer = EncodecTokenizer(bandwidth=3.0)
    batch = {"audio": [{"array": clip, "sampling_rate": RATE} for clip in clips()], "id": [0, 1, 2, 3, 4]}
    out = tokenizer(batch)
    assert out["id"] == [0, 1, 2, 3, 4] and list(out["n_q"]) == [4] * 5 and set(out["frame_rate"]) == {75.0}
    for clip, codes, frames in zip(clips(), out["codes"], out["num_frames"]):
        expected = alone(model, clip, 3.0)
        assert codes.dtype == np.int16 and codes.shape == expected.shape == (4, frames)
        np.testing.assert_array_equal(codes, expected)


def test_numpy_columns_with_a_rate_column_and_other_rates_are_resampled(model):
    audio = np.empty(2, dtype=object)
    audio[:] = [clips()[0][:16_000], np.stack([clips()[1][:7_000]] * 2)]  # 16 kHz mono; stereo → the mix
    out = EncodecTokenizer(bandwidth=1.5)({"audio": audio, "sampling_rate": np.array([16_000, 16_000])})
    assert out["codes"].dtype == object and [c.shape for c in out["codes"]] == [(2, 75), (2, 33)]


def test_the_tokenizer_pickles_without_its_model_and_works_after():
    tokenizer = EncodecTokenizer(bandwidth=1.5)
    tokenizer({"audio": [{"array": clips()[3], "sampling_rate": RATE}]})  # loads the model
    data = pickle.dumps(tokenizer)
    assert len(data) < 2_000  # the options, not 16 MB of weights
    copy = pickle.loads(data)
    out = copy({"audio": [{"array": clips()[3], "sampling_rate": RATE}]})
    assert out["codes"][0].shape == (2, 2)


@pytest.mark.parametrize("batch, message", [
    ({"speech": [np.zeros(10)]}, "no column 'audio'"),
    ({"audio": [np.zeros(10)]}, "has no sampling rate"),
    ({"audio": [{"array": np.array([np.nan]), "sampling_rate": RATE}]}, "non-empty finite"),
])
def test_bad_batches_are_named(batch, message):
    with pytest.raises(ValueError, match=message):
        EncodecTokenizer()(batch)


def test_tokenize_writes_parquet_shards_that_datasets_and_ray_read(tmp_path, model, ray_turn, monkeypatch):
    write_tone(tmp_path / "in" / "a.wav", RATE, 1, 2.0)
    write_tone(tmp_path / "in" / "sub" / "b.flac", 44_100, 2, 1.0, seed=1)
    write_tone(tmp_path / "in" / "sub" / "c.wav", RATE, 1, 0.5, seed=2)
    summary = run_collection(TokenizeJob(model=DEFAULT_MODEL, bandwidth=6.0, shard_rows=2), [tmp_path / "in"],
                             tmp_path / "out", workers=1, progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["journal.jsonl", "shard-00000.parquet",
                                                                   "shard-00001.parquet"]
    first = pq.read_table(tmp_path / "out" / "shard-00000.parquet").to_pylist()
    assert [Path(row["source"]).name for row in first] == ["a.wav", "b.flac"]  # the inputs' stable order
    expected = alone(model, read_audio(tmp_path / "in" / "a.wav", RATE)[0], 6.0)
    np.testing.assert_array_equal(np.array(first[0]["codes"], dtype=np.int16), expected)
    assert (first[0]["n_q"], first[0]["num_frames"], first[0]["sample_rate"], first[0]["scales"]) == (8, 150, RATE, [])
    assert np.array(first[1]["codes"]).shape == (8, 75) and first[1]["channels"] == 2

    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "*.parquet"), split="train")
    assert sorted(loaded["num_frames"]) == [38, 75, 150]
    ray = pytest.importorskip("ray")
    # Ray Data's Parquet reader (datasource V2, Ray 2.60) reads footers on a pool of 32 actors, each a worker process
    # to start, throttled on a one-CPU cluster; one actor reads these two footers (the same reader: older Rays
    # ignore the variable). Set before the cluster starts, so that its processes inherit it.
    monkeypatch.setenv("RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", "1")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # started and stopped here; one CPU: fewer
    # worker processes to start (three rows need no more)
    try:
        frames = ray.data.read_parquet(str(tmp_path / "out"), file_extensions=["parquet"]).to_pandas()["num_frames"]
    finally:
        ray.shutdown()
    assert sorted(frames) == [38, 75, 150]


def journal_rows(out: Path) -> dict[str, tuple[str, int]]:
    records = {}
    for line in (out / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["input"]] = record
    return {key: (r["output"], r["row"]) for key, r in records.items() if r["status"] == "done"}


def test_the_journal_maps_inputs_to_rows_and_a_rerun_codes_only_what_no_shard_holds(tmp_path):
    for number in range(5):
        write_tone(tmp_path / "in" / f"s{number % 2}" / f"c{number}.wav", RATE, 1, 0.3 + 0.1 * number, seed=number)
    (tmp_path / "in" / "bad.wav").write_bytes(b"RIFF, but not audio")
    job = TokenizeJob(model=DEFAULT_MODEL, bandwidth=1.5, shard_rows=2)
    out = tmp_path / "out"
    first = run_collection(job, [tmp_path / "in"], out, workers=2, progress=False)
    assert (first.done, first.failed) == (5, 1) and first.failures[0][0] == "bad.wav"
    rows = journal_rows(out)
    for key, (shard, row) in rows.items():  # the journal says where each input's row is, and it is there
        assert Path(pq.read_table(out / shard).column("source")[row].as_py()).name == Path(key).name
    assert rows["s0/c0.wav"] == ("shard-00000.parquet", 0)  # bad.wav failed: shard 0 holds c0 alone

    mtimes = {path.name: path.stat().st_mtime_ns for path in out.glob("*.parquet")}
    again = run_collection(job, [tmp_path / "in"], out, workers=1, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 5, 1)  # only the bad file is tried again
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("*.parquet")} == mtimes

    lost = rows["s1/c1.wav"][0]
    (out / lost).unlink()
    resumed = run_collection(job, [tmp_path / "in"], out, workers=1, progress=False)
    assert (resumed.done, resumed.skipped) == (2, 3) and (out / lost).exists()
    assert journal_rows(out) == rows

    (tmp_path / "in" / "bad.wav").unlink()  # inputs move: rows that stay in their shard are read back, not coded
    moved = run_collection(job, [tmp_path / "in"], out, workers=1, progress=False)
    assert (moved.done, moved.skipped) == (2, 3)  # c2 and c1 moved to other shards; c0, c4, c3 kept theirs
    assert sorted(p.name for p in out.glob("*.parquet")) == [f"shard-0000{n}.parquet" for n in range(3)]
    loaded = pq.read_table(sorted(out.glob("*.parquet"))).to_pylist()
    assert [Path(row["source"]).name for row in loaded] == ["c0.wav", "c2.wav", "c4.wav", "c1.wav", "c3.wav"]
    for key, (shard, row) in journal_rows(out).items():
        assert Path(pq.read_table(out / shard).column("source")[row].as_py()).name == Path(key).name


def test_tokenize_command_takes_shard_rows(tmp_path, capsys):
    from encodec_fx.cli import main
    from encodec_fx.cli.collections import SHARD_ROWS
    from encodec_fx.collection.tokenize import SHARD_ROWS as JOB_SHARD_ROWS
    assert SHARD_ROWS == JOB_SHARD_ROWS
    write_tone(tmp_path / "in" / "a.wav", RATE, 1, 0.5)
    write_tone(tmp_path / "in" / "b.wav", RATE, 1, 0.5, seed=1)
    assert main(["tokenize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-b", "1.5", "--shard-rows", "1",
                 "--workers", "1", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.parquet")) == ["shard-00000.parquet",
                                                                           "shard-00001.parquet"]
    assert main(["tokenize", str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "--shard-rows", "0", "--quiet"]) == 1
    assert "shard rows must be a whole number of at least 1" in capsys.readouterr().err
