#!/usr/bin/env python3
"""Would two networks from different random starts, scored as the mean of their logits, fix the worst seeds?
(issue 15; analysis of finished runs, nothing trained here)

Takes two or more finished runs of ``benchmarks/quality.py`` on the same seed and clip count that differ only in
``train --seed`` (so in their random starts, data order and folds), e.g.

    ATEN_CPU_CAPABILITY=default .venv/bin/python benchmarks/quality.py --clips 12 --first-seed 7 --seeds 1 \\
        --train-args "--threads 1" --tag base-s7
    ATEN_CPU_CAPABILITY=default .venv/bin/python benchmarks/quality.py --clips 12 --first-seed 7 --seeds 1 \\
        --train-args "--threads 1 --seed 1" --tag seedB-s7

scans the held-out VOD densely with each run's model (``autotosis scan --mode dense``: the same sample times for
every model), and measures as ``quality.py`` does (event P/R/F1 at IoU >= 0.3, frame F1, false events by
look-alike kind; and the median peak picture and combined score over the highlights and over each look-alike
kind): each model alone with its own stored rules, then the mean of the models' picture logits put
through one run's sound combiner and scored with that run's stored rules (``autotosis events``), once with each
run's calibration.  That is what a checkpoint of several networks would score, except that here each network
also mined its own hard negatives from its own folds.

Usage: .venv/bin/python benchmarks/quality_networks.py --out DIR --seed 7 --runs base-s7,seedB-s7 [--clips 12]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.quality import OUT, TASK, finished_sample_set, measure, run_cli  # noqa: E402


def summary(result: dict) -> str:
    return (
        f"event F1 {result['event']['f1']:.3f} (P {result['event']['precision']:.2f} R "
        f"{result['event']['recall']:.2f}), frame F1 {result['frame']['f1']:.3f}, threshold "
        f"{result['threshold']:.2f}, {result['events_found']}/{result['events_true']} events, false on "
        f"{result['false_events_on'] or '-'}"
    )


def peaks(samples, scores) -> str:
    """Median (lowest-highest) of the peak picture and combined score over the highlights and each look-alike kind:
    where the picture ranks them, and what the sound does to them."""
    times = scores.times_ms
    picture = np.asarray(scores.scan.audio["picture"])
    combined = scores.column(TASK)
    groups: dict[str, list[tuple[int, int]]] = {"highlights": list(samples.heldout.highlights)}
    for start, end, kind in samples.heldout.lookalikes:
        groups.setdefault(kind.split("+")[0], []).append((start, end))
    parts = []
    for name, spans in groups.items():
        inside = [(times >= start) & (times < end) for start, end in spans]
        inside = [mask for mask in inside if mask.any()]
        if not inside:
            continue
        values = [(picture[mask].max(), combined[mask].max()) for mask in inside]
        p, c = np.array(values).T
        parts.append(
            f"{name} ({len(values)}) picture {np.median(p):.3f} ({p.min():.3f}-{p.max():.3f}) "
            f"combined {np.median(c):.3f} ({c.min():.3f}-{c.max():.3f})"
        )
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="quality.py's work folder")
    parser.add_argument("--seed", type=int, required=True, help="the benchmark seed the runs were made on")
    parser.add_argument("--clips", type=int, default=12, help="labelled clips of the runs (default: 12)")
    parser.add_argument("--runs", required=True, help="comma-separated quality.py tags of the runs to combine")
    args = parser.parse_args()

    from autotosis.detect.audio import picture_logit
    from autotosis.detect.scan import with_sound
    from autotosis.detect.scores import read_scores, write_scores
    from autotosis.media import probe
    from autotosis.model.model import read_checkpoint_info

    samples = finished_sample_set(args.out, args.seed)
    if samples is None:
        raise SystemExit(f"no finished data set of seed {args.seed} under {args.out}")
    runs = [args.out / "runs" / tag / f"seed{args.seed}-n{args.clips}" for tag in args.runs.split(",") if tag]
    if len(runs) < 2:
        raise SystemExit("--runs needs at least two runs")
    video = samples.heldout.path
    env = dict(os.environ)
    scans = []
    for run in runs:
        log = run / "networks.log"
        dense = run / "heldout.dense.scores.json"
        if not dense.exists():
            scan = ["scan", str(video), "--model", str(run / "model.pt"), "--mode", "dense", "--no-cache"]
            run_cli([*scan, "-o", str(dense)], log, env, run)
        events = run / "heldout.dense.events.json"
        run_cli(["events", str(dense), "-o", str(events), "--force"], log, env, run)
        print(f"{run.parent.name:>12} alone: {summary(measure(samples, dense, events))}")
        scans.append(read_scores(dense))
        print(f"{'':>12} peak scores: {peaks(samples, scans[-1])}")
    if any(not np.array_equal(scan.times_ms, scans[0].times_ms) for scan in scans):
        raise SystemExit("the dense scans have different sample times")
    # The pictures' own scores (kept in the scan record beside the combined ones), averaged as logits.
    mean_logit = np.mean([picture_logit(np.asarray(scan.scan.audio["picture"])) for scan in scans], axis=0)
    picture = (1 / (1 + np.exp(-mean_logit))).astype(np.float32)
    picture_probs = np.column_stack([1 - picture, picture])
    video_info = probe.probe(video)
    for run, scan in zip(runs, scans):
        # The scan's own step: this run's sound combiner applied to the mean picture (its rules are in the record).
        probs, record = with_sound(
            video, video_info, read_checkpoint_info(run / "model.pt"), scan.times_ms, picture_probs
        )
        mixed = run / "heldout.mean.scores.json"
        write_scores(replace(scan, probs=probs, scan=replace(scan.scan, audio=record)), mixed, force=True)
        events = run / "heldout.mean.events.json"
        run_cli(["events", str(mixed), "-o", str(events), "--force"], run / "networks.log", env, run)
        print(f"mean of {len(runs)}, {run.parent.name}'s rules: {summary(measure(samples, mixed, events))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
