"""Wrong and cheating answers to the fill-ins of labs/08_applications/livestream_highlights.ipynb.

WRONG holds a plausible mistake the check rejects, CHEAT an answer that hands back the library's function
(or the check's own reference) or wraps it; both must score 0.
"""

WRONG = {
    "my_events": '''def my_events(detected, max_gap):
    # the end is the last detected frame, not one past it
    rows = []
    for s, row in enumerate(np.asarray(detected, dtype=bool)):
        for t in np.flatnonzero(row):
            if rows and rows[-1][0] == s and t - rows[-1][2] - 1 <= max_gap:
                rows[-1][2] = t
            else:
                rows.append([s, t, t])
    return np.array(rows, dtype=np.int64).reshape(-1, 3)
''',
    "my_coverage_latency": '''def my_coverage_latency(intervals, detected):
    # counts a detection at the end frame, which lies outside the highlight
    waits = []
    for s, a, b in np.asarray(intervals):
        hits = np.flatnonzero(detected[s, a:b + 1])
        if len(hits):
            waits.append(hits[0])
    return len(waits) / len(intervals), (float(np.mean(waits)) if waits else float("nan"))
''',
}

CHEAT = {
    "my_events": '''from collab_lib.exercises.applications import reference_events as my_events
''',
    "my_coverage_latency": '''from collab_lib.applications.livestream import coverage, first_detection_s


def my_coverage_latency(intervals, detected):
    wait = first_detection_s(intervals, detected)
    return coverage(intervals, detected), float(np.nanmean(wait)) if np.isfinite(wait).any() else float("nan")
''',
}
