"""Hardware layer: sourced device and link specs, per-layer model profiles, roofline and transfer times."""

from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.profile import LayerProfile, profile_model
from collab_lib.hardware.roofline import layer_time_s, layers_time_s
from collab_lib.hardware.specs import DEVICES, LINKS, DeviceSpec, LinkSpec, get_device, get_link

__all__ = [
    "DEVICES",
    "LINKS",
    "DeviceSpec",
    "LayerProfile",
    "LinkSpec",
    "get_device",
    "get_link",
    "layer_time_s",
    "layers_time_s",
    "profile_model",
    "transfer_time_s",
]
