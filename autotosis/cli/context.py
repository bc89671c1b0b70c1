"""The Context every command gets, and the config file's values for the options not given."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from autotosis.cli.parser import Parser, StoreConst
from autotosis.core.config import Config
from autotosis.core.errors import UsageError
from autotosis.core.progress import JsonLinesProgress, ProgressCallback, RichProgress, no_progress


def counted(n: int, noun: str) -> str:
    """ "1 event", "3 events": a count with its noun in the right number (nouns with a plain -s plural)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass
class Context:
    """What every command gets: console, progress, config and the explicitly given options."""

    debug: bool
    progress_mode: str
    config: Config
    explicit: set[str]
    actions: dict[str, argparse.Action]
    quiet: bool = False
    _reporters: list = field(default_factory=list)

    @property
    def console(self):
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True, emoji=False)  # ":fire:" in a file name stays text

    def say(self, text: str, *, markup: bool = False) -> None:
        """Print a line; plain text unless ``markup`` (then escape the names in it), so a file
        called "[final] vod.mp4" is printed as it is."""
        if not self.quiet:
            self.console.print(text, markup=markup)

    @contextlib.contextmanager
    def progress(self) -> Iterator[ProgressCallback]:
        mode = self.progress_mode
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        if mode == "none":
            yield no_progress
            return
        reporter = RichProgress() if mode == "bar" else JsonLinesProgress()
        try:
            yield reporter
        finally:
            reporter.close()

    def apply_config(self, args: argparse.Namespace, task: str | None) -> None:
        """Fill options the user did not give from autotosis.toml ([defaults], then [task.NAME])."""
        for key, value in self.config.values_for(task).items():
            action = self.actions.get(key)
            if action is None or key in self.explicit:
                continue
            setattr(args, key, _config_value(self.config, key, value, action))


def _config_value(config: Config, key: str, value: object, action: argparse.Action) -> object:
    where = f"{config.path}: {key}"
    if isinstance(action, StoreConst) and isinstance(action.const, bool):  # --flag or --no-flag
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value if action.const else not value
    if action.type is None:
        return value
    try:
        return action.type(str(value))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{where}: {exc}") from None


def check_config_keys(config: Config, parsers: dict[str, Parser]) -> None:
    """A key that is no command's option is a typo: say so instead of ignoring it."""
    known = {a.dest for p in parsers.values() for a in p.options}
    for section, values in [("defaults", config.defaults), *((f"task.{t}", v) for t, v in config.tasks.items())]:
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = (
                    f"did you mean {close[0].replace('_', '-')!r}?"
                    if close
                    else "keys are long option names, e.g. threshold or min-length"
                )
                raise UsageError(f"{config.path}: [{section}] unknown option {key.replace('_', '-')!r}", hint=hint)
