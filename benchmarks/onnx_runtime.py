"""The exported ONNX graphs run by onnxruntime against our fast path: parity on real audio, then speed, one thread.

    python benchmarks/onnx_runtime.py [--model encodec-fx-24khz] [--seconds 10] [--runs 3]

Exports `--model` (default: the shipped model) with `model.export_onnx` into a temporary folder and prints
  * parity on the recording in tests/data (real speech): per bandwidth, the share of frames whose codes
    equal ours, and for every frame that differs how near a tie it was (the gap between the two
    codewords' distances in our computation, relative to the distance, at the first codebook that
    differs); the audio of the decoder graph against ours (SNR dB, same codes); the step graphs
    streamed against the whole-input graphs (causal models);
  * speed, one thread, on `--seconds` of that recording repeated: encode and decode by onnxruntime and by
    our default path (decode also at bfloat16), best of `--runs`, the runs interleaved; ratio = onnxruntime's
    time / ours (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from encodec_fx import EncodecModel
from encodec_fx.audio_io import read_audio
from encodec_fx.onnx_export import onnx_session

from common import best_of

RECORDING = Path(__file__).resolve().parents[1] / "tests" / "data" / "speech-nl-fillets.flac"


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    return float(10 * np.log10((reference ** 2).sum() / ((reference - other) ** 2).sum()))


def tie_gaps(model: EncodecModel, audio: torch.Tensor, ours: np.ndarray, theirs: np.ndarray) -> list[float]:
    """For each frame whose codes differ: |d(ours) - d(theirs)| / d(ours) at the first codebook that differs,
    the distances those two codewords have from our residual there."""
    with torch.inference_mode():
        residual = model._inference_path().encode(audio)[0].T  # (frames, dim), the exact encoder's embeddings
    gaps = []
    for frame in np.flatnonzero((ours[0] != theirs[0]).any(axis=0)):
        vector = residual[frame].clone()
        for k in range(ours.shape[1]):
            embed = model.quantizer.layers[k].codebook.embed
            if ours[0, k, frame] != theirs[0, k, frame]:
                ours_distance = (vector - embed[ours[0, k, frame]]).pow(2).sum()
                their_distance = (vector - embed[theirs[0, k, frame]]).pow(2).sum()
                gaps.append(float((their_distance - ours_distance).abs() / ours_distance))
                break
            vector = vector - embed[ours[0, k, frame]]
    return gaps


def stream(session, first: np.ndarray, step: int, states: dict, name: str) -> np.ndarray:
    state = {key: np.zeros((first.shape[0], *shape), np.float32) for key, shape in states.items()}
    started, out = np.zeros(1, np.float32), []
    for start in range(0, first.shape[-1], step):
        result = session.run(None, {name: first[..., start: start + step], "started": started, **state})
        out.append(result[0])
        started, state = result[1], dict(zip(state, result[2:]))
    return np.concatenate(out, axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="encodec-fx-24khz")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = EncodecModel.from_pretrained(args.model)
    config = model.config
    if config.chunk_length is not None:
        raise SystemExit("this benchmark codes whole inputs: give a causal (24 kHz-like) model")
    speech = read_audio(RECORDING, config.sampling_rate).mean(axis=0).astype(np.float32)
    audio = np.stack([speech] * config.audio_channels)[None]
    with tempfile.TemporaryDirectory() as directory:
        metadata = model.export_onnx(directory)
        sessions = {name: onnx_session(Path(directory) / f"{name}.onnx")
                    for name in ("encoder", "decoder", "encoder_step", "decoder_step")}
        print(f"{args.model}: {config.sampling_rate} Hz, onnxruntime one thread, torch one thread")
        theirs = sessions["encoder"].run(None, {"audio": audio})[0]
        with torch.inference_mode():
            ours_all = model.encode(torch.from_numpy(audio), bandwidth=config.target_bandwidths[-1]).audio_codes[0]
        ours_all = ours_all.numpy()
        for bandwidth in config.target_bandwidths:
            n_q = metadata["n_q_per_bandwidth"][f"{bandwidth:g}"]
            ours, other = ours_all[:, :n_q], theirs[:, :n_q]
            equal = (ours == other).all(axis=1).mean()
            gaps = tie_gaps(model, torch.from_numpy(audio), ours, other)
            ties = f"; differing frames' tie gaps: max {max(gaps):.1e}" if gaps else ""
            with torch.inference_mode():
                decoded = model.decode(torch.from_numpy(ours)[None]).audio_values.numpy()
            onnx_audio = sessions["decoder"].run(None, {"codes": ours})[0]
            print(f"  {bandwidth:g} kbps: codes equal on {100 * equal:.2f} % of {ours.shape[-1]} frames{ties}; "
                  f"decoder graph audio {snr_db(decoded, onnx_audio):.1f} dB SNR from ours")
        step, frames = metadata["step_samples"], metadata["frames_per_step"]
        usable = audio[..., : audio.shape[-1] // step * step]
        whole_codes = sessions["encoder"].run(None, {"audio": usable})[0]
        step_codes = stream(sessions["encoder_step"], usable, step, metadata["encoder_states"], "audio")
        whole_audio = sessions["decoder"].run(None, {"codes": whole_codes})[0]
        step_audio = stream(sessions["decoder_step"], whole_codes, frames, metadata["decoder_states"], "codes")
        print(f"  step graphs ({frames} frames a call): codes equal the whole-input graph's: "
              f"{np.array_equal(step_codes, whole_codes)}; audio {snr_db(whole_audio, step_audio):.1f} dB SNR")

        repeats = int(np.ceil(args.seconds * config.sampling_rate / audio.shape[-1]))
        long = np.tile(audio, repeats)[..., : int(args.seconds * config.sampling_rate)]
        long_tensor = torch.from_numpy(long)
        with torch.inference_mode():
            codes = model.encode(long_tensor, bandwidth=6.0).audio_codes
            codes_array = codes[0].numpy()
            n_q = codes.shape[2]
            jobs = {
                "encode, ours": lambda: model.encode(long_tensor, bandwidth=6.0),
                "encode, onnxruntime": lambda: sessions["encoder"].run(None, {"audio": long}),
                "decode, ours (exact)": lambda: model.decode(codes),
                "decode, ours (bfloat16)": lambda: model.decode(codes, precision="bfloat16"),
                "decode, onnxruntime": lambda: sessions["decoder"].run(None, {"codes": codes_array[:, :n_q]}),
            }
            best = {name: float("inf") for name in jobs}
            for _ in range(args.runs):
                for name, job in jobs.items():
                    best[name] = min(best[name], best_of(1, job))
        print(f"speed, {args.seconds:g} s at 6 kbps, best of {args.runs}, one thread:")
        for name, seconds in best.items():
            kind = name.split(",")[0]
            ratio = best[f"{kind}, onnxruntime"] / seconds
            print(f"  {name:24s} {seconds:6.3f} s  ({args.seconds / seconds:5.1f}x real time; "
                  f"onnxruntime / this = {ratio:.2f})")


if __name__ == "__main__":
    main()
