"""The repository's example files: every label file in labels/ parses with the real parser (with
the task and classes it is meant to show), the README's label example too, and the demo writes
the same layout (clips/ beside labels/, clip paths relative to the label file's folder)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from autotosis.core.region import Region
from autotosis.demo.demo import CLIPS_DIR, LABELS_DIR, TASK, rough_labels_text
from autotosis.labels.parse import parse_labels, parse_labels_text
from autotosis.labels.writer import format_labels

ROOT = Path(__file__).resolve().parents[1]
LABELS_FOLDER = ROOT / "labels"
CLIPS_FOLDER = ROOT / "clips"
CAM = Region(0.7833, 0.1296, 0.9682, 0.3694)

# Every file in labels/: (task, declared task?, declared classes). A new example file needs a row.
EXPECTED = {
    "rage.txt": ("rage", True, ()),
    "reactions.txt": ("reactions", False, ("rage", "pog", "laugh")),
    "template.txt": ("highlight", False, ()),  # a generic name: any model of one class fits
}


def example(name: str):
    # The clips are placeholders (clips/ holds no videos): parse only; existence is checked by
    # `labels check`, `frames` and `train` (parse_labels(check_files=True)).
    return parse_labels(LABELS_FOLDER / name, check_files=False)


def test_every_label_file_is_listed():
    assert sorted(p.name for p in LABELS_FOLDER.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_label_file_parses(name: str):
    labels = example(name)
    task, declared, classes = EXPECTED[name]
    assert (labels.task, labels.task_declared, labels.classes) == (task, declared, classes)
    assert labels.class_names() == ("background", *(classes or (task,)))
    assert labels.notes == ()
    assert len(labels.entries) >= 4
    for entry in labels.entries:
        # labels/ beside clips/: every clip is ../clips/NAME, i.e. in the repository's clips/.
        assert entry.raw_path.startswith("../clips/")
        assert entry.path.parent == CLIPS_FOLDER
        for span in entry.spans:
            assert span.label is None or span.label in labels.class_names()
    # Round trip through the writer: the example is in the format the tool itself writes.
    assert parse_labels_text(format_labels(labels), labels.path) == labels


def test_rage_example_shows_every_piece():
    labels = example("rage.txt")
    assert labels.default_crop == CAM
    by_name = {entry.path.name: entry for entry in labels.entries}
    assert by_name["calm_game.mp4"].spans == ()  # a clip with no spans: all negatives
    spaced = by_name["with space.mp4"]  # a quoted path with a space
    assert spaced.raw_path == "../clips/with space.mp4"
    assert [(s.start_ms, s.end_ms, s.unsure) for s in spaced.spans] == [(12000, 18000, False), (20000, 22000, True)]
    first = by_name["2021-03-01_part3.mp4"]
    assert first.own_crop == CAM
    assert [(s.start_ms, s.end_ms) for s in first.spans] == [(5200, 9000), (72000, 80500)]
    boss = by_name["boss_fight.mp4"]
    assert boss.own_crop == Region(0.02, 0.7, 0.25, 0.98)
    assert boss.spans[-1].end_ms is None  # 3:10-end
    assert all(e.crop is not None for e in labels.entries)


def test_reactions_example_is_multi_class():
    labels = example("reactions.txt")
    spans = [span for entry in labels.entries for span in entry.spans]
    sure = {span.label for span in spans if not span.unsure}
    assert sure == set(labels.classes)  # every class has a span, every sure span a class
    assert any(span.unsure and span.label is None for span in spans)
    assert any(span.unsure and span.label == "pog" for span in spans)
    assert any(not entry.spans for entry in labels.entries)


def test_template_example_lines():
    labels = example("template.txt")
    crops = [entry.crop for entry in labels.entries]
    assert crops[0] == CAM and crops[-1] is None  # '# default crop=none' ends the default
    quoted = [entry for entry in labels.entries if "#" in entry.raw_path]
    assert [entry.raw_path for entry in quoted] == ["../clips/my clip #2.mp4"]


def test_readme_label_example_parses():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n(# labels/rage\.txt.*?)```", readme, re.S)
    assert block is not None
    labels = parse_labels_text(block[1], LABELS_FOLDER / "rage.txt")
    assert labels.task == "rage"
    assert all(entry.path.parent == CLIPS_FOLDER for entry in labels.entries)


def test_clips_readme_describes_the_layout():
    text = (CLIPS_FOLDER / "README.md").read_text(encoding="utf-8")
    assert "../clips/" in text and "autotosis demo" in text and "make_sample_set(" in text


def test_demo_labels_follow_the_layout(tmp_path: Path):
    """The demo's label file sits in OUT/labels/ and names OUT/clips/ relative to itself."""
    out = tmp_path / "demo out"
    clips = [
        SimpleNamespace(path=out / CLIPS_DIR / "train_00.mp4", duration_ms=30000, highlights=((4000, 9000),)),
        SimpleNamespace(path=out / CLIPS_DIR / "train_01.mp4", duration_ms=30000, highlights=()),
    ]
    labels_path = out / LABELS_DIR / f"{TASK}.txt"
    cam = (CAM.x0, CAM.y0, CAM.x1, CAM.y1)
    text = rough_labels_text(clips, 1000, np.random.default_rng(1), labels_path.parent, cam)
    labels = parse_labels_text(text, labels_path)
    assert [entry.raw_path for entry in labels.entries] == ["../clips/train_00.mp4", "../clips/train_01.mp4"]
    assert [entry.path for entry in labels.entries] == [clip.path for clip in clips]
    assert labels.task == TASK and labels.default_crop == CAM
    assert len(labels.entries[0].spans) == 1 and labels.entries[1].spans == ()
