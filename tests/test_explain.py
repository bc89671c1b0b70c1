"""Grad-CAM and the border-shortcut audit, checked against a model whose answer is known.

The hand-built red detector (see test_stills.red_detector) carries a redness map unchanged
to layer4 and scores its mean, so its Grad-CAM must be exactly that map (scaled), and it
"relies on the border" exactly when the red is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.model.model import load_checkpoint, predict_probs
from autotosis.training.explain import audit_frames, border_mask, border_share, grad_cam, masks, reference_shares
from tests.conftest import make_video
from tests.test_stills import red_detector

pytestmark = [pytest.mark.torch]

S = 128  # layer4 is 4x4 here; at 64 it would be 2x2, every cell on the border
RED = (230, 20, 20)
GAIN = 40.0


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    return red_detector(tmp_path_factory.mktemp("model") / "red.pt", size=S, gain=GAIN)


def frames_with(*boxes: tuple[slice, slice]) -> np.ndarray:
    """One grey frame per box, red inside the box."""
    frames = np.full((len(boxes), S, S, 3), 110, dtype=np.uint8)
    for frame, (rows, cols) in zip(frames, boxes):
        frame[rows, cols] = RED
    return frames


def test_grad_cam_is_the_weighted_layer4_map(detector: Path):
    model, info, _ = load_checkpoint(detector)
    frames = frames_with((slice(0, 13), slice(None)), (slice(40, 88), slice(40, 88)), (slice(0, 40), slice(0, 40)))
    cams, probs, grid = grad_cam(model, frames, info, target=1)
    assert grid == 4 and cams.shape == (3, S, S)
    assert np.allclose(probs, predict_probs(model, frames, info), atol=1e-6)
    # By hand: the class score is GAIN * mean(A0) + const, so its gradient is GAIN / 16 on channel 0
    # and 0 elsewhere, and Grad-CAM = relu(GAIN / 16 * A0), upsampled.
    captured = []
    hook = model.layer4.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    with torch.no_grad():
        predict_probs(model, frames, info)
    hook.remove()
    expected = torch.relu(GAIN / grid**2 * captured[0][:, :1].float())
    expected = torch.nn.functional.interpolate(expected, size=(S, S), mode="bilinear", align_corners=False)[
        :, 0
    ].numpy()
    assert np.allclose(cams, expected, rtol=1e-4, atol=1e-6)
    # ... which puts the heat where the red is.
    assert np.unravel_index(cams[1].argmax(), cams[1].shape) in {(r, c) for r in range(40, 88) for c in range(40, 88)}
    row, col = np.unravel_index(cams[2].argmax(), cams[2].shape)
    assert row < 48 and col < 48


def test_border_share_separates_border_from_centre(detector: Path):
    model, info, _ = load_checkpoint(detector)
    band = int(0.1 * S)
    frames = frames_with(
        (slice(0, band), slice(None)),  # a bar along the top edge, like a letterbox
        (slice(44, 84), slice(44, 84)),  # a square in the middle
    )
    frames[0, -band:] = RED  # and the bottom bar
    cams, _, grid = grad_cam(model, frames, info, target=1)
    shares = border_share(cams)
    even, edge = reference_shares(grid, S)
    assert shares[0] > even > shares[1]
    assert shares[0] > 0.4 and shares[1] < 0.2
    assert even == pytest.approx(border_mask(S).mean(), abs=0.01) and edge > even + 0.1
    # Occlusion says the same: the bars carry the whole score.
    measured = audit_frames(model, info, frames)
    assert measured["score"][0] > 0.5 and measured["border_masked"][0] < 0.05 and measured["centre_masked"][0] > 0.5
    assert measured["score"][1] > 0.5 and measured["border_masked"][1] > 0.5 and measured["centre_masked"][1] < 0.05


def test_masks_have_equal_area():
    band, centre = masks(200, 0.1)
    assert band.mean() == pytest.approx(0.36)
    assert centre.mean() == pytest.approx(band.mean(), abs=0.01)
    assert not (band & centre).any()


def test_explain_image_writes_a_heatmap_over_the_picture(detector: Path, tmp_path: Path, capsys):
    picture = np.full((180, 320, 3), 110, dtype=np.uint8)
    picture[20:110, 180:310] = RED  # top right
    source = tmp_path / "frame é.png"
    Image.fromarray(picture).save(source)
    out = tmp_path / "why.png"
    assert run(["explain", "--model", str(detector), str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert float(printed.split()[1].rstrip(";")) > 0.8 and "of the heat on the outer 10% border" in printed
    with Image.open(out) as image:
        assert image.size == (320, 180)
        heat = np.abs(np.asarray(image.convert("RGB")).astype(int) - picture).sum(axis=2)
    # The overlay changes the picture around the red box, not in the far corner.
    assert heat[40:90, 200:290].mean() > 3 * heat[130:180, 0:100].mean()
    # Not overwritten without --force.
    before = out.read_bytes()
    assert run(["explain", "--model", str(detector), str(source), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    assert out.read_bytes() == before


@pytest.mark.media
def test_explain_video_at_a_time(detector: Path, tmp_path: Path, capsys):
    video = make_video(
        tmp_path / "clip.mp4",
        duration=4,
        size="192x108",
        audio=False,
        source="color=c=gray",
        extra_video_filters="drawbox=x=40:y=20:w=100:h=70:color=red:t=fill:enable='between(t,2,3)'",
    )
    assert run(["explain", "--model", str(detector), str(video), "--at", "2.5", "-o", str(tmp_path / "in.png")]) == 0
    assert (
        run(["explain", "--model", str(detector), str(video), "--at", "0:00.5", "-o", str(tmp_path / "out.png")]) == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("red: ")]
    inside, outside = (float(line.split()[1].rstrip(";")) for line in lines)
    assert inside > 0.9 and outside < 0.1
    assert run(["explain", "--model", str(detector), str(video)]) == ExitStatus.USAGE
    assert "needs --at" in capsys.readouterr().err
    assert run(["explain", "--model", str(detector), str(video), "--at", "9"]) == ExitStatus.USAGE
    assert run(["explain", "--model", str(detector)]) == ExitStatus.USAGE


def _label_project(root: Path, where: str) -> Path:
    """Four clips whose highlights (1-3 s) show red only on the border (bars), or only in the centre."""
    box = (
        (
            "drawbox=x=0:y=0:w=iw:h=ih*0.1:color=red:t=fill:enable='between(t,1,3)',"
            "drawbox=x=0:y=ih*0.9:w=iw:h=ih*0.1:color=red:t=fill:enable='between(t,1,3)'"
        )
        if where == "border"
        else "drawbox=x=iw*0.35:y=ih*0.35:w=iw*0.3:h=ih*0.3:color=red:t=fill:enable='between(t,1,3)'"
    )
    root.mkdir(parents=True)
    lines = []
    for i in range(4):
        make_video(
            root / f"c{i}.mp4",
            duration=4,
            size="160x160",
            fps="10",
            audio=False,
            source=f"color=c=0x{60 + 30 * i:02x}{70 + 20 * i:02x}{80 + 10 * i:02x}",
            extra_video_filters=box,
        )
        lines.append(f"c{i}.mp4  1-3")
    labels = root / "red.txt"
    labels.write_text("\n".join(lines) + "\n")
    return labels


@pytest.mark.media
def test_audit_warns_about_a_border_shortcut_only(detector: Path, tmp_path: Path, capsys):
    border = _label_project(tmp_path / "bars", "border")
    centre = _label_project(tmp_path / "middle", "centre")
    assert run(["explain", "--model", str(detector), "--audit", str(border), "--fps", "2"]) == 0
    out = capsys.readouterr().out
    assert "warning: a border shortcut is likely" in out
    assert "greying out the border lowers the score" in out
    assert run(["explain", "--model", str(detector), "--audit", str(centre), "--fps", "2"]) == 0
    out = capsys.readouterr().out
    assert "no sign of a border shortcut" in out and "warning" not in out
    assert "validation frames labelled 'red'" in out


@pytest.mark.media
def test_audit_measures_validation_frames_only(detector: Path, tmp_path: Path):
    from autotosis.training.explain import audit_labels

    model, info, _ = load_checkpoint(detector)
    labels = _label_project(tmp_path / "bars", "border")
    result = audit_labels(model, info, labels, fps=2.0)
    # Four clips, val_fraction 0.25 (the training default): one clip, its highlight frames
    # (1.5-2.5 s at 2 fps, band 0.5 s).
    assert len(result.val_clips) == 1 and result.frames == 3
    assert result.shortcut_likely and result.border_drop > 0.5 and abs(result.centre_drop) < 0.1
    assert not result.validated_on_training


@pytest.mark.media
def test_audit_and_eval_refuse_labels_of_another_task_alike(detector: Path, tmp_path: Path, capsys):
    """Issue 16: the audit said exit 2 (usage) where `eval` says exit 5 (model) for the same mismatch;
    both now go through labels.match_model_classes, one ModelError, one message."""
    make_video(tmp_path / "c.mp4", duration=1, size="64x64", fps="10", audio=False)
    labels = tmp_path / "blue.txt"
    labels.write_text("# task=blue\nc.mp4  0.2-0.6\n")
    lines = []
    for argv in (
        ["explain", "--model", str(detector), "--audit", str(labels)],
        ["eval", str(labels), "--model", str(detector)],
    ):
        assert run(argv) == ExitStatus.MODEL
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        lines.append(err.strip())
    assert lines[0] == lines[1]
    assert lines[0].startswith(
        f"autotosis: error: {detector} knows the classes background, red, but {labels} has "
        "background, blue ('# task=blue')"
    )
    assert not (tmp_path / ".autotosis").exists()  # refused before any frame was extracted
