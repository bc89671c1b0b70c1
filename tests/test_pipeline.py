"""End to end through the CLI on tiny generated clips: labels -> frames -> train -> scan -> events -> render."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.media import decode, probe
from autotosis.model.model import read_checkpoint_info
from tests.conftest import make_video

pytestmark = [pytest.mark.media, pytest.mark.torch, pytest.mark.slow]

CAM = "0.75,0.0,1.0,0.3"


def flash_clip(path: Path, duration: float, spans: list[tuple[float, float]], audio: bool = True) -> Path:
    """A moving test pattern whose top-right corner turns solid red during ``spans``."""
    boxes = ",".join(
        f"drawbox=x=iw*0.75:y=0:w=iw*0.25:h=ih*0.3:color=red:t=fill:enable='between(t,{s},{e})'" for s, e in spans
    )
    return make_video(
        path, duration=duration, size="192x108", fps="25", audio=audio, extra_video_filters=boxes or "null"
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Label file + clips in a folder whose name has spaces and non-ASCII characters."""
    root = tmp_path_factory.mktemp("proj") / "my clips é"
    (root / "clips").mkdir(parents=True)
    specs = {
        "a.mp4": [(2, 5)],
        "b b.mp4": [(1, 3), (6, 8)],
        "c.mp4": [],
        "d.mp4": [(4, 7)],
        "e.mp4": [(1, 4)],
        "f.mp4": [],
    }
    lines = [f"# default crop={CAM}"]
    for name, spans in specs.items():
        flash_clip(root / "clips" / name, 9, spans, audio=name != "c.mp4")
        quoted = f'"clips/{name}"' if " " in name else f"clips/{name}"
        lines.append("  ".join([quoted, *(f"{s}-{e}" for s, e in spans)]))
    (root / "labels").mkdir()
    (root / "labels" / "rage.txt").write_text("\n".join(line.replace("clips/", "../clips/") for line in lines) + "\n")
    return root


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def test_labels_check_ok(project: Path, capsys):
    assert run(["labels", "check", str(project / "labels" / "rage.txt")]) == 0
    assert "6 clips" in capsys.readouterr().out


def test_frames_counts_and_edge_band(project: Path, tmp_path: Path):
    out = tmp_path / "frames"
    assert (
        run(
            [
                "frames",
                str(project / "labels" / "rage.txt"),
                "--out",
                str(out),
                "--fps",
                "2",
                "--size",
                "32",
                "--band",
                "0.5",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 6
    shard = next(c for c in manifest["clips"] if c["clip"].endswith("a.mp4"))
    meta = json.loads((out / shard["frames"].replace(".npy", ".json")).read_text())
    targets = dict(zip(meta["times_ms"], meta["targets"]))
    # span 2-5 s, band 0.5 s: 2.0 and 5.0 ignored, 2.5..4.5 positive, 0..1.5 and 5.5.. negative
    assert targets[2000] == -1 and targets[5000] == -1
    assert all(targets[t] == 1 for t in (2500, 3000, 3500, 4000, 4500))
    assert targets[1500] == 0 and targets[5500] == 0
    frames = np.load(out / shard["frames"], mmap_mode="r")
    assert frames.shape == (len(meta["times_ms"]), 32, 32, 3)
    # A second run re-uses the shards (same files, untouched).
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    assert run(["frames", str(project / "labels" / "rage.txt"), "--out", str(out), "--fps", "2", "--size", "32"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")} == before


@pytest.fixture(scope="module")
def model(project: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "rage model.pt"
    code = run(
        [
            "train",
            str(project / "labels" / "rage.txt"),
            "-o",
            str(out),
            "--epochs",
            "4",
            "--size",
            "64",
            "--fps",
            "8",
            "--seed",
            "1",
            "--frames-dir",
            str(out.parent / "frames"),
            "--lr",
            "0.001",
        ]
    )
    assert code == 0
    return out


def test_train_scan_events_render(project: Path, model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    vod = flash_clip(tmp_path / "held out vod.mp4", 20, [(3, 7), (12, 16)])
    scores_path = tmp_path / "vod.scores.json"
    assert run(["scan", str(vod), "--model", str(model), "-o", str(scores_path)]) == 0
    scores = json.loads(scores_path.read_text())
    assert scores["classes"] == ["background", "rage"]
    assert scores["times_ms"][:3] == [0, 500, 1000]
    assert read_checkpoint_info(model).balance_colour  # the default: a red corner is found in balanced colour too
    rage = np.array(scores["scores"]["rage"])
    times = np.array(scores["times_ms"])
    inside = ((times >= 3500) & (times < 6500)) | ((times >= 12500) & (times < 15500))
    outside = ~(((times >= 2500) & (times < 7500)) | ((times >= 11500) & (times < 16500)))
    assert rage[inside].mean() > rage[outside].mean() + 0.3

    events_path = tmp_path / "vod.events.json"
    assert run(["events", str(scores_path), "-o", str(events_path), "--pad-before", "0.5", "--pad-after", "0.5"]) == 0
    events = json.loads(events_path.read_text())["events"]
    assert len(events) == 2

    reel = tmp_path / "reel.mp4"
    assert run(["render", str(vod), str(events_path), "--scores", str(scores_path), "-o", str(reel)]) == 0
    durations = probe.stream_durations(reel)
    expected = sum(e["end_ms"] - e["start_ms"] for e in events)
    assert durations.audio_ms is not None
    assert abs(durations.video_ms - expected) <= 100
    assert abs(durations.audio_ms - durations.video_ms) <= 100
    assert abs(durations.format_ms - expected) <= 100

    # The same output again without --force is refused and the reel is untouched.
    before = reel.stat().st_mtime_ns
    assert run(["render", str(vod), str(events_path), "-o", str(reel)]) == ExitStatus.OUTPUT_EXISTS
    assert reel.stat().st_mtime_ns == before


def test_reel_in_one_go_without_audio_source(project: Path, model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    vod = flash_clip(tmp_path / "silent vod.mp4", 12, [(4, 8)], audio=False)
    reel = tmp_path / "out" / "reel.mp4"
    assert run(["reel", str(vod), "--model", str(model), "-o", str(reel), "--title", "it's: [best], of; %{pts}"]) == 0
    durations = probe.stream_durations(reel)
    assert durations.audio_ms is not None and abs(durations.audio_ms - durations.video_ms) <= 100
    assert not list(reel.parent.glob("*.part*"))


def test_scan_uses_the_cache(project: Path, model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    vod = flash_clip(tmp_path / "v.mp4", 6, [(2, 4)])
    assert run(["scan", str(vod), "--model", str(model), "-o", str(tmp_path / "1.json")]) == 0
    calls = []
    real = decode.iter_frames
    monkeypatch.setattr(decode, "iter_frames", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run(["scan", str(vod), "--model", str(model), "-o", str(tmp_path / "2.json")]) == 0
    assert calls == []
    assert run(["scan", str(vod), "--model", str(model), "-o", str(tmp_path / "3.json"), "--no-cache"]) == 0
    assert calls == [1]
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("1.json", "2.json"))
    assert first["scores"] == second["scores"]


# ----------------------------------------------------------------------------- bad input


def test_scan_rejects_missing_and_non_video_files(model: Path, tmp_path: Path, capsys):
    assert (
        run(["scan", str(tmp_path / "nope.mp4"), "--model", str(model), "-o", str(tmp_path / "s.json")])
        == ExitStatus.MEDIA
    )
    fake = tmp_path / "notes.mp4"
    fake.write_text("hello, I am a text file\n" * 50)
    assert run(["scan", str(fake), "--model", str(model), "-o", str(tmp_path / "s.json")]) == ExitStatus.MEDIA
    err = capsys.readouterr().err
    assert "notes.mp4" in err and "Traceback" not in err
    assert all(len(line) < 400 for line in err.splitlines())
    assert not (tmp_path / "s.json").exists()


def test_scan_rejects_bad_checkpoints(tmp_path: Path, video_factory, capsys):
    vod = video_factory("v.mp4", duration=2)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    assert run(["scan", str(vod), "--model", str(garbage), "-o", str(tmp_path / "s.json")]) == ExitStatus.MODEL
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    assert run(["scan", str(vod), "--model", str(foreign), "-o", str(tmp_path / "s.json")]) == ExitStatus.MODEL
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_train_resume_from_checkpoint_of_another_task(project: Path, model: Path, tmp_path: Path):
    # The same clips under another task name (the task is the label file's name).
    other = project / "labels" / "pog.txt"
    other.write_text((project / "labels" / "rage.txt").read_text())
    assert (
        run(
            [
                "train",
                str(other),
                "-o",
                str(tmp_path / "pog.pt"),
                "--resume",
                str(model),
                "--size",
                "64",
                "--epochs",
                "1",
            ]
        )
        == ExitStatus.MODEL
    )


def test_label_errors_name_file_line_col(tmp_path: Path, capsys):
    labels = tmp_path / "rage.txt"
    labels.write_text("# comment\nclip.mp4  0:05-0:0x\n")
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert run(["labels", "check", "--no-probe", str(labels)]) == ExitStatus.LABELS
    err = capsys.readouterr().err
    assert f"{labels}:2:" in err


def test_span_past_clip_end_is_a_label_error(tmp_path: Path, video_factory, capsys):
    video_factory("short.mp4", duration=3)
    labels = tmp_path / "rage.txt"
    labels.write_text("short.mp4  1-2  2.5-10\n")
    assert run(["labels", "check", str(labels)]) == ExitStatus.LABELS
    assert f"{labels}:1:" in capsys.readouterr().err
    assert run(["frames", str(labels), "--out", str(tmp_path / "f")]) == ExitStatus.LABELS
    assert not list((tmp_path / "f").glob("*.npy")) if (tmp_path / "f").exists() else True


def test_config_file_sets_defaults_and_flags_override(tmp_path: Path, monkeypatch):
    from autotosis.detect.scores import Scores, write_scores

    monkeypatch.chdir(tmp_path)
    times = np.arange(0, 20000, 500, dtype=np.int64)
    rage = np.where((times >= 5000) & (times < 9000), 0.65, 0.1).astype(np.float32)
    scores = Scores(
        Path("v.mp4"), 20000, ("background", "rage"), times, np.stack([1 - rage, rage], 1), 500, task="rage"
    )
    write_scores(scores, tmp_path / "s.json")
    (tmp_path / "autotosis.toml").write_text("[defaults]\nthreshold = 0.9\n[task.rage]\nthreshold = 0.7\n")
    assert run(["events", "s.json", "-o", "a.json"]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["events"] == []
    assert run(["events", "s.json", "-o", "b.json", "--threshold", "0.6"]) == 0
    assert len(json.loads((tmp_path / "b.json").read_text())["events"]) == 1
    (tmp_path / "autotosis.toml").write_text("[defaults]\nthreshold = 'high'\n")
    assert run(["events", "s.json", "-o", "c.json"]) == ExitStatus.USAGE


@pytest.mark.parametrize(
    "command", ["labels check", "labels import", "frames", "train", "scan", "events", "render", "reel", "demo"]
)
def test_every_command_has_help(command: str, capsys):
    assert run([*command.split(), "--help"]) == 0
    assert "usage: autotosis" in capsys.readouterr().out
