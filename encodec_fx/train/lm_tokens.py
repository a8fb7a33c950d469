"""Train the entropy-coding LM on a codec's tokens of a folder of audio.

`encodec-fx train-lm` encodes every file once at the codec's largest bandwidth: a lower bandwidth's
codes are the first codebooks of those (residual quantisation), so each batch samples a bandwidth and
keeps that many codebooks (`entropy.train.train_lm`). Files are split into training and held-out sets
by a hash of their names, so adding files never moves an old file across the split. Reports bits per
token on the held-out set and saves the weights with metadata naming the codec (name + sha256) they
were trained for.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from entropy.lm import EntropyLM, save_lm
from entropy.train import lm_config_for, train_lm
from entropy.train_settings import LMTrainingConfig

from ..audio_io import audio_files, check_destination, is_held_out, open_audio, read_audio
from ..channels import to_model_channels
from ..checkpoints import weights_sha256
from ..model import EncodecModel
from ..outputs import EncodecEncoderOutput


@torch.inference_mode()
def encode_file(model: EncodecModel, path: Path) -> list[np.ndarray]:
    """Codes [n_q, frames] of each channel the codec sees (a mono codec codes channels separately)."""
    config = model.config
    try:
        batch = torch.from_numpy(to_model_channels(read_audio(path, config.sampling_rate), config))
    except ValueError as error:  # more channels than a stereo model codes: say which file
        raise ValueError(f"{path}: {error}") from None
    encoded = model.encode(batch, bandwidth=config.target_bandwidths[-1])
    assert isinstance(encoded, EncodecEncoderOutput) and encoded.audio_codes is not None  # return_dict=True
    chunks = list(encoded.audio_codes)
    if encoded.last_frame_pad_length:
        chunks[-1] = chunks[-1][..., : -encoded.last_frame_pad_length]
    codes = torch.cat(chunks, dim=-1)  # chunks one after the other: [batch, n_q, frames]
    return [sequence.numpy().astype(np.int16) for sequence in codes]


def run(args: argparse.Namespace) -> None:
    """The `train-lm` command, its options as `encodec_fx.cli.training` declares them."""
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
    train: list[np.ndarray] = []
    held_out: list[np.ndarray] = []
    for path in files:
        sequences = [s for s in encode_file(codec, path) if s.shape[-1] >= 2]
        (held_out if is_held_out(path, config.held_out_percent) else train).extend(sequences)
    if not train:
        raise ValueError(f"no training audio in {args.audio_dir}: every file is held out or shorter than 2 frames")
    codec_config = codec.config
    choices = [codec_config.num_quantizers_for_bandwidth(b) for b in codec_config.target_bandwidths]
    lm = EntropyLM(lm_config_for(codec_config.num_quantizers, codec_config.codebook_size, codec_config.frame_rate,
                                 args.size, args.intra_frame))
    print(f"training on {sum(s.shape[-1] for s in train)} frames ({len(train)} sequences), "
          f"{sum(s.shape[-1] for s in held_out)} held out, device {args.device}")
    bits = train_lm(lm, train, held_out, choices, config, args.device)
    for bandwidth, k in zip(codec_config.target_bandwidths, choices):
        kbps = bits[k] * k * codec_config.frame_rate / 1000
        print(f"{bandwidth:g} kbps codes: {bits[k]:.3f} bits/token held out → about {kbps:.2f} kbps")
    metadata = {"codec": {"name": Path(str(args.model)).name, "sha256": weights_sha256(codec.state_dict())},
                "bits_per_token": {str(k): round(v, 4) for k, v in bits.items()},
                "training": asdict(config)}
    save_lm(lm.cpu(), output, metadata=metadata, overwrite=args.force)
    print(f"wrote {output}")
