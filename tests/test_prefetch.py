"""prefetch: items in order from a helper thread, errors handed over, stalls and early stops handled."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from autotosis.core.prefetch import Stalled, prefetch, prefetch_each


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


def test_several_sources_run_side_by_side_and_their_items_arrive_in_source_order():
    """prefetch_each (a coarse scan's refined stretches, one ffmpeg each): the second source is
    already producing while the first is consumed, and the consumer still sees source 0's items,
    then source 1's, and so on."""
    started = [threading.Event() for _ in range(4)]

    def source(k):
        def produce():
            started[k].set()
            if k == 0:
                # The first source finishes only once the second has started: it would wait
                # here for ever if sources were produced one after the other.
                assert started[1].wait(10)
            for i in range(5):
                yield (k, i)

        return produce

    items = list(prefetch_each([source(k) for k in range(4)], width=2, depth=2))
    assert items == [(k, i) for k in range(4) for i in range(5)]


def test_no_more_than_width_sources_run_at_once():
    running, most = [0], [0]
    lock = threading.Lock()

    def source(k):
        def produce():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                for _ in range(3):
                    time.sleep(0.01)
                    yield k
            finally:
                with lock:
                    running[0] -= 1

        return produce

    assert list(prefetch_each([source(k) for k in range(8)], width=3, depth=1)) == [
        k for k in range(8) for _ in range(3)
    ]
    assert most[0] <= 3


def test_an_error_in_a_later_source_arrives_after_the_items_before_it_and_stops_the_rest():
    closed = threading.Event()

    def good():
        yield "a"
        yield "b"

    def broken():
        yield "c"
        raise ValueError("broken stretch")

    def endless():
        try:
            for i in range(10**9):
                yield i
        finally:
            closed.set()

    seen = []
    with pytest.raises(ValueError, match="broken stretch"):
        for item in prefetch_each([good, broken, endless], width=3, depth=2):
            seen.append(item)
    assert seen == ["a", "b", "c"]
    assert closed.wait(5)  # the source still running was stopped and closed
