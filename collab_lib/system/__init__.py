"""System layer: how work is divided between device and cloud at run time."""

from collab_lib.system.partition import SplitLatency, best_split, split_latencies

__all__ = ["SplitLatency", "best_split", "split_latencies"]
