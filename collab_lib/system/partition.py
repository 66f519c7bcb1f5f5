"""Split inference: run the first k layers on the device, send the activation, finish in the cloud.

Neurosurgeon (Kang et al., ASPLOS 2017) profiles each layer on both sides and picks the cut that minimises
end-to-end latency. For a cut after layer k of n (k = 0: cloud only, k = n: device only):

    T(k) = sum_{i<=k} t_dev(i) + [k < n] * (RTT + 8 * S_k / B_up + sum_{i>k} t_cloud(i) + 8 * S_out / B_down)

with S_0 the input size and S_k the output size of layer k. Layer times come from the roofline model.
Departure from the paper: Neurosurgeon predicts layer times with regression models fitted to measurements;
here they come from :func:`collab_lib.hardware.roofline.layer_time_s`.

Neurosurgeon also minimises the phone's energy; :func:`split_energies` prices the same cuts in joules: the
device's compute energy for layers 1..k (:func:`collab_lib.hardware.energy.compute_energy_j`) plus the
radio energy of the upload and download (:func:`collab_lib.hardware.energy.transfer_energy_j`).

Models whose layers are not a chain (residual connections, branches) are cut between *blocks*: make each
block one child of the ``nn.Sequential`` (see :func:`collab_lib.models.residual_cnn`), so that exactly one
tensor is live at every cut point; :func:`~collab_lib.hardware.profile.profile_model` profiles each block
as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collab_lib.hardware.energy import RadioPowerModel, compute_energy_j, transfer_energy_j
from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import DeviceSpec, LinkSpec


@dataclass(frozen=True)
class SplitLatency:
    """End-to-end latency of one cut, by part. ``split`` = number of layers run on the device."""

    split: int
    num_layers: int
    device_s: float
    rtt_s: float
    uplink_s: float
    cloud_s: float
    downlink_s: float
    bytes_up: int

    @property
    def total_s(self) -> float:
        return self.device_s + self.rtt_s + self.uplink_s + self.cloud_s + self.downlink_s

    @property
    def cost(self) -> float:
        """What :func:`best_split` minimises: end-to-end seconds."""
        return self.total_s

    @property
    def where(self) -> str:
        """``"cloud"`` (nothing on the device), ``"device"`` (nothing sent) or ``"split"``."""
        if self.split == 0:
            return "cloud"
        return "device" if self.split == self.num_layers else "split"


def _input_bytes(layers: Sequence[LayerProfile], input_bytes: int | None) -> int:
    """What the cloud-only cut sends: ``input_bytes``, or the first layer's input tensor."""
    if not layers:
        raise ValueError("layers is empty")
    if input_bytes is None:
        return layers[0].input_bytes
    if input_bytes < 0:
        raise ValueError(f"input_bytes must be >= 0, got {input_bytes}")
    return input_bytes


def split_latencies(
    layers: Sequence[LayerProfile],
    device: DeviceSpec,
    cloud: DeviceSpec,
    link: LinkSpec,
    *,
    input_bytes: int | None = None,
    device_precision: str = "fp32",
    cloud_precision: str = "fp32",
    device_efficiency: float = 1.0,
    cloud_efficiency: float = 1.0,
) -> list[SplitLatency]:
    """Latency of every cut k = 0..n of a layer sequence.

    Parameters
    ----------
    layers:
        Profiles from :func:`collab_lib.hardware.profile.profile_model`.
    input_bytes:
        Bytes sent for the cloud-only cut. Defaults to the first layer's input tensor; pass the encoded
        size when the device would send, e.g., 8-bit pixels instead of float32.
    device_efficiency, cloud_efficiency:
        Fraction of the roofline reached on each side (see :func:`~collab_lib.hardware.roofline.layer_time_s`).
    """
    n = len(layers)
    input_bytes = _input_bytes(layers, input_bytes)
    out = []
    for k in range(n + 1):
        device_s = layers_time_s(layers[:k], device, device_precision, device_efficiency)
        if k == n:
            out.append(SplitLatency(k, n, device_s, 0.0, 0.0, 0.0, 0.0, bytes_up=0))
            continue
        bytes_up = input_bytes if k == 0 else layers[k - 1].output_bytes
        out.append(
            SplitLatency(
                split=k,
                num_layers=n,
                device_s=device_s,
                rtt_s=link.rtt_s,
                uplink_s=transfer_time_s(bytes_up, link.uplink_bits_per_s),
                cloud_s=layers_time_s(layers[k:], cloud, cloud_precision, cloud_efficiency),
                downlink_s=transfer_time_s(layers[-1].output_bytes, link.downlink_bits_per_s),
                bytes_up=bytes_up,
            )
        )
    return out


@dataclass(frozen=True)
class SplitEnergy:
    """The phone's energy for one cut, by part. ``split`` = number of layers run on the device."""

    split: int
    num_layers: int
    compute_j: float
    radio_j: float
    bytes_up: int

    @property
    def total_j(self) -> float:
        return self.compute_j + self.radio_j

    @property
    def cost(self) -> float:
        """What :func:`best_split` minimises: the phone's joules."""
        return self.total_j

    @property
    def where(self) -> str:
        if self.split == 0:
            return "cloud"
        return "device" if self.split == self.num_layers else "split"


def split_energies(
    layers: Sequence[LayerProfile],
    link: LinkSpec,
    radio: RadioPowerModel,
    *,
    input_bytes: int | None = None,
    precision: str = "fp32",
    scale: float = 1.0,
    include_tail: bool = False,
) -> list[SplitEnergy]:
    """The phone's energy for every cut k = 0..n: compute of layers 1..k plus the radio for k < n.

    Compute energy counts each layer's FLOPs and its ``bytes_moved`` through DRAM at 45 nm energies times
    ``scale``; ``include_tail`` prices every request as an isolated transfer (radio promoted, then left in
    its tail), otherwise the radio is already connected.
    """
    n = len(layers)
    input_bytes = _input_bytes(layers, input_bytes)
    per_layer = [compute_energy_j(p.flops, p.bytes_moved, precision, scale) for p in layers]
    out = []
    for k in range(n + 1):
        compute_j = sum(per_layer[:k])
        if k == n:
            out.append(SplitEnergy(k, n, compute_j, 0.0, 0))
            continue
        bytes_up = input_bytes if k == 0 else layers[k - 1].output_bytes
        radio_j = transfer_energy_j(bytes_up, layers[-1].output_bytes, link, radio, include_tail)
        out.append(SplitEnergy(k, n, compute_j, radio_j, bytes_up))
    return out


def best_split(cuts: Sequence[SplitLatency] | Sequence[SplitEnergy]) -> SplitLatency | SplitEnergy:
    """The cut with the lowest cost, seconds or joules (the earliest one on ties)."""
    if not cuts:
        raise ValueError("cuts is empty")
    return min(cuts, key=lambda c: c.cost)
