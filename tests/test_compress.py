"""Compression of updates and models: unbiased quantization, exact top-k, error feedback against the
sequence worked by hand in chapter 6's exercise, bytes on the wire, and federations with a codec."""

import math

import numpy as np
import pytest
import torch

from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.models import mlp
from collab_lib.parameter_based.compress import (
    CompressionConfig,
    Compressor,
    prune_smallest,
    quantize_nearest,
    quantized_bytes,
    relative_error,
    sparse_bytes,
    stochastic_quantize,
    top_k,
)
from collab_lib.parameter_based.federated import FedConfig, federate
from collab_lib.parameter_based.params import get_params
from collab_lib.seed import generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def test_stochastic_quantization_is_unbiased_and_on_the_grid():
    x = torch.tensor([-1.0, -0.3, 0.0, 0.05, 0.62, 0.9])
    draws = torch.stack([stochastic_quantize(x, 2, generator(0, offset=i)) for i in range(20000)])
    # 2 bits on [-1, 1] (max|x| = 1): levels -1, -1/3, 1/3, 1.
    grid = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    assert torch.isclose(draws[..., None], grid, atol=1e-6).any(-1).all()
    # Mean of 20,000 draws: standard error <= (2/3) / 2 / sqrt(20000) ~ 0.0024.
    assert torch.allclose(draws.mean(0), x, atol=0.01)
    # 0.62 lies between 1/3 and 1: rounded up with probability (0.62 - 1/3) / (2/3) = 0.43.
    assert abs((draws[:, 4] == 1.0).double().mean().item() - 0.43) < 0.015


def test_nearest_quantization_error_is_at_most_half_a_step():
    x = torch.randn(1000, generator=generator(1))
    for bits in (2, 4, 8):
        step = 2 * x.abs().max() / (2 ** bits - 1)
        assert (quantize_nearest(x, bits) - x).abs().max() <= step / 2 + 1e-6


def test_top_k_keeps_the_k_largest_magnitudes():
    x = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 4.0]])
    assert torch.equal(top_k(x, 2), torch.tensor([[0.0, -5.0, 0.0], [0.0, 0.0, 4.0]]))
    assert torch.equal(top_k(x, 0), torch.zeros_like(x))
    assert torch.equal(prune_smallest(x, 0.5), top_k(x, 3))


def test_relative_error_by_hand():
    delta = {"w": torch.tensor([[3.0, 0.0], [0.0, 0.0]]), "b": torch.tensor([4.0])}
    # Top-1 keeps the 4 and drops the 3: ||(3, 0, 0, 0, 0)|| / ||(3, 0, 0, 0, 4)|| = 3 / 5.
    assert relative_error({"w": torch.zeros(2, 2), "b": torch.tensor([4.0])}, delta) == pytest.approx(0.6)
    assert relative_error(delta, delta) == 0.0
    assert relative_error({n: torch.zeros_like(d) for n, d in delta.items()}, delta) == pytest.approx(1.0)
    # The Compressor's top-20% of the five values keeps one of them, the 4.
    one_client = {n: d[None] for n, d in delta.items()}  # (1, *shape): a batch of one client
    sent, _ = Compressor(CompressionConfig(up_top_fraction=0.2)).uplink(0, np.array([0]), one_client)
    assert relative_error({n: s[0] for n, s in sent.items()}, delta) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="all-zero"):
        relative_error({"b": torch.zeros(1)}, {"b": torch.zeros(1)})
    with pytest.raises(ValueError, match="tensors"):
        relative_error({"w": delta["w"]}, delta)


def test_error_feedback_reproduces_the_hand_worked_sequence():
    """Chapter 6, exercise ex-param-ef: Δ = (1.0, 0.3) every round, top-1 with error feedback."""
    comp = Compressor(CompressionConfig(up_top_fraction=0.5, error_feedback=True))
    sent = []
    for t in range(9):
        received, nbytes = comp.uplink(t, np.array([7]), {"w": torch.tensor([[1.0, 0.3]])})
        sent.append(received["w"][0].tolist())
        assert nbytes == 1 * (4 + 4)
    expected = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.2], [2.0, 0.0], [1.0, 0.0], [1.0, 0.0],
                [0.0, 1.2], [2.0, 0.0]]
    assert np.allclose(sent, expected, atol=1e-6)
    # Over a period nothing is lost: the mean of what was sent is Δ.
    assert np.allclose(np.mean(sent[1:5], axis=0), [1.0, 0.3], atol=1e-6)
    without = Compressor(CompressionConfig(up_top_fraction=0.5, error_feedback=False))
    never = [without.uplink(t, np.array([7]), {"w": torch.tensor([[1.0, 0.3]])})[0]["w"][0, 1].item()
             for t in range(9)]
    assert never == [0.0] * 9


def test_bytes_on_the_wire():
    params = {"a": torch.randn(10, 30, generator=generator(2)), "b": torch.randn(30, generator=generator(3))}
    deltas = {n: p[None].repeat(3, *[1] * p.ndim) for n, p in params.items()}  # 3 clients
    P = 330
    cases = {
        CompressionConfig(): (3 * P * 4, P * 4),
        CompressionConfig(up_bits=8, down_bits=8): (3 * (quantized_bytes(300, 8) + quantized_bytes(30, 8)),
                                                    (300 + 4) + (30 + 4)),
        CompressionConfig(up_top_fraction=0.1): (3 * sparse_bytes(33), P * 4),
        CompressionConfig(up_bits=2, up_top_fraction=0.01): (3 * (math.ceil(4 * (2 / 8 + 4)) + 4), P * 4),  # k = 4
        CompressionConfig(down_prune_fraction=0.5): (3 * P * 4, 150 * 8 + 15 * 8),
    }
    for config, (up, down) in cases.items():
        comp = Compressor(config)
        assert comp.uplink(0, np.arange(3), deltas)[1] == up, config
        assert comp.downlink(params)[1] == down, config
    assert quantized_bytes(300, 8) == 304 and quantized_bytes(10, 3) == 4 + 4


def test_federation_with_an_identity_codec_equals_plain_fedavg():
    data, _ = fedprox_synthetic(0.5, 0.5, 10, seed=0, max_samples_per_user=40)
    model = mlp(60, 8, 10, seed=0)
    config = FedConfig(rounds=3, client_fraction=0.5, local_epochs=2, lr=0.05)
    plain = federate(model, data, config)
    coded = federate(model, data, config, codec=Compressor(CompressionConfig()))
    assert max((plain.params[n] - coded.params[n]).abs().max().item() for n in plain.params) < 1e-6
    assert plain.history.bytes_up == coded.history.bytes_up
    assert plain.history.bytes_down == coded.history.bytes_down


def test_error_feedback_rescues_aggressive_sparsification():
    data, _ = fedprox_synthetic(0.0, 0.0, 20, seed=1, iid=True, max_samples_per_user=60)
    model = mlp(60, 0, 10, seed=0)
    config = FedConfig(rounds=30, client_fraction=1.0, local_epochs=1, lr=0.1, eval_every=30)

    def loss(codec):
        return federate(model, data, config, codec=codec).history.train_loss[-1]

    full = loss(None)
    ef = loss(Compressor(CompressionConfig(up_top_fraction=0.02, error_feedback=True)))
    no_ef = loss(Compressor(CompressionConfig(up_top_fraction=0.02, error_feedback=False)))
    start = federate(model, data, FedConfig(rounds=1, lr=1e-9)).history.train_loss[-1]
    assert full < ef < no_ef < start
    assert ef - full < 0.5 * (no_ef - full)


def test_quantized_model_sent_down_is_what_devices_train_from():
    params = get_params(mlp(60, 8, 10, seed=0))
    received, _ = Compressor(CompressionConfig(down_bits=4, down_prune_fraction=0.5)).downlink(params)
    for name, w in received.items():
        nz = w[w != 0]
        assert (w == 0).sum() >= params[name].numel() // 2
        assert len(torch.unique(nz)) <= 2 ** 4


@pytest.mark.parametrize("field, value", [("up_bits", 0), ("up_bits", 17), ("down_bits", 2.5),
                                          ("up_top_fraction", 0.0), ("up_top_fraction", 1.5),
                                          ("down_prune_fraction", 1.0)])
def test_bad_configs_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CompressionConfig(**{field: value})
