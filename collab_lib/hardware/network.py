"""Moving bytes over a link: serialization time, and links whose rates and round trips vary.

Transfer time = 8 * bytes / rate (propagation and queueing are in the round-trip time). Real links
fluctuate as users move and share cells; :func:`sample_link` draws per-request rates and RTTs from
log-normal distributions whose *means* are the catalog figures. The coefficient of variation is a
modelling choice (an assumption, not a published figure), so it is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collab_lib._validate import positive_int
from collab_lib.hardware.specs import LinkSpec


def transfer_time_s(num_bytes: float, bits_per_s: float) -> float:
    """Seconds to push ``num_bytes`` through a link of ``bits_per_s``: 8 * bytes / rate."""
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
    if not bits_per_s > 0:
        raise ValueError(f"bits_per_s must be > 0, got {bits_per_s}")
    return 8 * num_bytes / bits_per_s


@dataclass(frozen=True)
class LinkSamples:
    """``n`` draws of a link's state, one per request or per device: arrays of shape (n,)."""

    uplink_bits_per_s: np.ndarray
    downlink_bits_per_s: np.ndarray
    rtt_s: np.ndarray


def _lognormal(mean: float, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    # Log-normal with the given mean and coefficient of variation (std / mean):
    # sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2.
    if cv == 0:
        return np.full(n, float(mean))
    sigma2 = np.log1p(cv**2)
    return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), n)


def sample_link(link: LinkSpec, n: int, seed: int, rate_cv: float = 0.5, rtt_cv: float = 0.3) -> LinkSamples:
    """``n`` independent draws of ``link``: rates and RTT log-normal around the catalog means.

    ``rate_cv`` and ``rtt_cv`` are the coefficients of variation (0 gives the catalog figures exactly).
    """
    positive_int("n", n)
    if rate_cv < 0 or rtt_cv < 0:
        raise ValueError(f"rate_cv and rtt_cv must be >= 0, got {rate_cv}, {rtt_cv}")
    rng = np.random.default_rng(seed)
    return LinkSamples(
        uplink_bits_per_s=_lognormal(link.uplink_bits_per_s, rate_cv, n, rng),
        downlink_bits_per_s=_lognormal(link.downlink_bits_per_s, rate_cv, n, rng),
        rtt_s=_lognormal(link.rtt_s, rtt_cv, n, rng) if link.rtt_s > 0 else np.zeros(n),
    )


def request_time_s(bytes_up: float, bytes_down: float, link: LinkSpec) -> float:
    """One request-response over ``link``: RTT + upload + download."""
    return link.rtt_s + transfer_time_s(bytes_up, link.uplink_bits_per_s) + transfer_time_s(
        bytes_down, link.downlink_bits_per_s
    )
