"""A clip's plan made concrete: the plan drawn from the seed (hard mode's look-alikes and cam jitter
included), its frames (drawn lazily) and its audio track."""

from __future__ import annotations

import math
import numbers
import wave
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from autotosis.core.errors import UsageError
from autotosis.core.region import Region, crop_pixels
from autotosis.demo.draw import _hsv
from autotosis.demo.facecam import _cam_border, _FaceCam
from autotosis.demo.game import _explosions, _Game
from autotosis.demo.hard import _hard_frames, _lookalike_loudness, jittered_cam, lookalike_spans
from autotosis.demo.plan import _STREAM_AUDIO, _STREAM_GAME, AUDIO_RATE, DEFAULT_CAM, _Behaviour, _ClipPlan, _Rage, _rng

# What the sound track says about the highlights (issue 20: sound as a second input):
# heard: the streamer shouts during each highlight (the default, as before);
# unrelated: the shouting comes at random moments of its own, independent of the highlights;
# decoys: shouting during highlights, plus loud game explosions during calm stretches (the face calm).
AUDIO_KINDS = ("heard", "unrelated", "decoys")
AUDIO_KINDS_VERSION = 2  # bumped when a kind's sound changes (sample sets of other kinds than "heard" record it)


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
    audio_kind: str = "heard",
    twins: float = 0.0,
) -> _ClipPlan:
    if audio_kind not in AUDIO_KINDS:
        raise UsageError(f"unknown audio kind {audio_kind!r}", hint=f"use one of {', '.join(AUDIO_KINDS)}")
    if not 0.0 <= twins <= 1.0:
        raise UsageError(f"twins is a share of the look-alikes (0-1), not {twins!r}")
    if twins and not hard:
        raise UsageError("twins are look-alikes: they need hard=True")
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
    plan = replace(plan, audio_kind=audio_kind)
    if hard:
        plan = replace(
            plan,
            hard=True,
            drawn_cam=jittered_cam(plan.cam, seed, width, height),
            lookalikes=tuple(lookalike_spans(duration_ms, spans, seed, twins=twins)),
        )
    return plan


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


def _unrelated_spans(plan: _ClipPlan) -> list[tuple[int, int]]:
    """Shouting spans independent of the highlights: their number (about one per 30 s), lengths (3-8 s)
    and places drawn from the clip's own stream without looking at the highlights, so a clip without
    highlights has some too and, over many clips, a shout is no more likely during a highlight than
    elsewhere."""
    rng = _rng(plan.seed, _STREAM_AUDIO, 7_919)
    count = int(rng.poisson(plan.duration_ms / 30_000))
    spans: list[tuple[int, int]] = []
    for _ in range(count):
        length = int(rng.uniform(3000, 8000))
        at = int(rng.uniform(0, max(1, plan.duration_ms - length)))
        if all(at + length <= s or at >= e for s, e in spans):
            spans.append((at, min(plan.duration_ms, at + length)))
    return sorted(spans)


def _decoy_booms(plan: _ClipPlan) -> np.ndarray:
    """Times (ms) of big explosions during calm stretches: about one per 20 s, at least 3 s from
    every highlight and look-alike."""
    rng = _rng(plan.seed, _STREAM_AUDIO, 104_729)
    busy = [(s, e) for s, e in plan.highlights] + [(s, e) for s, e, _ in plan.lookalikes]
    count = max(1, plan.duration_ms // 20_000)
    times = np.sort(rng.uniform(0, max(1, plan.duration_ms - 3000), size=count * 2))
    kept: list[float] = []
    for t in times:
        clear = all(t + 3000 + 3000 <= s or t >= e + 3000 for s, e in busy)
        if clear and all(abs(t - k) >= 5000 for k in kept) and len(kept) < count:
            kept.append(float(t))
    return np.asarray(kept)


def _write_audio(plan: _ClipPlan, path: Path) -> None:
    """Mono 16-bit 48 kHz: game sound throughout, talking, and shouting during highlights (``plan.audio_kind``
    "heard"; "unrelated": at moments of its own; "decoys": also big explosions in calm stretches).

    Made in one-second chunks (memory stays flat for long VODs); the voice's phase is
    carried across chunks so its pitch glides without clicks.
    """
    rng = _rng(plan.seed, _STREAM_AUDIO, 0)
    drone_hz = rng.uniform(50, 220, size=3)
    drone_mod_hz = rng.uniform(0.05, 0.4, size=3)
    beat_s = 60 / rng.uniform(80, 140)
    voice_hz = rng.uniform(95, 220)
    booms = _explosions(plan)[0]
    rage = _Rage(_unrelated_spans(plan) if plan.audio_kind == "unrelated" else plan.highlights, plan.seed)
    decoys = _decoy_booms(plan) if plan.audio_kind == "decoys" else np.zeros(0)
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
            for boom in decoys[(decoys > t_ms[0] - 4000) & (decoys <= t_ms[-1])]:
                # a big explosion: a loud crack, then a rumble for a couple of seconds
                age = (t_ms - boom) / 1000
                rumble = np.sin(2 * np.pi * 55 * t) * 0.3 + noise
                sound += np.where(age >= 0, 0.35 * np.exp(-np.maximum(age, 0) / 1.2), 0.0) * rumble
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
