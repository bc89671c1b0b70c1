"""Run iterators in helper threads a few items ahead of their consumer.

Used where producing an item (decoding frames, preparing a training batch) and consuming it
(inference, a training step) can overlap on different cores, and where several sources can
be produced side by side (the refined stretches of a coarse scan, one ffmpeg each).  Each
source is produced by one thread in order, so anything drawn from a random generator while
producing stays reproducible.

Stopping is cooperative and never waits on luck:

* the consumer waits for items in slices of ``POLL_S``, so a Ctrl-C or SIGTERM is acted on
  within that time even when the kernel delivered the signal to the producer thread (Python
  runs handlers only in the main thread, and a main thread blocked in one long lock wait in C
  is not woken by a signal another thread took: the cause of issue 16's hang);
* when the consumer leaves (Ctrl-C, an error, a stall, ``break``), it sets ``stop``.  A
  producer that may block on a slow source (``media.iter_frames(stop=...)``) checks that
  event between short waits and ends by itself; nobody kills anything from another thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.1  # longest single wait in the consumer
JOIN_S = 10.0  # how long a leaving consumer waits for the producer to notice ``stop``


class Stalled(Exception):
    """The producer delivered nothing within the stall timeout."""


def prefetch(
    iterator: Iterator[T], depth: int = 4, *, stop: threading.Event | None = None, stall_timeout: float | None = None
) -> Iterator[T]:
    """Yield the items of ``iterator``, produced in a thread ``depth`` items ahead.

    An exception raised while producing is re-raised in the consumer.  ``stop`` is set when
    the consumer stops early (or at the end); give the same event to the producer's source
    (e.g. ``media.iter_frames(..., stop=stop)``) so a read blocked on a slow source ends
    too.  With ``stall_timeout``, waiting longer than that many seconds for the next item
    raises Stalled (and stops the producer).
    """
    return prefetch_each([lambda: iterator], width=1, depth=depth, stop=stop, stall_timeout=stall_timeout)


def prefetch_each(
    sources: Sequence[Callable[[], Iterator[T]]],
    width: int = 2,
    depth: int = 4,
    *,
    stop: threading.Event | None = None,
    stall_timeout: float | None = None,
) -> Iterator[T]:
    """Yield the items of every source in turn, with up to ``width`` sources producing at once.

    Each source (a callable making an iterator, called in its own thread) runs ``depth`` items
    ahead of the consumer; while the consumer takes the items of one, the next ``width - 1``
    are already under way (e.g. the next ffmpeg process has started, seeked and filled its
    decoder while the current one is read), so the items still arrive in order.  Errors,
    ``stop`` and ``stall_timeout`` as in ``prefetch``; a source that fails is re-raised when the
    consumer reaches its items.
    """
    stop = stop if stop is not None else threading.Event()
    pending = iter(sources)
    running: deque[_Producer] = deque()
    try:
        while True:
            while len(running) < max(1, width):
                source = next(pending, None)
                if source is None:
                    break
                running.append(_Producer(source, depth, stop))
            if not running:
                return
            producer = running[0]
            while True:
                item, error = _next(producer.items, stall_timeout)
                if item is _DONE:
                    if error is not None:
                        raise error
                    break
                yield item
            running.popleft()
            producer.close()
    finally:
        stop.set()
        # Drain so each producer can notice `stop` and finish (a stop-aware source ends within
        # its own poll interval).  Bounded: a producer stuck where `stop` cannot reach it is left
        # behind as a daemon thread rather than hanging the consumer.
        deadline = time.monotonic() + JOIN_S
        for producer in running:
            producer.drain(deadline)
            producer.close()


_DONE = object()


class _Producer:
    """One source's items, made in a thread of its own into a bounded queue."""

    def __init__(self, source: Callable[[], Iterator[T]], depth: int, stop: threading.Event) -> None:
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self._iterator: Iterator[T] | None = None
        self._stop = stop
        self._source = source
        self._thread = threading.Thread(target=self._pump, name="autotosis-prefetch", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            self._iterator = self._source()
            for item in self._iterator:
                while not self._stop.is_set():
                    try:
                        self.items.put((item, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    break
            self.items.put((_DONE, None))
        except BaseException as exc:  # re-raised in the consumer
            self.items.put((_DONE, exc))

    def drain(self, deadline: float) -> None:
        """Take items until the thread has ended (it has seen ``stop``) or ``deadline`` has passed."""
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self.items.get(timeout=POLL_S)
            except queue.Empty:
                pass

    def close(self) -> None:
        """Close the source's iterator (a generator's cleanup: its ffmpeg process) once its thread has ended."""
        if not self._thread.is_alive():
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()


def _next(items: queue.Queue, stall_timeout: float | None):
    """The next (item, error) pair, waiting in slices of POLL_S; Stalled after ``stall_timeout``."""
    deadline = None if stall_timeout is None else time.monotonic() + stall_timeout
    while True:
        wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
        try:
            return items.get(timeout=wait)
        except queue.Empty:
            if deadline is not None and time.monotonic() >= deadline:
                raise Stalled(f"no item for {stall_timeout:g} s") from None
