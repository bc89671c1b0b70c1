"""Synthetic "game stream" clips whose highlight truth is known exactly.

`autotosis demo` and the tests need videos that look like a streamed strategy game: a
scrolling, procedurally drawn map with moving units and a HUD, and a face cam in the
corner.  During a highlight the streamer in the face cam *rages* (mouth wide open,
face reddening, brows angled, head shaking, fists up) with an intensity that varies
over the span; outside highlights they talk, laugh, blink, lean and drink, so the
negatives are not static.  The game area is a function of the seed and the frame
index only, never of the highlights, so a model can only learn the task from the cam.

Everything is drawn with vectorised numpy into small precomputed grids (the face only
inside the cam box), frames are produced lazily and piped to the encoder in
``media.encode_frames``; nothing large is ever held in memory.

``hard=True`` (``make_stream_clip``, ``iter_stream_frames``, ``make_sample_set``) adds what
real streams have and the default clips lack, for a benchmark that a briefly trained model
does not pass (benchmarks/quality.py): look-alikes that share colour, motion and subject
with the rage but are not it (a cheer with arms up, a hard laugh with a shaking head, the
streamer leaning in close, red or magenta room light, an alert or emote over the cam, a
yawn with a stretch; ``lookalike_spans``), rooms of several kinds, a cam box a few pixels
off the nominal crop and a little larger or smaller per stream (``jittered_cam``), the cam
reframed now and then, drifting and switched light, and training clips of different
lengths.  The default mode draws exactly what it drew before.
"""

from __future__ import annotations

import colorsys
import json
import math
import numbers
import tempfile
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from autotosis.core.errors import DataError, OutputExistsError, UsageError
from autotosis.core.fsutil import atomic_path, write_text_atomic
from autotosis.core.region import Region, crop_pixels

DEFAULT_CAM = Region(0.7833, 0.1296, 0.9682, 0.3694)
AUDIO_RATE = 48_000
TRUTH_FILE = "truth.json"
# Bump when the pictures or sounds change, so cached sample sets are regenerated.
GENERATOR_VERSION = 1
# The same for the hard mode (recorded as params["hard"] of a hard set; default sets do not carry it).
HARD_GENERATOR_VERSION = 1

# Independent random streams: the game never sees the highlights, the person's ordinary
# behaviour does not either, so the same seed with other highlights changes only the rage.
_STREAM_GAME, _STREAM_PERSON, _STREAM_RAGE, _STREAM_AUDIO = 1, 2, 3, 4
_KIND_TRAIN, _KIND_HELDOUT, _KIND_HIGHLIGHTS = 11, 12, 13
# Hard mode only: its own streams, so the default mode's draws never move.
_STREAM_HARD = 5
_KIND_HARD = 14

# Hard mode: what the face cam does that looks like a highlight at a glance but is not one.
LOOKALIKE_KINDS = ("cheer", "laugh", "lean", "redlight", "alert", "yawn")
# Look-alikes keep this far from every highlight (rough label edges are off by up to 1 s).
LOOKALIKE_MARGIN_MS = 1500
# Hard mode: the drawn cam box moves by up to this many pixels (at 640x360; scaled with the
# frame) and its size changes by up to this fraction, per stream; labels keep the nominal box.
CAM_JITTER_PX = 4.0
CAM_SCALE_JITTER = 0.05


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ClipTruth:
    """A generated clip and its exact ground truth (times in integer milliseconds)."""

    path: Path
    duration_ms: int
    highlights: tuple[tuple[int, int], ...]  # exact (start_ms, end_ms), sorted, disjoint
    cam: Region
    width: int
    height: int
    fps: int
    seed: int
    # Hard mode only (empty / None otherwise, and then not written to JSON):
    lookalikes: tuple[tuple[int, int, str], ...] = ()  # exact (start_ms, end_ms, kind) of the look-alikes
    drawn_cam: Region | None = None  # where the cam box really is (``cam`` is the nominal box labels use)
    hard: bool = False

    def to_json(self, folder: Path | None = None) -> dict:
        """JSON-ready dict; ``path`` is written relative to ``folder`` when it lies inside it."""
        path = Path(self.path)
        if folder is not None and path.parent.absolute() == Path(folder).absolute():
            path = Path(path.name)
        document = {
            "path": path.as_posix(),
            "duration_ms": self.duration_ms,
            "highlights": [[start, end] for start, end in self.highlights],
            "cam": list(self.cam),
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "seed": self.seed,
        }
        if self.hard:
            document["hard"] = True
            document["lookalikes"] = [[start, end, kind] for start, end, kind in self.lookalikes]
            document["drawn_cam"] = list(self.drawn_cam) if self.drawn_cam is not None else None
        return document

    @classmethod
    def from_json(cls, data: dict, folder: Path | None = None) -> ClipTruth:
        path = Path(data["path"])
        if folder is not None and not path.is_absolute():
            path = Path(folder) / path
        return cls(
            path=path,
            duration_ms=int(data["duration_ms"]),
            highlights=tuple((int(s), int(e)) for s, e in data["highlights"]),
            cam=tuple(float(v) for v in data["cam"]),  # type: ignore[arg-type]
            width=int(data["width"]),
            height=int(data["height"]),
            fps=int(data["fps"]),
            seed=int(data["seed"]),
            lookalikes=tuple((int(s), int(e), str(k)) for s, e, k in data.get("lookalikes") or ()),
            drawn_cam=tuple(float(v) for v in data["drawn_cam"]) if data.get("drawn_cam") else None,  # type: ignore[arg-type]
            hard=bool(data.get("hard", False)),
        )


@dataclass(frozen=True)
class SampleSet:
    folder: Path
    train: tuple[ClipTruth, ...]
    heldout: ClipTruth


@dataclass(frozen=True)
class _ClipPlan:
    """Validated parameters of one clip; everything the painters need."""

    width: int
    height: int
    fps: int
    frame_count: int
    duration_ms: int
    cam: Region
    highlights: tuple[tuple[int, int], ...]
    seed: int
    hard: bool = False
    drawn_cam: Region | None = None  # hard mode: the jittered box actually drawn
    lookalikes: tuple[tuple[int, int, str], ...] = ()

    def frame_time_ms(self, index: int) -> float:
        # Frame i is shown at exactly i/fps s (the encoder gets a constant rate); a float is
        # fine for drawing, the truth itself stays in integer milliseconds.
        return index * 1000.0 / self.fps

    @property
    def audio_samples(self) -> int:
        return int(round(self.frame_count * AUDIO_RATE / self.fps))


def _plan_clip(
    *,
    duration_s: float,
    highlights: Sequence[tuple[int, int]],
    seed: int,
    width: int,
    height: int,
    fps: int,
    cam: Region,
    hard: bool = False,
) -> _ClipPlan:
    if not (isinstance(fps, numbers.Integral) and fps > 0):
        raise UsageError(f"fps must be a positive whole number, not {fps!r}")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise UsageError(
            f"frame size {width}x{height} is not usable", hint="use even sizes of at least 16x16 (H.264 4:2:0)"
        )
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise UsageError(f"duration must be a positive number of seconds, not {duration_s!r}")
    x0, y0, x1, y1 = cam
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise UsageError(
            f"cam region {cam} is not inside the frame",
            hint="give x0,y0,x1,y1 with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1",
        )
    frame_count = max(1, int(round(duration_s * fps)))
    duration_ms = int(round(frame_count * 1000 / fps))
    spans = sorted((int(s), int(e)) for s, e in highlights)
    for start, end in spans:
        if not 0 <= start < end <= duration_ms:
            raise UsageError(f"highlight {start}-{end} ms is not inside the clip (0-{duration_ms} ms)")
    for (_, prev_end), (start, _) in zip(spans, spans[1:]):
        if start < prev_end:
            raise UsageError(f"highlights overlap at {start} ms", hint="give disjoint (start_ms, end_ms) spans")
    plan = _ClipPlan(
        width, height, int(fps), frame_count, duration_ms, tuple(float(v) for v in cam), tuple(spans), int(seed)
    )  # type: ignore[arg-type]
    if hard:
        plan = replace(
            plan,
            hard=True,
            drawn_cam=jittered_cam(plan.cam, seed, width, height),
            lookalikes=tuple(lookalike_spans(duration_ms, spans, seed)),
        )
    return plan


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


# --------------------------------------------------------------------------- envelopes


@dataclass(frozen=True)
class _Spans:
    """Sorted disjoint spans (ms) with a trapezoid envelope, evaluated for many times at once."""

    starts: np.ndarray
    ends: np.ndarray
    ramp_ms: float

    @classmethod
    def of(cls, spans: Sequence[tuple[float, float]], ramp_ms: float) -> _Spans:
        starts = np.array([s for s, _ in spans], dtype=np.float64)
        ends = np.array([e for _, e in spans], dtype=np.float64)
        return cls(starts, ends, float(ramp_ms))

    def locate(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the span each time falls in, clipped to >= 0; whether it is inside one)."""
        if self.starts.size == 0:
            return np.zeros(t_ms.shape, dtype=np.int64), np.zeros(t_ms.shape, dtype=bool)
        index = np.searchsorted(self.starts, t_ms, side="right") - 1
        safe = np.maximum(index, 0)
        inside = (index >= 0) & (t_ms < self.ends[safe])
        return safe, inside

    def envelope(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(0..1 trapezoid envelope, span index) for each time."""
        index, inside = self.locate(t_ms)
        if self.starts.size == 0:
            return np.zeros(t_ms.shape), index
        rise = (t_ms - self.starts[index]) / self.ramp_ms
        fall = (self.ends[index] - t_ms) / self.ramp_ms
        env = np.clip(np.minimum(rise, fall), 0.0, 1.0)
        return np.where(inside, env, 0.0), index


def _random_spans(
    rng: np.random.Generator, duration_ms: int, mean_gap_ms: float, min_len_ms: float, max_len_ms: float
) -> list[tuple[float, float]]:
    """Disjoint spans at random (exponential gaps), e.g. when the streamer talks."""
    spans = []
    t = rng.exponential(mean_gap_ms) * 0.5
    while t < duration_ms:
        length = rng.uniform(min_len_ms, max_len_ms)
        spans.append((t, t + length))
        t += length + 150 + rng.exponential(mean_gap_ms)
    return spans


class _Rage:
    """How strongly the streamer rages at each time: 0 outside highlights, varying inside.

    Each span gets its own base level, swing and rhythm (seeded by the span), so the cam
    is not one constant picture through a highlight; the short ramps keep edges smooth.
    """

    RAMP_MS = 180.0

    def __init__(self, highlights: Sequence[tuple[int, int]], seed: int):
        self.spans = _Spans.of(highlights, self.RAMP_MS)
        params = [_rng(seed, _STREAM_RAGE, s, e).uniform(size=5) for s, e in highlights] or [np.zeros(5)]
        p = np.array(params)
        self.base = 0.65 + 0.15 * p[:, 0]
        self.swing = 0.20 + 0.15 * p[:, 1]
        self.period_ms = 900 + 900 * p[:, 2]
        self.phase = 2 * np.pi * p[:, 3]
        self.shout_hz = 2.5 + 2.0 * p[:, 4]

    def intensity(self, t_ms: np.ndarray) -> np.ndarray:
        env, i = self.spans.envelope(t_ms)
        wave_ = 0.5 + 0.5 * np.sin(2 * np.pi * t_ms / self.period_ms[i] + self.phase[i])
        return env * np.clip(self.base[i] + self.swing[i] * (2 * wave_ - 1), 0.45, 1.0)

    def shout(self, t_ms: np.ndarray) -> np.ndarray:
        """Syllable rhythm of the shouting (0..1), for the mouth and the voice."""
        _, i = self.spans.envelope(t_ms)
        return np.clip(0.55 + 0.6 * np.sin(2 * np.pi * t_ms / 1000 * self.shout_hz[i] + self.phase[i]), 0.0, 1.0)


def rage_intensity(
    times_ms: Sequence[float] | np.ndarray, highlights: Sequence[tuple[int, int]], seed: int
) -> np.ndarray:
    """Rage intensity (0..1) the generator draws at ``times_ms`` for a clip's highlights and seed."""
    spans = sorted((int(s), int(e)) for s, e in highlights)
    return _Rage(spans, seed).intensity(np.asarray(times_ms, dtype=np.float64))


class _Behaviour:
    """The streamer's ordinary life on camera, independent of the highlights."""

    def __init__(self, seed: int, duration_ms: int):
        # One random stream per habit: a longer clip of the same seed starts with the same life.
        self.talk = _Spans.of(_random_spans(_rng(seed, _STREAM_PERSON, 10), duration_ms, 3500, 1200, 6000), 90)
        self.talk_hz = 3.8 + 1.6 * _rng(seed, _STREAM_PERSON, 17).uniform(size=max(1, self.talk.starts.size))
        self.laugh = _Spans.of(_random_spans(_rng(seed, _STREAM_PERSON, 11), duration_ms, 22000, 700, 2000), 150)
        self.drink = _Spans.of(_random_spans(_rng(seed, _STREAM_PERSON, 12), duration_ms, 20000, 1800, 3800), 450)
        self.drink_side = np.where(
            _rng(seed, _STREAM_PERSON, 18).uniform(size=max(1, self.drink.starts.size)) < 0.5, -1.0, 1.0
        )
        self.lean = _Spans.of(_random_spans(_rng(seed, _STREAM_PERSON, 13), duration_ms, 12000, 2000, 6000), 600)
        self.blink = _Spans.of(_random_spans(_rng(seed, _STREAM_PERSON, 14), duration_ms, 3200, 130, 170), 65)
        rng = _rng(seed, _STREAM_PERSON, 15)
        gaze = rng.uniform(size=(int(duration_ms / 700) + 2, 3))
        self.gaze_times = np.cumsum(700 + 3300 * gaze[:, 0])
        self.gaze = np.vstack([(2 * gaze[:, 1:] - 1) * np.array([1.0, 0.4]), [0.0, 0.0]])
        rng = _rng(seed, _STREAM_PERSON, 16)
        self.sway_hz = rng.uniform(0.05, 0.2, size=2)
        self.sway_phase = rng.uniform(0, 2 * np.pi, size=2)

    def talking(self, t_ms: np.ndarray) -> np.ndarray:
        env, i = self.talk.envelope(t_ms)
        syllables = 0.5 + 0.65 * np.sin(2 * np.pi * t_ms / 1000 * self.talk_hz[i] + 1.7 * i)
        return env * np.clip(syllables, 0.0, 1.0)

    def laughing(self, t_ms: np.ndarray) -> np.ndarray:
        env, _ = self.laugh.envelope(t_ms)
        return env * (0.65 + 0.35 * np.sin(2 * np.pi * t_ms / 1000 * 5.0))

    def gaze_at(self, t_ms: float) -> np.ndarray:
        return self.gaze[int(np.searchsorted(self.gaze_times, t_ms))]

    def sway(self, t_ms: float) -> tuple[float, float]:
        t = t_ms / 1000
        return (
            math.sin(2 * np.pi * self.sway_hz[0] * t + self.sway_phase[0]) + 0.4 * math.sin(0.71 * t + 1.3),
            math.sin(2 * np.pi * self.sway_hz[1] * t + self.sway_phase[1]),
        )


# --------------------------------------------------------------------------- drawing helpers


def _ellipse(
    canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, color, alpha: float = 1.0, angle: float = 0.0
) -> None:
    """Blend an anti-aliased (optionally rotated) filled ellipse into a float32 canvas."""
    rx, ry = max(rx, 0.35), max(ry, 0.35)
    h, w = canvas.shape[:2]
    reach = max(rx, ry) if angle else None
    ex, ey = (reach, reach) if reach else (rx, ry)
    x0, x1 = max(0, int(cx - ex - 1)), min(w, int(cx + ex + 2))
    y0, y1 = max(0, int(cy - ey - 1)), min(h, int(cy + ey + 2))
    if x0 >= x1 or y0 >= y1 or alpha <= 0:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = dx * c + dy * s, dy * c - dx * s
    q = (dx / rx) ** 2 + (dy / ry) ** 2
    # (1 - q) * r / 2 approximates the distance to the rim in pixels: a one-pixel soft edge.
    a = np.clip((1.0 - q) * (0.5 * min(rx, ry)) + 0.5, 0.0, 1.0)
    if alpha != 1.0:
        a *= alpha
    region = canvas[y0:y1, x0:x1]
    region += a[..., None] * (np.asarray(color, dtype=np.float32) - region)


def _disc_mask(radius: int) -> np.ndarray:
    d = np.arange(-radius, radius + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2) <= radius * radius + radius * 0.8


def _stamp(frame: np.ndarray, mask: np.ndarray, x: int, y: int, color) -> None:
    """Paint ``color`` where ``mask`` is set, mask's top-left at (x, y); clipped to the frame."""
    h, w = frame.shape[:2]
    mh, mw = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
    if x0 >= x1 or y0 >= y1:
        return
    frame[y0:y1, x0:x1][mask[y0 - y : y1 - y, x0 - x : x1 - x]] = color


def _rect(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int, color) -> None:
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = color


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255


def _periodic_noise(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    """Tileable 1/f^beta noise in 0..1 (an FFT field is periodic, so the map wraps seamlessly)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * f ** (-beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    lo, hi = np.percentile(field, [1, 99])
    return np.clip((field - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


# --------------------------------------------------------------------------- the game


_BIOMES = (
    # water, shore, lowland, highland, peak (RGB); hue jitter is added per clip
    ((40, 80, 150), (200, 190, 130), (80, 140, 60), (40, 95, 45), (130, 120, 110)),  # temperate
    ((60, 120, 150), (230, 200, 140), (210, 170, 100), (170, 120, 70), (120, 80, 60)),  # desert
    ((50, 70, 110), (180, 190, 200), (220, 225, 235), (160, 170, 185), (250, 250, 255)),  # snow
    ((200, 70, 20), (60, 50, 50), (90, 70, 60), (60, 45, 40), (30, 25, 25)),  # volcanic
    ((90, 40, 120), (60, 160, 150), (50, 110, 130), (120, 60, 140), (220, 200, 90)),  # alien
)


def _explosions(plan: _ClipPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times_ms, position relative to the view, size) of the game's explosions.

    Their own random stream, so the sound track can hear them without drawing the map.
    """
    rng = _rng(plan.seed, _STREAM_GAME, 2)
    mean_gap_ms = 1000 / rng.uniform(0.3, 0.9)
    rows = []
    end = 0.0
    while end <= plan.duration_ms:  # blocks of the same shape: a longer clip extends a shorter one
        block = rng.uniform(size=(64, 4))
        rows.append(block)
        end += float((-mean_gap_ms * np.log1p(-block[:, 0])).sum())
    events = np.vstack(rows)
    times = np.cumsum(-mean_gap_ms * np.log1p(-events[:, 0]))
    keep = times < plan.duration_ms
    return times[keep], events[keep, 1:3], 10 + 18 * events[keep, 3]


class _Game:
    """A scrolling strategy-game view: map, units, explosions and a HUD.

    Pure function of (seed, time): it never sees the highlights.
    """

    def __init__(self, plan: _ClipPlan):
        self.w, self.h = plan.width, plan.height
        self.unit = min(plan.width / 640, plan.height / 360)
        # A random stream per part, so a part's size (clip length, frame size) never shifts another.
        self._build_world(_rng(plan.seed, _STREAM_GAME, 0))
        self._plan_camera(_rng(plan.seed, _STREAM_GAME, 3), plan.duration_ms)
        self._plan_units(_rng(plan.seed, _STREAM_GAME, 4))
        self._plan_explosions(plan)
        self._build_hud(_rng(plan.seed, _STREAM_GAME, 5), plan.duration_ms)

    # ---- precomputed pictures

    def _build_world(self, rng: np.random.Generator) -> None:
        th, tw = max(64, 2 * self.h), max(64, 2 * self.w)
        self.th, self.tw = th, tw
        height_map = _periodic_noise(rng, th, tw, beta=3.3)
        detail = _periodic_noise(rng, th, tw, beta=1.3)
        biome = np.array(_BIOMES[int(rng.integers(len(_BIOMES)))], dtype=np.float32)
        biome = np.clip(biome * rng.uniform(0.8, 1.2, size=(1, 3)) + rng.uniform(-20, 20, size=(5, 3)), 0, 255)
        levels = np.sort(rng.uniform(0, 1, size=5)) * 0.2 + np.array([0.25, 0.38, 0.45, 0.68, 0.85])
        tex = np.stack([np.interp(height_map, levels, biome[:, c]) for c in range(3)], axis=-1).astype(np.float32)
        # Hill shading from the height gradient gives the map relief.
        gx = np.roll(height_map, -1, axis=1) - np.roll(height_map, 1, axis=1)
        gy = np.roll(height_map, -1, axis=0) - np.roll(height_map, 1, axis=0)
        slope = (gx - gy) / (np.std(gx - gy) + 1e-6)
        tex *= np.clip(1.0 + 0.12 * slope, 0.6, 1.4)[..., None]
        tex += (detail[..., None] - 0.5) * 22
        grid = max(8, int(round(32 * self.unit)))
        tex[::grid] *= 0.85
        tex[:, ::grid] *= 0.85
        hue = rng.uniform()
        self.team_colors = [_hsv(hue, 0.85, 0.95), _hsv(hue + rng.uniform(0.3, 0.7), 0.85, 0.95)]
        # Buildings stand on land: candidate spots in water are dropped.
        spots = rng.integers(0, [th, tw], size=(200, 2))
        spots = spots[height_map[spots[:, 0], spots[:, 1]] > levels[1] + 0.05][: int(rng.integers(18, 34))]
        for y, x in spots:
            size = int(rng.integers(5, 15) * self.unit) + 3
            team = self.team_colors[int(rng.integers(2))]
            ys = np.arange(y, y + size) % th
            xs = np.arange(x, x + size) % tw
            tex[np.ix_(ys, xs)] = team * 0.35
            tex[np.ix_(ys[1:-1], xs[1:-1])] = team * 0.8
        tex = np.clip(tex, 0, 255).astype(np.uint8)
        self.texture = tex
        # Padding by wrapping makes every viewport a plain slice: no per-frame modulo indexing.
        self.world = np.pad(tex, ((0, self.h), (0, self.w), (0, 0)), mode="wrap")

    def _plan_camera(self, rng: np.random.Generator, duration_ms: int) -> None:
        speed = rng.uniform(35, 110, size=2) * self.unit * rng.choice([-1, 1], size=2)
        self.cam_velocity = speed / 1000  # px per ms
        self.cam_wobble = rng.uniform(20, 90, size=2) * self.unit
        self.cam_wobble_period = rng.uniform(5000, 14000, size=2)
        self.cam_phase = rng.uniform(0, 2 * np.pi, size=2)
        self.cam_origin = rng.uniform(0, 1, size=2) * np.array([self.tw, self.th])
        # Minimap clicks: the view jumps somewhere else now and then.
        jumps = rng.uniform(size=(int(duration_ms / 4000) + 2, 3))
        self.jump_times = np.cumsum(4000 + 12000 * jumps[:, 0])
        self.jump_offsets = np.cumsum(jumps[:, 1:] * np.array([self.tw, self.th]), axis=0)

    def _camera(self, t_ms: float) -> tuple[int, int]:
        wobble = self.cam_wobble * np.sin(2 * np.pi * t_ms / self.cam_wobble_period + self.cam_phase)
        pos = self.cam_origin + self.cam_velocity * t_ms + wobble
        jumps = int(np.searchsorted(self.jump_times, t_ms, side="right"))
        if jumps:
            pos = pos + self.jump_offsets[jumps - 1]
        return int(pos[0]) % self.tw, int(pos[1]) % self.th

    def _plan_units(self, rng: np.random.Generator) -> None:
        n = int(rng.integers(10, 20))
        self.unit_pos = rng.uniform(0, 1, size=(n, 2)) * np.array([self.tw, self.th])
        self.unit_vel = rng.uniform(-1, 1, size=(n, 2)) * 40 * self.unit / 1000
        self.unit_orbit = rng.uniform(5, 40, size=(n, 2)) * self.unit
        self.unit_orbit_period = rng.uniform(2000, 7000, size=n)
        self.unit_phase = rng.uniform(0, 2 * np.pi, size=n)
        self.unit_team = rng.integers(0, 2, size=n)
        radii = np.maximum(2, np.round(rng.uniform(3, 7, size=n) * self.unit)).astype(int)
        self.unit_radius = radii
        self.unit_selected = rng.uniform(size=n) < 0.25
        self.masks = {int(r): (_disc_mask(int(r) + 1), _disc_mask(int(r))) for r in set(radii.tolist())}
        self.ring_masks = {}
        for r in set(radii.tolist()):
            d = np.arange(-(r + 4), r + 5)
            dist = np.sqrt(d[:, None] ** 2 + d[None, :] ** 2)
            self.ring_masks[int(r)] = np.abs(dist - (r + 3)) < 0.8

    def _units_at(self, t_ms: float) -> np.ndarray:
        angle = 2 * np.pi * t_ms / self.unit_orbit_period + self.unit_phase
        orbit = self.unit_orbit * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return (self.unit_pos + self.unit_vel * t_ms + orbit) % np.array([self.tw, self.th])

    def _plan_explosions(self, plan: _ClipPlan) -> None:
        self.boom_times, self.boom_pos, self.boom_size = _explosions(plan)
        self.boom_size = self.boom_size * self.unit
        self.boom_len_ms = 650.0
        reach = int(28 * self.unit) + 4  # the largest explosion _explosions makes
        d = np.arange(-reach, reach + 1)
        self.boom_dist = np.sqrt(d[:, None] ** 2 + d[None, :] ** 2).astype(np.float32)
        self.boom_reach = reach

    def _build_hud(self, rng: np.random.Generator, duration_ms: int) -> None:
        w, h, u = self.w, self.h, self.unit
        panel_tint = _hsv(rng.uniform(), 0.3, 0.22)
        self.top_h = max(3, int(round(0.045 * h)))
        self.bottom_h = max(6, int(round(0.17 * h)))
        bottom = np.empty((self.bottom_h, w, 3), dtype=np.float32)
        bottom[:] = panel_tint
        bottom[: max(1, int(2 * u))] = panel_tint * 2.2
        # Command card: a grid of buttons at the right.
        self.button = max(3, int(round(0.045 * h)))
        gap = max(1, int(round(u * 2)))
        self.card_x = w - 5 * (self.button + gap)
        self.card_cells = []
        for row in range(3):
            for col in range(5):
                x = self.card_x + col * (self.button + gap)
                y = int(3 * u) + gap + row * (self.button + gap)
                if y + self.button <= self.bottom_h:
                    bottom[y : y + self.button, x : x + self.button] = _hsv(rng.uniform(), 0.4, 0.55)
                    self.card_cells.append((x, y))
        self.bottom = np.clip(bottom, 0, 255).astype(np.uint8)
        top = np.empty((self.top_h, w, 3), dtype=np.float32)
        top[:] = panel_tint * 0.8
        self.top = top.astype(np.uint8)
        self.resource_colors = [_hsv(rng.uniform(), 0.7, 0.9) for _ in range(3)]
        self.resource_rate = rng.uniform(0.5, 3.0, size=3)
        # Minimap: a thumbnail of the whole map in the bottom-left corner.
        self.mm = max(8, int(round(0.28 * h)))
        rows = (np.arange(self.mm) * self.th / self.mm).astype(int)
        cols = (np.arange(self.mm) * self.tw / self.mm).astype(int)
        self.minimap = self.texture[rows][:, cols]
        # Selected-unit portrait in the middle of the bottom panel changes now and then.
        # Own streams for the schedules: their length grows with the clip's.
        portraits = _rng(int(rng.integers(2**31)), _STREAM_GAME, 7).uniform(size=(int(duration_ms / 1500) + 2, 4))
        self.portrait_times = np.cumsum(1500 + 4500 * portraits[:, 0])
        self.portrait_colors = np.vstack([60 + 170 * portraits[:, 1:], [[128, 128, 128]]]).astype(np.uint8)
        buttons = _rng(int(rng.integers(2**31)), _STREAM_GAME, 6).uniform(size=(int(duration_ms / 300) + 2, 2))
        self.button_times = np.cumsum(300 + 2200 * buttons[:, 0])
        self.button_pick = np.append((buttons[:, 1] * max(1, len(self.card_cells))).astype(int), 0)

    # ---- per frame

    def paint(self, t_ms: float) -> np.ndarray:
        ox, oy = self._camera(t_ms)
        frame = self.world[oy : oy + self.h, ox : ox + self.w].copy()
        units = self._units_at(t_ms)
        self._paint_units(frame, units, ox, oy, t_ms)
        self._paint_explosions(frame, t_ms)
        self._paint_hud(frame, units, ox, oy, t_ms)
        return frame

    def _to_screen(self, world_xy: np.ndarray, ox: int, oy: int, margin: int) -> np.ndarray:
        sx = (world_xy[:, 0] - ox + margin) % self.tw - margin
        sy = (world_xy[:, 1] - oy + margin) % self.th - margin
        return np.stack([sx, sy], axis=1)

    def _paint_units(self, frame: np.ndarray, units: np.ndarray, ox: int, oy: int, t_ms: float) -> None:
        margin = 16
        screen = self._to_screen(units, ox, oy, margin)
        visible = (screen[:, 0] < self.w + margin) & (screen[:, 1] < self.h + margin)
        for i in np.flatnonzero(visible):
            x, y = int(screen[i, 0]), int(screen[i, 1])
            r = int(self.unit_radius[i])
            outline, fill = self.masks[r]
            color = self.team_colors[int(self.unit_team[i])]
            if self.unit_selected[i]:
                _stamp(frame, self.ring_masks[r], x - r - 4, y - r - 4, (60, 230, 60))
            _stamp(frame, outline, x - r - 1, y - r - 1, (20, 20, 20))
            _stamp(frame, fill, x - r, y - r, color)
            health = 0.5 + 0.5 * math.sin(t_ms / 3000 + i)
            bar = 2 * r + 2
            _rect(frame, x - r - 1, y - r - 4, x - r - 1 + bar, y - r - 3, (40, 0, 0))
            _rect(frame, x - r - 1, y - r - 4, x - r - 1 + max(1, int(bar * health)), y - r - 3, (40, 220, 40))

    def _paint_explosions(self, frame: np.ndarray, t_ms: float) -> None:
        first = int(np.searchsorted(self.boom_times, t_ms - self.boom_len_ms))
        last = int(np.searchsorted(self.boom_times, t_ms, side="right"))
        for i in range(first, last):
            age = (t_ms - self.boom_times[i]) / self.boom_len_ms
            radius = 2 + self.boom_size[i] * age
            x = int(self.boom_pos[i, 0] * self.w)
            y = int(self.boom_pos[i, 1] * self.h)
            reach = self.boom_reach
            ring = np.abs(self.boom_dist - radius) < 1.5 + 2 * (1 - age)
            _stamp(frame, ring, x - reach, y - reach, (255, int(200 * (1 - age)) + 40, 40))
            if age < 0.35:
                _stamp(frame, self.boom_dist < radius * 0.7, x - reach, y - reach, (255, 240, 170))

    def _paint_hud(self, frame: np.ndarray, units: np.ndarray, ox: int, oy: int, t_ms: float) -> None:
        w, h = self.w, self.h
        frame[h - self.bottom_h :] = self.bottom
        frame[: self.top_h] = self.top
        # Resources in the top bar grow and are spent (saw-tooth), one bar each.
        slot = w // 8
        for k in range(3):
            x = int(slot * (0.3 + k * 1.2))
            fill = (t_ms / 1000 * self.resource_rate[k] / 7) % 1.0
            _rect(frame, x, 1, x + max(1, self.top_h - 2), self.top_h - 1, self.resource_colors[k])
            _rect(
                frame,
                x + self.top_h,
                1,
                x + self.top_h + max(1, int(fill * slot * 0.8)),
                self.top_h - 1,
                (235, 235, 235),
            )
        # Minimap with the viewport rectangle and unit dots.
        mm = self.mm
        y0 = h - mm
        frame[y0:h, 0:mm] = self.minimap
        vx, vy = int(ox / self.tw * mm), int(oy / self.th * mm)
        vw, vh = max(2, int(self.w / self.tw * mm)), max(2, int(self.h / self.th * mm))
        for dx, dy, ww, hh in ((vx, vy, vw, 1), (vx, vy + vh - 1, vw, 1), (vx, vy, 1, vh), (vx + vw - 1, vy, 1, vh)):
            x, y = min(dx, mm - 1), min(dy, mm - 1)
            _rect(frame, x, y0 + y, min(mm, x + ww), min(h, y0 + y + hh), (255, 255, 255))
        dots = (units / np.array([self.tw, self.th]) * mm).astype(int)
        for i, (dx, dy) in enumerate(dots):
            _rect(frame, dx, y0 + dy, dx + 2, y0 + dy + 2, self.team_colors[int(self.unit_team[i])])
        # The selected unit's portrait and a command button that lights up.
        px0 = mm + int(0.05 * w)
        size = self.bottom_h - max(2, int(4 * self.unit))
        pick = int(np.searchsorted(self.portrait_times, t_ms))
        _rect(frame, px0, h - size - 1, px0 + size, h - 1, self.portrait_colors[pick])
        if self.card_cells:
            cell = self.card_cells[
                int(self.button_pick[int(np.searchsorted(self.button_times, t_ms))]) % len(self.card_cells)
            ]
            top = h - self.bottom_h + cell[1]
            _rect(frame, cell[0], top, cell[0] + self.button, top + self.button, (250, 230, 120))


# --------------------------------------------------------------------------- the face cam


_SKIN_TONES = ((255, 219, 190), (241, 194, 160), (224, 172, 132), (198, 134, 96), (161, 102, 72), (110, 70, 50))
_HAIR = ((30, 20, 15), (70, 45, 25), (120, 80, 40), (200, 170, 110), (150, 60, 30), (40, 40, 45), (200, 200, 205))
_RAGE_RED = np.array((215, 40, 35), dtype=np.float32)


class _Pose(NamedTuple):
    """The streamer's state at one moment, read from the rage and behaviour schedules."""

    rage: float
    shout: float
    talk: float
    laugh: float
    drink: float
    drink_index: int
    lean: float
    blink: float
    sway_x: float
    sway_y: float
    secs: float


class _FaceCam:
    """The streamer in the face-cam box: drawn only inside the box, on a precomputed room."""

    def __init__(self, plan: _ClipPlan, rage: _Rage):
        rng = _rng(plan.seed, _STREAM_PERSON, 1)
        self.rage = rage
        self.life = _Behaviour(plan.seed, plan.duration_ms)
        self.bw, self.bh, self.bx, self.by = crop_pixels(plan.cam, plan.width, plan.height)
        bw, bh = self.bw, self.bh
        self.room = self._room(rng, bw, bh)
        self.led_rows = max(1, int(round(0.06 * bh)))
        self.led_hue = rng.uniform()
        self.led_period_ms = rng.uniform(6000, 20000)
        self.skin = np.clip(
            np.array(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], np.float32) + rng.uniform(-12, 12, 3), 0, 255
        )
        self.hair = np.array(_HAIR[int(rng.integers(len(_HAIR)))], np.float32)
        self.shirt = _hsv(rng.uniform(), rng.uniform(0.2, 0.8), rng.uniform(0.25, 0.9))
        self.mug = _hsv(rng.uniform(), 0.6, 0.8)
        self.headset = rng.uniform() < 0.6
        self.headset_color = _hsv(rng.uniform(), 0.3, rng.uniform(0.1, 0.5))
        # Face size and place vary per streamer (and with how the cam is framed).
        self.ry = bh * rng.uniform(0.22, 0.30)
        self.rx = self.ry * rng.uniform(0.72, 0.85)
        self.cx = bw * rng.uniform(0.40, 0.60)
        self.cy = bh * rng.uniform(0.40, 0.50)
        # Sensor noise: a few precomputed frames, cycled, so even a still room is never frozen.
        # Its own stream: the streamer looks the same at every frame size.
        noise_rng = _rng(plan.seed, _STREAM_PERSON, 2)
        self.noise = noise_rng.normal(0, 2.5, size=(5, bh, bw, 1)).astype(np.float32)

    @staticmethod
    def _room(rng: np.random.Generator, bw: int, bh: int) -> np.ndarray:
        top = _hsv(rng.uniform(), rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.8))
        bottom = top * rng.uniform(0.5, 0.9)
        g = (np.arange(bh, dtype=np.float32) / bh)[:, None, None]
        room = np.broadcast_to(top * (1 - g) + bottom * g, (bh, bw, 3)).copy()
        # A poster, a shelf and a lamp glow: fixed room details.
        px, py = rng.uniform(0.05, 0.7) * bw, rng.uniform(0.1, 0.4) * bh
        pw, ph = rng.uniform(0.15, 0.28) * bw, rng.uniform(0.2, 0.35) * bh
        room[int(py) : int(py + ph), int(px) : int(px + pw)] = _hsv(rng.uniform(), 0.6, 0.7)
        room[int(py + ph * 0.2) : int(py + ph * 0.6), int(px + pw * 0.2) : int(px + pw * 0.8)] = _hsv(
            rng.uniform(), 0.5, 0.9
        )
        shelf = int(rng.uniform(0.55, 0.75) * bh)
        room[shelf : shelf + max(1, bh // 40)] *= 0.6
        lx, ly = rng.uniform(0, bw), rng.uniform(0, bh * 0.5)
        yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
        glow = np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * (0.25 * bw) ** 2))
        room += glow[..., None] * 50
        # The gaming chair behind the streamer.
        _ellipse(room, bw * rng.uniform(0.4, 0.6), bh * 0.75, bw * 0.28, bh * 0.45, _hsv(rng.uniform(), 0.5, 0.25))
        return room

    def _pose(self, t_ms: float) -> _Pose:
        """What the streamer is doing at ``t_ms`` (shared by the default and the hard-mode cam)."""
        t = np.array([t_ms])
        life = self.life
        drink_env, drink_i = life.drink.envelope(t)
        sway_x, sway_y = life.sway(t_ms)
        return _Pose(
            float(self.rage.intensity(t)[0]),
            float(self.rage.shout(t)[0]),
            float(life.talking(t)[0]),
            float(life.laughing(t)[0]),
            float(drink_env[0]),
            int(drink_i[0]),
            float(life.lean.envelope(t)[0][0]),
            float(life.blink.envelope(t)[0][0]),
            sway_x,
            sway_y,
            t_ms / 1000,
        )

    def paint(self, frame: np.ndarray, index: int, t_ms: float) -> None:
        rage, shout, talk, laugh, drink, drink_i, lean, blink, sway_x, sway_y, secs = self._pose(t_ms)
        life = self.life

        canvas = self.room.copy()
        # The RGB strip breathes around its colour: a change the model must learn to ignore.
        swing = math.sin(2 * np.pi * t_ms / self.led_period_ms)
        canvas[: self.led_rows] = _hsv(self.led_hue + 0.06 * swing, 0.8, 0.8 + 0.15 * swing)

        scale = 1.0 + 0.08 * lean + 0.15 * rage
        rx, ry = self.rx * scale, self.ry * scale
        shake = 0.07 * self.bw * rage * math.sin(2 * np.pi * 6.0 * secs)
        cx = self.cx + 0.04 * self.bw * sway_x + shake
        cy = (
            self.cy
            + 0.025 * self.bh * sway_y
            + 0.03 * self.bh * laugh * math.sin(2 * np.pi * 5 * secs)
            - 0.04 * self.bh * lean
        )
        skin = self.skin + (_RAGE_RED - self.skin) * (0.65 * rage)

        # Body, neck, hair behind the head, the head, then the face on top.
        _ellipse(canvas, (cx + self.cx) / 2, cy + 2.0 * ry, 2.1 * rx, 1.15 * ry, self.shirt)
        _ellipse(canvas, cx, cy + 0.95 * ry, 0.45 * rx, 0.45 * ry, self.skin * 0.85)
        _ellipse(canvas, cx, cy - 0.12 * ry, 1.1 * rx, 1.0 * ry, self.hair)
        _ellipse(canvas, cx, cy, rx, ry, skin)
        _ellipse(canvas, cx, cy - 0.78 * ry, 0.95 * rx, 0.36 * ry, self.hair)
        if self.headset:
            _ellipse(canvas, cx, cy - 0.92 * ry, 1.05 * rx, 0.18 * ry, self.headset_color)
            for side in (-1, 1):
                _ellipse(canvas, cx + side * 1.0 * rx, cy, 0.22 * rx, 0.32 * ry, self.headset_color)
        if rage > 0:
            for side in (-1, 1):
                _ellipse(canvas, cx + side * 0.5 * rx, cy + 0.2 * ry, 0.25 * rx, 0.18 * ry, _RAGE_RED, alpha=0.6 * rage)

        gaze = life.gaze_at(t_ms) * (1 - rage)
        eye_open = (1 - blink) * (1 + 0.45 * rage) * (1 - 0.45 * laugh)
        for side in (-1, 1):
            ex, ey = cx + side * 0.38 * rx, cy - 0.08 * ry
            _ellipse(canvas, ex, ey, 0.17 * rx, max(0.4, 0.10 * ry * eye_open), (245, 245, 240))
            if eye_open > 0.3:
                _ellipse(
                    canvas,
                    ex + gaze[0] * 0.06 * rx,
                    ey + gaze[1] * 0.03 * ry,
                    0.07 * rx,
                    0.07 * ry * min(1.0, eye_open),
                    (30, 25, 20),
                )
            # Brows: raised a little when talking, pulled down and angled in when raging.
            lift = 0.05 * talk - 0.07 * rage
            _ellipse(
                canvas,
                ex,
                cy - (0.30 + lift) * ry,
                0.21 * rx,
                0.05 * ry,
                self.hair * 0.8,
                angle=side * -0.5 * rage + side * 0.08 * talk,
            )
        _ellipse(canvas, cx, cy + 0.15 * ry, 0.09 * rx, 0.12 * ry, skin * 0.82)

        opening = max(0.025, 0.12 * talk, 0.18 * laugh, rage * (0.12 + 0.28 * shout))
        mouth_w = (0.26 + 0.08 * laugh + 0.16 * rage) * rx
        my = cy + 0.48 * ry
        _ellipse(canvas, cx, my, mouth_w * 1.1, (opening + 0.035) * ry, skin * 0.6 + np.array([60, 0, 0], np.float32))
        _ellipse(canvas, cx, my, mouth_w, opening * ry, (55, 12, 18))
        if opening > 0.08:
            _ellipse(canvas, cx, my - 0.6 * opening * ry, mouth_w * 0.7, 0.3 * opening * ry, (240, 240, 235))

        if drink > 0 and rage < 0.3:
            side = float(life.drink_side[drink_i])
            hy = self.bh + 0.5 * ry - (self.bh + 0.5 * ry - (cy + 0.55 * ry)) * drink
            hx = cx + side * 0.55 * rx
            _ellipse(canvas, hx, hy + 0.35 * ry, 0.3 * rx, 0.4 * ry, self.skin * 0.95)
            mug_x0, mug_y0 = int(hx - 0.25 * rx), int(hy - 0.45 * ry)
            canvas[max(0, mug_y0) : max(0, int(hy + 0.15 * ry)), max(0, mug_x0) : max(0, int(hx + 0.25 * rx))] = (
                self.mug
            )
        if rage > 0:
            # Fists up, shaking.
            lift = min(1.0, 1.4 * rage)
            for side in (-1, 1):
                fy = (
                    self.bh
                    + 0.6 * ry
                    - (self.bh + 0.6 * ry - (cy - 0.1 * ry)) * lift
                    + 0.08 * ry * math.sin(2 * np.pi * 7 * secs + side)
                )
                fx = cx + side * 1.55 * rx
                _ellipse(canvas, fx, fy + 0.9 * ry, 0.22 * rx, 0.9 * ry, self.skin * 0.9)
                _ellipse(canvas, fx, fy, 0.42 * rx, 0.38 * ry, skin * 0.95)

        canvas += self.noise[index % len(self.noise)]
        np.clip(canvas, 0, 255, out=canvas)
        frame[self.by : self.by + self.bh, self.bx : self.bx + self.bw] = canvas.astype(np.uint8)


def _cam_border(frame: np.ndarray, box: tuple[int, int, int, int], color, thickness: int) -> None:
    """A fixed frame around the cam box, drawn just outside it (as stream overlays do)."""
    bw, bh, bx, by = box
    t = thickness
    _rect(frame, bx - t, by - t, bx + bw + t, by, color)
    _rect(frame, bx - t, by + bh, bx + bw + t, by + bh + t, color)
    _rect(frame, bx - t, by, bx, by + bh, color)
    _rect(frame, bx + bw, by, bx + bw + t, by + bh, color)


# --------------------------------------------------------------------------- hard mode
#
# What real streams have and the default clips lack: look-alikes (the face cam doing things
# that share colour, motion and subject with the rage but are not it), rooms of many kinds,
# a cam box that sits a few pixels off the nominal one, the cam being reframed, lighting
# that drifts and switches.  Everything here is drawn only when ``hard=True``; the default
# mode's pictures and random draws are untouched.

LOOKALIKE_MEAN_GAP_MS = 10_000
_LOOKALIKE_WEIGHTS = (0.19, 0.17, 0.15, 0.18, 0.16, 0.15)  # per LOOKALIKE_KINDS
_COMBINABLE = ("cheer", "laugh", "lean", "yawn")  # these sometimes happen under red light too


def jittered_cam(cam: Region, seed: int, width: int, height: int) -> Region:
    """The face-cam box a hard-mode stream (``seed``) really draws, for a nominal ``cam``.

    Moved by up to CAM_JITTER_PX pixels each way (at 640x360; scaled with the frame) and
    resized by up to CAM_SCALE_JITTER; kept inside the frame.  The label file keeps ``cam``.
    """
    rng = _rng(seed, _STREAM_HARD, 0)
    unit = min(width / 640, height / 360)
    x0, y0, x1, y1 = cam
    scale_x = 1 + CAM_SCALE_JITTER * rng.uniform(-1, 1)
    scale_y = float(np.clip(scale_x * (1 + 0.02 * rng.uniform(-1, 1)), 1 - CAM_SCALE_JITTER, 1 + CAM_SCALE_JITTER))
    w, h = min(1.0, (x1 - x0) * scale_x), min(1.0, (y1 - y0) * scale_y)
    cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * CAM_JITTER_PX * unit / width
    cy = (y0 + y1) / 2 + rng.uniform(-1, 1) * CAM_JITTER_PX * unit / height
    nx0 = min(max(cx - w / 2, 0.0), 1.0 - w)
    ny0 = min(max(cy - h / 2, 0.0), 1.0 - h)
    return Region(round(nx0, 6), round(ny0, 6), round(min(1.0, nx0 + w), 6), round(min(1.0, ny0 + h), 6))


def lookalike_spans(
    duration_ms: int,
    highlights: Sequence[tuple[int, int]],
    seed: int,
    *,
    mean_gap_ms: float = LOOKALIKE_MEAN_GAP_MS,
    margin_ms: int = LOOKALIKE_MARGIN_MS,
) -> list[tuple[int, int, str]]:
    """The look-alikes of a hard-mode clip: sorted ``(start_ms, end_ms, kind)``, 2-6 s each.

    ``kind`` is one of LOOKALIKE_KINDS, or ``"<kind>+redlight"`` (a cheer, laugh, lean-in or
    yawn under red room light).  None comes closer than ``margin_ms`` to a highlight; they
    never overlap each other.  Deterministic for (duration, highlights, seed).
    """
    rng = _rng(seed, _STREAM_HARD, 1)
    spans = sorted((int(s), int(e)) for s, e in highlights)
    weights = np.array(_LOOKALIKE_WEIGHTS) / sum(_LOOKALIKE_WEIGHTS)
    out: list[tuple[int, int, str]] = []
    t = 500 + 0.5 * rng.exponential(mean_gap_ms)
    while True:
        length = int(rng.integers(2000, 6001))
        start = int(t)
        end = start + length
        if end > duration_ms - 200:
            break
        clash = [e for s, e in spans if start < e + margin_ms and end > s - margin_ms]
        if clash:
            t = max(clash) + margin_ms + rng.uniform(0, 1500)
            continue
        kind = LOOKALIKE_KINDS[int(rng.choice(len(LOOKALIKE_KINDS), p=weights))]
        if kind in _COMBINABLE and rng.uniform() < 0.25:
            kind += "+redlight"
        out.append((start, end, kind))
        t = end + 1000 + rng.exponential(mean_gap_ms)
    return out


class _Schedule:
    """A piecewise-constant vector that glides to each new value over ``glide_ms``."""

    def __init__(self, times: np.ndarray, values: np.ndarray, glide_ms: float):
        self.times = np.asarray(times, dtype=np.float64)  # when value k (k >= 1) starts; value 0 before times[0]
        self.values = np.asarray(values, dtype=np.float64)
        self.glide_ms = glide_ms

    def at(self, t_ms: float) -> np.ndarray:
        k = int(np.searchsorted(self.times, t_ms, side="right"))
        if k == 0:
            return self.values[0]
        a = min(1.0, (t_ms - self.times[k - 1]) / self.glide_ms)
        return self.values[k - 1] + (self.values[k] - self.values[k - 1]) * a


def _changes(rng: np.random.Generator, duration_ms: int, mean_gap_ms: float) -> np.ndarray:
    times, t = [], rng.exponential(mean_gap_ms)
    while t < duration_ms:
        times.append(t)
        t += 3000 + rng.exponential(mean_gap_ms)
    return np.array(times)


def _hard_room(rng: np.random.Generator, bw: int, bh: int) -> np.ndarray:
    """One of several kinds of room behind the streamer (float32, bh x bw x 3)."""
    style = int(rng.integers(6))
    if style == 0:
        return _FaceCam._room(rng, bw, bh)  # the default's wall, poster, shelf, lamp and chair
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    wall = _hsv(rng.uniform(), rng.uniform(0.05, 0.7), rng.uniform(0.15, 0.85))
    g = (yy / max(bh, 1))[..., None]
    room = (wall * (1 - g) + wall * rng.uniform(0.45, 0.95) * g).astype(np.float32)
    u = bw / 118
    if style == 1:  # bookshelf: rows of coloured spines
        rows = int(rng.integers(2, 5))
        for r in range(rows):
            y0 = int(bh * (0.05 + 0.8 * r / rows))
            y1 = y0 + int(bh * 0.8 / rows * 0.8)
            x = int(rng.integers(0, max(1, int(6 * u)) + 1))
            while x < bw:
                width = max(1, int(rng.uniform(2, 6) * u))
                top = y0 + int(rng.uniform(0, 0.3) * (y1 - y0))
                room[top:y1, x : x + width] = _hsv(rng.uniform(), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9))
                x += width + int(rng.integers(0, 2))
            room[y1 : y1 + max(1, bh // 40)] = wall * 0.4
    elif style == 2:  # a window with blinds and daylight
        x0, y0 = int(rng.uniform(0.0, 0.5) * bw), int(rng.uniform(0.05, 0.25) * bh)
        x1, y1 = x0 + int(rng.uniform(0.3, 0.5) * bw), y0 + int(rng.uniform(0.3, 0.5) * bh)
        light = _hsv(rng.uniform(0.08, 0.6), rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.0))
        room[y0:y1, x0:x1] = light
        step = max(2, int(bh * 0.04))
        room[y0:y1:step, x0:x1] *= 0.7
        glow = np.exp(-((xx - (x0 + x1) / 2) ** 2 + (yy - (y0 + y1) / 2) ** 2) / (2 * (0.35 * bw) ** 2))
        room += glow[..., None] * 40
    elif style == 3:  # LED panels: a grid of coloured tiles
        cell = max(3, int(rng.uniform(10, 18) * u))
        hue = rng.uniform()
        for y in range(int(rng.integers(0, cell)), int(bh * 0.6), cell + 2):
            for x in range(int(rng.integers(0, cell)), bw, cell + 2):
                if rng.uniform() < 0.7:
                    room[y : y + cell, x : x + cell] = _hsv(hue + rng.uniform(-0.15, 0.15), 0.7, rng.uniform(0.5, 1.0))
    elif style == 4:  # dark wall with a neon sign
        room *= 0.5
        for _ in range(int(rng.integers(2, 5))):
            color = _hsv(rng.uniform(), 0.9, 1.0)
            cx, cy = rng.uniform(0.1, 0.9) * bw, rng.uniform(0.1, 0.4) * bh
            rx, ry = rng.uniform(0.05, 0.2) * bw, rng.uniform(0.03, 0.12) * bh
            _ellipse(room, cx, cy, rx, ry, color)
            _ellipse(room, cx, cy, max(0.5, rx - 1.5 * u), max(0.5, ry - 1.5 * u), wall * 0.5)
    else:  # a flat backdrop (green screen or a sheet) with a vignette
        room[:] = _hsv(rng.choice([0.33, rng.uniform()]), rng.uniform(0.3, 0.8), rng.uniform(0.4, 0.8))
        vignette = ((xx / bw - 0.5) ** 2 + (yy / bh - 0.5) ** 2)[..., None]
        room *= 1 - 0.6 * vignette
    if rng.uniform() < 0.4:  # a plant at one side
        px = bw * rng.choice([0.1, 0.9])
        for _ in range(5):
            _ellipse(
                room,
                px + rng.uniform(-0.08, 0.08) * bw,
                bh * rng.uniform(0.35, 0.65),
                0.05 * bw,
                0.12 * bh,
                _hsv(rng.uniform(0.25, 0.4), 0.7, rng.uniform(0.3, 0.6)),
                angle=rng.uniform(-0.8, 0.8),
            )
    lx, ly = rng.uniform(0, bw), rng.uniform(0, bh * 0.5)
    glow = np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * (0.25 * bw) ** 2))
    room += glow[..., None] * rng.uniform(0, 50)
    _ellipse(room, bw * rng.uniform(0.4, 0.6), bh * 0.75, bw * 0.28, bh * 0.45, _hsv(rng.uniform(), 0.5, 0.25))
    return room


def _reframe(canvas: np.ndarray, zoom: float, fx: float, fy: float) -> np.ndarray:
    """The cam zoomed in by ``zoom`` (>= 1) on a window placed at (fx, fy) in 0..1: bilinear."""
    h, w = canvas.shape[:2]
    if zoom <= 1.001 or w < 2 or h < 2:
        return canvas
    ww, wh = w / zoom, h / zoom
    x0, y0 = fx * (w - ww), fy * (h - wh)
    xs = np.clip(x0 + (np.arange(w) + 0.5) * ww / w - 0.5, 0, w - 1)
    ys = np.clip(y0 + (np.arange(h) + 0.5) * wh / h - 0.5, 0, h - 1)
    xi = np.minimum(xs.astype(np.int64), w - 2)
    yi = np.minimum(ys.astype(np.int64), h - 2)
    ax = (xs - xi).astype(np.float32)[None, :, None]
    ay = (ys - yi).astype(np.float32)[:, None, None]
    top, bottom = canvas[yi], canvas[yi + 1]
    top = top[:, xi] * (1 - ax) + top[:, xi + 1] * ax
    bottom = bottom[:, xi] * (1 - ax) + bottom[:, xi + 1] * ax
    return top * (1 - ay) + bottom * ay


_RED_LIGHTS = (
    np.array((1.35, 0.50, 0.55), np.float32),  # red
    np.array((1.30, 0.45, 1.10), np.float32),  # magenta
    np.array((1.40, 0.62, 0.80), np.float32),  # pink
)


class _HardFaceCam(_FaceCam):
    """The streamer of a hard-mode stream: the default's person in a jittered box, many rooms,
    drifting light, reframing, and look-alikes (cheers, hard laughs, leaning in, red light,
    alerts over the cam, yawns)."""

    def __init__(self, plan: _ClipPlan, rage: _Rage):
        super().__init__(plan, rage)
        assert plan.drawn_cam is not None
        self.bw, self.bh, self.bx, self.by = crop_pixels(plan.drawn_cam, plan.width, plan.height)
        bw, bh = self.bw, self.bh
        rng = _rng(plan.seed, _STREAM_HARD, 2)
        self.room = _hard_room(rng, bw, bh)
        self.led = rng.uniform() < 0.7
        self.led_rows = max(1, int(round(0.06 * bh)))
        self.ry = bh * rng.uniform(0.20, 0.32)
        self.rx = self.ry * rng.uniform(0.70, 0.86)
        self.cx = bw * rng.uniform(0.36, 0.64)
        self.cy = bh * rng.uniform(0.38, 0.52)
        self.noise = _rng(plan.seed, _STREAM_HARD, 3).normal(0, 2.5, size=(5, bh, bw, 1)).astype(np.float32)
        # Light: a per-room tint, a slow drift and a lamp switched now and then.
        rng = _rng(plan.seed, _STREAM_HARD, 4)
        self.tint = (1 + rng.uniform(-0.08, 0.08, size=3)).astype(np.float32)
        self.drift_ms, self.drift_phase = rng.uniform(20_000, 60_000), rng.uniform(0, 2 * np.pi)
        lamp_times = _changes(rng, plan.duration_ms, 40_000)
        self.lamp = _Schedule(lamp_times, np.r_[1.0, rng.uniform(0.82, 1.12, size=len(lamp_times))][:, None], 600)
        # Framing: the cam is zoomed or panned now and then (and some streams start zoomed).
        rng = _rng(plan.seed, _STREAM_HARD, 5)
        frame_times = _changes(rng, plan.duration_ms, 30_000)
        framings = rng.uniform(size=(len(frame_times) + 1, 3))
        framings[:, 0] = np.where(rng.uniform(size=len(framings)) < 0.45, 1.0, 1.05 + 0.25 * framings[:, 0])
        self.framing = _Schedule(frame_times, framings, 400)
        # Look-alikes, each with its own parameters.
        self.looks = _Spans.of([(s, e) for s, e, _ in plan.lookalikes], 250)
        self.look_kinds = [k for _, _, k in plan.lookalikes] or [""]
        self.look_params = [_rng(plan.seed, _STREAM_HARD, 10, s).uniform(size=8) for s, _, _ in plan.lookalikes] or [
            np.zeros(8)
        ]

    def _light(self, t_ms: float) -> np.ndarray:
        drift = 1 + 0.06 * math.sin(2 * np.pi * t_ms / self.drift_ms + self.drift_phase)
        return self.tint * np.float32(drift * float(self.lamp.at(t_ms)[0]))

    def paint(self, frame: np.ndarray, index: int, t_ms: float) -> None:
        rage, shout, talk, laugh, drink, drink_i, lean, blink, sway_x, sway_y, secs = self._pose(t_ms)
        life = self.life

        look_env, look_i = self.looks.envelope(np.array([t_ms]))
        look, li = float(look_env[0]), int(look_i[0])
        kind = self.look_kinds[li] if look > 0 else ""
        p = self.look_params[li]
        level = look * (0.75 + 0.25 * p[0])
        cheer = level if kind.startswith("cheer") else 0.0
        hard_laugh = level if kind.startswith("laugh") else 0.0
        lean_in = look * (0.45 + 0.45 * p[1]) if kind.startswith("lean") else 0.0
        yawn = level if kind.startswith("yawn") else 0.0
        red = look if kind.endswith("redlight") else 0.0
        alert = look if kind == "alert" else 0.0
        bw, bh = self.bw, self.bh

        canvas = self.room.copy()
        if self.led:
            swing = math.sin(2 * np.pi * t_ms / self.led_period_ms)
            canvas[: self.led_rows] = _hsv(self.led_hue + 0.06 * swing, 0.8, 0.8 + 0.15 * swing)

        scale = 1.0 + 0.08 * lean + 0.15 * rage + lean_in + 0.05 * cheer
        rx, ry = self.rx * scale, self.ry * scale
        shake = 0.07 * bw * rage * math.sin(2 * np.pi * 6.0 * secs)
        shake += 0.06 * bw * hard_laugh * math.sin(2 * np.pi * (4.0 + 1.5 * p[2]) * secs + p[3])
        cx = self.cx + 0.04 * bw * sway_x + shake
        cx += (0.5 * bw - cx) * 0.7 * min(1.0, lean_in)
        cy = self.cy + 0.025 * bh * sway_y + 0.03 * bh * laugh * math.sin(2 * np.pi * 5 * secs) - 0.04 * bh * lean
        cy += 0.25 * bh * lean_in - 0.05 * bh * cheer * abs(math.sin(2 * np.pi * 2.2 * secs)) - 0.03 * bh * yawn
        skin = self.skin + (_RAGE_RED - self.skin) * (0.65 * rage + 0.2 * hard_laugh)

        _ellipse(canvas, (cx + self.cx) / 2, cy + 2.0 * ry, 2.1 * rx, 1.15 * ry, self.shirt)
        _ellipse(canvas, cx, cy + 0.95 * ry, 0.45 * rx, 0.45 * ry, self.skin * 0.85)
        _ellipse(canvas, cx, cy - 0.12 * ry, 1.1 * rx, 1.0 * ry, self.hair)
        _ellipse(canvas, cx, cy, rx, ry, skin)
        _ellipse(canvas, cx, cy - 0.78 * ry, 0.95 * rx, 0.36 * ry, self.hair)
        if self.headset:
            _ellipse(canvas, cx, cy - 0.92 * ry, 1.05 * rx, 0.18 * ry, self.headset_color)
            for side in (-1, 1):
                _ellipse(canvas, cx + side * 1.0 * rx, cy, 0.22 * rx, 0.32 * ry, self.headset_color)
        blush = max(0.6 * rage, 0.4 * hard_laugh)
        if blush > 0:
            for side in (-1, 1):
                _ellipse(canvas, cx + side * 0.5 * rx, cy + 0.2 * ry, 0.25 * rx, 0.18 * ry, _RAGE_RED, alpha=blush)

        gaze = life.gaze_at(t_ms) * (1 - rage)
        eye_open = (
            (1 - blink)
            * (1 + 0.45 * rage + 0.4 * cheer)
            * (1 - 0.45 * laugh)
            * (1 - 0.8 * hard_laugh)
            * (1 - 0.9 * yawn)
        )
        for side in (-1, 1):
            ex, ey = cx + side * 0.38 * rx, cy - 0.08 * ry
            _ellipse(canvas, ex, ey, 0.17 * rx, max(0.4, 0.10 * ry * eye_open), (245, 245, 240))
            if eye_open > 0.3:
                _ellipse(
                    canvas,
                    ex + gaze[0] * 0.06 * rx,
                    ey + gaze[1] * 0.03 * ry,
                    0.07 * rx,
                    0.07 * ry * min(1.0, eye_open),
                    (30, 25, 20),
                )
            # Brows: angled in (rage) or out (cheer, surprise, a yawn), raised or pulled down.
            lift = 0.05 * talk - 0.07 * rage + 0.09 * cheer + 0.04 * yawn + 0.03 * hard_laugh
            tilt = -0.5 * rage + 0.08 * talk + 0.3 * cheer + 0.15 * yawn
            _ellipse(canvas, ex, cy - (0.30 + lift) * ry, 0.21 * rx, 0.05 * ry, self.hair * 0.8, angle=side * tilt)
        _ellipse(canvas, cx, cy + 0.15 * ry, 0.09 * rx, 0.12 * ry, skin * 0.82)

        cheer_syllable = 0.75 + 0.25 * math.sin(2 * np.pi * 3.0 * secs + 6 * p[4])
        laugh_wave = 0.6 + 0.4 * math.sin(2 * np.pi * 5.0 * secs)
        opening = max(
            0.025,
            0.12 * talk,
            0.18 * laugh,
            rage * (0.12 + 0.28 * shout),
            cheer * (0.22 + 0.16 * cheer_syllable),
            hard_laugh * (0.14 + 0.14 * laugh_wave),
            yawn * 0.45,
        )
        mouth_w = (0.26 + 0.08 * laugh + 0.16 * rage + 0.14 * cheer + 0.14 * hard_laugh - 0.1 * yawn) * rx
        my = cy + 0.48 * ry
        _ellipse(canvas, cx, my, mouth_w * 1.1, (opening + 0.035) * ry, skin * 0.6 + np.array([60, 0, 0], np.float32))
        _ellipse(canvas, cx, my, mouth_w, opening * ry, (55, 12, 18))
        if opening > 0.08:
            _ellipse(canvas, cx, my - 0.6 * opening * ry, mouth_w * 0.7, 0.3 * opening * ry, (240, 240, 235))

        if drink > 0 and rage < 0.3 and look == 0:
            side = float(life.drink_side[drink_i])
            hy = bh + 0.5 * ry - (bh + 0.5 * ry - (cy + 0.55 * ry)) * drink
            hx = cx + side * 0.55 * rx
            _ellipse(canvas, hx, hy + 0.35 * ry, 0.3 * rx, 0.4 * ry, self.skin * 0.95)
            mug_x0, mug_y0 = int(hx - 0.25 * rx), int(hy - 0.45 * ry)
            canvas[max(0, mug_y0) : max(0, int(hy + 0.15 * ry)), max(0, mug_x0) : max(0, int(hx + 0.25 * rx))] = (
                self.mug
            )
        if rage > 0:
            lift = min(1.0, 1.4 * rage)
            for side in (-1, 1):
                fy = (
                    bh
                    + 0.6 * ry
                    - (bh + 0.6 * ry - (cy - 0.1 * ry)) * lift
                    + 0.08 * ry * math.sin(2 * np.pi * 7 * secs + side)
                )
                fx = cx + side * 1.55 * rx
                _ellipse(canvas, fx, fy + 0.9 * ry, 0.22 * rx, 0.9 * ry, self.skin * 0.9)
                _ellipse(canvas, fx, fy, 0.42 * rx, 0.38 * ry, skin * 0.95)
        elif cheer > 0 or yawn > 0:
            # Arms up: waving open hands (a cheer) or a slow stretch with the hands over the head.
            up = min(1.0, 1.4 * max(cheer, yawn))
            top, spread = (cy - 0.95 * ry, 1.5 * rx) if cheer > 0 else (cy - 1.3 * ry, 0.8 * rx)
            for side in (-1, 1):
                wave_ = 0.12 * rx * math.sin(2 * np.pi * 2.5 * secs + side) if cheer > 0 else 0.0
                fy = bh + 0.6 * ry - (bh + 0.6 * ry - top) * up
                fx = cx + side * spread + wave_
                _ellipse(canvas, fx, fy + 0.9 * ry, 0.22 * rx, 0.9 * ry, self.skin * 0.9)
                _ellipse(canvas, fx, fy, 0.38 * rx, 0.46 * ry, self.skin)

        gain = self._light(t_ms)
        if red > 0:
            pulse = 0.85 + 0.15 * math.sin(2 * np.pi * 1.5 * secs)
            gain = gain * (1 + (_RED_LIGHTS[int(p[5] * len(_RED_LIGHTS))] - 1) * np.float32(red * pulse))
            canvas += np.array((40, 0, 12), np.float32) * np.float32(red)
        canvas *= gain
        zoom, fx, fy = self.framing.at(t_ms)
        canvas = _reframe(canvas, float(zoom), float(fx), float(fy))
        canvas += self.noise[index % len(self.noise)]
        np.clip(canvas, 0, 255, out=canvas)
        frame[self.by : self.by + bh, self.bx : self.bx + bw] = canvas.astype(np.uint8)
        if alert > 0:
            self._paint_alert(frame, alert, t_ms - float(self.looks.starts[li]), p)

    def _paint_alert(self, frame: np.ndarray, alpha: float, age_ms: float, p: np.ndarray) -> None:
        """A stream alert or an emote popping over the cam (a graphic, not the streamer)."""
        bw, bh = self.bw, self.bh
        region = frame[self.by : self.by + bh, self.bx : self.bx + bw].astype(np.float32)
        pop = (0.6 + 0.4 * min(1.0, age_ms / 250)) * (1 + 0.06 * math.sin(2 * np.pi * 2 * age_ms / 1000))
        style = int(p[6] * 3)
        x, y = bw * (0.3 + 0.4 * p[3]), bh * (0.3 + 0.4 * p[4])
        r = 0.3 * min(bw, bh) * pop * (0.9 + 0.3 * p[7])
        if style == 0:  # an angry emote: a red face with angled brows and an open mouth
            _ellipse(region, x, y, 1.08 * r, 1.08 * r, (110, 20, 15), alpha)
            _ellipse(region, x, y, r, r, (230, 55, 35), alpha)
            for side in (-1, 1):
                _ellipse(
                    region, x + side * 0.35 * r, y - 0.38 * r, 0.3 * r, 0.08 * r, (40, 10, 10), alpha, angle=side * -0.5
                )
                _ellipse(region, x + side * 0.35 * r, y - 0.12 * r, 0.12 * r, 0.12 * r, (250, 250, 250), alpha)
            _ellipse(
                region, x, y + 0.45 * r, 0.4 * r, 0.22 * r * (0.8 + 0.2 * math.sin(age_ms / 80)), (60, 10, 10), alpha
            )
        elif style == 1:  # a fire / explosion emote
            flicker = math.sin(age_ms / 60)
            _ellipse(region, x, y + 0.2 * r, 1.0 * r, 0.8 * r, (220, 50, 20), alpha)
            _ellipse(region, x + 0.1 * r * flicker, y - 0.1 * r, 0.7 * r, 0.9 * r, (250, 140, 30), alpha)
            _ellipse(region, x, y + 0.1 * r, 0.4 * r, 0.5 * r, (255, 230, 120), alpha)
        else:  # a follower alert banner with "text"
            hue = p[7] * 0.3 - 0.1  # reds, oranges, purples
            top = int(bh * (0.55 + 0.15 * p[4]) - 0.15 * bh * pop)
            bottom = min(bh, int(top + 0.32 * bh * pop))
            color = _hsv(hue, 0.8, 0.9)
            banner = region[max(0, top) : bottom, int(0.05 * bw) : int(0.95 * bw)]
            banner += alpha * (color - banner)
            for k in range(4):
                x0 = int(bw * (0.25 + 0.17 * k))
                block = region[
                    max(0, top + (bottom - top) // 3) : max(0, bottom - (bottom - top) // 3), x0 : x0 + int(0.12 * bw)
                ]
                block += alpha * (np.float32(245) - block)
            _ellipse(region, 0.15 * bw, (top + bottom) / 2, 0.07 * bw, 0.07 * bw, (250, 60, 90), alpha)
        np.clip(region, 0, 255, out=region)
        frame[self.by : self.by + bh, self.bx : self.bx + bw] = region.astype(np.uint8)


def _hard_frames(plan: _ClipPlan) -> Iterator[np.ndarray]:
    game = _Game(plan)
    cam = _HardFaceCam(plan, _Rage(plan.highlights, plan.seed))
    border = _hsv(_rng(plan.seed, _STREAM_GAME, 1).uniform(), 0.7, 0.9)
    thickness = max(1, int(round(2 * game.unit)))
    assert plan.drawn_cam is not None
    box = crop_pixels(plan.drawn_cam, plan.width, plan.height)
    for index in range(plan.frame_count):
        t_ms = plan.frame_time_ms(index)
        frame = game.paint(t_ms)
        _cam_border(frame, box, border, thickness)
        cam.paint(frame, index, t_ms)
        yield frame


def _lookalike_loudness(plan: _ClipPlan, t_ms: np.ndarray) -> np.ndarray:
    """How loud the voice is during look-alikes (cheering and laughing are loud too)."""
    if not plan.lookalikes:
        return np.zeros(t_ms.shape)
    env, index = _Spans.of([(s, e) for s, e, _ in plan.lookalikes], 250).envelope(t_ms)
    loudness = np.array(
        [{"cheer": 0.4, "laugh": 0.25, "yawn": 0.08}.get(k.split("+")[0], 0.0) for _, _, k in plan.lookalikes]
    )
    return env * loudness[index] * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t_ms / 1000))


# --------------------------------------------------------------------------- frames and audio


def _frames(plan: _ClipPlan) -> Iterator[np.ndarray]:
    if plan.hard:
        yield from _hard_frames(plan)
        return
    game = _Game(plan)
    cam = _FaceCam(plan, _Rage(plan.highlights, plan.seed))
    border = _hsv(_rng(plan.seed, _STREAM_GAME, 1).uniform(), 0.7, 0.9)
    thickness = max(1, int(round(2 * game.unit)))
    box = crop_pixels(plan.cam, plan.width, plan.height)
    for index in range(plan.frame_count):
        t_ms = plan.frame_time_ms(index)
        frame = game.paint(t_ms)
        _cam_border(frame, box, border, thickness)
        cam.paint(frame, index, t_ms)
        yield frame


def iter_stream_frames(
    *,
    duration_s: float,
    highlights: Sequence[tuple[int, int]],
    seed: int,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    cam: Region = DEFAULT_CAM,
    hard: bool = False,
) -> Iterator[np.ndarray]:
    """The clip's RGB frames (height x width x 3 uint8), made lazily; frame i is shown at i/fps.

    ``hard=True``: the hard mode (see ``make_stream_clip``).
    """
    plan = _plan_clip(
        duration_s=duration_s, highlights=highlights, seed=seed, width=width, height=height, fps=fps, cam=cam, hard=hard
    )
    return _frames(plan)


def _write_audio(plan: _ClipPlan, path: Path) -> None:
    """Mono 16-bit 48 kHz: game sound throughout, talking, and shouting during highlights.

    Made in one-second chunks (memory stays flat for long VODs); the voice's phase is
    carried across chunks so its pitch glides without clicks.
    """
    rng = _rng(plan.seed, _STREAM_AUDIO, 0)
    drone_hz = rng.uniform(50, 220, size=3)
    drone_mod_hz = rng.uniform(0.05, 0.4, size=3)
    beat_s = 60 / rng.uniform(80, 140)
    voice_hz = rng.uniform(95, 220)
    booms = _explosions(plan)[0]
    rage = _Rage(plan.highlights, plan.seed)
    life = _Behaviour(plan.seed, plan.duration_ms)
    phase = 0.0
    harmonics = np.arange(1, 7)[:, None]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        for chunk, first in enumerate(range(0, plan.audio_samples, AUDIO_RATE)):
            n = min(AUDIO_RATE, plan.audio_samples - first)
            noise = _rng(plan.seed, _STREAM_AUDIO, chunk + 1).standard_normal(n)
            t = (first + np.arange(n)) / AUDIO_RATE
            t_ms = t * 1000
            sound = np.zeros(n)
            for hz, mod in zip(drone_hz, drone_mod_hz):
                sound += 0.035 * (0.6 + 0.4 * np.sin(2 * np.pi * mod * t)) * np.sin(2 * np.pi * hz * t)
            sound += 0.05 * np.exp(-(t % beat_s) / 0.02) * noise
            for boom in booms[(booms > t_ms[0] - 1500) & (booms <= t_ms[-1])]:
                age = (t_ms - boom) / 1000
                sound += np.where(age >= 0, 0.22 * np.exp(-np.maximum(age, 0) / 0.25), 0.0) * noise
            r = rage.intensity(t_ms)
            loud = 0.10 * life.talking(t_ms) + 0.06 * life.laughing(t_ms) + 0.55 * r * (0.5 + 0.5 * rage.shout(t_ms))
            if plan.hard:
                loud = loud + _lookalike_loudness(plan, t_ms)
            pitch = voice_hz * (1 + 0.08 * np.sin(2 * np.pi * 0.9 * t) + 0.6 * r)
            phases = phase + np.cumsum(2 * np.pi * pitch / AUDIO_RATE)
            phase = float(phases[-1] % (2 * np.pi))
            voiced = (np.sin(harmonics * phases[None, :]) / harmonics).sum(axis=0) * 0.45
            sound += loud * voiced + 0.15 * r * noise
            pcm = (np.clip(sound, -1.0, 1.0) * 32000).astype("<i2")
            out.writeframes(pcm.tobytes())


# --------------------------------------------------------------------------- public makers


def make_stream_clip(
    out: Path,
    *,
    duration_s: float,
    highlights: Sequence[tuple[int, int]],
    seed: int,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    cam: Region = DEFAULT_CAM,
    audio: bool = True,
    force: bool = False,
    hard: bool = False,
) -> ClipTruth:
    """Write one synthetic stream clip to ``out`` (MP4, H.264 + AAC) and return its truth.

    The clip has ``round(duration_s * fps)`` frames; ``highlights`` are exact
    ``(start_ms, end_ms)`` spans inside it.  Written atomically; an existing ``out`` is
    only replaced with ``force``.

    ``hard=True`` draws what real streams have and the default clips lack: look-alikes
    (``lookalike_spans``: cheering, hard laughs with a shaking head, leaning in close, red
    room light, alerts/emotes over the cam, yawns with arms up; never near a highlight), a
    room of one of several kinds, a cam box moved and resized a little (``jittered_cam``;
    ``cam`` stays the nominal box a label file uses), the cam reframed now and then, and
    drifting light.  The truth then lists the look-alikes and the drawn box too.
    """
    from autotosis.media.encode import encode_frames

    out = Path(out)
    plan = _plan_clip(
        duration_s=duration_s, highlights=highlights, seed=seed, width=width, height=height, fps=fps, cam=cam, hard=hard
    )
    with atomic_path(out, force=force) as tmp, tempfile.TemporaryDirectory(prefix="autotosis-audio-") as scratch:
        wav = None
        if audio:
            wav = Path(scratch) / "audio.wav"
            _write_audio(plan, wav)
        encode_frames(_frames(plan), tmp, width=width, height=height, fps=fps, audio_wav=wav, keyframe_interval_s=2.0)
    return _truth_of(plan, out)


def _truth_of(plan: _ClipPlan, path: Path) -> ClipTruth:
    if not plan.hard:
        return ClipTruth(
            path, plan.duration_ms, plan.highlights, plan.cam, plan.width, plan.height, plan.fps, plan.seed
        )
    return ClipTruth(
        path,
        plan.duration_ms,
        plan.highlights,
        plan.cam,
        plan.width,
        plan.height,
        plan.fps,
        plan.seed,
        lookalikes=plan.lookalikes,
        drawn_cam=plan.drawn_cam,
        hard=True,
    )


def random_highlights(
    duration_ms: int,
    count: int,
    rng: np.random.Generator,
    min_len_ms: int = 3000,
    max_len_ms: int = 9000,
    min_gap_ms: int = 6000,
) -> list[tuple[int, int]]:
    """``count`` sorted, disjoint spans inside ``[1000, duration_ms - 1000]``, at least ``min_gap_ms`` apart.

    Lengths are drawn from ``[min_len_ms, max_len_ms]`` (shrunk towards the minimum when
    they would not fit) and the spare time is spread at random before, between and after.
    Raises UsageError when even the shortest spans cannot fit.
    """
    if count < 0 or min_len_ms <= 0 or max_len_ms < min_len_ms or min_gap_ms < 0:
        raise UsageError(
            f"bad highlight request: count={count}, lengths {min_len_ms}-{max_len_ms} ms, gap {min_gap_ms} ms"
        )
    if count == 0:
        return []
    lo, hi = 1000, duration_ms - 1000
    room = hi - lo
    gaps = (count - 1) * min_gap_ms
    if room < count * min_len_ms + gaps:
        raise UsageError(
            f"{count} highlight(s) of at least {min_len_ms / 1000:g} s, {min_gap_ms / 1000:g} s apart, "
            f"do not fit in a {duration_ms / 1000:g} s clip",
            hint="ask for fewer highlights or longer clips",
        )
    lengths = rng.integers(min_len_ms, max_len_ms + 1, size=count)
    extra = lengths - min_len_ms
    budget = room - gaps - count * min_len_ms  # time the spans may take beyond their minimum
    if extra.sum() > budget:
        # Too long to fit: shrink them, but keep some spare time so they are not packed wall to wall.
        target = budget * rng.uniform(0.5, 0.9)
        lengths = min_len_ms + np.floor(extra * (target / extra.sum())).astype(np.int64)
    slack = room - int(lengths.sum()) - gaps
    cuts = np.sort(rng.integers(0, slack + 1, size=count))
    spans = []
    position, used = lo, 0
    for length, cut in zip(lengths.tolist(), cuts.tolist()):
        position += cut - used
        used = cut
        spans.append((position, position + length))
        position += length + min_gap_ms
    return spans


def _derive_seed(*key: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, np.uint32)[0])


def _max_highlights(duration_ms: int, min_len_ms: int = 3000, min_gap_ms: int = 6000) -> int:
    return max(0, (duration_ms - 2000 + min_gap_ms) // (min_len_ms + min_gap_ms))


def _plan_sample_set(
    folder: Path,
    *,
    seed: int,
    train_clips: int,
    clip_s: float,
    heldout_s: float,
    heldout_events: int,
    width: int,
    height: int,
    fps: int,
    cam: Region,
) -> tuple[list[ClipTruth], ClipTruth]:
    """Every clip's name, seed and highlights, decided before any pixel is drawn."""
    if train_clips < 1:
        raise UsageError(f"need at least one training clip, not {train_clips}")
    rng = _rng(seed, _KIND_HIGHLIGHTS)
    clip = _plan_clip(duration_s=clip_s, highlights=(), seed=0, width=width, height=height, fps=fps, cam=cam)
    vod = _plan_clip(duration_s=heldout_s, highlights=(), seed=0, width=width, height=height, fps=fps, cam=cam)
    most = _max_highlights(clip.duration_ms)
    if most < 1:
        raise UsageError(
            f"training clips of {clip_s:g} s are too short for a highlight", hint="use clips of at least 5 s"
        )
    # About a quarter of the training clips show no highlight at all.
    empty = set(rng.choice(train_clips, size=train_clips // 4, replace=False).tolist())
    seeds = [_derive_seed(seed, _KIND_TRAIN, i) for i in range(train_clips)]
    train = []
    for i in range(train_clips):
        count = 0 if i in empty else min(most, int(rng.integers(1, 4)))
        spans = tuple(random_highlights(clip.duration_ms, count, rng))
        train.append(
            ClipTruth(folder / f"train_{i:02d}.mp4", clip.duration_ms, spans, clip.cam, width, height, fps, seeds[i])
        )
    heldout_seed = _derive_seed(seed, _KIND_HELDOUT, 0)
    while heldout_seed in seeds:
        heldout_seed = (heldout_seed + 1) % 2**32
    spans = tuple(random_highlights(vod.duration_ms, heldout_events, rng))
    heldout = ClipTruth(folder / "heldout_vod.mp4", vod.duration_ms, spans, vod.cam, width, height, fps, heldout_seed)
    return train, heldout


def _plan_hard_sample_set(
    folder: Path,
    *,
    seed: int,
    train_clips: int,
    clip_s_range: tuple[float, float],
    heldout_s: float,
    heldout_events: int,
    width: int,
    height: int,
    fps: int,
    cam: Region,
) -> tuple[list[ClipTruth], ClipTruth]:
    """The hard mode's plan: clips of different lengths, each stream with its own look-alikes and box.

    Each clip's plan depends only on (seed, its index), the VOD's only on the seed: a set of
    n clips is the first n clips of a larger set with the same seed, with the same VOD.
    """
    if train_clips < 1:
        raise UsageError(f"need at least one training clip, not {train_clips}")
    lo, hi = (float(v) for v in clip_s_range)
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise UsageError(
            f"clip length range {clip_s_range} is not usable",
            hint="give (shortest, longest) seconds, 0 < shortest <= longest",
        )
    vod = _plan_clip(duration_s=heldout_s, highlights=(), seed=0, width=width, height=height, fps=fps, cam=cam)
    if (
        _max_highlights(
            _plan_clip(duration_s=hi, highlights=(), seed=0, width=width, height=height, fps=fps, cam=cam).duration_ms
        )
        < 1
    ):
        raise UsageError(
            f"training clips of at most {hi:g} s are too short for a highlight", hint="use clips of at least 5 s"
        )
    # Every fourth clip (from a seeded offset) shows no highlight at all.
    empty_phase = int(_rng(seed, _KIND_HARD, _KIND_HIGHLIGHTS).integers(4))
    seeds = [_derive_seed(seed, _KIND_HARD, _KIND_TRAIN, i) for i in range(train_clips)]
    train = []
    for i in range(train_clips):
        rng = _rng(seed, _KIND_HARD, _KIND_HIGHLIGHTS, i + 1)
        duration_s = round(float(rng.uniform(lo, hi)), 1)
        length = _plan_clip(
            duration_s=duration_s, highlights=(), seed=0, width=width, height=height, fps=fps, cam=cam
        ).duration_ms
        most = _max_highlights(length)
        count = 0 if i % 4 == empty_phase or most < 1 else min(most, int(rng.integers(1, 4)))
        spans = random_highlights(length, count, rng)
        plan = _plan_clip(
            duration_s=duration_s,
            highlights=spans,
            seed=seeds[i],
            width=width,
            height=height,
            fps=fps,
            cam=cam,
            hard=True,
        )
        train.append(_truth_of(plan, folder / f"train_{i:02d}.mp4"))
    heldout_seed = _derive_seed(seed, _KIND_HARD, _KIND_HELDOUT)
    while heldout_seed in seeds:
        heldout_seed = (heldout_seed + 1) % 2**32
    spans = random_highlights(vod.duration_ms, heldout_events, _rng(seed, _KIND_HARD, _KIND_HELDOUT, 1))
    plan = _plan_clip(
        duration_s=heldout_s,
        highlights=spans,
        seed=heldout_seed,
        width=width,
        height=height,
        fps=fps,
        cam=cam,
        hard=True,
    )
    return train, _truth_of(plan, folder / "heldout_vod.mp4")


def _truth_document(
    params: dict, folder: Path, train: Sequence[ClipTruth], heldout: ClipTruth | None, sizes: dict[str, int]
) -> str:
    def entry(clip: ClipTruth) -> dict:
        return {**clip.to_json(folder), "bytes": sizes[clip.path.name]}

    document = {
        "generator": "autotosis.demo.samples",
        "params": params,
        "complete": heldout is not None,
        "train": [entry(c) for c in train],
        "heldout": entry(heldout) if heldout is not None else None,
    }
    return json.dumps(document, indent=2) + "\n"


def _reusable_clips(folder: Path, params: dict) -> dict[str, int]:
    """Clips a previous run with the same parameters finished: name -> byte size.

    Generation is deterministic, so a finished clip (recorded in truth.json, size
    unchanged) need not be drawn again: a re-run or a resumed run is cheap.
    """
    try:
        document = json.loads((folder / TRUTH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("params") != params:
        return {}
    entries = list(document.get("train") or []) + ([document["heldout"]] if document.get("heldout") else [])
    done = {}
    for item in entries:
        try:
            path = folder / item["path"]
            if path.is_file() and path.stat().st_size == int(item["bytes"]):
                done[path.name] = int(item["bytes"])
        except (KeyError, TypeError, ValueError, OSError):
            continue
    return done


def make_sample_set(
    folder: Path,
    *,
    seed: int = 0,
    train_clips: int = 16,
    clip_s: float = 30.0,
    heldout_s: float = 240.0,
    heldout_events: int = 8,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    on_clip: Callable[[int, int], None] | None = None,
    cam: Region = DEFAULT_CAM,
    force: bool = False,
    hard: bool = False,
    clip_s_range: tuple[float, float] | None = None,
) -> SampleSet:
    """Write training clips, a held-out "VOD" and truth.json into ``folder``.

    ``train_NN.mp4``: ``train_clips`` clips of ``clip_s`` seconds, about a quarter without
    any highlight, the others with 1-3.  ``heldout_vod.mp4``: ``heldout_s`` seconds with
    ``heldout_events`` highlights, drawn with a seed no training clip uses (a different
    streamer, room and map).  ``truth.json`` lists every clip's exact truth (ms).
    ``on_clip(done, total)`` is called after each file.  Deterministic for a seed; clips
    that an earlier run with the same parameters finished are kept, not redrawn.
    Other existing files are only replaced with ``force``.

    ``hard=True``: every clip in the hard mode (see ``make_stream_clip``), training clips of
    different lengths, drawn uniformly from ``clip_s_range`` (default: half to twice
    ``clip_s``, 15-60 s for 30), their streamers, rooms and boxes all different, and the
    held-out VOD another streamer and room again.  The truth lists each clip's look-alikes
    and drawn box.  A hard set is cached apart from a default one (its parameters differ).
    """
    folder = Path(folder)
    params = {
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "train_clips": int(train_clips),
        "clip_s": float(clip_s),
        "heldout_s": float(heldout_s),
        "heldout_events": int(heldout_events),
        "width": int(width),
        "height": int(height),
        "fps": int(fps),
        "cam": [float(v) for v in cam],
    }
    if hard:
        clip_s_range = (
            (clip_s / 2, clip_s * 2) if clip_s_range is None else (float(clip_s_range[0]), float(clip_s_range[1]))
        )
        params["hard"] = HARD_GENERATOR_VERSION
        params["clip_s_range"] = list(clip_s_range)
        train, heldout = _plan_hard_sample_set(
            folder,
            seed=seed,
            train_clips=train_clips,
            clip_s_range=clip_s_range,
            heldout_s=heldout_s,
            heldout_events=heldout_events,
            width=width,
            height=height,
            fps=fps,
            cam=cam,
        )
    else:
        train, heldout = _plan_sample_set(
            folder,
            seed=seed,
            train_clips=train_clips,
            clip_s=clip_s,
            heldout_s=heldout_s,
            heldout_events=heldout_events,
            width=width,
            height=height,
            fps=fps,
            cam=cam,
        )
    reusable = _reusable_clips(folder, params)
    clips = [*train, heldout]
    if not force:
        for clip in clips:
            if clip.path.exists() and clip.path.name not in reusable:
                raise OutputExistsError(clip.path)
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}
    for done, clip in enumerate(clips, start=1):
        name = clip.path.name
        if name in reusable:
            sizes[name] = reusable[name]
        else:
            make_stream_clip(
                clip.path,
                duration_s=clip.duration_ms / 1000,
                highlights=clip.highlights,
                seed=clip.seed,
                width=width,
                height=height,
                fps=fps,
                cam=cam,
                audio=True,
                force=True,
                hard=hard,
            )
            sizes[name] = clip.path.stat().st_size
        # truth.json grows clip by clip, so an interrupted run resumes where it stopped.
        finished = heldout if done == len(clips) else None
        write_text_atomic(
            folder / TRUTH_FILE,
            _truth_document(params, folder, train[: min(done, len(train))], finished, sizes),
            force=True,
        )
        if on_clip is not None:
            on_clip(done, len(clips))
    return SampleSet(folder, tuple(train), heldout)


def load_sample_set(folder: Path) -> SampleSet:
    """Read a finished sample set back from ``folder/truth.json``."""
    folder = Path(folder)
    path = folder / TRUTH_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not document.get("complete"):
            raise DataError(
                f"{path}: the sample set is incomplete",
                hint="run make_sample_set (or `autotosis demo`) again to finish it",
            )
        return SampleSet(
            folder,
            tuple(ClipTruth.from_json(item, folder) for item in document["train"]),
            ClipTruth.from_json(document["heldout"], folder),
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a sample-set truth file ({exc})") from exc
