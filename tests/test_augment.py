"""Cloud-coordinated augmentation: retrieval and domain selection against brute force, k-means at its fixed
point, user sampling against its label mix, fine-tuning leaves the global model alone, and clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from collab_lib.data_based.augment import (
    Descriptor,
    FineTuneConfig,
    apply_style,
    describe,
    domain_losses,
    features,
    fine_tune,
    kmeans,
    label_skewed_users,
    retrieve_nearest,
    retrieve_random,
    select_domains,
)
from collab_lib.seed import generator


def test_retrieve_nearest_matches_brute_force():
    g = generator(0)
    pool = torch.randn(200, 5, generator=g)
    centroids = torch.randn(3, 5, generator=g)
    got = retrieve_nearest(pool, Descriptor(centroids), 25)
    # Reference: a Python loop over pool samples and centroids.
    dist = [min(float(((p - c) ** 2).sum().sqrt()) for c in centroids) for p in pool]
    expected = sorted(range(200), key=lambda j: (dist[j], j))[:25]
    assert got.tolist() == expected


def test_retrieval_finds_the_users_cluster():
    g = generator(1)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    owner = torch.arange(300) % 3
    pool = centers[owner] + torch.randn(300, 2, generator=g)
    local = centers[1] + torch.randn(12, 2, generator=g)
    idx = retrieve_nearest(pool, describe(local, k=3, seed=0), 80)
    assert (owner[idx] == 1).all()


def test_kmeans_stops_at_a_fixed_point_of_lloyds_iteration():
    g = generator(2)
    x = torch.cat([torch.randn(50, 3, generator=g) + 6 * i for i in range(4)])
    centroids, assign = kmeans(x, 4, seed=0)
    # Each point is assigned to its nearest centroid, and each centroid is the mean of its points.
    assert torch.equal(torch.cdist(x, centroids).argmin(1), assign)
    for j in range(4):
        assert torch.allclose(centroids[j], x[assign == j].mean(0), atol=1e-5)
    assert Descriptor(centroids).bytes_up == 4 * 4 * 3


def test_select_domains_matches_sorting_and_domain_losses_match_cross_entropy():
    losses = torch.tensor([0.9, 0.1, 0.5, 0.1, 2.0])
    assert select_domains(losses, 3).tolist() == [1, 3, 2]  # ties: lower index first
    g = generator(3)
    x, y = torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)
    models = [nn.Linear(4, 3) for _ in range(3)]
    got = domain_losses(models, x, y)
    for m, value in zip(models, got):
        assert value.item() == pytest.approx(nn.functional.cross_entropy(m(x), y).item(), rel=1e-6)


def test_retrieve_random_is_distinct_and_reproducible():
    a, b = retrieve_random(100, 30, seed=4), retrieve_random(100, 30, seed=4)
    assert torch.equal(a, b) and len(set(a.tolist())) == 30 and a.max() < 100


def test_label_skewed_users_follow_their_pools_and_are_skewed():
    labels = np.repeat(np.arange(10), 60)
    rng = np.random.default_rng(0)
    perm = rng.permutation(600)
    train_pool, test_pool = perm[:300], perm[300:]
    users = label_skewed_users(labels, train_pool, test_pool, 20, 0.3, 15, 25, seed=1)
    for tr, te in users:
        assert len(tr) == 15 and len(te) == 25 and len(np.unique(tr)) == 15
        assert np.isin(tr, train_pool).all() and np.isin(te, test_pool).all()
    # Small alpha: a typical user holds few classes (IID draws of 25 would cover about 9 of 10).
    assert np.median([len(np.unique(labels[te])) for _, te in users]) <= 5


def test_apply_style_matches_torch_transforms():
    img = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    assert torch.equal(apply_style(img, 0), img)
    assert torch.equal(apply_style(img, 1), torch.flip(img, dims=[3]))
    assert torch.equal(apply_style(img, 2), torch.flip(img, dims=[2]))
    assert torch.equal(apply_style(img, 3)[0, 0], img[0, 0].T)


def test_fine_tune_returns_a_trained_copy_and_leaves_the_model_alone():
    g = generator(5)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    tuned = fine_tune(model, x, y, FineTuneConfig(steps=50, lr=1e-2))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    loss = lambda m: nn.functional.cross_entropy(m(x), y).item()  # noqa: E731
    assert loss(tuned) < loss(model)
    assert features(tuned, x).shape == (40, 8)


@pytest.mark.parametrize("call, name", [
    (lambda: retrieve_nearest(torch.zeros(5, 2), Descriptor(torch.zeros(1, 2)), 6), "m"),
    (lambda: retrieve_nearest(torch.zeros(5, 2), Descriptor(torch.zeros(1, 3)), 2), "descriptor"),
    (lambda: retrieve_random(5, 6, seed=0), "m"),
    (lambda: retrieve_random(5, 0, seed=0), "m"),
    (lambda: kmeans(torch.zeros(3, 2), 4, seed=0), "k"),
    (lambda: select_domains(torch.zeros(3), 4), "g"),
    (lambda: domain_losses([], torch.zeros(2, 2), torch.zeros(2, dtype=torch.long)), "models"),
    (lambda: apply_style(torch.zeros(1, 1, 8, 8), 4), "style"),
    (lambda: FineTuneConfig(steps=0), "steps"),
    (lambda: FineTuneConfig(lr=-1.0), "lr"),
    (lambda: label_skewed_users(np.zeros(10, int), np.arange(5), np.arange(5, 10), 2, 0.0, 2, 2, 0), "alpha"),
    (lambda: label_skewed_users(np.zeros(10, int), np.arange(5), np.arange(5, 10), 2, 1.0, 6, 2, 0), "n_train"),
    (lambda: label_skewed_users(np.zeros(10, int), np.arange(6), np.arange(5, 10), 2, 1.0, 2, 2, 0), "disjoint"),
])
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
