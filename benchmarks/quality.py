"""Codec quality per bandwidth next to Opus: SI-SNR and multi-scale mel distance on a folder of audio.

    python benchmarks/quality.py AUDIO_DIR [--model encodec-fx-24khz] [--opus 6 12] [--seconds 10]

AUDIO_DIR (required; e.g. the corpus's validation split) holds the files, grouped by the start of
their names: speech-* (synthesised), voices-* (recorded speakers), music-* and recordings-*
(together "music"), mixtures-*. Every
file is read at the model's rate in mono, coded at each of the model's bandwidths, and also through
Opus (Debian's opus-tools: opusenc --hard-cbr at 48 kHz, opusdec, which removes the pre-skip, and back
to the model's rate). SI-SNR is in dB (higher is better); the mel distance is the training loss
`MultiScaleMelLoss` (lower is better). PESQ (wide band, 16 kHz) and STOI are added for speech when the
`pesq` and `pystoi` packages are importable (synthesised and recorded speech alike). Prints a markdown
table of the means per group on standard output (progress and notes go to standard error), ready for
`ship --metrics`.

Then the spectral balance of every system on every group (band energy out over in per octave, the
group's files summed), and the spectral-balance gate (`encodec_fx.train.spectral_gate`) at each
bandwidth: the same on pink noise, a sine sweep and the first file of each group; `--gate 6` makes the
exit status 1 when the model fails it at 6 kbps (the shipping rule: ±3 dB per octave, ±6 dB above 8 kHz).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pedalboard.io import AudioFile

from encodec_fx import DEFAULT_MODEL, EncodecModel
from encodec_fx.audio_io import AUDIO_SUFFIXES, read_audio
from encodec_fx.resample import resample
from encodec_fx.train.losses import MultiScaleMelLoss, si_snr
from encodec_fx.train.spectral_gate import GateResult, band_levels, band_names, level_balance, spectral_gate

GROUPS = {"speech": "speech", "voices": "voices", "music": "music", "recordings": "music", "mixtures": "mixtures"}
SPEECH_GROUPS = ("speech", "voices")
OPUS_RATE = 48_000


def group_of(path: Path) -> str | None:
    """speech, voices, music (music-* and recordings-*) or mixtures, from the file name; None for others."""
    return GROUPS.get(path.name.split("-", 1)[0])


def _progress(line: str) -> None:
    print(line, file=sys.stderr)


def codec_round_trip(model: EncodecModel, audio: np.ndarray, bandwidth: float) -> np.ndarray:
    """(samples,) at the model's rate → encoded and decoded at `bandwidth`, same length."""
    with torch.inference_mode():
        decoded = model(torch.from_numpy(audio)[None, None], bandwidth=bandwidth).audio_values
    return _fit(decoded[0, 0].numpy(), len(audio))


def opus_round_trip(audio: np.ndarray, rate: int, kbps: float, workdir: Path) -> tuple[np.ndarray, float]:
    """(samples,) at `rate` → Opus at `kbps` (hard CBR, 48 kHz) and back, same length; and the file's kbps."""
    for tool in ("opusenc", "opusdec"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"{tool} not found: the Opus baseline needs opus-tools "
                                    "(apt-get install opus-tools)")
    source, coded, decoded = workdir / "in.wav", workdir / "coded.opus", workdir / "out.wav"
    with AudioFile(str(source), "w", samplerate=OPUS_RATE, num_channels=1, bit_depth=32) as file:
        file.write(resample(audio, rate, OPUS_RATE)[None].astype(np.float32))
    _run(["opusenc", "--quiet", "--hard-cbr", "--bitrate", f"{kbps:g}", str(source), str(coded)])
    _run(["opusdec", "--quiet", "--rate", str(OPUS_RATE), "--float", str(coded), str(decoded)])
    with AudioFile(str(decoded)) as file:
        back = file.read(file.frames).mean(axis=0)
    file_kbps = coded.stat().st_size * 8 / (len(audio) / rate) / 1000
    return _fit(resample(back, OPUS_RATE, rate), len(audio)), file_kbps


def scores(estimate: np.ndarray, reference: np.ndarray, rate: int, mel: MultiScaleMelLoss,
           speech: bool = False) -> dict[str, float]:
    """SI-SNR (dB) and mel distance of one file; PESQ and STOI too for speech when their packages exist."""
    estimate_t, reference_t = torch.from_numpy(estimate)[None, None], torch.from_numpy(reference)[None, None]
    with torch.inference_mode():
        result = {"si_snr": si_snr(estimate_t, reference_t).item(), "mel": mel(estimate_t, reference_t).item()}
    if speech:
        result |= _speech_scores(estimate, reference, rate)
    return result


def _speech_scores(estimate: np.ndarray, reference: np.ndarray, rate: int) -> dict[str, float]:
    """PESQ and STOI where their packages are importable (`main` notes once when one is not)."""
    result = {}
    if _importable("pesq"):
        from pesq import BufferTooShortError, NoUtterancesError, pesq
        wide = 16_000
        try:
            result["pesq"] = pesq(wide, resample(reference, rate, wide), resample(estimate, rate, wide), "wb")
        except (NoUtterancesError, BufferTooShortError) as error:  # a silent or too short file
            _progress(f"note: no PESQ for this file ({type(error).__name__}: {error})")
    if _importable("pystoi"):
        from pystoi import stoi
        result["stoi"] = stoi(reference, estimate, rate, extended=False)
    return result


Results = dict[tuple[str, str], dict[str, list]]  # per-file floats; "bands_in"/"bands_out": per-file band energies


def evaluate(files: list[Path], model: EncodecModel, bandwidths: list[float], opus_kbps: list[float],
             seconds: float | None = None, log: Callable[[str], None] = _progress) -> Results:
    """{(system, group): {metric: per-file values}} for each bandwidth ("EnCodec 6 kbps") and Opus rate."""
    rate = model.config.sampling_rate
    mel = MultiScaleMelLoss(rate)
    results: Results = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as workdir:
        for path in files:
            group = group_of(path)
            audio = read_audio(path, rate).mean(axis=0).astype(np.float32)
            if seconds is not None:
                audio = audio[: int(seconds * rate)]
            systems = {f"EnCodec {b:g} kbps": (codec_round_trip(model, audio, b), None) for b in bandwidths}
            for kbps in opus_kbps:
                systems[f"Opus {kbps:g} kbps"] = opus_round_trip(audio, rate, kbps, Path(workdir))
            given = band_levels(audio, rate) * len(audio)  # energy: a group's files weigh by length and level
            for system, (decoded, file_kbps) in systems.items():
                for metric, value in scores(decoded, audio, rate, mel, speech=group in SPEECH_GROUPS).items():
                    results[(system, group)][metric].append(value)
                results[(system, group)]["bands_in"].append(given)
                results[(system, group)]["bands_out"].append(band_levels(decoded, rate) * len(audio))
                if file_kbps is not None:
                    results[(system, group)]["file_kbps"].append(file_kbps)
            log(f"{path.name}: {len(audio) / rate:.1f} s, {group}")
    return results


def gate(files: list[Path], model: EncodecModel, bandwidth: float) -> GateResult:
    """The spectral gate at `bandwidth` on its synthetic signals and the first file of each group."""
    rate = model.config.sampling_rate
    firsts = {}
    for path in files:
        firsts.setdefault(group_of(path), path)
    recordings = {f"{group} ({path.name})": read_audio(path, rate).mean(axis=0).astype(np.float32)
                  for group, path in firsts.items()}
    return spectral_gate(lambda audio: codec_round_trip(model, audio, bandwidth), rate, recordings)


def markdown_table(results: Results) -> str:
    """One row per system, per group: mean SI-SNR and mel distance (and PESQ/STOI where computed)."""
    groups = [g for g in ("speech", "voices", "music", "mixtures") if any(key[1] == g for key in results)]
    systems = list(dict.fromkeys(system for system, _ in results))
    extra = [(g, m) for g in groups for m in ("pesq", "stoi")
             if any(m in values for (_, group), values in results.items() if group == g)]
    header = ["system"] + [f"{g} {m}" for g in groups for m in ("SI-SNR dB", "mel")] + \
             [f"{g} {m.upper()}" for g, m in extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for system in systems:
        cells = [system]
        for group in groups:
            values = results.get((system, group), {})
            cells += [_mean(values.get("si_snr"), ".2f"), _mean(values.get("mel"), ".3f")]
        cells += [_mean(results.get((system, g), {}).get(m), ".2f") for g, m in extra]
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{g}: {len(next(v for (s, gg), v in results.items() if gg == g)['mel'])} files"
                       for g in groups)
    file_kbps = defaultdict(list)
    for (system, _), values in results.items():
        file_kbps[system] += values.get("file_kbps", [])
    opus = ", ".join(f"{system} {np.mean(values):.2f}" for system, values in file_kbps.items() if values)
    note = f" Opus files average (Ogg headers included): {opus} kbps." if opus else ""
    summary = f"Means over {counts}. SI-SNR: higher is better; mel distance: lower is better."
    return "\n".join(lines) + "\n\n" + summary + note


def balance_table(results: Results) -> str:
    """One row per system and group: band energy out over in (dB) per octave, the group's files' band
    energies summed. One file can leave a band nearly empty (a synthesised piece 40 dB down above 4 kHz),
    where its ratio measures the codec's noise rather than its balance; a whole group fills every band."""
    width = max(len(values["bands_in"][0]) for values in results.values())
    lines = ["| system | group | " + " | ".join(band_names(width)) + " |", "|---" * (width + 2) + "|"]
    for (system, group), values in results.items():
        balance = level_balance(np.sum(values["bands_out"], axis=0), np.sum(values["bands_in"], axis=0))
        lines.append(f"| {system} | {group} | " + " | ".join(f"{value:+.1f}" for value in balance) + " |")
    return "\n".join(lines)


def _mean(values: list[float] | None, spec: str) -> str:
    return format(float(np.mean(values)), spec) if values else "–"


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)[:length]
    return np.pad(audio, (0, length - len(audio)))


def _run(arguments: list[str]) -> None:
    result = subprocess.run(arguments, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{arguments[0]} failed: {result.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audio_dir", metavar="AUDIO_DIR",
                        help="folder of speech-*, voices-*, music-*, recordings-* and mixtures-* audio files "
                             "(e.g. the corpus's validation split)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"codec to measure (default {DEFAULT_MODEL})")
    parser.add_argument("--bandwidths", type=float, nargs="*", help="default: all of the model's")
    parser.add_argument("--opus", type=float, nargs="*", default=[6.0, 12.0], help="Opus kbps (default 6 12)")
    parser.add_argument("--seconds", type=float, help="use only the first SECONDS of each file")
    parser.add_argument("--gate", type=float, metavar="KBPS",
                        help="exit with status 1 when the spectral gate fails at KBPS (e.g. 6 before shipping)")
    args = parser.parse_args(argv)
    if not Path(args.audio_dir).is_dir():
        parser.error(f"AUDIO_DIR {args.audio_dir} is not a folder")
    files = sorted(p for p in Path(args.audio_dir).iterdir()
                   if p.suffix.lower() in AUDIO_SUFFIXES and group_of(p) is not None)
    if not files:
        print(f"no speech-*, voices-*, music-*, recordings-* or mixtures-* audio files in {args.audio_dir}",
              file=sys.stderr)
        return 1
    model = EncodecModel.from_pretrained(args.model)
    bandwidths = args.bandwidths or list(model.config.target_bandwidths)
    missing = [name for name in ("pesq", "pystoi") if not _importable(name)]
    if missing:
        print(f"note: {' and '.join(missing)} not importable, so no {'/'.join(m.upper() for m in missing)} column "
              f"(pip install {' '.join(missing)})", file=sys.stderr)
    results = evaluate(files, model, bandwidths, args.opus, args.seconds)
    print(f"{args.model} on {args.audio_dir}" + (f", first {args.seconds:g} s of each file" if args.seconds else "")
          + ":\n")
    print(markdown_table(results))
    print(f"\nSpectral balance per group (dB, out over in, the group's files summed):\n\n{balance_table(results)}")
    failed = False
    for bandwidth in sorted(set(bandwidths) | ({args.gate} if args.gate is not None else set())):
        result = gate(files, model, bandwidth)
        verdict = "passes" if result.passed else "fails"
        print(f"\nSpectral balance at {bandwidth:g} kbps (dB, out over in; gate ±3 dB, ±6 dB above 8 kHz): "
              f"{verdict}\n\n{result.table()}")
        failed |= bandwidth == args.gate and not result.passed
    return 1 if failed else 0


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
