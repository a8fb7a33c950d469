"""Library errors in the command line's words: advice about a Python argument names the option instead."""

from __future__ import annotations

import re

# Library errors advise the Python argument to change (`overwrite=True`); on the command line it is an option.
ADVICE = {"pass overwrite=True": "pass --force", "pass recover=True": "pass --recover",
          "as the `model` argument": "with --model", "as the `lm` argument": "with --lm",
          "as the `source_lm` argument": "with --source-lm",
          "engine='ray'": "--engine ray", "the `address` argument": "--address",
          "the `gpus_per_worker` argument": "--gpus-per-worker",
          "channels='independent'": "--channels independent",
          "pass config=EncodecConfig(...)": "convert it with `encodec-fx convert SOURCE OUTPUT --config CONFIG` first"}
COMMAND_ADVICE = {"convert": {"pass config=EncodecConfig(...)": "pass --config"},
                  "export-onnx": {"frames_per_step must": "--frames-per-step must",
                                  "leave frames_per_step unset": "leave --frames-per-step out"}}

# Python's wording of an operating-system error that reached us unexplained: "[Errno 2] No such file or
# directory: 'a.ecfx'" reads "a.ecfx: no such file or directory". Journal lines hold only that text.
OS_ERROR = re.compile(r"""\[Errno \d+\] (?P<reason>[^:'"]+): (?P<quote>['"])(?P<path>.*?)(?P=quote)$""")


def _os_error_words(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        names = " and ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        return f"{names}: {error.strerror[:1].lower()}{error.strerror[1:]}"
    return OS_ERROR.sub(lambda found: f"{found['path']}: {found['reason'][:1].lower()}{found['reason'][1:]}",
                        str(error))


def command_line_message(error: BaseException, command: str | None = None) -> str:
    """An error's message as the command line (or a demo script) states it: advice about a Python argument
    names the option instead, so `overwrite=True` reads `--force`."""
    message = _os_error_words(error)
    for python, option in (ADVICE | COMMAND_ADVICE.get(command or "", {})).items():
        message = message.replace(python, option)
    return message
