#!/usr/bin/env python3
"""Event and frame F1 of finished hard-benchmark runs at fixed thresholds (analysis, chooses nothing).

For each run folder of benchmarks/quality.py (``runs/TAG/seedS-nN``) the stored held-out scores are turned into
events with the events file's rules but a fixed threshold, and matched to the exact truth as quality.py does.
It shows how far the calibrated threshold is from what the final model needed.

Usage: .venv/bin/python benchmarks/quality_thresholds.py [RUN ...]
       (RUN: a run folder such as benchmarks/out/quality/runs/v3-nonavx/seed0-n12; default: every finished run)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autotosis.detect.scores import read_scores  # noqa: E402
from autotosis.detect.segments import read_events  # noqa: E402
from benchmarks.quality import at_threshold, finished_sample_set  # noqa: E402

THRESHOLDS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (default: every finished one)")
    args = parser.parse_args()
    finished = (ROOT / "benchmarks" / "out" / "quality" / "runs").glob("*/*/result.json")
    runs = args.runs or sorted(path.parent for path in finished)
    if not runs:
        print("no finished runs of benchmarks/quality.py yet: run it first")
        return 0
    print("run  " + "  ".join(f"{t:>11.2f}" for t in THRESHOLDS) + "  calibrated   (event F1 / frame F1)")
    for run in runs:
        result = json.loads((run / "result.json").read_text())
        seed = result["seed"]
        data = finished_sample_set(run.parent.parent.parent, seed)
        if data is None:
            print(f"{run.parent.name}/{run.name}: no finished data set of seed {seed}")
            continue
        truth = list(data.heldout.highlights)
        scores = read_scores(run / "heldout.scores.json")
        events = read_events(run / "heldout.events.json")
        cells = []
        for threshold in THRESHOLDS:
            event, frame = at_threshold(scores, events, truth, threshold)
            cells.append(f"{event.f1:.2f} / {frame.f1:.2f}")
        print(f"{run.parent.name}/{run.name}  " + "  ".join(f"{c:>11}" for c in cells) + f"  {result['threshold']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
