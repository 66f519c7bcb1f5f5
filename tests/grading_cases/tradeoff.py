"""Submissions the tradeoff lab's check must not pass: a plausible mistake, and a cheat.

No library function computes the crossover, so the cheat cannot hand one back: it types in the answers of
the visible cases (keyed by the cloud-only round trip plus cloud compute, which tells them apart) and
guesses elsewhere, which the hidden cases catch.
"""

WRONG = {
    "crossover_mbps": '''def crossover_mbps(cuts):
    device_only, cloud_only = cuts[-1], cuts[0]
    slack_s = device_only.total_s - cloud_only.cloud_s  # forgets the round trip
    rate = 8 * cloud_only.bytes_up / cloud_only.uplink_s
    return rate * (cloud_only.uplink_s + cloud_only.downlink_s) / slack_s / 1e6
''',
}

CHEAT = {
    "crossover_mbps": '''def crossover_mbps(cuts):
    typed = {(150528, 0.02): 72.34394284379196, (15052, 0.028): 13.957532057155126,
             (150528, 0.05): float("inf")}
    key = (cuts[0].bytes_up, round(cuts[0].rtt_s, 3))
    if key == (150528, 0.02) and cuts[0].cloud_s > 5e-3:
        return 20.574581467445558
    return typed.get(key, 50.0)
''',
}
