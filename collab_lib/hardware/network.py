"""Time to move bytes over a link: serialization at the link's bit rate (propagation is in the RTT)."""

from __future__ import annotations


def transfer_time_s(num_bytes: float, bits_per_s: float) -> float:
    """Seconds to push ``num_bytes`` through a link of ``bits_per_s``: 8 * bytes / rate."""
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
    if not bits_per_s > 0:
        raise ValueError(f"bits_per_s must be > 0, got {bits_per_s}")
    return 8 * num_bytes / bits_per_s
