"""What a federated strategy decides, and the interface a new one implements.

A round (:func:`collab_lib.parameter_based.federated.run_round`) samples clients, sends them the model,
lets them train, and hands what comes back to a *strategy*, which decides two things, as Flower's
``Strategy`` does with ``configure_fit`` and ``aggregate_fit``:

* :meth:`Strategy.local_objective`: what the clients minimise this round (FedAvg: their own loss; FedProx:
  their loss plus a proximal term);
* :meth:`Strategy.aggregate`: how the server turns the clients' models into the next global model (FedAvg:
  the sample-weighted mean; FedAvgM: that mean taken as a step with server momentum), with any state the
  strategy keeps across rounds passed in and returned, never hidden in the object, so one strategy object
  can serve several runs.

Each strategy is one file: :mod:`~collab_lib.parameter_based.fedavg`,
:mod:`~collab_lib.parameter_based.fedprox`, :mod:`~collab_lib.parameter_based.fedavgm`. A new strategy
subclasses :class:`Strategy` (or one of these) as a frozen dataclass, overrides what it changes, and gets a
test; both engines of :func:`~collab_lib.parameter_based.federated.federate`, the Flower app and the
split-learning comparison then run it unchanged. Its fields must be numbers, so that the Flower app can
pass it in a run config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from collab_lib.parameter_based.params import Params


@dataclass(frozen=True)
class LocalObjective:
    """What every client minimises in a round: F_k(w) + (mu / 2) ||w - w_t||^2 from w = w_t, with SGD."""

    mu: float = 0.0  # proximal weight μ (FedProx); 0 is the client's own loss (FedAvg)

    def __post_init__(self) -> None:
        if not self.mu >= 0:
            raise ValueError(f"mu must be >= 0, got {self.mu!r}")


@dataclass(frozen=True)
class ClientResults:
    """What the server holds after a round's local training, one row per client that answered."""

    client_ids: np.ndarray     # (a,) ids of the clients that answered
    num_examples: torch.Tensor  # (a,) float64 n_k, each client's training-sample count
    params: Params             # name -> (a, *shape): each client's model as the server sees it

    def __post_init__(self) -> None:
        a = len(self.client_ids)
        if a == 0 or len(self.num_examples) != a or any(p.shape[0] != a for p in self.params.values()):
            raise ValueError(f"ClientResults: {a} client ids, {len(self.num_examples)} sample counts and "
                             f"{sorted({p.shape[0] for p in self.params.values()})} rows of parameters must agree "
                             "and be non-zero")


class Strategy(ABC):
    """How the clients train and how the server aggregates; see the module docstring."""

    def local_objective(self, round_idx: int) -> LocalObjective:
        """What the clients minimise in round ``round_idx``; their own loss unless overridden."""
        return LocalObjective()

    def init_state(self, params: Params) -> object:
        """The server's state before round 0 (for example a momentum buffer); None unless overridden."""
        return None

    @abstractmethod
    def aggregate(self, round_idx: int, global_params: Params, results: ClientResults,
                  state: object) -> tuple[Params, object]:
        """The next global model from w_t (``global_params``) and the clients' models; returns it and the
        new state."""
