"""FedAvgM: server momentum, Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution
for Federated Visual Classification", 2019 (arXiv:1909.06335).

The server treats Δ_t = w_t - mean_k w^k_{t+1} (FedAvg's mean) as a pseudo-gradient and steps with
momentum: v_{t+1} = β v_t + Δ_t, w_{t+1} = w_t - η_s v_{t+1}. β = 0, η_s = 1 is FedAvg. The momentum
buffer v is the strategy's state across rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab_lib.parameter_based.aggregate import momentum_step, weighted_average
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.params import Params
from collab_lib.parameter_based.strategy import ClientResults


@dataclass(frozen=True)
class FedAvgM(FedAvg):
    """FedAvg's mean applied as a server step with learning rate η_s and momentum β."""

    server_lr: float = 1.0         # η_s
    server_momentum: float = 0.9   # β, in [0, 1)

    def __post_init__(self) -> None:
        if not self.server_lr > 0:
            raise ValueError(f"server_lr must be > 0, got {self.server_lr!r}")
        if not 0 <= self.server_momentum < 1:
            raise ValueError(f"server_momentum must be in [0, 1), got {self.server_momentum!r}")

    def aggregate(self, round_idx: int, global_params: Params, results: ClientResults,
                  state: object) -> tuple[Params, object]:
        averaged = weighted_average(results.params, results.num_examples)
        return momentum_step(global_params, averaged, state, self.server_lr, self.server_momentum)
