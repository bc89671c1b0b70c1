"""Finding ffmpeg and ffprobe, running them, and stopping the processes they become (Ctrl-C, SIGTERM, exit).

The one other child is Python itself (``run_python``): work whose libraries must not load into this
process (the ONNX export needs torch; the scan that runs the export does not).
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from autotosis.core.errors import MediaError, ToolMissingError

MIN_FFMPEG_VERSION = (5, 1)
_STDERR_TAIL_LINES = 25


# --------------------------------------------------------------------------- tools


def _tool(name: str) -> str:
    """Path of ffmpeg/ffprobe; ``AUTOTOSIS_FFMPEG`` may point at another ffmpeg build."""
    override = os.environ.get(f"AUTOTOSIS_{name.upper()}")
    found = override or shutil.which(name)
    if not found:
        raise ToolMissingError(
            f"{name} was not found on PATH",
            hint="install it (Debian/Ubuntu: apt-get install ffmpeg) or run `make demo` once",
        )
    _tool_version(name, found)  # once per process: a too old build fails at the start, not mid-run
    return found


def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg on PATH; ToolMissingError when absent or too old."""
    return _tool_version("ffmpeg", _tool("ffmpeg"))


@functools.lru_cache(maxsize=None)
def _tool_version(name: str, path: str) -> tuple[int, int]:
    """(major, minor) of the ffmpeg/ffprobe at ``path``; ToolMissingError when it does not run or is too old."""
    try:
        out = _run([path, "-hide_banner", "-version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(
            f"{name} ({path}) does not run: {exc}",
            hint="install a working ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)",
        ) from exc
    match = re.search(rf"{name} version n?(\d+)\.(\d+)", out.stdout.decode("utf-8", "replace"))
    if not match:
        # Git builds print e.g. "N-112345-g..."; assume they are new enough.
        return (99, 0)
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_FFMPEG_VERSION:
        raise ToolMissingError(
            f"{name} {version[0]}.{version[1]} ({path}) is too old",
            hint=f"autotosis needs ffmpeg >= {MIN_FFMPEG_VERSION[0]}.{MIN_FFMPEG_VERSION[1]}",
        )
    return version


def _url(path: Path | str) -> str:
    # "file:" stops ffmpeg from reading "a:b.mp4" as protocol "a" or "-x.mp4" as an option.
    return "file:" + str(Path(path).absolute())


def _tail(text: str | bytes, lines: int = _STDERR_TAIL_LINES) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def _last_error_line(stderr_tail: str) -> str:
    """The most telling line of ffmpeg's stderr, for one-line error messages."""
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"error|invalid|no such|not found|could not|unable|failed|denied|no space", line, re.I):
            return re.sub(r"^\[[^]]*\]\s*", "", line).strip()
    return lines[-1].strip() if lines else "ffmpeg failed"


def run_ffmpeg(args: Sequence[str], *, what: str, path: Path | str | None = None, timeout: float | None = None) -> None:
    """Run ffmpeg with ``args`` (argv list); raise MediaError with its stderr tail on failure."""
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    try:
        proc = _run(argv, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{what}: ffmpeg did not finish within {timeout:.0f} s", path) from exc
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(
            f"{what} failed: {_last_error_line(tail) if tail else _signal_text(proc.returncode)}",
            path,
            stderr_tail=tail,
        )


def _signal_text(returncode: int) -> str:
    """Why ffmpeg stopped when it printed nothing: usually a signal (e.g. SIGXFSZ at a file size limit)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        limit = " (file size limit reached)" if name == "SIGXFSZ" else ""
        return f"ffmpeg was killed by {name}{limit}"
    return f"ffmpeg exited with status {returncode}"


# --------------------------------------------------------------------------- processes
#
# How a Ctrl-C (or SIGTERM) stops ffmpeg, by design rather than by luck:
#
# * Every ffmpeg/ffprobe runs in a process group of its own (``_spawn``).  A terminal's Ctrl-C
#   reaches only autotosis, never ffmpeg behind its back (which used to race with us: ffmpeg
#   exiting on its own turned a Ctrl-C into "decoding failed"), and autotosis stops a child by
#   killing its whole group (a wrapper script and whatever it started go too).
# * Python runs signal handlers only in the main thread, but the kernel may deliver a process
#   signal to any thread (a decoder's helper thread, a torch worker).  Then a main thread
#   blocked in C (a lock, a pipe read, waitpid) is not woken, and the KeyboardInterrupt waits
#   until that call returns: a scan stalled in a real-time decode sat there for minutes
#   (issue 16).  So no wait here, and none in prefetch, blocks longer than ``POLL_S``: pipes
#   are read after poll() with a timeout, processes are waited for in slices, so a pending
#   signal is acted on within ``POLL_S`` whichever thread the kernel chose.
# * A reader in a helper thread is stopped through a ``threading.Event`` it checks between
#   those slices (``iter_frames(stop=...)``): no registry of decoders per thread, no killing
#   from another thread.  ``_CHILDREN`` only serves the exit handler, the last resort that
#   no ffmpeg outlives us.

POLL_S = 0.1

_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


class _Stopped(Exception):
    """A read gave up because its stop event was set (never leaves this module)."""


def _spawn(
    argv: Sequence[str],
    *,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    bufsize: int = 0,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ffmpeg/ffprobe in a process group of its own (see above); unbuffered pipes by default."""
    proc = subprocess.Popen(
        list(argv), stdin=stdin, stdout=stdout, stderr=stderr, bufsize=bufsize, process_group=0, env=env
    )
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    return proc


def _forget(proc: subprocess.Popen) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.discard(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group (if it still runs) and reap it.

    The group id is the child's pid, which cannot be reused before we reap the child: a
    group we kill is always ours.
    """
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=30)  # SIGKILL cannot be ignored: this is quick
        except subprocess.TimeoutExpired:
            pass
    _forget(proc)


def _wait(proc: subprocess.Popen, stop: threading.Event | None = None) -> int:
    """``proc.wait()`` in slices of POLL_S (a pending Ctrl-C is seen; ``stop`` raises _Stopped)."""
    while True:
        if stop is not None and stop.is_set():
            raise _Stopped
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            continue


def _communicate(proc: subprocess.Popen, *, timeout: float | None = None) -> tuple[bytes, bytes]:
    """``proc.communicate()`` in slices of POLL_S; on any exception (Ctrl-C, timeout) the group is killed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    except BaseException:
        _stop(proc)
        raise
    _forget(proc)
    return out or b"", err or b""


def _run(
    argv: Sequence[str], *, timeout: float | None = None, stdout=subprocess.PIPE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ffmpeg/ffprobe to the end, capturing its output; subprocess.TimeoutExpired after ``timeout``."""
    proc = _spawn(argv, stdout=stdout, env=env)
    out, err = _communicate(proc, timeout=timeout)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def run_python(code: str, args: Sequence[str]) -> tuple[int, str]:
    """Run ``code`` in a fresh interpreter of this Python (``python -c CODE ARGS``) that imports this very
    autotosis, stopped with us like ffmpeg; returns its exit status and the tail of its stderr."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    done = _run([sys.executable, "-c", code, *args], env=env)
    return done.returncode, _tail(done.stderr)


def _stop_all() -> None:
    """At exit no ffmpeg survives us, even one read by a daemon thread that was never joined."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        _stop(proc)


atexit.register(_stop_all)


def _seconds(ms: int) -> str:
    """Exact decimal seconds for ffmpeg options (no float rounding surprises)."""
    sign = "-" if ms < 0 else ""
    ms = abs(int(ms))
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"
