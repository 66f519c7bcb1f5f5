"""Upload selection: uncertainty against a sort by hand-computed entropy, greedy k-center against a slow
reference, random selection, and clear errors (a budget larger than the pool)."""

import math

import pytest
import torch

from collab_lib.data_based.upload import entropy, select, select_diverse, select_random, select_uncertain
from collab_lib.seed import generator


def test_entropy_by_hand():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert entropy(p).tolist() == pytest.approx([0.0, math.log(2), math.log(3)])


def test_uncertainty_picks_the_highest_entropy_rows():
    probs = torch.randn(50, 10, generator=generator(0)).mul(3).softmax(1)
    h = [-sum(v * math.log(v) for v in row if v > 0) for row in probs.double().tolist()]
    expected = sorted(range(50), key=lambda i: (-h[i], i))[:7]
    assert select_uncertain(probs, 7).tolist() == expected


def slow_k_center(points, budget, covered):
    """Reference: recompute every distance from scratch at every step, in plain Python."""
    def dist(a, b):
        return math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)))
    chosen = []
    for _ in range(budget):
        centers = covered + [points[j] for j in chosen]
        gaps = [-1.0 if j in chosen else min(dist(p, c) for c in centers) for j, p in enumerate(points)]
        chosen.append(max(range(len(points)), key=lambda j: (gaps[j], -j)))
    return chosen


def test_k_center_matches_a_slow_reference():
    g = generator(1)
    pts, cov = torch.randn(60, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    got = select_diverse(pts, 10, covered=cov).tolist()
    assert got == slow_k_center(pts.tolist(), 10, cov.tolist())


def test_k_center_covers_separated_clusters_first():
    g = generator(2)
    centers = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    owner = torch.arange(200) % 4
    pts = centers[owner] + 0.5 * torch.randn(200, 2, generator=g)
    assert sorted(owner[select_diverse(pts, 4)].tolist()) == [0, 1, 2, 3]


def test_random_is_distinct_reproducible_and_dispatch_agrees():
    a = select_random(100, 40, seed=3)
    assert len(set(a.tolist())) == 40 and torch.equal(a, select_random(100, 40, seed=3))
    probs = torch.full((100, 4), 0.25)
    assert torch.equal(select("random", 40, probs=probs, seed=3), a)
    assert torch.equal(select("uncertainty", 5, probs=probs), select_uncertain(probs, 5))
    assert select_random(10, 0, seed=0).numel() == 0


@pytest.mark.parametrize("call, name", [
    (lambda: select_random(10, 11, seed=0), "budget"),
    (lambda: select_random(10, -1, seed=0), "budget"),
    (lambda: select_uncertain(torch.full((3, 2), 0.5), 4), "budget"),
    (lambda: select_diverse(torch.zeros(3, 2), 4), "budget"),
    (lambda: select_diverse(torch.zeros(3, 2), 1, covered=torch.zeros(2, 3)), "covered"),
    (lambda: entropy(torch.tensor([[0.7, 0.7]])), "probs"),
    (lambda: select("entropy", 1, probs=torch.full((3, 2), 0.5)), "strategy"),
    (lambda: select("uncertainty", 1), "probs"),
    (lambda: select("diversity", 1), "features"),
])
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
