#!/usr/bin/env python3
"""Scan speed and memory (issue 4): every number is a ratio measured in this one run.

Builds its own test VODs under benchmarks/out/ (git-ignored), then for each VOD prints:

  limit    ffmpeg alone, the exact decode `scan` runs (same sampling, crop, scale, flags),
           frames thrown away: the speed a scan can at best reach
  dense    `autotosis scan --mode dense` (2 scores/s), as a subprocess: start-up included
  coarse   `autotosis scan --mode coarse` (keyframes first, dense decoding only around
           keyframes that might show an event)
  original the original project's method, as a subprocess (start-up included): ffmpeg dumps
           full-size JPEGs at 2 fps of the whole video into a temporary folder (always
           removed), then Pillow opens each one, crops the model's face cam, resizes it to
           the model's input size, and the same checkpoint classifies it in torch one image
           at a time (batch size 1); the JPEG dump and the classifying are timed together

each as x realtime (video seconds per wall second), as a ratio to the limit and as "vs
original" (its speed / the original method's speed), with the peak RSS of the scan's process
tree (python + ffmpeg, sampled every 50 ms); then dense and coarse once more under
ATEN_CPU_CAPABILITY=default (the no-AVX2 code path).  --no-original skips the original
method (it is slow: a full decode at the source's frame rate and size); the --long VOD
never runs it (its JPEGs would take gigabytes).

Limit, dense, coarse and original run in turn, --rounds times, and the fastest run of each
counts: on a shared machine other jobs only ever add time.  "CPU / limit" compares CPU seconds
(user + system of the whole process tree), which other jobs barely change.  "excl. start"
is the wall ratio without the fixed start-up every scan pays (python, torch and the model,
timed on its own): it matters for short VODs, not for multi-hour ones.

The VODs: sample stream clips (autotosis.demo.samples: a game with a face cam, a few seconds
of "rage" in one clip out of four, so a trained model finds realistic candidates) scaled
to 1080p60 and 720p30 with film-grain noise on top (not trivially compressible; encoded
at 6 and 3 Mb/s, H.264 + AAC, a keyframe every 2 s), made long by stream-copy looping
(concat demuxer) -- building a 60-minute VOD takes seconds.  ``--vods hard1080p60``: the hard
quality benchmark's held-out VOD (benchmarks/quality.py, seed 0; generated there if missing):
a highlight a minute and look-alike moments (cheers, laughs, alerts over the cam...), the first
--minutes (at most 15) encoded the same way at 1080p60; measure it with a model trained on hard
clips (--hard-model, e.g. a `quality.py` run's model; default: the --demo model), since the
demo's model never saw look-alikes.  The other VODs are the demo's kind of stream and are
scanned with the demo's model.

Event recall of the coarse scan (events the dense scan finds that the coarse scan finds
too, IoU >= 0.3) is measured on the demo's held-out VOD with the demo's model.  The model:
--demo DIR (the output of `autotosis demo --out DIR`), default benchmarks/out/demo, which
is made on first use (about 4 minutes).

``--before DIR`` adds a "coarse (before)" row: the same coarse scan run by an older copy of the package
(``git archive COMMIT autotosis | tar -x -C DIR``), in the same rounds, with its own refined share and its own
agreement with the dense scan.

Usage: .venv/bin/python benchmarks/scan.py [--minutes 10] [--long 60 [--long-coarse-only]] [--vods 1080p60,720p30]
       [--no-original] [--hard-model M] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # quality.py: the hard VOD

import numpy as np  # noqa: E402

from autotosis.media import decode, probe, tools  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
CLIP_S = 30  # one base clip; a VOD repeats [event clip, 3 calm clips]
VODS = {
    # name: (width, height, fps, video bitrate)
    "1080p60": (1920, 1080, 60, "6M"),
    "720p30": (1280, 720, 30, "3M"),
    # The hard quality benchmark's held-out VOD (benchmarks/quality.py, seed 0): a highlight a
    # minute and about four look-alike moments a minute, at 1080p60 like the first.
    "hard1080p60": (1920, 1080, 60, "6M"),
}
HARD_SEED = 0


# --------------------------------------------------------------------------- test VODs


def _run_ffmpeg(args: list[str], what: str) -> None:
    tools.run_ffmpeg(args, what=what)


def base_clips(folder: Path) -> tuple[Path, Path]:
    """Two 30 s sample stream clips at 640x360: one with 6 s of rage, one calm."""
    from autotosis.demo.samples import make_stream_clip

    folder.mkdir(parents=True, exist_ok=True)
    event, calm = folder / "base_event.mp4", folder / "base_calm.mp4"
    # A seed no demo clip uses (a streamer the model has not seen); the same one for both
    # clips, so they differ only in the rage (the game and the calm behaviour are the same).
    if not event.exists():
        make_stream_clip(event, duration_s=CLIP_S, highlights=[(12_000, 18_000)], seed=424242, force=True)
    if not calm.exists():
        make_stream_clip(calm, duration_s=CLIP_S, highlights=[], seed=424242, force=True)
    return event, calm


def encoded_clip(source: Path, name: str, folder: Path) -> Path:
    """``source`` scaled to the VOD's size and rate, with grain, H.264 + AAC, keyframe every 2 s."""
    width, height, fps, bitrate = VODS[name]
    out = folder / f"{source.stem}_{name}.mp4"
    if out.exists():
        return out
    tmp = out.with_suffix(".part.mp4")
    gop = str(2 * fps)
    _run_ffmpeg(
        [
            "-y",
            "-i",
            tools._url(source),
            "-vf",
            f"scale={width}:{height}:flags=bicubic,fps={fps},noise=alls=14:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            bitrate,
            "-maxrate",
            bitrate,
            "-bufsize",
            "2M",
            "-g",
            gop,
            "-keyint_min",
            gop,
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
            tools._url(tmp),
        ],
        f"encoding {out.name}",
    )
    tmp.replace(out)
    return out


def hard_vod(minutes: int, folder: Path) -> Path:
    """The first ``minutes`` (at most 15) of the hard benchmark's held-out VOD, encoded as 1080p60."""
    import quality

    out = folder / f"vod_hard1080p60_{minutes}min.mp4"
    if out.exists():
        return out
    settings = argparse.Namespace(out=quality.OUT, heldout_s=900.0, heldout_events=15)
    source = quality.sample_set(HARD_SEED, 12, settings).heldout.path
    trimmed = folder / f"hard_heldout_{minutes}min.mp4"
    if not trimmed.exists():
        _run_ffmpeg(
            ["-y", "-i", tools._url(source), "-t", str(minutes * 60), "-c", "copy", tools._url(trimmed)], "trim"
        )
    encoded = encoded_clip(trimmed, "hard1080p60", folder)
    encoded.replace(out)
    return out


def looped_vod(name: str, minutes: int, folder: Path) -> Path:
    """A ``minutes``-long VOD: [event, calm, calm, calm] repeated, stream-copied (seconds to build);
    for "hard1080p60", the hard benchmark's held-out VOD instead (``hard_vod``)."""
    if name == "hard1080p60":
        return hard_vod(minutes, folder)
    out = folder / f"vod_{name}_{minutes}min.mp4"
    if out.exists():
        return out
    event_src, calm_src = base_clips(folder)
    event, calm = encoded_clip(event_src, name, folder), encoded_clip(calm_src, name, folder)
    count = max(1, int(minutes * 60 // CLIP_S))
    listing = folder / f"{out.stem}.txt"
    lines = ["ffconcat version 1.0"] + [f"file '{(event if i % 4 == 0 else calm).name}'" for i in range(count)]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp = out.with_suffix(".part.mp4")
    _run_ffmpeg(
        [
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            tools._url(listing),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            tools._url(tmp),
        ],
        f"joining {out.name}",
    )
    tmp.replace(out)
    return out


def sound_twin(model: Path, sound_from: Path) -> Path:
    """``model``'s weights with the sound combiner of ``sound_from`` (a model trained with ``--audio on``).

    The combiner only maps (picture score, sound features) to a score, so any picture model can carry
    it; the twin scans the same picture with the same refinement as ``model`` and adds the sound pass,
    which is exactly the cost to measure.  Its events mean nothing (the combiner learned another
    model's scores).
    """
    from dataclasses import replace

    from autotosis.model.model import load_checkpoint, save_checkpoint

    _, donor, _ = load_checkpoint(sound_from)
    if not (donor.audio or {}).get("combiner"):
        raise SystemExit(f"{sound_from} has no sound combiner: train it with `autotosis train --audio on`")
    weights, info, _ = load_checkpoint(model)
    twin = OUT / f"{model.stem}+sound.pt"
    save_checkpoint(twin, weights, replace(info, audio=dict(donor.audio)), force=True)
    return twin


def demo_dir(path: Path | None) -> Path:
    folder = path or OUT / "demo"
    if not (folder / "rage.pt").exists():
        print(f"training the demo model in {folder} (once, about 4 minutes) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "autotosis", "-q", "--progress", "none", "demo", "--out", str(folder), "--force"],
            check=True,
            cwd=ROOT,
        )
    return folder


# --------------------------------------------------------------------------- measuring


def _status(pid: int) -> tuple[str, int]:
    """(process name, VmRSS in kB) from /proc; ("", 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return fields.get("Name", "").strip(), int(fields.get("VmRSS", "0 kB").split()[0])
    except (OSError, ValueError):
        return "", 0


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from /proc.

    A child caught between fork and exec still shows its parent's pages (shared, not extra
    memory): children with the parent's own name are skipped for that reason.
    """
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    root_name, total = _status(root)
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        name, rss = _status(pid)
        if name and name != root_name:
            total += rss
            todo += children.get(pid, [])
    return total


@dataclass
class Run:
    seconds: float
    cpu_s: float  # user + system time of the command and its children (ffmpeg)
    peak_rss_mb: float = 0.0


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(argv: list[str], env: dict | None = None) -> Run:
    """Wall time, CPU time and peak RSS (process tree, sampled every 50 ms) of a command."""
    began, cpu = time.perf_counter(), _children_cpu_s()
    # Not from the repository root: `python -m autotosis` would import ./autotosis whatever PYTHONPATH says,
    # and PYTHONPATH=<export of an older commit> is how "before" rows are measured.
    proc = subprocess.Popen(argv, cwd=OUT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    elapsed = time.perf_counter() - began
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{stderr.decode(errors='replace')[-2000:]}")
    return Run(elapsed, _children_cpu_s() - cpu, peak / 1024)


def time_limit(video: Path, spec: decode.DecodeSpec, info: probe.VideoInfo) -> Run:
    began, cpu = time.perf_counter(), _children_cpu_s()
    decode.decode_discard(video, spec, info=info)
    return Run(time.perf_counter() - began, _children_cpu_s() - cpu)


def scan_argv(video: Path, model: Path, mode: str, out: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autotosis",
        "-q",
        "--progress",
        "none",
        "scan",
        str(video),
        "--model",
        str(model),
        "--mode",
        mode,
        "--no-cache",
        "-o",
        str(out),
        "--force",
        *extra,
    ]


def startup_argv(model: Path) -> list[str]:
    """What every scan pays before the first frame: Python, the runtime (onnxruntime for a checkpoint whose
    export is cached, as after `train`) and the model."""
    return [
        sys.executable,
        "-c",
        "from autotosis.model.predictor import load_predictor; "
        f"load_predictor(__import__('pathlib').Path({str(model)!r}))",
    ]


def original_argv(video: Path, model: Path) -> list[str]:
    """This script's hidden --original-method option: the original method, in its own process."""
    return [sys.executable, str(Path(__file__).resolve()), "--original-method", str(video), str(model)]


def original_method(video: Path, model_path: Path, jpeg_root: Path | None = None) -> np.ndarray:
    """The original project's method: (a) plain ffmpeg dumps full-size JPEGs at 2 fps of the whole
    video into a temporary folder, then (b) Pillow opens each JPEG, crops the model's face cam
    and resizes it to the model's input size, and (c) the checkpoint classifies it in torch one
    image at a time.  Returns the positive class's probability per JPEG; the folder is always removed.

    Normalisation and softmax are autotosis's own (``model.predict_probs`` -> ``to_input_tensor``),
    the crop's pixel rounding is ``region.crop_pixels`` (the decoder's); the resize is Pillow's
    default filter (bicubic), as a Pillow script would do it.  Torch keeps its default threads.
    """
    from PIL import Image

    from autotosis.core.region import crop_pixels
    from autotosis.model.model import load_checkpoint, predict_probs

    model, info, _ = load_checkpoint(model_path)
    positive = info.positive_index()
    size = info.input_size
    with tempfile.TemporaryDirectory(prefix="original-jpegs-", dir=jpeg_root) as folder:
        # The original command (run_ffmpeg only adds -nostdin -hide_banner -loglevel error).
        tools.run_ffmpeg(
            ["-i", tools._url(video), "-vf", "fps=2", "-q:v", "2", str(Path(folder) / "%06d.jpg")],
            what="dumping JPEGs (original method)",
        )
        scores = []
        for jpeg in sorted(Path(folder).glob("*.jpg")):
            with Image.open(jpeg) as image:
                picture = image.convert("RGB")
            if info.crop is not None:
                w, h, x, y = crop_pixels(info.crop, picture.width, picture.height)
                picture = picture.crop((x, y, x + w, y + h))
            frame = np.asarray(picture.resize((size, size)), dtype=np.uint8)
            scores.append(predict_probs(model, frame[None], info)[0, positive])
    return np.asarray(scores, dtype=np.float32)


def _run_original_method(video: Path, model: Path) -> None:
    """Entry point of --original-method: SIGTERM unwinds like Ctrl-C, so the JPEG folder goes too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scores = original_method(video, model, jpeg_root=OUT if OUT.is_dir() else None)
    print(json.dumps({"frames": len(scores), "mean_score": float(scores.mean()) if len(scores) else None}))


def default_cap_env() -> dict:
    return {**os.environ, "ATEN_CPU_CAPABILITY": "default"}


def _best(runs: list[Run]) -> Run:
    """The fastest of repeated runs: other jobs on a shared machine only ever add time."""
    return min(runs, key=lambda r: r.seconds)


def measure_vod(
    video: Path,
    model: Path,
    *,
    rounds: int,
    with_default_cap: bool,
    with_original: bool = True,
    modes: tuple[str, ...] = ("dense", "coarse"),
    with_limit: bool = True,
    sound_model: Path | None = None,
    with_torch: bool = True,
    before: Path | None = None,
) -> list[dict]:
    """Rows for one VOD: limit, dense, coarse, coarse in PyTorch (``--backend torch``: the default runs a
    checkpoint in onnxruntime) and the original method (best of ``rounds``, interleaved), then dense and
    coarse once more under ATEN_CPU_CAPABILITY=default.
    ``modes``/``with_limit``: only these scans, without ffmpeg's decode-only runs (a multi-hour VOD).
    ``with_torch``: the "coarse [torch]" row.
    ``before``: a folder with an older copy of the package: its coarse scan as the "coarse (before)" row.
    ``sound_model``: each mode once more with this model (``model``'s weights with a sound combiner:
    ``sound_twin``), interleaved in the same rounds, as "MODE + sound"."""
    from autotosis.model.model import load_checkpoint
    from autotosis.model.onnx_backend import cached_export

    info = probe.probe(video)
    _, model_info, _ = load_checkpoint(model)
    cached_export(model)  # as `train` leaves it: no scan below pays for the export
    spec = decode.DecodeSpec(size=model_info.input_size, fps=2.0, region=model_info.crop)
    key_spec = decode.DecodeSpec(size=model_info.input_size, fps=None, region=model_info.crop, keyframes_only=True)
    video_s = info.duration_ms / 1000
    scores_of = {mode: OUT / f"scores.{video.stem}.{mode}.json" for mode in modes}
    startup = _best([run_measured(startup_argv(model)) for _ in range(2)])
    measured: dict[str, list[Run]] = {"limit": [], **{mode: [] for mode in modes}}
    if sound_model is not None:
        measured.update({f"{mode} + sound": [] for mode in modes})
    if with_torch and "coarse" in modes:
        measured["coarse [torch]"] = []
    # The scores file of each coarse row, for its refined share.
    coarse_scores = {"coarse": scores_of.get("coarse"), "coarse [torch]": OUT / "scores.torch.json"}
    if before is not None and "coarse" in modes:
        measured["coarse (before)"] = []
        coarse_scores["coarse (before)"] = OUT / "scores.before.json"
    if with_original:
        measured["original"] = []
    for _ in range(rounds):
        if with_limit:
            measured["limit"].append(time_limit(video, spec, info))
        for mode in modes:
            measured[mode].append(run_measured(scan_argv(video, model, mode, scores_of[mode])))
            if sound_model is not None:
                sound_scores = OUT / "scores.sound.json"
                measured[f"{mode} + sound"].append(run_measured(scan_argv(video, sound_model, mode, sound_scores)))
                if not json.loads(sound_scores.read_text())["extra"].get("audio", {}).get("used"):
                    raise SystemExit(f"the scan with {sound_model} did not use the sound of {video}")
            if with_torch and mode == "coarse":
                argv = scan_argv(video, model, mode, coarse_scores["coarse [torch]"], ("--backend", "torch"))
                measured["coarse [torch]"].append(run_measured(argv))
            if before is not None and mode == "coarse":
                argv = scan_argv(video, model, mode, coarse_scores["coarse (before)"])
                measured["coarse (before)"].append(run_measured(argv, {**os.environ, "PYTHONPATH": str(before)}))
        if with_original:
            measured["original"].append(run_measured(original_argv(video, model)))
    refined = {
        name: json.loads(path.read_text())["extra"].get("coarse", {}).get("refined_fraction")
        for name, path in coarse_scores.items()
        if name in measured and path is not None
    }
    if {"dense", "coarse"} <= set(scores_of):
        print(f"{video.name}: {coarse_agreement(scores_of['dense'], scores_of['coarse'])}", flush=True)
        if "coarse (before)" in measured:
            agreement = coarse_agreement(scores_of["dense"], coarse_scores["coarse (before)"])
            print(f"{video.name}, before: {agreement}", flush=True)
    if with_default_cap:
        for mode in modes:
            measured[f"{mode} [ATEN default]"] = [
                run_measured(scan_argv(video, model, mode, OUT / "scores.default-cap.json"), default_cap_env())
            ]
    if with_limit:
        measured["keyframes only (ffmpeg)"] = [time_limit(video, key_spec, info)]
    limits = measured.pop("limit")
    limit = _best(limits) if limits else None
    original = _best(measured["original"]) if with_original else None
    rows = []
    if limit is not None:
        rows.append(
            {
                "vod": video.name,
                "run": "limit (ffmpeg decode only)",
                "run_": limit,
                "video_s": video_s,
                "original": original,
            }
        )
    for name, runs in measured.items():
        best = _best(runs)
        row = {
            "vod": video.name,
            "run": name,
            "run_": best,
            "video_s": video_s,
            "rss_mb": max(r.peak_rss_mb for r in runs),
            "original": original,
        }
        if not name.startswith("keyframes"):
            row.update(startup=startup, refined=refined.get(name))
            if name.endswith(" + sound"):
                row.update(without_sound=_best(measured[name.removesuffix(" + sound")]))
            if limit is not None:
                row.update(limit=limit)
        rows.append(row)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(
        f"{'VOD':<22} {'run':<24} {'wall s':>7} {'x realtime':>10} {'/ limit':>8} {'excl. start':>11} "
        f"{'CPU s':>7} {'CPU / limit':>11} {'peak RSS':>9} {'vs original':>11}"
    )
    for r in rows:
        run: Run = r["run_"]
        speed = r["video_s"] / run.seconds
        ratio = steady = cpu_ratio = ""
        if "limit" in r:
            ratio = f"{r['limit'].seconds / run.seconds:.2f}"
            # The same ratio without the fixed start-up (python + torch + model, timed alone).
            steady = f"{r['limit'].seconds / max(0.1, run.seconds - r['startup'].seconds):.2f}"
            cpu_ratio = f"{r['limit'].cpu_s / run.cpu_s:.2f}"
        rss = f"{r['rss_mb']:.0f} MB" if r.get("rss_mb") else ""
        # Speed / the original method's speed (same video, so the ratio of wall times).
        original: Run | None = r.get("original")
        vs_original = f"{original.seconds / run.seconds:.2f}" if original is not None else ""
        note = f"  (refined {r['refined'] * 100:.0f}% of the video)" if r.get("refined") is not None else ""
        if r.get("without_sound") is not None:
            # The sound's cost: the same scan, same weights, same refinement, with and without it.
            base: Run = r["without_sound"]
            note += (
                f"  (sound: wall {run.seconds / base.seconds - 1:+.1%}, CPU {run.cpu_s / base.cpu_s - 1:+.1%}"
                " vs without)"
            )
        print(
            f"{r['vod']:<22} {r['run']:<24} {run.seconds:7.1f} {speed:10.1f} {ratio:>8} {steady:>11} "
            f"{run.cpu_s:7.1f} {cpu_ratio:>11} {rss:>9} {vs_original:>11}{note}",
            flush=True,
        )
    startup = next((r["startup"] for r in rows if "startup" in r), None)
    if startup is not None:
        print(
            f"(start-up alone: python + onnxruntime + model load, {startup.seconds:.1f} s wall, "
            f"{startup.cpu_s:.1f} s CPU)"
        )


def scan_events(scores) -> list[tuple[int, int]]:
    """The events `autotosis events` writes by default for these scores: the model's calibrated rules, the
    threshold adapted to the video where the model carries what it adapts from."""
    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.segments import event_spans

    return event_spans(detect_events(scores).events)


def matched_edges(found: list[tuple[int, int]], dense: list[tuple[int, int]]) -> list[int]:
    """For each dense event the other scan finds (one-to-one, IoU >= 0.3): how far its start or end moved, in ms."""
    from autotosis.training.metrics import match_intervals

    pairs = match_intervals(found, dense, 0.3) if found and dense else []
    return [max(abs(found[i][0] - dense[j][0]), abs(found[i][1] - dense[j][1])) for i, j in pairs]


def coarse_agreement(dense: Path, coarse: Path) -> str:
    """How far the coarse scan's events are from the dense scan's (the reference): the share of dense events it
    finds (IoU >= 0.3) and the largest difference of a matched event's start or end."""
    from autotosis.detect.scores import read_scores

    found = {"dense": scan_events(read_scores(dense)), "coarse": scan_events(read_scores(coarse))}
    edges = matched_edges(found["coarse"], found["dense"])
    recall = len(edges) / len(found["dense"]) if found["dense"] else 1.0
    same = " -- identical spans" if found["coarse"] == found["dense"] else ""
    return (
        f"dense finds {len(found['dense'])} events, coarse {len(found['coarse'])}; coarse finds {len(edges)}/"
        f"{len(found['dense'])} = {recall * 100:.0f}% of the dense events (IoU >= 0.3), edges of matched events "
        f"within {max(edges, default=0) / 1000:.2f} s of dense (mean {np.mean(edges or [0]) / 1000:.2f} s){same}"
    )


def event_recall(demo: Path) -> None:
    """Dense vs coarse events on the demo's held-out VOD (the model's own calibrated rules)."""
    video = demo / "clips" / "heldout_vod.mp4"
    model = demo / "rage.pt"
    if not video.exists():
        print(f"\n(no demo held-out VOD at {video}: dense vs coarse on it not measured)")
        return
    out = {mode: OUT / f"heldout.{mode}.scores.json" for mode in ("dense", "coarse")}
    timing = {mode: run_measured(scan_argv(video, model, mode, path)).seconds for mode, path in out.items()}
    print(
        f"\ndemo held-out VOD ({video}): {coarse_agreement(out['dense'], out['coarse'])}; "
        f"dense {timing['dense']:.1f} s, coarse {timing['coarse']:.1f} s wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10, help="length of the test VODs (default: 10)")
    parser.add_argument(
        "--long",
        type=int,
        metavar="MINUTES",
        help="also scan a VOD this long (e.g. 60) and compare peak RSS with the --minutes one",
    )
    parser.add_argument(
        "--long-coarse-only",
        action="store_true",
        help="on the --long VOD run only the default (coarse) scan: no ffmpeg decode-only or dense runs",
    )
    parser.add_argument("--vods", default="1080p60,720p30", help="which VODs (default: 1080p60,720p30)")
    parser.add_argument(
        "--demo", type=Path, help="output folder of `autotosis demo` (default: benchmarks/out/demo, made if missing)"
    )
    parser.add_argument(
        "--hard-model",
        type=Path,
        metavar="MODEL",
        help="the model for the hard1080p60 VOD: one trained with the plain defaults on the hard benchmark's clips "
        "(default: the --demo folder's rage.pt)",
    )
    parser.add_argument("--no-default-cap", action="store_true", help="skip the ATEN_CPU_CAPABILITY=default runs")
    parser.add_argument(
        "--rounds", type=int, default=2, help="repeat limit/dense/coarse/original, keep the fastest (default: 2)"
    )
    parser.add_argument(
        "--no-original", action="store_true", help="skip the original method (JPEG dump + Pillow + batch-1 torch)"
    )
    parser.add_argument(
        "--sound-from",
        type=Path,
        metavar="MODEL",
        help="also scan each VOD with the model's weights plus MODEL's sound combiner (a model trained with "
        "`train --audio on`): the sound's cost, as 'MODE + sound' rows",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="a folder holding an older copy of the package (git archive COMMIT autotosis | tar -x -C DIR): its "
        "coarse scan as the 'coarse (before)' row of each VOD, in the same rounds",
    )
    parser.add_argument("--original-method", nargs=2, type=Path, metavar=("VIDEO", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.original_method:
        _run_original_method(*args.original_method)
        return

    began = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    demo = demo_dir(args.demo).resolve()
    model = demo / "rage.pt"
    package = subprocess.run(
        [sys.executable, "-c", "import autotosis, pathlib; print(pathlib.Path(autotosis.__file__).parent)"],
        cwd=OUT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"autotosis measured: {package}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}; "
        f"ffmpeg {'.'.join(map(str, tools.ffmpeg_version()))}"
    )
    hard_model = args.hard_model.resolve() if args.hard_model else model
    print(f"model: {model}" + (f"; for the hard VOD: {hard_model}" if hard_model != model else ""))
    sound_model = sound_twin(model, args.sound_from) if args.sound_from else None
    if sound_model is not None:
        print(f"with sound: {sound_model} (its sound combiner from {args.sound_from})")
    rows: list[dict] = []
    for name in args.vods.split(","):
        video = looped_vod(name, args.minutes, OUT)
        vod_model = hard_model if name.startswith("hard") else model
        vod_rows = measure_vod(
            video,
            vod_model,
            rounds=args.rounds,
            with_default_cap=not args.no_default_cap,
            with_original=not args.no_original,
            sound_model=sound_model if vod_model == model else None,
            before=args.before.resolve() if args.before else None,
        )
        print_rows(vod_rows)
        rows += vod_rows
    if args.long:
        name = args.vods.split(",")[0]
        long_modes = ("coarse",) if args.long_coarse_only else ("dense", "coarse")
        long_rows = measure_vod(
            looped_vod(name, args.long, OUT),
            hard_model if name.startswith("hard") else model,
            rounds=1,
            with_default_cap=False,
            with_original=False,
            modes=long_modes,
            with_limit=not args.long_coarse_only,
            with_torch=False,
        )
        print_rows(long_rows)
        for mode in long_modes:
            short = next(r for r in rows if r["run"] == mode and name in r["vod"])
            long = next(r for r in long_rows if r["run"] == mode)
            short_speed = short["video_s"] / short["run_"].seconds
            long_speed = long["video_s"] / long["run_"].seconds
            print(
                f"{mode}: {args.long}-min VOD {long['rss_mb']:.0f} MB peak, {long_speed:.1f}x realtime "
                f"vs {args.minutes}-min {short['rss_mb']:.0f} MB, {short_speed:.1f}x realtime: "
                f"memory {long['rss_mb'] / short['rss_mb']:.2f}x, speed {long_speed / short_speed:.2f}x"
            )
    event_recall(demo)
    print(f"\nbenchmark took {time.perf_counter() - began:.0f} s")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
