#!/usr/bin/env python3
"""`autotosis batch` with 1 vs 2 workers on the same 4 VODs: the speedup as a ratio, measured in one run.

Makes 4 VODs under benchmarks/out/batch/ (git-ignored): a 720p30 H.264 + AAC test pattern with
film-grain noise (so decoding costs what real footage costs) and a red "face cam" flash, looped
by stream copy to --seconds each; every VOD is its own file, and --no-cache makes every run
decode again.  The model is a randomly initialised 128x128 ResNet18 (speed does not depend on
the weights); events are picked with --top-percent/--top-k/--max-length so every VOD renders the
same small amount whatever the scores are.

Each configuration runs the whole CLI as a subprocess (worker start-up, model loading, scan,
events, per-VOD reel and report, best-of reel), in the order 1, 2, 2, 1, ... so drift on a
shared machine hits both alike.  Torch threads per worker are the CLI's default (1 per worker
on a 2-core machine).

Usage: .venv/bin/python benchmarks/batch.py [--seconds 60] [--rounds 2] [--engine local|ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autotosis.media import tools  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "batch"
CAM = "0.75,0.0,1.0,0.3"
VODS = 4


def make_vods(seconds: int, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "base-20s.mp4"
    if not base.exists():
        flash = "drawbox=x=iw*0.75:y=0:w=iw*0.25:h=ih*0.3:color=red:t=fill:enable='between(t,8,12)'"
        tools.run_ffmpeg(
            [
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=s=1280x720:r=30:d=20,noise=alls=20:allf=t,{flash}",
                "-f",
                "lavfi",
                "-i",
                "sine=f=440:r=48000:d=20",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                "3M",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                tools._url(base),
            ],
            what="making the base clip",
        )
    vods = []
    for index in range(VODS):
        vod = folder / f"vod {index + 1} ({seconds}s).mp4"
        if not vod.exists():
            loops = seconds // 20 + 1
            tools.run_ffmpeg(
                [
                    "-y",
                    "-stream_loop",
                    str(loops),
                    "-i",
                    tools._url(base),
                    "-t",
                    str(seconds),
                    "-c",
                    "copy",
                    tools._url(vod),
                ],
                what="looping the base clip",
            )
        vods.append(vod)
    return vods


def make_model(path: Path) -> Path:
    import torch

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    torch.manual_seed(0)
    info = ModelInfo(
        task="bench",
        classes=("background", "bench"),
        input_size=128,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=tuple(float(v) for v in CAM.split(",")),
        threshold=0.5,
    )
    save_checkpoint(path, build_model(2), info, force=True)
    return path


def run_batch(vods: list[Path], model: Path, out: Path, workers: int, engine: str, env: dict) -> float:
    shutil.rmtree(out, ignore_errors=True)
    argv = [
        str(ROOT / ".venv" / "bin" / "autotosis"),
        "--progress",
        "none",
        "-q",
        "batch",
        *map(str, vods),
        "--model",
        str(model),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--engine",
        engine,
        "--no-cache",
        "--top-percent",
        "5",
        "--top-k",
        "3",
        "--max-length",
        "6",
    ]
    began = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="length of each VOD (default: 60)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration (default: 2)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="(default: local)")
    args = parser.parse_args()

    vods = make_vods(args.seconds, OUT / "vods")
    with tempfile.TemporaryDirectory(prefix="autotosis-bench-batch-") as tmp:
        model = make_model(Path(tmp) / "model.pt")
        env = {**os.environ, "AUTOTOSIS_CACHE": str(Path(tmp) / "cache"), "RAY_DISABLE_USAGE_STATS": "1"}
        times: dict[int, list[float]] = {1: [], 2: []}
        for round_index in range(args.rounds):
            for workers in (1, 2) if round_index % 2 == 0 else (2, 1):
                seconds = run_batch(vods, model, Path(tmp) / f"out-{workers}", workers, args.engine, env)
                times[workers].append(seconds)
                print(
                    f"round {round_index + 1}: {workers} worker{'s' if workers > 1 else ' '}  {seconds:6.1f} s",
                    flush=True,
                )

    cpus = os.cpu_count() or 1
    video_s = VODS * args.seconds
    mean = {w: sum(t) / len(t) for w, t in times.items()}
    print(
        f"\n{platform.processor() or platform.machine()}, {cpus} CPUs, engine {args.engine}; "
        f"{VODS} VODs x {args.seconds} s 720p30 H.264, {args.rounds} rounds each"
    )
    for workers in (1, 2):
        print(
            f"{workers} worker{'s' if workers > 1 else ' '} (default --threads): "
            f"mean {mean[workers]:6.1f} s  ({video_s / mean[workers]:5.1f}x realtime for the whole batch)"
        )
    print(f"speedup 2 workers / 1 worker: {mean[1] / mean[2]:.2f}x")


if __name__ == "__main__":
    main()
