"""Joules on the device: compute locally, or send the input and let the cloud compute?

Compute. Horowitz (ISSCC 2014, "Computing's energy problem (and what we can do about it)") gives the
energy of one arithmetic operation and one memory access in a 45 nm process. A model that performs
``FLOPs`` operations and moves ``bytes`` through DRAM costs

    E_compute = FLOPs * e_op(precision) + bytes * e_DRAM,

where one FLOP costs half a multiply-add, e_op = (e_add + e_mult) / 2, because FLOP counters (torch's,
:mod:`collab_lib.hardware.profile`) count a multiply-accumulate as 2 FLOP. These are energies at 45 nm;
newer nodes are lower, so every compute energy takes an explicit ``scale`` factor. They count the arithmetic
and the DRAM traffic only (no instruction fetch, caches, leakage), so they bound a real chip from below.
For a device with a power figure in the catalog, :func:`compute_energy_from_power_j` gives E = P * t.

Radio. Huang et al. (MobiSys 2012, "A Close Examination of Performance and Power Characteristics of 4G LTE
Networks") model the phone's power while an LTE radio transfers data as

    P = alpha_u * t_u + alpha_d * t_d + beta,

with t_u, t_d the uplink and downlink throughputs in Mbit/s. Before a transfer an idle radio is promoted to
the connected state (``promotion_s`` at ``promotion_w``); after it, the radio stays in a high-power *tail*
(``tail_s`` at ``tail_w``) before it demotes to idle. Balasubramanian et al. (IMC 2009) first measured this
tail on 3G phones: a small, isolated transfer costs far more than its bytes.

The constants of :data:`RADIOS` were read from AT&T's open-source Application Resource Optimizer (ARO, now
Video Optimizer; files ``lte.conf``, ``i997.conf``, ``WiFi.conf`` and ``ProfileFactoryImpl.java``), whose
LTE profile implements Huang et al.'s model (``LTE_ALPHA_UP = 438.39``, ``LTE_ALPHA_DOWN = 51.97`` mW per
Mbit/s, ``LTE_BETA``); they are cited to ARO, where they were checked. ARO's 3G and Wi-Fi profiles have no
per-Mbit/s term (alpha = 0): a flat active power. There is no 5G entry: we found no sourced figures for an
NR radio's promotion and tail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

import numpy as np

from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.specs import DeviceSpec, LinkSpec

PICO, NANO, MEGA = 1e-12, 1e-9, 1e6
_HOROWITZ = "horowitz2014computing"
_ARO = "att2014aro"


@dataclass(frozen=True)
class OpEnergy:
    """Energy of one add and one multiply at ``precision``, in a 45 nm process."""

    precision: str
    add_j: float
    mult_j: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_non_negative(self, ("add_j", "mult_j"), self.precision)
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def flop_j(self) -> float:
        """Joules per FLOP: a multiply-add (2 FLOP) costs one multiply plus one add."""
        return (self.add_j + self.mult_j) / 2


@dataclass(frozen=True)
class DramEnergy:
    """Energy of one DRAM access of ``access_bytes`` bytes; the published figure is a range."""

    name: str
    access_bytes: float
    access_j_low: float
    access_j_high: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_non_negative(self, ("access_bytes", "access_j_low", "access_j_high"), self.name)
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def j_per_byte(self, estimate: str = "low") -> float:
        """Joules per byte at the ``"low"`` or ``"high"`` end of the range."""
        if estimate not in ("low", "high"):
            raise ValueError(f"dram estimate must be one of ['high', 'low'], got {estimate!r}")
        access_j = self.access_j_low if estimate == "low" else self.access_j_high
        return access_j / self.access_bytes


@dataclass(frozen=True)
class RadioPowerModel:
    """A phone radio's power states (Huang et al. 2012): active power P = alpha_u * t_u + alpha_d * t_d + beta
    with throughputs t in Mbit/s, a promotion from idle before a transfer and a tail after it."""

    name: str
    active_w_per_mbps_up: float  # alpha_u
    active_w_per_mbps_down: float  # alpha_d
    base_w: float  # beta
    tail_s: float
    tail_w: float
    promotion_s: float
    promotion_w: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        numeric = tuple(f.name for f in fields(self) if f.name not in ("name", "sources"))
        _check_non_negative(self, numeric, self.name)
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def tail_j(self) -> float:
        return self.tail_s * self.tail_w

    @property
    def promotion_j(self) -> float:
        return self.promotion_s * self.promotion_w


def _check_non_negative(spec: object, names: tuple[str, ...], label: str) -> None:
    for name in names:
        value = getattr(spec, name)
        if not value >= 0:
            raise ValueError(f"{label}: {name} must be >= 0, got {value}")


def _horowitz(precision: str, add_pj: float, mult_pj: float) -> OpEnergy:
    return OpEnergy(precision, add_j=add_pj * PICO, mult_j=mult_pj * PICO,
                    sources={"add_j": _HOROWITZ, "mult_j": _HOROWITZ})


# Horowitz's table (45 nm): floating point add / multiply, 32-bit 0.9 / 3.7 pJ, 16-bit 0.4 / 1.1 pJ;
# 8-bit integer 0.03 / 0.2 pJ. He lists no bf16, tf32 or int4, so those precisions are refused.
OP_ENERGY_45NM: Mapping[str, OpEnergy] = MappingProxyType(
    {
        "fp32": _horowitz("fp32", 0.9, 3.7),
        "fp16": _horowitz("fp16", 0.4, 1.1),
        "int8": _horowitz("int8", 0.03, 0.2),
    }
)

DRAM_45NM = DramEnergy(
    name="DRAM, 64-bit access (45 nm)",
    access_bytes=8,
    access_j_low=1.3 * NANO,
    access_j_high=2.6 * NANO,
    sources={"access_bytes": _HOROWITZ, "access_j_low": _HOROWITZ, "access_j_high": _HOROWITZ},
)

# 3G (ARO's Samsung i997 profile): DCH at 1.30 W, demoted to FACH (0.30 W) after 4 s, to idle after 10 s
# more. The two-stage tail is folded into one of 14 s at the same total energy.
_3G_TAIL_S = 4.0 + 10.0
_3G_TAIL_W = (4.0 * 1.30 + 10.0 * 0.30) / _3G_TAIL_S  # 0.586 W
_FLAT = "assumed: flat active power while transferring, no per-Mbit/s term (as ARO models this radio)"

#: Radio power models by link type, each constant with its source.
#:
#: :meta hide-value:
RADIOS: Mapping[str, RadioPowerModel] = MappingProxyType(
    {
        "3g": RadioPowerModel(
            name="3G (UMTS, Samsung i997 profile)",
            active_w_per_mbps_up=0.0,
            active_w_per_mbps_down=0.0,
            base_w=1.30,
            tail_s=_3G_TAIL_S,
            tail_w=_3G_TAIL_W,
            promotion_s=2.0,
            promotion_w=0.65,
            sources={
                "active_w_per_mbps_up": _FLAT,
                "active_w_per_mbps_down": _FLAT,
                "base_w": _ARO,
                "tail_s": f"derived: DCH->FACH timer 4 s + FACH->IDLE timer 10 s [{_ARO}]",
                "tail_w": f"derived: (4 s x 1.30 W DCH + 10 s x 0.30 W FACH) / 14 s [{_ARO}]",
                "promotion_s": _ARO,
                "promotion_w": _ARO,
            },
        ),
        "lte": RadioPowerModel(
            name="LTE",
            active_w_per_mbps_up=438.39e-3,
            active_w_per_mbps_down=51.97e-3,
            base_w=1.2,
            # Departure: ARO charges the 0.1 s of continuous reception before DRX at beta and adds 1.68 W
            # wake-ups (2 ms every 40 ms) in long DRX; we charge the whole tail at the DRX tail power.
            tail_s=0.1 + 0.02 + 10.0,
            tail_w=1.06,
            promotion_s=0.26,
            promotion_w=1.21,
            sources={
                "active_w_per_mbps_up": _ARO,
                "active_w_per_mbps_down": _ARO,
                "base_w": _ARO,
                "tail_s": f"derived: inactivity timer 0.1 s + short DRX 0.02 s + long DRX 10 s [{_ARO}]",
                "tail_w": _ARO,
                "promotion_s": _ARO,
                "promotion_w": _ARO,
            },
        ),
        "wifi": RadioPowerModel(
            name="Wi-Fi",
            active_w_per_mbps_up=0.0,
            active_w_per_mbps_down=0.0,
            base_w=0.403,
            tail_s=0.25,
            tail_w=0.403,  # ARO charges the Wi-Fi tail at the active power
            promotion_s=0.0,
            promotion_w=0.0,
            sources={
                "active_w_per_mbps_up": _FLAT,
                "active_w_per_mbps_down": _FLAT,
                "base_w": _ARO,
                "tail_s": _ARO,
                "tail_w": _ARO,
                "promotion_s": "assumed: an associated Wi-Fi radio needs no promotion (ARO models none)",
                "promotion_w": "assumed: an associated Wi-Fi radio needs no promotion (ARO models none)",
            },
        ),
    }
)


def get_op_energy(precision: str) -> OpEnergy:
    """Horowitz's 45 nm energies at ``precision``; a clear error listing the valid precisions otherwise."""
    try:
        return OP_ENERGY_45NM[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; valid: {sorted(OP_ENERGY_45NM)}") from None


def get_radio(key: str) -> RadioPowerModel:
    """The radio model ``key`` (keyed like the links); a clear error listing the valid keys otherwise."""
    try:
        return RADIOS[key]
    except KeyError:
        raise ValueError(f"unknown radio {key!r}; valid: {sorted(RADIOS)}") from None


def compute_energy_j(
    flops: float, dram_bytes: float, precision: str, scale: float = 1.0, *, dram: str = "low"
) -> float:
    """Joules to perform ``flops`` operations at ``precision`` and move ``dram_bytes`` through DRAM.

    Energies at 45 nm; newer nodes are lower: ``scale`` multiplies the result (e.g. 0.3 for a node that
    spends 30% of the 45 nm energy). ``dram`` picks the ``"low"`` (1.3 nJ) or ``"high"`` (2.6 nJ) end of
    Horowitz's range for a 64-bit access.
    """
    if flops < 0:
        raise ValueError(f"flops must be >= 0, got {flops}")
    if dram_bytes < 0:
        raise ValueError(f"dram_bytes must be >= 0, got {dram_bytes}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    op = get_op_energy(precision)
    return scale * (flops * op.flop_j + dram_bytes * DRAM_45NM.j_per_byte(dram))


def compute_energy_from_power_j(time_s: float, device: DeviceSpec) -> float:
    """E = P * t with the device's catalog power ``power_w`` (its rated figure, an upper bound)."""
    if time_s < 0:
        raise ValueError(f"time_s must be >= 0, got {time_s}")
    if device.power_w is None:
        raise ValueError(
            f"{device.name} has no power figure (power_w) in the catalog; "
            "use compute_energy_j (per-operation energies) instead"
        )
    return device.power_w * time_s


@dataclass(frozen=True)
class RadioEnergy:
    """Where a transfer's joules go: promotion, moving the bytes, waiting connected, tail."""

    promotion_j: float
    transfer_j: float
    wait_j: float
    tail_j: float

    @property
    def total_j(self) -> float:
        return self.promotion_j + self.transfer_j + self.wait_j + self.tail_j


def radio_energy(
    bytes_up: float,
    bytes_down: float,
    link: LinkSpec,
    radio: RadioPowerModel,
    include_tail: bool = True,
    *,
    wait_s: float = 0.0,
) -> RadioEnergy:
    """The parts of :func:`transfer_energy_j` (same arguments)."""
    if wait_s < 0:
        raise ValueError(f"wait_s must be >= 0, got {wait_s}")
    if bytes_up < 0 or bytes_down < 0:
        raise ValueError(f"bytes_up and bytes_down must be >= 0, got {bytes_up}, {bytes_down}")
    return _radio_parts(bytes_up, bytes_down, link.uplink_bits_per_s, link.downlink_bits_per_s, radio,
                        include_tail, wait_s)


def _radio_parts(bytes_up, bytes_down, up_bits_per_s, down_bits_per_s, radio: RadioPowerModel,
                 include_tail: bool, wait_s) -> RadioEnergy:
    """Huang et al.'s model on scalars or on arrays of requests (numpy broadcasting); inputs checked."""
    up_s, down_s = 8 * bytes_up / up_bits_per_s, 8 * bytes_down / down_bits_per_s
    # P = alpha_u * t_u + alpha_d * t_d + beta while the link runs at its rate each way.
    up_w = radio.active_w_per_mbps_up * up_bits_per_s / MEGA + radio.base_w
    down_w = radio.active_w_per_mbps_down * down_bits_per_s / MEGA + radio.base_w
    return RadioEnergy(
        promotion_j=radio.promotion_j if include_tail else 0.0,
        transfer_j=up_w * up_s + down_w * down_s,
        wait_j=radio.base_w * wait_s,  # connected, no throughput (not in the paper's model)
        tail_j=radio.tail_j if include_tail else 0.0,
    )


def transfer_energy_per_request_j(
    bytes_up: np.ndarray,
    bytes_down: np.ndarray,
    uplink_bits_per_s: np.ndarray,
    downlink_bits_per_s: np.ndarray,
    radio: RadioPowerModel,
    include_tail: bool = True,
    *,
    wait_s: np.ndarray | float = 0.0,
) -> np.ndarray:
    """:func:`transfer_energy_j` for many requests at once, each with its own link rates (e.g. drawn by
    :func:`~collab_lib.hardware.network.sample_link`); arrays broadcast, the result has their shape."""
    arrays = [np.asarray(a, dtype=float) for a in (bytes_up, bytes_down, wait_s)]
    rates = [np.asarray(a, dtype=float) for a in (uplink_bits_per_s, downlink_bits_per_s)]
    if any((a < 0).any() for a in arrays):
        raise ValueError("bytes_up, bytes_down and wait_s must be >= 0")
    if any(not (r > 0).all() for r in rates):
        raise ValueError("uplink_bits_per_s and downlink_bits_per_s must be > 0")
    parts = _radio_parts(arrays[0], arrays[1], rates[0], rates[1], radio, include_tail, arrays[2])
    return np.asarray(parts.total_j)


def transfer_energy_j(
    bytes_up: float,
    bytes_down: float,
    link: LinkSpec,
    radio: RadioPowerModel,
    include_tail: bool = True,
    *,
    wait_s: float = 0.0,
) -> float:
    """Joules the phone's radio spends to upload ``bytes_up`` and download ``bytes_down`` over ``link``.

    Each direction runs at the link's catalog rate (:func:`~collab_lib.hardware.network.transfer_time_s`)
    at power alpha * rate + beta. ``include_tail=True`` prices an isolated transfer: the radio starts idle
    (promotion) and is left to go idle again (tail); ``False`` gives the marginal cost of a transfer made
    while the radio is already connected. ``wait_s`` is time spent connected between upload and download
    (round trip, cloud compute), charged at ``base_w``.
    """
    return radio_energy(bytes_up, bytes_down, link, radio, include_tail, wait_s=wait_s).total_j


def periodic_transfer_energy_j(
    bytes_up: float,
    bytes_down: float,
    link: LinkSpec,
    radio: RadioPowerModel,
    interval_s: float,
    *,
    wait_s: float = 0.0,
) -> float:
    """Joules per request when one request is sent every ``interval_s`` seconds (steady state).

    If the gap between the end of one request and the start of the next is at least ``tail_s``, the radio
    goes idle in between and every request pays a promotion and a full tail; otherwise it never demotes
    and each request pays its bytes plus the gap at ``tail_w``.
    """
    parts = radio_energy(bytes_up, bytes_down, link, radio, include_tail=False, wait_s=wait_s)
    active_s = (
        transfer_time_s(bytes_up, link.uplink_bits_per_s)
        + transfer_time_s(bytes_down, link.downlink_bits_per_s)
        + wait_s
    )
    gap_s = interval_s - active_s
    if gap_s < 0:
        raise ValueError(f"interval_s={interval_s} is shorter than one request ({active_s:.3g} s)")
    if gap_s >= radio.tail_s:
        return parts.total_j + radio.promotion_j + radio.tail_j
    return parts.total_j + gap_s * radio.tail_w


def burst_transfer_energy_j(
    start_times_s,
    bytes_up,
    bytes_down,
    link: LinkSpec,
    radio: RadioPowerModel,
) -> float:
    """Joules of a sequence of requests that share the radio's promotions and tails.

    Request ``k`` starts at ``start_times_s[k]`` (increasing) and moves ``bytes_up[k]`` up then
    ``bytes_down[k]`` down at the link's rates, ending ``8 * (bytes_up[k] / uplink + bytes_down[k] /
    downlink)`` seconds later. The radio starts idle: the first request pays a promotion. After each
    request the radio is in its tail; if the next one starts before ``tail_s`` has passed, the radio never
    demotes and the gap costs ``gap * tail_w``, else it pays a full tail, goes idle, and the next request
    pays a promotion again. The last request is followed by a full tail. As in
    :func:`periodic_transfer_energy_j` (whose steady state this reproduces), the promotion's own duration is
    not on the timeline, and a gap of exactly ``tail_s`` demotes.
    """
    t = np.asarray(start_times_s, dtype=float).ravel()
    up, down = (np.asarray(a, dtype=float).ravel() for a in (bytes_up, bytes_down))
    if not t.size == up.size == down.size or t.size == 0:
        raise ValueError(f"start_times_s, bytes_up and bytes_down need the same non-zero length, got "
                         f"{t.size}, {up.size}, {down.size}")
    if (up < 0).any() or (down < 0).any():
        raise ValueError("bytes_up and bytes_down must be >= 0")
    transfer_j = _radio_parts(up, down, link.uplink_bits_per_s, link.downlink_bits_per_s, radio,
                              include_tail=False, wait_s=0.0).transfer_j  # per request, (n,)
    end = t + 8 * up / link.uplink_bits_per_s + 8 * down / link.downlink_bits_per_s
    gap_s = t[1:] - end[:-1]
    if (gap_s < 0).any():
        k = int(np.argmax(gap_s < 0))
        raise ValueError(f"request {k + 1} starts at {t[k + 1]:.6g} s, before request {k} ends at {end[k]:.6g} s")
    demotes = gap_s >= radio.tail_s
    between_j = np.where(demotes, radio.tail_j + radio.promotion_j, gap_s * radio.tail_w)
    return float(radio.promotion_j + np.sum(transfer_j) + np.sum(between_j) + radio.tail_j)


@dataclass(frozen=True)
class OffloadEnergy:
    """The device's joules for one inference run locally vs sent to the cloud (the cloud's own energy is
    not the phone's battery and is not counted)."""

    local_compute_j: float  # arithmetic
    local_dram_j: float
    radio: RadioEnergy

    @property
    def local_j(self) -> float:
        return self.local_compute_j + self.local_dram_j

    @property
    def offload_j(self) -> float:
        return self.radio.total_j

    @property
    def offload_saves(self) -> bool:
        return self.offload_j < self.local_j


def offload_vs_local(
    flops: float,
    dram_bytes: float,
    precision: str,
    bytes_up: float,
    bytes_down: float,
    link: LinkSpec,
    radio: RadioPowerModel,
    *,
    scale: float = 1.0,
    dram: str = "low",
    include_tail: bool = True,
    wait_s: float = 0.0,
) -> OffloadEnergy:
    """Compare :func:`compute_energy_j` of the whole model with :func:`transfer_energy_j` of its input
    (``bytes_up``) and result (``bytes_down``)."""
    arithmetic = compute_energy_j(flops, 0.0, precision, scale)
    memory = compute_energy_j(0.0, dram_bytes, precision, scale, dram=dram)
    return OffloadEnergy(
        local_compute_j=arithmetic,
        local_dram_j=memory,
        radio=radio_energy(bytes_up, bytes_down, link, radio, include_tail, wait_s=wait_s),
    )
