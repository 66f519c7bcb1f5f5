"""The roofline model: how long a layer takes on a device.

Williams et al. (CACM 2009): attainable FLOP/s = min(peak, AI x bandwidth), with arithmetic intensity
AI = FLOPs / bytes moved. A layer's time is therefore

    t = FLOPs / (eta * min(peak, AI * BW)) = max(FLOPs / peak, bytes / BW) / eta,

where ``eta`` (``efficiency``) is the fraction of the roofline that real kernels reach. The second form
also covers layers with no FLOPs (ReLU, pooling), which take bytes / BW.

LLM inference (LLM-Viewer, Yuan et al. 2024, arXiv:2402.16363). Decoding one token at batch 1 multiplies
every weight once (2 FLOP per weight) and must read every weight from memory, plus the KV cache of the
context: arithmetic intensity ~ 2 / bytes-per-weight, far below any device's ridge point, so decoding is
memory-bound and tokens/s <= bandwidth / bytes-per-token. Prefill of a P-token prompt does P times the
FLOPs with the same weight bytes, so it is compute-bound for all but tiny P.
"""

from __future__ import annotations

from collections.abc import Sequence

from collab_lib._validate import positive_int
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.specs import DeviceSpec


def layer_time_s(
    flops: float, bytes_moved: float, device: DeviceSpec, precision: str = "fp32", efficiency: float = 1.0
) -> float:
    """Roofline time in seconds of ``flops`` operations that move ``bytes_moved`` bytes on ``device``."""
    if flops < 0 or bytes_moved < 0:
        raise ValueError(f"flops and bytes_moved must be >= 0, got {flops}, {bytes_moved}")
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
    compute_s = flops / device.peak(precision)
    memory_s = bytes_moved / device.mem_bw_bytes_per_s
    return max(compute_s, memory_s) / efficiency


def layers_time_s(
    layers: Sequence[LayerProfile], device: DeviceSpec, precision: str = "fp32", efficiency: float = 1.0
) -> float:
    """Sum of :func:`layer_time_s` over ``layers`` (layers run one after another)."""
    return sum(layer_time_s(p.flops, p.bytes_moved, device, precision, efficiency) for p in layers)


def decode_tokens_per_s(
    params: float,
    bytes_per_param: float,
    device: DeviceSpec,
    precision: str,
    *,
    kv_cache_bytes: float = 0.0,
    attention_flops: float = 0.0,
    efficiency: float = 1.0,
) -> float:
    """Tokens per second of batch-1 decoding: one token = ``2 * params + attention_flops`` FLOP moving
    ``params * bytes_per_param + kv_cache_bytes`` bytes.

    ``params`` counts the weights multiplied per token (an embedding table is looked up, not multiplied:
    leave it out unless it doubles as the output layer). See :mod:`collab_lib.hardware.llm` for
    transformer shapes and weight formats.
    """
    if params <= 0 or bytes_per_param <= 0:
        raise ValueError(f"params and bytes_per_param must be > 0, got {params}, {bytes_per_param}")
    flops = 2 * params + attention_flops
    nbytes = params * bytes_per_param + kv_cache_bytes
    return 1.0 / layer_time_s(flops, nbytes, device, precision, efficiency)


def prefill_tokens_per_s(
    params: float,
    bytes_per_param: float,
    device: DeviceSpec,
    precision: str,
    prompt_len: int,
    *,
    attention_flops: float = 0.0,
    efficiency: float = 1.0,
) -> float:
    """Prompt tokens per second when a ``prompt_len``-token prompt is processed in one pass: the FLOPs of
    ``prompt_len`` tokens, the weights read once (activations are assumed to stay on chip)."""
    positive_int("prompt_len", prompt_len)
    if params <= 0 or bytes_per_param <= 0:
        raise ValueError(f"params and bytes_per_param must be > 0, got {params}, {bytes_per_param}")
    flops = 2 * params * prompt_len + attention_flops
    return prompt_len / layer_time_s(flops, params * bytes_per_param, device, precision, efficiency)


def fits_in_memory(required_bytes: float, device: DeviceSpec, usable_fraction: float = 1.0) -> bool:
    """Whether ``required_bytes`` fit in ``usable_fraction`` of the device's memory."""
    if device.mem_bytes is None:
        raise ValueError(f"{device.name} has no memory capacity in the catalog")
    if not 0 < usable_fraction <= 1:
        raise ValueError(f"usable_fraction must be in (0, 1], got {usable_fraction}")
    return required_bytes <= usable_fraction * device.mem_bytes
