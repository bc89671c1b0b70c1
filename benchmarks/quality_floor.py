#!/usr/bin/env python3
"""The probability floor of the picture's threshold (issue 15), on pictures already trained and scanned.

For each finished run named (``--quality TAGS``: runs of ``benchmarks/quality.py``, runs/TAG/seedS-nN;
``--tags TAGS``: runs of ``benchmarks/quality_audio.py``, the picture of its first kind), the training kept the
out-of-fold picture scores in ``model.last.pt`` and the scan kept the picture's own scores of the held-out VOD.
The picture's event rules are calibrated again by today's library code under five policies, and each is applied
to the held-out picture scores (event precision/recall/F1 at IoU >= 0.3 and frame F1 at the threshold, against
the exact truth).  Nothing is trained.

- ``none``: ``calibrate`` alone (the rules before the floor);
- ``always``: from the ``probability_floor`` up, whatever it costs out of fold;
- ``f1-0.05``: the floor unless it costs more than 0.05 out-of-fold event F1 (the guard until 2026-12-04);
- ``dropped``: the floor unless it loses more than ``FLOOR_MAX_HIGHLIGHTS_LOST`` of the out-of-fold highlights,
  else none (the guard from 2026-12-04 to 2026-12-06);
- ``today``: ``calibrate_scores``, what ``train`` stores (such a floor lowered to the highest threshold that keeps
  that share, rather than dropped).

Every policy's rules are applied as `events` applies them, the threshold adapted to the held-out VOD
(``detect.adapt``) where the rules carry the level it adapts from (runs trained since 2026-12-06 store it; it is
worked out again here from the out-of-fold scores).

A last line, for the policy of today: frame F1 when every sample of a stretch scoring >= 0.5 that reaches the
threshold counts as highlight (``held_both_ways``; a lead, nothing in the product does it).

Usage: .venv/bin/python benchmarks/quality_floor.py --quality v4r,v5-aug [--tags full-s0,full-s1,full-s2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import quality_audio, quality_shift  # noqa: E402

POLICIES = ("none", "always", "f1-0.05", "dropped", "today")
EARLIER_MAX_COST = 0.05
HELD_AT = 0.5  # the "held" frame column: samples of a stretch >= this that reaches the threshold


def held_both_ways(scores: np.ndarray, threshold: float, level: float) -> np.ndarray:
    """Samples of each stretch scoring >= ``level`` that reaches ``threshold`` somewhere (hysteresis both ways;
    the events' ``release`` holds only forwards).  Analysis only: a lead for frame F1."""
    from autotosis.detect.segments import true_runs

    inside = np.zeros(len(scores), bool)
    for lo, hi in true_runs(scores >= level):
        if (scores[lo:hi] >= threshold).any():
            inside[lo:hi] = True
    return inside


def calibrations(oof) -> dict:
    """The rules each policy chooses on these out-of-fold scores."""
    from autotosis.training.calibrate import FLOOR_MAX_HIGHLIGHTS_LOST, calibrate, calibrate_scores, probability_floor

    free = calibrate(oof)
    floor = probability_floor(oof)
    floored = calibrate(oof, floor=floor) if floor is not None and floor > free.rules.threshold else free
    earlier = floored if floored.event.f1 >= free.event.f1 - EARLIER_MAX_COST else free
    kept = floored is not None and free.event.tp - floored.event.tp <= FLOOR_MAX_HIGHLIGHTS_LOST * free.event.tp
    return {
        "none": free,
        "always": floored,
        "f1-0.05": earlier,
        "dropped": floored if kept else free,
        "today": calibrate_scores(oof),
        "floor": floor,
    }


def one_run(name: str, last: Path, scores_path: Path, truth) -> dict:
    import torch

    from autotosis.detect.scores import read_scores
    from autotosis.training.audio import oof_from_state
    from autotosis.training.metrics import frame_prf, truth_at_times

    state = torch.load(last, map_location="cpu", weights_only=True)
    oof, _ = oof_from_state(state["resume"]["extra"]["fit"]["oof"])
    scanned = read_scores(scores_path)
    picture = quality_shift.picture_of(scanned)
    chosen = calibrations(oof)
    row: dict = {"run": name, "floor": chosen.pop("floor")}
    for policy, calibration in chosen.items():
        event, frame_f1 = quality_shift.at_threshold(
            scanned, picture, calibration.to_dict(), calibration.rules.threshold, truth
        )
        row[policy] = {
            "threshold": calibration.rules.threshold,
            "oof_event_f1": round(float(calibration.event.f1), 4),
            "oof_highlights_found": int(calibration.event.tp),
            "event": event,
            "frame_f1": round(float(frame_f1), 4),
        }
    frames, _ = truth_at_times(scanned.times_ms, truth)
    level = min(HELD_AT, row["today"]["threshold"])
    held = held_both_ways(np.nan_to_num(picture), row["today"]["threshold"], level)
    row["today"]["frame_f1_held"] = round(float(frame_prf(held, frames).f1), 4)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quality", default="", help="comma-separated quality.py tags (finished runs)")
    parser.add_argument("--tags", default="", help="comma-separated quality_audio.py tags (finished runs)")
    parser.add_argument("--quality-out", type=Path, default=ROOT / "benchmarks" / "out" / "quality")
    parser.add_argument("--audio-out", type=Path, default=quality_audio.OUT)
    args = parser.parse_args()
    found = []
    folders = {"quality_out": args.quality_out, "audio_out": args.audio_out}
    for tag in [t.strip() for t in args.quality.split(",") if t.strip()]:
        found += quality_shift.runs(argparse.Namespace(**folders, audio=None, quality=tag))
    if args.tags:
        found += quality_shift.runs(argparse.Namespace(**folders, audio=args.tags, quality=None))
    if not found:
        parser.error("no finished run under those tags")
    rows = [one_run(*run) for run in found]
    header = f"{'run':<22} {'floor':>6}  {'policy':<8} {'thr':>5} {'OOF F1 (found)':>15} {'event P/R/F1':>16}"
    print(f"{header} {'frame F1':>9}")
    for row in rows:
        for policy in POLICIES:
            r, e = row[policy], row[policy]["event"]
            floor = f"{row['floor']:.3f}" if row["floor"] is not None and policy == POLICIES[0] else ""
            print(
                f"{row['run'] if policy == POLICIES[0] else '':<22} {floor:>6}  {policy:<8} {r['threshold']:5.2f} "
                f"{r['oof_event_f1']:7.3f} ({r['oof_highlights_found']:>3}) "
                f"{e['precision']:5.2f}/{e['recall']:4.2f}/{e['f1']:4.2f} {r['frame_f1']:9.3f}"
            )
    for policy in POLICIES:
        events = [row[policy]["event"]["f1"] for row in rows]
        frames = [row[policy]["frame_f1"] for row in rows]
        print(
            f"{policy:<8}: event F1 mean {np.mean(events):.3f} (worst {min(events):.3f}), "
            f"frame F1 mean {np.mean(frames):.3f} (worst {min(frames):.3f})  [{' '.join(f'{v:.2f}' for v in events)}]"
        )
    held = [row["today"]["frame_f1_held"] for row in rows]
    print(
        f"today, frames held both ways from {HELD_AT}: frame F1 mean {np.mean(held):.3f} (worst {min(held):.3f})"
        f"  [{' '.join(f'{v:.2f}' for v in held)}]"
    )
    (args.quality_out / "floor.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
