"""Personalization after (or alongside) FedAvg: one model per user, coupled to the federation.

* **Local fine-tuning** — start every user from the global FedAvg weights w* and run E epochs of SGD on the
  user's own samples, all parameters or only a subset (e.g. the last layer).
* **FedPer** — Arivazhagan, Aggarwal, Singh and Choudhary, "Federated Learning with Personalization Layers",
  2019 (arXiv:1912.00818). The model is split into shared *base* layers and personal layers; clients train
  both locally, the server averages only the base layers (sample-weighted, as FedAvg), and each client keeps
  its personal layers. Here the personal part is named by ``head`` (e.g. the last ``nn.Linear``).
* **Ditto** — Li, Hu, Beirami and Smith, "Ditto: Fair and Robust Federated Learning Through
  Personalization", ICML 2021 (arXiv:2012.04221). Next to the global w*, user k trains a personal v_k on
  h_k(v_k; w*) = F_k(v_k) + (λ/2) ||v_k - w*||^2: λ = 0 is purely local training from w*, λ -> ∞ is w*.

Departures, labelled:

* Ditto's Algorithm 1 interleaves the personal updates with the rounds of global training (against the
  current w_t). We solve its objective after federated training, against the final w*, which is the
  bi-level problem's definition (v_k minimises h_k(v; w*)); the device work is the same.
* The proximal term is applied in closed form, a proximal-gradient step (:func:`ditto_step`), not through
  its gradient: v <- (v - η ∇F_k(v) + ηλ w*) / (1 + ηλ). It is stable for every λ >= 0 including ∞ and
  equals the gradient step to first order in ηλ.
* Batch order: user k's minibatches for personal training come from
  :func:`~collab_lib.parameter_based.federated.client_batches` with round index 0 and the config's seed, so a
  per-user loop and the batched trainer here see the same batches.

All users are trained at once: their parameters are stacked along a leading user axis and every user's SGD
step runs together, as in :func:`~collab_lib.parameter_based.local.local_update_batched` (which this
generalises to per-user starting points, a trainable subset of the parameters and an anchor): for an MLP with
the gradients written out (:func:`~collab_lib.parameter_based.local.stacked_gradients`), for any other model
(such as DCCL's patched MLP) with ``torch.func.vmap``.

Device compute is counted in FLOPs of multiply-adds (2 per multiply-add; biases and ReLU ignored) by
:func:`~collab_lib.hardware.profile.mlp_forward_flops` and :func:`~collab_lib.hardware.profile.mlp_train_flops`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.federated import FedConfig, client_batches, full_steps, plan_round
from collab_lib.parameter_based.local import linear_layers, padded_batches, stacked_gradients
from collab_lib.parameter_based.params import Params, get_params

#: Per-user parameters: name -> tensor of shape ``(num_users, *shape)``.
Stacked = Params


@dataclass(frozen=True)
class PersonalConfig:
    """On-device training of personal parameters: E epochs of minibatch SGD (batch B, step η)."""

    epochs: int = 5          # E
    batch_size: int = 10     # B
    lr: float = 0.05         # η
    lam: float = 0.0         # λ, Ditto's pull towards the global model (0 = none, math.inf = stay global)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not self.lam >= 0:
            raise ValueError(f"lam must be >= 0 (math.inf allowed), got {self.lam!r}")
        non_negative_int("seed", self.seed)


# --- Pure functions -----------------------------------------------------------------------------------


def stack(params: Params, num_users: int) -> Stacked:
    """The same parameters for every user: name -> ``(num_users, *shape)`` (a copy)."""
    positive_int("num_users", num_users)
    return {n: p.expand(num_users, *p.shape).clone() for n, p in params.items()}


def ditto_step(v: torch.Tensor, grad: torch.Tensor, w: torch.Tensor, lr: float, lam: float) -> torch.Tensor:
    """One proximal-gradient step on F(v) + (λ/2)||v - w||^2:  v' = (v - η g + ηλ w) / (1 + ηλ).

    λ = 0 is plain SGD, v' = v - η g; λ = ∞ returns w.
    """
    if not lam >= 0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    if math.isinf(lam):
        return w.expand_as(v).clone()
    step = v - lr * grad
    return step if lam == 0 else (step + lr * lam * w) / (1 + lr * lam)


# --- Batched personal training -----------------------------------------------------------------------------


def sgd_per_user(model: nn.Module, start: Stacked, xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor],
                 batches: Sequence[Sequence[np.ndarray]], lr: float, trainable: Sequence[str] | None = None,
                 anchor: Params | None = None, lam: float = 0.0) -> Stacked:
    """User i runs SGD from ``start[name][i]`` over its ``batches[i]`` of (``xs[i]``, ``ys[i]``), all users at
    once. Only the names in ``trainable`` (default: all) move; with an ``anchor`` every step is
    :func:`ditto_step` towards it with weight ``lam``. Returns the stacked parameters after training."""
    K = len(xs)
    if not (len(ys) == len(batches) == K) or K == 0:
        raise ValueError(f"xs, ys and batches must be non-empty and equally long: {K}, {len(ys)}, {len(batches)}")
    names = list(start)
    trainable = names if trainable is None else list(trainable)
    unknown = [n for n in trainable if n not in start]
    if unknown or not trainable:
        raise ValueError(f"trainable must name parameters of start, got unknown {unknown} of {trainable}")
    bad = [n for n in names if start[n].shape[0] != K]
    if bad:
        raise ValueError(f"start: {bad} do not have {K} users on their first axis")
    S = max(len(b) for b in batches)
    xb, yb, mask_t = padded_batches(xs, ys, batches)                           # (K, S, B, ...), (K, S, B) x2

    def loss(p: Params, xk: torch.Tensor, yk: torch.Tensor, mk: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(functional_call(model, p, (xk,)), yk, reduction="none")  # (B,)
        return (ce * mk).sum() / mk.sum().clamp(min=1.0)

    losses = vmap(loss)
    layers = linear_layers(model)  # an MLP: gradients written out (stacked_gradients), no autograd
    params = {n: p.clone() for n, p in start.items()}
    for s in range(S):
        if layers is not None:
            leaves = params
            g = stacked_gradients(layers, params, xb[:, s], yb[:, s], mask_t[:, s])
            grads = [g[n] for n in trainable]
        else:
            leaves = {n: p.requires_grad_(n in trainable) for n, p in params.items()}
            grads = torch.autograd.grad(losses(leaves, xb[:, s], yb[:, s], mask_t[:, s]).sum(),
                                        [leaves[n] for n in trainable])
        active = mask_t[:, s].sum(dim=1) > 0                                   # (K,) users still training
        with torch.no_grad():
            params = {n: p.detach() for n, p in leaves.items()}
            for n, g in zip(trainable, grads):
                p = params[n]
                new = (ditto_step(p, g, anchor[n], lr, lam) if anchor is not None else p - lr * g)
                params[n] = torch.where(active.view(-1, *[1] * (p.ndim - 1)), new, p)
    return {n: p.detach() for n, p in params.items()}


def personal_batches(users: UserDatasets, config: PersonalConfig) -> list[list[np.ndarray]]:
    """User k's E epochs of minibatches (see the module's note on batch order)."""
    require_users("users", users)
    return [client_batches(int(n), config.batch_size, full_steps(int(n), config.batch_size, config.epochs),
                           config.seed, 0, k) for k, n in enumerate(users.sizes.tolist())]


def fine_tune_per_user(model: nn.Module, global_params: Params, users: UserDatasets, config: PersonalConfig,
                       trainable: Sequence[str] | None = None) -> Stacked:
    """Every user's personal model: E epochs of local SGD from w* on its own samples (``config.lam`` unused).

    Stacked parameters, one row per user, like :func:`ditto`; to fine-tune one model on one data set, see
    :func:`collab_lib.data_based.augment.fine_tune`.
    """
    require_users("users", users)
    return sgd_per_user(model, stack(global_params, len(users)), users.xs, users.ys,
                        personal_batches(users, config), config.lr, trainable)


def ditto(model: nn.Module, global_params: Params, users: UserDatasets, config: PersonalConfig) -> Stacked:
    """Ditto's personal models v_k: E epochs of proximal SGD on F_k(v) + (λ/2)||v - w*||^2 from v = w*."""
    require_users("users", users)
    return sgd_per_user(model, stack(global_params, len(users)), users.xs, users.ys,
                        personal_batches(users, config), config.lr, anchor=global_params, lam=config.lam)


# --- FedPer: shared body, personal head --------------------------------------------------------------------


@dataclass(frozen=True)
class FedPerResult:
    """FedPer's outcome: one shared body and a head per user."""

    body: Params       # shared base layers after the last round
    heads: Stacked     # every user's personal layers, (num_users, *shape)

    def personal(self) -> Stacked:
        """Every user's full model: the shared body with its own head."""
        K = next(iter(self.heads.values())).shape[0]
        return {**stack(self.body, K), **self.heads}


def fedper(model: nn.Module, train: UserDatasets, config: FedConfig, head: Sequence[str]) -> FedPerResult:
    """FedPer rounds: sampled clients train body and their own head from (w_body, head_k) for E epochs; the
    server averages the bodies with weights n_k; heads never leave the device.

    Client sampling and batch order are FedAvg's (:func:`~collab_lib.parameter_based.federated.plan_round`,
    :func:`~collab_lib.parameter_based.federated.client_batches`). Every head starts from ``model``'s weights.
    """
    if len(train) == 0:
        raise ValueError("train: no clients")
    params = get_params(model)
    head = list(head)
    if not head or any(n not in params for n in head):
        raise ValueError(f"head must name parameters of model, got {head}; parameters: {list(params)}")
    if len(head) == len(params):
        raise ValueError("head: at least one parameter must be shared (the body)")
    body = {n: p for n, p in params.items() if n not in head}
    heads = stack({n: params[n] for n in head}, len(train))
    sizes = train.sizes.numpy()
    for t in range(config.rounds):
        plan = plan_round(config, sizes, t)
        if len(plan.answered) == 0:
            continue
        ids = [int(k) for k in plan.answered]
        start = {**stack(body, len(ids)), **{n: heads[n][ids] for n in head}}
        batches = [client_batches(int(sizes[k]), config.batch_size, int(s), config.seed, t, k)
                   for k, s in zip(ids, plan.steps)]
        out = sgd_per_user(model, start, [train.xs[k] for k in ids], [train.ys[k] for k in ids], batches, config.lr)
        body = weighted_average({n: out[n] for n in body}, torch.tensor(sizes[ids], dtype=torch.float64))
        for n in head:
            heads[n][ids] = out[n]
    return FedPerResult(body, heads)


# --- Evaluation ----------------------------------------------------------------------------------------------


@torch.no_grad()
def personal_accuracy(model: nn.Module, params: Stacked, users: UserDatasets) -> np.ndarray:
    """(num_users,) accuracy of user k's own parameters ``params[name][k]`` on its samples ``users.xs[k]``."""
    K = len(users)
    bad = [n for n, p in params.items() if p.shape[0] != K]
    if bad:
        raise ValueError(f"params: {bad} do not have {K} users on their first axis")
    acc = np.zeros(K)
    for k, (x, y) in enumerate(zip(users.xs, users.ys)):
        if len(y):
            logits = functional_call(model, {n: p[k] for n, p in params.items()}, (x,))
            acc[k] = (logits.argmax(dim=1) == y).double().mean().item()
    return acc

