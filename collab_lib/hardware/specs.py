"""A sourced catalog of devices and network links.

Every number in :data:`DEVICES` and :data:`LINKS` names where it comes from in the spec's ``sources``
mapping (field name -> text). A text is one of

* a citation key of ``references.bib`` (a published figure), e.g. ``"nvidia2020a100"``;
* ``"derived: <formula> [key, ...]"``, computed from published figures by the formula given;
* ``"assumed: <why>"``, a modelling choice with no published figure behind it.

``tests/test_specs.py`` checks that every numeric field has a source and that every cited key exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "int4")


@dataclass(frozen=True)
class DeviceSpec:
    """Compute, memory and power of one device (a phone SoC, a board, a datacenter GPU).

    ``peak_flops_per_s`` maps a precision (one of :data:`PRECISIONS`) to dense peak operations per second;
    a precision the device has no published figure for is absent.
    """

    name: str
    peak_flops_per_s: Mapping[str, float]
    mem_bw_bytes_per_s: float
    mem_bytes: float | None
    power_w: float | None
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.peak_flops_per_s) - set(PRECISIONS)
        if unknown:
            raise ValueError(f"{self.name}: unknown precision(s) {sorted(unknown)}; valid: {PRECISIONS}")
        for precision, value in self.peak_flops_per_s.items():
            if not value > 0:
                raise ValueError(f"{self.name}: peak_flops_per_s[{precision!r}] must be > 0, got {value}")
        _check_positive(self, ("mem_bw_bytes_per_s", "mem_bytes", "power_w"))
        object.__setattr__(self, "peak_flops_per_s", MappingProxyType(dict(self.peak_flops_per_s)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def peak(self, precision: str) -> float:
        """Peak operations per second at ``precision``; a clear error if the device has no such figure."""
        try:
            return self.peak_flops_per_s[precision]
        except KeyError:
            raise ValueError(
                f"{self.name} has no peak figure for precision {precision!r}; "
                f"valid: {sorted(self.peak_flops_per_s)}"
            ) from None


@dataclass(frozen=True)
class LinkSpec:
    """A network link between a device and the cloud: bit rates each way and round-trip time."""

    name: str
    uplink_bits_per_s: float
    downlink_bits_per_s: float
    rtt_s: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_positive(self, ("uplink_bits_per_s", "downlink_bits_per_s"))
        if not self.rtt_s >= 0:
            raise ValueError(f"{self.name}: rtt_s must be >= 0, got {self.rtt_s}")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))


def _check_positive(spec: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(spec, name)
        if value is not None and not value > 0:
            raise ValueError(f"{spec.name}: {name} must be > 0, got {value}")  # type: ignore[attr-defined]


def numeric_fields(spec: DeviceSpec | LinkSpec) -> list[str]:
    """Names of the numeric figures of a spec that must carry a source (``peak_flops_per_s[fp32]`` style)."""
    names = []
    for f in fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            names.append(f.name)
        elif f.name == "peak_flops_per_s":
            names.extend(f"peak_flops_per_s[{p}]" for p in value)
    return names


GIGA, TERA = 1e9, 1e12

# Snapdragon 8 Gen 3, CPU only. Qualcomm gives the core configuration: 1x Cortex-X4 @ 3.3 GHz,
# 3x Cortex-A720 @ 3.2 GHz, 2x Cortex-A720 @ 3.0 GHz, 2x Cortex-A520 @ 2.3 GHz, LPDDR5X-4800.
# Arm's optimization guides give 4 (X4) and 2 (A720) 128-bit FP/SIMD pipes; one 128-bit FMA pipe does
# 4 fp32 lanes x 2 ops = 8 fp32 FLOP per cycle (16 at fp16). The two A520 efficiency cores are left out.
_SD8G3_FP32 = (3.3 * 4 * 8 + (3 * 3.2 + 2 * 3.0) * 2 * 8) * GIGA  # 355.2 GFLOP/s

DEVICES: Mapping[str, DeviceSpec] = MappingProxyType(
    {
        "snapdragon-8-gen-3": DeviceSpec(
            name="Snapdragon 8 Gen 3 (CPU)",
            peak_flops_per_s={"fp32": _SD8G3_FP32, "fp16": 2 * _SD8G3_FP32},
            mem_bw_bytes_per_s=4800e6 * 2 * 8,  # LPDDR5X-4800: 4800 MHz x 2 (DDR) x 64-bit bus / 8
            mem_bytes=None,
            power_w=None,
            sources={
                "peak_flops_per_s[fp32]": "derived: sum over X4 and A720 cores of GHz x pipes x 8 FLOP/cycle "
                "[qualcomm2023sd8gen3, arm2023cortexx4sog, arm2023cortexa720sog]",
                "peak_flops_per_s[fp16]": "derived: 2 x fp32 (fp16 NEON lanes are twice as many) "
                "[arm2023cortexx4sog, arm2023cortexa720sog]",
                "mem_bw_bytes_per_s": "derived: 4800 MT/s x 2 x 64-bit bus / 8 = 76.8 GB/s [qualcomm2023sd8gen3]",
            },
        ),
        "a100-sxm": DeviceSpec(
            name="NVIDIA A100 SXM 80 GB",
            peak_flops_per_s={"fp32": 19.5 * TERA, "tf32": 156 * TERA, "fp16": 312 * TERA,
                              "bf16": 312 * TERA, "int8": 624 * TERA},
            mem_bw_bytes_per_s=2039 * GIGA,
            mem_bytes=80 * GIGA,
            power_w=400,
            sources={
                "peak_flops_per_s[fp32]": "nvidia2020a100",
                "peak_flops_per_s[tf32]": "nvidia2020a100",
                "peak_flops_per_s[fp16]": "nvidia2020a100",
                "peak_flops_per_s[bf16]": "nvidia2020a100",
                "peak_flops_per_s[int8]": "nvidia2020a100",
                "mem_bw_bytes_per_s": "nvidia2020a100",
                "mem_bytes": "nvidia2020a100",
                "power_w": "nvidia2020a100",
            },
        ),
    }
)

_NS_DOWN = "assumed: equal to the uplink (conservative; the source reports the uplink only)"
_RTT = "assumed: a typical round trip for this link type; no single published figure fits every network"

LINKS: Mapping[str, LinkSpec] = MappingProxyType(
    {
        "3g": LinkSpec("3G", uplink_bits_per_s=1.1e6, downlink_bits_per_s=1.1e6, rtt_s=0.100,
                       sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                "rtt_s": _RTT}),
        "lte": LinkSpec("LTE", uplink_bits_per_s=5.85e6, downlink_bits_per_s=5.85e6, rtt_s=0.050,
                        sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                 "rtt_s": _RTT}),
        "wifi": LinkSpec("Wi-Fi", uplink_bits_per_s=18.88e6, downlink_bits_per_s=18.88e6, rtt_s=0.020,
                         sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                  "rtt_s": _RTT}),
    }
)


def get_device(key: str) -> DeviceSpec:
    """The catalog entry ``key``; a clear error listing the valid keys otherwise."""
    try:
        return DEVICES[key]
    except KeyError:
        raise ValueError(f"unknown device {key!r}; valid: {sorted(DEVICES)}") from None


def get_link(key: str) -> LinkSpec:
    """The catalog entry ``key``; a clear error listing the valid keys otherwise."""
    try:
        return LINKS[key]
    except KeyError:
        raise ValueError(f"unknown link {key!r}; valid: {sorted(LINKS)}") from None
