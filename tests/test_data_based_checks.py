"""Chapter 4's lab checks accept a plain-Python reference, say "not attempted" for None and reject wrong answers."""

import math

import pytest
import torch

from collab_lib.data_based import checks


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
