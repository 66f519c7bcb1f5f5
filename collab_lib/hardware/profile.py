"""Per-layer profile of a sequential torch model: FLOPs, parameter bytes and activation bytes.

FLOPs come from torch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`), which counts
matrix multiplies and convolutions as 2 FLOP per multiply-accumulate and element-wise ops (ReLU, pooling)
as zero. Those layers still cost time on real hardware: the roofline model charges them for the bytes they
move (:func:`collab_lib.hardware.roofline.layer_time_s`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class LayerProfile:
    """One layer of a sequential model. Bytes at the dtype the model ran with."""

    name: str
    flops: int
    param_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def bytes_moved(self) -> int:
        """Bytes a layer reads and writes once: weights, input and output (no cache reuse across layers)."""
        return self.param_bytes + self.input_bytes + self.output_bytes


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


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
                param_bytes=sum(_nbytes(p) for p in layer.parameters()),
                input_bytes=_nbytes(x),
                output_bytes=_nbytes(y),
            )
        )
        x = y
    return profiles
