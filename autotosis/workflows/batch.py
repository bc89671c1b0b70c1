"""Many VODs in one resumable run: per VOD scores, events, reel and report, then a "best of" reel.

Layout of the output folder::

    DIR/manifest.jsonl         one JSON record a line, appended and fsync'ed as work starts and ends
    DIR/<vod name>/            scores.json  events.json  reel.mp4 (when it has events)  report.html
                               report-clips/ (a small MP4 per event, played by the report)
    DIR/best-of.mp4            the best events of all VODs, a title card per source
    DIR/best-of.json           what the best-of reel holds, in order

The manifest is the only state.  A re-run of the same command reads it and skips VODs
whose latest record is ``done`` (same source file, same settings, outputs still there),
and redoes the rest: ``running`` ones were cut short (Ctrl-C, kill -9, a crash), ``failed``
ones are retried.  Every output is written with fsutil's temp-file-and-rename, so a killed
run leaves only ``.part`` temp files, which the next run deletes; a VOD's folder is also swept
as soon as its job ends (an attempt that died on a lost Ray node and was retried elsewhere
leaves them too).  Only the driver writes the manifest; workers return plain results
(``VodResult``) through the engine.

A damaged manifest is read for what it still vouches for: a line cut short or garbage is
skipped, a record edited into another shape makes its VOD (or the best-of reel) count as not
done, and a record whose folder would lead out of DIR is ignored; what is no longer vouched
for is made again.  A file that is no manifest at all is refused (exit 7), and best-of files
that no record of a batch in DIR accounts for are refused (exit 6) before any work.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from autotosis.core.errors import AutotosisError, DataError, OutputExistsError, UsageError
from autotosis.core.fsutil import file_fingerprint, write_error, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.detect.scan import ScanOptions
from autotosis.detect.segments import Event, EventParams
from autotosis.outputs.render import RenderOptions, youtube_chapters_path
from autotosis.workflows.engines import Engine, run_jobs, use_torch_threads, worker_threads

if TYPE_CHECKING:
    from autotosis.model.predictor import Predictor

MANIFEST_NAME = "manifest.jsonl"
LOCK_NAME = ".batch.lock"
BEST_OF_REEL = "best-of.mp4"
BEST_OF_LIST = "best-of.json"
BEST_OF_FORMAT = "autotosis-best-of/1"
OUTPUT_FILES = {"scores": "scores.json", "events": "events.json", "reel": "reel.mp4", "report": "report.html"}
ORDERS = ("time", "score")

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".flv", ".ts", ".m2ts", ".mts", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".3gp"}
)
LIST_SUFFIXES = frozenset({".txt", ".list", ".lst"})
# fsutil.atomic_path's temp names: ".<stem>.<random>.part<suffix>", and encode.concat_segments' list of
# pieces beside such a file (".<stem>.<random>.part<suffix>.concat.txt"), which a kill leaves too
_PART_FILE = re.compile(r"^\..+\.part(\.[^.]+)?(\.concat\.txt)?$")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class BatchOptions:
    out: Path
    model: Path
    scan: ScanOptions
    events: EventParams  # threshold already resolved (the user's, or the model's)
    class_name: str | None
    render: RenderOptions
    order: str = "time"  # best-of: "time" (inputs in order, events by time) or "score" (highest peak first)
    max_duration_ms: int | None = None  # best-of length limit, title cards included
    force: bool = False
    report_clips: bool = True  # a small clip per event beside each VOD's report (report-clips/)


@dataclass(frozen=True)
class VodJob:
    """Everything a worker needs for one VOD (plain, picklable values; absolute paths)."""

    source: Path
    folder: Path
    model: Path
    scan: ScanOptions
    events: EventParams
    class_name: str | None
    render: RenderOptions
    report_settings: dict = field(default_factory=dict, compare=False)
    report_clips: bool = True


@dataclass(frozen=True)
class VodResult:
    """What a worker sends back: output file names (relative to the VOD's folder) or the error."""

    source: Path
    ok: bool
    outputs: dict = field(default_factory=dict, compare=False)  # kind -> file name, None if not made
    events: int = 0
    duration_ms: int = 0
    reel_ms: int | None = None
    elapsed_s: float = 0.0
    scan_s: float | None = None  # the scan alone (decode + score), within elapsed_s; None if it never finished
    threshold: float | None = None  # the event threshold used for this VOD
    raised_from: float | None = None  # the model's calibrated threshold, where it was raised for this VOD
    error: str | None = None
    error_kind: str | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """One VOD's line in the summary."""

    source: Path
    name: str  # its folder in the output folder
    status: str  # "done" (now), "skipped" (done before), "failed"
    events: int = 0
    reel_ms: int | None = None
    elapsed_s: float = 0.0
    error: str | None = None
    threshold: float | None = None  # as in VodResult
    raised_from: float | None = None

    def threshold_text(self) -> str:
        """'0.95', or '0.95 -> 0.990' where the threshold was raised for this VOD (detect.adapt)."""
        if self.threshold is None:
            return ""
        if self.raised_from is None:
            return f"{self.threshold:.2f}"
        return f"{self.raised_from:.2f} -> {self.threshold:.3f}"


@dataclass(frozen=True)
class BestOfResult:
    status: str  # "done", "skipped" (unchanged since the last run), "failed", "none" (no events anywhere)
    path: Path | None = None
    clips: int = 0
    sources: int = 0
    duration_ms: int = 0
    error: str | None = None


@dataclass(frozen=True)
class BatchResult:
    out: Path
    items: tuple[ItemOutcome, ...]
    best_of: BestOfResult

    @property
    def failed(self) -> int:
        return sum(i.status == "failed" for i in self.items) + (self.best_of.status == "failed")


@dataclass(frozen=True)
class Pick:
    """One event chosen for the best-of reel."""

    source: Path
    source_index: int  # position of the source among the inputs (the "time" order)
    event: Event


# --------------------------------------------------------------------------- inputs


def collect_inputs(inputs: Sequence[str], *, exclude: Path | None = None, cwd: Path | None = None) -> list[Path]:
    """Files, folders (searched recursively for videos), globs and list files -> unique absolute video paths.

    A list file (.txt/.list/.lst) names one file, folder or glob a line, relative to itself;
    ``#`` starts a comment.  Anything under ``exclude`` (the batch's own output) is skipped.
    A name that matches nothing is a usage error: better now than after hours of work.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    excluded = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    for text in inputs:
        found += _expand(text, base, f"input {text!r}", allow_lists=True)
    unique: dict[Path, None] = {}
    for path in found:
        resolved = path.resolve()
        if excluded is not None and resolved.is_relative_to(excluded):
            continue
        unique.setdefault(resolved, None)
    if not unique:
        raise UsageError("no videos to process", hint="give video files, folders holding videos, globs or a list file")
    return list(unique)


def _expand(text: str, base: Path, where: str, *, allow_lists: bool) -> list[Path]:
    path = base / Path(text).expanduser()
    if path.is_dir():
        videos = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in VIDEO_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not videos:
            raise UsageError(
                f"{where}: no videos in folder {path}", hint=f"looked for {', '.join(sorted(VIDEO_SUFFIXES))}"
            )
        return videos
    if path.is_file():
        if allow_lists and path.suffix.lower() in LIST_SUFFIXES:
            return _read_list(path)
        return [path]
    if any(char in text for char in "*?["):
        import glob

        matches = [Path(m) for m in sorted(glob.glob(str(path), recursive=True))]
        videos = [
            p
            for m in matches
            for p in (_expand(str(m), base, where, allow_lists=False) if m.is_dir() else [m])
            if p.suffix.lower() in VIDEO_SUFFIXES
        ]
        if not videos:
            raise UsageError(f"{where}: no video matches {text!r}")
        return videos
    raise UsageError(f"{where}: {path}: no such file or folder")


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the list file ({exc})") from None
    videos: list[Path] = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if len(entry) >= 2 and entry[0] == entry[-1] and entry[0] in "\"'":
            entry = entry[1:-1]
        videos += _expand(entry, path.parent, f"{path}:{number}", allow_lists=False)
    return videos


# --------------------------------------------------------------------------- manifest


class Manifest:
    """JSON lines, appended one record at a time and fsync'ed, so a kill loses at most the line being written."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def records(self) -> list[dict]:
        """Every record, checked: a line cut short by a kill, or garbage, is skipped; a record edited into
        another shape is skipped when it does not say which VOD and folder it is about, else it counts
        as "damaged" (that VOD, or the best-of reel, is made again).  A file none of whose lines is a
        record, and that does not start like one, is not a manifest: DataError (exit 7)."""
        try:
            # errors="replace": a kill can cut a line inside a multi-byte character; that line is dropped below.
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read the batch manifest ({exc.strerror or exc})") from None
        records = []
        for line in text.splitlines():
            with contextlib.suppress(
                ValueError, RecursionError
            ):  # a line cut short by a kill: that step is simply not done
                record = _checked(json.loads(line))
                if record is not None:
                    records.append(record)
        first = text.lstrip("\ufeff \t\r\n\x00")
        if not records and first and not first.startswith("{"):
            raise DataError(
                f"{self.path}: not a batch manifest (no line of it is a JSON record)",
                hint="if it is the batch's own, damaged, delete it and run again: every VOD is redone "
                "(--force to write over the old outputs)",
            )
        return records

    def latest(self) -> tuple[dict[str, dict], dict | None]:
        """The last record of each source, and the last best-of record."""
        vods: dict[str, dict] = {}
        best: dict | None = None
        for record in self.records():
            if record.get("kind") == "vod":
                vods[record["source"]] = record
            elif record.get("kind") == "best_of":
                best = record
        return vods, best

    def ran_here(self) -> bool:
        """A batch started in this folder before (its "run" record is there), so the best-of files are its."""
        return any(record.get("kind") == "run" for record in self.records())

    def append(self, record: dict) -> None:
        record = {**record, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        new = not self.path.exists()
        try:
            with self.path.open("a+b") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell():
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":  # the previous writer was killed mid-line: start a fresh one
                        line = "\n" + line
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:  # disk full, permissions: one clear line (what is recorded so far stays valid)
            raise write_error(self.path, exc) from exc
        if new:
            _fsync_dir(self.path.parent)


def _plain_name(value: object) -> bool:
    """A file or folder name inside the batch folder (never a path that leads elsewhere)."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and "\\" not in value
        and "\x00" not in value
    )


def _whole(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _probability_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1)


def _fields_ok(record: dict, checks: dict[str, Callable[[object], bool]]) -> bool:
    return all(check(record[name]) for name, check in checks.items() if name in record)


_OUTPUTS = {
    "state": lambda v: v in ("running", "done", "failed"),
    "outputs": lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and (n is None or _plain_name(n)) for k, n in v.items())
    ),
    "sizes": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _whole(n) for k, n in v.items()),
    "duration_ms": _whole,
}
_VOD_FIELDS = {
    **_OUTPUTS,
    "fingerprint": lambda v: v is None or isinstance(v, str),
    "settings": lambda v: isinstance(v, str),
    "events": _whole,
    "reel_ms": lambda v: v is None or _whole(v),
    "elapsed_s": _seconds,
    "scan_s": lambda v: v is None or _seconds(v),
    "threshold": _probability_or_none,
    "raised_from": _probability_or_none,
}
_BEST_OF_FIELDS = {**_OUTPUTS, "key": lambda v: isinstance(v, str)}


def _checked(record: object) -> dict | None:
    """``record`` if its fields have the types the batch writes; a "damaged" stand-in for a VOD or best-of
    record that was edited into another shape; None for anything that cannot be placed (no source or
    folder, or a folder name leading out of the batch folder)."""
    if not isinstance(record, dict):
        return None
    kind = record.get("kind")
    if kind == "vod":
        if not isinstance(record.get("source"), str) or not record["source"] or not _plain_name(record.get("dir")):
            return None
        if _fields_ok(record, _VOD_FIELDS):
            return record
        return {"kind": "vod", "source": record["source"], "dir": record["dir"], "state": "damaged"}
    if kind == "best_of":
        return record if _fields_ok(record, _BEST_OF_FIELDS) else {"kind": "best_of", "state": "damaged"}
    return record


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (the lock dies with its process, even on kill -9)."""
    with (out / LOCK_NAME).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{out}: another batch is writing to this folder", hint="wait for it, or use another --out"
            ) from None
        yield


def remove_part_files(folders: Sequence[Path]) -> int:
    """Delete temp files and folders a killed run left (only fsutil's ``.NAME.RANDOM.partSUFFIX`` names)."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not _PART_FILE.match(path.name):
                continue
            if path.is_dir() and not path.is_symlink():  # fsutil.atomic_dir's (the report's clips)
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            elif path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


# --------------------------------------------------------------------------- worker


def process_vod(job: VodJob) -> VodResult:
    """Scan one VOD and write its scores, events, reel and report (runs in a worker process).

    Any failure comes back as a failed result, so one bad file never stops the batch;
    only KeyboardInterrupt (and other BaseExceptions) get through.
    """
    started = time.monotonic()
    try:
        return replace(_process(job), elapsed_s=round(time.monotonic() - started, 3))
    except AutotosisError as exc:
        error, kind = str(exc), type(exc).__name__
    except Exception as exc:  # a bug: recorded with its type so it can be reported
        error, kind = f"internal error: {type(exc).__name__}: {exc}", type(exc).__name__
    return VodResult(job.source, ok=False, elapsed_s=round(time.monotonic() - started, 3), error=error, error_kind=kind)


_predictors: dict[tuple, Predictor] = {}  # per worker process: load each model once, not once per VOD


def _predictor(model_path: Path) -> Predictor:
    """The model (.pt or .onnx) for this worker's jobs; torch's threads are the engine's
    (``engines.prepare_worker``), onnxruntime gets as many."""
    from autotosis.model.predictor import load_predictor

    stat = model_path.stat()
    key = (str(model_path), stat.st_size, stat.st_mtime_ns)  # a replaced model file is loaded again
    if key not in _predictors:
        predictor = load_predictor(model_path, threads=worker_threads())
        use_torch_threads()  # where the model runs in torch after all
        _predictors.clear()
        _predictors[key] = predictor
    return _predictors[key]


def _process(job: VodJob) -> VodResult:
    from autotosis.detect.pipeline import scan_events
    from autotosis.detect.scores import write_scores
    from autotosis.detect.segments import write_events
    from autotosis.media import probe
    from autotosis.outputs.render import ReelPart, render_reel
    from autotosis.outputs.report import clips_folder, write_report

    folder = job.folder
    predictor = _predictor(job.model)  # loaded once per worker: not part of any VOD's scan time
    scan_started = time.monotonic()
    found = scan_events(
        job.source, job.model, job.scan, class_name=job.class_name, params=job.events, predictor=predictor
    )
    scan_s = round(time.monotonic() - scan_started, 3)
    scores, event_list, events = found.scores, found.events, found.events.events
    folder.mkdir(parents=True, exist_ok=True)  # only now: a file that is no video leaves no empty folder
    write_scores(scores, folder / OUTPUT_FILES["scores"], force=True)
    write_events(event_list, folder / OUTPUT_FILES["events"], force=True)
    reel_ms = None
    reel_path = folder / OUTPUT_FILES["reel"]
    outputs = {kind: name for kind, name in OUTPUT_FILES.items() if kind != "reel" or events}
    if events:
        rendered = render_reel([ReelPart(job.source, events, scores)], reel_path, job.render, force=True)
        reel_ms = rendered.duration_ms
        if rendered.chapters_text is not None:
            outputs["chapters"] = rendered.chapters_text.name
    else:
        reel_path.unlink(missing_ok=True)  # a reel of an earlier attempt would not match these events
    if not (events and job.report_clips):  # clips of an earlier attempt would not match these events
        shutil.rmtree(clips_folder(folder / OUTPUT_FILES["report"]), ignore_errors=True)
    write_report(
        scores,
        event_list,
        folder / OUTPUT_FILES["report"],
        video=probe.probe(job.source),
        settings=job.report_settings,
        force=True,
        clips=job.report_clips,
    )
    return VodResult(
        job.source,
        ok=True,
        outputs=outputs,
        events=len(events),
        duration_ms=scores.duration_ms,
        reel_ms=reel_ms,
        scan_s=scan_s,
        threshold=float(event_list.params.threshold),
        raised_from=None if event_list.adaptation is None else float(event_list.adaptation.calibrated),
    )


# --------------------------------------------------------------------------- planning


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _outputs_intact(out: Path, record: dict) -> bool:
    """All files a done record lists still exist with the recorded sizes."""
    sizes = record.get("sizes") or {}
    for name in (record.get("outputs") or {}).values():
        if name is None:
            continue
        path = out / record["dir"] / name
        if not path.is_file() or (name in sizes and path.stat().st_size != sizes[name]):
            return False
    return bool(record.get("outputs"))


def folder_name(source: Path, taken: set[str]) -> str:
    """A readable, unique folder name for a VOD: its file name without suffix, then -2, -3, ..."""
    stem = re.sub(r"[\x00-\x1f/\\]", "_", source.stem).strip() or "video"
    stem = stem[:80].lstrip(".") or "video"  # never a hidden folder (those are skipped as inputs)
    name, number = stem, 1
    while name.casefold() in {t.casefold() for t in taken}:
        number += 1
        name = f"{stem}-{number}"
    return name


@dataclass(frozen=True)
class _Planned:
    source: Path
    name: str
    fingerprint: str | None  # None: the file cannot be read (the worker will report why)
    skip: bool
    record: dict | None


def _plan(sources: Sequence[Path], out: Path, records: dict[str, dict], key: str, force: bool) -> list[_Planned]:
    taken = {r["dir"] for r in records.values() if isinstance(r.get("dir"), str)}
    taken |= {MANIFEST_NAME, LOCK_NAME, BEST_OF_REEL, BEST_OF_LIST, youtube_chapters_path(Path(BEST_OF_REEL)).name}
    if not force:  # folders this batch did not make are the user's: never write into them
        taken |= {p.name for p in out.iterdir()}
    plan, changed = [], []
    for source in sources:
        record = records.get(str(source))
        try:
            fingerprint: str | None = file_fingerprint(source)
        except OSError:
            fingerprint = None
        if record is not None and isinstance(record.get("dir"), str):
            name = record["dir"]
            if record.get("state") == "done" and record.get("settings") != key and not force:
                changed.append(source)
            skip = (
                record.get("state") == "done"
                and record.get("settings") == key
                and record.get("fingerprint") == fingerprint
                and fingerprint is not None
                and _outputs_intact(out, record)
            )
        else:
            name = folder_name(source, taken)
            taken.add(name)
            skip = False
        plan.append(_Planned(source, name, fingerprint, skip, record))
    if changed:  # their outputs would be replaced: the --force rule, so the "output exists" status
        error = OutputExistsError(out)
        error.message = (
            f"{out}: {len(changed)} VOD(s) here were processed with other settings or another model "
            f"(first: {changed[0].name})"
        )
        error.hint = "pass --force to redo them with these settings, or use another --out"
        raise error
    return plan


# --------------------------------------------------------------------------- best of


def select_best(
    candidates: Sequence[tuple[Path, Sequence[Event]]], *, order: str, max_duration_ms: int | None, card_ms: int
) -> list[Pick]:
    """Choose events for the best-of reel and put them in reel order.

    Events are taken highest peak first while the reel (events plus one ``card_ms`` title
    card each time the source changes) stays within ``max_duration_ms``; an event that does
    not fit is passed over for shorter ones.  ``order`` "time" plays them source by source
    (in input order), each in time order; "score" plays them highest peak first.
    """
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}", hint=f"choose one of: {', '.join(ORDERS)}")
    picks = [Pick(source, index, event) for index, (source, events) in enumerate(candidates) for event in events]
    picks.sort(key=lambda p: (-p.event.peak, p.source_index, p.event.start_ms))
    chosen: list[Pick] = []
    total = 0
    sources: set[int] = set()
    for pick in picks:
        if max_duration_ms is None:
            chosen.append(pick)
            continue
        if order == "time":
            card = 0 if pick.source_index in sources else card_ms
        else:  # score order: the new pick plays last, after the current last one
            card = 0 if chosen and chosen[-1].source_index == pick.source_index else card_ms
        if total + pick.event.duration_ms + card <= max_duration_ms:
            chosen.append(pick)
            sources.add(pick.source_index)
            total += pick.event.duration_ms + card
    if order == "time":
        chosen.sort(key=lambda p: (p.source_index, p.event.start_ms))
    return chosen


def runs_by_source(picks: Sequence[Pick]) -> list[tuple[Path, tuple[Event, ...]]]:
    """Consecutive picks from one source: each run gets its own title card."""
    runs: list[tuple[Path, list[Event]]] = []
    for pick in picks:
        if runs and runs[-1][0] == pick.source:
            runs[-1][1].append(pick.event)
        else:
            runs.append((pick.source, [pick.event]))
    return [(source, tuple(events)) for source, events in runs]


def _best_of(
    out: Path,
    done: Sequence[tuple[Path, str]],
    options: BatchOptions,
    key: str,
    last: dict | None,
    manifest: Manifest,
    progress: ProgressCallback,
) -> BestOfResult:
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import read_events
    from autotosis.outputs.render import ReelPart, render_reel

    reel, listing = out / BEST_OF_REEL, out / BEST_OF_LIST
    try:
        candidates = [(source, read_events(out / name / OUTPUT_FILES["events"]).events) for source, name in done]
        folders = {source: name for source, name in done}
        render = replace(options.render, source_cards=True)
        budget = options.max_duration_ms
        if budget is not None and render.title:
            budget -= render.title_ms  # the opening --title card counts too
        picks = select_best(candidates, order=options.order, max_duration_ms=budget, card_ms=render.title_ms)
        if not picks:
            for path in (reel, listing):
                if last is not None:  # ours, from an earlier run: it no longer matches
                    path.unlink(missing_ok=True)
            return BestOfResult("none")
        selection = [[str(p.source), p.event.start_ms, p.event.end_ms, p.event.peak] for p in picks]
        best_key = settings_key(
            {"settings": key, "order": options.order, "max": options.max_duration_ms, "picks": selection}
        )
        if (
            last is not None
            and last.get("state") == "done"
            and last.get("key") == best_key
            and _outputs_intact(out, {**last, "dir": "."})
        ):
            return BestOfResult(
                "skipped", reel, len(picks), len({p.source for p in picks}), int(last.get("duration_ms", 0))
            )
        force = options.force or last is not None
        if not force:
            for path in (reel, listing):
                if path.exists():
                    raise OutputExistsError(path)
        manifest.append({"kind": "best_of", "state": "running", "key": best_key})
        runs = runs_by_source(picks)
        scores = {source: read_scores(out / folders[source] / OUTPUT_FILES["scores"]) for source, _ in runs}
        result = render_reel(
            [ReelPart(source, events, scores[source]) for source, events in runs],
            reel,
            render,
            force=True,
            progress=progress,
        )
        write_text_atomic(
            listing,
            json.dumps(_listing(picks, runs, render, options, result.duration_ms), indent=1, ensure_ascii=False) + "\n",
            force=True,
        )
        outputs = {"reel": BEST_OF_REEL, "list": BEST_OF_LIST}
        if result.chapters_text is not None:
            outputs["chapters"] = result.chapters_text.name
        sizes = {name: (out / name).stat().st_size for name in outputs.values()}
        manifest.append(
            {
                "kind": "best_of",
                "state": "done",
                "key": best_key,
                "duration_ms": result.duration_ms,
                "outputs": outputs,
                "sizes": sizes,
            }
        )
        return BestOfResult("done", reel, len(picks), len({p.source for p in picks}), result.duration_ms)
    except AutotosisError as exc:
        manifest.append({"kind": "best_of", "state": "failed", "error": str(exc)})
        return BestOfResult("failed", error=str(exc))


def _listing(picks: Sequence[Pick], runs, render: RenderOptions, options: BatchOptions, duration_ms: int) -> dict:
    """best-of.json: each clip with its source, times in the source and where it starts in the reel."""
    clips, at = [], render.title_ms if render.title else 0
    index = 0
    for source, events in runs:
        at += render.title_ms if render.source_cards else 0
        for event in events:
            pick = picks[index]
            index += 1
            clips.append(
                {
                    "source": str(source),
                    "start_ms": event.start_ms,
                    "end_ms": event.end_ms,
                    "peak": event.peak,
                    "mean": event.mean,
                    "label": event.label,
                    "reel_start_ms": at,
                    "source_index": pick.source_index,
                }
            )
            at += event.duration_ms
    return {
        "format": BEST_OF_FORMAT,
        "order": options.order,
        "max_duration_ms": options.max_duration_ms,
        "duration_ms": duration_ms,
        "title_card_ms": render.title_ms,
        "clips": clips,
    }


# --------------------------------------------------------------------------- driver


def batch_settings(options: BatchOptions, model_fingerprint: str) -> dict:
    """What decides the outputs (not how fast they are made): the key of a VOD's done record."""
    speed_only = {"batch_size", "use_cache", "cache_dir", "threads", "stall_timeout_s"}
    settings = {
        "model": model_fingerprint,
        "scan": {f.name: getattr(options.scan, f.name) for f in fields(options.scan) if f.name not in speed_only}
        | {"coarse": options.scan.coarse.outcome_settings()},
        "events": options.events,
        "class": options.class_name,
        "render": options.render,
    }
    return json.loads(json.dumps(settings, default=_plain))  # plain JSON: it goes into the manifest


def _plain(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)  # Fraction frame rates, paths


def run_batch(
    sources: Sequence[Path],
    options: BatchOptions,
    engine_factory: Callable[[], Engine],
    *,
    progress: ProgressCallback = no_progress,
    on_item: Callable[[ItemOutcome], None] = lambda item: None,
) -> BatchResult:
    """Process ``sources`` into ``options.out``, skipping what an earlier run finished.

    ``engine_factory`` is called only when there is work, so a finished batch re-runs
    without starting a process pool or a Ray cluster.
    """
    from autotosis.detect.scores import default_cache_dir
    from autotosis.model.info import model_fingerprint
    from autotosis.model.predictor import load_predictor

    out = Path(options.out).absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out must be a folder")
    info = load_predictor(options.model).info  # a bad model (.pt or .onnx) fails here, once, not once per VOD
    if options.class_name is not None and options.class_name not in info.classes:
        raise UsageError(
            f"{options.model}: the model has no class {options.class_name!r}",
            hint=f"its classes: {', '.join(info.classes)}",
        )
    out.mkdir(parents=True, exist_ok=True)
    settings = batch_settings(options, model_fingerprint(options.model))
    key = settings_key(settings)
    # The driver picks the score cache so every worker (other processes, other Ray nodes) uses the same one.
    scan = replace(
        options.scan, cache_dir=options.scan.cache_dir or (default_cache_dir() if options.scan.use_cache else None)
    )
    with _locked(out):
        manifest = Manifest(out / MANIFEST_NAME)
        records, last_best = manifest.latest()
        if (
            last_best is None and manifest.ran_here()
        ):  # its record was lost (a manifest cut short): the reel is still ours
            last_best = {"kind": "best_of", "state": "lost"}
        if (
            last_best is None and not options.force
        ):  # best-of files a batch did not make: refuse now, not after hours of work
            for path in (out / BEST_OF_REEL, out / BEST_OF_LIST):
                if path.exists():
                    raise OutputExistsError(path)
        plan = _plan([Path(s).absolute() for s in sources], out, records, key, options.force)
        todo = {item.source: item for item in plan if not item.skip}
        # Workers start (or the cluster is reached) before anything is written: a bad --address changes nothing.
        with engine_factory() if todo else contextlib.nullcontext() as engine:
            remove_part_files([out, *(out / r["dir"] for r in records.values() if isinstance(r.get("dir"), str))])
            manifest.append(
                {
                    "kind": "run",
                    "settings": settings,
                    "settings_key": key,
                    "vods": len(plan),
                    "todo": len(todo),
                    "engine": engine.name if engine else None,
                    "workers": engine.slots if engine else 0,
                }
            )
            outcomes: dict[Path, ItemOutcome] = {}
            for item in plan:
                if item.skip:
                    record = item.record or {}
                    outcomes[item.source] = ItemOutcome(
                        item.source,
                        item.name,
                        "skipped",
                        int(record.get("events", 0)),
                        record.get("reel_ms"),
                        float(record.get("elapsed_s", 0.0)),
                        threshold=record.get("threshold"),  # None in records of versions before 2026-12-06
                        raised_from=record.get("raised_from"),
                    )
                    on_item(outcomes[item.source])
            progress("VODs", len(outcomes), len(plan))
            jobs = [
                VodJob(
                    item.source,
                    out / item.name,
                    Path(options.model).absolute(),
                    scan,
                    options.events,
                    options.class_name,
                    options.render,
                    {"model": str(options.model), "batch settings": settings},
                    options.report_clips,
                )
                for item in todo.values()
            ]

            def started(job: VodJob) -> None:
                item = todo[job.source]
                manifest.append(
                    {
                        "kind": "vod",
                        "source": str(job.source),
                        "dir": item.name,
                        "state": "running",
                        "fingerprint": item.fingerprint,
                        "settings": key,
                    }
                )

            for job, result in run_jobs(engine, process_vod, jobs, on_submit=started) if todo else ():
                # Every attempt at this VOD has ended: temp files left here are from one that died (a lost
                # Ray node whose task was retried elsewhere), not from a write still going on.
                remove_part_files([job.folder])
                if isinstance(result, Exception):  # the worker itself died, or the engine failed
                    result = VodResult(
                        job.source,
                        ok=False,
                        error=f"worker failed: {type(result).__name__}: {result}",
                        error_kind=type(result).__name__,
                    )
                outcome = _record(manifest, out, todo[job.source], result, key)
                outcomes[job.source] = outcome
                on_item(outcome)
                progress("VODs", len(outcomes), len(plan))
        items = tuple(outcomes[item.source] for item in plan)
        done = [(item.source, item.name) for item in plan if outcomes[item.source].status != "failed"]
        best = _best_of(out, done, options, key, last_best, manifest, progress)
    return BatchResult(out, items, best)


def _record(manifest: Manifest, out: Path, item: _Planned, result: VodResult, key: str) -> ItemOutcome:
    base = {
        "kind": "vod",
        "source": str(item.source),
        "dir": item.name,
        "fingerprint": item.fingerprint,
        "settings": key,
        "elapsed_s": result.elapsed_s,
    }
    if result.ok:
        try:
            sizes = {name: (out / item.name / name).stat().st_size for name in result.outputs.values()}
        except FileNotFoundError as exc:  # written where the driver cannot see it: a node without the shared DIR
            result = replace(
                result,
                ok=False,
                error_kind="MissingOutput",
                error=f"{exc.filename}: the worker wrote it, but it is not there as seen from the driver "
                "(every Ray node must see --out at the same path: shared storage)",
            )
    if result.ok:
        manifest.append(
            {
                **base,
                "state": "done",
                "outputs": result.outputs,
                "sizes": sizes,
                "events": result.events,
                "duration_ms": result.duration_ms,
                "reel_ms": result.reel_ms,
                "scan_s": result.scan_s,
                "threshold": result.threshold,
                "raised_from": result.raised_from,
            }
        )
        return ItemOutcome(
            item.source,
            item.name,
            "done",
            result.events,
            result.reel_ms,
            result.elapsed_s,
            threshold=result.threshold,
            raised_from=result.raised_from,
        )
    manifest.append({**base, "state": "failed", "error": result.error, "error_kind": result.error_kind})
    return ItemOutcome(item.source, item.name, "failed", elapsed_s=result.elapsed_s, error=result.error)


# --------------------------------------------------------------------------- summary


def summary_table(result: BatchResult):
    """A rich table: one row per VOD and one for the best-of reel (the CLI prints it)."""
    from rich.markup import escape
    from rich.table import Table

    counts = {status: sum(i.status == status for i in result.items) for status in ("done", "skipped", "failed")}
    title = f"batch: {counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed"
    table = Table(title=title)
    for column, justify in (
        ("VOD", "left"),
        ("status", "left"),
        ("events", "right"),
        ("threshold", "right"),
        ("reel", "right"),
        ("time", "right"),
        ("folder / error", "left"),
    ):
        table.add_column(column, justify=justify)
    style = {"done": "green", "skipped": "cyan", "failed": "bold red", "none": "yellow"}
    for item in result.items:
        status = "already done" if item.status == "skipped" else item.status
        table.add_row(
            escape(item.source.name),
            f"[{style[item.status]}]{status}[/]",
            "" if item.status == "failed" else str(item.events),
            item.threshold_text(),
            "" if item.reel_ms is None else f"{item.reel_ms / 1000:.1f}s",
            f"{item.elapsed_s:.1f}s",
            escape(item.error if item.error else item.name + "/"),
        )
    best = result.best_of
    detail = {
        "done": f"{BEST_OF_REEL}: {_count(best.clips, 'clip')} from {_count(best.sources, 'VOD')}",
        "skipped": f"{BEST_OF_REEL} (unchanged)",
        "none": "no events in any VOD: no best-of reel",
        "failed": best.error or "",
    }[best.status]
    table.add_row(
        "best of",
        f"[{style.get(best.status, 'cyan')}]{'already done' if best.status == 'skipped' else best.status}[/]",
        str(best.clips) if best.clips else "",
        "",
        f"{best.duration_ms / 1000:.1f}s" if best.duration_ms else "",
        "",
        escape(detail),
    )
    return table


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
