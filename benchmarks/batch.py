#!/usr/bin/env python3
"""`autotosis batch` with 1 vs 2 workers on the same VODs: throughput and per-VOD scan time, in one run.

Makes --vods VODs (default 4) under benchmarks/out/batch/ (git-ignored), once, re-used by later
runs: a 720p30 H.264 + AAC test pattern with film-grain noise (so decoding costs what real
footage costs) and a red "face cam" flash, looped by stream copy to --seconds each (cheap even
for 20 x 5 minutes); every VOD is its own file with its own bytes (a title tag names it), and
--no-cache makes every run decode again.  The model is a randomly initialised 128x128 ResNet18
(speed does not depend on the weights); events are picked with --top-percent/--top-k/--max-length
so every VOD renders the same small amount whatever the scores are.

Each configuration runs the whole CLI as a subprocess (`python -m autotosis` of this checkout:
worker start-up, model loading, scan, events, per-VOD reel and report, best-of reel), in the
order 1,2 then 2,1, ... so drift on a shared machine hits both alike.  Torch threads per worker
are the CLI's default (1 per worker on a 2-core machine).

Printed per configuration: wall time, VOD-hours per wall-hour (VOD time / wall time: the
batch's throughput) and the per-VOD scan time (mean and median of the `scan_s` each VOD's
manifest record holds: decode + score, without reel and report).  Then the throughput gain of 2
workers over 1, the slowdown of one VOD's scan with 2 workers, and the verdict.  The rule: two
workers pay only if their throughput gain exceeds what the slowdown costs, i.e. if VOD-hours
per wall-hour with 2 / with 1 > 1 (two scans at once, each k times slower, give about 2/k).

Usage: python benchmarks/batch.py [--vods 4] [--seconds 60] [--rounds 2] [--engine local|ray]
The issue-18 run: python benchmarks/batch.py --vods 20 --seconds 300 --rounds 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autotosis.cli.workflows import default_workers  # noqa: E402
from autotosis.media import tools  # noqa: E402
from autotosis.workflows.batch import MANIFEST_NAME, Manifest  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "batch"
CAM = "0.75,0.0,1.0,0.3"


def make_vods(count: int, seconds: int, folder: Path) -> list[Path]:
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
                tools._url(base.with_name(".base-20s.part.mp4")),
            ],
            what="making the base clip",
        )
        base.with_name(".base-20s.part.mp4").replace(base)
    vods = []
    loops = seconds // 20 + 1
    for index in range(count):
        vod = folder / f"vod {index + 1} ({seconds}s).mp4"
        if not vod.exists():
            part = vod.with_name(f".{vod.name}.part.mp4")  # a run killed mid-copy leaves no short VOD behind
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
                    "-metadata",
                    f"title=benchmark VOD {index + 1}",  # its own bytes, not a copy of the others
                    tools._url(part),
                ],
                what="looping the base clip",
            )
            part.replace(vod)
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


@dataclass(frozen=True)
class Run:
    round: int
    workers: int
    wall_s: float
    scan_s: tuple[float, ...]  # each VOD's scan, from its manifest record
    job_s: tuple[float, ...]  # each VOD's whole job (scan, events, reel, report)


def run_batch(vods: list[Path], model: Path, out: Path, workers: int, engine: str, env: dict) -> tuple[float, dict]:
    """Wall seconds of one whole `autotosis batch` and the last manifest record of each VOD."""
    shutil.rmtree(out, ignore_errors=True)
    argv = [
        sys.executable,
        "-m",
        "autotosis",
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
    wall = time.perf_counter() - began
    records, _ = Manifest(out / MANIFEST_NAME).latest()
    return wall, records


def collect(round_index: int, workers: int, wall: float, records: dict, vods: list[Path]) -> Run:
    by_name = {Path(source).name: record for source, record in records.items()}  # however the batch spelled the path
    scans, jobs = [], []
    for vod in vods:
        record = by_name.get(vod.name)
        if record is None or record.get("state") != "done" or record.get("scan_s") is None:
            raise SystemExit(f"{vod}: no finished scan in the manifest ({record}); is this checkout's batch too old?")
        scans.append(float(record["scan_s"]))
        jobs.append(float(record["elapsed_s"]))
    return Run(round_index + 1, workers, wall, tuple(scans), tuple(jobs))


def plural(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ' '}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vods", type=int, default=4, help="VODs in the batch (default: 4)")
    parser.add_argument("--seconds", type=int, default=60, help="length of each VOD (default: 60)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, 1 or more (default: 2)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help="(default: local)")
    args = parser.parse_args()
    if args.vods < 1 or args.seconds < 1 or args.rounds < 1:
        parser.error("--vods, --seconds and --rounds must be at least 1")

    vods = make_vods(args.vods, args.seconds, OUT / "vods")
    vod_hours = args.vods * args.seconds / 3600
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="autotosis-bench-batch-") as tmp:
        model = make_model(Path(tmp) / "model.pt")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),  # this checkout
            "AUTOTOSIS_CACHE": str(Path(tmp) / "cache"),
            "RAY_DISABLE_USAGE_STATS": "1",
        }
        for round_index in range(args.rounds):
            for workers in (1, 2) if round_index % 2 == 0 else (2, 1):
                out = Path(tmp) / f"out-{workers}"
                wall, records = run_batch(vods, model, out, workers, args.engine, env)
                run = collect(round_index, workers, wall, records, vods)
                runs.append(run)
                print(
                    f"round {run.round}: {plural(workers)}  {wall:7.1f} s wall  "
                    f"{vod_hours * 3600 / wall:5.2f} VOD-h/wall-h  "
                    f"scan per VOD median {statistics.median(run.scan_s):6.1f} s",
                    flush=True,
                )

    cpus = os.cpu_count() or 1
    print(
        f"\n{platform.processor() or platform.machine()}, {cpus} CPUs, engine {args.engine}; "
        f"{args.vods} VODs x {args.seconds} s 720p30 H.264 ({vod_hours:.2f} VOD-hours), "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} each"
    )
    summary = {}
    for workers in (1, 2):
        mine = [r for r in runs if r.workers == workers]
        wall = statistics.mean(r.wall_s for r in mine)
        scans = [s for r in mine for s in r.scan_s]
        jobs = [s for r in mine for s in r.job_s]
        summary[workers] = {
            "wall_s": wall,
            "vod_hours_per_wall_hour": vod_hours * 3600 / wall,
            "scan_mean_s": statistics.mean(scans),
            "scan_median_s": statistics.median(scans),
            "job_mean_s": statistics.mean(jobs),
        }
        row = summary[workers]
        print(
            f"{plural(workers)} (default --threads): wall {wall:7.1f} s (mean)  "
            f"{row['vod_hours_per_wall_hour']:5.2f} VOD-hours per wall-hour  "
            f"scan per VOD mean {row['scan_mean_s']:6.1f} s, median {row['scan_median_s']:6.1f} s  "
            f"(whole job per VOD mean {row['job_mean_s']:6.1f} s)"
        )
    gain = summary[2]["vod_hours_per_wall_hour"] / summary[1]["vod_hours_per_wall_hour"]
    slowdown = summary[2]["scan_median_s"] / summary[1]["scan_median_s"]
    slowdown_mean = summary[2]["scan_mean_s"] / summary[1]["scan_mean_s"]
    better = 2 if gain > 1 else 1
    print(f"throughput gain, 2 workers / 1 (VOD-hours per wall-hour): {gain:.2f}x")
    print(
        f"scan slowdown of one VOD with 2 workers (per-VOD scan time, 2 / 1): {slowdown:.2f}x median, "
        f"{slowdown_mean:.2f}x mean (break-even about 2x: two scans at once, each k times slower, give ~2/k)"
    )
    print("rule: 2 workers pay only if their throughput gain exceeds the slowdown's cost, i.e. gain 2/1 > 1.00x")
    verdict = "2 workers pay" if better == 2 else "2 workers do not pay"
    print(
        f"verdict: {verdict} -> better default here: --workers {better} "
        f"(the CLI's default on this machine: --workers {default_workers(cpus)})"
    )

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = OUT / f"results-{stamp}.json"
    results.write_text(
        json.dumps(
            {
                "args": vars(args),
                "cpus": cpus,
                "runs": [asdict(r) for r in runs],
                "summary": summary,
                "gain": gain,
                "scan_slowdown_median": slowdown,
                "scan_slowdown_mean": slowdown_mean,
                "better_workers": better,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"raw times: {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
