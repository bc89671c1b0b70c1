#!/usr/bin/env python3
"""Render time follows the reel's length, not the VOD's (issue 4): a ratio measured in one run.

Cuts the same 10 events (4 s each, spread over the whole VOD, at the same offsets inside
the looped base clip so the pictures are alike) from a short and a long VOD built by
benchmarks/scan.py (720p30 by default), with `autotosis render` as a subprocess, twice
each in turn (short, long, short, long), and prints the long/short time ratio.  Seeking
before the input means each cut decodes a few seconds around its event wherever it
lies, so the ratio should be close to 1.

Usage: .venv/bin/python benchmarks/render.py [--short 10] [--long 60] [--vod 720p30]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scan import CLIP_S, OUT, looped_vod  # noqa: E402  (the VOD builder of benchmarks/scan.py)

from autotosis.media import probe  # noqa: E402

EVENTS = 10
EVENT_MS = 4000


def events_file(video: Path, out: Path) -> Path:
    from autotosis.detect.segments import Event, EventList, EventParams, write_events

    duration = probe.probe(video).duration_ms
    # Evenly over the VOD, each 12 s into one of the looped 30 s clips, so the pieces look alike.
    clip_ms = CLIP_S * 1000
    stride = max(clip_ms, (duration // EVENTS) // clip_ms * clip_ms)
    events = tuple(
        Event(k * stride + 12_000, k * stride + 12_000 + EVENT_MS, "rage", 0.9, 0.8, k * stride + 14_000)
        for k in range(EVENTS)
        if k * stride + 12_000 + EVENT_MS <= duration
    )
    if len(events) < EVENTS:
        raise SystemExit(f"{video} is too short for {EVENTS} events")
    write_events(EventList(video, duration, "rage", EventParams(), events), out, force=True)
    return out


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_seconds(video: Path, events: Path, reel: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of `autotosis render` and its ffmpeg children."""
    began, cpu = time.perf_counter(), _children_cpu_s()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autotosis",
            "-q",
            "--progress",
            "none",
            "render",
            str(video),
            str(events),
            "-o",
            str(reel),
            "--force",
        ],
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - began, _children_cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=10, help="minutes of the short VOD (default: 10)")
    parser.add_argument("--long", type=int, default=60, help="minutes of the long VOD (default: 60)")
    parser.add_argument(
        "--vod", default="720p30", choices=("720p30", "1080p60"), help="which test VOD (default: 720p30)"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    vods = {
        label: looped_vod(args.vod, minutes, OUT) for label, minutes in (("short", args.short), ("long", args.long))
    }
    events = {label: events_file(video, OUT / f"render_{label}.events.json") for label, video in vods.items()}
    times: dict[str, list[tuple[float, float]]] = {"short": [], "long": []}
    for _ in range(2):
        for label in ("short", "long"):
            times[label].append(render_seconds(vods[label], events[label], OUT / f"render_{label}.mp4"))
    print(f"render {EVENTS} events x {EVENT_MS / 1000:.0f} s from {args.vod} VODs (wall s / CPU s of render + ffmpeg):")
    mean = {}
    for label, minutes in (("short", args.short), ("long", args.long)):
        runs = times[label]
        mean[label] = tuple(sum(r[i] for r in runs) / len(runs) for i in (0, 1))
        print(
            f"  {minutes:>3}-min VOD: {mean[label][0]:6.1f} s wall, {mean[label][1]:6.1f} s CPU  "
            f"(runs: {', '.join(f'{w:.1f}/{c:.1f}' for w, c in runs)})"
        )
    print(
        f"  ratio long / short: wall {mean['long'][0] / mean['short'][0]:.2f}, "
        f"CPU {mean['long'][1] / mean['short'][1]:.2f}"
    )


if __name__ == "__main__":
    main()
