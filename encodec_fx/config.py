"""EncodecConfig: the model's hyper-parameters, with the transformers field names and JSON layout."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entropy.atomic import replacing
from entropy.number_checks import is_finite_number, is_integer

CONFIG_NAME = "config.json"
POSITIVE_INTS = ("sampling_rate", "audio_channels", "hidden_size", "num_filters", "num_residual_layers",
                 "kernel_size", "last_kernel_size", "residual_kernel_size", "dilation_growth_rate", "compress",
                 "num_lstm_layers", "codebook_size", "codebook_dim")
BOOLS = ("normalize", "use_causal_conv", "use_conv_shortcut")
PAD_MODES = ("reflect", "constant", "replicate", "circular")


def _numbers(name: str, values: object, accepted: str, valid: Callable[[object], bool]) -> list:
    """A non-empty list (or tuple) of positive numbers that pass `valid`, as a list."""
    if not isinstance(values, (list, tuple)) or not values or not all(valid(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be a list of {accepted}, got {values!r}")
    return list(values)


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
        """Refuse, field by field, a configuration no model can be built from (a hand-edited
        config.json, say), before a layer is made."""
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if name == "codebook_dim" and value is None:
                value = self.codebook_dim = self.hidden_size
            if not is_integer(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.upsampling_ratios = _numbers("upsampling_ratios", self.upsampling_ratios, "positive integers", is_integer)
        self.target_bandwidths = [float(b) for b in _numbers(
            "target_bandwidths", self.target_bandwidths, "positive kbps in increasing order", is_finite_number)]
        if self.target_bandwidths != sorted(set(self.target_bandwidths)):
            raise ValueError(f"target_bandwidths must increase, got {self.target_bandwidths}")
        if self.norm_type not in ("weight_norm", "time_group_norm"):
            raise ValueError(f"norm_type must be 'weight_norm' or 'time_group_norm', got {self.norm_type!r}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}")
        if self.codebook_size < 2 or self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")
        if self.codebook_dim != self.hidden_size:  # the quantiser works on the encoder's output as it is
            raise ValueError(f"codebook_dim must equal hidden_size ({self.hidden_size}), got {self.codebook_dim}")
        one_codebook = self.frame_rate * self.codebook_nbits / 1000
        if self.target_bandwidths[-1] < one_codebook:
            raise ValueError(f"target_bandwidths reach only {self.target_bandwidths[-1]:g} kbps; one codebook "
                             f"takes {one_codebook:g} kbps at this frame rate")
        if not (is_finite_number(self.trim_right_ratio) and 0 <= self.trim_right_ratio <= 1):
            raise ValueError(f"trim_right_ratio must be from 0 to 1, got {self.trim_right_ratio!r}")
        if not self.use_causal_conv and self.trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        self._check_chunking()

    def _check_chunking(self) -> None:
        if (self.chunk_length_s is None) != (self.overlap is None):
            raise ValueError("a chunked model needs both chunk_length_s and overlap (or neither), got "
                             f"chunk_length_s={self.chunk_length_s!r}, overlap={self.overlap!r}")
        if self.chunk_length_s is None:
            return
        if not (is_finite_number(self.overlap) and 0 <= self.overlap < 1):
            raise ValueError(f"overlap must be a fraction from 0 up to (not including) 1, got {self.overlap!r}")
        if not is_finite_number(self.chunk_length_s) or self.chunk_length_s * self.sampling_rate < self.hop_length:
            raise ValueError(f"chunk_length_s must be at least one frame ({self.hop_length / self.sampling_rate:g} s), "
                             f"got {self.chunk_length_s!r}")

    # --- presets -------------------------------------------------------------------------------

    @classmethod
    def encodec_24khz(cls, **overrides: Any) -> EncodecConfig:
        """The causal 24 kHz mono model (`facebook/encodec_24khz`)."""
        return cls(**overrides)

    @classmethod
    def encodec_48khz(cls, **overrides: Any) -> EncodecConfig:
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
        return chunk_samples(self.chunk_length_s, self.overlap, self.sampling_rate)[0]

    @property
    def chunk_stride(self) -> int | None:
        return chunk_samples(self.chunk_length_s, self.overlap, self.sampling_rate)[1]

    def chunk_sizes(self) -> tuple[int, int]:
        """(chunk_length, chunk_stride) of a chunked model, for code that has checked it is one."""
        length, stride = chunk_samples(self.chunk_length_s, self.overlap, self.sampling_rate)
        if length is None or stride is None:
            raise ValueError("this model codes audio as one chunk: it has no chunk length or stride")
        return length, stride

    @property
    def frames_per_chunk(self) -> int | None:
        """Code frames of one whole chunk (a partial last chunk has fewer); None if unchunked."""
        return None if self.chunk_length is None else -(-self.chunk_length // self.hop_length)

    def num_quantizers_for_bandwidth(self, bandwidth: float) -> int:
        """Codebooks used at `bandwidth` kbps (the references' formula)."""
        return int(max(1, math.floor(bandwidth * 1000 / (self.codebook_nbits * self.frame_rate))))

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"model_type": "encodec", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> EncodecConfig:
        """Build from a dict such as a hub `config.json`; unknown keys are ignored."""
        if not isinstance(values, dict):
            raise ValueError(f"an EnCodec config is a dict of fields, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `config.json` into `directory` (made if missing)."""
        with replacing(model_directory(directory) / CONFIG_NAME, overwrite=True) as (temporary,):
            temporary.write_text(self.to_json_string())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> EncodecConfig:
        """Read a `config.json`, given the file, the directory that holds it or a shipped model's name."""
        path = model_file(path, CONFIG_NAME)
        if not path.is_file():
            raise FileNotFoundError(f"no EnCodec config at {path}: expected a config.json file "
                                    "or a directory holding one")
        try:
            values = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of config fields")
        try:
            return cls.from_dict(values)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def chunk_samples(chunk_length_s: float | None, overlap: float | None, sampling_rate: int
                  ) -> tuple[int | None, int | None]:
    """(chunk length, stride) in samples, as transformers computes them for the config and the
    feature extractor alike; None where chunking is off."""
    if chunk_length_s is None:
        return None, None
    length = int(chunk_length_s * sampling_rate)
    return length, None if overlap is None else max(1, int((1.0 - overlap) * length))


def model_file(source: str | os.PathLike, name: str) -> Path:
    """The file `name` (config.json, preprocessor_config.json) of a model given as a shipped model's name,
    a directory holding the file, or the file itself: one rule for every reader, so a name that loads a
    model loads its config and feature extractor too. Existence is left to the caller to report."""
    from .pretrained import is_shipped, shipped_model_dir
    path = shipped_model_dir(source) if is_shipped(source) else Path(source)
    return path / name if path.is_dir() else path


def model_directory(directory: str | os.PathLike) -> Path:
    """A directory to save a model's files into, made if missing; a file at its place is refused, and
    so is "" (Path("") is the current directory, which would be written into without a word)."""
    if not isinstance(directory, (str, os.PathLike)) or not str(directory):
        raise ValueError(f"save_pretrained needs a directory path, got {directory!r}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file; save_pretrained writes a directory of files")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
