"""The device a model runs on, named by the user and checked where it is given, so that a typo or a
missing GPU is a one-line error before any work starts rather than a traceback deep inside torch.

torch is imported only where a device is resolved: the command line declares `--device` (and `--help`
shows it) without importing torch."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ACCEPTED = "cpu, cuda, cuda:N or mps"
GPU_IF_PRESENT = "cuda if present"  # a default that `device_argument` resolves to `gpu_if_present()`


def resolve_device(device: str | torch.device) -> torch.device:
    """`device` as a `torch.device` that this machine has."""
    import torch
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; accepted: {ACCEPTED}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {device!r}: CUDA is not available here ({build}); use cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        # indexed as a model's parameters report it, so that the two compare equal
        return torch.device("cuda", torch.cuda.current_device() if resolved.index is None else resolved.index)
    if resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: MPS (Apple GPU) is not available here; use cpu")
        return torch.device("mps", 0)
    if resolved.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; accepted: {ACCEPTED}")
    return resolved


def device_argument(text: str) -> str:
    """`resolve_device` as an argparse type: a bad device is a usage error that names the accepted ones. The
    value is the device's name ("cpu", "cuda:0"), whatever was given: "cpu", which every machine has, is
    taken without importing torch (seconds) while the command line is parsed, before a command has said
    what is wrong with its files."""
    if text == "cpu":
        return text
    try:
        return str(resolve_device(gpu_if_present() if text == GPU_IF_PRESENT else text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_device_argument(parser: argparse.ArgumentParser, default: str, default_text: str) -> None:
    """`--device`, resolved when the command line is parsed; `default` may be GPU_IF_PRESENT."""
    parser.add_argument("--device", type=device_argument, default=default,
                        help=f"where the model runs: {ACCEPTED} (default: {default_text})")


def gpu_if_present() -> str:
    """The default where a GPU helps most (training, GPU benchmarks): cuda when there is one."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"
