"""Files that appear whole or not at all, never over a file that appeared meanwhile, and leave nothing behind.

Every writer of the package (archives, audio, effects output, checkpoints, exports, LM files, Parquet
shards) writes under a temporary name beside its destination and moves it into place only once every
file of the write is complete, so a failure (a full disk, an interrupt) leaves the old files as they
were and no partial one.

- **Names**: a temporary is `.NAME.encodec-fx-PID-TOKEN.tmpSUFFIX` beside NAME (PID: the writer's process,
  TOKEN: 8 hex digits, SUFFIX: NAME's, which some writers need to pick the format).
- **No clobbering**: without `overwrite`, the temporary is put in place with `os.link` (POSIX, Linux and
  macOS), which fails if the destination exists: of two writers to one name exactly one succeeds and the
  other gets a `FileExistsError`, however their checks and writes interleave. Where a file system has no
  hard links, `renameat2(RENAME_NOREPLACE)` (Linux) or `renamex_np(RENAME_EXCL)` (macOS) does the same;
  failing both, an empty placeholder created with `O_EXCL` claims the name before `os.replace`. With
  `overwrite`, `os.replace`: the last writer wins, whole.
- **No orphans**: temporaries are removed on every error path (Ctrl-C included; the command line turns
  SIGTERM into the same unwinding). A writer holds an exclusive `flock` on its temporary while it lives,
  so one that was killed (`kill -9`, a power cut) is proven dead: the next write to the same destination
  removes a temporary whose lock is free and whose process is gone (or which is older than
  `STALE_SECONDS`).
- **Durability, one policy for every writer**: each file's data is fsynced (`F_FULLFSYNC` on macOS) before
  it is moved into place, and its folder after, so a file that has appeared survives a power cut.
- **Errors**: a full disk or a refused permission reads as such, naming the destination ("no space left on
  device writing OUT", "permission denied writing OUT"), whichever library's error the writer raised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no locks; a temporary is then proven dead by its process alone
    fcntl = None  # type: ignore[assignment]

TAG = "encodec-fx"
STALE_SECONDS = 24 * 3600
"""A temporary whose lock is free but whose process id is alive (reused by another process) is stale once it
has not been modified for this long."""
_LIVE: dict[Path, int] = {}  # this process's temporaries → the descriptor that holds their lock
FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
DENIED = (errno.EACCES, errno.EPERM)
_PROBE_BYTES = 4 << 20  # written to tell a full disk behind another library's error (its buffers are smaller)


def temporary_pattern(destination: str | os.PathLike) -> re.Pattern[str]:
    """What the names of `destination`'s temporaries match; group 1 is the writer's process id."""
    path = Path(destination)
    return re.compile(rf"\.{re.escape(path.name)}\.{TAG}-(\d+)-[0-9a-f]{{8}}\.tmp{re.escape(path.suffix)}")


ANY_TEMPORARY = re.compile(rf"\..+\.{TAG}-(\d+)-[0-9a-f]{{8}}\.tmp(\.[^.]*)?")
"""What the name of any temporary of this package matches (group 1: the writer's process id)."""


def create_temporary(destination: str | os.PathLike) -> Path:
    """A new, empty, locked temporary beside `destination` (after removing its stale ones); `discard` or
    `place` it. Raises a one-line OSError naming `destination` if its folder cannot be written."""
    destination = Path(destination)
    remove_stale(destination)
    while True:
        path = destination.parent / f".{destination.name}.{TAG}-{os.getpid()}-{secrets.token_hex(4)}.tmp" \
                                    f"{destination.suffix}"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue  # 32 random bits met another's: draw again
        except OSError as error:
            raise write_error(error, destination) or error from None
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else can hold it
        _LIVE[path] = descriptor
        return path


def discard(temporary: Path) -> None:
    """Remove a temporary and let go of its lock (nothing if already gone)."""
    temporary.unlink(missing_ok=True)
    descriptor = _LIVE.pop(temporary, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_stale(destination: str | os.PathLike) -> list[Path]:
    """Remove the temporaries beside `destination` whose writers are dead; the paths removed."""
    destination = Path(destination)
    return _remove_stale_in(destination.parent, temporary_pattern(destination))


def remove_stale_in(folder: str | os.PathLike) -> list[Path]:
    """Remove every temporary of this package in `folder` whose writer is dead (a collection run, once per
    output folder); the paths removed."""
    return _remove_stale_in(Path(folder), ANY_TEMPORARY)


def _remove_stale_in(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder (yet), or not readable: the write itself will say what is wrong
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name) if entry.name.startswith(".") else None
        if match and _remove_if_dead(Path(entry.path), int(match.group(1))):
            removed.append(Path(entry.path))
    return removed


def _remove_if_dead(path: Path, pid: int) -> bool:
    """Remove `path` if its writer is provably gone: its lock is free, and its process is not running (or is
    this one, which does not hold it, or the file is older than STALE_SECONDS)."""
    if pid == os.getpid() and path in _LIVE:
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its writer lives
                return False
        old = time.time() - os.fstat(descriptor).st_mtime > STALE_SECONDS
        if pid != os.getpid() and _process_alive(pid) and not old:
            return False  # perhaps a writer between creating its temporary and locking it
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process (or a nonsense id): keep it
        return pid > 0
    return True


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file's data to the disk (macOS: to the platters, `F_FULLFSYNC`, which its fsync does not)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if sys.platform == "darwin" and fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):
            fcntl.fcntl(descriptor, fcntl.F_FULLFSYNC)
        else:
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a folder's new entries (a rename, a link) durable: POSIX keeps them in buffers of their own."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:  # some file systems cannot fsync a folder; the data itself is synced
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def place(temporary: Path, destination: str | os.PathLike, overwrite: bool) -> None:
    """Move a complete temporary to `destination`: replacing it only with `overwrite`; otherwise a
    destination that exists, however recently it appeared, raises FileExistsError and is left as it is."""
    destination = Path(destination)
    if overwrite:
        os.replace(temporary, destination)
    else:
        _put_no_replace(temporary, destination)
    discard(temporary)


def appeared(destination: Path) -> FileExistsError:
    """The error of a write that found its destination taken when it came to put its file in place."""
    return FileExistsError(f"{destination} already exists (another writer may have made it while this one was "
                           "writing); it is left as it is: pass overwrite=True to replace it")


def _put_no_replace(temporary: Path, destination: Path) -> None:
    """`destination` becomes `temporary`'s file only if there is none: a hard link where the file system has
    them, else an exclusive rename, else an O_EXCL placeholder that claims the name. The temporary stays."""
    try:
        os.link(temporary, destination)
        return
    except FileExistsError:
        raise appeared(destination) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
            raise
    if _rename_no_replace(temporary, destination):
        return
    try:
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise appeared(destination) from None
    os.replace(temporary, destination)


def _rename_no_replace(source: Path, destination: Path) -> bool:
    """Rename unless the destination exists (FileExistsError then); False where the system cannot do that."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_current, no_replace = -100, 1  # AT_FDCWD, RENAME_NOREPLACE
        result = libc.renameat2(at_current, os.fsencode(source), at_current, os.fsencode(destination), no_replace)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        result = libc.renamex_np(os.fsencode(source), os.fsencode(destination), 0x4)  # RENAME_EXCL
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise appeared(destination)
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(destination))


def _stated(kind: type[OSError], code: int, message: str, destination: Path) -> OSError:
    """An OSError whose text is `message` alone (no "[Errno N]"), keeping its errno."""
    error = kind(message)
    error.errno = code  # set after: with strerror or filename, str() would add "[Errno N]" and the name again
    return error


def write_error(error: BaseException, destination: str | os.PathLike,
                temporary: Path | None = None) -> OSError | None:
    """The one-line error a failed write to `destination` stands for: a full disk (ENOSPC, EDQUOT; EFBIG, the
    file size limit, alike), a permission refused, a read-only file system; None for any other failure. An
    error of another library (pedalboard's "Unable to write data", torch's "failed writing file") is
    diagnosed by writing on to `temporary`, which then fails as the disk does."""
    destination = Path(destination)
    if not isinstance(error, OSError) and temporary is not None and _foreign(error):
        error = _probe(temporary) or error
    if not isinstance(error, OSError) or error.errno is None:
        return None
    if error.errno in FULL:
        return _stated(OSError, error.errno, f"no space left on device writing {destination}", destination)
    if error.errno == errno.EFBIG:
        return _stated(OSError, error.errno, f"no space left on device writing {destination}: the file size "
                                             "limit (ulimit -f) is reached", destination)
    if error.errno in DENIED:
        return _stated(PermissionError, error.errno, f"permission denied writing {destination}", destination)
    if error.errno == errno.EROFS:
        return _stated(OSError, error.errno, f"read-only file system writing {destination}", destination)
    return None


def _foreign(error: BaseException) -> bool:
    """An error that may hide a failed write: another library's (pedalboard and torch raise RuntimeError, safetensors
    its own), not a check of ours (ValueError, TypeError) nor an interrupt."""
    return isinstance(error, RuntimeError) or (isinstance(error, Exception) and type(error).__module__ != "builtins")


def _probe(temporary: Path) -> OSError | None:
    """The OSError that writing a few MB more to `temporary` meets, if any (a full disk, a size limit)."""
    try:
        with open(temporary, "ab", buffering=0) as file:
            block = bytes(1 << 16)
            for _ in range(_PROBE_BYTES // len(block)):
                file.write(block)
            os.fsync(file.fileno())
    except OSError as error:
        return error
    return None


def check_writable(destination: str | os.PathLike) -> None:
    """Create and remove a temporary beside `destination`, so that an unwritable folder is found before the
    long work, not after it (stale temporaries go as well)."""
    discard(create_temporary(destination))


@contextmanager
def replacing(*destinations: str | os.PathLike, overwrite: bool = False) -> Iterator[list[Path]]:
    """Temporary paths to write, one per destination (same folder and suffix); once the body is done they are
    fsynced and put in place together, with a new file's usual permissions. A destination that exists (or
    appears meanwhile) is replaced only with `overwrite`; otherwise FileExistsError, and none of them is
    written. On any failure the temporaries are removed, and a full disk or refused permission is named."""
    paths = [Path(each) for each in destinations]
    temporaries: list[Path] = []
    placed: list[tuple[Path, int]] = []  # destinations this write created, and their inode
    about = paths[0]  # what a failure is said to be writing
    try:
        for destination in paths:
            about = destination
            temporaries.append(create_temporary(destination))
        about = paths[0] if len(paths) == 1 else paths[0].parent  # which of several the body failed on is unknown
        yield temporaries
        umask = os.umask(0)
        os.umask(umask)
        for temporary, destination in zip(temporaries, paths, strict=True):
            about = destination
            os.chmod(temporary, 0o666 & ~umask)  # a writer that made its file anew may have made it private
            fsync_file(temporary)
        for temporary, destination in zip(temporaries, paths, strict=True):
            about = destination
            if overwrite:
                os.replace(temporary, destination)
            else:
                _put_no_replace(temporary, destination)
                placed.append((destination, os.stat(destination).st_ino))
        for folder in {destination.parent for destination in paths}:
            about = folder
            fsync_folder(folder)
    except BaseException as error:  # Ctrl-C and SIGTERM (`Terminated`) too: all or none
        for destination, inode in placed:  # take back what this write put in place, unless replaced since
            try:
                if os.stat(destination).st_ino == inode:
                    destination.unlink()
            except OSError:
                pass
        if not isinstance(error, Exception):
            raise
        stated = write_error(error, about, temporaries[-1] if temporaries else None)
        if stated is not None and str(stated) != str(error):
            raise stated from error
        raise
    finally:
        for temporary in temporaries:
            discard(temporary)
