"""A real Ray cluster: a head node and a worker node started as separate ``ray start`` processes on
this machine, a batch driven through ``--address``, and the worker node killed (SIGKILL) in the
middle of a VOD.  The batch must still finish every VOD exactly once, with complete outputs and
no temp files, and the cluster is stopped afterwards whatever happens.

Each node gets its own short ``--temp-dir`` (Ray allows one per node; its socket paths must stay
under the 107-byte limit of a unix socket, hence ``/tmp/atr-XXXX/{h,w}`` rather than tmp_path).
Every process of a node is found through that folder: the node's own processes name it on their
command line, and its agents and workers are their descendants.  The cluster is stopped by
killing exactly those processes: ``ray stop`` would kill every Ray process of every user of this
machine (it matches process names), including other people's test runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autotosis.media import probe
from autotosis.workflows.batch import Manifest
from tests.conftest import constant_model, flash_clip

pytest.importorskip("ray")
if not Path("/proc/self/stat").exists():
    pytest.skip("finds a node's processes through /proc (Linux)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
# The `ray` command beside this Python (the venv's: the same Ray as the driver's), else the one on PATH.
RAY = Path(sys.executable).with_name("ray")
if not RAY.is_file():
    RAY = Path(shutil.which("ray") or RAY)
VODS = 4
VOD_SECONDS = 8


# ----------------------------------------------------------------------------- processes, from /proc


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now running."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return parents


def node_processes(temp_dir: Path) -> set[int]:
    """The processes of the Ray node whose --temp-dir is ``temp_dir``: those naming it, and their descendants."""
    marker = str(temp_dir) + os.sep
    parents = _parents()
    found = {pid for pid in parents if pid != os.getpid() and any(marker in arg for arg in _cmdline(pid))}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def kill_node(temp_dir: Path, timeout_s: float = 30.0) -> set[int]:
    """SIGKILL every process of a node, and wait until they are gone.

    They are frozen (SIGSTOP) first, parents before a fresh look for children, so that none can
    start a process that escapes, or die and leave an orphan that is no longer its descendant.
    """
    frozen: set[int] = set()
    for _ in range(100):
        pids = node_processes(temp_dir) - frozen
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= pids
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while node_processes(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    return frozen


# ----------------------------------------------------------------------------- the cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A head node and one worker node, 1 CPU each, reached at 127.0.0.1:PORT.

    ``ray start`` returns once its node is up; a node's processes then live on by themselves
    (children of init), which is why they are found and stopped through their temp dirs.
    """

    def __init__(self, root: Path, logs: Path):
        self.root = root
        self.logs = logs
        self.head = root / "h"
        self.worker = root / "w"
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_DISABLE_USAGE_STATS": "1"}
        self._starter: threading.Thread | None = None
        self._error: str | None = None

    def _start(self, name: str, temp_dir: Path, *args: str) -> None:
        log = self.logs / f"ray-start-{name}.log"
        with log.open("w") as handle:
            proc = subprocess.run(
                [
                    str(RAY),
                    "start",
                    *args,
                    "--node-ip-address=127.0.0.1",
                    "--num-cpus=1",
                    "--object-store-memory=80000000",
                    "--disable-usage-stats",
                    f"--temp-dir={temp_dir}",
                    # two nodes on one machine: the agent's fixed default port (52365) would clash
                    f"--dashboard-agent-listen-port={_free_port()}",
                ],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=120,
                cwd=self.logs,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed with status {proc.returncode}: {log.read_text()[-3000:]}")

    def _start_both(self) -> None:
        try:
            self._start("head", self.head, "--head", f"--port={self.port}", "--include-dashboard=false")
            self._start("worker", self.worker, f"--address={self.address}")
        except Exception as exc:  # reported by ready(), in the test's thread
            self._error = str(exc)

    def start(self) -> None:
        """Start both nodes in the background (the test prepares its inputs meanwhile)."""
        self._starter = threading.Thread(target=self._start_both, name="ray-start", daemon=True)
        self._starter.start()

    def ready(self) -> None:
        """Wait until both nodes are up."""
        self._join()
        if self._error:
            pytest.fail(self._error)

    def _join(self) -> None:
        if self._starter is not None:
            self._starter.join(timeout=300)

    def processes(self) -> set[int]:
        return node_processes(self.head) | node_processes(self.worker)

    def stop(self) -> None:
        self._join()  # a node still starting would come up after the kill
        kill_node(self.worker)
        kill_node(self.head)


@pytest.fixture
def cluster(tmp_path: Path):
    if not RAY.is_file():
        pytest.skip("the `ray` command is not installed")
    root = Path(tempfile.mkdtemp(prefix="atr-", dir="/tmp"))
    logs = tmp_path / "logs"
    logs.mkdir()
    ray_cluster = Cluster(root, logs)
    try:
        ray_cluster.start()
        yield ray_cluster
    finally:
        ray_cluster.stop()
        # Keep the nodes' logs (for a failed run to look at), then remove the temp dirs.
        for node in ("h", "w"):
            with contextlib.suppress(OSError):
                shutil.copytree(
                    root / node / "session_latest" / "logs",
                    logs / f"ray-{node}",
                    ignore=shutil.ignore_patterns("*events", "old", "nsight", "rocprof_sys"),
                    ignore_dangling_symlinks=True,
                )
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- the test


def _render_on(temp_dir: Path, out: Path) -> tuple[int, list[str]] | None:
    """An ffmpeg of the node's that is rendering a reel (a piece in a work folder, or the reel into DIR)."""
    for pid in node_processes(temp_dir):
        args = _cmdline(pid)
        if args and Path(args[0]).name == "ffmpeg" and any("autotosis-render-" in a or str(out) in a for a in args):
            return pid, args
    return None


@pytest.mark.media
@pytest.mark.torch
@pytest.mark.slow
def test_worker_node_killed_mid_batch(cluster: Cluster, tmp_path: Path):
    started = time.monotonic()
    vods = tmp_path / "vods"
    vods.mkdir()
    sources = [flash_clip(vods / f"vod{i}.mp4", VOD_SECONDS, [], audio=True) for i in range(VODS)]
    model = constant_model(tmp_path / "rage.pt", 3.0)  # every frame scores 0.95: one event per VOD, so a reel each
    out = tmp_path / "out"
    cluster.ready()
    driver_log = tmp_path / "logs" / "driver.log"
    env = {**cluster.env, "AUTOTOSIS_CACHE": str(tmp_path / "cache")}
    with driver_log.open("w") as log:
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autotosis",
                "--progress",
                "none",
                "batch",
                str(vods),
                "--model",
                str(model),
                "--out",
                str(out),
                "--engine",
                "ray",
                "--address",
                cluster.address,
                "--workers",
                "2",
                "--threads",
                "1",
            ],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # The kill lands while the worker node renders a VOD's reel: that VOD's scores and events
        # are written, its reel is not (one task per node: the head node is busy with another VOD).
        deadline = time.monotonic() + 240
        while (rendering := _render_on(cluster.worker, out)) is None:
            if driver.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the worker node never rendered a reel (driver status {driver.poll()}): "
                    f"{driver_log.read_text()[-3000:]}"
                )
            time.sleep(0.02)
        killed = kill_node(cluster.worker)
        killed_at, killed_wall = time.monotonic() - started, time.time()
        assert not node_processes(cluster.worker), "the worker node's processes survived SIGKILL"
        victim = next(s for s in sources if any(f"{os.sep}{s.name}" in arg for arg in rendering[1]))
        folder = out / victim.stem
        at_kill = sorted(p.name for p in folder.iterdir())
        assert "scores.json" in at_kill and "reel.mp4" not in at_kill, at_kill
        # What a kill during the reel's final join leaves (fsutil.atomic_path's temp file and the join's
        # list of pieces): planted now, since the join itself is too short to hit reliably.
        (folder / ".reel.k1ll3d.part.mp4").write_bytes(b"\0" * 4096)
        (folder / ".reel.k1ll3d.part.mp4.concat.txt").write_text("ffconcat version 1.0\n")
        status = driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    log_text = driver_log.read_text()
    assert status == 0, log_text[-3000:]

    # Every VOD: submitted once and done once (Ray's retry of the killed task is invisible to the manifest).
    records = [r for r in Manifest(out / "manifest.jsonl").records() if r.get("kind") == "vod"]
    for source in sources:
        states = [r["state"] for r in records if r["source"] == str(source)]
        assert states == ["running", "done"], (source.name, states)
    latest, best = Manifest(out / "manifest.jsonl").latest()
    assert best is not None and best["state"] == "done"

    # Outputs complete: the recorded sizes, JSON that parses, reels that play for the recorded length.
    for source in sources:
        record = latest[str(source)]
        vod_folder = out / record["dir"]
        assert set(record["outputs"]) >= {"scores", "events", "reel", "report"}
        for name in record["outputs"].values():
            assert (vod_folder / name).stat().st_size == record["sizes"][name], name
        json.loads((vod_folder / "scores.json").read_text())
        assert json.loads((vod_folder / "events.json").read_text())["events"], source.name
        durations = probe.stream_durations(vod_folder / "reel.mp4")
        assert abs(durations.video_ms - record["reel_ms"]) <= 150
        assert (vod_folder / "report.html").read_text().rstrip().endswith("</html>")
    # The killed VOD was redone after the kill (by Ray's retry, on the head node).
    assert (folder / "reel.mp4").stat().st_mtime > killed_wall
    assert probe.stream_durations(out / "best-of.mp4").video_ms > 0
    assert len(json.loads((out / "best-of.json").read_text())["clips"]) == VODS

    # Nothing half-written anywhere in DIR: no temp file of the killed attempt, or of any other.
    leftovers = [str(p.relative_to(out)) for p in out.rglob("*") if ".part" in p.name or p.name.endswith(".concat.txt")]
    assert not leftovers, leftovers

    # The cluster stops: no process of either node is left.
    cluster.stop()
    assert not cluster.processes()
    print(
        f"killed {len(killed)} worker-node processes at {killed_at:.1f} s while it rendered {victim.name} "
        f"(its folder then held {at_kill}); whole test {time.monotonic() - started:.1f} s"
    )


def test_outputs_the_driver_cannot_see_fail_the_vod(tmp_path: Path):
    """A node without the shared DIR writes a VOD's outputs to its own disk: recorded as failed, not a crash."""
    from autotosis.workflows.batch import VodResult, _Planned, _record

    manifest = Manifest(tmp_path / "manifest.jsonl")
    item = _Planned(tmp_path / "vod.mp4", "vod", "fingerprint", False, None)
    result = VodResult(item.source, ok=True, outputs={"scores": "scores.json", "events": "events.json"}, events=1)
    outcome = _record(manifest, tmp_path, item, result, "key")
    assert outcome.status == "failed" and "shared storage" in (outcome.error or "")
    [record] = manifest.records()
    assert record["state"] == "failed" and record["error_kind"] == "MissingOutput"
