"""Wrong and cheating answers to the cascades lab's fill-ins, for the grading test."""

WRONG = {
    "my_threshold": '''def my_threshold(scores, large_fraction):
    # a plausible mistake: the k-th highest score is taken one place too far (off by one)
    s = sorted(scores.tolist(), reverse=True)
    k = round(large_fraction * len(s))
    return s[k] if k < len(s) else 0.0
''',
    "my_policy_curve": '''def my_policy_curve(cal_scores, test_scores, small_logits, large_logits, labels, budgets, small_cost,
                    large_cost, small_always_runs, router_cost):
    # a plausible mistake: a cascade priced like a router (the small model paid only on the kept queries)
    from collab_lib.system.cascade import calibrate_threshold
    rows = []
    for b in budgets:
        send = test_scores >= calibrate_threshold(cal_scores, b)
        f = send.double().mean().item()
        right = (large_logits.argmax(-1) == labels) & send | (small_logits.argmax(-1) == labels) & ~send
        rows.append([right.double().mean().item(), f, router_cost + (1 - f) * small_cost + f * large_cost])
    return rows
''',
}

CHEAT = {
    "my_threshold": '''from collab_lib.system.cascade import calibrate_threshold as my_threshold
''',
    "my_policy_curve": '''def my_policy_curve(cal_scores, test_scores, small_logits, large_logits, labels, budgets, small_cost,
                    large_cost, small_always_runs, router_cost):
    # hands back the library's evaluation
    from collab_lib.system.cascade import calibrate_threshold, cascade_outcome, route
    outs = [cascade_outcome(small_logits, large_logits, labels, route(test_scores, calibrate_threshold(cal_scores, b)),
                            small_cost, large_cost, small_always_runs, router_cost) for b in budgets]
    return [[o.accuracy, o.large_fraction, o.cost] for o in outs]
''',
}
