"""Mobile e-commerce sessions whose in-session interest drifts, seen at once by the device, late by the cloud.

EdgeRec (Gong, Yu et al., "EdgeRec: Recommender System on Edge in Mobile Taobao", CIKM 2020
[gong2020edgerec]) re-ranks the feed on the phone because the cloud recommender sees a user's behaviour
with a delay of up to about a minute, while the device sees it at once, and a user's interest moves
within a session. This module is a *synthetic* generator inspired by that setting; it does not reproduce
Taobao data or its statistics.

The generative story, for each user ``u`` with long-term interest ``theta_u ~ Dirichlet(alpha)`` over
the ``C`` categories (``alpha = interest_concentration``; smaller is more peaked):

1. ``sessions_per_user`` sessions of ``1 + Poisson(impressions_per_session - 1)`` impressions each,
   spread at random over ``[0, horizon_s)`` without overlapping; impressions of a session are
   ``seconds_between_impressions`` apart, at feed positions ``0, 1, 2, ...``.
2. The cloud recommender picks what to show from what it knows, the long-term interest: the category of
   every impression is drawn from ``(1 - explore) * theta_u + explore / C`` and the item uniformly within
   that category. It does not follow the in-session drift: that is the gap on-device re-ranking closes.
3. The user clicks with probability (the click model, :func:`click_probability`)::

       P(click) = sigmoid( logit(base_ctr)
                           + interest_weight * log(C * max(interest, INTEREST_FLOOR))
                           + quality[item] + propensity[user]
                           - position_decay * log(1 + position) )

   where ``interest`` is the current in-session interest in the item's category and
   ``quality[item] ~ Normal(0, quality_std)`` and ``propensity[user] ~ Normal(0, user_propensity_std)``
   (some users click more readily than others, whatever is shown: the between-user difference that makes
   a global AUC differ from GAUC). A user with uniform interest (``1/C``) clicks an average
   item at position 0 with probability ``base_ctr``.
4. After each impression the in-session interest ``I`` (a distribution over categories, starting at
   ``theta_u``) moves (:func:`next_interest`): a click on category ``c`` pulls it toward ``c``, ``I <- (1 - drift) I + drift e_c``;
   then random drift, ``I <- normalize(I * exp(noise * eps))`` with ``eps ~ Normal(0, 1)`` per category.
   With ``drift = noise = 0`` the interest stays ``theta_u`` for the whole session.

Sizes: the expected number of impressions is ``num_users * sessions_per_user * impressions_per_session``
(:attr:`RecsysConfig.expected_impressions`); pick ``num_users`` for a target. The count's standard
deviation is ``sqrt(num_sessions * (impressions_per_session - 1))``, well under 1% for any lab-sized set.

Adjustments to the original design: ``explore`` (the exposure policy), ``horizon_s`` (the time span of
each user's sessions), the per-user ``user_interest`` table in :class:`RecsysData` and the per-user click
propensity were added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from collab_lib._validate import non_negative_int, positive_int

INTEREST_FLOOR = 1e-6
"""Interest below this counts as this in the click model, so that ``log`` stays finite."""


@dataclass(frozen=True)
class RecsysConfig:
    """Sizes, timing, interest dynamics and click model of the generator (see the module docstring)."""

    num_users: int = 1000
    num_items: int = 5000
    num_categories: int = 20
    sessions_per_user: int = 5
    impressions_per_session: float = 20.0  # mean; every session has at least one impression
    seconds_between_impressions: float = 3.0
    horizon_s: float = 7 * 86400.0  # each user's sessions fall in [0, horizon_s)
    interest_concentration: float = 0.3  # Dirichlet alpha of theta_u
    drift: float = 0.3  # in [0, 1]: pull of a click toward its category
    noise: float = 0.1  # std of the log-normal random drift per impression
    explore: float = 0.2  # in [0, 1]: share of impressions whose category ignores theta_u
    base_ctr: float = 0.05  # in (0, 1)
    interest_weight: float = 1.0
    quality_std: float = 0.5
    user_propensity_std: float = 0.5  # std of a per-user logit offset: how readily a user clicks
    position_decay: float = 0.3
    cloud_delay_s: float = 60.0  # EdgeRec: "up to about a minute"

    def __post_init__(self) -> None:
        for name in ("num_users", "num_items", "num_categories", "sessions_per_user"):
            positive_int(name, getattr(self, name))
        if self.num_items < self.num_categories:  # every category needs at least one item
            raise ValueError(
                f"num_items ({self.num_items}) must be >= num_categories ({self.num_categories})"
            )
        if not self.impressions_per_session >= 1:
            raise ValueError(f"impressions_per_session must be >= 1, got {self.impressions_per_session!r}")
        for name in ("seconds_between_impressions", "horizon_s", "interest_concentration"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("noise", "interest_weight", "quality_std", "user_propensity_std", "position_decay", "cloud_delay_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("drift", "explore"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0 < self.base_ctr < 1:
            raise ValueError(f"base_ctr must be in (0, 1), got {self.base_ctr!r}")

    @property
    def expected_impressions(self) -> float:
        """Mean number of impressions ``generate`` yields for this configuration."""
        return self.num_users * self.sessions_per_user * self.impressions_per_session


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare with
class RecsysData:
    """Impressions, one row per item shown, grouped by user and sorted by time within each user.

    Attributes
    ----------
    user_id, session_id, item_id, category_id, position : torch.Tensor
        (N,) int64. ``session_id`` is unique across users; ``position`` is the feed slot, 0 at a
        session's start.
    timestamp_s : torch.Tensor
        (N,) float64, seconds since the start of the horizon; sessions of different users interleave.
    click : torch.Tensor
        (N,) in torch's default float dtype, 1.0 if the user clicked.
    interest : torch.Tensor
        (N,) in torch's default float dtype, ground truth: the user's in-session interest in the shown category just before
        the impression, i.e. the ``interest`` the click model used.
    item_category : torch.Tensor
        (num_items,) int64, category of every item.
    item_quality : torch.Tensor
        (num_items,) in torch's default float dtype, latent quality (a logit offset) of every item.
    user_interest : torch.Tensor
        (num_users, num_categories) in torch's default float dtype, long-term interest ``theta_u``; rows sum to 1.
    user_propensity : torch.Tensor
        (num_users,) in torch's default float dtype, the user's logit offset in the click model.
    config : RecsysConfig
        The configuration the data was generated with.
    """

    user_id: torch.Tensor
    session_id: torch.Tensor
    item_id: torch.Tensor
    category_id: torch.Tensor
    position: torch.Tensor
    timestamp_s: torch.Tensor
    click: torch.Tensor
    interest: torch.Tensor
    item_category: torch.Tensor
    item_quality: torch.Tensor
    user_interest: torch.Tensor
    user_propensity: torch.Tensor
    config: RecsysConfig

    def __post_init__(self) -> None:
        n = self.user_id.shape
        for f in fields(self)[:8]:  # the per-impression columns
            if getattr(self, f.name).shape != n or len(n) != 1:
                raise ValueError(f"{f.name} must be 1-D with the shape of user_id {tuple(n)}, "
                                 f"got {tuple(getattr(self, f.name).shape)}")

    @property
    def num_impressions(self) -> int:
        return int(self.user_id.shape[0])


def click_probability(
    interest: torch.Tensor, item_quality: torch.Tensor, position: torch.Tensor | int, config: RecsysConfig
) -> torch.Tensor:
    """P(click) of the click model in the module docstring, elementwise (float64).

    Parameters
    ----------
    interest : torch.Tensor
        In-session interest in the shown item's category, in [0, 1].
    item_quality : torch.Tensor
        Latent quality of the shown item (a logit offset).
    position : torch.Tensor or int
        Feed position, 0 at the top.
    config : RecsysConfig
        Supplies ``base_ctr``, ``interest_weight``, ``position_decay`` and ``num_categories``.
    """
    interest = torch.as_tensor(interest, dtype=torch.float64).clamp(min=INTEREST_FLOOR)
    position = torch.as_tensor(position, dtype=torch.float64)
    logit = (
        math.log(config.base_ctr / (1 - config.base_ctr))
        + config.interest_weight * torch.log(config.num_categories * interest)
        + torch.as_tensor(item_quality, dtype=torch.float64)
        - config.position_decay * torch.log1p(position)
    )
    return torch.sigmoid(logit)



def next_interest(interest: torch.Tensor | np.ndarray, shown: torch.Tensor | np.ndarray,
                  clicked: torch.Tensor | np.ndarray, config: RecsysConfig,
                  eps: np.ndarray | None = None) -> torch.Tensor | np.ndarray:
    """Step 4 of the module docstring for n sessions at once: the in-session interest after one impression.

    A click pulls the interest toward the shown category, ``I <- (1 - drift) I + drift e_c``; then random
    drift, ``I <- normalize(I * exp(noise * eps))``. Each step is skipped when its ``config`` weight is 0.

    Parameters
    ----------
    interest : torch.Tensor or numpy.ndarray
        (n, C) float64 in-session interest, rows summing to 1. The result is of the same kind; ``interest``
        itself is never written to.
    shown : torch.Tensor or numpy.ndarray
        (n,) int64 category shown to each session.
    clicked : torch.Tensor or numpy.ndarray
        (n,) float64, 1 where the user clicked.
    config : RecsysConfig
        Supplies ``drift`` and ``noise``.
    eps : numpy.ndarray, optional
        (n, C) standard normal draws; needed when ``config.noise > 0``.
    """
    is_torch = isinstance(interest, torch.Tensor)
    rows = torch.arange(len(interest)) if is_torch else np.arange(len(interest))
    if config.drift > 0:
        pull = config.drift * clicked                                     # (n,)
        interest = interest * (1 - pull)[:, None]
        interest[rows, shown] += pull
    if config.noise > 0:
        if eps is None:
            raise ValueError("eps (n, C) standard normal draws are needed when config.noise > 0")
        factor = np.exp(config.noise * eps)                               # (n, C)
        if is_torch:
            interest = interest * torch.from_numpy(factor)
            interest = interest / interest.sum(dim=1, keepdim=True)
        else:
            interest = interest * factor
            interest = interest / interest.sum(axis=1, keepdims=True)
    return interest

def generate(config: RecsysConfig, seed: int) -> RecsysData:
    """Draw users, items, sessions, impressions and clicks; see the module docstring for the model.

    All randomness comes from ``numpy.random.default_rng(seed)``; global random state is untouched.
    """
    non_negative_int("seed", seed)
    rng = np.random.default_rng(seed)
    cfg = config
    U, S, C = cfg.num_users, cfg.sessions_per_user, cfg.num_categories

    # Items: categories as equal as possible (none empty), in random order.
    item_category = rng.permutation(np.arange(cfg.num_items) % C)  # (num_items,)
    item_quality = rng.normal(0.0, cfg.quality_std, cfg.num_items)  # (num_items,)
    items_by_category = np.argsort(item_category, kind="stable")
    category_count = np.bincount(item_category, minlength=C)
    category_start = np.cumsum(category_count) - category_count

    theta = rng.dirichlet(np.full(C, cfg.interest_concentration), size=U)  # (U, C)
    propensity = rng.normal(0.0, cfg.user_propensity_std, U)  # (U,) logit offset per user

    # Sessions, numbered s = u * S + k in time order within each user.
    length = 1 + rng.poisson(cfg.impressions_per_session - 1, size=(U, S))  # (U, S) impressions
    duration_s = length * cfg.seconds_between_impressions  # a session plus one gap before the next
    # Sorted free time before each session + the sessions before it: no overlap, all inside the horizon
    # (back to back if the horizon is too short to hold them).
    slack_s = np.maximum(cfg.horizon_s - duration_s.sum(axis=1, keepdims=True), 0.0)  # (U, 1)
    idle_s = np.sort(rng.uniform(0.0, 1.0, size=(U, S)), axis=1) * slack_s
    session_start_s = (idle_s + np.cumsum(duration_s, axis=1) - duration_s).ravel()  # (U*S,)
    length = length.ravel()
    first_row = np.cumsum(length) - length  # (U*S,) row of each session's position 0

    # Impressions, flat (N,): row order is user, then session, then position, hence time within user.
    N = int(length.sum())
    session = np.repeat(np.arange(U * S), length)
    user = session // S
    position = np.arange(N) - first_row[session]
    exposure = (1 - cfg.explore) * theta + cfg.explore / C  # (U, C) what the cloud shows each user
    cumulative = np.cumsum(exposure, axis=1)
    category = np.minimum((cumulative[user] < rng.uniform(size=(N, 1))).sum(axis=1), C - 1)
    within = (rng.uniform(size=N) * category_count[category]).astype(np.int64)
    item = items_by_category[category_start[category] + within]
    click_draw = rng.uniform(size=N)

    # The drift is sequential in the position, so loop over positions, all sessions at once. Sessions
    # sorted longest first make the ones still running at position t a prefix of that order.
    order = np.argsort(-length, kind="stable")
    running = np.searchsorted(-length[order], -np.arange(length.max()), side="left")  # (max_len,)
    current = torch.from_numpy(theta[order // S])  # (U*S, C) in-session interest, longest session first
    category_t = torch.from_numpy(category)
    offset_t = torch.from_numpy(item_quality[item] + propensity[user])  # (N,) item + user logit offsets
    click_draw_t = torch.from_numpy(click_draw)
    interest = torch.empty(N, dtype=torch.float64)
    click = torch.empty(N, dtype=torch.bool)
    for t, n in enumerate(running.tolist()):
        rows = torch.from_numpy(first_row[order[:n]] + t)
        current = current[:n]
        shown = category_t[rows]
        interest_now = current[torch.arange(n), shown]
        clicked = click_draw_t[rows] < click_probability(interest_now, offset_t[rows], t, cfg)
        interest[rows], click[rows] = interest_now, clicked
        eps = rng.standard_normal((n, C)) if cfg.noise > 0 else None
        current = next_interest(current, shown, clicked.double(), cfg, eps)

    dtype = torch.get_default_dtype()
    return RecsysData(
        user_id=torch.from_numpy(user),
        session_id=torch.from_numpy(session),
        item_id=torch.from_numpy(item),
        category_id=torch.from_numpy(category),
        position=torch.from_numpy(position),
        timestamp_s=torch.from_numpy(session_start_s[session] + position * cfg.seconds_between_impressions),
        click=click.to(dtype),
        interest=interest.to(dtype),
        item_category=torch.from_numpy(item_category),
        item_quality=torch.from_numpy(item_quality).to(dtype),
        user_interest=torch.from_numpy(theta).to(dtype),
        user_propensity=torch.from_numpy(propensity).to(dtype),
        config=cfg,
    )


def cloud_view(data: RecsysData, now_s: float, delay_s: float | None = None) -> torch.Tensor:
    """(N,) bool: impressions the cloud has received by ``now_s``, i.e. ``timestamp_s <= now_s - delay_s``.

    ``delay_s`` defaults to ``data.config.cloud_delay_s``.
    """
    delay_s = data.config.cloud_delay_s if delay_s is None else delay_s
    if not delay_s >= 0:
        raise ValueError(f"delay_s must be >= 0, got {delay_s!r}")
    return data.timestamp_s <= now_s - delay_s


def device_view(data: RecsysData, user: int, now_s: float) -> torch.Tensor:
    """(N,) bool: impressions the device of ``user`` has seen by ``now_s`` (its own, with no delay)."""
    return (data.user_id == user) & (data.timestamp_s <= now_s)
