"""prefetch: items in order from a helper thread, errors handed over, stalls and early stops handled."""

from __future__ import annotations

import threading
import time

import pytest

from autotosis.prefetch import Stalled, prefetch


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
    release = threading.Event()
    abandoned = []

    def produce():
        yield "first"
        release.wait(30)  # a read that hangs, until on_abandon ends it
        yield "too late"

    def on_abandon(ident):
        abandoned.append(ident)
        release.set()

    items = prefetch(produce(), on_abandon=on_abandon, stall_timeout=0.3)
    assert next(items) == "first"
    began = time.monotonic()
    with pytest.raises(Stalled):
        next(items)
    assert time.monotonic() - began < 10
    assert abandoned and set(abandoned) == {abandoned[0]} != threading.get_ident()


def test_a_source_that_becomes_stoppable_late_is_still_stopped():
    """on_abandon keeps being called while the producer runs: a decoder registered only after
    the consumer gave up (a signal just as ffmpeg started) is ended too."""
    release = threading.Event()
    calls = []

    def produce():
        yield "first"
        release.wait(30)  # blocked on something the first on_abandon call cannot reach yet
        yield "late"

    def on_abandon(ident):
        calls.append(ident)
        if len(calls) >= 3:
            release.set()

    items = prefetch(produce(), on_abandon=on_abandon)
    assert next(items) == "first"
    began = time.monotonic()
    items.close()
    assert time.monotonic() - began < 10 and len(calls) >= 3


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
