"""Argument checks shared by the library's functions and configurations."""

from __future__ import annotations

import numpy as np


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is a positive integer (Python or numpy, not a bool); else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
