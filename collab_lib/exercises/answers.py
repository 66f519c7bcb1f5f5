"""How the labs' check functions read a learner's answer.

A learner may answer with a Python number or list, a numpy array or a torch tensor; these helpers turn any of
them into numpy, and turn a wrong type or shape into an ``AssertionError`` that names the case and says what
was expected, rather than a ``TypeError`` from deep inside numpy.
"""

from __future__ import annotations

import reprlib

import numpy as np
import torch


def as_array(got, name: str, case: str, expected: str = "numbers") -> np.ndarray:
    """``got`` as a numpy array of numbers (int, unsigned or float; not bool, complex, text or objects)."""
    kind = type(got).__name__
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().numpy()
    try:
        arr = np.asarray(got)
    except (TypeError, ValueError):  # e.g. a ragged list
        arr = None
    if arr is None or arr.dtype == object:
        ragged = " (rows of different lengths?)" if isinstance(got, (list, tuple)) else ""
        raise AssertionError(f"{case}: {name}: got a {kind} ({reprlib.repr(got)}) that is not an array of "
                             f"numbers{ragged}, expected {expected}")
    if arr.dtype.kind not in "iuf":
        raise AssertionError(f"{case}: {name}: got {arr.dtype} values ({reprlib.repr(got)}), expected {expected}")
    return arr


def as_number(got, name: str, case: str, what: str = "") -> float:
    """``got`` (a number, or an array or tensor of one element) as a float; ``what`` says what the number is."""
    expected = f"a single number ({what})" if what else "a single number"
    arr = as_array(got, name, case, expected)
    if arr.size != 1:
        raise AssertionError(f"{case}: {name}: got a {type(got).__name__} of shape {arr.shape}, expected {expected}")
    return float(arr.reshape(()))


def as_shaped(got, name: str, case: str, shape: tuple[int, ...], hint: str = "") -> np.ndarray:
    """``got`` as a float64 array of exactly ``shape``; ``hint`` is added to the message of a wrong shape."""
    arr = as_array(got, name, case, f"an array of shape {shape}")
    if arr.shape != tuple(shape):
        raise AssertionError(f"{case}: {name}: got shape {arr.shape}, expected {tuple(shape)}{hint}")
    return arr.astype(np.float64)
