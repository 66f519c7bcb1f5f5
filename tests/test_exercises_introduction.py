"""Chapter 1's lab check accepts an independent answer, says "not attempted" for None and rejects wrong
answers: the terms a learner would forget, wrong units, and answers of the wrong shape or type."""

import math

import pytest
import torch

from collab_lib.exercises import introduction as checks
from collab_lib.hardware import profile_model
from collab_lib.models import vision_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- crossover (chapter 1) ------------------------------------------------------------------------------


def plain_crossover(cuts, rtt=True, download=True, cloud=True, bits_per_byte=8):
    """B* from the cuts alone: the symmetric rate is 8 bytes_up / uplink_s; the keywords drop a term."""
    dev, cld = cuts[-1], cuts[0]
    rate = 8 * cld.bytes_up / cld.uplink_s                         # bit/s, both directions
    sent_bytes = (cld.uplink_s + (cld.downlink_s if download else 0)) * rate / 8
    slack_s = dev.total_s - (cld.rtt_s if rtt else 0) - (cld.cloud_s if cloud else 0)
    if slack_s <= 0:
        return math.inf
    return bits_per_byte * sent_bytes / slack_s / 1e6


def lab_solution_crossover(cuts):
    """The lab's worked solution, which reads the answer's size from the lab's own model."""
    with torch.device("meta"):
        layers = profile_model(vision_cnn(width=256), torch.empty(1, 3, 224, 224))
    device_only, cloud_only = cuts[-1], cuts[0]
    slack_s = device_only.total_s - cloud_only.rtt_s - cloud_only.cloud_s
    if slack_s <= 0:
        return float("inf")
    return 8 * (cloud_only.bytes_up + layers[-1].output_bytes) / slack_s / 1e6


def test_crossover_check():
    assert checks.check_crossover(plain_crossover).startswith("correct")
    assert checks.check_crossover(lab_solution_crossover).startswith("correct")
    assert checks.check_crossover(lambda cuts: torch.tensor(plain_crossover(cuts))).startswith("correct")
    assert checks.check_crossover(lambda cuts: None).startswith("not attempted yet")


def test_crossover_check_rejects_forgotten_terms():
    with pytest.raises(AssertionError, match="Wi-Fi, cuts priced at 1 Mbit/s.*round trip is missing"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts, rtt=False))
    with pytest.raises(AssertionError, match="download is missing"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts, download=False))
    with pytest.raises(AssertionError, match="loaded A100.*compute is missing"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts, cloud=False) if cuts[0].cloud_s > 5e-3
                               else plain_crossover(cuts))


def test_crossover_check_rejects_units_and_a_missing_infinity():
    with pytest.raises(AssertionError, match="bits, not bytes"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts, bits_per_byte=1))
    with pytest.raises(AssertionError, match="the unit is Mbit/s"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts) * 1e6)

    def no_infinity(cuts):
        dev, cld = cuts[-1], cuts[0]
        rate = 8 * cld.bytes_up / cld.uplink_s
        return (cld.uplink_s + cld.downlink_s) * rate / (dev.total_s - cld.rtt_s - cld.cloud_s) / 1e6
    with pytest.raises(AssertionError, match="LTE.*float\\('inf'\\)"):
        checks.check_crossover(no_infinity)


def test_crossover_check_rejects_a_rate_dependent_answer_and_a_non_number():
    def assumes_one_mbps(cuts):  # right only when the cuts were priced at 1 Mbit/s
        dev, cld = cuts[-1], cuts[0]
        return (cld.uplink_s + cld.downlink_s) / (dev.total_s - cld.rtt_s - cld.cloud_s)
    with pytest.raises(AssertionError, match="priced at 50 Mbit/s"):
        checks.check_crossover(assumes_one_mbps)
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_crossover(lambda cuts: [plain_crossover(cuts), 1.0])


# --- graded runs: hidden cases and blanks ------------------------------------------------------------------


def test_crossover_check_hidden_cases_accept_an_independent_answer():
    assert checks.check_crossover(plain_crossover, hidden=True).startswith("correct")
    assert checks.check_crossover(lab_solution_crossover, hidden=True).startswith("correct")


def test_crossover_check_hidden_cases_reject_wrong_answers():
    with pytest.raises(AssertionError, match="hidden: .*round trip is missing"):
        checks.check_crossover(lambda cuts: plain_crossover(cuts, rtt=False), hidden=True)
    with pytest.raises(AssertionError, match="hidden: .*float\\('inf'\\)"):
        checks.check_crossover(lambda cuts: 1e9 if plain_crossover(cuts) == math.inf else plain_crossover(cuts),
                               hidden=True)


def test_crossover_check_hidden_cases_reject_the_visible_answers_typed_in():
    visible = {}  # cloud-only latency (rounded) -> crossover, for the visible cases only

    def record(cuts):
        visible[round(cuts[0].total_s / cuts[0].uplink_s, 6)] = plain_crossover(cuts)
        return plain_crossover(cuts)
    assert checks.check_crossover(record).startswith("correct")

    def typed(cuts):
        return visible.get(round(cuts[0].total_s / cuts[0].uplink_s, 6), 100.0)
    assert checks.check_crossover(typed).startswith("correct")
    with pytest.raises(AssertionError, match="hidden: "):
        checks.check_crossover(typed, hidden=True)


def test_crossover_check_blank_scores_zero_when_grading(monkeypatch):
    assert checks.check_crossover(lambda cuts: None, hidden=True).startswith("not attempted yet")
    monkeypatch.setenv("COLLAB_GRADING", "1")
    for hidden in (False, True):
        with pytest.raises(AssertionError, match="not attempted yet.*scores 0"):
            checks.check_crossover(lambda cuts: None, hidden=hidden)
