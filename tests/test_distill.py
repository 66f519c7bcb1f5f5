"""Knowledge distillation: the loss against a hand computation and torch's kl_div (with the T^2 factor), its
gradient against the closed form, the training loop's first loss against an independent computation, the
distilled student against the hard-label student over seeds, and clear errors."""

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from collab_lib.data_based.distill import (
    DistillConfig,
    distillation_loss,
    pseudo_labels,
    soft_target_loss,
    soft_targets,
    target_bytes,
    train_student,
)
from collab_lib.metrics import accuracy
from collab_lib.models import digits_student
from collab_lib.seed import generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def softmax(values, T):
    e = [math.exp(v / T) for v in values]
    return [v / sum(e) for v in e]


def test_soft_target_loss_matches_a_hand_computation_including_t_squared():
    zs = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]]
    zt = [[3.0, 1.0, 0.0], [0.0, 4.0, 1.0]]
    for T in (1.0, 2.0, 5.0):
        # By hand: T^2 * mean_i sum_c p_ic (log p_ic - log q_ic), p and q softened by T.
        kl = []
        for s, t in zip(zs, zt):
            p, q = softmax(t, T), softmax(s, T)
            kl.append(sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q)))
        expected = T * T * sum(kl) / len(kl)
        got = soft_target_loss(torch.tensor(zs, dtype=torch.float64), torch.tensor(zt, dtype=torch.float64), T)
        assert got.item() == pytest.approx(expected, rel=1e-12)


def test_soft_target_loss_matches_torch_kl_div():
    g = generator(0)
    zs, zt = torch.randn(32, 10, generator=g), 3 * torch.randn(32, 10, generator=g)
    for T in (0.5, 1.0, 4.0, 20.0):
        ref = F.kl_div(F.log_softmax(zs / T, dim=1), F.softmax(zt / T, dim=1), reduction="batchmean") * T ** 2
        assert torch.allclose(soft_target_loss(zs, zt, T), ref, rtol=1e-5, atol=1e-7)


def test_gradient_is_t_times_q_minus_p_over_n():
    # d/dz_s [T^2 KL(p || softmax(z_s / T))] = T^2 (q - p) / T = T (q - p), averaged over N samples.
    g = generator(1)
    zs = torch.randn(8, 5, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(8, 5, generator=g, dtype=torch.float64)
    T = 3.0
    soft_target_loss(zs, zt, T).backward()
    q, p = (zs.detach() / T).softmax(1), (zt / T).softmax(1)
    assert torch.allclose(zs.grad, T * (q - p) / 8, atol=1e-12)


def test_loss_is_zero_when_the_student_matches_the_teacher_and_the_teacher_gets_no_gradient():
    zt = torch.randn(4, 6, generator=generator(2), requires_grad=True)
    assert soft_target_loss(zt.detach().clone(), zt, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    zs = torch.randn(4, 6, generator=generator(3), requires_grad=True)
    soft_target_loss(zs, zt, 2.0).backward()
    assert zt.grad is None


def test_distillation_loss_mixes_the_two_terms():
    g = generator(4)
    zs, zt = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    ce = F.cross_entropy(zs, y)
    assert torch.allclose(distillation_loss(zs, zt, y, 4.0, 0.0), ce)
    assert torch.allclose(distillation_loss(zs, zt, y, 4.0, 1.0), soft_target_loss(zs, zt, 4.0))
    mixed = 0.3 * soft_target_loss(zs, zt, 4.0) + 0.7 * ce
    assert torch.allclose(distillation_loss(zs, zt, y, 4.0, 0.3), mixed)


def test_soft_targets_and_pseudo_labels():
    zt = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.1, 0.0]])
    assert torch.allclose(soft_targets(zt, 1.0), zt.softmax(1))
    assert torch.allclose(soft_targets(zt, 1e6), torch.full((2, 3), 1 / 3), atol=1e-5)  # flat at large T
    labels, mask = pseudo_labels(zt, min_confidence=0.5)
    assert labels.tolist() == [0, 1]
    # confidences: e^2 / (e^2 + 2) = 0.787 and e^0.1 / (e^0.1 + 2) = 0.356
    assert mask.tolist() == [True, False]


def test_target_bytes_by_hand():
    assert target_bytes(100, 10, "soft") == 100 * 10 * 4
    assert target_bytes(100, 10, "soft", bytes_per_value=2) == 2000
    assert target_bytes(100, 10, "pseudo") == 100
    assert target_bytes(100, 1000, "pseudo") == 200
    assert target_bytes(100, 10, "none") == 0


def test_first_training_loss_matches_an_independent_computation():
    g = generator(5)
    xl, yl = torch.randn(20, 1, 8, 8, generator=g), torch.randint(0, 10, (20,), generator=g)
    xt = torch.randn(30, 1, 8, 8, generator=g)
    zt = 2 * torch.randn(30, 10, generator=g)
    for targets in ("none", "pseudo", "soft"):
        student = digits_student(seed=0)
        reference = copy.deepcopy(student)
        cfg = DistillConfig(targets=targets, temperature=3.0, alpha=0.25, steps=1, batch_size=64)
        history = train_student(student, xl, yl, xt, zt, cfg)
        with torch.no_grad():  # full batches: the first loss is over every sample, in any order
            hard = F.cross_entropy(reference(xl), yl)
            if targets == "none":
                expected = hard
            elif targets == "pseudo":
                expected = 0.75 * hard + 0.25 * F.cross_entropy(reference(xt), zt.argmax(1))
            else:
                kl = F.kl_div(F.log_softmax(reference(xt) / 3, 1), F.softmax(zt / 3, 1), reduction="batchmean")
                expected = 0.75 * hard + 0.25 * 9 * kl
        assert history[0] == pytest.approx(expected.item(), rel=1e-5)


def test_training_is_reproducible_under_its_seed():
    g = generator(6)
    xl, yl = torch.randn(20, 1, 8, 8, generator=g), torch.randint(0, 10, (20,), generator=g)
    xt, zt = torch.randn(30, 1, 8, 8, generator=g), torch.randn(30, 10, generator=g)
    cfg = DistillConfig(steps=20, seed=3)
    runs = [train_student(digits_student(seed=1), xl, yl, xt, zt, cfg) for _ in range(2)]
    assert (runs[0] == runs[1]).all()


def test_distilled_student_beats_hard_label_student_over_seeds():
    """The lab's claim, in small: few labels on the device, a teacher's soft targets on unlabelled data."""
    from collab_lib.datasets.digits import load_digits

    x, y = load_digits().tensors
    order = torch.randperm(len(x), generator=generator(0))
    cloud, lab, unl, test = order[:700], order[700:740], order[740:1100], order[1100:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    train_student(teacher, x[cloud], y[cloud], None, None, DistillConfig(targets="none", steps=150, seed=1))
    assert accuracy(teacher, x[test], y[test]) > 0.93
    xt = torch.cat([x[lab], x[unl]])
    with torch.no_grad():
        zt = teacher(xt)
    gains = []
    for seed in range(3):
        acc = {}
        for targets in ("none", "soft"):
            student = digits_student(seed=10 + seed)
            train_student(student, x[lab], y[lab], xt, zt, DistillConfig(targets=targets, steps=120, seed=seed))
            acc[targets] = accuracy(student, x[test], y[test])
        gains.append(acc["soft"] - acc["none"])
    assert min(gains) > 0.05, gains


@pytest.mark.parametrize("call, name", [
    (lambda: soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0), "temperature"),
    (lambda: soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), -1.0), "temperature"),
    (lambda: soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), float("nan")), "temperature"),
    (lambda: soft_targets(torch.zeros(2, 3), 0), "temperature"),
    (lambda: soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 4), 1.0), "teacher_logits"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.0, 1.5),
     "alpha"),
    (lambda: distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), 1.0, 0.5),
     "labels"),
    (lambda: pseudo_labels(torch.zeros(2, 3), min_confidence=2.0), "min_confidence"),
    (lambda: DistillConfig(temperature=0), "temperature"),
    (lambda: DistillConfig(alpha=-0.1), "alpha"),
    (lambda: DistillConfig(targets="hard"), "targets"),
    (lambda: DistillConfig(steps=0), "steps"),
    (lambda: DistillConfig(lr=0), "lr"),
    (lambda: target_bytes(10, 10, "logits"), "targets"),
    (lambda: train_student(digits_student(0), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
                           None, None, DistillConfig()), "x_transfer"),
    (lambda: train_student(digits_student(0), torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long),
                           torch.zeros(3, 1, 8, 8), torch.zeros(2, 10), DistillConfig()), "teacher_logits"),
    (lambda: train_student(digits_student(0), torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long),
                           None, None, DistillConfig(targets="none")), "y_labeled"),
])
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
