"""Tokenizing a collection into Parquet shards of EnCodec codes, for training models on tokens (the
way VALL-E, MusicGen and Bark use EnCodec).

One row per input, `shard_rows` rows per shard (`shard-00000.parquet`, `shard-00001.parquet`, ... in
the inputs' stable order; see `shards`): "codes" (int16, [n_q][frames]), "n_q", "frame_rate",
"num_frames", "scales" (the 48 kHz model's per-chunk loudness, which decoding needs; empty for the
24 kHz model), "source", "duration_seconds", "sample_rate" and "channels" of the file. The journal maps
each input to its shard ("output") and "row". The folder loads as one table with
`datasets.load_dataset("parquet", data_files="OUT/*.parquet")` or `ray.data.read_parquet("OUT")`.
Audio is streamed through the model a second at a time, so memory does not grow with file length;
a mono model codes the mix of the channels, a stereo model mono or stereo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio_io import AUDIO_SUFFIXES
from .inputs import WorkItem

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import EncodecConfig
    from ..model import EncodecModel

PARQUET_SUFFIX = ".parquet"
SHARD_ROWS = 1000  # 1,000 files of 30 s at 6 kbps: a shard of about 36 MB


@dataclass
class TokenizeJob:
    """`encodec-fx tokenize`: codes of `bandwidth` kbps from codec `model`, `shard_rows` inputs a shard."""

    model: str
    bandwidth: float
    device: str = "cpu"
    shard_rows: int = SHARD_ROWS
    suffix: str = PARQUET_SUFFIX
    input_suffixes: set[str] = field(default_factory=lambda: set(AUDIO_SUFFIXES))

    def options(self) -> dict[str, Any]:
        return {"command": "tokenize", "model": self.model, "bandwidth": self.bandwidth,
                "shard_rows": self.shard_rows}

    def setup(self) -> None:
        import pyarrow  # noqa: F401  (refused here, once per worker, rather than after coding a file)

        from ..model import EncodecModel
        self._model = EncodecModel.from_pretrained(self.model, device=self.device)
        self._model.num_quantizers_for_bandwidth(self.bandwidth)

    def run(self, item: WorkItem) -> dict[str, Any]:
        """The input's row (under "row", for its shard) and what the journal records of it."""
        codes, scales, (rate, channels, length) = stream_codes(self._model, item.source, self.bandwidth)
        row = {"source": str(item.source), "duration_seconds": length / rate, "sample_rate": rate,
               "channels": channels, "n_q": int(codes.shape[0]), "frame_rate": float(self._model.config.frame_rate),
               "num_frames": int(codes.shape[-1]), "codes": codes, "scales": scales}
        return {"duration_seconds": round(length / rate, 6), "sample_rate": rate, "channels": channels,
                "n_q": int(codes.shape[0]), "num_frames": int(codes.shape[-1]), "row": row}

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        return False  # shards are checked whole by `shards.ShardSink`

    def shard_name(self, number: int) -> str:
        return f"shard-{number:05d}{PARQUET_SUFFIX}"

    def shard_row_count(self, path: Path) -> int:
        import pyarrow.parquet as pq
        metadata = pq.read_metadata(path)
        if metadata.schema.to_arrow_schema() != _schema():
            raise ValueError(f"{path} is not a shard of this version")
        return metadata.num_rows

    def write_shard(self, destination: Path, rows: list[tuple[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from entropy.atomic import replacing
        new = [row for kind, row in rows if kind == "new"]
        tables = [_table(new)] if new else []
        if len(new) < len(rows):
            tables.append(pq.read_table(destination).take([row for kind, row in rows if kind == "old"]))
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        # new rows first, then the kept ones: put each back at its place
        new_at = iter(range(len(new)))
        old_at = iter(range(len(new), len(rows)))
        order = [next(new_at) if kind == "new" else next(old_at) for kind, _ in rows]
        if order != list(range(len(rows))):
            table = table.take(order)
        with replacing(destination, overwrite=True) as (temporary,):  # the run holds the folder (its lock)
            pq.write_table(table, temporary)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as a table; the codes go in as one flat int16 buffer and offsets (no Python lists)."""
    import pyarrow as pa
    codes = [np.asarray(row["codes"], dtype=np.int16) for row in rows]
    lengths = np.concatenate([np.full(c.shape[0], c.shape[1], dtype=np.int64) for c in codes])
    inner = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)),
                                     pa.array(np.concatenate([c.reshape(-1) for c in codes]), pa.int16()))
    outer_offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in codes])]).astype(np.int32)
    columns = {name: pa.array([row[name] for row in rows], type) for name, type in zip(_schema().names, _schema().types)
               if name != "codes"}
    columns["codes"] = pa.ListArray.from_arrays(pa.array(outer_offsets), inner)
    return pa.table({name: columns[name] for name in _schema().names}, schema=_schema())


def _schema() -> pa.Schema:
    import pyarrow as pa
    return pa.schema([("source", pa.string()), ("duration_seconds", pa.float64()), ("sample_rate", pa.int32()),
                      ("channels", pa.int32()), ("n_q", pa.int32()), ("frame_rate", pa.float64()),
                      ("num_frames", pa.int64()), ("codes", pa.list_(pa.list_(pa.int16()))),
                      ("scales", pa.list_(pa.float32()))])


def stream_codes(model: EncodecModel, path: Path,
                 bandwidth: float) -> tuple[np.ndarray, list[float], tuple[int, int, int]]:
    """Codes [n_q, frames] (int16) of a file, the chunks' scales (chunked models), and the file's (rate,
    channels, samples); the file is read and coded a second at a time, as `compress` codes it."""
    import torch

    from ..audio_io import open_audio
    from ..compress import ModelBlocks, code_units, model_reader
    with open_audio(path) as file, torch.inference_mode():
        rate, channels, length = int(file.samplerate), file.num_channels, file.frames
        blocks = ModelBlocks(model_reader(file, path, model.config), model.config, to_streams=one_stream)
        units = list(code_units(model, bandwidth, blocks))
    codes = np.concatenate([unit.codes[0] for unit in units], axis=-1)
    scales = [float(scale) for unit in units if unit.scales is not None for scale in unit.scales]
    return codes, scales, (rate, channels, length)


def one_stream(audio: np.ndarray, config: EncodecConfig) -> np.ndarray:
    """(channels, n) → one stream (1, model channels, n): a mono model codes the mix."""
    from ..channels import to_model_channels
    return to_model_channels(audio.mean(axis=0, keepdims=True) if config.audio_channels == 1 else audio, config)
