"""The CLI's light paths stay light: `--help` and `labels check` never import torch.

Each command-group module imports only light modules at the top and the heavy ones (torch,
torchvision, onnxruntime, ray) inside its handlers, so asking for help or checking a label file
starts in a fraction of a second. Run in a fresh interpreter: this test process has torch loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import contextlib, io, sys
from autotosis.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        status = main({argv!r})
    except SystemExit as exc:
        status = exc.code
heavy = sorted(name for name in ("torch", "torchvision", "onnxruntime", "ray") if name in sys.modules)
print(status, ",".join(heavy) or "-", len(out.getvalue()))
"""


def _run(argv: list[str]) -> tuple[int, str, int]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    status, heavy, printed = proc.stdout.split()
    return int(status), heavy, int(printed)


@pytest.mark.parametrize("argv", [["--help"], ["labels", "--help"], ["train", "--help"], ["scan", "--help"]])
def test_help_does_not_import_torch(argv):
    status, heavy, printed = _run(argv)
    assert status == 0 and printed > 0
    assert heavy == "-", f"autotosis {' '.join(argv)} imported {heavy}"


def test_labels_check_does_not_import_torch(tmp_path):
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"")  # probing it fails (exit 4): the point is what got imported on the way
    labels = tmp_path / "rage.txt"
    labels.write_text("a.mp4  1-2\n", encoding="utf-8")
    for extra in ([], ["--no-probe"]):
        status, heavy, _ = _run(["labels", "check", str(labels), *extra])
        assert heavy == "-", f"labels check {extra} imported {heavy}"
    status, heavy, _ = _run(["labels", "check", str(ROOT / "labels" / "template.txt"), "--no-probe"])
    assert heavy == "-"


@pytest.mark.parametrize(
    "command, argv",
    [("batch", ["vods", "--model", "m.pt"]), ("demo", []), ("frames", ["labels.txt"])],
)
def test_every_command_that_writes_a_folder_takes_o_like_the_others(command, argv):
    # -o/--output names the output everywhere; these three once took only --out, and a user typing -o got a usage error.
    from autotosis.cli.parser import build_parser

    parser = build_parser()[1][command]
    for flag in ("-o", "--out", "--output"):
        assert parser.parse_args([*argv, flag, "out dir"]).out == "out dir"
