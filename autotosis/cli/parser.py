"""The argument parser: global options, the commands in the order `--help` lists them, and which
options the user gave (public argparse API only)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from autotosis import __version__

EXIT_CODES_HELP = """exit status:
  0 ok   1 internal error   2 bad usage/config   3 label file error   4 video/ffmpeg error
  5 model/checkpoint error   6 output exists (use --force)   7 unusable data
  8 batch finished but some VODs failed (see its summary)
  9 a file could not be written or read (disk full, size limit, permissions)
  130 interrupted (Ctrl-C)   143 terminated (SIGTERM; cleaned up as after Ctrl-C)"""

# Every command, in the order `autotosis --help` lists them, and the module (autotosis.cli.NAME) that
# registers it and holds its handler. Those modules import only light modules at the top; the heavy
# ones (torch, numpy, ...) are imported inside the handlers.
COMMANDS = {
    "labels": "labels",
    "frames": "labels",
    "train": "training",
    "eval": "training",
    "review": "training",
    "sample": "labels",
    "scan": "detect",
    "events": "detect",
    "render": "outputs",
    "reel": "outputs",
    "batch": "workflows",
    "shorts": "outputs",
    "export": "outputs",
    "report": "outputs",
    "demo": "workflows",
    "export-onnx": "models",
    "stills": "outputs",
    "explain": "training",
    "live": "workflows",
}


# --------------------------------------------------------------------------- options the user gave

# An option that is given sets the attribute GIVEN + its dest on the namespace (a name no option
# can have). Markers travel with the values from a command's namespace to the main one, however
# argparse copies them; given_options() collects and removes them.
GIVEN = "autotosis given: "


class Recorded(argparse.Action):
    """Base of the actions used for every option: they note on the namespace that they were given."""

    def mark_given(self, namespace: argparse.Namespace) -> None:
        setattr(namespace, GIVEN + self.dest, True)


class Store(Recorded):
    """As action="store"."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        # A positional with nargs "?" or "*" is called with its default when nothing was given for it.
        if self.option_strings or not (values is self.default or (isinstance(values, list) and not values)):
            self.mark_given(namespace)


class Append(Recorded):
    """As action="append"."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(values)
        setattr(namespace, self.dest, items)
        self.mark_given(namespace)


class StoreConst(Recorded):
    """A flag: stores ``const`` when given."""

    def __init__(self, option_strings, dest, const=None, default=None, required=False, help=None, **kwargs):
        super().__init__(
            option_strings, dest, nargs=0, const=const, default=default, required=required, help=help, **kwargs
        )

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const)
        self.mark_given(namespace)


class StoreTrue(StoreConst):
    """As action="store_true"."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None, **kwargs):
        super().__init__(option_strings, dest, const=True, default=default, required=required, help=help, **kwargs)


class StoreFalse(StoreConst):
    """As action="store_false"."""

    def __init__(self, option_strings, dest, default=True, required=False, help=None, **kwargs):
        super().__init__(option_strings, dest, const=False, default=default, required=required, help=help, **kwargs)


_RECORDED = {None: Store, "store": Store, "append": Append, "store_true": StoreTrue, "store_false": StoreFalse}


def _add_recorded(add_argument: Callable, options: list[argparse.Action], args: tuple, kwargs: dict) -> argparse.Action:
    action = kwargs.get("action")
    if action is None or isinstance(action, str):
        if action not in _RECORDED:
            return add_argument(*args, **kwargs)  # help, version: nothing to record
        kwargs = {**kwargs, "action": _RECORDED[action]}
    made = add_argument(*args, **kwargs)
    if isinstance(made, Recorded):
        options.append(made)
    return made


class _Group:
    """An argument group (or mutually exclusive group) of a Parser: its options are recorded too."""

    def __init__(self, group, options: list[argparse.Action]):
        self._group = group
        self._options = options

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return _add_recorded(self._group.add_argument, self._options, args, kwargs)

    def __getattr__(self, name: str):
        return getattr(self._group, name)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose options are Recorded actions, listed in ``options`` (its own and its
    parents'), so that ``given_options`` can tell which the user gave."""

    def __init__(self, *args, parents=(), **kwargs):
        self.options: list[argparse.Action] = [a for p in parents for a in getattr(p, "options", ())]
        super().__init__(*args, parents=list(parents), **kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return _add_recorded(super().add_argument, self.options, args, kwargs)

    def add_argument_group(self, *args, **kwargs):
        return _Group(super().add_argument_group(*args, **kwargs), self.options)

    def add_mutually_exclusive_group(self, **kwargs):
        return _Group(super().add_mutually_exclusive_group(**kwargs), self.options)


def given_options(args: argparse.Namespace) -> set[str]:
    """The dests of the options (and positionals) the user actually gave; removes their markers from ``args``."""
    marks = [name for name in vars(args) if name.startswith(GIVEN)]
    for name in marks:
        delattr(args, name)
    return {name[len(GIVEN) :] for name in marks}


# --------------------------------------------------------------------------- the parser


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Parser]]:
    """The parser, and each command's parser by name (the labels actions by theirs: check, import)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog="autotosis",
        description="Find highlights in game-stream videos with a small classifier you train on your own labels, "
        "and cut them into a reel.\n\nTypical loop: labels check -> train -> reel (or scan -> events -> render).",
        epilog=EXIT_CODES_HELP + "\n\nRun `autotosis COMMAND --help` for a command's options. "
        "Defaults may be set in ./autotosis.toml ([defaults] and [task.NAME] tables of option names).",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"autotosis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and ffmpeg's messages on errors")
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "json", "none"),
        default="auto",
        help="progress display: bar on a terminal (auto), JSON lines on stderr, or none",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./autotosis.toml if present)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers: dict[str, Parser] = {}

    # The global options are accepted after the command too (`autotosis train ... --debug`);
    # SUPPRESS keeps a command from resetting what was given before it.
    common = Parser(add_help=False)
    g = common.add_argument_group("general")
    g.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and ffmpeg's messages on errors",
    )
    g.add_argument(
        "--progress",
        choices=("auto", "bar", "json", "none"),
        default=argparse.SUPPRESS,
        help="progress display: bar on a terminal (auto), JSON lines on stderr, or none",
    )
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="print only errors")

    def add(name: str, handler: Callable, help_text: str, description: str, parent=commands) -> Parser:
        p = parent.add_parser(
            name,
            help=help_text,
            description=description,
            formatter_class=formatter,
            epilog=EXIT_CODES_HELP,
            parents=[common],
        )
        p.set_defaults(handler=handler)
        parsers[name] = p
        return p

    for name, module in COMMANDS.items():
        importlib.import_module(f"autotosis.cli.{module}").register(commands, add, name)
    return parser, parsers
