"""Payload kbps per coding mode, with and without adaptation (lm against lm-adaptive), on unseen files.

    OMP_NUM_THREADS=1 python benchmarks/adaptive_coding.py /work/corpus/validation/*.flac [-b 1.5 6]

Each file is coded by the shipped codec (mono mix, whole file at once) and cut into compress's 5-s
segments, coded as compress codes them (LM modes: rows of one batch, `LM_GROUP_ROWS` at a time). Per
bandwidth it prints every mode's payload kbps (payload bits without CRCs over the audio's duration;
static also with its per-file table, which the archive header holds), lm-adaptive's saving against
lm, the worst file's lm-adaptive payload against the better of lm and static-with-table, the
seconds each LM mode took to encode, and that lm-adaptive payloads decode to the same codes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel, load_lm
from encodec_fx.audio_io import read_audio
from encodec_fx.compress import LM_GROUP_ROWS, SEGMENT_SECONDS
from entropy.coding import StaticModel, decode_many, encode_many
from entropy.portable_lm import PortableLM

MODES = ("raw", "static", "lm", "lm-adaptive")


def segments_of(model: EncodecModel, path: Path, bandwidth: float) -> list[np.ndarray]:
    audio = torch.from_numpy(read_audio(path, model.config.sampling_rate).mean(0, keepdims=True))[None]
    with torch.inference_mode():
        codes = model.encode(audio, bandwidth=bandwidth).audio_codes[0, 0].numpy().astype(np.int64)
    frames = int(SEGMENT_SECONDS * model.config.frame_rate)
    return [codes[:, start:start + frames] for start in range(0, codes.shape[1], frames)]


def payload_bits(payloads: list[bytes]) -> int:
    return sum(8 * (len(payload) - 4) for payload in payloads)  # each payload ends in a 4-byte CRC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="+", type=Path)
    parser.add_argument("-b", "--bandwidths", nargs="+", type=float, default=[1.5, 6.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    lm = PortableLM(load_lm(f"{DEFAULT_MODEL}-lm"))
    seconds = {path: len(read_audio(path, model.config.sampling_rate)[0]) / model.config.sampling_rate
               for path in args.audio}
    total_seconds = sum(seconds.values())
    print(f"{len(args.audio)} files, {total_seconds:.1f} s; payload kbps (static: + its table)")
    for bandwidth in args.bandwidths:
        bits = {mode: {} for mode in (*MODES, "table")}
        times = {"lm": 0.0, "lm-adaptive": 0.0}
        rows, owners = [], []
        for path in args.audio:
            segments = segments_of(model, path, bandwidth)
            rows += segments
            owners += [path] * len(segments)
            static = StaticModel.from_codes(np.concatenate(segments, axis=1))
            bits["raw"][path] = payload_bits(encode_many(segments, "raw"))
            bits["static"][path] = payload_bits(encode_many(segments, "static", static=static))
            bits["table"][path] = 8 * len(static.to_bytes())
        for mode in ("lm", "lm-adaptive"):
            for path in args.audio:
                bits[mode][path] = 0
            for start in range(0, len(rows), LM_GROUP_ROWS):
                group = rows[start:start + LM_GROUP_ROWS]
                began = time.perf_counter()
                payloads = encode_many(group, mode, lm=lm)
                times[mode] += time.perf_counter() - began
                for path, payload in zip(owners[start:start + LM_GROUP_ROWS], payloads):
                    bits[mode][path] += payload_bits([payload])
                if mode == "lm-adaptive" and start == 0:  # decoding gives the codes back, as one batch
                    decoded = decode_many(payloads, group[0].shape[0], [row.shape[1] for row in group], mode, lm=lm)
                    assert all(np.array_equal(got, row) for got, row in zip(decoded, group))
        kbps = {mode: sum(bits[mode].values()) / total_seconds / 1000 for mode in bits}
        worst, worst_path = max((bits["lm-adaptive"][path] / min(bits["lm"][path], bits["static"][path]
                                                                  + bits["table"][path]), path)
                                for path in args.audio)
        print(f"{bandwidth:g} kbps: raw {kbps['raw']:.3f}, static {kbps['static']:.3f} "
              f"(+table {kbps['static'] + kbps['table']:.3f}), lm {kbps['lm']:.3f}, "
              f"lm-adaptive {kbps['lm-adaptive']:.3f}: {100 * (1 - kbps['lm-adaptive'] / kbps['lm']):.2f} % "
              f"below lm; worst file {100 * (worst - 1):+.2f} % against the better of lm and static "
              f"({worst_path.name}); encode time lm {times['lm']:.1f} s, lm-adaptive {times['lm-adaptive']:.1f} s "
              f"({times['lm-adaptive'] / times['lm']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
