"""Check functions of the chapter 2 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message naming the case that fails (what was returned, what was expected and,
for a common mistake, a hint), and returns a "correct" message otherwise. The learner's function is called
through :func:`~collab_lib.exercises.grading.learner_call` with the library function it re-implements
forbidden, so handing that back fails. The cases are built inside the check, from seeded random layer
profiles, synthetic kernels, made-up devices and models or the library's catalogs, so a check is
deterministic and needs none of the lab's variables; ``hidden=True`` runs other cases than the visible
ones, as an instructor's hidden test does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from collab_lib.exercises.answers import as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.hardware.calibrate import fit_roofline
from collab_lib.hardware.energy import (
    RadioPowerModel,
    burst_transfer_energy_j,
    get_radio,
    periodic_transfer_energy_j,
    radio_energy,
    transfer_energy_j,
    transfer_energy_per_request_j,
)
from collab_lib.hardware.llm import (
    FORMATS,
    MODELS,
    TransformerSpec,
    WeightFormat,
    decode_bytes_per_token,
    generation_profile,
    memory_required_bytes,
    predict_decode,
    weight_bytes,
)
from collab_lib.hardware.memory import measure_training_memory, saved_activation_bytes
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.roofline import decode_tokens_per_s, layer_time_s, layers_time_s
from collab_lib.hardware.specs import DeviceSpec, LinkSpec, get_device, get_link

_REL_TOL = 1e-9


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL)


# --- calibrate_your_machine: the roofline split by bound, and the roofline fitted to timed kernels -------

def _linear(name: str, batch: int, d_in: int, d_out: int) -> LayerProfile:
    """An fp32 ``nn.Linear(d_in, d_out)`` on ``(batch, d_in)``: 2 FLOP per multiply-accumulate."""
    return LayerProfile(name, flops=2 * batch * d_in * d_out, param_bytes=4 * (d_in * d_out + d_out),
                        input_bytes=4 * batch * d_in, output_bytes=4 * batch * d_out)


def _relu(name: str, batch: int, d: int) -> LayerProfile:
    """An fp32 ReLU on ``(batch, d)``: no FLOPs counted, only bytes (as torch's counter does)."""
    return LayerProfile(name, flops=0, param_bytes=0, input_bytes=4 * batch * d, output_bytes=4 * batch * d)


def _mlp_case(rng, depth: int, batch: int, peak: float, bw: float, efficiency: float, tag: str = ""):
    widths = [int(w) for w in rng.integers(8, 1025, size=depth + 1)]
    layers = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(_linear(f"{2 * i}:Linear", batch, w_in, w_out))
        layers.append(_relu(f"{2 * i + 1}:ReLU", batch, w_out))
    name = (f"{tag}MLP of {len(layers)} layers, widths {widths}, batch {batch}, peak {peak:.3g} FLOP/s, "
            f"bandwidth {bw:.3g} B/s, efficiency {efficiency:g}")
    return name, layers, peak, bw, efficiency


def _split_cases(hidden: bool) -> list[tuple[str, list[LayerProfile], float, float, float]]:
    """(name, layers, peak FLOP/s, bandwidth B/s, efficiency) for seeded MLP profiles on made-up devices.

    Each MLP alternates Linear and ReLU layers, so compute-bound matmuls (at large batch) and memory-bound
    ReLUs sit in the same model. The hidden cases add other seeds, a layer exactly on the ridge point
    (powers of two, so the tie is exact: it is compute-bound) and a model with no compute-bound layer.
    """
    devices = ((2e10, 5e9), (1e12, 1e11), (5e9, 2e10))  # ridge points 4, 10 and 0.25 FLOP/B
    if not hidden:
        rng = np.random.default_rng(2)
        shapes = ((1, 1, 1.0), (3, 64, 0.3), (4, 256, 1.0), (2, 16, 0.5))
        return [_mlp_case(rng, depth, batch, *dev, eff)
                for (depth, batch, eff), dev in zip(shapes, devices + devices[:1])]
    rng = np.random.default_rng(12)
    shapes = ((2, 32, 0.7), (5, 128, 0.2), (3, 512, 1.0))
    cases = [_mlp_case(rng, depth, batch, *dev, eff, "hidden: ")
             for (depth, batch, eff), dev in zip(shapes, devices)]
    tie = LayerProfile("0:on the ridge", flops=2**12, param_bytes=2**9, input_bytes=2**8, output_bytes=2**8)
    cases.append(("hidden: a layer exactly on the ridge point, then a ReLU", [tie, _relu("1:ReLU", 4, 64)],
                  2.0**34, 2.0**32, 0.5))
    cases.append(("hidden: ReLUs only (no compute-bound layer)", [_relu(f"{i}:ReLU", 8, 100 * (i + 1))
                                                                  for i in range(3)], 1e12, 1e11, 0.4))
    return cases


def _split_reference(layers, peak: float, bw: float, efficiency: float) -> tuple[float, float]:
    device = DeviceSpec("made-up device", peak_flops_per_s={"fp32": peak}, mem_bw_bytes_per_s=bw,
                        mem_bytes=None, power_w=None)
    compute_s = memory_s = 0.0
    for p in layers:
        t = layer_time_s(p.flops, p.bytes_moved, device, "fp32", efficiency)
        if p.bytes_moved / bw > p.flops / peak:
            memory_s += t
        else:
            compute_s += t
    return compute_s, memory_s


def _split_hint(got, layers, peak: float, bw: float, efficiency: float) -> str:
    want = np.array(_split_reference(layers, peak, bw, efficiency))
    close = lambda x: np.allclose(got, x, rtol=_REL_TOL, atol=0)  # noqa: E731
    if close(want[::-1]) and not close(want):
        return "; the two are swapped: return (compute_s, memory_s)"
    if efficiency != 1 and close(want * efficiency**2):
        return "; efficiency is the fraction of the roof reached: divide each time by it, do not multiply"
    if efficiency != 1 and close(want * efficiency):
        return "; the times are at efficiency 1: divide each layer's time by the efficiency"
    compute = [p.flops / peak / efficiency for p in layers]
    memory = [p.bytes_moved / bw / efficiency for p in layers]
    if close([sum(compute), sum(memory)]):
        return ("; that is each roof's time summed over all layers: a layer takes the longer of its two "
                "times, and goes to the roof that gave it")
    if close(want * np.array([1, 0])) or close(want * np.array([0, 1])):
        return "; one of the two is missing"
    ties = [p for p in layers if p.flops / peak == p.bytes_moved / bw]
    if ties:
        return "; a layer whose two times are equal sits on the ridge point: count it as compute-bound"
    if close([sum(max(c, m) for c, m in zip(compute, memory)), 0]):
        return "; split the total by the roof that bounds each layer"
    return ""


def check_roofline_split(fn, hidden: bool = False) -> str:
    """Check ``fn(layers, peak_flops_per_s, mem_bw_bytes_per_s, efficiency)`` against the library's
    :func:`~collab_lib.hardware.roofline.layer_time_s`.

    ``fn`` receives a list of :class:`~collab_lib.hardware.profile.LayerProfile`, a device's peak FLOP/s,
    its memory bandwidth in bytes/s and the fraction of the roofline that kernels reach, and returns two
    numbers ``(compute_s, memory_s)``: the roofline time of the layers run one after another, split by the
    roof that bounds each layer. A layer takes ``max(flops / peak, bytes_moved / bandwidth) / efficiency``
    and is memory-bound when its memory time is the longer (compute-bound on a tie). ``hidden=True`` runs
    other cases (other seeds, a layer on the ridge point, a model without compute-bound layers).
    """
    cases = _split_cases(hidden)
    forbidden = (layer_time_s, layers_time_s)

    def call(layers, peak, bw, eff):
        return learner_call(fn, list(layers), peak, bw, eff, forbidden=forbidden, name="my_roofline_split")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in my_roofline_split above")
    for name, layers, peak, bw, eff in cases:
        got = as_shaped(call(layers, peak, bw, eff), "my_roofline_split", name, (2,),
                        " (return two numbers: compute_s, memory_s)")
        want = _split_reference(layers, peak, bw, eff)
        if not np.allclose(got, want, rtol=_REL_TOL, atol=0):
            raise AssertionError(
                f"{name}: you return compute {got[0] * 1e3:.6g} ms, memory {got[1] * 1e3:.6g} ms; the roofline "
                f"gives compute {want[0] * 1e3:.6g} ms, memory {want[1] * 1e3:.6g} ms"
                f"{_split_hint(got, layers, peak, bw, eff)}")
    if hidden:
        return "correct: your split also matches on the hidden cases (a layer on the ridge, ReLUs only)"
    return ("correct: your split matches the roofline on four seeded MLPs (Linear and ReLU layers, batch 1 to "
            "256) on made-up devices with ridge points from 0.25 to 10 FLOP/B, at efficiencies 0.3 to 1")


def check_roofline(fn, hidden: bool = False) -> str:
    """Check ``fn(layers, peak_flops_per_s, mem_bw_bytes_per_s)``, the week-0 warm-up, against the library's
    :func:`~collab_lib.hardware.roofline.layers_time_s`.

    ``fn`` returns one number: the roofline latency in seconds of the layers run one after another at
    efficiency 1, the sum over layers of ``max(flops / peak, bytes_moved / bandwidth)``. The cases are those
    of :func:`check_roofline_split` at efficiency 1 (``hidden=True``: its hidden ones).
    """
    cases = [(name, layers, peak, bw) for name, layers, peak, bw, _ in _split_cases(hidden)]

    def call(layers, peak, bw):
        return learner_call(fn, list(layers), peak, bw, forbidden=(layer_time_s, layers_time_s),
                            name="my_roofline_s")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in my_roofline_s above")
    for name, layers, peak, bw in cases:
        name = name.rsplit(", efficiency", 1)[0]
        got = as_number(call(layers, peak, bw), "my_roofline_s", name)
        want = sum(_split_reference(layers, peak, bw, 1.0))
        if not _close(got, want):
            compute, memory = _split_reference(layers, peak, bw, 1.0)
            hint = ""
            if _close(got, sum(p.flops / peak + p.bytes_moved / bw for p in layers)):
                hint = "; that adds the two times of each layer: a layer takes the longer of the two"
            elif _close(got, sum(p.flops / peak for p in layers)) or _close(got, sum(p.bytes_moved / bw
                                                                                    for p in layers)):
                hint = "; that is one roof for every layer: each layer takes max(flops / peak, bytes / bandwidth)"
            raise AssertionError(f"{name}: you predict {got * 1e3:.6g} ms, the roofline {want * 1e3:.6g} ms "
                                 f"(compute-bound layers {compute * 1e3:.6g} ms, memory-bound {memory * 1e3:.6g} "
                                 f"ms){hint}")
    return ("correct: your roofline matches the library's on seeded MLPs (Linear and ReLU layers) on made-up "
            "devices with ridge points from 0.25 to 10 FLOP/B" + (", hidden cases included" if hidden else ""))


def _kernels(rng, n: int, peak: float, bw: float, sigma: float, copies: int = 2):
    """``n`` synthetic kernels timed on the roofline (peak, bw), times scattered by lognormal noise.

    Intensities are log-uniform from 0.03 to 300 FLOP/B around the ridge, sizes from 100 kB to 100 MB; the
    first ``copies`` kernels are copies (no FLOPs), as the bandwidth benchmark is.
    """
    intensity = 10 ** rng.uniform(-1.5, 2.5, n)
    nbytes = np.round(10 ** rng.uniform(5, 8, n))
    flops = np.round(intensity * nbytes)
    flops[:copies] = 0
    times = np.maximum(flops / peak, nbytes / bw) * np.exp(rng.normal(0.0, sigma, n))
    return flops, nbytes, times


def _fit_cases(hidden: bool) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float, float]]:
    """(name, flops, bytes, times, true peak, true bandwidth); noise-free cases are fitted exactly."""
    specs = ([(0, 16, 1e11, 3e10, 0.0), (1, 16, 1e11, 3e10, 0.05), (2, 24, 2e9, 4e9, 0.05),
              (3, 12, 5e12, 2e11, 0.03)] if not hidden else
             [(10, 9, 4e10, 8e9, 0.0), (11, 30, 3e11, 2e10, 0.08), (12, 20, 1e9, 1e10, 0.05),
              (13, 40, 7e11, 9e10, 0.04)])
    cases = []
    for seed, n, peak, bw, sigma in specs:
        flops, nbytes, times = _kernels(np.random.default_rng(seed), n, peak, bw, sigma)
        noise = f"times scattered by {sigma:.0%}" if sigma else "no noise"
        tag = "hidden: " if hidden else ""
        cases.append((f"{tag}{n} kernels on a roofline of {peak:.3g} FLOP/s and {bw:.3g} B/s, {noise}",
                      flops, nbytes, times, peak, bw))
    return cases


_FIT_TOL = 0.015  # another least-squares criterion (e.g. on log times) lands within a fraction of a percent


def _fit_hint(got, flops, nbytes, times) -> str:
    u, v = flops / times, nbytes / times
    want = np.array(fit_roofline(flops, nbytes, times))
    near = lambda x: np.allclose(got, x, rtol=_FIT_TOL, atol=0)  # noqa: E731
    if near(want[::-1]):
        return "; the two are swapped: return (peak_flops_per_s, mem_bw_bytes_per_s)"
    if near([u.max(), v.max()]):
        return ("; that is the fastest rate observed, where the fit starts: then charge each kernel to the "
                "roof that bounds it and fit each roof by least squares")
    if near([u.mean(), v.mean()]) or near([u[flops > 0].mean(), v.mean()]):
        return "; that averages every kernel's rate: fit each roof only on the kernels it bounds"
    compute = flops / want[0] >= nbytes / want[1]
    by_time = [(flops[compute] ** 2).sum() / (flops[compute] * times[compute]).sum(),
               (nbytes[~compute] ** 2).sum() / (nbytes[~compute] * times[~compute]).sum()]
    if near(by_time):
        return ("; that fits the absolute times, which lets the longest kernels decide: fit the relative "
                "error, sum (t_pred / t - 1)^2")
    return ""


def check_fit_roofline(fn, hidden: bool = False) -> str:
    """Check ``fn(flops, bytes_moved, times_s)``, a roofline fitted to timed kernels, against the library's
    :func:`~collab_lib.hardware.calibrate.fit_roofline`.

    ``fn`` receives three numpy arrays, one entry per kernel (FLOPs, bytes moved, measured seconds), and
    returns ``(peak_flops_per_s, mem_bw_bytes_per_s)``. The kernels are synthetic: timed on a known roofline
    and scattered by seeded noise. Without noise the answer must be exact (relative 1e-6); with noise within
    1.5% of the library's least-squares fit, which any least-squares fit of the relative error meets and the
    fastest observed rates do not. ``hidden=True`` runs other seeds, sizes and rooflines.
    """
    cases = _fit_cases(hidden)

    def call(flops, nbytes, times):
        return learner_call(fn, flops.copy(), nbytes.copy(), times.copy(), forbidden=(fit_roofline,),
                            name="my_fit_roofline")

    if call(*cases[0][1:4]) is None:
        return not_attempted("fill in my_fit_roofline above")
    for name, flops, nbytes, times, peak, bw in cases:
        got = as_shaped(call(flops, nbytes, times), "my_fit_roofline", name, (2,),
                        " (return two numbers: peak_flops_per_s, mem_bw_bytes_per_s)")
        noiseless = np.allclose(times, np.maximum(flops / peak, nbytes / bw), rtol=1e-12)
        want = np.array([peak, bw]) if noiseless else np.array(fit_roofline(flops, nbytes, times))
        tol = 1e-6 if noiseless else _FIT_TOL
        if not np.allclose(got, want, rtol=tol, atol=0):
            raise AssertionError(
                f"{name}: you fit {got[0]:.4g} FLOP/s and {got[1]:.4g} B/s, expected {want[0]:.4g} FLOP/s and "
                f"{want[1]:.4g} B/s (within {tol:.1e} relative){_fit_hint(got, flops, nbytes, times)}")
    if hidden:
        return "correct: your fit also recovers the hidden rooflines (other seeds, 9 to 40 kernels, up to 8% noise)"
    return ("correct: your fit recovers a noise-free roofline exactly and matches the least-squares fit on "
            "noisy kernels (3 to 5% scatter, 12 to 24 kernels, ridge points from 0.5 to 25 FLOP/B)")


# --- offload_energy: the radio energy of one isolated request, and of a burst that shares tails -------

def _transfer_cases(hidden: bool = False) -> list[tuple[str, LinkSpec, RadioPowerModel]]:
    """(name, link, radio): the catalog's 3G, LTE and Wi-Fi, and made-up asymmetric links.

    The catalog's three links send at the same rate both ways; the made-up ones, with the LTE radio (whose
    per-Mbit/s powers differ up and down), tell the upload's rate and power from the download's. The hidden
    cases put the 3G and Wi-Fi radios on asymmetric links and add a made-up radio whose every constant
    differs (no zero term hides a mistake).
    """
    if not hidden:
        cases = [(key, get_link(key), get_radio(key)) for key in ("3g", "lte", "wifi")]
        asymmetric = LinkSpec("made-up asymmetric link", uplink_bits_per_s=4e6, downlink_bits_per_s=40e6,
                              rtt_s=0.05)
        cases.append(("LTE radio on a made-up link, 4 Mbit/s up, 40 Mbit/s down", asymmetric, get_radio("lte")))
        return cases
    slow_up = LinkSpec("made-up link", uplink_bits_per_s=0.5e6, downlink_bits_per_s=8e6, rtt_s=0.2)
    fast = LinkSpec("made-up link", uplink_bits_per_s=90e6, downlink_bits_per_s=300e6, rtt_s=0.01)
    odd = RadioPowerModel("made-up radio", active_w_per_mbps_up=0.3, active_w_per_mbps_down=0.07, base_w=0.9,
                          tail_s=3.5, tail_w=0.6, promotion_s=0.4, promotion_w=1.3)
    return [("hidden: 3G radio on a made-up link, 0.5 Mbit/s up, 8 down", slow_up, get_radio("3g")),
            ("hidden: Wi-Fi radio on a made-up link, 90 Mbit/s up, 300 down", fast, get_radio("wifi")),
            ("hidden: a made-up radio (every constant non-zero) on a 0.5/8 Mbit/s link", slow_up, odd),
            ("hidden: a made-up radio on a 90/300 Mbit/s link", fast, odd)]


def _transfer_sizes(hidden: bool = False) -> list[tuple[int, int]]:
    """(bytes up, bytes down): nothing, a small request, and seeded sizes from 1 kB to 10 MB."""
    rng = np.random.default_rng(16 if hidden else 6)
    sizes = [(0, 5_000), (70_000, 0)] if hidden else [(0, 0), (1_000, 100)]
    sizes += [(int(10 ** rng.uniform(3, 7)), int(10 ** rng.uniform(1, 6))) for _ in range(3)]
    return sizes


def _transfer_hint(got: float, up: int, down: int, link: LinkSpec, radio: RadioPowerModel) -> str:
    parts = radio_energy(up, down, link, radio)
    up_s, down_s = 8 * up / link.uplink_bits_per_s, 8 * down / link.downlink_bits_per_s
    if _close(got, parts.transfer_j) and parts.total_j != parts.transfer_j:
        return "; that is the bytes only: an isolated request also pays the promotion before and the tail after"
    if _close(got, parts.total_j - parts.tail_j) and parts.tail_j > 0:
        return "; the tail is missing: after the last byte the radio stays tail_s seconds at tail_w"
    if _close(got, parts.total_j - parts.promotion_j) and parts.promotion_j > 0:
        return "; the promotion is missing: an idle radio first spends promotion_s seconds at promotion_w"
    if _close(got, parts.promotion_j + parts.transfer_j / 8 + parts.tail_j) and parts.transfer_j > 0:
        return "; the transfer is 8 times too short: link rates are in bits per second, sizes in bytes"
    if _close(got, parts.promotion_j + radio.base_w * (up_s + down_s) + parts.tail_j) and parts.transfer_j > 0:
        return "; the active power is alpha * rate (in Mbit/s) + beta, not beta alone"
    up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
    if _close(got, parts.promotion_j + up_w * 8 * (up + down) / link.uplink_bits_per_s + parts.tail_j) and down > 0:
        return "; the download runs at the downlink rate, at power alpha_d * downlink rate + beta"
    return ""


_RADIO_REFS = (transfer_energy_j, radio_energy, transfer_energy_per_request_j, periodic_transfer_energy_j,
               burst_transfer_energy_j)


def check_transfer_energy(fn, hidden: bool = False) -> str:
    """Check ``fn(bytes_up, bytes_down, link, radio)`` against
    :func:`~collab_lib.hardware.energy.transfer_energy_j` (from an idle radio, tail included).

    ``fn`` receives byte counts, a :class:`~collab_lib.hardware.specs.LinkSpec` and a
    :class:`~collab_lib.hardware.energy.RadioPowerModel`, and returns one number: the joules of one
    isolated request, i.e. the promotion, the upload at the uplink rate and the download at the downlink
    rate (each at power ``alpha * rate_Mbit_per_s + beta``), then the tail. ``hidden=True`` runs other
    links, a made-up radio and other sizes.
    """
    cases, sizes = _transfer_cases(hidden), _transfer_sizes(hidden)

    def call(up, down, link, radio):
        return learner_call(fn, up, down, link, radio, forbidden=_RADIO_REFS, name="isolated_request_j")

    name, link, radio = cases[1]
    if call(*sizes[1], link, radio) is None:
        return not_attempted("fill in isolated_request_j above")
    for name, link, radio in cases:
        for up, down in sizes:
            case = f"{name}, {up:,} B up, {down:,} B down"
            got = as_number(call(up, down, link, radio), "isolated_request_j", case)
            want = transfer_energy_j(up, down, link, radio)
            if not _close(got, want):
                raise AssertionError(f"{case}: yours {got:.6g} J, transfer_energy_j {want:.6g} J"
                                     f"{_transfer_hint(got, up, down, link, radio)}")
    if hidden:
        return "correct: your formula also matches on the hidden links and a made-up radio"
    return ("correct: your formula matches transfer_energy_j on 3G, LTE, Wi-Fi and an asymmetric link, "
            "from 0 B to megabytes each way")


def _burst_cases(hidden: bool) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, LinkSpec, RadioPowerModel]]:
    """(name, start times, bytes up, bytes down, link, radio): seeded bursts with gaps inside and outside
    the tail; the hidden ones add a single request, a gap of exactly ``tail_s`` and empty requests."""
    out = []
    rng = np.random.default_rng(17 if hidden else 7)
    for name, link, radio in _transfer_cases(hidden):
        n = int(rng.integers(4, 9))
        up = np.round(10 ** rng.uniform(3, 5.5, n))
        down = np.round(10 ** rng.uniform(1, 4, n))
        active = 8 * up / link.uplink_bits_per_s + 8 * down / link.downlink_bits_per_s
        # gaps from a tenth of the tail to twice it: some requests share a tail, some find the radio idle
        gaps = radio.tail_s * rng.uniform(0.1, 2.0, n - 1)
        start = np.concatenate([[0.0], np.cumsum(active[:-1] + gaps)]) + float(rng.uniform(0, 100))
        out.append((f"{name}: a burst of {n} requests", start, up, down, link, radio))
    if hidden:
        radio = _transfer_cases(True)[2][2]
        # powers of two: every time is exact, so the gap is exactly tail_s however it is computed
        link = LinkSpec("made-up link", uplink_bits_per_s=2.0**19, downlink_bits_per_s=2.0**23, rtt_s=0.05)
        up, down = np.array([2.0**16, 0.0, 2.0**14]), np.array([2.0**10, 0.0, 0.0])
        first_s = 1.0 + 2.0**-10                       # 8 * 2^16 / 2^19 + 8 * 2^10 / 2^23
        start = np.array([0.0, first_s + radio.tail_s, first_s + radio.tail_s + 1.0])
        out.append(("hidden: a gap of exactly tail_s (the radio demotes), then an empty request", start, up, down,
                    link, radio))
        out.append(("hidden: a single request", np.array([12.0]), np.array([3e5]), np.array([2e3]),
                    get_link("lte"), get_radio("lte")))
    return out


def _burst_hint(got, start, up, down, link, radio) -> str:
    n = len(start)
    marginal = [transfer_energy_j(u, d, link, radio, include_tail=False) for u, d in zip(up, down)]
    active = 8 * up / link.uplink_bits_per_s + 8 * down / link.downlink_bits_per_s
    gap = start[1:] - (start[:-1] + active[:-1])
    want = burst_transfer_energy_j(start, up, down, link, radio)
    if _close(got, sum(transfer_energy_j(u, d, link, radio) for u, d in zip(up, down))):
        return "; that prices every request as isolated: a request inside the previous one's tail shares it"
    ties = np.isclose(gap, radio.tail_s, rtol=1e-12)
    if ties.any():
        return "; a gap of exactly tail_s lets the radio demote: the next request pays a promotion"
    if _close(got, want - radio.tail_j):
        return "; the last request's tail is missing: after it the radio stays tail_s at tail_w"
    if _close(got, want - radio.promotion_j):
        return "; the first promotion is missing: the radio starts idle"
    short = gap < radio.tail_s
    if _close(got, want + np.sum(gap[short]) * (radio.base_w - radio.tail_w)):
        return "; between requests in the tail the radio draws tail_w, not base_w"
    if _close(got, want + short.sum() * radio.promotion_j):
        return "; a request inside the tail pays no promotion: the radio is still connected"
    gap_from_start = start[1:] - start[:-1]
    alt = radio.promotion_j + sum(marginal) + radio.tail_j + sum(
        radio.tail_j + radio.promotion_j if g >= radio.tail_s else g * radio.tail_w for g in gap_from_start)
    if n > 1 and _close(got, alt):
        return "; the gap runs from the end of one request (start + transfer time) to the start of the next"
    return ""


def check_burst_energy(fn, hidden: bool = False) -> str:
    """Check ``fn(start_times_s, bytes_up, bytes_down, link, radio)`` against
    :func:`~collab_lib.hardware.energy.burst_transfer_energy_j`.

    ``fn`` receives three numpy arrays, one entry per request (start times in seconds, increasing, and the
    bytes each request sends up and down), a link and a radio, and returns the joules of the whole burst:
    one promotion for the first request, every request's bytes, for each gap between the end of a request
    and the start of the next either ``gap * tail_w`` (shorter than ``tail_s``) or a full tail and a new
    promotion, and a full tail after the last. ``hidden=True`` runs other bursts, links and radios, a gap
    of exactly ``tail_s`` and a single request.
    """
    cases = _burst_cases(hidden)

    def call(start, up, down, link, radio):
        # the per-request energy is a helper the learner may take from the library; the sharing is not
        return learner_call(fn, start.copy(), up.copy(), down.copy(), link, radio,
                            forbidden=(burst_transfer_energy_j, periodic_transfer_energy_j), name="burst_energy_j")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in burst_energy_j above")
    for name, start, up, down, link, radio in cases:
        got = as_number(call(start, up, down, link, radio), "burst_energy_j", name)
        want = burst_transfer_energy_j(start, up, down, link, radio)
        if not _close(got, want):
            raise AssertionError(f"{name}: yours {got:.6g} J, burst_transfer_energy_j {want:.6g} J"
                                 f"{_burst_hint(got, start, up, down, link, radio)}")
    if hidden:
        return "correct: your burst energy also matches on the hidden bursts (a gap of exactly the tail, one request)"
    return ("correct: your burst energy matches the library on 3G, LTE, Wi-Fi and an asymmetric link, with gaps "
            "inside and outside the tail")


# --- roofline_llm: bytes per decoded token (group-wise scales, KV cache) and the tokens/s bound ---------

def _llm_cases(hidden: bool) -> list[tuple[str, TransformerSpec, WeightFormat, int]]:
    """(name, model, weight format, context length): catalog models and formats, or made-up ones.

    The hidden cases use made-up shapes (more KV heads, an untied output layer, head_dim != d_model /
    heads) and formats (3-bit weights in groups of 64 with 16-bit scales, 8-bit without groups)."""
    if not hidden:
        return [(f"{m.name}, {f_key}, context {c:,}", m, FORMATS[f_key], c)
                for m, f_key, c in ((MODELS["llama-3.2-1b"], "bf16", 0),
                                    (MODELS["llama-3.2-1b"], "spinquant-4bit", 64),
                                    (MODELS["llama-3.2-3b"], "spinquant-4bit", 4096),
                                    (MODELS["llama-3.1-8b"], "bf16", 1000),
                                    (MODELS["llama-3.1-8b"], "spinquant-4bit", 32_768))]
    wide = TransformerSpec("made-up 2B (untied output)", num_layers=20, d_model=2560, num_heads=20,
                           num_kv_heads=10, head_dim=96, d_ff=6912, vocab_size=50_000, tied_embeddings=False)
    small = TransformerSpec("made-up 300M", num_layers=12, d_model=1024, num_heads=16, num_kv_heads=16,
                            head_dim=64, d_ff=2816, vocab_size=32_000, tied_embeddings=True)
    q3 = WeightFormat("3-bit, groups of 64, fp16 scales", linear_bits=3, output_bits=6, embedding_bits=8,
                      group_size=64, scale_bits=16, separate_output=True)
    q8 = WeightFormat("int8 per-tensor", linear_bits=8, output_bits=8, embedding_bits=8)
    return [(f"hidden: {m.name}, {f.name}, context {c:,}", m, f, c)
            for m, f, c in ((wide, q3, 0), (wide, q8, 2048), (small, q3, 100_000), (small, FORMATS["bf16"], 7))]


def _decode_bytes_ref(model: TransformerSpec, fmt: WeightFormat, context_len: int) -> float:
    return decode_bytes_per_token(model, fmt) + model.kv_cache_bytes(context_len)


_DECODE_REFS = (decode_bytes_per_token, TransformerSpec.kv_cache_bytes, WeightFormat.linear_bytes_per_param.fget,
                TransformerSpec.linear_params.fget, TransformerSpec.linear_params_per_layer.fget, predict_decode,
                generation_profile, memory_required_bytes, weight_bytes)


def _decode_hint(got: float, model: TransformerSpec, fmt: WeightFormat, context_len: int) -> str:
    kv = model.kv_cache_bytes(context_len)
    linear, output = model.linear_params, model.embedding_params
    weights = decode_bytes_per_token(model, fmt)
    no_scales = linear * fmt.linear_bits / 8 + output * fmt.output_bits / 8
    mha = 2 * model.num_layers * context_len * model.num_heads * model.head_dim * 2
    near = {
        "the KV cache is missing: each token reads the keys and values of the whole context": weights,
        "the group-wise scales are missing: each group of group_size weights stores one scale of scale_bits":
            no_scales + kv,
        "the output layer is missing: every token multiplies the vocab x d_model output matrix": weights
            - output * fmt.output_bits / 8 + kv,
        "the keys and values have num_kv_heads heads (grouped-query attention), not num_heads": weights + mha,
        "the KV cache holds keys and values: 2 x layers x context x kv_heads x head_dim x 2 bytes": weights
            + kv / 2,
        "bits, not bytes: divide the bits by 8": 8 * weights + kv,
        "that counts the embedding table as well: it is only looked up, one row per token":
            weights + output * fmt.embedding_bits / 8 + kv,
    }
    for hint, value in near.items():
        if _close(got, value) and not _close(value, weights + kv):
            return f"; {hint}"
    return ""


def check_decode_bytes(fn, hidden: bool = False) -> str:
    """Check ``fn(model, fmt, context_len)``, the bytes read to decode one token, against
    :func:`~collab_lib.hardware.llm.decode_bytes_per_token` plus
    :meth:`~collab_lib.hardware.llm.TransformerSpec.kv_cache_bytes`.

    ``fn`` receives a :class:`~collab_lib.hardware.llm.TransformerSpec`, a
    :class:`~collab_lib.hardware.llm.WeightFormat` and the number of tokens already in the (bf16) KV cache,
    and returns one number: the bytes of every block matrix at ``linear_bits`` plus one ``scale_bits``
    scale per ``group_size`` weights, of the output layer at ``output_bits``, and of the keys and values of
    the context. The library's counts of these are forbidden; ``model.embedding_params`` may be used.
    ``hidden=True`` runs made-up shapes and formats.
    """
    cases = _llm_cases(hidden)

    def call(model, fmt, context_len):
        return learner_call(fn, model, fmt, context_len, forbidden=_DECODE_REFS, name="decode_bytes")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in decode_bytes above")
    for name, model, fmt, context_len in cases:
        got = as_number(call(model, fmt, context_len), "decode_bytes", name)
        want = _decode_bytes_ref(model, fmt, context_len)
        if not _close(got, want):
            raise AssertionError(f"{name}: you count {got / 1e9:.6g} GB per token, the library "
                                 f"{want / 1e9:.6g} GB{_decode_hint(got, model, fmt, context_len)}")
    if hidden:
        return "correct: your count also matches on made-up shapes and formats (3-bit in groups of 64, int8)"
    return ("correct: your bytes per token match the library for Llama 3.2 1B and 3B and Llama 3.1 8B, bf16 and "
            "4-bit group-wise, with contexts from 0 to 32k tokens")


def _bound_cases(hidden: bool) -> list[tuple[str, TransformerSpec, WeightFormat, DeviceSpec, str, int]]:
    """(name, model, format, device, precision, context): catalog devices at their format's arithmetic; the
    hidden ones include a device slow enough at arithmetic that decoding becomes compute-bound."""
    out = []
    devices = ("snapdragon-8-gen-3", "raspberry-pi-5", "a100-sxm") if not hidden else ("jetson-orin-nano", "h100-sxm")
    for i, (name, model, fmt, context_len) in enumerate(_llm_cases(hidden)):
        device = get_device(devices[i % len(devices)])
        precision = ("int8" if fmt.linear_bits < 16 else "bf16")
        if precision not in device.peak_flops_per_s:
            precision = max(device.peak_flops_per_s, key=device.peak)
        out.append((f"{name}, on {device.name} ({precision})", model, fmt, device, precision, context_len))
    # a device slow enough at arithmetic that decoding becomes compute-bound
    peak, tag = (1e9, "hidden: ") if hidden else (2e10, "")
    slow = DeviceSpec(f"made-up device, {peak:.0e} FLOP/s and 1 TB/s", peak_flops_per_s={"int8": peak},
                      mem_bw_bytes_per_s=1e12, mem_bytes=None, power_w=None)
    _, model, fmt, context_len = _llm_cases(hidden)[1 if not hidden else 0]
    out.append((f"{tag}{model.name} on a made-up device with a slow ALU (compute-bound)", model, fmt, slow, "int8",
                context_len))
    return out


def check_decode_bound(fn, hidden: bool = False) -> str:
    """Check ``fn(model, fmt, device, precision, context_len)``, the roofline tokens/s of batch-1 decoding,
    against :func:`~collab_lib.hardware.llm.predict_decode`.

    One token multiplies every block matrix and the output layer once (2 FLOP per weight) and attends to
    the context (``4 * layers * heads * head_dim * context`` FLOP), and reads the bytes of
    :func:`check_decode_bytes`; its time is the longer of FLOPs / peak(precision) and bytes / bandwidth.
    ``fn`` returns tokens per second. ``hidden=True`` runs other models and devices and one on which the
    arithmetic, not the memory, bounds decoding.
    """
    cases = _bound_cases(hidden)
    forbidden = _DECODE_REFS + (decode_tokens_per_s, layer_time_s, TransformerSpec.attention_flops)

    def call(model, fmt, device, precision, context_len):
        return learner_call(fn, model, fmt, device, precision, context_len, forbidden=forbidden,
                            name="decode_bound")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in decode_bound above")
    for name, model, fmt, device, precision, context_len in cases:
        got = as_number(call(model, fmt, device, precision, context_len), "decode_bound", name)
        want = predict_decode(model, fmt, device, precision, context_len)
        if not _close(got, want):
            nbytes = _decode_bytes_ref(model, fmt, context_len)
            flops = 2 * (model.linear_params + model.embedding_params) + model.attention_flops(context_len)
            hint = ""
            if got != 0 and _close(1 / got, want):
                hint = "; that is seconds per token: invert it"
            elif _close(got, device.mem_bw_bytes_per_s / nbytes):
                hint = "; that is the memory roof only: here the arithmetic takes longer (take the max of the two times)"
            elif _close(got, device.peak(precision) / flops):
                hint = "; that is the compute roof only: a token also waits for its bytes"
            elif _close(got, 1 / (flops / device.peak(precision) + nbytes / device.mem_bw_bytes_per_s)):
                hint = "; that adds the two times: the token takes the longer of them"
            raise AssertionError(f"{name}: yours {got:.6g} tokens/s, predict_decode {want:.6g}{hint}")
    if hidden:
        return "correct: your bound also matches on the hidden devices, one of them compute-bound"
    return ("correct: your decode bound matches predict_decode for three models on a phone, a Raspberry Pi 5, "
            "an A100 and a made-up device slow enough to be compute-bound, contexts from 0 to 32k tokens")


# --- training_memory: the four parts of training memory of a torch model ---------------------------------

def _memory_cases(hidden: bool) -> list[tuple[str, nn.Module, torch.Tensor, str]]:
    """(name, fp32 model, example batch, optimizer): seeded MLPs and small CNNs, some with frozen layers.

    Built in float32 whatever torch's default dtype, as a deployment's model is; the hidden cases add other
    seeds, a CNN whose max-pooling saves int64 indices, a model whose first layer is frozen, and plain SGD.
    """
    gen = torch.Generator().manual_seed(13 if hidden else 3)
    rng = np.random.default_rng(13 if hidden else 3)
    cases = []
    plans = ((1, "adam", False), (2, "momentum", True), (3, "sgd", False)) if hidden else \
        ((1, "adam", False), (2, "adam", False), (3, "momentum", True))
    for depth, optimizer, freeze_first in plans:
        widths = [int(w) for w in rng.integers(2, 129, size=depth + 1)]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out, dtype=torch.float32), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        if freeze_first:
            model[0].requires_grad_(False)
        batch = int(rng.integers(2, 17))
        frozen = ", first layer frozen" if freeze_first else ""
        tag = "hidden: " if hidden else ""
        cases.append((f"{tag}MLP of widths {widths}{frozen}, batch {batch}, {optimizer}", model,
                      torch.randn(batch, widths[0], generator=gen, dtype=torch.float32), optimizer))
    c = 8 if hidden else 4
    cnn = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, dtype=torch.float32), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(c, 2 * c, 3, padding=1, dtype=torch.float32), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * c * 64, 10, dtype=torch.float32))
    if hidden:
        cnn[0].requires_grad_(False)
    name = f"{'hidden: ' if hidden else ''}CNN of {c} and {2 * c} channels on 16 x 16 images, batch 3, adam"
    cases.append((name + (", first convolution frozen" if hidden else ""), cnn,
                  torch.randn(3, 3, 16, 16, generator=gen, dtype=torch.float32), "adam"))
    return cases


def _memory_hint(got, model: nn.Module, x: torch.Tensor, optimizer: str) -> str:
    want = measure_training_memory(model, x, optimizer=optimizer)
    w = np.array([want.weights_bytes, want.gradients_bytes, want.optimizer_bytes, want.activations_bytes])
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    if got[1] == params and w[1] != params:
        return "; the gradients count frozen parameters too: only those with requires_grad get one"
    if got[2] != w[2]:
        if w[1] and got[2] == w[2] / 4:
            return "; that counts values: each fp32 state value takes 4 bytes"
        if w[1] and optimizer == "adam" and got[2] == w[1]:
            return "; that is one moment: Adam keeps two (m and v) per trainable parameter"
        return "; optimizer state: sgd keeps no buffer, momentum one, adam two, per trainable parameter"
    if got[3] != w[3]:
        if got[3] > w[3]:
            return ("; too many activation bytes: count each saved storage once (several tensors share one) "
                    "and skip the parameters' storages")
        return ("; too few activation bytes: count every tensor autograd saves for backward (a "
                "saved_tensors_hooks pack hook sees them), by the bytes of its storage")
    return ""


def check_training_memory(fn, hidden: bool = False) -> str:
    """Check ``fn(model, example_input, optimizer)``, a torch model's training memory, against
    :func:`~collab_lib.hardware.memory.measure_training_memory`.

    ``fn`` receives an ``nn.Module`` (some parameters may have ``requires_grad=False``), an example batch
    and ``"sgd"``, ``"momentum"`` or ``"adam"``, and returns four numbers: the bytes of the weights (all
    parameters), of the gradients (trainable ones), of the optimizer's state (0, 1 or 2 buffers per
    trainable parameter) and of the activations saved for backward in one forward pass (each storage once,
    the parameters' storages excluded). ``hidden=True`` runs other models, a frozen layer and plain SGD.
    """
    cases = _memory_cases(hidden)
    forbidden = (measure_training_memory, saved_activation_bytes)

    def call(model, x, optimizer):
        return learner_call(fn, model, x, optimizer, forbidden=forbidden, name="training_memory")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in training_memory above")
    for name, model, x, optimizer in cases:
        got = as_shaped(call(model, x, optimizer), "training_memory", name, (4,),
                        " (return four numbers: weights, gradients, optimizer, activations)")
        want = measure_training_memory(model, x, optimizer=optimizer)
        w = [want.weights_bytes, want.gradients_bytes, want.optimizer_bytes, want.activations_bytes]
        if not np.array_equal(got, np.array(w, dtype=np.float64)):
            raise AssertionError(
                f"{name}: you count weights {got[0]:,.0f}, gradients {got[1]:,.0f}, optimizer {got[2]:,.0f}, "
                f"activations {got[3]:,.0f} bytes; the library {w[0]:,}, {w[1]:,}, {w[2]:,}, {w[3]:,}"
                f"{_memory_hint(got, model, x, optimizer)}")
    if hidden:
        return "correct: your breakdown also matches on the hidden models (frozen layers, plain SGD, a wider CNN)"
    return ("correct: your breakdown matches the library's on three MLPs (one with a frozen layer) and a small "
            "CNN, with Adam and momentum")
