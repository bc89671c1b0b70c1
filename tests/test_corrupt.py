"""Corrupt and hand-edited files, concurrent writers, unwritable outputs (issue 16, item 8).

Scores, events, batch manifests and caches are files a kill, a full disk or a person with an
editor can damage.  A damaged input the user gave is refused with one line naming the file
and what is wrong (exit 7, never a traceback) and nothing is written; a damaged cache entry
(training-frame shards, scores, detected borders) is simply made again.  Two runs writing one
output at once leave one whole file and no temp file; an output that cannot be written is
exit 9.  The table of cases is docs/robustness.md ("Corrupt and hand-edited files ...").
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from tests import corpus

pytestmark = [pytest.mark.media, pytest.mark.torch]

REPO = Path(__file__).resolve().parents[1]


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def no_temp_files(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if ".part" in p.name]
    assert not left, left


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """A 3-s video, an untrained 32-pixel model, and its scores and events files (made once)."""
    import torch

    from autotosis.model.model import (
        DEFAULT_MEAN,
        DEFAULT_STD,
        ModelInfo,
        build_model,
        save_checkpoint,
    )

    folder = tmp_path_factory.mktemp("made")
    video = corpus.normal(folder / "a.mp4")
    torch.manual_seed(0)
    model = folder / "tiny.pt"
    save_checkpoint(
        model, build_model(2), ModelInfo("rage", ("background", "rage"), 32, DEFAULT_MEAN, DEFAULT_STD, None, 0.5)
    )
    scores, events = folder / "a.scores.json", folder / "a.events.json"
    assert run(["-q", "scan", str(video), "--model", str(model), "-o", str(scores), "--no-cache"]) == 0
    assert run(["-q", "events", str(scores), "-o", str(events), "--threshold", "0"]) == 0
    assert json.loads(events.read_text())["events"]  # one event over the whole video
    return {"video": video, "model": model, "scores": scores, "events": events}


# ----------------------------------------------------------------------------- scores files (read_scores)


def _edit(document: dict, change: Callable[[dict], object]) -> str:
    copied = copy.deepcopy(document)
    change(copied)
    return json.dumps(copied)


def _rage(d: dict) -> list:
    return d["scores"]["rage"]


def _scores_text(case: str, text: str) -> str:
    doc = json.loads(text)
    csv_text = (
        '# autotosis-scores/1 video="a.mp4" duration_ms=3000 step_ms=500 task="rage" model=x\n'
        "time,background,rage\n0.000,0.5,0.5\n0.500,0.4\n"
    )
    return {
        "truncated": text[: len(text) // 2],
        "empty": "",
        "not JSON": "these are my notes about the stream\n",
        "a JSON list": "[0.1, 0.2, 0.3]",
        "an events file": json.dumps({"format": "autotosis-events/1", "events": []}),
        "a key missing": _edit(doc, lambda d: d.pop("times_ms")),
        "a class column missing": _edit(doc, lambda d: d["scores"].pop("rage")),
        "times not increasing": _edit(doc, lambda d: d["times_ms"].__setitem__(2, 400)),
        "a negative time": _edit(doc, lambda d: d["times_ms"].__setitem__(0, -500)),
        "times not whole ms": _edit(doc, lambda d: d["times_ms"].__setitem__(1, 500.5)),
        "a NaN score": text.replace(f"{_rage(doc)[0]}", "NaN", 1),
        "a score as text": _edit(doc, lambda d: _rage(d).__setitem__(1, "high")),
        "a null score": _edit(doc, lambda d: _rage(d).__setitem__(1, None)),
        "a score above 1": _edit(doc, lambda d: _rage(d).__setitem__(1, 7.5)),
        "columns of different lengths": _edit(doc, lambda d: _rage(d).pop()),
        "no classes": _edit(doc, lambda d: d.__setitem__("classes", [])),
        "a class named twice": _edit(doc, lambda d: d.__setitem__("classes", ["rage", "rage"])),
        "duration as text": _edit(doc, lambda d: d.__setitem__("duration_ms", "long")),
        "extra events not an object": _edit(doc, lambda d: d["extra"].__setitem__("events", [1])),
        "absurd nesting": "[" * 100_000 + "]" * 100_000,
        "CSV with a row cut short": csv_text,
    }[case]


# case -> words the one error line must hold
SCORES_CASES = {
    "truncated": "not valid JSON (line 1, column",
    "empty": "the scores file is empty (0 bytes)",
    "not JSON": "not valid JSON (line 1, column 1",
    "a JSON list": 'not an autotosis scores file (no "format"',
    "an events file": "is an events file, not a scores file",
    "a key missing": '"times_ms" is missing',
    "a class column missing": '"scores": "rage" must be a list of numbers, got nothing',
    "times not increasing": "sample times must increase, but sample 3 (400 ms) comes after 500 ms",
    "a negative time": "sample times must not be negative",
    "times not whole ms": '"times_ms" must be a list of whole numbers of milliseconds',
    "a NaN score": "class 'rage', sample 1 (0 ms): a score must be a probability from 0 to 1, got nan",
    "a score as text": '"scores": "rage" must be a list of numbers',
    "a null score": '"scores": "rage" must be a list of numbers',
    "a score above 1": "a score must be a probability from 0 to 1, got 7.5",
    "columns of different lengths": "6 sample times but 5 scores of class 'rage'",
    "no classes": '"classes" must be a list of different class names, got []',
    "a class named twice": '"classes" must be a list of different class names',
    "duration as text": '"duration_ms" must be a whole number of milliseconds, got "long"',
    "extra events not an object": '"extra": "events" must be an object',
    "absurd nesting": "not a usable JSON file (RecursionError",
    "CSV with a row cut short": "line 4 has 2 values, expected 3",
}


@pytest.mark.parametrize("command", ["events", "report", "render"])
@pytest.mark.parametrize("case", list(SCORES_CASES))
def test_a_damaged_scores_file_is_one_clear_line(case, command, made, tmp_path, capsys):
    bad = tmp_path / ("bad.scores.csv" if case.startswith("CSV") else "bad.scores.json")
    bad.write_text(_scores_text(case, made["scores"].read_text()), encoding="utf-8")
    out = tmp_path / "out" / {"events": "x.events.json", "report": "x.html", "render": "x.mp4"}[command]
    argv = {
        "events": ["events", str(bad), "-o", str(out)],
        "report": ["report", "--scores", str(bad), "-o", str(out)],
        "render": ["render", str(made["video"]), str(made["events"]), "--scores", str(bad), "-o", str(out)],
    }[command]
    assert run(argv) == ExitStatus.DATA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {bad}: ") and SCORES_CASES[case] in line, line
    assert not out.parent.exists()


def test_a_folder_given_as_the_scores_file(made, tmp_path, capsys):
    folder = tmp_path / "a.scores.json"
    folder.mkdir()
    assert run(["events", str(folder), "-o", str(tmp_path / "x.json")]) == ExitStatus.DATA
    assert one_error_line(capsys.readouterr().err) == (
        f"autotosis: error: {folder}: is a folder, not a scores file "
        "(give the .scores.json file `autotosis scan` wrote)"
    )


def test_hand_edits_that_keep_the_scores_usable_are_read(made, tmp_path, capsys):
    """A BOM (an editor's), an unknown threshold in the extras (skipped, as for a checkpoint's rules)."""
    doc = json.loads(made["scores"].read_text())
    doc["extra"]["threshold"] = "high"
    edited = tmp_path / "edited.scores.json"
    edited.write_text("\ufeff" + json.dumps(doc), encoding="utf-8")
    assert run(["events", str(edited), "-o", str(tmp_path / "e.json"), "--threshold", "0"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["events"]
    capsys.readouterr()


# ----------------------------------------------------------------------------- events files (read_events)


def _event(d: dict) -> dict:
    return d["events"][0]


def _events_text(case: str, text: str) -> str:
    doc = json.loads(text)
    return {
        "truncated": text[: len(text) // 2],
        "empty": "",
        "events not a list": _edit(doc, lambda d: d.__setitem__("events", {})),
        "start after end": _edit(doc, lambda d: _event(d).update(start=2.5, start_ms=2500, end=1.0, end_ms=1000)),
        "a negative start": _edit(doc, lambda d: _event(d).update(start=-1.0, start_ms=-1000)),
        "end missing": _edit(doc, lambda d: (_event(d).pop("end"), _event(d).pop("end_ms"))),
        "seconds and ms disagree": _edit(doc, lambda d: _event(d).update(start=0.5)),
        "a NaN peak": text.replace(f'"peak": {_event(doc)["peak"]}', '"peak": NaN'),
    }[case]


EVENTS_CASES = {
    "truncated": "not valid JSON (line",
    "empty": "not valid JSON (line 1, column 1",
    "events not a list": '"events" must be a list',
    "start after end": "event 1: ends (1.000 s) before or where it starts (2.500 s)",
    "a negative start": 'event 1: "start" must not be negative',
    "end missing": 'event 1: "end" is missing',
    "seconds and ms disagree": 'event 1: "start" (0.5 s) and "start_ms" (0) disagree',
    "a NaN peak": 'event 1: "peak" must be a number, got nan',
}


@pytest.mark.parametrize("command", ["render", "export"])
@pytest.mark.parametrize("case", list(EVENTS_CASES))
def test_a_damaged_events_file_is_one_clear_line(case, command, made, tmp_path, capsys):
    bad = tmp_path / "bad.events.json"
    bad.write_text(_events_text(case, made["events"].read_text()), encoding="utf-8")
    out = tmp_path / "out" / ("x.mp4" if command == "render" else "x")
    argv = (
        ["render", str(made["video"]), str(bad), "-o", str(out)]
        if command == "render"
        else ["export", str(bad), "--format", "csv", "-o", str(out)]
    )
    assert run(argv) == ExitStatus.DATA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {bad}: ") and EVENTS_CASES[case] in line, line
    assert not out.parent.exists()


# ----------------------------------------------------------------------------- the score cache (ScoreCache)


def _npz(times, probs, meta) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, times_ms=times, probs=probs, meta=np.array(meta))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def score_cache(made, tmp_path_factory) -> dict[str, Path]:
    """A score cache holding the scan of ``made``'s video, and that scan's scores file."""
    folder = tmp_path_factory.mktemp("score-cache")
    scores = folder / "first.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOTOSIS_CACHE", str(folder / "cache"))
        assert run(["-q", "scan", str(made["video"]), "--model", str(made["model"]), "-o", str(scores)]) == 0
    return {"cache": folder / "cache", "scores": scores}


@pytest.mark.parametrize("case", ["truncated", "garbage", "probs cut short", "NaN scores", "meta not an object"])
def test_a_damaged_score_cache_entry_is_scanned_again(case, made, score_cache, tmp_path, monkeypatch, capsys):
    shutil.copytree(score_cache["cache"], tmp_path / "cache")
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    (entry,) = (tmp_path / "cache" / "scores").glob("*.npz")
    good = entry.read_bytes()
    with np.load(entry) as data:
        times, probs, meta = data["times_ms"], data["probs"], str(data["meta"])
    entry.write_bytes(
        {
            "truncated": good[: len(good) // 2],
            "garbage": b"PK\x03\x04" + os.urandom(300),
            "probs cut short": _npz(times, probs[:-1], meta),
            "NaN scores": _npz(times, np.full_like(probs, np.nan), meta),
            "meta not an object": _npz(times, probs, "[1, 2]"),
        }[case]
    )
    second = tmp_path / "second.json"
    assert run(["scan", str(made["video"]), "--model", str(made["model"]), "-o", str(second)]) == 0
    assert "scored 6 frames" in capsys.readouterr().out
    assert json.loads(second.read_text())["scores"] == json.loads(score_cache["scores"].read_text())["scores"]
    with np.load(entry) as data:  # stored again, whole
        assert np.array_equal(data["probs"], probs) and np.array_equal(data["times_ms"], times)
    no_temp_files(tmp_path)


@pytest.fixture(scope="module")
def borders_scan(made, tmp_path_factory) -> dict[str, Path]:
    """A model trained with --crop-borders (scan remembers each video's letterbox borders in the cache),
    the cache after one scan with it, and that scan's scores."""
    import torch

    from autotosis.model.model import (
        DEFAULT_MEAN,
        DEFAULT_STD,
        ModelInfo,
        build_model,
        save_checkpoint,
    )

    folder = tmp_path_factory.mktemp("borders")
    torch.manual_seed(0)
    model = folder / "borders.pt"
    save_checkpoint(
        model,
        build_model(2),
        ModelInfo("rage", ("background", "rage"), 32, DEFAULT_MEAN, DEFAULT_STD, None, 0.5, crop_borders=True),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOTOSIS_CACHE", str(folder / "cache"))
        assert run(["-q", "scan", str(made["video"]), "--model", str(model), "-o", str(folder / "first.json")]) == 0
    return {"model": model, "cache": folder / "cache", "scores": folder / "first.json"}


@pytest.mark.parametrize("damage", ['{"value": "x"}', '{"value": [0.1, 0.2]}'])
def test_a_damaged_borders_entry_of_the_score_cache_is_detected_again(
    damage, made, borders_scan, tmp_path, monkeypatch, capsys
):
    shutil.copytree(borders_scan["cache"], tmp_path / "cache")
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    (entry,) = (tmp_path / "cache" / "scores").glob("borders-*.json")
    good = entry.read_text()
    entry.write_text(damage)
    second = tmp_path / "second.json"
    assert run(["-q", "scan", str(made["video"]), "--model", str(borders_scan["model"]), "-o", str(second)]) == 0
    assert entry.read_text() == good  # detected again and stored again
    assert json.loads(second.read_text())["scores"] == json.loads(borders_scan["scores"].read_text())["scores"]
    capsys.readouterr()


# ----------------------------------------------------------------------------- the training-frame cache (dataset)


def _frames(labels: Path, out: Path, *extra: str) -> int:
    return run(["-q", "frames", str(labels), "--out", str(out), "--fps", "2", "--size", "16", *extra])


@pytest.fixture(scope="module")
def frames_project(made, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(made["video"], folder / "a.mp4")
    labels = folder / "rage.txt"
    labels.write_text("a.mp4  0.5-1.5\n", encoding="utf-8")
    reference = folder / "reference"
    assert _frames(labels, reference) == 0
    return {"labels": labels, "reference": reference}


def _shard_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".npy", ".json") and p.name != "manifest.json"
    }


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


SHARD_DAMAGE: dict[str, Callable[[bytes, dict], tuple[str, bytes]]] = {
    "frames truncated": lambda npy, meta: ("npy", npy[: len(npy) // 2]),
    "frames empty": lambda npy, meta: ("npy", b""),
    "frames garbage": lambda npy, meta: ("npy", b"\x93NUMPY" + os.urandom(200)),
    "frames of another size": lambda npy, meta: ("npy", _npy(np.zeros((len(meta["times_ms"]), 8, 8, 3), np.uint8))),
    "frames as floats": lambda npy, meta: ("npy", _npy(np.zeros((len(meta["times_ms"]), 16, 16, 3), np.float32))),
    "sidecar truncated": lambda npy, meta: ("json", json.dumps(meta)[:40].encode()),
    "sidecar a list": lambda npy, meta: ("json", b"[1, 2, 3]"),
    "sidecar without clip_id": lambda npy, meta: (
        "json",
        json.dumps({k: v for k, v in meta.items() if k != "clip_id"}).encode(),
    ),
    "sidecar with a time too few": lambda npy, meta: (
        "json",
        json.dumps({**meta, "times_ms": meta["times_ms"][:-1]}).encode(),
    ),
    "sidecar with a class that does not exist": lambda npy, meta: (
        "json",
        json.dumps({**meta, "targets": [7] * len(meta["targets"])}).encode(),
    ),
    "sidecar targets null": lambda npy, meta: ("json", json.dumps({**meta, "targets": None}).encode()),
}


@pytest.mark.parametrize("case", list(SHARD_DAMAGE))
def test_a_damaged_frame_shard_is_extracted_again(case, frames_project, tmp_path, capsys):
    out = tmp_path / "frames"
    shutil.copytree(frames_project["reference"], out)
    reference = _shard_bytes(frames_project["reference"])
    (npy_name,) = [name for name in reference if name.endswith(".npy")]
    meta = json.loads(reference[npy_name.replace(".npy", ".json")])
    suffix, data = SHARD_DAMAGE[case](reference[npy_name], meta)
    (out / npy_name.replace(".npy", f".{suffix}")).write_bytes(data)
    assert _frames(frames_project["labels"], out) == 0
    assert _shard_bytes(out) == reference  # rebuilt, byte for byte
    no_temp_files(out)
    capsys.readouterr()


def test_a_damaged_borders_cache_is_detected_again(frames_project, tmp_path, capsys):
    out = tmp_path / "frames"
    assert _frames(frames_project["labels"], out, "--crop-borders") == 0
    borders = json.loads((out / "borders.json").read_text())
    ((key, region),) = borders.items()
    (out / "borders.json").write_text(json.dumps({key: [0.5, "x"], "other": "garbage"}))
    assert _frames(frames_project["labels"], out, "--crop-borders") == 0
    assert json.loads((out / "borders.json").read_text()) == {key: region}
    capsys.readouterr()


def test_a_damaged_frames_manifest_is_written_again(frames_project, tmp_path, capsys):
    """manifest.json is only written (for people and tools), never trusted: a damaged one is replaced."""
    out = tmp_path / "frames"
    shutil.copytree(frames_project["reference"], out)
    (out / "manifest.json").write_text('{"task": "rage", "clips": [{"clip"')
    assert _frames(frames_project["labels"], out) == 0
    assert json.loads((out / "manifest.json").read_text()) == json.loads(
        (frames_project["reference"] / "manifest.json").read_text()
    )
    capsys.readouterr()


# ----------------------------------------------------------------------------- the batch manifest


class InlineEngine:
    """Runs batch jobs in this process, one at a time: the manifest is what these tests are about."""

    name, slots, threads = "inline", 1, 1

    def __init__(self):
        self._results: dict[int, tuple[bool, object]] = {}

    def submit(self, fn, arg):
        handle = len(self._results)
        try:
            self._results[handle] = (True, fn(arg))
        except Exception as exc:  # noqa: BLE001 - handed back like a pool would
            self._results[handle] = (False, exc)
        return handle

    def wait(self, handles):
        return list(handles)

    def result(self, handle):
        ok, value = self._results[handle]
        if not ok:
            raise value
        return value

    def close(self, cancel: bool = False) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture
def inline_engine(monkeypatch):
    from autotosis.workflows import engines

    monkeypatch.setattr(engines, "make_engine", lambda *args, **kwargs: InlineEngine())


@pytest.fixture(scope="module")
def batch_done(made, tmp_path_factory) -> dict[str, Path]:
    """A finished batch of one VOD (a model that always says rage: one event), made once."""
    from autotosis.workflows import engines
    from tests.conftest import constant_model

    folder = tmp_path_factory.mktemp("batch")
    vods = folder / "vods"
    vods.mkdir()
    shutil.copy(made["video"], vods / "a.mp4")
    model = constant_model(folder / "always.pt", 5.0)
    out = folder / "out"
    real = engines.make_engine
    engines.make_engine = lambda *args, **kwargs: InlineEngine()
    try:
        assert (
            run(["-q", "batch", str(vods), "--model", str(model), "--out", str(out), "--min-length", "0", "--no-cache"])
            == 0
        )
    finally:
        engines.make_engine = real
    return {"vods": vods, "model": model, "out": out}


def _batch(batch_done: dict[str, Path], out: Path, *extra: str) -> int:
    return run(
        [
            "-q",
            "batch",
            str(batch_done["vods"]),
            "--model",
            str(batch_done["model"]),
            "--out",
            str(out),
            "--min-length",
            "0",
            "--no-cache",
            *extra,
        ]
    )


def _times(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".mp4", ".json", ".html")
    }


def _manifest_lines(out: Path) -> list[str]:
    return (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()


def _edit_done_record(lines: list[str], **change) -> list[str]:
    edited = []
    for line in lines:
        record = json.loads(line)
        if record.get("kind") == "vod" and record.get("state") == "done":
            record.update(change)
        edited.append(json.dumps(record))
    return edited


# case -> (how the manifest is damaged, what is made again: "vod" (the VOD's outputs; the best-of reel only if
# its picks changed, and they do not) or "best-of")
MANIFEST_CASES: dict[str, tuple[Callable[[list[str]], str], str]] = {
    # inside the VOD's "done" line: its "running" line names its folder; the best-of record is lost too, but
    # the "run" line says a batch made this folder, so the best-of reel is the batch's to replace
    "cut in the middle": (lambda lines: "\n".join(lines)[: len("\n".join(lines[:2])) + 30], "vod"),
    "a record of the wrong shape": (
        lambda lines: "\n".join(_edit_done_record(lines, events="many", outputs=["x"])),
        "vod",
    ),
    "a folder leading out of the batch": (
        lambda lines: "\n".join(_edit_done_record(lines, dir="../../elsewhere")),
        "vod",
    ),
    "the best-of record damaged": (
        lambda lines: "\n".join(
            json.dumps({**json.loads(line), "outputs": "best-of.mp4"})
            if '"best_of"' in line and '"done"' in line
            else line
            for line in lines
        ),
        "best-of",
    ),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_a_damaged_batch_manifest_redoes_what_it_no_longer_vouches_for(
    case, batch_done, inline_engine, tmp_path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(batch_done["out"], out)
    before = _times(out)
    damage, redone = MANIFEST_CASES[case]
    (out / "manifest.jsonl").write_text(damage(_manifest_lines(out)), encoding="utf-8")
    assert _batch(batch_done, out) == 0
    after = _times(out)
    assert set(after) == set(before)  # the same folder: no "a-2/", nothing outside
    changed = {name for name in after if after[name] != before[name]}
    if redone == "vod":
        assert {"a/scores.json", "a/events.json", "a/reel.mp4", "a/report.html"} <= changed
    else:
        assert changed == {"best-of.mp4", "best-of.json"}
    assert not (out.parent.parent / "elsewhere").exists()  # where "../../elsewhere" leads (before: the VOD went there)
    # Now whole again: a third run does nothing.
    assert _batch(batch_done, out) == 0
    assert _times(out) == after
    no_temp_files(out)
    capsys.readouterr()


def test_a_batch_manifest_that_is_not_one_is_refused(batch_done, inline_engine, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(batch_done["out"], out)
    before = _times(out)
    (out / "manifest.jsonl").write_bytes(b"\x00\x01 not a manifest \xff\xfe" * 20)
    assert _batch(batch_done, out) == ExitStatus.DATA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(
        f"autotosis: error: {out / 'manifest.jsonl'}: not a batch manifest (no line of it is a JSON record)"
    )
    assert "delete it and run again" in line
    assert _times(out) == before


def test_best_of_files_without_any_record_are_refused_before_any_work(batch_done, inline_engine, tmp_path, capsys):
    """The manifest lost every record (cut inside its first line): the best-of reel is no longer known
    to be the batch's, so exit 6 at once (not after the VODs were redone); --force redoes everything."""
    out = tmp_path / "out"
    shutil.copytree(batch_done["out"], out)
    (out / "manifest.jsonl").write_text(_manifest_lines(out)[0][:50], encoding="utf-8")
    before = _times(out)
    assert _batch(batch_done, out) == ExitStatus.OUTPUT_EXISTS
    line = one_error_line(capsys.readouterr().err)
    assert line == f"autotosis: error: {out / 'best-of.mp4'}: already exists (pass --force to overwrite it)"
    assert _times(out) == before
    assert _batch(batch_done, out, "--force") == 0
    assert set(_times(out)) == set(before)  # written over in place, no "a-2/"
    capsys.readouterr()


# ----------------------------------------------------------------------------- two runs writing one output at once


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUTOTOSIS_CACHE": str(cwd / "cache")}
    return subprocess.Popen(
        [sys.executable, "-m", "autotosis", "--progress", "none", "-q", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _together(*argvs: list[str], cwd: Path) -> list[tuple[int, str]]:
    procs = [_start(argv, cwd) for argv in argvs]
    return [(proc.wait(timeout=120), proc.communicate()[1]) for proc in procs]


def test_two_events_runs_with_force_on_one_output_leave_one_whole_file(made, tmp_path):
    out = tmp_path / "same.events.json"
    wide = ["events", str(made["scores"]), "-o", str(out), "--force", "--threshold", "0"]
    none = ["events", str(made["scores"]), "-o", str(out), "--force", "--threshold", "0.99"]
    results = _together(wide, none, cwd=tmp_path)
    assert [code for code, _ in results] == [0, 0], results  # each rename is atomic: both succeed
    assert len(json.loads(out.read_text())["events"]) in (0, 1)  # one of the two, whole
    no_temp_files(tmp_path)


def test_two_events_runs_without_force_one_wins_the_other_is_refused(made, tmp_path):
    out = tmp_path / "same.events.json"
    argv = ["events", str(made["scores"]), "-o", str(out), "--threshold", "0"]
    results = _together(argv, argv, argv, cwd=tmp_path)
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0 and all(code == ExitStatus.OUTPUT_EXISTS for code in codes[1:]), results
    for code, err in results:
        if code:
            assert one_error_line(err) == f"autotosis: error: {out}: already exists (pass --force to overwrite it)"
    assert json.loads(out.read_text())["events"]
    no_temp_files(tmp_path)


def test_two_frames_runs_into_one_folder_both_succeed(frames_project, tmp_path):
    """Before: each pruned the other's temp files ("cannot write: No such file"); now the second waits."""
    out = tmp_path / "frames"
    argv = ["frames", str(frames_project["labels"]), "--out", str(out), "--fps", "2", "--size", "16"]
    results = _together(argv, argv, cwd=tmp_path)
    assert [code for code, _ in results] == [0, 0], results
    assert _shard_bytes(out) == _shard_bytes(frames_project["reference"])
    no_temp_files(out)


def test_two_renders_with_force_on_one_reel_leave_one_whole_reel(made, tmp_path):
    from autotosis.media import probe

    out = tmp_path / "reel.mp4"
    argv = ["render", str(made["video"]), str(made["events"]), "-o", str(out), "--force", "--size", "64x36"]
    results = _together(argv, [*argv, "--no-overlay"], cwd=tmp_path)
    assert [code for code, _ in results] == [0, 0], results
    assert abs(probe.stream_durations(out).video_ms - 3000) <= 100
    no_temp_files(tmp_path)


# ----------------------------------------------------------------------------- outputs that cannot be written


def test_an_output_under_a_regular_file_is_exit_9(made, tmp_path, capsys):
    """A file where a folder of the output path should be: refused even for root (unlike a read-only folder)."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    out = blocker / "x.events.json"
    assert run(["events", str(made["scores"]), "-o", str(out)]) == ExitStatus.FILESYSTEM
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"autotosis: error: {blocker}: cannot write: File exists "
        "(a file is where a folder of the path should be; write somewhere else)"
    )
    assert blocker.read_text() == "a file, not a folder\n"
    no_temp_files(tmp_path)


def test_frames_into_a_folder_under_a_regular_file_is_exit_9(frames_project, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    assert _frames(frames_project["labels"], blocker / "frames") == ExitStatus.FILESYSTEM
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {blocker / 'frames'}: cannot write: ")
    assert "a file is where a folder of the path should be" in line


def test_an_output_that_is_a_folder_is_exit_9_with_force(made, tmp_path, capsys):
    out = tmp_path / "taken.json"
    out.mkdir()
    assert run(["events", str(made["scores"]), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    one_error_line(capsys.readouterr().err)
    assert run(["events", str(made["scores"]), "-o", str(out), "--force"]) == ExitStatus.FILESYSTEM
    assert one_error_line(capsys.readouterr().err) == f"autotosis: error: {out}: cannot write: Is a directory"
    assert out.is_dir() and not list(out.iterdir())
    no_temp_files(tmp_path)


def test_a_read_only_output_folder_is_exit_9(made, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): a read-only folder does not stop writes")
        out = folder / "x.events.json"
        assert run(["events", str(made["scores"]), "-o", str(out)]) == ExitStatus.FILESYSTEM
        line = one_error_line(capsys.readouterr().err)
        assert line.startswith(f"autotosis: error: {folder}") and "Permission denied" in line
        assert "check the folder's permissions" in line
        assert not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- a label file that is a folder


@pytest.mark.parametrize("command", ["labels check", "frames"])
def test_a_label_file_that_is_a_folder_is_exit_3(command, tmp_path, capsys):
    folder = tmp_path / "rage.txt"
    folder.mkdir()
    assert run([*command.split(), str(folder)]) == ExitStatus.LABELS
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: {folder}:1:1: cannot read the label file: Is a directory")
    assert not (tmp_path / ".autotosis").exists()


def test_train_takes_a_folder_as_an_image_data_set(tmp_path, capsys):
    """`train` (and `eval`) read a folder as class folders of images: an empty one is exit 7, said plainly."""
    folder = tmp_path / "rage.txt"
    folder.mkdir()
    assert run(["train", str(folder), "-o", str(tmp_path / "m.pt"), "--weights", "none"]) == ExitStatus.DATA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(
        f"autotosis: error: {folder}: a folder data set needs at least two class folders with images"
    )
    assert not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------------- model files


MODEL_CASES = {
    "empty": (lambda path: path.write_bytes(b""), "is not an autotosis checkpoint: the file is empty (0 bytes)"),
    "random bytes": (
        lambda path: path.write_bytes(np.random.default_rng(1).bytes(5000)),
        "is not an autotosis checkpoint",
    ),
    "cut in half": (None, "is not an autotosis checkpoint"),
    "a folder": (lambda path: path.mkdir(), "is not a file"),
}


@pytest.mark.parametrize("command", ["scan", "reel"])
@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_a_broken_model_file_is_exit_5(case, command, made, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model.pt"
    make, words = MODEL_CASES[case]
    if make is None:
        data = made["model"].read_bytes()
        model.write_bytes(data[: len(data) // 2])
    else:
        make(model)
    out = tmp_path / "out" / ("s.json" if command == "scan" else "reel.mp4")
    assert run([command, str(made["video"]), "--model", str(model), "-o", str(out)]) == ExitStatus.MODEL
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {model}: {words}") and "train one with `autotosis train`" in line
    assert not out.parent.exists()
