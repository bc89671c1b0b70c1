"""Run an iterator in a helper thread a few items ahead of its consumer.

Used where producing an item (decoding frames, preparing a training batch) and consuming it
(inference, a training step) can overlap on different cores.  One thread produces items in
order, so anything drawn from a random generator while producing stays reproducible.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Stalled(Exception):
    """The producer delivered nothing within the stall timeout."""


def prefetch(iterator: Iterator[T], depth: int = 4, on_abandon: Callable[[int], None] | None = None,
             stall_timeout: float | None = None) -> Iterator[T]:
    """Yield the items of ``iterator``, produced in a thread ``depth`` items ahead.

    An exception raised while producing is re-raised in the consumer.  When the consumer
    stops early (Ctrl-C, an error) while the producer is still busy, ``on_abandon`` gets
    the producer thread's ident (every 0.1 s until the producer has finished): a producer
    blocked on a slow source (a hung ffmpeg pipe) only notices the stop once that source is
    ended.  With ``stall_timeout``, waiting longer
    than that many seconds for the next item raises Stalled (and abandons the producer).
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

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
    thread.start()
    try:
        while True:
            try:
                item, error = items.get(timeout=stall_timeout)
            except queue.Empty:
                raise Stalled(f"no item for {stall_timeout:g} s") from None
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        # Drain so the pump can notice `stop` and finish.  on_abandon is repeated while it
        # runs: the source it is blocked on may have been started (and become stoppable)
        # only after the first call, e.g. when a signal arrived just as ffmpeg started.
        while thread.is_alive():
            if on_abandon is not None:
                on_abandon(thread.ident)
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
