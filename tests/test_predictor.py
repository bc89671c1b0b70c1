"""One predictor for every command: torch and onnxruntime give the same probabilities, a model's
metadata is read without building the network, and the commands that score video take an .onnx model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import autotosis.model.model as model_module
from autotosis.cli import main
from autotosis.core.errors import ExitStatus, ModelError
from autotosis.media import probe
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
from autotosis.model.predictor import TorchPredictor, load_predictor, model_backend, read_model_info
from tests.conftest import constant_model, flash_clip

pytestmark = [pytest.mark.torch]

SIZE = 32
CROP = (0.5, 0.0, 1.0, 0.5)


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(not (has("onnx") and has("onnxruntime")), reason="onnx / onnxruntime not installed")


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def noise(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, SIZE, SIZE, 3), dtype=np.uint8)


def spread_checkpoint(path: Path, classes=("background", "rage"), seed: int = 0) -> Path:
    """A random ResNet18 (``--weights none``) whose head spreads the logits of noise frames, so
    probabilities cover 0..1 and parity is not met by near-constant outputs."""
    torch.manual_seed(seed)
    model = build_model(len(classes))
    info = ModelInfo(
        task="rage",
        classes=tuple(classes),
        input_size=SIZE,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=CROP,
        threshold=0.6,
        train_args={"seed": seed},
        metrics={"f1": 0.5},
        epoch=2,
    )
    model.eval()
    head, model.fc = model.fc, torch.nn.Identity()
    with torch.no_grad():
        features = model(to_input_tensor(noise(64, seed=7), info))
        head.weight.mul_(3.0 / (features @ head.weight.T).std(dim=0).clamp_min(1e-6)[:, None])
        head.bias.copy_(-(features @ head.weight.T).mean(dim=0))
    model.fc = head
    save_checkpoint(path, model, info)
    return path


def export(checkpoint: Path, out: Path) -> Path:
    assert run(["-q", "export-onnx", "--model", str(checkpoint), "-o", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- the predictors


def test_torch_predictor_gives_predict_probs_exactly(tmp_path: Path):
    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    predictor = load_predictor(checkpoint, "torch")
    assert isinstance(predictor, TorchPredictor) and predictor.backend == "torch"
    model, info, _ = load_checkpoint(checkpoint)
    frames = noise(40)
    assert predictor.info == info
    assert np.array_equal(predictor.predict(frames), predict_probs(model, frames, info))
    assert predictor.predict(frames[:0]).shape == (0, 2)


@needs_onnx
@pytest.mark.parametrize("classes", [("background", "rage"), ("background", "rage", "pog")])
def test_torch_and_onnx_predictors_agree(tmp_path: Path, classes):
    checkpoint = spread_checkpoint(tmp_path / "m.pt", classes)
    exported = export(checkpoint, tmp_path / "m.onnx")
    by_torch, by_onnx = load_predictor(checkpoint, "torch"), load_predictor(exported)
    assert (by_torch.backend, by_onnx.backend) == ("torch", "onnx")
    assert by_onnx.info == by_torch.info
    frames = noise(300)  # more than one onnxruntime chunk of 256
    expected, got = by_torch.predict(frames), by_onnx.predict(frames)
    assert got.shape == expected.shape == (300, len(classes)) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    assert np.ptp(expected[:, 1]) > 0.5  # the comparison means something only if the probabilities vary
    # The backend goes by the file's content first: an export under another name is still ONNX.
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(exported.read_bytes())
    assert model_backend(renamed) == "onnx" and model_backend(checkpoint) == "torch"
    assert np.abs(load_predictor(renamed).predict(frames[:5]) - expected[:5]).max() < 1e-4
    # --backend onnx on a torch checkpoint is a clear model error.
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        load_predictor(checkpoint, "onnx")


# --------------------------------------------------------------------------- a checkpoint in onnxruntime


@needs_onnx
def test_a_checkpoint_runs_in_onnxruntime_through_an_export_made_once(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    predictor = load_predictor(checkpoint)
    assert predictor.backend == "onnx" and predictor.info == load_checkpoint(checkpoint)[1]
    frames = noise(50)
    expected = load_predictor(checkpoint, "torch").predict(frames)
    assert np.abs(predictor.predict(frames) - expected).max() < 1e-4 and np.ptp(expected[:, 1]) > 0.5
    (export,) = (tmp_path / "cache" / "models").iterdir()
    made = export.stat().st_mtime_ns
    assert load_predictor(checkpoint).backend == "onnx" and export.stat().st_mtime_ns == made  # not made again
    # A damaged cache entry is made again; a retrained checkpoint (other bytes) gets an export of its own.
    export.write_bytes(b"cut short")
    assert np.abs(load_predictor(checkpoint).predict(frames) - expected).max() < 1e-4
    checkpoint.unlink()
    spread_checkpoint(checkpoint, seed=1)
    retrained = load_predictor(checkpoint)
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 2
    assert np.abs(retrained.predict(frames) - load_predictor(checkpoint, "torch").predict(frames)).max() < 1e-4


@needs_onnx
def test_a_checkpoint_runs_in_torch_where_the_export_cannot_be_made(tmp_path: Path, monkeypatch):
    from autotosis.model import onnx_backend

    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    checkpoint = spread_checkpoint(tmp_path / "m.pt")

    def broken_exporter(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_backend, "export_onnx", broken_exporter)
    assert load_predictor(checkpoint).backend == "torch"
    monkeypatch.setattr(onnx_backend, "available", lambda: False)  # onnxruntime not installed
    assert load_predictor(checkpoint).backend == "torch"
    # A file that is no checkpoint fails with torch's reasons, not with the exporter's.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.undo()
    with pytest.raises(ModelError, match="not an autotosis checkpoint"):
        load_predictor(bad)


@needs_onnx
def test_scanning_with_a_checkpoint_never_loads_torch(tmp_path: Path):
    """The scanning process stays torch-free (about half its memory): metadata read without torch, the export
    made in a child process, the frames scored by onnxruntime; the scores are torch's."""
    import subprocess

    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    video = flash_clip(tmp_path / "clip.mp4", 4, [(1, 2)])
    script = (
        "import json, sys\n"
        "from autotosis.cli import main\n"
        "status = main(['-q', '--progress', 'none', 'scan', sys.argv[1], '--model', sys.argv[2], '-o', sys.argv[3]])\n"
        "print(json.dumps({'status': status, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {**__import__("os").environ, "AUTOTOSIS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(video), str(checkpoint), str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 0, "torch": False}
    assert len(list((tmp_path / "cache" / "models").glob("*.onnx"))) == 1
    assert (
        run(
            [
                "scan",
                str(video),
                "--model",
                str(checkpoint),
                "--backend",
                "torch",
                "--no-cache",
                "-o",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    by_onnx, by_torch = (json.loads((tmp_path / name).read_text()) for name in ("s.json", "t.json"))
    assert by_onnx["times_ms"] == by_torch["times_ms"]
    assert np.abs(np.array(by_onnx["scores"]["rage"]) - np.array(by_torch["scores"]["rage"])).max() < 1e-4


def test_read_model_info_reads_a_checkpoint_without_torch_and_refuses_foreign_objects(tmp_path: Path):
    import os
    import subprocess

    from autotosis.model.info import peek_checkpoint

    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    script = (
        "import sys\n"
        "from autotosis.model.predictor import read_model_info\n"
        "info = read_model_info(sys.argv[1])\n"
        "print(info.task, info.classes, info.threshold, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(checkpoint)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rage", "('background',", "'rage')", "0.6", "False"]
    # Any global that is not torch's or an OrderedDict is refused (unpickling it could run code): torch.load
    # then says why, and it refuses too.
    raw = torch.load(checkpoint, weights_only=True)
    raw["extra"] = os.system  # pickled by name: a loader that resolves it could be made to call it
    foreign = tmp_path / "foreign.pt"
    torch.save(raw, foreign)
    assert peek_checkpoint(foreign) is None and peek_checkpoint(checkpoint)["format"] == raw["format"]
    with pytest.raises(ModelError, match="not loaded, for safety"):
        read_model_info(foreign)


# --------------------------------------------------------------------------- metadata without the network


def _no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("read_model_info built a ResNet")

    monkeypatch.setattr(model_module, "build_model", refuse)
    monkeypatch.setattr(model_module, "_bare_resnet18", refuse)
    monkeypatch.setattr(model_module.torchvision.models, "resnet18", refuse)


def test_read_model_info_does_not_build_the_network(tmp_path: Path, monkeypatch):
    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    expected = load_checkpoint(checkpoint)[1]
    _no_network(monkeypatch)
    assert read_model_info(checkpoint) == expected
    assert read_model_info(str(checkpoint), expect_task="rage") == expected
    with pytest.raises(ModelError, match="trained for task 'rage', not 'pog'"):
        read_model_info(checkpoint, expect_task="pog")
    with pytest.raises(ModelError, match="no such checkpoint"):
        read_model_info(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 50)
    with pytest.raises(ModelError, match="not an autotosis checkpoint"):
        read_model_info(garbage)
    # Checked as load_checkpoint checks: a checkpoint without weights is refused here too.
    raw = torch.load(checkpoint, weights_only=True)
    del raw["state_dict"]
    torch.save(raw, tmp_path / "empty.pt")
    with pytest.raises(ModelError, match="has no weights"):
        read_model_info(tmp_path / "empty.pt")


@needs_onnx
def test_read_model_info_of_an_onnx_file_needs_neither_onnx_nor_the_network(tmp_path: Path, monkeypatch):
    checkpoint = spread_checkpoint(tmp_path / "m.pt", ("background", "rage", "pog"))
    exported = export(checkpoint, tmp_path / "m.onnx")
    expected = load_checkpoint(checkpoint)[1]
    assert load_predictor(exported).info == expected
    _no_network(monkeypatch)
    monkeypatch.setitem(sys.modules, "onnx", None)  # imports fail as if not installed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert read_model_info(exported) == expected
    # A damaged file is one clear model error.
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(exported.read_bytes()[:1000])
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        read_model_info(cut)
    with pytest.raises(ModelError, match="no such ONNX file"):
        read_model_info(tmp_path / "missing.onnx")


def test_commands_that_need_the_network_refuse_an_onnx_file(tmp_path: Path, capsys):
    fake = tmp_path / "m.onnx"
    fake.write_bytes(b"\x08\x07\x12\x07pytorch")  # what an ONNX file starts with
    for argv in (
        ["explain", str(tmp_path / "x.png"), "--model", str(fake)],
        ["export-onnx", "--model", str(fake), "-o", str(tmp_path / "again.onnx")],
    ):
        assert run(argv) == ExitStatus.MODEL
        err = capsys.readouterr().err
        assert "is an ONNX model (from `autotosis export-onnx`); this command needs the .pt checkpoint" in err
    with pytest.raises(ModelError, match="is an ONNX model"):
        load_checkpoint(fake)


# --------------------------------------------------------------------------- the commands take .onnx


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return flash_clip(tmp_path_factory.mktemp("clip") / "vod é.mp4", 4, [(1, 2.5)], audio=True)


@needs_onnx
@pytest.mark.media
def test_reel_takes_an_onnx_model(tmp_path: Path, clip: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    checkpoint = spread_checkpoint(tmp_path / "m.pt")
    exported = export(checkpoint, tmp_path / "m.onnx")
    options = ["--top-k", "1", "--top-percent", "25", "--pad-before", "0", "--pad-after", "0", "--size", "96x54"]
    lengths = []
    for model in (checkpoint, exported):
        out = tmp_path / f"reel-{model.suffix[1:]}.mp4"
        assert run(["-q", "reel", str(clip), "--model", str(model), "-o", str(out), *options]) == 0
        lengths.append(probe.stream_durations(out).video_ms)
    assert lengths[0] > 0 and abs(lengths[0] - lengths[1]) <= 100


@needs_onnx
@pytest.mark.media
def test_eval_takes_an_onnx_model(tmp_path: Path, clip: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    labels = tmp_path / "rage.txt"
    labels.write_text(f'# default crop=0.5,0,1,0.5\n"{clip}"  1-2.5\n', encoding="utf-8")
    checkpoint = constant_model(tmp_path / "always.pt", 8.0)
    exported = export(checkpoint, tmp_path / "always.onnx")
    reports = []
    for model in (checkpoint, exported):
        out = tmp_path / f"eval-{model.suffix[1:]}.json"
        assert run(["-q", "eval", str(labels), "--model", str(model), "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report.pop("model") == str(model)
        reports.append(report)
    assert reports[0] == reports[1]
    assert reports[0]["reports"][0]["frame"]["fn"] == 0


@needs_onnx
@pytest.mark.media
@pytest.mark.slow
def test_batch_takes_an_onnx_model(tmp_path: Path, clip: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    exported = export(constant_model(tmp_path / "always.pt", 8.0), tmp_path / "always.onnx")
    out = tmp_path / "out"
    assert (
        run(
            [
                "-q",
                "batch",
                str(clip),
                "--model",
                str(exported),
                "--out",
                str(out),
                "--workers",
                "1",
                "--threads",
                "1",
                "--threshold",
                "0.5",
                "--pad-before",
                "0",
                "--pad-after",
                "0",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    done = [r for r in records if r.get("state") == "done" and r.get("kind") != "best_of"]
    assert len(done) == 1 and done[0]["events"] == 1
    scores = json.loads(next(out.rglob("scores.json")).read_text())
    assert scores["classes"] == ["background", "rage"] and min(scores["scores"]["rage"]) > 0.99
