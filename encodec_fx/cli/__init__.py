"""The `encodec-fx` command line. Errors are one line on stderr and a non-zero exit status, unexpected
ones too (ENCODEC_FX_TRACEBACK=1 shows their traceback)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import archive, codec, collections, fx, training
from .messages import command_line_message

TRACEBACK_VARIABLE = "ENCODEC_FX_TRACEBACK"
# in the order `--help` lists them
COMMANDS = (codec.add_convert, codec.add_export_onnx, archive.add_compress, archive.add_decompress,
            archive.add_transcode, fx.add_fx, archive.add_info,
            collections.add_tokenize, collections.add_verify, training.add_train_lm, training.add_train_codec)


def build_parser() -> argparse.ArgumentParser:
    """Every command's options. Building them imports no torch (each command imports the codec, LM or
    trainer only when it runs), so `--help` and `info` answer at once."""
    parser = argparse.ArgumentParser(prog="encodec-fx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. With `argv` None this is the process's own command line (the
    `encodec-fx` script, `python -m encodec_fx.cli`), and Ctrl-C ends it with status 130 and one line, SIGTERM
    with 143 (both unwind, so that no temporary file is left). Called from Python with arguments, a
    KeyboardInterrupt goes on up, so that a test run or the caller stops."""
    try:
        if argv is None:
            own_process_signals()
        return run_command(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt as interrupt:
        if argv is not None:
            raise
        command = getattr(interrupt, "command", None)
        terminated = isinstance(interrupt, Terminated) or isinstance(interrupt.__cause__, Terminated)
        print(f"encodec-fx{f' {command}' if command else ''}: {'terminated' if terminated else 'interrupted'}",
              file=sys.stderr)
        return 143 if terminated else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds as from Ctrl-C: temporaries are removed."""


def own_process_signals() -> None:
    """For the process's own command line only: SIGTERM unwinds (`Terminated`), and SIGXFSZ is ignored, so that
    a file size limit (ulimit -f) fails the write with EFBIG, a one-line error, instead of killing the process
    mid-write."""
    def terminate(number: int, frame: object) -> None:
        raise Terminated()
    signal.signal(signal.SIGTERM, terminate)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class CommandInterrupted(KeyboardInterrupt):
    """Ctrl-C during a command: still a KeyboardInterrupt, naming the command for the one-line message."""

    def __init__(self, command: str) -> None:
        super().__init__(command)
        self.command = command


def run_command(argv: list[str]) -> int:
    """Parse and run; errors become one line on stderr and status 1."""
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)  # commands over many files return 1 when some failed
    except (OSError, ValueError) as error:
        print(f"encodec-fx {args.command}: error: {command_line_message(error, args.command)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        raise CommandInterrupted(args.command) from interrupt
    except Exception as error:  # a failure no check foresaw: still one line, and the way to the whole story
        if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
            raise
        reason = (str(error).strip().splitlines() or [""])[0]
        print(f"encodec-fx {args.command}: error: unexpected {type(error).__name__}: {reason} (rerun with "
              f"{TRACEBACK_VARIABLE}=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    return status or 0
