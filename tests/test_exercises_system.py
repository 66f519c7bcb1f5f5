"""Chapter 3's lab checks accept an independent answer, say "not attempted" for None and reject wrong
answers: the mistakes a learner would make, and answers of the wrong shape or type."""


import math

import numpy as np
import pytest
import torch

from collab_lib.exercises import system as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- T(k) of every cut, and the slowest link that makes offloading pay (chapter 3, split inference) -------


def plain_cut_latencies(device_s, cloud_s, sent_bytes, out_bytes, link, rtt=True, device_only_pays=False,
                        first_tensor_only=False, swap=False):
    """Chapter 3's T(k) for k = 0..n in plain Python, summing the tensors live at each cut."""
    up, down = (link.downlink_bits_per_s, link.uplink_bits_per_s) if swap else \
        (link.uplink_bits_per_s, link.downlink_bits_per_s)
    n, out = len(device_s), []
    for k in range(n + 1):
        t = sum(device_s[:k])
        if k < n or device_only_pays:
            sent = sent_bytes[k][:1] if first_tensor_only else sent_bytes[k]
            t += (link.rtt_s if rtt else 0.0) + 8 * sum(sent) / up + sum(cloud_s[k:]) + 8 * out_bytes / down
        out.append(t)
    return out


def plain_offload_bandwidth(device_s, cloud_s, sent_bytes, out_bytes, rtt_s, rtt=True, only_cloud=False,
                            largest=False):
    """Each cut k < n beats device only once B > 8 (S_k + S_out) / (T(n) - D_k - RTT - C_k)."""
    n = len(device_s)
    found = []
    for k in range(1 if only_cloud else n):
        slack = sum(device_s) - sum(device_s[:k]) - (rtt_s if rtt else 0.0) - sum(cloud_s[k:])
        if slack > 0:
            found.append((8 * (sum(sent_bytes[k]) + out_bytes) / slack, k))
    if not found:
        return float("inf"), n
    return max(found) if largest else min(found)


@pytest.mark.parametrize("hidden", [False, True])
def test_cut_latencies_check(hidden):
    assert checks.check_cut_latencies(plain_cut_latencies, hidden=hidden).startswith("correct")
    as_tensor = checks.check_cut_latencies(lambda *a: torch.tensor(plain_cut_latencies(*a)), hidden=hidden)
    assert as_tensor.startswith("correct")
    assert checks.check_cut_latencies(lambda *a: None, hidden=hidden).startswith("not attempted yet")


def test_cut_latencies_check_rejects_wrong_formulas():
    with pytest.raises(AssertionError, match="Wi-Fi, cut after 0 layers.*round trip"):
        checks.check_cut_latencies(lambda *a: plain_cut_latencies(*a, rtt=False))
    with pytest.raises(AssertionError, match="cut after 24 layers.*device only"):
        checks.check_cut_latencies(lambda *a: plain_cut_latencies(*a, device_only_pays=True))
    with pytest.raises(AssertionError, match="skip.*cut after 8 layers.*every tensor live"):
        checks.check_cut_latencies(lambda *a: plain_cut_latencies(*a, first_tensor_only=True))
    with pytest.raises(AssertionError, match="uplink rate"):
        checks.check_cut_latencies(lambda *a: plain_cut_latencies(*a, swap=True), hidden=True)

    def next_layers_output(device_s, cloud_s, sent_bytes, out_bytes, link):  # off by one
        return plain_cut_latencies(device_s, cloud_s, sent_bytes[1:] + [[]], out_bytes, link)
    with pytest.raises(AssertionError, match="vision_cnn\\(256\\) over Wi-Fi"):
        checks.check_cut_latencies(next_layers_output)


def test_cut_latencies_check_rejects_wrong_shapes():
    with pytest.raises(AssertionError, match="shape \\(24,\\), expected \\(25,\\)"):
        checks.check_cut_latencies(lambda *a: plain_cut_latencies(*a)[:-1])
    with pytest.raises(AssertionError, match="values \\('fast'\\), expected an array of shape"):
        checks.check_cut_latencies(lambda *a: "fast")


def test_offload_bandwidth_check():
    assert checks.check_offload_bandwidth(plain_offload_bandwidth).startswith("correct")
    assert checks.check_offload_bandwidth(plain_offload_bandwidth, hidden=True).startswith("correct")
    as_list = checks.check_offload_bandwidth(lambda *a: list(plain_offload_bandwidth(*a)))
    assert as_list.startswith("correct")
    assert checks.check_offload_bandwidth(lambda *a: None, hidden=True).startswith("not attempted yet")


def test_offload_bandwidth_check_rejects_wrong_thresholds():
    with pytest.raises(AssertionError, match="round trip is missing"):
        checks.check_offload_bandwidth(lambda *a: plain_offload_bandwidth(*a, rtt=False))
    with pytest.raises(AssertionError, match="only the cloud-only cut"):
        checks.check_offload_bandwidth(lambda *a: plain_offload_bandwidth(*a, only_cloud=True), hidden=True)
    with pytest.raises(AssertionError, match="minimum over the cuts"):
        checks.check_offload_bandwidth(lambda *a: plain_offload_bandwidth(*a, largest=True))
    with pytest.raises(AssertionError, match="bit/s, not Mbit/s"):
        checks.check_offload_bandwidth(lambda *a: (plain_offload_bandwidth(*a)[0] / 1e6, plain_offload_bandwidth(*a)[1]))
    with pytest.raises(AssertionError, match="no rate makes offloading pay"):  # a finite rate where none pays
        checks.check_offload_bandwidth(lambda *a: (1e9, 0) if math.isinf(plain_offload_bandwidth(*a)[0])
                                       else plain_offload_bandwidth(*a), hidden=True)
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_offload_bandwidth(lambda *a: plain_offload_bandwidth(*a)[0])


def library_cut_latencies(device_s, cloud_s, sent_bytes, out_bytes, link):
    """Hands back split_latencies on the lab's model: right on the first case, and a call of the library."""
    from collab_lib.hardware import get_device, profile_model
    from collab_lib.models import vision_cnn
    from collab_lib.system.partition import split_latencies
    with torch.device("meta"):
        layers = profile_model(vision_cnn(256), torch.empty(1, 3, 224, 224))
    cuts = split_latencies(layers, get_device("snapdragon-8-gen-3"), get_device("a100-sxm"), link,
                           input_bytes=sent_bytes[0][0], device_efficiency=0.3, cloud_efficiency=0.3)
    return [c.total_s for c in cuts]


def test_split_checks_reject_the_library_and_a_blank_when_grading(monkeypatch):
    from collab_lib.system.partition import best_split

    with pytest.raises(AssertionError, match="calls the library's.*split_latencies"):
        checks.check_cut_latencies(library_cut_latencies)
    with pytest.raises(AssertionError, match="calls the library's.*split_latencies"):
        checks.check_cut_latencies(lambda *a: library_cut_latencies(*a), hidden=True)

    def with_best_split(device_s, cloud_s, sent_bytes, out_bytes, rtt_s):
        best_split([type("Cut", (), {"cost": 1.0})()])
        return plain_offload_bandwidth(device_s, cloud_s, sent_bytes, out_bytes, rtt_s)
    with pytest.raises(AssertionError, match="calls the library's.*best_split"):
        checks.check_offload_bandwidth(with_best_split, hidden=True)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_cut_latencies(lambda *a: None, hidden=True)
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_offload_bandwidth(lambda *a: None)


# --- threshold of a router (chapter 3, cascades) --------------------------------------------------------


def plain_threshold(scores, large_fraction, off_by_one=False):
    """The k = round(b n) highest scores go to the large model, in plain Python."""
    s = sorted(scores.tolist(), reverse=True)
    k = round(large_fraction * len(s))
    if off_by_one:
        return s[k] if k < len(s) else 0.0
    return 1.0 if k == 0 else s[k - 1]


def test_threshold_check():
    assert checks.check_threshold(plain_threshold).startswith("correct")
    as_tensor = checks.check_threshold(lambda s, b: torch.tensor(plain_threshold(s, b), dtype=torch.float64))
    assert as_tensor.startswith("correct")
    assert checks.check_threshold(lambda s, b: None).startswith("not attempted yet")


def test_threshold_check_rejects_off_by_one_and_the_wrong_tail():
    with pytest.raises(AssertionError, match="off by one"):
        checks.check_threshold(lambda s, b: plain_threshold(s, b, off_by_one=True))
    with pytest.raises(AssertionError, match="budget 0.0%.*sends 450 of 450.*highest"):
        checks.check_threshold(lambda s, b: float(np.quantile(s.numpy(), b)))


def test_threshold_check_rejects_out_of_range_and_vector_answers():
    with pytest.raises(AssertionError, match="in \\[0, 1\\]"):
        checks.check_threshold(lambda s, b: 1.5 if b == 0 else plain_threshold(s, b))
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_threshold(lambda s, b: s.sort(descending=True).values)


@pytest.mark.parametrize("hidden", [False, True])
def test_threshold_check_hidden_cases_and_grading(hidden, monkeypatch):
    assert checks.check_threshold(plain_threshold, hidden=hidden).startswith("correct")
    with pytest.raises(AssertionError, match="off by one"):
        checks.check_threshold(lambda s, b: plain_threshold(s, b, off_by_one=True), hidden=hidden)
    from collab_lib.system.cascade import calibrate_threshold
    for cheat in (calibrate_threshold, lambda s, b: calibrate_threshold(s, b)):
        with pytest.raises(AssertionError, match="calls the library's.*calibrate_threshold"):
            checks.check_threshold(cheat, hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_threshold(lambda s, b: None, hidden=hidden)


# --- a routing policy's accuracy, share and cost over budgets (chapter 3, cascades) ---------------------


def plain_policy_curve(cal_scores, test_scores, small_logits, large_logits, labels, budgets, small_cost,
                       large_cost, small_always_runs, router_cost, mistake=None):
    """Per budget: the k = round(b n_cal) highest calibration scores set t; then accuracy, f and cost."""
    cal = sorted((test_scores if mistake == "calibrate_on_test" else cal_scores).tolist(), reverse=True)
    test, labels = test_scores.tolist(), labels.tolist()
    small_pred, large_pred = small_logits.argmax(-1).tolist(), large_logits.argmax(-1).tolist()
    rows = []
    for b in budgets:
        k = round(b * len(cal))
        t = 1.0 if k == 0 else 0.0 if k == len(cal) else cal[k - 1]
        send = [v >= t for v in test]
        f = sum(send) / len(send)
        right = [(lp if s else sp) == y for s, lp, sp, y in zip(send, large_pred, small_pred, labels)]
        cascade = small_always_runs != (mistake == "swap_designs")
        c_r = 0.0 if mistake == "no_router" else router_cost
        rows.append([sum(right) / len(right), f, c_r + (small_cost if cascade else (1 - f) * small_cost)
                     + f * large_cost])
    return rows


@pytest.mark.parametrize("hidden", [False, True])
def test_policy_curve_check(hidden):
    assert checks.check_policy_curve(plain_policy_curve, hidden=hidden).startswith("correct")
    as_array = checks.check_policy_curve(lambda *a: np.array(plain_policy_curve(*a)), hidden=hidden)
    assert as_array.startswith("correct")
    assert checks.check_policy_curve(lambda *a: None, hidden=hidden).startswith("not attempted yet")


def test_policy_curve_check_rejects_wrong_evaluations():
    with pytest.raises(AssertionError, match="calibrate the threshold on cal_scores"):
        checks.check_policy_curve(lambda *a: plain_policy_curve(*a, mistake="calibrate_on_test"))
    with pytest.raises(AssertionError, match="cascade.*pays the small model on every query"):
        checks.check_policy_curve(lambda *a: plain_policy_curve(*a, mistake="swap_designs"), hidden=True)
    with pytest.raises(AssertionError, match="router_cost"):
        checks.check_policy_curve(lambda *a: plain_policy_curve(*a, mistake="no_router"))

    def always_large_accuracy(*a):
        rows = plain_policy_curve(*a)
        return [[float((a[3].argmax(-1) == a[4]).double().mean()), f, c] for _, f, c in rows]
    with pytest.raises(AssertionError, match="accuracy.*large model's argmax"):
        checks.check_policy_curve(always_large_accuracy)
    with pytest.raises(AssertionError, match="shape \\(6,\\), expected \\(6, 3\\)"):
        checks.check_policy_curve(lambda *a: [r[0] for r in plain_policy_curve(*a)])


def test_policy_curve_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    from collab_lib.system.cascade import calibrate_threshold, cascade_outcome, route

    def via_library(cal, test, small, large, labels, budgets, c_s, c_l, cascade, c_r):
        outs = [cascade_outcome(small, large, labels, route(test, calibrate_threshold(cal, b)), c_s, c_l,
                                cascade, c_r) for b in budgets]
        return [[o.accuracy, o.large_fraction, o.cost] for o in outs]
    for cheat in (via_library, lambda *a: via_library(*a)):
        with pytest.raises(AssertionError, match="calls the library's.*cascade_outcome"):
            checks.check_policy_curve(cheat, hidden=True)
    # calibrate_threshold itself stays free: the exercise is the evaluation, not the threshold
    def with_library_threshold(cal, test, small, large, labels, budgets, c_s, c_l, cascade, c_r):
        rows = []
        for b in budgets:
            send = (test >= calibrate_threshold(cal, b)).double()
            f = send.mean().item()
            right = torch.where(send.bool(), large.argmax(-1) == labels, small.argmax(-1) == labels)
            rows.append([right.double().mean().item(), f, c_r + (c_s if cascade else (1 - f) * c_s) + f * c_l])
        return rows
    assert checks.check_policy_curve(with_library_threshold, hidden=True).startswith("correct")
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_policy_curve(lambda *a: None)


# --- exit decisions (chapter 3, early exit) -------------------------------------------------------------


def plain_exit_decisions(exit_logits, thresholds, strict=False, last_firing=False):
    """For each sample, the first exit whose max softmax probability (float32) reaches its threshold."""
    conf = [z.softmax(dim=-1).max(dim=-1).values.tolist() for z in exit_logits]  # E lists of N
    out = []
    for i in range(len(conf[0])):
        fires = [j for j, t in enumerate(thresholds) if (conf[j][i] > t if strict else conf[j][i] >= t)]
        out.append((fires[-1] if last_firing else fires[0]) if fires else len(exit_logits) - 1)
    return out


def test_exit_decisions_check():
    assert checks.check_exit_decisions(plain_exit_decisions).startswith("correct")
    assert checks.check_exit_decisions(lambda z, t: torch.tensor(plain_exit_decisions(z, t))).startswith("correct")
    assert checks.check_exit_decisions(lambda z, t: None).startswith("not attempted yet")


def test_exit_decisions_check_rejects_wrong_policies():
    with pytest.raises(AssertionError, match="confidence 0.5.*>="):
        checks.check_exit_decisions(lambda z, t: plain_exit_decisions(z, t, strict=True))
    with pytest.raises(AssertionError, match="first"):
        checks.check_exit_decisions(lambda z, t: plain_exit_decisions(z, t, last_firing=True))
    with pytest.raises(AssertionError, match="numbered from 0"):
        checks.check_exit_decisions(lambda z, t: np.array(plain_exit_decisions(z, t)) + 1)

    def raw_logits(exit_logits, thresholds):  # thresholds the largest logit, not its probability
        out = []
        for i in range(len(exit_logits[0])):
            fires = [j for j, t in enumerate(thresholds) if exit_logits[j][i].max() >= t]
            out.append(fires[0] if fires else len(exit_logits) - 1)
        return out
    with pytest.raises(AssertionError, match="samples leave elsewhere"):
        checks.check_exit_decisions(raw_logits)


def test_exit_decisions_check_rejects_wrong_shapes_and_types():
    with pytest.raises(AssertionError, match="shape"):
        checks.check_exit_decisions(lambda z, t: torch.stack([x.argmax(-1) for x in z]))
    with pytest.raises(AssertionError, match="float"):
        checks.check_exit_decisions(lambda z, t: np.array(plain_exit_decisions(z, t), dtype=float))
    with pytest.raises(AssertionError, match="not an array"):
        checks.check_exit_decisions(lambda z, t: [[0, 1], [2]])


@pytest.mark.parametrize("hidden", [False, True])
def test_exit_decisions_check_hidden_cases_and_grading(hidden, monkeypatch):
    assert checks.check_exit_decisions(plain_exit_decisions, hidden=hidden).startswith("correct")
    with pytest.raises(AssertionError, match=">="):
        checks.check_exit_decisions(lambda z, t: plain_exit_decisions(z, t, strict=True), hidden=hidden)
    from collab_lib.system.early_exit import exit_decisions
    for cheat in (exit_decisions, lambda z, t: exit_decisions(z, t)):
        with pytest.raises(AssertionError, match="calls the library's.*exit_decisions"):
            checks.check_exit_decisions(cheat, hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_exit_decisions(lambda z, t: None, hidden=hidden)


# --- expected FLOPs of an exit policy (chapter 3, early exit) -------------------------------------------


def plain_expected_flops(exits, stage_flops, head_flops, exit_stages, device_exits, mistake=None):
    """C_j = stages 0..exit_stages[j] + heads 0..j; on the device C_j below device_exits, else C_{d-1}."""
    cost = []
    for j in range(len(head_flops)):
        last_stage = j if mistake == "exit_index_as_stage" else exit_stages[j]
        heads = 0 if mistake == "no_heads" else sum(head_flops[:j + 1])
        cost.append(sum(stage_flops[:last_stage + 1]) + heads)
    sent = cost[device_exits - 1] if device_exits > 0 else 0
    on_device = [c if j < device_exits else (0 if mistake == "cloud_pays_nothing" else sent)
                 for j, c in enumerate(cost)]
    exits = [int(e) for e in exits]
    return sum(cost[e] for e in exits) / len(exits), sum(on_device[e] for e in exits) / len(exits)


@pytest.mark.parametrize("hidden", [False, True])
def test_expected_flops_check(hidden):
    assert checks.check_expected_flops(plain_expected_flops, hidden=hidden).startswith("correct")
    as_arrays = checks.check_expected_flops(lambda *a: np.array(plain_expected_flops(*a)), hidden=hidden)
    assert as_arrays.startswith("correct")
    assert checks.check_expected_flops(lambda *a: None, hidden=hidden).startswith("not attempted yet")


def test_expected_flops_check_rejects_wrong_counts():
    with pytest.raises(AssertionError, match="count the heads"):
        checks.check_expected_flops(lambda *a: plain_expected_flops(*a, mistake="no_heads"))
    with pytest.raises(AssertionError, match="exit_stages\\[j\\], not after stage j"):
        checks.check_expected_flops(lambda *a: plain_expected_flops(*a, mistake="exit_index_as_stage"), hidden=True)
    with pytest.raises(AssertionError, match="mean_device_flops.*every device stage and head"):
        checks.check_expected_flops(lambda *a: plain_expected_flops(*a, mistake="cloud_pays_nothing"))
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_expected_flops(lambda *a: plain_expected_flops(*a)[0])


def test_expected_flops_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    from collab_lib.system import early_exit

    def via_library(exits, stage_flops, head_flops, exit_stages, device_exits):
        early_exit.exit_flops(None) if False else None
        try:
            early_exit.device_flops(None, device_exits)
        except (AttributeError, TypeError, ValueError):
            pass
        return plain_expected_flops(exits, stage_flops, head_flops, exit_stages, device_exits)
    for cheat in (via_library, lambda *a: via_library(*a)):
        with pytest.raises(AssertionError, match="calls the library's.*device_flops"):
            checks.check_expected_flops(cheat, hidden=True)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_expected_flops(lambda *a: None)


# --- a first-come-first-served queue with several servers (chapter 3, fleet) ---------------------------


def plain_fifo_queue(arrival_s, service_s, servers, mistake=None):
    """Each request takes the server that frees first (a sorted list of free times), in arrival order."""
    free = [0.0] * (1 if mistake == "one_server" else servers)
    wait = []
    for t, s in zip(arrival_s.tolist(), service_s.tolist()):
        free.sort()
        start = max(t, free.pop(0))
        wait.append(start - t + (s if mistake == "wait_includes_service" else 0.0))
        free.append(start + s)
    in_system = [w if mistake == "percentiles_of_wait" else w + s for w, s in zip(wait, service_s.tolist())]
    p50, p99 = np.percentile(in_system, [50, 99])
    return wait, p50, p99


@pytest.mark.parametrize("hidden", [False, True])
def test_fifo_queue_check(hidden):
    assert checks.check_fifo_queue(plain_fifo_queue, hidden=hidden).startswith("correct")
    as_arrays = checks.check_fifo_queue(lambda *a: tuple(np.asarray(v) for v in plain_fifo_queue(*a)),
                                        hidden=hidden)
    assert as_arrays.startswith("correct")
    assert checks.check_fifo_queue(lambda *a: None, hidden=hidden).startswith("not attempted yet")


def test_fifo_queue_check_rejects_wrong_queues():
    with pytest.raises(AssertionError, match="2 servers: a request takes the first one that is free"):
        checks.check_fifo_queue(lambda *a: plain_fifo_queue(*a, mistake="one_server"))
    with pytest.raises(AssertionError, match="leave the service time out"):
        checks.check_fifo_queue(lambda *a: plain_fifo_queue(*a, mistake="wait_includes_service"), hidden=True)
    with pytest.raises(AssertionError, match="p50_s.*time in the system"):
        checks.check_fifo_queue(lambda *a: plain_fifo_queue(*a, mistake="percentiles_of_wait"))

    def last_in_first_out(arrival_s, service_s, servers):  # serves the queue in the wrong order
        order = np.argsort(-arrival_s, kind="stable")
        wait, _, _ = plain_fifo_queue(arrival_s[order], service_s[order], servers)
        out = np.empty(len(order))
        out[order] = wait
        return out, 0.0, 0.0
    with pytest.raises(AssertionError, match="waits differ"):
        checks.check_fifo_queue(last_in_first_out)
    with pytest.raises(AssertionError, match="expected a triple"):
        checks.check_fifo_queue(lambda *a: plain_fifo_queue(*a)[0])
    with pytest.raises(AssertionError, match="expected \\(400,\\)"):
        checks.check_fifo_queue(lambda *a: (plain_fifo_queue(*a)[0][:-1], 0.0, 0.0))


def test_fifo_queue_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    from collab_lib.system.fleet import fifo_queue

    def via_library(arrival_s, service_s, servers):
        wait = fifo_queue(arrival_s, service_s, servers)
        return wait, *np.percentile(wait + service_s, [50, 99])
    for cheat in (via_library, lambda *a: via_library(*a)):
        with pytest.raises(AssertionError, match="calls the library's.*fifo_queue"):
            checks.check_fifo_queue(cheat, hidden=True)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_fifo_queue(lambda *a: None)


# --- the accept/reject step of speculative sampling (chapter 3) -----------------------------------------


def plain_speculative_step(x, q, p, g, mistake=None):
    """Algorithm 1's step in plain Python, drawing from ``g`` as the docstring says: gamma uniforms, then one
    token."""
    gamma = len(x)
    r = torch.rand(gamma, generator=g).tolist()
    n = 0
    while n < gamma:
        px, qx = float(p[n, x[n]]), float(q[n, x[n]])
        if not r[n] < (qx / px if mistake == "swap" else px / qx):
            break
        n += 1
    if n < gamma and mistake != "from_p":
        d = [max(0.0, a - b) for a, b in zip(p[n].tolist(), q[n].tolist())]
        dist = torch.tensor([v / sum(d) for v in d])
    else:
        dist = p[n]
    t = torch.multinomial(dist, 1, generator=g)
    if mistake == "no_last":
        return x[:n], n
    if mistake == "count":
        return torch.cat([x[:n], t]), n + 1
    return torch.cat([x[:n], t]), n


def one_at_a_time(x, q, p, g):
    """A correct sampler that draws r_i only up to the first rejection: right distribution, other tokens."""
    n = 0
    while n < len(x) and float(torch.rand(1, generator=g)) < float(p[n, x[n]] / q[n, x[n]]):
        n += 1
    d = (p[n] - q[n]).clamp_min(0) if n < len(x) else p[n]
    return torch.cat([x[:n], torch.multinomial(d / d.sum(), 1, generator=g)]), n


@pytest.mark.parametrize("hidden", [False, True])
def test_speculative_step_check(hidden):
    assert checks.check_speculative_step(plain_speculative_step, hidden=hidden).startswith("correct")
    as_lists = checks.check_speculative_step(lambda *a: [t.tolist() if torch.is_tensor(t) else t
                                                         for t in plain_speculative_step(*a)], hidden=hidden)
    assert as_lists.startswith("correct")
    assert checks.check_speculative_step(lambda *a: None, hidden=hidden).startswith("not attempted yet")


def test_speculative_step_check_rejects_wrong_samplers():
    with pytest.raises(AssertionError, match="total variation.*p_i\\(x_i\\) / q_i\\(x_i\\)"):
        checks.check_speculative_step(lambda *a: plain_speculative_step(*a, mistake="swap"))
    with pytest.raises(AssertionError, match="norm\\(max\\(0, p - q\\)\\), not from p"):
        checks.check_speculative_step(lambda *a: plain_speculative_step(*a, mistake="from_p"), hidden=True)
    with pytest.raises(AssertionError, match="n \\+ 1 tokens"):
        checks.check_speculative_step(lambda *a: plain_speculative_step(*a, mistake="no_last"))
    with pytest.raises(AssertionError, match="n = 1.*library n = 0|return n \\+ 1"):
        checks.check_speculative_step(lambda *a: plain_speculative_step(*a, mistake="count"))
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_speculative_step(lambda *a: plain_speculative_step(*a)[0])


def test_speculative_step_check_names_a_correct_sampler_that_draws_otherwise():
    with pytest.raises(AssertionError, match="torch.rand\\(gamma, generator=generator\\)"):
        checks.check_speculative_step(one_at_a_time)


def test_speculative_step_check_rejects_the_library_and_a_blank_when_grading(monkeypatch):
    from collab_lib.system.speculative import residual_distribution, speculative_sampling
    for cheat in (speculative_sampling, lambda x, q, p, g: speculative_sampling(x, q, p, g)):
        with pytest.raises(AssertionError, match="calls the library's"):
            checks.check_speculative_step(cheat, hidden=True)

    def with_library_residual(x, q, p, g):
        out = plain_speculative_step(x, q, p, g)
        residual_distribution(p[0], q[0])
        return out
    with pytest.raises(AssertionError, match="calls the library's.*residual_distribution"):
        checks.check_speculative_step(with_library_residual)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
        checks.check_speculative_step(lambda *a: None, hidden=True)
