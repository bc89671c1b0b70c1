"""Hard mode: look-alikes, rooms of many kinds, a jittered and reframed cam box, drifting and switched light.

Everything here is drawn only when ``hard=True``; the default mode's pictures and random draws are untouched."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from autotosis.core.region import Region, crop_pixels
from autotosis.demo.draw import _ellipse, _hsv
from autotosis.demo.facecam import _RAGE_RED, _cam_border, _eye, _FaceCam
from autotosis.demo.game import _Game
from autotosis.demo.plan import _STREAM_GAME, _ClipPlan, _Rage, _rng, _Spans

# Hard mode only: its own streams, so the default mode's draws never move.
_STREAM_HARD = 5

# Hard mode: what the face cam does that looks like a highlight at a glance but is not one.
LOOKALIKE_KINDS = ("cheer", "laugh", "lean", "redlight", "alert", "yawn")
# Optional (``twins``): the rage acted out without a sound (mocking chat, miming for a bit): the
# same face, arms and colour as a highlight, only silent.  Only the sound tells the two apart.
TWIN_KIND = "twin"
# Look-alikes keep this far from every highlight (rough label edges are off by up to 1 s).
LOOKALIKE_MARGIN_MS = 1500
# Hard mode: the drawn cam box moves by up to this many pixels (at 640x360; scaled with the
# frame) and its size changes by up to this fraction, per stream; labels keep the nominal box.
CAM_JITTER_PX = 4.0
CAM_SCALE_JITTER = 0.05


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
    twins: float = 0.0,
) -> list[tuple[int, int, str]]:
    """The look-alikes of a hard-mode clip: sorted ``(start_ms, end_ms, kind)``, 2-6 s each.

    ``kind`` is one of LOOKALIKE_KINDS, or ``"<kind>+redlight"`` (a cheer, laugh, lean-in or
    yawn under red room light).  None comes closer than ``margin_ms`` to a highlight; they
    never overlap each other.  Deterministic for (duration, highlights, seed, twins).

    ``twins``: the share of look-alikes that are TWIN_KIND instead (a silent rage: only the
    sound differs from a highlight); drawn from a stream of its own, so ``twins=0`` keeps
    every other draw as it was.
    """
    rng = _rng(seed, _STREAM_HARD, 1)
    spans = sorted((int(s), int(e)) for s, e in highlights)
    weights = np.array(_LOOKALIKE_WEIGHTS) / sum(_LOOKALIKE_WEIGHTS)
    twin_rng = _rng(seed, _STREAM_HARD, 6)
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
        if twins > 0 and twin_rng.uniform() < twins:
            kind = TWIN_KIND
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
        # Twins are drawn as rages of their own (the same distribution of faces as a highlight).
        twin_spans = [(s, e) for s, e, k in plan.lookalikes if k == TWIN_KIND]
        self.twin = _Rage(twin_spans, plan.seed) if twin_spans else None

    def _light(self, t_ms: float) -> np.ndarray:
        drift = 1 + 0.06 * math.sin(2 * np.pi * t_ms / self.drift_ms + self.drift_phase)
        return self.tint * np.float32(drift * float(self.lamp.at(t_ms)[0]))

    def paint(self, frame: np.ndarray, index: int, t_ms: float) -> None:
        rage, shout, talk, laugh, drink, drink_i, lean, blink, sway_x, sway_y, secs = self._pose(t_ms)
        life = self.life
        if self.twin is not None:
            t = np.array([t_ms])
            twin = float(self.twin.intensity(t)[0])
            if twin > rage:
                rage, shout = twin, float(self.twin.shout(t)[0])

        look_env, look_i = self.looks.envelope(np.array([t_ms]))
        look, li = float(look_env[0]), int(look_i[0])
        kind = self.look_kinds[li] if look > 0 else ""  # a twin's kind draws nothing below: it is a rage
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
            _eye(canvas, ex, ey, rx, ry, eye_open, gaze)
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
            self._mug(canvas, cx, cy, rx, ry, float(life.drink_side[drink_i]), drink)
        if rage > 0:
            self._fists(canvas, cx, cy, rx, ry, rage, secs, skin)
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
    """How loud the voice is during look-alikes (cheering and laughing are loud too; a twin is silent)."""
    if not plan.lookalikes:
        return np.zeros(t_ms.shape)
    env, index = _Spans.of([(s, e) for s, e, _ in plan.lookalikes], 250).envelope(t_ms)
    loudness = np.array(
        [{"cheer": 0.4, "laugh": 0.25, "yawn": 0.08}.get(k.split("+")[0], 0.0) for _, _, k in plan.lookalikes]
    )
    return env * loudness[index] * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t_ms / 1000))
