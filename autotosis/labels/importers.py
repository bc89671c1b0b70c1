"""Importers: ``data.csv`` (one row per clip with bracketed span lists) and Audacity label tracks to label files."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from autotosis.core.errors import LabelErrors
from autotosis.core.region import Region
from autotosis.core.timefmt import label_time
from autotosis.labels.marks import MarkerWindow
from autotosis.labels.parse import _Collector, _label_dir, _read_text, _split_lines, _Token, resolve_clip_path
from autotosis.labels.values import LabelFile, LabelNote, Span, default_task, is_valid_class
from autotosis.labels.writer import new_entry

_FRACTION_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


# --------------------------------------------------------------------------- importers


@dataclass(frozen=True)
class _RawSpan:
    start_ms: int
    end_ms: int
    unsure: bool
    line: int
    col: int
    label: str | None = None


def _merge_raw_spans(spans: Iterable[_RawSpan], errors: _Collector) -> tuple[Span, ...]:
    """Sort spans, join overlapping ones of the same kind and class; other overlaps are errors."""
    merged: list[_RawSpan] = []
    for span in sorted(spans, key=lambda s: (s.start_ms, s.end_ms)):
        last = merged[-1] if merged else None
        if last is None or span.start_ms >= last.end_ms:
            merged.append(span)
        elif last.unsure == span.unsure and last.label == span.label:
            merged[-1] = replace(last, end_ms=max(last.end_ms, span.end_ms))
        elif last.unsure != span.unsure:
            errors.add(
                span.line,
                span.col,
                "an unsure span overlaps a sure one",
                "move an edge so that sure and unsure spans do not overlap",
            )
        else:
            errors.add(
                span.line,
                span.col,
                f"a {span.label or 'span'} span overlaps a {last.label or 'span'} span (line {last.line})",
                "spans of different classes must not overlap; move an edge",
            )
    return tuple(Span(s.start_ms, s.end_ms, s.unsure, s.label) for s in merged)


def _seconds_to_ms(text: str) -> int:
    """Decimal seconds text to ms, rounding half up; ValueError when not a usable time."""
    number = text.strip()
    if not _FRACTION_RE.fullmatch(number):
        raise ValueError(f"{number!r} is not a number of seconds")
    try:
        seconds = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{number!r} is not a number of seconds") from None
    if seconds > Decimal(10) ** 7:
        raise ValueError(f"{number} s is too large for a time")
    return int((seconds * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _split_csv_row(line: str) -> tuple[list[_Token], int | None]:
    """Space-delimited fields with ``"`` quoting (``""`` inside = one quote); the column of an open quote."""
    tokens: list[_Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] == " " or line[i] == "\t":
            i += 1
            continue
        start = i
        if line[i] == '"':
            out: list[str] = []
            i += 1
            while True:
                if i >= n:
                    return tokens, start + 1
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        out.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                out.append(line[i])
                i += 1
            tokens.append(_Token("".join(out), start + 1, True))
        else:
            while i < n and line[i] not in " \t":
                i += 1
            tokens.append(_Token(line[start:i], start + 1, False))
    return tokens, None


def _bracketed_numbers(text: str, opening: str, closing: str, count: int) -> list[str]:
    inner = text.strip()
    if not (inner.startswith(opening) and inner.endswith(closing)):
        raise ValueError(f"expected {opening}...{closing}")
    parts = inner[1:-1].split(",")
    if len(parts) != count:
        raise ValueError(f"expected {count} comma-separated numbers, got {len(parts)}")
    return parts


def import_data_csv(csv_path: Path, dest: Path) -> LabelFile:
    """Convert the original autotosis data.csv into labels to be written at ``dest``.

    Rows: ``path "[x0, y0, x1, y1]" "(start, end)" ...`` (seconds); paths are relative to
    the csv's folder.  Overlapping spans of a row are joined (the original allowed them).
    """
    csv_path, dest = Path(csv_path), Path(dest)
    text, _, problems = _read_text(csv_path)
    if problems:
        raise LabelErrors(problems)
    errors = _Collector(csv_path)
    csv_dir, dest_dir = _label_dir(csv_path), _label_dir(dest)
    rows: list[tuple[int, _Token, Region | None, tuple[Span, ...]]] = []
    first_line_of: dict[Path, int] = {}
    for lineno, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            continue
        tokens, open_quote = _split_csv_row(line)
        if open_quote is not None:
            errors.add(lineno, open_quote, "unterminated quote", 'close the field with "')
            continue
        row = _parse_csv_row(tokens, lineno, errors)
        if row is None:
            continue
        path_token, crop, spans = row
        clip = resolve_clip_path(csv_dir, path_token.text)
        if clip in first_line_of:
            errors.add(
                lineno,
                path_token.col,
                f"clip {path_token.text!r} is listed twice (first on line {first_line_of[clip]})",
                "put all spans of a clip in one row",
            )
            continue
        first_line_of[clip] = lineno
        rows.append((lineno, path_token, crop, spans))
    if not rows and not errors.errors:
        errors.add(1, 1, "no clip rows found", 'expected rows like: clip.mp4 "[x0, y0, x1, y1]" "(start, end)" ...')
    errors.raise_if_any()

    crops = {crop for _, _, crop, _ in rows}
    shared = crops.pop() if len(crops) == 1 else None
    entries = []
    for lineno, path_token, crop, spans in rows:
        clip = resolve_clip_path(csv_dir, path_token.text)
        own = None if shared is not None else crop
        entries.append(new_entry(clip, dest_dir, crop, own, spans, lineno))
    return LabelFile(
        path=dest, task=default_task(dest), default_crop=shared, entries=tuple(entries), task_declared=False
    )


def _parse_csv_row(
    tokens: list[_Token], lineno: int, errors: _Collector
) -> tuple[_Token, Region | None, tuple[Span, ...]] | None:
    path_token = tokens[0]
    if not path_token.text or "\x00" in path_token.text:
        errors.add(lineno, path_token.col, "bad clip path", "the first field of a row is the clip path")
        return None
    count_before = len(errors.errors)
    crop: Region | None = None
    spans: list[_RawSpan] = []
    for token in tokens[1:]:
        field_text = token.text.strip()
        if field_text.startswith("["):
            try:
                if crop is not None:
                    raise ValueError("a second crop in one row")
                parts = _bracketed_numbers(field_text, "[", "]", 4)
                crop = Region.parse(",".join(parts))
            except ValueError as exc:
                errors.add(lineno, token.col, f"bad crop {token.text!r}: {exc}", 'write the crop as "[x0, y0, x1, y1]"')
        elif field_text.startswith("("):
            try:
                start_text, end_text = _bracketed_numbers(field_text, "(", ")", 2)
                start, end = _seconds_to_ms(start_text), _seconds_to_ms(end_text)
                if end <= start:
                    raise ValueError("the end is not after the start")
                spans.append(_RawSpan(start, end, False, lineno, token.col))
            except ValueError as exc:
                errors.add(
                    lineno, token.col, f"bad span {token.text!r}: {exc}", 'write spans as "(start, end)" in seconds'
                )
        else:
            errors.add(
                lineno,
                token.col,
                f"unexpected field {token.text!r}",
                'a row is: path "[x0, y0, x1, y1]" "(start, end)" ...',
            )
    merged = _merge_raw_spans(spans, errors)
    if len(errors.errors) != count_before:
        return None
    return path_token, crop, merged


DEFAULT_POINT_WINDOW_MS = 2000


def import_audacity(
    label_txt: Path,
    clip: Path,
    dest: Path,
    *,
    crop: Region | None = None,
    point_window_ms: int = DEFAULT_POINT_WINDOW_MS,
    window: MarkerWindow | None = None,
) -> LabelFile:
    """Convert an Audacity label track (``start<TAB>end<TAB>text`` in seconds) for ``clip``.

    The label text is the span's class (``rage``, ``pog``): one class gives a binary file with
    ``# task=CLASS``, several a multi-class file with ``# classes=``; no text at all, a binary
    file named after ``dest``.  ``~`` before the text (``~pog``, ``~ maybe not``) or the text
    ``unsure`` marks an unsure span; its text is its class when it names one of the sure
    labels' classes, else a comment.  A point label (start = end) becomes a span of
    ``point_window_ms`` centred on it (cut at 0), or ``window`` when given, with a note; with an
    empty window it is an error.  Spectral-selection lines (starting with a backslash) are skipped.
    """
    window = window if window is not None else MarkerWindow.centred(point_window_ms)
    centred = abs(window.before_ms - window.after_ms) <= 1
    label_txt, dest = Path(label_txt), Path(dest)
    text, _, problems = _read_text(label_txt)
    if problems:
        raise LabelErrors(problems)
    errors = _Collector(label_txt)
    spans: list[_RawSpan] = []
    points: list[int] = []  # lines of point labels
    for lineno, line in enumerate(_split_lines(text), start=1):
        if not line.strip() or line.startswith("\\"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            errors.add(
                lineno,
                1,
                "expected start<TAB>end<TAB>text",
                "export the label track from Audacity (File > Export > Labels)",
            )
            continue
        end_col = len(fields[0]) + 2
        text_col = end_col + len(fields[1]) + 1
        start = _audacity_time(fields[0], lineno, 1, errors)
        end = _audacity_time(fields[1], lineno, end_col, errors)
        label_text = "\t".join(fields[2:])
        unsure, label = _audacity_label(label_text, lineno, text_col, errors)
        if start is None or end is None:
            continue
        if end < start:
            errors.add(lineno, end_col, "the label ends before it starts", "the second column is the end time")
            continue
        if label is False:
            continue
        if start == end:
            if window.empty:
                errors.add(
                    lineno,
                    1,
                    f"a point label at {label_time(start)} marks no span",
                    "make it a region label in Audacity, or give --point-window SECONDS to turn point labels "
                    "into spans centred on them",
                )
                continue
            points.append(lineno)
            start, end = max(0, start - window.before_ms), start + window.after_ms
        spans.append(_RawSpan(start, end, unsure, lineno, 1, label))
    classes = list(dict.fromkeys(s.label for s in spans if s.label and not s.unsure))
    spans = [replace(s, label=None) if s.unsure and s.label not in classes else s for s in spans]
    if len(classes) > 1:
        for span in spans:
            if span.label is None and not span.unsure:
                errors.add(
                    span.line,
                    1,
                    f"the label has no text, but the track names the classes {', '.join(classes)}",
                    "write the class as the label's text (e.g. rage), or '~' for an unsure span",
                )
    else:  # one class or none: a binary file, its spans need no class
        spans = [replace(s, label=None) for s in spans]
    merged = _merge_raw_spans(spans, errors)
    errors.raise_if_any()
    dest_dir = _label_dir(dest)
    entry = new_entry(resolve_clip_path(os.getcwd(), str(clip)), dest_dir, crop, crop, merged, 1)
    entry = replace(entry, comments=(f'from the Audacity label track "{label_txt.name}"',))
    notes: tuple[LabelNote, ...] = ()
    if points:
        one = len(points) == 1
        if centred:
            how = f"{(window.before_ms + window.after_ms) / 1000:g} s span{'' if one else 's'} centred on "
            how += "it" if one else "them"
            hint = "--point-window SECONDS sets the length; 0 refuses point labels"
        else:
            how = f"span{'' if one else 's'} {window.describe(them=not one)}"
            hint = "--marker-window BEFORE,AFTER sets the window in seconds"
        notes = (
            LabelNote(
                label_txt,
                points[0],
                1,
                f"{len(points)} point label{'' if one else 's'} became {how} (lines {', '.join(map(str, points))})",
                hint,
            ),
        )
    if len(classes) > 1:
        return LabelFile(
            path=dest,
            task=default_task(dest),
            default_crop=None,
            entries=(entry,),
            classes=tuple(classes),
            task_declared=False,
            notes=notes,
        )
    if classes:
        return LabelFile(path=dest, task=classes[0], default_crop=None, entries=(entry,), notes=notes)
    return LabelFile(
        path=dest, task=default_task(dest), default_crop=None, entries=(entry,), task_declared=False, notes=notes
    )


def _audacity_label(text: str, lineno: int, col: int, errors: _Collector) -> tuple[bool, str | None | bool]:
    """(unsure, class) of a label's text; the class is None for no text and False for a bad one (an error)."""
    name = text.strip()
    col += len(text) - len(text.lstrip())
    unsure = name.startswith("~") or name.lower() == "unsure"
    if name.startswith("~"):
        name, col = name[1:].strip(), col + 1
    elif name.lower() == "unsure":
        name = ""
    if not name or (unsure and not is_valid_class(name)):  # an unsure label's text may be a comment
        return unsure, None
    if not is_valid_class(name):
        errors.add(
            lineno,
            col,
            f"the label text {name!r} is not a class name",
            "the text of each label is its span's class (e.g. rage or pog): letters, digits, _ and -, "
            "starting with a letter ('background' is reserved); '~' before it marks an unsure span; "
            "no text = the file's only class",
        )
        return unsure, False
    return unsure, name


def _audacity_time(text: str, lineno: int, col: int, errors: _Collector) -> int | None:
    value = text.strip()
    if "," in value and "." not in value:  # some locales export a decimal comma
        value = value.replace(",", ".")
    try:
        return _seconds_to_ms(value)
    except ValueError as exc:
        errors.add(lineno, col, f"bad time {text.strip()!r}: {exc}", "Audacity times are seconds, e.g. 12.345678")
        return None
