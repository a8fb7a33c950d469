"""Where the work of a collection run happens: in this process, in local worker processes, or in Ray actors.

Every engine runs the same `Job` the same way: `setup()` once per worker (models load once), then
`process(job, item)` per input, so the three give byte-identical outputs. Workers use one torch thread
each (they share the cores among themselves, not within one file). A worker that dies mid-file (killed,
out of memory) costs only that file: it is reported failed, a new worker takes its place, the run goes on.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from .inputs import WorkItem
from .journal import DONE, FAILED, fingerprint, sha256_of

Result = tuple[WorkItem, str, dict[str, Any]]  # item, DONE or FAILED, journal fields
Results = Generator[Result, None, None]  # closing it stops the workers


class Job(Protocol):
    """What a collection command does to one input. Picklable: only options travel to the workers."""

    suffix: str  # of the outputs
    input_suffixes: set[str]

    def options(self) -> dict[str, Any]:
        """Settings that decide the output bytes: a record made with others is redone."""

    def setup(self) -> None:
        """Load models; runs once in each worker before its first input."""

    def run(self, item: WorkItem) -> dict[str, Any]:
        """Make `item.output` whole or not at all; return what the journal records of it."""

    def is_whole(self, item: WorkItem, record: dict[str, Any]) -> bool:
        """Whether the output an earlier run recorded is still there and intact."""


def one_line(error: BaseException) -> str:
    """An error as the CLI states it: checked errors by their message, others by their type too."""
    reason = (str(error).strip().splitlines() or [""])[0]
    return reason if isinstance(error, (OSError, ValueError)) else f"unexpected {type(error).__name__}: {reason}"


def process(job: Job, item: WorkItem) -> tuple[str, dict[str, Any]]:
    """Run one input; any error becomes a failed record, so one bad file never stops a run. Records
    also say how long the job itself took and the worker's peak memory so far."""
    try:
        source = {"path": str(item.source), **fingerprint(item.source), "sha256": sha256_of(item.source)}
        item.output.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        fields = job.run(item)
        return DONE, {"source": source, **fields, "job_seconds": round(time.perf_counter() - started, 4),
                      "worker_peak_rss_mb": _peak_rss_mb()}
    except OSError as error:
        if error.errno == errno.ENOSPC:  # the output is removed as it fails; say what to do about it
            reason = f"no space left on the device for {item.output}: free some space and run again"
        else:
            reason = one_line(error)
        return FAILED, {"source": {"path": str(item.source)}, "error": reason}
    except Exception as error:
        return FAILED, {"source": {"path": str(item.source)}, "error": one_line(error)}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux from VmHWM: ru_maxrss carries the parent's memory at
    fork across exec, so every local worker would report at least its parent's."""
    try:
        with open("/proc/self/status") as status:
            return next(round(int(line.split()[1]) / 2**10, 1) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def run_serial(job: Job, items: Iterable[WorkItem], in_flight: set[WorkItem] | None = None) -> Results:
    """Runs items in this process, one after another; `in_flight` as for `run_local`."""
    in_flight = set() if in_flight is None else in_flight
    job.setup()
    for item in items:
        in_flight.add(item)
        result = process(job, item)
        in_flight.discard(item)
        yield (item, *result)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- local worker processes -------------------------------------------------------------------


def _set_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


# A worker is a fresh interpreter that runs only this: it never imports the caller's __main__, so a
# script may call run_collection at its top level, with no `if __name__ == "__main__":` guard.
_WORKER_COMMAND = ("import sys; from encodec_fx.collection.engines import worker_main; "
                   "worker_main(int(sys.argv[1]), int(sys.argv[2]))")


def worker_main(descriptor: int, parent: int) -> None:
    """A worker process: it takes the parent's import path, then the job, then items until told to stop
    (or until the parent is gone). Ctrl-C is the parent's to handle; SIGTERM unwinds, so an output in
    progress is removed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _unwind)
    _end_with(parent)
    try:
        _serve(Connection(descriptor))
    finally:  # once leaving, a SIGTERM (the parent's death) has nothing left to unwind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _unwind(*_: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one SystemExit: a second would land in the clean-up
    sys.exit(1)


def _serve(connection: Connection) -> None:
    try:
        sys.path[:] = connection.recv()  # so that the job's classes import as they do in the parent
        job, threads = connection.recv()
        _set_threads(threads)
        job.setup()
    except (EOFError, OSError):
        return
    except Exception as error:
        reason = one_line(error)
        if isinstance(error, AttributeError) and "__main__" in reason:
            reason += ": define the job's class in a module the workers can import, not in the script"
        connection.send(("setup", reason))
        return
    connection.send(("ready", None))
    while True:
        try:
            item = connection.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if item is None:
            return
        result = process(job, item)
        try:
            connection.send(result)
        except OSError:  # the parent is gone (where no signal told us): it will redo this item
            return


def _end_with(parent: int) -> None:
    """Linux: SIGTERM when the parent dies. A run killed outright (SIGKILL, the OOM killer) must not leave
    workers finishing outputs that its journal never records, which the next run would refuse to replace."""
    if sys.platform.startswith("linux"):
        import ctypes
        pr_set_pdeathsig = 1
        if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the request was made
        sys.exit(1)


class _Worker:
    """A worker process and the connection to it; its death shows as the end of that connection."""

    def __init__(self, job: Job, threads: int):
        self.connection, child = multiprocessing.Pipe()
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER_COMMAND, str(child.fileno()), str(os.getpid())],
                                        pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                                        start_new_session=True)  # Ctrl-C reaches the parent only
        child.close()
        try:
            self.connection.send(sys.path)
            self.connection.send((job, threads))
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            self.process.kill()
            self.process.wait()
            raise ValueError(f"the job cannot go to worker processes: {one_line(error)}") from None
        except OSError:  # it died before it read the job
            self.process.wait()
            raise ValueError(f"a worker process could not start (exit status {self.process.returncode})") from None
        self.item: WorkItem | None = None
        self.ready = False


def _death(process: subprocess.Popen) -> str:
    code = process.returncode
    if code is not None and code < 0:
        return f"the worker died on signal {signal.Signals(-code).name} while coding it"
    return f"the worker exited (status {code}) while coding it"


def run_local(job: Job, items: Iterable[WorkItem], workers: int, threads: int = 1,
              in_flight: set[WorkItem] | None = None) -> Results:
    """Runs items on `workers` worker processes, one item at a time each, yielding results as they come.
    `in_flight` holds the items handed to a worker and not yet back (what an interrupt abandons)."""
    in_flight = set() if in_flight is None else in_flight
    pending = list(items)
    pending.reverse()
    pool = [_Worker(job, threads) for _ in range(min(workers, len(pending)))]
    try:
        while pool:
            for worker in pool:
                if worker.ready and worker.item is None and pending:
                    worker.item = pending.pop()
                    in_flight.add(worker.item)
                    worker.connection.send(worker.item)
            busy = [w for w in pool if w.item is not None or not w.ready]
            if not busy:
                break
            for ready in wait([w.connection for w in busy]):  # the connections given, in the order they are ready
                worker = next(w for w in busy if w.connection is ready)
                try:
                    message = worker.connection.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:  # died: its file is lost, a fresh worker goes on
                    worker.process.wait()
                    pool.remove(worker)
                    if not worker.ready:
                        raise ValueError(f"a worker process could not start (exit status {worker.process.returncode})")
                    if worker.item is not None:
                        in_flight.discard(worker.item)
                        yield worker.item, FAILED, {"source": {"path": str(worker.item.source)},
                                                    "error": _death(worker.process)}
                    if pending:
                        pool.append(_Worker(job, threads))
                elif message[0] == "setup":  # the models did not load: no file would code
                    raise ValueError(message[1])
                elif message[0] == "ready":
                    worker.ready = True
                else:
                    item, worker.item = worker.item, None
                    in_flight.discard(item)
                    yield (item, *message)
    finally:
        for worker in pool:
            if worker.process.poll() is None:
                if worker.item is None and worker.ready:
                    try:
                        worker.connection.send(None)
                    except OSError:
                        worker.process.terminate()
                else:
                    worker.process.terminate()
        for worker in pool:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.connection.close()


# --- Ray --------------------------------------------------------------------------------------


class _RayWorker:
    def __init__(self, job: Job, threads: int):
        _set_threads(threads)
        job.setup()
        self.job = job

    def ready(self) -> bool:
        return True

    def process(self, item: WorkItem) -> tuple[str, dict[str, Any]]:
        return process(self.job, item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("engine='ray' needs Ray: pip install 'encodec-fx[ray]'") from None
    return ray


def check_ray(address: str | None) -> None:
    """Ray installed, and the cluster at `address` (if any, and if this process has not started Ray) answering."""
    ray = _import_ray()
    if address is not None and not ray.is_initialized():
        check_reachable(address)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an unreachable cluster address at once, before Ray retries it for minutes."""
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as error:
        raise ValueError(f"no Ray cluster answers at the `address` argument {address} ({one_line(error)}): "
                         "give the head node's HOST:PORT, or no address for a local cluster") from None


def run_ray(job: Job, items: Iterable[WorkItem], workers: int, address: str | None = None,
            gpus_per_worker: float = 0.0, threads: int = 1, in_flight: set[WorkItem] | None = None
            ) -> Results:
    """Runs items on `workers` Ray actors (each loads the models once), on the cluster at `address`, on
    one Ray already started in this process, or on a local one started for the run and stopped after.
    `in_flight` as for `run_local`."""
    in_flight = set() if in_flight is None else in_flight
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():  # `check_ray` has vetted the address
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 **({} if address else {"num_cpus": workers}))  # Ray's start-up notes are not the run's output
        started_here = True
    actor_class = ray.remote(num_cpus=threads, num_gpus=gpus_per_worker)(_RayWorker)
    pending = list(items)
    pending.reverse()
    actors: list[Any] = []
    running: dict[Any, tuple[Any, WorkItem]] = {}
    try:
        if gpus_per_worker:  # actors that no machine can place, or more than the GPUs hold, would wait for ever
            most = max((node["Resources"].get("GPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
            if gpus_per_worker > most:
                raise ValueError(f"no machine of the Ray cluster has the {gpus_per_worker:g} GPUs per worker asked "
                                 f"for (the most on one is {most:g})")
            workers = min(workers, int(ray.cluster_resources().get("GPU", 0) // gpus_per_worker))
        actors = [actor_class.remote(job, threads) for _ in range(min(workers, len(pending)))]
        try:
            ray.get([actor.ready.remote() for actor in actors])
        except ray.exceptions.RayActorError as error:  # the models did not load: no file would code
            cause = getattr(error, "cause", None) or error
            raise ValueError(f"a Ray worker could not start: {one_line(cause)}") from None
        while pending or running:
            for actor in actors:
                if pending and actor not in {a for a, _ in running.values()}:
                    item = pending.pop()
                    running[actor.process.remote(item)] = (actor, item)
                    in_flight.add(item)
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, item = running.pop(done)
            in_flight.discard(item)
            try:
                yield (item, *ray.get(done))
            except ray.exceptions.RayActorError as error:
                actors.remove(actor)
                actors.append(actor_class.remote(job, threads))
                yield item, FAILED, {"source": {"path": str(item.source)},
                                     "error": f"the Ray worker died while coding it ({one_line(error)})"}
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
