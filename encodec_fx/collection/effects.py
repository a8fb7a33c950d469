"""Running an effect chain over a collection: each input file → the same file through the chain, with
its rate, channels and length (`encodec-fx fx` with -o). The chain is built once per worker from its
text spec, so its models load once per worker too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..audio_io import AUDIO_SUFFIXES
from .inputs import WorkItem


@dataclass
class EffectsJob:
    chain: str  # a chain spec, as `--chain` takes it (encodec_fx.effects.spec)
    model: str | None = None  # codec for codec stages without model=
    device: str = "cpu"
    block_size: int = 8192
    suffix: str = ".wav"
    input_suffixes: set[str] = field(default_factory=lambda: set(AUDIO_SUFFIXES))

    def options(self) -> dict[str, Any]:
        return {"command": "fx", "chain": self.chain, "model": self.model, "block_size": self.block_size,
                "format": self.suffix}

    def setup(self) -> None:
        from ..effects.spec import parse_chain
        self._chain = parse_chain(self.chain, default_model=self.model, default_device=self.device)

    def run(self, item: WorkItem) -> dict[str, Any]:
        from ..audio_io import open_audio
        from ..effects.files import process_file
        process_file(item.source, item.output, self._chain, block_size=self.block_size, overwrite=True)
        with open_audio(item.output) as file:
            rate, channels, frames = int(file.samplerate), file.num_channels, file.frames
        return {"duration_seconds": round(frames / rate, 6), "sample_rate": rate, "channels": channels,
                "output_bytes": item.output.stat().st_size}

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        try:
            return item.output.stat().st_size == record.get("output_bytes")
        except OSError:
            return False
