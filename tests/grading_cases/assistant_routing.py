"""Wrong and cheating answers to the fill-ins of labs/08_applications/assistant_routing.ipynb.

WRONG holds a plausible mistake the check rejects, CHEAT an answer that hands back the library's function
or wraps it; both must score 0.
"""

WRONG = {
    "my_outcome": '''def my_outcome(modes, q_device, q_cloud, rounds, answer_len, costs):
    # forgets the phone's drafting time in each speculative round
    m = np.asarray(modes)
    quality = np.where(m == 0, q_device, q_cloud)
    passes = np.select([m == 1, m == 2], [answer_len, rounds], 0.0)
    spec = rounds * (costs.rtt_s + costs.cloud_step_s)
    cloud = costs.rtt_s + answer_len * costs.cloud_step_s
    latency = np.select([m == 0, m == 1], [answer_len * costs.device_step_s, cloud], spec)
    return quality.mean(), passes.mean(), latency.mean()
''',
    "my_frontier": '''def my_frontier(score, private, online, q_device, q_cloud, budgets):
    # ranks every request, private and offline ones included
    order = np.argsort(-np.asarray(score), kind="stable")
    out = []
    for k in budgets:
        q = np.array(q_device, dtype=float)
        q[order[:k]] = np.asarray(q_cloud)[order[:k]]
        out.append(q.mean())
    return np.array(out)
''',
}

CHEAT = {
    "my_outcome": '''from collab_lib.applications.assistant import evaluate


def my_outcome(modes, q_device, q_cloud, rounds, answer_len, costs):
    o = evaluate(modes, q_device, q_cloud, rounds, answer_len, costs)
    return o.quality, o.cloud_passes, o.latency_s
''',
    "my_frontier": '''from collab_lib.applications.assistant import route
from collab_lib.system.cascade import PrecomputedRouter


def my_frontier(score, private, online, q_device, q_cloud, budgets):
    ok = ~np.asarray(private) & np.asarray(online)
    ranked = np.sort(np.asarray(score, dtype=float)[ok])[::-1]
    out = []
    for k in budgets:
        t = ranked[k - 1] if 0 < k <= len(ranked) else (ranked[-1] if len(ranked) and k else 1.0)
        modes = route(PrecomputedRouter(), np.asarray(score, dtype=float), private, online, min(t, 1.0))
        out.append(np.where(modes == 0, q_device, q_cloud).mean())
    return np.array(out)
''',
}
