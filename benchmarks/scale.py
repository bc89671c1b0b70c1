#!/usr/bin/env python3
"""Training at the original project's scale: about 600 clips and 50,000 frames, end to end (issue 15 item 3).

The original project trained on about 600 labelled clips (~50,000 frames at 4 fps) for days; the budget here is
a first usable model within an hour on 2 cores.  This builds a set of that size from the hard quality benchmark's
footage (``benchmarks/quality.py``; its sample sets are generated once and re-used): the held-out VODs of seeds
0 .. VODS-1 cut into ~16-s clips at their keyframes (``ffmpeg -c copy -f segment``) plus every training clip of
seeds 0 .. POOL_SEEDS-1 (a pool of POOL clips each), labelled exactly from the generator's truth.  The held-out
VOD of seed UNSEEN (a streamer and room in none of those clips) is the check.  Then the plain defaults, through
the CLI of this venv:

    autotosis train rage.txt -o big.pt
    autotosis scan UNSEEN_VOD --model big.pt -o heldout.scores.json
    autotosis events heldout.scores.json -o heldout.events.json

It prints the set's size, the training wall time against the one-hour budget and against the estimate ``train``
printed up front, and event/frame P/R/F1 on the unseen VOD measured as ``quality.py`` measures them.  Results:
benchmarks/out/quality/scale-TAG/result.json (the train log beside it).

Usage: ATEN_CPU_CAPABILITY=default .venv/bin/python benchmarks/scale.py [--vods 8] [--pool-seeds 9] [--pool 16]
(the first run generates the nine seeds' sets, about 10 minutes each per core; the training about an hour on 2 cores
training 38-40 images per second without AVX2, two hours on one half as fast: BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import quality  # noqa: E402

BUDGET_S = 3600.0
PART_S = 16
MIN_SPAN_MS = 500  # a highlight cut to less than this at a part's edge is too short to label


def cut_vod(vod, folder: Path) -> list:
    """The VOD cut at keyframes into parts of about PART_S seconds, each with the truth's spans inside it."""
    from autotosis.media import tools

    listing = folder / "parts.csv"
    if not listing.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "parts.csv.partial"
        tools.run_ffmpeg(
            [
                "-y",
                "-i",
                f"file:{vod.path}",
                "-map",
                "0",
                "-c",
                "copy",
                "-f",
                "segment",
                "-segment_time",
                str(PART_S),
                "-reset_timestamps",
                "1",
                "-segment_list",
                f"file:{partial}",
                "-segment_list_type",
                "csv",
                f"file:{folder / 'part%03d.mp4'}",
            ],
            what=f"cutting {vod.path}",
        )
        partial.rename(listing)
    parts = []
    with open(listing, newline="", encoding="utf-8") as rows:
        for name, start_s, end_s in csv.reader(rows):
            start, end = round(float(start_s) * 1000), round(float(end_s) * 1000)
            spans = tuple(
                (max(s, start) - start, min(e, end) - start)
                for s, e in vod.highlights
                if min(e, end) - max(s, start) >= MIN_SPAN_MS
            )
            parts.append(
                dataclasses.replace(vod, path=folder / name, duration_ms=end - start, highlights=spans, lookalikes=())
            )
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vods", type=int, default=8, help="held-out VODs of seeds 0..N-1 cut into clips (default: 8)")
    parser.add_argument(
        "--pool-seeds", type=int, default=9, help="training clips of seeds 0..N-1, all of them (default: 9)"
    )
    parser.add_argument("--pool", type=int, default=16, help="training clips per seed (default: 16)")
    parser.add_argument(
        "--unseen", type=int, default=None, help="the seed whose VOD is the check (default: --vods, the first not cut)"
    )
    parser.add_argument("--tag", default="defaults", help="name of this run (default: defaults)")
    parser.add_argument("--train-args", default="", help="extra flags for `autotosis train` (default: none)")
    parser.add_argument("--out", type=Path, default=quality.OUT, help="work folder shared with quality.py")
    args = parser.parse_args()
    args.out = args.out.absolute()
    # A seed's VOD shows a streamer and room its own training clips do not, so only the cut VODs are excluded.
    unseen = args.unseen if args.unseen is not None else args.vods
    if unseen < args.vods:
        raise SystemExit(f"seed {unseen}'s VOD is cut into the training clips; pick --unseen {args.vods} or more")
    # quality.sample_set reads these: the benchmark's own VOD length and highlight count.
    args.heldout_s, args.heldout_events = 900.0, 15

    import torch

    from autotosis.core.fsutil import write_text_atomic
    from autotosis.demo.demo import rough_labels_text
    from autotosis.demo.plan import DEFAULT_CAM
    from autotosis.training.dataset import FrameOptions

    env = dict(os.environ)
    code = quality.cli_identity(env, args.out)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"capability {torch.backends.cpu.get_cpu_capability()}; package {code['package']} (git {code['git']})"
    )
    run_dir = args.out / f"scale-{args.tag}"
    run_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for seed in range(max(args.vods, args.pool_seeds)):
        samples = quality.sample_set(seed, args.pool, args)
        if seed < args.pool_seeds:
            clips.extend(samples.train[: args.pool])
        if seed < args.vods:
            clips.extend(cut_vod(samples.heldout, args.out / "scale-parts" / f"seed{seed}"))
    check = quality.sample_set(unseen, args.pool, args)

    labels = run_dir / f"{quality.TASK}.txt"
    text = rough_labels_text(
        clips,
        0,  # exact edges: the generator's truth
        np.random.default_rng(0),
        run_dir,
        DEFAULT_CAM,
        title="the original project's scale (benchmarks/scale.py); exact labels",
    )
    write_text_atomic(labels, text, force=True)
    seconds = sum(c.duration_ms for c in clips) / 1000
    with_highlight = sum(1 for c in clips if c.highlights)
    fps = FrameOptions().fps  # train's default frame rate
    print(
        f"{len(clips)} clips ({with_highlight} with a highlight), {seconds:.0f} s of video, "
        f"{seconds * fps:.0f} frames at {fps:g} fps; unseen check: seed {unseen}'s VOD ({check.heldout.path})",
        flush=True,
    )

    model, scores, events, log = (
        run_dir / "big.pt",
        run_dir / "heldout.scores.json",
        run_dir / "heldout.events.json",
        run_dir / "log.txt",
    )
    log.write_text("")
    train_s = quality.run_cli(
        ["train", str(labels), "-o", str(model), "--force", *shlex.split(args.train_args)], log, env, run_dir
    )
    plan = re.search(r"(\d+) images,\s+about\s+(\d+)\s+min", log.read_text(encoding="utf-8"))
    scan_s = quality.run_cli(
        ["scan", str(check.heldout.path), "--model", str(model), "-o", str(scores), "--force"], log, env, run_dir
    )
    quality.run_cli(["events", str(scores), "-o", str(events), "--force"], log, env, run_dir)
    measured = quality.measure(check, scores, events)
    result = {
        "clips": len(clips),
        "clips_with_highlight": with_highlight,
        "video_s": seconds,
        "train_s": train_s,
        "scan_s": scan_s,
        "planned_images": int(plan.group(1)) if plan else None,
        "estimated_min": int(plan.group(2)) if plan else None,
        "unseen_seed": unseen,
        "code": code,
        **measured,
    }
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))

    e, f = measured["event"], measured["frame"]
    estimate = ""
    if plan and int(plan.group(2)):
        ratio = train_s / 60 / int(plan.group(2))
        estimate = f"; estimated {plan.group(2)} min up front (measured / estimated {ratio:.2f})"
    print(f"train: {train_s / 60:.1f} min = {train_s / BUDGET_S:.2f} of the one-hour budget{estimate}")
    print(f"scan of the unseen {check.heldout.duration_ms / 60000:.0f}-min VOD: {scan_s:.0f} s, then events")
    print(
        f"unseen VOD: event P/R/F1 {e['precision']:.2f} / {e['recall']:.2f} / {e['f1']:.2f} "
        f"({measured['events_found']} found, {measured['events_true']} true; false on "
        f"{measured['false_events_on'] or '-'}), frame F1 {f['f1']:.2f}, threshold {measured['threshold']:.2f}"
    )
    print(f"log: {log}\nresult: {run_dir / 'result.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
