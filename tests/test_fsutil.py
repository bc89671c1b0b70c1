"""Atomic outputs: temp file + rename, --force rule, permissions of finished files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autotosis.core.errors import OutputExistsError
from autotosis.core.fsutil import atomic_path, write_text_atomic


def test_finished_output_gets_the_users_default_mode(tmp_path: Path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_existing_output_is_kept_without_force_and_no_temp_is_left(tmp_path: Path):
    target = tmp_path / "reel.mp4"
    target.write_text("mine")
    with pytest.raises(OutputExistsError):
        write_text_atomic(target, "theirs")
    assert target.read_text() == "mine"
    write_text_atomic(target, "theirs", force=True)
    assert target.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mp4"]


def test_failure_inside_leaves_neither_target_nor_temp(tmp_path: Path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_a_checkpoint_is_a_file_system_error(tmp_path: Path, monkeypatch):
    import errno

    import torch

    from autotosis.core.errors import FileSystemError
    from autotosis.model.model import ModelInfo, save_checkpoint

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    info = ModelInfo(
        task="rage",
        classes=("background", "rage"),
        input_size=32,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        crop=None,
        threshold=0.5,
    )
    with pytest.raises(FileSystemError, match="rage.pt: cannot write: No space left on device"):
        save_checkpoint(tmp_path / "rage.pt", torch.nn.Linear(2, 2), info)
    assert list(tmp_path.iterdir()) == []


def test_work_dir_is_removed_and_sweeps_folders_of_dead_runs_only(tmp_path: Path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from autotosis.core.fsutil import work_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    folders = {}
    for name, owner in (("dead", dead.stdout.strip()), ("alive", str(os.getpid())), ("unmarked", None)):
        folder = tmp_path / f"autotosis-test-{name}"
        folder.mkdir()
        if owner is not None:
            (folder / ".owner-pid").write_text(owner)
        folders[name] = folder
    with work_dir("autotosis-test-") as work:
        assert work.is_dir() and work.parent == tmp_path
        (work / "piece.mkv").write_bytes(b"x")
    assert not work.exists()
    assert not folders["dead"].exists()
    assert folders["alive"].exists() and folders["unmarked"].exists()
