"""Sound as a second input: per-sample audio features and the learned mix with the picture's score.

Features (numpy only): the sound is cut into short frames (``hop_ms``), each frame's power is summed
in a few mel-like frequency bands, and for every sample time t of a scan:

- ``loud``: log energy over ``window_ms`` around t, relative to the whole file's reference level, a low
  quantile of its sounding frames (so the mic gain, the absolute level and how much of the file is
  highlight do not matter; ``AudioFeatureSpec.reference_quantile``);
- ``shape``: each band's log energy relative to its own reference, minus ``loud`` (what kind of sound:
  a voice, a bang, a hiss);
- ``context``: the mean and the maximum of ``loud`` over ``context_ms`` around t.

The combiner (``AudioCombiner``) is a logistic regression on [logit(picture score), features], fitted
by ``training/audio.py`` on out-of-fold picture scores of the labelled clips: the mix is learned from
the labels, never set by hand.  A checkpoint stores it in ``ModelInfo.audio``; ``scan`` applies it
when the model has one and the video has sound, and otherwise scans as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotosis.core.errors import ModelError
from autotosis.media import audio as media_audio
from autotosis.media.probe import VideoInfo

_EPS = 1e-10
_CLIP = 12.0  # relative log energies are clipped to +-this (natural log: a factor of 160,000)
_P_EPS = 1e-4  # picture scores are clipped to [eps, 1 - eps] before their logit
# Frames this far (natural log of energy: 60 dB) under the file's loud end are silence (a muted mic, a
# pause screen): they do not set the reference level, or a file a fifth silent would read as all loud.
_SILENCE_BELOW = float(np.log(1e6))


@dataclass(frozen=True)
class AudioFeatureSpec:
    """How the features are computed (stored with the combiner: a model is scanned as it was trained)."""

    rate: int = media_audio.AUDIO_RATE
    hop_ms: int = 50
    window_ms: int = 1000
    context_ms: int = 4000
    bands_hz: tuple[float, ...] = (0.0, 200.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
    # The file's reference level (what ``loud`` and the band shapes are relative to) is this quantile of its
    # sounding frames.  The median moved with how much of a file is highlight: a labelled clip cut around its
    # moment is up to half highlight, a VOD a tenth, so the same shout read a nat or two quieter in the clips
    # than in the VOD, and the combiner's threshold, fitted on the clips, let the VOD's loud look-alikes through.
    # The 20% quantile stays in the ordinary moments up to 80% loud content (hard benchmark, BENCHMARKS.md).
    # None: the median of every frame, as checkpoints from before it were trained (``from_dict``).
    reference_quantile: float | None = 0.2

    @property
    def size(self) -> int:
        """Features per sample: loud, one shape value per band, context mean and max."""
        return 1 + (len(self.bands_hz) - 1) + 2

    def names(self) -> tuple[str, ...]:
        bands = [f"band{int(lo)}-{int(hi)}" for lo, hi in zip(self.bands_hz, self.bands_hz[1:])]
        return ("loud", *bands, "context_mean", "context_max")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "hop_ms": self.hop_ms,
            "window_ms": self.window_ms,
            "context_ms": self.context_ms,
            "bands_hz": list(self.bands_hz),
            **({} if self.reference_quantile is None else {"reference_quantile": self.reference_quantile}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AudioFeatureSpec:
        return cls(
            rate=int(data["rate"]),
            hop_ms=int(data["hop_ms"]),
            window_ms=int(data["window_ms"]),
            context_ms=int(data["context_ms"]),
            bands_hz=tuple(float(v) for v in data["bands_hz"]),
            reference_quantile=None if data.get("reference_quantile") is None else float(data["reference_quantile"]),
        )


DEFAULT_FEATURES = AudioFeatureSpec()


@dataclass(frozen=True)
class BandTrack:
    """Band energies of consecutive sound frames: ``energy[i]`` covers [i * hop_ms, (i + 1) * hop_ms)."""

    energy: np.ndarray  # float64 (frames, bands)
    hop_ms: int


def band_track(chunks: Iterable[np.ndarray], spec: AudioFeatureSpec = DEFAULT_FEATURES) -> BandTrack:
    """Band energies of a stream of mono PCM chunks at ``spec.rate`` (chunks of any length)."""
    hop = int(round(spec.rate * spec.hop_ms / 1000))
    freqs = np.fft.rfftfreq(hop, 1 / spec.rate)
    edges = np.asarray(spec.bands_hz)
    band_of = np.searchsorted(edges, freqs, side="right") - 1
    band_of[freqs >= edges[-1]] = len(edges) - 2  # the Nyquist bin belongs to the top band
    bands = len(edges) - 1
    onehot = np.zeros((len(freqs), bands))
    onehot[np.arange(len(freqs)), np.clip(band_of, 0, bands - 1)] = 1.0
    window = np.hanning(hop)

    def band_power(samples: np.ndarray) -> np.ndarray:  # whole frames of ``hop`` samples -> (frames, bands)
        frames = samples.reshape(-1, hop).astype(np.float64)
        return (np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 / hop) @ onehot

    rows: list[np.ndarray] = []
    pending = np.zeros(0, np.float32)
    for chunk in chunks:
        pending = np.concatenate([pending, np.asarray(chunk, np.float32)])
        whole = len(pending) // hop
        if whole:
            rows.append(band_power(pending[: whole * hop]))
            pending = pending[whole * hop :]
    if len(pending):  # the last, partial frame, padded with silence
        rows.append(band_power(np.concatenate([pending, np.zeros(hop - len(pending), np.float32)])))
    energy = np.concatenate(rows) if rows else np.zeros((0, bands))
    return BandTrack(energy, spec.hop_ms)


def _window_means(values: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """Mean of ``values`` rows over [c - half, c + half] (clamped to the track) for each centre index."""
    n = len(values)
    cum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    lo = np.clip(centres - half, 0, n)
    hi = np.clip(centres + half + 1, 0, n)
    count = np.maximum(hi - lo, 1)
    shape = (-1,) + (1,) * (values.ndim - 1)
    return (cum[hi] - cum[lo]) / count.reshape(shape)


def features_at(track: BandTrack, times_ms: np.ndarray, spec: AudioFeatureSpec = DEFAULT_FEATURES) -> np.ndarray:
    """float32 (len(times_ms), spec.size): the features at each sample time (see the module docstring).

    Times past the end of the sound read as silence.
    """
    times_ms = np.asarray(times_ms, dtype=np.int64)
    out = np.zeros((len(times_ms), spec.size), np.float32)
    energy = track.energy
    if len(energy) == 0 or len(times_ms) == 0:
        out[:] = -_CLIP
        return out
    half = max(0, int(round(spec.window_ms / 2 / track.hop_ms)))
    every = np.arange(len(energy))
    # windowed log energies at every frame, relative to the file's reference levels
    total_all = np.log(_window_means(energy.sum(axis=1), every, half) + _EPS)
    bands_all = np.log(_window_means(energy, every, half) + _EPS)
    if spec.reference_quantile is None:
        total_ref, bands_ref = np.median(total_all), np.median(bands_all, axis=0)
    else:
        sounding = total_all > np.quantile(total_all, 0.99) - _SILENCE_BELOW
        total_ref = np.quantile(total_all[sounding], spec.reference_quantile)
        bands_ref = np.quantile(bands_all[sounding], spec.reference_quantile, axis=0)
    loud_all = np.clip(total_all - total_ref, -_CLIP, _CLIP)
    bands_rel = np.clip(bands_all - bands_ref, -_CLIP, _CLIP)
    index = times_ms // track.hop_ms
    inside = (index >= 0) & (index < len(energy))
    at = np.clip(index, 0, len(energy) - 1)
    loud = np.where(inside, loud_all[at], -_CLIP)
    shape = np.where(inside[:, None], bands_rel[at] - loud_all[at][:, None], 0.0)
    ctx_half = max(0, int(round(spec.context_ms / 2 / track.hop_ms)))
    ctx_mean = _window_means(loud_all, at, ctx_half)
    # running maximum over the context window: a sliding max via a strided view of a padded track
    padded = np.concatenate([np.full(ctx_half, -_CLIP), loud_all, np.full(ctx_half, -_CLIP)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * ctx_half + 1)
    ctx_max = windows[at].max(axis=1)
    out[:, 0] = loud
    out[:, 1 : 1 + shape.shape[1]] = shape
    out[:, -2] = np.where(inside, ctx_mean, -_CLIP)
    out[:, -1] = np.where(inside, ctx_max, -_CLIP)
    return out


def audio_features(
    path: Path | str,
    times_ms: np.ndarray,
    spec: AudioFeatureSpec = DEFAULT_FEATURES,
    *,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """The features of ``path``'s sound at ``times_ms`` (one ffmpeg pass over the sound only).

    ``media.audio.NoAudioError`` when the file has no sound.
    """
    track = band_track(media_audio.iter_audio(path, rate=spec.rate, info=info), spec)
    return features_at(track, times_ms, spec)


def picture_logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=np.float64), _P_EPS, 1 - _P_EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class AudioCombiner:
    """score = sigmoid(bias + w_picture * logit(picture) + w . (features - mean) / std)."""

    spec: AudioFeatureSpec
    mean: tuple[float, ...]
    std: tuple[float, ...]
    picture_weight: float
    weights: tuple[float, ...]  # one per feature
    bias: float

    def apply(self, picture: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Combined highlight scores (float32, as picture's length)."""
        picture = np.asarray(picture)
        if len(picture) == 0:
            return np.zeros(0, np.float32)
        z = self.bias + self.picture_weight * picture_logit(picture)
        standard = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        z = z + standard @ np.asarray(self.weights)
        return (1 / (1 + np.exp(-np.clip(z, -40, 40)))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.spec.to_dict(),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "picture_weight": float(self.picture_weight),
            "weights": [float(v) for v in self.weights],
            "bias": float(self.bias),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "checkpoint") -> AudioCombiner:
        try:
            spec = AudioFeatureSpec.from_dict(data["features"])
            combiner = cls(
                spec,
                tuple(float(v) for v in data["mean"]),
                tuple(float(v) for v in data["std"]),
                float(data["picture_weight"]),
                tuple(float(v) for v in data["weights"]),
                float(data["bias"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: the audio combiner in the checkpoint is malformed ({exc})") from exc
        if not (len(combiner.mean) == len(combiner.std) == len(combiner.weights) == spec.size):
            raise ModelError(f"{source}: the audio combiner in the checkpoint is malformed (feature count)")
        return combiner


@dataclass(frozen=True)
class AudioModel:
    """What a checkpoint's ``info.audio`` holds: the combiner and the event rules calibrated on its scores."""

    combiner: AudioCombiner
    threshold: float
    events: Mapping[str, Any]  # calibrated rules on the combined scores (as ModelInfo.events)

    @classmethod
    def from_info(cls, audio: Mapping[str, Any], source: str = "checkpoint") -> AudioModel | None:
        """None for a model trained without sound (an empty ``info.audio``)."""
        if not audio or not audio.get("combiner"):
            return None
        combiner = AudioCombiner.from_dict(audio["combiner"], source)
        events = dict(audio.get("events") or {})
        try:
            threshold = float(audio.get("threshold", events.get("threshold", 0.5)))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: the audio threshold in the checkpoint is malformed ({exc})") from exc
        return cls(combiner, threshold, events)
