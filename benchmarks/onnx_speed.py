"""Inference speed on this CPU: PyTorch vs onnxruntime on the same exported ResNet18.

Prints images/s for both and their ratio, measured in one run with the two backends
alternating batch by batch (so a busy neighbour or clock change hits both alike).

    .venv/bin/python benchmarks/onnx_speed.py [--model rage.pt] [--batch 32] [--rounds 20] [--threads N]

Without --model a randomly initialised 2-class model at 128x128 is used (speed does not
depend on the weights).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from autotosis.model.model import (  # noqa: E402
    DEFAULT_MEAN,
    DEFAULT_STD,
    ModelInfo,
    build_model,
    load_checkpoint,
    predict_probs,
    save_checkpoint,
)
from autotosis.model.onnx_backend import export_onnx  # noqa: E402
from autotosis.model.predictor import OnnxPredictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint (default: random 2-class model, 128x128)")
    parser.add_argument("--batch", type=int, default=32, help="frames per batch, as scan uses (default: 32)")
    parser.add_argument("--rounds", type=int, default=20, help="timed batches per backend (default: 20)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for both backends")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="autotosis-bench-onnx-") as tmp:
        checkpoint = args.model
        if checkpoint is None:
            checkpoint = Path(tmp) / "random.pt"
            torch.manual_seed(0)
            info = ModelInfo(
                task="bench",
                classes=("background", "bench"),
                input_size=128,
                mean=DEFAULT_MEAN,
                std=DEFAULT_STD,
                crop=None,
                threshold=0.5,
            )
            save_checkpoint(checkpoint, build_model(2), info)
        exported = Path(tmp) / "model.onnx"
        began = time.perf_counter()
        export_onnx(checkpoint, exported)
        export_s = time.perf_counter() - began
        model, info, _ = load_checkpoint(checkpoint)
        predictor = OnnxPredictor(exported, threads=args.threads)

        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, size=(args.batch, info.input_size, info.input_size, 3), dtype=np.uint8)
        for _ in range(2):  # warm-up: first calls allocate and pick kernels
            predict_probs(model, frames, info)
            predictor.predict(frames)
        spent = {"torch": 0.0, "onnxruntime": 0.0}
        worst = 0.0
        for _ in range(args.rounds):
            began = time.perf_counter()
            expected = predict_probs(model, frames, info)
            spent["torch"] += time.perf_counter() - began
            began = time.perf_counter()
            got = predictor.predict(frames)
            spent["onnxruntime"] += time.perf_counter() - began
            worst = max(worst, float(np.abs(got - expected).max()))

    images = args.batch * args.rounds
    rate = {name: images / seconds for name, seconds in spent.items()}
    print(
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads, "
        f"input {info.input_size}x{info.input_size}, batch {args.batch}, {args.rounds} rounds; "
        f"export took {export_s:.1f} s"
    )
    print(f"torch        {rate['torch']:8.1f} images/s")
    print(f"onnxruntime  {rate['onnxruntime']:8.1f} images/s")
    print(
        f"ratio onnxruntime / torch: {rate['onnxruntime'] / rate['torch']:.2f}x   "
        f"(max |p_onnx - p_torch| = {worst:.1e})"
    )


if __name__ == "__main__":
    main()
