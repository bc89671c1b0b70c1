"""Label files: every accepted form, every error (with its exact line and column),
round trips, importers, and fuzzing that proves the parser only ever raises LabelErrors."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotosis.cli import main
from autotosis.core.errors import ExitStatus, LabelError, LabelErrors, ModelError, OutputExistsError
from autotosis.core.region import Region
from autotosis.core.timefmt import label_time as format_time
from autotosis.labels.importers import import_audacity, import_data_csv
from autotosis.labels.parse import (
    check_durations,
    check_labels,
    parse_labels,
    parse_labels_text,
    parse_time,
    resolve_clip_path,
)
from autotosis.labels.values import ClipEntry, LabelFile, Span, match_model_classes
from autotosis.labels.writer import format_labels, merge_label_files, write_labels

LABELS = Path("/data/labels/rage.txt")
CAM = Region(0.7833, 0.1296, 0.9682, 0.3694)

EXAMPLE = """\
# labels/rage.txt — task "rage"
# default crop=0.7833,0.1296,0.9682,0.3694
clips/2021-03-01_part3.mp4  crop=0.1,0.2,0.3,0.4  0:05.2-0:09  1:12-1:20.5
clips/calm_game.mp4                          # no spans: every frame is a negative
"clips/with space.mp4"  12-18  ~20-22        # ~ = unsure: skipped in training and scoring
clips/whole.mp4  0-end
"""


def check_labels_text(text: str) -> tuple[LabelFile, list[LabelError]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rage.txt"
        path.write_text(text, encoding="utf-8")
        return check_labels(path, check_files=False)


def errors_of(text: str, path: Path = LABELS, **kwargs) -> list[LabelError]:
    with pytest.raises(LabelErrors) as info:
        parse_labels_text(text, path, **kwargs)
    return info.value.errors


def single_error(text: str, **kwargs) -> LabelError:
    errors = errors_of(text, **kwargs)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("12", 12_000),
        ("12.5", 12_500),
        ("0", 0),
        (".5", 500),
        ("7.", 7_000),
        ("0:05.2", 5_200),
        ("0:09", 9_000),
        ("1:12", 72_000),
        ("1:20.5", 80_500),
        ("75:00", 4_500_000),  # minutes may exceed 59 without hours
        ("1:02:03.5", 3_723_500),
        ("0:00:00.001", 1),
        ("0.0005", 1),  # half rounds up, exactly (float math would give 0.49999...)
        ("0.0004999", 0),
        ("1.0015", 1_002),
        ("0:59.9995", 60_000),
        ("2.675", 2_675),  # 2.675 is 2.67499999... as a float
    ],
)
def test_parse_time_accepts_every_syntax(text, ms):
    assert parse_time(text) == ms


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1:7x", "[h:]mm:ss"),
        ("1:7", "two digits"),
        ("0:60", "below 60"),
        ("1:60:00", "minutes must be below 60"),
        ("abc", "expected seconds"),
        ("", "empty"),
        ("-1", "expected seconds"),
        ("1e3", "expected seconds"),
        ("\u0661\u0662", "expected seconds"),  # Arabic-Indic digits are not time digits
        ("12345678901", "too large"),
        (".", "expected seconds"),
    ],
)
def test_parse_time_rejects_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_time(text)


@pytest.mark.parametrize(
    ("ms", "text"), [(5_200, "0:05.2"), (72_000, "1:12"), (3_723_500, "1:02:03.5"), (0, "0:00"), (1, "0:00.001")]
)
def test_format_time_examples(ms, text):
    assert format_time(ms) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_format_time_round_trips(ms):
    assert parse_time(format_time(ms)) == ms


# --------------------------------------------------------------------------- valid files


def test_example_file_parses_into_entries():
    labels = parse_labels_text(EXAMPLE, LABELS)
    assert labels.task == "rage"
    assert labels.default_crop == CAM
    first, calm, spaced, whole = labels.entries
    assert first.path == Path("/data/labels/clips/2021-03-01_part3.mp4")
    assert first.raw_path == "clips/2021-03-01_part3.mp4"
    assert first.own_crop == first.crop == Region(0.1, 0.2, 0.3, 0.4)
    assert first.spans == (Span(5_200, 9_000), Span(72_000, 80_500))
    assert first.line == 3
    assert calm.spans == () and calm.crop == CAM and calm.own_crop is None
    assert calm.source_text == "clips/calm_game.mp4"  # comment and padding dropped
    assert spaced.path == Path("/data/labels/clips/with space.mp4")
    assert spaced.spans == (Span(12_000, 18_000), Span(20_000, 22_000, unsure=True))
    assert whole.spans == (Span(0, None),)
    assert whole.spans[0].resolved_end(30_000) == 30_000


def test_spans_are_sorted_and_may_touch():
    (entry,) = parse_labels_text("a.mp4 20-30 0-10 10-20\n", LABELS).entries
    assert [s.start_ms for s in entry.spans] == [0, 10_000, 20_000]


@pytest.mark.parametrize(
    ("written", "raw"),
    [
        ('"clips/with space.mp4"', "clips/with space.mp4"),
        ('"clips/a#b.mp4"', "clips/a#b.mp4"),
        (r'"say \"hi\".mp4"', 'say "hi".mp4'),
        (r'"back\\slash.mp4"', "back\\slash.mp4"),
        (r'"C:\clips\x.mp4"', r"C:\clips\x.mp4"),  # other backslashes are kept
        ("'single # quoted \\ path.mp4'", "single # quoted \\ path.mp4"),
        ('"ярость ü 日本.mp4"', "ярость ü 日本.mp4"),
        ("ярость.mp4", "ярость.mp4"),
        ('odd"name.mp4', 'odd"name.mp4'),
    ],
)
def test_quoted_and_unicode_paths(written, raw):
    (entry,) = parse_labels_text(f"{written}  1-2  # comment\n", LABELS).entries
    assert entry.raw_path == raw
    assert entry.path == resolve_clip_path(LABELS.parent, raw)
    assert entry.spans == (Span(1_000, 2_000),)


def test_absolute_and_parent_paths():
    text = "/videos/a.mp4 1-2\n../clips/b.mp4\n"
    a, b = parse_labels_text(text, LABELS).entries
    assert a.path == Path("/videos/a.mp4")
    assert b.path == Path("/data/clips/b.mp4")


def test_default_crop_applies_to_following_lines_only():
    text = "a.mp4\n# default crop=0.1,0.1,0.5,0.5\nb.mp4\nc.mp4 crop=0,0,1,1\n#default crop = none\nd.mp4\n"
    labels = parse_labels_text(text, LABELS)
    a, b, c, d = labels.entries
    assert a.crop is None
    assert b.crop == Region(0.1, 0.1, 0.5, 0.5) and b.own_crop is None
    assert c.crop == c.own_crop == Region(0, 0, 1, 1)
    assert d.crop is None
    assert labels.default_crop == Region(0.1, 0.1, 0.5, 0.5)


def test_task_directive_and_default_task():
    assert parse_labels_text("# task=pog-2_x\na.mp4\n", LABELS).task == "pog-2_x"
    assert parse_labels_text("a.mp4\n", Path("x/robot_cam.txt")).task == "robot_cam"
    # Ordinary comments that mention a task are not directives.
    assert parse_labels_text("# task 'demo': generated\n# the default is fine\n", LABELS).task == "rage"


def test_crlf_and_bom_are_accepted():
    text = '\ufeff# task=rage\r\n"a b.mp4"  0:01-0:02  # c\r\n\r\nb.mp4 3-end\r\n'
    a, b = parse_labels_text(text, LABELS).entries
    assert a.raw_path == "a b.mp4" and a.spans == (Span(1_000, 2_000),)
    assert b.raw_path == "b.mp4" and b.spans == (Span(3_000, None),)


def test_columns_count_characters_after_the_bom_in_crlf_files(tmp_path):
    path = tmp_path / "rage.txt"
    path.write_bytes("\ufeffé.mp4 1-x\r\nok.mp4 1:7-2\r\n".encode("utf-8"))
    first, second = _errors_from_file(path)
    assert (first.line, first.col) == (1, 9)  # 'x', counted in characters, BOM excluded
    assert (second.line, second.col) == (2, 8)


def _errors_from_file(path: Path, **kwargs) -> list[LabelError]:
    with pytest.raises(LabelErrors) as info:
        parse_labels(path, **kwargs)
    return info.value.errors


# --------------------------------------------------------------------------- errors


def test_bad_time_points_at_the_time():
    error = single_error("# task=rage\nclip.mp4  0:05-1:7x\n")
    assert (error.line, error.col) == (2, 16)
    assert "bad time '1:7x'" in error.message
    assert "[h:]mm:ss" in error.hint
    assert str(error).startswith(f"{LABELS}:2:16: bad time")


def test_bad_start_time_points_at_the_start():
    error = single_error("clip.mp4  ~0:61-1:10\n")
    assert (error.line, error.col) == (1, 12)  # after the '~'
    assert "below 60" in error.message


@pytest.mark.parametrize(
    ("span", "words"),
    [("18-12", "ends before it starts"), ("12-12", "empty"), ("1:00-59.999", "ends before it starts")],
)
def test_end_before_start_and_empty_span(span, words):
    error = single_error(f"clip.mp4 1-2 {span}\n")
    assert (error.line, error.col) == (1, 14)
    assert words in error.message
    assert "END later than START" in error.hint


@pytest.mark.parametrize(
    ("token", "words", "col"),
    [
        ("12", "no '-'", 10),
        ("1-2-3", "more than one '-'", 10),
        ("-5", "no start", 10),
        ("~5-", "no end", 13),
        ("end-5", "starts at 'end'", 10),
        ("~", "no '-'", 10),
    ],
)
def test_malformed_spans(token, words, col):
    error = single_error(f"clip.mp4 {token}\n")
    assert words in error.message
    assert error.col == col
    assert error.hint


def test_overlapping_spans_point_at_the_later_one_and_name_the_other():
    errors = errors_of("a.mp4 10-20 ~15-25\nb.mp4 0-end 30-40\nc.mp4 5-9 1-6\n")
    assert [(e.line, e.col) for e in errors] == [(1, 13), (2, 13), (3, 11)]
    assert "'~15-25' overlaps '10-20' (column 7)" in errors[0].message
    assert "'30-40' overlaps '0-end'" in errors[1].message
    assert "'1-6' overlaps '5-9'" in errors[2].message
    assert "must not overlap" in errors[0].hint


def test_unknown_option_lists_the_known_ones():
    error = single_error("a.mp4 1-2 crp=0.1,0.1,0.5,0.5\n")
    assert (error.line, error.col) == (1, 11)
    assert "unknown option 'crp'" in error.message
    assert "crop=x0,y0,x1,y1" in error.hint


@pytest.mark.parametrize(
    ("crop", "col", "words"),
    [
        ("0.1,0.2,0.3", 12, "4 comma-separated numbers, got 3"),
        ("0.1,abc,0.3,0.4", 16, "'abc' is not a number"),
        ("0.1,0.2,1.3,0.4", 20, "outside 0..1"),
        ("0.5,0.2,0.3,0.4", 20, "x0 (0.5) must be less than x1 (0.3)"),
        ("0.1,0.4,0.3,0.4", 24, "y0 (0.4) must be less than y1 (0.4)"),
        ("nan,0.2,0.3,0.4", 12, "not a number"),
        ("", 12, "got 1"),
    ],
)
def test_bad_crop_points_at_the_number(crop, col, words):
    error = single_error(f"a.mp4 crop={crop} 1-2\n")
    assert (error.line, error.col) == (1, col)
    assert words in error.message
    assert "x0,y0,x1,y1" in error.hint


def test_crop_given_twice():
    error = single_error("a.mp4 crop=0,0,1,1 crop=0,0,1,1\n")
    assert error.col == 20 and "twice" in error.message


@pytest.mark.parametrize(("line", "col"), [('"a b.mp4 1-2', 1), ("  'a.mp4 1-2", 3), ('"a\\".mp4 1-2', 1)])
def test_unterminated_quote(line, col):
    error = single_error(line + "\n")
    assert (error.line, error.col) == (1, col)
    assert "unterminated quote" in error.message
    assert "close it" in error.hint


def test_text_glued_to_a_closing_quote():
    error = single_error('"a.mp4"1-2\n')
    assert (error.line, error.col) == (1, 8)
    assert "space after the closing quote" in error.hint


def test_missing_clip_file_only_when_checking(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "here.mp4").write_bytes(b"")
    text = "clips/here.mp4 1-2\n\n  clips/gone.mp4 1-2\nclips\n"
    labels_path = tmp_path / "rage.txt"
    assert len(parse_labels_text(text, labels_path).entries) == 3
    missing, folder = errors_of(text, labels_path, check_files=True)
    assert (missing.line, missing.col) == (3, 3)
    assert "'clips/gone.mp4' does not exist" in missing.message
    assert str(tmp_path) in missing.hint and "quote" in missing.hint
    assert (folder.line, folder.col) == (4, 1) and "folder" in folder.message


def test_a_clip_on_two_lines_is_merged_with_a_note():
    labels = parse_labels_text("a.mp4 5-6\n# comment\nb.mp4\n./clips/../a.mp4 1-2  8-end\n", LABELS)
    first, second = labels.entries
    assert first.raw_path == "a.mp4" and first.line == 1
    assert first.spans == (Span(1000, 2000), Span(5000, 6000), Span(8000, None))
    assert second.raw_path == "b.mp4"
    (note,) = labels.notes
    assert str(note) == (
        f"{LABELS}:4:1: note: clip './clips/../a.mp4' is also listed on line 1: the spans of both lines "
        "are merged (put all spans of a clip on one line)"
    )
    # Written back, the clip is one line.
    assert format_labels(labels).count("a.mp4") == 1
    # A span from the second line past the clip's end is reported on that line.
    (late,) = check_durations(labels, lambda p: 7_000 if p.name == "a.mp4" else None)
    assert (late.line, late.col) == (4, 23) and "starts at 0:08" in late.message


def test_two_lines_that_cannot_be_merged_get_no_note():
    labels, errors = check_labels_text("a.mp4 5-10\na.mp4 8-12\n")
    assert [(e.line, e.col) for e in errors] == [(2, 7)] and labels.notes == ()


def test_a_clip_on_two_lines_must_agree():
    errors = errors_of("a.mp4 5-10\na.mp4 1-2 8-12\nb.mp4 crop=0,0,0.5,0.5 1-2\nb.mp4 3-4\n")
    assert [str(e) for e in errors] == [
        f"{LABELS}:2:11: span '0:08-0:12' overlaps '0:05-0:10' of the same clip on line 1 "
        "(spans of one clip must not overlap; join them or move an edge)",
        f"{LABELS}:4:1: clip 'b.mp4' has no crop here but crop=0,0,0.5,0.5 on line 3 "
        "(a clip has one crop: give both lines the same crop= (or put all spans on one line))",
    ]


def test_a_second_line_of_a_clip_is_not_an_error_when_the_first_has_one():
    errors = errors_of("a.mp4 1-x\na.mp4 5-6\n")
    assert [(e.line, e.col) for e in errors] == [(1, 9)]


def test_stray_token_suggests_quoting_the_path():
    error = single_error("my clip.mp4 12-18\n")
    assert (error.line, error.col) == (1, 4)
    assert "unexpected 'clip.mp4'" in error.message
    assert '"my clip.mp4"' in error.hint


def test_stray_token_later_on_the_line():
    error = single_error('"a.mp4" 1-2 hello\n')
    assert (error.line, error.col) == (1, 13)
    assert "quote paths with spaces" in error.hint


def test_quoted_text_after_the_path():
    error = single_error('a.mp4 "b.mp4"\n')
    assert error.col == 7 and "only the clip path" in error.hint


def test_line_that_forgot_its_path():
    errors = errors_of("12-18 1:00-1:10\ncrop=0,0,1,1 a.mp4\n")
    assert [(e.line, e.col) for e in errors][:1] == [(1, 1)]
    assert "starts with the span '12-18'" in errors[0].message
    assert any(e.line == 2 and e.col == 1 and "option" in e.message for e in errors)


@pytest.mark.parametrize(
    ("line", "col", "words"),
    [
        ("# task=bad name", 8, "bad task name 'bad name'"),
        ("#task=", 7, "bad task name ''"),
        ("  # default crop=0.1,0.2", 18, "bad default crop"),
        ("# default crop=0.1,0.2,2,0.4", 24, "outside 0..1"),
        ("# default size=128", 11, "unknown default 'size'"),
    ],
)
def test_bad_directive_values(line, col, words):
    error = single_error(line + "\na.mp4\n")
    assert (error.line, error.col) == (1, col)
    assert words in error.message
    assert error.hint


def test_conflicting_task_directives():
    error = single_error("# task=rage\n# task=pog\n# task=rage\n")
    assert (error.line, error.col) == (2, 1)
    assert "'rage' on line 1" in error.message


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("rage.txt", "rage"),
        ("robot cam.txt", "robot_cam"),
        ("Pog-Moments.txt", "Pog-Moments"),
        ("labels.txt", "highlight"),
        ("heldout.txt", "highlight"),
        ("held-out.txt", "highlight"),
        ("train2.txt", "highlight"),
        ("my labels (copy).txt", "highlight"),
        ("2021-03-01.txt", "highlight"),
        ("rage_labels.txt", "rage_labels"),
        ("日本.txt", "highlight"),
    ],
)
def test_task_from_the_file_name(name, task):
    labels = parse_labels_text("a.mp4 1-2\n", Path("/x") / name)
    assert labels.task == task and labels.class_names() == ("background", task)
    assert not labels.task_declared
    declared = parse_labels_text("# task=ok\n", Path("/x") / name)
    assert declared.task == "ok" and declared.task_declared


def test_a_task_from_the_file_name_is_not_written_into_the_file(tmp_path):
    labels = parse_labels_text("a.mp4 1-2\n", tmp_path / "labels.txt")
    assert "# task=" not in format_labels(labels)
    again = parse_labels_text(format_labels(labels), tmp_path / "labels.txt")
    assert again == labels and not again.task_declared


def test_model_classes_match_a_file_without_a_task_line():
    undeclared = parse_labels_text("a.mp4 1-2 highlight:3-4\n", Path("/x/labels.txt"))
    matched = match_model_classes(undeclared, ("background", "rage"))
    assert matched.task == "rage" and matched.class_names() == ("background", "rage")
    assert matched.entries[0].spans == (Span(1000, 2000), Span(3000, 4000, label="rage"))
    assert match_model_classes(undeclared, ("rage", "background"), exact=True).task == "rage"
    # A file that names its task, or its classes, must match the model.
    declared = parse_labels_text("# task=pog\na.mp4 1-2\n", Path("/x/labels.txt"))
    assert match_model_classes(declared, ("background", "pog")) is declared
    with pytest.raises(ModelError) as info:
        match_model_classes(declared, ("background", "rage"), model="m.pt")
    assert str(info.value) == (
        "m.pt knows the classes background, rage, but /x/labels.txt has background, pog ('# task=pog') "
        "(use a model trained on these classes, or change '# task=pog' (a binary file without '# task=' "
        "works with any model of one class))"
    )
    assert info.value.exit_status == ExitStatus.MODEL
    # An undeclared binary file and a model of two classes: which one? Not guessed.
    with pytest.raises(ModelError, match="name one with '# task=CLASS' \\(rage, pog\\)"):
        match_model_classes(undeclared, ("background", "rage", "pog"))
    # Some of a multi-class model's classes are fine for evaluation, not for review (exact).
    some = parse_labels_text("# classes=pog\na.mp4 pog:1-2\n", Path("/x/labels.txt"))
    assert match_model_classes(some, ("background", "rage", "pog")) is some
    with pytest.raises(ModelError):
        match_model_classes(some, ("background", "rage", "pog"), exact=True)


def test_all_problems_are_collected_and_sorted():
    text = "a.mp4 5-1 x\n\nb.mp4 1:7x-2 crop=2\n# task=?\nc d.mp4\n"
    errors = errors_of(text)
    assert [(e.line, e.col) for e in errors] == [(1, 7), (1, 11), (3, 7), (3, 19), (4, 8), (5, 3)]
    assert str(LabelErrors(errors)).endswith("(and 5 more)")


def test_span_past_the_clip_end():
    text = "a.mp4 0-5.4  8-10.6\nb.mp4 1:00-end\nc.mp4 30-40\nd.mp4 9.6-end\n"
    labels = parse_labels_text(text, LABELS)
    durations = {"a.mp4": 10_000, "b.mp4": 20_000, "c.mp4": 20_000, "d.mp4": 10_000}
    problems = check_durations(labels, lambda p: durations.get(p.name))
    assert [(e.line, e.col) for e in problems] == [(1, 14), (2, 7), (3, 7)]
    assert "ends at 0:10.6" in problems[0].message and "0:10 long" in problems[0].message
    assert "starts at 1:00" in problems[1].message
    assert "'end'" in problems[2].hint
    # Unknown durations are skipped; within the 0.5 s tolerance is fine.
    assert check_durations(labels, lambda p: None) == []
    assert check_durations(labels, lambda p: 70_000) == []


def test_parse_labels_reports_an_unreadable_file(tmp_path):
    (error,) = _errors_from_file(tmp_path / "nope.txt")
    assert (error.line, error.col) == (1, 1)
    assert "cannot read the label file" in error.message
    (error,) = _errors_from_file(tmp_path)
    assert "cannot read" in error.message


def test_parse_labels_reports_undecodable_bytes(tmp_path):
    path = tmp_path / "rage.txt"
    path.write_bytes(b"a.mp4 1-2\nb\xe9\xff.mp4 1-2\nc.mp4 9-1\n")
    bad_byte, bad_span = _errors_from_file(path, check_files=False)
    assert (bad_byte.line, bad_byte.col) == (2, 2)
    assert "not valid UTF-8" in bad_byte.message and "UTF-8" in bad_byte.hint
    assert (bad_span.line, bad_span.col) == (3, 7)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_label_file_is_one_clear_error(tmp_path, encoding):
    # What Windows PowerShell's `dir *.mp4 > labels.txt` writes (a byte-order mark, then two bytes a character).
    path = tmp_path / "rage.txt"
    data = "a.mp4 1-2\nb.mp4\n".encode(encoding)
    path.write_bytes(data if data.startswith((b"\xff\xfe", b"\xfe\xff")) else b"\xfe\xff" + data)
    (error,) = _errors_from_file(path, check_files=False)
    assert (error.line, error.col) == (1, 1)
    assert "UTF-16" in error.message and "UTF-8" in error.hint


def test_parse_labels_reads_a_good_file(tmp_path):
    (tmp_path / "a b.mp4").write_bytes(b"")
    path = tmp_path / "rage.txt"
    path.write_text('"a b.mp4" 1-2\n', encoding="utf-8")
    labels = parse_labels(str(path))
    assert labels.path == path
    assert labels.entries[0].path == tmp_path / "a b.mp4"


# --------------------------------------------------------------------------- values


def test_crop_text_is_the_shortest_round_trip():
    assert CAM.as_text() == "0.7833,0.1296,0.9682,0.3694"
    assert Region(0, 0.1, 1, 1e-5 + 0.5).as_text() == "0,0.1,1,0.50001"
    tiny = Region(1e-7, 0, 0.3, 1)
    assert tiny.as_text().startswith("0.0000001,") and Region.parse(tiny.as_text()) == tiny
    assert Region.parse(" 0.1, 0.2 ,0.3,0.4") == Region(0.1, 0.2, 0.3, 0.4)


def test_values_refuse_impossible_states():
    with pytest.raises(ValueError):
        Region(0.5, 0, 0.5, 1)
    with pytest.raises(ValueError):
        Span(5, 5)
    with pytest.raises(ValueError):
        ClipEntry(Path("/a"), "a", None, None, (Span(0, 10), Span(5, 20)), 1, "")
    with pytest.raises(ValueError):
        LabelFile(LABELS, "no spaces allowed", None, ())


# --------------------------------------------------------------------------- writing


def test_format_round_trip_keeps_entries_task_and_crops():
    text = EXAMPLE + "# task=rage2\n# default crop=none\n'x # y.mp4' ~1:02:03.5-end\n"
    labels = parse_labels_text(text, LABELS)
    written = format_labels(labels)
    assert "# task=rage2\n# default crop=0.7833,0.1296,0.9682,0.3694\n" in written
    assert '"clips/with space.mp4"  0:12-0:18  ~0:20-0:22' in written
    assert '# default crop=none\n"x # y.mp4"  ~1:02:03.5-end\n' in written
    again = parse_labels_text(written, LABELS)
    assert again == labels
    assert format_labels(again) == written


def test_write_labels_is_atomic_and_refuses_to_overwrite(tmp_path):
    labels = parse_labels_text(EXAMPLE, tmp_path / "rage.txt")
    target = tmp_path / "rage.txt"
    write_labels(labels, target)
    assert parse_labels(target, check_files=False).entries == labels.entries
    target.write_text("mine\n", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        write_labels(labels, target)
    assert target.read_text(encoding="utf-8") == "mine\n"
    write_labels(labels, target, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rage.txt"]  # no temp files left


def test_write_labels_elsewhere_rewrites_relative_paths(tmp_path):
    labels = parse_labels_text("clips/a.mp4 1-2\n/abs/b.mp4\n", tmp_path / "labels" / "rage.txt")
    moved = tmp_path / "other" / "deeper" / "rage.txt"
    write_labels(labels, moved)
    text = moved.read_text(encoding="utf-8")
    assert "../../labels/clips/a.mp4  0:01-0:02\n" in text
    assert "\n/abs/b.mp4\n" in text
    again = parse_labels(moved, check_files=False).entries
    assert [(e.path, e.spans) for e in again] == [(e.path, e.spans) for e in labels.entries]


def test_paths_that_would_read_as_something_else_are_quoted():
    entries = []
    for index, raw in enumerate(["12-18", "crop=1", "~1-end", "a=b", "'q'", "", "tab\there"]):
        path = resolve_clip_path(LABELS.parent, raw)
        entries.append(ClipEntry(path, raw, None, None, (Span(index * 1000, None),), index + 1, ""))
    labels = LabelFile(LABELS, "rage", None, tuple(entries[:5] + entries[6:]))
    assert parse_labels_text(format_labels(labels), LABELS).entries == labels.entries


def test_merge_appends_entries_with_paths_relative_to_the_base(tmp_path):
    base = parse_labels_text("clips/a.mp4 1-2\n", tmp_path / "rage.txt")
    extra = parse_labels_text("b.mp4 3-4\n# default crop=0,0,0.5,0.5\nc.mp4\n", tmp_path / "new" / "more.txt")
    merged = merge_label_files(base, extra)
    assert [e.raw_path for e in merged.entries] == ["clips/a.mp4", "new/b.mp4", "new/c.mp4"]
    assert merged.entries[2].crop == Region(0, 0, 0.5, 0.5)
    assert merged.task == "rage"
    assert parse_labels_text(format_labels(merged), merged.path).entries == merged.entries
    with pytest.raises(LabelErrors) as info:
        merge_label_files(merged, extra)
    (first, second) = info.value.errors
    assert first.path == extra.path and first.line == 1 and "already listed" in first.message


# --------------------------------------------------------------------------- importers


DATA_CSV = """\
rawdata/highspirits.mp4 "[0.7833, 0.1296, 0.9682, 0.3694]" "(0.0, 25.0)" "(24.282, 31.806)"
rawdata/carriers.mp4 "[0.7833, 0.1296, 0.9682, 0.3694]" "(3.017,  7.399)"
rawdata/scene1.mp4 "[0.7833, 0.1296, 0.9682, 0.3694]"
rawdata/thestupidestthing.mp4 "[0.7833, 0.1296, 0.9682, 0.3694]" "(9.219, 30)" "(40.1, 41.0005)"
"""


def test_import_data_csv_in_the_original_style(tmp_path):
    csv = tmp_path / "old" / "data.csv"
    csv.parent.mkdir()
    csv.write_text(DATA_CSV, encoding="utf-8")
    dest = tmp_path / "labels" / "rage.txt"
    labels = import_data_csv(csv, dest)
    assert labels.path == dest and labels.task == "rage"
    assert labels.default_crop == CAM  # one shared crop: written once
    spirits, carriers, scene, stupid = labels.entries
    assert spirits.raw_path == "../old/rawdata/highspirits.mp4"
    assert spirits.path == tmp_path / "old" / "rawdata" / "highspirits.mp4"
    assert spirits.spans == (Span(0, 31_806),)  # overlapping spans of the original are joined
    assert carriers.spans == (Span(3_017, 7_399),)
    assert scene.spans == () and scene.crop == CAM and scene.own_crop is None
    assert stupid.spans == (Span(9_219, 30_000), Span(40_100, 41_001))
    text = format_labels(labels)
    assert "  crop=" not in text and "# default crop=0.7833,0.1296,0.9682,0.3694\n" in text
    assert "../old/rawdata/scene1.mp4\n" in text
    assert parse_labels_text(text, dest).entries == labels.entries


def test_import_data_csv_with_mixed_crops_writes_them_per_line(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text(
        'a.mp4 "[0.1, 0.1, 0.5, 0.5]" "(1, 2)"\r\nb.mp4 "[0.7635, 0.1056, 0.9802, 0.4009]"\r\n\r\n', encoding="utf-8"
    )
    labels = import_data_csv(csv, tmp_path / "mixed.txt")
    assert labels.default_crop is None
    assert [e.own_crop for e in labels.entries] == [Region(0.1, 0.1, 0.5, 0.5), Region(0.7635, 0.1056, 0.9802, 0.4009)]
    assert format_labels(labels).count("  crop=") == 2 and "# default" not in format_labels(labels)


@pytest.mark.parametrize(
    ("row", "col", "words"),
    [
        ('a.mp4 "[0.1, 0.1, 0.5]"', 7, "3"),
        ('a.mp4 "[0.1, 0.1, 0.5, 0.5]" "(2.0, 1.0)"', 30, "not after the start"),
        ('a.mp4 "[0.1, 0.1, 0.5, 0.5]" "(1.0, abc)"', 30, "'abc' is not a number"),
        ('a.mp4 "[0.1, 0.1, 0.5, 0.5]" "(1e99, 2)"', 30, "too large"),
        ("a.mp4 junk", 7, "unexpected field"),
        ('a.mp4 "(1, 2', 7, "unterminated quote"),
    ],
)
def test_import_data_csv_bad_rows(tmp_path, row, col, words):
    csv = tmp_path / "data.csv"
    csv.write_text('ok.mp4 "[0.1, 0.1, 0.5, 0.5]"\n' + row + "\n", encoding="utf-8")
    with pytest.raises(LabelErrors) as info:
        import_data_csv(csv, tmp_path / "rage.txt")
    (error,) = info.value.errors
    assert (error.path, error.line, error.col) == (csv, 2, col)
    assert words in error.message
    assert error.hint


def test_import_audacity_label_track(tmp_path):
    track = tmp_path / "track.txt"
    track.write_text(
        "1.500000\t4.250000\trage\n"
        "\\\t100.0\t2000.0\n"  # spectral selection line
        "8.000000\t9.000000\t~maybe\n"  # unsure; its text is a comment (not a class of the track)
        "10,5\t12,0\tunsure\n"  # decimal comma from some locales
        "3.0\t5.0\t\n",  # overlaps the first sure span: joined
        encoding="utf-8",
    )
    clip = tmp_path / "clips" / "game.mp4"
    dest = tmp_path / "labels" / "labels.txt"
    labels = import_audacity(track, clip, dest, crop=CAM)
    (entry,) = labels.entries
    assert entry.raw_path == "../clips/game.mp4" and entry.path == clip
    assert entry.own_crop == CAM
    assert entry.spans == (Span(1_500, 5_000), Span(8_000, 9_000, True), Span(10_500, 12_000, True))
    # The label text named the class: the file says so (not "labels", the file's name).
    assert labels.task == "rage" and labels.task_declared and labels.class_names() == ("background", "rage")
    assert "# task=rage\n" in format_labels(labels)
    assert parse_labels_text(format_labels(labels), dest).entries == labels.entries
    assert labels.notes == ()


def test_import_audacity_keeps_several_classes(tmp_path):
    track = tmp_path / "track.txt"
    track.write_text("1\t3\trage\n5\t6\tpog\n7\t8\t~pog\n9\t10\t~ not sure at all\n12\t14\trage\n", encoding="utf-8")
    labels = import_audacity(track, tmp_path / "vod.mp4", tmp_path / "labels.txt")
    assert labels.classes == ("rage", "pog") and labels.class_names() == ("background", "rage", "pog")
    assert labels.entries[0].spans == (
        Span(1000, 3000, label="rage"),
        Span(5000, 6000, label="pog"),
        Span(7000, 8000, True, "pog"),
        Span(9000, 10_000, True),
        Span(12_000, 14_000, label="rage"),
    )
    text = format_labels(labels)
    assert "# classes=rage,pog\n" in text and "# task=" not in text
    assert "vod.mp4  rage:0:01-0:03  pog:0:05-0:06  ~pog:0:07-0:08  ~0:09-0:10  rage:0:12-0:14\n" in text
    again = parse_labels_text(text, tmp_path / "labels.txt")
    assert again.entries == labels.entries and again.classes == labels.classes


def test_import_audacity_point_labels_become_spans_with_a_note(tmp_path):
    track = tmp_path / "track.txt"
    track.write_text("0.4\t0.4\tpog\n6.000000\t6.000000\tpog\n20\t24\tpog\n", encoding="utf-8")
    labels = import_audacity(track, tmp_path / "vod.mp4", tmp_path / "pog.txt")
    assert labels.entries[0].spans == (Span(0, 1400), Span(5000, 7000), Span(20_000, 24_000))
    (note,) = labels.notes
    assert str(note) == (
        f"{track}:1:1: note: 2 point labels became 2 s spans centred on them (lines 1, 2) "
        "(--point-window SECONDS sets the length; 0 refuses point labels)"
    )
    wide = import_audacity(track, tmp_path / "vod.mp4", tmp_path / "pog.txt", point_window_ms=5000)
    assert wide.entries[0].spans[:2] == (Span(0, 2900), Span(3500, 8500))
    with pytest.raises(LabelErrors) as info:
        import_audacity(track, tmp_path / "vod.mp4", tmp_path / "pog.txt", point_window_ms=0)
    assert [str(e) for e in info.value.errors] == [
        f"{track}:{line}:1: a point label at {at} marks no span (make it a region label in Audacity, or give "
        "--point-window SECONDS to turn point labels into spans centred on them)"
        for line, at in ((1, "0:00.4"), (2, "0:06"))
    ]


def test_import_audacity_errors(tmp_path):
    track = tmp_path / "track.txt"
    track.write_text(
        "1.0\t2.0\tok\nnonsense\n5.0\tx\tbad\n9.0\t8.0\tbackwards\n1.5\t1.8\t~unsure inside sure\n"
        "20\t21\tnice moment!\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelErrors) as info:
        import_audacity(track, tmp_path / "c.mp4", tmp_path / "rage.txt")
    assert [(e.line, e.col) for e in info.value.errors] == [(2, 1), (3, 5), (4, 5), (5, 1), (6, 7)]
    assert "overlaps a sure one" in info.value.errors[3].message
    assert info.value.errors[4].message == "the label text 'nice moment!' is not a class name"
    track.write_text("1\t2\trage\n3\t4\tpog\n5\t6\t\n2.5\t3.5\trage\n", encoding="utf-8")
    with pytest.raises(LabelErrors) as info:
        import_audacity(track, tmp_path / "c.mp4", tmp_path / "rage.txt")
    assert [str(e) for e in info.value.errors] == [
        f"{track}:2:1: a pog span overlaps a rage span (line 4) "
        "(spans of different classes must not overlap; move an edge)",
        f"{track}:3:1: the label has no text, but the track names the classes rage, pog "
        "(write the class as the label's text (e.g. rage), or '~' for an unsure span)",
    ]


# --------------------------------------------------------------------------- properties

_FUZZ_PIECES = st.sampled_from(
    [
        '"',
        "'",
        "#",
        "~",
        "-",
        ":",
        ".",
        "=",
        ",",
        "\\",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\x00",
        "\ufeff",
        "ü",
        "日",
        "0",
        "1",
        "5",
        "9",
        "60",
        "12.5",
        "0:05.2",
        "end",
        "crop=",
        "crop=0.1,0.2,0.3,0.4",
        "a.mp4",
        "# task=",
        "# default crop=",
        "none",
        "\u2028",
        "\x85",
        "1e5",
        "nan",
    ]
)
_FUZZ_TEXT = st.lists(st.one_of(_FUZZ_PIECES, st.text(max_size=4)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_FUZZ_TEXT, check_files=st.booleans())
def test_fuzz_parser_raises_only_label_errors(text, check_files):
    try:
        labels = parse_labels_text(text, Path("/nonexistent-autotosis/fuzz.txt"), check_files=check_files)
    except LabelErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert isinstance(error, LabelError) and error.line >= 1 and error.col >= 1 and error.message
        return
    # Whatever parsed must survive a round trip.
    assert parse_labels_text(format_labels(labels), labels.path).entries == labels.entries


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_fuzz_file_reader_raises_only_label_errors(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.txt"
        path.write_bytes(data)
        try:
            parse_labels(path)
        except LabelErrors as exc:
            assert all(e.line >= 1 and e.col >= 1 for e in exc.errors)


_FRACTIONS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def crops(draw) -> Region:
    x0, x1 = sorted(draw(st.lists(_FRACTIONS, min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(_FRACTIONS, min_size=2, max_size=2, unique=True)))
    return Region(x0, y0, x1, y1)


@st.composite
def span_lists(draw) -> tuple[Span, ...]:
    edges = sorted(draw(st.lists(st.integers(0, 10**8), unique=True, max_size=8)))
    pairs = list(zip(edges[::2], edges[1::2]))
    spans = [Span(start, end, draw(st.booleans())) for start, end in pairs]
    if spans and draw(st.booleans()):
        spans[-1] = Span(spans[-1].start_ms, None, spans[-1].unsure)
    return tuple(spans)


_RAW_PATHS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\x00"), min_size=1, max_size=12
)


@st.composite
def label_files(draw) -> LabelFile:
    label_dir = LABELS.parent
    raws = draw(st.lists(_RAW_PATHS, max_size=6, unique_by=lambda raw: resolve_clip_path(label_dir, raw)))
    default = draw(st.none() | crops())
    entries = []
    for line, raw in enumerate(raws, start=1):
        own = draw(st.none() | crops())
        crop = own if own is not None else draw(st.sampled_from([None, default]) | crops())
        entries.append(ClipEntry(resolve_clip_path(label_dir, raw), raw, crop, own, draw(span_lists()), line, ""))
    task = draw(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True))
    return LabelFile(LABELS, task, default, tuple(entries))


@settings(max_examples=200, deadline=None)
@given(labels=label_files())
def test_round_trip_property(labels):
    again = parse_labels_text(format_labels(labels), labels.path)
    assert again.entries == labels.entries
    assert again.task == labels.task
    if labels.default_crop is not None:
        assert again.default_crop == labels.default_crop


# --------------------------------------------------------------------------- `labels check`: hints for common slips


def labels_check(folder: Path, text: str, capsys, *, probe: bool = False) -> tuple[int, Path, list[str], str]:
    """Run `autotosis labels check` on ``text`` written to folder/rage.txt: (exit code, path, stderr lines, stdout)."""
    path = folder / "rage.txt"
    path.write_text(text, encoding="utf-8")
    code = main(["--progress", "none", "labels", "check", *([] if probe else ["--no-probe"]), str(path)])
    captured = capsys.readouterr()
    return code, path, captured.err.splitlines(), captured.out


@pytest.mark.parametrize(
    ("line", "col", "message"),
    [
        (
            "a.mp4  0:05 - 0:09  12-13",
            8,
            "span '0:05 - 0:09' has spaces around its '-' (write it without spaces: 0:05-0:09)",
        ),
        ("a.mp4  ~0:05 -0:09", 8, "span '~0:05 -0:09' has spaces around its '-' (write it without spaces: ~0:05-0:09)"),
        ("a.mp4  1:12- end", 8, "span '1:12- end' has spaces around its '-' (write it without spaces: 1:12-end)"),
        (
            "a.mp4  0.78,0.13,0.97,0.37  1-2",
            8,
            "'0.78,0.13,0.97,0.37' looks like a crop without 'crop=' (write crop=0.78,0.13,0.97,0.37)",
        ),
        (
            "a.mp4  0.78, 0.13, 0.97, 0.37",
            8,
            "'0.78, 0.13, 0.97, 0.37' looks like a crop without 'crop=' (write crop=0.78,0.13,0.97,0.37)",
        ),
        ("a.mp4  0:15,2-0:20", 12, "bad time '0:15,2': a decimal comma (write a decimal point: 0:15.2)"),
        ("a.mp4  12-14,5", 13, "bad time '14,5': a decimal comma (write a decimal point: 14.5)"),
        (
            "a.mp4  0:01-1:2:3:4",
            13,
            "bad time '1:2:3:4': too many ':' (a time is at most h:mm:ss) (write [h:]mm:ss[.fff] with a '.' before a "
            "fraction of a second, e.g. 1:02:03.4; a timecode's last field counts frames, not milliseconds)",
        ),
    ],
    ids=[
        "spaces-around-dash",
        "unsure-space-before",
        "space-after-end",
        "forgotten-crop",
        "forgotten-crop-spaced",
        "decimal-comma",
        "decimal-comma-end",
        "four-fields",
    ],
)
def test_labels_check_hints_for_common_slips(tmp_path, capsys, line, col, message):
    (tmp_path / "a.mp4").write_bytes(b"")
    code, path, err, _ = labels_check(tmp_path, f"# task=rage\n{line}\n", capsys)
    assert code == ExitStatus.LABELS == 3
    assert err == [f"autotosis: {path}:2:{col}: {message}"]


def test_labels_check_hints_at_windows_paths(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "game1.mp4").write_bytes(b"")
    code, path, err, _ = labels_check(
        tmp_path, "clips\\game1.mp4  1-2\nC:\\Users\\me\\game2.mp4\nclips\\gone.mp4\n", capsys
    )
    assert code == 3
    assert err == [
        f"autotosis: {path}:1:1: clip 'clips\\game1.mp4' does not exist ({tmp_path}/clips\\game1.mp4) "
        "(write / between folders, not \\: clips/game1.mp4 (that file exists))",
        f"autotosis: {path}:2:1: clip 'C:\\Users\\me\\game2.mp4' does not exist ({tmp_path}/C:\\Users\\me\\game2.mp4) "
        f"(that is a Windows path: write the clip's path relative to the label file's folder {tmp_path}, "
        "with / between folders)",
        f"autotosis: {path}:3:1: clip 'clips\\gone.mp4' does not exist ({tmp_path}/clips\\gone.mp4) "
        "(write / between folders, not \\: clips/gone.mp4)",
        "autotosis: 3 problems in label files",
    ]


def test_labels_check_merges_a_clip_on_two_lines_with_a_note(tmp_path, capsys):
    (tmp_path / "a.mp4").write_bytes(b"")
    code, path, err, out = labels_check(tmp_path, "a.mp4  1-2\na.mp4  3-4  ~5-6\n", capsys)
    assert code == 0
    assert err == [
        f"autotosis: {path}:2:1: note: clip 'a.mp4' is also listed on line 1: the spans of both lines are merged "
        "(put all spans of a clip on one line)"
    ]
    assert "1 clips, 3 spans" in out and "task 'rage' (from the file name" in out


@pytest.mark.media
def test_labels_check_reports_every_problem_in_one_pass(tmp_path, capsys):
    # A span past a clip's end used to go unreported while another line had a syntax error.
    from tests.conftest import make_video

    make_video(tmp_path / "short.mp4", duration=3, audio=False)
    make_video(tmp_path / "fine.mp4", duration=3, audio=False)
    (tmp_path / "a.mp4").write_bytes(b"")
    text = "short.mp4  1-2  2.5-10\na.mp4  0:05 - 0:09\nfine.mp4  1-2  ~4-5\nmissing.mp4\n"
    code, path, err, _ = labels_check(tmp_path, text, capsys, probe=True)
    assert code == 3
    assert err == [
        f"autotosis: {path}:1:17: span 0:02.5-0:10 ends at 0:10, past the end of 'short.mp4' (0:03 long) "
        "(fix the time, or write 'end' for the end of the clip (e.g. 1:12-end))",
        f"autotosis: {path}:2:8: span '0:05 - 0:09' has spaces around its '-' (write it without spaces: 0:05-0:09)",
        f"autotosis: {path}:3:16: span ~0:04-0:05 starts at 0:04, past the end of 'fine.mp4' (0:03 long) "
        "(fix the time, or write 'end' for the end of the clip (e.g. 1:12-end))",
        f"autotosis: {path}:4:1: clip 'missing.mp4' does not exist ({tmp_path}/missing.mp4) "
        f"(paths are relative to the label file's folder {tmp_path}; quote names that contain spaces or #)",
        "autotosis: 4 problems in label files",
    ]


def test_labels_import_audacity_command_keeps_classes_and_states_the_point_window(tmp_path, capsys):
    track = tmp_path / "track.txt"
    track.write_text("1\t3\trage\n6\t6\tpog\n", encoding="utf-8")
    out = tmp_path / "labels.txt"
    assert (
        main(
            [
                "--progress",
                "none",
                "labels",
                "import",
                str(track),
                "--clip",
                str(tmp_path / "vod.mp4"),
                "-o",
                str(out),
                "--point-window",
                "3",
            ]
        )
        == 0
    )
    assert capsys.readouterr().err == (
        f"autotosis: {track}:2:1: note: 1 point label became 3 s span centred on it (lines 2) "
        "(--point-window SECONDS sets the length; 0 refuses point labels)\n"
    )
    text = out.read_text(encoding="utf-8")
    assert "# classes=rage,pog\n" in text and "vod.mp4  rage:0:01-0:03  pog:0:04.5-0:07.5\n" in text
    refused = tmp_path / "refused.txt"
    assert (
        main(
            [
                "--progress",
                "none",
                "labels",
                "import",
                str(track),
                "--clip",
                "vod.mp4",
                "-o",
                str(refused),
                "--point-window",
                "0",
            ]
        )
        == ExitStatus.LABELS
    )
    assert capsys.readouterr().err.startswith(f"autotosis: {track}:2:1: a point label at 0:06 marks no span")
    assert not refused.exists()


@pytest.mark.media
def test_training_frames_from_labels_txt_are_not_of_a_class_called_labels(tmp_path, capsys):
    # What `train` learns from: a model trained from labels.txt called its class "labels".
    import json

    from tests.conftest import make_video

    make_video(tmp_path / "a.mp4", duration=2, audio=False)
    labels = tmp_path / "labels.txt"
    labels.write_text("a.mp4  0.5-1.5\n", encoding="utf-8")
    out = tmp_path / "frames"
    assert main(["--progress", "none", "frames", str(labels), "--out", str(out), "--fps", "2", "--size", "8"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "highlight" and manifest["classes"] == ["background", "highlight"]
