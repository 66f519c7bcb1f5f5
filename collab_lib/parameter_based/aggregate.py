"""The aggregation math of federated learning: pure functions on stacked parameters.

Strategies (:mod:`collab_lib.parameter_based.strategy`) combine these; nothing here knows about rounds,
clients or links. As in Flower's ``aggregate.py``, each function is a few lines of arithmetic that a test can
check by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from collab_lib.parameter_based.params import Params


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


def momentum_step(global_params: Params, averaged: Params, velocity: Params | None, server_lr: float,
                  server_momentum: float) -> tuple[Params, Params]:
    """One server step with momentum (FedAvgM): Δ = w_t - avg, v' = β v + Δ, w' = w_t - η_s v'.

    ``velocity`` None is v_0 = 0. Returns (w', v'). With β = 0 and η_s = 1, w' = avg (in the last bits too:
    the mean itself is returned, not w - (w - mean)).
    """
    plain = server_momentum == 0 and server_lr == 1
    new_params, new_velocity = {}, {}
    for name, w in global_params.items():
        delta = w - averaged[name]
        v = delta if velocity is None else server_momentum * velocity[name] + delta
        new_velocity[name] = v
        new_params[name] = averaged[name].clone() if plain else w - server_lr * v
    return new_params, new_velocity
