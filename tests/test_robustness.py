"""Bad and awkward input through the CLI: every case of tests/corpus.py has its asserted outcome.

Either the input is handled correctly (times from timestamps, rotation applied, silence
added, ...) or the command fails with one line naming the file and the cause, a documented
exit status, and nothing left behind: no output and no ``*.part*`` temp file.  The table
of cases is docs/robustness.md.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.media import decode, encode, probe
from tests import corpus

pytestmark = [pytest.mark.media]

# Unusable inputs: the cause each error must name.
BROKEN = {
    "zero_byte": "file is empty",
    "text_named_mp4": "is a text file, not a video",
    "text_file": "is a text file, not a video",
    "still_image": "is a still image, not a video",
    "truncated": "not a readable video",
    "truncated_faststart": "the file ends early",
    "audio_only": "has no video stream",
}

# Usable inputs: (displayed width, height) the reel gets by default (even numbers, square pixels).
READABLE = {
    "video_only": (96, 54),
    "vfr": (64, 36),
    "rotated": (54, 96),
    "odd_size": (852, 480),
    "anamorphic": (128, 72),
    "tiny": (16, 16),
    "uhd": (320, 180),  # rendered with --size 320x180: a 4K encode is not what this test is about
    "ten_bit": (96, 54),
    "yuv444": (96, 54),
    "vp9_webm": (96, 54),
    "mpeg4_avi": (96, 54),
    "timestamp_gap": (64, 36),
    "offset_start": (64, 36),
    "nasty_name": (96, 54),
    "two_audio_tracks": (96, 54),
    "cover_first": (96, 54),  # the recording, not the 120x90 cover picture before it
    "sound_outlasts_picture": (96, 54),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus") / "in put é"
    made = {name: corpus.make(name, folder) for name in corpus.GENERATORS}
    made["a"] = corpus.normal(folder / "a.mp4")
    return made


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """An untrained 32-pixel checkpoint: enough to scan, cheap to run."""
    import torch

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(
        path, build_model(2), ModelInfo("rage", ("background", "rage"), 32, DEFAULT_MEAN, DEFAULT_STD, None, 0.5)
    )
    return path


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def quoted(path: Path) -> str:
    """A clip path as a label file writes it: double quotes, with \\ and " escaped."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def label_file(folder: Path, line: str, name: str = "rage.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(line + "\n", encoding="utf-8")
    return path


def events_file(folder: Path, video: Path, spans: list[tuple[int, int]], label: str = "rage") -> Path:
    from autotosis.detect.segments import Event, EventList, EventParams, write_events

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "v.events.json"
    events = tuple(Event(s, e, label, 0.9, 0.8, s) for s, e in spans)
    write_events(EventList(video, spans[-1][1], label, EventParams(), events), path, force=True)
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def nothing_left(folder: Path, *keep: Path) -> None:
    left = [p for p in folder.rglob("*") if p.is_file() and p not in keep]
    assert not left, left


def shard(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames and times of the single clip extracted into ``folder``."""
    manifest = json.loads((folder / "manifest.json").read_text())
    (clip,) = manifest["clips"]
    meta = json.loads((folder / clip["frames"].replace(".npy", ".json")).read_text())
    return np.load(folder / clip["frames"]), np.asarray(meta["times_ms"])


# ----------------------------------------------------------------------------- unusable videos


@pytest.mark.torch
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unusable_video_fails_scan_with_one_line_and_no_output(case, files, model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    video = files[case]
    out = tmp_path / "out" / "scores.json"
    assert run(["scan", str(video), "--model", str(model), "-o", str(out)]) == ExitStatus.MEDIA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {video}: ") and BROKEN[case] in line
    # No scores, cached or written; the model's ONNX export (made where the file got past the probe) is the
    # model's, not this video's: the next scan uses it.
    nothing_left(tmp_path, *(tmp_path / "cache" / "models").glob("*.onnx"))


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unusable_video_fails_frames_with_file_line_col(case, files, tmp_path, capsys):
    video = files[case]
    labels = label_file(tmp_path / "labels", f"{quoted(video)}  0.2-0.8")
    out = tmp_path / "frames"
    code = run(["frames", str(labels), "--out", str(out)])
    line = one_error_line(capsys.readouterr().err)
    if case == "truncated_faststart":  # readable header: found while decoding
        assert code == ExitStatus.MEDIA
        assert line.startswith(f"autotosis: error: {video}: the file ends early")
    else:  # found by probing, before anything is written: located in the label file
        assert code == ExitStatus.LABELS
        assert line.startswith(f"autotosis: {labels}:1:1: clip ") and BROKEN[case] in line
    nothing_left(tmp_path, labels)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unusable_video_fails_render_with_one_line_and_no_reel(case, files, tmp_path, capsys):
    video = files[case]
    # For the truncated file the event lies past the readable part.
    events = events_file(tmp_path / "ev", video, [(1600, 2800)])
    out = tmp_path / "out" / "reel.mp4"
    assert run(["render", str(video), str(events), "-o", str(out)]) == ExitStatus.MEDIA
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"autotosis: error: {video}: ")
    assert ("ends early" if case == "truncated_faststart" else BROKEN[case]) in line
    nothing_left(tmp_path, events)


@pytest.mark.torch
@pytest.mark.parametrize("command", ["scan", "reel"])
def test_a_text_file_is_not_taken_for_a_video(command, files, model, tmp_path, capsys, monkeypatch):
    """Issue 16: `scan README.md` scored 1 frame and `reel notes.txt` rendered a video of the text
    (ffmpeg's tty demuxer).  Now: exit 4, one line naming the file, nothing written."""
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    text = files["text_file"]
    assert _ffprobe_format(text) == "tty"  # ffmpeg by itself reads it as a video
    out = tmp_path / "out" / ("scores.json" if command == "scan" else "reel.mp4")
    extra = [] if command == "scan" else ["--threshold", "0", "--min-length", "0"]
    assert run([command, str(text), "--model", str(model), "-o", str(out), *extra]) == ExitStatus.MEDIA
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"autotosis: error: {text}: is a text file, not a video (was it the label file? give the video itself)"
    )
    nothing_left(tmp_path)


def _ffprobe_format(path: Path) -> str:
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of", "csv=p=0", "file:" + str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


# ----------------------------------------------------------------------------- usable videos


@pytest.mark.parametrize("case", sorted(READABLE))
def test_readable_video_gives_frames_and_a_reel(case, files, tmp_path, capsys):
    video = files[case]
    info = probe.probe(video)

    labels = label_file(tmp_path / "labels", f"{quoted(video)}  0.5-1.5")
    frames_dir = tmp_path / "frames"
    assert run(["frames", str(labels), "--out", str(frames_dir), "--fps", "2", "--size", "16"]) == 0
    pictures, times = shard(frames_dir)
    assert pictures.shape == (len(times), 16, 16, 3)
    # Sample times are the 2 fps grid, relative to the start of the file, covering all of it.
    assert np.all(times % 500 == 0) and np.all(np.diff(times) == 500)
    assert times[0] <= 500 and info.duration_ms - 1000 <= times[-1] < info.duration_ms

    events = events_file(tmp_path / "ev", video, [(500, 1500)])
    reel = tmp_path / "out" / "reel.mp4"
    size = ["--size", "320x180"] if case == "uhd" else []
    assert run(["render", str(video), str(events), "-o", str(reel), *size]) == 0
    d = probe.stream_durations(reel)
    assert (d.width, d.height) == READABLE[case] and d.sar == 1
    assert abs(d.video_ms - (min(1500, info.duration_ms) - 500)) <= 100  # an event past the end is cut at the end
    assert d.audio_ms is not None and abs(d.audio_ms - d.video_ms) <= 100  # silence added where there is no audio
    assert not list(reel.parent.glob("*.part*"))
    capsys.readouterr()


# ----------------------------------------------------------------------------- several audio tracks (issue 16)


def _render_volume(video: Path, events: Path, out: Path, *track: str) -> float:
    assert run(["render", str(video), str(events), "-o", str(out), *(["--audio-track", *track] if track else [])]) == 0
    return corpus.volume_db(out)[0]


def test_a_reel_mixes_every_audio_track_at_its_own_level(files, tmp_path, capsys):
    """An OBS-style recording: track 1 (the microphone) silent, track 2 the game.  Before issue 16 the
    reel kept track 1 only: mute.  Now the tracks are mixed by default, levels unchanged."""
    video = files["two_audio_tracks"]
    assert probe.probe(video).audio_tracks == 2 and corpus.volume_db(video, 0)[0] < -80
    events = events_file(tmp_path / "ev", video, [(500, 2500)])
    mixed = _render_volume(video, events, tmp_path / "mixed.mp4")
    first = _render_volume(video, events, tmp_path / "first.mp4", "1")  # numbered from 1
    second = _render_volume(video, events, tmp_path / "second.mp4", "2")
    assert first < -80 and mixed > -30
    assert abs(mixed - second) < 0.5  # normalize=0: mixing in a silent track does not halve the game's sound
    assert abs(_render_volume(video, events, tmp_path / "mix.mp4", "mix") - mixed) < 0.1
    capsys.readouterr()


def test_loud_tracks_are_mixed_without_clipping(tmp_path, capsys):
    video = corpus.two_audio_tracks(tmp_path / "loud.mp4", first="loud")  # peaks near full scale on both tracks
    events = events_file(tmp_path / "ev", video, [(500, 2500)])
    reel = tmp_path / "reel.mp4"
    mixed = _render_volume(video, events, reel)
    mean, peak = corpus.volume_db(reel)
    assert peak < -0.1  # the limiter holds the sum under full scale (a plain sum clips at 0.0 dB)
    assert mixed > max(_render_volume(video, events, tmp_path / f"t{t}.mp4", t) for t in ("1", "2"))
    capsys.readouterr()


@pytest.mark.torch
def test_reel_has_the_sound_of_every_track_and_refuses_a_track_it_lacks(files, tmp_path, capsys, monkeypatch):
    from tests.conftest import constant_model

    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    video = files["two_audio_tracks"]
    model = constant_model(tmp_path / "always.pt", 5.0)
    reel = tmp_path / "reel.mp4"
    args = ["reel", str(video), "--model", str(model), "--threshold", "0.5", "--min-length", "0"]
    assert run([*args, "-o", str(reel)]) == 0
    assert corpus.volume_db(reel)[0] > -30
    capsys.readouterr()
    bad = tmp_path / "bad.mp4"
    assert run([*args, "-o", str(bad), "--audio-track", "3"]) == ExitStatus.USAGE
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"autotosis: error: --audio-track 3: {video} has 2 audio tracks (audio tracks are numbered "
        "from 1 in the file's order; 'mix' (the default) mixes them all)"
    )
    assert not bad.exists()
    assert run([*args, "-o", str(bad), "--audio-track", "0"]) == ExitStatus.USAGE  # argparse: numbered from 1
    assert "audio tracks are numbered from 1" in capsys.readouterr().err


def test_a_vfr_reel_keeps_the_nominal_frame_rate_and_its_sound_on_the_picture(tmp_path, capsys):
    """Issue 16, item 6: a 23.976 fps recording that dropped two frames in three for its first half
    has an *average* of 16 fps; the reel was made at 16 fps (stuttering).  It keeps 24000/1001
    now, and its sound stays within one frame of the picture, title card included."""
    video = tmp_path / "vfr 23.976.mp4"
    corpus.ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=64x36:r=24000/1001:d=8",
        *corpus._lavfi_audio(8.0),
        "-vf",
        "select='gte(t,4)+not(mod(n,3))'",
        *corpus._X264,
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "vfr",
        "-c:a",
        "aac",
        "-shortest",
        "file:" + str(video),
    )
    info = probe.probe(video)
    assert info.fps == Fraction(16000, 1001) and info.nominal_fps == Fraction(24000, 1001)  # the test's premise
    events = events_file(tmp_path / "ev", video, [(1000, 3000), (5000, 7000)])
    reel = tmp_path / "reel.mp4"
    assert run(["render", str(video), str(events), "-o", str(reel), "--title", "best of"]) == 0
    assert probe.probe(reel).nominal_fps == Fraction(24000, 1001)
    d = probe.stream_durations(reel)
    assert abs(d.video_ms - 6006) <= 42  # 2 s card + 2 x 2 s, in whole frames
    assert d.audio_ms is not None and abs(d.audio_ms - d.video_ms) <= 1000 * 1001 / 24000  # within one frame
    capsys.readouterr()


def test_variable_frame_rate_times_come_from_timestamps(files, tmp_path):
    # 5 fps, then 25 fps from t=2 s; blue from t=1.6 s, the file's 9th frame: a frame counter
    # times the nominal 25 fps would place it at 0.32 s.  A sample at T shows the frame on
    # screen at T: 1.5 s still shows the red frame of 1.4 s, 1.75 s the blue one of 1.6 s.
    labels = label_file(tmp_path, f"{quoted(files['vfr'])}  1-2")
    assert run(["frames", str(labels), "--out", str(tmp_path / "f"), "--fps", "4", "--size", "8"]) == 0
    pictures, times = shard(tmp_path / "f")
    blue = pictures.reshape(len(times), -1, 3).mean(axis=1)[:, 2] > 128
    assert times.tolist() == list(range(0, 4000, 250))
    assert times[blue].min() == 1750 and times[~blue].max() == 1500


def test_rotation_is_applied_before_the_crop(files, tmp_path):
    video = files["rotated"]
    info = probe.probe(video)
    assert (info.width, info.height) == (54, 96) and info.rotation in (90, 270)
    shown = decode.grab_frame(info, 500, width=54)  # what a player shows
    top_colour = shown[: shown.shape[0] // 3].reshape(-1, 3).mean(axis=0)
    labels = label_file(tmp_path, f"{quoted(video)}  crop=0,0,1,0.5  0.5-1.5")
    assert run(["frames", str(labels), "--out", str(tmp_path / "f"), "--size", "8"]) == 0
    pictures, _ = shard(tmp_path / "f")
    # The top half of the displayed picture is one colour; unrotated it would be half red, half blue.
    assert np.abs(pictures.reshape(-1, 3).astype(int) - top_colour).max() < 40


@pytest.mark.torch
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("timestamp_gap", list(range(0, 7000, 500))),  # the gap (2-5 s) holds the last frame before it
        ("offset_start", list(range(0, 3000, 500))),  # times count from the file's start, not from 0:00:05
        ("nasty_name", list(range(0, 3000, 500))),
        ("cover_first", list(range(0, 3000, 500))),  # the recording is scanned, not the cover picture before it
    ],
)
def test_scan_times_follow_the_timeline(case, expected, files, model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    video = files[case]
    assert run(["scan", str(video), "--model", str(model)]) == 0
    out = tmp_path / f"{video.stem}.scores.json"  # the default name, whatever characters the stem has
    scores = json.loads(out.read_text())
    assert scores["times_ms"] == expected
    assert Path(scores["video"]) == video
    assert run(["events", str(out), "--threshold", "0"]) == 0
    assert (tmp_path / f"{video.stem}.events.json").is_file()
    capsys.readouterr()


def test_filter_syntax_in_titles_and_class_names_is_drawn_literally(files, tmp_path, monkeypatch, capsys):
    """Text reaches drawtext only through textfile= (with expansion=none): never parsed by ffmpeg."""
    drawn: list[str] = []
    graphs: list[str] = []
    real = encode.run_ffmpeg

    def spy(args, **kwargs):
        graphs.extend(args)
        for piece in (tmp_path / "work").rglob("*.txt"):  # the text files drawtext is handed
            drawn.append(piece.read_text(encoding="utf-8"))
        return real(args, **kwargs)

    import tempfile

    (tmp_path / "work").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "work"))
    monkeypatch.setattr(encode, "run_ffmpeg", spy)  # where the reel's pieces call it
    klass = "it's: [x],y;z %{pts} \\ 100%"
    events = events_file(tmp_path, files["a"], [(500, 1500)], label=klass)
    reel = tmp_path / "reel.mp4"
    assert run(["render", str(files["a"]), str(events), "-o", str(reel), "--title", corpus.NASTY_TITLE]) == 0
    assert corpus.NASTY_TITLE in drawn
    assert f"{klass}: 0.90" in drawn  # without scores: the event's peak, as its clip name and chapter say
    assert not any(corpus.NASTY_TITLE in g or klass in g for g in graphs)  # never interpolated into a command
    assert probe.stream_durations(reel).video_ms > 2500  # title card + event
    capsys.readouterr()


# ----------------------------------------------------------------------------- label files


def _col(line: str, token: str) -> int:
    return line.index(token) + 1


LABEL_CASES = [
    # (name, text, line, token the column points at, words in the message)
    ("bad time", "a.mp4  0:05-0:0x", 1, "0:0x", "bad time"),
    ("end before start", "a.mp4  2-1", 1, "2-1", "ends before it starts"),
    ("overlapping spans", "a.mp4  0.5-2  1-2.5", 1, "1-2.5", "overlaps"),
    ("span past the end", "a.mp4  1-2  2.5-10", 1, "2.5-10", "past the end"),
    ("unknown option", "a.mp4  speed=2  1-2", 1, "speed", "unknown option"),
    ("missing clip", "nope.mp4  1-2", 1, "nope.mp4", "does not exist"),
    ("clip on two lines, overlapping", "a.mp4  1-2\n./a.mp4  1.5-3", 2, "1.5-3", "overlaps"),
    ("not a video", "notes.mp4  1-2", 1, "notes.mp4", "is a text file, not a video"),
]


@pytest.mark.parametrize(("name", "text", "line", "token", "words"), LABEL_CASES, ids=[c[0] for c in LABEL_CASES])
def test_label_file_errors_are_located_and_hinted(name, text, line, token, words, files, capsys):
    folder = files["a"].parent  # beside a.mp4 and notes.mp4 (the text file named .mp4)
    labels = folder / f"{name.replace(' ', '_')}.txt"
    labels.write_text(text + "\n", encoding="utf-8")
    assert run(["labels", "check", str(labels)]) == ExitStatus.LABELS
    message = one_error_line(capsys.readouterr().err)
    col = _col(text.splitlines()[line - 1], token)
    assert message.startswith(f"autotosis: {labels}:{line}:{col}: ") and words in message
    assert message.endswith(")") and " (" in message  # a hint saying what would be right


def test_crlf_and_bom_label_files_simply_work(files, tmp_path):
    labels = tmp_path / "anything.txt"
    labels.write_bytes(f"\ufeff# task=rage\r\n{quoted(files['a'])}  1-2  ~2.5-end\r\n\r\n".encode("utf-8"))
    assert run(["labels", "check", str(labels)]) == 0
    assert run(["frames", str(labels), "--out", str(tmp_path / "f"), "--fps", "2", "--size", "8"]) == 0
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["task"] == "rage" and len(manifest["clips"]) == 1


def test_an_error_message_into_a_closed_pipe_keeps_the_exit_status(tmp_path):
    """`autotosis labels check L 2>&1 | head -1`: the reader is gone before the error is printed;
    the exit status is still the label error's (it was 1, from the BrokenPipeError)."""
    import subprocess
    import sys

    labels = tmp_path / "rage.txt"
    labels.write_text("missing clip.mp4  0:05-0:09\n", encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, "-m", "autotosis", "labels", "check", str(labels)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    child.stderr.close()  # before the child has even imported autotosis
    assert child.wait(timeout=120) == ExitStatus.LABELS


@pytest.mark.torch
def test_a_recording_whose_sound_outlasts_its_picture_is_as_long_as_its_picture(
    files, model, tmp_path, capsys, monkeypatch
):
    # Matroska keeps the picture's length in a tag; the file's length is the sound's (3.6 s). Thumbnails and
    # stills at the end show the last picture, also where the time asked is past it (scores made before).
    from dataclasses import replace

    video = files["sound_outlasts_picture"]
    info = probe.probe(video)
    assert 2950 <= info.duration_ms <= 3100
    as_before = replace(info, duration_ms=3600)
    last = decode.grab_frame(info, 2960, width=96).astype(int)
    for past in (3100, 3500, 3599):
        assert np.abs(decode.grab_frame(as_before, past, width=96).astype(int) - last).mean() < 3
    # A report whose only event runs to the end: its thumbnails there are read (before: exit 4, no frame there).
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report.html"
    assert run(["report", str(video), "--model", str(model), "--threshold", "0", "-o", str(out)]) == 0
    assert out.is_file()
    capsys.readouterr()


def test_a_reel_from_the_start_of_an_hls_playlist_keeps_all_its_sound(tmp_path, capsys):
    # A local HLS VOD (playlist + MPEG-TS segments): ffmpeg's HLS demuxer asked to seek to 0 drops the first
    # 0.6 s of sound, so a cut from the start got sound 0.6 s short (and off its pictures in the MP4).
    source = corpus.normal(tmp_path / "source.mp4", duration=4.0)
    playlist = tmp_path / "vod dir" / "vod.m3u8"
    playlist.parent.mkdir()
    corpus.ffmpeg(
        "-i",
        "file:" + str(source),
        "-c",
        "copy",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        "file:" + str(playlist),
    )
    events = events_file(tmp_path / "ev", playlist, [(0, 3000)])
    reel = tmp_path / "reel.mp4"
    assert run(["render", str(playlist), str(events), "-o", str(reel)]) == 0
    d = probe.stream_durations(reel)
    assert abs(d.video_ms - 3000) <= 40
    assert d.audio_ms is not None and abs(d.audio_ms - d.video_ms) <= 40  # within one frame
    capsys.readouterr()
