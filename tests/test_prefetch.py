"""prefetch: items in order from a helper thread, errors handed over, stalls and early stops handled."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from autotosis.core.prefetch import Stalled, prefetch


def test_items_arrive_in_order_and_are_produced_in_another_thread():
    producers = set()

    def produce():
        for i in range(50):
            producers.add(threading.get_ident())
            yield i

    assert list(prefetch(produce(), depth=3)) == list(range(50))
    assert producers and threading.get_ident() not in producers


def test_an_error_while_producing_reaches_the_consumer_after_the_items_before_it():
    def produce():
        yield 1
        yield 2
        raise ValueError("broken source")

    seen = []
    with pytest.raises(ValueError, match="broken source"):
        for item in prefetch(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_producer_that_delivers_nothing_in_time_is_abandoned():
    stop = threading.Event()
    producer = []

    def produce():
        producer.append(threading.current_thread())
        yield "first"
        stop.wait(30)  # a read that hangs, until the consumer's stop reaches it
        yield "too late"

    items = prefetch(produce(), stop=stop, stall_timeout=0.3)
    assert next(items) == "first"
    began = time.monotonic()
    with pytest.raises(Stalled):
        next(items)
    assert time.monotonic() - began < 10
    assert stop.is_set()
    producer[0].join(5)
    assert not producer[0].is_alive()


def test_ctrl_c_taken_by_the_producer_thread_still_stops_the_consumer_at_once(sigint_not_ignored):
    """Issue 16: the kernel may hand a process's SIGINT to any thread; Python then only sets a
    flag, and runs the handler when the *main* thread next runs bytecode.  A consumer blocked
    in one long queue wait (600 s, the stall timeout) never did: the CLI ignored Ctrl-C.
    pthread_kill delivers the signal to the producer thread, as the kernel sometimes does."""
    stop = threading.Event()
    producer = []

    def produce():
        producer.append(threading.get_ident())
        yield "first"
        stop.wait(60)  # a real-time source: the next item is minutes away
        yield "late"

    items = prefetch(produce(), stop=stop, stall_timeout=600)
    assert next(items) == "first"
    timer = threading.Timer(0.3, signal.pthread_kill, (producer[0], signal.SIGINT))
    timer.start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        next(items)
    timer.join()
    assert time.monotonic() - began < 3
    assert stop.is_set()  # the producer was told to stop, and stopped
    assert not any(t.ident == producer[0] and t.is_alive() for t in threading.enumerate())


def test_a_producer_that_ignores_stop_does_not_hang_the_consumer(monkeypatch):
    from autotosis.core import prefetch as module

    monkeypatch.setattr(module, "JOIN_S", 0.5)
    release = threading.Event()

    def produce():
        yield "first"
        release.wait(30)  # deaf to stop
        yield "late"

    items = prefetch(produce())
    assert next(items) == "first"
    began = time.monotonic()
    items.close()
    assert time.monotonic() - began < 5
    release.set()


def test_a_consumer_that_stops_early_ends_the_producer_and_closes_the_source():
    closed = threading.Event()

    def produce():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed.set()

    for item in prefetch(produce(), depth=2):
        if item == 5:
            break
    assert closed.wait(5)
