"""Split-inference latencies against the formula worked by hand on a made-up device, cloud and link."""

import numpy as np
import pytest
import torch

from collab_lib.hardware.energy import compute_energy_j, get_radio, transfer_energy_j
from collab_lib.hardware.profile import LayerProfile, profile_model
from collab_lib.hardware.specs import DeviceSpec, LinkSpec
from collab_lib.models import residual_cnn
from collab_lib.system import best_split, split_energies, split_latencies

PHONE = DeviceSpec("phone", {"fp32": 1e9}, mem_bw_bytes_per_s=1e9, mem_bytes=None, power_w=None)
CLOUD = DeviceSpec("cloud", {"fp32": 1e12}, mem_bw_bytes_per_s=1e12, mem_bytes=None, power_w=None)
LINK = LinkSpec("link", uplink_bits_per_s=8e6, downlink_bits_per_s=16e6, rtt_s=0.05)

# Three layers, different in every figure so that a wrong index shows.
LAYERS = [
    LayerProfile("a", flops=100_000_000, param_bytes=0, input_bytes=400_000, output_bytes=800_000),
    LayerProfile("b", flops=0, param_bytes=0, input_bytes=800_000, output_bytes=50_000),
    LayerProfile("c", flops=400_000_000, param_bytes=2_000_000, input_bytes=50_000, output_bytes=40),
]


def test_every_cut_matches_hand_arithmetic():
    cuts = split_latencies(LAYERS, PHONE, CLOUD, LINK)
    assert [c.split for c in cuts] == [0, 1, 2, 3]
    # Phone times: a = max(0.1 s, 1.2e6 B / 1e9) = 0.1; b = 0.85e6 / 1e9 = 0.00085; c = 0.4 s.
    # Cloud times: a = max(1e-4, 1.2e-6) = 1e-4; b = 8.5e-7; c = max(4e-4, 2.05e-6) = 4e-4.
    # Download of the 40-byte result: 320 bit / 16e6 = 2e-5 s.
    expected = [
        0.05 + 400_000 * 8 / 8e6 + (1e-4 + 8.5e-7 + 4e-4) + 2e-5,   # cloud only: send the input
        0.1 + 0.05 + 800_000 * 8 / 8e6 + (8.5e-7 + 4e-4) + 2e-5,    # send a's output
        0.1 + 0.00085 + 0.05 + 50_000 * 8 / 8e6 + 4e-4 + 2e-5,      # send b's output
        0.1 + 0.00085 + 0.4,                                        # device only: nothing sent
    ]
    assert [c.total_s for c in cuts] == pytest.approx(expected)
    assert [c.bytes_up for c in cuts] == [400_000, 800_000, 50_000, 0]
    assert [c.where for c in cuts] == ["cloud", "split", "split", "device"]
    assert best_split(cuts).split == 2


def test_input_bytes_override_changes_only_the_cloud_only_cut():
    default = split_latencies(LAYERS, PHONE, CLOUD, LINK)
    encoded = split_latencies(LAYERS, PHONE, CLOUD, LINK, input_bytes=40_000)
    assert encoded[0].uplink_s == pytest.approx(40_000 * 8 / 8e6)
    assert [c.total_s for c in encoded[1:]] == [c.total_s for c in default[1:]]


def test_efficiency_scales_each_side_separately():
    slow_phone = split_latencies(LAYERS, PHONE, CLOUD, LINK, device_efficiency=0.5)
    base = split_latencies(LAYERS, PHONE, CLOUD, LINK)
    assert slow_phone[-1].device_s == pytest.approx(2 * base[-1].device_s)
    assert slow_phone[0].cloud_s == pytest.approx(base[0].cloud_s)


def test_best_split_prefers_the_earliest_on_ties():
    same = split_latencies([LayerProfile("z", 0, 0, 0, 0)], PHONE, CLOUD, LinkSpec("free", 1e9, 1e9, 0.0))
    assert [c.total_s for c in same] == [0.0, 0.0]
    assert best_split(same).split == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="layers"):
        split_latencies([], PHONE, CLOUD, LINK)
    with pytest.raises(ValueError, match="input_bytes"):
        split_latencies(LAYERS, PHONE, CLOUD, LINK, input_bytes=-1)
    with pytest.raises(ValueError, match="cuts"):
        best_split([])


def _brute_force_latency(layers, dev, cloud, link, k, eff_d, eff_c, input_bytes):
    # Independent, slow: the formula of the module docstring written out term by term.
    def t(p, spec, eff):
        return max(p.flops / spec.peak("fp32"), (p.param_bytes + p.input_bytes + p.output_bytes)
                   / spec.mem_bw_bytes_per_s) / eff
    total = 0.0
    for i in range(k):
        total += t(layers[i], dev, eff_d)
    if k < len(layers):
        sent = input_bytes if k == 0 else layers[k - 1].output_bytes
        total += link.rtt_s + 8 * sent / link.uplink_bits_per_s
        for i in range(k, len(layers)):
            total += t(layers[i], cloud, eff_c)
        total += 8 * layers[-1].output_bytes / link.downlink_bits_per_s
    return total


def test_partition_agrees_with_brute_force_on_random_profiles():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        layers = [LayerProfile(f"l{i}", int(rng.integers(0, 10**9)), int(rng.integers(0, 10**7)),
                               int(rng.integers(1, 10**7)), int(rng.integers(1, 10**7))) for i in range(n)]
        dev = DeviceSpec("d", {"fp32": float(rng.uniform(1e9, 1e11))}, float(rng.uniform(1e9, 5e10)), None, None)
        cloud = DeviceSpec("c", {"fp32": float(rng.uniform(1e12, 1e14))}, float(rng.uniform(1e11, 3e12)), None, None)
        link = LinkSpec("l", float(rng.uniform(1e5, 1e9)), float(rng.uniform(1e5, 1e9)), float(rng.uniform(0, 0.2)))
        eff_d, eff_c = float(rng.uniform(0.1, 1)), float(rng.uniform(0.1, 1))
        input_bytes = int(rng.integers(1, 10**7))
        cuts = split_latencies(layers, dev, cloud, link, input_bytes=input_bytes,
                               device_efficiency=eff_d, cloud_efficiency=eff_c)
        brute = [_brute_force_latency(layers, dev, cloud, link, k, eff_d, eff_c, input_bytes) for k in range(n + 1)]
        assert [c.total_s for c in cuts] == pytest.approx(brute, rel=1e-9)
        assert best_split(cuts).split == int(np.argmin(brute))


def test_energy_split_by_hand_and_against_its_parts():
    link = LinkSpec("link", uplink_bits_per_s=8e6, downlink_bits_per_s=16e6, rtt_s=0.05)
    radio = get_radio("lte")
    cuts = split_energies(LAYERS, link, radio, input_bytes=400_000)
    e = [compute_energy_j(p.flops, p.bytes_moved, "fp32") for p in LAYERS]
    assert cuts[-1].total_j == pytest.approx(sum(e)) and cuts[-1].radio_j == 0
    assert cuts[0].compute_j == 0
    assert cuts[0].radio_j == pytest.approx(transfer_energy_j(400_000, 40, link, radio, include_tail=False))
    assert cuts[2].total_j == pytest.approx(e[0] + e[1] + transfer_energy_j(50_000, 40, link, radio, False))
    tail = split_energies(LAYERS, link, radio, input_bytes=400_000, include_tail=True)
    assert tail[0].radio_j > cuts[0].radio_j and tail[-1].total_j == cuts[-1].total_j
    assert best_split(cuts).total_j == min(c.total_j for c in cuts)


def test_residual_blocks_are_profiled_as_one_layer_each():
    model = residual_cnn(width=8, blocks_per_stage=1).to("meta")
    layers = profile_model(model, torch.empty(1, 3, 64, 64, device="meta"))
    block = next(p for p in layers if "ResidualBlock" in p.name)
    # Stem 7x7/2 -> 32x32, max-pool -> 16x16; the first block has two 3x3 convs, 8 -> 8 channels, at 16x16.
    assert block.flops == 2 * (2 * 8 * 8 * 9 * 16 * 16)
    assert block.input_bytes == block.output_bytes == 4 * 8 * 16 * 16
    assert len(split_latencies(layers, PHONE, CLOUD, LINK)) == len(layers) + 1
