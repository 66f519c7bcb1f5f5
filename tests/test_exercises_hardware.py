"""Chapter 2's lab checks accept an independent reference, say "not attempted" for None and reject wrong answers."""

import numpy as np
import pytest
import torch

from collab_lib.exercises import hardware as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- check_roofline ---------------------------------------------------------------------------------------

def plain_roofline_s(layers, peak, bw):
    """Per layer, the longer of compute and memory time; layers add up."""
    total = 0.0
    for p in layers:
        compute = p.flops / peak
        memory = (p.param_bytes + p.input_bytes + p.output_bytes) / bw
        total += compute if compute > memory else memory
    return total


def test_roofline_check():
    assert checks.check_roofline(plain_roofline_s).startswith("correct")
    assert checks.check_roofline(lambda layers, peak, bw: None).startswith("not attempted yet")


def test_roofline_check_accepts_numpy_and_torch_answers():
    def numpy_version(layers, peak, bw):
        flops = np.array([p.flops for p in layers], dtype=float)
        nbytes = np.array([p.bytes_moved for p in layers], dtype=float)
        return np.maximum(flops / peak, nbytes / bw).sum()       # a numpy float64

    def torch_version(layers, peak, bw):
        t = torch.tensor([[p.flops / peak, p.bytes_moved / bw] for p in layers], dtype=torch.float64)
        return t.max(dim=1).values.sum()                         # a 0-d tensor
    assert checks.check_roofline(numpy_version).startswith("correct")
    assert checks.check_roofline(torch_version).startswith("correct")


def test_roofline_check_rejects_max_of_totals():
    def max_of_totals(layers, peak, bw):
        return max(sum(p.flops for p in layers) / peak, sum(p.bytes_moved for p in layers) / bw)
    with pytest.raises(AssertionError, match="max of the totals"):
        checks.check_roofline(max_of_totals)


def test_roofline_check_rejects_sum_of_compute_and_memory_and_weights_only():
    with pytest.raises(AssertionError, match="not their sum"):
        checks.check_roofline(lambda layers, peak, bw: sum(p.flops / peak + p.bytes_moved / bw for p in layers))
    with pytest.raises(AssertionError, match="weights only"):
        checks.check_roofline(lambda layers, peak, bw: sum(max(p.flops / peak, p.param_bytes / bw)
                                                           for p in layers))


def test_roofline_check_rejects_per_layer_list():
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_roofline(lambda layers, peak, bw: [max(p.flops / peak, p.bytes_moved / bw) for p in layers])


# --- check_transfer_energy --------------------------------------------------------------------------------

def plain_isolated_j(up, down, link, radio, tail=True, bits_per_byte=8):
    """Promotion, upload, download, tail; ``tail=False`` or ``bits_per_byte=1`` give wrong answers."""
    up_s = bits_per_byte * up / link.uplink_bits_per_s
    down_s = bits_per_byte * down / link.downlink_bits_per_s
    up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
    down_w = radio.active_w_per_mbps_down * link.downlink_bits_per_s / 1e6 + radio.base_w
    energy = radio.promotion_s * radio.promotion_w + up_w * up_s + down_w * down_s
    return energy + radio.tail_s * radio.tail_w if tail else energy


def test_transfer_energy_check():
    assert checks.check_transfer_energy(plain_isolated_j).startswith("correct")
    assert checks.check_transfer_energy(lambda up, down, link, radio: None).startswith("not attempted yet")


def test_transfer_energy_check_rejects_a_missing_tail_and_bytes_as_bits():
    with pytest.raises(AssertionError, match="tail is missing"):
        checks.check_transfer_energy(lambda u, d, link, radio: plain_isolated_j(u, d, link, radio, tail=False))
    with pytest.raises(AssertionError, match="bits per second"):
        checks.check_transfer_energy(lambda u, d, link, radio: plain_isolated_j(u, d, link, radio, bits_per_byte=1))


def test_transfer_energy_check_rejects_the_uplink_for_both_directions():
    def uplink_both_ways(up, down, link, radio):
        up_w = radio.active_w_per_mbps_up * link.uplink_bits_per_s / 1e6 + radio.base_w
        return (radio.promotion_s * radio.promotion_w + up_w * 8 * (up + down) / link.uplink_bits_per_s
                + radio.tail_s * radio.tail_w)
    with pytest.raises(AssertionError, match="downlink rate"):
        checks.check_transfer_energy(uplink_both_ways)


def test_transfer_energy_check_rejects_a_breakdown():
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_transfer_energy(lambda u, d, link, radio: (radio.promotion_j, radio.tail_j))


# --- check_bound ------------------------------------------------------------------------------------------

def test_bound_check():
    assert checks.check_bound(lambda nbytes, bw: bw / nbytes).startswith("correct")
    assert checks.check_bound(lambda nbytes, bw: torch.tensor(bw, dtype=torch.float64) / nbytes).startswith("correct")
    assert checks.check_bound(lambda nbytes, bw: None).startswith("not attempted yet")


def test_bound_check_rejects_seconds_per_token_and_bits():
    with pytest.raises(AssertionError, match="seconds per token"):
        checks.check_bound(lambda nbytes, bw: nbytes / bw)
    with pytest.raises(AssertionError, match="factor of 8"):
        checks.check_bound(lambda nbytes, bw: bw / (8 * nbytes))


# --- check_adam -------------------------------------------------------------------------------------------

def test_adam_check():
    assert checks.check_adam(lambda n: 2 * 4 * n).startswith("correct")
    assert checks.check_adam(lambda n: np.int64(8) * n).startswith("correct")
    assert checks.check_adam(lambda n: None).startswith("not attempted yet")


def test_adam_check_rejects_one_moment_and_values_instead_of_bytes():
    with pytest.raises(AssertionError, match="one moment"):
        checks.check_adam(lambda n: 4 * n)
    with pytest.raises(AssertionError, match="4 bytes"):
        checks.check_adam(lambda n: 2 * n)


def test_adam_check_rejects_zero_total_and_the_gradient():
    with pytest.raises(AssertionError, match="ZeRO"):
        checks.check_adam(lambda n: 16 * n)
    with pytest.raises(AssertionError, match="adds the gradient"):
        checks.check_adam(lambda n: 3 * 4 * n)


def test_adam_check_rejects_an_answer_off_by_a_constant():
    with pytest.raises(AssertionError, match=r"MLP of widths \[\d+, \d+\]"):
        checks.check_adam(lambda n: 8 * (n + 1))
