"""The memory wall of on-device training: what training holds in memory that inference does not.

Training keeps, besides the weights: a gradient per trainable weight, the optimizer's state (SGD with
momentum: one buffer per weight; Adam: two), and every activation that backward needs, saved during the
forward pass. Inference needs the weights and only the activations in flight.

* :func:`measure_training_memory` counts these for a real torch model, activations with autograd's own
  hook for saved tensors (each storage once; parameters are counted as weights, not activations).
* :func:`transformer_training_memory` estimates them for a Llama-style model from its shape: mixed-
  precision Adam keeps 16 bytes per trainable parameter (fp16 weight and gradient, fp32 master weight,
  two fp32 moments; Rajbhandari et al., ZeRO, SC 2020), and a transformer layer saves about
  s*b*h*(34 + 5*a*s/h) bytes of 16-bit activations without recomputation (Korthikanti et al., 2022,
  arXiv:2205.05198; s sequence length, b batch, h hidden size, a attention heads).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from collab_lib._validate import positive_int
from collab_lib.hardware.llm import TransformerSpec

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}
"""Buffers per trainable parameter kept by each optimizer (plain SGD keeps none)."""


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes by kind; ``total_bytes`` is their sum."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes


def _states(optimizer: str) -> int:
    try:
        return OPTIMIZER_STATES[optimizer]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {sorted(OPTIMIZER_STATES)}") from None


def saved_activation_bytes(model: nn.Module, example_input: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass (each storage once)."""
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_storages:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(example_input)
    return sum(seen.values())


def measure_training_memory(model: nn.Module, example_input: torch.Tensor, optimizer: str = "adam") -> MemoryBreakdown:
    """Training memory of ``model`` on one batch: weights, gradients and optimizer state of the trainable
    parameters (``requires_grad``), and the activations saved for backward."""
    states = _states(optimizer)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return MemoryBreakdown(
        weights_bytes=weights,
        gradients_bytes=trainable,
        optimizer_bytes=states * trainable,
        activations_bytes=saved_activation_bytes(model, example_input),
    )


@torch.no_grad()
def measure_inference_memory(model: nn.Sequential, example_input: torch.Tensor) -> MemoryBreakdown:
    """Inference memory of a sequential model: the weights plus the largest input + output pair of any
    layer (only the tensors in flight are alive)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    peak, x = 0, example_input
    for layer in model:
        y = layer(x)
        peak = max(peak, x.numel() * x.element_size() + y.numel() * y.element_size())
        x = y
    return MemoryBreakdown(weights, 0.0, 0.0, float(peak))


def transformer_training_memory(
    model: TransformerSpec,
    seq_len: int,
    batch: int = 1,
    trainable_fraction: float = 1.0,
    frozen_bytes_per_param: float = 2.0,
) -> MemoryBreakdown:
    """Mixed-precision Adam fine-tuning of a Llama-style model, without activation recomputation.

    Trainable parameters cost 16 bytes each (ZeRO's accounting: 2 weight + 2 gradient + 4 master + 8 Adam);
    frozen ones only their ``frozen_bytes_per_param``. ``trainable_fraction`` < 1 models adapters such as
    LoRA approximately (their own activations are ignored). Activations follow Korthikanti et al.
    """
    positive_int("seq_len", seq_len)
    positive_int("batch", batch)
    if not 0 <= trainable_fraction <= 1:
        raise ValueError(f"trainable_fraction must be in [0, 1], got {trainable_fraction}")
    n = model.num_params
    trainable = trainable_fraction * n
    s, b, h, a = seq_len, batch, model.d_model, model.num_heads
    per_layer = s * b * h * (34 + 5 * a * s / h)
    return MemoryBreakdown(
        weights_bytes=2 * trainable + 4 * trainable + frozen_bytes_per_param * (n - trainable),  # fp16 + fp32 master
        gradients_bytes=2 * trainable,
        optimizer_bytes=8 * trainable,
        activations_bytes=model.num_layers * per_layer,
    )
