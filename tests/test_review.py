"""`autotosis review`: review clips + label lines, and hard examples with a contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.detect.scores import ScanInfo, Scores
from autotosis.detect.segments import Event
from autotosis.labels.parse import parse_labels, parse_labels_text
from autotosis.labels.values import Span
from autotosis.media import probe
from autotosis.workflows.review import (
    HardExample,
    ReviewClip,
    clip_name,
    hard_example_name,
    next_iteration,
    review_section,
    review_windows,
)
from tests.conftest import constant_model, flash_clip

CAM = (0.75, 0.0, 1.0, 0.3)


def run(argv) -> int:
    return main(["--progress", "none", *argv])


def event(start: int, end: int, peak: float = 0.9) -> Event:
    return Event(start, end, "rage", peak, peak, start)


# --------------------------------------------------------------------------- pure parts


def test_windows_hold_the_unpadded_events_cut_to_them():
    windows = [event(1000, 9000), event(20_000, 24_000, 0.7)]
    cores = [event(2000, 4000), event(5000, 9500), event(21_000, 23_000)]
    made = review_windows(windows, cores)
    assert [(w.start_ms, w.end_ms, w.spans, w.peak) for w in made] == [
        (1000, 9000, ((2000, 4000), (5000, 9000)), 0.9),
        (20_000, 24_000, ((21_000, 23_000),), 0.7),
    ]


def test_iterations_count_up_from_sections_clip_names_and_files(tmp_path: Path):
    assert next_iteration("", [], tmp_path / "none") == 1
    text = "a.mp4\n# --- review iter2: autotosis review ---\nreview/iter2_v_h1.mp4\n"
    assert next_iteration(text, ["review/iter2_v_h1.mp4", "clips/iter4_x_h1.mp4"], tmp_path) == 5
    (tmp_path / "iter7_vod_h3.mp4").write_bytes(b"")
    assert next_iteration(text, [], tmp_path) == 8
    assert next_iteration("clips/literature_3.mp4\n", ["clips/literature_3.mp4"], tmp_path / "x") == 1
    assert clip_name(3, Path("/v/my vod (1).mkv"), 2) == "iter3_my-vod-1_h2.mp4"


def test_review_section_parses_with_spans_crop_and_classes(tmp_path: Path):
    labels = tmp_path / "show.txt"
    clips = [
        ReviewClip(
            tmp_path / "review" / "iter1_v_h1.mp4",
            Path("/x/v.mp4"),
            61_000,
            70_000,
            (Span(1000, 4500, label="pog"),),
            0.93,
        ),
        ReviewClip(tmp_path / "review" / "iter1_v_h2.mp4", Path("/x/v.mp4"), 90_000, 93_000, (), 0.61),
    ]
    section = review_section(1, clips, labels, model="m.pt", threshold=0.6, crop=CAM)
    assert section.startswith("# --- review iter1:") and section.rstrip().endswith("# --- end of review iter1 ---")
    assert "review/iter1_v_h1.mp4  pog:0:01-0:04.5  # v.mp4 1:01-1:10, peak 0.93" in section
    parsed = parse_labels_text("# classes=rage,pog\n# default crop=none\nother.mp4\n" + section, labels)
    first, second = parsed.entries[1:]
    assert first.spans == (Span(1000, 4500, label="pog"),) and first.crop is not None and first.crop.x0 == 0.75
    assert second.spans == () and parsed.entries[0].crop is None


def test_hard_example_names_sort_most_confident_first():
    example = HardExample(Path("/c/my clip.mp4"), 12_500, "background", "rage", 0.97312, None)
    assert hard_example_name(example, 1, 40) == "001_0.973_rage-not-background_my-clip_t000012500.jpg"
    assert hard_example_name(example, 7, 1200) == "0007_0.973_rage-not-background_my-clip_t000012500.jpg"
    # Examples come most confident first: an A-Z listing must keep that order (the confidence first did not).
    examples = [
        HardExample(Path("c.mp4"), t, "background", "rage", c, None) for t, c in ((0, 0.99), (500, 0.95), (900, 0.81))
    ]
    names = [hard_example_name(h, rank, len(examples)) for rank, h in enumerate(examples, 1)]
    assert sorted(names) == names


# --------------------------------------------------------------------------- the command


def fake_scan(high: list[tuple[int, int]]):
    """scan_video stand-in: rage scores high in ``high`` (ms ranges), every 0.5 s."""

    def scan(video, model_path, options=None, **kwargs):
        info = probe.probe(video)
        times = np.arange(0, info.duration_ms, 500, dtype=np.int64)
        rage = np.full(len(times), 0.05, dtype=np.float32)
        for start, end in high:
            rage[(times >= start) & (times < end)] = 0.9
        return Scores(
            Path(video),
            info.duration_ms,
            ("background", "rage"),
            times,
            np.stack([1 - rage, rage], 1),
            500,
            task="rage",
            scan=ScanInfo(region=CAM, threshold=0.5),
        )

    return scan


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj é"
    (root / "clips").mkdir(parents=True)
    flash_clip(root / "clips" / "a.mp4", 5, [(1, 3)], audio=True)
    flash_clip(root / "clips" / "calm.mp4", 4, [], audio=True)
    (root / "rage.txt").write_text(
        "# task=rage\nclips/a.mp4  1-3\nclips/calm.mp4", encoding="utf-8"
    )  # no final newline
    return root


@pytest.mark.media
def test_review_cuts_clips_and_appends_a_section(project: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr("autotosis.detect.scan.scan_video", fake_scan([(3000, 6000), (12_000, 14_000)]))
    vod = flash_clip(tmp_path / "new vod.mp4", 18, [(3, 6), (12, 14)], audio=True)
    model = constant_model(tmp_path / "m.pt", 0.0, crop=CAM)
    labels = project / "rage.txt"
    labels.chmod(0o640)
    assert (
        run(
            [
                "review",
                str(vod),
                "--model",
                str(model),
                "--labels",
                str(labels),
                "--pad-before",
                "1",
                "--pad-after",
                "2",
            ]
        )
        == 0
    )
    assert labels.stat().st_mode & 0o777 == 0o640  # replaced atomically, permissions kept
    clips = sorted((project / "review").glob("*.mp4"))
    assert [c.name for c in clips] == ["iter1_new-vod_h1.mp4", "iter1_new-vod_h2.mp4"]
    # Clip 1 is 2..8 s of the VOD (1 s before, 2 s after the event 3..6 s).
    durations = probe.stream_durations(clips[0])
    assert abs(durations.video_ms - 6000) <= 100 and durations.audio_ms is not None
    parsed = parse_labels(labels)
    assert [e.raw_path for e in parsed.entries] == [
        "clips/a.mp4",
        "clips/calm.mp4",
        "review/iter1_new-vod_h1.mp4",
        "review/iter1_new-vod_h2.mp4",
    ]
    assert parsed.entries[2].spans == (Span(1000, 4000),) and parsed.entries[3].spans == (Span(1000, 3000),)
    assert parsed.entries[2].crop is not None and parsed.entries[2].crop.x0 == 0.75
    text = labels.read_text(encoding="utf-8")
    assert text.startswith("# task=rage\nclips/a.mp4  1-3\nclips/calm.mp4\n")  # the user's lines are kept as they were
    assert "# --- review iter1:" in text and "new vod.mp4 0:02-0:08" in text

    # A second round is iter2; an explicit iteration that exists is refused and nothing changes.
    assert run(["review", str(vod), "--model", str(model), "--labels", str(labels), "--top-k", "1"]) == 0
    assert sorted(c.name for c in (project / "review").glob("iter2_*")) == ["iter2_new-vod_h1.mp4"]
    before = labels.read_bytes()
    assert (
        run(["review", str(vod), "--model", str(model), "--labels", str(labels), "--iteration", "1"])
        == ExitStatus.OUTPUT_EXISTS
    )
    assert labels.read_bytes() == before
    assert not list(project.glob("**/*.part*"))
    # Without VIDEOs or --hard-negatives there is nothing to do.
    assert run(["review", "--model", str(model)]) == ExitStatus.USAGE
    assert run(["review", str(vod), "--model", str(model)]) == ExitStatus.USAGE


@pytest.mark.media
@pytest.mark.torch
def test_hard_negatives_are_written_most_confident_first_with_a_sheet(project: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    always = constant_model(tmp_path / "always.pt", 6.0, crop=CAM)  # calls every frame "rage"
    out = tmp_path / "out"
    assert (
        run(
            [
                "review",
                "--model",
                str(always),
                "--hard-negatives",
                str(project / "rage.txt"),
                "-o",
                str(out),
                "--max-images",
                "5",
            ]
        )
        == 0
    )
    images = sorted((out / "hard-examples").glob("*.jpg"))
    names = [p.name for p in images if p.name != "contact_sheet.jpg"]
    assert len(names) == 5
    assert [n[:10] for n in names] == [f"{rank:03d}_0.998_" for rank in range(1, 6)]
    assert all("_0.998_rage-not-background_" in n for n in names)
    with Image.open(out / "hard-examples" / names[0]) as image:
        assert image.size == (96, 54)  # the whole frame, full size
    with Image.open(out / "hard-examples" / "contact_sheet.jpg") as sheet:
        assert sheet.width == 4 * 320 and sheet.height >= 2 * 180
    # A model that is never wrong with confidence: nothing written.
    never = constant_model(tmp_path / "never.pt", -6.0, crop=CAM)
    empty = tmp_path / "empty"
    assert (
        run(
            [
                "review",
                "--model",
                str(never),
                "--hard-negatives",
                str(project / "rage.txt"),
                "-o",
                str(empty),
                "--band",
                "0",
            ]
        )
        == 0
    )
    # "never" misses clip a's highlight at 0.998: those frames are the hard ones now.
    found = sorted(p.name for p in (empty / "hard-examples").glob("0*_0.*.jpg"))
    assert found and all("background-not-rage_a_" in n for n in found)


@pytest.mark.media
def test_review_into_a_copy_of_the_labels_and_a_real_mismatch(project: Path, tmp_path: Path, monkeypatch, capsys):
    # `review --labels copy.txt` exited 3 (and eval 7) for a copy of the training labels: the task came from the
    # file name.  A file without '# task=' fits any model of one class; one that names another task is exit 5.
    monkeypatch.setattr("autotosis.detect.scan.scan_video", fake_scan([(3000, 6000)]))
    vod = flash_clip(tmp_path / "vod.mp4", 8, [(3, 6)])
    model = constant_model(tmp_path / "m.pt", 0.0, crop=CAM)
    copy = project / "copy.txt"
    copy.write_text("clips/a.mp4  1-3\nclips/calm.mp4\n", encoding="utf-8")
    assert run(["review", str(vod), "--model", str(model), "--labels", str(copy)]) == 0
    parsed = parse_labels(copy)
    assert [e.raw_path for e in parsed.entries][2:] == ["review/iter1_vod_h1.mp4"]
    (span,) = parsed.entries[2].spans
    assert span.end_ms - span.start_ms == 3000 and span.label is None  # the event 3..6 s, in the file's only class
    assert "# task=" not in copy.read_text(encoding="utf-8")

    other = project / "other.txt"
    other.write_text("# task=pog\nclips/a.mp4  1-3\n", encoding="utf-8")
    before = other.read_bytes()
    capsys.readouterr()
    assert (
        run(["review", str(vod), "--model", str(model), "--labels", str(other), "-o", str(tmp_path / "r")])
        == ExitStatus.MODEL
    )
    assert capsys.readouterr().err == (
        f"autotosis: error: {model} knows the classes background, rage, but {other} has background, pog ('# task=pog') "
        "(use a model trained on these classes, or change '# task=pog' (a binary file without '# task=' works with any "
        "model of one class))\n"
    )
    assert other.read_bytes() == before and not (tmp_path / "r").exists()
    assert (
        run(["review", "--model", str(model), "--hard-negatives", str(other), "-o", str(tmp_path / "h")])
        == ExitStatus.MODEL
    )
