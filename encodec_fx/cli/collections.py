"""What the commands over many files share (`compress`/`decompress` with -o, `tokenize`, `verify`):
workers, engine and journal options, and the run's one-line summary and exit status."""

from __future__ import annotations

import argparse
import tempfile

from ..devices import add_device_argument
from ..pretrained import DEFAULT_MODEL


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


def add_run_arguments(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("many files (with -o/--output-dir)")
    group.add_argument("--workers", type=int, help="worker processes, one torch thread each (default: one per core)")
    group.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local worker processes (default), or Ray actors (pip install 'encodec-fx[ray]')")
    group.add_argument("--address", help="Ray cluster address HOST:PORT (default: a local cluster for the run)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs Ray gives each actor (default 0)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def run_and_report(job, sources: list[str], output_dir: str, args: argparse.Namespace, label: str | None = None,
                   keep_journal: bool = True) -> int:
    """Run `job` over `sources`; one line per failure as it happens, a summary at the end; the exit
    status is 1 when any input failed."""
    from ..collection import run_collection
    summary = run_collection(job, sources, output_dir, workers=args.workers, engine=args.engine,
                             address=args.address, gpus_per_worker=args.gpus_per_worker,
                             overwrite=getattr(args, "force", False), progress=not args.quiet)
    if not keep_journal:
        summary.journal = ""
    print(f"{label or 'wrote ' + output_dir}: {summary.line()}")
    return 1 if summary.failures else 0


def tokenize(args: argparse.Namespace) -> int:
    """Tokenize audio files into EnCodec codes: one Parquet file per input, mirrored under OUTPUT_DIR."""
    from ..collection import TokenizeJob
    return run_and_report(TokenizeJob(model=args.model, bandwidth=args.bandwidth, device=str(args.device)), args.inputs,
                   args.output_dir, args)


def verify(args: argparse.Namespace) -> int:
    """Check archives: every segment's CRC and the entropy decoding of every frame, without writing audio."""
    from ..collection.decompress import VerifyJob
    job = VerifyJob(lm=args.lm)
    if args.journal_dir:
        return run_and_report(job, args.inputs, args.journal_dir, args, "verified")
    with tempfile.TemporaryDirectory(prefix="encodec-fx-verify-") as journal_dir:
        return run_and_report(job, args.inputs, journal_dir, args, "verified", keep_journal=False)


def add_tokenize(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("tokenize", help=tokenize.__doc__, description=tokenize.__doc__)
    command.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders or manifests (.txt, .jsonl)")
    command.add_argument("-o", "--output-dir", required=True, help="folder for the Parquet files and the journal")
    command.add_argument("-b", "--bandwidth", type=float, default=6.0, help="kbps of codes (default 6)")
    command.add_argument("--model", default=DEFAULT_MODEL, help=f"codec (default {DEFAULT_MODEL})")
    add_device_argument(command, "cpu", "cpu")
    add_run_arguments(command)
    command.set_defaults(run=tokenize)


def add_verify(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("verify", help=verify.__doc__, description=verify.__doc__)
    command.add_argument("inputs", nargs="+", metavar="ARCHIVE", help="archives (.ecfx) or folders of them")
    command.add_argument("--lm", help="LM file, if an archive's cannot be found by its name")
    command.add_argument("--journal-dir", help="keep the run's journal (journal.jsonl) in this folder")
    add_run_arguments(command)
    command.set_defaults(run=verify)
