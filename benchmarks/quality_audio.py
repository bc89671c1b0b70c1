#!/usr/bin/env python3
"""Sound as a second input (issue 20): held-out event F1, picture alone vs picture and sound.

Three kinds of generated hard streams (autotosis.demo.samples, ``hard=True``, ``audio_kind``), the
same pictures for a seed, only the sound differs:

- ``heard``: the streamer shouts during each highlight (what sound is for);
- ``unrelated``: the shouting comes at random moments of its own, unrelated to the highlights;
- ``decoys``: shouting during highlights, plus loud game explosions while the face is calm.

For each kind, what a user would run (the CLI in a subprocess, a rough label file):

    autotosis train LABELS -o M.pt --force --audio on [--train-args ...]
    autotosis scan VOD --model M.pt -o S.json --force

then, on the held-out VOD against the exact truth (events one-to-one at IoU >= 0.3):

- combined: the scan's scores (the model's audio combiner applied) with the rules calibrated on the
  combined out-of-fold scores (what ``events`` uses by default);
- picture alone: the picture's own scores, which the scan keeps in its record (``extra.audio.picture``),
  with the picture-only rules of the same checkpoint (``info.events``: what a video without sound gets).

``--twins F``: a share F of the look-alikes are "twins" (``autotosis.demo.hard.TWIN_KIND``): the rage
acted out in silence, the picture of a highlight without its shouting.  Then the picture alone cannot
tell them from highlights and the sound can (in the heard and decoys kinds): what sound is for when
the picture is ambiguous.  The twins are in the pictures of every kind.

One training per kind gives both numbers.  The table also shows the out-of-fold event F1 of both on
the training clips and what ``--audio auto`` would have chosen.

The pictures of the three kinds are the same (the generator draws frames without looking at the
sound; the benchmark checks that the video streams are identical, byte for byte): the first kind is
trained and scanned through the CLI, and for the others the picture is not trained again.  Their
combiner is fitted by the same library code ``train`` runs (``training.audio.choose_audio``) on the
out-of-fold picture scores the first training kept in its resume state (``model.last.pt``), with
each kind's own clips' sound, and applied to the picture scores of the first scan with the kind's
own VOD's sound, as ``scan`` does (``detect.scan.with_sound``); its checkpoint (the same weights, its
own ``info.audio``) is written too.  ``--no-share`` trains and scans every kind through the CLI.

Output: benchmarks/out/quality_audio/results-TAG.json; sets, labels, models and logs stay under
benchmarks/out/quality_audio/ and are re-used (a kind trained under the same tag is measured again, not
trained again: delete its runs/TAG/KIND folder to train it again).

Usage: .venv/bin/python benchmarks/quality_audio.py [--clips 8] [--heldout-s 300] [--heldout-events 6]
       [--seed 0] [--kinds heard,unrelated,decoys] [--twins 0.3] [--train-args "--epochs 2"] [--tag NAME]
       .venv/bin/python benchmarks/quality_audio.py --summary TAG1,TAG2,TAG3   (mean and worst over runs)
       .venv/bin/python benchmarks/quality_audio.py --seed S --refit-from TAG --tag NEW ...  (sound fitted again only)
       .venv/bin/python benchmarks/quality_audio.py --seed S --refit-from TAG --combined-floor 0 --tag NEW ...
           (the same, without the floor on combined thresholds: what it changes, on the same pictures)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.quality import run_cli  # noqa: E402  (one CLI runner for both quality benchmarks)

OUT = ROOT / "benchmarks" / "out" / "quality_audio"
EVENT_MIN_IOU = 0.3
TASK = "rage"
KINDS = ("heard", "unrelated", "decoys")


def sample_set(kind: str, args):
    from autotosis.demo.frames import AUDIO_KINDS_VERSION
    from autotosis.demo.samples import load_sample_set, make_sample_set

    version = "" if kind == "heard" else f"-a{AUDIO_KINDS_VERSION}"  # a kind's sound changed: made again
    twins = f"-t{args.twins:g}" if args.twins else ""
    folder = (
        args.out
        / "data"
        / f"{kind}{version}{twins}-seed{args.seed}-n{args.clips}-h{args.heldout_s:g}-e{args.heldout_events}"
    )
    try:
        return load_sample_set(folder)
    except Exception:  # noqa: BLE001 - not made yet (or interrupted): made (resumed) below
        pass
    began = time.perf_counter()
    print(f"  generating {kind}: {args.clips} clips and a {args.heldout_s:.0f}-s VOD", flush=True)
    samples = make_sample_set(
        folder,
        seed=args.seed,
        train_clips=args.clips,
        clip_s=30.0,
        heldout_s=args.heldout_s,
        heldout_events=args.heldout_events,
        hard=True,
        audio_kind=kind,
        twins=args.twins,
    )
    print(f"  generated in {time.perf_counter() - began:.0f} s", flush=True)
    return samples


def write_labels(samples, seed: int, path: Path) -> Path:
    """A rough label file (edges off by up to 1 s; the same offsets for every kind)."""
    from autotosis.core.fsutil import write_text_atomic
    from autotosis.demo.demo import rough_labels_text
    from autotosis.demo.plan import DEFAULT_CAM

    text = rough_labels_text(
        samples.train,
        1000,
        np.random.default_rng(1000 + seed),
        path.parent,
        DEFAULT_CAM,
        title="hard sample clips with sound (benchmarks/quality_audio.py)",
    )
    write_text_atomic(path, text, force=True)
    return path


def event_f1(scores, truth_spans, twins=()) -> dict:
    """Event P/R/F1 of the events the scores' own record (threshold and rules) finds, and how many of
    them touch a twin (a silent rage look-alike)."""
    from autotosis.detect.pipeline import detect_events
    from autotosis.training.metrics import event_prf

    events = detect_events(scores)
    found = [(e.start_ms, e.end_ms) for e in events.events]
    prf = event_prf(found, truth_spans, min_iou=EVENT_MIN_IOU)
    on_twins = sum(any(s < t_end and e > t_start for t_start, t_end in twins) for s, e in found)
    return {**prf.__dict__, "found": len(found), "threshold": float(events.params.threshold), "on_twins": on_twins}


def frame_ap(scores, truth_spans) -> float:
    """Average precision of the highlight score over the scan's samples (threshold-free: how well the
    scores rank highlight samples above the rest, whatever threshold the rules chose)."""
    from autotosis.training.metrics import average_precision, truth_at_times

    truth, _ = truth_at_times(scores.times_ms, truth_spans)
    return round(float(average_precision(scores.column(scores.default_class()), truth)), 4)


def picture_scores(scanned, threshold: float, events: dict):
    """The picture's own scores of a scan with sound (kept in its record), with these event rules: what a
    video without sound would get from that model."""
    from autotosis.detect.scores import ScanInfo

    picture = np.asarray(scanned.scan.audio["picture"], dtype=np.float32)
    probs = np.column_stack([1 - picture, picture]).astype(np.float32)
    scan = ScanInfo(
        region=scanned.scan.region, fps=scanned.scan.fps, threshold=threshold, mode=scanned.scan.mode, events=events
    )
    return replace(scanned, probs=probs, scan=scan)


def measure(samples, model: Path, scores_path: Path) -> dict:
    from autotosis.demo.hard import TWIN_KIND
    from autotosis.detect.scores import read_scores
    from autotosis.model.predictor import read_model_info
    from autotosis.training.audio import auto_takes_sound

    info = read_model_info(model)
    combined = read_scores(scores_path)
    record = combined.scan.audio
    truth = list(samples.heldout.highlights)
    twins = [(start, end) for start, end, kind in samples.heldout.lookalikes if kind == TWIN_KIND]
    result = {
        "twins": len(twins),
        "audio_used_in_scan": bool(record.get("used")),
        "oof_event_f1": info.audio.get("oof_event_f1"),
    }
    result["combined"] = {**event_f1(combined, truth, twins), "frame_ap": frame_ap(combined, truth)}
    if record.get("used"):
        picture = picture_scores(combined, info.threshold, dict(info.events))
        result["picture"] = {**event_f1(picture, truth, twins), "frame_ap": frame_ap(picture, truth)}
    else:
        result["picture"] = result["combined"]
    oof = result["oof_event_f1"] or {}
    if oof.get("combined") is not None:
        loss = info.audio.get("oof_log_loss") or {}
        result["auto_would_use_sound"] = auto_takes_sound(
            oof.get("picture"),
            oof["combined"],
            oof.get("picture_refit"),
            loss.get("combined"),
            loss.get("picture_refit"),
        )
    return result


def video_md5(path: Path) -> str:
    """MD5 of the video stream's packets (stream copy: nothing is decoded)."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def shared_kind(kind: str, first_kind: str, args) -> dict | None:
    """The kind's combiner from the first kind's out-of-fold picture scores (see the module docstring);
    None when the pictures differ (then it is trained through the CLI)."""
    import torch

    from autotosis.detect.audio import AudioModel
    from autotosis.detect.scan import with_sound
    from autotosis.detect.scores import read_scores, write_scores
    from autotosis.media import probe
    from autotosis.model.model import load_checkpoint, save_checkpoint
    from autotosis.training.audio import choose_audio, oof_from_state
    from autotosis.training.calibrate import calibrate_scores

    first, first_dir = sample_set(first_kind, args), args.out / "runs" / (args.refit_from or args.tag) / first_kind
    samples = sample_set(kind, args)
    pairs = [(first.heldout.path, samples.heldout.path)] + [
        (a.path, b.path) for a, b in zip(first.train, samples.train)
    ]
    if any(video_md5(a) != video_md5(b) for a, b in pairs):
        print(f"  {kind}: the pictures differ from {first_kind}'s: trained on its own", flush=True)
        return None
    began = time.perf_counter()
    raw = torch.load(first_dir / "model.last.pt", map_location="cpu", weights_only=True)
    oof, paths = oof_from_state(raw["resume"]["extra"]["fit"]["oof"])
    paths = [samples.folder / p.name for p in paths]
    # The picture's rules as `train` chooses them (the probability floor included): `auto` compares with them.
    choice = choose_audio("on", oof, paths, calibrate_scores(oof))
    run_dir = args.out / "runs" / args.tag / kind
    run_dir.mkdir(parents=True, exist_ok=True)
    weights, info, _ = load_checkpoint(first_dir / "model.pt")
    info = replace(info, audio=choice.info())
    model = run_dir / "model.pt"
    save_checkpoint(model, weights, info, force=True)
    scanned = read_scores(first_dir / "heldout.scores.json")
    picture = np.asarray(scanned.scan.audio["picture"], dtype=np.float32)
    probs = np.column_stack([1 - picture, picture]).astype(np.float32)
    vod = samples.heldout.path
    mixed, record = with_sound(vod, probe.probe(vod), info, scanned.times_ms, probs)
    audio_model = AudioModel.from_info(info.audio)
    scan = replace(scanned.scan, threshold=audio_model.threshold, events=dict(audio_model.events), audio=record)
    scores = run_dir / "heldout.scores.json"
    write_scores(replace(scanned, video=vod, probs=mixed, scan=scan), scores, force=True)
    result = {
        "kind": kind,
        "shared_picture_with": first_kind,
        "sound_s": time.perf_counter() - began,
        "reason": choice.reason,
        **measure(samples, model, scores),
    }
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def one_kind(kind: str, args, env) -> dict:
    samples = sample_set(kind, args)
    run_dir = args.out / "runs" / args.tag / kind
    saved = run_dir / "result.json"
    if saved.exists() and "train_s" in json.loads(saved.read_text()):  # trained already: measured again
        previous = json.loads(saved.read_text())
        return {**previous, **measure(samples, run_dir / "model.pt", run_dir / "heldout.scores.json")}
    run_dir.mkdir(parents=True, exist_ok=True)
    labels = write_labels(samples, args.seed, samples.folder / "labels" / f"{TASK}.txt")
    model, scores, log = run_dir / "model.pt", run_dir / "heldout.scores.json", run_dir / "log.txt"
    log.write_text("")
    train_s = run_cli(
        ["train", str(labels), "-o", str(model), "--force", "--audio", "on", *shlex.split(args.train_args)],
        log,
        env,
        run_dir,
    )
    scan_s = run_cli(
        ["scan", str(samples.heldout.path), "--model", str(model), "-o", str(scores), "--force"], log, env, run_dir
    )
    result = {"kind": kind, "train_s": train_s, "scan_s": scan_s, **measure(samples, model, scores)}
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def auto_f1(row: dict) -> float:
    """The held-out event F1 `--audio auto` gets: the combined scores where it would use sound, else the picture's."""
    return row["combined" if row.get("auto_would_use_sound") else "picture"]["f1"]


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'kind':<10} {'picture P/R/F1':>16} {'combined P/R/F1':>16} {'diff':>6} {'AP pic/comb':>12}"
        f" {'OOF pic/comb/refit':>18} {'auto':>5} {'auto F1':>8} {'on twins pic/comb':>18}"
    )
    for row in rows:
        p, c = row["picture"], row["combined"]
        oof = row.get("oof_event_f1") or {}
        ap = f"{p.get('frame_ap', float('nan')):.3f}/{c.get('frame_ap', float('nan')):.3f}"
        print(
            f"{row['kind']:<10} {p['precision']:.2f}/{p['recall']:.2f}/{p['f1']:.2f}".ljust(27)
            + f" {c['precision']:.2f}/{c['recall']:.2f}/{c['f1']:.2f}".rjust(16)
            + f" {c['f1'] - p['f1']:+6.2f} {ap:>12} {oof.get('picture') or 0:.2f}/{oof.get('combined') or 0:.2f}"
            + ("/-   " if oof.get("picture_refit") is None else f"/{oof['picture_refit']:.2f}")
            + f" {'on' if row.get('auto_would_use_sound') else 'off':>5} {auto_f1(row):8.2f}"
            + (
                f" {p.get('on_twins', 0)}/{c.get('on_twins', 0)} of {row['twins']}".rjust(19)
                if row.get("twins")
                else ""
            )
        )


def summarize(tags: list[str], out: Path) -> None:
    """Mean and worst over the runs ``tags`` (one seed each), per kind: picture, combined (`--audio on`), auto."""
    by_kind: dict[str, list[dict]] = {}
    for tag in tags:
        document = json.loads((out / f"results-{tag}.json").read_text())
        for row in document["rows"]:
            by_kind.setdefault(row["kind"], []).append(row)
    header = f"{'kind':<10} {'runs':>4}  event F1 mean (worst): {'picture':>12} {'on':>12} {'auto':>12}"
    print(f"{header}   frame AP picture / on")
    for kind, rows in by_kind.items():
        columns = [
            [r["picture"]["f1"] for r in rows],
            [r["combined"]["f1"] for r in rows],
            [auto_f1(r) for r in rows],
        ]
        cells = "".join(f" {np.mean(v):6.2f} ({np.min(v):.2f})" for v in columns)
        aps = [(r["picture"].get("frame_ap"), r["combined"].get("frame_ap")) for r in rows]
        ap = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in aps if a is not None and b is not None)
        print(f"{kind:<10} {len(rows):>4}  {' ' * 22}{cells}   {ap}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="labelled training clips (default: 8)")
    parser.add_argument("--heldout-s", type=float, default=300.0, help="held-out VOD length in s (default: 300)")
    parser.add_argument("--heldout-events", type=int, default=6, help="highlights in the held-out VOD (default: 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument(
        "--twins",
        type=float,
        default=0.0,
        metavar="F",
        help="share of look-alikes that are silent rages (the picture of a highlight without its sound; default 0)",
    )
    parser.add_argument("--train-args", default="", help='more `autotosis train` options, e.g. "--epochs 2"')
    parser.add_argument("--tag", default="default")
    parser.add_argument("--no-share", action="store_true", help="train every kind through the CLI (see above)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--refit-from",
        metavar="TAG",
        help="train nothing: fit every kind's sound again (today's training.audio code) on the picture trained "
        "under TAG (its out-of-fold scores and held-out scan); results under --tag",
    )
    parser.add_argument(
        "--combined-floor",
        type=float,
        metavar="T",
        help="with --refit-from: the lowest event threshold of combined rules (training.audio.MIN_COMBINED_THRESHOLD, "
        "default its value; 0 measures without the floor)",
    )
    parser.add_argument(
        "--summary", metavar="TAGS", help="only print mean and worst over finished runs (comma-separated tags)"
    )
    args = parser.parse_args()
    if args.summary:
        summarize([t.strip() for t in args.summary.split(",") if t.strip()], args.out)
        return 0
    if args.combined_floor is not None:
        if not args.refit_from:
            parser.error("--combined-floor needs --refit-from (the sound is fitted in this process only then)")
        import autotosis.training.audio as training_audio

        training_audio.MIN_COMBINED_THRESHOLD = args.combined_floor
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)}")
    env = {**os.environ}
    env.setdefault("PYTHONPATH", str(ROOT))
    rows = []
    # --refit-from: every kind (the trained one too) gets its sound fitted again by today's library code on the
    # picture that run trained; nothing is trained.
    first = KINDS[0] if args.refit_from else None
    for kind in kinds:
        print(f"{kind}:", flush=True)
        row = None
        if first is not None and not args.no_share:
            row = shared_kind(kind, first, args)
        if row is None:
            row = one_kind(kind, args, env)
            first = first or kind
        rows.append(row)
        took = (
            f"train {row['train_s']:.0f} s, scan {row['scan_s']:.0f} s"
            if "train_s" in row
            else f"picture shared with {row['shared_picture_with']}; sound {row['sound_s']:.0f} s"
        )
        print(
            f"  event F1 picture {row['picture']['f1']:.3f}, combined {row['combined']['f1']:.3f} ({took})", flush=True
        )
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
    (args.out / f"results-{args.tag}.json").write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
