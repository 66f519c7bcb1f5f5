"""Federated distillation: devices share logits on a public set instead of parameters.

Every device k has its own model f_k (architectures may differ) and private data. A round (FedMD, Li and
Wang, 2019, arXiv:1910.03581):

1. *communicate*: every device sends its logits Z_k = f_k(X_pub), shape (N_pub, C), on the shared public
   inputs X_pub;
2. *aggregate*: the server averages them, Z = sum_k w_k Z_k, with w_k proportional to the device's
   private sample count, and sends Z back;
3. *digest*: every device distills Z into its model on X_pub;
4. *revisit*: every device trains on its private data for a few epochs.

The payload is 2 N_pub C b bytes per device per round (logits up, consensus down; b bytes per value),
whatever the models; FedAvg's is 2 P b.

Departures, labelled:

* FedMD first trains every model on a large labelled public set, and digests with an L1 loss on class
  scores; here the public set is unlabelled (as in FedDF, Lin et al., NeurIPS 2020, arXiv:2006.07242) and
  the digest step minimises FedDF's temperature-scaled KL divergence, Hinton et al.'s soft-target term
  (:func:`~collab_lib.data_based.distill.soft_target_loss`).
* FedDF distills the ensemble into the *server's* model; here, as in FedMD, every device distills.
* Every device participates in every round, and the devices start by training on their private data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.data_based.distill import soft_target_loss
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.metrics import accuracy
from collab_lib.seed import generator

TestSet = tuple[torch.Tensor, torch.Tensor]  # (x, y) held out, pooled over the devices


def logit_bytes_per_round(n_public: int, num_classes: int, bytes_per_value: int = 4) -> int:
    """2 N_pub C b: one device's logits up and the consensus down."""
    for name, v in (("n_public", n_public), ("num_classes", num_classes), ("bytes_per_value", bytes_per_value)):
        positive_int(name, v)
    return 2 * n_public * num_classes * bytes_per_value


def compressed_logit_bytes_per_round(n_public: int, num_classes: int, top_k: int, value_bits: int) -> int:
    """One device's payload per round when each public sample travels as its ``top_k`` largest logits at
    ``value_bits`` bits each, both ways (logits up, consensus down).

    Below ``top_k = C`` every value also needs its class index, ceil(log2 C) bits; each direction is
    rounded up to whole bytes: 2 ceil(N_pub k (b + ceil(log2 C)) / 8). At ``top_k = C`` and 32 bits this is
    :func:`logit_bytes_per_round`. (Compressing the exchange is not in FedMD; the ids-plus-values encoding is
    the usual sparse format.)
    """
    for name, v in (("n_public", n_public), ("num_classes", num_classes), ("top_k", top_k),
                    ("value_bits", value_bits)):
        positive_int(name, v)
    if top_k > num_classes:
        raise ValueError(f"top_k must be at most num_classes = {num_classes}, got {top_k}")
    index_bits = math.ceil(math.log2(num_classes)) if top_k < num_classes else 0
    bits_one_way = n_public * top_k * (value_bits + index_bits)
    return 2 * -(-bits_one_way // 8)


def consensus(logits: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """(N_pub, C) weighted mean of the devices' (N_pub, C) logits; weights are normalised to sum to 1."""
    if len(logits) == 0:
        raise ValueError("logits must hold at least one (N_pub, C) tensor")
    shape = logits[0].shape
    if any(z.shape != shape for z in logits) or len(shape) != 2:
        raise ValueError(f"logits must all be (N_pub, C) of one shape, got {[tuple(z.shape) for z in logits]}")
    w = torch.ones(len(logits), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (len(logits),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(logits)} non-negative numbers with a positive sum, got {weights!r}")
    w = (w / w.sum()).to(logits[0].dtype)
    return torch.einsum("k,knc->nc", w, torch.stack(logits))


@dataclass(frozen=True)
class FDConfig:
    """``warmup_epochs`` of private training, then ``rounds`` of communicate-aggregate-digest (``digest_epochs``
    on the public set) and revisit (``private_epochs`` on the private data); Adam with ``lr`` throughout;
    batch orders from ``seed``."""

    rounds: int = 5
    warmup_epochs: int = 20
    private_epochs: int = 2
    digest_epochs: int = 5
    lr: float = 3e-3
    batch_size: int = 32
    temperature: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rounds", "warmup_epochs", "private_epochs", "digest_epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        non_negative_int("seed", self.seed)


@dataclass(frozen=True)
class FDHistory:
    """``accuracy[r][k]``: device k's test accuracy after round r (r = 0: private training only, before any
    exchange). ``bytes_total[r]``: cumulative bytes over the link, all devices, after round r."""

    accuracy: list[list[float]]
    bytes_total: list[int]


def _epochs(model: nn.Module, x: torch.Tensor, target: torch.Tensor, loss_fn, epochs: int, opt, batch_size: int,
            generator: torch.Generator) -> None:
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            opt.zero_grad()
            loss_fn(model(x[idx]), target[idx]).backward()
            opt.step()
    model.eval()


def federated_distillation(models: Sequence[nn.Module], clients: UserDatasets, x_public: torch.Tensor,
                           test: TestSet, config: FDConfig) -> FDHistory:
    """Train ``models`` (one per client, any architectures with C outputs) in place, FedMD-style.

    Device k holds ``clients.xs[k]``, ``clients.ys[k]``. Its batch orders come from ``generator(config.seed,
    offset)`` with an offset per (round, device, phase). Bytes count logits as float32.
    """
    require_users("clients", clients)
    if len(models) != len(clients):
        raise ValueError(f"models and clients must be of equal length, got {len(models)}, {len(clients)}")
    if len(x_public) == 0:
        raise ValueError("x_public must hold at least one input")
    opts = [torch.optim.Adam(m.parameters(), lr=config.lr) for m in models]
    weights = clients.sizes.tolist()
    K = len(models)
    seed = config.seed

    def private(r: int, epochs: int) -> None:
        for k, (m, x, y) in enumerate(zip(models, clients.xs, clients.ys)):
            g = generator(seed, offset=(2 * r) * K + k)
            _epochs(m, x, y, F.cross_entropy, epochs, opts[k], config.batch_size, g)

    private(0, config.warmup_epochs)
    history = FDHistory([[accuracy(m, *test) for m in models]], [0])
    total = 0
    for r in range(1, config.rounds + 1):
        with torch.no_grad():
            z = consensus([m(x_public) for m in models], weights)               # (N_pub, C)
        total += K * logit_bytes_per_round(len(x_public), z.shape[1])
        loss = lambda s, t: soft_target_loss(s, t, config.temperature)  # noqa: E731
        for k, m in enumerate(models):
            g = generator(seed, offset=(2 * r - 1) * K + k)
            _epochs(m, x_public, z, loss, config.digest_epochs, opts[k], config.batch_size, g)
        private(r, config.private_epochs)
        history.accuracy.append([accuracy(m, *test) for m in models])
        history.bytes_total.append(total)
    return history
