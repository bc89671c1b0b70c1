#!/usr/bin/env python3
"""Shorts render time (issue 11): every number is a ratio measured in this one run.

For a short and a long VOD of the same kind, renders N shorts of L seconds each (events
spread evenly over the VOD, as if it had been scanned already: no scan is timed) with
``autotosis.outputs.shorts.render_shorts`` (stacked layout, face cam from the sample clips,
1080x1920, confidence overlay on) and prints:

  render s / shorts s   wall time per second of shorts (lower is better; < 1 is faster than realtime)
  cpu s / shorts s      ffmpeg's CPU time (user + sys) per second of shorts: what the work costs,
                        whatever else the machine is doing at the time
  long / short VOD      the same work from the long VOD relative to the short one: ~1 means the
                        cost follows the shorts' length, not the VOD's (seek before input)

The VODs are the scan benchmark's (benchmarks/scan.py: sample stream clips with a face cam
scaled to 1080p60 or 720p30 with grain, 6 / 3 Mb/s, a keyframe every 2 s, made long by
stream-copy looping), built by its code in benchmarks/out/shorts/ (git-ignored).
The short VOD is rendered again after the long one; the mean of its two runs is used and
their spread printed, so the drift of a shared machine shows.

Usage: .venv/bin/python benchmarks/shorts.py [--count 10] [--length 30] [--short-vod 10] [--long-vod 60]
                                             [--vod 1080p60] [--out-fps FPS] [--layout stacked] [--size 1080x1920]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autotosis.core.region import RegionArg  # noqa: E402
from autotosis.demo.plan import DEFAULT_CAM  # noqa: E402
from autotosis.detect.segments import Event  # noqa: E402
from autotosis.media import probe  # noqa: E402
from autotosis.outputs.shorts import Layout, LengthRules, ShortsOptions, ShortSource, render_shorts  # noqa: E402
from benchmarks.scan import OUT, VODS, looped_vod  # noqa: E402


def spread_events(count: int, length_ms: int, duration_ms: int) -> tuple[Event, ...]:
    """``count`` events of ``length_ms``, centred in equal slices of the VOD (peak in the middle)."""
    slice_ms = duration_ms // count
    if slice_ms < length_ms:
        raise SystemExit(f"{count} shorts of {length_ms / 1000:g} s do not fit a {duration_ms / 1000:g} s VOD")
    events = []
    for i in range(count):
        start = i * slice_ms + (slice_ms - length_ms) // 2
        events.append(Event(start, start + length_ms, "rage", round(0.99 - i * 0.01, 2), 0.8, start + length_ms // 2))
    return tuple(events)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_seconds(
    video: Path, options: ShortsOptions, count: int, length_ms: int, folder: Path
) -> tuple[float, float, int]:
    """Wall seconds, ffmpeg CPU seconds and total shorts milliseconds of one render_shorts run."""
    info = probe.probe(video)
    source = ShortSource(video, spread_events(count, length_ms, info.duration_ms))
    shutil.rmtree(folder, ignore_errors=True)
    cpu, began = _children_cpu_s(), time.perf_counter()
    result = render_shorts([source], folder, options)
    elapsed, cpu = time.perf_counter() - began, _children_cpu_s() - cpu
    total_ms = sum(s.window.duration_ms for s in result.shorts)
    shutil.rmtree(folder, ignore_errors=True)
    return elapsed, cpu, total_ms


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                platform.processor(),
            )
    except OSError:
        return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10, help="shorts per VOD (default: 10)")
    parser.add_argument("--length", type=float, default=30.0, help="seconds per short (default: 30)")
    parser.add_argument("--short-vod", type=int, default=10, help="minutes of the short VOD (default: 10)")
    parser.add_argument("--long-vod", type=int, default=60, help="minutes of the long VOD (default: 60)")
    parser.add_argument("--vod", choices=sorted(VODS), default="1080p60", help="kind of VOD (default: 1080p60)")
    parser.add_argument("--out-fps", type=Fraction, help="output frame rate (default: the VOD's, at most 60)")
    parser.add_argument("--layout", choices=[layout.value for layout in Layout], default="stacked")
    parser.add_argument("--size", default="1080x1920", help="output size (default: 1080x1920)")
    args = parser.parse_args()

    folder = OUT / "shorts"  # a folder of our own: the scan benchmark may rebuild its files meanwhile
    folder.mkdir(parents=True, exist_ok=True)
    print(f"building VODs in {folder} (once) ...", flush=True)
    short_vod, long_vod = looped_vod(args.vod, args.short_vod, folder), looped_vod(args.vod, args.long_vod, folder)
    width, height = (int(v) for v in args.size.split("x"))
    length_ms = int(round(args.length * 1000))
    # The events are exactly --length long: nothing to widen, trim or merge.
    options = ShortsOptions(
        layout=Layout(args.layout),
        size=(width, height),
        cam=RegionArg(DEFAULT_CAM),
        lengths=LengthRules(min_ms=0, max_ms=max(length_ms, 1000)),
        fps=args.out_fps,
    )
    work = folder / "rendered"
    print(
        f"{args.count} shorts of {args.length:g} s, {args.layout} {width}x{height}, from {args.vod} VODs; "
        f"CPU: {cpu_name()}, {os.cpu_count()} cores",
        flush=True,
    )
    first, first_cpu, total_ms = render_seconds(short_vod, options, args.count, length_ms, work)
    long_s, long_cpu, long_total_ms = render_seconds(long_vod, options, args.count, length_ms, work)
    again, again_cpu, _ = render_seconds(short_vod, options, args.count, length_ms, work)
    short_s, short_cpu = (first + again) / 2, (first_cpu + again_cpu) / 2
    shorts_s = total_ms / 1000
    assert long_total_ms == total_ms
    print(
        f"{'VOD':>12} {'render s':>9} {'cpu s':>8} {'shorts s':>9} {'render s / shorts s':>20} {'cpu s / shorts s':>17}"
    )
    print(
        f"{f'{args.short_vod} min':>12} {short_s:9.1f} {short_cpu:8.1f} {shorts_s:9.1f} {short_s / shorts_s:20.3f} "
        f"{short_cpu / shorts_s:17.3f}   "
        f"(two runs: {first:.1f} s / {first_cpu:.1f} cpu s and {again:.1f} s / {again_cpu:.1f} cpu s)"
    )
    print(
        f"{f'{args.long_vod} min':>12} {long_s:9.1f} {long_cpu:8.1f} {shorts_s:9.1f} {long_s / shorts_s:20.3f} "
        f"{long_cpu / shorts_s:17.3f}"
    )
    print(
        f"long / short VOD: wall {long_s / short_s:.3f}, cpu {long_cpu / short_cpu:.3f}  "
        f"(VOD length ratio {args.long_vod / args.short_vod:.1f})"
    )


if __name__ == "__main__":
    main()
