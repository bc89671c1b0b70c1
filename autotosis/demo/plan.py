"""What a generated clip is made of: its truth (``ClipTruth``, ``SampleSet``), its plan (seeded random
streams, one per concern) and the envelopes of its highlights and ordinary behaviour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotosis.core.region import Region

DEFAULT_CAM = Region(0.7833, 0.1296, 0.9682, 0.3694)
AUDIO_RATE = 48_000

# Independent random streams: the game never sees the highlights, the person's ordinary
# behaviour does not either, so the same seed with other highlights changes only the rage.
_STREAM_GAME, _STREAM_PERSON, _STREAM_RAGE, _STREAM_AUDIO = 1, 2, 3, 4


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
    audio_kind: str = "heard"  # one of AUDIO_KINDS (frames.py): what the sound track says about highlights

    def frame_time_ms(self, index: int) -> float:
        # Frame i is shown at exactly i/fps s (the encoder gets a constant rate); a float is
        # fine for drawing, the truth itself stays in integer milliseconds.
        return index * 1000.0 / self.fps

    @property
    def audio_samples(self) -> int:
        return int(round(self.frame_count * AUDIO_RATE / self.fps))


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
