"""Federated distillation: consensus and loss against hand computations, bytes by hand, clear errors."""

import math

import pytest
import torch
from torch.nn import functional as F

from collab_lib.data_based.distill import soft_target_loss
from collab_lib.feature_based.logit_exchange import (
    FDConfig,
    compressed_logit_bytes_per_round,
    consensus,
    logit_bytes_per_round,
)


def test_consensus_is_the_sample_weighted_mean():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, -1.0]])
    torch.testing.assert_close(consensus([a, b], [3, 1]), torch.tensor([[1.75, 1.25]]))  # unequal weights
    torch.testing.assert_close(consensus([a, b]), torch.tensor([[2.5, 0.5]]))


def test_digest_loss_by_hand():
    s, t, T = [0.0, 1.0, -1.0], [2.0, 0.0, 0.5], 2.0
    def softmax(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]
    p, q = softmax(t), softmax(s)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * T**2
    got = soft_target_loss(torch.tensor([s], dtype=torch.float64), torch.tensor([t], dtype=torch.float64), T)
    assert got.item() == pytest.approx(kl, rel=1e-12)
    assert soft_target_loss(torch.tensor([t]), torch.tensor([t]), T).item() == pytest.approx(0.0, abs=1e-6)


def _old_digest_loss(student, teacher, temperature):  # logit_exchange.distillation_loss before the merge
    log_p_student = F.log_softmax(student / temperature, dim=1)
    p_teacher = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * temperature**2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digest_loss_equals_the_copy_it_replaced(seed):
    g = torch.Generator().manual_seed(seed)
    student = (3 * torch.randn(7 + seed, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    teacher = 3 * torch.randn(7 + seed, 5, generator=g, dtype=torch.float64)
    T = 0.5 + seed
    new, old = soft_target_loss(student, teacher, T), _old_digest_loss(student, teacher, T)
    assert new.item() == pytest.approx(old.item(), rel=1e-12) and new.item() > 0.1
    (g_new,), (g_old,) = torch.autograd.grad(new, student), torch.autograd.grad(old, student)
    torch.testing.assert_close(g_new, g_old, rtol=1e-12, atol=1e-15)


def test_bytes_by_hand():
    assert logit_bytes_per_round(500, 10) == 2 * 500 * 10 * 4


def test_compressed_bytes_by_hand():
    # All ten float32 logits: no indices, the uncompressed payload.
    assert compressed_logit_bytes_per_round(500, 10, 10, 32) == logit_bytes_per_round(500, 10)
    # Top 3 at 8 bits, each with a 4-bit class id (10 classes): 500 * 3 * 12 bits = 2,250 bytes each way.
    assert compressed_logit_bytes_per_round(500, 10, 3, 8) == 2 * 2250
    # Rounded up to whole bytes each way: 3 samples * 1 * (4 + 4) bits = 3 bytes; 1 * 1 * 5 bits -> 1 byte.
    assert compressed_logit_bytes_per_round(3, 16, 1, 4) == 2 * 3
    assert compressed_logit_bytes_per_round(1, 2, 1, 4) == 2 * 1
    # 100 classes need 7-bit ids: 7 * 2 * (16 + 7) bits = 322 bits -> 41 bytes each way.
    assert compressed_logit_bytes_per_round(7, 100, 2, 16) == 2 * 41
    with pytest.raises(ValueError, match="top_k"):
        compressed_logit_bytes_per_round(5, 10, 11, 8)
    with pytest.raises(ValueError, match="value_bits"):
        compressed_logit_bytes_per_round(5, 10, 2, 0)


@pytest.mark.parametrize("call, name", [
    (lambda: soft_target_loss(torch.ones(2, 3), torch.ones(2, 3), 0.0), "temperature"),
    (lambda: soft_target_loss(torch.ones(2, 3), torch.ones(2, 4), 1.0), "shape"),
    (lambda: consensus([torch.ones(2, 3), torch.ones(2, 4)]), "logits"),
    (lambda: consensus([torch.ones(2, 3)], [-1.0]), "weights"),
    (lambda: logit_bytes_per_round(0, 10), "n_public"),
    (lambda: FDConfig(temperature=-1.0), "temperature"),
    (lambda: FDConfig(seed=-1), "seed"),
])
def test_bad_inputs_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
