"""EncodecConfig: the model's hyper-parameters, with the transformers field names and JSON layout."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_NAME = "config.json"


@dataclass
class EncodecConfig:
    """Hyper-parameters of an EnCodec model.

    Field names and defaults are those of `transformers.EncodecConfig` (the 24 kHz model), so a hub
    `config.json` loads unchanged; keys we do not use are tolerated and dropped.
    """

    target_bandwidths: list[float] = field(default_factory=lambda: [1.5, 3.0, 6.0, 12.0, 24.0])
    sampling_rate: int = 24_000
    audio_channels: int = 1
    normalize: bool = False
    chunk_length_s: float | None = None
    overlap: float | None = None
    hidden_size: int = 128
    num_filters: int = 32
    num_residual_layers: int = 1
    upsampling_ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    norm_type: str = "weight_norm"
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2
    use_causal_conv: bool = True
    pad_mode: str = "reflect"
    compress: int = 2
    num_lstm_layers: int = 2
    trim_right_ratio: float = 1.0
    codebook_size: int = 1024
    codebook_dim: int | None = None
    use_conv_shortcut: bool = True

    def __post_init__(self) -> None:
        self.target_bandwidths = [float(b) for b in self.target_bandwidths]
        self.upsampling_ratios = [int(r) for r in self.upsampling_ratios]
        if self.codebook_dim is None:
            self.codebook_dim = self.hidden_size
        if self.norm_type not in ("weight_norm", "time_group_norm"):
            raise ValueError(f"norm_type must be 'weight_norm' or 'time_group_norm', got {self.norm_type!r}")
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")
        if not self.target_bandwidths:
            raise ValueError("target_bandwidths must name at least one bandwidth")
        if not self.use_causal_conv and self.trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")

    # --- presets -------------------------------------------------------------------------------

    @classmethod
    def encodec_24khz(cls, **overrides) -> EncodecConfig:
        """The causal 24 kHz mono model (`facebook/encodec_24khz`)."""
        return cls(**overrides)

    @classmethod
    def encodec_48khz(cls, **overrides) -> EncodecConfig:
        """The non-causal 48 kHz stereo model, normalised and chunked (`facebook/encodec_48khz`)."""
        settings = dict(
            target_bandwidths=[3.0, 6.0, 12.0, 24.0],
            sampling_rate=48_000,
            audio_channels=2,
            normalize=True,
            chunk_length_s=1.0,
            overlap=0.01,
            norm_type="time_group_norm",
            use_causal_conv=False,
        )
        return cls(**{**settings, **overrides})

    # --- derived quantities --------------------------------------------------------------------

    @property
    def hop_length(self) -> int:
        """Audio samples per code frame."""
        return math.prod(self.upsampling_ratios)

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)

    @property
    def codebook_nbits(self) -> int:
        return math.ceil(math.log2(self.codebook_size))

    @property
    def num_quantizers(self) -> int:
        """Codebooks in the model: enough for the largest bandwidth."""
        return int(1000 * self.target_bandwidths[-1] // (self.frame_rate * self.codebook_nbits))

    @property
    def chunk_length(self) -> int | None:
        if self.chunk_length_s is None:
            return None
        return int(self.chunk_length_s * self.sampling_rate)

    @property
    def chunk_stride(self) -> int | None:
        if self.chunk_length_s is None or self.overlap is None:
            return None
        return max(1, int((1.0 - self.overlap) * self.chunk_length))

    def num_quantizers_for_bandwidth(self, bandwidth: float) -> int:
        """Codebooks used at `bandwidth` kbps (the references' formula)."""
        return int(max(1, math.floor(bandwidth * 1000 / (self.codebook_nbits * self.frame_rate))))

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"model_type": "encodec", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> EncodecConfig:
        """Build from a dict such as a hub `config.json`; unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(self.to_json_string())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> EncodecConfig:
        """Read a `config.json`, given the file or the directory that holds it."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no EnCodec config at {path}: expected a config.json file or a directory holding one")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of config fields")
        return cls.from_dict(values)
