"""Small vectorised drawing helpers for the generator: ellipses, discs, rectangles, colours, periodic noise."""

from __future__ import annotations

import colorsys
import math

import numpy as np

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
