"""autotosis.core.timefmt: the one home for time text.

The terminal, the report, exports and file names call it directly.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotosis.core import timefmt
from autotosis.labels.parse import parse_time

TEN_DAYS_MS = 10 * 24 * 3_600_000
times = st.integers(min_value=0, max_value=TEN_DAYS_MS)

# Every clock-like text: (name, formatter, what parsing its text back must give).
READABLE = [
    ("clock_tenths", timefmt.clock_tenths, lambda ms: ms // 100 * 100),
    ("clock_seconds", timefmt.clock_seconds, lambda ms: ms // 1000 * 1000),
    ("clock_seconds always", lambda ms: timefmt.clock_seconds(ms, hours="always"), lambda ms: ms // 1000 * 1000),
    ("label_time", timefmt.label_time, lambda ms: ms),
    ("srt", lambda ms: timefmt.srt_time(ms).replace(",", "."), lambda ms: ms),
]


def fields_below_60(text: str) -> bool:
    """Minutes and seconds in ``m:ss``, ``h:mm:ss[.f]``, ``0h12m03.450s`` or ``00:01:02,345`` are below 60."""
    numbers = [int(n) for n in re.split(r"[^0-9]+", re.sub(r"[.,][0-9]+s?$", "", text)) if n]
    assert len(numbers) in (2, 3), text
    return all(n < 60 for n in numbers[-2:])


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (59_960, "0:59.9"),
        (119_970, "1:59.9"),
        (12_960, "0:12.9"),
        (0, "0:00.0"),
        (3_599_999, "59:59.9"),
        (3_600_000, "1:00:00.0"),
        (3_725_432, "1:02:05.4"),
    ],
)
def test_tenths_examples_truncate_in_terminal_and_report(ms, text):
    assert timefmt.clock_tenths(ms) == text  # the terminal used to print 0:60.0, 1:60.0 and 0:13.0


def test_other_forms_keep_their_formats():
    assert timefmt.clock(65_432) == "1:05"
    assert timefmt.clock(65_432, decimals=2) == "1:05.43"
    assert timefmt.clock(65_400, decimals=3, trim=True) == "1:05.4"
    assert timefmt.clock(65_000, decimals=3, trim=True) == "1:05"
    assert timefmt.clock(5_000, hours="always") == "0:00:05"
    assert timefmt.clock_seconds(65_999, hours="always") == "0:01:05"  # export clip names
    assert timefmt.clock_seconds(65_999) == "1:05"  # YouTube chapters, report axis
    assert timefmt.srt_time(3_725_432) == "01:02:05,432"
    assert timefmt.name_time(723_450) == "0h12m03.450s"
    assert timefmt.name_time(725_999, millis=False) == "0h12m05s"  # short names
    assert timefmt.label_time(5_200) == "0:05.2" and timefmt.label_time(3_723_500) == "1:02:03.5"


def test_negative_times():
    with pytest.raises(ValueError, match="negative time"):
        timefmt.label_time(-1)
    with pytest.raises(ValueError, match="negative time"):
        timefmt.clock(-1)
    assert timefmt.clock_tenths(-5) == "0:00.0" and timefmt.clock_seconds(-5) == "0:00"
    assert timefmt.srt_time(-5) == "00:00:00,000" and timefmt.name_time(-5) == "0h00m00.000s"


def test_bad_arguments():
    with pytest.raises(ValueError, match="decimals"):
        timefmt.clock(1, decimals=4)
    with pytest.raises(ValueError, match="hours"):
        timefmt.clock(1, hours="never")  # type: ignore[arg-type]


@given(times)
def test_split_is_exact_and_bounded(ms):
    h, m, s, millis = timefmt.split(ms)
    assert 0 <= m < 60 and 0 <= s < 60 and 0 <= millis < 1000
    assert ((h * 60 + m) * 60 + s) * 1000 + millis == ms


@given(times)
def test_no_field_reaches_60(ms):
    texts = [f(ms) for _, f, _ in READABLE]
    texts += [timefmt.name_time(ms), timefmt.name_time(ms, millis=False), timefmt.srt_time(ms)]
    for text in texts:
        assert fields_below_60(text), text


@given(times)
def test_parsing_back_gives_the_truncated_time(ms):
    for name, formatter, expected in READABLE:
        assert parse_time(formatter(ms)) == expected(ms), name


def test_terminal_and_report_agree():
    from autotosis.cli import detect, outputs
    from autotosis.outputs import report

    assert detect.clock_tenths is outputs.clock_tenths is report.clock_tenths is timefmt.clock_tenths


@given(times, times)
def test_monotonic(a, b):
    lo, hi = min(a, b), max(a, b)
    for name, formatter, _ in READABLE:
        assert parse_time(formatter(lo)) <= parse_time(formatter(hi)), name
