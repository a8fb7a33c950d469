"""`encodec-fx train-lm` and `train-codec`: their options come from the recipes' settings, which need
no torch; the trainers are imported when a command runs."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from entropy.train_settings import LMTrainingConfig

from ..devices import GPU_IF_PRESENT, add_device_argument
from ..pretrained import DEFAULT_MODEL
from ..train.settings import DEFAULT_NUM_FILTERS, TEXT_SETTINGS, TrainingConfig

GPU_IF_PRESENT_TEXT = "cuda when there is a GPU, else cpu"
# What each recipe setting means, for its option's help (a setting missing here is named by its words).
LM_SETTINGS_HELP = {
    "steps": "training steps", "batch_size": "token crops per step", "crop_frames": "code frames per crop",
    "learning_rate": "AdamW's peak learning rate, reached after the warm-up, then decayed on a cosine",
    "weight_decay": "AdamW's weight decay", "warmup_steps": "steps of learning-rate warm-up",
    "held_out_percent": "percent of the files held out to measure bits per token, chosen by a hash of their names",
    "eval_every": "steps between measurements on the held-out files", "seed": "random seed",
}
CODEC_SETTINGS_HELP = {
    "steps": "training steps in all", "batch_size": "audio segments per step",
    "segment_seconds": "seconds of audio per segment", "learning_rate": "Adam's learning rate",
    "learning_rate_decay_steps": "the last steps before --steps, over which both learning rates fall linearly to "
                                 "0 (a GAN that swings settles; 0: constant, the paper's)",
    "discriminator_learning_rate_factor": "the discriminator's learning rate over the generator's (above 1 for a "
                                          "discriminator that stays at chance)",
    "discriminator_filters": "width of the MS-STFT discriminator",
    "discriminator_update_probability": "chance that a step also trains the discriminator",
    "adversarial_start": "steps of reconstruction-only training before the adversarial losses join",
    "adversarial_every": "the adversarial losses on every k-th step only",
    "discriminator_precision": "the discriminator's arithmetic; bfloat16 autocasts, faster on CPUs with "
                               "AVX-512-BF16 or AMX",
    "discriminator_warmup": "steps from --adversarial-start that train the discriminator alone before its losses "
                            "reach the generator",
    "warmup_generator": "during --discriminator-warmup: reconstruct (the generator trains on the reconstruction "
                        "losses) or hold (it stays as it is; for a new discriminator beside a generator already "
                        "trained adversarially, which reconstruction-only steps pull back to a low-pass)",
    "commitment_weight": "weight of the quantiser's commitment loss",
    "synthetic_share": "share of each batch made of synthetic tones, harmonic complexes, sweeps and noise bands "
                       "at random frequencies and levels (0: none, the paper's)",
    "time_loss_cutoff": "the time-domain loss on the band below this frequency in Hz only, the mel loss alone "
                        "above it (0: the whole band, the paper's)",
    "held_out_percent": "percent of the files held out for validation, chosen by a hash of their names",
    "eval_every": "steps between validations", "checkpoint_every": "steps between checkpoints", "seed": "random seed",
}


def train_lm(args: argparse.Namespace) -> None:
    """Train the entropy-coding LM on a codec's tokens of a folder of audio."""
    from ..train.lm_tokens import run
    run(args)


def train_codec(args: argparse.Namespace) -> None:
    """Train an EnCodec codec on a folder of audio, with the paper's losses, balancer and discriminator."""
    from ..train.command import run
    run(args)


def add_train_lm(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("train-lm", description=train_lm.__doc__,
                                  help="train the entropy-coding LM on a codec's tokens of a folder of audio")
    command.add_argument("audio_dir", help="folder of audio files (searched recursively)")
    command.add_argument("output", help="where to write the LM (.safetensors)")
    command.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"the codec whose tokens the LM learns: shipped model name, model directory, checkpoint "
                              f"or hub id (default {DEFAULT_MODEL})")
    command.add_argument("--size", choices=["paper", "small"], default="paper",
                         help="paper: 5 layers, dim 200 (default); small: 2 layers, dim 64")
    command.add_argument("--intra-frame", action=argparse.BooleanOptionalAction, default=True,
                         help="heads also see the frame's coarser codes (default; --no-intra-frame: "
                              "the paper's LM, which predicts a frame's codebooks independently)")
    for name, value in asdict(LMTrainingConfig()).items():
        meaning = LM_SETTINGS_HELP.get(name, name.replace("_", " "))
        command.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                             help=f"{meaning} (default {value:g})")
    add_device_argument(command, GPU_IF_PRESENT, GPU_IF_PRESENT_TEXT)
    command.add_argument("--force", action="store_true", help="overwrite an existing output file")
    command.set_defaults(run=train_lm)


def add_train_codec(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("train-codec", help="train an EnCodec codec on a folder of audio",
                                  description=train_codec.__doc__)
    command.add_argument("audio_dir", help="folder of audio files (searched recursively)")
    command.add_argument("run_dir", help="folder for checkpoints and the final export")
    command.add_argument("--num-filters", type=int, default=None,
                         help=f"model width (default {DEFAULT_NUM_FILTERS}, or the checkpoint's on --resume)")
    for name, value in asdict(TrainingConfig()).items():  # absent unless given: --resume keeps the run's own
        meaning = CODEC_SETTINGS_HELP.get(name, name.replace("_", " "))
        if isinstance(value, str):
            command.add_argument(f"--{name.replace('_', '-')}", choices=TEXT_SETTINGS[name],
                                 default=argparse.SUPPRESS,
                                 help=f"{meaning} (default {value}, or the checkpoint's on --resume)")
        elif not isinstance(value, dict):
            command.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=argparse.SUPPRESS,
                                 help=f"{meaning} (default {value:g}, or the checkpoint's on --resume)")
    command.add_argument("--validation-dir", default=None,
                         help="folder of validation audio (e.g. a corpus's validation/); then every file of "
                              "AUDIO_DIR trains and --held-out-percent is unused")
    command.add_argument("--resume", action="store_true", help="continue the checkpoint in RUN_DIR")
    command.add_argument("--new-discriminator", action="store_true",
                         help="on --resume: a fresh discriminator (of --discriminator-filters, default the run's "
                              "width) in place of the checkpoint's; the generator continues")
    command.add_argument("--loss-weight", action="append", default=[], metavar="NAME=WEIGHT",
                         help="change one loss's weight, e.g. time=0 (the paper's: time 0.1, mel 1, adversarial 3, "
                              "feature 3; on --resume, the run's); repeat for several")
    command.add_argument("--minutes", type=float,
                         help="stop after this much wall time with a checkpoint (a GPU lent for a fixed time)")
    add_device_argument(command, GPU_IF_PRESENT, GPU_IF_PRESENT_TEXT)
    command.set_defaults(run=train_codec)
