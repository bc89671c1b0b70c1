"""`autotosis batch`: many VODs, a manifest that survives kills, a bad file that does not stop the rest,
a best-of reel, and the same behaviour on the local process pool and on Ray."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus, UsageError
from autotosis.detect.segments import Event
from autotosis.media import probe
from autotosis.workflows.batch import Manifest, Pick, collect_inputs, remove_part_files, runs_by_source, select_best
from tests.test_pipeline import CAM, flash_clip

pytestmark = [pytest.mark.media, pytest.mark.torch, pytest.mark.slow]

CARD_MS = 2000  # render.RenderOptions.title_ms: the title card before each source's clips
EVENT_OPTIONS = ["--pad-before", "0.5", "--pad-after", "0.5", "--threshold", "0.5"]


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small model that learns "the top-right corner is red" in a few seconds."""
    root = tmp_path_factory.mktemp("train")
    lines = [f"# default crop={CAM}"]
    for name, spans in {"a.mp4": [(1, 3)], "b.mp4": [(3, 5)], "c.mp4": []}.items():
        flash_clip(root / name, 6, spans)
        lines.append("  ".join([name, *(f"{s}-{e}" for s, e in spans)]))
    (root / "rage.txt").write_text("\n".join(lines) + "\n")
    out = root / "rage.pt"
    assert (
        run(
            [
                "-q",
                "train",
                str(root / "rage.txt"),
                "-o",
                str(out),
                "--epochs",
                "4",
                "--size",
                "32",
                "--fps",
                "8",
                "--seed",
                "1",
                "--val-fraction",
                "0.34",
                "--frames-dir",
                str(root / "frames"),
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def vods(tmp_path_factory) -> Path:
    """Three VODs (one without highlights) and a file that is no video, in a folder with a non-ASCII name."""
    folder = tmp_path_factory.mktemp("vods") / "week é"
    folder.mkdir()
    flash_clip(folder / "vod 1.mp4", 8, [(2, 4)])
    # Two highlights 3 s apart: separate events even with the 1-s padding on each side (the flash is on at t=2.5).
    flash_clip(folder / "vod2.mp4", 8, [(1, 2.5), (5.5, 7)])
    flash_clip(folder / "calm.mp4", 5, [], audio=False)
    (folder / "bad.mp4").write_text("this is not a video\n" * 20)
    return folder


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for the whole module (starting Ray costs seconds)."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(params=["local", "ray"])
def engine(request) -> list[str]:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")  # the batch uses the Ray that is already running
    return ["--engine", request.param, "--workers", "2", "--threads", "1"]


@pytest.fixture(autouse=True)
def score_cache(tmp_path: Path, monkeypatch) -> None:
    # The driver resolves the cache folder and hands it to every worker (pool or Ray).
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))


def latest(out: Path) -> dict[str, dict]:
    """The last manifest record of each VOD, by file name."""
    vods, _ = Manifest(out / "manifest.jsonl").latest()
    return {Path(source).name: record for source, record in vods.items()}


def mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and p.name not in ("manifest.jsonl", ".batch.lock")
    }


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


def check_best_of(out: Path, order: str) -> dict:
    listing = json.loads((out / "best-of.json").read_text())
    clips = listing["clips"]
    assert clips and listing["order"] == order
    runs = 1 + sum(a["source"] != b["source"] for a, b in zip(clips, clips[1:]))
    expected = sum(c["end_ms"] - c["start_ms"] for c in clips) + runs * CARD_MS
    assert abs(listing["duration_ms"] - expected) <= 100
    durations = probe.stream_durations(out / "best-of.mp4")
    assert abs(durations.video_ms - expected) <= 150
    assert durations.audio_ms is not None and abs(durations.audio_ms - durations.video_ms) <= 150
    if order == "time":
        keys = [(c["source_index"], c["start_ms"]) for c in clips]
        assert keys == sorted(keys)
    else:
        peaks = [c["peak"] for c in clips]
        assert peaks == sorted(peaks, reverse=True)
    return listing


def test_part_files_and_folders_of_a_killed_run_are_removed(tmp_path: Path):
    leftovers = [".reel.x1.part.mp4", ".report.html.x2.part.html", ".report-clips.x3.part", ".report-clips.x4.old.part"]
    kept = ["reel.mp4", "report-clips", "notes.part.txt"]
    for name in leftovers + kept:
        if "clips" in name:
            (tmp_path / name).mkdir()
            (tmp_path / name / "event-01.mp4").write_bytes(b"x")
        else:
            (tmp_path / name).write_bytes(b"x")
    assert remove_part_files([tmp_path]) == len(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


# ----------------------------------------------------------------------------- whole batches, both engines


def test_bad_file_resume_and_best_of(engine: list[str], model: Path, vods: Path, tmp_path: Path, capsys):
    out = tmp_path / "out é"
    argv = ["batch", str(vods), "--model", str(model), "--out", str(out), *engine, *EVENT_OPTIONS]

    # 1. The bad file is recorded as failed, the others are done, and the exit status says so.
    assert run(argv) == ExitStatus.SOME_FAILED
    captured = capsys.readouterr()
    assert "bad.mp4" in captured.out and "1 failed" in captured.out
    assert "1 of 4 VODs failed" in captured.err and "Traceback" not in captured.err
    records = latest(out)
    assert {name: r["state"] for name, r in records.items()} == {
        "bad.mp4": "failed",
        "calm.mp4": "done",
        "vod 1.mp4": "done",
        "vod2.mp4": "done",
    }
    assert "bad.mp4" in records["bad.mp4"]["error"]
    runs = [r for r in Manifest(out / "manifest.jsonl").records() if r["kind"] == "run"]
    assert runs[-1]["engine"] == engine[1] and runs[-1]["workers"] == 2
    assert not (out / "bad").exists()
    assert records["vod 1.mp4"]["events"] == 1 and records["vod2.mp4"]["events"] == 2
    assert records["calm.mp4"]["events"] == 0 and "reel" not in records["calm.mp4"]["outputs"]
    for name in ("vod 1.mp4", "vod2.mp4", "calm.mp4"):  # the scan's own seconds, within the VOD's whole job
        assert 0 < records[name]["scan_s"] <= records[name]["elapsed_s"]
    assert "scan_s" not in records["bad.mp4"]
    for name in ("vod 1.mp4", "vod2.mp4", "calm.mp4"):  # the threshold each VOD's events used (short: not raised)
        assert records[name]["threshold"] == 0.5 and records[name]["raised_from"] is None
    for name in ("vod 1", "vod2"):
        for output in ("scores.json", "events.json", "reel.mp4", "report.html"):
            assert (out / name / output).stat().st_size > 0
        events = json.loads((out / name / "events.json").read_text())["events"]
        reel = probe.stream_durations(out / name / "reel.mp4")
        assert abs(reel.video_ms - sum(e["end_ms"] - e["start_ms"] for e in events)) <= 100
        clips = sorted(p.name for p in (out / name / "report-clips").iterdir())  # one per event, for the report
        assert clips == [f"event-{i:02d}.mp4" for i in range(1, len(events) + 1)]
        assert 'src="report-clips/event-01.mp4"' in (out / name / "report.html").read_text()
    assert "<svg" in (out / "calm" / "report.html").read_text()
    assert not (out / "calm" / "report-clips").exists()
    listing = check_best_of(out, "time")
    assert [Path(c["source"]).name for c in listing["clips"]] == ["vod 1.mp4", "vod2.mp4", "vod2.mp4"]
    assert not part_files(out)

    # 2. The same command again: finished work is skipped (nothing rewritten), the bad file is retried.
    before = mtimes(out)
    assert run(argv) == ExitStatus.SOME_FAILED
    assert mtimes(out) == before
    assert latest(out)["bad.mp4"]["state"] == "failed"

    # 3. An interrupted VOD (its last record says running) and a VOD with a lost output are redone;
    #    the rest is untouched.  Another best-of order and length re-render only the best-of reel.
    Manifest(out / "manifest.jsonl").append({**records["vod2.mp4"], "state": "running"})
    (out / "vod 1" / "report.html").unlink()
    capsys.readouterr()
    assert run([*argv, "--order", "score", "--max-duration", "9"]) == ExitStatus.SOME_FAILED
    after = mtimes(out)
    for name, stamp in before.items():
        redone = name.startswith(("vod2/", "vod 1/")) or name.startswith("best-of")
        assert (after[name] > stamp) == redone, name
    assert (out / "vod 1" / "report.html").exists()
    assert {name: r["state"] for name, r in latest(out).items()}["vod2.mp4"] == "done"
    listing = check_best_of(out, "score")
    assert listing["duration_ms"] <= 9000 + 100 and 0 < len(listing["clips"]) < 3  # all 3 clips and cards: 12.5 s

    # 4. Other event settings would replace finished results: refused without --force, nothing touched.
    before = mtimes(out)
    assert run([*argv, "--threshold", "0.9"]) == ExitStatus.OUTPUT_EXISTS
    assert "--force" in capsys.readouterr().err
    assert mtimes(out) == before


# ----------------------------------------------------------------------------- kill -9


def test_kill_9_then_rerun_finishes_cleanly(model: Path, vods: Path, tmp_path: Path):
    listed = tmp_path / "my list.txt"
    listed.write_text(f'# three good VODs\n"{vods / "vod 1.mp4"}"\n{vods / "vod2.mp4"}\n{vods / "calm.mp4"}\n')
    out = tmp_path / "out"
    argv = [
        "batch",
        str(listed),
        "--model",
        str(model),
        "--out",
        str(out),
        "--workers",
        "1",
        "--threads",
        "1",
        *EVENT_OPTIONS,
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "autotosis", "--progress", "none", "-q", *argv],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Until the first VOD is done, however long a loaded machine takes for the two start-ups (the driver's
        # and its worker's) and the first VOD: a fixed 120 s gave up once in a CI run under four times the load.
        # The bound only has to leave the rerun its share of pytest's 600-s timeout.
        deadline = time.monotonic() + 400
        while process.poll() is None:
            if (out / "manifest.jsonl").exists() and any(r["state"] == "done" for r in latest(out).values()):
                break
            assert time.monotonic() < deadline, "no VOD was done after 400 s"
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the driver and its worker, like a crash
        process.wait()
    assert process.returncode == -signal.SIGKILL, f"the batch ended by itself first (status {process.returncode})"
    killed = latest(out)
    finished = {name for name, r in killed.items() if r["state"] == "done"}
    assert finished and len(finished) < 3, "the batch should have been killed half-way"
    for reel in out.glob("*/reel.mp4"):  # whatever has its final name is complete
        assert probe.stream_durations(reel).video_ms > 0
    before = mtimes(out)

    assert run(argv) == ExitStatus.OK
    records = latest(out)
    assert {r["state"] for r in records.values()} == {"done"} and len(records) == 3
    assert not part_files(out)
    for record in records.values():
        for output in record["outputs"].values():
            assert (out / record["dir"] / output).stat().st_size == record["sizes"][output]
    after = mtimes(out)
    for name in finished:  # finished before the kill: not redone
        folder = killed[name]["dir"]
        assert all(after[k] == v for k, v in before.items() if k.startswith(folder + "/"))
    check_best_of(out, "time")


# ----------------------------------------------------------------------------- parts without media


def test_select_best_fits_the_limit_and_orders(tmp_path: Path):
    def event(start_s: float, length_s: float, peak: float) -> Event:
        return Event(int(start_s * 1000), int((start_s + length_s) * 1000), "rage", peak, peak, int(start_s * 1000))

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    candidates = [
        (a, [event(10, 4, 0.7), event(50, 3, 0.95), event(70, 2, 0.8)]),
        (b, [event(5, 5, 0.9), event(30, 2, 0.6)]),
    ]
    every = select_best(candidates, order="time", max_duration_ms=None, card_ms=2000)
    assert [(p.source.name, p.event.start_ms) for p in every] == [
        ("a.mp4", 10000),
        ("a.mp4", 50000),
        ("a.mp4", 70000),
        ("b.mp4", 5000),
        ("b.mp4", 30000),
    ]
    by_score = select_best(candidates, order="score", max_duration_ms=None, card_ms=2000)
    assert [p.event.peak for p in by_score] == [0.95, 0.9, 0.8, 0.7, 0.6]
    assert [s.name for s, _ in runs_by_source(by_score)] == ["a.mp4", "b.mp4", "a.mp4", "b.mp4"]
    # 14 s, best first: a's 0.95 (3 s + card), b's 0.9 (5 s + card); in time order a's 0.8 (2 s) joins a's card ...
    limited = select_best(candidates, order="time", max_duration_ms=14000, card_ms=2000)
    assert [(p.source.name, p.event.peak) for p in limited] == [("a.mp4", 0.95), ("a.mp4", 0.8), ("b.mp4", 0.9)]
    # ... in score order it would follow b's clip and need a card of its own; b's 0.6 (2 s) fits instead.
    limited = select_best(candidates, order="score", max_duration_ms=14000, card_ms=2000)
    assert [(p.source.name, p.event.peak) for p in limited] == [("a.mp4", 0.95), ("b.mp4", 0.9), ("b.mp4", 0.6)]
    assert select_best(candidates, order="time", max_duration_ms=3000, card_ms=2000) == []
    assert all(isinstance(p, Pick) for p in limited)


def test_inputs_from_folders_globs_and_lists(tmp_path: Path):
    vods = tmp_path / "vods"
    for name in ("b.mp4", "a.MKV", "sub dir/c.mp4", "notes.txt", ".hidden/d.mp4", "out/reel.mp4"):
        (vods / name).parent.mkdir(parents=True, exist_ok=True)
        (vods / name).write_bytes(b"")
    listed = tmp_path / "lists" / "week.txt"
    listed.parent.mkdir()
    listed.write_text('# comment\n\n../vods/b.mp4\n"../vods/sub dir/c.mp4"\n../vods/*.MKV\n')
    found = collect_inputs([str(vods), str(listed)], exclude=vods / "out")
    assert [p.relative_to(vods).as_posix() for p in found] == ["a.MKV", "b.mp4", "sub dir/c.mp4"]
    assert collect_inputs([str(vods / "*.mp4")]) == [vods / "b.mp4"]
    with pytest.raises(UsageError, match="no such file"):
        collect_inputs([str(vods / "missing.mp4")])
    listed.write_text("../vods/b.mp4\n../vods/gone.mp4\n")
    with pytest.raises(UsageError, match=f"{listed.name}:2"):
        collect_inputs([str(listed)])
    with pytest.raises(UsageError, match="no videos"):
        collect_inputs([str(tmp_path / "lists")])


def test_manifest_survives_a_torn_last_line(tmp_path: Path):
    manifest = Manifest(tmp_path / "manifest.jsonl")
    manifest.append({"kind": "vod", "source": "/a.mp4", "dir": "a", "state": "done"})
    with (tmp_path / "manifest.jsonl").open("a") as handle:
        handle.write('{"kind": "vod", "source": "/b é.mp4", "dir": "b", "sta')  # killed mid-write ...
    with (tmp_path / "manifest.jsonl").open("ab") as handle:
        handle.write("é".encode()[:1])  # ... even inside a multi-byte character
    manifest.append({"kind": "vod", "source": "/c.mp4", "dir": "c", "state": "running"})
    vods, best = manifest.latest()
    assert {s: r["state"] for s, r in vods.items()} == {"/a.mp4": "done", "/c.mp4": "running"}
    assert best is None


def test_manifest_times_of_another_shape_make_the_record_damaged(tmp_path: Path):
    manifest = Manifest(tmp_path / "manifest.jsonl")
    done = {"kind": "vod", "state": "done", "elapsed_s": 2.5}
    manifest.append({**done, "source": "/a.mp4", "dir": "a", "scan_s": 1.25})
    manifest.append({**done, "source": "/b.mp4", "dir": "b", "scan_s": None})  # never scanned to the end
    manifest.append({**done, "source": "/c.mp4", "dir": "c"})  # written before scan_s was recorded
    manifest.append({**done, "source": "/d.mp4", "dir": "d", "scan_s": -1})
    manifest.append({**done, "source": "/e.mp4", "dir": "e", "scan_s": "1.0"})
    vods, _ = manifest.latest()
    assert {s: r["state"] for s, r in vods.items()} == {
        "/a.mp4": "done",
        "/b.mp4": "done",
        "/c.mp4": "done",
        "/d.mp4": "damaged",
        "/e.mp4": "damaged",
    }


def test_the_summary_shows_where_the_threshold_was_raised_and_the_manifest_checks_it(tmp_path: Path):
    from rich.console import Console

    from autotosis.workflows.batch import BatchResult, BestOfResult, ItemOutcome, summary_table

    items = (
        ItemOutcome(Path("/v/kept.mp4"), "kept", "done", 3, 9000, 4.0, threshold=0.95),
        ItemOutcome(Path("/v/raised.mp4"), "raised", "done", 2, 6000, 4.0, threshold=0.99, raised_from=0.95),
        ItemOutcome(Path("/v/old.mp4"), "old", "skipped", 1, 3000, 4.0),  # a record of an older version
    )
    console = Console(width=200, record=True)
    console.print(summary_table(BatchResult(tmp_path, items, BestOfResult("none"))))
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if ".mp4" in line}
    assert "0.95" in rows["kept.mp4"] and "->" not in rows["kept.mp4"]
    assert "0.95 -> 0.990" in rows["raised.mp4"]
    assert "0.9" not in rows["old.mp4"]

    manifest = Manifest(tmp_path / "manifest.jsonl")
    done = {"kind": "vod", "state": "done", "elapsed_s": 2.5}
    manifest.append({**done, "source": "/a.mp4", "dir": "a", "threshold": 0.99, "raised_from": 0.95})
    manifest.append({**done, "source": "/b.mp4", "dir": "b", "threshold": 1.5})
    manifest.append({**done, "source": "/c.mp4", "dir": "c", "raised_from": "0.9"})
    vods, _ = manifest.latest()
    assert {s: r["state"] for s, r in vods.items()} == {"/a.mp4": "done", "/b.mp4": "damaged", "/c.mp4": "damaged"}


def test_ray_missing_is_one_clear_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    assert (
        run(
            ["batch", str(tmp_path), "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "o"), "--engine", "ray"]
        )
        == ExitStatus.USAGE
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install" in err and "ray" in err
    assert not (tmp_path / "o").exists()


def test_one_batch_per_output_folder(model: Path, vods: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".batch.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another batch is running here
        assert run(["batch", str(vods / "calm.mp4"), "--model", str(model), "--out", str(out)]) == ExitStatus.USAGE
    assert "another batch" in capsys.readouterr().err
    assert not (out / "manifest.jsonl").exists()


def test_batch_help(capsys):
    assert run(["batch", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--workers" in text and "2-core" in text and "manifest.jsonl" in text and "--engine" in text


# ----------------------------------------------------------------------------- SIGTERM in a local worker


def _sigterm_job(folder: str) -> str:
    """A job that says where it runs, waits, and notes whether its cleanup ran (runs in a pool worker)."""
    here = Path(folder)
    (here / "pid").write_text(str(os.getpid()))
    try:
        time.sleep(60)  # the test's SIGTERM ends this
    finally:
        (here / "cleaned up").write_text("yes")
    return "finished"


def _pid_job(folder: str) -> int:
    return os.getpid()


def _wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_sigterm_to_a_local_worker_unwinds_its_job_first(tmp_path: Path):
    """Issue 16: SIGTERM (the pool's own after a Ctrl-C, or anyone's) killed a worker without running
    any cleanup, leaving its ffmpeg running; now it raises Terminated in the job, as in the CLI, and
    the worker ends as SIGTERM would have ended it (the job counts as failed, the pool is replaced)."""
    import concurrent.futures

    from autotosis.workflows.engines import LocalEngine

    with LocalEngine(1, 1) as engine:
        handle = engine.submit(_sigterm_job, str(tmp_path))
        _wait_for(tmp_path / "pid")
        worker = int((tmp_path / "pid").read_text())
        os.kill(worker, signal.SIGTERM)
        assert engine.wait([handle]) == [handle]
        with pytest.raises(concurrent.futures.process.BrokenProcessPool):
            engine.result(handle)
        assert (tmp_path / "cleaned up").read_text() == "yes"  # the job's finally ran before the worker ended
        # An idle worker ends at once on SIGTERM; the next job gets a fresh pool.
        idle = engine.result(engine.submit(_pid_job, str(tmp_path)))
        os.kill(idle, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{idle}").exists() and "zombie" not in _state(idle):
            assert time.monotonic() < deadline, "the idle worker did not end"
            time.sleep(0.05)
        time.sleep(0.5)  # for the pool's manager thread to see it gone
        assert engine.result(engine.submit(_pid_job, str(tmp_path))) not in (worker, idle)


def _state(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0].lower()
    return "zombie"


def test_default_workers_two_on_small_machines_then_one_per_two_cores():
    from autotosis.cli.workflows import default_workers

    # benchmarks/batch.py on 2 cores: 2 workers gave 1.11x the VOD-hours per hour of 1 (1.85x with the torch scan).
    assert [default_workers(cpus) for cpus in (1, 2, 3, 4, 8, 16)] == [1, 2, 2, 2, 4, 8]


def test_the_batch_key_ignores_how_many_decoders_a_scan_runs_but_not_what_it_refines():
    """A VOD done with one decoder is done with two: the record key holds what changes the outputs only."""
    from dataclasses import replace

    from autotosis.detect.coarse import CoarseOptions
    from autotosis.detect.scan import ScanOptions
    from autotosis.detect.segments import EventParams
    from autotosis.outputs.render import RenderOptions
    from autotosis.workflows.batch import BatchOptions, batch_settings, settings_key

    def key(coarse: CoarseOptions) -> str:
        options = BatchOptions(
            out=Path("out"),
            model=Path("m.pt"),
            scan=ScanOptions(coarse=coarse),
            events=EventParams(),
            class_name=None,
            render=RenderOptions(),
        )
        return settings_key(batch_settings(options, "model-fingerprint"))

    base = CoarseOptions()
    assert key(replace(base, decoders=1, decoder_threads=4)) == key(base)
    assert key(replace(base, join_ms=5000)) != key(base)
