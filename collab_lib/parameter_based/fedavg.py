"""Federated averaging and its relatives: the round loop, local training, and the aggregation math.

* **FedAvg** — McMahan, Moore, Ramage, Hampson and Agüera y Arcas, "Communication-Efficient Learning of Deep
  Networks from Decentralized Data", AISTATS 2017 (arXiv:1602.05629), Algorithm 1. Each round the server
  picks a fraction C of the K clients, each runs E epochs of minibatch SGD (batch B, step size η) from the
  global weights w_t, and the server takes the sample-weighted mean w_{t+1} = sum_k (n_k / n) w^k_{t+1},
  n = sum of n_k over the clients that answered.
* **FedProx** — Li, Sahu, Zaheer, Sanjabi, Talwalkar and Smith, "Federated Optimization in Heterogeneous
  Networks", MLSys 2020 (arXiv:1812.06127), Algorithm 2. Client k minimises
  h_k(w; w_t) = F_k(w) + (μ/2) ||w - w_t||^2, and a device that could only do part of its work (a
  straggler) still sends what it has. μ = 0 with stragglers dropped is FedAvg.
* **FedAvgM** — server momentum (Hsu, Qi and Brown 2019, arXiv:1909.06335): with the pseudo-gradient
  Δ_t = w_t - mean_k w^k_{t+1}, v_{t+1} = β v_t + Δ_t and w_{t+1} = w_t - η_s v_{t+1}. β = 0, η_s = 1 is
  FedAvg.

System heterogeneity, per round: each sampled client fails to answer with probability ``dropout_prob``
(battery, network, user); a share ``straggler_fraction`` of the sampled clients cannot finish their E
epochs before the round's deadline. With ``stragglers="drop"`` they are left out (what FedAvg does); with
``"partial"`` they send the update after a uniformly random number of steps, between 1 and their full
count (FedProx's partial solutions from stragglers). A round in which no client answers keeps w_t.
An optional :class:`Codec` (:mod:`collab_lib.parameter_based.compress`) transforms what crosses the link
in each direction and reports its bytes.

Two engines compute the same local updates:

* :func:`local_update` trains one client with ordinary autograd, a readable reference, and is also what
  the Flower client calls (:mod:`collab_lib.parameter_based.flower_app`);
* :func:`local_update_batched` trains many clients at once: their parameters are stacked along a leading
  client axis, ``torch.func.vmap`` over ``functional_call`` runs every client's forward pass at once, and
  one backward pass gives all of their gradients (the gradient of the sum of the clients' losses with
  respect to client k's parameters is client k's own gradient). For an MLP (:func:`linear_layers`) the
  gradients are written out instead (:func:`stacked_gradients`: batched matrix products, no autograd),
  which removes most of the per-step overhead of these small models. Clients have different data sizes,
  so batches are padded and masked; ``tests/test_fedavg.py`` checks the engines and the written-out
  gradients against per-client autograd.

Departures, labelled:

* Partial work is counted in SGD steps, not in epochs as in FedProx's experiments, so that a straggler
  can do partial work even when E = 1.
* Randomness: the server's draws in round t come from ``np.random.default_rng([seed, 0, t])``, client k's
  batch order from ``np.random.default_rng([seed, 1, t, k])``: any engine (ours, Flower) that knows
  ``(seed, t, k)`` reproduces the same run, in any order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from collab_lib._validate import positive_int
from collab_lib.datasets.users import UserDatasets

Params = dict[str, torch.Tensor]
"""Model parameters by name, as ``dict(model.named_parameters())`` gives them (detached)."""

STRAGGLER_POLICIES = ("drop", "partial")
BYTES_PER_FLOAT32 = 4


@dataclass(frozen=True)
class FedConfig:
    """One federated training run. Symbols as in McMahan et al. (C, E, B, η) and Li et al. (μ)."""

    rounds: int = 20
    client_fraction: float = 0.1      # C: share of the K clients sampled per round, in (0, 1]
    local_epochs: int = 1             # E
    batch_size: int = 10              # B
    lr: float = 0.05                  # η, client SGD step size
    mu: float = 0.0                   # μ, FedProx proximal weight (0 = FedAvg's local objective)
    server_lr: float = 1.0            # η_s
    server_momentum: float = 0.0      # β (FedAvgM); 0 = plain averaging
    dropout_prob: float = 0.0         # probability that a sampled client never answers, in [0, 1)
    straggler_fraction: float = 0.0   # share of sampled clients that cannot finish by the deadline
    stragglers: str = "drop"          # "drop" (FedAvg) or "partial" (FedProx)
    eval_every: int = 1               # evaluate the global model every this many rounds (and the last)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rounds", "local_epochs", "batch_size", "eval_every"):
            positive_int(name, getattr(self, name))
        if not 0 < self.client_fraction <= 1:
            raise ValueError(f"client_fraction must be in (0, 1], got {self.client_fraction!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.mu >= 0:
            raise ValueError(f"mu must be >= 0, got {self.mu!r}")
        if not self.server_lr > 0:
            raise ValueError(f"server_lr must be > 0, got {self.server_lr!r}")
        if not 0 <= self.server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1), got {self.server_momentum!r}")
        if not 0 <= self.dropout_prob < 1:
            raise ValueError(f"dropout_prob must be in [0, 1), got {self.dropout_prob!r}")
        if not 0 <= self.straggler_fraction <= 1:
            raise ValueError(f"straggler_fraction must be in [0, 1], got {self.straggler_fraction!r}")
        if self.stragglers not in STRAGGLER_POLICIES:
            raise ValueError(f"stragglers must be one of {STRAGGLER_POLICIES}, got {self.stragglers!r}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")


# --- Parameters as plain tensors ------------------------------------------------------------------------


def get_params(model: nn.Module) -> Params:
    """A detached copy of ``model``'s parameters by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def set_params(model: nn.Module, params: Params) -> nn.Module:
    """Copy ``params`` into ``model`` in place and return it."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model


def num_values(params: Params) -> int:
    """Number of scalars in ``params``: the P in "P x 4 bytes per model sent"."""
    return sum(p.numel() for p in params.values())


# --- Aggregation: pure functions ------------------------------------------------------------------------


def weighted_average(stacked: Mapping[str, torch.Tensor], weights: torch.Tensor) -> Params:
    """sum_k w_k x_k / sum_k w_k for each tensor; ``stacked[name]`` has shape ``(K, *shape)``, ``weights`` (K,).

    FedAvg passes w_k = n_k, the number of training samples of client k.
    """
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.ndim != 1 or len(w) == 0:
        raise ValueError(f"weights must be a non-empty 1-D tensor, got shape {tuple(w.shape)}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    w = w / w.sum()
    out = {}
    for name, x in stacked.items():
        if x.shape[0] != len(w):
            raise ValueError(f"{name}: {x.shape[0]} client values for {len(w)} weights")
        out[name] = torch.tensordot(w.to(x.dtype), x, dims=1)  # (K,) . (K, *shape) -> shape
    return out


def server_update(
    global_params: Params, averaged: Params, velocity: Params | None, server_lr: float, server_momentum: float
) -> tuple[Params, Params]:
    """One server step (FedAvgM): Δ = w_t - avg, v' = β v + Δ, w' = w_t - η_s v'. Returns (w', v').

    With β = 0 and η_s = 1, w' = avg exactly: plain FedAvg.
    """
    new_params, new_velocity = {}, {}
    for name, w in global_params.items():
        delta = w - averaged[name]
        v = delta if velocity is None else server_momentum * velocity[name] + delta  # v_0 = 0
        new_velocity[name] = v
        # Plain FedAvg takes the mean itself, not w - (w - mean), which differs in the last bits.
        plain = server_momentum == 0 and server_lr == 1
        new_params[name] = averaged[name].clone() if plain else w - server_lr * v
    return new_params, new_velocity


# --- Who takes part in a round ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """Who was asked and who answered in one round. ``steps[i]`` is the number of SGD steps
    ``answered[i]`` ran (fewer than its full count if it was a straggler under ``"partial"``)."""

    sampled: np.ndarray      # (m,) client ids asked to train
    answered: np.ndarray     # (a,) client ids whose update is aggregated
    steps: np.ndarray        # (a,) SGD steps each answering client ran
    dropped_out: int         # sampled clients that never answered
    stragglers: int          # sampled clients that could not finish by the deadline (and answered)


def full_steps(num_samples: int, batch_size: int, epochs: int) -> int:
    """SGD steps of E epochs over n_k samples with batch B: E * ceil(n_k / B)."""
    return epochs * -(-num_samples // batch_size)


def plan_round(config: FedConfig, sizes: np.ndarray, round_idx: int) -> RoundPlan:
    """Sample m = max(1, round(C K)) clients without replacement, then draw dropouts and stragglers."""
    rng = np.random.default_rng([config.seed, 0, round_idx])
    num_clients = len(sizes)
    m = max(1, int(round(config.client_fraction * num_clients)))
    sampled = np.sort(rng.choice(num_clients, size=m, replace=False))
    alive = rng.random(m) >= config.dropout_prob                              # (m,)
    is_straggler = np.zeros(m, dtype=bool)
    is_straggler[rng.permutation(m)[: int(round(config.straggler_fraction * m))]] = True
    full = np.array([full_steps(int(sizes[k]), config.batch_size, config.local_epochs) for k in sampled])
    partial = np.array([rng.integers(1, s + 1) for s in full])                 # uniform in 1..full
    keep = alive & ~is_straggler if config.stragglers == "drop" else alive
    steps = np.where(is_straggler, partial, full)
    return RoundPlan(sampled=sampled, answered=sampled[keep], steps=steps[keep],
                     dropped_out=int((~alive).sum()), stragglers=int((alive & is_straggler).sum()))


def client_batches(num_samples: int, batch_size: int, steps: int, seed: int, round_idx: int, client_id: int) -> list[np.ndarray]:
    """The first ``steps`` minibatches of client ``client_id`` in round ``round_idx``: each epoch is a fresh
    permutation of its ``num_samples`` indices cut into batches of ``batch_size`` (the last may be smaller)."""
    rng = np.random.default_rng([seed, 1, round_idx, client_id])
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        perm = rng.permutation(num_samples)
        batches += [perm[i:i + batch_size] for i in range(0, num_samples, batch_size)]
    return batches[:steps]


# --- Local training ----------------------------------------------------------------------------------------


def local_update(model: nn.Module, global_params: Params, x: torch.Tensor, y: torch.Tensor,
                 batches: list[np.ndarray], lr: float, mu: float) -> Params:
    """Client k's update, the readable reference: SGD on F_k(w) + (μ/2)||w - w_t||^2 from w = w_t.

    ``model`` is used as a template (its weights are overwritten). Returns the new parameters.
    """
    set_params(model, global_params)
    for idx in batches:
        idx_t = torch.from_numpy(np.asarray(idx))
        loss = F.cross_entropy(model(x[idx_t]), y[idx_t])
        if mu > 0:
            loss = loss + mu / 2 * sum(((p - global_params[n]) ** 2).sum() for n, p in model.named_parameters())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return get_params(model)


def padded_batches(
    xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], batches: Sequence[Sequence[Sequence[int]]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every client's local steps as one padded tensor, for running all clients at once with ``vmap``.

    Client i holds ``xs[i]`` (n_i, ...) and ``ys[i]`` (n_i,); ``batches[i][s]`` are the row indices of its
    step s. Returns ``xb`` (K, S, B, ...), ``yb`` (K, S, B) and ``mask`` (K, S, B), 1 for a real sample and
    0 for padding, with S the most steps and B the largest batch of any client.
    """
    K, S = len(xs), max(len(b) for b in batches)
    B = max((len(idx) for b in batches for idx in b), default=1)
    x_all, y_all = torch.cat(list(xs)), torch.cat(list(ys))                 # (N, ...), (N,) all clients
    offsets = np.cumsum([0] + [len(y) for y in ys[:-1]])                    # client i starts at offsets[i]
    idx = np.zeros((K, S, B), dtype=np.int64)                               # (K, S, B) rows of x_all
    mask = np.zeros((K, S, B), dtype=np.float32)                            # (K, S, B) 1 = real sample
    for i, b in enumerate(batches):
        for s, ids in enumerate(b):
            idx[i, s, : len(ids)] = offsets[i] + np.asarray(ids)
            mask[i, s, : len(ids)] = 1.0
    idx_t = torch.from_numpy(idx)
    return x_all[idx_t], y_all[idx_t], torch.from_numpy(mask).to(x_all.dtype)


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The (name, layer) pairs of ``model`` if it is an ``nn.Sequential`` of an optional leading ``nn.Flatten``
    and then only ``nn.Linear`` and ``nn.ReLU`` layers (what :func:`~collab_lib.models.mlp` builds), else None."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    layers = list(model.named_children())
    first = layers[0][1]
    flatten = isinstance(first, nn.Flatten) and (first.start_dim, first.end_dim) == (1, -1)
    body = layers[1:] if flatten else layers
    if not body or not all(isinstance(m, (nn.Linear, nn.ReLU)) for _, m in body):
        return None
    return layers


def stacked_gradients(layers: Sequence[tuple[str, nn.Module]], params: Params, x: torch.Tensor, y: torch.Tensor,
                      mask: torch.Tensor) -> Params:
    """Every client's gradient of its mean cross-entropy over its real samples, for a model of
    :func:`linear_layers`, with the backward pass written out (no autograd, no vmap).

    ``params[name]`` is ``(K, *shape)`` (names as ``model.named_parameters()`` gives them: ``"1.weight"``),
    ``x`` is ``(K, B, ...)``, ``y`` and ``mask`` ``(K, B)``. Per client, with the mean over its m real
    samples, the gradient of the loss with respect to the logits is (softmax - onehot(y)) * mask / m;
    a Linear layer z = h W^T + b passes back g -> g W and contributes g^T h to dW and the sum of g over the
    batch to db; a ReLU passes g where its input was > 0. Same numbers as autograd through the model, up to
    float rounding (``tests/test_fedavg.py``), at a fraction of the per-step overhead for these small models.
    """
    K, B = y.shape
    h = x.reshape(K, B, -1) if isinstance(layers[0][1], nn.Flatten) else x           # (K, B, D)
    saved = []                                                                       # each layer's input
    for name, layer in layers:
        if isinstance(layer, nn.Flatten):
            continue
        saved.append((name, layer, h))
        if isinstance(layer, nn.Linear):
            W, b = params[f"{name}.weight"], params.get(f"{name}.bias")             # (K, out, in), (K, out)
            h = torch.bmm(h, W.transpose(1, 2)) if b is None else torch.baddbmm(b[:, None], h, W.transpose(1, 2))
        else:
            h = h.clamp_min(0)                                                       # ReLU
    g = torch.softmax(h, dim=-1)                                                     # (K, B, C)
    g.scatter_add_(-1, y[..., None], -torch.ones_like(g[..., :1]))                   # softmax - onehot(y)
    g = g * (mask / mask.sum(dim=1, keepdim=True).clamp(min=1.0))[..., None]         # mean over real samples
    grads: Params = {}
    first_linear = next(k for k, (_, layer, _) in enumerate(saved) if isinstance(layer, nn.Linear))
    for k in range(len(saved) - 1, -1, -1):
        name, layer, inp = saved[k]
        if isinstance(layer, nn.Linear):
            grads[f"{name}.weight"] = torch.bmm(g.transpose(1, 2), inp)              # (K, out, in)
            if f"{name}.bias" in params:
                grads[f"{name}.bias"] = g.sum(dim=1)                                 # (K, out)
            if k > first_linear:
                g = torch.bmm(g, params[f"{name}.weight"])                           # (K, B, in)
        else:
            g = g * (inp > 0)                                                        # ReLU
    return grads


def local_update_batched(model: nn.Module, global_params: Params, xs: list[torch.Tensor], ys: list[torch.Tensor],
                         batches: list[list[np.ndarray]], lr: float, mu: float) -> Params:
    """All clients' updates at once; same result as :func:`local_update` per client, up to float rounding.

    Client i holds ``xs[i]`` (n_i, ...) and ``ys[i]`` (n_i,) and runs ``batches[i]``. Returns stacked
    parameters, ``out[name]`` of shape ``(K, *shape)``.
    """
    K, S = len(xs), max(len(b) for b in batches)
    xb, yb, mask_t = padded_batches(xs, ys, batches)                        # (K, S, B, ...), (K, S, B) x2
    layers = linear_layers(model)

    def loss(p: Params, xk: torch.Tensor, yk: torch.Tensor, mk: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(functional_call(model, p, (xk,)), yk, reduction="none")  # (B,)
        value = (ce * mk).sum() / mk.sum().clamp(min=1.0)                   # mean over real samples
        if mu > 0:
            value = value + mu / 2 * sum(((p[n] - global_params[n]) ** 2).sum() for n in p)
        return value

    # Clients are independent, so the gradient of the *sum* of their losses with respect to the stacked
    # parameters is every client's own gradient; vmap runs the forward pass for all clients at once. (Same
    # result as vmap(grad(loss)), about a quarter faster on a CPU.) An MLP skips autograd altogether
    # (stacked_gradients), several times faster again for the small models of the labs.
    losses = vmap(loss)
    params = {n: w.expand(K, *w.shape).clone() for n, w in global_params.items()}  # (K, *shape)
    for s in range(S):
        if layers is not None:
            g = stacked_gradients(layers, params, xb[:, s], yb[:, s], mask_t[:, s])
            if mu > 0:
                g = {n: g[n] + mu * (p - global_params[n]) for n, p in params.items()}  # ∇ (μ/2)||w - w_t||^2
            g = [g[n] for n in params]
        else:
            leaves = {n: p.requires_grad_(True) for n, p in params.items()}
            g = torch.autograd.grad(losses(leaves, xb[:, s], yb[:, s], mask_t[:, s]).sum(), list(leaves.values()))
        active = (mask_t[:, s].sum(dim=1) > 0).to(mask_t.dtype)             # (K,) clients still training
        with torch.no_grad():
            params = {n: p.detach() - lr * active.view(-1, *[1] * (p.ndim - 1)) * g_n
                      for (n, p), g_n in zip(params.items(), g)}
    return params


# --- Evaluation and the round loop ---------------------------------------------------------------------


@torch.no_grad()
def evaluate(model: nn.Module, params: Params, data: UserDatasets) -> tuple[float, float, np.ndarray]:
    """(loss, accuracy, per-user accuracy (num_users,)) of ``params`` on every user's samples pooled;
    loss and accuracy are sample-weighted means over all users."""
    x, y, user = data.pooled()
    logits = functional_call(model, params, (x,))
    loss = F.cross_entropy(logits, y).item()
    right = (logits.argmax(dim=1) == y).double()
    per_user = torch.zeros(len(data), dtype=torch.float64).index_add_(0, user, right) / data.sizes.clamp(min=1)
    return loss, right.mean().item(), per_user.numpy()


@dataclass
class FedHistory:
    """Per-round record of a run. ``eval_rounds`` lists the rounds after which the global model was
    evaluated; the ``train_*``/``test_*`` lists are aligned with it (``test_*`` empty without test data)."""

    sampled: list[int] = field(default_factory=list)        # clients asked, per round
    answered: list[int] = field(default_factory=list)       # updates aggregated, per round
    dropped_out: list[int] = field(default_factory=list)
    stragglers: list[int] = field(default_factory=list)
    bytes_down: list[int] = field(default_factory=list)     # global model sent to the sampled clients
    bytes_up: list[int] = field(default_factory=list)       # updates received
    eval_rounds: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_per_user_accuracy: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class FedResult:
    params: Params
    history: FedHistory


ENGINES = ("batched", "loop")


def local_updates(model: nn.Module, global_params: Params, train: UserDatasets, config: FedConfig,
                  plan: RoundPlan, round_idx: int, engine: str = "batched") -> tuple[Params, torch.Tensor]:
    """Parameters after local training of every client in ``plan.answered``, stacked: name -> ``(a, *shape)``,
    and their weights n_k, shape (a,). Needs at least one answering client."""
    ids = [int(k) for k in plan.answered]
    sizes = [len(train.ys[k]) for k in ids]
    batches = [client_batches(n, config.batch_size, int(s), config.seed, round_idx, k)
               for k, n, s in zip(ids, sizes, plan.steps)]
    if engine == "batched":
        stacked = local_update_batched(model, global_params, [train.xs[k] for k in ids], [train.ys[k] for k in ids],
                                       batches, config.lr, config.mu)
    elif engine == "loop":
        updates = [local_update(model, global_params, train.xs[k], train.ys[k], b, config.lr, config.mu)
                   for k, b in zip(ids, batches)]
        stacked = {n: torch.stack([u[n] for u in updates]) for n in global_params}
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return stacked, torch.tensor(sizes, dtype=torch.float64)


class Codec(Protocol):
    """What happens to parameters on the link (:mod:`collab_lib.parameter_based.compress`).

    ``downlink(params)`` returns the model as the devices receive it and the bytes sent to each device;
    ``uplink(round_idx, client_ids, deltas)`` takes the stacked updates w^k - (received model), name ->
    ``(a, *shape)``, and returns them as the server receives them and the total bytes sent up.
    """

    def downlink(self, params: Params) -> tuple[Params, int]: ...

    def uplink(self, round_idx: int, client_ids: np.ndarray, deltas: Params) -> tuple[Params, int]: ...


def federate(model: nn.Module, train: UserDatasets, config: FedConfig, test: UserDatasets | None = None,
             engine: str = "batched", progress: bool = False,
             callback: Callable[[int, Params], None] | None = None, codec: Codec | None = None) -> FedResult:
    """Train ``model``'s architecture from its current weights for ``config.rounds`` rounds.

    ``train`` holds one client per user; ``test`` may hold the same users' held-out samples (per-user
    accuracy is then per client) or any other grouping, e.g. one shared test set. ``model`` is not modified.
    ``callback(round, params)``, if given, sees the global parameters after each round.

    Without a ``codec`` the server averages the clients' parameters (float32 both ways). With one, devices
    train from the model as ``codec.downlink`` delivers it, and the server adds the weighted mean of the
    updates as ``codec.uplink`` delivers them to its own full-precision w_t.
    """
    if len(train) == 0:
        raise ValueError("train: no clients")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    template = _template(model)
    params, velocity = get_params(model), None
    sizes = train.sizes.numpy()
    model_bytes = num_values(params) * BYTES_PER_FLOAT32
    history = FedHistory()
    rounds = range(config.rounds)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc="rounds")
    for t in rounds:
        plan = plan_round(config, sizes, t)
        sent, down_bytes = codec.downlink(params) if codec is not None else (params, model_bytes)
        up_bytes = 0
        if len(plan.answered) > 0:
            stacked, weights = local_updates(template, sent, train, config, plan, t, engine)
            if codec is None:
                averaged = weighted_average(stacked, weights)
                up_bytes = len(plan.answered) * model_bytes
            else:
                deltas = {n: stacked[n] - sent[n] for n in stacked}          # (a, *shape) each
                received, up_bytes = codec.uplink(t, plan.answered, deltas)
                mean_delta = weighted_average(received, weights)
                averaged = {n: params[n] + mean_delta[n] for n in params}
            params, velocity = server_update(params, averaged, velocity, config.server_lr, config.server_momentum)
        for name, value in (("sampled", len(plan.sampled)), ("answered", len(plan.answered)),
                            ("dropped_out", plan.dropped_out), ("stragglers", plan.stragglers),
                            ("bytes_down", len(plan.sampled) * down_bytes), ("bytes_up", up_bytes)):
            getattr(history, name).append(value)
        if (t + 1) % config.eval_every == 0 or t + 1 == config.rounds:
            _record(history, template, params, train, test, t + 1)
        if callback is not None:
            callback(t, params)
    return FedResult(params, history)


def _template(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)  # local training overwrites the template's weights; the caller's stay


def _record(history: FedHistory, model: nn.Module, params: Params, train: UserDatasets,
            test: UserDatasets | None, rounds_done: int) -> None:
    history.eval_rounds.append(rounds_done)
    loss, acc, _ = evaluate(model, params, train)
    history.train_loss.append(loss)
    history.train_accuracy.append(acc)
    if test is not None:
        loss, acc, per_user = evaluate(model, params, test)
        history.test_loss.append(loss)
        history.test_accuracy.append(acc)
        history.test_per_user_accuracy.append(per_user)


def users_from_partition(x: torch.Tensor, y: torch.Tensor, parts: list[np.ndarray]) -> UserDatasets:
    """One user per index array of a partition (:mod:`collab_lib.datasets.partition`)."""
    xs = tuple(x[torch.from_numpy(p)] for p in parts)
    ys = tuple(y[torch.from_numpy(p)] for p in parts)
    return UserDatasets(xs, ys, tuple(f"client{k}" for k in range(len(parts))))
