"""Device -> cloud: which samples a device uploads under a budget, and what they do for the cloud model.

A phone sees far more data than it can (or may) upload. With a budget of b samples, it ranks its pool of n
candidates and sends the top b; the cloud adds them, labelled, to its training set. Three rules:

* **random** - b distinct samples uniformly: the baseline.
* **uncertainty** - the b samples on which the current cloud model (a copy of which runs on the device) is
  least sure, by the entropy of its predicted distribution, H(p) = -sum_c p_c log p_c in nats (uncertainty
  sampling, Lewis and Gale, SIGIR 1994; Settles, "Active Learning Literature Survey", 2009).
* **diversity** - greedy k-center (Sener and Savarese, ICLR 2018, arXiv:1708.00489): repeatedly take the
  sample farthest from everything the cloud already has and everything chosen so far, so the b samples
  cover the device's feature space.

Departures, labelled:

* Uploaded samples arrive with their true labels (the user's own feedback, e.g. a click or a correction);
  the cost and delay of labelling are not modelled.
* Selection is one-shot per device (one budget, one ranking); active-learning loops that retrain between
  queries are left to the reader.
* Sener and Savarese's k-center uses a robust variant with outlier budget; :func:`select_diverse` is their
  greedy 2-approximation only.
"""

from __future__ import annotations

import torch

from collab_lib._validate import non_negative_int
from collab_lib.seed import generator

#: Names of the selection strategies :func:`select` dispatches to.
STRATEGIES = ("random", "uncertainty", "diversity")


def _budget(budget: int, n: int) -> int:
    if non_negative_int("budget", budget) > n:
        raise ValueError(f"budget ({budget}) is larger than the pool of candidates ({n} samples)")
    return int(budget)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """(N, C) probabilities -> (N,) entropy in nats; 0 * log 0 counts as 0."""
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"probs must have shape (N, C) with N >= 1, got {tuple(probs.shape)}")
    p = probs.double()
    if (p < 0).any() or not torch.allclose(p.sum(dim=1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError("probs must be non-negative and sum to 1 along dim 1")
    return -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(dim=1)


def select_random(n: int, budget: int, seed: int) -> torch.Tensor:
    """(budget,) distinct int64 indices into range(n), uniformly at random."""
    budget = _budget(budget, n)
    return torch.randperm(n, generator=generator(seed))[:budget]


def select_uncertain(probs: torch.Tensor, budget: int) -> torch.Tensor:
    """(budget,) int64 indices of the highest-entropy rows of ``probs`` (N, C), most uncertain first;
    ties go to the lower index."""
    h = entropy(probs)
    budget = _budget(budget, len(h))
    return torch.sort(-h, stable=True).indices[:budget]


def select_diverse(features: torch.Tensor, budget: int, covered: torch.Tensor | None = None) -> torch.Tensor:
    """(budget,) int64 indices chosen by greedy k-center on (N, d) ``features``.

    Each step takes the candidate whose distance to its nearest already-covered point is largest, where the
    covered points are ``covered`` (M, d), e.g. the cloud's training set, and the samples chosen so far.
    With nothing covered, the first pick is the candidate farthest from the candidates' mean. Ties go to the
    lower index.
    """
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must have shape (N, d) with N >= 1, got {tuple(features.shape)}")
    budget = _budget(budget, len(features))
    f = features.detach().double()
    if covered is not None and len(covered):
        if covered.ndim != 2 or covered.shape[1] != f.shape[1]:
            raise ValueError(f"covered must have shape (M, {f.shape[1]}), got {tuple(covered.shape)}")
        dist = torch.cdist(f, covered.detach().double()).min(dim=1).values        # (N,)
    else:
        dist = (f - f.mean(dim=0)).norm(dim=1)                                      # (N,)
    chosen: list[int] = []
    for _ in range(budget):
        j = int(torch.argmax(dist))  # first maximum: the lower index on ties
        chosen.append(j)
        dist = torch.minimum(dist, (f - f[j]).norm(dim=1))
        dist[j] = -1.0  # never pick a sample twice (its distance is 0 already; -1 also beats duplicates)
    return torch.tensor(chosen, dtype=torch.int64)


def select(strategy: str, budget: int, *, probs: torch.Tensor | None = None,
           features: torch.Tensor | None = None, covered: torch.Tensor | None = None,
           seed: int = 0) -> torch.Tensor:
    """Dispatch to one of :data:`STRATEGIES`; ``probs`` for uncertainty, ``features`` for diversity (and
    for the pool size of random selection, or ``probs``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "uncertainty":
        if probs is None:
            raise ValueError("strategy 'uncertainty' needs probs")
        return select_uncertain(probs, budget)
    if strategy == "diversity":
        if features is None:
            raise ValueError("strategy 'diversity' needs features")
        return select_diverse(features, budget, covered)
    pool = features if features is not None else probs
    if pool is None:
        raise ValueError("strategy 'random' needs features or probs (for the pool size)")
    return select_random(len(pool), budget, seed)
