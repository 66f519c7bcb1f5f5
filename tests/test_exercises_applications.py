"""Chapter 8's lab checks accept a correct answer, say "not attempted" for None and reject wrong answers."""

import numpy as np
import pytest

from collab_lib.exercises import applications as checks


def test_checks_accept_right_reject_wrong_and_wait_for_none():
    def right_clicks(cat, click, lag):
        return checks.reference_same_category_clicks(cat, click, lag)

    def wrong_clicks(cat, click, lag):  # includes the current position's own click
        return np.array([sum(click[j] for j in range(i + 1) if cat[j] == cat[i]) for i in range(len(cat))])

    assert checks.check_same_category_clicks(right_clicks).startswith("correct")
    assert checks.check_same_category_clicks(lambda *a: None).startswith("not attempted")
    with pytest.raises(AssertionError, match="position"):
        checks.check_same_category_clicks(wrong_clicks)

    def right_route(d, p, o, t):
        return (d >= t) & ~p & o

    def wrong_route(d, p, o, t):  # forgets the network
        return (d >= t) & ~p

    assert checks.check_route(right_route).startswith("correct")
    assert checks.check_route(lambda *a: None).startswith("not attempted")
    with pytest.raises(AssertionError, match="online=False"):
        checks.check_route(wrong_route)
