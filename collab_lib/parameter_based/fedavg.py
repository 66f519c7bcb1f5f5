"""FedAvg: McMahan, Moore, Ramage, Hampson and Agüera y Arcas, "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017 (arXiv:1602.05629), Algorithm 1.

Each round the server picks a fraction C of the K clients, each runs E epochs of minibatch SGD (batch B,
step size η) from the global weights w_t on its own loss F_k, and the server takes the sample-weighted mean

    w_{t+1} = sum_k (n_k / n) w^k_{t+1},   n = sum of n_k over the clients that answered.

The sampling, local training and E, B, η live in the round (:mod:`collab_lib.parameter_based.federated`);
the strategy is the last line.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.params import Params
from collab_lib.parameter_based.strategy import ClientResults, Strategy


@dataclass(frozen=True)
class FedAvg(Strategy):
    """Clients minimise their own loss; the server takes the mean of their models weighted by n_k."""

    def aggregate(self, round_idx: int, global_params: Params, results: ClientResults,
                  state: object) -> tuple[Params, object]:
        return weighted_average(results.params, results.num_examples), state
