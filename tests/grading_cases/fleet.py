"""Wrong and cheating answers to the fleet lab's fill-in, for the grading test."""

WRONG = {
    "my_fifo_queue": '''import numpy as np


def my_fifo_queue(arrival_s, service_s, servers):
    # a plausible mistake: the servers are ignored, as if the cloud had one
    free, wait = 0.0, np.zeros(len(arrival_s))
    for i, (t, s) in enumerate(zip(arrival_s, service_s)):
        start = max(t, free)
        wait[i] = start - t
        free = start + s
    p50, p99 = np.percentile(wait + np.asarray(service_s), [50, 99])
    return wait, p50, p99
''',
}

CHEAT = {
    "my_fifo_queue": '''import numpy as np

from collab_lib.system.fleet import fifo_queue


def my_fifo_queue(arrival_s, service_s, servers):
    # hands back the library's queue
    wait = fifo_queue(arrival_s, service_s, servers)
    p50, p99 = np.percentile(wait + np.asarray(service_s), [50, 99])
    return wait, p50, p99
''',
}
