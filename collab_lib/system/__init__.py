"""System layer: how work is divided between device and cloud at run time."""

from collab_lib.system.partition import SplitEnergy, SplitLatency, best_split, split_energies, split_latencies

__all__ = ["SplitEnergy", "SplitLatency", "best_split", "split_energies", "split_latencies"]
