"""The game area: a scrolling procedurally drawn map with units, explosions and a HUD; a function of the seed
and the frame index only, never of the highlights."""

from __future__ import annotations

import math

import numpy as np

from autotosis.demo.draw import _disc_mask, _hsv, _periodic_noise, _rect, _stamp
from autotosis.demo.plan import _STREAM_GAME, _ClipPlan, _rng

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
