"""media.py on tiny generated videos: probing, streaming decode, exact times, errors."""

from __future__ import annotations

import os
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from autotosis.core.errors import MediaError, ToolMissingError
from autotosis.media import decode, encode, probe, tools

pytestmark = pytest.mark.media


def test_probe_reports_size_duration_audio(video_factory):
    path = video_factory("a b'c é.mp4", duration=3, size="320x180", fps="30")
    info = probe.probe(path)
    assert (info.width, info.height) == (320, 180)
    assert abs(info.duration_ms - 3000) <= 50
    assert info.has_audio and info.fps == Fraction(30)


def test_probe_asks_ffprobe_once_per_file_until_the_file_changes(video_factory, monkeypatch):
    path = video_factory("once.mp4", duration=1, audio=False)
    other = video_factory("twice.mp4", duration=1)
    calls: list[Path] = []
    real = probe._ffprobe_json

    def counted(where, *args, **kwargs):
        calls.append(Path(where))
        return real(where, *args, **kwargs)

    monkeypatch.setattr(probe, "_ffprobe_json", counted)
    first = probe.probe(path)
    assert probe.probe(path) is first and probe.probe(other).has_audio
    assert calls.count(path) == 1 and calls.count(other) == 1
    # Replaced by another video (a re-render): probed again, and the new facts come back.
    other.replace(path)
    assert probe.probe(path).has_audio and calls.count(path) == 2
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    probe.probe(path)
    assert calls.count(path) == 3
    # Known, but the tools are gone: the same clear error as for a file never probed (before any output is made).
    monkeypatch.setenv("PATH", str(path.parent / "no-bin"))
    monkeypatch.delenv("AUTOTOSIS_FFPROBE", raising=False)
    with pytest.raises(ToolMissingError, match="ffprobe was not found"):
        probe.probe(path)


def test_probe_without_audio(video_factory):
    info = probe.probe(video_factory(audio=False))
    assert not info.has_audio


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"this is not a video at all\n" * 20, "is a text file, not a video"),
        (b"\x00\x01binary garbage\xff" * 20, "not a readable video"),
    ],
)
def test_probe_rejects_non_videos(tmp_path: Path, content: bytes, expected: str):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(content)
    with pytest.raises(MediaError, match=expected):
        probe.probe(fake)


def test_probe_missing_file(tmp_path: Path):
    with pytest.raises(MediaError, match="no such file"):
        probe.probe(tmp_path / "missing.mp4")


def test_iter_frames_times_and_shapes(video_factory):
    path = video_factory(duration=4, fps="25")
    batches = list(decode.iter_frames(path, decode.DecodeSpec(size=32, fps=2.0), batch_size=3))
    times = np.concatenate([b.times_ms for b in batches])
    assert times.tolist() == [0, 500, 1000, 1500, 2000, 2500, 3000, 3500]
    assert all(b.frames.shape[1:] == (32, 32, 3) and b.frames.dtype == np.uint8 for b in batches)


def test_crop_region_is_applied(tmp_path: Path, video_factory):
    # Left half red, right half blue: cropping the right half must give blue frames.
    path = video_factory(
        duration=2,
        size="200x100",
        source="color=c=red",
        extra_video_filters="drawbox=x=100:y=0:w=100:h=100:color=blue:t=fill",
    )
    (batch,) = list(decode.iter_frames(path, decode.DecodeSpec(size=16, fps=1.0, region=(0.5, 0.0, 1.0, 1.0))))
    mean = batch.frames.reshape(-1, 3).mean(axis=0)
    assert mean[2] > 200 and mean[0] < 50


def test_keyframes_only_returns_keyframe_times(video_factory):
    path = video_factory(duration=6, fps="25")  # -g 25: a keyframe every second
    times = np.concatenate(
        [b.times_ms for b in decode.iter_frames(path, decode.DecodeSpec(size=16, fps=None, keyframes_only=True))]
    )
    assert times.tolist() == [0, 1000, 2000, 3000, 4000, 5000]


def _decoded(batches) -> tuple[list[int], np.ndarray]:
    batches = list(batches)
    return np.concatenate([b.times_ms for b in batches]).tolist(), np.concatenate([b.frames for b in batches])


def _spy_on_iter_frames(monkeypatch) -> list[decode.DecodeSpec]:
    calls: list[decode.DecodeSpec] = []
    real = decode.iter_frames

    def spy(path, spec, **kwargs):
        calls.append(spec)
        return real(path, spec, **kwargs)

    monkeypatch.setattr(decode, "iter_frames", spy)
    return calls


def test_skipping_unreferenced_frames_keeps_the_sample_times_of_a_stream_with_b_frames(video_factory, monkeypatch):
    # A typical stream: moving picture, B-frames (x264 veryfast: 3 between references).
    path = video_factory(
        duration=6, fps="30", codec=["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p"]
    )
    spec = decode.DecodeSpec(size=32, fps=2.0, start_ms=1000, end_ms=5000)
    assert "noref" in decode._decode_argv(path, decode.replace(spec, skip="noref"), probe.probe(path))
    assert "noref" not in decode._decode_argv(path, spec, probe.probe(path))
    exact_times, exact = _decoded(decode.iter_frames(path, spec, batch_size=3))
    calls = _spy_on_iter_frames(monkeypatch)
    times, frames = _decoded(decode.iter_frames_skipping(path, spec, batch_size=3))
    assert times == exact_times == list(range(1000, 5000, 500))
    # The moving pattern never repeats a sample, so the skipping decoder ran alone, to the end.
    assert [c.skip for c in calls] == ["noref"]
    # Each sample is the exact one or a frame or two before it (x264's test pattern moves a little).
    assert np.abs(frames.astype(int) - exact.astype(int)).mean() < 10


def test_skipping_falls_back_to_every_frame_where_decoded_frames_are_a_step_apart(video_factory, monkeypatch):
    # 8 unreferenced B-frames between references at 4 fps: skipping them leaves a frame every 2.25 s,
    # so 2 samples/s would repeat pictures.  The repeat is seen and the rest decoded exactly.
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-g", "32", "-bf", "8", "-pix_fmt", "yuv420p"]
    path = video_factory(duration=8, fps="4", codec=codec + ["-x264-params", "b-adapt=0:b-pyramid=none"])
    spec = decode.DecodeSpec(size=32, fps=2.0)
    exact_times, exact = _decoded(decode.iter_frames(path, spec))
    calls = _spy_on_iter_frames(monkeypatch)
    times, frames = _decoded(decode.iter_frames_skipping(path, spec, batch_size=4))
    assert times == exact_times == list(range(0, 8000, 500))
    np.testing.assert_array_equal(frames, exact)
    assert [(c.skip, c.start_ms) for c in calls] == [("noref", None), (None, 500)]


def test_skipping_a_still_picture_costs_a_re_decode_never_a_wrong_sample(video_factory, monkeypatch):
    path = video_factory(duration=4, fps="25", source="color=c=gray", audio=False)
    spec = decode.DecodeSpec(size=16, fps=2.0, start_ms=1000)
    exact_times, exact = _decoded(decode.iter_frames(path, spec))
    calls = _spy_on_iter_frames(monkeypatch)
    times, frames = _decoded(decode.iter_frames_skipping(path, spec))
    assert times == exact_times and np.array_equal(frames, exact)
    assert [(c.skip, c.start_ms) for c in calls] == [("noref", 1000), (None, 1500)]


def test_skipping_every_b_frame_where_the_stream_allows_it(video_factory, monkeypatch):
    # x264 veryfast (one reference frame): no frame refers to a B-frame, so all of them can be left out.
    path = video_factory(
        duration=6, fps="30", codec=["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-pix_fmt", "yuv420p"]
    )
    spec = decode.DecodeSpec(size=32, fps=2.0, start_ms=1000, end_ms=5000)
    assert "bidir" in decode._decode_argv(path, decode.replace(spec, skip="bidir"), probe.probe(path))
    exact_times, exact = _decoded(decode.iter_frames(path, spec, batch_size=3))
    calls = _spy_on_iter_frames(monkeypatch)
    policy = decode.SkipPolicy()
    times, frames = _decoded(decode.iter_frames_skipping(path, spec, batch_size=3, policy=policy))
    assert times == exact_times
    assert [c.skip for c in calls] == ["bidir"] and policy.bidirectional
    assert np.abs(frames.astype(int) - exact.astype(int)).mean() < 12  # a few frames early at most


@pytest.mark.parametrize(
    "codec",
    [
        # Encoders that let other frames refer to B-frames: x265, and x264 from its slow preset on.
        ["-c:v", "libx265", "-preset", "medium", "-x265-params", "log-level=error", "-pix_fmt", "yuv420p"],
        ["-c:v", "libx264", "-threads", "1", "-preset", "slow", "-bf", "3", "-pix_fmt", "yuv420p"],
    ],
    ids=["x265", "x264-slow"],
)
def test_a_stream_whose_frames_refer_to_b_frames_falls_back_to_unreferenced_frames_only(
    video_factory, monkeypatch, codec
):
    path = video_factory(duration=6, fps="30", size="160x90", codec=codec)
    spec = decode.DecodeSpec(size=32, fps=2.0, start_ms=500, end_ms=5500)
    with pytest.raises(decode.ReferencesSkipped):
        list(decode.iter_frames(path, decode.replace(spec, skip="bidir")))
    exact_times, exact = _decoded(decode.iter_frames(path, spec))
    calls = _spy_on_iter_frames(monkeypatch)
    policy = decode.SkipPolicy()
    times, frames = _decoded(decode.iter_frames_skipping(path, spec, policy=policy))
    assert times == exact_times
    assert [c.skip for c in calls][:2] == ["bidir", "noref"]  # nothing from the first run was handed out
    assert not policy.bidirectional  # the rest of this video skips unreferenced frames only
    assert np.abs(frames.astype(int) - exact.astype(int)).mean() < 10
    calls.clear()
    _decoded(decode.iter_frames_skipping(path, spec, policy=policy))
    assert [c.skip for c in calls][:1] == ["noref"]


def test_a_stretch_too_long_to_hold_skips_unreferenced_frames_only(video_factory, monkeypatch):
    path = video_factory(duration=6, fps="30", codec=["-c:v", "libx264", "-preset", "veryfast", "-bf", "3"])
    calls = _spy_on_iter_frames(monkeypatch)
    policy = decode.SkipPolicy(max_held_ms=2000)
    _decoded(decode.iter_frames_skipping(path, decode.DecodeSpec(size=16, fps=2.0, end_ms=3000), policy=policy))
    assert [c.skip for c in calls] == ["noref"] and policy.bidirectional


def test_variable_frame_rate_times_come_from_timestamps(tmp_path: Path, video_factory):
    # Only every 5th frame survives in the first 2 s (a VFR file: 5 fps, then 25 fps), and the
    # picture turns blue at t=3 s. Times from a frame counter x nominal fps would put the
    # switch ~1.6 s late; presentation timestamps put it exactly at 3 s.
    path = video_factory(
        "vfr.mkv",
        duration=5,
        fps="25",
        source="color=c=red",
        extra_video_filters="drawbox=x=0:y=0:w=iw:h=ih:color=blue:t=fill:enable='gte(t,3)',select='gte(t,2)+not(mod(n,5))'",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "vfr"],
        audio=False,
    )
    info = probe.probe(path)
    batches = list(decode.iter_frames(path, decode.DecodeSpec(size=8, fps=4.0), info=info))
    times = np.concatenate([b.times_ms for b in batches])
    blue = np.concatenate([b.frames.reshape(len(b.frames), -1, 3).mean(axis=1)[:, 2] > 128 for b in batches])
    assert np.all(np.diff(times) == 250)
    assert times[blue].min() == 3000
    assert times[~blue].max() == 2750


def test_decoding_a_truncated_file_fails_cleanly(tmp_path: Path, video_factory):
    path = video_factory(duration=4)
    data = path.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError):
        info = probe.probe(broken)
        list(decode.iter_frames(broken, decode.DecodeSpec(size=16), info=info))


def test_escape_filter_value_round_trips_special_characters():
    value = "/tmp/a b/it's:[x],y;z\\w%{pts}"
    escaped = encode.escape_filter_value(value)
    # No unescaped graph separators may remain.
    for char in ",;[]":
        assert all(escaped[i - 1] == "\\" for i, c in enumerate(escaped) if c == char)


def test_cut_and_concat_keep_audio_and_video_in_sync(tmp_path: Path, video_factory):
    with_audio = probe.probe(video_factory("with audio.mp4", duration=5, size="320x180"))
    silent = probe.probe(video_factory("silent.mp4", duration=5, size="160x120", audio=False))
    spec = encode.EncodeSpec(width=320, height=180, fps=Fraction(25))
    text = tmp_path / "label's: [x];,%{pts}.txt"
    text.write_text("rage: 0.87 a:b'c,[d];%{pts}", encoding="utf-8")
    overlay = [encode.TextOverlay(text, 0, 500, "ff0000")]
    pieces = [tmp_path / "p1.mkv", tmp_path / "p2.mkv"]
    encode.cut_segment(with_audio, 1000, 1500, pieces[0], spec, overlay)
    encode.cut_segment(silent, 500, 2000, pieces[1], spec, overlay)
    reel = tmp_path / "reel.mp4"
    encode.concat_segments(pieces, reel)
    d = probe.stream_durations(reel)
    assert (d.width, d.height) == (320, 180)
    assert d.audio_ms is not None
    assert abs(d.video_ms - 3500) <= 100
    assert abs(d.audio_ms - d.video_ms) <= 100


# ----------------------------------------------------------------------------- stopping ffmpeg (issue 16)


def _ffmpegs_reading(text: str) -> list[int]:
    """Live ffmpeg processes (and wrapper shells) whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(text in arg for arg in argv):
            found.append(int(entry.name))
    return found


@pytest.fixture
def slow_source(tmp_path: Path, monkeypatch) -> Path:
    """A 400-s video and an ffmpeg that decodes it in real time (-re) behind a shell that does
    *not* exec it: killing only the shell's pid would leave ffmpeg running."""
    from tests import corpus

    video = tmp_path / "slow source.mp4"
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
    slow.write_text(f'#!/bin/sh\ncase "$*" in *-version*) exec "{real}" "$@";; esac\n"{real}" -re "$@"\n')
    slow.chmod(0o755)
    monkeypatch.setenv("AUTOTOSIS_FFMPEG", str(slow))
    return video


def _gone(video: Path, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _ffmpegs_reading(str(video)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _ffmpegs_reading(str(video))


def test_each_ffmpeg_runs_in_a_process_group_of_its_own(slow_source: Path):
    """A terminal's Ctrl-C goes to autotosis only; ffmpeg is stopped by us, as a whole group."""
    frames = decode.iter_frames(slow_source, decode.DecodeSpec(size=8, fps=2.0), batch_size=1)
    next(frames)
    (shell, *_) = sorted(_ffmpegs_reading(str(slow_source)))
    assert os.getpgid(shell) == shell != os.getpgrp()
    frames.close()
    assert _gone(slow_source), "ffmpeg (started by a wrapper shell) outlived the decode"


def test_a_stop_event_ends_a_stalled_decode_in_another_thread(slow_source: Path):
    """The reader notices `stop` between short waits: no registry, nobody kills from outside."""
    stop = threading.Event()
    seen: list[int] = []
    ended = threading.Event()

    def read() -> None:
        # fps 0.25 and 64 frames a batch: the first batch is 256 s of real-time decoding away.
        for batch in decode.iter_frames(slow_source, decode.DecodeSpec(size=8, fps=0.25), batch_size=64, stop=stop):
            seen.append(len(batch.times_ms))
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not _ffmpegs_reading(str(slow_source)) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    began = time.monotonic()
    stop.set()
    assert ended.wait(5), "the decode did not notice its stop event"
    assert time.monotonic() - began < 2 and seen == []
    assert _gone(slow_source), "ffmpeg outlived the stopped decode"


def test_ctrl_c_taken_by_another_thread_interrupts_a_decode_in_the_main_thread(slow_source: Path, sigint_not_ignored):
    """Issue 16: the kernel may deliver SIGINT to any thread; the main thread, blocked in one long
    pipe read, then never ran Python's handler until ffmpeg delivered (minutes).  Reads now wait
    in short slices, so the KeyboardInterrupt comes at once and ffmpeg's group is killed."""
    idle = threading.Event()
    helper = threading.Thread(target=idle.wait, args=(30,), daemon=True)
    helper.start()
    frames = decode.iter_frames(slow_source, decode.DecodeSpec(size=8, fps=0.25), batch_size=64)
    timer = threading.Timer(1.0, signal.pthread_kill, (helper.ident, signal.SIGINT))
    timer.start()
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            next(frames)
    finally:
        timer.cancel()
        idle.set()
    assert time.monotonic() - began < 5
    frames.close()
    assert _gone(slow_source), "ffmpeg outlived the interrupted decode"


def test_ctrl_c_taken_by_another_thread_interrupts_a_long_ffmpeg_run(slow_source: Path, sigint_not_ignored):
    """The same for cutting, joining, probing (run_ffmpeg and friends): they wait for ffmpeg in short
    slices, so Ctrl-C is not held back until a long encode ends, and the encode is killed."""
    idle = threading.Event()
    helper = threading.Thread(target=idle.wait, args=(30,), daemon=True)
    helper.start()
    timer = threading.Timer(1.0, signal.pthread_kill, (helper.ident, signal.SIGINT))
    timer.start()
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):  # 400 s of real-time decoding without the slices
            tools.run_ffmpeg(["-i", "file:" + str(slow_source), "-f", "null", "-"], what="reading")
    finally:
        timer.cancel()
        idle.set()
    assert time.monotonic() - began < 5
    assert _gone(slow_source), "ffmpeg outlived the interrupted run"


def test_the_recording_is_chosen_among_video_streams():
    # ffprobe's video stream entries in file order -> which one is the recording (ffmpeg's v:N).
    from autotosis.media.probe import _picture_stream

    def stream(codec: str, **disposition: int) -> dict:
        return {"codec_type": "video", "codec_name": codec, "disposition": disposition}

    assert _picture_stream([stream("h264")]) == 0
    assert _picture_stream([stream("png"), stream("h264")]) == 1  # a cover picture stored before the recording
    assert _picture_stream([stream("mjpeg", attached_pic=1), stream("hevc")]) == 1
    assert _picture_stream([stream("h264", still_image=1), stream("vp9")]) == 1
    assert _picture_stream([stream("mjpeg")]) == 0  # a webcam's MJPEG recording is a video
    assert _picture_stream([stream("png", attached_pic=1), stream("mjpeg")]) == 1
    assert _picture_stream([stream("png", attached_pic=1)]) is None  # sound with cover art: no video
    assert _picture_stream([]) is None
