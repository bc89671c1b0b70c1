#!/usr/bin/env python3
"""A threshold read from the held-out video's own scores (issue 15; analysis only, nothing in the product).

On the hard benchmark most held-out misses are the threshold's, not the model's: the final model separates the
unseen streamer's highlights from the rest (median score 0.49 against 0.06, say) but the threshold calibrated on
the fold models' out-of-fold scores sits above the highlights (0.65 to 0.97).  A long video's scores, on the
logit scale, often fall into two groups: the ordinary moments and the highlights.  This measures a remedy on runs
already trained and scanned (nothing is trained): fit a two-component Gaussian mixture to the video's logit
scores on a 2-s grid (as ``detect.adapt`` reads the video's median), take the point between the two means where
the upper component becomes the more likely one (the "valley"), and use the logit midpoint of the calibrated
threshold and the valley, where the two groups are well apart (Ashman's D >= 2) and the upper one holds 0.5-50%
of the grid.  Else the calibrated threshold stays.

It also asks what the rule does to a video without highlights: the same scan with every sample within 3 s of a
highlight given a score drawn from the video's other samples (seeded), and the events each threshold writes
there, all of them false.

Runs: ``--quality TAGS`` (finished runs of benchmarks/quality.py, runs/TAG/seedS-nN).

Usage: .venv/bin/python benchmarks/quality_valley.py --quality m-main,m-grey --quality-out /work/runs/quality
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import quality_audio, quality_shift  # noqa: E402

MIN_SEPARATION = 2.0  # Ashman's D of the two components
UPPER_SHARE = (0.005, 0.5)  # of the grid's samples in the upper component
HIGHLIGHT_MARGIN_MS = 3000  # around each highlight, for the video without highlights


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def two_groups(logits: np.ndarray, iterations: int = 300) -> tuple[float, float, float]:
    """A two-component Gaussian mixture of ``logits`` (EM, started from the quartile and the 95th percentile):
    the valley (where the upper component becomes the more likely one), Ashman's D and the upper share."""
    x = np.asarray(logits, dtype=np.float64)
    mean = np.quantile(x, [0.25, 0.95])
    spread = np.full(2, max(x.std() / 2, 0.05))
    weight = np.array([0.8, 0.2])
    for _ in range(iterations):
        density = weight / spread * np.exp(-0.5 * ((x[:, None] - mean) / spread) ** 2) + 1e-300
        share = density / density.sum(axis=1, keepdims=True)
        counts = share.sum(axis=0) + 1e-12
        weight = counts / len(x)
        mean = (share * x[:, None]).sum(axis=0) / counts
        spread = np.sqrt((share * (x[:, None] - mean) ** 2).sum(axis=0) / counts) + 0.05
    between = np.linspace(mean[0], mean[1], 400)
    density = weight / spread * np.exp(-0.5 * ((between[:, None] - mean) / spread) ** 2)
    upper = density[:, 1] / density.sum(axis=1) >= 0.5
    valley = float(between[np.argmax(upper)]) if upper.any() else float(mean[1])
    separation = float(np.sqrt(2) * abs(mean[1] - mean[0]) / np.sqrt((spread**2).sum()))
    return valley, separation, float(weight[1])


def valley_threshold(calibrated: float, logits: np.ndarray) -> float | None:
    """The logit midpoint of the calibrated threshold and the video's valley; None where the groups are not
    clear (the calibrated threshold then stays)."""
    valley, separation, upper = two_groups(logits)
    if separation < MIN_SEPARATION or not UPPER_SHARE[0] <= upper <= UPPER_SHARE[1]:
        return None
    return min(_sigmoid((quality_shift._logit(calibrated) + valley) / 2), 0.995)


def events_at(scanned, values: np.ndarray, rules: dict, threshold: float, truth) -> dict:
    """Event P/R/F1 of ``values`` (the highlight's score per sample) with ``rules`` at ``threshold``."""
    probs = np.column_stack([1 - values, values]).astype(np.float32)
    rules = {**rules, "threshold": float(threshold)}
    scored = replace(
        scanned,
        classes=("background", scanned.default_class()),
        probs=probs,
        scan=replace(scanned.scan, threshold=float(threshold), events=rules),
    )
    return quality_audio.event_f1(scored, truth)


def policies(scanned, values: np.ndarray, rules: dict, truth) -> dict[str, dict]:
    """Events of ``values`` under three thresholds: the calibrated one, the product's (``events``: the calibrated
    threshold adapted to the video, ``detect.adapt``) and the valley rule over the product's."""
    plain = {k: v for k, v in rules.items() if k != "negative_median"}
    calibrated = float(rules["threshold"])
    found = {
        "calibrated": events_at(scanned, values, plain, calibrated, truth),
        "product": events_at(scanned, values, rules, calibrated, truth),
    }
    from autotosis.detect.adapt import on_grid

    valley = valley_threshold(found["product"]["threshold"], quality_shift._logit(on_grid(scanned.times_ms, values)))
    found["valley"] = found["product"] if valley is None else events_at(scanned, values, plain, valley, truth)
    return found


def calm_copy(times: np.ndarray, values: np.ndarray, spans, rng: np.random.Generator) -> np.ndarray:
    """``values`` with every sample within HIGHLIGHT_MARGIN_MS of ``spans`` scored like a draw of the others."""
    from autotosis.training.metrics import truth_at_times

    near, _ = truth_at_times(times, [(max(0, s - HIGHLIGHT_MARGIN_MS), e + HIGHLIGHT_MARGIN_MS) for s, e in spans])
    calm = values.copy()
    calm[near] = rng.choice(values[~near], int(near.sum()))
    return calm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quality", required=True, help="comma-separated quality.py tags (finished runs)")
    parser.add_argument("--quality-out", type=Path, default=ROOT / "benchmarks" / "out" / "quality")
    args = parser.parse_args()

    import torch

    from autotosis.detect.scores import read_scores
    from autotosis.training.audio import oof_from_state
    from autotosis.training.calibrate import calibrate_scores

    rng = np.random.default_rng(0)
    found = []
    for tag in [t.strip() for t in args.quality.split(",") if t.strip()]:
        namespace = argparse.Namespace(quality_out=args.quality_out, audio_out=None, audio=None, quality=tag)
        found += quality_shift.runs(namespace)
    if not found:
        parser.error("no finished run under those tags")
    names = ("calibrated", "product", "valley")
    print(f"{'run':<20} {'event F1 (15 highlights)':<26} {'event F1 (3 highlights)':<26} false events (none)")
    print(f"{'':<20} {' / '.join(names):<26} {' / '.join(names):<26} {' / '.join(names)}")
    table: dict[str, list[list[float]]] = {"full": [], "sparse": [], "none": []}
    for name, last, scores_path, truth in found:
        state = torch.load(last, map_location="cpu", weights_only=True)
        oof, _ = oof_from_state(state["resume"]["extra"]["fit"]["oof"])
        rules = calibrate_scores(oof).to_dict()
        scanned = read_scores(scores_path)
        times = np.asarray(scanned.times_ms)
        values = np.asarray(quality_shift.picture_of(scanned), dtype=np.float64)
        kept = truth[::5]  # a sparser video: every fifth highlight kept, the others scored like calm moments
        full = policies(scanned, values, rules, truth)
        sparse = policies(scanned, calm_copy(times, values, [t for t in truth if t not in kept], rng), rules, kept)
        none = policies(scanned, calm_copy(times, values, truth, rng), rules, [])
        table["full"].append([full[k]["f1"] for k in names])
        table["sparse"].append([sparse[k]["f1"] for k in names])
        table["none"].append([none[k]["found"] for k in names])
        f1_full = " / ".join(f"{full[k]['f1']:.2f}" for k in names)
        f1_sparse = " / ".join(f"{sparse[k]['f1']:.2f}" for k in names)
        print(f"{name:<20} {f1_full:<26} {f1_sparse:<26} {' / '.join(str(none[k]['found']) for k in names)}")
    for scenario, rows in table.items():
        values = np.array(rows, dtype=float)
        what = "false events, mean (most)" if scenario == "none" else "event F1, mean (worst)"
        cells = [
            f"{k} {values[:, i].mean():.3f} ({values[:, i].max() if scenario == 'none' else values[:, i].min():.2f})"
            for i, k in enumerate(names)
        ]
        print(f"{scenario:<7} {what}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
