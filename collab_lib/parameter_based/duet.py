"""DUET: the cloud generates device-specific parameters; the device does not train.

Lv, Zhang, Zhang, Kuang, Wang, Wang, Chen, Shen, Yang, Ooi and Wu, "DUET: A Tuning-Free Device-Cloud
Collaborative Parameters Generation Framework for Efficient Device Model Generalization", WWW 2023
(arXiv:2209.05227). The device model has a static part and a dynamic part. The device summarises its user's
recent data in an embedding e_k and sends it to the cloud; a *hypernetwork* g in the cloud maps e_k to the
dynamic part's parameters, which the device plugs in and runs: personalization by a forward pass of g, no
backpropagation on the device.

Here the static part is the body of a cloud :func:`~collab_lib.models.mlp` (its hidden layer,
frozen) and the dynamic part is its last layer (W_k in R^{C x H}, b_k in R^C). The device's embedding is the
class-conditional sum of its hidden features divided by its sample count,

    e_k = vec( (1/n_k) sum_i onehot(y_i) h(x_i)^T )   in R^{C H},  h(x) = relu(W1 x + b1),

one forward pass of the body per recent sample. The hypernetwork is linear, g(e) = U e + c, with U = 0 and
c = the cloud model's last layer at initialisation, so before training (and for a zero embedding) every
device gets the cloud's head. g is trained in the cloud on the users' logged samples, episodically: each
user's samples are split into a *support* half, from which e_k is computed, and a *query* half, on which
the generated head's cross-entropy is minimised, so that g learns to generalise from recent data to the
next data rather than to memorise.

Departures, labelled: DUET's hypernetwork, its data representation and its choice of dynamic layers are
richer than this linear generator on one layer; the episodic support/query split is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from collab_lib._validate import positive_int
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.parameter_based.params import Params
from collab_lib.parameter_based.personalize import Stacked, stack


def _check_mlp(cloud: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    if not (isinstance(cloud, nn.Sequential) and len(cloud) == 4 and isinstance(cloud[1], nn.Linear)
            and isinstance(cloud[3], nn.Linear)):
        raise ValueError("cloud must be a one-hidden-layer mlp(in_features, hidden > 0, num_classes)")
    return cloud[1], cloud[3]


def hidden_features(cloud_params: Params, x: torch.Tensor) -> torch.Tensor:
    """h(x) = relu(W1 x + b1) of an mlp's parameters: (n, H)."""
    return F.relu(x.flatten(1) @ cloud_params["1.weight"].T + cloud_params["1.bias"])


def device_embedding(cloud_params: Params, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """e = vec((1/n) sum_i onehot(y_i) h(x_i)^T), shape (C H,); zeros if the device has no samples."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)}, {len(y)}")
    h = hidden_features(cloud_params, x)                                  # (n, H)
    if len(y) == 0:
        return torch.zeros(num_classes * h.shape[1])
    onehot = F.one_hot(y, num_classes).to(h.dtype)                        # (n, C)
    return (onehot.T @ h / len(y)).flatten()                              # (C, H) -> (C H,)


class HyperHead(nn.Module):
    """g(e) = U e + c, generating a last layer (W (C, H), b (C,)) from an embedding e in R^{C H}."""

    def __init__(self, head_weight: torch.Tensor, head_bias: torch.Tensor) -> None:
        super().__init__()
        if head_weight.ndim != 2 or head_bias.shape != head_weight.shape[:1]:
            raise ValueError(f"head_weight must be (C, H) and head_bias (C,), got {tuple(head_weight.shape)}, "
                             f"{tuple(head_bias.shape)}")
        self.num_classes, self.hidden = head_weight.shape
        out = self.num_classes * self.hidden + self.num_classes
        self.gen = nn.Linear(self.num_classes * self.hidden, out)
        with torch.no_grad():
            self.gen.weight.zero_()                                      # U = 0
            self.gen.bias.copy_(torch.cat([head_weight.flatten(), head_bias]))  # c = the cloud's head

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, C H) embeddings -> W (K, C, H), b (K, C); a single (C H,) embedding gives (C, H), (C,)."""
        if e.shape[-1] != self.gen.in_features:
            raise ValueError(f"e must end in {self.gen.in_features} features, got shape {tuple(e.shape)}")
        out = self.gen(e)
        W = out[..., : self.num_classes * self.hidden].unflatten(-1, (self.num_classes, self.hidden))
        return W, out[..., self.num_classes * self.hidden:]


@dataclass(frozen=True)
class HyperConfig:
    """Cloud-side training of g: full-batch Adam over all users' query halves."""

    steps: int = 200
    lr: float = 0.01
    weight_decay: float = 1e-3
    support_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.support_fraction < 1:
            raise ValueError(f"support_fraction must be in (0, 1), got {self.support_fraction!r}")


def train_hypernetwork(cloud: nn.Module, cloud_params: Params, users: UserDatasets, config: HyperConfig) -> HyperHead:
    """Fit g on every user's support/query split of ``users`` (the cloud's logs); the body stays frozen."""
    require_users("users", users)
    _, head = _check_mlp(cloud)
    C = head.out_features
    hyper = HyperHead(cloud_params["3.weight"], cloud_params["3.bias"])
    rng = np.random.default_rng([config.seed, 4])
    embeds, feats, labels = [], [], []
    for x, y in zip(users.xs, users.ys):
        perm = torch.from_numpy(rng.permutation(len(y)))
        n_s = max(1, min(len(y) - 1, int(round(config.support_fraction * len(y)))))
        s, q = perm[:n_s], perm[n_s:]
        embeds.append(device_embedding(cloud_params, x[s], y[s], C))
        feats.append(hidden_features(cloud_params, x[q]))
        labels.append(y[q])
    e = torch.stack(embeds)                                                   # (K, C H)
    # Every user's query half, padded to the longest: (K, Q, H) features, (K, Q) labels and real-sample mask.
    K, Q = len(feats), max(len(y) for y in labels)
    h = torch.zeros(K, Q, hyper.hidden)
    y_q = torch.zeros(K, Q, dtype=torch.int64)
    real = torch.zeros(K, Q)
    for k, (f, y) in enumerate(zip(feats, labels)):
        h[k, : len(y)], y_q[k, : len(y)], real[k, : len(y)] = f, y, 1.0
    opt = torch.optim.Adam(hyper.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.steps):
        W, b = hyper(e)                                                       # (K, C, H), (K, C)
        logits = torch.baddbmm(b[:, None], h, W.transpose(1, 2))              # (K, Q, C): user k's own head
        ce = F.cross_entropy(logits.reshape(K * Q, C), y_q.flatten(), reduction="none")  # (K Q,)
        loss = (ce * real.flatten()).sum() / real.sum()                       # mean over all query samples
        opt.zero_grad()
        loss.backward()
        opt.step()
    return hyper


@torch.no_grad()
def generate_models(hyper: HyperHead, cloud_params: Params, users: UserDatasets) -> Stacked:
    """Every device's model: the cloud body and the head g(e_k), e_k from the device's samples in ``users``."""
    e = torch.stack([device_embedding(cloud_params, x, y, hyper.num_classes) for x, y in zip(users.xs, users.ys)])
    W, b = hyper(e)
    return {**stack(cloud_params, len(users)), "3.weight": W.detach(), "3.bias": b.detach()}
