"""Model parameters as plain tensors: what federated learning sends, averages and stores.

A :data:`Params` is ``dict(model.named_parameters())``, detached. Stacked parameters, one row per client,
are the same dict with a leading client axis on every tensor: ``name -> (K, *shape)``.
"""

from __future__ import annotations

import torch
from torch import nn

Params = dict[str, torch.Tensor]
"""Model parameters by name, as ``dict(model.named_parameters())`` gives them (detached)."""

BYTES_PER_FLOAT32 = 4
"""What one parameter costs on the link: the deployments the book models send float32."""


def get_params(model: nn.Module) -> Params:
    """A detached copy of ``model``'s parameters by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def set_params(model: nn.Module, params: Params) -> nn.Module:
    """Copy ``params`` into ``model`` in place and return it."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model


def num_values(params: Params) -> int:
    """Number of scalars in ``params``: the P in "P x 4 bytes per model sent"."""
    return sum(p.numel() for p in params.values())
