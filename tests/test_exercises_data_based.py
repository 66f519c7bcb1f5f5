"""Chapter 4's lab checks accept a plain-Python reference, say "not attempted" for None and reject wrong answers."""

import math

import pytest
import torch

from collab_lib.exercises import data_based as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def nearest_distance(point: list[float], others: list[list[float]]) -> float:
    return min(math.dist(point, o) for o in others)


def plain_retrieve_nearest(pool, centroids, m, farthest=False):
    """Sort by distance to the nearest centroid, in plain Python (``farthest`` reverses it: a wrong answer)."""
    pts, cs = pool.tolist(), centroids.tolist()
    d = [nearest_distance(p, cs) for p in pts]
    order = sorted(range(len(pts)), key=lambda j: (-d[j] if farthest else d[j], j))
    return order[:m]


def plain_k_center(features, budget, covered, ignore_covered=False):
    """Greedy k-center in plain Python; ``ignore_covered`` starts from the candidates alone (a wrong answer)."""
    pts = features.tolist()
    if ignore_covered:
        mean = [sum(c) / len(pts) for c in zip(*pts)]
        dist = [math.dist(p, mean) for p in pts]
    else:
        dist = [nearest_distance(p, covered.tolist()) for p in pts]
    chosen = []
    for _ in range(budget):
        j = max((i for i in range(len(pts)) if i not in chosen), key=lambda i: (dist[i], -i))
        chosen.append(j)
        dist = [min(dist[i], math.dist(pts[i], pts[j])) for i in range(len(pts))]
    return chosen


def test_retrieve_nearest_check():
    assert checks.check_retrieve_nearest(plain_retrieve_nearest).startswith("correct")
    assert checks.check_retrieve_nearest(lambda pool, c, m: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="m=3"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m, farthest=True))


def test_retrieve_nearest_check_names_wrong_order_and_shape():
    with pytest.raises(AssertionError, match="wrong order"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m)[::-1])
    with pytest.raises(AssertionError, match="expected m=3"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m + 1))


def test_retrieve_nearest_check_accepts_a_torch_answer():
    def torch_version(pool, centroids, m):
        return torch.cdist(pool, centroids).min(dim=1).values.argsort()[:m]
    assert checks.check_retrieve_nearest(torch_version).startswith("correct")


def test_k_center_check():
    assert checks.check_k_center(plain_k_center).startswith("correct")
    assert checks.check_k_center(lambda f, b, c: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="cloud sample"):
        checks.check_k_center(lambda f, b, c: plain_k_center(f, b, c, ignore_covered=True))


def test_k_center_check_rejects_a_selection_that_forgets_its_own_picks():
    def forgets(features, budget, covered):
        d = [nearest_distance(p, covered.tolist()) for p in features.tolist()]
        return sorted(range(len(d)), key=lambda i: -d[i])[:budget]
    with pytest.raises(AssertionError, match="pick"):
        checks.check_k_center(forgets)


def plain_soft_target_loss(student_logits, teacher_logits, T, factor=None, reverse=False):
    """T^2 * mean KL(p_t || q_s) in plain Python; ``factor`` replaces T^2 and ``reverse`` swaps the KL's
    arguments (wrong answers)."""
    def log_softmax(z):
        top = max(v / T for v in z)
        log_sum = top + math.log(sum(math.exp(v / T - top) for v in z))
        return [v / T - log_sum for v in z]
    total = 0.0
    for z_s, z_t in zip(student_logits.tolist(), teacher_logits.tolist()):
        log_q, log_p = log_softmax(z_s), log_softmax(z_t)
        if reverse:
            log_p, log_q = log_q, log_p
        total += sum(math.exp(lp) * (lp - lq) for lp, lq in zip(log_p, log_q))
    return (T * T if factor is None else factor) * total / len(student_logits)


def test_soft_target_loss_check():
    assert checks.check_soft_target_loss(plain_soft_target_loss).startswith("correct")
    assert checks.check_soft_target_loss(lambda zs, zt, T: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match=r"T = 2: .*factor T\^2 is missing"):
        checks.check_soft_target_loss(lambda zs, zt, T: plain_soft_target_loss(zs, zt, T, factor=1.0))
    with pytest.raises(AssertionError, match="not T$"):
        checks.check_soft_target_loss(lambda zs, zt, T: plain_soft_target_loss(zs, zt, T, factor=T))
    with pytest.raises(AssertionError, match=r"from the teacher to the student"):
        checks.check_soft_target_loss(lambda zs, zt, T: plain_soft_target_loss(zs, zt, T, reverse=True))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # the slip torch warns about
def test_soft_target_loss_check_names_torch_slips():
    def kl_div_default_mean(zs, zt, T):  # averages over samples *and* classes
        return T * T * torch.nn.functional.kl_div((zs / T).log_softmax(-1), (zt / T).softmax(-1))

    def cross_entropy(zs, zt, T):        # Hinton et al.'s H(p_t, q_s): right gradients, not 0 at a match
        return T * T * -((zt / T).softmax(-1) * (zs / T).log_softmax(-1)).sum(-1).mean()

    with pytest.raises(AssertionError, match="batchmean"):
        checks.check_soft_target_loss(kl_div_default_mean)
    with pytest.raises(AssertionError, match="T = 2: .*teacher's entropy"):
        checks.check_soft_target_loss(cross_entropy)


def test_soft_target_loss_check_accepts_a_torch_answer_and_rejects_a_vector():
    def torch_version(zs, zt, T):
        return T**2 * torch.nn.functional.kl_div((zs / T).log_softmax(-1), (zt / T).log_softmax(-1),
                                                 reduction="batchmean", log_target=True)

    def per_sample(zs, zt, T):
        p = (zt / T).softmax(-1)
        return T * T * (p * (p.log() - (zs / T).log_softmax(-1))).sum(-1)

    assert checks.check_soft_target_loss(torch_version).startswith("correct")
    with pytest.raises(AssertionError, match=r"shape \(64,\), expected a single number"):
        checks.check_soft_target_loss(per_sample)
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_soft_target_loss(lambda zs, zt, T: "0.5")
