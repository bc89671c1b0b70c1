"""What a label file holds: spans, clip entries, notes, the file itself; task and class names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from autotosis.core.errors import ModelError
from autotosis.core.region import Region
from autotosis.core.timefmt import label_time

CLASSES_HINT = (
    "declare the classes once, e.g. '# classes=rage,pog'; class names start with a letter or _ "
    "and use letters, digits, _ and - ('background' and 'end' are reserved)"
)
TASK_HINT = "task names use letters, digits, _ and -, e.g. '# task=rage'"
_TASK_RE = re.compile(r"[A-Za-z0-9_-]+")
_CLASS_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_RESERVED_CLASSES = {"background", "end"}
# The task of a binary file whose name says nothing (labels.txt, heldout.txt, train2.txt), and the
# name every output shows instead of such a name (``published_name``).
DEFAULT_TASK = "highlight"
# Words that name a file or a folder, not what happens on screen.  A name made only of these
# words (and numbers) is generic: "labels", "train_2", "my labels (copy)", "default", "images".
_GENERIC_NAME_WORDS = frozenset(
    """
    labels label labelled labeled labeling labelling data dataset datasets set sets train training trainset test tests
    testing testset eval evaluation val valid validation heldout held out holdout hold dev copy new old final draft tmp
    temp untitled spans span clips clip all example examples sample samples template my backup bak edit edited fixed v
    ver version part file files list default defaults image images img imgs frame frames folder dir output outputs
    out class classes task model positive positives
""".split()
)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Span:
    """A marked span in milliseconds; ``end_ms`` None means "to the end of the clip"."""

    start_ms: int
    end_ms: int | None
    unsure: bool = False
    label: str | None = None  # the span's class; None = the file's only class (the task)
    # Line and column of the span's token (for error messages); not part of the value.  The line
    # is 0 when unknown; it differs from its entry's line when one clip is listed on two lines.
    col: int = field(default=0, compare=False, repr=False)
    line: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError(f"span start {self.start_ms} ms is negative")
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"span end {self.end_ms} ms is not after its start {self.start_ms} ms")

    def resolved_end(self, duration_ms: int) -> int:
        """The end in ms, with "end" replaced by the clip's duration (not clamped to it)."""
        return duration_ms if self.end_ms is None else self.end_ms

    def as_text(self) -> str:
        end = "end" if self.end_ms is None else label_time(self.end_ms)
        prefix = f"{self.label}:" if self.label else ""
        return f"{'~' if self.unsure else ''}{prefix}{label_time(self.start_ms)}-{end}"


@dataclass(frozen=True)
class ClipEntry:
    """One clip line.  ``line`` and ``source_text`` locate and fingerprint the line; they are
    not part of the entry's value, so a reformatted file compares equal."""

    path: Path
    raw_path: str
    crop: Region | None
    own_crop: Region | None
    spans: tuple[Span, ...]
    line: int = field(compare=False)
    source_text: str = field(compare=False)
    # Comment lines written above the clip line (without the leading '#'), e.g. where an importer's spans
    # came from; parsing does not keep comments.
    comments: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.own_crop is not None and self.crop != self.own_crop:
            raise ValueError("a clip's effective crop must be its own crop when it has one")
        for before, after in zip(self.spans, self.spans[1:]):
            if before.end_ms is None or after.start_ms < before.end_ms:
                raise ValueError(f"spans {before.as_text()} and {after.as_text()} overlap or are not sorted")


@dataclass(frozen=True)
class LabelNote:
    """Something worth saying about a label file that is not an error (e.g. two lines of one clip merged)."""

    path: Path
    line: int
    col: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line > 0 else str(self.path)  # line 0: no line
        text = f"{where}: note: {self.message}"
        return text if not self.hint else f"{text} ({self.hint})"


@dataclass(frozen=True)
class LabelFile:
    path: Path
    task: str
    default_crop: Region | None
    entries: tuple[ClipEntry, ...]
    classes: tuple[str, ...] = ()  # declared with '# classes=a,b'; empty = binary (the task)
    task_declared: bool = True  # False: the task came from the file name ('# task=' absent)
    notes: tuple[LabelNote, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not is_valid_task(self.task):
            raise ValueError(f"{self.task!r} is not a valid task name ({TASK_HINT})")
        for name in self.classes:
            if not is_valid_class(name):
                raise ValueError(f"{name!r} is not a valid class name ({CLASSES_HINT})")

    def class_names(self) -> tuple[str, ...]:
        """The model's classes: ``background`` first, then the declared classes (or the task)."""
        return ("background", *(self.classes or (self.task,)))


def is_valid_class(name: str) -> bool:
    return bool(_CLASS_NAME_RE.fullmatch(name)) and name.lower() not in _RESERVED_CLASSES


def is_valid_task(name: str) -> bool:
    return bool(_TASK_RE.fullmatch(name))


def is_generic_name(name: str) -> bool:
    """True for a name that says nothing about the moments it marks: only words such as labels, data,
    train, test, heldout, copy, default, and numbers (``labels``, ``heldout-2``, ``my labels (copy)``, ``""``)."""
    return all(word in _GENERIC_NAME_WORDS for word in re.findall(r"[a-z]+", name.lower()))


def published_name(name: str) -> str:
    """The name outputs show for a task or class: ``name`` itself, or ``highlight`` when it is generic.

    The one home of the rule for everything people see (shorts' file names and text, the reel's
    overlay, clip names, chapters, subtitles, the report): a model trained before label files
    named their tasks this way, or on a folder called ``data``, still has the task ``labels`` or
    ``data``, and a short called ``01_labels_0.93_...`` says nothing.
    """
    return DEFAULT_TASK if is_generic_name(name) else name


def default_task(path: Path | str) -> str:
    """The task of a label file without ``# task=``: its file name (characters a task name cannot
    hold become ``_``), or ``highlight`` when the name is generic (``is_generic_name``: ``labels.txt``,
    ``heldout-2.txt``, ``my labels (copy).txt``)."""
    stem = Path(path).stem
    if is_generic_name(stem):
        return DEFAULT_TASK
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")
    return name if is_valid_task(name) else DEFAULT_TASK


def match_model_classes(
    labels: LabelFile, model_classes: Sequence[str], *, model: str = "the model", exact: bool = False
) -> LabelFile:
    """``labels`` in the model's class names, or a ModelError (exit 5) when they speak of other classes.

    The label file's classes must be the model's (``exact``) or some of them.  A binary file
    without ``# task=`` is tied to no name: with a model of one class (besides background) its
    spans are that class, so ``cp labels.txt heldout.txt`` evaluates the same model.
    """
    model_classes = tuple(model_classes)
    mine = labels.class_names()
    if set(mine) == set(model_classes) or (not exact and set(mine) <= set(model_classes)):
        return labels
    positives = [c for c in model_classes if c != "background"]
    if not labels.task_declared and not labels.classes and len(positives) == 1 and "background" in model_classes:
        return relabel_task(labels, positives[0])
    declared = _declaration(labels)
    if not labels.task_declared and not labels.classes:
        hint = (
            f"this binary file's spans could be any of the model's {len(positives)} classes: "
            f"name one with '# task=CLASS' ({', '.join(positives)}) or declare '# classes='"
        )
    else:
        hint = (
            f"use a model trained on these classes, or change {declared} (a binary file without '# task=' "
            f"works with any model of one class)"
        )
    raise ModelError(
        f"{model} knows the classes {', '.join(model_classes)}, but {labels.path} has {', '.join(mine)} ({declared})",
        hint=hint,
    )


def _declaration(labels: LabelFile) -> str:
    if labels.classes:
        return f"'# classes={','.join(labels.classes)}'"
    if labels.task_declared:
        return f"'# task={labels.task}'"
    return f"the task {labels.task!r} from its file name"


def relabel_task(labels: LabelFile, task: str) -> LabelFile:
    """A binary file's labels under another task name (spans naming the old task name the new one)."""
    if labels.classes:
        raise ValueError("only a binary label file has a task as its class")
    old = labels.task
    entries = tuple(
        replace(entry, spans=tuple(replace(span, label=task) if span.label == old else span for span in entry.spans))
        for entry in labels.entries
    )
    return replace(labels, task=task, entries=entries)
