#!/usr/bin/env python3
"""Which candidate level should the coarse scan use?  Replayed on a dense scan, nothing decoded twice.

The coarse scan (autotosis.detect.coarse) scores the keyframes, decodes densely only the stretches
around keyframes scoring at least the *candidate level*, and keeps the keyframe samples elsewhere.  A
low level decodes more (slower); a high one may miss an event whose keyframes all score below it.
Given a dense scan of a video (`autotosis scan VIDEO --mode dense`), this replays the coarse scan for
several levels with the library's own second pass (``coarse.refine``: the refined stretches, then the
stretches where an event runs on past them): with --model the keyframes are decoded and scored as the scan's
first pass does (then the replay at the scan's level gives its refined stretches exactly), without it each
keyframe reads the dense sample at or before its time; the refined stretches keep their dense samples.  For
each level it prints the share of the video decoded densely, the share of the dense scan's events found
(IoU >= 0.3) and how far their edges moved, with the events `autotosis events` writes by default (the model's
calibrated rules, the threshold adapted to the video).

Usage: .venv/bin/python benchmarks/coarse_levels.py DENSE_SCORES.json [VIDEO] [--model M] [--levels 0.25,0.5,0.75,1]
       [--no-follow-edges]
(levels are fractions of the model's event threshold; the scan's default is ``coarse.CANDIDATE_SHARE``, 0.75;
where the threshold is raised for the video, the level is raised with it as the scan does, unless
--no-adapt-levels; VIDEO defaults to the video the scores file names)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from autotosis.detect import coarse  # noqa: E402
from autotosis.detect.adapt import adapt_levels  # noqa: E402
from autotosis.detect.scores import read_scores  # noqa: E402
from autotosis.detect.segments import event_params_for  # noqa: E402
from autotosis.media import decode  # noqa: E402
from benchmarks.scan import matched_edges, scan_events  # noqa: E402


def keyframes(video: Path, scores, model: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The keyframes' times, and with ``model`` their scores as the coarse scan's first pass computes them."""
    if model is None:
        spec = decode.DecodeSpec(size=16, fps=None, keyframes_only=True)
        times = [b.times_ms for b in decode.iter_frames(video, spec)]
        return np.concatenate(times or [np.zeros(0, np.int64)]), None
    from autotosis.model.predictor import load_predictor

    predictor = load_predictor(model)
    spec = decode.DecodeSpec(size=predictor.info.input_size, fps=None, region=scores.scan.region, keyframes_only=True)
    times, probs = [], []
    for batch in decode.iter_frames(video, spec):
        times.append(batch.times_ms)
        probs.append(np.asarray(predictor.predict(batch.frames), dtype=np.float32))
    return np.concatenate(times), np.concatenate(probs)


def replay(scores, key_times: np.ndarray, key_probs: np.ndarray | None, level: float, options: coarse.CoarseOptions):
    """(refined fraction, times, probs, the level used) of the coarse scan at candidate ``level`` (absolute score,
    raised with the video's threshold where options.adapt_levels): the scan's own
    second pass (``coarse.refine``), its dense decoding answered by the dense scan's samples."""
    times, probs = np.asarray(scores.times_ms), np.asarray(scores.probs)
    if key_probs is None:
        # Without the model: the dense sample on screen at each keyframe's time (the last one at or before it;
        # a keyframe a few ms after a sampling time then reads the frame before it).
        at = np.clip(np.searchsorted(times, key_times, side="right") - 1, 0, len(times) - 1)
        key_probs = probs[at]

    def decode_spans(spans: list[coarse.Span]) -> coarse.Samples:
        inside = np.zeros(len(times), dtype=bool)
        for lo, hi in spans:
            inside |= (times >= lo) & (times < hi)
        return times[inside], probs[inside]

    params = event_params_for(scores.scan.events, scores.scan.threshold)
    interior = params.threshold
    if options.adapt_levels:  # raised with the video's threshold, as the scan does (scan.coarse_levels)
        highlight = coarse.highlight_score(key_probs, tuple(scores.classes))
        raised = adapt_levels(level, key_times, highlight, scores.duration_ms, params)
        level, interior = raised or (level, interior)
    merged_times, merged_probs, spans = coarse.refine(
        key_times,
        key_probs,
        tuple(scores.classes),
        scores.duration_ms,
        scores.scan.fps,
        options,
        candidate=level,
        interior=interior,
        decode=decode_spans,
    )
    refined = sum(hi - lo for lo, hi in spans) / max(1, scores.duration_ms)
    return refined, merged_times, merged_probs, level


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", type=Path, help="a dense scan's scores file")
    parser.add_argument("video", type=Path, nargs="?", help="the scanned video (default: the one the file names)")
    parser.add_argument("--levels", default="0.25,0.4,0.5,0.6,0.75,0.9,1", help="fractions of the event threshold")
    parser.add_argument(
        "--model",
        type=Path,
        help="the model that made the scan: the keyframes are scored as the coarse scan does (without it, each "
        "keyframe reads the dense sample at or before its time)",
    )
    parser.add_argument(
        "--no-adapt-levels",
        action="store_true",
        help="replay the rule before 2026-12-06 (late): the levels of the calibrated threshold, not raised with "
        "the video's",
    )
    parser.add_argument(
        "--no-follow-edges",
        action="store_true",
        help="replay the rule before 2026-12-06: no decoding on past a refined stretch that ends inside an event",
    )
    args = parser.parse_args()
    options = coarse.CoarseOptions(follow_edges=not args.no_follow_edges, adapt_levels=not args.no_adapt_levels)
    scores = read_scores(args.scores)
    if scores.scan.mode != "dense":
        raise SystemExit(f"{args.scores} is a {scores.scan.mode} scan: replaying needs a dense one (--mode dense)")
    video = args.video or Path(scores.video)
    key_times, key_probs = keyframes(video, scores, args.model)
    threshold = event_params_for(scores.scan.events, scores.scan.threshold).threshold
    dense = scan_events(scores)
    print(
        f"{video.name}: {len(key_times)} keyframes, {scores.duration_ms / 1000:.0f} s; dense scan: {len(dense)} "
        f"events; event threshold {threshold:.2f}"
    )
    print(f"{'level':>6} {'score':>6} {'refined':>8} {'events':>7} {'found':>9} {'edges max / mean s':>19}")
    for fraction in (float(v) for v in args.levels.split(",")):
        refined, times, probs, level = replay(scores, key_times, key_probs, fraction * threshold, options)
        found = scan_events(replace(scores, times_ms=times, probs=probs))
        edges = matched_edges(found, dense)
        print(
            f"{fraction:6.2f} {level:6.3f} {refined:8.1%} {len(found):7d} "
            f"{len(edges):>4}/{len(dense):<4} {max(edges, default=0) / 1000:9.2f} / {np.mean(edges or [0]) / 1000:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
