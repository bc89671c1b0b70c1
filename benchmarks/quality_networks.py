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
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.quality import OUT, finished_sample_set, measure  # noqa: E402


def cli(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "autotosis", *argv], capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"autotosis {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def summary(result: dict) -> str:
    return (
        f"event F1 {result['event']['f1']:.3f} (P {result['event']['precision']:.2f} R "
        f"{result['event']['recall']:.2f}), frame F1 {result['frame']['f1']:.3f}, threshold "
        f"{result['threshold']:.2f}, {result['events_found']}/{result['events_true']} events, false on "
        f"{result['false_events_on'] or '-'}"
    )


def peaks(samples, scan: dict) -> str:
    """Median (lowest-highest) of the peak picture and combined score over the highlights and each look-alike kind:
    where the picture ranks them, and what the sound does to them."""
    times = np.asarray(scan["times_ms"])
    picture = np.asarray(scan["extra"]["audio"]["picture"])
    combined = np.asarray(scan["scores"]["rage"])
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

    from autotosis.detect.audio import AudioModel, audio_features, picture_logit
    from autotosis.model.model import read_checkpoint_info

    samples = finished_sample_set(args.out, args.seed)
    if samples is None:
        raise SystemExit(f"no finished data set of seed {args.seed} under {args.out}")
    runs = [args.out / "runs" / tag / f"seed{args.seed}-n{args.clips}" for tag in args.runs.split(",") if tag]
    if len(runs) < 2:
        raise SystemExit("--runs needs at least two runs")
    video = str(samples.heldout.path)
    scans = []
    for run in runs:
        dense = run / "heldout.dense.scores.json"
        if not dense.exists():
            cli(["scan", video, "--model", str(run / "model.pt"), "--mode", "dense", "--no-cache", "-o", str(dense)])
        events = run / "heldout.dense.events.json"
        cli(["events", str(dense), "-o", str(events), "--force"])
        print(f"{run.parent.name:>12} alone: {summary(measure(samples, dense, events))}")
        scans.append(json.loads(dense.read_text(encoding="utf-8")))
        print(f"{'':>12} peak scores: {peaks(samples, scans[-1])}")
    times = np.asarray(scans[0]["times_ms"])
    if any(scan["times_ms"] != scans[0]["times_ms"] for scan in scans):
        raise SystemExit("the dense scans have different sample times")
    mean_logit = np.mean([picture_logit(np.asarray(scan["extra"]["audio"]["picture"])) for scan in scans], axis=0)
    picture = 1 / (1 + np.exp(-mean_logit))
    for run, scan in zip(runs, scans):
        audio = AudioModel.from_info(read_checkpoint_info(run / "model.pt").audio)
        combined = picture
        if audio is not None and scan["extra"]["audio"].get("used"):
            features = audio_features(video, times, audio.combiner.spec)
            combined = audio.combiner.apply(picture, features)
        document = copy.deepcopy(scan)
        document["scores"] = {"background": [1 - float(v) for v in combined], "rage": [float(v) for v in combined]}
        document["extra"]["audio"]["picture"] = [float(v) for v in picture]
        mixed = run / "heldout.mean.scores.json"
        mixed.write_text(json.dumps(document), encoding="utf-8")
        events = run / "heldout.mean.events.json"
        cli(["events", str(mixed), "-o", str(events), "--force"])
        print(f"mean of {len(runs)}, {run.parent.name}'s rules: {summary(measure(samples, mixed, events))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
