"""Events -> vertical shorts: one 9:16 MP4 per highlight, best first, with an index.

The planning is pure (no ffmpeg) so it can be tested on its own:

- length control: events closer than the minimum length are merged; a short longer than
  the maximum is trimmed around its peak; a shorter one is widened symmetrically, kept
  inside the video; windows that widening made overlap are merged too, so the shorts of
  one video never overlap;
- ranking and file names (rank, class, score, source time, source name): the class as every
  output shows it (``display_label``: ``highlight`` for a generic name such as ``labels``) and
  the event's one number (``Event.score_text``, its peak), as in clip names, chapters and subtitles;
- region geometry: the face-cam and gameplay regions in the source's displayed frame
  (after rotation, square pixels), crop-to-fill rectangles, and the picture layout
  handed to ``shorts_graph.render_short``;
- text placement: the title (``--title``) and the score (only with ``overlay``) stay inside
  ``SAFE_AREA``, the part of the frame short-video apps leave uncovered.

``render_shorts`` at the end runs the plan: one ``shorts_graph.render_short`` per short, each
written atomically, then the index (JSON and CSV).  Before encoding it looks at the face cam of
a stacked layout in a few frames and warns (``ShortsResult.warnings``) when it is empty.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, work_dir, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, RegionArg
from autotosis.core.timefmt import name_time
from autotosis.detect.scores import Scores
from autotosis.detect.segments import Event
from autotosis.media import decode, encode, probe, shorts_graph
from autotosis.outputs.exports.timecode import display_label
from autotosis.outputs.render import RenderOptions, check_audio_track, chunk_overlays, output_spec

INDEX_FORMAT = "autotosis-shorts/1"
INDEX_COLUMNS = ("rank", "file", "source", "start", "end", "duration", "label", "peak", "mean", "peak_time", "events")
CAM_MAX_SHARE = Fraction(1, 2)  # the face cam never takes more than half of the short's height
OVERLAY_SIZE = 1 / 36  # confidence text height as a share of the (tall) frame
TITLE_SIZE = 1 / 28
# Glyph widths in ems, at least those of DejaVu Sans (what drawtext draws with through fontconfig's "Sans"
# on Debian-like systems), by group: a title wrapped with them fits the width it was wrapped to.
_NARROW_GLYPHS = frozenset(" ilj.,:;'|!()[]/\\-ItfrJ")  # 0.27-0.41 em
_WIDE_GLYPHS = frozenset("mwMW@%")  # up to 0.99 em
_SYMBOL_GLYPHS = frozenset("~^<>=+#&")  # 0.78-0.84 em
# The text-safe area of a 9:16 short, as fractions of the frame (x0, y0, x1, y1).  Short-video apps
# (YouTube Shorts, TikTok, Instagram Reels) draw their own interface over the picture: the status bar
# and the top tabs over about the top 8%, the like / comment / share / sound buttons in a column over
# about the right 15% of the width, and the account name, caption, music line and progress bar over
# about the bottom 20%.  Text there is hidden when the short is posted; the left 5% is a margin so
# text does not touch the edge.  Every text a short draws (title, score) stays inside this box.
SAFE_AREA = Region(0.05, 0.08, 0.85, 0.80)
# A face cam whose pixels spread less than this (standard deviation, 0..255) in every sampled frame
# is empty or one flat colour: the stacked layout would give it the top of the short.
CAM_FLAT_STD = 4.0
CAM_SAMPLES = 4  # frames looked at per source (the middles of its first shorts)
CAM_INSET = Fraction(1, 10)  # the share of the cam's width and height left out on each side


class Layout(str, enum.Enum):
    STACKED = "stacked"  # face cam on top (full width), gameplay below
    GAME = "game"  # the gameplay region only, centre-cropped to fill
    FIT = "fit"  # the gameplay region fitted in the middle over a blurred, darkened copy


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class FrameGeometry:
    """A source's decoded frame: ``width`` x ``height`` pixels (after rotation) of aspect ``sar``."""

    width: int
    height: int
    sar: Fraction = Fraction(1)

    @classmethod
    def of(cls, info: probe.VideoInfo) -> FrameGeometry:
        return cls(info.width, info.height, Fraction(info.sar))

    @property
    def display_width(self) -> Fraction:
        return self.width * self.sar

    def text(self) -> str:
        return f"{round(self.display_width)}x{self.height}"


@dataclass(frozen=True)
class Rect:
    """A rectangle in displayed (square-pixel) coordinates of the source frame."""

    x: Fraction
    y: Fraction
    w: Fraction
    h: Fraction


def region_rect(region: RegionArg, frame: FrameGeometry, what: str) -> Rect:
    """The region in displayed coordinates; UsageError when it leaves the frame or has no area."""
    x0, y0, x1, y1 = (Fraction(v) for v in region.values)
    dw, dh = frame.display_width, Fraction(frame.height)
    limit_x, limit_y = (dw, dh) if region.pixels else (Fraction(1), Fraction(1))
    unit = "pixels of the displayed frame" if region.pixels else "fractions of the frame"
    if x1 <= x0 or y1 <= y0:
        raise UsageError(
            f"{what} {region.text()} has zero size",
            hint=f"x0,y0,x1,y1 in {unit}: x1 must be greater than x0 and y1 greater than y0",
        )
    if min(x0, y0) < 0 or x1 > limit_x or y1 > limit_y:
        bound = f"0..{round(dw)} and 0..{frame.height}" if region.pixels else "0..1"
        raise UsageError(
            f"{what} {region.text()} reaches outside the {frame.text()} frame",
            hint=f"x0,y0,x1,y1 in {unit} must lie within {bound}",
        )
    if not region.pixels:
        x0, x1, y0, y1 = x0 * dw, x1 * dw, y0 * dh, y1 * dh
    rect = Rect(x0, y0, x1 - x0, y1 - y0)
    if rect.w / frame.sar < 1 or rect.h < 1:
        raise UsageError(
            f"{what} {region.text()} has zero size: less than one pixel of the {frame.text()} frame",
            hint="give a larger region",
        )
    return rect


def whole_frame(frame: FrameGeometry) -> Rect:
    return Rect(Fraction(0), Fraction(0), frame.display_width, Fraction(frame.height))


def fill_rect(rect: Rect, width: int, height: int) -> Rect:
    """The largest centred part of ``rect`` with the aspect of ``width`` x ``height`` (crop-to-fill)."""
    aspect = Fraction(width, height)
    if rect.w / rect.h > aspect:  # too wide: keep the full height, trim the sides
        w = rect.h * aspect
        return Rect(rect.x + (rect.w - w) / 2, rect.y, w, rect.h)
    h = rect.w / aspect
    return Rect(rect.x, rect.y + (rect.h - h) / 2, rect.w, h)


def pixel_crop(rect: Rect, frame: FrameGeometry) -> shorts_graph.PixelCrop:
    """``rect`` (displayed coordinates) in the decoded picture's pixels, inside the frame."""
    x = min(max(int(round(rect.x / frame.sar)), 0), frame.width - 1)
    y = min(max(int(round(rect.y)), 0), frame.height - 1)
    w = min(max(int(round(rect.w / frame.sar)), 1), frame.width - x)
    h = min(max(int(round(rect.h)), 1), frame.height - y)
    return shorts_graph.PixelCrop(x, y, w, h)


def even(value: Fraction | float) -> int:
    """Nearest even number, at least 2 (H.264 in 4:2:0 needs even sizes)."""
    return max(2, int(round(Fraction(value) / 2)) * 2)


def plan_picture(
    layout: Layout, frame: FrameGeometry, size: tuple[int, int], cam: Rect | None, game: Rect
) -> shorts_graph.ShortPicture:
    """The picture of a short of ``size`` (even width and height) in ``layout``."""
    width, height = size
    if layout is Layout.GAME:
        return shorts_graph.ShortPicture(
            (shorts_graph.Band(pixel_crop(fill_rect(game, width, height), frame), width, height),)
        )
    if layout is Layout.FIT:
        scale = min(Fraction(width) / game.w, Fraction(height) / game.h)
        fitted = shorts_graph.Band(
            pixel_crop(game, frame), min(width, even(game.w * scale)), min(height, even(game.h * scale))
        )
        backdrop = shorts_graph.Band(pixel_crop(fill_rect(game, width, height), frame), width, height)
        return shorts_graph.ShortPicture((fitted,), backdrop)
    if cam is None:
        raise UsageError(
            "the stacked layout needs the face-cam region",
            hint="give --cam x0,y0,x1,y1, or use --layout game or --layout fit for sources without a face cam",
        )
    # The cam at full width keeps its aspect, up to CAM_MAX_SHARE of the height (then it is crop-filled).
    cam_height = min(even(width * cam.h / cam.w), even(height * CAM_MAX_SHARE))
    cam_height = min(cam_height, height - 2)
    top = shorts_graph.Band(pixel_crop(fill_rect(cam, width, cam_height), frame), width, cam_height)
    bottom_height = height - cam_height
    bottom = shorts_graph.Band(pixel_crop(fill_rect(game, width, bottom_height), frame), width, bottom_height)
    return shorts_graph.ShortPicture((top, bottom))


# --------------------------------------------------------------------------- length control


@dataclass(frozen=True)
class LengthRules:
    min_ms: int = 15_000
    max_ms: int = 59_000

    def __post_init__(self) -> None:
        if self.max_ms < 1000:
            raise UsageError(f"the maximum length must be at least 1 s, got {self.max_ms / 1000:g} s")
        if not 0 <= self.min_ms <= self.max_ms:
            raise UsageError(
                f"the minimum length ({self.min_ms / 1000:g} s) must lie between 0 "
                f"and the maximum ({self.max_ms / 1000:g} s)"
            )


@dataclass(frozen=True)
class Window:
    """One short's span of its source, with the (merged) event it shows."""

    start_ms: int
    end_ms: int
    event: Event  # spans every event merged into this short; peak/mean over them
    events: int = 1  # how many events were merged into it

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def merge_events(a: Event, b: Event) -> Event:
    """One event covering both; the higher peak wins, the mean is weighted by length."""
    top = a if a.peak >= b.peak else b
    weight = a.duration_ms + b.duration_ms
    mean = (a.mean * a.duration_ms + b.mean * b.duration_ms) / weight if weight else max(a.mean, b.mean)
    return Event(min(a.start_ms, b.start_ms), max(a.end_ms, b.end_ms), top.label, top.peak, round(mean, 6), top.peak_ms)


def window_for(event: Event, rules: LengthRules, duration_ms: int) -> tuple[int, int]:
    """The span a short of ``event`` shows: trimmed around the peak, or widened symmetrically."""
    length = event.duration_ms
    if length > rules.max_ms:
        peak = min(max(event.peak_ms, event.start_ms), event.end_ms)
        start = min(max(event.start_ms, peak - rules.max_ms // 2), event.end_ms - rules.max_ms)
        return start, start + rules.max_ms
    if length >= rules.min_ms:
        return event.start_ms, event.end_ms
    target = min(rules.min_ms, duration_ms)
    start = event.start_ms - (target - length) // 2
    # Keep inside the video: what does not fit on one side goes to the other.
    start = min(max(start, 0), duration_ms - target)
    return start, start + target


def plan_windows(events: Sequence[Event], duration_ms: int, rules: LengthRules) -> list[Window]:
    """Length control for the events of one video (see the module docstring); in time order."""
    clipped = []
    for event in sorted(events, key=lambda e: (e.start_ms, e.end_ms)):
        if event.start_ms >= duration_ms:
            raise DataError(
                f"event at {event.start_ms / 1000:.1f} s is past the video's end ({duration_ms / 1000:.1f} s)",
                hint="were the events made from another video?",
            )
        clipped.append(dataclasses.replace(event, end_ms=min(event.end_ms, duration_ms)))
    groups: list[tuple[Event, int]] = []
    for event in clipped:
        if groups and event.start_ms - groups[-1][0].end_ms < max(rules.min_ms, 1):
            groups[-1] = (merge_events(groups[-1][0], event), groups[-1][1] + 1)
        else:
            groups.append((event, 1))
    while True:
        spans = [window_for(g, rules, duration_ms) for g, _ in groups]
        clash = next((i for i in range(len(spans) - 1) if spans[i][1] > spans[i + 1][0]), None)
        if clash is None:
            break
        (a, na), (b, nb) = groups[clash], groups[clash + 1]
        groups[clash : clash + 2] = [(merge_events(a, b), na + nb)]
    return [Window(s, e, g, n) for (s, e), (g, n) in zip(spans, groups)]


# --------------------------------------------------------------------------- ranking and names


@dataclass(frozen=True)
class Short:
    rank: int  # 1 = the highest peak score
    source: Path
    window: Window
    file_name: str


def _slug(text: str, limit: int = 40) -> str:
    """A file-name-safe piece of text: letters, digits, ``-`` and ``_`` (any script)."""
    slug = re.sub(r"[^\w-]+", "-", text).strip("-_")[:limit].strip("-_")
    return slug or "x"


def short_name(rank: int, digits: int, source: Path, window: Window) -> str:
    """``01_rage_0.93_0h41m12s_vod.mp4``: rank, class as outputs show it, the event's score (peak), start, source."""
    event = window.event
    when = name_time(window.start_ms, millis=False)
    return f"{rank:0{digits}d}_{_slug(display_label(event.label))}_{event.score_text}_{when}_{_slug(source.stem)}.mp4"


def rank_shorts(windows: Sequence[tuple[Path, Window]]) -> list[Short]:
    """Best first: highest peak, then highest mean, then source order and time."""
    order = sorted(range(len(windows)), key=lambda i: (-windows[i][1].event.peak, -windows[i][1].event.mean, i))
    digits = max(2, len(str(len(windows))))
    shorts = []
    for rank, i in enumerate(order, 1):
        source, window = windows[i]
        shorts.append(Short(rank, source, window, short_name(rank, digits, source, window)))
    return shorts


def safe_text_width(width: int) -> int:
    """Pixels of a ``width``-wide short a line of text may take: the safe area less the text box's borders."""
    return max(1, int(width * (SAFE_AREA.x1 - SAFE_AREA.x0)) - 2 * encode.TEXT_BOX_BORDER - 4)


def text_em(text: str) -> float:
    """An upper bound of the width of one line of ``text`` in ems (see ``_NARROW_GLYPHS``)."""
    total = 0.0
    for char in text:
        if char in _NARROW_GLYPHS:
            total += 0.42
        elif char in _WIDE_GLYPHS or unicodedata.east_asian_width(char) in ("W", "F"):
            total += 1.05
        elif char in _SYMBOL_GLYPHS:
            total += 0.85
        else:
            total += 0.8 if char.isupper() else 0.65
    return total


def wrap_title(text: str, width: int, font_px: float) -> str:
    """Break a title into lines at most ``width`` pixels wide at ``font_px`` (drawtext does not wrap).

    Words go whole onto a line while they fit (``text_em``); a word wider than a line is cut.
    """
    limit = width / font_px
    lines: list[str] = []
    line = ""
    for word in text.split():
        joined = f"{line} {word}" if line else word
        if text_em(joined) <= limit:
            line = joined
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and text_em(word) > limit:
            cut = next((n for n in range(len(word) - 1, 0, -1) if text_em(word[:n]) <= limit), 1)
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- index


def _index_rows(shorts: Sequence[Short]) -> list[dict]:
    rows = []
    for s in shorts:
        w, e = s.window, s.window.event
        rows.append(
            {
                "rank": s.rank,
                "file": s.file_name,
                "source": str(s.source),
                "start": round(w.start_ms / 1000, 3),
                "end": round(w.end_ms / 1000, 3),
                "duration": round(w.duration_ms / 1000, 3),
                "label": e.label,
                "peak": e.peak,
                "mean": e.mean,
                "peak_time": round(e.peak_ms / 1000, 3),
                "events": w.events,
            }
        )
    return rows


def index_json(shorts: Sequence[Short], layout: Layout, size: tuple[int, int]) -> str:
    document = {"format": INDEX_FORMAT, "layout": layout.value, "size": list(size), "shorts": _index_rows(shorts)}
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def index_csv(shorts: Sequence[Short]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in _index_rows(shorts):
        writer.writerow({**row, **{k: f"{row[k]:.3f}" for k in ("start", "end", "duration", "peak_time")}})
    return buffer.getvalue()


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class ShortSource:
    """One video, its events, and (optionally) its scores for the per-chunk confidence text."""

    video: Path
    events: tuple[Event, ...]
    scores: Scores | None = None


@dataclass(frozen=True)
class ShortsOptions:
    layout: Layout = Layout.STACKED
    size: tuple[int, int] = (1080, 1920)
    cam: RegionArg | None = None  # face-cam region (needed by the stacked layout)
    cam_what: str = "--cam"  # where the cam region came from, for error messages
    game: RegionArg | None = None  # gameplay region; None = the whole frame
    lengths: LengthRules = LengthRules()
    title: str | None = None
    overlay: bool = False  # draw the model's score ("rage: 0.87"): for checking a model, not for posting
    chunk_ms: int = 500
    fps: Fraction | None = None  # default: the source's, at most 60
    crf: int = 21
    audio_track: int | None = None  # None: mix every audio track; N (from 1): only the Nth


@dataclass(frozen=True)
class ShortsResult:
    shorts: tuple[Short, ...]
    folder: Path
    index_json: Path
    index_csv: Path
    warnings: tuple[str, ...] = ()  # e.g. a stacked short's face cam that shows nothing


def picture_for(info: probe.VideoInfo, options: ShortsOptions) -> shorts_graph.ShortPicture:
    """Check the regions against one source and lay out its shorts (errors before any encoding)."""
    frame = FrameGeometry.of(info)
    game = region_rect(options.game, frame, "--game") if options.game else whole_frame(frame)
    cam = (
        region_rect(options.cam, frame, options.cam_what) if options.cam and options.layout is Layout.STACKED else None
    )
    return plan_picture(options.layout, frame, (even(options.size[0]), even(options.size[1])), cam, game)


def check_sources(videos: Sequence[Path], options: ShortsOptions) -> None:
    """Probe the videos and check the regions fit them, before any long work (a scan)."""
    for video in videos:
        info = probe.probe(video)
        picture_for(info, options)
        check_audio_track([info], options.audio_track)


def render_shorts(
    sources: Sequence[ShortSource],
    folder: Path,
    options: ShortsOptions = ShortsOptions(),
    *,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> ShortsResult:
    """One MP4 per (length-controlled) event in ``folder``, best first by name, plus shorts.json/.csv."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: is a file; shorts go into a folder", hint="give a folder name with -o")
    size = (even(options.size[0]), even(options.size[1]))
    infos = {s.video: probe.probe(s.video) for s in sources}
    check_audio_track(infos.values(), options.audio_track)
    pictures = {video: picture_for(info, options) for video, info in infos.items()}
    planned: list[tuple[Path, Window]] = []
    for source in sources:
        try:
            planned += [
                (source.video, w) for w in plan_windows(source.events, infos[source.video].duration_ms, options.lengths)
            ]
        except DataError as exc:
            raise DataError(f"{source.video}: {exc.message}", hint=exc.hint) from None
    if not planned:
        raise DataError(
            "no events to make shorts from", hint="lower --threshold, or check the scores with `autotosis events`"
        )
    shorts = rank_shorts(planned)
    json_path, csv_path = folder / "shorts.json", folder / "shorts.csv"
    # Refuse before encoding anything, so a refused run leaves the folder as it was.
    for path in [*(folder / s.file_name for s in shorts), json_path, csv_path]:
        check_writable(path, force)
    warnings = []
    if options.layout is Layout.STACKED:
        for video, info in infos.items():
            times = [s.window.start_ms + s.window.duration_ms // 2 for s in shorts if s.source == video]
            warning = flat_cam_warning(info, options, times[:CAM_SAMPLES])
            if warning:
                warnings.append(warning)
    scores = {s.video: s.scores for s in sources}
    total_s = sum(s.window.duration_ms for s in shorts) / 1000
    done_ms = 0
    with work_dir("autotosis-shorts-") as work:
        progress("shorts", 0, total_s)
        for short in shorts:
            info = infos[short.source]
            spec = output_spec(
                info,
                RenderOptions(
                    width=size[0], height=size[1], fps=options.fps, crf=options.crf, audio_track=options.audio_track
                ),
            )
            overlays = _overlays(short, scores[short.source], options, size, work)
            with atomic_path(folder / short.file_name, force=force) as tmp:
                shorts_graph.render_short(
                    info, short.window.start_ms, short.window.duration_ms, tmp, spec, pictures[short.source], overlays
                )
            done_ms += short.window.duration_ms
            progress("shorts", done_ms / 1000, total_s)
    write_text_atomic(json_path, index_json(shorts, options.layout, size), force=force)
    write_text_atomic(csv_path, index_csv(shorts), force=force)
    return ShortsResult(tuple(shorts), folder, json_path, csv_path, tuple(warnings))


def cam_spread(frames: Sequence, cam: Rect, frame: FrameGeometry) -> float:
    """The largest spread of the ``cam`` region among ``frames``: the standard deviation (0..255) of its
    pixels' red, green or blue values, whichever is largest.

    ``frames`` are whole displayed frames (H x W x 3, square pixels) of any size.
    """
    spread = 0.0
    for picture in frames:
        height, width = picture.shape[:2]
        sx, sy = width / frame.display_width, height / Fraction(frame.height)
        # A tenth in from each side: a cam's frame or the picture around it (hand-given regions are
        # rough, and 4:2:0 chroma bleeds a pixel across edges) is not what the cam shows.
        inset_x, inset_y = cam.w * CAM_INSET, cam.h * CAM_INSET
        x0, y0 = int((cam.x + inset_x) * sx), int((cam.y + inset_y) * sy)
        x1 = max(x0 + 1, int((cam.x + cam.w - inset_x) * sx))
        y1 = max(y0 + 1, int((cam.y + cam.h - inset_y) * sy))
        pixels = picture[y0:y1, x0:x1].reshape(-1, picture.shape[2]).astype("float32")
        spread = max(spread, float(pixels.std(axis=0).max()))  # per channel: one flat colour spreads 0
    return spread


def flat_cam_warning(info: probe.VideoInfo, options: ShortsOptions, times_ms: Sequence[int]) -> str | None:
    """A warning when the face-cam region of ``info`` is one flat colour (or black) at every one of ``times_ms``.

    A stacked short gives the cam the top of the picture: an empty cam (the wrong region, a
    stream without a camera, a cam switched off) would fill it with nothing.
    """
    if options.cam is None or not times_ms:
        return None
    frame = FrameGeometry.of(info)
    cam = region_rect(options.cam, frame, options.cam_what)
    frames = [picture for _, picture in decode.grab_frames(info, times_ms, width=320)]
    if not frames or cam_spread(frames, cam, frame) >= CAM_FLAT_STD:
        return None
    return (
        f"{info.path.name}: the face-cam region {options.cam.text()} is empty or one flat colour in the "
        f"{len(frames)} frame{'' if len(frames) == 1 else 's'} looked at, so the top of every stacked short shows "
        "nothing; use --layout game (or fit) for a source without a face cam, or give the cam's region with --cam"
    )


def _overlays(
    short: Short, scores: Scores | None, options: ShortsOptions, size: tuple[int, int], work: Path
) -> list[encode.TextOverlay]:
    """Title (whole short, top of the safe area) and, with ``overlay``, the reel's per-chunk score text
    (bottom-left of the safe area), sized for a tall frame."""
    window = short.window
    overlays = []
    if options.title:
        text_file = work / f"title_{short.rank:04d}.txt"
        text_file.write_text(
            wrap_title(options.title, safe_text_width(size[0]), size[1] * TITLE_SIZE), encoding="utf-8"
        )
        overlays.append(
            encode.TextOverlay(text_file, 0, window.duration_ms, "ffffff", "top", TITLE_SIZE, area=SAFE_AREA)
        )
    if options.overlay:
        shown = dataclasses.replace(window.event, start_ms=window.start_ms, end_ms=window.end_ms)
        chunks = chunk_overlays(shown, scores, window.duration_ms, options.chunk_ms, work, f"short_{short.rank:04d}")
        # A long class name gets a smaller font rather than reaching into the button column.
        widest = text_em(f"{display_label(shown.label)}: 0.00") * size[1]
        ratio = min(OVERLAY_SIZE, safe_text_width(size[0]) / widest)
        overlays += [dataclasses.replace(o, position="bottom-left", size_ratio=ratio, area=SAFE_AREA) for o in chunks]
    return overlays
