"""profile_model against hand-counted FLOPs and bytes; roofline and transfer times against hand arithmetic."""

import pytest
import torch
from torch import nn

from collab_lib.hardware import layer_time_s, profile_model, transfer_time_s
from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import DeviceSpec

TOY = DeviceSpec("toy", peak_flops_per_s={"fp32": 1e9, "fp16": 4e9}, mem_bw_bytes_per_s=1e8, mem_bytes=None, power_w=None)


def test_linear_and_conv_flops_and_bytes_match_hand_counts():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    x = torch.zeros(2, 3, 8, 8)
    conv, relu, pool, flat, lin = profile_model(model, x)
    # Conv: 2 FLOP per MAC; MACs = batch * C_out * H * W * C_in * k * k (bias adds are not counted by torch).
    assert conv.flops == 2 * (2 * 8 * 8 * 8 * 3 * 3 * 3)
    assert conv.param_bytes == 4 * (8 * 3 * 3 * 3 + 8)
    assert conv.input_bytes == 4 * 2 * 3 * 8 * 8
    assert conv.output_bytes == 4 * 2 * 8 * 8 * 8
    assert relu.flops == 0 and pool.flops == 0 and flat.flops == 0
    assert pool.output_bytes == 4 * 2 * 8 * 4 * 4
    assert lin.flops == 2 * (2 * 128 * 5)
    assert lin.param_bytes == 4 * (128 * 5 + 5)
    assert conv.bytes_moved == conv.param_bytes + conv.input_bytes + conv.output_bytes


def test_attention_flops_match_hand_count():
    class Attention(nn.Module):
        def forward(self, qkv):
            q, k, v = qkv.unbind(0)  # each (B, T, d)
            return torch.softmax(q @ k.transpose(-1, -2), -1) @ v

    B, T, d = 2, 16, 32
    (prof,) = profile_model(nn.Sequential(Attention()), torch.zeros(3, B, T, d))
    assert prof.flops == 2 * (B * T * T * d) * 2  # QK^T and (softmax) V, 2 FLOP per MAC each


def test_meta_tensors_profile_like_real_ones():
    torch.manual_seed(0)
    real = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    meta = real.to("meta")
    assert profile_model(meta, torch.empty(1, 3, 8, 8, device="meta")) == profile_model(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), torch.zeros(1, 3, 8, 8)
    )


def test_profile_refuses_non_sequential():
    with pytest.raises(TypeError, match="Sequential"):
        profile_model(nn.Linear(2, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="no layers"):
        profile_model(nn.Sequential(), torch.zeros(1, 2))


def test_roofline_compute_bound_memory_bound_and_efficiency():
    # 1e9 FLOP moving 1e6 B: compute 1 s, memory 0.01 s -> compute-bound, 1 s.
    assert layer_time_s(1e9, 1e6, TOY) == pytest.approx(1.0)
    # 1e6 FLOP moving 1e8 B: compute 1 ms, memory 1 s -> memory-bound, 1 s; at half efficiency, 2 s.
    assert layer_time_s(1e6, 1e8, TOY) == pytest.approx(1.0)
    assert layer_time_s(1e6, 1e8, TOY, efficiency=0.5) == pytest.approx(2.0)
    # The fp16 peak is 4x: 1e9 FLOP at fp16 take 0.25 s.
    assert layer_time_s(1e9, 0, TOY, precision="fp16") == pytest.approx(0.25)
    # OPs / min(peak, AI * BW), the textbook form, gives the same as max(OPs/peak, bytes/BW).
    flops, nbytes = 3e8, 2e7
    ai = flops / nbytes
    assert layer_time_s(flops, nbytes, TOY) == pytest.approx(flops / min(1e9, ai * 1e8))


def test_layers_time_is_the_sum():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    layers = profile_model(model, torch.zeros(4, 64))
    assert layers_time_s(layers, TOY) == pytest.approx(sum(layer_time_s(p.flops, p.bytes_moved, TOY) for p in layers))


@pytest.mark.parametrize("kwargs", [dict(flops=-1, bytes_moved=0), dict(flops=0, bytes_moved=-1)])
def test_roofline_refuses_negative_work(kwargs):
    with pytest.raises(ValueError):
        layer_time_s(device=TOY, **kwargs)


@pytest.mark.parametrize("efficiency", [0.0, -0.1, 1.5])
def test_roofline_refuses_efficiency_outside_unit_interval(efficiency):
    with pytest.raises(ValueError, match="efficiency"):
        layer_time_s(1, 1, TOY, efficiency=efficiency)


def test_transfer_time_is_bits_over_rate():
    assert transfer_time_s(1_000_000, 8e6) == pytest.approx(1.0)
    assert transfer_time_s(0, 1e6) == 0.0
    with pytest.raises(ValueError, match="bits_per_s"):
        transfer_time_s(10, 0)
    with pytest.raises(ValueError, match="num_bytes"):
        transfer_time_s(-1, 1e6)


def test_bytes_are_the_deployments_float32_whatever_the_simulation_computes_in():
    from collab_lib.hardware.profile import tensor_bytes

    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.float64)) == 15 * 4
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.float32)) == 15 * 4
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.bfloat16)) == 15 * 2
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.int64)) == 15 * 8
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.uint8)) == 15
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    as32 = profile_model(model, torch.zeros(1, 3, 8, 8))
    as64 = profile_model(model.double(), torch.zeros(1, 3, 8, 8, dtype=torch.float64))
    assert as32 == as64
    assert as32[0].output_bytes == 4 * 6 * 6 * 4 and as32[0].param_bytes == (4 * 3 * 9 + 4) * 4
