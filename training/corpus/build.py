"""Build a reproducible training corpus of freely licensed audio for a 24 kHz mono codec.

Each source's clips are cut to length, given gain and reverb, put in train or validation by a hash of their
source item, written as FLAC and listed in manifest.jsonl; LICENSES.md sums them up, with the Debian
packages' versions and copyright files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from pedalboard import Gain, Pedalboard, Reverb

from encodec_fx.audio_io import write_audio

from .common import PACKAGE_LICENSES, SAMPLE_RATE, Clip, MissingTool, ToolCrashed, is_silent, item_rng, normalise_peak
from .mixtures import mixture_clip
from .music import discover_music_kit, music_clip
from .recordings import RECORDING_PACKAGES, ReservedSource, recording_clips, recording_owners
from .speech import discover_speech_kit, speech_clip
from .voices import VOICE_ROOTS, voice_clips, voice_speakers

SOURCES = ("speech", "music", "recordings", "voices", "mixtures")
INSTALL_COMMAND = ("apt-get install espeak-ng flite festival festvox-kallpc16k fluidsynth fluid-soundfont-gm "
                   "wamerican fortunes-min wesnoth-1.16-music asc-music klettres-data ktuberling-data hedgewars-data")
TOOL_VERSION_PACKAGES = ("espeak-ng", "flite", "festival", "fluidsynth")


def augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Half the time room reverb, then a gain that puts the peak at -1 to -25 dBFS; length and rate are kept."""
    params: dict = {"gain_db": round(float(rng.uniform(-24, 0)), 2)}
    if rng.random() < 0.5:
        params["reverb"] = {"room_size": round(float(rng.uniform(0.1, 0.9)), 3),
                            "damping": round(float(rng.uniform(0.2, 0.8)), 3),
                            "wet_level": round(float(rng.uniform(0.05, 0.4)), 3), "dry_level": 0.8}
        audio = Pedalboard([Reverb(**params["reverb"])])(audio[None], SAMPLE_RATE)[0]
    gain = Pedalboard([Gain(gain_db=params["gain_db"])])
    return gain(normalise_peak(audio)[None], SAMPLE_RATE)[0], params


def is_validation(item: str, percent: float) -> bool:
    """Whether a source item belongs to the validation split: a hash of its id, so it never moves."""
    return zlib.crc32(item.encode()) % 100 < percent


def generated_clips(make: Callable[[int], Clip]) -> Iterator[Clip]:
    """make(0), make(1), ... skipping silent results and items whose tool crashed (reported on stderr).
    Items are independent, so a skipped one changes no other."""
    index = 0
    while True:
        try:
            clip = make(index)
        except ToolCrashed as error:
            print(f"skipped item {index}: {error}", file=sys.stderr)
            clip = None
        if clip is not None and not is_silent(clip.audio):
            yield clip
        index += 1


def within_seconds(clips: Iterator[Clip], seconds: float, max_clip_seconds: float) -> Iterator[Clip]:
    """Clips cut to `max_clip_seconds` until their total reaches `seconds` (the last one is cut to fit)."""
    total = 0.0
    for clip in clips:
        room = int((seconds - total) * SAMPLE_RATE)
        if room < SAMPLE_RATE:
            return
        clip.audio = clip.audio[:min(room, int(max_clip_seconds * SAMPLE_RATE))]
        total += clip.audio.size / SAMPLE_RATE
        yield clip


def source_clips(source: str, seed: int, workdir: Path, recording_packages: tuple[str, ...],
                 voice_packages: tuple[str, ...]) -> Iterator[Clip]:
    """The clip stream of one source; a missing tool or package fails here, before anything is written."""
    if source == "speech":
        speech = discover_speech_kit()
        return generated_clips(lambda i: speech_clip(speech, seed, i, workdir))
    if source == "music":
        music = discover_music_kit()
        return generated_clips(lambda i: music_clip(music, seed, i, workdir))
    if source == "recordings":
        return recording_clips(recording_owners(recording_packages), seed)
    if source == "voices":
        return voice_clips(voice_speakers(voice_packages), seed)
    speech, music = discover_speech_kit(), discover_music_kit()
    return generated_clips(lambda i: mixture_clip(speech, music, seed, i, workdir))


def write_clip(clip: Clip, number: int, out_dir: Path, seed: int, validation_percent: float) -> dict:
    """Augment and write one clip; return its manifest row."""
    rng = item_rng(seed, "augment/" + clip.source, number)
    audio, augmentation = augment(clip.audio, rng)
    split = "validation" if is_validation(clip.item, validation_percent) else "train"
    path = Path(split) / f"{clip.source}-{number:06d}.flac"
    write_audio(out_dir / path, audio[None], SAMPLE_RATE)
    return {"path": str(path), "split": split, "source": clip.source, "item": clip.item,
            "duration": round(audio.size / SAMPLE_RATE, 3), "license": clip.license,
            "packages": list(clip.packages), "params": clip.params, "augmentation": augmentation}


def write_manifest(rows: list[dict], out_dir: Path) -> None:
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, sort_keys=True) + "\n")


def copy_copyright_files(packages: set[str], out_dir: Path) -> None:
    """Each used Debian package's copyright file, as OUT_DIR/licenses/<package>.copyright."""
    (out_dir / "licenses").mkdir(exist_ok=True)
    for package in sorted(packages):
        copyright_file = Path("/usr/share/doc") / package / "copyright"
        if copyright_file.exists():
            shutil.copyfile(copyright_file, out_dir / "licenses" / f"{package}.copyright")


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package, or None."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return None
    result = subprocess.run([dpkg_query, "-W", "-f", "${Version}", package], capture_output=True, text=True)
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


def installed_versions(packages: set[str]) -> dict[str, str]:
    """Versions of the data packages used and of the synthesis tools, which a rebuild must match."""
    names = sorted(packages | set(TOOL_VERSION_PACKAGES))
    return {name: version for name in names if (version := debian_version(name))}


def licenses_markdown(rows: list[dict], seed: int, versions: dict[str, str]) -> str:
    """LICENSES.md: hours per source and split, and every distinct license with its file count."""
    lines = ["# Corpus sources and licenses", "", f"Built by `python -m training.corpus` with seed {seed}; "
             "every file is 24 kHz mono FLAC and is listed in `manifest.jsonl` with its license and parameters.", "",
             "| source | split | files | hours |", "|---|---|---|---|"]
    for source in SOURCES:
        for split in ("train", "validation"):
            chosen = [row for row in rows if row["source"] == source and row["split"] == split]
            if chosen:
                hours = sum(row["duration"] for row in chosen) / 3600
                lines.append(f"| {source} | {split} | {len(chosen)} | {hours:.3f} |")
    lines += ["", "## Licenses", "", "| source | license | files |", "|---|---|---|"]
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[row["source"], row["license"]] = counts.get((row["source"], row["license"]), 0) + 1
    lines += [f"| {source} | {license_} | {count} |" for (source, license_), count in sorted(counts.items())]
    lines += ["", "## Debian packages", "", "Data packages' copyright files are copied into `licenses/`; a rebuild "
              "with the same seed gives the same files when these versions match.", "",
              "| package | version | license |", "|---|---|---|"]
    lines += [f"| {name} | {version} | {PACKAGE_LICENSES.get(name, 'tool')} |" for name, version in versions.items()]
    lines += ["", "Synthesis tools (espeak-ng, flite, festival, fluidsynth) are programs; their licenses do not "
              "extend to the audio they produce. GPL-2+ and GFDL-1.3 recordings are redistributable with their "
              "license texts.", "",
              "Reserved for independent evaluation and never used here: SuperTuxKart's data, the ALSA and "
              "freedesktop sound files (alsa-utils, sound-theme-freedesktop) and recordings shipped inside "
              "Python packages.", ""]
    return "\n".join(lines)


def build_corpus(out_dir: Path, hours: float, seed: int, sources: tuple[str, ...], validation_percent: float,
                 recording_packages: tuple[str, ...] = RECORDING_PACKAGES,
                 voice_packages: tuple[str, ...] = tuple(VOICE_ROOTS), max_clip_seconds: float = 30.0) -> list[dict]:
    """Write the corpus into `out_dir` (which must be new or empty): hours shared equally by the sources."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}: choose from {', '.join(SOURCES)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: give a new folder")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        streams = {source: source_clips(source, seed, Path(workdir), recording_packages, voice_packages)
                   for source in sources}
        for split in ("train", "validation"):
            (out_dir / split).mkdir(parents=True, exist_ok=True)
        for source, clips in streams.items():
            for number, clip in enumerate(within_seconds(clips, hours * 3600 / len(sources), max_clip_seconds)):
                rows.append(write_clip(clip, number, out_dir, seed, validation_percent))
                print(f"{rows[-1]['path']}  {rows[-1]['duration']:.1f} s", file=sys.stderr)
    write_manifest(rows, out_dir)
    packages = {package for row in rows for package in row["packages"]}
    copy_copyright_files(packages, out_dir)
    (out_dir / "LICENSES.md").write_text(licenses_markdown(rows, seed, installed_versions(packages)),
                                         encoding="utf-8")
    return rows


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.corpus", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, nargs="?", help="new or empty folder for the corpus")
    parser.add_argument("--hours", type=float, default=1.0, help="total duration cap (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated subset of {','.join(SOURCES)}")
    parser.add_argument("--validation-percent", type=float, default=5.0)
    parser.add_argument("--recording-packages", default=",".join(RECORDING_PACKAGES),
                        help="Debian packages to take recordings from")
    parser.add_argument("--voice-packages", default=",".join(VOICE_ROOTS),
                        help="Debian packages to take recorded speech from")
    parser.add_argument("--install-hint", action="store_true", help="print the apt-get command and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.install_hint:
        print(INSTALL_COMMAND)
        return 0
    if arguments.out_dir is None:
        print("error: OUT_DIR is required", file=sys.stderr)
        return 2
    try:
        rows = build_corpus(arguments.out_dir, arguments.hours, arguments.seed,
                            tuple(arguments.sources.split(",")), arguments.validation_percent,
                            tuple(arguments.recording_packages.split(",")),
                            tuple(arguments.voice_packages.split(",")))
    except (MissingTool, ReservedSource, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(rows)} files, {sum(row['duration'] for row in rows) / 3600:.3f} h in {arguments.out_dir}")
    return 0

