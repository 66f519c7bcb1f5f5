"""The roofline model: how long a layer takes on a device.

Williams et al. (CACM 2009): attainable FLOP/s = min(peak, AI x bandwidth), with arithmetic intensity
AI = FLOPs / bytes moved. A layer's time is therefore

    t = FLOPs / (eta * min(peak, AI * BW)) = max(FLOPs / peak, bytes / BW) / eta,

where ``eta`` (``efficiency``) is the fraction of the roofline that real kernels reach. The second form
also covers layers with no FLOPs (ReLU, pooling), which take bytes / BW.
"""

from __future__ import annotations

from collections.abc import Sequence

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
