"""ONNX export: the exported graph gives the torch model's probabilities, and scan can run it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.media import decode
from autotosis.model.model import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    ModelInfo,
    build_model,
    load_checkpoint,
    predict_probs,
    save_checkpoint,
    to_input_tensor,
)

pytestmark = [pytest.mark.torch, pytest.mark.media]

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from autotosis.model.onnx_backend import INFO_KEY  # noqa: E402
from autotosis.model.predictor import OnnxPredictor  # noqa: E402

SIZE = 64
CROP = (0.25, 0.0, 1.0, 0.75)


def make_checkpoint(
    path: Path,
    classes: tuple[str, ...],
    seed: int = 0,
    spread_on: np.ndarray | None = None,
    balance_colour: bool = False,
) -> Path:
    """A random ResNet18.  With ``spread_on`` frames, its head is set so that their logits spread
    (std 3) around 0: probabilities then cover 0..1 and parity is not met by near-constant outputs.
    """
    torch.manual_seed(seed)
    model = build_model(len(classes))
    info = ModelInfo(
        task="rage",
        classes=classes,
        input_size=SIZE,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=CROP,
        threshold=0.7,
        train_args={"seed": seed},
        metrics={"f1": 0.5},
        epoch=3,
        balance_colour=balance_colour,
    )
    if spread_on is not None:
        model.eval()
        head, model.fc = model.fc, torch.nn.Identity()
        with torch.no_grad():
            features = model(to_input_tensor(spread_on, info))
            logits = features @ head.weight.T
            head.weight.mul_(3.0 / logits.std(dim=0).clamp_min(1e-6)[:, None])
            head.bias.copy_(-(features @ head.weight.T).mean(dim=0))
        model.fc = head
    save_checkpoint(path, model, info)
    return path


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def generated_frames(video: Path) -> np.ndarray:
    """Frames the way scan sees them (crop + scale in ffmpeg), plus plain noise."""
    spec = decode.DecodeSpec(size=SIZE, fps=5.0, region=CROP)
    decoded = np.concatenate([b.frames for b in decode.iter_frames(video, spec)])
    noise = np.random.default_rng(1).integers(0, 256, size=(17, SIZE, SIZE, 3), dtype=np.uint8)
    return np.concatenate([decoded, noise])


@pytest.mark.parametrize(
    ("classes", "balance_colour"),
    [(("background", "rage"), False), (("background", "rage", "pog"), False), (("background", "rage"), True)],
)
def test_exported_model_matches_torch(tmp_path: Path, video_factory, classes, balance_colour):
    frames = generated_frames(video_factory("src.mp4", duration=3, size="320x180", source="testsrc2"))
    checkpoint = make_checkpoint(tmp_path / "model.pt", classes, spread_on=frames, balance_colour=balance_colour)
    out = tmp_path / "out dir é" / "it's.onnx"
    assert run(["export-onnx", "--model", str(checkpoint), "-o", str(out)]) == 0

    model, info, _ = load_checkpoint(checkpoint)
    expected = predict_probs(model, frames, info)
    predictor = OnnxPredictor(out)
    got = predictor.predict(frames)
    assert got.shape == expected.shape == (len(frames), len(classes))
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    # The comparison means something only if the probabilities actually vary.
    assert np.ptp(expected[:, 1]) > 0.5
    # Batch size is dynamic: one frame at a time gives the same numbers.
    assert np.abs(predictor.predict(frames[:1]) - expected[:1]).max() < 1e-4

    # Metadata travels inside the file.
    assert predictor.info == info
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props[INFO_KEY])["classes"] == list(classes)
    assert props["task"] == "rage" and props["input_size"] == str(SIZE)


def test_export_refuses_to_overwrite_and_reports_bad_input(tmp_path: Path, capsys, video_factory):
    checkpoint = make_checkpoint(tmp_path / "model.pt", ("background", "rage"))
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    assert run(["export-onnx", "--model", str(checkpoint), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    assert out.read_bytes() == b"mine"
    assert (
        run(["export-onnx", "--model", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.onnx")])
        == ExitStatus.MODEL
    )
    assert not (tmp_path / "x.onnx").exists()
    # A .pt file is not an ONNX model: clear error, not a traceback.
    video = video_factory("vod.mp4", duration=1, size="64x36")
    assert run(["scan", str(video), "--model", str(checkpoint), "--backend", "onnx"]) == ExitStatus.MODEL
    assert "not a usable ONNX model" in capsys.readouterr().err


def test_missing_onnxruntime_names_the_pip_command(tmp_path: Path, monkeypatch, capsys):
    checkpoint = make_checkpoint(tmp_path / "model.pt", ("background", "rage"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import fails as if not installed
    assert run(["export-onnx", "--model", str(checkpoint), "-o", str(tmp_path / "m.onnx")]) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "onnx is not installed" in err and "pip install" in err
    assert not (tmp_path / "m.onnx").exists()


def test_scan_with_onnx_backend_gives_the_torch_scores(tmp_path: Path, video_factory, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    checkpoint = make_checkpoint(tmp_path / "model.pt", ("background", "rage"))
    exported = tmp_path / "model.onnx"
    assert run(["export-onnx", "--model", str(checkpoint), "-o", str(exported)]) == 0
    video = video_factory("vod.mp4", duration=4, size="256x144")
    assert run(["scan", str(video), "--model", str(checkpoint), "-o", str(tmp_path / "torch.json")]) == 0
    # The backend follows the file type; --backend onnx says the same explicitly.
    assert run(["scan", str(video), "--model", str(exported), "-o", str(tmp_path / "onnx.json")]) == 0
    assert (
        run(
            [
                "scan",
                str(video),
                "--model",
                str(exported),
                "--backend",
                "onnx",
                "--no-cache",
                "-o",
                str(tmp_path / "onnx2.json"),
            ]
        )
        == 0
    )
    by_torch = json.loads((tmp_path / "torch.json").read_text())
    for name in ("onnx.json", "onnx2.json"):
        by_onnx = json.loads((tmp_path / name).read_text())
        assert by_onnx["times_ms"] == by_torch["times_ms"] and len(by_torch["times_ms"]) == 8
        assert np.abs(np.array(by_onnx["scores"]["rage"]) - np.array(by_torch["scores"]["rage"])).max() < 1e-4
