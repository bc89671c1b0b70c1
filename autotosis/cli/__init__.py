"""Command-line interface: the only package that prints errors and chooses exit codes.

main() parses the command line (parser.py), builds the Context (context.py) and runs the command's
handler (one module per group of commands); typed errors (autotosis.core.errors) become exit codes here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from autotosis.core.config import load_config
from autotosis.core.errors import AutotosisError, ExitStatus, LabelErrors, Terminated

__all__ = ["main"]


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread while a command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. main() called by a test thread)
        return

    def stop(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence(stream) -> None:
    """Point a closed pipe's file descriptor at /dev/null, so that the interpreter's last flush
    does not fail again (Python's documented recipe for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _say(*lines: str) -> None:
    """Error lines on stderr; a reader that went away (``2>&1 | head -1``) must not change the exit status."""
    try:
        for line in lines:
            print(line, file=sys.stderr)
        sys.stderr.flush()
    except BrokenPipeError:
        _silence(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from autotosis.cli.context import Context, check_config_keys
    from autotosis.cli.parser import build_parser, given_options

    parser, parsers = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code or 0)
    explicit = given_options(args)
    debug = args.debug
    try:
        config = load_config(Path(args.config) if args.config else None)
        name = args.labels_command if args.command == "labels" else args.command
        actions = {a.dest: a for a in parsers[name].options}
        ctx = Context(
            debug=debug,
            progress_mode=args.progress,
            config=config,
            explicit=explicit,
            actions=actions,
            quiet=args.quiet,
        )
        check_config_keys(config, parsers)
        ctx.apply_config(args, None)
        with _sigterm_as_interrupt():
            return int(args.handler(ctx, args))
    except LabelErrors as exc:
        summary = [f"autotosis: {len(exc.errors)} problems in label files"] if len(exc.errors) > 1 else []
        _say(*(f"autotosis: {error}" for error in exc.errors), *summary)
        return int(exc.exit_status)
    except AutotosisError as exc:
        _say(f"autotosis: error: {exc}")
        if debug:
            stderr_tail = getattr(exc, "stderr_tail", "")
            if stderr_tail:
                _say("ffmpeg said:\n" + stderr_tail)
            traceback.print_exc()
        return int(exc.exit_status)
    except Terminated:
        _say("autotosis: terminated")
        return int(ExitStatus.TERMINATED)
    except KeyboardInterrupt:
        _say("autotosis: interrupted")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # the reader of our output went away (``| head``): not an error
        _silence(sys.stdout)
        return int(ExitStatus.OK)
    except OSError as exc:  # the system refused a file operation outside fsutil's atomic writes
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"autotosis: error: {where}{exc.strerror or exc}")
        return int(ExitStatus.FILESYSTEM)
    except Exception as exc:  # a bug: short message unless --debug
        if debug:
            traceback.print_exc()
        _say(f"autotosis: internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)")
        return int(ExitStatus.ERROR)
