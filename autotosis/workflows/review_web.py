"""``autotosis review --serve``: the model's events and near misses on a local web page, decided with the keyboard.

For each video the page lists the model's events and its near misses (the best moments scoring under
the threshold), each with a playable snippet and its score curve.  The snippet of a moment is its review
clip (``iterN_<video>_hK.mp4`` for events, ``..._nK.mp4`` for near misses, as ``review`` names them):
made on first view with ffmpeg (H.264/AAC MP4, yuv420p, +faststart, at most 1080 lines) and the clip
the label line names, so the next ``train`` learns from exactly what was judged.

Every decision is written to the label file at once, in a marked section::

    # --- review iter3: autotosis review --serve, model rage.pt, threshold 0.62 ---
    # Decided on the review page: a span is a highlight, ~span unsure, no span = no highlight in the clip.
    # default crop=0.78,0.13,0.97,0.37
    review/iter3_vod_h1.mp4  0:02-0:06.5  # accepted: vod.mp4 1:02:01-1:02:10, peak 0.93
    review/iter3_vod_n1.mp4  # rejected (near miss): vod.mp4 1:20:00-1:20:06, peak 0.48
    # --- end of review iter3 ---

Before each write the file is read again and the line merged into what it holds now
(``review.merge_review_line``); a decision that would undo a hand edit is refused with a message on
the page.  The file is replaced atomically, keeps its permissions, and always parses.

The server listens on 127.0.0.1 only and serves the page, its JSON API and the snippets of this
review, nothing else: unknown paths are 404, path tricks (``..``, encoded slashes, ``//``, NUL) and
snippets that are symlinks out of the review folder are 403, and so is a request naming another
host (DNS rebinding).  Decisions need the page's token and a JSON body, so another web site cannot
post them.  Nothing here prints: the CLI prints the URL.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shlex
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autotosis.core.errors import AutotosisError, FileSystemError, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, safe_stem
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region
from autotosis.core.timefmt import label_time
from autotosis.detect.segments import Event, EventParams
from autotosis.labels.parse import parse_labels
from autotosis.labels.values import Span, match_model_classes
from autotosis.labels.writer import format_clip_line
from autotosis.workflows.review import (
    ReviewConflict,
    comment_safe,
    merge_review_line,
    next_iteration,
    section_header,
)
from autotosis.workflows.review_page import page_html

if TYPE_CHECKING:
    from autotosis.detect.scan import ScanOptions
    from autotosis.detect.scores import Scores

MIN_CONTEXT_MS = 2000  # a snippet shows at least this much before and after its moment
ADJUST_STEP_MS = 500  # one press of [ ] { }
MIN_SPAN_MS = 500  # a span is never shorter
DEFAULT_NEAR_MISSES = 5  # per video
NEAR_MISS_FLOOR = 0.5  # a near miss peaks at least at this share of the threshold
SNIPPET_MAX_HEIGHT = 1080
SNIPPET_WAIT_S = 60  # stopping the server waits this long at most for a snippet being made
EVENT, NEAR_MISS = "event", "near miss"
ACTIONS = {"accept": "accepted", "reject": "rejected", "unsure": "unsure"}
SNIPPET_PREFIX = "/snippets/"
_MAX_BODY = 4096
_WRITE_TRIES = 5


# --------------------------------------------------------------------------- what to review


@dataclass(frozen=True)
class PlannedItem:
    """One moment to review: its snippet's place in the video and the predicted span inside it (absolute ms)."""

    kind: str  # EVENT or NEAR_MISS
    start_ms: int
    end_ms: int
    core: tuple[int, int]
    peak: float


def plan_items(
    scores: Scores, class_name: str, params: EventParams, *, near_misses: int, context_ms: int = MIN_CONTEXT_MS
) -> list[PlannedItem]:
    """The events of ``scores`` (by ``params``, without padding) and up to ``near_misses`` near misses:
    the best moments under the threshold (peaking at half of it at least), away from every event (as
    ``--top-k`` finds them when there are too few events).  Each gets a snippet of its padding (at least
    ``context_ms``) on both sides, cut at the middle of the gap where neighbours would overlap; in time order."""
    from autotosis.detect.pipeline import detect_events

    core = replace(params, pad_before_ms=0, pad_after_ms=0)
    events = list(detect_events(scores, class_name, core).events)
    above = list(detect_events(scores, class_name, replace(core, top_k=None, top_percent=None)).events)
    misses: list[Event] = []
    if near_misses > 0:
        wanted = len(above) + len(events) + near_misses
        found = detect_events(scores, class_name, replace(core, top_k=wanted, top_percent=None, max_length_ms=None))
        taken = events + above

        def free(e: Event) -> bool:
            return all(e.end_ms <= t.start_ms or e.start_ms >= t.end_ms for t in taken)

        floor = params.threshold * NEAR_MISS_FLOOR
        candidates = sorted(
            (e for e in found.events if free(e) and e.peak >= floor), key=lambda e: (-e.peak, e.start_ms)
        )
        misses = candidates[:near_misses]
    moments = sorted([(e, EVENT) for e in events] + [(e, NEAR_MISS) for e in misses], key=lambda m: m[0].start_ms)
    before = max(params.pad_before_ms, context_ms)
    after = max(params.pad_after_ms, context_ms)
    windows = [[max(0, e.start_ms - before), min(scores.duration_ms, e.end_ms + after)] for e, _ in moments]
    for i in range(len(moments) - 1):
        this, following = moments[i][0], moments[i + 1][0]
        if windows[i][1] > windows[i + 1][0]:
            cut = (this.end_ms + following.start_ms) // 2
            windows[i][1] = max(min(windows[i][1], cut), this.end_ms)
            windows[i + 1][0] = min(max(windows[i + 1][0], cut), following.start_ms)
    return [
        PlannedItem(kind, start, max(end, e.end_ms), (e.start_ms, e.end_ms), float(e.peak))
        for (e, kind), (start, end) in zip(moments, windows)
    ]


def score_curve(scores: Scores, class_name: str, start_ms: int, end_ms: int) -> tuple[list[int], list[float]]:
    """The scores shown with a snippet: the samples covering ``[start, end)``, times relative to ``start``."""
    times = scores.times_ms
    lo = max(0, int(np.searchsorted(times, start_ms, side="right")) - 1)
    hi = int(np.searchsorted(times, end_ms, side="left"))
    column = scores.column(class_name)[lo:hi]
    return [int(t) - start_ms for t in times[lo:hi]], [round(float(v), 4) for v in np.nan_to_num(column)]


@dataclass
class ReviewItem:
    """A moment on the page and what was decided about it (the span relative to the snippet)."""

    index: int
    kind: str
    video: Path
    video_index: int
    clip: Path
    start_ms: int
    end_ms: int
    predicted: tuple[int, int]
    peak: float
    curve: tuple[list[int], list[float]]
    span: tuple[int, int] = (0, 0)
    decision: str | None = None  # accepted, rejected, unsure
    written: str | None = None  # the line this review last wrote for the clip
    message: str | None = None  # why the last decision was refused, or the snippet failed
    made: bool = False  # the snippet exists (made by this review)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.span == (0, 0):
            self.span = self.predicted

    @property
    def name(self) -> str:
        return self.clip.name

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


class ReviewSession:
    """The moments of one ``review --serve`` and the decisions made about them; thread-safe."""

    def __init__(
        self,
        items: Sequence[ReviewItem],
        *,
        label_path: Path,
        out_dir: Path,
        iteration: int,
        model_path: Path,
        threshold: float,
        crop: Region | None,
        span_label: str | None,
        videos: Sequence[Path],
    ):
        self.items = list(items)
        self.by_name = {item.name: item for item in self.items}
        self.label_path = Path(label_path)
        self.out_dir = Path(out_dir)
        self.iteration = iteration
        self.model_path = Path(model_path)
        self.threshold = threshold
        self.crop = crop
        self.span_label = span_label
        self.videos = list(videos)
        self._lock = threading.Lock()
        self._making = 0  # snippets being made now
        self._idle = threading.Condition()
        self.header = section_header(
            iteration,
            "autotosis review --serve",
            model=self.model_path.name,
            threshold=threshold,
            crop=crop,
            explanation=(
                "Decided on the review page: a span is a highlight, ~span unsure, no span = no highlight in the clip.",
            ),
        )

    # ----------------------------------------------------------------------- reading

    def summary(self) -> dict[str, Any]:
        counts = {word: sum(1 for i in self.items if i.decision == word) for word in ACTIONS.values()}
        return {
            "iteration": self.iteration,
            "labels": str(self.label_path),
            "model": str(self.model_path),
            "threshold": self.threshold,
            "items": len(self.items),
            "decisions": sum(counts.values()),
            **counts,
            "retrain": self.retrain_command(),
        }

    def retrain_command(self) -> str:
        new_model = self.model_path.with_name(f"{self.model_path.stem}-iter{self.iteration}.pt")
        return f"autotosis train {shlex.quote(str(self.label_path))} -o {shlex.quote(str(new_model))}"

    def item_state(self, item: ReviewItem) -> dict[str, Any]:
        return {
            "index": item.index,
            "name": item.name,
            "kind": item.kind,
            "video": item.video.name,
            "video_index": item.video_index,
            "snippet": SNIPPET_PREFIX + urllib.parse.quote(item.name),
            "start_ms": item.start_ms,
            "end_ms": item.end_ms,
            "duration_ms": item.duration_ms,
            "predicted": list(item.predicted),
            "span": list(item.span),
            "peak": round(item.peak, 4),
            "decision": item.decision,
            "line": item.written,
            "message": item.message,
            "curve": {"t": item.curve[0], "v": item.curve[1]},
        }

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "summary": self.summary(),
                "videos": [str(v.name) for v in self.videos],
                "threshold": self.threshold,
                "step_ms": ADJUST_STEP_MS,
                "items": [self.item_state(item) for item in self.items],
            }

    # ----------------------------------------------------------------------- snippets

    def snippet(self, name: str) -> Path | None:
        """The snippet called ``name``, made now if it is not yet; None for a name that is none of this review's."""
        item = self.by_name.get(name)
        if item is None:
            return None
        self._make_snippet(item)
        return item.clip

    def _make_snippet(self, item: ReviewItem) -> None:
        with item.lock:
            if item.made and item.clip.is_file():
                return
            with self._idle:
                self._making += 1
            try:
                self._render(item)
            finally:
                with self._idle:
                    self._making -= 1
                    self._idle.notify_all()

    def _render(self, item: ReviewItem) -> None:
        from autotosis.media import probe
        from autotosis.outputs.render import ReelPart, RenderOptions, render_reel

        info = probe.probe(item.video)
        options = RenderOptions(overlay=False)
        if info.height > SNIPPET_MAX_HEIGHT:
            width = info.width * float(info.sar) * SNIPPET_MAX_HEIGHT / info.height
            options = RenderOptions(overlay=False, width=int(round(width)), height=SNIPPET_MAX_HEIGHT)
        event = Event(item.start_ms, item.end_ms, "review", item.peak, item.peak, item.start_ms)
        try:
            render_reel([ReelPart(item.video, (event,), None)], item.clip, options, force=True)
        except AutotosisError as exc:
            item.message = f"the snippet could not be made: {exc}"
            raise
        item.made = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the snippets being made to be finished; True when none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._making == 0, timeout)

    # ----------------------------------------------------------------------- decisions

    def decide(self, index: int, action: str, *, edge: str | None = None, delta_ms: int = 0) -> dict[str, Any]:
        """Apply one key press to item ``index``: ``accept``/``reject``/``unsure`` (written at once) or
        ``adjust`` (``edge`` start|end by ``delta_ms``; rewritten at once when the item is decided).

        Returns the item's state and the summary; raises ReviewConflict (the file untouched, the message
        kept on the item), UsageError for a bad action, KeyError for an unknown item."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self.items):
            raise KeyError(index)
        if action != "adjust" and action not in ACTIONS:
            raise UsageError(f"unknown action {action!r}", hint="accept, reject, unsure or adjust")
        item = self.items[index]
        if action in ACTIONS or item.decision is not None:
            self._make_snippet(item)  # the line names the clip: it must exist (made outside the lock: it is slow)
        with self._lock:
            if action == "adjust":
                span, decision = self._adjusted(item, edge, delta_ms), item.decision
                write = decision is not None and span != item.span
            else:
                span, decision = item.span, ACTIONS[action]
                write = True  # also when unchanged: the file may have changed, and then the page says so
            if write and decision is not None:
                line = self._line(item, span, decision)
                try:
                    self._write(item, line)
                except ReviewConflict as exc:
                    item.message = str(exc)
                    if exc.line_gone:  # the file no longer holds this page's decision: the hand edit stands
                        item.written, item.decision = None, None
                    raise
                item.written = line
            item.span, item.decision, item.message = span, decision, None
            return {"item": self.item_state(item), "summary": self.summary()}

    def _adjusted(self, item: ReviewItem, edge: str | None, delta_ms: int) -> tuple[int, int]:
        if edge not in ("start", "end") or not isinstance(delta_ms, int) or isinstance(delta_ms, bool):
            raise UsageError("adjust needs edge start|end and a whole number delta_ms")
        start, end = item.span
        if edge == "start":
            start = min(max(0, start + delta_ms), end - MIN_SPAN_MS)
        else:
            end = max(min(item.duration_ms, end + delta_ms), start + MIN_SPAN_MS)
        if start < 0 or end > item.duration_ms or end - start < MIN_SPAN_MS:
            return item.span  # no room to move
        return start, end

    def _line(self, item: ReviewItem, span: tuple[int, int], decision: str) -> str:
        spans = () if decision == "rejected" else (Span(*span, unsure=decision == "unsure", label=self.span_label),)
        kind = " (near miss)" if item.kind == NEAR_MISS else ""
        where = f"{item.video.name} {label_time(item.start_ms)}-{label_time(item.end_ms)}"
        comment = f"{decision}{kind}: {comment_safe(where)}, peak {item.peak:.2f}"
        return f"{format_clip_line(item.clip, spans, self.label_path)}  # {comment}"

    def _write(self, item: ReviewItem, line: str) -> None:
        """Merge ``line`` into the label file as it is now and replace the file atomically; when the file
        changes between reading and replacing, merge again."""
        path = self.label_path
        for _ in range(_WRITE_TRIES):
            try:
                before = path.read_bytes()
                mode = path.stat().st_mode & 0o7777
            except FileNotFoundError:
                raise ReviewConflict(f"{path} is gone: nothing was written", hint="put the label file back") from None
            except OSError as exc:
                raise FileSystemError(f"{path}: cannot read: {exc.strerror or exc}") from None
            try:
                text = before.decode("utf-8")
            except UnicodeDecodeError:
                raise ReviewConflict(f"{path.name} is not UTF-8 text now: nothing was written") from None
            merged = merge_review_line(
                text,
                path,
                iteration=self.iteration,
                header=self.header,
                clip=item.clip,
                previous=item.written,
                line=line,
            )
            with contextlib.suppress(_ChangedMeanwhile), atomic_path(path, force=True) as tmp:
                tmp.write_bytes(merged.encode("utf-8"))
                if path.read_bytes() != before:
                    raise _ChangedMeanwhile
                break
        else:
            raise ReviewConflict(f"{path} kept changing while the decision was written: nothing was written")
        with contextlib.suppress(OSError):
            os.chmod(path, mode)  # the replaced file keeps the user's permissions


class _ChangedMeanwhile(Exception):
    pass


def open_review(
    videos: Sequence[Path],
    model_path: Path,
    label_path: Path,
    out_dir: Path,
    params: EventParams,
    *,
    class_name: str | None = None,
    iteration: int | None = None,
    scan: ScanOptions | None = None,
    near_misses: int = DEFAULT_NEAR_MISSES,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> ReviewSession:
    """Scan ``videos`` and plan the review page: each video's events and near misses.  Nothing is written
    yet: snippets are made when first viewed, label lines when decided."""
    from autotosis.detect.pipeline import scan_events
    from autotosis.model.predictor import read_model_info

    label_path, out_dir = Path(label_path), Path(out_dir)
    labels = parse_labels(label_path, check_files=False)
    before = label_path.read_text(encoding="utf-8")
    info = read_model_info(Path(model_path))
    labels = match_model_classes(labels, info.classes, model=str(model_path), exact=True)
    class_name = class_name or info.positive_class()
    if class_name not in info.classes or class_name == "background":
        raise UsageError(
            f"no class {class_name!r} to review", hint=f"the model's classes are {', '.join(info.classes[1:])}"
        )
    if near_misses < 0:
        raise UsageError("--near-misses must be 0 or more")
    span_label = class_name if len(labels.class_names()) > 2 else None
    iteration = iteration or next_iteration(before, [e.raw_path for e in labels.entries], out_dir)
    listed = {e.path: e.line for e in labels.entries}
    items: list[ReviewItem] = []
    used: set[str] = set()
    for video_index, video in enumerate(Path(v) for v in videos):
        found = scan_events(video, model_path, scan, class_name=class_name, params=params, progress=progress)
        stem = safe_stem(video)
        for copy in range(2, 1000):
            if not any(name.startswith(f"iter{iteration}_{stem}_") for name in used):
                break
            stem = f"{safe_stem(video)}-{copy}"  # two videos of one name in different folders
        counters = {EVENT: 0, NEAR_MISS: 0}
        for planned in plan_items(found.scores, class_name, params, near_misses=near_misses):
            counters[planned.kind] += 1
            letter = "h" if planned.kind == EVENT else "n"
            name = f"iter{iteration}_{stem}_{letter}{counters[planned.kind]}.mp4"
            used.add(name)
            target = out_dir / name
            check_writable(target, force)
            where = Path(os.path.normpath(os.path.abspath(target)))
            if where in listed:
                raise UsageError(
                    f"{target} is already listed in {label_path} (line {listed[where]})",
                    hint="give another --iteration, or delete that line first",
                )
            core = (planned.core[0] - planned.start_ms, planned.core[1] - planned.start_ms)
            items.append(
                ReviewItem(
                    index=len(items),
                    kind=planned.kind,
                    video=video,
                    video_index=video_index,
                    clip=target,
                    start_ms=planned.start_ms,
                    end_ms=planned.end_ms,
                    predicted=core,
                    peak=planned.peak,
                    curve=score_curve(found.scores, class_name, planned.start_ms, planned.end_ms),
                )
            )
    # The page lists each video's events first, then its near misses.
    items.sort(key=lambda i: (i.video_index, i.kind != EVENT, i.start_ms))
    for index, item in enumerate(items):
        item.index = index
    return ReviewSession(
        items,
        label_path=label_path,
        out_dir=out_dir,
        iteration=iteration,
        model_path=Path(model_path),
        threshold=params.threshold,
        crop=info.crop,
        span_label=span_label,
        videos=[Path(v) for v in videos],
    )


# --------------------------------------------------------------------------- the server


def route(raw_path: str) -> tuple[str, str]:
    """What a request path asks for: ``(page|state|decide|snippet, name)``, ``(forbidden, why)`` for a path
    trick, ``(missing, "")`` for anything else.  No file-system path is ever made from the request."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    lowered = path.lower()
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or "\x00" in path
        or any(code in lowered for code in ("%2f", "%5c", "%00"))
    ):
        return "forbidden", "the path is not a plain path of this page"
    try:
        decoded = urllib.parse.unquote(path, errors="strict") if "%" in path else path
    except UnicodeDecodeError:
        return "forbidden", "the path is not UTF-8"
    if "%" in decoded or any(part in (".", "..") for part in decoded.split("/")) or "\x00" in decoded:
        return "forbidden", "the path leaves the review's folder"
    if decoded in ("/", "/index.html"):
        return "page", ""
    if decoded == "/api/state":
        return "state", ""
    if decoded == "/api/decide":
        return "decide", ""
    if decoded.startswith(SNIPPET_PREFIX):
        name = decoded[len(SNIPPET_PREFIX) :]
        if name and "/" not in name:
            return "snippet", name
    return "missing", ""


def inside(path: Path, folder: Path) -> bool:
    """True when ``path``, with every symlink followed, lies in ``folder`` (also with links followed)."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base and real != base


class ReviewServer:
    """The review page on ``http://127.0.0.1:PORT/`` (``port`` 0: a free one).  ``start()`` serves in a
    daemon thread; ``stop()`` (or leaving the ``with`` block) stops it and closes the socket."""

    def __init__(self, session: ReviewSession, *, port: int = 0):
        if not 0 <= port <= 65535:
            raise UsageError(f"--port {port} is not a port number", hint="0 to 65535; 0 picks a free one")
        try:
            self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} is in use", hint="give another --port, or 0 to pick a free one"
                ) from None
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self.session = session
        self.token = secrets.token_urlsafe(24)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.httpd.review = self
        self.stopped = False
        self._thread: threading.Thread | None = None

    @property
    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def start(self) -> ReviewServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="autotosis-review", daemon=True
            )
            self._thread.start()
        return self

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True while the server still runs."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return self._thread.is_alive()

    def stop(self) -> None:
        self.stopped = True  # connections a browser keeps open get no further answers
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self.httpd.server_close()
        # A snippet being made finishes (seconds), so no temporary file is left beside the clips.
        self.session.wait_idle(SNIPPET_WAIT_S)

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a browser holding a connection open never keeps the process alive
    review: ReviewServer

    def handle_error(self, request, client_address) -> None:
        pass  # a browser that drops a connection (it often does while seeking a video) is no error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "autotosis-review"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # library code never prints

    # ----------------------------------------------------------------------- dispatch

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _allowed_host(self) -> bool:
        if self.server.review.stopped:
            self.close_connection = True
            self._send_text(HTTPStatus.SERVICE_UNAVAILABLE, "the review server has stopped")
            return False
        if self.headers.get("Host", "") in self.server.review.hosts:
            return True
        self._send_text(HTTPStatus.FORBIDDEN, "this page is served for 127.0.0.1 only")
        return False

    def _get(self, head: bool) -> None:
        if not self._allowed_host():
            return
        kind, detail = route(self.path)
        review = self.server.review
        if kind == "forbidden":
            self._send_text(HTTPStatus.FORBIDDEN, f"forbidden: {detail}", head=head)
        elif kind == "page":
            nonce = secrets.token_urlsafe(16)
            body = page_html(nonce=nonce, token=review.token).encode("utf-8")
            policy = (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; media-src 'self'; "
                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            )
            self._send(
                HTTPStatus.OK, "text/html; charset=utf-8", body, head=head, extra={"Content-Security-Policy": policy}
            )
        elif kind == "state":
            self._send_json(HTTPStatus.OK, review.session.state(), head=head)
        elif kind == "snippet":
            self._snippet(detail, head)
        elif kind == "decide":
            self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "POST a decision", head=head, extra={"Allow": "POST"})
        else:
            self._send_text(HTTPStatus.NOT_FOUND, "not found", head=head)

    def do_POST(self) -> None:
        self.close_connection = True  # until the body is read: an unread body must not pass for the next request
        if not self._allowed_host():
            return
        kind, detail = route(self.path)
        review = self.server.review
        if kind == "forbidden":
            return self._send_text(HTTPStatus.FORBIDDEN, f"forbidden: {detail}")
        if kind != "decide":
            return self._send_text(HTTPStatus.NOT_FOUND, "not found")
        if not secrets.compare_digest(self.headers.get("X-Review-Token", ""), review.token):
            return self._send_json(HTTPStatus.FORBIDDEN, {"error": "this request did not come from the review page"})
        if self.headers.get_content_type() != "application/json":
            return self._send_json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the decision as JSON"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is needed"})
        if not 0 <= length <= _MAX_BODY:
            return self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "the decision is too long"})
        try:
            raw = self.rfile.read(length)
            self.close_connection = False
            body = json.loads(raw.decode("utf-8"))
            index, action = body["item"], body["action"]
            edge, delta = body.get("edge"), body.get("delta_ms", 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": 'expected {"item": N, "action": "..."}'})
        session = review.session
        try:
            answer = session.decide(index, action, edge=edge, delta_ms=delta)
        except KeyError:
            return self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no item {index!r}"})
        except ReviewConflict as exc:
            item = session.items[index]
            return self._send_json(
                HTTPStatus.CONFLICT,
                {"error": str(exc), "item": session.item_state(item), "summary": session.summary()},
            )
        except UsageError as exc:
            return self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except AutotosisError as exc:  # the snippet could not be made, the file could not be written
            return self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
        except Exception as exc:  # a bug: the page says so instead of hanging
            return self._send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc.__class__.__name__}: {exc}"}
            )
        self._send_json(HTTPStatus.OK, answer)

    # ----------------------------------------------------------------------- snippets

    def _snippet(self, name: str, head: bool) -> None:
        review = self.server.review
        try:
            path = review.session.snippet(name)
        except AutotosisError as exc:
            return self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc), head=head)
        if path is None:
            return self._send_text(HTTPStatus.NOT_FOUND, "not found", head=head)
        if path.is_symlink() or not inside(path, review.session.out_dir):
            return self._send_text(HTTPStatus.FORBIDDEN, "forbidden: not a file of this review", head=head)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return self._send_text(HTTPStatus.NOT_FOUND, "not found", head=head)
        with handle:
            size = os.fstat(handle.fileno()).st_size
            wanted = _byte_range(self.headers.get("Range"), size)
            if wanted is None:
                self._send_text(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    "bad range",
                    head=head,
                    extra={"Content-Range": f"bytes */{size}"},
                )
                return
            first, last = wanted
            partial = self.headers.get("Range") is not None
            self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            if partial:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if head:
                return
            handle.seek(first)
            left = last - first + 1
            with contextlib.suppress(OSError):  # the browser stopped reading (it seeks, or moved on)
                while left > 0:
                    chunk = handle.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)

    # ----------------------------------------------------------------------- answers

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    def _send_text(self, status: HTTPStatus, text: str, *, head: bool = False, extra: dict | None = None) -> None:
        self._send(status, "text/plain; charset=utf-8", (text + "\n").encode("utf-8"), head=head, extra=extra)

    def _send_json(self, status: HTTPStatus, data: Any, *, head: bool = False) -> None:
        self._send(status, "application/json", json.dumps(data).encode("utf-8"), head=head)


_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks for (the whole file without one); None when unsatisfiable."""
    if header is None:
        return (0, size - 1) if size else (0, -1)
    match = _RANGE_RE.fullmatch(header.strip())
    if not match or not (match[1] or match[2]):
        return (0, size - 1) if size else (0, -1)  # a form we do not serve in parts: the whole file
    if match[1]:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        first, last = max(0, size - int(match[2])), size - 1
    if first >= size or first > last:
        return None
    return first, last
