"""The classifier outside PyTorch: export a checkpoint to ONNX (run it with ``predictor.OnnxPredictor``).

Commands never care which runtime is behind a model: ``predictor.load_predictor`` picks
torch or onnxruntime for a model file, and every command that scores video uses it.

The exported graph takes what the decoder produces -- uint8 RGB frames, (N, H, W, 3) --
and returns softmax probabilities, (N, C): scaling, normalisation and softmax are inside
the graph, written with the same operations in the same order as
``model.to_input_tensor`` + ``model.predict_probs``, so the two backends agree to ~1e-6.
The checkpoint's ``ModelInfo`` travels in the ONNX ``metadata_props`` (one JSON value),
so an .onnx file is as self-describing as a .pt one.

onnx and onnxruntime are an optional extra (``pip install 'autotosis[onnx]'``); they are
imported only when used, and their absence is one clear error naming the pip command.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import tempfile
import warnings
from pathlib import Path

from autotosis.core.errors import ModelError, UsageError
from autotosis.core.fsutil import cache_root
from autotosis.model.info import ModelInfo, model_fingerprint

INFO_KEY = "autotosis.model_info"
INPUT_NAME = "frames"
OUTPUT_NAME = "probs"
OPSET = 17
INSTALL_HINT = "install it with: pip install 'autotosis[onnx]'"
# Bump when the exported graph changes: exports cached by an older revision are made again.
EXPORT_REVISION = 1
# Run in a child process when this one has no torch: the export needs torch, scanning with the
# export does not, and importing torch would cost the scanning process half a gigabyte for good.
_EXPORT_CHILD = (
    "import sys\n"
    "from pathlib import Path\n"
    "from autotosis.core.errors import AutotosisError\n"
    "from autotosis.model.onnx_backend import export_onnx\n"
    "try:\n"
    "    export_onnx(Path(sys.argv[1]), Path(sys.argv[2]), force=True)\n"
    "except AutotosisError as exc:\n"
    "    sys.exit(str(exc))\n"
)


def require(module: str):
    """Import an optional dependency or raise one clear error naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"{module} is not installed (needed for ONNX export and the onnx backend)", hint=INSTALL_HINT
        ) from None


def available() -> bool:
    """Whether onnx (to export) and onnxruntime (to run) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def cached_export(checkpoint: Path, folder: Path | None = None) -> Path:
    """The ONNX export of ``checkpoint`` in the model cache (``folder``, default: <cache>/models), made when
    missing.  Named by the checkpoint's content, so a retrained model never meets a stale export; made in
    this process when torch is already loaded here (train), else in a child process."""
    checkpoint = Path(checkpoint)
    folder = Path(folder) if folder is not None else cache_root() / "models"
    try:
        out = folder / f"{model_fingerprint(checkpoint)}-r{EXPORT_REVISION}.onnx"
    except OSError as exc:
        raise ModelError(f"{checkpoint}: cannot read the checkpoint ({exc.strerror or exc})") from exc
    if out.is_file():
        return out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot make the model cache folder ({exc.strerror or exc})") from exc
    if "torch" in sys.modules:
        try:
            export_onnx(checkpoint, out, force=True)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - the exporter's own failures: the caller runs the checkpoint in torch
            raise ModelError(f"{checkpoint}: ONNX export failed ({type(exc).__name__}: {exc})") from exc
        return out
    from autotosis.media.tools import run_python

    status, stderr = run_python(_EXPORT_CHILD, [str(checkpoint), str(out)])
    if status != 0 or not out.is_file():
        lines = stderr.strip().splitlines()
        raise ModelError(f"{checkpoint}: ONNX export failed ({lines[-1] if lines else f'status {status}'})")
    return out


def _wrapped(model, info: ModelInfo):
    """The checkpoint's ResNet18 with preprocessing in front and softmax behind."""
    import torch

    from autotosis.model.model import balanced_colour

    class FramesToProbs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model
            self.register_buffer("mean", torch.tensor(info.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(info.std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            # Same steps as model.to_input_tensor, so the float rounding matches too.
            unit = frames.permute(0, 3, 1, 2).float() / 255.0
            if info.balance_colour:
                unit = balanced_colour(unit)
            return torch.softmax(self.net((unit - self.mean) / self.std), dim=1)

    return FramesToProbs().eval()


def export_onnx(checkpoint: Path, out: Path, *, force: bool = False) -> ModelInfo:
    """Write ``checkpoint`` as an ONNX file at ``out`` (atomically); return its metadata."""
    import torch

    from autotosis.core.fsutil import atomic_path, check_writable
    from autotosis.model.model import load_checkpoint

    onnx = require("onnx")
    out = Path(out)
    check_writable(out, force)
    model, info, _ = load_checkpoint(Path(checkpoint))
    wrapped = _wrapped(model.to(memory_format=torch.contiguous_format), info)
    example = torch.zeros((2, info.input_size, info.input_size, 3), dtype=torch.uint8)
    with tempfile.TemporaryDirectory(prefix="autotosis-onnx-") as tmp:
        raw = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            # The TorchScript exporter (dynamo=False) is deprecated but needs no onnxscript,
            # and handles this plain CNN exactly; the pinned torch still ships it.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                str(raw),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        proto = onnx.load(str(raw))
    proto.doc_string = (
        f"autotosis classifier for task {info.task!r}: input {INPUT_NAME} uint8 RGB (N, {info.input_size}, "
        f"{info.input_size}, 3), output {OUTPUT_NAME} softmax over {list(info.classes)}"
    )
    _set_metadata(
        proto,
        {
            INFO_KEY: json.dumps(info.to_dict(), sort_keys=True),
            "task": info.task,
            "classes": json.dumps(list(info.classes)),
            "input_size": str(info.input_size),
        },
    )
    onnx.checker.check_model(proto)
    with atomic_path(out, force=force) as tmp_out:
        onnx.save(proto, str(tmp_out))
    return info


def _set_metadata(proto, values: dict[str, str]) -> None:
    kept = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def info_from_metadata(metadata: dict[str, str], path: Path) -> ModelInfo:
    text = metadata.get(INFO_KEY)
    if text is None:
        raise ModelError(f"{path}: ONNX file has no autotosis metadata", hint="make it with `autotosis export-onnx`")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: autotosis metadata in the ONNX file is not JSON ({exc})") from exc
    return ModelInfo.from_dict(data, path)
