"""A claim the text makes: silent when it holds, a visible note when it does not, an error under the tests."""

import numpy as np
import pytest

from collab_lib.claims import STRICT_ENV, ClaimError, claim, strict


def test_a_claim_that_holds_shows_nothing(capsys, monkeypatch):
    for value in ("0", "1"):
        monkeypatch.setenv(STRICT_ENV, value)
        assert claim(np.bool_(True), "soft targets win", "they win by 2.3 points") is True
    assert capsys.readouterr().out == ""


def test_in_a_learners_notebook_a_failed_claim_prints_a_note_and_goes_on(capsys, monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    assert not strict()
    assert claim(1 < 0, "soft targets win on every seed", "the smallest gain is -0.3 points") is False
    out = capsys.readouterr().out
    assert out.startswith("Note: the text assumed that soft targets win on every seed; "
                          "this run gives the smallest gain is -0.3 points.")


def test_under_the_tests_a_failed_claim_raises(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    assert strict()
    with pytest.raises(ClaimError, match="assumed that soft targets win.*gives the smallest gain"):
        claim(False, "soft targets win", "the smallest gain is -0.3 points")
    assert issubclass(ClaimError, AssertionError)


@pytest.mark.parametrize("assumed, observed", [("", "x"), ("x", ""), (None, "x"), ("x", 3)])
def test_a_claim_must_say_what_it_assumes_and_what_it_saw(assumed, observed):
    with pytest.raises(ValueError, match="non-empty strings"):
        claim(True, assumed, observed)
