"""Split learning: the device trains the first layers, the cloud the rest; activations go up, gradients down.

Split learning (Gupta and Raskar, J. Netw. Comput. Appl. 2018; Vepakomma et al., 2018, arXiv:1812.00564)
cuts a network f = f_cloud . f_device after layer k. One training step on a batch (x, y) of B samples:

1. device: h = f_device(x), shape ``(B, *a_k)``; send h up                     (B q_k values)
2. cloud:  loss = L(f_cloud(h), y); backpropagate to dL/dh; send dL/dh down      (B q_k values)
3. device: backpropagate dL/dh through f_device; both sides update their weights.

By the chain rule every parameter receives exactly the gradient of the unsplit model (tests/
test_split_learning.py checks this against autograd on the whole model for every cut). With q_k the number
of values in one sample's activation at the cut, b bytes per value and the labels sent with the activations,

    split learning, per step:  2 B q_k b + B b_label           (activations up, gradients down)
    FedAvg, per round:         2 P b per participating device  (model down, model up; P parameters)

so over one epoch of n local samples split learning moves 2 n q_k b + n b_label bytes and FedAvg 2 P b
(for E = 1 local epoch): split learning is cheaper when n q_k < P roughly, i.e. for small local data sets
and large models (Singh et al., 2019, arXiv:1909.09145, make the same comparison).

Departures, labelled:

* :func:`train_split` is *vanilla* (sequential) split learning: devices take turns, each running one local
  epoch with the cloud, and hand the device-side weights to the next device. Gupta and Raskar allow a
  peer-to-peer or a server-relayed hand-off; we count the relayed one (up + down, 2 P_device b per turn).
  Parallel variants (SplitFed, Thapa et al., AAAI 2022) are not implemented.
* Labels travel to the cloud with the activations. The U-shaped configuration of Vepakomma et al., which keeps
  the last layers and the labels on the device, is not implemented.
* :func:`train_fedavg` is a minimal FedAvg (McMahan et al., AISTATS 2017) with full participation, kept here
  only to compare against on the same task; both use plain SGD so that the two differ only in what travels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.hardware.profile import tensor_bytes
from collab_lib.metrics import accuracy
from collab_lib.models import split_model
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.federated import FedConfig, RoundPlan, run_round
from collab_lib.parameter_based.params import Params, get_params, set_params
from collab_lib.parameter_based.strategy import ClientResults, LocalObjective, Strategy
from collab_lib.seed import generator

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TestSet = tuple[torch.Tensor, torch.Tensor]  # (x, y) held out, pooled over the devices


def num_params(module: nn.Module) -> int:
    """Number of trainable values in ``module`` (P in the formulas above)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass(frozen=True)
class SplitStep:
    """What one split-learning step computed and moved. Bytes are payloads only (no protocol headers), with
    floating-point values at float32 (:func:`~collab_lib.hardware.profile.tensor_bytes`)."""

    loss: float
    bytes_up: int    # activations + labels, device -> cloud
    bytes_down: int  # gradient of the activations, cloud -> device


def split_step(device: nn.Module, cloud: nn.Module, x: torch.Tensor, y: torch.Tensor,
               loss_fn: Loss = F.cross_entropy) -> SplitStep:
    """Run one forward and backward pass as the two parties would; leave the gradients in ``.grad``.

    ``x``: (B, ...) device inputs; ``y``: (B,) labels. The cloud only ever sees a detached copy of the
    activations ``h`` ``(B, *a_k)``, and the device only the cloud's ``dL/dh`` (same shape): the autograd graph is
    cut at the link, as it is between two machines. Gradients accumulate into existing ``.grad`` as with
    ``loss.backward()``; the caller zeroes them and steps the optimizers.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    h = device(x)                                    # (B, *a_k), on the device
    h_cloud = h.detach().requires_grad_(True)        # what arrives in the cloud
    loss = loss_fn(cloud(h_cloud), y)
    loss.backward()                                  # cloud weights' grads and dL/dh
    grad_h = h_cloud.grad                            # (B, *a_k), sent down
    h.backward(grad_h)                               # device weights' grads
    return SplitStep(loss=loss.item(), bytes_up=tensor_bytes(h) + tensor_bytes(y), bytes_down=tensor_bytes(grad_h))


def split_bytes_per_step(values_per_sample: int, batch_size: int, bytes_per_value: int = 4,
                         label_bytes: int = 8) -> int:
    """2 B q_k b + B b_label: activations up, gradients down, and the labels (int64 by default)."""
    for name, v in (("values_per_sample", values_per_sample), ("batch_size", batch_size),
                    ("bytes_per_value", bytes_per_value)):
        positive_int(name, v)
    non_negative_int("label_bytes", label_bytes)
    return batch_size * (2 * values_per_sample * bytes_per_value + label_bytes)


def fedavg_bytes_per_round(num_parameters: int, bytes_per_value: int = 4) -> int:
    """2 P b: one device downloads the model and uploads its update once per round."""
    positive_int("num_parameters", num_parameters)
    positive_int("bytes_per_value", bytes_per_value)
    return 2 * num_parameters * bytes_per_value


# --- Training on several devices ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Shared by both schemes so that they differ only in what travels. ``rounds``: passes over every
    device's data (one local epoch each); plain SGD with learning rate ``lr``; batch orders from ``seed``."""

    rounds: int = 10
    batch_size: int = 32
    lr: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        positive_int("rounds", self.rounds)
        positive_int("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        non_negative_int("seed", self.seed)


@dataclass
class History:
    """Per round (length ``rounds``): cumulative bytes over the link (all devices, both directions),
    cumulative SGD steps, and test accuracy after the round."""

    bytes_total: list[int]
    steps: list[int]
    accuracy: list[float]


def _check_clients(clients: UserDatasets) -> None:
    require_users("clients", clients)
    empty = [i for i, n in enumerate(clients.sizes.tolist()) if n == 0]
    if empty:
        raise ValueError(f"clients {empty} hold no samples")


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]


def train_split(model: nn.Sequential, cut: int, clients: UserDatasets, test: TestSet,
                config: TrainConfig) -> History:
    """Vanilla split learning over ``clients`` (device i holds ``clients.xs[i]``, ``clients.ys[i]``) in turn,
    training ``model`` in place.

    ``cut`` layers train on the device, the rest in the cloud (:func:`~collab_lib.models.split_model`); it
    must be in [1, len(model) - 1], a layer on each side. Each round, device i = 0, 1, ... receives the
    device-side weights (except the very first turn), runs one epoch of :func:`split_step` on its
    mini-batches (order from ``generator(config.seed, offset)``), and passes the weights on. Bytes: every
    step's payloads plus 2 P_device b per hand-off (relayed by the cloud).
    """
    _check_clients(clients)
    seed = config.seed
    if isinstance(model, nn.Sequential) and (isinstance(cut, bool) or not isinstance(cut, int)
                                             or not 1 <= cut <= len(model) - 1):  # a layer on each side
        raise ValueError(f"cut must be an int in [1, {len(model) - 1}] for a model of {len(model)} layers, got {cut!r}")
    device, cloud = split_model(model, cut)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    handoff = 2 * sum(tensor_bytes(p) for p in device.parameters())
    total, steps, hist = 0, 0, History([], [], [])
    for r in range(config.rounds):
        for i, (x, y) in enumerate(zip(clients.xs, clients.ys)):
            if r > 0 or i > 0:
                total += handoff
            g = generator(seed, offset=r * len(clients) + i)
            for idx in _batches(len(x), config.batch_size, g):
                opt.zero_grad()
                s = split_step(device, cloud, x[idx], y[idx])
                opt.step()
                total += s.bytes_up + s.bytes_down
                steps += 1
        hist.bytes_total.append(total)
        hist.steps.append(steps)
        hist.accuracy.append(accuracy(model, *test))
    return hist


def train_fedavg(model: nn.Module, clients: UserDatasets, test: TestSet, config: TrainConfig,
                 strategy: Strategy = FedAvg()) -> History:
    """FedAvg with every device in every round and one local epoch of SGD, training ``model`` in place.

    The round is the library's one federated round (:func:`~collab_lib.parameter_based.federated.run_round`)
    with full participation, run by ``strategy`` (FedAvg: the new global model is the average of the local
    models weighted by the devices' sample counts, McMahan et al.'s n_k / n); the local training is this
    module's, with the same batch order as :func:`train_split` so that the two differ only in what travels.
    Bytes: 2 P b per device per round.
    """
    _check_clients(clients)
    seed = config.seed
    fed = FedConfig(rounds=config.rounds, client_fraction=1.0, local_epochs=1, batch_size=config.batch_size,
                    lr=config.lr, seed=seed)
    sizes = clients.sizes.numpy()
    params = get_params(model)
    state = strategy.init_state(params)
    total, steps, hist = 0, 0, History([], [], [])

    def local_epoch(plan: RoundPlan, sent: Params, objective: LocalObjective) -> ClientResults:
        nonlocal steps
        updates = []
        for i in (int(k) for k in plan.answered):
            x, y = clients.xs[i], clients.ys[i]
            net = set_params(copy.deepcopy(model), sent)
            opt = torch.optim.SGD(net.parameters(), lr=config.lr)
            g = generator(seed, offset=plan.round_idx * len(clients) + i)
            for idx in _batches(len(x), config.batch_size, g):
                opt.zero_grad()
                loss = F.cross_entropy(net(x[idx]), y[idx])
                if objective.mu > 0:  # FedProx's proximal term, if the strategy asks for it
                    loss = loss + objective.mu / 2 * sum(((p - sent[n]) ** 2).sum() for n, p in net.named_parameters())
                loss.backward()
                opt.step()
                steps += 1
            updates.append(get_params(net))
        stacked = {n: torch.stack([u[n] for u in updates]) for n in sent}
        return ClientResults(plan.answered, torch.from_numpy(sizes[plan.answered]).double(), stacked)

    for r in range(config.rounds):
        out = run_round(r, params, state, sizes, fed, strategy, local_epoch)
        params, state = out.params, out.state
        set_params(model, params)
        total += out.bytes_down + out.bytes_up
        hist.bytes_total.append(total)
        hist.steps.append(steps)
        hist.accuracy.append(accuracy(model, *test))
    return hist
