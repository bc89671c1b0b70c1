"""The one way commands run a model on frames: a ``Predictor``, whichever runtime is behind it.

Every command that scores video with ``--model`` (scan, reel, batch, shorts, stills, live,
report, eval, review) calls ``load_predictor(path)`` -- directly or through
``scan.scan_video`` -- and so takes a torch checkpoint (.pt, from ``autotosis train``) or
an ONNX export (.onnx, from ``autotosis export-onnx``) alike.  Which one a file is goes by
its content (a torch zip/pickle or an ONNX protobuf), and by its suffix when the content
says neither.  A checkpoint runs in onnxruntime too where it is installed (its export is made
once and cached): a process that scores video then never imports torch.  Commands that need
the trainable network itself -- train --weights/--resume, explain (gradients), export-onnx
(its input) -- use ``model.load_checkpoint``, which
refuses an .onnx file with a message saying so.

``read_model_info(path)`` reads a model's metadata without building the network: the
checkpoint dict's ``info`` part (without torch: ``info.peek_checkpoint``), or the JSON the
export stored in the ONNX ``metadata_props`` (read from the protobuf directly: neither onnx
nor onnxruntime needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from autotosis.core.errors import DataError, ModelError, UsageError

if TYPE_CHECKING:  # torch is imported when a model is used, not with this module
    from autotosis.model.info import ModelInfo

BACKENDS = ("torch", "onnx")
_ONNX_PREDICT_CHUNK = 256  # frames per run, as in model.predict_probs: bounds memory for big batches


class Predictor(Protocol):
    """What scoring needs from a model: its metadata and uint8 NHWC RGB frames -> float32 (N, C) probabilities."""

    info: ModelInfo

    def predict(self, frames: np.ndarray) -> np.ndarray: ...


class TorchPredictor:
    """A torch checkpoint's ResNet (``model.predict_probs``)."""

    backend = "torch"
    info: ModelInfo

    def __init__(self, model, info: ModelInfo, path: Path | None = None) -> None:
        self.model, self.info, self.path = model, info, path

    @classmethod
    def load(cls, path: Path | str) -> TorchPredictor:
        from autotosis.model.model import load_checkpoint

        model, info, _ = load_checkpoint(Path(path))
        return cls(model, info, Path(path))

    def predict(self, frames: np.ndarray) -> np.ndarray:
        from autotosis.model.model import predict_probs

        return predict_probs(self.model, frames, self.info)


class OnnxPredictor:
    """Softmax probabilities from an exported .onnx file with onnxruntime, as ``model.predict_probs`` gives them.

    ``threads``: onnxruntime's intra-op threads (None: its default, every core).
    """

    backend = "onnx"
    info: ModelInfo

    def __init__(self, path: Path | str, *, threads: int | None = None) -> None:
        from autotosis.model.onnx_backend import INPUT_NAME, info_from_metadata, require

        ort = require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such ONNX file", hint="make one with `autotosis export-onnx`")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path}: not a usable ONNX model ({first})") from exc
        self.info = info_from_metadata(dict(self._session.get_modelmeta().custom_metadata_map), self.path)
        inputs = {i.name for i in self._session.get_inputs()}
        if INPUT_NAME not in inputs:
            raise ModelError(
                f"{self.path}: ONNX model has no {INPUT_NAME!r} input", hint="make it with `autotosis export-onnx`"
            )

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB frames -> float32 (N, C) probabilities."""
        from autotosis.model.onnx_backend import INPUT_NAME, OUTPUT_NAME

        frames = np.asarray(frames)
        size = self.info.input_size
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
            raise DataError(f"frames must be uint8 (N, {size}, {size}, 3), got {frames.dtype} {tuple(frames.shape)}")
        if len(frames) == 0:
            return np.zeros((0, len(self.info.classes)), dtype=np.float32)
        parts = [
            self._session.run(
                [OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(frames[start : start + _ONNX_PREDICT_CHUNK])}
            )[0]
            for start in range(0, len(frames), _ONNX_PREDICT_CHUNK)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


def model_backend(path: Path | str) -> str:
    """ "onnx" for an ONNX file (by content, else by suffix), "torch" otherwise."""
    from autotosis.model.info import is_onnx_file

    return "onnx" if is_onnx_file(Path(path)) else "torch"


def load_predictor(
    path: Path | str, backend: str | None = None, *, threads: int | None = None
) -> TorchPredictor | OnnxPredictor:
    """A predictor for the model file at ``path``.

    ``backend``: "torch" (a checkpoint in PyTorch), "onnx" (an ONNX file in onnxruntime), or None to go
    by the file: an ONNX file runs in onnxruntime, and so does a torch checkpoint when onnx and
    onnxruntime are installed, through its export in the model cache (``onnx_backend.cached_export``,
    made once per checkpoint): the same probabilities (to ~1e-6), faster, and without torch in this
    process (half the memory of a scan).  Where the export cannot be made the checkpoint runs in torch.
    ``threads``: onnxruntime's intra-op threads; torch's are process-wide, set by the caller.
    """
    from autotosis.model import onnx_backend

    path = Path(path)
    if backend not in (None, *BACKENDS):
        raise UsageError(f"unknown backend {backend!r} ({' or '.join(BACKENDS)})")
    if backend == "torch":
        return TorchPredictor.load(path)
    if backend == "onnx" or model_backend(path) == "onnx":
        return OnnxPredictor(path, threads=threads)
    if not onnx_backend.available():
        return TorchPredictor.load(path)
    read_model_info(path)  # a checkpoint that cannot load fails here, for its own reasons
    try:
        return _cached_onnx_predictor(path, threads)
    except ModelError:
        return TorchPredictor.load(path)


def _cached_onnx_predictor(checkpoint: Path, threads: int | None) -> OnnxPredictor:
    from autotosis.model.onnx_backend import cached_export

    export = cached_export(checkpoint)
    try:
        return OnnxPredictor(export, threads=threads)
    except ModelError:  # a damaged cache entry (a disk that filled up, a copy cut short): made again, once
        export.unlink(missing_ok=True)
        return OnnxPredictor(cached_export(checkpoint), threads=threads)


def read_model_info(path: Path | str, *, expect_task: str | None = None) -> ModelInfo:
    """The metadata of the model file at ``path`` (.pt or .onnx), checked as loading checks it, without
    building the network."""
    path = Path(path)
    if model_backend(path) == "torch":
        from autotosis.model.info import checked_info, peek_checkpoint

        raw = peek_checkpoint(path)  # without torch, when the file is a plain torch zip
        if raw is not None:
            return checked_info(raw, path, expect_task)
        from autotosis.model.model import read_checkpoint_info

        return read_checkpoint_info(path, expect_task=expect_task)
    from autotosis.model.onnx_backend import info_from_metadata

    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file", hint="make one with `autotosis export-onnx`")
    try:
        metadata = _onnx_metadata(path)
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path}: not a usable ONNX model ({exc})") from exc
    info = info_from_metadata(metadata, path)
    if expect_task is not None and info.task != expect_task:
        raise ModelError(
            f"{path}: model was trained for task '{info.task}', not '{expect_task}'",
            hint=f"use a model trained on the '{expect_task}' labels",
        )
    return info


# --------------------------------------------------------------------------- ONNX metadata

_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}


def _onnx_metadata(path: Path) -> dict[str, str]:
    """ModelProto.metadata_props of an ONNX file, read field by field; the graph is skipped, not read."""
    found: dict[str, str] = {}
    with path.open("rb") as handle:
        size = path.stat().st_size
        while handle.tell() < size:
            number, wire = _key(handle)
            if number == _METADATA_PROPS and wire == 2:
                entry = _fields(handle.read(_varint(handle)))
                key, value = entry.get(1, b""), entry.get(2, b"")
                found[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
            else:
                _skip(handle, wire)
            if handle.tell() > size:
                raise ValueError("truncated protobuf")
    return found


def _varint(handle) -> int:
    value = shift = 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise ValueError("truncated protobuf")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _key(handle) -> tuple[int, int]:
    key = _varint(handle)
    if key >> 3 == 0:
        raise ValueError("field number 0")
    return key >> 3, key & 7


def _skip(handle, wire: int) -> None:
    if wire == 0:
        _varint(handle)
    elif wire == 1:
        handle.seek(8, 1)
    elif wire == 2:
        handle.seek(_varint(handle), 1)
    elif wire == 5:
        handle.seek(4, 1)
    else:
        raise ValueError(f"unsupported protobuf wire type {wire}")


def _fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a small message (a metadata entry)."""
    import io

    handle, out = io.BytesIO(data), {}
    while handle.tell() < len(data):
        number, wire = _key(handle)
        if wire == 2:
            length = _varint(handle)
            out[number] = handle.read(length)
            if len(out[number]) != length:
                raise ValueError("truncated protobuf")
        else:
            _skip(handle, wire)
    if handle.tell() != len(data):
        raise ValueError("truncated protobuf")
    return out
