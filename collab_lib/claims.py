"""Statements the book makes about a lab's results, checked where the results are computed.

A chapter or a lab's "what to notice" says, for instance, that soft targets beat pseudo-labels on every
seed. The lab states that sentence as a claim next to the numbers it rests on::

    claim(over_pseudo.min() > 0.005, "soft targets beat pseudo-labels by half a point on every seed",
          f"the smallest gain is {100 * over_pseudo.min():.1f} points")

A learner who changes a parameter and makes the sentence false is not stopped: the lab prints a visible
note, "the text assumed …; this run gives …", and goes on. The tests that execute the labs set the
environment variable ``COLLAB_STRICT_CLAIMS=1``, under which a claim that does not hold raises
:class:`ClaimError`, so that a change to the library or a lab that makes the book's text false fails CI.

Claims are stated with a margin (a gain of at least half a point, not merely a positive one) so that they
do not rest on a tie that the next CPU or seed breaks the other way.
"""

from __future__ import annotations

import os

STRICT_ENV = "COLLAB_STRICT_CLAIMS"
"""Environment variable: ``1`` makes a claim that does not hold raise instead of printing a note."""


class ClaimError(AssertionError):
    """A claim the text makes does not hold for this run (raised only under ``COLLAB_STRICT_CLAIMS=1``)."""


def strict() -> bool:
    """True if claims raise (``COLLAB_STRICT_CLAIMS=1``), as in the tests that execute the labs."""
    return os.environ.get(STRICT_ENV, "") == "1"


def claim(holds: bool, assumed: str, observed: str) -> bool:
    """Check one statement the text makes about this run's results; returns whether it holds.

    If the statement holds nothing is shown. If not, a note is printed and the lab goes on, or, under
    ``COLLAB_STRICT_CLAIMS=1``, :class:`ClaimError` is raised.

    Parameters
    ----------
    holds:
        The statement evaluated on this run's numbers, a bool or anything with a truth value (a NumPy bool).
    assumed:
        What the text says, as a clause, such as "soft targets beat pseudo-labels on every seed".
    observed:
        What this run gives, with its numbers, such as "the smallest gain is -0.3 points".
    """
    if not isinstance(assumed, str) or not assumed or not isinstance(observed, str) or not observed:
        raise ValueError("assumed and observed must be non-empty strings")
    if bool(holds):
        return True
    message = f"the text assumed that {assumed}; this run gives {observed}"
    if strict():
        raise ClaimError(message)
    print(f"Note: {message}. The text describes the book's run; yours differs, which is worth a look.")
    return False
