#!/usr/bin/env python3
"""Training throughput and memory (issue 5): every number is measured in this one run.

Does the data pipeline keep up with the model?  For each setting this prints images/s of

  loop   the real training loop: train.train_one_epoch over a train.make_train_loader
         (class-balanced sampling from memory-mapped .npy shards, batch gathering, uint8 ->
         float, augmentation, normalisation, the cosine learning-rate schedule)
  bare   the bare model step on the same batch shape: one input tensor made once, then
         forward + loss + backward + optimizer step, nothing else

and their ratio loop/bare (the target is >= 0.9).  The two are timed alternately (bare,
loop, bare, loop, ...) and the medians compared, so the drift of a shared machine hits
both alike.  Beside wall-clock images/s it prints the same ratio in images per CPU-second
of the process (all threads): on a machine shared with other work, wall-clock time also
counts waiting for the CPU, while CPU time counts only the work done.  Last, on one thread
and in CPU time (robust to other load): the data work of one batch (sampling, reading from
the shards, augmentation, normalisation) against one bare model step, the share of the
work the loop spends on data if nothing overlapped.

Settings: full fine-tuning and layer4+fc only (--freeze layer4), each under torch's normal
CPU kernels and under ATEN_CPU_CAPABILITY=default (no AVX2, like the original's i5-3570K);
every setting runs in its own subprocess, because the capability is read once when torch
starts.

Memory: 400k frames of 128x128 are 20 GB of shards, so they must not be held in RAM.
The benchmark builds training sets over the same shard files listed 1x, 10x and 100x
(100x = 409,600 frames in 3,200 shards, the real data set's scale for the index), runs
training steps on each and prints the process's anonymous memory (RssAnon: what cannot
be dropped) and its file-backed pages (RssFile: page cache of the memory-mapped shards,
which the kernel reclaims under pressure).  Anonymous memory staying flat as the data set
grows 100x is the evidence that 400k frames train in bounded RAM.

The shards are synthetic: a few thousand 128x128 RGB frames (noise; class 1 has a bright
corner) written as .npy files under benchmarks/out/train-shards (git-ignored), made once.

Usage: .venv/bin/python benchmarks/train.py [--frames 4096] [--steps 12] [--batch 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out"
SHARDS = OUT / "train-shards"
SIZE = 128
FRAMES_PER_SHARD = 128


# --------------------------------------------------------------------------- shards


def make_shards(frames: int):
    """Synthetic shards (made once) and a FrameSet describing them."""
    import numpy as np

    from autotosis.training.dataset import ClipFrames, FrameSet

    count = max(2, frames // FRAMES_PER_SHARD)
    SHARDS.mkdir(parents=True, exist_ok=True)
    clips = []
    for number in range(count):
        path = SHARDS / f"shard{number:04d}.npy"
        rng = np.random.default_rng(number)
        targets = (np.arange(FRAMES_PER_SHARD) % 4 == 0).astype(np.int64)  # 1 in 4 is a highlight
        if not path.exists():
            array = np.lib.format.open_memmap(
                path.with_suffix(".part.npy"), mode="w+", dtype=np.uint8, shape=(FRAMES_PER_SHARD, SIZE, SIZE, 3)
            )
            array[:] = rng.integers(20, 160, size=array.shape, dtype=np.uint8)
            array[targets == 1, :40, :40] = 240
            array.flush()
            del array
            os.replace(path.with_suffix(".part.npy"), path)
        times = np.arange(FRAMES_PER_SHARD, dtype=np.int64) * 250
        clips.append(ClipFrames(path.with_suffix(".mp4"), f"clip{number:04d}", path, times, targets))
    return FrameSet(task="bench", classes=("background", "bench"), size=SIZE, crop=None, clips=tuple(clips))


def repeated(frameset, times: int):
    """The same shard files listed ``times`` times, as if the data set were that much bigger."""
    from dataclasses import replace

    clips = [replace(c, clip_id=f"{c.clip_id}-{k}") for k in range(times) for c in frameset.clips]
    return replace(frameset, clips=tuple(clips))


def memory() -> dict[str, int]:
    """RssAnon and RssFile of this process, in MiB (Linux /proc)."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) // 1024
    return values


# --------------------------------------------------------------------------- one setting (child)


def child(freeze: str, frames: int, steps: int, batch: int, rounds: int) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, to_input_tensor
    from autotosis.training.train import (
        FrameDataset,
        TrainConfig,
        apply_freeze,
        make_augment,
        make_train_loader,
        schedule_lr,
        set_train_mode,
        train_one_epoch,
    )

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    frameset = make_shards(frames)
    config = TrainConfig(batch_size=batch, freeze=freeze, max_frames_per_epoch=batch * steps)
    info = ModelInfo(
        task="bench",
        classes=frameset.classes,
        input_size=SIZE,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=None,
        threshold=0.5,
    )
    model = build_model(2)
    apply_freeze(model, freeze)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    dataset = FrameDataset(frameset.clips, SIZE)

    def loop(seed: int) -> tuple[float, float]:
        """(images per wall second, images per CPU second)."""
        generator = torch.Generator().manual_seed(seed)
        loader = make_train_loader(dataset, config, 2, generator)
        cpu = time.process_time()
        _, images_per_s = train_one_epoch(
            model,
            optimizer,
            loader,
            info,
            freeze=freeze,
            augment=make_augment(torch.Generator().manual_seed(seed)),
            lr_at_step=lambda step: schedule_lr(1e-3, step, 10 * steps),
        )
        return images_per_s, batch * steps / (time.process_time() - cpu)

    fixed = to_input_tensor(np.random.default_rng(0).integers(0, 256, (batch, SIZE, SIZE, 3), dtype=np.uint8), info)
    targets = torch.from_numpy(np.arange(batch) % 2)

    def bare() -> tuple[float, float]:
        set_train_mode(model, freeze)
        began, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = F.cross_entropy(model(fixed), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return batch * steps / (time.perf_counter() - began), batch * steps / (time.process_time() - cpu)

    loop(999)  # warm-up: first-call allocations, oneDNN kernel choice, page cache
    bare()
    loops, bares = [], []
    for index in range(rounds):
        bares.append(bare())
        loops.append(loop(index))

    # One thread, CPU time: the data work of a batch against a model step.
    torch.set_num_threads(1)
    augment = make_augment(torch.Generator().manual_seed(5))
    batches = iter(make_train_loader(dataset, config, 2, torch.Generator().manual_seed(5)))
    cpu = time.process_time()
    for _ in range(steps):
        frames, _ = next(batches)
        to_input_tensor(frames, info, augment)
    data_ms = (time.process_time() - cpu) / steps * 1000
    cpu = time.process_time()
    bare()
    step_ms = (time.process_time() - cpu) / steps * 1000
    torch.set_num_threads(threads)

    # Memory at growing data-set sizes: anonymous memory must not follow the frame count.
    grown = []
    for times in (1, 10, 100):
        bigger = FrameDataset(repeated(frameset, times).clips, SIZE)
        loader = make_train_loader(bigger, config, 2, torch.Generator().manual_seed(times))
        train_one_epoch(model, optimizer, loader, info, freeze=freeze)
        grown.append({"frames": len(bigger), "shards": len(bigger.clips), **memory()})
        del bigger, loader

    return {
        "freeze": freeze,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "loop": statistics.median(w for w, _ in loops),
        "bare": statistics.median(w for w, _ in bares),
        "loop_cpu": statistics.median(c for _, c in loops),
        "bare_cpu": statistics.median(c for _, c in bares),
        "loops": [round(w, 2) for w, _ in loops],
        "bares": [round(w, 2) for w, _ in bares],
        "memory": grown,
        "data_ms": data_ms,
        "step_ms": step_ms,
    }


# --------------------------------------------------------------------------- parent


def run_child(freeze: str, capability: str | None, args) -> dict:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    argv = [
        sys.executable,
        __file__,
        "--child",
        freeze,
        "--frames",
        str(args.frames),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--rounds",
        str(args.rounds),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed ({freeze}, {capability or 'normal'}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4096, help="synthetic frames on disk (default: 4096)")
    parser.add_argument("--steps", type=int, default=12, help="training steps per timing (default: 12)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default: 32, train's default)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/loop timings per setting (default: 3)")
    parser.add_argument("--child", choices=("none", "layer4"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.frames, args.steps, args.batch, args.rounds)))
        return

    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.frames} frames of {SIZE}x{SIZE} in .npy shards, batch {args.batch}, "
        f"{args.steps} steps x {args.rounds} rounds"
    )
    print(
        f"{'setting':20} {'capability':>10} {'loop img/s':>11} {'bare img/s':>11} {'loop/bare':>10}"
        f" {'loop img/cpu-s':>15} {'bare img/cpu-s':>15} {'loop/bare (cpu)':>16}"
    )
    results = []
    for capability in (None, "default"):
        for freeze, name in (("none", "full fine-tuning"), ("layer4", "layer4 + fc only")):
            result = run_child(freeze, capability, args)
            results.append(result)
            ratio = result["loop"] / result["bare"]
            cpu_ratio = result["loop_cpu"] / result["bare_cpu"]
            print(
                f"{name:20} {result['capability']:>10} {result['loop']:11.1f} {result['bare']:11.1f} {ratio:10.2f}"
                f" {result['loop_cpu']:15.1f} {result['bare_cpu']:15.1f} {cpu_ratio:16.2f}",
                flush=True,
            )
    print(
        "\none thread, CPU time per batch: data work (sampling, reading, augmentation, normalisation) "
        "vs a bare model step"
    )
    print(f"{'setting':20} {'capability':>10} {'data ms':>9} {'step ms':>9} {'data share':>11}")
    for result, name in zip(results, ["full fine-tuning", "layer4 + fc only"] * 2):
        share = result["data_ms"] / (result["data_ms"] + result["step_ms"])
        print(f"{name:20} {result['capability']:>10} {result['data_ms']:9.1f} {result['step_ms']:9.1f} {share:11.1%}")
    print("\nmemory while training (full fine-tuning, normal kernels): the same shards listed 1x, 10x, 100x")
    print(f"{'frames':>9} {'shards':>7} {'RssAnon MiB':>12} {'RssFile MiB':>12}")
    for row in results[0]["memory"]:
        print(f"{row['frames']:9d} {row['shards']:7d} {row['RssAnon']:12d} {row['RssFile']:12d}")
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    print(
        "raw timings (img/s per round): "
        + json.dumps([{k: r[k] for k in ("freeze", "capability", "loops", "bares")} for r in results])
    )


if __name__ == "__main__":
    main()
