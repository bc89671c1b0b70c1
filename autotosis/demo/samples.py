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
lengths.  The default mode draws exactly what it drew before."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from autotosis.core.errors import DataError, OutputExistsError, UsageError
from autotosis.core.fsutil import atomic_path, write_text_atomic
from autotosis.core.region import Region
from autotosis.demo.frames import AUDIO_KINDS_VERSION, _frames, _plan_clip, _write_audio
from autotosis.demo.plan import DEFAULT_CAM, ClipTruth, SampleSet, _ClipPlan, _rng

TRUTH_FILE = "truth.json"
# Bump when the pictures or sounds change, so cached sample sets are regenerated.
GENERATOR_VERSION = 1
# The same for the hard mode (recorded as params["hard"] of a hard set; default sets do not carry it).
HARD_GENERATOR_VERSION = 1
_KIND_TRAIN, _KIND_HELDOUT, _KIND_HIGHLIGHTS = 11, 12, 13
_KIND_HARD = 14


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
    audio_kind: str = "heard",
    twins: float = 0.0,
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

    ``audio_kind`` (``frames.AUDIO_KINDS``): "heard" (the streamer shouts during highlights),
    "unrelated" (the shouting comes at moments of its own) or "decoys" (shouting during highlights
    and loud game explosions while the face is calm).

    ``twins`` (hard mode): the share of look-alikes that are the rage acted out in silence
    (``hard.TWIN_KIND``): the picture of a highlight without its sound.
    """
    from autotosis.media.encode import encode_frames

    out = Path(out)
    plan = _plan_clip(
        duration_s=duration_s,
        highlights=highlights,
        seed=seed,
        width=width,
        height=height,
        fps=fps,
        cam=cam,
        hard=hard,
        audio_kind=audio_kind,
        twins=twins,
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
    twins: float = 0.0,
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
            twins=twins,
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
        twins=twins,
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
    audio_kind: str = "heard",
    twins: float = 0.0,
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

    ``audio_kind``: what every clip's sound says about its highlights (see ``make_stream_clip``);
    a set of another kind than "heard" is cached apart.  ``twins`` (hard mode): the share of
    look-alikes that are silent rages (see ``make_stream_clip``); a set with twins is cached apart.
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
    if audio_kind != "heard":
        params["audio"] = {"kind": audio_kind, "version": AUDIO_KINDS_VERSION}
    if hard:
        clip_s_range = (
            (clip_s / 2, clip_s * 2) if clip_s_range is None else (float(clip_s_range[0]), float(clip_s_range[1]))
        )
        params["hard"] = HARD_GENERATOR_VERSION
        params["clip_s_range"] = list(clip_s_range)
        if twins:
            params["twins"] = float(twins)
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
            twins=twins,
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
                audio_kind=audio_kind,
                twins=twins,
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
