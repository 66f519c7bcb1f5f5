"""What makes a lab's check a graded test: a blank answer and the library's own function both fail it.

A check is written once and serves two readers. A learner working alone runs it in the lab and reads its
messages. An instructor grades with nbgrader (``make grade``, ``scripts/grade.py``), which scores a check
cell by whether it runs without an error, and which runs the cell's hidden part as well: the same check
with ``hidden=True``, on other seeds and inputs than the visible one. Two rules make that score honest:

- :func:`not_attempted`: an unfilled function (returning ``None``) gets a "not attempted yet" message in a
  learner's run, and an ``AssertionError`` when ``COLLAB_GRADING=1`` is set, as ``make grade`` sets it, so
  that a blank answer scores 0.
- :func:`learner_call`: the learner's function is called through it, and a call, direct or indirect, to the
  library function the exercise asks the learner to write (the check's reference) is an
  ``AssertionError``, in a learner's run too: handing back ``residual_distribution`` itself, or a lambda
  around it, is not an answer. The calls are seen with ``sys.setprofile``, which reports every Python
  function that starts, so the reference is caught however it was imported or wrapped.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
from typing import Any, Callable

GRADING_ENV = "COLLAB_GRADING"


def grading() -> bool:
    """True when the checks run for a grade (``COLLAB_GRADING=1``, set by ``make grade``)."""
    return os.environ.get(GRADING_ENV, "") not in ("", "0")


def not_attempted(what: str) -> str:
    """The message of a check whose fill-in still returns ``None``; an ``AssertionError`` when grading.

    ``what`` says what to fill in, for example ``"fill in my_residual above"``.
    """
    message = f"not attempted yet: {what}"
    if grading():
        raise AssertionError(message + " (a blank answer scores 0)")
    return message


def _code(ref) -> types.CodeType:
    """The code object that runs when ``ref`` (a function, method, partial, class or callable) is called."""
    while isinstance(ref, functools.partial):
        ref = ref.func
    if isinstance(ref, (classmethod, staticmethod)):
        ref = ref.__func__
    if inspect.isclass(ref):
        ref = ref.__init__
    ref = inspect.unwrap(ref)
    if inspect.ismethod(ref):
        ref = ref.__func__
    code = getattr(ref, "__code__", None)
    if code is None and callable(ref):
        code = getattr(getattr(type(ref), "__call__", None), "__code__", None)
    if not isinstance(code, types.CodeType):
        raise TypeError(f"{ref!r} is not a Python function, so its calls cannot be watched")
    return code


def _name(ref) -> str:
    while isinstance(ref, functools.partial):
        ref = ref.func
    ref = getattr(ref, "__func__", ref)
    module = getattr(ref, "__module__", "") or ""
    return f"{module}.{getattr(ref, '__qualname__', repr(ref))}".lstrip(".")


def learner_call(fn: Callable, *args, forbidden: tuple = (), name: str = "your function", **kwargs) -> Any:
    """``fn(*args, **kwargs)``, raising ``AssertionError`` if it ran any of the ``forbidden`` functions.

    ``forbidden`` holds the library functions the exercise asks the learner to write; each check passes its
    reference here. Other library functions stay free to use. The watch is ``sys.setprofile``, set for
    this call only (the previous profiler, if any, is put back), so it adds the cost of a Python call to each
    call the learner's function makes and nothing after it returns.
    """
    watched = {_code(ref): _name(ref) for ref in forbidden}
    seen: list[str] = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in watched and not seen:
            seen.append(watched[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    if seen:
        raise AssertionError(f"{name} calls the library's {seen[0]}, which is what this exercise asks you to "
                             "write: compute it yourself (an answer that hands back the library's function "
                             "scores 0)")
    return out
