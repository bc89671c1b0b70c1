"""Progress reporting for long work, decoupled from the library.

Library functions take an optional ``progress`` callback ``(stage, done, total)``; the CLI
decides how to show it: a rich bar with ETA on a terminal, JSON lines for machines
(``--progress json``), or nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[str, float, "float | None"], None]


def no_progress(stage: str, done: float, total: float | None) -> None:
    """The default callback: report nothing."""


class JsonLinesProgress:
    """One JSON object per update (rate-limited), for scripts and batch runners."""

    def __init__(self, stream: TextIO | None = None, min_interval_s: float = 0.5):
        self._stream = stream or sys.stderr
        self._min_interval = min_interval_s
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: float, total: float | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last.get(stage, 0.0) < self._min_interval:
            return
        self._last[stage] = now
        record = {"event": "progress", "stage": stage, "done": round(done, 3), "total": total}
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass


class RichProgress:
    """A rich progress display with one bar (and ETA) per stage."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._progress.start()

    def __call__(self, stage: str, done: float, total: float | None) -> None:
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()
