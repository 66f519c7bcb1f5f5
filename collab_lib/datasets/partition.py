"""Split a data set's samples across clients: IID, pathological shards, and Dirichlet label skew.

Every function returns a list of ``num_clients`` sorted int64 index arrays that together hold every sample
index exactly once, and is reproducible under its ``seed``.

* :func:`iid` — shuffle, then cut into near-equal parts.
* :func:`shards` — McMahan et al. (AISTATS 2017, arXiv:1602.05629), the "pathological non-IID" split:
  sort by label, cut into ``num_clients * shards_per_client`` shards, deal each client that many shards.
* :func:`dirichlet` — label skew controlled by a concentration ``alpha`` (Hsu, Qi and Brown 2019,
  arXiv:1909.06335: client label mix q ~ Dir(alpha * p)). Departure: Hsu et al. draw each client's label
  mix and sample with replacement; like most federated-learning code bases (e.g. NIID-Bench, Li et al.
  ICDE 2022) we draw, for each class, the clients' shares of that class ~ Dir(alpha * 1), which deals every
  sample exactly once. Small alpha: each class goes to a few clients; large alpha: close to IID.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from collab_lib._validate import non_negative_int, positive_int


def _check_clients(n: int, num_clients: int) -> None:
    positive_int("num_clients", num_clients)
    if num_clients > n:
        raise ValueError(f"num_clients ({num_clients}) is larger than the number of samples ({n})")


def _labels(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    return y


def iid(n: int, num_clients: int, seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n)`` and cut it into ``num_clients`` parts whose sizes differ by at most one."""
    positive_int("n", n)
    _check_clients(n, num_clients)
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, num_clients)]


def shards(labels: Sequence[int] | np.ndarray, num_clients: int, shards_per_client: int, seed: int) -> list[np.ndarray]:
    """McMahan et al.'s pathological split: each client gets ``shards_per_client`` label-sorted shards.

    With MNIST's 60,000 samples, 100 clients and 2 shards each, shards hold 300 samples and most clients
    see only two digits.
    """
    y = _labels(labels)
    _check_clients(len(y), num_clients)
    positive_int("shards_per_client", shards_per_client)
    num_shards = num_clients * shards_per_client
    if num_shards > len(y):
        raise ValueError(f"num_clients * shards_per_client ({num_shards}) exceeds the number of samples ({len(y)})")
    rng = np.random.default_rng(seed)
    by_label = np.argsort(y, kind="stable")          # (n,) sample indices sorted by label
    pieces = np.array_split(by_label, num_shards)    # shard sizes differ by at most one
    deal = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return [np.sort(np.concatenate([pieces[s] for s in row])) for row in deal]


def dirichlet(
    labels: Sequence[int] | np.ndarray,
    num_clients: int,
    alpha: float,
    seed: int,
    min_size: int = 1,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Label-skewed split: for each class, the clients' shares ~ Dir(alpha, ..., alpha).

    Draws are repeated (from the same seeded generator) until every client holds at least ``min_size``
    samples; after ``max_tries`` failures a ``ValueError`` says which parameter to change.
    """
    y = _labels(labels)
    _check_clients(len(y), num_clients)
    if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if non_negative_int("min_size", min_size) * num_clients > len(y):
        raise ValueError(f"min_size ({min_size}) x num_clients ({num_clients}) must be between 0 and {len(y)}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    members = [rng.permutation(np.flatnonzero(y == c)) for c in classes]  # shuffled once
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for idx in members:
            share = rng.dirichlet(np.full(num_clients, float(alpha)))       # (num_clients,)
            cuts = (np.cumsum(share)[:-1] * len(idx)).astype(int)            # boundaries into idx
            for client, piece in enumerate(np.split(idx, cuts)):
                parts[client].append(piece)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(
        f"no split with min_size={min_size} for every client after {max_tries} draws at alpha={alpha}; "
        "increase alpha, or lower min_size or num_clients"
    )


def label_counts(labels: Sequence[int] | np.ndarray, parts: Sequence[np.ndarray], num_classes: int | None = None) -> np.ndarray:
    """(num_clients, num_classes) matrix: how many samples of each class each client holds."""
    y = _labels(labels)
    k = int(y.max()) + 1 if num_classes is None else num_classes
    return np.stack([np.bincount(y[p], minlength=k) for p in parts])


def mean_label_entropy(labels: Sequence[int] | np.ndarray, parts: Sequence[np.ndarray]) -> float:
    """Average over clients of the entropy (nats) of each client's label distribution: lower = more skew."""
    counts = label_counts(labels, parts).astype(float)
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float(h.mean())
