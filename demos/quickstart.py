"""Code a sound with the shipped default model at every bandwidth, then run it through an effect chain.

    python demos/quickstart.py [AUDIO_FILE] [--model PATH_OR_NAME]

Works offline: the model ships inside the package. Without a file, a synthetic chord is used.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from encodec_fx import DEFAULT_MODEL, Chain, EncodecCompressor, EncodecDecoder, EncodecEncoder, EncodecModel, PacketLoss
from encodec_fx.audio_io import read_audio
from encodec_fx.cli import command_line_message
from encodec_fx.train.losses import si_snr


def chord(sampling_rate: int, seconds: float) -> np.ndarray:
    """A major chord with a few harmonics, fading in and out: (1, samples)."""
    t = np.arange(int(sampling_rate * seconds)) / sampling_rate
    tone = sum(0.1 / k * np.sin(2 * np.pi * f * k * t) for f in (220.0, 277.2, 329.6) for k in (1, 2, 3))
    return (tone * np.sin(np.pi * t / seconds))[None].astype(np.float32)


def run(args: argparse.Namespace) -> None:
    model = EncodecModel.from_pretrained(args.model)
    rate = model.config.sampling_rate
    audio = read_audio(args.audio, rate)[:1] if args.audio else chord(rate, 3.0)
    x = torch.from_numpy(audio)[None]
    print(f"{args.model}: {rate} Hz, {x.shape[-1] / rate:.1f} s of {'audio' if args.audio else 'a synthetic chord'}")
    with torch.inference_mode():
        for bandwidth in model.config.target_bandwidths:
            encoded = model.encode(x, bandwidth=bandwidth)
            decoded = model.decode(encoded.audio_codes, encoded.audio_scales)[0][..., : x.shape[-1]]
            print(f"{bandwidth:>5g} kbps: codes {tuple(encoded.audio_codes.shape)}, "
                  f"SI-SNR {si_snr(decoded, x).item():5.1f} dB")
    lossy = Chain([EncodecEncoder(bandwidth=6.0, model=model), PacketLoss(rate=0.1, seed=0),
                   EncodecDecoder(model=model)])
    for name, effect in (("EncodecCompressor(6 kbps)", EncodecCompressor(6.0, model=model)),
                         ("encoder | 10 % packet loss | decoder", lossy)):
        out = effect(audio, rate)
        print(f"{name}: {out.shape} float32 out, SI-SNR "
              f"{si_snr(torch.from_numpy(out)[None], x).item():5.1f} dB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="?", help="an audio file (default: a synthetic chord)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"model name, directory or checkpoint (default {DEFAULT_MODEL})")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError) as error:  # bad input: one line, no traceback
        print(f"quickstart: error: {command_line_message(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
