"""Tokenizing for ML: the batch tokenizer against `model.encode` per item, pickling, Parquet outputs that
Hugging Face datasets and Ray Data read."""

from __future__ import annotations

import pickle

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


def test_tokenize_writes_one_parquet_row_per_file_that_datasets_and_ray_read(tmp_path, model):
    write_tone(tmp_path / "in" / "a.wav", RATE, 1, 2.0)
    write_tone(tmp_path / "in" / "sub" / "b.flac", 44_100, 2, 1.0, seed=1)
    summary = run_collection(TokenizeJob(model=DEFAULT_MODEL, bandwidth=6.0), [tmp_path / "in"], tmp_path / "out",
                             workers=1, progress=False)
    assert (summary.done, summary.failed) == (2, 0)
    table = pq.read_table(tmp_path / "out" / "a.parquet").to_pylist()[0]
    expected = alone(model, read_audio(tmp_path / "in" / "a.wav", RATE)[0], 6.0)
    np.testing.assert_array_equal(np.array(table["codes"], dtype=np.int16), expected)
    assert (table["n_q"], table["num_frames"], table["sample_rate"], table["scales"]) == (8, 150, RATE, [])

    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "**" / "*.parquet"), split="train")
    assert sorted(loaded["num_frames"]) == [75, 150]
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # started and stopped here
    try:
        frames = ray.data.read_parquet(str(tmp_path / "out"), file_extensions=["parquet"]).to_pandas()["num_frames"]
    finally:
        ray.shutdown()
    assert sorted(frames) == [75, 150]
