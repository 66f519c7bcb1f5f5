"""Livestream highlight detection: the cloud watches sampled streams, or the phone watches its own stream.

Walle (Lv et al., OSDI 2022 [lv2022walle]) moves highlight detection in Taobao Live onto the streamer's
phone: a small model watches every frame and only candidate highlights go to the cloud, which confirms
them. This module shows the budget argument behind it on synthetic streams:

* :func:`generate_streams` draws, per stream, one frame feature vector per second with rare highlight
  segments (a mean shift of some features) and records the true highlight intervals.
* :func:`run_cloud_only`: the cloud can analyse ``capacity_fps`` frames per second in all; with ``S``
  streams at one frame per second it visits each stream every ``S / capacity_fps`` seconds
  (:func:`cloud_sample_mask`), so coverage falls once ``S`` exceeds the capacity.
* :func:`run_device_first`: a small on-device detector (:func:`fit_device_detector`) scores every frame;
  only flagged frames are uploaded, and the cloud confirms them with its own detector
  (:func:`confirm_flagged` is the cloud's half, for sweeps that reuse the flags).
* :func:`coverage` is the share of true highlights with at least one confirmed frame inside.

Stand-ins, labelled (not from the paper): the 16 features stand for what a model extracts from a frame;
the *cloud detector* is the best linear detector on all 16 features (it knows the highlight's direction),
the *device detector* a logistic regression that sees only the first ``device_dims`` features (a cheaper
view of the frame), so it misses some highlights. The device's compute is priced as the small CNN of
:func:`device_extractor` run on a thumbnail once per second; the detector's own arithmetic is negligible.
Frames are uploaded as JPEGs of an assumed size (:class:`PipelineCosts`), over a radio already connected
for the live stream (no promotion or tail).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from collab_lib._validate import positive_int
from collab_lib.applications.reranking import fit_logistic, logit
from collab_lib.hardware.energy import compute_energy_j, get_radio, transfer_energy_j
from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.profile import profile_model, total_flops
from collab_lib.hardware.specs import get_link


@dataclass(frozen=True)
class StreamConfig:
    """Synthetic live streams: one frame per second, ``num_features`` features per frame."""

    num_streams: int = 100
    duration_s: int = 600
    num_features: int = 16
    num_shifted: int = 8             # features 0 .. num_shifted - 1 move during a highlight
    shift: float = 0.9               # their mean shift, in noise standard deviations
    highlight_every_s: float = 120.0  # mean gap between highlights of one stream
    highlight_len_s: tuple[int, int] = (3, 10)  # length drawn uniformly from [min, max] seconds
    stream_offset_std: float = 0.3   # per-stream constant offset of every feature (lighting, camera)

    def __post_init__(self) -> None:
        for name in ("num_streams", "duration_s", "num_features", "num_shifted"):
            positive_int(name, getattr(self, name))
        if self.num_shifted > self.num_features:
            raise ValueError(f"num_shifted must be <= num_features, got {self.num_shifted} > {self.num_features}")
        lo, hi = self.highlight_len_s
        if not 1 <= lo <= hi:
            raise ValueError(f"highlight_len_s must be (min, max) with 1 <= min <= max, got {self.highlight_len_s}")
        for name in ("shift", "highlight_every_s", "stream_offset_std"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def direction(self) -> np.ndarray:
        """(d,) mean shift of a highlight frame."""
        mu = np.zeros(self.num_features)
        mu[: self.num_shifted] = self.shift
        return mu


@dataclass(frozen=True)
class Streams:
    """``frames`` (S, T, d) float64, ``label`` (S, T) bool, ``intervals`` (K, 3) int rows
    ``[stream, start_s, end_s)`` (end exclusive), sorted by stream then start."""

    frames: np.ndarray
    label: np.ndarray
    intervals: np.ndarray


def highlight_intervals(duration_s: int, every_s: float, len_s: tuple[int, int],
                        rng: np.random.Generator) -> list[tuple[int, int]]:
    """Non-overlapping ``[start, end)`` intervals in ``[0, duration_s)``: exponential gaps of mean ``every_s``
    (at least one second) between the end of one highlight and the start of the next."""
    out, t = [], 0
    while True:
        t += 1 + int(rng.exponential(every_s))
        length = int(rng.integers(len_s[0], len_s[1] + 1))
        if t + length > duration_s:
            return out
        out.append((t, t + length))
        t += length


def generate_streams(config: StreamConfig, seed: int) -> Streams:
    """Streams drawn from ``seed``; stream ``s`` uses the generator ``(seed, s)``, so the first ``S`` streams
    of a larger config are the same as those of a config with ``num_streams = S``."""
    S, T, d = config.num_streams, config.duration_s, config.num_features
    frames = np.empty((S, T, d))
    label = np.zeros((S, T), dtype=bool)
    rows = []
    for s in range(S):
        rng = np.random.default_rng([seed, s])
        for a, b in highlight_intervals(T, config.highlight_every_s, config.highlight_len_s, rng):
            label[s, a:b] = True
            rows.append((s, a, b))
        offset = rng.normal(0.0, config.stream_offset_std, d)
        frames[s] = rng.normal(size=(T, d)) + offset + label[s, :, None] * config.direction   # (T, d)
    return Streams(frames, label, np.array(rows, dtype=np.int64).reshape(-1, 3))


def coverage(intervals: np.ndarray, detected: np.ndarray) -> float:
    """Share of the (K, 3) ``intervals`` with at least one True in ``detected`` (S, T) inside; nan if K = 0."""
    intervals, detected = np.asarray(intervals), np.asarray(detected, dtype=bool)
    if intervals.ndim != 2 or intervals.shape[1] != 3:
        raise ValueError(f"intervals must be (K, 3) rows [stream, start, end), got shape {intervals.shape}")
    if detected.ndim != 2:
        raise ValueError(f"detected must be (S, T), got shape {detected.shape}")
    if len(intervals) == 0:
        return float("nan")
    # Prefix sums per stream: hits in [a, b) = c[b] - c[a].
    c = np.concatenate([np.zeros((len(detected), 1), dtype=np.int64), np.cumsum(detected, axis=1)], axis=1)
    s, a, b = intervals.T
    return float(np.mean(c[s, b] - c[s, a] > 0))


def first_detection_s(intervals: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """(K,) seconds from each interval's start to its first True frame; nan where none."""
    intervals, detected = np.asarray(intervals), np.asarray(detected, dtype=bool)
    if len(intervals) == 0:
        return np.full(0, np.nan)
    S, T = detected.shape
    # next_hit[s, t]: the first t' >= t with a True frame (T if none), a running minimum from the end.
    at = np.where(detected, np.arange(T), T)                                            # (S, T)
    next_hit = np.minimum.accumulate(at[:, ::-1], axis=1)[:, ::-1]
    s, a, b = intervals.T
    hit = next_hit[s, a]                                                                # (K,)
    return np.where(hit < b, hit - a, np.nan).astype(np.float64)


def cloud_sample_mask(num_streams: int, duration_s: int, capacity_fps: float, seed: int) -> np.ndarray:
    """(S, T) bool: the frames a cloud of ``capacity_fps`` frame analyses per second visits, one frame per
    second per stream. If ``S <= capacity_fps`` every frame; otherwise each stream every ``P = S / capacity_fps``
    seconds, at ``floor(phase + k P)`` with a random phase in ``[0, P)`` per stream (round robin)."""
    positive_int("num_streams", num_streams)
    positive_int("duration_s", duration_s)
    if not capacity_fps > 0:
        raise ValueError(f"capacity_fps must be > 0, got {capacity_fps!r}")
    mask = np.zeros((num_streams, duration_s), dtype=bool)
    period = num_streams / capacity_fps
    if period <= 1:
        mask[:] = True
        return mask
    phase = np.random.default_rng(seed).uniform(0, period, num_streams)
    k = np.arange(int(np.ceil(duration_s / period)) + 1)
    t = np.floor(phase[:, None] + k[None, :] * period).astype(np.int64)                # (S, K)
    rows = np.broadcast_to(np.arange(num_streams)[:, None], t.shape)
    keep = t < duration_s
    mask[rows[keep], t[keep]] = True
    return mask


def cloud_detector(config: StreamConfig, false_alarm: float = 0.005):
    """The cloud's stand-in large model: flags a frame when its projection on the highlight direction
    exceeds the ``1 - false_alarm`` normal quantile (per-frame false-alarm rate ``false_alarm`` on a stream
    without offset). Returns ``flag(frames) -> bool`` over the last axis."""
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm!r}")
    u = config.direction / np.linalg.norm(config.direction)
    thr = NormalDist().inv_cdf(1 - false_alarm)
    return lambda frames: np.asarray(frames) @ u > thr


@dataclass(frozen=True)
class DeviceDetector:
    """Logistic regression on the first ``dims`` features; flags a frame when its score exceeds ``threshold``."""

    weights: np.ndarray  # (dims + 1,), bias last
    dims: int
    threshold: float

    def flag(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (..., d) -> (...) bool."""
        x = np.asarray(frames)[..., : self.dims]
        return logit(self.weights, x.reshape(-1, self.dims)).reshape(x.shape[:-1]) > self.threshold


def fit_device_detector(train: Streams, dims: int, false_alarm: float) -> DeviceDetector:
    """Fit on labelled training streams; the threshold is the ``1 - false_alarm`` quantile of the scores of
    their normal frames, so the detector flags about ``false_alarm`` of normal frames."""
    if not isinstance(dims, int) or not 1 <= dims <= train.frames.shape[-1]:
        raise ValueError(f"dims must be an int in [1, {train.frames.shape[-1]}], got {dims!r}")
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm!r}")
    X = train.frames[..., :dims].reshape(-1, dims)
    y = train.label.reshape(-1)
    w = fit_logistic(X, y)
    thr = float(np.quantile(logit(w, X[~y]), 1 - false_alarm))
    return DeviceDetector(w, dims, thr)


def device_extractor() -> nn.Sequential:
    """The stand-in feature extractor priced on the phone: a small CNN from a (1, 3, 112, 112) thumbnail to
    16 features."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),     # (1, 16, 56, 56)
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),    # (1, 32, 28, 28)
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),    # (1, 32, 14, 14)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 16),
    )


@functools.cache
def _extractor_energy_j(precision: str, energy_scale: float) -> float:
    """One pass of :func:`device_extractor`, profiled once per precision and scale (every pipeline result
    prices its frames with it, and profiling takes tens of milliseconds)."""
    with torch.device("meta"):
        model = device_extractor()
    layers = profile_model(model, torch.empty(1, 3, 112, 112, device="meta"))
    return compute_energy_j(total_flops(layers), sum(p.bytes_moved for p in layers), precision, energy_scale)


@dataclass(frozen=True)
class PipelineCosts:
    """Assumptions of the cost model. ``frame_bytes``: one analysed frame as a 720p JPEG (assumed, tens of
    KB); link and radio keys of the hardware catalog; ``energy_scale`` scales the 45 nm compute energies."""

    frame_bytes: float = 50e3
    link: str = "lte"
    precision: str = "fp32"
    energy_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.frame_bytes > 0:
            raise ValueError(f"frame_bytes must be > 0, got {self.frame_bytes!r}")
        if not self.energy_scale > 0:
            raise ValueError(f"energy_scale must be > 0, got {self.energy_scale!r}")

    def compute_j_per_frame(self) -> float:
        """Joules of one pass of :func:`device_extractor` (FLOPs and bytes from :func:`~collab_lib.hardware.profile.profile_model`)."""
        return _extractor_energy_j(self.precision, self.energy_scale)

    def upload_j_per_frame(self) -> float:
        """Joules to upload one frame over a radio already connected (no promotion, no tail)."""
        return transfer_energy_j(self.frame_bytes, 0.0, get_link(self.link), get_radio(self.link),
                                 include_tail=False)

    def latency_overhead_s(self) -> float:
        """Upload time of one frame plus the link's round trip: added to the wait for the detected frame."""
        link = get_link(self.link)
        return transfer_time_s(self.frame_bytes, link.uplink_bits_per_s) + link.rtt_s


@dataclass(frozen=True)
class PipelineResult:
    """One pipeline on a set of streams. Rates are per second of stream time."""

    cloud_fps: float             # frames the cloud analyses per second, all streams
    coverage: float              # share of true highlights with a confirmed frame
    upload_bytes_per_s: float    # per stream
    device_compute_w: float      # per stream: joules per second = watts
    device_radio_w: float        # per stream
    latency_s: float             # mean over detected highlights: wait for the frame + upload + round trip
    confirmed_false_per_s: float  # confirmed frames outside any highlight, all streams


def _result(streams: Streams, analysed: np.ndarray, confirmed: np.ndarray, uploaded: int,
            computed_frames: int, costs: PipelineCosts) -> PipelineResult:
    S, T = streams.label.shape
    wait = first_detection_s(streams.intervals, confirmed)
    return PipelineResult(
        cloud_fps=analysed.sum() / T,
        coverage=coverage(streams.intervals, confirmed),
        upload_bytes_per_s=uploaded * costs.frame_bytes / (S * T),
        device_compute_w=computed_frames * costs.compute_j_per_frame() / (S * T),
        device_radio_w=uploaded * costs.upload_j_per_frame() / (S * T),
        latency_s=float(np.nanmean(wait)) + costs.latency_overhead_s() if np.isfinite(wait).any() else float("nan"),
        confirmed_false_per_s=(confirmed & ~streams.label).sum() / T,
    )


def run_cloud_only(streams: Streams, config: StreamConfig, capacity_fps: float, costs: PipelineCosts,
                   seed: int, cloud_false_alarm: float = 0.005) -> PipelineResult:
    """Every frame is uploaded; the cloud analyses the frames of :func:`cloud_sample_mask`."""
    S, T = streams.label.shape
    analysed = cloud_sample_mask(S, T, capacity_fps, seed)
    confirmed = analysed & cloud_detector(config, cloud_false_alarm)(streams.frames)
    return _result(streams, analysed, confirmed, uploaded=S * T, computed_frames=0, costs=costs)


def run_device_first(streams: Streams, config: StreamConfig, detector: DeviceDetector, capacity_fps: float,
                     costs: PipelineCosts, seed: int, cloud_false_alarm: float = 0.005) -> PipelineResult:
    """The phone scores every frame and uploads the flagged ones; the cloud confirms them. If more frames
    are flagged than the cloud can analyse (``capacity_fps * T``), it analyses a uniform random subset."""
    flagged = detector.flag(streams.frames)                                            # (S, T)
    cloud_flags = cloud_detector(config, cloud_false_alarm)(streams.frames)            # (S, T)
    return confirm_flagged(streams, flagged, cloud_flags, capacity_fps, costs, seed)


def confirm_flagged(streams: Streams, flagged: np.ndarray, cloud_flags: np.ndarray, capacity_fps: float,
                    costs: PipelineCosts, seed: int) -> PipelineResult:
    """The cloud's half of :func:`run_device_first`, from the phone's ``flagged`` (S, T) frames and the
    cloud detector's verdict ``cloud_flags`` (S, T) on every frame (it only sees those it analyses).

    Both depend on neither the budget nor the number of streams, so a sweep over those computes them once
    and passes row prefixes (the first S streams); :func:`run_device_first` computes them per call.
    """
    if not capacity_fps > 0:
        raise ValueError(f"capacity_fps must be > 0, got {capacity_fps!r}")
    flagged, cloud_flags = np.asarray(flagged, dtype=bool), np.asarray(cloud_flags, dtype=bool)
    S, T = streams.label.shape
    if flagged.shape != (S, T) or cloud_flags.shape != (S, T):
        raise ValueError(f"flagged and cloud_flags must be (S, T) = {(S, T)}, got {flagged.shape} and "
                         f"{cloud_flags.shape}")
    analysed = flagged.copy()
    budget = int(capacity_fps * T)
    idx = np.flatnonzero(flagged)
    if len(idx) > budget:
        drop = np.random.default_rng(seed).choice(idx, size=len(idx) - budget, replace=False)
        analysed.flat[drop] = False
    confirmed = analysed & cloud_flags
    return _result(streams, analysed, confirmed, uploaded=int(flagged.sum()), computed_frames=S * T, costs=costs)
