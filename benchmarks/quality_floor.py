#!/usr/bin/env python3
"""The probability floor of the picture's threshold (issue 15), on pictures already trained and scanned.

For each run of ``benchmarks/quality_audio.py`` named by ``--tags`` (its first kind's training keeps the
out-of-fold picture scores in ``model.last.pt``, its scan keeps the picture's own scores of the held-out VOD),
the picture's event rules are calibrated again by today's library code twice -- ``calibrate`` alone (the rules
before the floor) and ``calibrate_scores`` (from the ``probability_floor`` up, unless that costs more than
``FLOOR_MAX_COST`` out-of-fold event F1) -- and both are applied to the held-out picture scores: event
precision/recall/F1 (IoU >= 0.3) and frame F1 at the threshold, against the exact truth.  Nothing is trained.

Usage: .venv/bin/python benchmarks/quality_floor.py --tags full-s0,full-s1,full-s2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import quality_audio  # noqa: E402


def held_out(calibration, scanned, truth_spans) -> dict:
    from autotosis.training.metrics import frame_prf, truth_at_times

    rules = calibration.to_dict()
    picture = quality_audio.picture_scores(scanned, rules["threshold"], rules)
    event = quality_audio.event_f1(picture, truth_spans)
    truth, _ = truth_at_times(scanned.times_ms, truth_spans)
    frame = frame_prf(picture.column(picture.default_class()) >= calibration.rules.threshold, truth)
    return {
        "event": event,
        "frame_f1": round(float(frame.f1), 4),
        "oof_event_f1": round(float(calibration.event.f1), 4),
    }


def one_run(tag: str, out: Path) -> dict:
    import torch

    from autotosis.detect.scores import read_scores
    from autotosis.training.audio import oof_from_state
    from autotosis.training.calibrate import calibrate, calibrate_scores

    args = argparse.Namespace(**json.loads((out / f"results-{tag}.json").read_text())["args"])
    args.out, args.seed, args.clips = out, int(args.seed), int(args.clips)
    args.heldout_s, args.heldout_events = float(args.heldout_s), int(args.heldout_events)
    kind = quality_audio.KINDS[0]
    run = out / "runs" / tag / kind
    state = torch.load(run / "model.last.pt", map_location="cpu", weights_only=True)
    oof, _ = oof_from_state(state["resume"]["extra"]["fit"]["oof"])
    scanned = read_scores(run / "heldout.scores.json")
    truth = list(quality_audio.sample_set(kind, args).heldout.highlights)
    before, after = calibrate(oof), calibrate_scores(oof)
    return {
        "tag": tag,
        "seed": args.seed,
        "floor": after.floor,
        "before": {"threshold": before.rules.threshold, **held_out(before, scanned, truth)},
        "after": {"threshold": after.rules.threshold, **held_out(after, scanned, truth)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", required=True, help="comma-separated quality_audio.py tags (finished runs)")
    parser.add_argument("--out", type=Path, default=quality_audio.OUT)
    args = parser.parse_args()
    rows = [one_run(tag.strip(), args.out) for tag in args.tags.split(",") if tag.strip()]
    print(f"{'run':<12} {'floor':>6}  {'rules':<7} {'thr':>5} {'OOF F1':>7} {'event P/R/F1':>16} {'frame F1':>9}")
    for row in rows:
        for name in ("before", "after"):
            r = row[name]
            e = r["event"]
            floor = f"{row['floor']:.3f}" if row["floor"] is not None and name == "after" else ""
            print(
                f"{row['tag']:<12} {floor:>6}  {name:<7} {r['threshold']:5.2f} {r['oof_event_f1']:7.3f} "
                f"{e['precision']:5.2f}/{e['recall']:4.2f}/{e['f1']:4.2f} {r['frame_f1']:9.3f}"
            )
    for name in ("before", "after"):
        events = [row[name]["event"]["f1"] for row in rows]
        frames = [row[name]["frame_f1"] for row in rows]
        print(
            f"{name}: event F1 mean {np.mean(events):.3f} (worst {min(events):.3f}), "
            f"frame F1 mean {np.mean(frames):.3f} (worst {min(frames):.3f})"
        )
    (args.out / "floor.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
