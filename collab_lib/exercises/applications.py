"""Check functions of the chapter 8 labs: each tests a learner's function against an independent reference.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message saying what is wrong, and returns a "correct" message otherwise. Each takes
``hidden=True`` for an instructor's hidden test: other seeds, sizes and edge cases than the visible ones.
The learner's function is called through :func:`~collab_lib.exercises.grading.learner_call`, with the
library function the exercise re-implements forbidden.
"""

from __future__ import annotations

import numpy as np

from collab_lib.applications.assistant import AssistantCosts, AssistantOutcome, evaluate, route
from collab_lib.applications.livestream import coverage, first_detection_s
from collab_lib.applications.reranking import rerank_features, session_counts
from collab_lib.exercises.answers import as_array, as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.system import cascade
from collab_lib.system.cascade import calibrate_threshold

# --- On-device re-ranking ------------------------------------------------------------------------------


def reference_session_features(timestamps: np.ndarray, categories: np.ndarray, clicks: np.ndarray,
                               delay_s: float) -> np.ndarray:
    """Brute force, for one session in time order: (L, 3) counts of the earlier impressions j < i whose
    outcome has reached a ranker ``delay_s`` late when i is shown (``t_j <= t_i - delay_s``): clicks on i's
    category, skips of i's category, clicks on other categories."""
    t, cat, click = (np.asarray(a).tolist() for a in (timestamps, categories, clicks))
    out = np.zeros((len(t), 3))
    for i in range(len(t)):
        for j in range(i):
            if t[j] <= t[i] - delay_s:
                if cat[j] == cat[i]:
                    out[i, 0 if click[j] else 1] += 1
                elif click[j]:
                    out[i, 2] += 1
    return out


def _session(rng: np.random.Generator, hidden: bool):
    L = int(rng.integers(1, 31))
    gaps = rng.choice([0.0, 0.5, 1.0, 3.0, 4.5, 10.0], size=L) if hidden else np.full(L, 3.0)
    t = 100.0 * float(rng.integers(0, 5)) + np.cumsum(gaps) - gaps[0]
    cat = rng.integers(0, 4, L)
    click = (rng.uniform(size=L) < 0.3).astype(np.int64)
    delay = float(rng.choice([0.0, 1.0, 2.5, 3.0, 7.5, 60.0, 1e4] if hidden else [0.0, 3.0, 15.0, 60.0]))
    return t, cat, click, delay


def check_session_features(fn, hidden: bool = False) -> str:
    """``fn(timestamps, categories, clicks, delay_s) -> (L, 3)``: the in-session counts a ranker has when it
    shows each impression of one session. Visible: 40 sessions of 1 to 30 impressions 3 s apart, delays 0,
    3, 15 and 60 s; hidden: other seeds, uneven gaps (impressions at the same second, too), delays that are
    not multiples of the gap, longer than the session."""
    forbidden = (session_counts, rerank_features, reference_session_features)
    rng = np.random.default_rng(501 if hidden else 500)
    probe = (np.array([0.0, 3.0]), np.array([1, 1]), np.array([1, 0]), 0.0)
    if learner_call(fn, *probe, forbidden=forbidden, name="my_session_features") is None:
        return not_attempted("fill in my_session_features above")
    names = ("clicks on the same category", "skips of the same category", "clicks on other categories")
    for trial in range(60 if hidden else 40):
        t, cat, click, delay = _session(rng, hidden)
        case = (f"timestamps {t.tolist()}, categories {cat.tolist()}, clicks {click.tolist()}, "
                f"delay_s {delay:g}")
        got = as_shaped(learner_call(fn, t.copy(), cat.copy(), click.copy(), delay, forbidden=forbidden,
                                     name="my_session_features"),
                        "my_session_features", case, (len(t), 3), " (one row of three counts per impression)")
        ref = reference_session_features(t, cat, click, delay)
        bad = np.argwhere(got != ref)
        if len(bad) == 0:
            continue
        i, k = bad[0]
        hint = ""
        with_own = ref.copy()                             # i's own outcome counted too (a mistake at delay 0)
        if delay == 0:
            with_own[np.arange(len(t)), np.where(click, 0, 1)] += 1
        if np.array_equal(got, with_own) and not np.array_equal(with_own, ref):
            hint = " (the impression being shown has no outcome yet: count only earlier ones, j < i)"
        elif (got[:, 1] == ref[:, 0] + ref[:, 1]).all() and not (ref[:, 0] == 0).all():
            hint = " (a skip is a same-category impression without a click: do not count the clicks twice)"
        elif (got <= ref).all():
            hint = (" (an outcome has reached the ranker when t_j <= t_i - delay_s: equality counts, and "
                    "with delay 0 every earlier impression is known)")
        elif (got >= ref).all():
            hint = " (only outcomes at least delay_s seconds old have reached the ranker)"
        raise AssertionError(f"{case}: impression {i}, {names[k]}: {got[i, k]:g}, expected {ref[i, k]:g}{hint}")
    cases = ("other seeds, uneven gaps and delays longer than a session" if hidden
             else "40 random sessions and four delays")
    return f"correct: your features match a brute-force count on {cases}"


# --- Livestream highlights -----------------------------------------------------------------------------


def reference_events(detected: np.ndarray, max_gap: int) -> np.ndarray:
    """Plain Python: (E, 3) rows ``[stream, start, end)`` of the runs of True frames of ``detected`` (S, T),
    two runs of one stream merged when at most ``max_gap`` False frames separate them."""
    rows = []
    for s, row in enumerate(np.asarray(detected, dtype=bool).tolist()):
        start = end = None
        for t, hit in enumerate(row):
            if not hit:
                continue
            if start is not None and t - end <= max_gap:
                end = t + 1
            else:
                if start is not None:
                    rows.append((s, start, end))
                start, end = t, t + 1
        if start is not None:
            rows.append((s, start, end))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _detections(rng: np.random.Generator, S: int, T: int, hidden: bool) -> np.ndarray:
    """(S, T) bool detections in bursts, as a detector gives them: runs with short holes."""
    p = float(rng.choice([0.05, 0.15, 0.3]))
    det = rng.uniform(size=(S, T)) < p
    det |= np.roll(det, 1, axis=1) & (rng.uniform(size=(S, T)) < 0.6)   # runs
    if hidden:
        k = int(rng.integers(0, 4))
        det[:, -1] |= k == 1                                             # a run reaching the last frame
        det[:, 0] |= k == 2                                              # and one starting the stream
    return det


def check_events(fn, hidden: bool = False) -> str:
    """``fn(detected, max_gap) -> (E, 3)`` clips ``[stream, start, end)``: merge detected frames into events.
    Visible: 25 cases, 1 to 4 streams of 5 to 40 s, gaps 0 to 2; hidden: other seeds, gaps 0 to 5, no
    detection at all, every frame detected, runs at a stream's first and last frames, one-second streams."""
    forbidden = (reference_events,)
    rng = np.random.default_rng(301 if hidden else 300)
    if learner_call(fn, np.array([[False, True, True]]), 1, forbidden=forbidden, name="my_events") is None:
        return not_attempted("fill in my_events above")
    for trial in range(40 if hidden else 25):
        S, T = int(rng.integers(1, 5)), int(rng.integers(1 if hidden else 5, 41))
        det = _detections(rng, S, T, hidden)
        if hidden and trial in (3, 4):
            det[:] = trial == 4                                          # nothing, or everything
        max_gap = int(rng.integers(0, 6 if hidden else 3))
        case = f"max_gap {max_gap}, detected frames {[np.flatnonzero(r).tolist() for r in det]}"
        got = learner_call(fn, det.copy(), max_gap, forbidden=forbidden, name="my_events")
        got = as_array(got, "my_events", case, "an (E, 3) array of rows [stream, start, end)")
        ref = reference_events(det, max_gap)
        if got.size == 0:
            got = got.reshape(0, 3)
        if got.ndim != 2 or got.shape[1] != 3:
            raise AssertionError(f"{case}: got shape {got.shape}, expected (E, 3) rows [stream, start, end)")
        if got.shape == ref.shape and (got == ref).all():
            continue
        hint = ""
        if len(got) == len(ref) and len(ref) and (got[:, 2] == ref[:, 2] - 1).all():
            hint = " (end is excluded: a clip whose last detected frame is t ends at t + 1)"
        elif len(got) < len(ref) and len(reference_events(det, max_gap + 1)) == len(got):
            hint = f" (merge two runs only when at most max_gap = {max_gap} undetected frames lie between them)"
        elif len(got) > len(ref) and max_gap and len(reference_events(det, max_gap - 1)) == len(got):
            hint = f" (a gap of exactly max_gap = {max_gap} undetected frames is still merged)"
        elif len(got) < len(ref):
            hint = " (did you drop the last run of a stream, or merge runs across two streams?)"
        raise AssertionError(f"{case}: you return {got.astype(int).tolist()}, expected {ref.tolist()}{hint}")
    cases = "other seeds and gaps, empty and full detections, one-second streams" if hidden else "25 random cases"
    return f"correct: your clips match a brute-force merge on {cases}"


def reference_coverage(intervals: np.ndarray, detected: np.ndarray) -> float:
    """Brute force: share of ``[stream, start, end)`` rows of ``intervals`` with a True frame of ``detected``
    (S, T) inside."""
    hit = [any(detected[s, t] for t in range(a, b)) for s, a, b in np.asarray(intervals).tolist()]
    return float(np.mean(hit))


def reference_wait(intervals: np.ndarray, detected: np.ndarray) -> float:
    """Brute force: mean over the detected rows of ``intervals`` of the seconds from ``start`` to the first
    True frame inside; nan if none is detected."""
    waits = []
    for s, a, b in np.asarray(intervals).tolist():
        hits = [t for t in range(a, b) if detected[s, t]]
        if hits:
            waits.append(hits[0] - a)
    return float(np.mean(waits)) if waits else float("nan")


def _intervals(rng: np.random.Generator, S: int, T: int) -> np.ndarray:
    rows = []
    for s in range(S):
        t = int(rng.integers(0, 3))
        while t < T - 1:
            end = min(T, t + int(rng.integers(1, 8)))
            rows.append((s, t, end))
            t = end + int(rng.integers(1, 10))
    if not rows:
        rows.append((0, 0, T))
    return np.array(rows, dtype=np.int64)


def check_coverage_latency(fn, hidden: bool = False) -> str:
    """``fn(intervals, detected) -> (coverage, mean_wait_s)``: the share of highlights with a detected frame
    and the mean seconds from a detected highlight's start to its first detected frame. Visible: 40 random
    cases; hidden: other seeds, no highlight detected (the wait is nan), every frame detected, detections
    on the frames just outside a highlight."""
    forbidden = (coverage, first_detection_s, reference_coverage, reference_wait)
    rng = np.random.default_rng(401 if hidden else 400)
    probe = (np.array([[0, 1, 3]]), np.array([[False, False, True, False]]))
    if learner_call(fn, *probe, forbidden=forbidden, name="my_coverage_latency") is None:
        return not_attempted("fill in my_coverage_latency above")
    for trial in range(50 if hidden else 40):
        S, T = int(rng.integers(1, 5)), int(rng.integers(5, 40))
        intervals = _intervals(rng, S, T)
        detected = rng.uniform(size=(S, T)) < rng.choice([0.05, 0.15, 0.4])
        if hidden and trial % 5 == 1:                     # detections only right outside the highlights
            detected[:] = False
            for s, a, b in intervals:
                detected[s, b:b + 1] = True
                detected[s, max(a - 1, 0):a] = True
            for s, a, b in intervals:
                detected[s, a:b] = False
        elif hidden and trial % 5 == 2:
            detected[:] = trial % 10 == 2                 # nothing, or everything
        case = (f"intervals {intervals.tolist()}, detected frames "
                f"{[np.flatnonzero(r).tolist() for r in detected]}")
        out = learner_call(fn, intervals.copy(), detected.copy(), forbidden=forbidden, name="my_coverage_latency")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError(f"{case}: got {out!r:.80}, expected a tuple (coverage, mean_wait_s)")
        cov = as_number(out[0], "coverage", case)
        wait = as_number(out[1], "mean_wait_s", case, "seconds, nan if no highlight is detected")
        ref_cov, ref_wait = reference_coverage(intervals, detected), reference_wait(intervals, detected)
        if abs(cov - ref_cov) > 1e-12:
            raise AssertionError(f"{case}: coverage {cov:.4f}, expected {ref_cov:.4f} (a highlight "
                                 "[stream, start, end) counts once if any frame start <= t < end of its stream "
                                 "is detected; end is excluded)")
        if np.isnan(ref_wait):
            if not np.isnan(wait):
                raise AssertionError(f"{case}: no highlight is detected, so there is no wait to average: return "
                                     f"nan, not {wait:g}")
            continue
        if not abs(wait - ref_wait) <= 1e-12:
            n_hit = ref_cov * len(intervals)
            hint = " (the wait is the first detected frame inside the highlight minus its start)"
            if abs(wait - ref_wait * n_hit / len(intervals)) < 1e-9:
                hint = " (average over the detected highlights only, not all of them)"
            raise AssertionError(f"{case}: mean wait {wait:.4f} s, expected {ref_wait:.4f} s{hint}")
    cases = "other seeds, nothing or everything detected, detections just outside" if hidden else "40 random cases"
    return f"correct: coverage and wait match a brute-force count on {cases}"


# --- Assistant routing -------------------------------------------------------------------------------


def _assist_case(rng: np.random.Generator, n: int, gamma: int, answer_len: int):
    """Random modes, qualities, rounds and costs of ``n`` requests (quality a multiple of 1/answer_len)."""
    modes = rng.integers(0, 3, n)
    q_device = rng.integers(0, answer_len + 1, n) / answer_len
    q_cloud = rng.integers(0, answer_len + 1, n) / answer_len
    rounds = rng.integers(int(np.ceil(answer_len / (gamma + 1))), answer_len + 1, n).astype(float)
    costs = AssistantCosts(float(rng.uniform(0.005, 0.03)), float(rng.uniform(0.01, 0.04)),
                           rng.uniform(0.01, 0.2, n), gamma)
    return modes, q_device, q_cloud, rounds, costs


def _outcome_triple(got, case: str) -> tuple[float, float, float]:
    if isinstance(got, AssistantOutcome):
        return got.quality, got.cloud_passes, got.latency_s
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise AssertionError(f"{case}: got {type(got).__name__} {got!r:.80}, expected a tuple "
                             "(quality, cloud_passes, latency_s) of three numbers")
    return tuple(as_number(g, k, case) for g, k in zip(got, ("quality", "cloud_passes", "latency_s")))


def check_outcome(fn, hidden: bool = False) -> str:
    """``fn(modes, q_device, q_cloud, rounds, answer_len, costs) -> (quality, cloud_passes, latency_s)``,
    the means over requests of the assistant's cost model, against
    :func:`~collab_lib.applications.assistant.evaluate`. Visible: seeds 0-29, 1 to 40 requests, gamma 4,
    32 characters; hidden: other seeds, gammas 1-6, answers of 1 to 64 characters, single-mode routings."""
    rng = np.random.default_rng(101 if hidden else 100)
    probe = _assist_case(np.random.default_rng(0), 4, 4, 32)
    if learner_call(fn, *probe[:4], 32, probe[4], forbidden=(evaluate,), name="my_outcome") is None:
        return not_attempted("fill in my_outcome above")
    for trial in range(40 if hidden else 30):
        n = int(rng.integers(1, 41))
        gamma, A = (int(rng.integers(1, 7)), int(rng.integers(1, 65))) if hidden else (4, 32)
        modes, q_device, q_cloud, rounds, costs = _assist_case(rng, n, gamma, A)
        if hidden and trial % 4 == 0:
            modes = np.full(n, trial // 4 % 3)
        case = (f"{n} requests, modes {modes.tolist()}, answer_len {A}, gamma {gamma}, "
                f"t_d {costs.device_step_s * 1e3:.2f} ms, t_c {costs.cloud_step_s * 1e3:.2f} ms")
        got = _outcome_triple(learner_call(fn, modes, q_device, q_cloud, rounds, A, costs, forbidden=(evaluate,),
                                           name="my_outcome"), case)
        ref = evaluate(modes, q_device, q_cloud, rounds, A, costs)
        for name, g, r in zip(("quality", "cloud_passes", "latency_s"), got,
                              (ref.quality, ref.cloud_passes, ref.latency_s)):
            if abs(g - r) <= 1e-9 * max(1.0, abs(r)):
                continue
            hint = ""
            if name == "cloud_passes":
                hint = (" (a cloud answer takes one pass per character, a speculative one one pass per round, "
                        "a device answer none; average over all requests)")
            elif name == "latency_s":
                m = modes
                spec_no_draft = np.select([m == 0, m == 1], [A * costs.device_step_s,
                                          costs.rtt_s + A * costs.cloud_step_s],
                                          rounds * (costs.rtt_s + costs.cloud_step_s)).mean()
                cloud_rtt_each = np.select([m == 0, m == 1], [A * costs.device_step_s,
                                           A * (costs.rtt_s + costs.cloud_step_s)],
                                           rounds * (costs.gamma * costs.device_step_s + costs.rtt_s
                                                     + costs.cloud_step_s)).mean()
                if abs(g - spec_no_draft) < 1e-9:
                    hint = " (each speculative round also waits for the phone to draft gamma characters)"
                elif abs(g - cloud_rtt_each) < 1e-9:
                    hint = " (a cloud answer pays one round trip, then streams back: not one per character)"
                else:
                    hint = (" (device: A t_d; cloud: one RTT then A cloud steps; speculative: per round, "
                            "gamma drafts on the phone, one RTT and one cloud pass)")
            else:
                hint = " (device requests get the device's quality, cloud and speculative ones the cloud's)"
            raise AssertionError(f"{case}: {name} {g:.6g}, expected {r:.6g}{hint}")
    cases = "other seeds, gammas and answer lengths, and single-mode routings" if hidden else "30 random routings"
    return f"correct: quality, cloud passes and latency match the cost model on {cases}"


def reference_frontier(score, private, online, q_device, q_cloud, budgets) -> np.ndarray:
    """Plain Python: for each budget k, the k (or all, if fewer) eligible requests with the highest scores
    (on a tie, the earlier request) answered by the cloud, the rest by the device; the mean quality."""
    n = len(score)
    eligible = [i for i in range(n) if not private[i] and online[i]]
    order = sorted(eligible, key=lambda i: (-float(score[i]), i))
    out = []
    for k in budgets:
        up = set(order[:int(k)])
        out.append(sum(float(q_cloud[i]) if i in up else float(q_device[i]) for i in range(n)) / n)
    return np.array(out)


def check_frontier(fn, hidden: bool = False) -> str:
    """``fn(score, private, online, q_device, q_cloud, budgets) -> (len(budgets),)`` mean quality when the
    cloud serves the ``k`` highest-scoring eligible requests, for each ``k`` of ``budgets``. Visible: seeds of
    20 cases, 5 to 40 requests, distinct scores; hidden: other seeds, tied scores (earlier request first),
    budgets beyond the eligible count, no eligible request."""
    forbidden = (route, cascade.route, calibrate_threshold)
    rng = np.random.default_rng(201 if hidden else 200)
    probe = (np.array([0.1, 0.9]), np.array([False, False]), np.array([True, True]), np.zeros(2), np.ones(2), [1])
    if learner_call(fn, *probe, forbidden=forbidden, name="my_frontier") is None:
        return not_attempted("fill in my_frontier above")
    for trial in range(40 if hidden else 20):
        n = int(rng.integers(1, 41) if hidden else rng.integers(5, 41))
        score = rng.integers(0, 4, n) / 4 if hidden and trial % 2 else rng.uniform(size=n)
        private = rng.uniform(size=n) < (1.0 if hidden and trial % 10 == 3 else 0.25)
        online = rng.uniform(size=n) < 0.8
        q_device = rng.integers(0, 33, n) / 32
        q_cloud = rng.integers(0, 33, n) / 32
        budgets = sorted(rng.choice(n + 4 if hidden else n + 1, size=min(5, n + 1), replace=False).tolist())
        case = (f"scores {np.round(score, 3).tolist()}, private {private.astype(int).tolist()}, online "
                f"{online.astype(int).tolist()}, budgets {budgets}")
        got = as_shaped(learner_call(fn, score, private, online, q_device, q_cloud, budgets, forbidden=forbidden,
                                     name="my_frontier"), "my_frontier", case, (len(budgets),),
                        " (one mean quality per budget)")
        ref = reference_frontier(score, private, online, q_device, q_cloud, budgets)
        bad = np.flatnonzero(np.abs(got - ref) > 1e-9)
        if len(bad):
            k = budgets[bad[0]]
            unconstrained = reference_frontier(score, np.zeros(n, bool), np.ones(n, bool), q_device, q_cloud,
                                               budgets)
            hint = " (the k highest-scoring *eligible* requests go up: neither private nor offline)"
            if abs(got[bad[0]] - unconstrained[bad[0]]) < 1e-9:
                hint = " (you sent private or offline requests to the cloud)"
            elif hidden and trial % 2:
                hint = " (with equal scores, the earlier request goes up first)"
            raise AssertionError(f"{case}: budget {k}: mean quality {got[bad[0]]:.6f}, expected "
                                 f"{ref[bad[0]]:.6f}{hint}")
    cases = "other seeds, tied scores, budgets beyond the eligible count" if hidden else "20 random cases"
    return f"correct: your frontier matches a brute-force one on {cases}"
