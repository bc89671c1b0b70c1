#!/usr/bin/env python3
"""Would the fold models, scoring together, beat the final model?  (issue 15; analysis, not a default)

For one seed and clip count of the hard quality benchmark (benchmarks/quality.py: same generated
data, same rough label file), this trains with the plain CLI defaults while keeping the k fold
models that cross-validation makes (normally deleted with their temporary folder), scans the
held-out VOD densely with the final model and with every fold model, and prints event and frame
F1 with the final model's calibrated event rules (and at fixed thresholds) for:

  final              the model `train` writes
  foldN              each fold model alone
  mean(folds)        an ensemble of the fold models (the mean of their probabilities)
  mean(folds+final)  the same with the final model as a fourth member
  median(folds)

Measured on 2026-12-03 (seeds 0-2, 12 clips; BENCHMARKS.md): the ensemble won on one seed and lost
on two, so it did not become the default (it would also cost k forward passes per scanned sample).

Usage: .venv/bin/python benchmarks/quality_ensemble.py --seed 0 [--clips 12] [--train-args "--threads 1"]
(one run: training as in quality.py, then k + 1 dense scans of the 15-minute VOD; results and
models under benchmarks/out/quality/ensemble/seedS-nN/, re-used when present)
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import quality  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97)
# `train` with the fold models' temporary folder replaced by a kept one (FOLDS, the first argument).
KEEP_FOLDS = """
import contextlib, sys, types
import autotosis.training.fit as fit
folds = sys.argv[1]
fit.tempfile = types.SimpleNamespace(TemporaryDirectory=lambda prefix="": contextlib.nullcontext(folds))
from autotosis.cli import main
sys.exit(main(sys.argv[2:]))
"""


def train_and_scan(seed: int, clips: int, train_args: str) -> Path:
    args = argparse.Namespace(out=quality.OUT, heldout_s=900.0, heldout_events=15)
    samples = quality.sample_set(seed, 36, args)
    labels = quality.write_labels(samples, seed, clips, quality.OUT)
    run = quality.OUT / "ensemble" / f"seed{seed}-n{clips}"
    folds = run / "folds"
    folds.mkdir(parents=True, exist_ok=True)
    if not (run / "model.pt").exists():
        print(f"training {run} ...", flush=True)
        with open(run / "train.log", "w", encoding="utf-8") as log:
            subprocess.run(
                [sys.executable, "-c", KEEP_FOLDS, str(folds), "train", str(labels), "-o", str(run / "model.pt")]
                + ["--force", *shlex.split(train_args)],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run,
            )
    models = {"final": run / "model.pt", **{p.stem: p for p in sorted(folds.glob("fold?.pt"))}}
    for name, path in models.items():
        out = run / f"{name}.scores.json"
        if not out.exists():
            print(f"scanning with {name} ...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "autotosis", "-q", "--progress", "none", "scan", str(samples.heldout.path)]
                + ["--model", str(path), "-o", str(out), "--mode", "dense", "--force"],
                check=True,
                cwd=run,
            )
    return run


def report(run: Path, seed: int) -> None:
    from autotosis.detect.pipeline import event_params
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import events_from_scores
    from autotosis.training.metrics import event_prf, frame_prf, truth_at_times

    args = argparse.Namespace(out=quality.OUT, heldout_s=900.0, heldout_events=15)
    spans = list(quality.sample_set(seed, 36, args).heldout.highlights)
    final = read_scores(run / "final.scores.json")
    rules = replace(event_params(final.scan), pad_before_ms=0, pad_after_ms=0)
    truth, _ = truth_at_times(final.times_ms, spans)
    label = final.default_class()
    columns = {"final": final.column(label)}
    for path in sorted(run.glob("fold?.scores.json")):
        scores = read_scores(path)
        if not np.array_equal(scores.times_ms, final.times_ms):
            raise SystemExit(f"{path}: sampled at other times than the final model's scan")
        columns[path.name.split(".")[0]] = scores.column(label)
    folds = [v for k, v in columns.items() if k.startswith("fold")]
    columns["mean(folds)"] = np.mean(folds, axis=0)
    columns["mean(folds+final)"] = np.mean([*folds, columns["final"]], axis=0)
    columns["median(folds)"] = np.median(folds, axis=0)

    def measure(column: np.ndarray, params) -> tuple:
        probs = np.zeros_like(final.probs)
        probs[:, final.classes.index(label)] = column
        scores = replace(final, probs=probs)
        found = [(e.start_ms, e.end_ms) for e in events_from_scores(scores, label, params)]
        return event_prf(found, spans, min_iou=quality.EVENT_MIN_IOU), frame_prf(column >= params.threshold, truth)

    print(
        f"\n{run}: event / frame F1 with the final model's rules (threshold {rules.threshold:g}, smoothing "
        f"{rules.smooth_ms} ms, minimum length {rules.min_length_ms} ms, merge gap {rules.merge_gap_ms} ms)"
    )
    print(f"{'scores':<18} {'calibrated':>10}  " + "  ".join(f"{t:>9}" for t in THRESHOLDS))
    for name, column in columns.items():
        event, frame = measure(column, rules)
        grid = [measure(column, replace(rules, threshold=t, release=None)) for t in THRESHOLDS]
        print(f"{name:<18} {event.f1:4.2f}/{frame.f1:4.2f}  " + "  ".join(f"{e.f1:4.2f}/{f.f1:4.2f}" for e, f in grid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--train-args", default="", help="more `train` options, e.g. '--threads 1'")
    args = parser.parse_args()
    report(train_and_scan(args.seed, args.clips, args.train_args), args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
