"""Stills mining: the best distinct frames of a video, saved as full-resolution images.

    keyframes (small, from ffmpeg) -> drop near-duplicates of any frame kept before
      -> score the rest (optional model) -> pick the top ones that are unlike each other
         and apart in time -> grab those frames at full size, square pixels -> image files

Keyframes are cheap to decode (no inter-frame work) and a film or VOD changes slowly, so
a de-duplicated keyframe stream covers every distinct shot with few frames to classify.
Similarity is SSIM or a difference hash on small grey frames of the whole picture, so
"the same shot" means the same to the viewer whatever crop the model looks at.  A frame is
compared with every frame kept before it (the latest ``DEDUP_MEMORY`` of them), not only the
last one: a shot that comes back after a cut-away (A B A) is still the same shot.

Names: ``01_0.973_0h12m03.450s_vod.jpg`` -- a rank first (best = 01), so an ordinary A-Z
listing shows the best first; then the score and the time.  Without scores the time leads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region
from autotosis.core.timefmt import name_time
from autotosis.media import decode, probe

LOOK_SIZE = 64  # side of the grey frames compared for similarity
DEDUP_METHODS = ("ssim", "dhash")
# Consecutive keyframes of one shot score ~0.9-0.98 (SSIM) on 64x64 grey frames, a cut ~0.0-0.6;
# 0.85 on dhash means at most 9 of 64 bits differ.
DEFAULT_DEDUP_THRESHOLD = {"ssim": 0.85, "dhash": 0.85}
MANIFEST_NAME = "stills.json"
IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}

# A new frame is compared with at most this many kept frames (the latest): SSIM against
# 1000 64x64 frames costs ~60 ms on one core.  Most frames repeat the last kept one and
# cost one comparison.
DEDUP_MEMORY = 1000

_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2


# --------------------------------------------------------------------------- similarity


def grey_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float (N, 1, LOOK_SIZE, LOOK_SIZE) luma in 0..1."""
    rgb = torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float().div_(255.0)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    if luma.shape[-1] != LOOK_SIZE or luma.shape[-2] != LOOK_SIZE:
        luma = torch.nn.functional.interpolate(luma, size=(LOOK_SIZE, LOOK_SIZE), mode="area")
    return luma


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The 1-D Gaussian weights of the SSIM window (the 2-D window is their outer product)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


_WINDOW_1D = _gaussian_window()


def _blur_matrix(n: int) -> torch.Tensor:
    """(n - 10, n): row i holds the window at i..i+10, so ``M @ x @ M.T`` is the 'valid'
    11x11 Gaussian filter of x -- one matrix product for a whole stack of frames."""
    size = len(_WINDOW_1D)
    rows = max(1, n - size + 1)
    matrix = torch.zeros(rows, n)
    for i in range(rows):
        piece = _WINDOW_1D[: min(size, n - i)]
        matrix[i, i : i + len(piece)] = piece / piece.sum()
    return matrix


def _blur(x: torch.Tensor) -> torch.Tensor:
    """'Valid' 11x11 Gaussian (sigma 1.5) filter of the last two dimensions."""
    return _blur_matrix(x.shape[-2]) @ x @ _blur_matrix(x.shape[-1]).T


def _ssim_map(mu_a, var_a, mu_b, var_b, cov) -> torch.Tensor:
    return ((2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    )


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) of (N,1,H,W) pairs in 0..1 -> (N,)."""
    mu_a, mu_b = _blur(a), _blur(b)
    var_a = _blur(a * a) - mu_a**2
    var_b = _blur(b * b) - mu_b**2
    cov = _blur(a * b) - mu_a * mu_b
    return _ssim_map(mu_a, var_a, mu_b, var_b, cov).flatten(1).mean(dim=1)


def dhash_bits(grey: torch.Tensor) -> torch.Tensor:
    """64-bit difference hash (Krawetz): is each of 8x8 cells brighter than its right neighbour."""
    small = torch.nn.functional.interpolate(grey, size=(8, 9), mode="area")
    return (small[..., 1:] > small[..., :-1]).flatten(1)


def similarity(method: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Similarity in [-1, 1] (1 = identical) of grey frames ``a`` (1 or N) and ``b`` (N)."""
    if method == "ssim":
        return ssim(a.expand_as(b), b)
    if method == "dhash":
        bits_a, bits_b = dhash_bits(a), dhash_bits(b)
        return 1.0 - (bits_a != bits_b).float().mean(dim=1)
    raise UsageError(f"unknown de-duplication method {method!r} (one of {', '.join(DEDUP_METHODS)})")


# --------------------------------------------------------------------------- options and results


@dataclass(frozen=True)
class StillsOptions:
    count: int = 50  # stills to keep (ignored with every_distinct)
    every_distinct: bool = False  # save every de-duplicated frame instead of the top `count`
    fps: float | None = None  # None = keyframes only; otherwise sample this many frames per second
    dedup: str = "ssim"
    dedup_threshold: float | None = None  # a frame at least this similar to the last kept one is dropped
    diversity_threshold: float | None = None  # chosen stills are less similar than this to each other
    min_gap_ms: int = 2000  # chosen stills are at least this far apart in time
    min_score: float | None = None  # None = the model's threshold
    class_name: str | None = None  # None = the model's positive class
    region: Region | None = None  # None = the model's crop
    full_frame: bool = False
    image_format: str = "jpg"
    jpeg_quality: int = 95
    batch_size: int = 32

    def dedup_limit(self) -> float:
        return DEFAULT_DEDUP_THRESHOLD[self.dedup] if self.dedup_threshold is None else self.dedup_threshold

    def diversity_limit(self) -> float:
        return DEFAULT_DEDUP_THRESHOLD[self.dedup] if self.diversity_threshold is None else self.diversity_threshold


@dataclass(frozen=True)
class Candidate:
    """A frame that survived de-duplication."""

    time_ms: int
    score: float | None


@dataclass(frozen=True)
class Still:
    time_ms: int
    score: float | None
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class StillsResult:
    video: Path
    decoded: int  # frames looked at (keyframes, or samples at fps)
    dropped: int  # near-duplicates of the frame kept before them
    candidates: tuple[Candidate, ...]
    eligible: int  # candidates at or above the minimum score
    stills: tuple[Still, ...]
    manifest: Path
    class_name: str | None = None
    settings: dict = field(default_factory=dict)
    not_grabbed: int = 0  # chosen frames the file gave no full-size frame for (not written)


# --------------------------------------------------------------------------- pipeline


class _Dedup:
    """Streaming de-duplication: each frame is compared with every frame kept before it (the
    latest DEDUP_MEMORY), and kept only when it is less similar than the threshold to all of them."""

    def __init__(self, method: str, threshold: float, memory: int = DEDUP_MEMORY) -> None:
        if method not in DEDUP_METHODS:
            raise UsageError(f"unknown de-duplication method {method!r} (one of {', '.join(DEDUP_METHODS)})")
        self.method, self.threshold, self.memory = method, threshold, memory
        self.seen = 0
        self.kept_grey: list[torch.Tensor] = []
        # Per kept frame, in growing buffers: dhash bits, or the grey frame and its local means and variances.
        self._store: dict[str, torch.Tensor] = {}
        self._count = 0

    def _features(self, grey: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.method == "dhash":
            return {"bits": dhash_bits(grey)[0]}
        x = grey[0, 0]
        mu = _blur(x)
        return {"grey": x, "mu": mu, "var": _blur(x * x) - mu**2}

    def _is_duplicate(self, features: dict[str, torch.Tensor]) -> bool:
        """At least ``threshold`` similar to the last kept frame (the usual case, one comparison)
        or to any of the others."""
        last = self._count - 1
        return (
            self._max_similarity(features, last, self._count) >= self.threshold
            or self._max_similarity(features, max(0, self._count - self.memory), last) >= self.threshold
        )

    def _max_similarity(self, features: dict[str, torch.Tensor], first: int, end: int) -> float:
        if end <= first:
            return float("-inf")
        kept = {key: value[first:end] for key, value in self._store.items()}
        if self.method == "dhash":
            return float(1.0 - (kept["bits"] != features["bits"]).float().mean(dim=1).min())
        mu_x, mu_k = features["mu"], kept["mu"]
        cov = _blur(kept["grey"] * features["grey"]) - mu_k * mu_x
        return float(_ssim_map(mu_x, features["var"], mu_k, kept["var"], cov).flatten(1).mean(dim=1).max())

    def _remember(self, features: dict[str, torch.Tensor]) -> None:
        for key, value in features.items():
            buffer = self._store.get(key)
            if buffer is None or self._count == len(buffer):
                grown = value.new_zeros((max(64, 2 * self._count), *value.shape))
                if buffer is not None:
                    grown[: self._count] = buffer
                self._store[key] = buffer = grown
            buffer[self._count] = value
        self._count += 1

    def keep_mask(self, frames: np.ndarray) -> np.ndarray:
        grey = grey_frames(frames)
        keep = np.zeros(len(frames), dtype=bool)
        for i in range(len(frames)):
            current = grey[i : i + 1]
            features = self._features(current)
            if self._count == 0 or not self._is_duplicate(features):
                keep[i] = True
                self._remember(features)
                self.kept_grey.append(current)
        self.seen += len(frames)
        return keep


def _decode_spec(options: StillsOptions, size: int, region: Region | None) -> decode.DecodeSpec:
    if options.fps is None:
        return decode.DecodeSpec(size=size, fps=None, region=region, keyframes_only=True)
    return decode.DecodeSpec(size=size, fps=options.fps, region=region)


def _batches(
    video: Path, spec: decode.DecodeSpec, info: probe.VideoInfo, batch_size: int, progress: ProgressCallback, stage: str
) -> Iterator[decode.FrameBatch]:
    total_s = info.duration_ms / 1000
    progress(stage, 0, total_s)
    for batch in decode.iter_frames(video, spec, batch_size=batch_size, info=info):
        yield batch
        progress(stage, min(total_s, batch.times_ms[-1] / 1000), total_s)
    progress(stage, total_s, total_s)


def find_candidates(
    video: Path,
    info: probe.VideoInfo,
    options: StillsOptions,
    predictor=None,
    *,
    progress: ProgressCallback = no_progress,
) -> tuple[list[Candidate], list[torch.Tensor], int]:
    """(distinct frames with scores, their grey look-frames, frames decoded).

    With a model whose crop is the whole frame, one decode serves both similarity and
    scoring; with a crop, the crop is decoded in a second (cheap, keyframe) pass and only
    the frames kept by de-duplication are scored.
    """
    dedup = _Dedup(options.dedup, options.dedup_limit())
    region = None
    if predictor is not None and not options.full_frame:
        region = options.region or predictor.info.crop
    score_index = None
    if predictor is not None:
        class_name = options.class_name or predictor.info.positive_class()
        if class_name not in predictor.info.classes:
            raise UsageError(
                f"class {class_name!r} is not one of the model's classes ({', '.join(predictor.info.classes)})"
            )
        score_index = predictor.info.classes.index(class_name)

    one_pass = predictor is not None and region is None
    size = predictor.info.input_size if one_pass else LOOK_SIZE
    times: list[int] = []
    scores: list[float] = []
    for batch in _batches(
        video, _decode_spec(options, size, None), info, options.batch_size, progress, "stills: keyframes"
    ):
        keep = dedup.keep_mask(batch.frames)
        times += [int(t) for t in batch.times_ms[keep]]
        if one_pass and keep.any():
            scores += [float(p) for p in predictor.predict(np.ascontiguousarray(batch.frames[keep]))[:, score_index]]
    if predictor is not None and not one_pass:
        wanted = set(times)
        by_time: dict[int, float] = {}
        spec = _decode_spec(options, predictor.info.input_size, region)
        for batch in _batches(video, spec, info, options.batch_size, progress, "stills: scoring"):
            keep = np.array([int(t) in wanted for t in batch.times_ms], dtype=bool)
            if keep.any():
                probs = predictor.predict(np.ascontiguousarray(batch.frames[keep]))[:, score_index]
                by_time.update(zip((int(t) for t in batch.times_ms[keep]), (float(p) for p in probs)))
        missing = [t for t in times if t not in by_time]
        if missing:
            raise DataError(f"{video}: the two decoding passes disagree about frame times (e.g. {missing[0]} ms)")
        scores = [by_time[t] for t in times]
    candidates = [Candidate(t, scores[i] if scores else None) for i, t in enumerate(times)]
    return candidates, dedup.kept_grey, dedup.seen


def choose(
    candidates: list[Candidate], grey: list[torch.Tensor], options: StillsOptions, min_score: float | None
) -> list[int]:
    """Indices of the stills to save, best first.

    Greedy: take candidates by falling score (by time without scores); skip one that is
    closer than ``min_gap_ms`` to, or at least ``diversity_limit`` similar to, one already
    taken -- so the set covers different shots spread over the video.
    """
    if options.every_distinct:
        return list(range(len(candidates)))
    eligible = [
        i for i, c in enumerate(candidates) if min_score is None or (c.score is not None and c.score >= min_score)
    ]
    order = sorted(eligible, key=lambda i: (-(candidates[i].score or 0.0), candidates[i].time_ms))
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= options.count:
            break
        if any(abs(candidates[i].time_ms - candidates[j].time_ms) < options.min_gap_ms for j in chosen):
            continue
        if chosen:
            taken = torch.cat([grey[j] for j in chosen])
            if float(similarity(options.dedup, grey[i], taken).max()) >= options.diversity_limit():
                continue
        chosen.append(i)
    return chosen


def still_name(
    time_ms: int, score: float | None, stem: str, extension: str, rank: int | None = None, total: int = 1
) -> str:
    """``01_0.973_0h12m03.450s_vod.jpg``: the rank (1 = best, zero-padded to ``total``) first, so an
    ordinary A-Z sort lists the best first; no ':' (not allowed everywhere).  Without a score: the time first."""
    if score is None:
        return f"{name_time(time_ms)}_{stem}.{extension}"
    prefix = "" if rank is None else f"{rank:0{max(2, len(str(total)))}d}_"
    return f"{prefix}{score:.3f}_{name_time(time_ms)}_{stem}.{extension}"


def _ranks(candidates: list[Candidate], picked: list[int]) -> dict[int, int]:
    """Rank (1 = best) of each picked candidate with a score: by falling score, then time."""
    scored = sorted(
        (i for i in picked if candidates[i].score is not None),
        key=lambda i: (-(candidates[i].score or 0.0), candidates[i].time_ms),
    )
    return {i: rank for rank, i in enumerate(scored, 1)}


def grab_stills(info: probe.VideoInfo, times_ms: list[int]) -> dict[int, np.ndarray]:
    """The full-size frame shown at each of ``times_ms`` (times of decoded frames, rounded to ms).

    A decoded frame's time is its timestamp rounded to the nearest ms, so it may lie up to
    0.5 ms after the frame: seeking there would give the next frame, or none at all for the
    last frame of the file.  So each frame is sought 1 ms early; a time where that finds
    nothing (a sample past the last frame) is tried again up to three frame durations earlier.
    """
    step = max(1, round(1000 / float(info.fps))) if info.fps else 40
    found: dict[int, np.ndarray] = {}
    for back in (1, step, 2 * step, 3 * step):
        wanted = [t for t in dict.fromkeys(times_ms) if t not in found]
        if not wanted:
            break
        asks: dict[int, list[int]] = {}
        for t in wanted:
            asks.setdefault(max(0, min(t - back, info.duration_ms - 1)), []).append(t)
        for ask, frame in decode.grab_frames(info, list(asks)):
            for t in asks.get(ask, ()):
                found[t] = frame
    return found


def mine_stills(
    video: Path | str,
    out_dir: Path | str,
    options: StillsOptions = StillsOptions(),
    predictor=None,
    *,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> StillsResult:
    """Find, choose and save stills of ``video`` into ``out_dir`` (see the module docstring)."""
    from PIL import Image

    if options.image_format not in IMAGE_FORMATS:
        raise UsageError(f"unknown image format {options.image_format!r} (one of {', '.join(IMAGE_FORMATS)})")
    if options.dedup not in DEDUP_METHODS:
        raise UsageError(f"unknown de-duplication method {options.dedup!r} (one of {', '.join(DEDUP_METHODS)})")
    if predictor is None and not options.every_distinct:
        raise UsageError(
            "without a model there are no scores to pick the best stills by",
            hint="give --model CHECKPOINT, or --keyframes to save every distinct keyframe",
        )
    video, out_dir = Path(video), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder")
    manifest = out_dir / MANIFEST_NAME
    check_writable(manifest, force)
    info = probe.probe(video)
    if predictor is not None and not options.full_frame:
        from autotosis.detect.scan import model_region
        from autotosis.detect.scores import ScoreCache

        region = model_region(info, predictor.info, region=options.region, cache=ScoreCache())
        options = replace(options, region=region, full_frame=region is None)
    candidates, grey, decoded = find_candidates(video, info, options, predictor, progress=progress)
    if not candidates:
        raise DataError(f"{video}: no frames could be decoded")
    min_score = None
    if predictor is not None:
        min_score = predictor.info.threshold if options.min_score is None else options.min_score
    picked = choose(candidates, grey, options, min_score)
    eligible = sum(1 for c in candidates if min_score is None or (c.score is not None and c.score >= min_score))

    stem = video.stem[:60]
    ranks = _ranks(candidates, picked)
    picked = sorted(picked, key=lambda i: ranks.get(i, 0))  # best first where there are scores (stable otherwise)
    names = [
        still_name(candidates[i].time_ms, candidates[i].score, stem, options.image_format, ranks.get(i), len(ranks))
        for i in picked
    ]
    for name in names:  # refuse before writing anything
        check_writable(out_dir / name, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress("stills: saving", 0, len(picked))
    frames = grab_stills(info, [candidates[i].time_ms for i in picked])
    stills: list[Still] = []
    for i, name in zip(picked, names):
        frame = frames.get(candidates[i].time_ms)
        if frame is None:
            continue
        target = out_dir / name
        with atomic_path(target, force=force) as tmp:
            image = Image.fromarray(frame)
            if options.image_format == "jpg":
                image.save(tmp, format="JPEG", quality=options.jpeg_quality, subsampling=0)
            else:
                image.save(tmp, format="PNG")
        stills.append(Still(candidates[i].time_ms, candidates[i].score, target, frame.shape[1], frame.shape[0]))
        progress("stills: saving", len(stills), len(picked))
    class_name = None
    if predictor is not None:
        class_name = options.class_name or predictor.info.positive_class()
    settings = {
        "sampling": "keyframes" if options.fps is None else f"{options.fps} fps",
        "dedup": options.dedup,
        "dedup_threshold": options.dedup_limit(),
        "diversity_threshold": options.diversity_limit(),
        "min_gap_ms": options.min_gap_ms,
        "min_score": min_score,
        "count": None if options.every_distinct else options.count,
        "region": None if predictor is None or options.full_frame else (options.region or predictor.info.crop),
    }
    result = StillsResult(
        video=video,
        decoded=decoded,
        dropped=decoded - len(candidates),
        candidates=tuple(candidates),
        eligible=eligible,
        stills=tuple(stills),
        manifest=manifest,
        class_name=class_name,
        settings=settings,
        not_grabbed=len(picked) - len(stills),
    )
    write_text_atomic(manifest, json.dumps(_manifest(result), indent=1, ensure_ascii=False) + "\n", force=force)
    return result


def _manifest(result: StillsResult) -> dict:
    return {
        "video": str(result.video),
        "class": result.class_name,
        "frames_decoded": result.decoded,
        "duplicates_dropped": result.dropped,
        "distinct_frames": len(result.candidates),
        "above_min_score": result.eligible,
        "not_grabbed": result.not_grabbed,
        "settings": result.settings,
        "stills": [
            {"file": s.path.name, "time_ms": s.time_ms, "score": s.score, "width": s.width, "height": s.height}
            for s in result.stills
        ],
    }
