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

#: Number formats a device's peak-throughput table may name.
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
KIB, GB = 1024, 1e9

# Snapdragon 8 Gen 3, CPU only. Qualcomm gives the core configuration: 1x Cortex-X4 @ 3.3 GHz,
# 3x Cortex-A720 @ 3.2 GHz, 2x Cortex-A720 @ 3.0 GHz, 2x Cortex-A520 @ 2.3 GHz, LPDDR5X up to 4800 MHz.
# Arm's optimization guides give 4 (X4) and 2 (A720) 128-bit FP/SIMD pipes; one 128-bit FMA pipe does
# 4 fp32 lanes x 2 ops = 8 fp32 FLOP per cycle, 16 at fp16 or bf16 (BFDOT), and an SDOT 16 int8
# multiply-adds = 32 int8 ops. The two A520 efficiency cores are left out.
_SD8G3_FP32 = (3.3 * 4 * 8 + (3 * 3.2 + 2 * 3.0) * 2 * 8) * GIGA  # 355.2 GFLOP/s
_ARM_SOG = "arm2023cortexx4sog, arm2023cortexa720sog"
# Raspberry Pi 5: 4x Cortex-A76 @ 2.4 GHz, two 128-bit FP/SIMD pipes each (Arm's A76 guide).
_RPI5_FP32 = 4 * 2.4 * 2 * 8 * GIGA  # 153.6 GFLOP/s
# STM32F746: one Cortex-M7 @ 216 MHz; its single-precision FPU issues one fused multiply-add per cycle,
# and SMLAD does two 16-bit multiply-adds (CMSIS-NN runs int8 layers on it) per cycle.
_STM32_HZ = 216e6

#: The device catalog: key -> :class:`DeviceSpec`, each number with its source.
#:
#: :meta hide-value:
DEVICES: Mapping[str, DeviceSpec] = MappingProxyType(
    {
        "snapdragon-8-gen-3": DeviceSpec(
            name="Snapdragon 8 Gen 3 (CPU)",
            peak_flops_per_s={"fp32": _SD8G3_FP32, "fp16": 2 * _SD8G3_FP32, "bf16": 2 * _SD8G3_FP32,
                              "int8": 4 * _SD8G3_FP32},
            mem_bw_bytes_per_s=4800e6 * 2 * 8,  # LPDDR5X at a 4800 MHz clock: 9600 MT/s x 64-bit bus / 8
            mem_bytes=None,
            power_w=None,
            sources={
                "peak_flops_per_s[fp32]": "derived: sum over X4 and A720 cores of GHz x pipes x 8 FLOP/cycle "
                f"[qualcomm2023sd8gen3, {_ARM_SOG}]",
                "peak_flops_per_s[fp16]": f"derived: 2 x fp32 (twice the lanes per 128-bit pipe) [{_ARM_SOG}]",
                "peak_flops_per_s[bf16]": f"derived: 2 x fp32 (BFDOT: 8 bf16 multiply-adds per pipe) [{_ARM_SOG}]",
                "peak_flops_per_s[int8]": f"derived: 4 x fp32 (SDOT: 16 int8 multiply-adds per pipe) [{_ARM_SOG}]",
                "mem_bw_bytes_per_s": "derived: 4800 MHz clock x 2 transfers/clock x 64-bit bus / 8 = 76.8 GB/s "
                "[qualcomm2023sd8gen3]",
            },
        ),
        "apple-a17-pro": DeviceSpec(
            name="Apple A17 Pro (Neural Engine; iPhone 15 Pro)",
            peak_flops_per_s={"int8": 35 * TERA},
            mem_bw_bytes_per_s=6400e6 * 8,  # LPDDR5-6400 on a 64-bit bus
            mem_bytes=8 * GB,
            power_w=None,
            sources={
                "peak_flops_per_s[int8]": "derived: Apple's 35 TOPS, taken as int8 (Apple names no precision) "
                "[apple2023a17pro]",
                "mem_bw_bytes_per_s": "assumed: LPDDR5-6400 on a 64-bit bus, as teardowns report (51.2 GB/s); "
                "Apple publishes no figure",
                "mem_bytes": "assumed: 8 GB, as teardowns report; Apple does not publish iPhone memory",
            },
        ),
        "jetson-orin-nano": DeviceSpec(
            name="NVIDIA Jetson Orin Nano 8 GB",
            peak_flops_per_s={"int8": 20 * TERA},
            mem_bw_bytes_per_s=68 * GIGA,
            mem_bytes=8 * GB,
            power_w=15,
            sources={
                "peak_flops_per_s[int8]": "derived: 40 TOPS with 2:4 sparsity / 2 = 20 TOPS dense [nvidia2023jetsonorin]",
                "mem_bw_bytes_per_s": "nvidia2023jetsonorin",
                "mem_bytes": "nvidia2023jetsonorin",
                "power_w": "nvidia2023jetsonorin",
            },
        ),
        "raspberry-pi-5": DeviceSpec(
            name="Raspberry Pi 5 (8 GB)",
            peak_flops_per_s={"fp32": _RPI5_FP32, "fp16": 2 * _RPI5_FP32},
            mem_bw_bytes_per_s=4267e6 * 4,  # LPDDR4X-4267 on a 32-bit bus
            mem_bytes=8 * GB,
            power_w=None,
            sources={
                "peak_flops_per_s[fp32]": "derived: 4 cores x 2.4 GHz x 2 pipes x 8 FLOP/cycle "
                "[raspberrypi2023pi5, arm2018cortexa76sog]",
                "peak_flops_per_s[fp16]": "derived: 2 x fp32 [arm2018cortexa76sog]",
                "mem_bw_bytes_per_s": "derived: 4267 MT/s x 32-bit bus / 8 = 17.1 GB/s [raspberrypi2023pi5]",
                "mem_bytes": "raspberrypi2023pi5",
            },
        ),
        "stm32f746": DeviceSpec(
            name="STM32F746 microcontroller (Cortex-M7, the MCUNet board)",
            peak_flops_per_s={"fp32": 2 * _STM32_HZ, "int8": 4 * _STM32_HZ},
            mem_bw_bytes_per_s=4 * _STM32_HZ,  # one 32-bit SRAM access per cycle
            mem_bytes=320 * KIB,
            power_w=None,
            sources={
                "peak_flops_per_s[fp32]": "derived: 216 MHz x 1 FMA/cycle x 2 [st2016stm32f746]",
                "peak_flops_per_s[int8]": "derived: 216 MHz x 2 multiply-adds/cycle (SMLAD) x 2 [st2016stm32f746]",
                "mem_bw_bytes_per_s": "derived: 216 MHz x 4 bytes (one 32-bit SRAM access per cycle) "
                "[st2016stm32f746]",
                "mem_bytes": "lin2020mcunet",
            },
        ),
        "a100-sxm": DeviceSpec(
            name="NVIDIA A100 SXM 80 GB",
            peak_flops_per_s={"fp32": 19.5 * TERA, "tf32": 156 * TERA, "fp16": 312 * TERA,
                              "bf16": 312 * TERA, "int8": 624 * TERA},
            mem_bw_bytes_per_s=2039 * GIGA,
            mem_bytes=80 * GB,
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
        "h100-sxm": DeviceSpec(
            name="NVIDIA H100 SXM 80 GB",
            peak_flops_per_s={"fp16": 989 * TERA, "bf16": 989 * TERA},
            mem_bw_bytes_per_s=3350 * GIGA,
            mem_bytes=80 * GB,
            power_w=700,
            sources={
                "peak_flops_per_s[fp16]": "nvidia2022h100",
                "peak_flops_per_s[bf16]": "nvidia2022h100",
                "mem_bw_bytes_per_s": "nvidia2022h100",
                "mem_bytes": "nvidia2022h100",
                "power_w": "nvidia2022h100",
            },
        ),
        "h200": DeviceSpec(
            name="NVIDIA H200 141 GB",
            peak_flops_per_s={"fp16": 989 * TERA, "bf16": 989 * TERA},
            mem_bw_bytes_per_s=4800 * GIGA,
            mem_bytes=141 * GB,
            power_w=None,
            sources={
                "peak_flops_per_s[fp16]": "nvidia2024h200",
                "peak_flops_per_s[bf16]": "nvidia2024h200",
                "mem_bw_bytes_per_s": "nvidia2024h200",
                "mem_bytes": "nvidia2024h200",
            },
        ),
        "l4": DeviceSpec(
            name="NVIDIA L4 24 GB",
            peak_flops_per_s={"fp16": 121 * TERA, "bf16": 121 * TERA},
            mem_bw_bytes_per_s=300 * GIGA,
            mem_bytes=24 * GB,
            power_w=72,
            sources={
                "peak_flops_per_s[fp16]": "derived: 242 TFLOP/s with sparsity / 2 [nvidia2023l4]",
                "peak_flops_per_s[bf16]": "derived: 242 TFLOP/s with sparsity / 2 [nvidia2023l4]",
                "mem_bw_bytes_per_s": "nvidia2023l4",
                "mem_bytes": "nvidia2023l4",
                "power_w": "nvidia2023l4",
            },
        ),
    }
)

_NS_DOWN = "assumed: equal to the uplink (conservative; the source reports the uplink only)"
_RTT = "assumed: a typical round trip for this link type; no single published figure fits every network"

#: The network-link catalog: key -> :class:`LinkSpec`, each number with its source.
#:
#: :meta hide-value:
LINKS: Mapping[str, LinkSpec] = MappingProxyType(
    {
        "3g": LinkSpec("3G", uplink_bits_per_s=1.1e6, downlink_bits_per_s=1.1e6, rtt_s=0.100,
                       sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                "rtt_s": _RTT}),
        "lte": LinkSpec("LTE", uplink_bits_per_s=5.85e6, downlink_bits_per_s=5.85e6, rtt_s=0.050,
                        sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                 "rtt_s": _RTT}),
        "5g": LinkSpec("5G", uplink_bits_per_s=21e6, downlink_bits_per_s=166e6, rtt_s=0.028,
                       sources={"uplink_bits_per_s": "ookla2021fiveg", "downlink_bits_per_s": "ookla2021fiveg",
                                "rtt_s": "assumed: the median mobile latency of 28 ms, taken for 5G"}),
        "wifi": LinkSpec("Wi-Fi", uplink_bits_per_s=18.88e6, downlink_bits_per_s=18.88e6, rtt_s=0.020,
                         sources={"uplink_bits_per_s": "kang2017neurosurgeon", "downlink_bits_per_s": _NS_DOWN,
                                  "rtt_s": _RTT}),
    }
)


def lookup(table: Mapping[str, object], key: str, what: str):
    """``table[key]``, or a ``ValueError`` that names the valid keys."""
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"unknown {what} {key!r}; valid: {sorted(table)}") from None


def get_device(key: str) -> DeviceSpec:
    """The catalog entry ``key``; a clear error listing the valid keys otherwise."""
    return lookup(DEVICES, key, "device")


def get_link(key: str) -> LinkSpec:
    """The catalog entry ``key``; a clear error listing the valid keys otherwise."""
    return lookup(LINKS, key, "link")
