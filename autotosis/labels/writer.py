"""Writing label files: the canonical text of a ``LabelFile`` (clip lines, quoting, relative paths), atomic
writes, merging two files."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from autotosis.core.errors import DataError
from autotosis.core.fsutil import write_text_atomic
from autotosis.core.region import Region
from autotosis.labels.parse import _SPAN_SHAPE_RE, _Collector, _label_dir, resolve_clip_path
from autotosis.labels.values import ClipEntry, LabelFile, Span

# --------------------------------------------------------------------------- writing

_DIRECTIVE_LIKE_RE = re.compile(r"(?:task|classes)\s*=|default\s+[A-Za-z_]", re.IGNORECASE)


_HEADER = (
    "# autotosis labels: one line per clip: PATH [crop=x0,y0,x1,y1] START-END ...  "
    "(times 12.5 or m:ss.fff, 'end' = end of clip, ~START-END = unsure)"
)


def format_labels(labels: LabelFile) -> str:
    """The label text for ``labels``; parsing it at ``labels.path`` gives equal entries."""
    label_dir = _label_dir(labels.path)
    lines = [_HEADER]
    if labels.task_declared:  # a task from the file name stays so: the file keeps fitting any one-class model
        lines.append(f"# task={labels.task}")
    if labels.classes:
        lines.append(f"# classes={','.join(labels.classes)}")
    if labels.default_crop is not None:
        lines.append(f"# default crop={labels.default_crop.as_text()}")
    in_force = labels.default_crop
    for entry in labels.entries:
        # An entry without its own crop takes the default in force: emit a new default when it differs.
        if entry.own_crop is None and entry.crop != in_force:
            lines.append(f"# default crop={entry.crop.as_text() if entry.crop else 'none'}")
            in_force = entry.crop
        lines += [_comment_line(comment) for comment in entry.comments]
        lines.append(_entry_text(entry, label_dir))
    return "\n".join(lines) + "\n"


def _comment_line(text: str) -> str:
    """``# text`` on one line; a comment is never read as a directive (``# task=``, ``# classes=``, ``# default``)."""
    indent = min(len(text) - len(text.lstrip(" ")), 8)  # a little indent lists the lines under a heading
    flat = " ".join(text.split())
    if _DIRECTIVE_LIKE_RE.match(flat):
        flat = "- " + flat
    return f"# {' ' * indent}{flat}".rstrip()


def _entry_text(entry: ClipEntry, label_dir: str) -> str:
    parts = [_quote_path(_raw_path_for(entry, label_dir))]
    if entry.own_crop is not None:
        parts.append(f"crop={entry.own_crop.as_text()}")
    parts += [span.as_text() for span in entry.spans]
    return "  ".join(parts)


def format_clip_line(
    clip: Path | str, spans: Sequence[Span], label_path: Path | str, *, crop: Region | None = None
) -> str:
    """One clip line for a label file at ``label_path`` (the path relative to its folder, quoted as needed)."""
    parts = [_quote_path(relative_clip_path(clip, _label_dir(Path(label_path))))]
    if crop is not None:
        parts.append(f"crop={crop.as_text()}")
    parts += [span.as_text() for span in spans]
    return "  ".join(parts)


def new_entry(
    clip: Path, dest_dir: str, crop: Region | None, own_crop: Region | None, spans: tuple[Span, ...], line: int
) -> ClipEntry:
    """A clip entry for a label file in ``dest_dir``: the clip's path relative to it, and its canonical line."""
    raw = relative_clip_path(clip, dest_dir)
    entry = ClipEntry(
        path=resolve_clip_path(dest_dir, raw),
        raw_path=raw,
        crop=crop,
        own_crop=own_crop,
        spans=spans,
        line=line,
        source_text="",
    )
    return replace(entry, source_text=_entry_text(entry, dest_dir))


def _raw_path_for(entry: ClipEntry, label_dir: str) -> str:
    """The path as written when it still points at the clip from ``label_dir``, else a fresh one."""
    if entry.raw_path and resolve_clip_path(label_dir, entry.raw_path) == entry.path:
        return entry.raw_path
    return relative_clip_path(entry.path, label_dir)


def relative_clip_path(clip: Path | str, label_dir: Path | str) -> str:
    """``clip`` relative to ``label_dir`` when they share a folder below the root, else absolute."""
    clip_abs, dir_abs = os.path.abspath(clip), os.path.abspath(label_dir)
    try:
        common = os.path.commonpath([clip_abs, dir_abs])
        if common != os.path.dirname(common):  # not the filesystem root
            return Path(os.path.relpath(clip_abs, dir_abs)).as_posix()
    except ValueError:  # different drives on Windows
        pass
    return Path(clip_abs).as_posix()


def _quote_path(raw: str) -> str:
    if "\n" in raw or "\x00" in raw:
        raise DataError(f"clip path {raw!r} cannot be written to a label file", hint="rename the file")
    needs_quotes = (
        not raw
        or raw[0] in "\"'"
        or any(ch.isspace() or ch == "#" for ch in raw)
        or "=" in raw  # would read as an option
        or _SPAN_SHAPE_RE.fullmatch(raw) is not None  # would read as a forgotten path
    )
    if not needs_quotes:
        return raw
    return '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_labels(labels: LabelFile, path: Path, *, force: bool = False) -> None:
    """Write ``labels`` to ``path`` atomically (clip paths relative to ``path``'s folder)."""
    path = Path(path)
    write_text_atomic(path, format_labels(replace(labels, path=path)), force=force)


def merge_label_files(base: LabelFile, extra: LabelFile) -> LabelFile:
    """``base`` with ``extra``'s entries appended (paths re-relativised to ``base``'s folder).

    A clip already in ``base`` is an error pointing at ``extra``'s line.
    """
    label_dir = _label_dir(base.path)
    known = {entry.path: entry.line for entry in base.entries}
    errors = _Collector(extra.path)
    merged = list(base.entries)
    for entry in extra.entries:
        if entry.path in known:
            errors.add(
                entry.line,
                1,
                f"clip {entry.raw_path!r} is already listed in {base.path} (line {known[entry.path]})",
                "edit that line instead of importing the clip again",
            )
            continue
        known[entry.path] = entry.line
        moved = replace(entry, raw_path=_raw_path_for(entry, label_dir))
        merged.append(replace(moved, source_text=_entry_text(moved, label_dir)))
    errors.raise_if_any()
    return replace(base, entries=tuple(merged))
