"""Per-frame class probabilities of one video, their files and their cache.

A scores file is the hand-off between the expensive step (decoding + inference) and the
cheap ones (events, render, export).  The cache keys scores by the video's identity, the
model's hash, the sampling and the crop, so re-running ``events``/``render``/``reel`` on a
scanned VOD never decodes it again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotosis.errors import DataError
from autotosis.fsutil import atomic_path, write_text_atomic

SCORES_FORMAT = "autotosis-scores/1"


@dataclass(frozen=True)
class Scores:
    video: Path
    duration_ms: int
    classes: tuple[str, ...]
    times_ms: np.ndarray  # int64 (N,), presentation times, increasing
    probs: np.ndarray  # float32 (N, len(classes)), softmax probabilities
    step_ms: int  # nominal sampling step
    task: str = ""
    model: str = ""  # model fingerprint
    extra: dict = field(default_factory=dict, compare=False)

    def column(self, class_name: str) -> np.ndarray:
        if class_name not in self.classes:
            raise DataError(f"no class {class_name!r} in these scores", hint=f"known classes: {', '.join(self.classes)}")
        return self.probs[:, self.classes.index(class_name)]

    def default_class(self) -> str:
        """The class events are made for when none is named: the first non-background one."""
        return next((c for c in self.classes if c != "background"), self.classes[-1])

    def score_at(self, class_name: str, times_ms: np.ndarray) -> np.ndarray:
        """Score of the sample shown at each time (the last sample at or before it)."""
        column = self.column(class_name)
        if len(column) == 0:
            return np.zeros(len(times_ms), dtype=np.float32)
        index = np.searchsorted(self.times_ms, np.asarray(times_ms), side="right") - 1
        return column[np.clip(index, 0, len(column) - 1)]


def write_scores(scores: Scores, path: Path, *, force: bool = False) -> None:
    """JSON (default) or CSV by suffix; both read back exactly with read_scores."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        buffer.write(f"# {SCORES_FORMAT} video={json.dumps(str(scores.video))} duration_ms={scores.duration_ms} "
                     f"step_ms={scores.step_ms} task={json.dumps(scores.task)} model={scores.model}\n")
        writer = csv.writer(buffer)
        writer.writerow(["time", *scores.classes])
        for t, row in zip(scores.times_ms, scores.probs):
            writer.writerow([f"{t / 1000:.3f}", *(f"{p:.6f}" for p in row)])
        write_text_atomic(path, buffer.getvalue(), force=force)
        return
    document = {
        "format": SCORES_FORMAT,
        "video": str(scores.video),
        "duration_ms": int(scores.duration_ms),
        "step_ms": int(scores.step_ms),
        "task": scores.task,
        "model": scores.model,
        "classes": list(scores.classes),
        "times_ms": [int(t) for t in scores.times_ms],
        "scores": {name: [round(float(p), 6) for p in scores.probs[:, i]] for i, name in enumerate(scores.classes)},
        "extra": scores.extra,
    }
    write_text_atomic(path, json.dumps(document), force=force)


def read_scores(path: Path) -> Scores:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such scores file", hint="make one with `autotosis scan VIDEO --model M -o FILE`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read scores file ({exc})") from None
    try:
        if text.startswith("# " + SCORES_FORMAT):
            return _parse_csv(path, text)
        return _parse_json(path, json.loads(text))
    except DataError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: not a valid autotosis scores file ({exc.__class__.__name__}: {exc})") from None


def _parse_json(path: Path, doc: dict) -> Scores:
    if not isinstance(doc, dict) or doc.get("format") != SCORES_FORMAT:
        raise DataError(f"{path}: not an autotosis scores file (format marker missing)")
    classes = tuple(str(c) for c in doc["classes"])
    times = np.asarray(doc["times_ms"], dtype=np.int64)
    probs = np.stack([np.asarray(doc["scores"][c], dtype=np.float32) for c in classes], axis=1) if classes else np.zeros((len(times), 0), np.float32)
    if probs.shape[0] != len(times):
        raise DataError(f"{path}: {len(times)} times but {probs.shape[0]} scores")
    return Scores(Path(doc["video"]), int(doc["duration_ms"]), classes, times, probs, int(doc["step_ms"]),
                  str(doc.get("task", "")), str(doc.get("model", "")), dict(doc.get("extra") or {}))


def _parse_csv(path: Path, text: str) -> Scores:
    header, _, body = text.partition("\n")
    fields = dict(part.split("=", 1) for part in _split_header(header[2 + len(SCORES_FORMAT):]))
    rows = list(csv.reader(io.StringIO(body)))
    names = rows[0]
    if not names or names[0] != "time":
        raise DataError(f"{path}: CSV scores need a header row starting with 'time'")
    data = [r for r in rows[1:] if r]
    times = np.array([int(round(float(r[0]) * 1000)) for r in data], dtype=np.int64)
    probs = np.array([[float(x) for x in r[1:]] for r in data], dtype=np.float32).reshape(len(data), len(names) - 1)
    return Scores(Path(json.loads(fields["video"])), int(fields["duration_ms"]), tuple(names[1:]), times, probs,
                  int(fields["step_ms"]), json.loads(fields.get("task", '""')), fields.get("model", ""))


def _split_header(text: str) -> list[str]:
    """Split ``k=v`` pairs where values may be JSON strings containing spaces."""
    parts, current, in_string, escaped = [], "", False, False
    for char in text.strip():
        if char == " " and not in_string:
            if current:
                parts.append(current)
            current = ""
            continue
        if in_string and char == "\\" and not escaped:
            escaped = True
        else:
            if char == '"' and not escaped:
                in_string = not in_string
            escaped = False
        current += char
    if current:
        parts.append(current)
    return parts


# --------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    base = os.environ.get("AUTOTOSIS_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "autotosis")
    return Path(base) / "scores"


def cache_key(video_fingerprint: str, model_fingerprint: str, sampling: dict, region: tuple | None) -> str:
    identity = json.dumps({"video": video_fingerprint, "model": model_fingerprint, "sampling": sampling, "region": region}, sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


class ScoreCache:
    """Scores stored as .npz files named by their cache key."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str, video: Path) -> Scores | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                return Scores(Path(video), int(meta["duration_ms"]), tuple(meta["classes"]), data["times_ms"].astype(np.int64),
                              data["probs"].astype(np.float32), int(meta["step_ms"]), meta.get("task", ""), meta.get("model", ""),
                              dict(meta.get("extra") or {}))
        except (OSError, ValueError, KeyError):
            return None  # damaged entry: scan again

    def remembered(self, key: str, compute: Callable[[], Any]) -> Any:
        """A small JSON value stored under ``key`` (computed and stored on first use)."""
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not there yet, or damaged: compute again
        value = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"value": value}), force=True)
        return value

    def store(self, key: str, scores: Scores) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"duration_ms": scores.duration_ms, "classes": list(scores.classes), "step_ms": scores.step_ms,
                "task": scores.task, "model": scores.model, "extra": scores.extra}
        with atomic_path(self._path(key), force=True) as tmp:
            with tmp.open("wb") as handle:
                np.savez(handle, times_ms=scores.times_ms, probs=scores.probs, meta=np.array(json.dumps(meta)))
