"""Check functions of the chapter 2 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails (what was returned, what was expected and,
for a common mistake, a hint), and returns a "correct" message otherwise. The cases are built inside the
check, from seeded random layer profiles or from the library's catalogs, so a check is deterministic and
needs none of the lab's variables.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from collab_lib.exercises.answers import as_number
from collab_lib.hardware.energy import RadioPowerModel, get_radio, radio_energy, transfer_energy_j
from collab_lib.hardware.llm import FORMATS, MODELS, decode_bytes_per_token, predict_decode
from collab_lib.hardware.memory import measure_training_memory
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import DeviceSpec, LinkSpec, get_device, get_link

_REL_TOL = 1e-9


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL)


# --- calibrate_your_machine: the roofline latency of a sequence of layers -------------------------------

def _linear(name: str, batch: int, d_in: int, d_out: int) -> LayerProfile:
    """An fp32 ``nn.Linear(d_in, d_out)`` on ``(batch, d_in)``: 2 FLOP per multiply-accumulate."""
    return LayerProfile(name, flops=2 * batch * d_in * d_out, param_bytes=4 * (d_in * d_out + d_out),
                        input_bytes=4 * batch * d_in, output_bytes=4 * batch * d_out)


def _relu(name: str, batch: int, d: int) -> LayerProfile:
    """An fp32 ReLU on ``(batch, d)``: no FLOPs counted, only bytes (as torch's counter does)."""
    return LayerProfile(name, flops=0, param_bytes=0, input_bytes=4 * batch * d, output_bytes=4 * batch * d)


def _roofline_cases() -> list[tuple[str, list[LayerProfile], float, float]]:
    """(name, layers, peak FLOP/s, bandwidth B/s) for seeded MLP profiles on made-up devices.

    Each MLP alternates Linear and ReLU layers, so compute-bound matmuls (at large batch) and memory-bound
    ReLUs sit in the same model and the maximum of the totals differs from the sum of per-layer maxima.
    """
    rng = np.random.default_rng(2)
    devices = ((2e10, 5e9), (1e12, 1e11), (5e9, 2e10))  # ridge points 4, 10 and 0.25 FLOP/B
    cases = []
    for (depth, batch), (peak, bw) in zip(((1, 1), (3, 64), (4, 256), (2, 16)), devices + devices[:1]):
        widths = [int(w) for w in rng.integers(8, 1025, size=depth + 1)]
        layers = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(_linear(f"{2 * i}:Linear", batch, w_in, w_out))
            layers.append(_relu(f"{2 * i + 1}:ReLU", batch, w_out))
        name = (f"MLP of {len(layers)} layers, widths {widths}, batch {batch}, "
                f"peak {peak:.3g} FLOP/s, bandwidth {bw:.3g} B/s")
        cases.append((name, layers, peak, bw))
    return cases


def _roofline_hint(got: float, layers: list[LayerProfile], peak: float, bw: float) -> str:
    compute_s = [p.flops / peak for p in layers]
    memory_s = [p.bytes_moved / bw for p in layers]
    if _close(got, max(sum(compute_s), sum(memory_s))):
        return ("; that is the max of the totals: take the max per layer, then sum (a memory-bound ReLU "
                "does not overlap with a compute-bound matmul)")
    if _close(got, sum(compute_s) + sum(memory_s)):
        return "; that adds compute and memory time: a layer takes the longer of the two, not their sum"
    if _close(got, sum(compute_s)):
        return "; that is the compute time only: a layer also waits for its bytes (bytes_moved / bandwidth)"
    if _close(got, sum(max(p.flops / peak, p.param_bytes / bw) for p in layers)):
        return "; that counts the weights only: bytes_moved adds the input and output bytes"
    return ""


def check_roofline(fn) -> str:
    """Check ``fn(layers, peak_flops_per_s, mem_bw_bytes_per_s)`` against
    :func:`~collab_lib.hardware.roofline.layers_time_s`.

    ``fn`` receives a list of :class:`~collab_lib.hardware.profile.LayerProfile` and a device's peak FLOP/s
    and memory bandwidth in bytes/s, and returns one number: the roofline latency in seconds of the layers
    run one after another, at efficiency 1, i.e. the sum over layers of
    ``max(flops / peak_flops_per_s, bytes_moved / mem_bw_bytes_per_s)``.
    """
    cases = _roofline_cases()
    name, layers, peak, bw = cases[0]
    if fn(list(layers), peak, bw) is None:
        return "not attempted yet: fill in my_roofline_s above"
    for name, layers, peak, bw in cases:
        got = as_number(fn(list(layers), peak, bw), "my_roofline_s", name)
        device = DeviceSpec("made-up device", peak_flops_per_s={"fp32": peak}, mem_bw_bytes_per_s=bw,
                            mem_bytes=None, power_w=None)
        want = layers_time_s(layers, device)
        if not _close(got, want):
            raise AssertionError(f"{name}: you predict {got * 1e3:.6g} ms, layers_time_s "
                                 f"{want * 1e3:.6g} ms{_roofline_hint(got, layers, peak, bw)}")
    return ("correct: your roofline matches layers_time_s on four seeded MLPs (Linear and ReLU layers, "
            "batch 1 to 256) on made-up devices with ridge points from 0.25 to 10 FLOP/B")


# --- offload_energy: the radio energy of one isolated request --------------------------------------------

def _transfer_cases() -> list[tuple[str, LinkSpec, RadioPowerModel]]:
    """(name, link, radio): the catalog's 3G, LTE and Wi-Fi, and a made-up asymmetric link.

    The catalog's three links send at the same rate both ways; the made-up one, with the LTE radio (whose
    per-Mbit/s powers differ up and down), tells the upload's rate and power from the download's.
    """
    cases = [(key, get_link(key), get_radio(key)) for key in ("3g", "lte", "wifi")]
    asymmetric = LinkSpec("made-up asymmetric link", uplink_bits_per_s=4e6, downlink_bits_per_s=40e6,
                          rtt_s=0.05)
    cases.append(("LTE radio on a made-up link, 4 Mbit/s up, 40 Mbit/s down", asymmetric, get_radio("lte")))
    return cases


def _transfer_sizes() -> list[tuple[int, int]]:
    """(bytes up, bytes down): nothing, a small request, and seeded sizes from 1 kB to 10 MB."""
    rng = np.random.default_rng(6)
    sizes = [(0, 0), (1_000, 100)]
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


def check_transfer_energy(fn) -> str:
    """Check ``fn(bytes_up, bytes_down, link, radio)`` against
    :func:`~collab_lib.hardware.energy.transfer_energy_j` (from an idle radio, tail included).

    ``fn`` receives byte counts, a :class:`~collab_lib.hardware.specs.LinkSpec` and a
    :class:`~collab_lib.hardware.energy.RadioPowerModel`, and returns one number: the joules of one
    isolated request, i.e. the promotion, the upload at the uplink rate and the download at the downlink
    rate (each at power ``alpha * rate_Mbit_per_s + beta``), then the tail.
    """
    cases, sizes = _transfer_cases(), _transfer_sizes()
    name, link, radio = cases[1]
    if fn(*sizes[1], link, radio) is None:
        return "not attempted yet: fill in isolated_request_j above"
    for name, link, radio in cases:
        for up, down in sizes:
            case = f"{name}, {up:,} B up, {down:,} B down"
            got = as_number(fn(up, down, link, radio), "isolated_request_j", case)
            want = transfer_energy_j(up, down, link, radio)
            if not _close(got, want):
                raise AssertionError(f"{case}: yours {got:.6g} J, transfer_energy_j {want:.6g} J"
                                     f"{_transfer_hint(got, up, down, link, radio)}")
    return ("correct: your formula matches transfer_energy_j on 3G, LTE, Wi-Fi and an asymmetric link, "
            "from 0 B to megabytes each way")


# --- roofline_llm: the memory-bound ceiling of decoding --------------------------------------------------

def _bound_cases() -> list[tuple[str, float, float, float]]:
    """(name, bytes per token, bandwidth B/s, library tokens/s) for every catalog model and weight format
    on three catalog devices, at a context of 0 (weights only).

    Batch-1 decoding does 1 to about 3 FLOP per byte, below the ridge point of each device and precision
    used here (9 FLOP/B or more), so ``predict_decode`` gives the memory-bound ceiling.
    """
    cases = []
    for device_key in ("snapdragon-8-gen-3", "jetson-orin-nano", "a100-sxm"):
        device = get_device(device_key)
        for fmt_key, fmt in FORMATS.items():
            precision = "bf16" if fmt_key == "bf16" else "int8"  # 4-bit weights run int8 kernels
            if precision not in device.peak_flops_per_s:
                continue
            for model in MODELS.values():
                cases.append((f"{model.name}, {fmt_key}, on {device.name}", decode_bytes_per_token(model, fmt),
                              device.mem_bw_bytes_per_s, predict_decode(model, fmt, device, precision)))
    return cases


def check_bound(fn) -> str:
    """Check ``fn(bytes_per_token, bandwidth_bytes_per_s)`` against
    :func:`~collab_lib.hardware.llm.predict_decode` at context 0.

    ``fn`` receives the weight bytes read per generated token and the memory bandwidth in bytes/s (both
    floats) and returns one number: the tokens per second of decoding if reading those bytes were all
    that took time.
    """
    cases = _bound_cases()
    name, nbytes, bw, want = cases[0]
    if fn(nbytes, bw) is None:
        return "not attempted yet: fill in bound_tokens_per_s above"
    for name, nbytes, bw, want in cases:
        got = as_number(fn(nbytes, bw), "bound_tokens_per_s", name)
        if not _close(got, want):
            hint = ""
            if got != 0 and _close(1 / got, want):
                hint = "; that is seconds per token: invert it"
            elif _close(8 * got, want) or _close(got, 8 * want):
                hint = "; off by a factor of 8: both figures are already in bytes"
            raise AssertionError(f"{name}: {nbytes:.4g} bytes per token at {bw:.4g} B/s; yours {got:.6g} "
                                 f"tokens/s, predict_decode {want:.6g}{hint}")
    return (f"correct: decoding is memory-bound, and your ceiling matches the roofline in all {len(cases)} "
            "cases: every catalog model and weight format on a phone, a Jetson (4-bit only) and an A100")


# --- training_memory: Adam's optimizer state -------------------------------------------------------------

def _adam_cases() -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(name, fp32 MLP, example batch) for MLPs of seeded widths and depths."""
    rng = np.random.default_rng(3)
    cases = []
    for depth in (1, 2, 3):
        widths = [int(w) for w in rng.integers(2, 129, size=depth + 1)]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        cases.append((f"MLP of widths {widths}", nn.Sequential(*layers[:-1]), torch.zeros(4, widths[0])))
    return cases


def check_adam(fn) -> str:
    """Check ``fn(num_params)`` against the ``optimizer_bytes`` of
    :func:`~collab_lib.hardware.memory.measure_training_memory` with Adam.

    ``fn`` receives the number of trainable fp32 parameters (an int) and returns the bytes of Adam's state,
    its two fp32 moment buffers.
    """
    cases = _adam_cases()
    n_first = sum(p.numel() for p in cases[0][1].parameters())
    if fn(n_first) is None:
        return "not attempted yet: fill in adam_state_bytes above"
    for name, mlp, x in cases:
        n = sum(p.numel() for p in mlp.parameters())
        case = f"{name}, {n:,} parameters"
        got = as_number(fn(n), "adam_state_bytes", case)
        want = measure_training_memory(mlp, x, optimizer="adam").optimizer_bytes
        if got != want:
            hint = ""
            if _close(4 * got, want):
                hint = "; that counts values: each fp32 value takes 4 bytes"
            elif _close(2 * got, want):
                hint = "; that is one moment: Adam keeps two (m and v) per parameter"
            elif _close(2 * got, 3 * want):
                hint = "; that adds the gradient: the optimizer's state is the two moments only"
            elif _close(got, 2 * want):
                hint = ("; that is 16 bytes per parameter, ZeRO's total with weights and gradients: "
                        "only the two moments are the optimizer's state")
            raise AssertionError(f"{case}: yours {got:,.6g} bytes, the library {want:,} bytes{hint}")
    return "correct: your count matches the library's Adam state (two fp32 moments) on three MLPs"
