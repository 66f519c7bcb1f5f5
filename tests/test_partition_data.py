"""Partitions: exact coverage, reproducibility, the shard structure, and skew that grows as alpha shrinks."""

import numpy as np
import pytest

from collab_lib.datasets.partition import dirichlet, iid, label_counts, mean_label_entropy, shards

LABELS = np.random.default_rng(0).integers(0, 10, 3000)


def _covers_exactly_once(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


@pytest.mark.parametrize(
    "split",
    [
        lambda seed: iid(len(LABELS), 17, seed),
        lambda seed: shards(LABELS, 20, 3, seed),
        lambda seed: dirichlet(LABELS, 25, 0.3, seed),
        lambda seed: dirichlet(LABELS, 25, 100.0, seed, min_size=50),
    ],
)
def test_every_sample_exactly_once_and_reproducible(split):
    a, b, c = split(1), split(1), split(2)
    assert _covers_exactly_once(a, len(LABELS))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_iid_sizes_differ_by_at_most_one():
    sizes = [len(p) for p in iid(103, 10, 0)]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103


def test_shards_give_each_client_few_labels():
    sorted_labels = np.repeat(np.arange(10), 300)  # like MNIST sorted: 10 labels x 300
    parts = shards(sorted_labels, num_clients=50, shards_per_client=2, seed=0)
    # 100 shards of 30 samples, each within one label: a client holds at most 2 labels.
    assert all(len(np.unique(sorted_labels[p])) <= 2 for p in parts)
    assert all(len(p) == 60 for p in parts)


def test_smaller_alpha_gives_more_skew():
    entropies = [np.mean([mean_label_entropy(LABELS, dirichlet(LABELS, 20, a, s)) for s in range(3)])
                 for a in (0.05, 0.5, 5.0, 500.0)]
    assert entropies == sorted(entropies)           # lower alpha -> lower entropy (more skew)
    assert entropies[-1] > 0.95 * np.log(10)        # very large alpha: near-uniform label mix
    assert entropies[0] < 0.5 * np.log(10)


def test_min_size_is_respected():
    parts = dirichlet(LABELS, 30, 0.1, seed=3, min_size=20)
    assert min(len(p) for p in parts) >= 20


def test_label_counts_by_hand():
    labels = np.array([0, 1, 1, 2, 2, 2])
    counts = label_counts(labels, [np.array([0, 1]), np.array([2, 3, 4, 5])])
    assert counts.tolist() == [[1, 1, 0], [0, 1, 3]]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dirichlet(LABELS, 10, 0.0, 0), "alpha"),
        (lambda: dirichlet(LABELS, 10, -1.0, 0), "alpha"),
        (lambda: dirichlet(LABELS, 10, float("nan"), 0), "alpha"),
        (lambda: iid(5, 6, 0), "num_clients"),
        (lambda: shards(LABELS[:10], 11, 1, 0), "num_clients"),
        (lambda: shards(LABELS[:10], 5, 3, 0), "shards_per_client"),
        (lambda: dirichlet(LABELS[:10], 5, 0.01, 0, min_size=2, max_tries=3), "alpha"),
        (lambda: dirichlet(np.array([0.5, 1.5]), 2, 1.0, 0), "labels"),
        (lambda: iid(10, 0, 0), "num_clients"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
