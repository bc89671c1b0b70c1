"""Shared fixtures: tiny videos generated with ffmpeg lavfi inside tmp_path."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")


@pytest.fixture(autouse=True, scope="session")
def own_cache(tmp_path_factory):
    """Scores and model exports of the whole run in a folder of its own, never in the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOTOSIS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def sigint_not_ignored():
    """Ctrl-C (SIGINT) raises KeyboardInterrupt during the test, and a child started in it gets the default SIGINT.

    A suite started as a background job of a shell without job control (``cmd &`` in a script, nohup) inherits an
    *ignored* SIGINT, which Python keeps and a child inherits in turn (POSIX); the Ctrl-C tests would then see
    nothing happen.  A caught signal is reset to the default by exec, so children start with the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_video(
    path: Path,
    *,
    duration: float = 4.0,
    size: str = "160x90",
    fps: str = "25",
    audio: bool = True,
    source: str = "testsrc2",
    extra_video_filters: str = "",
    codec: list[str] | None = None,
) -> Path:
    """Write a small test video with ffmpeg's lavfi sources (argv list, no shell)."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    sep = ":" if "=" in source else "="
    video_src = f"{source}{sep}s={size}:r={fps}:d={duration}"
    if extra_video_filters:
        video_src += f",{extra_video_filters}"
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video_src]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=f=440:r=48000:d={duration}"]
    argv += codec or ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["file:" + str(path)]
    subprocess.run(argv, check=True)
    return path


@pytest.fixture
def video_factory(tmp_path: Path):
    def factory(name: str = "clip.mp4", **kwargs) -> Path:
        return make_video(tmp_path / name, **kwargs)

    return factory


def flash_clip(
    path: Path, duration: float, spans, *, audio: bool = False, size: str = "96x54", fps: str = "10"
) -> Path:
    """A moving test pattern whose top-right corner turns solid red during ``spans`` (seconds)."""
    boxes = ",".join(
        f"drawbox=x=iw*0.75:y=0:w=iw*0.25:h=ih*0.3:color=red:t=fill:enable='between(t,{s},{e})'" for s, e in spans
    )
    return make_video(path, duration=duration, size=size, fps=fps, audio=audio, extra_video_filters=boxes or "null")


def constant_model(path: Path, rage_logit: float, crop=None) -> Path:
    """A 'rage' checkpoint whose every answer is the same (zero convolutions, a fixed head bias)."""
    import torch

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    model = build_model(2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.fc.bias.copy_(torch.tensor([0.0, rage_logit]))
    info = ModelInfo(
        task="rage",
        classes=("background", "rage"),
        input_size=32,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=crop,
        threshold=0.5,
    )
    save_checkpoint(path, model, info)
    return path
