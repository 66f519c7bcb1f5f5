"""Check functions of the chapter 3 labs: each tests a learner's function against the system layer's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected, and
returns a "correct" message otherwise. The cases are built inside each check from the library's models,
catalog devices and seeded generators, so a check is deterministic and does not read the lab's variables.
"""

from __future__ import annotations

import numpy as np
import torch

from collab_lib.exercises.answers import as_array, as_number, as_shaped
from collab_lib.exercises.introduction import _EFFICIENCY, _FRAME_BYTES, _profile
from collab_lib.hardware import get_device, get_link
from collab_lib.hardware.llm import generation_profile, get_format, get_model
from collab_lib.hardware.roofline import layer_time_s, layers_time_s
from collab_lib.models import residual_cnn, vision_cnn
from collab_lib.seed import generator
from collab_lib.system.cascade import calibrate_threshold, route
from collab_lib.system.early_exit import confidences, exit_decisions
from collab_lib.system.fleet import FleetConfig, simulate_day
from collab_lib.system.partition import split_latencies
from collab_lib.system.speculative import residual_distribution

# --- Chapter 3: split inference -------------------------------------------------------------------------


def check_cut_latency(fn) -> str:
    """Check ``fn(k, device_s, cloud_s, sent_bytes, out_bytes, link)``, T(k), against
    :func:`~collab_lib.system.partition.split_latencies`.

    ``fn`` receives the cut ``k`` (0: cloud only, n: device only), lists ``device_s`` and ``cloud_s`` of the
    n per-layer times in seconds, the list ``sent_bytes`` of n + 1 sizes (``sent_bytes[0]`` the input,
    ``sent_bytes[k]`` the output of layer k), the answer's size ``out_bytes`` and a
    :class:`~collab_lib.hardware.specs.LinkSpec`, and returns T(k) in seconds. The cases are every cut of
    ``vision_cnn(256)`` and ``residual_cnn(64)`` over Wi-Fi, LTE, 3G and 5G (whose rates differ by
    direction), with the phone and the A100 at 30% of their rooflines.
    """
    phone, cloud = get_device("snapdragon-8-gen-3"), get_device("a100-sxm")
    models = {"vision_cnn(256)": _profile(vision_cnn, 256), "residual_cnn(64)": _profile(residual_cnn, 64)}
    links = [get_link(k) for k in ("wifi", "lte", "3g", "5g")]
    first = True
    for model, layers in models.items():
        dev = [layer_time_s(p.flops, p.bytes_moved, phone, "fp32", _EFFICIENCY) for p in layers]
        cld = [layer_time_s(p.flops, p.bytes_moved, cloud, "fp32", _EFFICIENCY) for p in layers]
        sent = [_FRAME_BYTES] + [p.output_bytes for p in layers]
        out_bytes = layers[-1].output_bytes
        for link in links:
            ref = split_latencies(layers, phone, cloud, link, input_bytes=_FRAME_BYTES,
                                  device_efficiency=_EFFICIENCY, cloud_efficiency=_EFFICIENCY)
            for c in ref:
                got = fn(c.split, list(dev), list(cld), list(sent), out_bytes, link)
                if first and got is None:
                    return "not attempted yet: fill in my_cut_latency above"
                first = False
                case = f"{model} over {link.name}, cut after {c.split} layers ({c.where})"
                mine = as_number(got, "my_cut_latency", case)
                if abs(mine - c.total_s) <= 1e-9 + 1e-6 * c.total_s:
                    continue
                swapped = c.total_s - c.uplink_s - c.downlink_s + (
                    8 * c.bytes_up / link.downlink_bits_per_s + 8 * out_bytes / link.uplink_bits_per_s)
                near = {"the round trip (link.rtt_s) is missing": c.total_s - c.rtt_s,
                        "the answer's download (8 out_bytes / downlink) is missing": c.total_s - c.downlink_s,
                        "the upload uses the uplink rate, the download the downlink rate": swapped}
                hints = [h for h, t in near.items() if c.split < c.num_layers and abs(mine - t) <= 1e-6 * t]
                if c.split == c.num_layers:
                    hints = ["device only (k = n) sends nothing and pays no round trip"]
                raise AssertionError(f"{case}: you get {mine * 1e3:.3f} ms, the library {c.total_s * 1e3:.3f} ms"
                                     + "".join(f"; {h}" for h in hints))
    return ("correct: your T(k) matches split_latencies on every cut of vision_cnn(256) and residual_cnn(64) "
            "over Wi-Fi, LTE, 3G and 5G")


# --- Chapter 3: cascades and routing --------------------------------------------------------------------


def check_threshold(fn) -> str:
    """Check ``fn(scores, large_fraction)`` against :func:`~collab_lib.system.cascade.calibrate_threshold`.

    ``fn`` receives ``scores``, an (n,) float64 tensor in [0, 1], and a budget ``large_fraction`` in
    [0, 1], and returns a threshold t in [0, 1]; the queries with ``score >= t`` go to the large model.
    The scores are seeded and have no ties, so any share is reachable: the number sent must be as close
    to ``large_fraction * n`` as the library's (either side when b n ends in .5).
    """
    rng = np.random.default_rng(3)
    cases = [("450 uniform scores", rng.uniform(size=450)),
             ("60 scores crowded near 0", rng.beta(0.5, 4.0, size=60)),
             ("7 uniform scores", rng.uniform(size=7))]
    if fn(torch.from_numpy(cases[0][1].copy()), 0.5) is None:
        return "not attempted yet: fill in my_threshold above"
    for name, s in cases:
        scores, n = torch.from_numpy(s), len(s)
        for b in (0.0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0):
            case = f"{name}, budget {b:.1%}"
            t = as_number(fn(scores.clone(), b), "my_threshold", case)
            assert 0 <= t <= 1, f"{case}: your threshold is {t:.4g}, expected a number in [0, 1]"
            mine = int(route(scores, t).sum())
            ref = int(route(scores, calibrate_threshold(scores, b)).sum())
            if abs(mine - b * n) <= abs(ref - b * n) + 1e-9:
                continue
            hint = ("off by one: t = the k-th highest score sends exactly k" if abs(mine - ref) == 1
                    else "the large model takes the *highest* scores" if abs(n - mine - ref) <= 1
                    else f"send the round(b n) = {ref} highest scores")
            raise AssertionError(f"{case}: your threshold {t:.4g} sends {mine} of {n} scores ({mine / n:.1%}), "
                                 f"the library's {ref} ({ref / n:.1%}); {hint}")
    return ("correct: your thresholds send the share closest to the budget on three seeded score sets, for "
            "budgets from 0 to 1")


# --- Chapter 3: early exit ------------------------------------------------------------------------------


def _exit_cases() -> list[tuple[str, list[torch.Tensor], list[list[float]]]]:
    """(name, E exits of (N, C) float32 logits, threshold settings of E - 1 values each)."""
    g = generator(5)
    cases = []
    for e, n, c, settings in (
        (3, 200, 10, [[0.9, 0.9], [0, 0], [0.8, 0.95], [0.99, 0.5], [1.5, 0.9], [1.5, 1.5]]),
        (4, 60, 5, [[0.6, 0.7, 0.8], [1.5, 0.0, 0.9], [0.95, 0.95, 0.5]]),
    ):
        # later exits are sharper (larger logits), as in a trained network
        logits = [(1 + 2 * j) * torch.randn(n, c, generator=g) for j in range(e)]
        cases.append((f"{e} exits, {n} samples, {c} classes", logits, settings))
    # two classes with equal logits give a confidence of exactly 0.5: a sample at its threshold leaves
    tied = [2 * torch.randn(30, 2, generator=g) for _ in range(2)]
    tied[0][::3] = 1.0
    cases.append(("2 exits, 30 samples, 2 classes, every third at confidence 0.5", tied, [[0.5], [0.75]]))
    return cases


def check_exit_decisions(fn) -> str:
    """Check ``fn(exit_logits, thresholds)`` against :func:`~collab_lib.system.early_exit.exit_decisions`.

    ``fn`` receives a list of E float32 tensors of logits, each (N, C), and a list of E - 1 thresholds,
    and returns the (N,) integer index of the exit each sample leaves at: the first j < E - 1 whose
    maximum softmax probability is ``>= thresholds[j]``, otherwise E - 1. The cases are seeded logits with
    two to four exits, some samples exactly at their threshold, and thresholds of 0 and above 1.
    """
    cases = _exit_cases()
    if fn([z.clone() for z in cases[0][1]], cases[0][2][0]) is None:
        return "not attempted yet: fill in my_exit_decisions above"
    for name, logits, settings in cases:
        conf = confidences(logits)                                     # (E, N)
        for t in settings:
            case = f"{name}, thresholds {t}"
            got = as_array(fn([z.clone() for z in logits], list(t)), "my_exit_decisions", case)
            ref = exit_decisions(logits, t)
            assert got.shape == ref.shape, f"{case}: my_exit_decisions returned shape {got.shape}, expected {ref.shape}"
            assert got.dtype.kind in "iu", f"{case}: my_exit_decisions returned {got.dtype}, expected exit indices"
            bad = np.flatnonzero(got != ref)
            if len(bad) == 0:
                continue
            i = int(bad[0])
            hint = (f"exits are numbered from 0 to {len(logits) - 1}" if got.min() < 0 or got.max() >= len(logits)
                    else "a confidence equal to the threshold is enough to leave (>=)"
                    if any(conf[j, i] == t[j] for j in range(len(t)))
                    else "a sample leaves at the *first* exit whose confidence is >= its threshold, "
                         "and at the last exit when none is")
            raise AssertionError(f"{case}: {len(bad)} of {len(ref)} samples leave elsewhere; sample {i} leaves "
                                 f"at exit {got[i]}, expected {ref[i]} (its maximum softmax probabilities: "
                                 f"{', '.join(f'{p:.3f}' for p in conf[:, i])}); {hint}")
    return ("correct: your policy matches exit_decisions on seeded logits with two to four exits, including "
            "samples exactly at their threshold")


# --- Chapter 3: a fleet of devices ----------------------------------------------------------------------


def _fleet_runs():
    """(name, FleetResult, cloud seconds per answer, slots) for three small fleets of the fleet lab's kind."""
    large = [generation_profile(get_model("llama-3.1-8b"), get_format("bf16"), 64, 256)]
    small = [generation_profile(get_model("llama-3.2-1b"), get_format("spinquant-4bit"), 64, 256)]
    service_s = layers_time_s(large, get_device("a100-sxm"), "bf16", 0.5)

    def config(servers):
        return FleetConfig(num_devices=400, requests_per_device_per_day=60,
                           device_mix={"snapdragon-8-gen-3": 0.6, "apple-a17-pro": 0.4},
                           link_mix={"wifi": 0.5, "lte": 0.4, "3g": 0.1}, cloud="a100-sxm",
                           cloud_servers=servers, device_precision="int8", cloud_precision="bf16",
                           device_efficiency=0.5, cloud_efficiency=0.5)

    return [
        ("cloud policy, 2 slots", simulate_day(config(2), large, "cloud", seed=0, input_bytes=2048), service_s, 2),
        ("cascade escalating 30%, 3 slots", simulate_day(config(3), large, "cascade", seed=1, small_layers=small,
                                                         threshold=0.7, input_bytes=2048), service_s, 3),
        ("cloud policy, 1 slot", simulate_day(config(1), large, "cloud", seed=2, input_bytes=2048), service_s, 1),
    ]


def check_utilisation(fn) -> str:
    """Check ``fn(result, service_s, slots)`` against the fleet's ``cloud_utilisation_per_hour``.

    ``fn`` receives a :class:`~collab_lib.system.fleet.FleetResult`, the cloud's seconds per answer and
    the number of slots, and returns the (24,) share of the cloud's capacity used in each hour: the cloud
    requests of the hour times ``service_s``, over ``slots`` x 3600 s. The library counts a request in the
    hour it reaches the cloud, at most its latency after it arrives; in each hour the check allows the
    difference that the requests which may cross into the next hour can make. The cases are three small
    seeded fleets: the cloud policy with one and two slots, and a cascade with three.
    """
    runs = _fleet_runs()
    name, r, service_s, slots = runs[0]
    if fn(r, service_s, slots) is None:
        return "not attempted yet: fill in my_utilisation above"
    for name, r, service_s, slots in runs:
        mine = as_shaped(fn(r, service_s, slots), "my_utilisation", name, (24,))
        ref = r.cloud_utilisation_per_hour
        t = r.arrival_s[r.to_cloud]
        arrive_h = (t // 3600).astype(int)
        latest_h = np.minimum((t + r.latency_s[r.to_cloud]) // 3600, 23).astype(int)
        hours = np.arange(24)[:, None]                                             # (24, 1)
        may_enter = ((arrive_h < hours) & (hours <= latest_h)).sum(axis=1)         # (24,)
        may_leave = ((arrive_h == hours) & (latest_h > hours)).sum(axis=1)
        allowed = np.maximum(may_enter, may_leave) * service_s / (slots * 3600) + 1e-9
        bad = np.flatnonzero(np.abs(mine - ref) > allowed)
        if len(bad) == 0:
            continue
        h = int(bad[np.argmax(ref[bad])])
        hint = (f"divide by the {slots} slots" if slots > 1 and abs(mine[h] - slots * ref[h]) <= allowed[h] * slots
                else "only the requests with result.to_cloud reach the cloud" if not r.to_cloud.all()
                and abs(mine[h] - ref[h] / r.to_cloud.mean()) < 0.2 * ref[h] / r.to_cloud.mean()
                else "utilisation = cloud requests of the hour x service_s / (slots x 3600 s)")
        raise AssertionError(f"{name}, hour {h}: you get {mine[h]:.1%}, the library {ref[h]:.1%} (up to "
                             f"{allowed[h]:.2%} apart is allowed for requests near the hour's end); {hint}")
    return ("correct: your hourly utilisation matches the library's on three seeded fleets (cloud policy with "
            "one and two slots, a cascade with three)")


# --- Chapter 3: speculative decoding --------------------------------------------------------------------


def _residual_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, p, q) pairs of (V,) float32 distributions, including greedy (one-hot) ones."""
    cases = []
    for seed, v in ((0, 6), (1, 6), (2, 20), (3, 80)):
        p, q = (3 * torch.randn(2, v, generator=generator(seed))).softmax(-1)
        cases.append((f"random p and q over {v} tokens (seed {seed})", p, q))
    p, q = (2 * torch.randn(2, 12, generator=generator(9))).softmax(-1)
    cases.append(("a greedy draft: q one-hot", p, torch.nn.functional.one_hot(q.argmin(), 12).float()))
    cases.append(("a greedy target: p one-hot", torch.nn.functional.one_hot(p.argmin(), 12).float(), q))
    return cases


def check_residual(fn) -> str:
    """Check ``fn(p, q)`` against :func:`~collab_lib.system.speculative.residual_distribution`.

    ``fn`` receives the target's and the draft's next-token distributions, two (V,) float32 tensors with
    p != q, and returns the (V,) distribution norm(max(0, p - q)). The check also verifies that drawing
    x ~ q, accepting it with probability min(1, p(x) / q(x)) and otherwise drawing from the answer gives
    exactly p: min(p, q) + (1 - sum min(p, q)) * answer = p.
    """
    cases = _residual_cases()
    if fn(cases[0][1].clone(), cases[0][2].clone()) is None:
        return "not attempted yet: fill in my_residual above"
    for name, p, q in cases:
        got = torch.from_numpy(as_shaped(fn(p.clone(), q.clone()), "my_residual", name, (len(p),)))
        p64, q64 = p.double(), q.double()
        ref = residual_distribution(p, q).double()
        if not torch.allclose(got, ref, atol=1e-6):
            i = int((got - ref).abs().argmax())
            swapped = (q64 - p64).clamp_min(0)
            hint = (f"it sums to {got.sum():.4g}: normalise" if abs(float(got.sum()) - 1) > 1e-4
                    else "p is the target and q the draft: max(0, p - q)"
                    if torch.allclose(got, swapped / swapped.sum(), atol=1e-6)
                    else "clamp p - q at 0 before normalising")
            raise AssertionError(f"{name}: token {i} gets {got[i]:.6f}, the library {ref[i]:.6f}; {hint}")
        both = torch.minimum(p64, q64)
        out = both + (1 - both.sum()) * got  # accepted drafts + replacements after a rejection
        assert torch.allclose(out, p64, atol=1e-6), f"{name}: accept-or-resample does not give p"
    return ("correct: your residual matches the library and makes speculative sampling exact, on random and "
            "greedy (one-hot) distributions")
