"""FedProx: Li, Sahu, Zaheer, Sanjabi, Talwalkar and Smith, "Federated Optimization in Heterogeneous
Networks", MLSys 2020 (arXiv:1812.06127), Algorithm 2.

Client k minimises h_k(w; w_t) = F_k(w) + (μ/2) ||w - w_t||^2, which keeps its model near the global one
however much local work it does; the server aggregates as FedAvg. FedProx also lets a device that could do
only part of its work (a straggler) send what it has: that is a property of the round
(``FedConfig(stragglers="partial")``), not of the strategy, so FedAvg can be run with it too. μ = 0 is FedAvg.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.strategy import LocalObjective


@dataclass(frozen=True)
class FedProx(FedAvg):
    """FedAvg whose clients add the proximal term (μ/2) ||w - w_t||^2 to their loss."""

    mu: float = 0.01  # μ; the paper tunes it from {0.001, 0.01, 0.1, 1}

    def __post_init__(self) -> None:
        LocalObjective(self.mu)  # the same check: mu >= 0

    def local_objective(self, round_idx: int) -> LocalObjective:
        return LocalObjective(mu=self.mu)
