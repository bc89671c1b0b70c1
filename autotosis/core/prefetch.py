"""Run an iterator in a helper thread a few items ahead of its consumer.

Used where producing an item (decoding frames, preparing a training batch) and consuming it
(inference, a training step) can overlap on different cores.  One thread produces items in
order, so anything drawn from a random generator while producing stays reproducible.

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
from collections.abc import Iterator
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
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = stop if stop is not None else threading.Event()

    def pump() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            items.put((done, None))
        except BaseException as exc:  # re-raised in the consumer
            items.put((done, exc))

    thread = threading.Thread(target=pump, name="autotosis-prefetch", daemon=True)
    try:
        thread.start()
        while True:
            item, error = _next(items, stall_timeout)
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        # Drain so the pump can notice `stop` and finish (a stop-aware source ends within its
        # own poll interval).  Bounded: a producer stuck where `stop` cannot reach it is left
        # behind as a daemon thread rather than hanging the consumer.
        deadline = time.monotonic() + JOIN_S
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                items.get(timeout=POLL_S)
            except queue.Empty:
                pass
        if not thread.is_alive():
            close = getattr(iterator, "close", None)
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
