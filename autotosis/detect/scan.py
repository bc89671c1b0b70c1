"""Video -> scores: stream frames out of ffmpeg and classify them in batches.

ffmpeg decodes, samples, crops and scales in its own process; a reader thread keeps a
few batches queued so decoding and inference overlap (one core each on a 2-core box).
No frame is ever written to disk, and memory does not grow with the video's length.

Two modes: ``dense`` scores the whole video at ``fps``; ``coarse`` scores the keyframes
first and decodes densely only around the edges of runs of keyframes that might show an
event (see coarse.py), which skips most of the decoding of a long VOD.  ``auto`` picks coarse for
long videos.  Either way the scores carry exact presentation times.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autotosis.core.errors import MediaError, UsageError
from autotosis.core.fsutil import file_fingerprint
from autotosis.core.prefetch import Stalled, prefetch_each
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, as_region, is_region
from autotosis.detect import coarse
from autotosis.detect.adapt import adapt_levels
from autotosis.detect.audio import AudioModel, BandTrack, band_track, features_at
from autotosis.detect.scores import CoarseScan, ScanInfo, ScoreCache, Scores, cache_key
from autotosis.detect.segments import event_params_for
from autotosis.media import audio as media_audio
from autotosis.media import decode, probe

if TYPE_CHECKING:
    from autotosis.model.info import ModelInfo
    from autotosis.model.predictor import Predictor

SCAN_MODES = ("auto", "dense", "coarse")
AUTO_COARSE_MS = 10 * 60_000  # auto mode: videos at least this long are scanned coarse-to-fine


@dataclass(frozen=True)
class ScanOptions:
    fps: float = 2.0  # scores per second of video
    batch_size: int = 16  # 32 costs ~60 MB more at peak and is no faster with one torch thread
    region: Region | None = None  # None = the crop stored in the model
    full_frame: bool = False  # ignore the model's crop and use the whole frame
    use_cache: bool = True
    cache_dir: Path | None = None
    mode: str = "auto"  # one of SCAN_MODES
    auto_coarse_ms: int = AUTO_COARSE_MS
    coarse: coarse.CoarseOptions = field(default_factory=coarse.CoarseOptions)
    # Give up on a video when ffmpeg delivers no frames for this long (a hung network share,
    # a dying disk); a slow but working decode delivers a batch every few seconds.
    stall_timeout_s: float | None = 600.0
    # torch threads while scanning; None = 1 on a machine with up to 4 cores (the decoder
    # needs the others: inference at 2 scores/s is a small share of the work), a quarter
    # of the cores on bigger ones, never more than the process was already given.
    threads: int | None = None


def resolve_mode(options: ScanOptions, duration_ms: int) -> str:
    if options.mode not in SCAN_MODES:
        raise UsageError(f"unknown scan mode {options.mode!r}", hint=f"use one of {', '.join(SCAN_MODES)}")
    if options.mode == "auto":
        return "coarse" if duration_ms >= options.auto_coarse_ms else "dense"
    return options.mode


def _score_batches(
    sources: Sequence[Callable[[threading.Event], Iterable[decode.FrameBatch]]],
    predict: Callable[[np.ndarray], np.ndarray],
    classes: int,
    on_batch: Callable[[decode.FrameBatch], None],
    *,
    video: Path,
    stall_timeout_s: float | None,
    decoders: int = 1,
    depth: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Classify every batch of every source in turn (decoding runs ahead in threads, up to ``decoders``
    sources at once); times and probabilities, in order.

    ``source(stop)`` makes a decoding iterator; it must end soon after ``stop`` is set
    (``decode.iter_frames(stop=...)`` does), which happens when this consumer stops early:
    Ctrl-C, SIGTERM, a stall, an error in inference.
    """
    times: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    stop = threading.Event()
    try:
        made = [lambda source=source: iter(source(stop)) for source in sources]
        for batch in prefetch_each(made, width=decoders, depth=depth, stop=stop, stall_timeout=stall_timeout_s):
            probs.append(np.asarray(predict(batch.frames), dtype=np.float32))
            times.append(batch.times_ms)
            on_batch(batch)
    except Stalled:
        raise MediaError(
            f"ffmpeg delivered no frame for {stall_timeout_s:g} s: decoding stalled",
            video,
            hint="check the disk or network share the video is on; if it is only slow, raise --stall-timeout",
        ) from None
    if not times:
        return np.zeros(0, np.int64), np.zeros((0, classes), np.float32)
    return np.concatenate(times), np.concatenate(probs)


def _score_whole(
    video: Path,
    info: probe.VideoInfo,
    sources: Sequence[Callable[[threading.Event], Iterable[decode.FrameBatch]]],
    predictor: Predictor,
    options: ScanOptions,
    progress: ProgressCallback,
    stage: str,
    *,
    decoders: int = 1,
    depth: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Score every frame ``sources`` deliver over the whole video, in order (``_score_batches``), reporting
    progress as ``stage``."""
    total_s = info.duration_ms / 1000
    progress(stage, 0, total_s)
    scored = _score_batches(
        sources,
        predictor.predict,
        len(predictor.info.classes),
        lambda b: progress(stage, min(total_s, b.times_ms[-1] / 1000), total_s),
        video=video,
        stall_timeout_s=options.stall_timeout_s,
        decoders=decoders,
        depth=depth,
    )
    progress(stage, total_s, total_s)
    return scored


# The keyframe pass decodes pieces at least this long, side by side, and no more than KEYFRAME_PIECES of them
# (each ffmpeg reads the file's index again: a third of a second for a 3-hour MP4).
KEYFRAME_CHUNK_MS = 120_000
KEYFRAME_PIECES = 24
# Each piece decodes this far into the next one, so a keyframe on the boundary is never lost to the rounding
# of a seek (coarse.drop_repeats removes the one decoded twice).
KEYFRAME_OVERLAP_MS = 1_000
# Batches a keyframe piece may decode ahead of the consumer (a few MB of 128x128 frames): the next piece has
# started, read the index and sought by the time it is wanted; beyond that, inference keeps pace with about
# one decoder, so a longer queue would hold more memory, not save time.
KEYFRAME_DEPTH = 8


def keyframe_pieces(duration_ms: int) -> list[tuple[int, int | None]]:
    """(start, end) of each piece of the keyframe pass: at least KEYFRAME_CHUNK_MS, at most KEYFRAME_PIECES of
    them, each reaching KEYFRAME_OVERLAP_MS into the next; the last one's end is None (the end of the file)."""
    length = max(KEYFRAME_CHUNK_MS, -(-duration_ms // KEYFRAME_PIECES))
    return [
        (lo, None if lo + length >= duration_ms else lo + length + KEYFRAME_OVERLAP_MS)
        for lo in range(0, max(1, duration_ms), length)
    ]


def _keyframe_sources(
    video: Path, spec: decode.DecodeSpec, info: probe.VideoInfo, batch_size: int, threads: int | None
) -> list[Callable[[threading.Event], Iterator[decode.FrameBatch]]]:
    """The keyframe pass as decoding sources, one per piece (``keyframe_pieces``)."""

    def source(lo: int, hi: int | None) -> Callable[[threading.Event], Iterator[decode.FrameBatch]]:
        piece = replace(spec, start_ms=lo or None, end_ms=hi, threads=threads)
        return lambda stop: decode.iter_frames(video, piece, batch_size=batch_size, info=info, stop=stop)

    return [source(lo, hi) for lo, hi in keyframe_pieces(info.duration_ms)]


def _span_sources(
    video: Path,
    spec: decode.DecodeSpec,
    spans: list[coarse.Span],
    info: probe.VideoInfo,
    batch_size: int,
    threads: int | None,
    policy: decode.SkipPolicy,
) -> list[Callable[[threading.Event], Iterator[decode.FrameBatch]]]:
    """One decoding source per span: an ffmpeg run seeking before the input, B-frames skipped (every one
    while the stream allows it, else the unreferenced ones: a half to two thirds less decoding of a typical
    stream; the samples stay within a few frames of the dense scan's, and exact where they would not be:
    ``decode.iter_frames_skipping``).  ``policy``: one per video, so what one stretch learns about the stream
    holds for the rest, in every round."""

    def source(lo: int, hi: int) -> Callable[[threading.Event], Iterator[decode.FrameBatch]]:
        span_spec = replace(spec, start_ms=lo, end_ms=hi, threads=threads)
        return lambda stop: decode.iter_frames_skipping(
            video, span_spec, batch_size=batch_size, info=info, stop=stop, policy=policy
        )

    return [source(lo, hi) for lo, hi in spans]


def scan_with(
    video: Path | str,
    predictor: Predictor,
    options: ScanOptions = ScanOptions(),
    *,
    progress: ProgressCallback = no_progress,
    info: probe.VideoInfo | None = None,
    model: str = "",
) -> Scores:
    """Score ``video`` with ``predictor`` (no cache); ``model`` is the fingerprint stored in the result."""
    video = Path(video)
    info = info or probe.probe(video)
    model_info = predictor.info
    classes = tuple(model_info.classes)
    region = model_region(info, model_info, region=options.region, full_frame=options.full_frame)
    mode = resolve_mode(options, info.duration_ms)
    spec = decode.DecodeSpec(size=model_info.input_size, fps=options.fps, region=region)
    rough = None
    with _SoundTrack(video, info, model_info) as track:  # the sound decodes while the picture is scanned
        if mode == "dense":
            whole = [lambda stop: decode.iter_frames(video, spec, batch_size=options.batch_size, info=info, stop=stop)]
            times, probs = _score_whole(video, info, whole, predictor, options, progress, "scan")
        else:
            decide = None
            if refines_on_sound(model_info, info):

                def decide(times: np.ndarray, probs: np.ndarray) -> np.ndarray:
                    return with_sound(video, info, model_info, times, probs, track=track.result)[0]

            times, probs, rough = _scan_coarse(video, info, spec, predictor, options, progress, decide=decide)
        if len(times) == 0:
            # ffmpeg can end without an error and without a picture (a stream of one cover image, a file whose
            # video packets are all damaged): an empty score list would make a silent, empty reel.
            raise MediaError(
                "no picture could be decoded from its video stream",
                video,
                hint="does it play? `ffprobe FILE` lists its streams",
            )
        threshold, events = model_info.threshold, dict(model_info.events)
        probs, sound = with_sound(video, info, model_info, times, probs, progress, track=track.result)
    audio_model = sound_model(model_info) if sound.get("used") else None
    if audio_model is not None:
        threshold, events = audio_model.threshold, dict(audio_model.events)
    return Scores(
        video=video,
        duration_ms=info.duration_ms,
        classes=classes,
        times_ms=times,
        probs=probs,
        step_ms=int(round(1000 / options.fps)),
        task=model_info.task,
        model=model,
        scan=ScanInfo(
            region=region,
            fps=options.fps,
            threshold=threshold,
            mode=mode,
            events=events,
            coarse=rough,
            audio=sound,
        ),
    )


def sound_model(model_info: ModelInfo) -> AudioModel | None:
    """The model's sound combiner, or None: trained without sound, or a multi-class model (the
    combiner mixes sound into one highlight score)."""
    return AudioModel.from_info(model_info.audio) if len(model_info.classes) == 2 else None


class _SoundTrack:
    """The band energies of a video's sound, decoded in a thread of their own while the picture is
    scanned (one more ffmpeg process, audio only), for a model with a sound combiner and a video with
    sound; nothing otherwise.  Leaving the block early (an error, Ctrl-C) stops the decoder."""

    def __init__(self, video: Path, info: probe.VideoInfo, model_info: ModelInfo) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._track: BandTrack | None = None
        self._error: BaseException | None = None
        audio_model = sound_model(model_info)
        if audio_model is None or not info.has_audio:
            return
        spec = audio_model.combiner.spec

        def run() -> None:
            try:
                chunks = media_audio.iter_audio(video, rate=spec.rate, info=info, stop=self._stop)
                self._track = band_track(chunks, spec)
            except BaseException as exc:  # noqa: BLE001 - handed to the scanning thread in result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="autotosis-sound", daemon=True)

    def __enter__(self) -> _SoundTrack:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            while self._thread.is_alive():
                self._thread.join(0.1)

    def result(self) -> BandTrack | None:
        """The track (waiting for the decoder to finish); None when no sound is decoded."""
        if self._thread is None:
            return None
        while self._thread.is_alive():
            self._thread.join(0.1)  # in slices: a pending Ctrl-C is seen
        if self._error is not None:
            raise self._error
        return self._track


def with_sound(
    video: Path,
    info: probe.VideoInfo,
    model_info: ModelInfo,
    times: np.ndarray,
    probs: np.ndarray,
    progress: ProgressCallback = no_progress,
    *,
    track: Callable[[], BandTrack | None] | None = None,
) -> tuple[np.ndarray, dict]:
    """The scores with the model's audio combiner applied, and the scan's record of it.

    A model without a combiner (``info.audio`` empty) or a multi-class one: ``probs`` as they are
    and an empty record.  A video without sound: ``probs`` as they are, the record says why.
    Otherwise the video's sound is decoded once (audio only, a cheap pass), its features are
    computed at the sample times (coarse or dense alike) and the highlight column becomes the
    combined score; the picture's own scores are kept in the record.  ``track``: gives the sound's
    band energies when they were decoded already (``scan_with`` decodes them alongside the picture).
    """
    audio_model = sound_model(model_info)
    if audio_model is None:
        return probs, {}
    if not info.has_audio:
        return probs, {"used": False, "why": "the video has no sound: scored by the picture alone"}
    total_s = info.duration_ms / 1000
    progress("scan sound", 0, total_s)
    positive = model_info.positive_index()
    picture = np.asarray(probs[:, positive], dtype=np.float32)
    spec = audio_model.combiner.spec
    decoded = track() if track is not None else None
    if decoded is None:
        decoded = band_track(media_audio.iter_audio(video, rate=spec.rate, info=info), spec)
    features = features_at(decoded, times, spec)
    combined = audio_model.combiner.apply(picture, features)
    mixed = np.array(probs, dtype=np.float32, copy=True)
    mixed[:, positive] = combined
    mixed[:, 1 - positive] = 1 - combined
    progress("scan sound", total_s, total_s)
    return mixed, {"used": True, "picture": [round(float(p), 6) for p in picture]}


def refines_on_sound(model_info: ModelInfo, info: probe.VideoInfo) -> bool:
    """Whether a coarse scan also chooses what to decode densely by the combined score of picture and sound: a
    model with a sound combiner, a video with sound.  Its events read that score, and a highlight the sound
    carries while the picture scores it low would otherwise keep only its keyframe samples: too few to make an
    event.  (The picture's own levels still apply too: a highlight the sound plays down at a keyframe is decoded
    as before.)"""
    return sound_model(model_info) is not None and info.has_audio


def _event_threshold(model_info: ModelInfo, *, sound: bool = False) -> float:
    """The threshold the model's events use (its calibrated rules, else its plain threshold); ``sound``: those
    of its combined score (``refines_on_sound``)."""
    audio_model = sound_model(model_info) if sound else None
    if audio_model is not None:
        return float(event_params_for(audio_model.events, audio_model.threshold).threshold)
    return float(event_params_for(model_info.events, model_info.threshold).threshold)


def coarse_threshold(options: ScanOptions, model_info: ModelInfo, *, sound: bool = False) -> float:
    """The candidate level of the keyframe pass (``CoarseOptions.threshold``; default: ``coarse.CANDIDATE_SHARE``
    of the event threshold the scan works towards, ``interior_threshold``)."""
    chosen = options.coarse.threshold
    if chosen is not None:
        return float(chosen)
    return coarse.CANDIDATE_SHARE * interior_threshold(options, model_info, sound=sound)


def interior_threshold(options: ScanOptions, model_info: ModelInfo, *, sound: bool = False) -> float:
    """The score a keyframe inside a candidate run needs to keep only its keyframe sample
    (``CoarseOptions.interior_threshold``; default: the model's event threshold, that of its combined score with
    ``sound``)."""
    chosen = options.coarse.interior_threshold
    return float(chosen) if chosen is not None else _event_threshold(model_info, sound=sound)


def coarse_levels(
    options: ScanOptions, model_info: ModelInfo, key_times: np.ndarray, key_probs: np.ndarray, duration_ms: int
) -> tuple[float, float]:
    """The candidate and interior levels of a coarse scan's second pass (``coarse_threshold``,
    ``interior_threshold``), raised for this video as its events' threshold will be (``adapt.adapt_threshold``,
    read from the keyframes' scores; ``CoarseOptions.adapt_levels``); a candidate level set by hand stays, and
    levels that follow an event threshold set by hand (``interior_threshold``) are not raised.
    A two-class picture model only: a sound combiner's threshold is adapted on the combined score."""
    candidate, interior = coarse_threshold(options, model_info), interior_threshold(options, model_info)
    if (
        not options.coarse.adapt_levels
        or options.coarse.interior_threshold is not None
        or len(model_info.classes) != 2
        or sound_model(model_info) is not None
    ):
        return candidate, interior
    params = event_params_for(model_info.events, model_info.threshold)
    scores = coarse.highlight_score(key_probs, tuple(model_info.classes))
    raised = adapt_levels(candidate, key_times, scores, duration_ms, params)
    if raised is None:
        return candidate, interior
    return (candidate if options.coarse.threshold is not None else raised[0]), raised[1]


def _scan_coarse(
    video: Path,
    info: probe.VideoInfo,
    spec: decode.DecodeSpec,
    predictor: Predictor,
    options: ScanOptions,
    progress: ProgressCallback,
    *,
    decide: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, CoarseScan]:
    """Keyframes first, then dense decoding where it matters (``coarse.refine``).  ``decide(times, probs)``: the
    combined score of a model with sound (``refines_on_sound``): the stretches it may make events in are decoded
    too, with the levels of the combined threshold."""
    classes = tuple(predictor.info.classes)
    decoders, decoder_threads = scan_decoders(options.coarse)
    # Pass 1: keyframes only, every one of them (no fps filter), at their own times; in pieces, `decoders`
    # at a time (one ffmpeg decoding keyframes keeps about one core busy).
    key_spec = decode.DecodeSpec(size=spec.size, fps=None, region=spec.region, keyframes_only=True)
    key_sources = _keyframe_sources(video, key_spec, info, options.batch_size, decoder_threads)
    key_times, key_probs = coarse.drop_repeats(
        *_score_whole(
            video,
            info,
            key_sources,
            predictor,
            options,
            progress,
            "scan keyframes",
            decoders=decoders,
            depth=KEYFRAME_DEPTH,
        )
    )

    # Pass 2: dense decoding around the edges (and dips) of runs of candidate keyframes, and
    # wherever keyframes are sparse; then further on wherever an event runs past what was decoded.
    threshold, interior = coarse_levels(options, predictor.info, key_times, key_probs, info.duration_ms)
    also = None
    if decide is not None:
        also = coarse.Reading(
            decide,
            coarse_threshold(options, predictor.info, sound=True),
            interior_threshold(options, predictor.info, sound=True),
        )
    policy = decode.SkipPolicy()
    done_s = 0.0

    def decode_spans(spans: list[coarse.Span]) -> coarse.Samples:
        nonlocal done_s
        total_s = done_s + sum(hi - lo for lo, hi in spans) / 1000
        progress("scan candidates", done_s, total_s)
        scored = _score_batches(
            _span_sources(video, spec, spans, info, options.batch_size, decoder_threads, policy),
            predictor.predict,
            len(classes),
            _span_progress(spans, total_s, progress, done_s),
            video=video,
            stall_timeout_s=options.stall_timeout_s,
            decoders=decoders,
        )
        done_s = total_s
        return scored

    times, probs, spans = coarse.refine(
        key_times,
        key_probs,
        classes,
        info.duration_ms,
        options.fps,
        options.coarse,
        candidate=threshold,
        interior=interior,
        decode=decode_spans,
        also=also,
    )
    refine_s = sum(hi - lo for lo, hi in spans) / 1000
    if spans:
        progress("scan candidates", refine_s, refine_s)
    rough = CoarseScan(
        keyframes=int(len(key_times)),
        threshold=also.candidate if also is not None else threshold,  # the level of the score the events read
        spans_ms=tuple((int(lo), int(hi)) for lo, hi in spans),
        refined_fraction=round(refine_s * 1000 / max(1, info.duration_ms), 4),
    )
    return times, probs, rough


def scan_decoders(options: coarse.CoarseOptions) -> tuple[int, int | None]:
    """How many ffmpeg runs of a coarse scan decode at once, and the decoding threads of each (CoarseOptions)."""
    decoders = options.decoders or max(1, min(2, os.cpu_count() or 1))
    threads = options.decoder_threads if options.decoder_threads is not None else (1 if decoders > 1 else None)
    return decoders, threads


def _span_progress(
    spans: list[coarse.Span], total_s: float, progress: ProgressCallback, done_s: float = 0.0
) -> Callable[[decode.FrameBatch], None]:
    """Progress through the refined spans, in seconds of refined video (``done_s`` refined before them)."""
    starts = np.array([lo for lo, _ in spans], dtype=np.int64)
    before = np.concatenate(([0], np.cumsum([hi - lo for lo, hi in spans])))

    def on_batch(batch: decode.FrameBatch) -> None:
        t = int(batch.times_ms[-1])
        i = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
        done_ms = before[i] + min(t - spans[i][0], spans[i][1] - spans[i][0])
        progress("scan candidates", min(total_s, done_s + done_ms / 1000), total_s)

    return on_batch


def model_region(
    info: probe.VideoInfo,
    model_info: ModelInfo,
    *,
    region: Region | None = None,
    full_frame: bool = False,
    cache: ScoreCache | None = None,
) -> Region | None:
    """The part of ``info``'s frames a model sees: none (the whole frame) with ``full_frame``,
    else ``region``, else the model's crop, else, for a model trained with --crop-borders, the
    picture inside this video's letterbox bars (detected once per file when ``cache`` is given)."""
    if full_frame:
        return None
    chosen = region or model_info.crop
    if chosen is None and model_info.crop_borders:
        if cache is None:
            chosen = decode.detect_active_area(info)
        else:
            chosen = cache.remembered(
                f"borders-{file_fingerprint(info.path)}", lambda: decode.detect_active_area(info), valid=is_region
            )
    return as_region(chosen)


def _scan_torch_threads(threads: int | None) -> int:
    """Torch threads while scanning (ScanOptions.threads): few, so inference does not crowd out the decoder."""
    import torch

    cores = os.cpu_count() or 1
    return threads or min(torch.get_num_threads(), 1 if cores <= 4 else cores // 4)


def scan_video(
    video: Path | str,
    model_path: Path | str,
    options: ScanOptions = ScanOptions(),
    *,
    progress: ProgressCallback = no_progress,
    predictor: Predictor | None = None,
    backend: str | None = None,
) -> Scores:
    """Score ``video`` with the model at ``model_path``, a .pt checkpoint or an .onnx export (cached unless disabled).

    The model is loaded with ``predictor.load_predictor(model_path, backend)`` -- torch's threads
    limited while scanning, onnxruntime's set as small as ``options.threads`` says --
    unless ``predictor`` (``info`` and ``predict(frames)``, already loaded from ``model_path``)
    is given; the caller then sets the threads.
    """
    from autotosis.model.info import model_fingerprint
    from autotosis.model.predictor import TorchPredictor, load_predictor

    video = Path(video)
    model_path = Path(model_path)
    info = probe.probe(video)  # a file that is no video fails before the model is loaded (or exported)
    threads = contextlib.nullcontext()
    if predictor is None:
        # As for torch: on a small machine one inference thread, the other cores decode.
        predictor = load_predictor(
            model_path, backend, threads=options.threads or (1 if (os.cpu_count() or 1) <= 4 else None)
        )
        if isinstance(predictor, TorchPredictor):
            from autotosis.model.model import torch_threads  # torch only for a torch model

            threads = torch_threads(_scan_torch_threads(options.threads))
    model_info = predictor.info
    cache = ScoreCache(options.cache_dir)
    region = model_region(
        info,
        model_info,
        region=options.region,
        full_frame=options.full_frame,
        cache=cache if options.use_cache else None,
    )
    options = replace(options, region=region, full_frame=region is None)
    fingerprint = model_fingerprint(model_path)
    mode = resolve_mode(options, info.duration_ms)
    identity = file_fingerprint(video)
    # "pick": which frame a sample shows (fps=...:round=up since issue 4); older entries differ.
    sampling = {"fps": options.fps, "size": model_info.input_size, "mode": "dense", "pick": "up"}
    if info.video_stream:
        # Scans of a file whose recording is not its first video stream (cover image first) read the first
        # before this was known: such entries are not served.
        sampling["stream"] = info.video_stream
    keys = [cache_key(identity, fingerprint, sampling, region)]  # dense scores serve a coarse request too
    if mode == "coarse":
        # Every setting that changes which stretches are refined is in the key (issue 18 added
        # edges_only, interior_threshold, join_ms and adapt_levels: entries made with the old rule are not served;
        # the levels adapted to the video follow from the video and the model, both in the key).
        rule = options.coarse.as_key(coarse_threshold(options, model_info), interior_threshold(options, model_info))
        if refines_on_sound(model_info, info):
            # Since 2026-12-07 a model with sound also refines by the combined score: entries refined by the
            # picture's alone are not served.
            rule["sound_levels"] = [
                round(coarse_threshold(options, model_info, sound=True), 6),
                round(interior_threshold(options, model_info, sound=True), 6),
            ]
        keys.insert(0, cache_key(identity, fingerprint, {**sampling, "mode": "coarse", **rule}, region))
    if options.use_cache:
        for key in keys:
            cached = cache.load(key, video)
            # An entry made when the file was read as another length (an older probe) is scanned again.
            if cached is not None and cached.duration_ms == info.duration_ms:
                progress("scan", info.duration_ms / 1000, info.duration_ms / 1000)
                return cached
    with threads:
        scores = scan_with(video, predictor, options, progress=progress, info=info, model=fingerprint)
    if options.use_cache:
        cache.store(keys[0], scores)
    return scores
