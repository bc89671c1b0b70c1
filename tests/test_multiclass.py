"""Multi-class tasks: the label syntax, frame targets, and a 3-class model end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.cli import main
from autotosis.core.errors import LabelErrors
from autotosis.labels.parse import parse_labels_text
from autotosis.labels.values import ClipEntry, LabelFile, Span
from autotosis.labels.writer import format_labels
from autotosis.model.model import load_checkpoint
from autotosis.training.dataset import IGNORE, frame_targets
from tests.conftest import make_video

LABELS = Path("/project/labels/show.txt")


def parse(text: str) -> LabelFile:
    return parse_labels_text(text, LABELS)


def errors_of(text: str) -> list[str]:
    with pytest.raises(LabelErrors) as caught:
        parse(text)
    return [str(e) for e in caught.value.errors]


# --------------------------------------------------------------------------- syntax


def test_classes_directive_and_class_prefixes():
    labels = parse("# classes=rage,pog\nclips/a.mp4  rage:0:05-0:09  pog:1:12-1:20.5  ~0:30-0:32  ~pog:40-41\n")
    assert labels.classes == ("rage", "pog")
    assert labels.class_names() == ("background", "rage", "pog")
    spans = labels.entries[0].spans
    assert spans == (
        Span(5_000, 9_000, label="rage"),
        Span(30_000, 32_000, unsure=True),
        Span(40_000, 41_000, True, "pog"),
        Span(72_000, 80_500, label="pog"),
    )
    assert spans[0].as_text() == "rage:0:05-0:09" and spans[2].as_text() == "~pog:0:40-0:41"


def test_class_names_may_hold_digits_and_dashes_but_clock_times_are_not_classes():
    labels = parse("# classes=studio-a,studio_2\nx.mp4  studio-a:1:02-1:05  studio_2:1:10-end\n")
    assert [s.label for s in labels.entries[0].spans] == ["studio-a", "studio_2"]
    assert labels.entries[0].spans[0].start_ms == 62_000


def test_binary_files_are_unchanged_and_may_name_the_task():
    old = parse("a.mp4  2-5  ~6-7\nb.mp4\n")
    assert old.classes == () and old.class_names() == ("background", "show")
    assert old.entries[0].spans == (Span(2000, 5000), Span(6000, 7000, True))
    named = parse("a.mp4  show:2-5\n")
    assert named.entries[0].spans == (Span(2000, 5000, label="show"),)
    assert "# classes" not in format_labels(old)


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("# classes=rage,pog\na.mp4  12-18\n", "show.txt:2:8", "has no class, and this file has 2"),
        ("# classes=rage,pog\na.mp4  poq:12-18\n", "show.txt:2:8", "unknown class 'poq' (did you mean 'pog'?"),
        ("a.mp4  pog:12-18\n", "show.txt:1:8", "unknown class 'pog' (this file's only class is its task 'show'"),
        ("# classes=rage,background\n", "show.txt:1:16", "bad class name 'background'"),
        ("# classes=rage, 2fast\n", "show.txt:1:17", "bad class name '2fast'"),
        ("# classes=rage,rage\n", "show.txt:1:16", "class 'rage' is listed twice"),
        ("# classes=a,b\n# classes=a,c\n", "show.txt:2:1", "classes set twice"),
        ("# classes=a,b\na.mp4  a:1-3  b:2-4\n", "show.txt:2:15", "overlaps"),
    ],
)
def test_class_errors_name_file_line_col(text: str, where: str, message: str):
    found = errors_of(text)
    assert any(where in e and message in e for e in found), found


def test_unsure_spans_need_no_class():
    labels = parse("# classes=a,b\nx.mp4  a:1-2  ~3-4\n")
    assert labels.entries[0].spans[1] == Span(3000, 4000, True)


def test_round_trip_keeps_classes_and_quotes_span_shaped_paths():
    labels = parse('# classes=rage,pog\n"pog:1-2"  rage:3-4\n"my clip.mp4"  pog:0-end\n')
    text = format_labels(labels)
    assert "# classes=rage,pog" in text and '"pog:1-2"  rage:0:03-0:04' in text
    assert parse(text) == labels


class_names = st.sampled_from(["rage", "pog", "studio-a", "x_1"])


@st.composite
def label_files(draw):
    classes = tuple(draw(st.lists(class_names, min_size=1, max_size=4, unique=True)))
    entries = []
    for index in range(draw(st.integers(0, 4))):
        cuts = sorted(draw(st.lists(st.integers(0, 600_000), min_size=0, max_size=6, unique=True)))
        spans = []
        for start, end in zip(cuts[::2], cuts[1::2]):
            unsure = draw(st.booleans())
            label = draw(st.sampled_from(classes)) if not unsure or draw(st.booleans()) else None
            if label is None and not unsure and len(classes) > 1:
                label = classes[0]
            spans.append(Span(start, end, unsure, label))
        raw = f"clip {index}.mp4"
        entries.append(ClipEntry(Path("/project/labels") / raw, raw, None, None, tuple(spans), index + 1, ""))
    return LabelFile(LABELS, "show", None, tuple(entries), classes)


@settings(max_examples=60, deadline=None)
@given(label_files())
def test_format_then_parse_gives_the_same_labels(labels: LabelFile):
    assert parse(format_labels(labels)) == labels


def test_frame_targets_use_the_class_index():
    times = np.arange(0, 10_000, 500)
    spans = (Span(1000, 3000, label="pog"), Span(5000, 8000, label="rage"), Span(8500, 9500, True))
    targets = frame_targets(times, spans, 10_000, 0, ("background", "rage", "pog"))
    assert targets[times == 1500][0] == 2 and targets[times == 6000][0] == 1 and targets[times == 4000][0] == 0
    assert targets[times == 9000][0] == IGNORE
    # Without a class list (a binary task) every sure span is class 1.
    assert set(frame_targets(times, spans[:2], 10_000, 0)[[2, 12]].tolist()) == {1}


# --------------------------------------------------------------------------- a 3-class model end to end


CAM = "0.5,0,1,0.5"


def coloured_clip(path: Path, duration: float, spans: list[tuple[str, float, float]]) -> Path:
    """A moving test pattern; a red or a blue square fills the top-right quarter during each span."""
    boxes = ",".join(
        f"drawbox=x=iw/2:y=0:w=iw/2:h=ih/2:color={colour}:t=fill:enable='between(t,{s},{e})'" for colour, s, e in spans
    )
    return make_video(path, duration=duration, size="64x64", fps="10", audio=False, extra_video_filters=boxes or "null")


def run(argv) -> int:
    return main(["--progress", "none", *argv])


@pytest.mark.media
@pytest.mark.torch
@pytest.mark.slow
def test_three_class_model_from_labels_to_events(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    clips = {
        "a.mp4": [("red", 1, 3), ("blue", 5, 7)],
        "b.mp4": [("blue", 1, 4)],
        "c.mp4": [("red", 2, 5)],
        "d.mp4": [],
        "e.mp4": [("red", 4, 6), ("blue", 1, 2.5)],
        "f.mp4": [("blue", 3, 6), ("red", 0.5, 2)],
    }
    lines = ["# classes=red,blue", f"# default crop={CAM}"]
    for name, spans in clips.items():
        coloured_clip(tmp_path / name, 8, spans)
        lines.append("  ".join([name, *(f"{c}:{s}-{e}" for c, s, e in sorted(spans, key=lambda x: x[1]))]))
    labels = tmp_path / "colours.txt"
    labels.write_text("\n".join(lines) + "\n")
    model = tmp_path / "colours.pt"
    assert (
        run(
            [
                "train",
                str(labels),
                "-o",
                str(model),
                "--size",
                "32",
                "--fps",
                "5",
                "--epochs",
                "4",
                "--seed",
                "2",
                "--val-fraction",
                "0.34",
            ]
        )
        == 0
    )
    _, info, _ = load_checkpoint(model)
    assert info.classes == ("background", "red", "blue") and info.task == "colours"

    vod = coloured_clip(tmp_path / "held out.mp4", 12, [("red", 2, 5), ("blue", 7, 10)])
    scores_path = tmp_path / "vod.scores.json"
    assert run(["scan", str(vod), "--model", str(model), "-o", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())
    assert scores["classes"] == ["background", "red", "blue"]
    times = np.array(scores["times_ms"])
    red, blue = np.array(scores["scores"]["red"]), np.array(scores["scores"]["blue"])
    in_red, in_blue = (times >= 2500) & (times < 4500), (times >= 7500) & (times < 9500)
    assert red[in_red].mean() > 0.6 and blue[in_blue].mean() > 0.6
    assert red[in_blue].mean() < 0.3 and blue[in_red].mean() < 0.3

    events_path = tmp_path / "blue.events.json"
    assert (
        run(
            [
                "events",
                str(scores_path),
                "--class",
                "blue",
                "-o",
                str(events_path),
                "--pad-before",
                "0",
                "--pad-after",
                "0",
            ]
        )
        == 0
    )
    events = json.loads(events_path.read_text())["events"]
    assert [e["label"] for e in events] == ["blue"]
    assert 6000 <= events[0]["start_ms"] <= 8000 and 9000 <= events[0]["end_ms"] <= 11_000

    # The overlay text of a reel names the class and shows its score.
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import read_events
    from autotosis.outputs.render import chunk_overlays

    event = read_events(events_path).events[0]
    overlays = chunk_overlays(event, read_scores(scores_path), 1000, 500, tmp_path, "o")
    text = overlays[0].text_file.read_text()
    assert text.startswith("blue: ") and float(text.split(": ")[1]) > 0.5

    # eval reports each class.
    out = tmp_path / "eval.json"
    assert run(["eval", str(labels), "--model", str(model), "--json", str(out)]) == 0
    reports = {r["class_name"]: r for r in json.loads(out.read_text())["reports"]}
    assert set(reports) == {"red", "blue"}
    assert all(r["event"]["f1"] >= 0.6 for r in reports.values())
