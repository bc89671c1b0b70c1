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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotosis.core.errors import DataError
from autotosis.core.fsutil import atomic_path, cache_root, write_text_atomic
from autotosis.core.region import Region, as_region, is_region

SCORES_FORMAT = "autotosis-scores/1"


@dataclass(frozen=True)
class CoarseScan:
    """What a coarse-to-fine scan did (scan.py): keyframes first, then dense decoding of some stretches."""

    keyframes: int  # keyframes scored in the first pass
    threshold: float  # the keyframe score that made a candidate
    spans_ms: tuple[tuple[int, int], ...]  # the stretches decoded densely, [start, end) in ms
    refined_fraction: float  # their share of the video (rounded to 4 places)

    def to_dict(self) -> dict[str, Any]:
        return {
            "keyframes": self.keyframes,
            "threshold": self.threshold,
            "spans_ms": [[lo, hi] for lo, hi in self.spans_ms],
            "refined_fraction": self.refined_fraction,
        }

    @classmethod
    def from_dict(cls, data: object) -> CoarseScan | None:
        """The coarse-scan record of a scores file or cache entry; None when it is not one (kept as read)."""
        if not isinstance(data, dict) or list(data) != ["keyframes", "threshold", "spans_ms", "refined_fraction"]:
            return None
        spans = data["spans_ms"]
        if not (
            _whole(data["keyframes"])
            and _number(data["threshold"])
            and _number(data["refined_fraction"])
            and isinstance(spans, list)
            and all(isinstance(s, list) and len(s) == 2 and all(_whole(v) for v in s) for s in spans)
        ):
            return None
        return cls(data["keyframes"], data["threshold"], tuple((lo, hi) for lo, hi in spans), data["refined_fraction"])


# The entries of a scan's record, in the order it writes them ("coarse" only for a coarse scan).
_SCAN_KEYS = ("region", "fps", "threshold", "mode", "events", "coarse", "audio")


@dataclass(frozen=True)
class ScanInfo:
    """How a video was scanned, kept with its scores (the "extra" object of a scores file and cache entry).

    ``threshold`` and ``events`` are the scanning model's event threshold and calibrated event
    rules (``ModelInfo.threshold`` and ``.events``): what ``events`` and every command after it
    use when the user gives none (``segments.event_params_for``).
    """

    region: Region | None = None  # the part of the frame that was scored; None = the whole frame
    fps: float | None = None  # scores per second
    threshold: float | None = None
    mode: str | None = None  # "dense" or "coarse"
    events: Mapping[str, Any] = field(default_factory=dict)
    coarse: CoarseScan | None = None
    # Sound (a model trained with train --audio): {"used": true, "picture": [the picture's scores]} when
    # the scores are the combined ones, {"used": false, "why": ...} when the video had no sound; empty
    # (not written) for a model without sound.
    audio: Mapping[str, Any] = field(default_factory=dict)
    # A file's entries as they were written where this version does not read them (a newer version's,
    # ones edited into another shape) or would write them otherwise (``[0, 0, 1, 1]``), and which
    # entries the file held, in order (None: all a scan writes): a record read and written again is
    # written as it was.
    other: Mapping[str, Any] = field(default_factory=dict, repr=False)
    keys: tuple[str, ...] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON holds it."""
        keys = (
            self.keys
            if self.keys is not None
            else [k for k in _SCAN_KEYS if (k != "coarse" or self.coarse) and (k != "audio" or self.audio)]
        )
        known = {
            "region": None if self.region is None else list(self.region),
            "fps": self.fps,
            "threshold": self.threshold,
            "mode": self.mode,
            "events": dict(self.events),
            "coarse": None if self.coarse is None else self.coarse.to_dict(),
            "audio": dict(self.audio),
        }
        return {key: self.other[key] if key in self.other else known[key] for key in keys}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanInfo:
        """The record of a scores file or cache entry (read leniently: what is not understood is kept as it was)."""
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "region" and is_region(value):
                values[key] = as_region(value)
            elif key in ("fps", "threshold") and _number(value):
                values[key] = value
            elif key == "mode" and isinstance(value, str):
                values[key] = value
            elif key in ("events", "audio") and isinstance(value, dict):
                values[key] = dict(value)
            elif key == "coarse" and CoarseScan.from_dict(value) is not None:
                values[key] = CoarseScan.from_dict(value)
        unread = {k: v for k, v in data.items() if k not in values}
        written = cls(**values, other=unread, keys=tuple(data)).to_dict()
        other = {k: v for k, v in data.items() if k in unread or json.dumps(written[k]) != json.dumps(v)}
        return cls(**values, other=other, keys=tuple(data))


NOTHING_RECORDED = ScanInfo(keys=())  # scores without a scan record (CSV files, and files that hold none)


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
    scan: ScanInfo = field(default=NOTHING_RECORDED, compare=False)  # how the video was scanned

    def column(self, class_name: str) -> np.ndarray:
        if class_name not in self.classes:
            raise DataError(
                f"no class {class_name!r} in these scores", hint=f"known classes: {', '.join(self.classes)}"
            )
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
        buffer.write(
            f"# {SCORES_FORMAT} video={json.dumps(str(scores.video))} duration_ms={scores.duration_ms} "
            f"step_ms={scores.step_ms} task={json.dumps(scores.task)} model={scores.model}\n"
        )
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
        "extra": scores.scan.to_dict(),
    }
    write_text_atomic(path, json.dumps(document), force=force)


# What to do about a scores file that is cut short or was edited wrongly: it is cheap to make again.
_RESCAN = "make it again with `autotosis scan VIDEO --model M -o FILE`"


def read_scores(path: Path) -> Scores:
    """Read a file written by write_scores (JSON or CSV); anything else, a file cut short or edited
    into another shape raises DataError (one line naming the file and what is wrong)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such scores file", hint="make one with `autotosis scan VIDEO --model M -o FILE`"
        ) from None
    except IsADirectoryError:
        raise DataError(
            f"{path}: is a folder, not a scores file", hint="give the .scores.json file `autotosis scan` wrote"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read scores file ({exc.strerror or exc})") from None
    if not data.strip():
        raise DataError(f"{path}: the scores file is empty ({len(data)} bytes)", hint=_RESCAN)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a scores file (not UTF-8 text)", hint=_RESCAN) from None
    try:
        if text.startswith("# " + SCORES_FORMAT):
            return _parse_csv(path, text)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", hint=_RESCAN
            ) from None
        except (ValueError, RecursionError) as exc:  # an integer too long to convert, absurd nesting
            raise DataError(f"{path}: not a usable JSON file ({exc.__class__.__name__}: {exc})", hint=_RESCAN) from None
        return _parse_json(path, doc)
    except DataError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
        raise DataError(
            f"{path}: not a valid autotosis scores file ({exc.__class__.__name__}: {exc})", hint=_RESCAN
        ) from None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field(path: Path, doc: dict, name: str, check: Callable[[object], bool], what: str, default: object = ...) -> Any:
    if name not in doc:
        if default is not ...:
            return default
        raise DataError(f'{path}: "{name}" is missing', hint=_RESCAN)
    value = doc[name]
    if not check(value):
        raise DataError(f'{path}: "{name}" must be {what}, got {_short(value)}', hint=_RESCAN)
    return value


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_json(path: Path, doc: object) -> Scores:
    kind = doc.get("format") if isinstance(doc, dict) else None
    if isinstance(kind, str) and kind.startswith("autotosis-") and not kind.startswith("autotosis-scores/"):
        raise DataError(
            f"{path}: is an {kind.split('/')[0].removeprefix('autotosis-')} file, not a scores file",
            hint="give the .scores.json file `autotosis scan` wrote",
        )
    if kind != SCORES_FORMAT:
        raise DataError(
            f'{path}: not an autotosis scores file (no "format": "{SCORES_FORMAT}")',
            hint="give the .scores.json file `autotosis scan` wrote",
        )
    video = _field(path, doc, "video", lambda v: isinstance(v, str) and v != "", "the scanned video's path")
    duration_ms = _field(path, doc, "duration_ms", lambda v: _whole(v) and v >= 0, "a whole number of milliseconds")
    step_ms = _field(path, doc, "step_ms", lambda v: _whole(v) and v >= 0, "a whole number of milliseconds")
    task = _field(path, doc, "task", lambda v: isinstance(v, str), "text", "")
    model = _field(path, doc, "model", lambda v: isinstance(v, str), "text", "")
    classes = _field(
        path,
        doc,
        "classes",
        lambda v: (
            isinstance(v, list)
            and len(v) > 0
            and len(set(map(str, v))) == len(v)
            and all(isinstance(c, str) and c for c in v)
        ),
        "a list of different class names",
    )
    times = _field(
        path,
        doc,
        "times_ms",
        lambda v: isinstance(v, list) and all(_whole(t) for t in v),
        "a list of whole numbers of milliseconds",
    )
    columns = _field(path, doc, "scores", lambda v: isinstance(v, dict), "an object with a list of scores per class")
    extra = _field(path, doc, "extra", lambda v: v is None or isinstance(v, dict), "an object", None) or {}
    for name, check, what in (
        ("events", lambda v: v is None or isinstance(v, dict), "an object"),
        ("region", is_region, "null or [x0, y0, x1, y1] (fractions of the frame)"),
    ):
        if name in extra and not check(extra[name]):
            raise DataError(f'{path}: "extra": "{name}" must be {what}, got {_short(extra[name])}', hint=_RESCAN)
    rows = []
    for name in classes:
        column = columns.get(name)
        if not isinstance(column, list) or not all(_number(p) for p in column):
            got = "nothing" if column is None else _short(column)
            raise DataError(f'{path}: "scores": "{name}" must be a list of numbers, got {got}', hint=_RESCAN)
        if len(column) != len(times):
            raise DataError(
                f"{path}: {len(times)} sample times but {len(column)} scores of class {name!r}", hint=_RESCAN
            )
        rows.append(np.asarray(column, dtype=np.float64))
    probs = np.stack(rows, axis=1) if rows else np.zeros((len(times), 0))
    scores = Scores(
        Path(video),
        duration_ms,
        tuple(classes),
        np.asarray(times, dtype=np.int64).reshape(-1),
        probs.astype(np.float32).reshape(len(times), len(classes)),
        step_ms,
        task,
        model,
        ScanInfo.from_dict(extra),
    )
    check_scores(scores, path, probs)
    return scores


def check_scores(scores: Scores, path: Path | str, probs: np.ndarray | None = None) -> None:
    """Raise DataError unless the samples are usable: times from 0 on, strictly increasing, one
    finite probability from 0 to 1 per class and sample (``probs``: the values as read, before float32)."""
    times = scores.times_ms
    probs = scores.probs if probs is None else probs
    if times.ndim != 1 or probs.shape != (len(times), len(scores.classes)):
        raise DataError(f"{path}: {len(times)} sample times but scores of shape {probs.shape}", hint=_RESCAN)
    if len(times) and times[0] < 0:
        raise DataError(f"{path}: sample times must not be negative, got {int(times[0])} ms", hint=_RESCAN)
    steps = np.diff(times)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise DataError(
            f"{path}: sample times must increase, but sample {i + 1} ({int(times[i])} ms) comes after "
            f"{int(times[i - 1])} ms",
            hint=_RESCAN,
        )
    bad = ~(np.isfinite(probs) & (probs >= -1e-6) & (probs <= 1 + 1e-6))
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: class {scores.classes[col]!r}, sample {row + 1} ({int(times[row])} ms): a score must be "
            f"a probability from 0 to 1, got {float(probs[row, col])!r}",
            hint=_RESCAN,
        )


def _parse_csv(path: Path, text: str) -> Scores:
    header, _, body = text.partition("\n")
    fields = dict(part.split("=", 1) for part in _split_header(header[2 + len(SCORES_FORMAT) :]))
    for name in ("video", "duration_ms", "step_ms"):
        if name not in fields:
            raise DataError(f"{path}: the first line has no {name}=...", hint=_RESCAN)
    rows = list(csv.reader(io.StringIO(body)))
    names = rows[0] if rows else []
    if not names or names[0] != "time" or len(names) < 2:
        raise DataError(
            f"{path}: CSV scores need a header row starting with 'time' and naming the classes", hint=_RESCAN
        )
    data = [r for r in rows[1:] if r]
    for number, row in enumerate(data, 3):
        if len(row) != len(names):
            raise DataError(
                f"{path}: line {number} has {len(row)} values, expected {len(names)} ({', '.join(names)})", hint=_RESCAN
            )
    times = np.array([round(float(r[0]) * 1000) for r in data], dtype=np.int64)
    values = np.array([[float(x) for x in r[1:]] for r in data], dtype=np.float64).reshape(len(data), len(names) - 1)
    scores = Scores(
        Path(json.loads(fields["video"])),
        int(fields["duration_ms"]),
        tuple(names[1:]),
        times,
        values.astype(np.float32),
        int(fields["step_ms"]),
        json.loads(fields.get("task", '""')),
        fields.get("model", ""),
    )
    if len(set(scores.classes)) != len(scores.classes):
        raise DataError(f"{path}: a class is named twice in the header row", hint=_RESCAN)
    check_scores(scores, path, values)
    return scores


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
    return cache_root() / "scores"


def cache_key(video_fingerprint: str, model_fingerprint: str, sampling: dict, region: Region | None) -> str:
    identity = json.dumps(
        {"video": video_fingerprint, "model": model_fingerprint, "sampling": sampling, "region": region}, sort_keys=True
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


class ScoreCache:
    """Scores stored as .npz files named by their cache key."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str, video: Path) -> Scores | None:
        """The cached scores, or None when there are none or the entry is damaged (cut short by a
        full disk, garbage, edited): the caller scans again and ``store`` replaces the entry."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"][()]))
                classes = tuple(meta["classes"])
                scores = Scores(
                    Path(video),
                    int(meta["duration_ms"]),
                    classes,
                    data["times_ms"].astype(np.int64),
                    data["probs"].astype(np.float32),
                    int(meta["step_ms"]),
                    str(meta.get("task", "")),
                    str(meta.get("model", "")),
                    ScanInfo.from_dict(meta.get("extra") or {}),
                )
            if (
                not classes
                or not all(isinstance(c, str) for c in classes)
                or scores.duration_ms < 0
                or scores.step_ms < 0
            ):
                return None
            check_scores(scores, path)
        except Exception:  # noqa: BLE001 - any damage (BadZipFile, EOFError, a wrong shape...): scan again
            return None
        return scores

    def remembered(
        self, key: str, compute: Callable[[], Any], valid: Callable[[Any], bool] = lambda value: True
    ) -> Any:
        """A small JSON value stored under ``key`` (computed and stored on first use, and again when
        the stored one is damaged or not ``valid``)."""
        path = self.folder / f"{key}.json"
        try:
            value = json.loads(path.read_text(encoding="utf-8"))["value"]
            if valid(value):
                return value
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass  # not there yet, or damaged: compute again
        value = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"value": value}), force=True)
        return value

    def store(self, key: str, scores: Scores) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "duration_ms": scores.duration_ms,
            "classes": list(scores.classes),
            "step_ms": scores.step_ms,
            "task": scores.task,
            "model": scores.model,
            "extra": scores.scan.to_dict(),
        }
        with atomic_path(self._path(key), force=True) as tmp, tmp.open("wb") as handle:
            np.savez(handle, times_ms=scores.times_ms, probs=scores.probs, meta=np.array(json.dumps(meta)))
