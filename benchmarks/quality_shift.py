#!/usr/bin/env python3
"""Does a held-out VOD's own score level say how far the final model moved? (issue 15; analysis only)

The threshold calibrated on the fold models' out-of-fold scores does not always fit the final model on an unseen
streamer and room: there it may score calm stretches and look-alikes higher.  This measures one candidate remedy
on runs already trained and scanned (nothing is trained): raise the threshold
by ``--factor`` times the logit difference between the VOD's median score (on a 2-s grid, so the densely refined
stretches of a coarse scan do not weigh more) and the median out-of-fold negative score (or the ``--quantile``
of both), never lowering it.  For each run: the calibrated rules (``calibrate_scores``: what ``train`` stores)
without adaptation, the shifted threshold, and the threshold ``events`` uses since 2026-12-06 (the product's own
rule, ``detect.adapt``: the median, half the shift, with its guards), each with held-out event F1 (IoU >= 0.3) and
frame F1.

Runs: ``--quality TAG`` (runs of benchmarks/quality.py: runs/TAG/seedS-nN) and ``--audio TAGS`` (runs of
benchmarks/quality_audio.py: the picture of the first kind).

Usage: .venv/bin/python benchmarks/quality_shift.py --quality v4-floor --audio full-s0,full-s1,full-s2 [--factor 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import quality_audio  # noqa: E402
from benchmarks.quality import finished_sample_set  # noqa: E402


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def runs(args):
    """(name, model.last.pt, held-out scores, truth spans) of every run asked for."""
    if args.quality:
        for run in sorted((args.quality_out / "runs" / args.quality).glob("seed*-n*")):
            if not (run / "result.json").exists():
                continue  # not finished
            seed = int(run.name.split("-")[0].removeprefix("seed"))
            data = finished_sample_set(args.quality_out, seed)
            if data is None:
                continue  # its data set is still being generated
            truth = list(data.heldout.highlights)
            yield f"{args.quality} {run.name}", run / "model.last.pt", run / "heldout.scores.json", truth
    for tag in [t for t in (args.audio or "").split(",") if t]:
        saved = json.loads((args.audio_out / f"results-{tag}.json").read_text())["args"]
        namespace = argparse.Namespace(
            out=args.audio_out,
            seed=int(saved["seed"]),
            clips=int(saved["clips"]),
            heldout_s=float(saved["heldout_s"]),
            heldout_events=int(saved["heldout_events"]),
            twins=float(saved.get("twins", 0.0)),
        )
        kind = quality_audio.KINDS[0]
        run = args.audio_out / "runs" / tag / kind
        truth = list(quality_audio.sample_set(kind, namespace).heldout.highlights)
        yield f"{tag}", run / "model.last.pt", run / "heldout.scores.json", truth


def picture_of(scanned) -> np.ndarray:
    """The picture's own highlight scores of a scan (before sound was combined in, where it was)."""
    used = scanned.scan.audio and scanned.scan.audio.get("used")
    return np.asarray(scanned.scan.audio["picture"]) if used else scanned.column(scanned.default_class())


def at_threshold(scanned, picture: np.ndarray, rules: dict, threshold: float, truth) -> tuple[dict, float]:
    """Event P/R/F1 (and the threshold `events` used) of these rules with this threshold, and frame F1 at it."""
    rules = {**rules, "threshold": threshold}
    if scanned.scan.audio and scanned.scan.audio.get("used"):
        scored = quality_audio.picture_scores(scanned, threshold, rules)
    else:
        scored = replace(scanned, scan=replace(scanned.scan, threshold=threshold, events=rules))
    event = quality_audio.event_f1(scored, truth)
    return event, frame_f1_at(scanned, picture, event["threshold"], truth)


def frame_f1_at(scanned, picture: np.ndarray, threshold: float, truth) -> float:
    from autotosis.training.metrics import frame_prf, truth_at_times

    frames, _ = truth_at_times(scanned.times_ms, truth)
    return float(frame_prf(picture >= threshold, frames).f1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quality", metavar="TAG", help="runs of benchmarks/quality.py under this tag")
    parser.add_argument("--audio", metavar="TAGS", help="runs of benchmarks/quality_audio.py (comma-separated)")
    parser.add_argument("--factor", type=float, default=0.5, help="share of the logit difference (default: 0.5)")
    parser.add_argument("--quantile", type=float, default=0.5, help="statistic of both levels (default: median)")
    parser.add_argument("--quality-out", type=Path, default=ROOT / "benchmarks" / "out" / "quality")
    parser.add_argument("--audio-out", type=Path, default=quality_audio.OUT)
    args = parser.parse_args()

    import torch

    from autotosis.detect.adapt import on_grid
    from autotosis.detect.scores import read_scores
    from autotosis.training.audio import oof_from_state
    from autotosis.training.calibrate import calibrate_scores, probability_floor

    print(f"factor {args.factor}, quantile {args.quantile}")
    print(
        f"{'run':<22} {'floor':>5} {'OOF neg':>7} {'VOD':>6} {'shift':>6}  "
        f"{'calibrated: thr event F1 (found) frame F1':<42} {'shifted':<24} adapted (detect.adapt)"
    )
    totals: dict[str, list[tuple[float, float]]] = {"calibrated": [], "shifted": [], "adapted": []}
    for name, last, scores_path, truth in runs(args):
        state = torch.load(last, map_location="cpu", weights_only=True)
        oof, _ = oof_from_state(state["resume"]["extra"]["fit"]["oof"])
        calibration = calibrate_scores(oof)
        floor = probability_floor(oof)
        scanned = read_scores(scores_path)
        picture = picture_of(scanned)
        negatives = np.concatenate([c.scores[c.targets == 0] for c in oof])
        vod_level = float(np.quantile(_logit(on_grid(scanned.times_ms, picture)), args.quantile))
        shift = vod_level - float(np.quantile(_logit(negatives), args.quantile))
        base = calibration.rules.threshold
        raised = float(1 / (1 + np.exp(-(_logit(base) + args.factor * max(0.0, shift)))))
        # Without the level the product adapts from (the first two columns), and with it: what `events` does.
        plain = {k: v for k, v in calibration.to_dict().items() if k != "negative_median"}
        cells = []
        for label, threshold, rules in (
            ("calibrated", base, plain),
            ("shifted", raised, plain),
            ("adapted", base, calibration.to_dict()),
        ):
            event, frame_f1 = at_threshold(scanned, picture, rules, threshold, truth)
            totals[label].append((event["f1"], frame_f1))
            cells.append(f"{event['threshold']:.3f} {event['f1']:.2f} ({event['found']:>2}) {frame_f1:.2f}")
        print(
            f"{name:<22} {floor if floor is not None else float('nan'):5.2f} "
            f"{float(np.quantile(negatives, args.quantile)):7.3f} {1 / (1 + np.exp(-vod_level)):6.3f} {shift:+6.2f}  "
            f"{cells[0]:<42} {cells[1]:<24} {cells[2]}"
        )
    for label, values in totals.items():
        if values:
            events, frames = np.array(values).T
            print(
                f"{label:<10} event F1 mean {events.mean():.3f} (worst {events.min():.3f}), "
                f"frame F1 mean {frames.mean():.3f} (worst {frames.min():.3f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
