"""Hostile input: files and labels must never be executed, interpreted or escape their place.

- a checkpoint is loaded with ``weights_only=True``: a pickle payload is refused, never run;
- no subprocess goes through a shell, and only the media package starts processes;
- label paths cannot make ``frames`` or ``render`` write outside the output folder;
- the HTML report escapes every string that came from a file name or a label.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus, ModelError
from tests import corpus

PACKAGE = Path(__file__).resolve().parents[1] / "autotosis"


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


class Payload:
    """Unpickling this makes a folder: proof that the file's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["torch zip", "plain pickle"])
def test_checkpoint_with_a_pickle_payload_is_refused_without_running_it(kind, tmp_path, capsys):
    import torch

    from autotosis.model import model as model_module

    marker = tmp_path / "payload ran"
    evil = tmp_path / "evil.pt"
    content = {"format": "autotosis-checkpoint/1", "info": Payload(marker), "state_dict": {}}
    if kind == "torch zip":
        torch.save(content, evil)
    else:
        evil.write_bytes(pickle.dumps(content, protocol=2))

    video = corpus.normal(tmp_path / "v.mp4", duration=1.0)
    assert run(["scan", str(video), "--model", str(evil), "-o", str(tmp_path / "s.json")]) == ExitStatus.MODEL
    err = capsys.readouterr().err
    assert "evil.pt" in err and "not an autotosis checkpoint" in err and "Traceback" not in err
    with pytest.raises(ModelError):
        model_module.build_model(2, str(evil))  # train --weights PATH
    with pytest.raises(ModelError):
        model_module.load_checkpoint(evil)  # train --resume, eval, report, export-onnx ...
    assert not marker.exists()
    assert not (tmp_path / "s.json").exists()

    # The payload is live: an unguarded load would have run it.
    pickle.loads(pickle.dumps(content))
    assert marker.is_dir()


def test_checkpoints_are_only_loaded_with_weights_only():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "load"
                and getattr(node.func.value, "id", None) == "torch"
            ):
                keywords = {k.arg: k.value for k in node.keywords}
                ok = isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True
                calls.append((path.name, node.lineno, ok))
    assert calls, "torch.load is not called anywhere: this test looks in the wrong place"
    assert all(ok for _, _, ok in calls), [c for c in calls if not c[2]]
    assert not any("pickle.load" in p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))


# ----------------------------------------------------------------------------- processes


def test_no_shell_and_only_media_starts_processes():
    starters = {
        "system",
        "popen",
        "Popen",
        "run",
        "call",
        "check_call",
        "check_output",
        "getoutput",
        "getstatusoutput",
        "spawnl",
        "spawnv",
        "spawnvp",
        "execv",
        "execvp",
        "startfile",
    }
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if "subprocess" in names and path.parent.name != "media":
                    problems.append(
                        f"{path.name}:{node.lineno} imports subprocess (only the media package may start processes)"
                    )
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    problems.append(f"{path.name}:{node.lineno} passes shell=")
            func = node.func
            owner = getattr(getattr(func, "value", None), "id", None)
            name = getattr(func, "attr", None)
            if owner == "os" and name in starters:
                problems.append(f"{path.name}:{node.lineno} calls os.{name}")
            if owner == "subprocess" and name in starters and node.args:
                first = node.args[0]
                if isinstance(first, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    problems.append(f"{path.name}:{node.lineno} gives subprocess.{name} a string, not an argv list")
    assert not problems, problems


# ----------------------------------------------------------------------------- where outputs go


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.media
def test_label_paths_cannot_make_frames_write_outside_the_output_folder(tmp_path):
    clips = tmp_path / "elsewhere"
    clips.mkdir()
    for name in ("x.mp4", "y.mp4", corpus.NASTY_NAME):
        corpus.normal(clips / name, duration=2.0)
    labels_dir = tmp_path / "labels" / "deep"
    labels_dir.mkdir(parents=True)
    labels = labels_dir / "rage.txt"
    nasty = corpus.NASTY_NAME.replace("\\", "\\\\").replace('"', '\\"')
    # Relative paths climbing out of the label's folder, and an absolute one.
    labels.write_text(
        f'../../elsewhere/x.mp4  0.5-1\n"../../elsewhere/{nasty}"  1-1.5\n"{clips / "y.mp4"}"\n', encoding="utf-8"
    )

    before = _snapshot(tmp_path)
    out = tmp_path / "out"
    assert run(["frames", str(labels), "--out", str(out), "--fps", "2", "--size", "8"]) == 0
    new = _snapshot(tmp_path) - before
    assert new and all(out in p.parents for p in new), sorted(new)
    # Shards are named by hashes, never after the clip.
    names = {p.name for p in new}
    assert all(re.fullmatch(r"[0-9a-f]{20}\.(npy|json)|manifest\.json", n) for n in names), names

    # The default place is beside the label file, under .autotosis/: still nowhere else.
    before = _snapshot(tmp_path)
    assert run(["frames", str(labels), "--fps", "2", "--size", "8"]) == 0
    new = _snapshot(tmp_path) - before
    assert new and all(labels_dir / ".autotosis" in p.parents for p in new), sorted(new)


@pytest.mark.media
def test_class_names_with_path_syntax_do_not_leave_the_render_folder(tmp_path, monkeypatch):
    import tempfile

    from autotosis.detect.segments import Event, EventList, EventParams, write_events

    video = corpus.normal(tmp_path / "v.mp4", duration=2.0)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    label = "../../../escaped/../x"
    events = tmp_path / "e.json"
    write_events(EventList(video, 2000, label, EventParams(), (Event(500, 1500, label, 0.9, 0.8, 600),)), events)
    before = _snapshot(tmp_path)
    out = tmp_path / "out" / "reel.mp4"
    assert run(["render", str(video), str(events), "-o", str(out), "--title", "../../t"]) == 0
    assert _snapshot(tmp_path) - before == {out}
    assert not (tmp_path.parent / "escaped").exists()


# ----------------------------------------------------------------------------- HTML report


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text.append(data)


@pytest.mark.media
def test_report_escapes_file_names_and_labels(tmp_path, monkeypatch):
    from autotosis.detect.scores import Scores, write_scores
    from autotosis.detect.segments import Event, EventList, EventParams, write_events

    monkeypatch.chdir(tmp_path)
    hostile = "<script>alert('name')\"' onmouseover=\"alert(1)"  # a file name: no slash
    video = corpus.normal(tmp_path / f"{hostile}.mp4", duration=4.0)
    klass = "<img src=x onerror=alert('class')>"
    times = np.arange(0, 4000, 500, dtype=np.int64)
    probs = np.where((times >= 1000) & (times < 3000), 0.9, 0.1).astype(np.float32)
    scores = Scores(
        video,
        4000,
        ("background", klass),
        times,
        np.stack([1 - probs, probs], 1),
        500,
        task="<b>task</b>",
        model="<i>model</i>",
    )
    write_scores(scores, tmp_path / "s.json")
    write_events(
        EventList(video, 4000, klass, EventParams(), (Event(1000, 3000, klass, 0.9, 0.85, 1500),)), tmp_path / "e.json"
    )
    out = tmp_path / "r.html"
    assert run(["report", "--scores", "s.json", "--events", "e.json", "-o", str(out), "--thumbnails", "1"]) == 0
    page = out.read_text(encoding="utf-8")

    for raw in ("<script>alert", "<img src=x", "<b>task", "<i>model", 'onmouseover="alert'):
        assert raw not in page, raw
    assert "&lt;img src=x onerror=alert(" in page  # shown as text
    parser = _Tags()
    parser.feed(page)
    assert not [attrs for _, attrs in parser.tags if attrs.get("src") == "x" or any(a.startswith("on") for a in attrs)]
    assert not any("alert(" in text for text in parser.script_text)
    json.loads((tmp_path / "s.json").read_text())  # the inputs stay readable JSON


# ----------------------------------------------------------------------------- terminal output


@pytest.mark.media
def test_names_in_brackets_are_printed_as_they_are(tmp_path, capsys):
    """Console output is not rich markup: "[final]" in a file name must not vanish or restyle the line."""
    from tests.conftest import make_video

    make_video(tmp_path / "[final] [bold]vod.mp4", duration=1, size="64x36", fps="10", audio=False)
    labels = tmp_path / "[red]:fire:rage.txt"
    labels.write_text('# task=rage\n"[final] [bold]vod.mp4"  0.2-0.6\n', encoding="utf-8")
    assert run(["labels", "check", str(labels)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "[red]:fire:rage.txt: ok" in out
