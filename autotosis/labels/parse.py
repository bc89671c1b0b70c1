"""Label files: the hand-edited list of clips and highlight spans (the main user interface).

One line per clip::

    # task=rage
    # default crop=0.7833,0.1296,0.9682,0.3694
    clips/2021-03-01_part3.mp4  crop=0.7833,0.1296,0.9682,0.3694  0:05.2-0:09  1:12-1:20.5
    clips/calm_game.mp4                          # no spans: every frame is a negative
    "clips/with space.mp4"  12-18  ~20-22        # ~ = unsure: skipped in training and scoring
    clips/whole.mp4  0-end

Multi-class files declare their classes and prefix each span with one::

    # classes=rage,pog
    clips/a.mp4  rage:0:05-0:09  pog:1:12-1:20  ~0:30-0:32

A file without ``# classes=`` is binary: its classes are ``background`` and the task, and a
span may carry the task's name as its class (``rage:12-18``) or none.

The task is ``# task=NAME``, else taken from the file name (``rage.txt`` -> ``rage``); a
generic file name (``labels.txt``, ``heldout.txt``, ``train2.txt``: only words such as labels,
train, test, heldout, copy and numbers) gives ``highlight``.  A binary file without
``# task=`` is not tied to a name: it works with any model of one class
(``match_model_classes``), so a copy under another name still evaluates the same model.

Spans of one clip written on two lines are merged into one entry, with a note (a
``LabelNote``) rather than an error.

The parser reports every problem of a file at once, each as a ``LabelError`` that
names ``file:line:col``, says what is wrong and what would be right.  It never raises
anything but ``LabelErrors``, whatever the text (a fuzz test holds it to that).

Times are integer milliseconds, parsed from the decimal text (no float rounding)."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from autotosis.core.errors import LabelError, LabelErrors
from autotosis.core.region import Region, RegionError
from autotosis.core.timefmt import label_time
from autotosis.labels.values import (
    CLASSES_HINT,
    TASK_HINT,
    ClipEntry,
    LabelFile,
    LabelNote,
    Span,
    default_task,
    is_valid_class,
    is_valid_task,
)

# Video durations from ffprobe are approximate (container vs stream, last frame length).
DURATION_TOLERANCE_MS = 500

TIME_HINT = "write seconds (12 or 12.5) or [h:]mm:ss[.fff] (0:05.2, 1:02:03.5)"
SPAN_HINT = "a span is [CLASS:]START-END, e.g. 12-18, 0:05.2-0:09, 1:12-end or pog:12-18; prefix ~ for unsure (~20-22)"
CROP_HINT = "crop is x0,y0,x1,y1: four fractions of the frame in 0..1 with x0<x1 and y0<y1, e.g. 0.78,0.13,0.97,0.37"
KNOWN_OPTIONS = {"crop": "crop=x0,y0,x1,y1"}

_MAX_DECODE_ERRORS = 10
# Longest run of digits accepted in one time field: far beyond any video, and it keeps
# int() away from absurdly long inputs.
_MAX_TIME_DIGITS = 9
_SECONDS_RE = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_CLOCK_RE = re.compile(r"(?:(?P<h>[0-9]+):)?(?P<m>[0-9]+):(?P<s>[0-9]+)(?:\.(?P<frac>[0-9]*))?")
# A whole token shaped like a span (used to spot a line that forgot its clip path).
_SPAN_SHAPE_RE = re.compile(r"~?(?:[A-Za-z_][A-Za-z0-9_-]*:)?[0-9.:]+-(?:[0-9.:]+|end)", re.IGNORECASE)
# A span's class prefix (``pog:12-18``): a letter first, so a clock time (``1:12``) never reads as one.
_CLASS_PREFIX_RE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_-]*):")
_CLASSES_DIRECTIVE_RE = re.compile(r"#\s*classes\s*=")
_TASK_DIRECTIVE_RE = re.compile(r"#\s*task\s*=")
_DEFAULT_DIRECTIVE_RE = re.compile(r"#\s*default\s+(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=")
# Four comma-separated numbers: a crop that forgot its 'crop='.
_BARE_CROP_RE = re.compile(r"(?:[0-9]*\.?[0-9]+,){3}[0-9]*\.?[0-9]+")


# --------------------------------------------------------------------------- times


def parse_time(text: str) -> int:
    """Seconds (``12.5``) or ``[h:]mm:ss[.fff]`` to integer ms, rounding half up exactly.

    Raises ValueError with the reason when the text is not a time.
    """
    text = text.strip()
    if not text:
        raise ValueError("the time is empty")
    if ":" in text:
        return _parse_clock(text)
    match = _SECONDS_RE.fullmatch(text)
    if not match or not (match["int"] or match["frac"]):
        raise ValueError("expected seconds (12.5) or [h:]mm:ss[.fff]")
    _check_length(match["int"])
    return int(match["int"] or "0") * 1000 + _fraction_ms(match["frac"])


class TimeValueError(ValueError):
    """A bad time text; ``hint`` says what to write instead, when a likely intent is known."""

    def __init__(self, reason: str, hint: str | None = None):
        super().__init__(reason)
        self.hint = hint


def _parse_clock(text: str) -> int:
    match = _CLOCK_RE.fullmatch(text)
    if not match and text.count(":") > 2:
        fields = text.split(":")
        plain = (
            len(fields) == 4
            and all(f.isascii() and f.isdigit() and len(f) <= 3 for f in fields)
            and all(len(f) <= 2 for f in fields[1:3])
        )
        example = f"{int(fields[0])}:{fields[1].zfill(2)}:{fields[2].zfill(2)}.{fields[3]}" if plain else "1:02:03.5"
        raise TimeValueError(
            "too many ':' (a time is at most h:mm:ss)",
            f"write [h:]mm:ss[.fff] with a '.' before a fraction of a second, e.g. {example}; "
            "a timecode's last field counts frames, not milliseconds",
        )
    if not match:
        raise ValueError("expected [h:]mm:ss[.fff] with digits only")
    hours, minutes, seconds = match["h"], match["m"], match["s"]
    for part in (hours, minutes, seconds):
        _check_length(part)
    if len(seconds) != 2:
        raise ValueError("seconds after ':' need two digits (1:07, not 1:7)")
    if int(seconds) >= 60:
        raise ValueError("seconds after ':' must be below 60")
    if hours is not None and int(minutes) >= 60:
        raise ValueError("minutes must be below 60 in h:mm:ss")
    total_s = (int(hours or "0") * 60 + int(minutes)) * 60 + int(seconds)
    return total_s * 1000 + _fraction_ms(match["frac"])


def _check_length(digits: str | None) -> None:
    if digits is not None and len(digits) > _MAX_TIME_DIGITS:
        raise ValueError("too large for a time")


def _fraction_ms(digits: str | None) -> int:
    """Decimal fraction digits to ms, rounding half up on the fourth digit (exact)."""
    if not digits:
        return 0
    ms = int((digits + "000")[:3])
    return ms + (1 if len(digits) > 3 and digits[3] >= "5" else 0)


# --------------------------------------------------------------------------- tokenizing


@dataclass(frozen=True)
class _Token:
    text: str  # without quotes, escapes resolved
    col: int  # 1-based column of its first character (the quote when quoted)
    quoted: bool


@dataclass(frozen=True)
class _Line:
    tokens: tuple[_Token, ...]
    code: str  # the line without its comment, stripped
    errors: tuple[tuple[int, str, str], ...]  # (col, message, hint)
    text: str = ""  # the whole line as written


def _split_line(line: str) -> _Line:
    """Split one line into tokens; ``#`` outside quotes starts a comment."""
    tokens: list[_Token] = []
    errors: list[tuple[int, str, str]] = []
    i, n = 0, len(line)
    code_end = n
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":
            code_end = i
            break
        if ch in "\"'":
            text, end = _read_quoted(line, i)
            if end is None:
                errors.append(
                    (
                        i + 1,
                        f"unterminated quote: {ch} opened here is never closed",
                        f"close it with a matching {ch}" + (' (write \\" for a quote inside)' if ch == '"' else ""),
                    )
                )
                code_end = n
                break
            tokens.append(_Token(text, i + 1, True))
            i = end
            if i < n and not line[i].isspace() and line[i] != "#":
                errors.append(
                    (
                        i + 1,
                        f"unexpected text {_bare_word(line, i)!r} right after a closing quote",
                        "put a space after the closing quote",
                    )
                )
                i += len(_bare_word(line, i))
            continue
        word = _bare_word(line, i)
        tokens.append(_Token(word, i + 1, False))
        i += len(word)
    return _Line(tuple(tokens), line[:code_end].strip(), tuple(errors), line)


def _bare_word(line: str, start: int) -> str:
    end = start
    while end < len(line) and not line[end].isspace() and line[end] != "#":
        end += 1
    return line[start:end]


def _read_quoted(line: str, start: int) -> tuple[str, int | None]:
    """Text inside the quote at ``start`` and the index after its closing quote (None if unclosed).

    In double quotes ``\\"`` and ``\\\\`` are escapes (any other backslash is kept as is);
    single quotes take everything literally.
    """
    quote = line[start]
    out: list[str] = []
    i = start + 1
    while i < len(line):
        ch = line[i]
        if ch == quote:
            return "".join(out), i + 1
        if quote == '"' and ch == "\\" and i + 1 < len(line) and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), None


def _split_lines(text: str) -> list[str]:
    """Lines without their ``\\n``/``\\r\\n`` ends; a leading BOM is dropped (columns count after it)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# --------------------------------------------------------------------------- parsing


class _Collector:
    """Gathers LabelErrors for one file."""

    def __init__(self, path: Path):
        self.path = path
        self.errors: list[LabelError] = []

    def add(self, line: int, col: int, message: str, hint: str | None = None) -> None:
        self.errors.append(LabelError(self.path, line, col, message, hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise LabelErrors(sorted(self.errors, key=lambda e: (e.line, e.col)))


def parse_labels(path: Path | str, *, check_files: bool = True) -> LabelFile:
    """Read and parse a label file; raises LabelErrors listing every problem."""
    labels, problems = check_labels(path, check_files=check_files)
    if problems or labels is None:
        raise LabelErrors(problems)
    return labels


def check_labels(path: Path | str, *, check_files: bool = True) -> tuple[LabelFile | None, list[LabelError]]:
    """Every problem of a label file, and the part of it that parsed (None when it cannot be read).

    The part holds the clip lines without errors, so the checks that need them (spans past
    a clip's end) can run in the same pass as the syntax checks.
    """
    path = Path(path)
    try:
        text, bad_lines, problems = _read_text(path)
    except LabelErrors as exc:
        return None, list(exc.errors)
    labels, errors = _parse(text, path, check_files=check_files)
    # Errors on a line with undecodable bytes are noise (the replacement character).
    problems += [e for e in errors if e.line not in bad_lines]
    if bad_lines:
        labels = replace(labels, entries=tuple(e for e in labels.entries if e.line not in bad_lines))
    return labels, sorted(problems, key=lambda e: (e.line, e.col))


def _read_text(path: Path) -> tuple[str, set[int], list[LabelError]]:
    """File text (undecodable bytes replaced), the lines holding such bytes and one error for each."""
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise LabelErrors(
            [
                LabelError(
                    path, 1, 1, f"cannot read the label file: {reason}", "check the path (is it a file you may read?)"
                )
            ]
        ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Windows PowerShell's `>` and Notepad's "Unicode" write UTF-16 with this mark: one clear error,
        # not one per line about the zero bytes between its characters.
        raise LabelErrors(
            [
                LabelError(
                    path,
                    1,
                    1,
                    "the file is UTF-16 text, not UTF-8",
                    "save it as UTF-8: in an editor's 'Save as', or PowerShell's Out-File -Encoding utf8",
                )
            ]
        )
    problems: list[LabelError] = []
    bad_lines: set[int] = set()
    start = 0
    while True:
        try:
            data[start:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            where = start + exc.start
            line = data.count(b"\n", 0, where) + 1
            line_start = data.rfind(b"\n", 0, where) + 1
            prefix = data[line_start:where].decode("utf-8", errors="replace")
            if line == 1 and prefix.startswith("\ufeff"):
                prefix = prefix[1:]
            if len(bad_lines) >= _MAX_DECODE_ERRORS:
                break  # probably not a text file at all: the first few are enough
            if line not in bad_lines:
                problems.append(
                    LabelError(
                        path,
                        line,
                        len(prefix) + 1,
                        f"byte 0x{data[where]:02x} is not valid UTF-8",
                        "save the file as UTF-8",
                    )
                )
                bad_lines.add(line)
            start = start + exc.end
    return data.decode("utf-8", errors="replace"), bad_lines, problems


def parse_labels_text(text: str, path: Path, *, check_files: bool = False) -> LabelFile:
    """Parse label text as if read from ``path`` (clip paths resolve against its folder)."""
    labels, errors = _parse(text, Path(path), check_files=check_files)
    if errors:
        raise LabelErrors(sorted(errors, key=lambda e: (e.line, e.col)))
    return labels


def _parse(text: str, path: Path, *, check_files: bool) -> tuple[LabelFile, list[LabelError]]:
    """(the clip lines that parsed, every problem found)."""
    errors = _Collector(path)
    notes: list[LabelNote] = []
    label_dir = _label_dir(path)
    task: tuple[str, int] | None = None  # (name, line)
    classes: tuple[tuple[str, ...], int] | None = None  # (names, line)
    labelled: list[tuple[int, Span]] = []  # (line, span) of spans naming a class, checked at the end
    default_crop: Region | None = None
    first_default: Region | None = None
    seen_default = False
    entries: list[ClipEntry] = []
    first_line_of: dict[Path, int] = {}
    entry_at: dict[Path, int] = {}  # index in entries of each clip's (merged) entry

    for lineno, line in enumerate(_split_lines(text), start=1):
        stripped = line.lstrip()
        if stripped.startswith("#"):
            indent = len(line) - len(stripped)
            directive = _parse_directive(stripped, indent, lineno, errors)
            if directive is None:
                continue
            kind, value = directive
            if kind == "classes":
                if classes is not None and classes[0] != value:
                    errors.add(
                        lineno,
                        indent + 1,
                        f"classes set twice: {','.join(classes[0])} on line {classes[1]}, now {','.join(value)}",
                        "keep one '# classes=a,b' line",
                    )
                elif classes is None:
                    classes = (value, lineno)
            elif kind == "task":
                if task is not None and task[0] != value:
                    errors.add(
                        lineno,
                        indent + 1,
                        f"task set twice: {task[0]!r} on line {task[1]}, now {value!r}",
                        "keep one '# task=NAME' line",
                    )
                elif task is None:
                    task = (value, lineno)
            else:
                default_crop = value
                if not seen_default:
                    first_default, seen_default = value, True
            continue
        scanned = _split_line(line)
        for col, message, hint in scanned.errors:
            errors.add(lineno, col, message, hint)
        if not scanned.tokens:
            continue
        clip_path, entry = _parse_clip_line(scanned, lineno, label_dir, default_crop, errors)
        if clip_path is None:
            continue
        clip_col = scanned.tokens[0].col
        first = first_line_of.setdefault(clip_path, lineno)
        if entry is None or scanned.errors:
            continue
        labelled += [(lineno, span) for span in entry.spans if span.label is not None or not span.unsure]
        if check_files and not _check_clip_file(entry, lineno, clip_col, label_dir, errors):
            continue
        if first != lineno:
            merged = _merge_entries(entries[entry_at[clip_path]], entry, errors) if clip_path in entry_at else None
            if merged is not None or clip_path not in entry_at:
                notes.append(
                    LabelNote(
                        path,
                        lineno,
                        clip_col,
                        f"clip {scanned.tokens[0].text!r} is also listed on line {first}: the spans of both "
                        "lines are merged",
                        "put all spans of a clip on one line",
                    )
                )
            if merged is not None:
                entries[entry_at[clip_path]] = merged
            if clip_path in entry_at:
                continue
        entry_at[clip_path] = len(entries)
        entries.append(entry)

    task_name = task[0] if task else default_task(path)
    declared = classes[0] if classes else ()
    for lineno, span in labelled:
        _check_span_class(span, declared, task_name, lineno, errors)
    labels = LabelFile(
        path=path,
        task=task_name,
        default_crop=first_default,
        entries=tuple(entries),
        classes=declared,
        task_declared=task is not None,
        notes=tuple(notes),
    )
    return labels, errors.errors


def _merge_entries(first: ClipEntry, later: ClipEntry, errors: _Collector) -> ClipEntry | None:
    """One entry for a clip listed on two lines: the same crop, spans that do not overlap."""
    if first.crop != later.crop:

        def crop_text(entry: ClipEntry) -> str:
            return f"crop={entry.crop.as_text()}" if entry.crop is not None else "no crop"

        errors.add(
            later.line,
            1,
            f"clip {later.raw_path!r} has {crop_text(later)} here but {crop_text(first)} on line {first.line}",
            "a clip has one crop: give both lines the same crop= (or put all spans on one line)",
        )
        return None
    count_before = len(errors.errors)
    for span in later.spans:
        for other in first.spans:
            other_end = other.end_ms if other.end_ms is not None else float("inf")
            span_end = span.end_ms if span.end_ms is not None else float("inf")
            if span.start_ms < other_end and other.start_ms < span_end:
                errors.add(
                    later.line,
                    span.col,
                    f"span {span.as_text()!r} overlaps {other.as_text()!r} of the same clip on line {first.line}",
                    "spans of one clip must not overlap; join them or move an edge",
                )
                break
    if len(errors.errors) != count_before:
        return None
    spans = tuple(sorted((*first.spans, *later.spans), key=lambda s: s.start_ms))
    return replace(
        first,
        own_crop=first.own_crop or later.own_crop,
        spans=spans,
        source_text=f"{first.source_text}\n{later.source_text}",
    )


def _check_span_class(span: Span, declared: tuple[str, ...], task: str, lineno: int, errors: _Collector) -> None:
    """A span's class must be declared; with two or more classes every sure span needs one."""
    known = declared or (task,)
    if span.label is None:
        if len(known) > 1 and not span.unsure:
            errors.add(
                lineno,
                span.col,
                f"span {span.as_text()!r} has no class, and this file has {len(known)}",
                f"write CLASS:START-END with a class of {', '.join(known)}, e.g. {known[0]}:{span.as_text()}",
            )
        return
    if span.label in known:
        return
    close = difflib.get_close_matches(span.label, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}? the classes are {', '.join(known)}"
    elif declared:
        hint = f"the classes are {', '.join(known)}; add it to the '# classes=' line"
    else:
        hint = f"this file's only class is its task {task!r}; {CLASSES_HINT}"
    errors.add(lineno, span.col + (1 if span.unsure else 0), f"unknown class {span.label!r}", hint)


def _parse_directive(
    comment: str, indent: int, lineno: int, errors: _Collector
) -> tuple[str, str | Region | None] | None:
    """``('task', name)``, ``('classes', names)`` or ``('crop', Region | None)`` for a directive line,
    None for other comments."""
    match = _CLASSES_DIRECTIVE_RE.match(comment)
    if match:
        return _parse_classes_directive(comment, match.end(), indent, lineno, errors)
    match = _TASK_DIRECTIVE_RE.match(comment)
    if match:
        raw = comment[match.end() :]
        value = raw.strip()
        col = indent + match.end() + (len(raw) - len(raw.lstrip())) + 1
        if not is_valid_task(value):
            errors.add(lineno, col, f"bad task name {value!r}", TASK_HINT)
            return None
        return "task", value
    match = _DEFAULT_DIRECTIVE_RE.match(comment)
    if not match:
        return None
    if match["key"] != "crop":
        errors.add(
            lineno,
            indent + match.start("key") + 1,
            f"unknown default {match['key']!r}",
            "the only default is '# default crop=x0,y0,x1,y1' (or '# default crop=none')",
        )
        return None
    raw = comment[match.end() :]
    value = raw.strip()
    col = indent + match.end() + (len(raw) - len(raw.lstrip())) + 1
    if value.lower() == "none":
        return "crop", None
    try:
        return "crop", Region.parse(value)
    except RegionError as exc:
        errors.add(lineno, col + _part_offset(value, exc.part), f"bad default crop {value!r}: {exc}", CROP_HINT)
        return None


def _parse_classes_directive(
    comment: str, start: int, indent: int, lineno: int, errors: _Collector
) -> tuple[str, tuple[str, ...]] | None:
    names: list[str] = []
    offset = start
    ok = True
    for piece in comment[start:].split(","):
        name = piece.strip()
        col = indent + offset + (len(piece) - len(piece.lstrip())) + 1
        offset += len(piece) + 1
        if not is_valid_class(name):
            errors.add(lineno, col, f"bad class name {name!r}", CLASSES_HINT)
            ok = False
        elif name in names:
            errors.add(lineno, col, f"class {name!r} is listed twice", "list each class once")
            ok = False
        else:
            names.append(name)
    return ("classes", tuple(names)) if ok else None


def _part_offset(text: str, part: int | None) -> int:
    """Offset of comma-separated part ``part`` in ``text`` (its first non-space character)."""
    if part is None:
        return 0
    pieces = text.split(",")
    if part >= len(pieces):
        return 0
    offset = sum(len(p) + 1 for p in pieces[:part])
    piece = pieces[part]
    return offset + len(piece) - len(piece.lstrip())


def _parse_clip_line(
    scanned: _Line, lineno: int, label_dir: str, default_crop: Region | None, errors: _Collector
) -> tuple[Path | None, ClipEntry | None]:
    """The clip's resolved path (None if unusable) and its entry (None when the line has errors)."""
    count_before = len(errors.errors)
    path_token = scanned.tokens[0]
    clip_path = _check_raw_path(path_token, lineno, label_dir, errors)
    own_crop: Region | None = None
    crop_col: int | None = None
    spans: list[Span] = []
    span_texts: dict[int, str] = {}  # column -> span as written, for overlap messages
    tokens = scanned.tokens
    index = 0
    while index + 1 < len(tokens):
        index += 1
        token = tokens[index]
        mistake = None if token.quoted else _common_mistake(scanned, index)
        if mistake is not None:
            used, message, hint = mistake
            errors.add(lineno, token.col, message, hint)
            index += used - 1
            continue
        if token.quoted:
            errors.add(
                lineno,
                token.col,
                f"unexpected quoted text {token.text!r}",
                "only the clip path (the first thing on a line) may be quoted",
            )
        elif "=" in token.text:
            key, _, value = token.text.partition("=")
            if key != "crop":
                known = ", ".join(KNOWN_OPTIONS.values())
                errors.add(lineno, token.col, f"unknown option {key!r}", f"known options: {known}")
            elif crop_col is not None:
                errors.add(
                    lineno, token.col, f"crop given twice (first at column {crop_col})", "keep one crop= per line"
                )
            else:
                crop_col = token.col
                try:
                    own_crop = Region.parse(value)
                except RegionError as exc:
                    col = token.col + len("crop=") + _part_offset(value, exc.part)
                    errors.add(lineno, col, f"bad crop {value!r}: {exc}", CROP_HINT)
        elif _looks_like_span(token.text):
            span = _parse_span(token, lineno, errors)
            if span is not None:
                spans.append(span)
                span_texts[span.col] = token.text
        else:
            errors.add(
                lineno,
                token.col,
                f"unexpected {token.text!r}: not a span, an option or a comment",
                _stray_hint(tokens, index, clip_path is not None),
            )
    spans.sort(key=lambda s: s.start_ms)
    _check_overlaps(spans, span_texts, lineno, errors)
    if clip_path is None or len(errors.errors) != count_before:
        return clip_path, None
    crop = own_crop if own_crop is not None else default_crop
    return clip_path, ClipEntry(
        path=clip_path,
        raw_path=path_token.text,
        crop=crop,
        own_crop=own_crop,
        spans=tuple(spans),
        line=lineno,
        source_text=scanned.code,
    )


def _check_raw_path(token: _Token, lineno: int, label_dir: str, errors: _Collector) -> Path | None:
    raw = token.text
    if not raw:
        errors.add(
            lineno, token.col, "empty clip path", 'write the clip path first, e.g. clips/game1.mp4 or "my clip.mp4"'
        )
        return None
    if "\x00" in raw:
        errors.add(
            lineno,
            token.col + raw.index("\x00") + (1 if token.quoted else 0),
            "the clip path contains a NUL character",
            "remove it",
        )
        return None
    if "=" in raw and not token.quoted and raw.partition("=")[0] in KNOWN_OPTIONS:
        errors.add(
            lineno,
            token.col,
            f"the line starts with the option {raw!r}, not a clip path",
            "write the clip path first: PATH [crop=x0,y0,x1,y1] START-END ...",
        )
        return None
    if not token.quoted and _SPAN_SHAPE_RE.fullmatch(raw):
        errors.add(
            lineno,
            token.col,
            f"the line starts with the span {raw!r}, not a clip path",
            "write the clip path first: PATH START-END ...",
        )
        return None
    return resolve_clip_path(label_dir, raw)


def resolve_clip_path(label_dir: Path | str, raw: str) -> Path:
    """Absolute, normalised path of ``raw`` relative to ``label_dir`` (symlinks are not followed)."""
    return Path(os.path.normpath(os.path.join(os.path.abspath(label_dir), raw)))


def _label_dir(path: Path) -> str:
    return os.path.abspath(path.parent)


def _check_clip_file(entry: ClipEntry, lineno: int, col: int, label_dir: str, errors: _Collector) -> bool:
    """True when the clip is a file; else an error (with a hint for a Windows path) and False."""
    try:
        if entry.path.is_file():
            return True
        reason = "is a folder, not a video file" if entry.path.is_dir() else "does not exist"
    except (OSError, ValueError):
        reason = "cannot be opened"
    hint = f"paths are relative to the label file's folder {label_dir}; quote names that contain spaces or #"
    if "\\" in entry.raw_path:
        hint = _windows_path_hint(entry.raw_path, label_dir)
    errors.add(lineno, col, f"clip {_shown(entry.raw_path)} {reason} ({entry.path})", hint)
    return False


def _shown(text: str) -> str:
    """``text`` in quotes for a message; repr() only when it holds quotes or control characters
    (repr would double every backslash of a Windows path)."""
    if "'" in text or any(not ch.isprintable() for ch in text):
        return repr(text)
    return f"'{text}'"


_DRIVE_RE = re.compile(r"[A-Za-z]:[\\/]")


def _windows_path_hint(raw: str, label_dir: str) -> str:
    """What to write instead of a path with backslashes (Windows separators)."""
    forward = raw.replace("\\", "/")
    if _DRIVE_RE.match(raw):
        return (
            f"that is a Windows path: write the clip's path relative to the label file's folder "
            f"{label_dir}, with / between folders"
        )
    try:
        exists = resolve_clip_path(label_dir, forward).is_file()
    except (OSError, ValueError):
        exists = False
    there = " (that file exists)" if exists else ""
    return f"write / between folders, not \\: {forward}{there}"


def _common_mistake(scanned: _Line, index: int) -> tuple[int, str, str] | None:
    """(tokens used, message, hint) when the tokens from ``index`` on are a known slip:
    a span with spaces around its '-' (``0:05 - 0:09``), or a crop without ``crop=``."""
    tokens = scanned.tokens
    # A span split by spaces around its '-': "0:05 - 0:09", "0:05 -0:09", "0:05- 0:09".
    for used in (3, 2):
        group = tokens[index : index + used]
        if len(group) < used or any(t.quoted for t in group):
            continue
        texts = [t.text for t in group]
        if used == 3 and texts[1] != "-":
            continue
        if used == 2 and texts[0].endswith("-") == texts[1].startswith("-"):
            continue
        joined = "".join(texts)
        if texts[0] != "-" and _SPAN_SHAPE_RE.fullmatch(joined) and joined.count("-") == 1:
            written = scanned.text[group[0].col - 1 : group[-1].col - 1 + len(group[-1].text)]
            return used, f"span {written!r} has spaces around its '-'", f"write it without spaces: {joined}"
    # A crop that forgot its "crop=": "0.78,0.13,0.97,0.37" (or with spaces after the commas).
    used, joined = 1, tokens[index].text
    while joined.endswith(",") and index + used < len(tokens) and not tokens[index + used].quoted:
        joined += tokens[index + used].text
        used += 1
    if _BARE_CROP_RE.fullmatch(joined):
        last = tokens[index + used - 1]
        written = scanned.text[tokens[index].col - 1 : last.col - 1 + len(last.text)]
        return used, f"{written!r} looks like a crop without 'crop='", f"write crop={joined}"
    return None


def _looks_like_span(text: str) -> bool:
    if not text:
        return False
    if text[0] in "~0123456789.:-":
        return True
    return text.lower().startswith("end-") or _CLASS_PREFIX_RE.match(text) is not None


def _stray_hint(tokens: Sequence[_Token], index: int, path_ok: bool) -> str:
    path = tokens[0]
    if index == 1 and path_ok and not path.quoted:
        return (
            f'a clip path with spaces must be quoted: "{path.text} {tokens[index].text}"; '
            "after the path come spans (12-18) and options (crop=x0,y0,x1,y1)"
        )
    return "after the clip path come spans (12-18, ~20-22) and options (crop=x0,y0,x1,y1); quote paths with spaces"


def _parse_span(token: _Token, lineno: int, errors: _Collector) -> Span | None:
    text = token.text
    unsure = text.startswith("~")
    body = text[1:] if unsure else text
    body_col = token.col + (1 if unsure else 0)
    label = None
    prefix = None if body.lower().startswith("end-") else _CLASS_PREFIX_RE.match(body)
    if prefix:
        label = prefix["name"]
        body, body_col = body[prefix.end() :], body_col + prefix.end()
    if body.count("-") != 1:
        what = "has no '-' between start and end" if "-" not in body else "has more than one '-'"
        errors.add(lineno, token.col, f"span {text!r} {what}", SPAN_HINT)
        return None
    start_text, end_text = body.split("-")
    end_col = body_col + len(start_text) + 1
    if not start_text:
        errors.add(lineno, body_col, f"span {text!r} has no start time", SPAN_HINT)
        return None
    if not end_text:
        errors.add(lineno, end_col, f"span {text!r} has no end time", SPAN_HINT)
        return None
    if start_text.lower() == "end":
        errors.add(lineno, body_col, f"span {text!r} starts at 'end'", "'end' can only be a span's end, e.g. 1:12-end")
        return None
    start = _parse_time_at(start_text, lineno, body_col, errors)
    end = None if end_text.lower() == "end" else _parse_time_at(end_text, lineno, end_col, errors)
    if start is None or (end is None and end_text.lower() != "end"):
        return None
    if end is not None and end <= start:
        what = "is empty (start equals end)" if end == start else "ends before it starts"
        errors.add(lineno, token.col, f"span {text!r} {what}", "write START-END with END later than START, e.g. 12-18")
        return None
    return Span(start, end, unsure, label, col=token.col, line=lineno)


def _parse_time_at(text: str, lineno: int, col: int, errors: _Collector) -> int | None:
    try:
        return parse_time(text)
    except ValueError as exc:
        if "," in text and "." not in text:
            fixed = text.replace(",", ".")
            try:
                parse_time(fixed)
            except ValueError:
                pass
            else:
                errors.add(
                    lineno,
                    col + text.index(","),
                    f"bad time {text!r}: a decimal comma",
                    f"write a decimal point: {fixed}",
                )
                return None
        errors.add(lineno, col, f"bad time {text!r}: {exc}", getattr(exc, "hint", None) or TIME_HINT)
        return None


def _check_overlaps(spans: Sequence[Span], texts: dict[int, str], lineno: int, errors: _Collector) -> None:
    """Report each span that starts before an earlier one (sorted by start) has ended."""
    reach: Span | None = None  # the span reaching furthest so far
    for span in spans:
        if reach is not None and (reach.end_ms is None or span.start_ms < reach.end_ms):
            later, earlier = (span, reach) if span.col >= reach.col else (reach, span)
            errors.add(
                lineno,
                later.col,
                f"span {texts[later.col]!r} overlaps {texts[earlier.col]!r} (column {earlier.col})",
                "spans of one clip must not overlap; join them or move an edge",
            )
        if reach is None or reach.end_ms is not None and (span.end_ms is None or span.end_ms > reach.end_ms):
            reach = span


# --------------------------------------------------------------------------- durations


def check_durations(labels: LabelFile, duration_ms: Callable[[Path], int | None]) -> list[LabelError]:
    """One error per span starting or ending past its clip's duration (0.5 s tolerance).

    ``duration_ms`` returns None when a clip's duration is unknown; its spans are skipped.
    """
    problems: list[LabelError] = []
    for entry in labels.entries:
        duration = duration_ms(entry.path)
        if duration is None:
            continue
        limit = duration + DURATION_TOLERANCE_MS
        for span in entry.spans:
            if span.start_ms > limit or (span.end_ms is None and span.start_ms >= duration):
                what = f"starts at {label_time(span.start_ms)}"
            elif span.end_ms is not None and span.end_ms > limit:
                what = f"ends at {label_time(span.end_ms)}"
            else:
                continue
            problems.append(
                LabelError(
                    labels.path,
                    span.line or entry.line,
                    span.col or 1,
                    f"span {span.as_text()} {what}, past the end of {entry.raw_path!r} ({label_time(duration)} long)",
                    "fix the time, or write 'end' for the end of the clip (e.g. 1:12-end)",
                )
            )
    return problems
