"""Check functions of the chapter 4 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, and returns a "correct" message otherwise.
The cases are seeded random points (or logits), so a check is deterministic; distances have no ties, so the
order of the answer is fully defined.
"""

from __future__ import annotations

import numpy as np
import torch

from collab_lib.data_based.augment import Descriptor, retrieve_nearest
from collab_lib.data_based.distill import soft_target_loss
from collab_lib.data_based.upload import select_diverse
from collab_lib.exercises.answers import as_array, as_number
from collab_lib.seed import generator


def _indices(got, name: str, case: str) -> np.ndarray:
    """The learner's answer (list, numpy array or tensor) as a 1-d int64 numpy array."""
    arr = as_array(got, name, case, "a 1-d array of indices")
    assert arr.ndim == 1, f"{case}: {name}: got shape {arr.shape}, expected a 1-d array of indices"
    assert arr.size == 0 or np.issubdtype(arr.dtype, np.integer), (
        f"{case}: {name}: got {arr.dtype} values, expected integer indices")
    return arr.astype(np.int64)


def _nearest_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(name, (P, d) pool features, (k, d) centroids, m) for seeded pools of different sizes."""
    rng = np.random.default_rng(4)
    cases = []
    for p, d, k, m in ((12, 2, 1, 3), (40, 3, 2, 5), (60, 8, 5, 20), (100, 16, 3, 100)):
        pool = torch.from_numpy(rng.normal(size=(p, d))).float()
        centroids = torch.from_numpy(rng.normal(size=(k, d))).float()
        cases.append((f"pool of {p} samples in {d}-d, {k} centroid(s), m={m}", pool, centroids, m))
    return cases


def check_retrieve_nearest(fn) -> str:
    """Check ``fn(pool_features, centroids, m)`` against :func:`~collab_lib.data_based.augment.retrieve_nearest`.

    ``fn`` receives ``pool_features`` of shape ``(P, d)``, ``centroids`` of shape ``(k, d)`` and an int
    ``m <= P``, and returns the ``(m,)`` indices of the pool samples with the smallest distance to their
    nearest centroid, nearest first.
    """
    cases = _nearest_cases()
    name, pool, centroids, m = cases[0]
    if fn(pool.clone(), centroids.clone(), m) is None:
        return "not attempted yet: fill in my_retrieve_nearest above"
    for name, pool, centroids, m in cases:
        got = _indices(fn(pool.clone(), centroids.clone(), m), "my_retrieve_nearest", name)
        ref = retrieve_nearest(pool, Descriptor(centroids), m).numpy()
        assert got.shape == ref.shape, f"{name}: {len(got)} indices, expected m={m}"
        if not np.array_equal(got, ref):
            if set(got.tolist()) == set(ref.tolist()):
                raise AssertionError(f"{name}: the right samples in the wrong order; got {got.tolist()}, "
                                     f"expected {ref.tolist()} (nearest first)")
            missing = sorted(set(ref.tolist()) - set(got.tolist()))
            raise AssertionError(f"{name}: got {got.tolist()}, expected {ref.tolist()}; sample(s) {missing} "
                                 "are among the m nearest and missing (a sample's distance is the distance to "
                                 "its *nearest* centroid, and the smallest distances are kept)")
    return ("correct: your retrieval matches retrieve_nearest on four seeded pools, from one centroid to "
            "five and from m=3 to the whole pool")


def _k_center_cases() -> list[tuple[str, torch.Tensor, int, torch.Tensor]]:
    """(name, (N, d) candidates, budget, (M, d) covered) for seeded candidates and cloud sets.

    The cloud's samples sit in one corner of the space, and some of them equal candidates, so a selection
    that ignores them starts elsewhere.
    """
    rng = np.random.default_rng(8)
    cases = []
    for n, d, budget, m in ((10, 2, 3, 1), (30, 2, 6, 5), (50, 5, 10, 20), (80, 12, 25, 40)):
        feats = rng.uniform(size=(n, d))
        covered = 0.3 * rng.uniform(size=(m, d))
        covered[: m // 3] = feats[rng.choice(n, m // 3, replace=False)]     # the cloud already has these
        cases.append((f"{n} candidates in {d}-d, budget {budget}, {m} cloud sample(s)",
                      torch.from_numpy(feats).float(), budget, torch.from_numpy(covered).float()))
    return cases


def check_k_center(fn) -> str:
    """Check ``fn(features, budget, covered)`` against :func:`~collab_lib.data_based.upload.select_diverse`.

    ``fn`` receives candidate ``features`` of shape ``(N, d)``, an int ``budget <= N`` and the cloud's
    samples ``covered`` of shape ``(M, d)`` with ``M >= 1``, and returns the ``(budget,)`` indices chosen by
    greedy k-center, in the order they are picked: each pick is the candidate farthest from its nearest
    point among ``covered`` and the candidates picked so far.
    """
    cases = _k_center_cases()
    name, feats, budget, covered = cases[0]
    if fn(feats.clone(), budget, covered.clone()) is None:
        return "not attempted yet: fill in my_k_center above"
    for name, feats, budget, covered in cases:
        got = _indices(fn(feats.clone(), budget, covered.clone()), "my_k_center", name)
        ref = select_diverse(feats, budget, covered).numpy()
        assert got.shape == ref.shape, f"{name}: {len(got)} indices, expected budget={budget}"
        bad = np.flatnonzero(got != ref)
        if len(bad):
            i = int(bad[0])
            raise AssertionError(f"{name}: pick {i} is sample {got[i]}, expected {ref[i]} (got {got.tolist()}, "
                                 f"expected {ref.tolist()}); the distance of a candidate is to its nearest "
                                 "point among the cloud's samples *and* the picks so far, and the largest wins")
    return ("correct: your greedy k-center matches select_diverse on four seeded pools, counting the cloud's "
            "existing samples as covered")


def _soft_target_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """(name, (N, C) student logits, (N, C) teacher logits, T) for seeded logits.

    The teacher's logits are three times wider than the student's, as a confident teacher's are. In the first
    case the usual slips (no T^2, T for T^2, sum or mean over the wrong axis) give different ratios to the
    right value, so the hint can name the slip; the last case has a student equal to its teacher (loss 0).
    """
    g = generator(123)
    cases = []
    for n, c, T in ((64, 10, 2.0), (5, 3, 0.5), (32, 10, 1.0), (16, 100, 4.0), (8, 7, 10.0)):
        z_s, z_t = torch.randn(n, c, generator=g), 3 * torch.randn(n, c, generator=g)
        cases.append((f"{n} samples, {c} classes, T = {T:g}", z_s, z_t, T))
    z = 3 * torch.randn(6, 4, generator=g)
    cases.append(("student logits equal to the teacher's (6 samples, 4 classes, T = 3)", z.clone(), z, 3.0))
    return cases


def _soft_target_hint(got: float, z_s: torch.Tensor, z_t: torch.Tensor, T: float) -> str:
    """A hint naming the slip whose value matches ``got`` (within 0.1%), or a reminder of the formula."""
    n, c = z_s.shape
    ref = soft_target_loss(z_s, z_t, T).item()
    log_q = (z_s.double() / T).log_softmax(dim=-1)                      # (N, C) student, softened
    log_p = (z_t.double() / T).log_softmax(dim=-1)                      # (N, C) teacher, softened
    p, q = log_p.exp(), log_q.exp()
    slips = {
        "the factor T^2 is missing": ref / T**2,
        "the factor is T^2, not T": ref / T,
        "average over the samples instead of summing": ref * n,
        "the KL divergence is summed over the classes and averaged over the samples only (F.kl_div needs "
        "reduction='batchmean', not its default 'mean')": ref / c,
        "the KL divergence goes from the teacher to the student, KL(p_t || q_s), not KL(q_s || p_t)":
            T**2 * (q * (log_q - log_p)).sum(dim=-1).mean().item(),
        "that is the cross-entropy H(p_t, q_s); subtract the teacher's entropy H(p_t) to get the KL divergence":
            T**2 * -(p * log_q).sum(dim=-1).mean().item(),
        "divide the student's logits by T as well as the teacher's": T**2 * (
            p * (log_p - z_s.double().log_softmax(dim=-1))).sum(dim=-1).mean().item(),
    }
    hints = [hint for hint, value in slips.items() if abs(got - value) <= 1e-3 * max(1.0, abs(value))]
    return "; ".join(hints) if hints else \
        "the loss is T^2 times the mean over samples of sum_c p_t,c (log p_t,c - log q_s,c), both softened by T"


def check_soft_target_loss(fn) -> str:
    """Check ``fn(student_logits, teacher_logits, T)`` against :func:`~collab_lib.data_based.distill.soft_target_loss`.

    ``fn`` receives two ``(N, C)`` float tensors of logits and a float ``T > 0``, and returns the scalar
    T^2 * mean over the N samples of KL(softmax(teacher_logits / T) || softmax(student_logits / T)), as a
    python number, a numpy scalar or a one-element tensor. It must agree within a relative 1e-4.
    """
    cases = _soft_target_cases()
    name, z_s, z_t, T = cases[0]
    if fn(z_s.clone(), z_t.clone(), T) is None:
        return "not attempted yet: fill in my_soft_target_loss above"
    for name, z_s, z_t, T in cases:
        got = as_number(fn(z_s.clone(), z_t.clone(), T), "my_soft_target_loss", name, "the mean over samples")
        ref = soft_target_loss(z_s, z_t, T).item()
        if not abs(got - ref) <= 1e-4 * max(1.0, abs(ref)):
            raise AssertionError(f"{name}: got {got:.6g}, expected {ref:.6g}; "
                                 + _soft_target_hint(got, z_s, z_t, T))
    return ("correct: your loss matches soft_target_loss on seeded logits at T = 0.5, 1, 2, 4 and 10, "
            "and is 0 when the student matches the teacher")
