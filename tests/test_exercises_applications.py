"""Chapter 8's lab checks accept a correct answer, say "not attempted" for None and reject wrong answers.

Each check is tried in its visible and its hidden mode: an independent correct answer (plain Python, written
from the lab's text, not the library's code) passes, plausible mistakes fail with a useful message, a blank
raises when grading, and the library's own function, or a lambda around it, is rejected.
"""

import numpy as np
import pytest

from collab_lib.applications import assistant
from collab_lib.exercises import applications as checks
from collab_lib.system.cascade import PrecomputedRouter

MODES = (False, True)


# --- on-device re-ranking -------------------------------------------------------------------------------


def right_session_features(timestamps, categories, clicks, delay_s):
    """Per impression, the known earlier outcomes, counted with numpy masks."""
    t, cat, click = (np.asarray(a) for a in (timestamps, categories, clicks))
    out = np.zeros((len(t), 3))
    for i in range(len(t)):
        known = (np.arange(len(t)) < i) & (t <= t[i] - delay_s)
        same = known & (cat == cat[i])
        out[i] = [(same & (click == 1)).sum(), (same & (click == 0)).sum(), (known & ~same & (click == 1)).sum()]
    return out


def features_own_click(timestamps, categories, clicks, delay_s):  # j <= i: the current outcome is counted
    t, cat, click = (np.asarray(a) for a in (timestamps, categories, clicks))
    out = np.zeros((len(t), 3))
    for i in range(len(t)):
        known = (np.arange(len(t)) <= i) & (t <= t[i] - delay_s)
        same = known & (cat == cat[i])
        out[i] = [(same & (click == 1)).sum(), (same & (click == 0)).sum(), (known & ~same & (click == 1)).sum()]
    return out


def features_strict_delay(timestamps, categories, clicks, delay_s):  # t_j < t_i - delay: loses the boundary
    return right_session_features(timestamps, categories, clicks, delay_s + 1e-9)


def features_shows_as_skips(timestamps, categories, clicks, delay_s):  # counts every same-category show
    out = right_session_features(timestamps, categories, clicks, delay_s)
    out[:, 1] += out[:, 0]
    return out


def features_from_the_library(timestamps, categories, clicks, delay_s):
    """Dresses the session up as a data set for the library's session_counts."""
    from types import SimpleNamespace

    import torch

    from collab_lib.applications import reranking

    cat = np.asarray(categories)
    data = SimpleNamespace(config=SimpleNamespace(num_categories=int(cat.max()) + 1),
                           session_id=torch.zeros(len(cat), dtype=torch.long),
                           timestamp_s=torch.as_tensor(np.asarray(timestamps, dtype=float)),
                           category_id=torch.as_tensor(cat), click=torch.as_tensor(np.asarray(clicks)))
    c, n = reranking.session_counts(data, delay_s)
    rows = np.arange(len(cat))
    same = c[rows, cat]
    return np.column_stack([same, n[rows, cat] - same, c.sum(axis=1) - same])


@pytest.mark.parametrize("hidden", MODES)
def test_session_features_check(hidden, monkeypatch):
    assert checks.check_session_features(right_session_features, hidden=hidden).startswith("correct")
    assert checks.check_session_features(lambda *a: None, hidden=hidden).startswith("not attempted")
    with pytest.raises(AssertionError, match="no outcome yet"):
        checks.check_session_features(features_own_click, hidden=hidden)
    with pytest.raises(AssertionError, match="equality counts"):
        checks.check_session_features(features_strict_delay, hidden=hidden)
    with pytest.raises(AssertionError, match="skip"):
        checks.check_session_features(features_shows_as_skips, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_session_features(checks.reference_session_features, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_session_features(features_from_the_library, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_session_features(lambda *a: checks.reference_session_features(*a), hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_session_features(lambda *a: None, hidden=hidden)


# --- assistant routing --------------------------------------------------------------------------------


def right_outcome(modes, q_device, q_cloud, rounds, answer_len, costs):
    """Request by request, from the lab's cost model."""
    q = passes = lat = 0.0
    for i, m in enumerate(modes):
        if m == 0:
            q += q_device[i]
            lat += answer_len * costs.device_step_s
        elif m == 1:
            q += q_cloud[i]
            passes += answer_len
            lat += costs.rtt_s[i] + answer_len * costs.cloud_step_s
        else:
            q += q_cloud[i]
            passes += rounds[i]
            lat += rounds[i] * (costs.gamma * costs.device_step_s + costs.rtt_s[i] + costs.cloud_step_s)
    n = len(modes)
    return q / n, passes / n, lat / n


def outcome_no_draft(modes, q_device, q_cloud, rounds, answer_len, costs):
    """Forgets the phone's drafting time in a speculative round."""
    q, p, lat = right_outcome(modes, q_device, q_cloud, rounds, answer_len, costs)
    m = np.asarray(modes)
    return q, p, lat - float(np.mean((m == 2) * rounds * costs.gamma * costs.device_step_s))


def outcome_spec_passes(modes, q_device, q_cloud, rounds, answer_len, costs):
    """Counts a speculative answer as answer_len cloud passes."""
    q, p, lat = right_outcome(modes, q_device, q_cloud, rounds, answer_len, costs)
    m = np.asarray(modes)
    return q, p + float(np.mean((m == 2) * (answer_len - rounds))), lat


@pytest.mark.parametrize("hidden", MODES)
def test_outcome_check(hidden):
    assert checks.check_outcome(right_outcome, hidden=hidden).startswith("correct")
    assert checks.check_outcome(lambda *a: None, hidden=hidden).startswith("not attempted")
    with pytest.raises(AssertionError, match="draft gamma"):
        checks.check_outcome(outcome_no_draft, hidden=hidden)
    with pytest.raises(AssertionError, match="cloud_passes"):
        checks.check_outcome(outcome_spec_passes, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_outcome(assistant.evaluate, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_outcome(lambda *a: (lambda o: (o.quality, o.cloud_passes, o.latency_s))(
            assistant.evaluate(*a)), hidden=hidden)


def right_frontier(score, private, online, q_device, q_cloud, budgets):
    n = len(score)
    eligible = [i for i in range(n) if not private[i] and online[i]]
    order = sorted(eligible, key=lambda i: (-score[i], i))
    out = []
    for k in budgets:
        q = list(q_device)
        for i in order[:k]:
            q[i] = q_cloud[i]
        out.append(sum(q) / n)
    return out


def frontier_ignores_constraints(score, private, online, q_device, q_cloud, budgets):
    n = len(score)
    return right_frontier(score, [False] * n, [True] * n, q_device, q_cloud, budgets)


def frontier_unstable_ties(score, private, online, q_device, q_cloud, budgets):
    """Breaks ties toward the later request."""
    n = len(score)
    rev = lambda a: list(a)[::-1]  # noqa: E731
    return right_frontier(rev(score), rev(private), rev(online), rev(q_device), rev(q_cloud), budgets) if n else []


def frontier_with_route(score, private, online, q_device, q_cloud, budgets):
    """Thresholds the scores with the library's router (what the exercise asks to write)."""
    out = []
    for k in budgets:
        elig = np.sort(np.asarray(score)[~np.asarray(private) & np.asarray(online)])[::-1]
        t = elig[k - 1] if 0 < k <= len(elig) else (elig[-1] if len(elig) and k else 2.0)
        modes = assistant.route(PrecomputedRouter(), np.asarray(score, float), private, online, min(t, 1.0))
        out.append(np.where(modes == 0, q_device, q_cloud).mean())
    return out


@pytest.mark.parametrize("hidden", MODES)
def test_frontier_check(hidden, monkeypatch):
    assert checks.check_frontier(right_frontier, hidden=hidden).startswith("correct")
    assert checks.check_frontier(lambda *a: None, hidden=hidden).startswith("not attempted")
    with pytest.raises(AssertionError, match="private or offline"):
        checks.check_frontier(frontier_ignores_constraints, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_frontier(frontier_with_route, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_frontier(lambda *a: frontier_with_route(*a), hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_frontier(lambda *a: None, hidden=hidden)
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_outcome(lambda *a: None, hidden=hidden)


def test_frontier_hidden_catches_ties_and_hard_coding():
    checks.check_frontier(frontier_unstable_ties)  # distinct scores: the visible cases cannot tell
    with pytest.raises(AssertionError, match="earlier request"):
        checks.check_frontier(frontier_unstable_ties, hidden=True)


# --- livestream highlights ------------------------------------------------------------------------------


def right_events(detected, max_gap):
    """Runs from the edges of each padded row, then a left-to-right merge."""
    out = []
    for s, row in enumerate(np.asarray(detected, dtype=int)):
        edges = np.diff(np.concatenate([[0], row, [0]]))
        runs = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
        merged = []
        for a, b in runs:
            if merged and a - merged[-1][1] <= max_gap:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        out += [(s, a, b) for a, b in merged]
    return np.array(out, dtype=int).reshape(-1, 3)


def events_inclusive_end(detected, max_gap):
    e = right_events(detected, max_gap)
    e[:, 2] -= 1
    return e


def events_strict_gap(detected, max_gap):  # merges only gaps shorter than max_gap
    return right_events(detected, max_gap - 1) if max_gap else right_events(detected, 0)


def events_across_streams(detected, max_gap):
    """Merges the whole array as one long stream, then splits by row: loses runs at the boundaries."""
    S, T = np.shape(detected)
    flat = right_events(np.asarray(detected).reshape(1, -1), max_gap)
    return np.array([(a // T, a % T, min(b - a // T * T, T)) for _, a, b in flat], dtype=int).reshape(-1, 3)


@pytest.mark.parametrize("hidden", MODES)
def test_events_check(hidden, monkeypatch):
    from collab_lib.exercises.applications import reference_events

    assert checks.check_events(right_events, hidden=hidden).startswith("correct")
    assert checks.check_events(lambda *a: None, hidden=hidden).startswith("not attempted")
    with pytest.raises(AssertionError, match="end is excluded"):
        checks.check_events(events_inclusive_end, hidden=hidden)
    with pytest.raises(AssertionError, match="still merged"):
        checks.check_events(events_strict_gap, hidden=hidden)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_events(events_across_streams, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_events(reference_events, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_events(lambda d, g: reference_events(d, g), hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_events(lambda *a: None, hidden=hidden)


def right_coverage_latency(intervals, detected):
    hit, waits = 0, []
    for s, a, b in intervals:
        frames = np.flatnonzero(detected[s][a:b])
        if len(frames):
            hit += 1
            waits.append(frames[0])
    return hit / len(intervals), (sum(waits) / len(waits) if waits else float("nan"))


def coverage_latency_end_included(intervals, detected):
    return right_coverage_latency([(s, a, b + 1) for s, a, b in intervals], detected)


def coverage_latency_all_highlights(intervals, detected):  # averages the wait over every highlight
    cov, wait = right_coverage_latency(intervals, detected)
    return cov, (wait * cov if cov else 0.0)


@pytest.mark.parametrize("hidden", MODES)
def test_coverage_latency_check(hidden, monkeypatch):
    from collab_lib.applications import livestream as ls

    assert checks.check_coverage_latency(right_coverage_latency, hidden=hidden).startswith("correct")
    assert checks.check_coverage_latency(lambda *a: None, hidden=hidden).startswith("not attempted")
    with pytest.raises(AssertionError, match="end is excluded"):
        checks.check_coverage_latency(coverage_latency_end_included, hidden=hidden)
    with pytest.raises(AssertionError, match="detected highlights only|no wait"):
        checks.check_coverage_latency(coverage_latency_all_highlights, hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_coverage_latency(lambda i, d: (ls.coverage(i, d), np.nanmean(ls.first_detection_s(i, d))),
                                      hidden=hidden)
    with pytest.raises(AssertionError, match="calls the library's"):
        checks.check_coverage_latency(
            lambda i, d: (checks.reference_coverage(i, d), checks.reference_wait(i, d)), hidden=hidden)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.check_coverage_latency(lambda *a: None, hidden=hidden)


def test_coverage_latency_wants_nan_when_nothing_is_detected():
    def zero_wait_when_none(intervals, detected):  # 0 instead of nan when nothing is detected
        cov, wait = right_coverage_latency(intervals, detected)
        return cov, 0.0 if np.isnan(wait) else wait

    with pytest.raises(AssertionError, match="return nan"):
        checks.check_coverage_latency(zero_wait_when_none, hidden=True)


# --- the grading cases: every wrong or cheating answer of the chapter's labs scores 0 -------------------

GRADED = {  # lab stem -> fill-in -> its check
    "assistant_routing": {"my_outcome": checks.check_outcome, "my_frontier": checks.check_frontier},
    "livestream_highlights": {"my_events": checks.check_events,
                              "my_coverage_latency": checks.check_coverage_latency},
    "on_device_reranking": {"my_session_features": checks.check_session_features},
}


@pytest.mark.parametrize("hidden", MODES)
@pytest.mark.parametrize("lab", sorted(GRADED))
def test_grading_cases_fail_their_checks(lab, hidden):
    import importlib

    cases = importlib.import_module(f"tests.grading_cases.{lab}")
    assert set(cases.WRONG) == set(cases.CHEAT) == set(GRADED[lab])
    for kind, answers in (("wrong", cases.WRONG), ("cheat", cases.CHEAT)):
        for name, source in answers.items():
            namespace = {"np": np}
            exec(source, namespace)
            match = "calls the library's" if kind == "cheat" else None
            with pytest.raises(AssertionError, match=match):
                GRADED[lab][name](namespace[name], hidden=hidden)
