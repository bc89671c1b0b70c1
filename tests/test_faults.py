"""Faults: kill -9 in the middle of work, a full disk, a missing or old ffmpeg, a hung ffmpeg.

The interrupted runs are real processes (``python -m autotosis``) killed once they have
started working (a ``--progress json`` line, or a temp file, shows they have); the re-runs
and the uninterrupted reference runs go through ``cli.main`` in this process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from tests import corpus

pytestmark = [pytest.mark.media]

REPO = Path(__file__).resolve().parents[1]


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def start(argv: list[str], cwd: Path, env: dict[str, str] | None = None, preexec_fn=None) -> subprocess.Popen:
    """The CLI as a child process, printing JSON progress lines on stderr."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "autotosis", "--progress", "json", *argv],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )


def wait_for_stage(proc: subprocess.Popen, stage: str) -> dict:
    """Read the child's stderr until a progress line of ``stage`` shows it is working."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "progress" and record.get("stage", "").startswith(stage):
                return record
    proc.wait()
    pytest.fail(f"the CLI ended (status {proc.returncode}) before reaching {stage!r}: {''.join(seen)[-2000:]}")


def wait_until(condition, proc: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` while the child runs; fail if it ends first."""
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the CLI finished (status {proc.returncode}) before {what}")
        time.sleep(0.005)


def kill9(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    proc.stdout.close()
    proc.stderr.close()


def ffmpegs_reading(text: str) -> list[int]:
    """Live ffmpeg/ffprobe processes whose command line contains ``text`` (from /proc, no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if Path(argv[0]).name.startswith(("ffmpeg", "ffprobe")) and any(text in arg for arg in argv) and state != "Z":
            found.append(int(entry.name))
    return found


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".part" in p.name]


# ----------------------------------------------------------------------------- shared data


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Three labelled clips (long enough that a kill lands mid-work) in a folder with a space."""
    root = tmp_path_factory.mktemp("faults") / "my project"
    root.mkdir()
    for name, colour in (("a.mp4", "red"), ("b.mp4", "blue"), ("c.mp4", "green")):
        corpus.ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=64x36:r=10:d=30,drawbox=w=iw/2:h=ih:color={colour}:t=fill",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "20",
            "-pix_fmt",
            "yuv420p",
            "file:" + str(root / name),
        )
    (root / "rage.txt").write_text("a.mp4  2-9  15-20\nb.mp4\nc.mp4  5-12\n", encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- kill -9 and re-run


def test_frames_killed_then_rerun_equals_an_uninterrupted_run(project: Path, tmp_path: Path):
    reference = tmp_path / "reference"
    assert run(["frames", str(project / "rage.txt"), "--out", str(reference), "--fps", "4", "--size", "32"]) == 0

    out = tmp_path / "killed"
    proc = start(["frames", str(project / "rage.txt"), "--out", str(out), "--fps", "4", "--size", "32"], cwd=tmp_path)
    wait_for_stage(proc, "frames")
    wait_until(lambda: out.is_dir() and any(".part" in p.name for p in out.iterdir()), proc, "a temp file appeared")
    kill9(proc)

    assert run(["frames", str(project / "rage.txt"), "--out", str(out), "--fps", "4", "--size", "32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for shard in reference.iterdir():
        if shard.name != "manifest.json":
            assert (out / shard.name).read_bytes() == shard.read_bytes(), shard.name
    assert no_temp_files(out)  # the killed run's temp files were cleared away


@pytest.mark.torch
@pytest.mark.slow
def test_train_killed_then_resumed_equals_an_uninterrupted_run(project: Path, tmp_path: Path):
    import torch

    labels = project / "rage.txt"
    args = [
        "--epochs",
        "2",
        "--seed",
        "3",
        "--size",
        "32",
        "--fps",
        "1",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--val-fraction",
        "0.34",
        "--max-frames",
        "16",
    ]
    reference = tmp_path / "reference.pt"
    assert run(["train", str(labels), "-o", str(reference), "--frames-dir", str(tmp_path / "f"), *args]) == 0

    out = tmp_path / "killed.pt"
    last = tmp_path / "killed.last.pt"
    proc = start(["train", str(labels), "-o", str(out), "--frames-dir", str(tmp_path / "f"), *args], cwd=tmp_path)
    wait_until(last.exists, proc, "the first epoch was saved")
    kill9(proc)

    assert (
        run(["train", str(labels), "-o", str(out), "--resume", str(out), "--frames-dir", str(tmp_path / "f"), *args])
        == 0
    )
    for mine, theirs in ((out, reference), (last, tmp_path / "reference.last.pt")):
        a = torch.load(mine, weights_only=True)
        b = torch.load(theirs, weights_only=True)
        assert a["info"]["epoch"] == b["info"]["epoch"]
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for key in a["state_dict"]:
            assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert no_temp_files(tmp_path)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained checkpoint: scanning with it is cheap and deterministic."""
    import torch

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    info = ModelInfo("rage", ("background", "rage"), 32, DEFAULT_MEAN, DEFAULT_STD, None, 0.5)
    save_checkpoint(path, build_model(2), info)
    return path


@pytest.mark.torch
@pytest.mark.slow
def test_scan_killed_then_rerun_gives_the_same_scores(project: Path, model: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    video = project / "a.mp4"
    reference = tmp_path / "reference.json"
    assert run(["scan", str(video), "--model", str(model), "-o", str(reference), "--no-cache"]) == 0

    out = tmp_path / "out" / "a.scores.json"
    proc = start(
        ["scan", str(video), "--model", str(model), "-o", str(out)],
        cwd=tmp_path,
        env={"AUTOTOSIS_CACHE": str(tmp_path / "cache")},
    )
    wait_for_stage(proc, "scan")
    kill9(proc)
    assert not out.exists()

    assert run(["scan", str(video), "--model", str(model), "-o", str(out)]) == 0
    mine, theirs = (json.loads(p.read_text()) for p in (out, reference))
    assert mine["times_ms"] == theirs["times_ms"]
    np.testing.assert_allclose(mine["scores"]["rage"], theirs["scores"]["rage"], atol=1e-6)
    assert no_temp_files(tmp_path)
    assert not ffmpegs_reading(str(video))  # the killed run's ffmpeg did not outlive it


def _events_file(tmp_path: Path, video: Path, spans: list[tuple[int, int]]) -> Path:
    from autotosis.detect.segments import Event, EventList, EventParams, write_events

    events = tuple(Event(s, e, "rage", 0.9, 0.8, s) for s, e in spans)
    path = tmp_path / "v.events.json"
    write_events(EventList(video, 30000, "rage", EventParams(), events), path)
    return path


def test_render_killed_then_rerun_gives_the_same_reel(project: Path, tmp_path: Path, monkeypatch):
    video = project / "a.mp4"
    events = _events_file(tmp_path, video, [(2000, 4000), (15000, 16500), (25000, 27000)])
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    reference = tmp_path / "reference.mp4"
    argv = ["render", str(video), str(events), "--title", "best of"]
    assert run([*argv, "-o", str(reference)]) == 0

    out = tmp_path / "out" / "reel.mp4"
    proc = start([*argv, "-o", str(out)], cwd=tmp_path, env={"TMPDIR": str(work)})
    wait_for_stage(proc, "render")
    kill9(proc)
    assert not out.exists()

    assert list(work.glob("autotosis-render-*")), "the killed run should have left its work folder"
    assert run([*argv, "-o", str(out)]) == 0
    assert out.read_bytes() == reference.read_bytes()
    assert no_temp_files(tmp_path)
    assert not list(work.glob("autotosis-render-*")), "the killed run's work folder was not swept away"


# ----------------------------------------------------------------------------- full disk


def _file_size_limit(limit: int):
    def apply() -> None:
        # Python starts with SIGXFSZ ignored, so a write past the limit fails with EFBIG (like a
        # full disk fails with ENOSPC); ffmpeg children get the default action back and die.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_file_size_limit_while_extracting_frames(project: Path, tmp_path: Path):
    out = tmp_path / "frames"
    proc = start(
        ["frames", str(project / "rage.txt"), "--out", str(out), "--fps", "4", "--size", "64"],
        cwd=tmp_path,
        preexec_fn=_file_size_limit(200_000),
    )
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if not line.startswith("{")]
    assert proc.returncode == ExitStatus.FILESYSTEM, err
    assert len(lines) == 1 and "cannot write" in lines[0] and "File too large" in lines[0], err
    assert str(out) in lines[0] and "Traceback" not in err
    assert not list(out.glob("*.npy")) and no_temp_files(out)


def test_file_size_limit_while_rendering(project: Path, tmp_path: Path):
    video = project / "a.mp4"
    events = _events_file(tmp_path, video, [(2000, 6000)])
    work = tmp_path / "tmp"
    work.mkdir()
    out = tmp_path / "reel.mp4"
    proc = start(
        ["render", str(video), str(events), "-o", str(out)],
        cwd=tmp_path,
        env={"TMPDIR": str(work)},
        preexec_fn=_file_size_limit(50_000),
    )
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if not line.startswith("{")]
    assert proc.returncode == ExitStatus.MEDIA, err
    assert len(lines) == 1 and "file size limit" in lines[0] and "a.mp4" in lines[0], err
    assert not out.exists() and no_temp_files(tmp_path)
    assert not list(work.iterdir())  # the render's work folder is gone too


# ----------------------------------------------------------------------------- ffmpeg missing, old, hung


def _fake_tools(folder: Path, version_line: str) -> Path:
    folder.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        script = folder / name
        script.write_text(
            f"#!/bin/sh\necho '{name} {version_line} Copyright (c) 2000-2021 the FFmpeg developers'\nexit 0\n"
        )
        script.chmod(0o755)
    return folder


@pytest.mark.parametrize("tools", ["missing", "old"])
def test_ffmpeg_missing_or_too_old_is_a_clear_error(project: Path, tmp_path: Path, monkeypatch, capsys, tools):
    path = tmp_path / "empty-bin"
    if tools == "missing":
        path.mkdir()
    else:
        _fake_tools(path, "version 4.4.2-0ubuntu0.22.04.1")
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.delenv("AUTOTOSIS_FFMPEG", raising=False)
    monkeypatch.delenv("AUTOTOSIS_FFPROBE", raising=False)
    out = tmp_path / "frames"
    assert run(["frames", str(project / "rage.txt"), "--out", str(out)]) == ExitStatus.MEDIA
    err = capsys.readouterr().err
    expected = "was not found on PATH" if tools == "missing" else "4.4"
    assert len(err.strip().splitlines()) == 1 and expected in err and "ffmpeg" in err, err
    if tools == "old":
        assert "too old" in err and ">= 5.1" in err
    assert not out.exists()


@pytest.fixture
def real_time_source(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A 400-s video and an ffmpeg that decodes in real time (-re), as a live or stalled source:
    at --fps 0.25 and --batch-size 64 the first batch takes 256 s to arrive."""
    video = tmp_path / "long vod.mp4"
    corpus.ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=32x18:r=2:d=400",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "20",
        "-pix_fmt",
        "yuv420p",
        "file:" + str(video),
    )
    slow = tmp_path / "slow-ffmpeg"
    real = corpus.FFMPEG
    slow.write_text(f'#!/bin/sh\ncase "$*" in *-version*) exec "{real}" "$@";; esac\nexec "{real}" -re "$@"\n')
    slow.chmod(0o755)
    return video, {"AUTOTOSIS_FFMPEG": str(slow)}


def _start_stalled_scan(video: Path, model: Path, out: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """`scan` of a real-time source, returned once ffmpeg reads it.  One batch is 64 samples at 0.25/s = 256 s of
    real-time decoding: without cancellation the CLI would sit in the read until then."""
    argv = ["scan", str(video), "--model", str(model), "-o", str(out), "--fps", "0.25", "--batch-size", "64"]
    proc = start([*argv, "--no-cache"], cwd=cwd, env=env)
    wait_for_stage(proc, "scan")
    wait_until(lambda: bool(ffmpegs_reading(str(video))), proc, "ffmpeg started")
    return proc


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGINT, ExitStatus.INTERRUPTED, "interrupted"), (signal.SIGTERM, ExitStatus.TERMINATED, "terminated")],
)
def test_ctrl_c_or_sigterm_during_a_stalled_decode_stops_ffmpeg(
    model: Path, tmp_path: Path, real_time_source, signum, status, said, sigint_not_ignored
):
    """SIGINT/SIGTERM while ffmpeg delivers frames in real time (as from a live source): exit at once, no orphan."""
    video, env = real_time_source
    out = tmp_path / "scores.json"
    proc = _start_stalled_scan(video, model, out, tmp_path, env)
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the CLI did not stop after {signal.Signals(signum).name}")
    assert proc.returncode == status, err
    assert said in err and "Traceback" not in err
    assert not out.exists()
    deadline = time.monotonic() + 10  # the kernel may take a moment to reap
    while ffmpegs_reading(str(video)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ffmpegs_reading(str(video)), "ffmpeg outlived the CLI"


@pytest.mark.torch
@pytest.mark.slow
def test_a_decode_that_stalls_is_given_up_after_the_stall_timeout(model: Path, tmp_path: Path, real_time_source):
    """ffmpeg that delivers nothing (a hung disk or share) ends the scan with exit 4 after --stall-timeout,
    no orphan."""
    video, env = real_time_source
    out = tmp_path / "scores.json"
    began = time.monotonic()
    proc = start(
        [
            "scan",
            str(video),
            "--model",
            str(model),
            "-o",
            str(out),
            "--fps",
            "0.25",
            "--batch-size",
            "64",
            "--no-cache",
            "--stall-timeout",
            "3",
        ],
        cwd=tmp_path,
        env=env,
    )
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the scan did not give up on the stalled decode")
    assert proc.returncode == ExitStatus.MEDIA, err
    assert "no frame for 3 s" in err and "Traceback" not in err
    assert time.monotonic() - began < 100  # a batch takes 256 s of real-time decoding
    assert not out.exists()
    assert not ffmpegs_reading(str(video)), "ffmpeg outlived the CLI"


def _helper_threads(pid: int) -> list[int]:
    """Thread ids of ``pid`` other than its main thread that do not block SIGINT."""
    found = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: int(p.name)):
        if int(task.name) == pid:
            continue
        try:
            status = (task / "status").read_text()
        except OSError:
            continue
        blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
        if not blocked & (1 << (signal.SIGINT - 1)):
            found.append(int(task.name))
    return found


@pytest.mark.torch
@pytest.mark.slow
def test_ctrl_c_taken_by_a_helper_thread_still_stops_the_cli_at_once(
    model: Path, tmp_path: Path, real_time_source, sigint_not_ignored
):
    """Issue 16's flaky hang, made deterministic: the kernel may hand a process's SIGINT to any
    thread that does not block it, and Python then runs the handler only when the *main* thread
    next returns to bytecode.  The main thread sat in one long queue wait (the 600 s stall
    timeout) and only noticed when something else woke it: seconds late, or after the test's 60 s.
    tgkill() makes the kernel's choice for it: the signal goes to a decoder/helper thread."""
    import ctypes

    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
    if tgkill is None:
        pytest.skip("no tgkill() in this C library")
    video, env = real_time_source
    out = tmp_path / "scores.json"
    proc = _start_stalled_scan(video, model, out, tmp_path, env)
    time.sleep(0.5)  # the decoder's threads are all running and waiting now
    helpers = _helper_threads(proc.pid)
    assert helpers, "the CLI has no helper thread"
    began = time.monotonic()
    assert tgkill(proc.pid, helpers[-1], signal.SIGINT) == 0
    line = proc.stderr.readline()  # the CLI's answer: one line
    said_after = time.monotonic() - began
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the CLI did not stop after a SIGINT taken by a helper thread")
    assert line.strip() == "autotosis: interrupted", line + err
    assert said_after < 3, f"Ctrl-C was acted on only after {said_after:.1f} s"
    assert proc.returncode == ExitStatus.INTERRUPTED and "Traceback" not in err
    assert not out.exists()
    deadline = time.monotonic() + 10
    while ffmpegs_reading(str(video)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ffmpegs_reading(str(video)), "ffmpeg outlived the CLI"
