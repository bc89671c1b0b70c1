"""Live detection: trigger logic, source kinds, and a generated file played at real time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus, MediaError, UsageError
from autotosis.media import decode, live, probe
from autotosis.workflows.live import Trigger
from tests.conftest import make_video
from tests.test_stills import red_detector


def fired(trigger: Trigger, scores: list[float], step_ms: int = 250) -> list[int]:
    return [i * step_ms for i, s in enumerate(scores) if trigger.update(i * step_ms, s)[1]]


def test_trigger_fires_once_per_appearance_after_the_window_fills():
    trigger = Trigger(threshold=0.85, release=0.85, cooldown_ms=1000, window_ms=500)
    # Rolling mean over 500 ms = the last two scores at 4 per second.
    assert fired(trigger, [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]) == [750, 3000]


def test_trigger_cooldown_and_hysteresis():
    flicker = Trigger(threshold=0.85, release=0.85, cooldown_ms=1000, window_ms=1)
    assert fired(flicker, [1, 0, 1, 0, 1, 0, 1, 0, 1]) == [0, 1000, 2000]
    sticky = Trigger(threshold=0.85, release=0.5, cooldown_ms=0, window_ms=1)
    assert fired(sticky, [0.9, 0.7, 0.9, 0.4, 0.9]) == [0, 1000]
    with pytest.raises(UsageError):
        Trigger(threshold=0.5, release=0.6, cooldown_ms=0, window_ms=1)


def test_live_sources_are_recognised(tmp_path: Path):
    clip = tmp_path / "a b.mp4"
    clip.write_bytes(b"x")
    assert live.live_source("/dev/video0").kind == "v4l2"
    assert live.live_source(":0.0+10,20").kind == "x11grab"
    assert live.live_source("x11grab::1").target == ":1"
    assert live.live_source("rtmp://example.org/live/key").kind == "url"
    assert live.live_source(str(clip)) == live.LiveSource(str(clip), "file", True, None)
    with pytest.raises(MediaError):
        live.live_source(str(tmp_path / "missing.mp4"))
    args = live._live_input_args
    assert args(live.live_source("/dev/video2")) == ["-f", "v4l2", "-i", "/dev/video2"]
    assert args(live.live_source(":0.0")) == ["-f", "x11grab", "-framerate", "30", "-i", ":0.0"]
    assert args(live.live_source(str(clip)))[:2] == ["-re", "-i"]
    assert "-re" not in args(live.live_source(str(clip), realtime=False))


def _red_fraction(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batches = list(decode.iter_frames(path, decode.DecodeSpec(size=16, fps=None)))
    times = np.concatenate([b.times_ms for b in batches])
    frames = np.concatenate([b.frames for b in batches]).astype(int)
    return times, (frames[..., 0].mean(axis=(1, 2)) - frames[..., 1].mean(axis=(1, 2))) > 30


@pytest.mark.media
@pytest.mark.torch
@pytest.mark.slow
def test_live_file_at_real_time_fires_events_and_saves_replays(tmp_path: Path, capsys):
    # 8 s at real time; something red on screen during 2-4 s and 5.5-7 s.
    source = make_video(
        tmp_path / "stream é.mp4",
        duration=8,
        size="256x144",
        fps="25",
        source="color=c=gray",
        extra_video_filters="drawbox=x=50:y=30:w=160:h=90:color=red:t=fill:enable='between(t,2,4)+between(t,5.5,7)'",
    )
    model = red_detector(tmp_path / "red.pt")
    replays = tmp_path / "replays"
    argv = [
        "--progress",
        "none",
        "live",
        "--model",
        str(model),
        "--input",
        str(source),
        "--threshold",
        "0.85",
        "--cooldown",
        "1",
        "--window",
        "0.5",
        "--fps",
        "4",
        "--replay-dir",
        str(replays),
        "--before",
        "1.5",
        "--after",
        "1",
    ]
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    triggers = [r for r in records if r["event"] == "trigger"]
    # An event fires within the rolling window (0.5 s) of the red appearing, once per appearance.
    assert len(triggers) == 2
    for trigger, onset in zip(triggers, (2.0, 5.5)):
        assert onset <= trigger["time_s"] <= onset + 0.5 and trigger["score"] >= 0.85
    saved = [r for r in records if r["event"] == "replay"]
    assert len(saved) == 2
    assert records[-1]["events"] == 2 and records[-1]["replays"] == 2
    for replay, trigger, onset in zip(saved, triggers, (2.0, 5.5)):
        assert replay["start_s"] == pytest.approx(trigger["time_s"] - 1.5)
        assert replay["end_s"] == pytest.approx(trigger["time_s"] + 1.0)
        path = Path(replay["path"])
        assert path.parent == replays and path.name.startswith("stream é_0h00m0")
        durations = probe.stream_durations(path)
        assert abs(durations.video_ms - 2500) <= 40  # 1.5 s before + 1 s after, to the frame
        assert durations.audio_ms is not None and abs(durations.audio_ms - 2500) <= 50
        times, red = _red_fraction(path)
        # The red appears where it should inside the clip: at onset - (trigger - before).
        expected_ms = (onset - replay["start_s"]) * 1000
        assert abs(times[red][0] - expected_ms) <= 45
    # A second run would overwrite these replays: refused before anything starts.
    assert main(argv) == ExitStatus.OUTPUT_EXISTS
    assert sorted(p.name for p in replays.iterdir()) == sorted(Path(r["path"]).name for r in saved)


@pytest.mark.parametrize("command", ["live", "explain", "stills", "export-onnx"])
def test_new_commands_have_help(command: str, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: autotosis {command}") and "Example" in out


@pytest.mark.media
@pytest.mark.torch
@pytest.mark.slow
def test_live_replays_mix_every_audio_track_unless_one_is_chosen(tmp_path: Path, capsys):
    """Issue 16: a live file source with a silent first track (the microphone) and the game on the
    second made mute replays; now the ring mixes both, and --audio-track N keeps one."""
    from tests import corpus

    source = corpus.two_audio_tracks(tmp_path / "obs.mp4", duration=3.0)
    model = red_detector(tmp_path / "red.pt")
    volumes = {}
    for track in (None, "1"):
        replays = tmp_path / f"replays_{track}"
        # Threshold 0: the first full window fires, so each run saves one replay of [0.5 s, 2 s).
        argv = [
            "--progress",
            "none",
            "live",
            "--model",
            str(model),
            "--input",
            str(source),
            "--threshold",
            "0",
            "--window",
            "0.5",
            "--fps",
            "4",
            "--replay-dir",
            str(replays),
            "--before",
            "0.25",
            "--after",
            "1.25",
            "--cooldown",
            "60",
            *(["--audio-track", track] if track else []),
        ]
        assert main(argv) == 0
        (replay,) = replays.glob("*.mp4")
        volumes[track] = corpus.volume_db(replay)[0]
    assert volumes[None] > -30 and volumes["1"] < -80
    capsys.readouterr()
    argv = [
        "--progress",
        "none",
        "live",
        "--model",
        str(model),
        "--input",
        str(source),
        "--replay-dir",
        str(tmp_path / "bad"),
        "--audio-track",
        "3",
    ]
    assert main(argv) == ExitStatus.USAGE
    assert f"--audio-track 3: {source} has 2 audio tracks" in capsys.readouterr().err


def test_live_refuses_a_text_file(tmp_path: Path, capsys):
    from tests import corpus

    notes = corpus.text_file(tmp_path / "notes.txt")
    assert (
        main(["--progress", "none", "live", "--model", str(red_detector(tmp_path / "red.pt")), "--input", str(notes)])
        == ExitStatus.MEDIA
    )
    err = capsys.readouterr().err.strip()
    assert (
        err == f"autotosis: error: {notes}: is a text file, not a video (was it the label file? give the video itself)"
    )


def test_replays_of_another_source_whose_name_starts_alike_do_not_block(tmp_path: Path):
    """vod_from40.mp4's replays are not vod.mp4's: only vod.mp4's own replay names refuse the folder."""
    from autotosis.core.errors import OutputExistsError
    from autotosis.workflows.live import check_replay_dir, replay_name

    (tmp_path / replay_name("vod_from40", 12_000, 0.91)).write_bytes(b"x")
    check_replay_dir(tmp_path, "vod", force=False)  # nothing of vod's would be overwritten
    (tmp_path / replay_name("vod", 12_000, 0.91)).write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        check_replay_dir(tmp_path, "vod", force=False)
    check_replay_dir(tmp_path, "vod", force=True)
