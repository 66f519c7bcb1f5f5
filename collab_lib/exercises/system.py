"""Check functions of the chapter 3 labs: each tests a learner's function against the system layer's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected, and
returns a "correct" message otherwise. The cases are built inside each check from the library's models,
catalog devices and seeded generators, so a check is deterministic and does not read the lab's variables.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from collab_lib.exercises.answers import as_array, as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.exercises.introduction import _EFFICIENCY, _FRAME_BYTES, _profile
from collab_lib.hardware import LinkSpec, get_device, get_link
from collab_lib.hardware.roofline import layer_time_s
from collab_lib.models import residual_cnn, vision_cnn
from collab_lib.seed import generator
from collab_lib.system.cascade import calibrate_threshold, cascade_outcome, confidence_scores, frontier, route
from collab_lib.system.early_exit import confidences, exit_decisions
from collab_lib.system.fleet import fifo_queue
from collab_lib.system.partition import best_split, split_latencies
from collab_lib.system.speculative import residual_distribution, speculative_sampling

# --- Chapter 3: split inference -------------------------------------------------------------------------


def _cut_case(model_fn, width: int, device: str, cloud: str, efficiency: float, skip=None):
    """(device_s, cloud_s, sent_bytes, out_bytes, layers, extra, device, cloud, efficiency) of one model.

    ``sent_bytes[k]`` lists the tensors live at cut k: the input at k = 0, layer k's output, and, with
    ``skip = (src, lo, hi)``, also layer src's output at the cuts lo..hi (a skip connection from layer src
    to after layer hi, as in a U-Net); nothing at k = n. ``extra[k]`` is what the skip adds to cut k's
    upload, which :func:`split_latencies` (one tensor per cut) does not see.
    """
    layers = _profile(model_fn, width)
    dev_spec, cloud_spec = get_device(device), get_device(cloud)
    dev = [layer_time_s(p.flops, p.bytes_moved, dev_spec, "fp32", efficiency) for p in layers]
    cld = [layer_time_s(p.flops, p.bytes_moved, cloud_spec, "fp32", efficiency) for p in layers]
    sent = [[_FRAME_BYTES]] + [[p.output_bytes] for p in layers[:-1]] + [[]]
    if skip is not None:
        src, lo, hi = skip
        for k in range(lo, hi + 1):
            sent[k].append(layers[src - 1].output_bytes)
    extra = np.array([sum(t[1:]) for t in sent], dtype=np.float64)
    return dev, cld, sent, layers[-1].output_bytes, layers, extra, dev_spec, cloud_spec, efficiency


def _cut_reference(case, link) -> tuple[list, np.ndarray]:
    """The library's cuts of ``case`` over ``link`` and their T(k) with the skip's extra upload added."""
    _, _, _, _, layers, extra, dev_spec, cloud_spec, eff = case
    cuts = split_latencies(layers, dev_spec, cloud_spec, link, input_bytes=_FRAME_BYTES,
                           device_efficiency=eff, cloud_efficiency=eff)
    return cuts, np.array([c.total_s for c in cuts]) + 8 * extra / link.uplink_bits_per_s


def _cut_cases(hidden: bool):
    """(name, case, links) of the split-inference checks."""
    if not hidden:
        specs = [("vision_cnn(256)", vision_cnn, 256, "snapdragon-8-gen-3", "a100-sxm", _EFFICIENCY, None),
                 ("residual_cnn(64)", residual_cnn, 64, "snapdragon-8-gen-3", "a100-sxm", _EFFICIENCY, None),
                 ("vision_cnn(256) with a skip from layer 7 to after layer 19 (cuts 8-19 send two tensors)",
                  vision_cnn, 256, "snapdragon-8-gen-3", "a100-sxm", _EFFICIENCY, (7, 8, 19))]
        links = [get_link(k) for k in ("wifi", "lte", "3g", "5g")]
    else:
        specs = [("vision_cnn(128), a Raspberry Pi 5 and the A100 at 50% of their rooflines", vision_cnn, 128,
                  "raspberry-pi-5", "a100-sxm", 0.5, None),
                 ("residual_cnn(32), the phone and the A100 at 20%", residual_cnn, 32, "snapdragon-8-gen-3",
                  "a100-sxm", 0.2, None),
                 ("vision_cnn(128) with a skip from layer 14 to after layer 21", vision_cnn, 128,
                  "snapdragon-8-gen-3", "a100-sxm", _EFFICIENCY, (14, 15, 21)),
                 ("residual_cnn(64) with a skip from layer 3 to after layer 9", residual_cnn, 64,
                  "raspberry-pi-5", "a100-sxm", 0.1, (3, 4, 9))]
        links = [get_link("5g"), get_link("3g"),
                 dataclasses.replace(get_link("wifi"), name="a 2 Mbit/s up, 50 Mbit/s down link",
                                     uplink_bits_per_s=2e6, downlink_bits_per_s=50e6, rtt_s=0.005)]
    return [(name, _cut_case(fn, w, d, c, e, skip), links) for name, fn, w, d, c, e, skip in specs]


def check_cut_latencies(fn, hidden: bool = False) -> str:
    """Check ``fn(device_s, cloud_s, sent_bytes, out_bytes, link)``, T(k) of every cut, against
    :func:`~collab_lib.system.partition.split_latencies`.

    ``fn`` receives the lists ``device_s`` and ``cloud_s`` of the n per-layer times in seconds, the list
    ``sent_bytes`` of n + 1 lists (``sent_bytes[k]`` the sizes in bytes of every tensor live at the cut
    after k layers: the input at k = 0, one tensor in a chain, two across a skip connection, none at k = n),
    the answer's size ``out_bytes`` and a :class:`~collab_lib.hardware.specs.LinkSpec`, and returns the
    (n + 1,) latencies T(0)..T(n) in seconds (k = 0: cloud only, k = n: device only). The visible cases
    are every cut of ``vision_cnn(256)``, ``residual_cnn(64)`` and a ``vision_cnn(256)`` with a skip
    connection, over Wi-Fi, LTE, 3G and 5G (whose rates differ by direction), with the phone and the A100
    at 30% of their rooflines; ``hidden=True`` runs other models, devices, skips and an asymmetric link.
    """
    cases = _cut_cases(hidden)
    name, (dev, cld, sent, out_bytes, *_), links = cases[0]
    first = learner_call(fn, list(dev), list(cld), [list(t) for t in sent], out_bytes, links[0],
                         forbidden=(split_latencies,), name="my_cut_latencies")
    if first is None:
        return not_attempted("fill in my_cut_latencies above")
    for model, cut_case, links in cases:
        dev, cld, sent, out_bytes = cut_case[:4]
        n = len(dev)
        for link in links:
            case = f"{model} over {link.name}"
            got = learner_call(fn, list(dev), list(cld), [list(t) for t in sent], out_bytes, link,
                               forbidden=(split_latencies,), name="my_cut_latencies")
            mine = as_shaped(got, "my_cut_latencies", case, (n + 1,), " (one T(k) per cut k = 0..n)")
            ref, total = _cut_reference(cut_case, link)
            bad = np.flatnonzero(np.abs(mine - total) > 1e-9 + 1e-6 * total)
            if len(bad) == 0:
                continue
            c = ref[int(bad[0])]
            m = mine[int(bad[0])]
            t_ref = total[c.split]
            swapped = t_ref - c.uplink_s - c.downlink_s + (
                8 * sum(sent[c.split]) / link.downlink_bits_per_s + 8 * out_bytes / link.uplink_bits_per_s)
            near = {"the round trip (link.rtt_s) is missing": t_ref - c.rtt_s,
                    "the answer's download (8 out_bytes / downlink) is missing": t_ref - c.downlink_s,
                    "the upload uses the uplink rate, the download the downlink rate": swapped,
                    "send every tensor live at the cut: sum sent_bytes[k]": c.total_s}
            hints = [h for h, t in near.items() if c.split < n and abs(m - t) <= 1e-6 * t]
            if c.split == n:
                hints = ["device only (k = n) sends nothing and pays no round trip"]
            elif not hints and c.split > 0 and abs(m - total[c.split - 1]) <= 1e-6 * total[c.split - 1]:
                hints = ["off by one: the cut after k layers runs layers 1..k on the device"]
            raise AssertionError(f"{case}, cut after {c.split} layers ({c.where}): you get {m * 1e3:.3f} ms, "
                                 f"the library {t_ref * 1e3:.3f} ms" + "".join(f"; {h}" for h in hints))
    which = ("other models and devices, skip connections and an asymmetric link" if hidden
             else "vision_cnn(256), residual_cnn(64) and a model with a skip connection over Wi-Fi, LTE, 3G and 5G")
    return f"correct: your T(k) matches split_latencies on every cut of {which}"


def check_offload_bandwidth(fn, hidden: bool = False) -> str:
    """Check ``fn(device_s, cloud_s, sent_bytes, out_bytes, rtt_s)``: the slowest link that makes offloading
    pay, and the cut it makes best.

    ``fn`` receives the inputs of :func:`check_cut_latencies` with a round trip ``rtt_s`` in place of the
    link, and returns ``(rate, k)``: the lowest rate B in bit/s, the same both ways, above which some cut
    k < n is faster than device only, and that cut (the one whose T(k) falls below T(n) first as B
    grows); ``(float("inf"), n)`` if no rate makes any cut faster (the round trip and the cloud's work
    alone take longer). Each cut's T(k) = a_k + b_k / B; the expected values come from
    :func:`~collab_lib.system.partition.split_latencies` priced at two rates.
    """
    cases = _cut_cases(hidden)
    rtts = (0.020, 0.050, 0.005) if not hidden else (0.028, 0.002, 0.150)
    forbidden = (split_latencies, best_split)
    (dev, cld, sent, out_bytes, *_), rtt = cases[0][1], rtts[0]
    first = learner_call(fn, list(dev), list(cld), [list(t) for t in sent], out_bytes, rtt,
                         forbidden=forbidden, name="my_offload_bandwidth")
    if first is None:
        return not_attempted("fill in my_offload_bandwidth above")
    for (model, cut_case, _), rtt in ((c, r) for c in cases for r in rtts):
        dev, cld, sent, out_bytes = cut_case[:4]
        n = len(dev)
        case = f"{model}, round trip {rtt * 1e3:g} ms"
        got = learner_call(fn, list(dev), list(cld), [list(t) for t in sent], out_bytes, rtt,
                           forbidden=forbidden, name="my_offload_bandwidth")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"{case}: my_offload_bandwidth returned {type(got).__name__}, expected a pair "
                                 "(rate in bit/s, cut k)")
        rate = as_number(got[0], "rate", case, "bit/s")
        k = int(as_number(got[1], "k", case, "the cut"))

        one, two = (_cut_reference(cut_case, LinkSpec("B", r, r, rtt))[1] for r in (1e6, 2e6))
        b = 2 * (one - two)[:n] * 1e6                  # T(k) = a_k + b_k / B: b_k in bit, a_k in s
        a = one[:n] - b / 1e6
        slack = one[n] - a                             # device only minus what no rate removes
        thresholds = np.where(slack > 0, b / np.where(slack > 0, slack, 1), np.inf)
        ref_k = int(np.argmin(thresholds)) if np.isfinite(thresholds).any() else n
        ref = float(thresholds.min())
        if math.isinf(ref):
            if math.isinf(rate) and k == n:
                continue
            raise AssertionError(f"{case}: you return ({rate:.6g}, {k}), but here every cut's round trip and "
                                 "compute alone take longer than device only, so no rate makes offloading pay: "
                                 "return (float('inf'), n)")
        if math.isclose(rate, ref, rel_tol=1e-6) and k == ref_k:
            continue
        if math.isclose(rate, ref, rel_tol=1e-6):
            raise AssertionError(f"{case}: your rate is right ({ref / 1e6:.4g} Mbit/s) but the cut is {k}, "
                                 f"expected {ref_k}: the cut whose threshold b_k / (T(n) - a_k) is that minimum")
        no_rtt = np.where(slack + rtt > 0, b / np.where(slack + rtt > 0, slack + rtt, 1), np.inf).min()
        no_down = np.where(slack > 0, (b - 8 * out_bytes) / np.where(slack > 0, slack, 1), np.inf).min()
        near = {"the round trip is missing": [no_rtt],
                "only the cloud-only cut was considered: every cut k < n may pay": [thresholds[0]],
                "the *lowest* rate: the minimum over the cuts, not the maximum":
                    [thresholds[np.isfinite(thresholds)].max()],
                "the answer's download (8 out_bytes / B) is missing": [no_down],
                "a factor of 8: bits, not bytes": [8 * ref, ref / 8],
                "the rate is in bit/s, not Mbit/s": [ref / 1e6]}
        hints = [h for h, v in near.items() if any(math.isclose(rate, x, rel_tol=1e-6) for x in v)]
        hint = hints[0] if hints else ("T(k) = D_k + RTT + C_k + 8 (S_k + S_out) / B beats T(n) once B > "
                                       "8 (S_k + S_out) / (T(n) - D_k - RTT - C_k)")
        raise AssertionError(f"{case}: you return {rate / 1e6:.6g} Mbit/s (cut {k}), expected "
                             f"{ref / 1e6:.6g} Mbit/s (cut {ref_k}); {hint}")
    which = "other models, devices, skips and round trips" if hidden else \
        "three models with round trips of 5 to 50 ms"
    return f"correct: your offloading threshold and its cut match the library's latencies on {which}"


# --- Chapter 3: cascades and routing --------------------------------------------------------------------


def check_threshold(fn, hidden: bool = False) -> str:
    """Check ``fn(scores, large_fraction)`` against :func:`~collab_lib.system.cascade.calibrate_threshold`.

    ``fn`` receives ``scores``, an (n,) float64 tensor in [0, 1], and a budget ``large_fraction`` in
    [0, 1], and returns a threshold t in [0, 1]; the queries with ``score >= t`` go to the large model.
    The scores are seeded and have no ties, so any share is reachable: the number sent must be as close
    to ``large_fraction * n`` as the library's (either side when b n ends in .5). ``hidden=True`` runs
    other seeds and sizes (down to one score) and other budgets.
    """
    rng = np.random.default_rng(13 if hidden else 3)
    if not hidden:
        cases = [("450 uniform scores", rng.uniform(size=450)),
                 ("60 scores crowded near 0", rng.beta(0.5, 4.0, size=60)),
                 ("7 uniform scores", rng.uniform(size=7))]
        budgets = (0.0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0)
    else:
        cases = [("1000 scores crowded near 1", rng.beta(4.0, 0.5, size=1000)),
                 ("33 uniform scores", rng.uniform(size=33)),
                 ("2 scores", rng.uniform(size=2)),
                 ("1 score", rng.uniform(size=1))]
        budgets = (0.0, 0.05, 0.2, 0.49, 0.77, 0.99, 1.0)
    forbidden = (calibrate_threshold,)
    if learner_call(fn, torch.from_numpy(cases[0][1].copy()), 0.5, forbidden=forbidden,
                    name="my_threshold") is None:
        return not_attempted("fill in my_threshold above")
    for name, s in cases:
        scores, n = torch.from_numpy(s), len(s)
        for b in budgets:
            case = f"{name}, budget {b:.1%}"
            t = as_number(learner_call(fn, scores.clone(), b, forbidden=forbidden, name="my_threshold"),
                          "my_threshold", case)
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
    which = "four other score sets (down to one score)" if hidden else "three seeded score sets"
    return f"correct: your thresholds send the share closest to the budget on {which}, for budgets from 0 to 1"


def _policy_cases(hidden: bool):
    """(name, cal_scores, test_scores, small_logits, large_logits, labels, small_cost, large_cost,
    small_always_runs, router_cost) of seeded routings: a cascade (scores from the small model's confidence)
    and a one-shot router (scores that know the small model's errors only partly)."""
    g = generator(31 if hidden else 21)
    out = []
    specs = ([(400, 300, 10, True, 320.0, 1.2e6, 0.0), (400, 300, 10, False, 320.0, 1.2e6, 5e3),
              (60, 45, 4, True, 4e5, 1.2e6, 0.0)] if not hidden else
             [(250, 500, 6, False, 4e5, 1.2e6, 2e4), (90, 31, 3, True, 1.0, 10.0, 0.5),
              (300, 200, 10, False, 0.0, 1.0, 0.0)])
    for n_cal, n, c, cascade, c_s, c_l, c_r in specs:
        labels = torch.randint(c, (n,), generator=g)
        onehot = torch.nn.functional.one_hot(labels, c).double()
        small = torch.randn(n, c, generator=g, dtype=torch.float64) + 1.5 * onehot
        large = torch.randn(n, c, generator=g, dtype=torch.float64) + 4.0 * onehot
        if cascade:
            cal_logits = torch.randn(n_cal, c, generator=g, dtype=torch.float64) + 1.5 * torch.nn.functional.one_hot(
                torch.randint(c, (n_cal,), generator=g), c).double()
            cal, test = confidence_scores(cal_logits), confidence_scores(small)
        else:
            wrong = (small.argmax(-1) != labels).double()
            test = (0.6 * wrong + 0.4 * torch.rand(n, generator=g, dtype=torch.float64)).clamp(0, 1)
            cal = torch.rand(n_cal, generator=g, dtype=torch.float64) ** 1.5
        kind = "cascade" if cascade else "one-shot router"
        out.append((f"a {kind} over {n} test queries ({n_cal} for calibration), c_s = {c_s:g}, c_l = {c_l:g}, "
                    f"c_r = {c_r:g}", cal, test, small, large, labels, c_s, c_l, cascade, c_r))
    return out


def check_policy_curve(fn, hidden: bool = False) -> str:
    """Check ``fn(cal_scores, test_scores, small_logits, large_logits, labels, budgets, small_cost,
    large_cost, small_always_runs, router_cost)``, a routing policy evaluated over budgets, against
    :func:`~collab_lib.system.cascade.cascade_outcome` (what :func:`~collab_lib.system.cascade.frontier`
    computes for each budget).

    For each budget b, the threshold is calibrated on ``cal_scores`` (the learner may use
    :func:`~collab_lib.system.cascade.calibrate_threshold` or their own), the test queries with
    ``test_scores >= t`` go to the large model, and ``fn`` returns a (B, 3) array of rows (accuracy,
    realised large fraction f, mean cost per query): C = c_r + c_s + f c_l for a cascade
    (``small_always_runs``), C = c_r + (1 - f) c_s + f c_l for a one-shot router. The cases are seeded
    logits and scores of a cascade and of one-shot routers, with other sizes and costs when ``hidden``.
    """
    # b n_cal never ends in .5, so that any threshold sending the closest share gives the same routing
    budgets = [0.0, 0.1, 0.3, 0.5, 0.8, 1.0] if not hidden else [0.0, 0.08, 0.42, 0.6, 0.94, 1.0]
    forbidden = (cascade_outcome, frontier)
    cases = _policy_cases(hidden)

    def call(case):
        _, cal, test, small, large, labels, c_s, c_l, cascade, c_r = case
        return learner_call(fn, cal.clone(), test.clone(), small.clone(), large.clone(), labels.clone(),
                            list(budgets), c_s, c_l, cascade, c_r, forbidden=forbidden, name="my_policy_curve")

    if call(cases[0]) is None:
        return not_attempted("fill in my_policy_curve above")
    for case in cases:
        name, cal, test, small, large, labels, c_s, c_l, cascade, c_r = case
        mine = as_shaped(call(case), "my_policy_curve", name, (len(budgets), 3),
                         " (one row (accuracy, large fraction, cost) per budget)")
        sends = [route(test, calibrate_threshold(cal, b)) for b in budgets]
        ref = np.array([[o.accuracy, o.large_fraction, o.cost] for o in
                        (cascade_outcome(small, large, labels, s, c_s, c_l, cascade, c_r) for s in sends)])
        scale = np.array([1.0, 1.0, max(c_l, c_s, c_r, 1e-300)])
        bad = np.argwhere(np.abs(mine - ref) > 1e-9 * scale)
        if len(bad) == 0:
            continue
        i, j = (int(v) for v in min(bad, key=lambda ij: ((1, 0, 2).index(ij[1]), ij[0])))  # the share first
        what = ("accuracy", "large fraction", "cost per query")[j]
        f = ref[i, 1]
        on_test = route(test, calibrate_threshold(test, budgets[i])).double().mean().item()
        other = c_r + ((1 - f) * c_s if cascade else c_s) + f * c_l
        if j == 1 and abs(mine[i, 1] - on_test) < 1e-12 and abs(on_test - f) > 1e-12:
            hint = "calibrate the threshold on cal_scores, then apply it to test_scores"
        elif j == 1:
            hint = "f is the share of *test* queries with test_scores >= t"
        elif j == 0:
            hint = ("a query sent to the large model is right if the large model's argmax is its label, "
                    "any other if the small model's is")
        elif abs(mine[i, 2] - other) <= 1e-9 * scale[2]:
            hint = ("a cascade (small_always_runs) pays the small model on every query, c_s + f c_l; a "
                    "one-shot router only on the queries it keeps, (1 - f) c_s + f c_l")
        elif c_r > 0 and abs(mine[i, 2] - (ref[i, 2] - c_r)) <= 1e-9 * scale[2]:
            hint = "every query also pays the router, router_cost"
        else:
            hint = "C = c_r + c_s + f c_l for a cascade, c_r + (1 - f) c_s + f c_l for a one-shot router"
        raise AssertionError(f"{name}, budget {budgets[i]:.0%}: your {what} is {mine[i, j]:.6g}, the library's "
                             f"{ref[i, j]:.6g}; {hint}")
    which = "other sizes, costs and budgets" if hidden else "a cascade and two one-shot routers"
    return f"correct: your accuracy, share and cost per query match cascade_outcome on {which}"


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


def check_exit_decisions(fn, hidden: bool = False) -> str:
    """Check ``fn(exit_logits, thresholds)`` against :func:`~collab_lib.system.early_exit.exit_decisions`.

    ``fn`` receives a list of E float32 tensors of logits, each (N, C), and a list of E - 1 thresholds,
    and returns the (N,) integer index of the exit each sample leaves at: the first j < E - 1 whose
    maximum softmax probability is ``>= thresholds[j]``, otherwise E - 1. The cases are seeded logits with
    two to four exits, some samples exactly at their threshold, and thresholds of 0 and above 1;
    ``hidden=True`` runs other seeds, five exits and a single sample.
    """
    cases = _exit_cases() if not hidden else _hidden_exit_cases()
    forbidden = (exit_decisions,)

    def call(logits, t):
        return learner_call(fn, [z.clone() for z in logits], list(t), forbidden=forbidden, name="my_exit_decisions")

    if call(cases[0][1], cases[0][2][0]) is None:
        return not_attempted("fill in my_exit_decisions above")
    for name, logits, settings in cases:
        conf = confidences(logits)                                     # (E, N)
        for t in settings:
            case = f"{name}, thresholds {t}"
            got = as_array(call(logits, t), "my_exit_decisions", case)
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
    which = "other seeds, five exits and a single sample" if hidden else \
        "seeded logits with two to four exits, including samples exactly at their threshold"
    return f"correct: your policy matches exit_decisions on {which}"


def _hidden_exit_cases() -> list[tuple[str, list[torch.Tensor], list[list[float]]]]:
    """Other seeds and sizes than :func:`_exit_cases`: five exits, a single sample, ties at 1/4."""
    g = generator(15)
    cases = []
    for e, n, c, settings in ((5, 120, 7, [[0.5, 0.6, 0.7, 0.8], [1.01, 0.0, 0.0, 0.0], [0.9] * 4]),
                              (3, 1, 4, [[0.3, 0.3], [0.99, 0.99]])):
        logits = [(0.5 + j) * torch.randn(n, c, generator=g) for j in range(e)]
        cases.append((f"{e} exits, {n} sample{'s' if n > 1 else ''}, {c} classes", logits, settings))
    tied = [torch.randn(24, 4, generator=g) for _ in range(2)]
    tied[0][::2] = 0.0                                     # four equal logits: confidence exactly 1/4
    cases.append(("2 exits, 24 samples, 4 classes, every other at confidence 1/4", tied, [[0.25], [0.9]]))
    return cases


def _flops_cases(hidden: bool):
    """(name, stage_flops, head_flops, exit_stages, exits, device_exits, ExitProfile) of seeded settings."""
    from collab_lib.hardware.profile import LayerProfile
    from collab_lib.system.early_exit import ExitProfile, digits_multi_exit_cnn, profile_multi_exit

    def layer(flops):
        return LayerProfile("layer", int(flops), 0, 0, 0)

    rng = np.random.default_rng(41 if hidden else 31)
    out = []
    widths = (16, 8) if not hidden else (32,)
    for w in widths:
        profile = profile_multi_exit(digits_multi_exit_cnn(seed=0, width=w), torch.zeros(1, 1, 8, 8))
        for d in ((3, 2, 0) if not hidden else (1,)):
            exits = rng.choice(3, size=200, p=[0.5, 0.3, 0.2])
            out.append((f"digits_multi_exit_cnn(width={w}), {d} exit{'' if d == 1 else 's'} on the device", profile,
                        exits, d))
    # exits after stages 1, 3 and 4 of 5, two layers per stage: not every stage has an exit
    stages = tuple((layer(a), layer(b)) for a, b in rng.integers(1_000, 90_000, size=(5, 2)))
    heads = tuple((layer(h),) for h in rng.integers(100, 5_000, size=3))
    synthetic = ExitProfile(stages, heads, (1, 3, 4))
    for d in ((2,) if not hidden else (0, 3, 1)):
        exits = rng.choice(3, size=37 if not hidden else 5)
        out.append((f"5 stages with exits after stages 1, 3 and 4 (from 0), {d} exit{'' if d == 1 else 's'} on the device",
                    synthetic, exits, d))
    if hidden:
        out.append(("every sample at the last exit, 2 on the device", synthetic, np.full(9, 2), 2))
    return out


def check_expected_flops(fn, hidden: bool = False) -> str:
    """Check ``fn(exits, stage_flops, head_flops, exit_stages, device_exits)``, the mean FLOPs of an exit
    policy in all and on the device, against :func:`~collab_lib.system.early_exit.exit_flops` and
    :func:`~collab_lib.system.early_exit.device_flops`.

    ``fn`` receives the (N,) exit index of each sample, the FLOPs of each of the S stages and of each of
    the E heads, ``exit_stages`` (the stage after which each exit sits, from 0) and ``device_exits`` (the
    exits 0..device_exits-1 run on the device), and returns ``(mean_flops, mean_device_flops)``. A sample
    leaving at exit j ran the stages 0..exit_stages[j] and the heads 0..j; on the device it ran all of that
    if j < device_exits, otherwise what the device's stages and heads cost (nothing if device_exits = 0).
    The cases are the lab's digits network at two widths and a network whose exits skip stages.
    """
    from collab_lib.hardware.profile import total_flops
    from collab_lib.system.early_exit import device_flops, early_exit_outcome, exit_flops

    forbidden = (exit_flops, device_flops, early_exit_outcome)
    cases = _flops_cases(hidden)

    def call(profile, exits, d):
        return learner_call(fn, exits.copy(), [total_flops(st) for st in profile.stages],
                            [total_flops(h) for h in profile.heads], list(profile.exit_stages), d,
                            forbidden=forbidden, name="my_expected_flops")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in my_expected_flops above")
    for name, profile, exits, d in cases:
        got = call(profile, exits, d)
        if not isinstance(got, (tuple, list, np.ndarray, torch.Tensor)) or np.ndim(got) == 0 or len(got) != 2:
            raise AssertionError(f"{name}: my_expected_flops returned {type(got).__name__}, expected a pair "
                                 "(mean_flops, mean_device_flops)")
        mine = [as_number(v, k, name, "FLOPs per sample") for v, k in zip(got, ("mean_flops", "mean_device_flops"))]
        c = exit_flops(profile)
        ref = [float(c[exits].mean()), float(device_flops(profile, d)[exits].mean())]
        stage = np.cumsum([total_flops(st) for st in profile.stages])
        head = np.cumsum([total_flops(h) for h in profile.heads])
        for which, m, r in zip(("mean_flops", "mean_device_flops"), mine, ref):
            if abs(m - r) <= 1e-9 * max(r, 1.0):
                continue
            no_heads = float(stage[list(profile.exit_stages)][exits].mean())
            last_head = float((stage[list(profile.exit_stages)] + [total_flops(h) for h in profile.heads])[exits].mean())
            by_index = float((stage[: len(head)] + head)[exits].mean())
            if which == "mean_flops":
                near = {"count the heads too: a sample leaving at exit j ran heads 0..j": no_heads,
                        "a sample leaving at exit j also ran the heads of the exits before it": last_head,
                        "exit j sits after stage exit_stages[j], not after stage j": by_index}
            else:
                sent = c[d - 1] if d > 0 else 0
                near = {"a sample that leaves in the cloud has run every device stage and head first":
                        float(np.where(exits < d, c[exits], 0).mean()),
                        "a sample that leaves in the cloud ran the device's work only, not its own exit's":
                        ref[0],
                        "the device runs the exits 0..device_exits-1, up to stage exit_stages[device_exits-1]":
                        float(np.where(exits < d, c[exits], sent + (head[d] - head[d - 1] if 0 < d < len(head)
                                                                    else 0)).mean())}
            hints = [h for h, v in near.items() if abs(m - v) <= 1e-9 * max(v, 1.0)]
            raise AssertionError(f"{name}: your {which} is {m:,.1f}, the library's {r:,.1f}"
                                 + (f"; {hints[0]}" if hints else ""))
    which = "a wider digits network, other splits and a network whose exits skip stages" if hidden else \
        "the lab's digits network at two widths and a network whose exits skip stages"
    return f"correct: your mean FLOPs, in all and on the device, match the library's on {which}"


# --- Chapter 3: a fleet of devices ----------------------------------------------------------------------


def _queue_cases(hidden: bool) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(name, sorted arrival_s, service_s, servers) of seeded queues, light to overloaded."""
    rng = np.random.default_rng(61 if hidden else 51)

    def poisson(rate_per_s, n):
        return np.cumsum(rng.exponential(1 / rate_per_s, size=n))

    if not hidden:
        return [
            ("400 requests at 1.5 per second, 0.94 s each, 2 servers", poisson(1.5, 400), np.full(400, 0.94), 2),
            ("300 requests at 0.9 per second, 0.94 s each, 1 server (a queue that grows)", poisson(0.9, 300)
             * 0.9, np.full(300, 0.94), 1),
            ("500 requests at 4 per second, lognormal service (mean about 1 s), 6 servers", poisson(4.0, 500),
             rng.lognormal(-0.1, 0.5, size=500), 6),
        ]
    bursts = np.sort(np.repeat(rng.uniform(0, 60, size=40), 5))    # 5 requests at once, 40 times
    return [
        ("200 requests in bursts of 5 at the same instant, 3 servers", bursts, rng.uniform(0.5, 2.0, 200), 3),
        ("3 requests, 8 servers (never a wait)", poisson(0.5, 3), np.full(3, 10.0), 8),
        ("1 request, 1 server", np.array([5.0]), np.array([0.3]), 1),
        ("600 requests at 2.2 per second, exponential service of 1 s, 2 servers (overloaded)",
         poisson(2.2, 600), rng.exponential(1.0, size=600), 2),
        ("50 requests, some with no service time, 1 server", poisson(1.0, 50),
         np.where(rng.uniform(size=50) < 0.3, 0.0, rng.exponential(0.8, size=50)), 1),
    ]


def check_fifo_queue(fn, hidden: bool = False) -> str:
    """Check ``fn(arrival_s, service_s, servers)``, a first-come-first-served queue with several servers,
    against :func:`~collab_lib.system.fleet.fifo_queue`.

    ``fn`` receives the (N,) sorted arrival times and the (N,) service times in seconds and the number of
    identical servers, and returns ``(wait_s, p50_s, p99_s)``: the (N,) time each request waits before a
    server takes it (a request starts at the later of its arrival and the moment the first server becomes
    free, in arrival order), and the median and 99th percentile of the time each spends in the system
    (wait + service; ``np.percentile``'s default, as :func:`~collab_lib.metrics.fleet_summary`). The
    cases are seeded Poisson arrivals with one to six servers, light to overloaded; ``hidden=True`` adds
    bursts of simultaneous arrivals, more servers than requests, a single request and zero service times.
    """
    cases = _queue_cases(hidden)
    forbidden = (fifo_queue,)

    def call(arrival, service, servers):
        return learner_call(fn, arrival.copy(), service.copy(), servers, forbidden=forbidden, name="my_fifo_queue")

    if call(*cases[0][1:]) is None:
        return not_attempted("fill in my_fifo_queue above")
    for name, arrival, service, servers in cases:
        got = call(arrival, service, servers)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(f"{name}: my_fifo_queue returned {type(got).__name__}, expected a triple "
                                 "(wait_s, p50_s, p99_s)")
        wait = as_shaped(got[0], "wait_s", name, (len(arrival),), " (one wait per request)")
        ref = fifo_queue(arrival, service, servers)
        bad = np.flatnonzero(np.abs(wait - ref) > 1e-9 * (1 + np.abs(ref)))
        if len(bad):
            i = int(bad[0])
            one = fifo_queue(arrival, service, 1)
            if np.allclose(wait, ref + service, atol=1e-9):
                hint = "the wait is the time before service starts: leave the service time out"
            elif servers > 1 and np.allclose(wait, one, atol=1e-9):
                hint = f"there are {servers} servers: a request takes the first one that is free"
            elif np.any(wait < -1e-12):
                hint = "a wait is never negative: a request starts at max(arrival, the first free server)"
            else:
                hint = ("keep the time each server becomes free (a heap, or a sorted list); a request starts "
                        "at max(its arrival, the earliest of them), and that server is then busy until start + "
                        "service")
            raise AssertionError(f"{name}: {len(bad)} of {len(ref)} waits differ; request {i} (arriving at "
                                 f"{arrival[i]:.3f} s) waits {wait[i]:.4f} s, the library {ref[i]:.4f} s; {hint}")
        p50, p99 = np.percentile(ref + service, [50, 99])
        for what, m, r, other in (("p50_s", got[1], p50, np.percentile(ref, 50)),
                                  ("p99_s", got[2], p99, np.percentile(ref, 99))):
            v = as_number(m, what, name, "seconds")
            if abs(v - r) <= 1e-9 * (1 + abs(r)):
                continue
            hint = ("the percentiles are of the time in the system, wait + service, not of the wait"
                    if abs(v - other) <= 1e-9 * (1 + abs(other))
                    else "np.percentile(wait_s + service_s, 50) and 99")
            raise AssertionError(f"{name}: your {what} is {v:.4f} s, expected {r:.4f} s; {hint}")
    which = ("bursts of simultaneous requests, more servers than requests, one request, an overloaded queue "
             "and zero service times" if hidden else "seeded queues with one to six servers, light to overloaded")
    return f"correct: your waits and p50/p99 match the library's fifo_queue on {which}"


# --- Chapter 3: speculative decoding --------------------------------------------------------------------


def _speculative_case(seed: int, gamma: int, v: int, spread: float = 3.0, dtype=torch.float32):
    """(draft_tokens, q, p) of one round: q (gamma, V), p (gamma + 1, V), x_i drawn from q_i (seeded)."""
    g = generator(seed)
    q = (spread * torch.randn(gamma, v, generator=g, dtype=torch.float64)).softmax(-1).to(dtype)
    p = (spread * torch.randn(gamma + 1, v, generator=g, dtype=torch.float64)).softmax(-1).to(dtype)
    x = torch.multinomial(q, 1, generator=g)[:, 0]
    return x, q, p


def _speculative_cases(hidden: bool) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(name, draft_tokens, q, p) rounds: random, greedy (one-hot), all accepted (p = q), gamma = 1."""
    one_hot = torch.nn.functional.one_hot
    if not hidden:
        cases = [(f"gamma {gm}, {v} tokens (seed {s})", *_speculative_case(s, gm, v))
                 for s, gm, v in ((0, 4, 6), (1, 4, 6), (2, 8, 20), (3, 3, 80))]
        x, q, p = _speculative_case(9, 4, 12)
        qg = one_hot(q.argmax(-1), 12).to(q.dtype)  # a greedy draft proposes its argmax
        cases.append(("gamma 4, a greedy draft (q one-hot)", qg.argmax(-1), qg, p))
        pg = one_hot(p.argmax(-1), 12).to(p.dtype)
        cases.append(("gamma 4, greedy draft and target", qg.argmax(-1), qg, pg))
        return cases
    cases = [(f"gamma {gm}, {v} tokens (seed {s})", *_speculative_case(s, gm, v, sp, dt))
             for s, gm, v, sp, dt in ((11, 1, 5, 3.0, torch.float32), (12, 6, 40, 1.0, torch.float64),
                                      (13, 12, 9, 4.0, torch.float32), (14, 2, 3, 2.0, torch.float64))]
    x, q, p = _speculative_case(15, 5, 7)
    cases.append(("gamma 5, p = q: every draft is accepted", x, q, torch.cat([q, p[-1:]])))
    qg = one_hot(q.argmax(-1), 7).to(q.dtype)
    pg = one_hot(torch.cat([q.argmax(-1)[:3], p.argmin(-1)[3:]]), 7).to(p.dtype)  # agree on 3, then differ
    cases.append(("gamma 5, greedy: the models agree on the first 3 tokens", qg.argmax(-1), qg, pg))
    return cases


def _speculative_marginal(fn, forbidden, seed: int, rounds: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(empirical distribution of a round's first output token, its p_1, its q_1) over ``rounds`` rounds."""
    g = generator(seed)
    q = torch.tensor([[0.6, 0.3, 0.05, 0.05], [0.25, 0.25, 0.25, 0.25]])
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    counts = torch.zeros(4, dtype=torch.float64)
    for _ in range(rounds):
        x = torch.multinomial(q, 1, generator=g)[:, 0]
        got = learner_call(fn, x, q.clone(), p.clone(), g, forbidden=forbidden, name="my_speculative_step")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"my_speculative_step returned {type(got).__name__}, expected a pair (tokens, n)")
        tokens = as_array(got[0], "tokens", "a round of gamma 2 over 4 tokens", "the (n + 1,) token ids")
        if tokens.size == 0:
            raise AssertionError("a round of gamma 2 over 4 tokens: you return no tokens; return the n accepted "
                                 "drafts and one more token, n + 1 tokens")
        counts[int(tokens.reshape(-1)[0])] += 1
    return counts / rounds, p[0].double(), q[0].double()


def check_speculative_step(fn, hidden: bool = False) -> str:
    """Check ``fn(draft_tokens, q, p, generator)``, one round's accept/reject step, against
    :func:`~collab_lib.system.speculative.speculative_sampling`.

    ``fn`` receives the draft's (gamma,) tokens, the draft's (gamma, V) distributions q, the target's
    (gamma + 1, V) distributions p and a :class:`torch.Generator`, and returns ``(tokens, n)``: the n
    accepted drafts followed by one token from norm(max(0, p_{n+1} - q_{n+1})) (a rejection) or from
    p_{gamma+1} (all accepted). Drawing the gamma uniforms first (``torch.rand(gamma, generator=...)``)
    and the last token with ``torch.multinomial(..., 1, generator=...)``, as the library does, the
    tokens must equal the library's with the same seed. The check also runs a few thousand rounds and
    compares the distribution of the first output token with the target's p_1 (speculative sampling is
    exact). ``hidden=True`` runs other seeds, sizes and edge cases (gamma = 1, p = q, greedy models).
    """
    forbidden = (speculative_sampling, residual_distribution)
    cases = _speculative_cases(hidden)
    seed0 = 100 if hidden else 0
    name0, x0, q0, p0 = cases[0]
    if learner_call(fn, x0.clone(), q0.clone(), p0.clone(), generator(seed0), forbidden=forbidden,
                    name="my_speculative_step") is None:
        return not_attempted("fill in my_speculative_step above")
    # the output distribution first: a wrong sampler is named for what it gets wrong
    rounds = 2000
    freq, p1, q1 = _speculative_marginal(fn, forbidden, 7 + seed0, rounds)
    tv = 0.5 * float((freq - p1).abs().sum())
    if tv > 0.05:
        from_p = torch.minimum(p1, q1) + (1 - torch.minimum(p1, q1).sum()) * p1   # replacement drawn from p
        hint = ("after a rejection draw from norm(max(0, p - q)), not from p"
                if 0.5 * float((freq - from_p).abs().sum()) < 0.05
                else "accept x_i when r_i < p_i(x_i) / q_i(x_i) (p the target, q the draft)")
        raise AssertionError(f"over {rounds} rounds your first output token is distributed as "
                             f"{[round(float(f), 3) for f in freq]}, the target's p_1 is "
                             f"{[round(float(f), 3) for f in p1]} (total variation {tv:.3f}); {hint}")
    for k, (name, x, q, p) in enumerate(cases):
        gamma = len(x)
        got = learner_call(fn, x.clone(), q.clone(), p.clone(), generator(seed0 + k), forbidden=forbidden,
                           name="my_speculative_step")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(f"{name}: my_speculative_step returned {type(got).__name__}, expected a pair "
                                 "(tokens, n)")
        tokens = as_array(got[0], "tokens", name, "the (n + 1,) token ids").reshape(-1)
        n = int(as_number(got[1], "n", name, "the number of accepted drafts"))
        ref_tokens, ref_n = speculative_sampling(x, q, p, generator(seed0 + k))
        ref_tokens = ref_tokens.numpy()
        if n == ref_n and np.array_equal(tokens, ref_tokens):
            continue
        r = torch.rand(gamma, generator=generator(seed0 + k)).double()
        i = torch.arange(gamma)
        ratio = p.double()[i, x] / q.double()[i, x]
        if not 0 <= n <= gamma:
            hint = f"n counts the accepted drafts, from 0 to gamma = {gamma}"
        elif n == ref_n + 1 and np.array_equal(tokens, ref_tokens):
            hint = "n is the number of accepted drafts: one less than the tokens you return"
        elif len(tokens) != n + 1:
            hint = ("return the n accepted drafts *and* one more token: n + 1 tokens"
                    if len(tokens) == n else f"return n + 1 = {n + 1} tokens, got {len(tokens)}")
        elif n != ref_n:
            swapped = (r >= 1 / ratio).nonzero()                          # r < q/p accepts
            hint = ("the acceptance ratio is p(x) / q(x), not q(x) / p(x)"
                    if n == (int(swapped[0]) if len(swapped) else gamma)
                    else f"r_{ref_n + 1} = {float(r[min(ref_n, gamma - 1)]):.3f} and p/q = "
                         f"{float(ratio[min(ref_n, gamma - 1)]):.3f} there: accept x_i while r_i < "
                         "p_i(x_i) / q_i(x_i), stop at the first rejection")
        elif not np.array_equal(tokens[:n], ref_tokens[:n]):
            hint = "the first n tokens are the accepted drafts themselves"
        else:
            hint = ("the last token comes from norm(max(0, p_{n+1} - q_{n+1})) after a rejection, from "
                    "p_{gamma+1} when all are accepted; draw the gamma uniforms first with "
                    "torch.rand(gamma, generator=generator), then that token with torch.multinomial(dist, 1, "
                    "generator=generator), so that the same seed gives the library's tokens")
        raise AssertionError(f"{name}: you return n = {n}, tokens {tokens.tolist()}; the library n = {ref_n}, "
                             f"tokens {ref_tokens.tolist()}; {hint}")
    which = ("other seeds, gamma from 1 to 12, p = q and greedy models" if hidden
             else "random and greedy (one-hot) rounds")
    return (f"correct: your step gives the library's tokens with the same generator on {which}, and over "
            f"{rounds} rounds its first token is distributed as the target's p (total variation {tv:.3f})")
