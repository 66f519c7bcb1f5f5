"""Chapter 4's lab checks accept a plain-Python reference, visible and hidden, say "not attempted" for None
(an error when grading), and reject wrong answers and the library's own functions."""

import math

import pytest
import torch
from torch.nn import functional as F

from collab_lib.data_based.augment import kmeans, retrieve_nearest
from collab_lib.data_based.distill import distillation_loss, soft_target_loss, train_student
from collab_lib.data_based.upload import select_diverse
from collab_lib.exercises import data_based as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def nearest_distance(point: list[float], others: list[list[float]]) -> float:
    return min(math.dist(point, o) for o in others)


# --- retrieve nearest --------------------------------------------------------------------------------------


def plain_retrieve_nearest(pool, centroids, m, farthest=False):
    """Sort by distance to the nearest centroid, in plain Python (``farthest`` reverses it: a wrong answer)."""
    pts, cs = pool.tolist(), centroids.tolist()
    d = [nearest_distance(p, cs) for p in pts]
    order = sorted(range(len(pts)), key=lambda j: (-d[j] if farthest else d[j], j))
    return order[:m]


@pytest.mark.parametrize("hidden", [False, True])
def test_retrieve_nearest_check(hidden):
    assert checks.check_retrieve_nearest(plain_retrieve_nearest, hidden=hidden).startswith("correct")
    assert checks.check_retrieve_nearest(lambda pool, c, m: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="m=[0-9]"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m, farthest=True),
                                      hidden=hidden)


def test_retrieve_nearest_check_names_wrong_order_and_shape():
    with pytest.raises(AssertionError, match="wrong order"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m)[::-1])
    with pytest.raises(AssertionError, match="expected m=3"):
        checks.check_retrieve_nearest(lambda pool, c, m: plain_retrieve_nearest(pool, c, m + 1))


def test_retrieve_nearest_hidden_check_rejects_an_answer_that_only_fits_the_visible_cases():
    """Distance to the *mean* of the centroids equals the nearest-centroid distance with one centroid: the
    first visible case; the hidden ones have several."""
    def to_mean(pool, centroids, m):
        return torch.cdist(pool, centroids.mean(0, keepdim=True))[:, 0].argsort()[:m]
    with pytest.raises(AssertionError):
        checks.check_retrieve_nearest(to_mean, hidden=True)


def test_retrieve_nearest_check_accepts_a_torch_answer():
    def torch_version(pool, centroids, m):
        return torch.cdist(pool, centroids).min(dim=1).values.argsort()[:m]
    assert checks.check_retrieve_nearest(torch_version).startswith("correct")
    assert checks.check_retrieve_nearest(torch_version, hidden=True).startswith("correct")


# --- k-means -----------------------------------------------------------------------------------------------


def plain_kmeans(x, init_centroids, iters, recompute_last=False, drop_empty=False):
    """Lloyd's rounds in plain Python. ``recompute_last`` returns the assignment to the *final* centroids,
    ``drop_empty`` moves an empty cluster's centroid to the origin (wrong answers)."""
    pts, cs = x.tolist(), init_centroids.tolist()
    assign = None
    for _ in range(iters):
        new = [min(range(len(cs)), key=lambda j: (math.dist(p, cs[j]), j)) for p in pts]
        if new == assign:
            break
        assign = new
        for j in range(len(cs)):
            members = [p for p, a in zip(pts, assign) if a == j]
            if members:
                cs[j] = [sum(v) / len(members) for v in zip(*members)]
            elif drop_empty:
                cs[j] = [0.0] * len(cs[j])
    if recompute_last:
        assign = [min(range(len(cs)), key=lambda j: (math.dist(p, cs[j]), j)) for p in pts]
    return cs, assign


@pytest.mark.parametrize("hidden", [False, True])
def test_kmeans_check(hidden):
    assert checks.check_kmeans(plain_kmeans, hidden=hidden).startswith("correct")
    assert checks.check_kmeans(lambda x, c, i: None, hidden=hidden).startswith("not attempted yet")

    def one_round_only(x, init, iters):
        return plain_kmeans(x, init, 1)
    with pytest.raises(AssertionError, match="centroid"):
        checks.check_kmeans(one_round_only, hidden=hidden)


def test_kmeans_hidden_check_catches_the_edge_cases():
    with pytest.raises(AssertionError, match="last round"):
        checks.check_kmeans(lambda x, c, i: plain_kmeans(x, c, i, recompute_last=True), hidden=True)
    with pytest.raises(AssertionError, match="loses all its points"):
        checks.check_kmeans(lambda x, c, i: plain_kmeans(x, c, i, drop_empty=True), hidden=True)

    def nan_empty(x, init, iters):  # torch's mean of no rows is NaN
        c = init.clone()
        for _ in range(iters):
            a = torch.cdist(x, c).argmin(1)
            c = torch.stack([x[a == j].mean(0) for j in range(len(c))])
        return c, a
    with pytest.raises(AssertionError, match="NaN"):
        checks.check_kmeans(nan_empty, hidden=True)


def test_kmeans_check_rejects_a_pair_in_the_wrong_form():
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_kmeans(lambda x, c, i: plain_kmeans(x, c, i)[0])


# --- distillation loss -------------------------------------------------------------------------------------


def plain_distillation_loss(z_s, z_t, labels, T, alpha, factor=None, swap=False, hot_ce=False):
    """alpha * T^2 * mean KL(p_t || q_s) + (1 - alpha) * mean CE in plain Python; ``factor`` replaces T^2,
    ``swap`` exchanges the weights and ``hot_ce`` takes the hard term at temperature T (wrong answers)."""
    def log_softmax(z, t):
        top = max(v / t for v in z)
        log_sum = top + math.log(sum(math.exp(v / t - top) for v in z))
        return [v / t - log_sum for v in z]
    kl = ce = 0.0
    for s, t, y in zip(z_s.tolist(), z_t.tolist(), labels.tolist()):
        log_q, log_p = log_softmax(s, T), log_softmax(t, T)
        kl += sum(math.exp(lp) * (lp - lq) for lp, lq in zip(log_p, log_q))
        ce -= log_softmax(s, T if hot_ce else 1.0)[y]
    n = len(labels)
    soft, hard = (T * T if factor is None else factor) * kl / n, ce / n
    a, b = (1 - alpha, alpha) if swap else (alpha, 1 - alpha)
    return a * soft + b * hard


@pytest.mark.parametrize("hidden", [False, True])
def test_distillation_loss_check(hidden):
    assert checks.check_distillation_loss(plain_distillation_loss, hidden=hidden).startswith("correct")
    assert checks.check_distillation_loss(lambda *a: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match=r"T\^2 .*missing"):
        checks.check_distillation_loss(lambda *a: plain_distillation_loss(*a, factor=1.0), hidden=hidden)


def test_distillation_loss_check_names_the_slips():
    with pytest.raises(AssertionError, match=r"alpha = 0.3: .*not the other way round"):
        checks.check_distillation_loss(lambda *a: plain_distillation_loss(*a, swap=True))
    with pytest.raises(AssertionError, match=r"plain cross-entropy at T = 1"):
        checks.check_distillation_loss(lambda *a: plain_distillation_loss(*a, hot_ce=True))

    def reverse_kl(z_s, z_t, y, T, alpha):
        return plain_distillation_loss(z_t, z_s, y, T, alpha) - (1 - alpha) * (
            F.cross_entropy(z_t, y) - F.cross_entropy(z_s, y)).item()
    with pytest.raises(AssertionError, match="from the teacher to the student"):
        checks.check_distillation_loss(reverse_kl)

    def cross_entropy_soft(z_s, z_t, y, T, alpha):
        return alpha * T * T * -((z_t / T).softmax(-1) * (z_s / T).log_softmax(-1)).sum(-1).mean() \
            + (1 - alpha) * F.cross_entropy(z_s, y)
    with pytest.raises(AssertionError, match="teacher's entropy"):
        checks.check_distillation_loss(cross_entropy_soft)


def test_distillation_loss_check_rejects_the_library_and_a_vector():
    for lib in (distillation_loss, lambda z_s, z_t, y, T, a: distillation_loss(z_s, z_t, y, T, a),
                lambda z_s, z_t, y, T, a: a * soft_target_loss(z_s, z_t, T) + (1 - a) * F.cross_entropy(z_s, y)):
        with pytest.raises(AssertionError, match="calls the library's"):
            checks.check_distillation_loss(lib)

    def per_sample(z_s, z_t, y, T, alpha):
        p = (z_t / T).softmax(-1)
        return T * T * (p * (p.log() - (z_s / T).log_softmax(-1))).sum(-1)
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_distillation_loss(per_sample)


# --- one distillation step ---------------------------------------------------------------------------------


def torch_distill_step(student, optimizer, x_l, y_l, x_t, z_t, T, alpha, zero_grad=True, factor=None,
                       after=False):
    """One step, written from the paper's formula (log-softmax KL); ``zero_grad=False``, ``factor`` in place
    of T^2 and ``after`` (return the loss after the step) are wrong answers."""
    if zero_grad:
        optimizer.zero_grad()
    log_q = (student(x_t) / T).log_softmax(-1)
    log_p = (z_t / T).log_softmax(-1)
    soft = (T * T if factor is None else factor) * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    hard = -student(x_l).log_softmax(-1).gather(1, y_l[:, None]).mean()
    loss = (1 - alpha) * hard + alpha * soft
    loss.backward()
    optimizer.step()
    if after:
        with torch.no_grad():
            log_q = (student(x_t) / T).log_softmax(-1)
            soft = T * T * (log_p.exp() * (log_p - log_q)).sum(-1).mean()
            hard = -student(x_l).log_softmax(-1).gather(1, y_l[:, None]).mean()
            return ((1 - alpha) * hard + alpha * soft).item()
    return loss.item()


@pytest.mark.parametrize("hidden", [False, True])
def test_distill_step_check(hidden):
    assert checks.check_distill_step(torch_distill_step, hidden=hidden).startswith("correct")
    assert checks.check_distill_step(lambda *a: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="not zeroed"):
        checks.check_distill_step(lambda *a: torch_distill_step(*a, zero_grad=False), hidden=hidden)


def test_distill_step_check_names_the_slips():
    with pytest.raises(AssertionError, match=r"T\^2 .*missing"):
        checks.check_distill_step(lambda *a: torch_distill_step(*a, factor=1.0))
    with pytest.raises(AssertionError, match=r"\*after\* the step"):
        checks.check_distill_step(lambda *a: torch_distill_step(*a, after=True))

    def no_step(student, optimizer, x_l, y_l, x_t, z_t, T, alpha):
        optimizer.zero_grad()
        loss = (1 - alpha) * F.cross_entropy(student(x_l), y_l)
        return loss.item() + alpha * T * T * ((z_t / T).softmax(-1) * ((z_t / T).log_softmax(-1)
                                                                        - (student(x_t) / T).log_softmax(-1))).sum(-1).mean().item()
    with pytest.raises(AssertionError, match="did not move"):
        checks.check_distill_step(no_step)


def test_distill_step_hidden_check_needs_the_optimizer_it_is_given():
    """A step that builds its own plain SGD passes the visible (SGD) cases, not the hidden momentum and Adam."""
    def own_sgd(student, optimizer, *rest):
        return torch_distill_step(student, torch.optim.SGD(student.parameters(), lr=0.1), *rest)
    assert checks.check_distill_step(own_sgd).startswith("correct")
    with pytest.raises(AssertionError, match="differ"):
        checks.check_distill_step(own_sgd, hidden=True)


def test_distill_step_check_rejects_the_library_loop():
    from collab_lib.data_based.distill import DistillConfig

    def via_library(student, optimizer, x_l, y_l, x_t, z_t, T, alpha):
        cfg = DistillConfig(targets="soft", temperature=T, alpha=alpha, steps=1, lr=0.1, batch_size=1000)
        return float(train_student(student, x_l, y_l, x_t, z_t, cfg)[0])
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_distill_step(via_library)


# --- k-center ----------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("hidden", [False, True])
def test_k_center_check(hidden):
    assert checks.check_k_center(plain_k_center, hidden=hidden).startswith("correct")
    assert checks.check_k_center(lambda f, b, c: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="cloud sample"):
        checks.check_k_center(lambda f, b, c: plain_k_center(f, b, c, ignore_covered=True), hidden=hidden)


def test_k_center_check_rejects_a_selection_that_forgets_its_own_picks():
    def forgets(features, budget, covered):
        d = [nearest_distance(p, covered.tolist()) for p in features.tolist()]
        return sorted(range(len(d)), key=lambda i: -d[i])[:budget]
    with pytest.raises(AssertionError, match="pick"):
        checks.check_k_center(forgets)


def test_k_center_check_names_a_repeated_pick():
    def repeats(features, budget, covered):
        return [plain_k_center(features, 1, covered)[0]] * budget
    with pytest.raises(AssertionError, match="picked twice"):
        checks.check_k_center(repeats)


# --- grading rules common to every check -------------------------------------------------------------------

CHECKS = [
    (checks.check_retrieve_nearest, plain_retrieve_nearest),
    (checks.check_kmeans, plain_kmeans),
    (checks.check_distillation_loss, plain_distillation_loss),
    (checks.check_distill_step, torch_distill_step),
    (checks.check_k_center, plain_k_center),
]


@pytest.mark.parametrize("check", [c for c, _ in CHECKS], ids=lambda c: c.__name__)
def test_a_blank_answer_fails_when_grading(check, monkeypatch):
    monkeypatch.setenv("COLLAB_GRADING", "1")
    for hidden in (False, True):
        with pytest.raises(AssertionError, match="not attempted"):
            check(lambda *a: None, hidden=hidden)


@pytest.mark.parametrize("check, library", [
    (checks.check_retrieve_nearest, lambda pool, c, m: retrieve_nearest(pool, checks.Descriptor(c), m)),
    (checks.check_kmeans, lambda x, c, i: kmeans(x, len(c), 0, iters=i)),
    (checks.check_k_center, select_diverse),
    (checks.check_k_center, lambda f, b, c: select_diverse(f, b, c)),
    (checks.check_distillation_loss, distillation_loss),
], ids=["retrieve_nearest", "kmeans", "select_diverse", "select_diverse lambda", "distillation_loss"])
def test_the_library_function_is_not_an_answer(check, library):
    for hidden in (False, True):
        with pytest.raises(AssertionError, match="calls the library's"):
            check(library, hidden=hidden)
