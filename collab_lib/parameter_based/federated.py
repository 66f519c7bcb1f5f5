"""One federated round and the loop of rounds: who takes part, what travels, and the record of a run.

A round t (:func:`run_round`), as in McMahan et al.'s Algorithm 1 with the system heterogeneity of Li et
al.: the server samples a fraction C of the K clients; each sampled client fails to answer with probability
``dropout_prob`` (battery, network, user); a share ``straggler_fraction`` of them cannot finish their E
epochs before the round's deadline, and with ``stragglers="drop"`` they are left out (what FedAvg does)
while with ``"partial"`` they send the update after a uniformly random number of steps, between 1 and their
full count (FedProx's partial solutions). The model goes down (through an optional :class:`Codec`, which
transforms what crosses the link in each direction and reports its bytes), the clients train
(:mod:`~collab_lib.parameter_based.local`, or any function that returns their
:class:`~collab_lib.parameter_based.strategy.ClientResults`, such as the Flower app's), and the
:class:`~collab_lib.parameter_based.strategy.Strategy` turns what comes back into the next global model. A
round in which no client answers keeps w_t. :func:`federate` runs the rounds with either local engine and
records them; the Flower app and the split-learning comparison call :func:`run_round` with their own local
training.

Departures, labelled:

* Partial work is counted in SGD steps, not in epochs as in FedProx's experiments, so that a straggler
  can do partial work even when E = 1.
* Randomness: the server's draws in round t come from ``np.random.default_rng([seed, 0, t])``, client k's
  batch order from ``np.random.default_rng([seed, 1, t, k])``: any engine (ours, Flower) that knows
  ``(seed, t, k)`` reproduces the same run, in any order.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.datasets.users import UserDatasets, require_users
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.local import ENGINES, train_clients
from collab_lib.parameter_based.params import BYTES_PER_FLOAT32, Params, get_params, num_values
from collab_lib.parameter_based.strategy import ClientResults, LocalObjective, Strategy

STRAGGLER_POLICIES = ("drop", "partial")


@dataclass(frozen=True)
class FedConfig:
    """One federated training run: who takes part and how clients train. Symbols as in McMahan et al.
    (C, E, B, η). What the clients minimise and how the server aggregates is the strategy's."""

    rounds: int = 20
    client_fraction: float = 0.1      # C: share of the K clients sampled per round, in (0, 1]
    local_epochs: int = 1             # E
    batch_size: int = 10              # B
    lr: float = 0.05                  # η, client SGD step size
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
        if not 0 <= self.dropout_prob < 1:
            raise ValueError(f"dropout_prob must be in [0, 1), got {self.dropout_prob!r}")
        if not 0 <= self.straggler_fraction <= 1:
            raise ValueError(f"straggler_fraction must be in [0, 1], got {self.straggler_fraction!r}")
        if self.stragglers not in STRAGGLER_POLICIES:
            raise ValueError(f"stragglers must be one of {STRAGGLER_POLICIES}, got {self.stragglers!r}")
        non_negative_int("seed", self.seed)


# --- Who takes part in a round ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """Who was asked and who answered in one round. ``steps[i]`` is the number of SGD steps
    ``answered[i]`` ran (fewer than its full count if it was a straggler under ``"partial"``)."""

    round_idx: int           # t
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
    return RoundPlan(round_idx=round_idx, sampled=sampled, answered=sampled[keep], steps=steps[keep],
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


# --- The round and the loop of rounds ---------------------------------------------------------------------


class Codec(Protocol):
    """What happens to parameters on the link (:mod:`collab_lib.parameter_based.compress`).

    ``downlink(params)`` returns the model as the devices receive it and the bytes sent to each device;
    ``uplink(round_idx, client_ids, deltas)`` takes the stacked updates w^k - (received model), name ->
    ``(a, *shape)``, and returns them as the server receives them and the total bytes sent up.
    """

    def downlink(self, params: Params) -> tuple[Params, int]: ...

    def uplink(self, round_idx: int, client_ids: np.ndarray, deltas: Params) -> tuple[Params, int]: ...


TrainFn = Callable[["RoundPlan", Params, LocalObjective], "ClientResults | None"]
"""``train(plan, sent, objective)``: local training of ``plan.answered`` from the model ``sent``; their
results, or None if in the end none answered."""


@dataclass(frozen=True)
class RoundOutcome:
    """The global model and strategy state after one round, who took part, and the bytes each way."""

    params: Params
    state: object
    plan: RoundPlan
    bytes_down: int   # the model sent to every sampled client
    bytes_up: int     # the updates received


def run_round(round_idx: int, params: Params, state: object, sizes: np.ndarray, config: FedConfig,
              strategy: Strategy, train: TrainFn, codec: Codec | None = None) -> RoundOutcome:
    """One round t from the global model w_t (``params``) and the strategy's ``state``; ``sizes`` (K,) are
    the clients' sample counts. See the module docstring.

    Without a ``codec`` the clients' models reach the server as they are, float32 both ways. With one, the
    clients train from the model as ``codec.downlink`` delivers it, and the server sees client k's model as
    its own full-precision w_t plus the update ``codec.uplink`` delivers.
    """
    plan = plan_round(config, sizes, round_idx)
    objective = strategy.local_objective(round_idx)
    model_bytes = num_values(params) * BYTES_PER_FLOAT32
    sent, down_bytes = codec.downlink(params) if codec is not None else (params, model_bytes)
    results = train(plan, sent, objective) if len(plan.answered) > 0 else None
    up_bytes = 0
    if results is not None:
        if codec is None:
            up_bytes = len(results.client_ids) * model_bytes
        else:
            deltas = {n: results.params[n] - sent[n] for n in results.params}       # (a, *shape) each
            received, up_bytes = codec.uplink(round_idx, results.client_ids, deltas)
            results = dataclasses.replace(results, params={n: params[n] + received[n] for n in params})
        params, state = strategy.aggregate(round_idx, params, results, state)
    return RoundOutcome(params, state, plan, len(plan.sampled) * down_bytes, up_bytes)


def federate(model: nn.Module, train: UserDatasets, config: FedConfig, test: UserDatasets | None = None,
             strategy: Strategy = FedAvg(), engine: str = "batched", progress: bool = False,
             callback: Callable[[int, Params], None] | None = None, codec: Codec | None = None) -> FedResult:
    """Train ``model``'s architecture from its current weights for ``config.rounds`` rounds of ``strategy``.

    ``train`` holds one client per user; ``test`` may hold the same users' held-out samples (per-user
    accuracy is then per client) or any other grouping, e.g. one shared test set. ``model`` is not modified.
    ``engine`` is the local training's (:mod:`~collab_lib.parameter_based.local`); ``callback(round,
    params)``, if given, sees the global parameters after each round; ``codec``: see :func:`run_round`.
    """
    require_users("train", train)
    if test is not None:
        require_users("test", test)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a Strategy (FedAvg(), FedProx(mu=...), ...), got {strategy!r}")
    template = _template(model)
    params = get_params(model)
    state = strategy.init_state(params)
    sizes = train.sizes.numpy()

    def local(plan: RoundPlan, sent: Params, objective: LocalObjective) -> ClientResults:
        batches = [client_batches(len(train.ys[k]), config.batch_size, int(s), config.seed, plan.round_idx, int(k))
                   for k, s in zip(plan.answered, plan.steps)]
        return train_clients(template, sent, train, plan.answered, batches, config.lr, objective, engine)

    history = FedHistory()
    rounds = range(config.rounds)
    if progress:
        from tqdm.auto import tqdm
        rounds = tqdm(rounds, desc="rounds")
    for t in rounds:
        out = run_round(t, params, state, sizes, config, strategy, local, codec)
        params, state, plan = out.params, out.state, out.plan
        for name, value in (("sampled", len(plan.sampled)), ("answered", len(plan.answered)),
                            ("dropped_out", plan.dropped_out), ("stragglers", plan.stragglers),
                            ("bytes_down", out.bytes_down), ("bytes_up", out.bytes_up)):
            getattr(history, name).append(value)
        if (t + 1) % config.eval_every == 0 or t + 1 == config.rounds:
            _record(history, template, params, train, test, t + 1)
        if callback is not None:
            callback(t, params)
    return FedResult(params, history)


# --- Evaluation and the record of a run ------------------------------------------------------------------


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
    """The global model after the last round, and the record of the run."""

    params: Params
    history: FedHistory


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
