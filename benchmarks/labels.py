#!/usr/bin/env python3
"""How many labelled clips are needed, and what a random-frame validation split hides (issue 5).

Everything runs on the demo's generated data (autotosis.demo.samples), whose truth is exact:

1. The label curve: one pool of rough-labelled training clips (span edges off by up to 1 s,
   as `autotosis demo` writes them); models are trained from scratch on nested subsets of
   it (the first 6, 12, 24, 36 clips of a seeded order) and each is scored on a held-out
   VOD it never saw (another streamer, room and map): frame F1 at 2 samples/s and event F1
   (events as the demo finds them, matched to the truth at IoU >= 0.3).  Every run trains for
   at least --epochs epochs and at least --min-images images, so a small label set is not
   also starved of training steps: the curve measures labels, not compute.

2. The leak made visible: for the --leak-clips sizes, training once with the normal
   clip-grouped validation split and once with a random-frame split (each clip's frames dealt
   3:1 between training and validation, the mistake this tool never makes).  Both report a validation F1;
   the held-out VOD says which report was honest.  The share of validation frames with a
   near-duplicate among the training frames (8x8 average hash within 2 bits, train.check_leaks)
   shows why the random split flatters.

Repeats (--repeats) draw another clip order and training seed; the table shows each run and
the mean.  Output: a table, and benchmarks/out/labels/results.json.

Usage: .venv/bin/python benchmarks/labels.py [--clips 6,9,12,24,36] [--leak-clips 6,12] [--repeats 1]
(a first run takes about half an hour per repeat on 2 cores; finished runs are kept in
benchmarks/out/labels/runs/ and re-used)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "labels"


def frame_split(frameset, val_fraction: float, seed: int):
    """A random-frame split: every clip on both sides, its frames dealt at random (the leak)."""
    from autotosis.training.dataset import IGNORE

    rng = np.random.default_rng(seed)
    train_clips, val_clips = [], []
    for clip in frameset.clips:
        usable = clip.targets != IGNORE
        if not usable.any():
            continue
        to_val = usable & (rng.random(len(clip.targets)) < val_fraction)
        train_clips.append(replace(clip, targets=np.where(to_val, IGNORE, clip.targets)))
        val_clips.append(replace(clip, targets=np.where(to_val, clip.targets, IGNORE)))
    return train_clips, val_clips


def heldout_scores(samples, model_path: Path):
    from autotosis.demo.demo import EVENT_MIN_IOU, TASK
    from autotosis.detect.scan import ScanOptions, scan_video
    from autotosis.detect.segments import EventParams, event_spans, events_from_scores
    from autotosis.training.metrics import event_prf, frame_prf, truth_at_times

    scores = scan_video(samples.heldout.path, model_path, ScanOptions(use_cache=False, mode="dense"))
    truth_spans = list(samples.heldout.highlights)
    params = EventParams(threshold=0.5, min_length_ms=2000, pad_before_ms=0, pad_after_ms=0)  # the demo's rule
    truth, _ = truth_at_times(scores.times_ms, truth_spans)
    frame = frame_prf(scores.column(TASK) >= params.threshold, truth)
    event = event_prf(event_spans(events_from_scores(scores, TASK, params)), truth_spans, min_iou=EVENT_MIN_IOU)
    return frame, event


def train_run(frameset, *, split: str, seed: int, epochs: int, min_images: int, out: Path) -> dict:
    import autotosis.training.train as train_module
    from autotosis.training.train import TrainConfig, check_leaks, split_by_clip, train

    config = TrainConfig(seed=seed, epochs=epochs)
    splitter = frame_split if split == "frame" else split_by_clip
    train_clips, val_clips = splitter(frameset, config.val_fraction, seed)
    train_frames = sum(int(np.sum(c.targets >= 0)) for c in train_clips)
    epochs = max(epochs, math.ceil(min_images / max(train_frames, 1)))
    config = replace(config, epochs=epochs, leak_distance=None)
    leak = check_leaks(train_clips, val_clips, 2)
    original = train_module.split_by_clip
    train_module.split_by_clip = splitter
    began = time.perf_counter()
    try:
        result = train(frameset, config, out, force=True)
    finally:
        train_module.split_by_clip = original
    best = result.history[result.best_epoch - 1]
    return {
        "train_frames": train_frames,
        "epochs": epochs,
        "val_f1": best.f1,
        "leak_share": leak.share,
        "train_s": time.perf_counter() - began,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", default="6,9,12,24,36", help="label-set sizes, comma-separated (default: 6,9,12,24,36)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per size, each with another clip order and seed")
    parser.add_argument("--epochs", type=int, default=5, help="at least this many epochs (default: 5)")
    parser.add_argument(
        "--min-images",
        type=int,
        default=9600,
        help="and at least this many training images (default: 9600, the 16-clip demo's budget)",
    )
    parser.add_argument("--heldout-s", type=float, default=480.0, help="held-out VOD length (default: 480)")
    parser.add_argument("--heldout-events", type=int, default=16, help="highlights in the held-out VOD (default: 16)")
    parser.add_argument(
        "--leak-clips",
        default="6,12",
        help="label-set sizes for the random-frame split comparison, comma-separated, or 'none' (default: 6,12)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"work folder (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    out = args.out
    sizes = sorted({int(v) for v in args.clips.split(",")})
    leak_sizes = [] if args.leak_clips == "none" else sorted({int(v) for v in args.leak_clips.split(",")})
    pool = max(sizes + leak_sizes)

    import torch

    from autotosis.core.fsutil import write_text_atomic
    from autotosis.demo.demo import TASK, rough_labels_text
    from autotosis.demo.plan import DEFAULT_CAM
    from autotosis.demo.samples import make_sample_set
    from autotosis.labels.parse import parse_labels
    from autotosis.training.dataset import FrameOptions, extract_frames

    began = time.perf_counter()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"capability {torch.backends.cpu.get_cpu_capability()}"
    )
    print(
        f"generating {pool} training clips of 30 s and a {args.heldout_s:.0f}-s held-out VOD in {out / 'clips'} "
        "(re-used when present)"
    )
    samples = make_sample_set(
        out / "clips",
        seed=0,
        train_clips=pool,
        clip_s=30.0,
        heldout_s=args.heldout_s,
        heldout_events=args.heldout_events,
    )
    labels_path = out / "labels" / f"{TASK}.txt"
    rng = np.random.default_rng(1)
    write_text_atomic(
        labels_path, rough_labels_text(samples.train, 1000, rng, labels_path.parent, DEFAULT_CAM), force=True
    )
    frameset = extract_frames(parse_labels(labels_path), out / "frames", FrameOptions())
    print(f"frames: {frameset.counts()}  ({time.perf_counter() - began:.0f} s so far)")

    rows = []
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for repeat in range(args.repeats):
        order = np.random.default_rng(100 + repeat).permutation(len(frameset.clips))
        runs = [("clip", n) for n in sorted(set(sizes) | set(leak_sizes))] + [("frame", n) for n in leak_sizes]
        for split, n in runs:
            # A finished run is kept (same settings), so an interrupted benchmark goes on where it stopped.
            identity = {
                "split": split,
                "clips": n,
                "repeat": repeat,
                "pool": pool,
                "epochs": args.epochs,
                "min_images": args.min_images,
                "heldout_s": args.heldout_s,
                "heldout_events": args.heldout_events,
            }
            saved = runs_dir / f"{split}-{n}-r{repeat}.json"
            run = json.loads(saved.read_text()) if saved.exists() else None
            if run is None or run.get("identity") != identity:
                subset = replace(frameset, clips=tuple(frameset.clips[i] for i in order[:n]))
                model = out / f"model-{split}-{n}-r{repeat}.pt"
                run = train_run(
                    subset, split=split, seed=repeat, epochs=args.epochs, min_images=args.min_images, out=model
                )
                frame, event = heldout_scores(samples, model)
                run.update(
                    identity=identity,
                    split=split,
                    clips=n,
                    repeat=repeat,
                    heldout_frame_f1=frame.f1,
                    heldout_event_f1=event.f1,
                    heldout_event_p=event.precision,
                    heldout_event_r=event.recall,
                )
                saved.write_text(json.dumps(run, indent=1))
            rows.append(run)
            print(
                f"  {split:5s} split, {n:2d} clips, repeat {repeat}: validation F1 {run['val_f1']:.3f}, "
                f"held-out frame F1 {run['heldout_frame_f1']:.3f}, event F1 {run['heldout_event_f1']:.3f} "
                f"(P {run['heldout_event_p']:.2f} "
                f"R {run['heldout_event_r']:.2f}); {run['epochs']} epochs, {run['train_s']:.0f} s",
                flush=True,
            )

    def mean(split: str, n: int, key: str) -> float:
        return statistics.fmean(r[key] for r in rows if r["split"] == split and r["clips"] == n)

    print()
    print(
        f"label curve (clip-grouped validation; held-out VOD {args.heldout_s:.0f} s "
        f"with {args.heldout_events} highlights; "
        f"mean of {args.repeats} run(s))"
    )
    print(f"{'clips':>5} {'train frames':>12} {'val F1':>7} {'held-out frame F1':>18} {'held-out event F1':>18}")
    for n in sizes:
        print(
            f"{n:5d} {mean('clip', n, 'train_frames'):12.0f} {mean('clip', n, 'val_f1'):7.3f} "
            f"{mean('clip', n, 'heldout_frame_f1'):18.3f} {mean('clip', n, 'heldout_event_f1'):18.3f}"
        )
    if leak_sizes:
        print()
        print("the leak: what validation reports vs. the held-out truth (frame F1)")
        print(
            f"{'clips':>5} {'split':>12} {'val F1':>7} {'held-out':>9} {'val - held-out':>15} "
            f"{'near-dup val frames':>20}"
        )
        for n in leak_sizes:
            for split, name in (("clip", "clip-grouped"), ("frame", "random-frame")):
                val, held = mean(split, n, "val_f1"), mean(split, n, "heldout_frame_f1")
                print(
                    f"{n:5d} {name:>12} {val:7.3f} {held:9.3f} {val - held:+15.3f} {mean(split, n, 'leak_share'):20.1%}"
                )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{time.perf_counter() - began:.0f} s in all; runs in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
