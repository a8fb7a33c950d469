"""Train an EnCodec codec on a folder of audio, with the paper's losses, balancer and discriminator.

    encodec-fx train-codec AUDIO_DIR RUN_DIR [--validation-dir DIR] [--num-filters 32] [--steps N] [--resume]

Files are read at 24 kHz, mono, and split into training and validation sets by a hash of their names,
unless --validation-dir names a separate validation folder (a corpus built by `encodec_fx.train.corpus`
has train/ and validation/).
RUN_DIR receives a checkpoint every --checkpoint-every steps and at the end (model/ in the hub layout,
loadable with `EncodecModel.from_pretrained`, and training_state.pt); --resume continues from it
exactly, up to --steps in total, with the run's settings except the options given again. The end of training also writes generator-fp16.safetensors, a
compact export (`encodec_fx.train.export.load_exported`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import EncodecConfig
from .checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from ..audio_io import audio_files, is_held_out
from ..devices import add_device_argument, gpu_if_present
from .data import centre_segments, load_clip, random_segments
from .export import export_generator
from .trainer import CodecTrainer, TrainingConfig, untrained_model

EXPORT_NAME = "generator-fp16.safetensors"
DEFAULT_NUM_FILTERS = 32


def train_loop(trainer: CodecTrainer, training_clips: list[np.ndarray], validation: torch.Tensor,
               run_dir: Path, log: Callable[[str], None] = print) -> None:
    """Step until `config.steps`, logging losses and validation every `eval_every` steps, saving every
    `checkpoint_every` steps and at the end."""
    config = trainer.config
    started, first_step = time.monotonic(), trainer.step
    while trainer.step < config.steps:
        batch = random_segments(training_clips, config.batch_size, trainer.segment_length, trainer.rng)
        losses = trainer.train_step(batch)
        if trainer.step % config.eval_every == 0 or trainer.step == config.steps:
            seconds = (time.monotonic() - started) / (trainer.step - first_step)
            shown = ", ".join(f"{name} {value:.4g}" for name, value in losses.items())
            metrics = ", ".join(f"{name} {value:.3f}" for name, value in trainer.evaluate(validation).items())
            log(f"step {trainer.step}/{config.steps} ({seconds:.2f} s/step): {shown} | validation: {metrics}")
        if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
            save_checkpoint(trainer, run_dir, asdict(config))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainingConfig()
    parser.add_argument("audio_dir", help="folder of audio files (searched recursively)")
    parser.add_argument("run_dir", help="folder for checkpoints and the final export")
    parser.add_argument("--num-filters", type=int, default=None,
                        help=f"model width (default {DEFAULT_NUM_FILTERS}, or the checkpoint's on --resume)")
    for name, value in asdict(defaults).items():  # absent unless given: --resume keeps the run's own
        if not isinstance(value, dict):
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=argparse.SUPPRESS,
                                help=f"default {value:g}, or the checkpoint's on --resume")
    parser.add_argument("--validation-dir", default=None,
                        help="folder of validation audio (e.g. a corpus's validation/); then every file of "
                             "AUDIO_DIR trains and --held-out-percent is unused")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in RUN_DIR")
    add_device_argument(parser, gpu_if_present(), "cuda when there is a GPU, else cpu")


def resumed_config(saved: dict, given: dict) -> TrainingConfig:
    """The run's saved settings, with the options given on the command line instead (each change printed),
    so that resuming never swaps the recipe for the defaults."""
    config = TrainingConfig(**(saved | given))
    for name, value in given.items():
        if name in saved and saved[name] != value:
            print(f"resuming with {name} {value} (the run had {saved[name]})")
    return config


def run(args: argparse.Namespace) -> None:
    run_dir = Path(args.run_dir)
    given = {name: getattr(args, name) for name in asdict(TrainingConfig()) if hasattr(args, name)}
    if args.resume:
        model, state = load_checkpoint(run_dir)
        if args.num_filters is not None and args.num_filters != model.config.num_filters:
            raise ValueError(f"--num-filters {args.num_filters} does not match the checkpoint's "
                             f"{model.config.num_filters}")
        config = resumed_config(state.get("settings", {}), given)
    elif has_checkpoint(run_dir):
        raise FileExistsError(f"{run_dir} holds a checkpoint; pass --resume to continue it")
    else:
        config = TrainingConfig(**given)
        torch.manual_seed(config.seed)
        model = untrained_model(EncodecConfig.encodec_24khz(num_filters=args.num_filters or DEFAULT_NUM_FILTERS))
        state = None
    sampling_rate, channels = model.config.sampling_rate, model.config.audio_channels
    training, validation = [], []
    if args.validation_dir is not None:  # a corpus with its own split: train on all of audio_dir
        training = [load_clip(path, sampling_rate, channels) for path in audio_files(args.audio_dir)]
        validation = [load_clip(path, sampling_rate, channels) for path in audio_files(args.validation_dir)]
    else:
        for path in audio_files(args.audio_dir):
            clip = load_clip(path, sampling_rate, channels)
            (validation if is_held_out(path, config.held_out_percent) else training).append(clip)
    if not training:
        raise ValueError(f"no training audio in {args.audio_dir}: every file is held out")
    trainer = CodecTrainer(model, config, args.device)
    if state is not None:
        trainer.load_state_dict(state)
    if not validation:
        print("no file falls in the validation split: validating on training files")
    print(f"training on {len(training)} files ({sum(c.shape[-1] for c in training) / sampling_rate:.1f} s), "
          f"validating on {len(validation or training)}, from step {trainer.step}, device {trainer.device}")
    train_loop(trainer, training, centre_segments(validation or training, trainer.segment_length), run_dir)
    export_generator(trainer.model, run_dir / EXPORT_NAME)
    print(f"wrote {run_dir / 'model'} and {run_dir / EXPORT_NAME}")
