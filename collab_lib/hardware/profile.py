"""Per-layer profile of a sequential torch model: FLOPs, parameter bytes and activation bytes.

FLOPs come from torch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`), which counts
matrix multiplies and convolutions as 2 FLOP per multiply-accumulate and element-wise ops (ReLU, pooling)
as zero. Those layers still cost time on real hardware: the roofline model charges them for the bytes they
move (:func:`collab_lib.hardware.roofline.layer_time_s`).

:func:`total_flops` sums a profile. For the one-hidden-layer MLP of the personalization labs the counts are
also written out in closed form, for inference (:func:`mlp_forward_flops`) and for one SGD step on a chosen part
of the model (:func:`mlp_train_flops`); ``tests/test_personalize.py`` checks both against torch's counter.

Bytes are those of the deployment being modelled, which stores and sends floating-point tensors as float32
(:func:`tensor_bytes`), whatever dtype the simulation computes in: the labs compute in float64 so that
their numbers are the same on every CPU (:mod:`collab_lib.seed`), and that must not double what a phone sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class LayerProfile:
    """One layer of a sequential model. Bytes as the deployment stores them (:func:`tensor_bytes`)."""

    name: str
    flops: int
    param_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def bytes_moved(self) -> int:
        """Bytes a layer reads and writes once: weights, input and output (no cache reuse across layers)."""
        return self.param_bytes + self.input_bytes + self.output_bytes


DEPLOYED_FLOAT_BYTES = 4
"""Bytes per floating-point value in a modelled deployment: float32."""


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of ``t`` as a deployment stores and sends it: floating-point values at float32
    (:data:`DEPLOYED_FLOAT_BYTES`) or at their own width if narrower (bf16, fp16); other dtypes at theirs."""
    size = t.element_size()
    if t.is_floating_point():
        size = min(size, DEPLOYED_FLOAT_BYTES)
    return t.numel() * size


@torch.no_grad()
def profile_model(model: nn.Sequential, example_input: torch.Tensor) -> list[LayerProfile]:
    """Run ``example_input`` through each child of ``model`` and profile it.

    Parameters
    ----------
    model:
        An ``nn.Sequential``; its children are the candidate cut points of split inference.
    example_input:
        One input batch, e.g. ``(1, 3, 224, 224)``. Meta tensors work (no compute): build the model with
        ``torch.device("meta")`` and pass ``torch.empty(shape, device="meta")``.

    Returns
    -------
    One :class:`LayerProfile` per child, in order.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential (its children are the layers), got {type(model).__name__}")
    if len(model) == 0:
        raise ValueError("model has no layers")
    profiles = []
    x = example_input
    for name, layer in model.named_children():
        counter = FlopCounterMode(display=False)
        with counter:
            y = layer(x)
        profiles.append(
            LayerProfile(
                name=f"{name}:{type(layer).__name__}",
                flops=int(counter.get_total_flops()),
                param_bytes=sum(tensor_bytes(p) for p in layer.parameters()),
                input_bytes=tensor_bytes(x),
                output_bytes=tensor_bytes(y),
            )
        )
        x = y
    return profiles


def total_flops(layers: Sequence[LayerProfile]) -> int:
    """FLOPs of running ``layers`` once, in order: the sum of their ``flops`` (:class:`LayerProfile`)."""
    return sum(p.flops for p in layers)


def mlp_forward_flops(in_features: int, hidden: int, num_classes: int) -> int:
    """FLOPs of one sample through :func:`~collab_lib.models.mlp`: 2 (d H + H C)."""
    return 2 * (in_features * hidden + hidden * num_classes)


TRAINED_PARTS = ("all", "head", "patch")


def mlp_train_flops(in_features: int, hidden: int, num_classes: int, part: str = "all") -> int:
    """FLOPs of one sample's SGD step (forward + backward) on a one-hidden-layer MLP.

    The backward pass needs the weight gradient of every trained layer (2 x its multiply-adds) and the
    input gradient of every layer above a trained one: ``"all"`` adds 2 d H + 4 H C to the forward pass,
    ``"head"`` (last layer only) adds 2 H C, ``"patch"`` (a per-unit scale and shift of the hidden layer,
    :mod:`~collab_lib.parameter_based.dccl`) adds 2 H C + 4 H.
    """
    d, H, C = in_features, hidden, num_classes
    extra = {"all": 2 * d * H + 4 * H * C, "head": 2 * H * C, "patch": 2 * H * C + 4 * H}
    if part not in extra:
        raise ValueError(f"part must be one of {TRAINED_PARTS}, got {part!r}")
    return mlp_forward_flops(d, H, C) + extra[part]
