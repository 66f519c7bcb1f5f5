"""Chapter 3's lab checks accept an independent answer, say "not attempted" for None and reject wrong
answers: the mistakes a learner would make, and answers of the wrong shape or type."""


import numpy as np
import pytest
import torch

from collab_lib.exercises import system as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- T(k) of a cut (chapter 3, split inference) ---------------------------------------------------------


def plain_cut_latency(k, device_s, cloud_s, sent_bytes, out_bytes, link, rtt=True, device_only_pays=False):
    t = sum(device_s[:k])
    if k < len(device_s) or device_only_pays:
        t += (link.rtt_s if rtt else 0.0) + 8 * sent_bytes[k] / link.uplink_bits_per_s + sum(cloud_s[k:]) \
            + 8 * out_bytes / link.downlink_bits_per_s
    return t


def test_cut_latency_check():
    assert checks.check_cut_latency(plain_cut_latency).startswith("correct")
    assert checks.check_cut_latency(lambda *args: torch.tensor(plain_cut_latency(*args))).startswith("correct")
    assert checks.check_cut_latency(lambda *args: None).startswith("not attempted yet")


def test_cut_latency_check_rejects_wrong_formulas():
    with pytest.raises(AssertionError, match="Wi-Fi, cut after 0 layers.*round trip"):
        checks.check_cut_latency(lambda *a: plain_cut_latency(*a, rtt=False))
    with pytest.raises(AssertionError, match="cut after 24 layers.*device only"):
        checks.check_cut_latency(lambda *a: plain_cut_latency(*a, device_only_pays=True))

    def next_layers_output(k, device_s, cloud_s, sent_bytes, out_bytes, link):  # off by one
        return plain_cut_latency(k, device_s, cloud_s, sent_bytes[1:] + [0], out_bytes, link)
    with pytest.raises(AssertionError, match="vision_cnn\\(256\\) over Wi-Fi"):
        checks.check_cut_latency(next_layers_output)


def test_cut_latency_check_rejects_swapped_rates():
    def swapped(k, device_s, cloud_s, sent_bytes, out_bytes, link):
        t = sum(device_s[:k])
        if k < len(device_s):
            t += link.rtt_s + 8 * sent_bytes[k] / link.downlink_bits_per_s + sum(cloud_s[k:]) \
                + 8 * out_bytes / link.uplink_bits_per_s
        return t
    with pytest.raises(AssertionError, match="5G.*uplink rate"):
        checks.check_cut_latency(swapped)
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_cut_latency(lambda *a: "fast")


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


# --- hourly utilisation (chapter 3, fleet) --------------------------------------------------------------


def plain_utilisation(result, service_s, slots, all_requests=False, per_slot=True):
    hours = [0.0] * 24
    for t, cloud in zip(result.arrival_s.tolist(), result.to_cloud.tolist()):
        if cloud or all_requests:
            hours[int(t // 3600)] += service_s
    return [w / ((slots if per_slot else 1) * 3600) for w in hours]


def test_utilisation_check():
    assert checks.check_utilisation(plain_utilisation).startswith("correct")
    assert checks.check_utilisation(lambda r, s, n: None).startswith("not attempted yet")


def test_utilisation_check_rejects_forgotten_slots_and_local_requests():
    with pytest.raises(AssertionError, match="cloud policy, 2 slots.*divide by the 2 slots"):
        checks.check_utilisation(lambda r, s, n: plain_utilisation(r, s, n, per_slot=False))
    with pytest.raises(AssertionError, match="cascade.*to_cloud"):
        checks.check_utilisation(lambda r, s, n: plain_utilisation(r, s, n, all_requests=True))


def test_utilisation_check_rejects_a_short_or_unnormalised_answer():
    def no_minlength(result, service_s, slots):  # bincount without minlength stops at the last busy hour
        return np.bincount((result.arrival_s[result.to_cloud] // 3600).astype(int))[:23] * service_s / (slots * 3600)
    with pytest.raises(AssertionError, match="shape \\(23,\\), expected \\(24,\\)"):
        checks.check_utilisation(no_minlength)
    with pytest.raises(AssertionError, match="hour"):
        checks.check_utilisation(lambda r, s, n: np.array(plain_utilisation(r, s, n)) * 3600 / 60)


# --- residual of speculative sampling (chapter 3) -------------------------------------------------------


def plain_residual(p, q, swap=False, normalise=True, clamp=True):
    d = [(b - a) if swap else (a - b) for a, b in zip(p.tolist(), q.tolist())]
    r = [max(0.0, x) if clamp else abs(x) for x in d]
    return [x / sum(r) for x in r] if normalise else r


def test_residual_check():
    assert checks.check_residual(plain_residual).startswith("correct")
    assert checks.check_residual(lambda p, q: np.array(plain_residual(p, q))).startswith("correct")
    assert checks.check_residual(lambda p, q: None).startswith("not attempted yet")


def test_residual_check_rejects_wrong_residuals():
    with pytest.raises(AssertionError, match="normalise"):
        checks.check_residual(lambda p, q: plain_residual(p, q, normalise=False))
    with pytest.raises(AssertionError, match="p is the target"):
        checks.check_residual(lambda p, q: plain_residual(p, q, swap=True))
    with pytest.raises(AssertionError, match="clamp"):
        checks.check_residual(lambda p, q: plain_residual(p, q, clamp=False))
    with pytest.raises(AssertionError, match="greedy draft"):
        checks.check_residual(lambda p, q: p if q.max() == 1 else torch.tensor(plain_residual(p, q)))


def test_residual_check_rejects_wrong_shapes():
    with pytest.raises(AssertionError, match="shape \\(1, 6\\), expected \\(6,\\)"):
        checks.check_residual(lambda p, q: torch.tensor([plain_residual(p, q)]))
