"""The face cam: the streamer's face and body, talking, laughing, blinking, leaning, drinking, and raging
during a highlight."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from autotosis.core.region import crop_pixels
from autotosis.demo.draw import _ellipse, _hsv, _rect
from autotosis.demo.plan import _STREAM_PERSON, _Behaviour, _ClipPlan, _Rage, _rng

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
            _eye(canvas, ex, ey, rx, ry, eye_open, gaze)
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
            self._mug(canvas, cx, cy, rx, ry, float(life.drink_side[drink_i]), drink)
        if rage > 0:
            self._fists(canvas, cx, cy, rx, ry, rage, secs, skin)

        canvas += self.noise[index % len(self.noise)]
        np.clip(canvas, 0, 255, out=canvas)
        frame[self.by : self.by + self.bh, self.bx : self.bx + self.bw] = canvas.astype(np.uint8)

    def _mug(self, canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, side: float, drink: float) -> None:
        """A hand raising the mug from below the box (``drink`` 0-1) on ``side`` (-1 left, 1 right)."""
        hy = self.bh + 0.5 * ry - (self.bh + 0.5 * ry - (cy + 0.55 * ry)) * drink
        hx = cx + side * 0.55 * rx
        _ellipse(canvas, hx, hy + 0.35 * ry, 0.3 * rx, 0.4 * ry, self.skin * 0.95)
        mug_x0, mug_y0 = int(hx - 0.25 * rx), int(hy - 0.45 * ry)
        canvas[max(0, mug_y0) : max(0, int(hy + 0.15 * ry)), max(0, mug_x0) : max(0, int(hx + 0.25 * rx))] = self.mug

    def _fists(
        self, canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, rage: float, secs: float, skin
    ) -> None:
        """Both fists up and shaking, as high as the rage (0-1) lifts them; ``skin``: the fists' (reddened) colour."""
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


def _eye(canvas: np.ndarray, ex: float, ey: float, rx: float, ry: float, eye_open: float, gaze) -> None:
    """One eye at (ex, ey) of a head of radii (rx, ry): the white, and the pupil looking along ``gaze`` when open."""
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


def _cam_border(frame: np.ndarray, box: tuple[int, int, int, int], color, thickness: int) -> None:
    """A fixed frame around the cam box, drawn just outside it (as stream overlays do)."""
    bw, bh, bx, by = box
    t = thickness
    _rect(frame, bx - t, by - t, bx + bw + t, by, color)
    _rect(frame, bx - t, by + bh, bx + bw + t, by + bh + t, color)
    _rect(frame, bx - t, by, bx, by + bh, color)
    _rect(frame, bx + bw, by, bx + bw + t, by + bh, color)
