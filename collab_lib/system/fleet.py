"""A day of requests from a heterogeneous fleet of devices, served by a cloud of finite capacity.

Every device (a catalog device and a catalog link, drawn from a mix) issues requests over a day, more in the
evening than at night (a diurnal profile). A *policy* decides where each request runs:

* ``"device"`` — the whole model on the device;
* ``"cloud"`` — send the input, the whole model in the cloud;
* ``"split"`` — per request, the best cut of :func:`~collab_lib.system.partition.split_latencies` for the
  link's state at that moment (Neurosurgeon re-deciding as bandwidth changes);
* ``"cascade"`` — a small model on the device; a :class:`~collab_lib.system.cascade.Router` and a
  threshold send some requests on to the cloud's large model (:func:`~collab_lib.system.cascade.route`).

The cloud has ``cloud_servers`` identical servers and a first-come-first-served queue: a request that
arrives when all are busy waits. Waiting is where a fleet differs from one device: as utilisation nears 1,
queueing delay grows without bound, and it hits every cloud-bound request at the busiest hour.
Per-request results are plain arrays; :func:`collab_lib.metrics.fleet_summary` gives p50/p90/p99.

Stand-in, labelled: the fleet does not model what is asked or how well it is answered. Each request carries
a *difficulty* drawn uniformly on (0, 1] from the day's seed, the cascade's router scores the requests from
it, and only the route it gives matters. The default router, a
:class:`~collab_lib.system.cascade.PrecomputedRouter`, takes the difficulty as the score, so threshold
1 - e escalates each request independently with probability e.

:func:`rollout_coverage` models Walle's push-then-pull deployment of a new model (Lv et al., OSDI 2022):
the platform pushes a notice to online devices, which pull the model; offline devices pull it when they
next come online.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from collab_lib.hardware.energy import compute_energy_j, get_radio, transfer_energy_per_request_j
from collab_lib.hardware.network import sample_link
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import LinkSpec, get_device, get_link
from collab_lib.system.cascade import PrecomputedRouter, Router, route
from collab_lib.system.partition import split_latencies

DAY_S = 86_400.0
POLICIES = ("device", "cloud", "split", "cascade")


@dataclass(frozen=True)
class FleetConfig:
    """A fleet, its traffic and the cloud that serves it."""

    num_devices: int = 500
    device_mix: Mapping[str, float] = field(default_factory=lambda: {"snapdragon-8-gen-3": 0.7, "raspberry-pi-5": 0.3})
    link_mix: Mapping[str, float] = field(default_factory=lambda: {"wifi": 0.5, "lte": 0.4, "3g": 0.1})
    requests_per_device_per_day: float = 200.0
    peak_to_trough: float = 4.0  # busiest hour's request rate / quietest hour's
    peak_hour: float = 20.0
    cloud: str = "a100-sxm"
    cloud_servers: int = 1
    device_precision: str = "fp32"
    cloud_precision: str = "fp32"
    device_efficiency: float = 0.3
    cloud_efficiency: float = 0.3
    rate_cv: float = 0.5  # link variability (see collab_lib.hardware.network.sample_link)

    def __post_init__(self) -> None:
        if self.num_devices < 1 or self.cloud_servers < 1:
            raise ValueError("num_devices and cloud_servers must be >= 1")
        if self.requests_per_device_per_day <= 0:
            raise ValueError(f"requests_per_device_per_day must be > 0, got {self.requests_per_device_per_day}")
        if self.peak_to_trough < 1:
            raise ValueError(f"peak_to_trough must be >= 1, got {self.peak_to_trough}")
        for name in ("device_mix", "link_mix"):
            mix = getattr(self, name)
            if not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
                raise ValueError(f"{name} must map keys to non-negative shares with a positive sum")
        for key in self.device_mix:
            get_device(key)  # unknown keys fail here, listing the valid ones
        for key in self.link_mix:
            get_link(key)


@dataclass(frozen=True)
class FleetResult:
    """One row per request, in arrival order: arrays of shape (num_requests,), and the cloud by hour."""

    arrival_s: np.ndarray
    device_id: np.ndarray
    latency_s: np.ndarray
    queue_s: np.ndarray
    bytes_up: np.ndarray
    to_cloud: np.ndarray
    device_energy_j: np.ndarray  # compute (45 nm per-operation energies) + radio (isolated transfer)
    cloud_utilisation_per_hour: np.ndarray  # (24,) cloud work started in each hour / (servers x 3600 s)


def diurnal_rate(hour: np.ndarray, peak_to_trough: float, peak_hour: float) -> np.ndarray:
    """Relative request rate by hour of day, a cosine with mean 1 peaking at ``peak_hour``."""
    a = (peak_to_trough - 1) / (peak_to_trough + 1)  # (1 + a) / (1 - a) = peak_to_trough
    return 1 + a * np.cos(2 * np.pi * (hour - peak_hour) / 24)


def arrivals(config: FleetConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Request times (s, sorted) and the device of each, by thinning a Poisson process with the diurnal rate."""
    # Homogeneous Poisson arrivals at the peak rate, each kept with probability rate(t) / peak.
    peak = diurnal_rate(np.array([config.peak_hour]), config.peak_to_trough, config.peak_hour)[0]
    n_max = rng.poisson(config.num_devices * config.requests_per_device_per_day * peak)
    t = np.sort(rng.uniform(0, DAY_S, n_max))
    keep = rng.uniform(size=n_max) < diurnal_rate(t / 3600, config.peak_to_trough, config.peak_hour) / peak
    t = t[keep]
    return t, rng.integers(0, config.num_devices, len(t))


def _draw(mix: Mapping[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=float)
    return np.array(keys)[rng.choice(len(keys), size=n, p=p / p.sum())]


def fifo_queue(arrival_s: np.ndarray, service_s: np.ndarray, servers: int) -> np.ndarray:
    """Waiting time of each job in a first-come-first-served queue with ``servers`` servers.

    ``arrival_s`` must be sorted. A job starts at max(arrival, earliest time a server is free).
    """
    free = [0.0] * servers  # heap of the times each server becomes free
    wait = np.zeros(len(arrival_s))
    for i, (t, s) in enumerate(zip(arrival_s, service_s)):
        start = max(t, heapq.heappop(free))
        wait[i] = start - t
        heapq.heappush(free, start + s)
    return wait


def _cut_table(layers, device, cloud, config, in_bytes):
    """Link-independent parts of every cut for one device: device s, cloud s, bytes up; (n + 1,) each."""
    unit = LinkSpec("unit", 1.0, 1.0, 0.0)  # rates of 1 bit/s: uplink_s = 8 * bytes_up, read back below
    cuts = split_latencies(layers, device, cloud, unit, input_bytes=in_bytes,
                           device_precision=config.device_precision, cloud_precision=config.cloud_precision,
                           device_efficiency=config.device_efficiency, cloud_efficiency=config.cloud_efficiency)
    return (np.array([c.device_s for c in cuts]), np.array([c.cloud_s for c in cuts]),
            np.array([c.bytes_up for c in cuts]))


def simulate_day(
    config: FleetConfig,
    layers: Sequence[LayerProfile],
    policy: str,
    seed: int,
    *,
    small_layers: Sequence[LayerProfile] | None = None,
    router: Router | None = None,
    threshold: float | None = None,
    input_bytes: int | None = None,
) -> FleetResult:
    """Simulate one day of the fleet under ``policy``; ``small_layers``, ``router`` and ``threshold`` are
    the cascade's.

    The cascade sends a request to the cloud where ``router.score(difficulty) >= threshold``
    (:func:`~collab_lib.system.cascade.route`), ``difficulty`` being the requests' (n,) float64 tensor of
    draws on (0, 1] in arrival order; ``router`` defaults to a
    :class:`~collab_lib.system.cascade.PrecomputedRouter` (score = difficulty, so threshold 1 - e escalates
    a share e on average). The other policies ignore the three.

    Latency of a request = device compute + RTT + upload + queueing + cloud compute + download, with the
    link's rates and RTT drawn per request (:func:`~collab_lib.hardware.network.sample_link`).

    Device energy of a request = compute of the layers it runs on the device
    (:func:`~collab_lib.hardware.energy.compute_energy_j`, 45 nm per-operation energies, as
    :func:`~collab_lib.system.partition.split_energies`) + for a cloud-bound request the radio
    (:func:`~collab_lib.hardware.energy.transfer_energy_per_request_j`): promotion, upload and download at
    the drawn rates, connected while it waits (RTT, queue, cloud compute), tail. A device sends a few
    requests an hour, so each transfer is priced as isolated (radio idle before, left in its tail after).
    Every link in ``config.link_mix`` needs a radio model (:func:`~collab_lib.hardware.energy.get_radio`).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {POLICIES}")
    if policy == "cascade" and (small_layers is None or threshold is None):
        raise ValueError("the cascade policy needs small_layers and a threshold")
    if not layers:
        raise ValueError("layers is empty")
    radios = {key: get_radio(key) for key in config.link_mix}  # fails early on a link without one
    rng = np.random.default_rng(seed)
    cloud = get_device(config.cloud)
    device_kind = _draw(config.device_mix, config.num_devices, rng)  # (devices,)
    link_kind = _draw(config.link_mix, config.num_devices, rng)
    t, dev = arrivals(config, rng)
    n, last = len(t), len(layers)
    in_bytes = layers[0].input_bytes if input_bytes is None else input_bytes
    out_bytes = layers[-1].output_bytes

    # Per-request link state, drawn per link type.
    up, down, rtt = np.empty(n), np.empty(n), np.empty(n)
    for key in np.unique(link_kind):
        rows = np.flatnonzero(link_kind[dev] == key)
        draws = sample_link(get_link(str(key)), len(rows), int(rng.integers(2**31)), rate_cv=config.rate_cv)
        up[rows], down[rows], rtt[rows] = draws.uplink_bits_per_s, draws.downlink_bits_per_s, draws.rtt_s
    difficulty = 1 - rng.uniform(size=n)  # (n,) on (0, 1]: exact, as uniform draws are multiples of 2^-53
    if policy == "cascade":
        scores = (PrecomputedRouter() if router is None else router).score(torch.from_numpy(difficulty))
        escalated = route(scores, threshold).numpy()  # validates the threshold and the scores
        if escalated.shape != (n,):
            raise ValueError(f"router gave {escalated.shape[0]} scores for {n} requests")

    device_s, cloud_s, compute_j = np.zeros(n), np.zeros(n), np.zeros(n)
    bytes_up = np.zeros(n, dtype=np.int64)
    layer_j = np.array([compute_energy_j(p.flops, p.bytes_moved, config.device_precision) for p in layers])
    done_j = np.concatenate([[0.0], np.cumsum(layer_j)])  # (n_cuts,) device compute energy of each cut
    cut = np.zeros(n, dtype=np.int64)  # layers run on the device
    for key in np.unique(device_kind):
        rows = np.flatnonzero(device_kind[dev] == key)
        d_s, c_s, b_up = _cut_table(layers, get_device(str(key)), cloud, config, in_bytes)  # (n_cuts,)
        if policy == "device":
            k = np.full(len(rows), last)
        elif policy == "cloud":
            k = np.zeros(len(rows), dtype=np.int64)
        elif policy == "split":  # every cut's total for every request: (rows, n_cuts)
            net = rtt[rows, None] + 8 * b_up[None, :] / up[rows, None] + 8 * out_bytes / down[rows, None]
            total = d_s[None, :] + c_s[None, :] + np.where(np.arange(last + 1) < last, net, 0.0)
            k = total.argmin(axis=1)
        else:  # cascade: the small model on the device, escalated requests send the input to the cloud
            k = np.where(escalated[rows], 0, last)
        cut[rows] = k
        device_s[rows] = d_s[k]
        cloud_s[rows] = c_s[k]
        bytes_up[rows] = b_up[k]
        compute_j[rows] = done_j[k]
        if policy == "cascade":
            device_s[rows] = layers_time_s(small_layers, get_device(str(key)), config.device_precision,
                                           config.device_efficiency)
            compute_j[rows] = sum(compute_energy_j(p.flops, p.bytes_moved, config.device_precision)
                                  for p in small_layers)
    to_cloud = cut < last
    network_s = np.where(to_cloud, rtt + 8 * bytes_up / up + 8 * out_bytes / down, 0.0)

    # The cloud sees a request after the device part, half the RTT and the upload; FIFO queue.
    queue_s = np.zeros(n)
    idx = np.flatnonzero(to_cloud)
    reach_s = t[idx] + device_s[idx] + rtt[idx] / 2 + 8 * bytes_up[idx] / up[idx]
    order = np.argsort(reach_s, kind="stable")
    queue_s[idx[order]] = fifo_queue(reach_s[order], cloud_s[idx[order]], config.cloud_servers)
    hour = (reach_s // 3600).astype(int).clip(0, 23)
    work = np.bincount(hour, weights=cloud_s[idx], minlength=24)
    latency = device_s + network_s + queue_s + cloud_s

    radio_j = np.zeros(n)
    for key in np.unique(link_kind):
        rows = np.flatnonzero((link_kind[dev] == key) & to_cloud)
        radio_j[rows] = transfer_energy_per_request_j(
            bytes_up[rows], out_bytes, up[rows], down[rows], radios[str(key)], include_tail=True,
            wait_s=rtt[rows] + queue_s[rows] + cloud_s[rows])
    return FleetResult(t, dev, latency, queue_s, bytes_up, to_cloud, compute_j + radio_j,
                       work / (config.cloud_servers * 3600.0))


def availability(config: FleetConfig, seed: int, window_s: float = 900.0, online_share: float = 0.3) -> np.ndarray:
    """(num_devices, windows) boolean matrix of when each device is online (charging, on Wi-Fi, idle),
    over one day. A device is online in a window with probability ``online_share`` x the diurnal rate of
    that hour x its own propensity (log-normal, mean 1), capped at 1."""
    if window_s <= 0 or not 0 < online_share <= 1:
        raise ValueError("window_s must be > 0 and online_share in (0, 1]")
    rng = np.random.default_rng(seed)
    starts_h = np.arange(0, DAY_S, window_s) / 3600
    rate = diurnal_rate(starts_h, config.peak_to_trough, config.peak_hour)               # (windows,)
    propensity = rng.lognormal(-0.5 * 0.5**2, 0.5, config.num_devices)                   # (devices,), mean 1
    p = np.minimum(1.0, online_share * propensity[:, None] * rate[None, :])
    return rng.uniform(size=p.shape) < p


def rollout_coverage(
    online: np.ndarray, push_at_s: float, times_s: np.ndarray, window_s: float
) -> np.ndarray:
    """Share of devices running the new model at each of ``times_s`` under push-then-pull.

    ``online`` is a (num_devices, num_windows) boolean matrix: device d is online during window w (of
    ``window_s`` seconds, from time 0). A device online at ``push_at_s`` pulls at once; an offline one
    pulls at the start of its next online window after the push; one never online again never updates.
    """
    online = np.asarray(online, dtype=bool)
    if online.ndim != 2 or window_s <= 0:
        raise ValueError("online must be a (devices, windows) matrix and window_s > 0")
    first = int(push_at_s // window_s)
    later = online[:, first:]
    has = later.any(axis=1)
    idx = later.argmax(axis=1) + first  # first online window at or after the push
    updated_at = np.where(has, np.maximum(idx * window_s, push_at_s), np.inf)
    return np.array([(updated_at <= t).mean() for t in np.asarray(times_s)])
