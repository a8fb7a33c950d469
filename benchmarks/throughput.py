"""Batch throughput of encode and decode in hours of audio per second, on a GPU or any device.

    python benchmarks/throughput.py [--device cuda] [--presets 24khz 48khz] [--batch-sizes 1 8 32]
                                    [--seconds 10] [--bandwidth 6] [--runs 3]

Random weights (speed does not depend on them), fp32, the default fast path. For each preset and
batch size, a batch of `--seconds`-long random items is encoded and its codes decoded, each timed
on its own (best of `--runs`, the device synchronised before the clock stops). Printed per line:
encode and decode hours of audio per second of wall time (and as times real time), and the
device's peak memory. `--device cpu` runs it here too, as a check of the script.

Before timing, each preset's codes on the device are compared with the CPU's for one 2 s item:
a GPU may round differently (cuDNN convolutions use TF32 by default on recent NVIDIA GPUs), and
near-ties between codewords then fall the other way; the share of codes that agree is printed.
"""

from __future__ import annotations

import argparse
import copy

import torch

from encodec_fx.devices import add_device_argument, gpu_if_present

from common import PRESETS, best_of, random_model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"


def codes_agreeing_with_cpu(model: torch.nn.Module, device: torch.device, bandwidth: float) -> float:
    """Share of codes that the model on `device` gives as on the CPU, for one 2 s random item."""
    config = model.config
    audio = 0.1 * torch.randn(1, config.audio_channels, 2 * config.sampling_rate,
                              generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        on_cpu = model.encode(audio, bandwidth=bandwidth).audio_codes
        on_device = copy.deepcopy(model).to(device).encode(audio, bandwidth=bandwidth).audio_codes.cpu()
    return (on_cpu == on_device).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser, gpu_if_present(), "cuda when there is a GPU, else cpu")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=sorted(PRESETS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}, {args.bandwidth:g} kbps, {args.seconds:g} s items, best of {args.runs}")

    for preset in args.presets:
        model = random_model(PRESETS[preset]())
        agreeing = codes_agreeing_with_cpu(model, device, args.bandwidth)
        print(f"{preset}: codes on {device.type} equal to the CPU's: {100 * agreeing:.2f} %")
        model.to(device)
        config = model.config
        for batch in args.batch_sizes:
            audio = 0.1 * torch.randn(batch, config.audio_channels, int(args.seconds * config.sampling_rate),
                                      device=device)
            with torch.inference_mode():
                encoded = model.encode(audio, bandwidth=args.bandwidth)

                def encode() -> None:
                    model.encode(audio, bandwidth=args.bandwidth)
                    synchronize(device)

                def decode() -> None:
                    model.decode(encoded.audio_codes, encoded.audio_scales)
                    synchronize(device)

                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                decode()  # warm up, as encode was above
                encode_time, decode_time = best_of(args.runs, encode), best_of(args.runs, decode)
            seconds = batch * args.seconds
            print(f"  batch {batch:4d}: encode {seconds / 3600 / encode_time:8.3f} h/s "
                  f"({seconds / encode_time:6.0f}x real time)"
                  f"  decode {seconds / 3600 / decode_time:8.3f} h/s ({seconds / decode_time:6.0f}x)"
                  f"  peak memory {peak_memory_mib(device)}")


if __name__ == "__main__":
    main()
