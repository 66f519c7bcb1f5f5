"""On-device re-ranking of a recommendation feed: the cloud ranks with delayed behaviour, the device with
real-time in-session behaviour.

EdgeRec (Gong et al., CIKM 2020 [gong2020edgerec]) moves re-ranking into Mobile Taobao's client because
the cloud recommender receives a user's clicks and skips with a delay (up to about a minute), while the
device sees them at once and a user's interest moves within a session. This module shows that mechanism
on the synthetic sessions of :mod:`collab_lib.datasets.recsys`:

* :func:`rerank_features` builds, for every impression, the features a ranker may use *at the moment the
  impression is shown*, given a behaviour delay ``delay_s``: long-term user x category and item
  click-through rates from a history period (both sides know them), and the clicks and skips earlier in
  the same session that have reached the ranker, ``timestamp_j <= timestamp_i - delay_s``. The device is
  ``delay_s = 0``; the cloud is ``delay_s = config.cloud_delay_s``.
* :func:`fit_logistic` fits a click model on those features (Newton's method, L2-regularised).
* :func:`simulate_feed` replays the test sessions as a *policy*: the cloud delivers each session's
  candidates, the ranker repeatedly shows the best remaining candidate by its score, and the simulated
  user clicks under the generator's own click model and interest drift (common random numbers, so two
  policies differ only in their order). This gives the click-through gain a logged data set cannot.

Departures from EdgeRec, labelled: EdgeRec encodes item exposure and action sequences with GRUs and
attention and re-ranks the whole page with a context-aware model; here the ranker is a logistic regression
on five hand-made counts and re-ranks greedily one slot at a time. The candidates are the items the cloud
actually exposed in the logged session (the generator's exposure policy), not a larger retrieved pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from collab_lib.datasets.recsys import RecsysData, click_probability, next_interest

FEATURES = ("user_category_ctr", "item_ctr", "session_clicks_same", "session_skips_same",
            "session_clicks_other", "position")
"""Columns of :func:`rerank_features`: two long-term log-rates, then log1p of in-session counts and of the
feed position. The position is the same for every candidate of a slot, so it does not change a ranking;
it is there so that the fitted weights of the counts, which grow along a session, are not confounded with
the position effect."""


@dataclass(frozen=True)
class LongTermStats:
    """Smoothed click-through rates from a history period, as log-rates (natural log).

    ``user_category`` is (num_users, num_categories), ``item`` is (num_items,); ``global_ctr`` the
    pooled rate used as the smoothing prior.
    """

    user_category: np.ndarray
    item: np.ndarray
    global_ctr: float


def long_term_stats(data: RecsysData, history: np.ndarray | torch.Tensor, smoothing: float = 5.0
                    ) -> LongTermStats:
    """log((clicks + smoothing * p) / (shows + smoothing)) per user x category and per item, over the
    impressions where ``history`` (N,) bool is True; ``p`` is the pooled click-through rate of the history.
    """
    h = np.asarray(history, dtype=bool)
    if h.shape != (data.num_impressions,):
        raise ValueError(f"history must be (N,) = ({data.num_impressions},) bool, got {h.shape}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}")
    cfg = data.config
    y = data.click.numpy().astype(np.float64)[h]
    if len(y) == 0:
        raise ValueError("history selects no impression")
    p = float(y.mean()) if y.sum() > 0 else cfg.base_ctr
    uc = data.user_id.numpy()[h] * cfg.num_categories + data.category_id.numpy()[h]
    size = cfg.num_users * cfg.num_categories
    clicks_uc = np.bincount(uc, weights=y, minlength=size)
    shows_uc = np.bincount(uc, minlength=size)
    item = data.item_id.numpy()[h]
    clicks_i = np.bincount(item, weights=y, minlength=cfg.num_items)
    shows_i = np.bincount(item, minlength=cfg.num_items)
    rate = lambda c, n: np.log((c + smoothing * p) / (n + smoothing))  # noqa: E731
    return LongTermStats(rate(clicks_uc, shows_uc).reshape(cfg.num_users, cfg.num_categories),
                         rate(clicks_i, shows_i), p)


def session_counts(data: RecsysData, delay_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) clicks and (N, C) impressions per category, earlier in the same session, that a ranker with
    behaviour delay ``delay_s`` has received when impression i is shown: rows j < i of i's session with
    ``timestamp_j <= timestamp_i - delay_s``.
    """
    if not delay_s >= 0:
        raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
    C = data.config.num_categories
    session = data.session_id.numpy()
    t = data.timestamp_s.numpy()
    N = len(session)
    onehot = np.zeros((N, C))
    onehot[np.arange(N), data.category_id.numpy()] = 1.0
    clicked = onehot * data.click.numpy()[:, None]
    # Inclusive prefix sums with a zero row in front: rows a..b sum to G[b + 1] - G[a].
    G_show = np.vstack([np.zeros(C), np.cumsum(onehot, axis=0)])
    G_click = np.vstack([np.zeros(C), np.cumsum(clicked, axis=0)])
    first = np.searchsorted(session, session, side="left")  # rows are grouped by session, in time order
    # Last row j of the same session with t_j <= t_i - delay: rows are sorted by (session, time), so one
    # searchsorted on a composite key finds it. Keys are exact in float64 for these magnitudes.
    span = float(t.max() - t.min()) + 2 * (delay_s + 1.0)
    key = session * span + (t - t.min())
    j = np.searchsorted(key, key - delay_s, side="right") - 1
    j = np.minimum(j, np.arange(N) - 1)                      # strictly earlier rows: i's own click is unknown
    end = np.maximum(j + 1, first)                           # empty range when j is before the session
    return G_click[end] - G_click[first], G_show[end] - G_show[first]


def rerank_features(data: RecsysData, stats: LongTermStats, delay_s: float) -> np.ndarray:
    """(N, 6) float64 features of every impression in the order of :data:`FEATURES`, for a ranker whose
    in-session behaviour arrives ``delay_s`` late (0 = the device)."""
    clicks, shows = session_counts(data, delay_s)
    c = data.category_id.numpy()
    rows = np.arange(len(c))
    same_click = clicks[rows, c]
    same_skip = shows[rows, c] - same_click
    other_click = clicks.sum(axis=1) - same_click
    return np.column_stack([stats.user_category[data.user_id.numpy(), c], stats.item[data.item_id.numpy()],
                            np.log1p(same_click), np.log1p(same_skip), np.log1p(other_click),
                            np.log1p(data.position.numpy())])


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 25) -> np.ndarray:
    """Weights (F + 1,), bias last, minimising mean log-loss + ``l2``/2 ``|w|^2`` (bias not penalised), by
    Newton's method (iteratively reweighted least squares). ``X`` is (N, F), ``y`` (N,) in {0, 1}."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0:
        raise ValueError(f"X must be (N, F) and y (N,) with N > 0, got {X.shape} and {y.shape}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    A = np.column_stack([X, np.ones(len(X))])
    n, d = A.shape
    reg = np.full(d, l2)
    reg[-1] = 0.0
    w = np.zeros(d)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(A @ w)))
        grad = A.T @ (p - y) / n + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A / n + np.diag(reg) + 1e-10 * np.eye(d)
        step = np.linalg.solve(H, grad)
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    return w


def logit(weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(N,) scores ``X @ w[:-1] + w[-1]`` of a :func:`fit_logistic` model."""
    return np.asarray(X, dtype=np.float64) @ weights[:-1] + weights[-1]


# --- replaying sessions as a ranking policy -----------------------------------------------------------


@dataclass(frozen=True)
class FeedOutcome:
    """Clicks of one policy on each replayed session: (S,) arrays."""

    session_user: np.ndarray   # user of each session
    clicks: np.ndarray         # clicks drawn in the session
    expected_clicks: np.ndarray  # sum of the click probabilities of what was shown (less noisy)
    impressions: np.ndarray    # session length

    @property
    def ctr(self) -> float:
        """Expected click-through rate: sum of click probabilities over impressions."""
        return float(self.expected_clicks.sum() / self.impressions.sum())


def simulate_feed(data: RecsysData, sessions: np.ndarray, stats: LongTermStats, weights: np.ndarray | None,
                  delay_s: float, seed: int, candidates: int | None = None, slots: int | None = None
                  ) -> FeedOutcome:
    """Replay ``sessions`` (session ids) with a greedy ranker and the generator's simulated user.

    Each session's candidates are the items of its logged impressions. At position t the ranker scores
    every remaining candidate with ``logit(weights, features)``, the features built from the session's
    clicks and shows at positions p <= t - delay_s / gap (what has reached it), and shows the best one.
    The user's interest starts at ``theta_u`` and evolves as in :func:`collab_lib.datasets.recsys.generate`
    (:func:`~collab_lib.datasets.recsys.next_interest`: click pull ``drift``, log-normal ``noise``); the click
    is drawn from :func:`~collab_lib.datasets.recsys.click_probability`. ``weights=None`` is the *oracle*: it ranks by
    the true click probability (true current interest and item quality), a ceiling no ranker reaches. The uniforms and noise come from ``seed`` alone,
    one per (session, position), so policies replayed with the same seed see the same luck.

    ``candidates`` and ``slots`` make the cloud send a page instead of the whole session (a departure: the
    logged session is the pool): the first ``candidates`` logged items are the candidates and the feed shows
    ``slots`` of them (default: all of them), so the ranker leaves ``candidates - slots`` unshown.
    """
    cfg = data.config
    sessions = np.asarray(sessions, dtype=np.int64)
    if sessions.ndim != 1 or len(sessions) == 0:
        raise ValueError("sessions must be a non-empty 1-D array of session ids")
    oracle = weights is None
    if oracle:
        weights = np.zeros(len(FEATURES) + 1)
    if weights.shape != (len(FEATURES) + 1,):
        raise ValueError(f"weights must have shape ({len(FEATURES) + 1},), got {weights.shape}")
    if not delay_s >= 0:
        raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
    for name, v in (("candidates", candidates), ("slots", slots)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an int >= 1 or None, got {v!r}")
    if candidates is not None and slots is not None and slots > candidates:
        raise ValueError(f"slots must be <= candidates, got {slots} > {candidates}")
    sid = data.session_id.numpy()
    rows = [np.flatnonzero(sid == s)[:candidates] for s in sessions]
    if any(len(r) == 0 for r in rows):
        raise ValueError("sessions contains an id with no impression")
    S, L, C = len(sessions), max(len(r) for r in rows), cfg.num_categories
    pool = np.array([len(r) for r in rows])                                            # (S,) candidates
    length = np.minimum(pool, slots) if slots is not None else pool                     # (S,) shown
    item = np.zeros((S, L), dtype=np.int64)
    for k, r in enumerate(rows):
        item[k, : len(r)] = data.item_id.numpy()[r]
    user = data.user_id.numpy()[[r[0] for r in rows]]                                  # (S,)
    cat = data.item_category.numpy()[item]                                              # (S, L)
    available = np.arange(L)[None, :] < pool[:, None]                                   # (S, L)
    static = weights[0] * stats.user_category[user[:, None], cat] + weights[1] * stats.item[item] + weights[-1]
    quality = data.item_quality.numpy().astype(np.float64)[item] + \
        data.user_propensity.numpy().astype(np.float64)[user][:, None]                   # (S, L) logit offsets

    rng = np.random.default_rng(seed)
    u_click = rng.uniform(size=(S, L))
    eps = rng.standard_normal(size=(S, L, C))
    interest = data.user_interest.numpy().astype(np.float64)[user]                     # (S, C)
    shown_cat = np.zeros((S, L), dtype=np.int64)
    clicked = np.zeros((S, L))
    lag = delay_s / cfg.seconds_between_impressions
    clicks = np.zeros(S)
    expected = np.zeros(S)
    idx = np.arange(S)
    for t in range(int(length.max())):
        live = t < length                                                               # (S,)
        visible = (np.arange(L) < t) & (np.arange(L) <= t - lag)                        # (L,) positions seen
        onehot = np.zeros((S, C))
        np.add.at(onehot, (np.repeat(idx, L), shown_cat.ravel()), np.tile(visible, S).astype(float))
        click_c = np.zeros((S, C))
        np.add.at(click_c, (np.repeat(idx, L), shown_cat.ravel()), (clicked * visible).ravel())
        same_click = np.take_along_axis(click_c, cat, axis=1)                           # (S, L)
        same_skip = np.take_along_axis(onehot, cat, axis=1) - same_click
        other = click_c.sum(axis=1, keepdims=True) - same_click
        score = static + weights[2] * np.log1p(same_click) + weights[3] * np.log1p(same_skip) \
            + weights[4] * np.log1p(other) + weights[5] * math.log1p(t)
        if oracle:
            score = click_probability(torch.from_numpy(np.take_along_axis(interest, cat, axis=1)),
                                      torch.from_numpy(quality), t, cfg).numpy()
        score = np.where(available, score, -np.inf)
        pick = score.argmax(axis=1)                                                     # (S,) ties: first
        c = cat[idx, pick]
        p = click_probability(torch.from_numpy(interest[idx, c]), torch.from_numpy(quality[idx, pick]), t,
                              cfg).numpy()
        click = (u_click[:, t] < p) & live
        expected += np.where(live, p, 0.0)
        available[idx, pick] = False
        shown_cat[:, t] = c
        clicked[:, t] = click
        clicks += click
        interest = next_interest(interest, c, click.astype(np.float64), cfg, eps[:, t])  # the generator's dynamics
    return FeedOutcome(user, clicks, expected, length.astype(float))


CANDIDATE_BYTES = 8 + 4 + 2 * 4
"""Bytes the cloud sends per candidate for this ranker: the item id (int64), its category (int32) and the
two long-term features (float32); the in-session counts are the phone's own. Item images and text, which
a real feed also sends, are left out."""


def page_bytes(candidates: int) -> int:
    """Bytes of a page of ``candidates`` candidates sent down for re-ranking (:data:`CANDIDATE_BYTES` each)."""
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 0:
        raise ValueError(f"candidates must be an int >= 0, got {candidates!r}")
    return candidates * CANDIDATE_BYTES


def session_ids(data: RecsysData, mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """Sorted ids of the sessions with at least one impression where ``mask`` (N,) is True."""
    return np.unique(data.session_id.numpy()[np.asarray(mask, dtype=bool)])


def ctr_gain(treated: FeedOutcome, control: FeedOutcome) -> float:
    """Relative gain in expected click-through, ``ctr_treated / ctr_control - 1``, on the same sessions."""
    if not np.array_equal(treated.impressions, control.impressions):
        raise ValueError("the two outcomes must replay the same sessions")
    if control.expected_clicks.sum() == 0:
        raise ValueError("the control policy has no expected click: the gain is undefined")
    return treated.ctr / control.ctr - 1


