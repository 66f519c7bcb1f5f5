"""Synthetic(alpha, beta) against the generating formulas of the FedProx paper."""

import numpy as np
import pytest
import torch

from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.datasets.users import UserDatasets


def test_labels_are_the_argmax_of_each_users_own_model():
    data, truth = fedprox_synthetic(1.0, 1.0, num_users=50, seed=0, max_samples_per_user=400)
    agree, total = 0, 0
    for k, (x, y) in enumerate(zip(data.xs, data.ys)):
        pred = (x.double() @ truth.W[k].double().T + truth.b[k].double()).argmax(1)
        agree += int((pred == y).sum())
        total += len(y)
    assert agree / total > 0.999  # x was stored as float32 after labelling: rare near-ties may flip


def test_user_sizes_follow_the_lognormal_plus_50_of_the_reference_generator():
    data, _ = fedprox_synthetic(0.5, 0.5, num_users=4000, seed=1, dim=2)
    n = data.sizes.numpy()
    assert n.min() >= 50
    assert np.median(n) == pytest.approx(np.exp(4) + 50, rel=0.1)  # median of LogNormal(4, 2) is e^4
    capped, _ = fedprox_synthetic(0.5, 0.5, num_users=200, seed=1, dim=2, max_samples_per_user=120)
    assert capped.sizes.max() <= 120


def test_input_covariance_is_diag_j_to_the_minus_1_2():
    data, truth = fedprox_synthetic(1.0, 1.0, num_users=300, seed=2, max_samples_per_user=300)
    centred = torch.cat([x - truth.v[k] for k, x in enumerate(data.xs)])
    j = torch.arange(1, 61, dtype=torch.float64)
    assert torch.allclose(centred.double().var(0), j ** -1.2, rtol=0.05)


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_alpha_spreads_the_models_and_beta_the_inputs(alpha, beta):
    # W_k's mean over its 600 entries ~ N(u_k, 1/600), u_k ~ N(0, alpha): spread^2 = alpha^2 + 1/600.
    # v_k's mean over its 60 entries ~ N(B_k, 1/60), B_k ~ N(0, beta):   spread^2 = beta^2 + 1/60.
    _, truth = fedprox_synthetic(alpha, beta, num_users=2000, seed=3, max_samples_per_user=50)
    w_spread = truth.W.double().mean(dim=(1, 2)).std().item()
    v_spread = truth.v.double().mean(dim=1).std().item()
    assert w_spread == pytest.approx(np.sqrt(alpha**2 + 1 / 600), rel=0.1)
    assert v_spread == pytest.approx(np.sqrt(beta**2 + 1 / 60), rel=0.1)


def test_iid_variant_shares_one_model_and_zero_means():
    _, truth = fedprox_synthetic(1.0, 1.0, num_users=5, seed=4, iid=True)
    assert all(torch.equal(truth.W[0], w) for w in truth.W) and torch.count_nonzero(truth.v) == 0


def test_reproducible_under_seed():
    a, _ = fedprox_synthetic(1.0, 1.0, 20, seed=5)
    b, _ = fedprox_synthetic(1.0, 1.0, 20, seed=5)
    c, _ = fedprox_synthetic(1.0, 1.0, 20, seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a.xs, b.xs))
    assert not torch.equal(a.sizes, c.sizes)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(alpha=-1.0), "alpha"), (dict(beta=float("nan")), "beta"), (dict(num_users=0), "num_users"),
     (dict(num_classes=1), "num_classes"), (dict(max_samples_per_user=0), "max_samples_per_user")],
)
def test_bad_input_raises(kwargs, match):
    args = dict(alpha=1.0, beta=1.0, num_users=3, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        fedprox_synthetic(**args)


def test_user_datasets_pool_and_split():
    x = (torch.arange(6.0).reshape(6, 1), torch.arange(4.0).reshape(4, 1))
    y = (torch.arange(6), torch.arange(4))
    data = UserDatasets(x, y, ("a", "b"))
    px, py, uid = data.pooled()
    assert uid.tolist() == [0] * 6 + [1] * 4 and torch.equal(px[6:], x[1])
    train, test = data.split(0.5, seed=0)
    assert train.sizes.tolist() == [3, 2] and test.sizes.tolist() == [3, 2]
    for k in range(2):  # train and test partition each user's samples
        assert sorted(torch.cat([train.ys[k], test.ys[k]]).tolist()) == y[k].tolist()
    with pytest.raises(ValueError, match="inputs but"):
        UserDatasets((torch.zeros(2, 1),), (torch.zeros(3),), ("a",))
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(1.0, seed=0)
