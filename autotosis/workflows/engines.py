"""Where batch jobs run: a local process pool or Ray tasks, behind one small interface.

An engine only runs ``fn(arg)`` somewhere and hands back the result; it knows nothing
about videos.  ``run_jobs`` keeps at most ``engine.slots`` jobs in flight, so the batch
driver learns exactly when a job starts (it records that in its manifest) and a Ctrl-C
leaves no queue of submitted work behind.  Every worker process limits torch to
``threads`` intra-op threads once, so N workers never fight over the same cores.
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import importlib.metadata
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from autotosis.core.errors import Terminated, UsageError

A = TypeVar("A")
R = TypeVar("R")

ENGINES = ("local", "ray")

_threads_set: int | None = None  # per worker process: its inference threads (prepare_worker)
_in_job = False  # per local worker process: a job is running (SIGTERM then unwinds it)


def prepare_worker(threads: int, sigterm: bool = False) -> None:
    """This worker's inference threads: onnxruntime's (``worker_threads``) and torch's, where torch is loaded
    (``use_torch_threads``; a checkpoint normally runs in onnxruntime, and the worker never loads torch).

    With ``sigterm`` (the local pool's workers) SIGTERM raises ``Terminated`` in the running job,
    as it does in the CLI, so the job cleans up (its ffmpeg stopped, temp files removed) before the
    worker ends as SIGTERM would have ended it.  Ray's workers keep Ray's own SIGTERM handling.
    """
    global _threads_set
    if sigterm and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    _threads_set = threads
    use_torch_threads()


def use_torch_threads() -> None:
    """Limit torch's threads to the worker's count, if this worker has torch loaded (a model running in torch)."""
    if _threads_set is None or "torch" not in sys.modules:
        return
    import torch

    if torch.get_num_threads() != _threads_set:
        torch.set_num_threads(_threads_set)


def worker_threads() -> int | None:
    """The thread count ``prepare_worker`` gave this process (None outside a worker)."""
    return _threads_set


def _on_sigterm(signum, frame) -> None:
    if _in_job:
        raise Terminated()
    _end_by_sigterm()  # idle (waiting for work): nothing to clean up


def _end_by_sigterm() -> None:
    """End this worker as an unhandled SIGTERM does (the pool sees a worker that died, as before)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # not reached: the signal is delivered on the way out of kill()


def _local_job(fn: Callable[[A], R], arg: A) -> R:
    """Run one job in a local worker: SIGTERM during it unwinds it (``Terminated``), then ends the worker."""
    global _in_job
    try:
        _in_job = True
        try:
            return fn(arg)
        finally:
            _in_job = False
    except Terminated:
        _end_by_sigterm()
        raise  # not reached


class Engine(abc.ABC):
    """Runs picklable ``fn(arg)`` calls in worker processes."""

    name: str = ""
    slots: int = 1  # jobs kept in flight at once
    threads: int = 1  # torch threads per worker process

    @abc.abstractmethod
    def submit(self, fn: Callable[[A], R], arg: A) -> Hashable:
        """Start ``fn(arg)``; the handle goes to ``wait`` and ``result``."""

    @abc.abstractmethod
    def wait(self, handles: list[Hashable]) -> list[Hashable]:
        """Block until at least one of ``handles`` has finished; return the finished ones."""

    @abc.abstractmethod
    def result(self, handle: Hashable) -> Any:
        """The job's return value; raises what the job raised, or the engine's error if its worker died."""

    @abc.abstractmethod
    def close(self, cancel: bool = False) -> None:
        """Release workers; ``cancel`` stops running jobs instead of waiting for them."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)


def run_jobs(
    engine: Engine, fn: Callable[[A], R], args: Iterable[A], *, on_submit: Callable[[A], None] = lambda arg: None
) -> Iterator[tuple[A, R | Exception]]:
    """Yield ``(arg, result or exception)`` as jobs finish, at most ``engine.slots`` in flight."""
    pending = list(args)
    pending.reverse()  # pop() from the end keeps the given order
    in_flight: dict[Hashable, A] = {}
    while pending or in_flight:
        while pending and len(in_flight) < engine.slots:
            arg = pending.pop()
            on_submit(arg)
            in_flight[engine.submit(fn, arg)] = arg
        for handle in engine.wait(list(in_flight)):
            arg = in_flight.pop(handle)
            try:
                outcome: R | Exception = engine.result(handle)
            except Exception as exc:  # a job's failure is data for the caller, not the end of the batch
                outcome = exc
            yield arg, outcome


# --------------------------------------------------------------------------- local


class LocalEngine(Engine):
    """A ``concurrent.futures`` process pool on this machine.

    Workers come from a ``forkserver``: forking the parent itself, which already runs torch
    and progress threads, can deadlock, and ``spawn`` would import torch once per worker;
    the fork server imports it once (``preload``) and forks clean workers from that.  A pool
    whose worker died (OOM killer, kill -9) is replaced before the next job, so one crash
    costs only the jobs it was running.
    """

    name = "local"
    preload = ["autotosis.workflows.batch", "autotosis.model.predictor"]  # not torch: models run in onnxruntime

    def __init__(self, workers: int, threads: int):
        self.slots = workers
        self.threads = threads
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(self.preload)  # used when the fork server starts (once per process)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.slots,
                mp_context=context,
                initializer=prepare_worker,
                initargs=(self.threads, True),
            )
        return self._pool

    def submit(self, fn, arg):
        try:
            return self._executor().submit(_local_job, fn, arg)
        except concurrent.futures.process.BrokenProcessPool:  # a worker died while idle (killed): a new pool
            self._discard(cancel=True)
            return self._executor().submit(_local_job, fn, arg)

    def wait(self, handles):
        done, _ = concurrent.futures.wait(handles, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def result(self, handle):
        try:
            return handle.result()
        except concurrent.futures.process.BrokenProcessPool:
            self._discard(cancel=True)
            raise

    def _discard(self, cancel: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            _terminate_workers(pool)
        pool.shutdown(wait=True, cancel_futures=cancel)

    def close(self, cancel: bool = False) -> None:
        self._discard(cancel)


def _terminate_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop the pool's processes now (a running job's outputs are atomic, so nothing is half-written)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    for process in list(getattr(pool, "_processes", {}).values()):  # older Pythons: no public way
        with contextlib.suppress(Exception):
            process.terminate()


# --------------------------------------------------------------------------- ray


def ray_requirement() -> str:
    """The pinned Ray requirement of the ``batch-ray`` extra, e.g. ``ray==2.60.0``."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for requirement in importlib.metadata.requires("autotosis") or []:
            if requirement.startswith("ray") and "batch-ray" in requirement:
                return requirement.split(";")[0].strip()
    return "ray"


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(
            f"--engine ray needs Ray, which is not installed: pip install '{ray_requirement()}' "
            "(or the batch-ray extra: pip install -e '.[batch-ray]')"
        ) from None
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT (or ray://HOST:PORT) that does not answer: ray.init would retry for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" and other forms Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})",
            hint="check --address: the head node's GCS port (6379) or Ray Client port (10001)",
        ) from None


# A task whose worker process or node dies (kill -9, OOM killer, a lost machine) is run again on
# another worker up to this many times (Ray's default, stated here so it is a decision, not an
# accident).  Exceptions raised by ``fn`` are not retried: process_vod turns them into results.
RAY_TASK_RETRIES = 3


def _ray_job(fn, arg, threads):
    prepare_worker(threads)
    return fn(arg)


class RayEngine(Engine):
    """Ray tasks: on the cluster at ``address``, on an already started Ray, or on a local one.

    Each task asks Ray for ``threads`` CPUs, the same number torch uses inside it.  Inputs
    and outputs travel as paths: every node must see the same files (shared storage).  A task
    lost with its worker or node is retried elsewhere (``RAY_TASK_RETRIES``); the driver sees
    only its one result.
    """

    name = "ray"

    def __init__(self, workers: int | None, threads: int, address: str | None = None):
        ray = self._ray = import_ray()
        os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
        self.threads = threads
        self._started = False
        self._running: set = set()
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "log_to_driver": False,
                "logging_level": logging.WARNING,
                "configure_logging": False,
            }
            try:
                if address:
                    check_reachable(address)
                    ray.init(address=address, **options)
                else:
                    ray.init(num_cpus=(workers or 1) * threads, include_dashboard=False, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise UsageError(
                    f"cannot start or reach {where}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
                ) from None
            self._started = True
        largest = max((node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")), default=0)
        if largest < threads:
            self.close()
            raise UsageError(
                f"each Ray task asks for {threads} CPUs (--threads) but the largest Ray node has {largest:g}",
                hint="lower --threads",
            )
        self.slots = workers or max(1, int(ray.cluster_resources().get("CPU", threads)) // threads)
        self._remote = ray.remote(num_cpus=threads, max_retries=RAY_TASK_RETRIES, retry_exceptions=False)(_ray_job)

    def submit(self, fn, arg):
        ref = self._remote.remote(fn, arg, self.threads)
        self._running.add(ref)
        return ref

    def wait(self, handles):
        done, _ = self._ray.wait(handles, num_returns=1)
        return done

    def result(self, handle):
        self._running.discard(handle)
        return self._ray.get(handle)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._running:
                with contextlib.suppress(Exception):
                    self._ray.cancel(ref, force=True)
        self._running = set()
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_engine(name: str, *, workers: int | None, threads: int, address: str | None = None) -> Engine:
    if name == "local":
        if address:
            raise UsageError("--address is for --engine ray")
        return LocalEngine(workers or 1, threads)
    if name == "ray":
        return RayEngine(workers, threads, address)
    raise UsageError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")
