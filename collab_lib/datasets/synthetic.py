"""Synthetic(alpha, beta): the federated classification data set defined in FedProx.

Li, Sahu, Zaheer, Sanjabi, Talwalkar and Smith, "Federated Optimization in Heterogeneous Networks",
MLSys 2020 (arXiv:1812.06127), Section 5.1, after Shamir et al. (2014). Each user k has its own softmax
regression model and its own input distribution:

    y = argmax softmax(W_k x + b_k),   x in R^60, W_k in R^{10 x 60}, b_k in R^10
    W_k, b_k ~ N(u_k, 1) elementwise,   u_k ~ N(0, alpha)
    x_k ~ N(v_k, Sigma),   Sigma = diag(j^-1.2),   v_k elementwise ~ N(B_k, 1),   B_k ~ N(0, beta)

``alpha`` sets how much the users' models differ, ``beta`` how much their inputs differ. Variable names
follow the paper. Following the authors' generator (FedProx repository, data/synthetic_*/generate_niid.py):
the second argument of N(., .) is used as a standard deviation, and user k has
floor(LogNormal(4, 2)) + 50 samples, a heavy-tailed size distribution (the paper calls it a power law).
``iid=True`` gives the paper's Synthetic-IID: one shared W, b and v = 0 for every user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from collab_lib._validate import positive_int
from collab_lib.datasets.users import UserDatasets


@dataclass(frozen=True)
class SyntheticTruth:
    """The generating parameters, for checks and for an oracle per-user model."""

    W: torch.Tensor  # (num_users, num_classes, dim)
    b: torch.Tensor  # (num_users, num_classes)
    v: torch.Tensor  # (num_users, dim) input means
    sigma_diag: torch.Tensor  # (dim,) input variances j^-1.2


def samples_per_user(num_users: int, rng: np.random.Generator, max_samples: int | None = None) -> np.ndarray:
    """floor(LogNormal(mean=4, sigma=2)) + 50 per user (FedProx's generator), optionally capped."""
    n = rng.lognormal(4, 2, num_users).astype(np.int64) + 50
    return np.minimum(n, max_samples) if max_samples is not None else n


def fedprox_synthetic(
    alpha: float,
    beta: float,
    num_users: int,
    seed: int,
    *,
    dim: int = 60,
    num_classes: int = 10,
    max_samples_per_user: int | None = None,
    iid: bool = False,
) -> tuple[UserDatasets, SyntheticTruth]:
    """Generate Synthetic(alpha, beta) for ``num_users`` users.

    Returns per-user inputs (n_k, dim) in torch's default float dtype and int64 labels (n_k,), and the generating parameters.
    ``max_samples_per_user`` caps the heavy tail of user sizes (no cap in the paper).
    """
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    for name, value in (("num_users", num_users), ("dim", dim), ("num_classes", num_classes)):
        positive_int(name, value)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if max_samples_per_user is not None:
        positive_int("max_samples_per_user", max_samples_per_user)

    rng = np.random.default_rng(seed)
    n_k = samples_per_user(num_users, rng, max_samples_per_user)       # (K,)
    u = rng.normal(0, alpha, num_users)                                # (K,) model means
    B = rng.normal(0, beta, num_users)                                 # (K,) input-mean means
    sigma_diag = np.arange(1, dim + 1, dtype=float) ** -1.2            # (dim,)
    if iid:
        v = np.zeros((num_users, dim))
        W = np.broadcast_to(rng.normal(0, 1, (num_classes, dim)), (num_users, num_classes, dim))
        b = np.broadcast_to(rng.normal(0, 1, num_classes), (num_users, num_classes))
    else:
        v = rng.normal(B[:, None], 1, (num_users, dim))                          # (K, dim)
        W = rng.normal(u[:, None, None], 1, (num_users, num_classes, dim))       # (K, C, dim)
        b = rng.normal(u[:, None], 1, (num_users, num_classes))                  # (K, C)

    # All users' inputs in one draw: x = v_k + sqrt(Sigma) z, then split by user.
    owner = np.repeat(np.arange(num_users), n_k)                                # (N,)
    x = v[owner] + rng.standard_normal((len(owner), dim)) * np.sqrt(sigma_diag)  # (N, dim)
    x_k = np.split(x, np.cumsum(n_k)[:-1])                                       # K x (n_k, dim)
    # softmax is monotone, so argmax softmax(W_k x + b_k) = argmax of the logits.
    y_k = [(xk @ W[k].T + b[k]).argmax(axis=1) for k, xk in enumerate(x_k)]      # K x (n_k,)

    dtype = torch.get_default_dtype()
    xs = tuple(torch.from_numpy(p).to(dtype) for p in x_k)
    ys = tuple(torch.from_numpy(p.astype(np.int64)) for p in y_k)
    names = tuple(f"user{k}" for k in range(num_users))
    truth = SyntheticTruth(
        W=torch.from_numpy(np.ascontiguousarray(W)).to(dtype),
        b=torch.from_numpy(np.ascontiguousarray(b)).to(dtype),
        v=torch.from_numpy(v).to(dtype),
        sigma_diag=torch.from_numpy(sigma_diag).to(dtype),
    )
    return UserDatasets(xs, ys, names), truth
