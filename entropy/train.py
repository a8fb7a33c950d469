"""Train the entropy-coding LM on a codec's tokens of a folder of audio.

    python -m entropy.train AUDIO_DIR OUT.safetensors --model CODEC [--steps N]   (or `encodec-fx train-lm`)

Every file is encoded once at the codec's largest bandwidth: a lower bandwidth's codes are the first
codebooks of those (residual quantisation), so each batch samples a bandwidth and keeps that many
codebooks. Files are split into training and held-out sets by a hash of their names, so adding files
never moves an old file across the split. Reports bits per token on the held-out set and saves the
weights with metadata naming the codec (name + sha256) they were trained for.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from encodec_fx import EncodecModel
from encodec_fx.audio_io import audio_files, check_destination, is_held_out, open_audio, read_audio
from encodec_fx.channels import to_model_channels
from encodec_fx.checkpoints import weights_sha256
from encodec_fx.devices import add_device_argument, gpu_if_present
from encodec_fx.validation import check_settings

from .lm import EntropyLM, LMConfig, save_lm


@dataclass
class LMTrainingConfig:
    steps: int = 2000
    batch_size: int = 16
    crop_frames: int = 300
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    held_out_percent: int = 10
    eval_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(self, positive=("steps", "batch_size", "crop_frames", "learning_rate", "eval_every"),
                       non_negative=("weight_decay", "warmup_steps", "seed"), percents=("held_out_percent",))


@torch.inference_mode()
def encode_file(model: EncodecModel, path: Path) -> list[np.ndarray]:
    """Codes [n_q, frames] of each channel the codec sees (a mono codec codes channels separately)."""
    config = model.config
    try:
        batch = torch.from_numpy(to_model_channels(read_audio(path, config.sampling_rate), config))
    except ValueError as error:  # more channels than a stereo model codes: say which file
        raise ValueError(f"{path}: {error}") from None
    encoded = model.encode(batch, bandwidth=config.target_bandwidths[-1])
    chunks = list(encoded.audio_codes)
    if encoded.last_frame_pad_length:
        chunks[-1] = chunks[-1][..., : -encoded.last_frame_pad_length]
    codes = torch.cat(chunks, dim=-1)  # chunks one after the other: [batch, n_q, frames]
    return [sequence.numpy().astype(np.int16) for sequence in codes]


def random_batch(sequences: list[np.ndarray], batch_size: int, crop: int, codebooks: int,
                 generator: np.random.Generator) -> torch.Tensor:
    """[batch, codebooks, crop] random crops, each sequence picked in proportion to its length."""
    lengths = np.array([s.shape[-1] - crop + 1 for s in sequences], dtype=float)
    picks = generator.choice(len(sequences), size=batch_size, p=lengths / lengths.sum())
    crops = []
    for index in picks:
        start = generator.integers(0, sequences[index].shape[-1] - crop + 1)
        crops.append(sequences[index][:codebooks, start: start + crop])
    return torch.from_numpy(np.stack(crops).astype(np.int64))


def cross_entropy_bits(lm: EntropyLM, codes: torch.Tensor) -> torch.Tensor:
    logits = lm(codes)
    return F.cross_entropy(logits.flatten(0, 2), codes.flatten(), reduction="sum") / math.log(2)


@torch.no_grad()
def bits_per_token(lm: EntropyLM, sequences: list[np.ndarray], codebooks: int, window: int,
                   device: torch.device) -> float:
    """Mean code length in bits the LM gives held-out tokens, each sequence in windows of `window` frames."""
    total_bits, total_tokens = 0.0, 0
    for sequence in sequences:
        for start in range(0, sequence.shape[-1], window):
            codes = torch.from_numpy(sequence[None, :codebooks, start: start + window].astype(np.int64)).to(device)
            total_bits += float(cross_entropy_bits(lm, codes))
            total_tokens += codes.numel()
    return total_bits / total_tokens


def learning_rate(step: int, config: LMTrainingConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_lm(lm: EntropyLM, train: list[np.ndarray], held_out: list[np.ndarray], codebook_choices: list[int],
             config: LMTrainingConfig, device: torch.device,
             log: Callable[[str], None] = print) -> dict[int, float]:
    """AdamW + cosine schedule on random crops; returns held-out bits per token per codebook count."""
    crop = min(config.crop_frames, *(s.shape[-1] for s in train))
    lm.to(device).train()
    optimizer = torch.optim.AdamW(lm.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = np.random.default_rng(config.seed)
    started = time.monotonic()
    for step in range(config.steps):
        codebooks = int(generator.choice(codebook_choices))
        codes = random_batch(train, config.batch_size, crop, codebooks, generator).to(device)
        loss = cross_entropy_bits(lm, codes) / codes.numel()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            log(f"step {step + 1}/{config.steps}: train {loss.item():.3f} bits/token, "
                f"{time.monotonic() - started:.0f} s")
    lm.eval()
    return {k: bits_per_token(lm, held_out or train, k, crop, device) for k in codebook_choices}


def lm_config_for(model: EncodecModel, size: str, intra_frame: bool = True) -> LMConfig:
    """The paper's LM sized for the codec (its codebooks and 3.5 s of its frames), or a small one for
    quick experiments; with `intra_frame`, its heads also see the frame's coarser codes (see `entropy.lm`)."""
    settings = asdict(LMConfig()) | {"n_q": model.config.num_quantizers,
                                 "past_context": int(3.5 * model.config.frame_rate),
                                 "card": model.config.codebook_size, "intra_frame": intra_frame}
    if size == "small":
        settings |= {"dim": 64, "num_heads": 4, "num_layers": 2}
    return LMConfig(**settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LMTrainingConfig()
    parser.add_argument("audio_dir", help="folder of audio files (searched recursively)")
    parser.add_argument("output", help="where to write the LM (.safetensors)")
    parser.add_argument("--model", required=True, help="the codec: model directory, checkpoint or hub id")
    parser.add_argument("--size", choices=["paper", "small"], default="paper",
                        help="paper: 5 layers, dim 200 (default); small: 2 layers, dim 64")
    parser.add_argument("--intra-frame", action=argparse.BooleanOptionalAction, default=True,
                        help="heads also see the frame's coarser codes (default; --no-intra-frame: "
                             "the paper's LM, which predicts a frame's codebooks independently)")
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    add_device_argument(parser, gpu_if_present(), "cuda when there is a GPU, else cpu")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")


def run(args: argparse.Namespace) -> None:
    output = check_destination(args.output, args.force)
    config = LMTrainingConfig(**{name: getattr(args, name) for name in asdict(LMTrainingConfig())})
    torch.manual_seed(config.seed)
    codec = EncodecModel.from_pretrained(args.model)
    files = audio_files(args.audio_dir)
    if codec.config.audio_channels == 2:  # refused now, not after encoding the files before it
        for path in files:
            with open_audio(path) as file:
                if file.num_channels > 2:
                    raise ValueError(f"{path} has {file.num_channels} channels; this stereo codec codes 1 or 2: "
                                     "mix it down or leave it out")
    train, held_out = [], []
    for path in files:
        sequences = [s for s in encode_file(codec, path) if s.shape[-1] >= 2]
        (held_out if is_held_out(path, config.held_out_percent) else train).extend(sequences)
    if not train:
        raise ValueError(f"no training audio in {args.audio_dir}: every file is held out or shorter than 2 frames")
    codec_config = codec.config
    choices = [codec_config.num_quantizers_for_bandwidth(b) for b in codec_config.target_bandwidths]
    lm = EntropyLM(lm_config_for(codec, args.size, args.intra_frame))
    print(f"training on {sum(s.shape[-1] for s in train)} frames ({len(train)} sequences), "
          f"{sum(s.shape[-1] for s in held_out)} held out, device {args.device}")
    bits = train_lm(lm, train, held_out, choices, config, args.device)
    for bandwidth, k in zip(codec_config.target_bandwidths, choices):
        kbps = bits[k] * k * codec_config.frame_rate / 1000
        print(f"{bandwidth:g} kbps codes: {bits[k]:.3f} bits/token held out → about {kbps:.2f} kbps")
    metadata = {"codec": {"name": Path(str(args.model)).name, "sha256": weights_sha256(codec.state_dict())},
                "bits_per_token": {str(k): round(v, 4) for k, v in bits.items()},
                "training": asdict(config)}
    save_lm(lm.cpu(), output, metadata=metadata)
    print(f"wrote {output}")


if __name__ == "__main__":
    import sys

    from encodec_fx.cli import main
    sys.exit(main(["train-lm", *sys.argv[1:]]))
