"""DCCL: device–cloud collaborative learning for recommendation, in miniature.

Yao, Wang, Jia, Han, Zhou and Yang, "Device-Cloud Collaborative Learning for Recommendation", KDD 2021
(arXiv:2104.06624). Two directions:

* **MetaPatch** (device side): the cloud model stays frozen on the device and each user trains only a small
  *patch* on its own samples, so that one centralized model becomes many personalized ones at a fraction of
  the trainable parameters of fine-tuning.
* **MoMoDistill** (cloud side, "model-over-models" distillation): the cloud distills the personalized device
  models back into the centralized model, which is then the base for the next round of patches.

Our patch is a per-unit scale and shift of the cloud model's hidden layer (FiLM-style),
h' = h ⊙ (1 + γ_k) + β_k with γ_k, β_k in R^H, initialised at γ = β = 0 so that a fresh patch leaves the cloud
model's outputs unchanged; 2 H values per user. MoMoDistill here is knowledge distillation (Hinton, Vinyals
and Dean 2015, arXiv:1503.02531) of the cloud model on every user's samples towards that user's patched
model's softened outputs, mixed with the true labels.

Departures, labelled:

* DCCL's patches are generated through meta-learning from a shared *meta-patch*, which further reduces the
  parameters per user; ours are trained directly from identity by SGD (:mod:`collab_lib.parameter_based.personalize`'s trainer).
* DCCL works on recommendation logs and a click-through-rate model; we use any classification data with the
  one-hidden-layer MLP of :func:`~collab_lib.models.mlp`.
* The distillation loss, temperature and the mixing weight α are ours (Hinton et al.'s form).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from collab_lib._validate import positive_int
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.parameter_based.params import Params, get_params, set_params
from collab_lib.parameter_based.personalize import PersonalConfig, Stacked, personal_batches, sgd_per_user, stack

PATCH = ("patch_scale", "patch_shift")


class PatchedMLP(nn.Module):
    """A cloud :func:`~collab_lib.models.mlp` (Flatten, Linear, ReLU, Linear) with a patch
    on its hidden layer: logits = W2 (relu(W1 x + b1) ⊙ (1 + γ) + β) + b2."""

    def __init__(self, cloud: nn.Sequential) -> None:
        super().__init__()
        if not (isinstance(cloud, nn.Sequential) and len(cloud) == 4 and isinstance(cloud[1], nn.Linear)
                and isinstance(cloud[3], nn.Linear)):
            raise ValueError("cloud must be a one-hidden-layer mlp(in_features, hidden > 0, num_classes)")
        self.cloud = copy.deepcopy(cloud)
        hidden = cloud[1].out_features
        self.patch_scale = nn.Parameter(torch.zeros(hidden))  # γ: 0 = identity
        self.patch_shift = nn.Parameter(torch.zeros(hidden))  # β

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cloud[2](self.cloud[1](self.cloud[0](x)))              # (n, H)
        h = h * (1 + self.patch_scale) + self.patch_shift               # (n, H)
        return self.cloud[3](h)                                         # (n, C)


def patched_params(cloud_params: Params, hidden: int) -> Params:
    """A :class:`PatchedMLP`'s parameters: the cloud's (prefixed ``cloud.``) and an identity patch."""
    return {**{f"cloud.{n}": p for n, p in cloud_params.items()},
            "patch_scale": torch.zeros(hidden), "patch_shift": torch.zeros(hidden)}


def meta_patch(cloud: nn.Sequential, cloud_params: Params, users: UserDatasets, config: PersonalConfig) -> Stacked:
    """Every user's patched model: the cloud model frozen, the patch trained for E epochs on the user's
    samples from identity. Returns stacked :class:`PatchedMLP` parameters ``(num_users, *shape)``."""
    require_users("users", users)
    template = PatchedMLP(cloud)
    start = stack(patched_params(cloud_params, template.patch_scale.numel()), len(users))
    return sgd_per_user(template, start, users.xs, users.ys, personal_batches(users, config), config.lr,
                        trainable=PATCH)


@dataclass(frozen=True)
class DistillConfig:
    """MoMoDistill: E epochs of SGD (batch B, step η) on α T^2 KL(teacher_T || student_T) + (1 - α) CE."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.05
    temperature: float = 2.0   # T
    alpha: float = 0.5         # α: weight of the distillation term
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")


@torch.no_grad()
def teacher_logits(cloud: nn.Sequential, patched: Stacked, users: UserDatasets) -> torch.Tensor:
    """Each user's samples through that user's patched model, pooled in ``users.pooled()`` order: (N, C)."""
    template = PatchedMLP(cloud)
    return torch.cat([functional_call(template, {n: p[k] for n, p in patched.items()}, (x,))
                      for k, x in enumerate(users.xs)])


def momo_distill(cloud: nn.Sequential, cloud_params: Params, patched: Stacked, users: UserDatasets,
                 config: DistillConfig) -> Params:
    """The cloud model after distilling the users' patched models into it, starting from ``cloud_params``."""
    student = set_params(copy.deepcopy(cloud), cloud_params)
    x, y, _ = users.pooled()
    soft = F.softmax(teacher_logits(cloud, patched, users) / config.temperature, dim=1)   # (N, C)
    T, a = config.temperature, config.alpha
    rng = np.random.default_rng([config.seed, 3])
    for _ in range(config.epochs):
        perm = torch.from_numpy(rng.permutation(len(y)))
        for i in range(0, len(y), config.batch_size):
            idx = perm[i:i + config.batch_size]
            logits = student(x[idx])
            kd = F.kl_div(F.log_softmax(logits / T, dim=1), soft[idx], reduction="batchmean") * T * T
            loss = a * kd + (1 - a) * F.cross_entropy(logits, y[idx])
            student.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in student.parameters():
                    p -= config.lr * p.grad
    return get_params(student)
