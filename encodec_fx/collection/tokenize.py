"""Tokenizing a collection: each input file → one Parquet file of its EnCodec codes, for training models
on tokens (the way VALL-E, MusicGen and Bark use EnCodec).

One row per input: "codes" (int16, [n_q][frames]), "n_q", "frame_rate", "num_frames", "scales" (the
48 kHz model's per-chunk loudness, which decoding needs; empty for the 24 kHz model), "source",
"duration_seconds", "sample_rate" and "channels" of the file. The folder loads as one table with
`datasets.load_dataset("parquet", data_files="OUT/**/*.parquet")` or `ray.data.read_parquet("OUT")`.
Audio is streamed through the model a second at a time, so memory does not grow with file length;
a mono model codes the mix of the channels, a stereo model mono or stereo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio_io import AUDIO_SUFFIXES
from .inputs import WorkItem

PARQUET_SUFFIX = ".parquet"


@dataclass
class TokenizeJob:
    model: str
    bandwidth: float
    device: str = "cpu"
    suffix: str = PARQUET_SUFFIX
    input_suffixes: set[str] = field(default_factory=lambda: set(AUDIO_SUFFIXES))

    def options(self) -> dict[str, Any]:
        return {"command": "tokenize", "model": self.model, "bandwidth": self.bandwidth}

    def setup(self) -> None:
        import pyarrow  # noqa: F401  (refused here, once per worker, rather than after coding a file)

        from ..model import EncodecModel
        self._model = EncodecModel.from_pretrained(self.model, device=self.device)
        self._model.num_quantizers_for_bandwidth(self.bandwidth)

    def run(self, item: WorkItem) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from entropy.atomic import replacing
        codes, scales, (rate, channels, length) = stream_codes(self._model, item.source, self.bandwidth)
        config = self._model.config
        row = {"source": str(item.source), "duration_seconds": length / rate, "sample_rate": rate,
               "channels": channels, "n_q": codes.shape[0], "frame_rate": float(config.frame_rate),
               "num_frames": codes.shape[-1], "codes": [codes.tolist()], "scales": [scales]}
        table = pa.table({name: value if isinstance(value, list) else [value] for name, value in row.items()},
                         schema=_schema())
        with replacing(item.output) as (temporary,):
            pq.write_table(table, temporary)
        return {"duration_seconds": round(length / rate, 6), "sample_rate": rate, "channels": channels,
                "n_q": int(codes.shape[0]), "num_frames": int(codes.shape[-1]),
                "output_bytes": item.output.stat().st_size}

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        try:
            import pyarrow.parquet as pq
            if item.output.stat().st_size != record.get("output_bytes"):
                return False
            return pq.read_metadata(item.output).num_rows == 1
        except Exception:  # unreadable in any way: redo it
            return False


def _schema():
    import pyarrow as pa
    return pa.schema([("source", pa.string()), ("duration_seconds", pa.float64()), ("sample_rate", pa.int32()),
                      ("channels", pa.int32()), ("n_q", pa.int32()), ("frame_rate", pa.float64()),
                      ("num_frames", pa.int64()), ("codes", pa.list_(pa.list_(pa.int16()))),
                      ("scales", pa.list_(pa.float32()))])


def stream_codes(model, path: Path, bandwidth: float) -> tuple[np.ndarray, list[float], tuple[int, int, int]]:
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


def one_stream(audio: np.ndarray, config) -> np.ndarray:
    """(channels, n) → one stream (1, model channels, n): a mono model codes the mix."""
    from ..channels import to_model_channels
    return to_model_channels(audio.mean(axis=0, keepdims=True) if config.audio_channels == 1 else audio, config)
