"""Typed errors raised by library code.

Only ``autotosis.cli`` turns these into messages and exit codes; every other module raises
them.  Each error class carries the exit status the CLI should use, so adding a new
kind of failure means adding a class here, not an ``if`` in the CLI.
"""

from __future__ import annotations

import enum
from pathlib import Path


class ExitStatus(enum.IntEnum):
    """Process exit codes (documented in ``autotosis --help``)."""

    OK = 0
    ERROR = 1  # unexpected failure (a bug): shown with a traceback under --debug
    USAGE = 2  # bad command line or config file (argparse uses 2 as well)
    LABELS = 3  # a label file is malformed or refers to a missing clip
    MEDIA = 4  # ffmpeg/ffprobe could not read or write a video
    MODEL = 5  # checkpoint missing, not ours, or from another task
    OUTPUT_EXISTS = 6  # refusing to overwrite without --force
    DATA = 7  # input data unusable (no frames, scores file malformed, ...)
    SOME_FAILED = 8  # a batch ran to the end but some of its items failed (each is named in its summary)
    FILESYSTEM = 9  # a file could not be written or read (disk full, file size limit, no permission)
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (kill, timeout, a job scheduler, docker stop): stopped as cleanly as Ctrl-C


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so everything unwinds as on Ctrl-C: ffmpeg
    children are stopped, temporary files removed, finished outputs kept."""


class AutotosisError(Exception):
    """Base class of every error the CLI reports as a one-line message."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(AutotosisError):
    exit_status = ExitStatus.USAGE


class ConfigError(UsageError):
    """A problem in autotosis.toml; the message names the file and key."""


class LabelError(AutotosisError):
    """A problem in a label file, located at ``file:line:col`` (1-based).

    Line 0 means the place has no line (a chapter in a video, a clip in an editor's timeline): the
    message names it and the error prints as ``file: message``."""

    exit_status = ExitStatus.LABELS

    def __init__(self, path: Path | str, line: int, col: int, message: str, hint: str | None = None):
        self.path = Path(path)
        self.line = line
        self.col = col
        super().__init__(message, hint)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line > 0 else str(self.path)
        text = f"{where}: {self.message}"
        return text if not self.hint else f"{text} ({self.hint})"


class LabelErrors(AutotosisError):
    """Several label problems found in one pass (``labels check`` reports them all)."""

    exit_status = ExitStatus.LABELS

    def __init__(self, errors: list[LabelError]):
        self.errors = list(errors)
        first = str(self.errors[0]) if self.errors else "label errors"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more)


class MediaError(AutotosisError):
    """ffmpeg/ffprobe failed or a file is not a usable video.

    ``stderr_tail`` holds the last lines ffmpeg printed, for --debug and bug reports.
    """

    exit_status = ExitStatus.MEDIA

    def __init__(self, message: str, path: Path | str | None = None, stderr_tail: str = "", hint: str | None = None):
        self.path = Path(path) if path is not None else None
        self.stderr_tail = stderr_tail
        super().__init__(message if path is None else f"{path}: {message}", hint)


class ToolMissingError(MediaError):
    """ffmpeg or ffprobe is not installed or too old."""


class ModelError(AutotosisError):
    exit_status = ExitStatus.MODEL


class DataError(AutotosisError):
    exit_status = ExitStatus.DATA


class FileSystemError(AutotosisError):
    """The operating system refused a read or write (disk full, file too large, permission denied)."""

    exit_status = ExitStatus.FILESYSTEM


class OutputExistsError(AutotosisError):
    exit_status = ExitStatus.OUTPUT_EXISTS

    def __init__(self, path: Path | str):
        self.path = Path(path)
        super().__init__(f"{path}: already exists", "pass --force to overwrite it")
