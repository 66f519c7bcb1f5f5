"""Cloud-coordinated augmentation for on-device personalization: the cloud sends *samples* down.

A model trained in the cloud on everyone's data fits the mixture of all users' distributions, not any one
user's; a model fine-tuned on one phone's few samples overfits them. MPDA (Yan et al., KDD 2022) and CoDA
(Gu et al., 2022, arXiv:2201.10382) break this dilemma the same way: the cloud retrieves, from its large
global pool, samples *similar to the user's own*, and the device trains on local + retrieved data. They
differ in how "similar" is decided:

* CoDA: a coarse-grained sample matching on the cloud, then a personalized sample classifier trained on
  each device filters the retrieved samples finely (it learns the boundary between the local distribution
  and the outside one). Here: :func:`describe` summarises the local data as k centroids of its features, the
  only thing uploaded, and :func:`retrieve_nearest` returns the m pool samples closest to any centroid.
* MPDA: the pool acts as many source domains and the user's data as the target domain; which outside data to
  take depends on whether a model trained on them generalizes well over the local data. Here:
  :func:`domain_losses` evaluates, on the device, one candidate model per pool group (the cloud trains them
  once for all users) and :func:`select_domains` keeps the g groups whose models fit the local data best.

Variable names: ``m`` samples retrieved, ``k`` centroids per user, ``g`` groups selected. Features are the
penultimate activations of the shared global model, so device and cloud embed samples the same way.

Departures, labelled:

* CoDA's on-device fine-grained filter (a per-user classifier of "local vs outside") is not implemented; the
  nearest-centroid match plays the coarse matching alone.
* MPDA's source domains are groups of the pool chosen by the paper's system; here a group is any partition
  of the pool the caller gives (the lab uses the earlier users the pool came from; k-means clusters from
  :func:`kmeans` are another choice), and the candidate model of a group is the global model fine-tuned on
  that group. MPDA's theory (discrepancy bounds) is not reproduced.
* Both papers deploy recommendation models (click-through rate); the lab uses label-skewed users of a small
  image task, which reproduces the *shape* of their comparisons (local + retrieved beats local-only and the
  global model for most users), not their numbers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from collab_lib._validate import positive_int
from collab_lib.seed import generator


def _matrix(name: str, x: torch.Tensor) -> None:
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must have shape (N, d) with N >= 1, got {tuple(x.shape)}")


# --- Users with label skew ----------------------------------------------------------------------------


def label_skewed_users(labels: torch.Tensor | np.ndarray, train_pool: np.ndarray, test_pool: np.ndarray,
                       num_users: int, alpha: float, n_train: int, n_test: int,
                       seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per user, a label mix q_u ~ Dir(alpha * 1) and ``n_train`` training and ``n_test`` test indices drawn
    from ``train_pool`` and ``test_pool`` (disjoint index arrays into ``labels``) with class shares q_u.

    Hsu, Qi and Brown (2019, arXiv:1909.06335) draw a label mix per client this way. Each user's samples are
    distinct, but different users may share samples (every user is an independent simulation; none trains on
    another's data). Returns ``[(train_idx, test_idx), ...]``, int64 arrays.
    """
    y = np.asarray(labels)
    num_users, n_train, n_test = (positive_int(n, v) for n, v in
                                  (("num_users", num_users), ("n_train", n_train), ("n_test", n_test)))
    if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if np.intersect1d(train_pool, test_pool).size:
        raise ValueError("train_pool and test_pool must be disjoint")
    classes = np.unique(y[np.concatenate([train_pool, test_pool])])
    rng = np.random.default_rng(seed)
    users = []
    for _ in range(num_users):
        q = rng.dirichlet(np.full(len(classes), float(alpha)))                  # (C,) label mix
        parts = []
        for pool, n, name in ((train_pool, n_train, "n_train"), (test_pool, n_test, "n_test")):
            counts = rng.multinomial(n, q)                                      # (C,) samples per class
            idx = []
            for c, k in zip(classes, counts):
                members = pool[y[pool] == c]
                if k > len(members):
                    raise ValueError(f"{name} ({n}) asks for {k} samples of class {c}, the pool has "
                                     f"{len(members)}; lower {name} or raise alpha")
                idx.append(rng.choice(members, size=k, replace=False))
            parts.append(np.sort(np.concatenate(idx)).astype(np.int64))
        users.append((parts[0], parts[1]))
    return users


# --- Writing styles: a domain per user -------------------------------------------------------------

STYLES = ("upright", "mirrored", "upside down", "transposed")
"""Four ways a user's 8 x 8 digits may be presented: identity, left-right flip, top-bottom flip, transpose.
A stand-in for a per-user domain (camera, handwriting, locale): each user sees one, the pool mixes all."""


def apply_style(images: torch.Tensor, style: int) -> torch.Tensor:
    """(N, 1, H, W) images -> the same images in ``STYLES[style]``."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
    if isinstance(style, bool) or not isinstance(style, (int, np.integer)) or not 0 <= style < len(STYLES):
        raise ValueError(f"style must be an int in [0, {len(STYLES)}), got {style!r}")
    if style == 1:
        return images.flip(-1)
    if style == 2:
        return images.flip(-2)
    if style == 3:
        return images.transpose(-1, -2)
    return images.clone()


# --- CoDA-style: describe the local data, retrieve the nearest pool samples ---------------------------


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on (N, d) points: ((k, d) centroids, (N,) int64 assignment).

    Initialised with k distinct points drawn from ``seed``; stops at a fixed point (assignments unchanged)
    or after ``iters`` rounds. A centroid that loses all its points keeps its position.
    """
    _matrix("x", x)
    k = positive_int("k", k)
    if k > len(x):
        raise ValueError(f"k ({k}) must not exceed the number of points ({len(x)})")
    x = x.detach().double()
    centroids = x[torch.randperm(len(x), generator=generator(seed))[:k]].clone()    # (k, d)
    assign = torch.full((len(x),), -1, dtype=torch.int64)
    for _ in range(positive_int("iters", iters)):
        new = torch.cdist(x, centroids).argmin(dim=1)                                 # (N,)
        if torch.equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                centroids[j] = members.mean(dim=0)
    return centroids.to(torch.get_default_dtype()), assign


@dataclass(frozen=True)
class Descriptor:
    """What a device uploads to describe its local distribution: k centroids (k, d) of its features."""

    centroids: torch.Tensor

    @property
    def bytes_up(self) -> int:
        """Upload size at 4 bytes (fp32) per value."""
        return 4 * self.centroids.numel()


def describe(local_features: torch.Tensor, k: int, seed: int) -> Descriptor:
    """The device's compact summary: k-means centroids of its (n, d) local features (k <= n)."""
    return Descriptor(kmeans(local_features, k, seed)[0])


def retrieve_nearest(pool_features: torch.Tensor, descriptor: Descriptor, m: int) -> torch.Tensor:
    """(m,) int64 indices of the pool samples nearest to any centroid, nearest first (ties: lower index).

    The distance of pool sample j is min_c ||f_j - mu_c||_2 over the descriptor's centroids mu_c.
    """
    _matrix("pool_features", pool_features)
    m = positive_int("m", m)
    if m > len(pool_features):
        raise ValueError(f"m ({m}) is larger than the pool ({len(pool_features)} samples)")
    if descriptor.centroids.shape[1] != pool_features.shape[1]:
        raise ValueError(f"descriptor has {descriptor.centroids.shape[1]}-d centroids, pool features are "
                         f"{pool_features.shape[1]}-d")
    d = torch.cdist(pool_features.double(), descriptor.centroids.double()).min(dim=1).values  # (P,)
    return torch.sort(d, stable=True).indices[:m]


def retrieve_random(pool_size: int, m: int, seed: int) -> torch.Tensor:
    """(m,) int64 distinct pool indices drawn uniformly: the control that separates "similar data" from
    "more data"."""
    pool_size, m = positive_int("pool_size", pool_size), positive_int("m", m)
    if m > pool_size:
        raise ValueError(f"m ({m}) is larger than the pool ({pool_size} samples)")
    return torch.randperm(pool_size, generator=generator(seed))[:m]


# --- MPDA-style: pick the pool groups whose models generalize to the local data -----------------------


@torch.no_grad()
def domain_losses(models: list[nn.Module], x_local: torch.Tensor, y_local: torch.Tensor) -> torch.Tensor:
    """(G,) mean cross-entropy of each candidate model on the device's local samples; computed on the
    device, so the local data never leave it."""
    if len(models) == 0:
        raise ValueError("models must hold at least one candidate model")
    if len(x_local) == 0 or len(x_local) != len(y_local):
        raise ValueError(f"x_local and y_local must be non-empty and of equal length, got {len(x_local)} "
                         f"and {len(y_local)}")
    return torch.stack([F.cross_entropy(model.eval()(x_local), y_local) for model in models])


def select_domains(losses: torch.Tensor, g: int) -> torch.Tensor:
    """(g,) int64 indices of the g groups with the lowest local loss, best first (ties: lower index)."""
    if losses.ndim != 1 or len(losses) == 0:
        raise ValueError(f"losses must have shape (G,) with G >= 1, got {tuple(losses.shape)}")
    g = positive_int("g", g)
    if g > len(losses):
        raise ValueError(f"g ({g}) is larger than the number of groups ({len(losses)})")
    return torch.sort(losses, stable=True).indices[:g]


# --- Training on local + retrieved data ---------------------------------------------------------------


@dataclass(frozen=True)
class FineTuneConfig:
    """Fine-tuning of a copy of the global model: ``steps`` Adam steps on mini-batches of ``batch_size``."""

    steps: int = 100
    lr: float = 3e-3
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def fine_tune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FineTuneConfig) -> nn.Module:
    """A fine-tuned copy of ``model`` (left untouched) on (N, ...) inputs ``x`` and (N,) labels ``y``.

    Mini-batches are drawn by shuffled epochs over the N samples, from ``config.seed`` only.
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    model = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    g = generator(config.seed)
    model.train()
    step = 0
    while step < config.steps:
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), config.batch_size):
            if step == config.steps:
                break
            idx = order[start:start + config.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    return model.eval()


@torch.no_grad()
def features(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """(N, d) penultimate activations of an ``nn.Sequential`` classifier: every layer but the last."""
    return model[:-1].eval()(x)
