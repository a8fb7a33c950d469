"""What the commands over many files share (`compress`/`decompress` with -o, `tokenize`, `verify`):
workers, engine and journal options, and the run's one-line summary and exit status."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..devices import add_device_argument
from ..pretrained import DEFAULT_MODEL
from .messages import command_line_message

if TYPE_CHECKING:
    from ..collection import Summary
    from ..collection.engines import Job

SHARD_ROWS = 1000  # collection.tokenize.SHARD_ROWS, here without importing numpy for --help


def add_paths(command: argparse.ArgumentParser, one: str, many: str, verb: str, audio_out: bool = False) -> None:
    """PATH... and -o for a command that takes one file as INPUT OUTPUT, or many with -o OUTPUT_DIR."""
    command.add_argument("paths", nargs="+", metavar="PATH", help=f"{one}; with -o, {many}")
    command.add_argument("-o", "--output-dir", help=f"{verb} into this folder, mirroring their tree")
    if audio_out:
        command.add_argument("--format", choices=["wav", "flac"], default="wav",
                             help="with -o: output format (default wav)")


def single_or_many(args: argparse.Namespace, output_kind: str) -> bool:
    """Whether the command runs over many inputs (-o given); else it takes INPUT OUTPUT, as it always has."""
    if args.output_dir is not None:
        args.inputs = args.paths
        return True
    if len(args.paths) != 2:
        raise ValueError(f"give INPUT {output_kind} for one file, or inputs and -o/--output-dir for many "
                         f"(got {len(args.paths)} path(s) and no -o)")
    args.input, args.output = args.paths
    return False


def check_one_file(args: argparse.Namespace, suffixes: set[str], audio_input: bool) -> None:
    """The one-file form's input (when it is audio; an archive's header is read by the command) and output,
    checked before the command imports torch and loads a model, which take seconds: a missing or unreadable
    input, or an output that cannot be written, is said at once. The library checks them again."""
    from ..audio_io import check_destination, open_audio
    if audio_input:
        open_audio(args.input).close()
    check_destination(args.output, args.force, suffixes, source=args.input)


def add_run_arguments(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("many files (with -o/--output-dir)")
    group.add_argument("--workers", type=int, help="worker processes, one torch thread each (default: one per core)")
    group.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local worker processes (default), or Ray actors (pip install 'encodec-fx[ray]')")
    group.add_argument("--address", help="Ray cluster address HOST:PORT (default: a local cluster for the run)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs Ray gives each actor (default 0)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def run_and_report(job: Job, sources: list[str], output_dir: str, args: argparse.Namespace, label: str | None = None,
                   keep_journal: bool = True, report: Callable[[Summary], None] | None = None) -> int:
    """Run `job` over `sources`; one line per failure as it happens, a summary at the end (after what
    `report` prints of it); the exit status is 1 when any input failed."""
    from ..collection import run_collection
    summary = run_collection(job, sources, output_dir, workers=args.workers, engine=args.engine,
                             address=args.address, gpus_per_worker=args.gpus_per_worker,
                             overwrite=getattr(args, "force", False), progress=not args.quiet,
                             explain=lambda reason: command_line_message(ValueError(reason)))
    if not keep_journal:
        summary.journal = ""
    if report is not None:
        report(summary)
    print(f"{label or 'wrote ' + output_dir}: {summary.line()}")
    return 1 if summary.failures else 0


def tokenize(args: argparse.Namespace) -> int:
    """Tokenize audio files into EnCodec codes: Parquet shards of one row per input, in OUTPUT_DIR."""
    from ..collection import TokenizeJob
    job = TokenizeJob(model=args.model, bandwidth=args.bandwidth, device=str(args.device), shard_rows=args.shard_rows)
    return run_and_report(job, args.inputs, args.output_dir, args)


def verify(args: argparse.Namespace) -> int:
    """Check archives: header, index and footer, every segment's CRC and the entropy decoding of every frame,
    without writing audio; with --against, decode them and measure them against their originals."""
    from ..collection.decompress import VerifyJob
    report = None
    if args.against is not None:
        against = Path(args.against)
        if not against.exists():
            raise FileNotFoundError(f"--against {against}: no file or folder there")
        if against.is_file() and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
            raise ValueError(f"--against {against} is one file, for one archive: for many, give the folder "
                             "they were made from")
        report = quality_report(args.against)
    job = VerifyJob(lm=args.lm, model=args.model, against=args.against)
    if args.journal_dir:
        return run_and_report(job, args.inputs, args.journal_dir, args, "verified", report=report)
    with tempfile.TemporaryDirectory(prefix="encodec-fx-verify-") as journal_dir:
        return run_and_report(job, args.inputs, journal_dir, args, "verified", keep_journal=False, report=report)


PER_FILE_LINES = 20  # up to this many archives, the quality report lists each


def quality_report(against: str) -> Callable[[Summary], None]:
    """Prints SI-SNR and mel distance against the originals: each file's for a few files, else the mean
    and the worst, so that a collection's outliers stand out."""
    def report(summary: Summary) -> None:
        measured = [record for record in summary.records if "si_snr_db" in record]
        if not measured:
            return
        name = {id(record): Path(record["source"]["path"]).name if len(measured) > PER_FILE_LINES
                else record["source"]["path"] for record in measured}
        print(f"against {against} (SI-SNR in dB, higher is better; mel distance, lower is better):")
        if len(measured) <= PER_FILE_LINES:
            width = max(len(text) for text in name.values())
            for record in measured:
                print(f"  {name[id(record)]:<{width}}  SI-SNR {record['si_snr_db']:7.2f} dB   "
                      f"mel {record['mel_distance']:.3f}")
        snr = [record["si_snr_db"] for record in measured]
        worst_snr = min(measured, key=lambda record: record["si_snr_db"])
        worst_mel = max(measured, key=lambda record: record["mel_distance"])
        print(f"  {len(measured):,} file(s): SI-SNR mean {sum(snr) / len(snr):.2f} dB, lowest "
              f"{worst_snr['si_snr_db']:.2f} dB ({name[id(worst_snr)]}); mel distance mean "
              f"{sum(r['mel_distance'] for r in measured) / len(measured):.3f}, highest "
              f"{worst_mel['mel_distance']:.3f} ({name[id(worst_mel)]})")
    return report


def add_tokenize(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("tokenize", help="tokenize audio into EnCodec codes (Parquet shards)",
                                  description=tokenize.__doc__)
    command.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders or manifests (.txt, .jsonl)")
    command.add_argument("-o", "--output-dir", required=True, help="folder for the Parquet shards and the journal")
    command.add_argument("-b", "--bandwidth", type=float, default=6.0, help="kbps of codes (default 6)")
    command.add_argument("--shard-rows", type=int, default=SHARD_ROWS,
                         help=f"inputs per Parquet shard, shard-00000.parquet, ... (default {SHARD_ROWS})")
    command.add_argument("--model", default=DEFAULT_MODEL, help=f"codec (default {DEFAULT_MODEL})")
    add_device_argument(command, "cpu", "cpu")
    add_run_arguments(command)
    command.set_defaults(run=tokenize)


def add_verify(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("verify", help="check .ecfx archives without writing audio",
                                  description=verify.__doc__)
    command.add_argument("inputs", nargs="+", metavar="ARCHIVE", help="archives (.ecfx) or folders of them")
    command.add_argument("--lm", help="LM file, if an archive's cannot be found by its name")
    command.add_argument("--model", help="codec file, if an archive's cannot be found by its name (with --against)")
    command.add_argument("--against", metavar="SRC",
                         help="the originals: the folder the archives were made from (its tree mirrored as "
                              "compress -o mirrors it), or one file; reports SI-SNR and mel distance")
    command.add_argument("--journal-dir", help="keep the run's journal (journal.jsonl) in this folder")
    add_run_arguments(command)
    command.set_defaults(run=verify)
