"""Argument checks shared by the library's functions and configurations.

Each returns the value as a plain Python ``int`` and raises ``ValueError`` naming the argument otherwise;
Python and numpy integers are accepted, bools and floats (even whole ones) are not.
"""

from __future__ import annotations

import numpy as np


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is a positive integer (Python or numpy, not a bool); else ``ValueError``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 0 (Python or numpy, not a bool); else ``ValueError``.

    Seeds, offsets, counts that may be zero (a budget, warm-up repetitions, bytes per label).
    """
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)
