"""Cascades and routers: answer a query with the small (device) model or the large (cloud) model.

A *router* gives each query a score, higher = more likely to need the large model, and a threshold turns
scores into decisions: send to the large model when ``score >= threshold``. RouteLLM (Ong et al., 2024,
arXiv:2406.18665) builds every router this way (``calculate_strong_win_rate`` and a comparison) and
calibrates the threshold so that a chosen share of queries, the budget, goes to the strong model.

* A *cascade* (FrugalGPT, Chen, Zaharia and Zou, 2023, arXiv:2305.05176) runs the small model first and
  escalates when its answer looks unreliable: it decides with the answer in hand, but every escalated query
  has paid for the small model too. :class:`ConfidenceRouter` scores 1 - max softmax probability.
* A *one-shot router* (RouteLLM; Hybrid LLM, Ding et al., ICLR 2024, arXiv:2404.14618, which routes
  between a small model on an edge device and a large cloud model) decides from the query alone, before any
  model runs. :class:`LearnedRouter` is a tiny classifier of the input.

With s_i = 1 if query i goes to the large model, c_s, c_l, c_r the per-query costs of the small model, the
large model and the router, and f = mean(s) the large-model fraction, the cost per query is

    cascade:   C = c_s + f c_l                  (the small model always runs)
    one-shot:  C = c_r + (1 - f) c_s + f c_l    (the small model runs only on what is not routed)

and the accuracy is mean_i(s_i [large right on i] + (1 - s_i) [small right on i]).

Departures from the papers, labelled:

* FrugalGPT chains several LLM APIs, scores each answer with a learned model (DistilBERT on query and
  answer) and learns per-model thresholds; here there are two models and the score is the small model's own
  confidence, the usual cascade baseline.
* RouteLLM's routers predict P(the strong model's answer is preferred); Hybrid LLM predicts the quality
  gap between the two answers. :class:`LearnedRouter` predicts P(the small model is wrong | x), the label a
  classification task with ground truth provides.
* RouteLLM takes the threshold as an interpolated quantile of scores; :func:`calibrate_threshold` picks a
  threshold that realises the share closest to the budget on the calibration scores (ties: see there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from collab_lib._validate import positive_int
from collab_lib.seed import generator


@runtime_checkable
class Router(Protocol):
    """Anything with ``score(x) -> (N,) tensor`` in [0, 1]; higher = more likely to need the large model."""

    def score(self, x: torch.Tensor) -> torch.Tensor: ...


def _scores(scores: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        s = scores.detach().cpu().double().numpy()
    else:
        s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D sequence, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if s.min() < 0 or s.max() > 1:
        raise ValueError(f"scores must lie in [0, 1], got [{s.min()}, {s.max()}]")
    return s


def _unit(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0 <= value <= 1:  # also rejects NaN
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def route(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """(N,) bool: True = send to the large model, where ``score >= threshold`` (RouteLLM's ``route``).

    The comparison is in float64, so a threshold taken from float32 scores compares exactly.
    """
    t = _unit("threshold", threshold)
    return torch.from_numpy(_scores(scores) >= t)


def calibrate_threshold(scores: torch.Tensor, large_fraction: float) -> float:
    """The threshold that sends the share of ``scores`` closest to ``large_fraction`` to the large model.

    Queries with equal scores get the same decision, so only some shares are reachable: with the distinct
    scores v_1 < ... < v_m, threshold v_j sends the n_j queries scoring >= v_j. Among these (and 1.0, which
    sends none when every score is below 1) the function returns the one whose n_j / n is closest to
    ``large_fraction``, the smaller share when two are equally close. Without ties the realised share is
    therefore within half a query of the budget; with ties, within half the tie group at the boundary.
    The threshold is a score value (RouteLLM interpolates a quantile instead), except that "everything"
    is returned as 0.0 and "nothing" as 1.0, so that budgets 0 and 1 also hold on new queries.
    """
    b = _unit("large_fraction", large_fraction)
    s = np.sort(_scores(scores))                             # (n,) ascending
    v = np.unique(s)                                         # (m,) distinct scores
    sent = len(s) - np.searchsorted(s, v, side="left")       # (m,) n_j = #(scores >= v_j)
    taus = v.copy()
    taus[0] = 0.0                                            # "everything", here and on new queries
    if v[-1] < 1.0:
        taus, sent = np.append(taus, 1.0), np.append(sent, 0)
    gap = np.abs(sent - b * len(s))
    best = np.lexsort((sent, gap))[0]                        # closest share; on a tie, the smaller one
    return float(taus[best])


# --- Routers ------------------------------------------------------------------------------------------


def confidence_scores(logits: torch.Tensor) -> torch.Tensor:
    """(N,) 1 - max_c softmax(z)_c, as -expm1(max_c log_softmax(z)_c) in float64.

    ``1 - softmax`` would round every sure answer to exactly 0 (a tie for the threshold); expm1 keeps
    them apart down to logit gaps of about 700.
    """
    z = torch.as_tensor(logits).detach().double()
    if z.ndim != 2 or 0 in z.shape:
        raise ValueError(f"logits must be (N, C) and non-empty, got shape {tuple(z.shape)}")
    return -torch.expm1(torch.log_softmax(z, dim=-1).amax(dim=-1))


class ConfidenceRouter:
    """A cascade's score: run the small model, escalate when it is unsure (1 - max softmax probability)."""

    def __init__(self, small_model: nn.Module) -> None:
        self.small_model = small_model

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        return confidence_scores(self.small_model(x))


class LearnedRouter:
    """A one-shot score from the input alone: P(small model wrong | x) from a 2-output classifier ``net``."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x).double(), dim=-1)[:, 1]


class PrecomputedRouter:
    """Scores computed beforehand enter routing as the input itself: ``score(x)`` returns ``x``, checked.

    For a score that comes out of another computation (the assistant's difficulty, read off the pass that
    scores a request; the fleet's per-request draw), so that it meets the same :func:`route` and
    :func:`calibrate_threshold` as any router. ``x`` must be an (N,) sequence in [0, 1].
    """

    def score(self, x: torch.Tensor | np.ndarray | Sequence[float]) -> torch.Tensor:
        return torch.from_numpy(_scores(x).copy())  # a copy: the caller may change x later


class RandomRouter:
    """The baseline: i.i.d. uniform scores from a generator seeded once, so calls continue one stream."""

    def __init__(self, seed: int) -> None:
        self._g = generator(seed)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(x), generator=self._g, dtype=torch.float64)


# --- Training -----------------------------------------------------------------------------------------


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int,
                   batch_size: int = 64) -> np.ndarray:
    """Train ``model`` in place on cross-entropy with Adam; returns the (epochs,) mean training loss.

    The mini-batch order comes from ``seed`` only (initialise the model from its own seed).
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    g = generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = np.zeros(epochs)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            history[epoch] += loss.item() * len(idx) / len(x)
    model.eval()
    return history


def train_router(net: nn.Module, small_model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int,
                 lr: float, seed: int) -> LearnedRouter:
    """Fit ``net`` (2 outputs) to predict where ``small_model`` is wrong on ``(x, y)``; wrap it as a router.

    Train on queries whose small-model errors look like those at test time: a model that has memorised
    ``x`` makes few errors there, and the router then learns from too few positives.
    """
    with torch.no_grad():
        wrong = (small_model(x).argmax(dim=-1) != y).long()  # (N,) the router's label
    fit_classifier(net, x, wrong, epochs, lr, seed)
    return LearnedRouter(net)


# --- Outcomes and the frontier ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One routing of a data set: accuracy, share sent to the large model, mean cost per query."""

    accuracy: float
    large_fraction: float
    cost: float  # in the unit of the model costs passed in, e.g. FLOP per query


def _cost(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _correct(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = torch.as_tensor(logits)
    if z.ndim != 2 or z.shape[0] != len(labels):
        raise ValueError(f"{name} must be (N, C) with N = len(labels) = {len(labels)}, got {tuple(z.shape)}")
    return z.argmax(dim=-1) == labels


def cascade_outcome(small_logits: torch.Tensor, large_logits: torch.Tensor, labels: torch.Tensor,
                    send_to_large: torch.Tensor, small_cost: float, large_cost: float,
                    small_always_runs: bool, router_cost: float = 0.0) -> Outcome:
    """Accuracy, large-model fraction f and cost per query of a routing (formulas in the module docstring).

    ``small_always_runs``: True for a cascade (C = c_r + c_s + f c_l; c_r is usually 0, the score comes
    from the small model's output), False for a one-shot router (C = c_r + (1 - f) c_s + f c_l).
    """
    y = torch.as_tensor(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor, got shape {tuple(y.shape)}")
    small_ok = _correct("small_logits", small_logits, y)                   # (N,)
    large_ok = _correct("large_logits", large_logits, y)                   # (N,)
    s = torch.as_tensor(send_to_large)
    if s.dtype != torch.bool or s.shape != y.shape:
        raise ValueError(f"send_to_large must be a bool tensor of shape {tuple(y.shape)}, "
                         f"got {s.dtype} {tuple(s.shape)}")
    c_s, c_l = _cost("small_cost", small_cost), _cost("large_cost", large_cost)
    c_r = _cost("router_cost", router_cost)
    f = s.double().mean().item()
    correct = torch.where(s, large_ok, small_ok)
    cost = c_r + (c_s if small_always_runs else (1 - f) * c_s) + f * c_l
    return Outcome(accuracy=correct.double().mean().item(), large_fraction=f, cost=cost)


@dataclass(frozen=True)
class Policy:
    """A router and how its decisions are paid for (``small_always_runs``: a cascade)."""

    router: Router
    small_always_runs: bool
    router_cost: float = 0.0


@dataclass(frozen=True)
class Curve:
    """One policy over a sweep of budgets, (B,) arrays; the fixed policies have one point."""

    budgets: np.ndarray         # requested large fraction
    thresholds: np.ndarray      # calibrated on the calibration queries (nan for the fixed policies)
    large_fraction: np.ndarray  # realised on the evaluation queries
    accuracy: np.ndarray
    cost: np.ndarray


def _curve(budgets, thresholds, outcomes: Sequence[Outcome]) -> Curve:
    return Curve(np.asarray(budgets, float), np.asarray(thresholds, float),
                 np.array([o.large_fraction for o in outcomes]), np.array([o.accuracy for o in outcomes]),
                 np.array([o.cost for o in outcomes]))


def frontier(policies: Mapping[str, Policy], x_calibration: torch.Tensor, x_test: torch.Tensor,
             small_logits: torch.Tensor, large_logits: torch.Tensor, labels: torch.Tensor,
             small_cost: float, large_cost: float,
             budgets: Sequence[float] = tuple(np.linspace(0, 1, 21))) -> dict[str, Curve]:
    """Accuracy and cost vs budget on held-out queries, for "always small", "always large" and each policy.

    For every budget b each policy's threshold is calibrated on its scores of ``x_calibration``
    (:func:`calibrate_threshold`) and applied to its scores of ``x_test``; ``small_logits``,
    ``large_logits`` and ``labels`` belong to ``x_test``. The realised fraction is therefore an estimate
    of b, off by sampling noise with standard deviation sqrt(b (1 - b) (1 / n_cal + 1 / n_test)).
    """
    if len(budgets) == 0:
        raise ValueError("budgets is empty")
    bs = [_unit(f"budgets[{i}]", b) for i, b in enumerate(budgets)]
    n = len(x_test)
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} test queries (x_test)")
    never, always = torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)
    args, costs = (small_logits, large_logits, labels), (small_cost, large_cost)
    clash = {"always small", "always large"} & set(policies)
    if clash:
        raise ValueError(f"policies: the names {sorted(clash)} are taken by the fixed policies")
    out = {
        "always small": _curve([0.0], [np.nan], [cascade_outcome(*args, never, *costs, False)]),
        "always large": _curve([1.0], [np.nan], [cascade_outcome(*args, always, *costs, False)]),
    }
    for name, p in policies.items():
        cal, test = p.router.score(x_calibration), p.router.score(x_test)
        thresholds = [calibrate_threshold(cal, b) for b in bs]
        outcomes = [cascade_outcome(*args, route(test, t), *costs, p.small_always_runs, p.router_cost)
                    for t in thresholds]
        out[name] = _curve(bs, thresholds, outcomes)
    return out


def cheapest_reaching(curve: Curve, accuracy: float) -> int | None:
    """Index of the lowest-cost point of ``curve`` with accuracy >= ``accuracy`` (None if no point does)."""
    ok = np.flatnonzero(curve.accuracy >= accuracy)
    return None if ok.size == 0 else int(ok[np.argmin(curve.cost[ok])])
