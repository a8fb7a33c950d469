"""Offline encode and decode speed against transformers and the original package, side by side.

    python benchmarks/speed.py [--quick] [--presets 24khz 48khz] [--threads 1 2] [--seconds 10 60]
                               [--bandwidth 6] [--runs 2] [--precisions bfloat16]

All implementations hold the same random weights (the original package's model, randomised, loaded
into ours and from ours into transformers') and code the same random input in one process, their
runs interleaved so that a busy machine slows them alike. Each time is the best of `--runs`.
Printed per preset, thread count and length: encode and decode seconds of ours (fast path, the
default), ours with `fast=False` (the reference modules), transformers and the original, and
the ratios reference time / our time (above 1: we are faster). Before timing, it checks that the
fast and plain paths give the same codes and audio within 1e-5, and that transformers and the
original give our codes. Each of `--precisions` (`encodec_fx.precision`) adds "ours (PRECISION)": the same
model decoding at that precision (its encode is the exact one), with its audio distance to the exact
decode (SNR dB on that check's input) printed beside its speed.

Each line also gives the time spent inside the encoder's and decoder's LSTMs (every implementation
runs the same `nn.LSTM`, whose one-thread cost is streaming its recurrent weights once per frame) and
two bounds on the ratio: "LSTM bound", reference time / our LSTM time, the ratio if everything else
of ours took no time; "roofline", reference time / (our LSTM time + the convolutions' FLOPs at the
speed of a large float32 matrix product measured in the same run), the ratio if every convolution
ran as fast as the best matrix product the machine does.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from encodec_fx import EncodecModel
from encodec_fx.checkpoints import to_model_keys
from encodec_fx.precision import PRECISIONS

from common import PRESETS, original_model


def models(preset: str, precisions: list[str] = ()) -> dict[str, torch.nn.Module]:
    """Ours (fast and plain, and the fast one at each of `precisions`), transformers' and the original, all with
    the same random weights."""
    import transformers
    warnings.filterwarnings("ignore", "`torch.nn.utils.weight_norm` is deprecated", FutureWarning)
    original = original_model(preset)
    ours = EncodecModel(PRESETS[preset]()).eval()
    ours.load_state_dict(to_model_keys(original.state_dict()))
    plain = EncodecModel(ours.config, fast=False).eval()
    plain.load_state_dict(ours.state_dict())
    hf = transformers.EncodecModel(transformers.EncodecConfig(**ours.config.to_dict())).eval()
    hf.load_state_dict(ours.state_dict())
    return {"ours": ours, "ours (plain)": plain, **{f"ours ({precision})": ours for precision in precisions},
            "transformers": hf, "original": original}


def precision_of(name: str) -> str:
    """"ours (bfloat16)" → "bfloat16"; "exact" for every other implementation."""
    inside = name[len("ours ("): -1] if name.startswith("ours (") else ""
    return inside if inside in PRECISIONS else "exact"


def coders(name: str, model: torch.nn.Module, bandwidth: float
           ) -> tuple[Callable[[torch.Tensor], Any], Callable[[Any], torch.Tensor]]:
    """(encode(audio) → encoded, decode(encoded) → audio) in each implementation's own API."""
    if name == "original":
        model.set_target_bandwidth(bandwidth)
        return model.encode, model.decode

    def encode(audio: torch.Tensor) -> Any:
        return model.encode(audio, bandwidth=bandwidth)

    precision = precision_of(name)

    def decode(encoded: Any) -> torch.Tensor:
        if precision != "exact":
            return model.decode(encoded.audio_codes, encoded.audio_scales, precision=precision,
                                last_frame_pad_length=encoded.last_frame_pad_length).audio_values
        return model.decode(encoded.audio_codes, encoded.audio_scales,
                            last_frame_pad_length=encoded.last_frame_pad_length).audio_values
    return encode, decode


def codes_of(name: str, encoded: Any) -> torch.Tensor:
    """Codes as [chunks, batch, n_q, frames], the last chunk cut to its real frames."""
    if name == "original":
        return torch.cat([codes for codes, _ in encoded], dim=-1)
    codes = encoded.audio_codes
    if encoded.last_frame_pad_length:
        return torch.cat([*codes[:-1].unbind(0), codes[-1][..., : -encoded.last_frame_pad_length]], dim=-1)
    return torch.cat(codes.unbind(0), dim=-1)


class LSTMClock:
    """Seconds spent inside a model's `nn.LSTM` modules, via forward hooks."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.seconds, self.started = 0.0, 0.0
        for module in model.modules():
            if isinstance(module, torch.nn.LSTM):
                module.register_forward_pre_hook(self.start)
                module.register_forward_hook(self.stop)

    def start(self, *_) -> None:
        self.started = time.perf_counter()

    def stop(self, *_) -> None:
        self.seconds += time.perf_counter() - self.started

    def lap(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def convolution_flops(model: EncodecModel, audio: torch.Tensor, bandwidth: float) -> float:
    """Multiply-adds × 2 of every convolution in one encode and decode of `audio` by `model`'s modules."""
    total = [0]

    def count(module: torch.nn.Conv1d | torch.nn.ConvTranspose1d, inputs: tuple[torch.Tensor, ...],
              output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.ConvTranspose1d):
            total[0] += inputs[0].numel() * module.out_channels * module.kernel_size[0] // module.groups
        else:
            total[0] += output.numel() * module.in_channels * module.kernel_size[0] // module.groups
    hooks = [module.register_forward_hook(count) for module in model.modules()
             if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d))]
    encoded = model.encode(audio, bandwidth=bandwidth)
    model.decode(encoded.audio_codes, encoded.audio_scales)
    for hook in hooks:
        hook.remove()
    return 2.0 * total[0]


def matmul_flops_per_second(size: int = 2048, runs: int = 5) -> float:
    """The best of `runs` float32 products of two size × size matrices, in FLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(timed(torch.matmul, a, b)[0] for _ in range(runs))
    return 2.0 * size ** 3 / best


def timed(function: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """(seconds, result) of one call of `function(*args)`."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def check_outputs(instances: dict, bandwidth: float, audio: torch.Tensor) -> str:
    """Fast == plain (codes equal, audio within 1e-5) and the references give our codes."""
    results = {}
    for name, model in instances.items():
        encode, decode = coders(name, model, bandwidth)
        encoded = encode(audio)
        results[name] = codes_of(name, encoded), decode(encoded)[..., : audio.shape[-1]]
    codes, decoded = results["ours"]
    plain_codes, plain_audio = results["ours (plain)"]
    gap = (decoded - plain_audio).abs().max().item()
    if not torch.equal(codes, plain_codes) or gap > 1e-5:
        raise AssertionError(f"fast and plain paths differ: codes equal {torch.equal(codes, plain_codes)}, "
                             f"audio gap {gap:.2e}")
    same = {name: torch.equal(codes, other) for name, (other, _) in results.items()
            if not name.startswith("ours")}
    distances = "".join(f"; {name}: audio {snr_db(decoded, audio):.1f} dB SNR from exact"
                        for name, (_, audio) in results.items() if precision_of(name) != "exact")
    return (f"fast == plain (audio gap {gap:.1e}); same codes as "
            + ", ".join(f"{name}: {'yes' if equal else 'NO'}" for name, equal in same.items()) + distances)


def snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Signal-to-noise ratio of `other` against `reference`, in dB."""
    return float(10 * torch.log10(reference.double().pow(2).sum() / (reference.double() - other.double()).pow(2).sum()))


def measure(instances: dict, clocks: dict[str, LSTMClock], bandwidth: float, audio: torch.Tensor,
            runs: int) -> dict[str, tuple[float, float, float]]:
    """Best encode, decode and LSTM (of the best encode+decode run) seconds per implementation, the
    implementations interleaved per run."""
    best = {name: (float("inf"), float("inf"), float("inf")) for name in instances}
    for _ in range(runs):
        for name, model in instances.items():
            encode, decode = coders(name, model, bandwidth)
            clocks[name].lap()
            encode_time, encoded = timed(encode, audio)
            decode_time, _ = timed(decode, encoded)
            lstm_time = clocks[name].lap()
            encode_best, decode_best, lstm_best = best[name]
            if encode_time + decode_time < encode_best + decode_best:
                lstm_best = lstm_time
            best[name] = (min(encode_best, encode_time), min(decode_best, decode_time), lstm_best)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s inputs, one run: a smoke test")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=sorted(PRESETS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10.0, 60.0])
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ours (plain)", "original"],
                        help="implementations not to time")
    parser.add_argument("--precisions", nargs="*", default=["bfloat16"],
                        choices=[precision for precision in PRECISIONS if precision != "exact"],
                        help="decoding precisions of ours to time beside the exact one")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs = [3.0], 1
    print(f"torch {torch.__version__}, {args.bandwidth:g} kbps, best of {args.runs}; "
          "ratio = reference time / our time (fast path)")
    for preset in args.presets:
        instances = models(preset, args.precisions)
        rate, channels = instances["ours"].config.sampling_rate, instances["ours"].config.audio_channels
        generator = torch.Generator().manual_seed(1)
        with torch.inference_mode():
            check = 0.1 * torch.randn(1, channels, int(2.5 * rate) + 7, generator=generator)
            print(f"\n{preset}: {check_outputs(instances, args.bandwidth, check)}")
            timed_instances = {name: model for name, model in instances.items() if name not in args.skip}
            clocks = {name: LSTMClock(model) for name, model in timed_instances.items()}
            for threads in args.threads:
                torch.set_num_threads(threads)
                for seconds in args.seconds:
                    audio = 0.1 * torch.randn(1, channels, int(seconds * rate), generator=generator)
                    times = measure(timed_instances, clocks, args.bandwidth, audio, args.runs)
                    ours_encode, ours_decode, ours_lstm = times["ours"]
                    flops = convolution_flops(instances["ours (plain)"], audio, args.bandwidth)
                    peak = matmul_flops_per_second()
                    floor = ours_lstm + flops / peak
                    print(f"{preset} {threads} thread{'s' * (threads > 1)} {seconds:g} s: convolutions "
                          f"{flops / 1e9:.1f} GFLOP, float32 matrix product {peak / 1e9:.0f} GFLOP/s: "
                          f"at best {floor:.2f} s with these LSTMs")
                    for name, (encode_time, decode_time, lstm_time) in times.items():
                        both = encode_time + decode_time
                        ratios = "" if name == "ours" else (
                            f"  ratio encode {encode_time / ours_encode:4.2f}x decode {decode_time / ours_decode:4.2f}x"
                            f" both {both / (ours_encode + ours_decode):4.2f}x (LSTM bound {both / ours_lstm:4.2f}x,"
                            f" roofline {both / floor:4.2f}x)")
                        print(f"  {name:13s} encode {encode_time:6.2f} s  decode {decode_time:6.2f} s  "
                              f"LSTMs {lstm_time:5.2f} s  (RTF {both / seconds:.3f}){ratios}")
                    for name, (_, decode_time, _) in times.items():
                        if precision_of(name) != "exact" and "transformers" in times:
                            print(f"  {name} decode against transformers' decode: "
                                  f"{times['transformers'][1] / decode_time:4.2f}x faster")


if __name__ == "__main__":
    main()
