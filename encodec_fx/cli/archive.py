"""`encodec-fx compress`, `decompress`, `transcode` and `info`: audio files ↔ `.ecfx` archives, and archives
re-coded without their audio. `info` reads the archive alone (`entropy.describe`), without the codec or torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from entropy.archive import ARCHIVE_SUFFIX, MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS, SEGMENT_SECONDS
from entropy.format_v3 import CODING_MODE_IDS, LM_CODING_MODES

from ..audio_io import AUDIO_SUFFIXES
from ..devices import add_device_argument
from ..pretrained import DEFAULT_MODEL, archive_lm, default_lm, is_shipped
from .collections import add_paths, add_run_arguments, check_one_file, single_or_many

if TYPE_CHECKING:
    from ..model import EncodecModel


def load_codec(source: str | None, device: str, named: str | None = None) -> EncodecModel:
    """The codec named on the command line, or for decompression the one the archive names (`named`:
    a shipped model's name, or a path that exists here)."""
    from ..model import EncodecModel
    if source is None and named is not None and (is_shipped(named) or Path(named).exists()):
        source = named
    if source is None:
        needed = f" (this archive needs codec {named!r})" if named is not None else ""
        raise ValueError(f"no codec given{needed}: pass --model with a model directory, checkpoint, shipped "
                         "model name or hub id")
    return EncodecModel.from_pretrained(source, device=device)


def compress(args: argparse.Namespace) -> int:
    """Compress audio into .ecfx archives: one file (INPUT OUTPUT.ecfx), or files, folders and manifests
    into a mirrored tree (-o OUTPUT_DIR), resumable through the folder's journal."""
    many = single_or_many(args, "OUTPUT.ecfx")
    if not many:
        check_one_file(args, {ARCHIVE_SUFFIX}, audio_input=True)
    from ..compress import compress_file
    from ..lm import load_lm
    wants_lm = not args.no_lm and (args.coding is None or args.coding in LM_CODING_MODES)
    lm_name = (args.lm or default_lm(args.model)) if wants_lm else None  # a shipped codec's LM by default
    mode = args.coding or "auto"  # the smallest archive of the modes there is a model for
    if many:
        from ..collection import CompressJob
        from .collections import run_and_report
        job = CompressJob(model=args.model, bandwidth=args.bandwidth, coding=mode, lm=lm_name,
                          device=str(args.device), parity=args.parity, channels=args.channels,
                          segment_seconds=args.segment_seconds)
        return run_and_report(job, args.inputs, args.output_dir, args)
    model = load_codec(args.model, args.device)
    lm = load_lm(lm_name) if lm_name else None
    header = compress_file(args.input, args.output, model, bandwidth=args.bandwidth, mode=mode,
                           model_name=args.model, lm=lm, lm_name=lm_name, overwrite=args.force, parity=args.parity,
                           channels=args.channels, segment_seconds=args.segment_seconds)
    size = Path(args.output).stat().st_size
    seconds = header.audio_length / header.sample_rate
    print(f"wrote {args.output}: {seconds:.2f} s at {header.bandwidth:g} kbps codes, {header.coding_mode} coding, "
          f"{size} bytes = {size * 8 / seconds / 1000:.2f} kbps")
    return 0


def decompress(args: argparse.Namespace) -> int:
    """Decode .ecfx archives to audio with the original rate, channels and length: one (INPUT OUTPUT), or
    files and folders of archives into a mirrored tree (-o OUTPUT_DIR, --format wav or flac)."""
    from entropy.archive import ArchiveHeader, ArchiveReader
    if single_or_many(args, "OUTPUT.wav"):
        from ..collection.decompress import DecompressJob
        from .collections import run_and_report
        job = DecompressJob(model=args.model, lm=args.lm, device=str(args.device), recover=args.recover,
                            suffix=f".{args.format}", start=args.start, duration=args.duration)
        return run_and_report(job, args.inputs, args.output_dir, args)
    with ArchiveReader(args.input) as reader:
        header = ArchiveHeader.from_dict(reader.header)  # a nonsensical header is refused here
    check_one_file(args, AUDIO_SUFFIXES, audio_input=False)
    from ..compress import decompress_file
    from ..lm import load_lm
    model = load_codec(args.model, args.device, header.codec["name"])
    lm_source = archive_lm(args.lm, header.lm)
    repaired: list[int] = []
    lost = decompress_file(args.input, args.output, model, lm=load_lm(lm_source) if lm_source else None,
                           overwrite=args.force, recover=args.recover, start=args.start, duration=args.duration,
                           repaired=repaired)
    for segment in lost:
        print(f"lost segment {segment.number} ({segment.start_seconds:.2f}–{segment.end_seconds:.2f} s), "
              f"written as silence: {segment.reason}", file=sys.stderr)
    report_repaired(repaired)
    print(f"wrote {args.output}" + (f" with {len(lost)} segment(s) lost" if lost else ""))
    return 0


def report_repaired(repaired: list[int]) -> None:
    if repaired:
        print(f"repaired segment(s) {', '.join(map(str, repaired))} from parity: damaged, rebuilt bit-exactly",
              file=sys.stderr)


def transcode(args: argparse.Namespace) -> int:
    """Re-code .ecfx archives without their audio: a lower bandwidth (the first codebooks), another coding
    (lm, lm-adaptive, static, raw) or LM, or parity; byte for byte what compressing the audio that way writes. One
    archive (INPUT.ecfx OUTPUT.ecfx), or files and folders of them into a mirrored tree (-o OUTPUT_DIR)."""
    from entropy.archive import ArchiveHeader, ArchiveReader
    mode = None if args.coding is None else args.coding
    if single_or_many(args, "OUTPUT.ecfx"):
        from ..collection.transcode import TranscodeJob
        from .collections import run_and_report
        job = TranscodeJob(bandwidth=args.bandwidth, coding=mode, lm=args.lm, source_lm=args.source_lm,
                           parity=args.parity)
        return run_and_report(job, args.inputs, args.output_dir, args)
    with ArchiveReader(args.input) as reader:
        header = ArchiveHeader.from_dict(reader.header)
    check_one_file(args, {ARCHIVE_SUFFIX}, audio_input=False)
    from ..compress import transcode_file
    from ..lm import load_lm
    source_lm = archive_lm(args.source_lm, header.lm)
    keeps_an_lm = (mode in (None, "auto") or mode in LM_CODING_MODES) and header.coding_mode in LM_CODING_MODES
    target_lm = args.lm or (source_lm if keeps_an_lm else None)
    repaired: list[int] = []
    out = transcode_file(args.input, args.output, bandwidth=args.bandwidth, mode=mode,
                         lm=load_lm(target_lm) if target_lm else None, lm_name=target_lm,
                         source_lm=load_lm(source_lm) if source_lm else None, parity=args.parity,
                         overwrite=args.force, repaired=repaired)
    report_repaired(repaired)
    size = Path(args.output).stat().st_size
    seconds = out.audio_length / out.sample_rate
    print(f"wrote {args.output}: {out.bandwidth:g} kbps codes, {out.coding_mode} coding, {size} bytes = "
          f"{size * 8 / seconds / 1000:.2f} kbps")
    return 0


def info(args: argparse.Namespace) -> None:
    """Describe a .ecfx archive from its header alone: codec, LM, coding, audio format and length, segments,
    size and bit rate."""
    from entropy.describe import describe_archive
    description = describe_archive(args.archive)
    if not description["complete"]:
        print(f"encodec-fx info: warning: the archive is cut short: {description['segments']} of "
              f"{description['segments_expected']} segments are whole (decompress --recover writes the rest "
              "as silence)", file=sys.stderr)
    if args.json:
        print(json.dumps(description, indent=2))
        return
    rows = readable_fields(description)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")


# info's field names for people, and their units: (label, unit)
FIELD_LABELS = {"coding_mode": ("coding", ""), "sample_rate": ("sample rate", "Hz"),
                "audio_length": ("length", "samples"), "duration_seconds": ("duration", "s"),
                "model_sample_rate": ("model sample rate", "Hz"), "bandwidth_kbps": ("bandwidth", "kbps"),
                "n_q": ("codebooks", ""), "segment_seconds": ("segment length", "s"),
                "segments": ("segments whole", ""), "bytes": ("size", "bytes"),
                "payload_bytes": ("payload", "bytes"), "overhead_bytes": ("overhead", "bytes"),
                "parity": ("parity every", "segments"), "kbps": ("bit rate", "kbps")}


def readable_fields(description: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) rows of a description for people: a nested dict becomes one row per entry ("codec name"),
    None reads "none", booleans "yes" or "no", numbers carry their unit. `--json` keeps the fields for tools."""
    rows: list[tuple[str, str]] = []
    for key, value in description.items():
        label, unit = FIELD_LABELS.get(key, (key.replace("_", " "), ""))
        if isinstance(value, dict) and value:
            rows += readable_fields(value, f"{prefix}{label} ")
            continue
        if value is None or value == {}:
            text = "none"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(item) for item in value)
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            text += f" {unit}" if unit else ""
        rows.append((f"{prefix}{label}", text))
    return rows


def add_compress(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("compress", help="compress audio into .ecfx archives", description=compress.__doc__)
    add_paths(command, one="INPUT OUTPUT.ecfx for one audio file (wav, flac, ogg, mp3, aiff; any rate and channel "
                           "count)", many="the audio files, folders and manifests (.txt, .jsonl) to compress",
              verb="compress many inputs")
    command.add_argument("-b", "--bandwidth", type=float, default=6.0, help="kbps of codes (default 6)")
    command.add_argument("--model", default=DEFAULT_MODEL,
                         help=f"codec: shipped model name, model directory, checkpoint or hub id "
                              f"(default {DEFAULT_MODEL})")
    command.add_argument("--lm", help="entropy-coding LM (.safetensors from train-lm, or a shipped LM's name); "
                                      "default: the LM shipped with the codec, if any")
    command.add_argument("--no-lm", action="store_true",
                         help="do not use an LM (static or raw coding, whichever is smaller)")
    command.add_argument("--coding", choices=CODING_MODE_IDS,
                         help="lm: usually smallest, slowest; lm-adaptive: the LM mixed with the file's own code "
                              "counts, 0.7-2 %% smaller, 1.6x the LM's time; static: per-codebook distribution; raw: "
                              "10-bit codes (default: lm, static and raw, keeping the smallest archive)")
    command.add_argument("--channels", choices=["joint", "independent"], default="joint",
                         help="stereo on a mono model: joint (default) codes -b kbps in all, the codebooks split "
                              "between mid and side (or left and right, whichever measures better); independent "
                              "codes each channel at -b kbps")
    add_device_argument(command, "cpu", "cpu; a GPU's rounding may pick another code where two nearly tie")
    add_parity_argument(command, 0)
    command.add_argument("--segment-seconds", type=float, default=SEGMENT_SECONDS, metavar="S",
                         help=f"segment length, {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g} s, rounded to whole "
                              f"code frames or chunks (default {SEGMENT_SECONDS:g}; `info` shows an archive's): a "
                              "time range decodes whole segments, "
                              "so shorter ones decode ranges faster with an LM (2: a 10 s range in 0.69 s instead of "
                              "1.19 s, for 1.4 %% more bytes at 1.5 kbps, none at 6)")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_run_arguments(command)
    command.set_defaults(run=compress)


def add_parity_argument(command: argparse.ArgumentParser, default: int | None) -> None:
    command.add_argument("--parity", type=int, default=default, metavar="K",
                         help="add a parity segment after every K segments, which rebuilds any one damaged segment "
                              "of the K (" + ("default 0: none" if default == 0 else "default: the archive's") + ")")


def add_transcode(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("transcode", help="re-code .ecfx archives without their audio",
                                  description=transcode.__doc__)
    add_paths(command, one="INPUT.ecfx OUTPUT.ecfx for one archive", many="the archives and folders of archives "
              "to transcode", verb="transcode many archives")
    command.add_argument("-b", "--bandwidth", type=float,
                         help="kbps of codes, at most the archive's (default: the archive's)")
    command.add_argument("--coding", choices=(*CODING_MODE_IDS, "auto"),
                         help="coding of the output; auto keeps the smallest (default: the archive's)")
    command.add_argument("--lm", help="LM to code the output with (default: the archive's, for lm coding)")
    command.add_argument("--source-lm", help="LM file the archive was coded with, if it cannot be found by its name")
    add_parity_argument(command, None)
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_run_arguments(command)
    command.set_defaults(run=transcode)


def add_decompress(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("decompress", help="decode .ecfx archives to audio", description=decompress.__doc__)
    add_paths(command, one="INPUT.ecfx OUTPUT for one archive (output: wav, flac, ogg, mp3, aiff)",
              many="the archives and folders of archives to decode", verb="decode many archives", audio_out=True)
    command.add_argument("--model", help="codec, if the archive's cannot be found by its name")
    command.add_argument("--lm", help="LM file, if the archive's cannot be found by its name")
    command.add_argument("--recover", action="store_true",
                         help="write damaged segments that parity cannot rebuild as silence")
    command.add_argument("--start", type=float, metavar="S",
                         help="decode from S seconds on, decoding only the segments needed (default 0)")
    command.add_argument("--duration", type=float, metavar="D",
                         help="decode D seconds, cut at the end of the audio (default: to the end)")
    add_device_argument(command, "cpu", "cpu")
    command.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_run_arguments(command)
    command.set_defaults(run=decompress)


def add_info(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("info", help="describe a .ecfx archive", description=info.__doc__)
    command.add_argument("archive", help="the .ecfx archive")
    command.add_argument("--json", action="store_true", help="print the same fields as JSON, for tools")
    command.set_defaults(run=info)
