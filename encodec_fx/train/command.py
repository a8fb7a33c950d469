"""Train an EnCodec codec on a folder of audio, with the paper's losses, balancer and discriminator.

    encodec-fx train-codec AUDIO_DIR RUN_DIR [--validation-dir DIR] [--num-filters 32] [--steps N] [--resume]

Files are read at 24 kHz, mono, and split into training and validation sets by a hash of their names,
unless --validation-dir names a separate validation folder (a corpus built by `python -m training.corpus`
has train/ and validation/).
RUN_DIR receives a checkpoint every --checkpoint-every steps and at the end (model/ in the hub layout,
loadable with `EncodecModel.from_pretrained`, and training_state.pt); --resume continues from it
exactly, up to --steps in total, with the run's settings except the options given again. The end of
training also writes generator-fp16.safetensors, a compact export (`encodec_fx.train.export.load_exported`).

Everything that can be checked is checked before the audio is loaded (settings, the run folder, the
checkpoint and whether it fits the options), since loading a corpus and training take long. A loss
that turns NaN or infinite stops the run without saving, so the last checkpoint stays usable.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from entropy.atomic import check_writable

from ..audio_io import audio_files, is_held_out
from ..config import EncodecConfig
from ..precision import native_bfloat16
from .checkpoint import (
    STATE_FILE,
    STATE_KIND,
    damaged,
    has_checkpoint,
    load_checkpoint,
    make_run_dir,
    restore,
    save_checkpoint,
)
from .data import centre_segments, load_clip, random_segments
from .export import export_generator
from .settings import DEFAULT_NUM_FILTERS, PAPER_WEIGHTS, TrainingConfig
from .signals import synthetic_segments
from .trainer import CodecTrainer, untrained_model

EXPORT_NAME = "generator-fp16.safetensors"
FIXED_ON_RESUME = {"num_filters": "the codec's weights have that size",  # setting → why it cannot change
                   "discriminator_filters": "the discriminator's weights have that size (it can change until it "
                                            "has trained, or with --new-discriminator)",
                   "seed": "the random generators continue from the checkpoint"}


def train_loop(trainer: CodecTrainer, training_clips: list[np.ndarray], validation: torch.Tensor,
               run_dir: Path, log: Callable[[str], None] = print, minutes: float | None = None) -> None:
    """Step until `config.steps` (or for `minutes` of wall time, then evaluate and save: a GPU lent for
    a fixed time ends with a checkpoint), logging losses and validation every `eval_every` steps, saving
    every `checkpoint_every` steps and at the end; a loss that turns NaN or infinite stops it unsaved."""
    config = trainer.config
    started, first_step = time.monotonic(), trainer.step
    deadline = started + 60 * minutes if minutes is not None else math.inf
    saved = trainer.step if has_checkpoint(run_dir) else None
    while trainer.step < config.steps:
        batch = training_batch(trainer, training_clips)
        losses = trainer.train_step(batch)
        check_finite(losses, trainer.step, run_dir, saved)
        out_of_time = time.monotonic() >= deadline
        if trainer.step % config.eval_every == 0 or trainer.step == config.steps or out_of_time:
            seconds = (time.monotonic() - started) / (trainer.step - first_step)
            shown = ", ".join(f"{name} {value:.4g}" for name, value in losses.items())
            metrics = ", ".join(f"{name} {value:.3f}" for name, value in trainer.evaluate(validation).items())
            log(f"step {trainer.step}/{config.steps} ({seconds:.2f} s/step): {shown} | validation: {metrics}")
        if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps or out_of_time:
            save_checkpoint(trainer, run_dir, asdict(config))
            saved = trainer.step
        if out_of_time:
            log(f"stopped at step {trainer.step} after {minutes:g} minutes (--minutes)")
            return


def training_batch(trainer: CodecTrainer, clips: list[np.ndarray]) -> torch.Tensor:
    """A batch of random segments of `clips`, the last round(synthetic_share × batch size) of them
    synthetic signals instead (`signals.synthetic_segments`)."""
    config, length = trainer.config, trainer.segment_length
    synthetic = round(config.synthetic_share * config.batch_size)
    parts = [random_segments(clips, config.batch_size - synthetic, length, trainer.rng)] \
        if synthetic < config.batch_size else []
    if synthetic:
        model_config = trainer.model.config
        parts.append(synthetic_segments(synthetic, length, model_config.sampling_rate, model_config.audio_channels,
                                        trainer.rng))
    return torch.cat(parts)


def loss_weight_changes(given: list[str]) -> dict[str, float]:
    """`--loss-weight time=0` options as {loss: weight}, checked against the losses there are."""
    changes = {}
    for text in given:
        name, _, value = text.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if name not in PAPER_WEIGHTS or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"--loss-weight takes NAME=WEIGHT with NAME one of {', '.join(PAPER_WEIGHTS)} and a "
                             f"weight of 0 or more, got {text!r}")
        changes[name] = weight
    return changes


def check_finite(losses: dict[str, float], step: int, run_dir: Path, saved: int | None) -> None:
    """Stop a diverged run before it saves: NaN weights would replace the last good checkpoint, and
    the run could not be resumed from it."""
    diverged = [f"{name} {value}" for name, value in losses.items() if not math.isfinite(value)]
    if diverged:
        kept = f"the last checkpoint in {run_dir} (step {saved}) is kept" if saved is not None else \
            "no checkpoint was written"
        raise ValueError(f"training diverged at step {step} (loss {', '.join(diverged)}): stopped without saving; "
                         f"{kept}")


def resumed_config(saved: dict, given: dict, source: Path, discriminator_trained: bool = True) -> TrainingConfig:
    """The run's saved settings (from `source`), with the options given on the command line instead (each
    change printed), so that resuming never swaps the recipe for the defaults. Settings whose change
    would break the run (FIXED_ON_RESUME) are refused; the discriminator's width only once it has trained:
    before, a new width starts a new discriminator."""
    try:
        run_config = TrainingConfig.from_settings(saved)
    except ValueError as error:
        raise damaged(source, STATE_KIND, error) from None
    fixed = FIXED_ON_RESUME.keys() - (set() if discriminator_trained else {"discriminator_filters"})
    for name in given.keys() & fixed:
        check_unchanged(name, given[name], getattr(run_config, name))
    config = replace(run_config, **given)
    for name, value in given.items():
        if getattr(run_config, name) != value:
            print(f"resuming with {name} {value} (the run had {getattr(run_config, name)})")
    return config


def check_unchanged(name: str, given: object, run_value: object) -> None:
    """Refuse an option given on --resume that would break the run (FIXED_ON_RESUME), before any audio loads."""
    if given is not None and given != run_value:
        raise ValueError(f"{name} cannot change on --resume (the run has {run_value}): {FIXED_ON_RESUME[name]}")


def run(args: argparse.Namespace) -> None:
    """The `train-codec` command, its options as `encodec_fx.cli.training` declares them."""
    run_dir = Path(args.run_dir)
    if args.num_filters is not None and args.num_filters < 1:
        raise ValueError(f"--num-filters must be a positive number of filters (e.g. {DEFAULT_NUM_FILTERS}), "
                         f"got {args.num_filters}")
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes must be a positive number of minutes, got {args.minutes:g}")
    given = {name: getattr(args, name) for name in asdict(TrainingConfig()) if hasattr(args, name)}
    weights = loss_weight_changes(getattr(args, "loss_weight", []))
    new_discriminator = getattr(args, "new_discriminator", False)
    if new_discriminator and not args.resume:
        raise ValueError("--new-discriminator replaces a resumed run's discriminator: use it with --resume "
                         "(a new run starts with a new one)")
    if args.resume:
        model, state = load_checkpoint(run_dir)
        check_unchanged("num_filters", args.num_filters, model.config.num_filters)
        if weights:
            given["loss_weights"] = dict(state["settings"].get("loss_weights", PAPER_WEIGHTS)) | weights
        untrained = new_discriminator or state.get("discriminator_updates") == 0
        config = resumed_config(state["settings"], given, run_dir / STATE_FILE, discriminator_trained=not untrained)
        run_width = TrainingConfig.from_settings(state["settings"]).discriminator_filters
        if new_discriminator or (untrained and config.discriminator_filters != run_width):
            state = {name: value for name, value in state.items()
                     if name not in ("discriminator", "discriminator_optimizer")} | {"discriminator_updates": 0}
            torch.manual_seed(config.seed + state["step"])  # the new discriminator's weights, per run
        if state["step"] >= config.steps:
            print(f"the run in {run_dir} is already at step {state['step']} ≥ --steps {config.steps}: nothing to "
                  f"train, nothing written (give a larger --steps to continue it)")
            return
    elif has_checkpoint(run_dir):
        raise FileExistsError(f"{run_dir} holds a checkpoint; pass --resume to continue it")
    else:
        changed: dict[str, Any] = {"loss_weights": PAPER_WEIGHTS | weights} if weights else {}
        config = TrainingConfig(**given, **changed)
        torch.manual_seed(config.seed)
        num_filters = DEFAULT_NUM_FILTERS if args.num_filters is None else args.num_filters
        model = untrained_model(EncodecConfig.encodec_24khz(num_filters=num_filters))
        state = None
    trainer = CodecTrainer(model, config, args.device)
    if state is not None:
        restore(trainer, state, run_dir)
    else:
        make_run_dir(run_dir)
    check_writable(run_dir / STATE_FILE)  # a folder it cannot write is said now, not at the first checkpoint
    if config.discriminator_precision == "bfloat16" and not native_bfloat16(trainer.device.type):
        # a resumed run carries the setting from the machine it was started on
        print(f"note: bfloat16 is not native on {trainer.device} (a CPU needs AVX-512-BF16 or AMX), so the "
              "discriminator's bfloat16 is emulated, slower than float32: pass --discriminator-precision float32")
    warmup_end = config.adversarial_start + config.discriminator_warmup
    if new_discriminator and trainer.step >= warmup_end:
        print(f"note: the new discriminator trains beside the generator from step {trainer.step} on: its warm-up "
              f"(--discriminator-warmup from --adversarial-start) ended at step {warmup_end}; to warm it first, "
              f"pass --adversarial-start {trainer.step} --discriminator-warmup N")
    if config.warmup_generator == "hold" and config.discriminator_warmup == 0:
        print("note: --warmup-generator hold holds the generator during --discriminator-warmup N steps, and "
              "there are none")
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
    if not validation:
        print("no file falls in the validation split: validating on training files")
    print(f"training on {len(training)} files ({sum(c.shape[-1] for c in training) / sampling_rate:.1f} s), "
          f"validating on {len(validation or training)}, from step {trainer.step}, device {trainer.device}")
    train_loop(trainer, training, centre_segments(validation or training, trainer.segment_length), run_dir,
               minutes=args.minutes)
    export_generator(trainer.model, run_dir / EXPORT_NAME)
    print(f"wrote {run_dir / 'model'} and {run_dir / EXPORT_NAME}")
