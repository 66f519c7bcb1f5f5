"""Metrics that look at each user and each device, not only at the global average.

* :func:`accuracy` — share of samples whose argmax logit is the label, for a classifier on a batch.
* :func:`auc` — area under the ROC curve as the Mann–Whitney statistic: the probability that a random
  positive scores above a random negative, ties counting one half.
* :func:`gauc` — group AUC (Zhu et al., KDD 2017; used by DIN, Zhou et al., KDD 2018):
  GAUC = sum_u w_u AUC_u / sum_u w_u, where w_u is user u's number of impressions and users whose labels
  are all positive or all negative (AUC undefined) are dropped.
* :func:`per_user` — any metric computed separately for each user, as a distribution.
* :func:`percentiles`, :func:`fairness` — summaries of that distribution (the 10th-percentile user, the
  worst decile, the variance across users as in q-FFL, Li et al., ICLR 2020).
* :func:`fleet_summary` — p50/p90/p99 of a per-device quantity such as latency, energy or bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by accuracy when it runs: the other metrics need numpy only
    import torch
    from torch import nn

ArrayLike = Sequence[float] | np.ndarray


def _vector(name: str, values: ArrayLike, dtype=float) -> np.ndarray:
    v = np.asarray(values, dtype=dtype)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {v.shape}")
    if v.dtype.kind == "f" and np.isnan(v).any():
        raise ValueError(f"{name} contain NaN")
    return v


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {lengths}")


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` (N, ...) whose argmax logit ``model(x)`` (N, C) equals the label ``y`` (N,), in [0, 1].

    ``model`` runs in eval mode without gradients and is handed back in the mode it was in, so this can be
    called between training steps.
    """
    import torch

    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return (model(x).argmax(dim=-1) == y).double().mean().item()
    finally:
        model.train(was_training)


def auc(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None) -> float:
    """AUC of ``scores`` for binary ``labels`` (0/1), optionally with per-sample ``weights``.

    Weighted, it is sum_{i pos, j neg} w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (sum_pos w)(sum_neg w),
    computed in O(n log n) by sorting. Raises ``ValueError`` if only one class is present.
    """
    y = _vector("labels", labels)
    s = _vector("scores", scores)
    w = np.ones_like(s) if weights is None else _vector("weights", weights)
    _same_length(labels=y, scores=s, weights=w)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if (w < 0).any():
        raise ValueError("weights must be >= 0")
    order = np.argsort(s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first index of each group of tied scores
    pos = np.add.reduceat(w * y, starts)                      # positive weight per score group
    neg = np.add.reduceat(w * (1 - y), starts)                # negative weight per score group
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        raise ValueError("AUC is undefined with only one class present")
    neg_below = np.cumsum(neg) - neg                          # negatives strictly below each group
    return float((pos * (neg_below + 0.5 * neg)).sum() / (total_pos * total_neg))


def _groups(user_ids: ArrayLike) -> tuple[np.ndarray, list[np.ndarray]]:
    u = np.asarray(user_ids)
    if u.ndim != 1:
        raise ValueError(f"user_ids must be 1-D, got shape {u.shape}")
    users, inverse = np.unique(u, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(users)))[:-1]
    return users, np.split(order, bounds)


@dataclass(frozen=True)
class PerUser:
    """A metric per user. ``users[i]`` has ``values[i]`` over ``counts[i]`` samples; ``dropped`` users had
    no defined value (e.g. AUC with one class)."""

    users: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    dropped: np.ndarray


def per_user(metric: Callable[..., float], user_ids: ArrayLike, *columns: ArrayLike) -> PerUser:
    """Apply ``metric(*columns_of_user)`` to each user's rows; users where it raises ``ValueError`` drop out.

    Example: ``per_user(auc, user_ids, labels, scores)``, or for the share of correct predictions
    ``per_user(lambda t, p: float((t == p).mean()), user_ids, y_true, y_pred)``.
    """
    if not columns:
        raise ValueError("per_user needs at least one data column after user_ids")
    cols = [np.asarray(c) for c in columns]
    _same_length(user_ids=np.asarray(user_ids), **{f"columns[{i}]": c for i, c in enumerate(cols)})
    users, rows = _groups(user_ids)
    kept, values, counts, dropped = [], [], [], []
    for user, r in zip(users, rows):
        try:
            values.append(metric(*(c[r] for c in cols)))
        except ValueError:
            dropped.append(user)
            continue
        kept.append(user)
        counts.append(len(r))
    return PerUser(np.asarray(kept), np.asarray(values, dtype=float), np.asarray(counts, dtype=int), np.asarray(dropped))


def gauc(
    user_ids: ArrayLike,
    labels: ArrayLike,
    scores: ArrayLike,
    weights: str | Mapping[object, float] | None = None,
) -> float:
    """Group AUC: the weighted mean of per-user AUCs over users with both classes.

    ``weights``: ``None`` or ``"impressions"`` (w_u = number of u's samples, Zhu et al.), ``"clicks"``
    (w_u = number of positives), or a mapping user -> weight.
    """
    y = _vector("labels", labels)
    s = _vector("scores", scores)
    _same_length(user_ids=np.asarray(user_ids), labels=y, scores=s)
    pu = per_user(auc, user_ids, y, s)
    if len(pu.users) == 0:
        raise ValueError("GAUC is undefined: no user has both a positive and a negative label")
    if weights is None or weights == "impressions":
        w = pu.counts.astype(float)
    elif weights == "clicks":
        positives = dict(zip(*_positives(user_ids, y)))
        w = np.array([positives[u] for u in pu.users], dtype=float)
    elif isinstance(weights, Mapping):
        missing = [u for u in pu.users if u not in weights]
        if missing:
            raise ValueError(f"weights has no entry for users {missing[:5]}")
        w = np.array([weights[u] for u in pu.users], dtype=float)
    else:
        raise ValueError(f"weights must be None, 'impressions', 'clicks' or a mapping, got {weights!r}")
    return float((w * pu.values).sum() / w.sum())


def _positives(user_ids: ArrayLike, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    users, rows = _groups(user_ids)
    return users, np.array([y[r].sum() for r in rows])


def percentiles(values: ArrayLike, qs: Sequence[float] = (10, 50, 90)) -> dict[float, float]:
    """``{q: q-th percentile}`` with linear interpolation (NumPy's default)."""
    v = _vector("values", values)
    if v.size == 0:
        raise ValueError("values is empty")
    if any(not 0 <= q <= 100 for q in qs):
        raise ValueError(f"percentiles must be in [0, 100], got {list(qs)}")
    return {q: float(np.percentile(v, q)) for q in qs}


@dataclass(frozen=True)
class Fairness:
    """How evenly a metric is spread over users (higher values = better for the user)."""

    mean: float
    variance: float
    p10: float
    worst_decile_mean: float
    best_decile_mean: float


def fairness(values: ArrayLike, higher_is_better: bool = True) -> Fairness:
    """Mean, variance across users (q-FFL's fairness measure), 10th percentile and decile means.

    The worst decile is the ceil(n/10) users with the lowest values (highest if ``higher_is_better`` is
    False, e.g. for a loss); ``p10`` is the 10th percentile of the values in the "better" direction.
    """
    v = _vector("values", values)
    if v.size == 0:
        raise ValueError("values is empty")
    k = int(np.ceil(v.size / 10))
    ranked = np.sort(v) if higher_is_better else np.sort(v)[::-1]  # worst first
    return Fairness(
        mean=float(v.mean()),
        variance=float(v.var()),
        p10=float(np.percentile(v, 10 if higher_is_better else 90)),
        worst_decile_mean=float(ranked[:k].mean()),
        best_decile_mean=float(ranked[-k:].mean()),
    )


@dataclass(frozen=True)
class FleetSummary:
    """Distribution of a per-device quantity over a fleet, in the quantity's own unit."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float


def fleet_summary(values: ArrayLike) -> FleetSummary:
    """p50/p90/p99, mean and max of a per-device (or per-request) quantity, e.g. ``latency_s``."""
    v = _vector("values", values)
    if v.size == 0:
        raise ValueError("values is empty")
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return FleetSummary(n=int(v.size), mean=float(v.mean()), p50=float(p50), p90=float(p90), p99=float(p99), max=float(v.max()))
