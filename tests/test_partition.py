"""Split-inference latencies against the formula worked by hand on a made-up device, cloud and link."""

import pytest

from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.specs import DeviceSpec, LinkSpec
from collab_lib.system import best_split, split_latencies

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
    with pytest.raises(ValueError, match="latencies"):
        best_split([])
