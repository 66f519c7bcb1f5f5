"""One FedAvg round of 1,000 clients against Flower's simulation engine, side by side; one round of 10,000.

Task: FedProx's Synthetic(0.5, 0.5) with 1,000 users of at most 64 samples, a 60-32-10 MLP (2,282
parameters), full participation, one local epoch of SGD with batch 10. Both engines compute the same
updates from the same seeds (tests/test_flower_app.py checks the agreement on 10 clients).

* ours: :func:`collab_lib.parameter_based.federated.federate` with ``engine="batched"`` (all clients at once;
  for this MLP the gradients are written out as batched matrix products, :mod:`collab_lib.parameter_based.local`),
  one torch thread; also the per-client loop for reference. Best of 3 after a warm-up.
* Flower: the same client update and aggregation as a Flower app (:mod:`collab_lib.parameter_based.flower_app`),
  run with ``flwr run`` on a local SuperLink in simulation mode; Ray may use both cores (one ClientApp per
  core). The ServerApp times each round itself; round 1 includes the actors' first import of the code,
  so round 2 is the steady-state number. The whole ``flwr run`` time (Ray start-up included) is printed too.

* scale: one round of 10,000 clients of the same task with the batched engine: its time and its peak
  resident memory above what the process held before the round (data and model already built;
  :func:`timing.peak_memory_of`, sampled every 2 ms).

Run: python benchmarks/fl_engine.py   (about 1-3 minutes; needs the extra [scale])
"""

import dataclasses
import time

import torch
from timing import best_of, peak_memory_of

from collab_lib.parameter_based.federated import FedConfig, federate
from collab_lib.seed import set_seed

TARGET_RATIO = 50.0


def scale_round(task, model, config: FedConfig, num_clients: int) -> tuple[int, float, int]:
    """(samples, best seconds, largest peak bytes) of three batched rounds of ``num_clients`` clients."""
    big = dataclasses.replace(task, num_clients=num_clients).data()
    runs = [peak_memory_of(lambda: federate(model, big, config, engine="batched")) for _ in range(3)]
    return int(big.sizes.sum()), min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    from collab_lib.parameter_based.flower_app import SyntheticTask, run_flower_simulation

    set_seed(0, dtype=torch.float32)  # float32 on both sides: the Flower apps use torch's default
    task = SyntheticTask(alpha=0.5, beta=0.5, num_clients=1000, max_samples_per_user=64, hidden=32)
    data, model = task.data(), task.model()
    config = FedConfig(rounds=1, client_fraction=1.0, local_epochs=1, batch_size=10, lr=0.05, seed=0)
    samples = int(data.sizes.sum())

    federate(model, data, config, engine="batched")  # warm-up: first use of torch.func imports a lot
    ours = best_of(lambda: federate(model, data, config, engine="batched"))
    loop = best_of(lambda: federate(model, data, config, engine="loop"), repeats=1)
    print(f"1,000 clients ({samples:,} samples), one round, one local epoch, 60-32-10 MLP")
    print(f"  ours, batched, 1 thread:          {ours:8.3f} s per round")
    print(f"  ours, per-client loop, 1 thread:  {loop:8.3f} s per round  ({loop / ours:.0f}x the batched engine)")

    big_samples, big_s, big_bytes = scale_round(task, model, config, num_clients=10_000)
    print(f"  ours, batched, 10,000 clients ({big_samples:,} samples): {big_s:.3f} s per round, "
          f"peak {big_bytes / 2**20:,.0f} MiB above the resident set before the round (largest of 3)")

    start = time.perf_counter()
    flower = run_flower_simulation(task, FedConfig(**{**config.__dict__, "rounds": 2}), num_cpus=2)
    wall = time.perf_counter() - start
    first, steady = flower.round_s
    print(f"  Flower simulation, 2 CPUs:        {steady:8.3f} s per round (round 2; round 1 {first:.3f} s); "
          f"`flwr run` of 2 rounds {wall:.1f} s in all")
    ratio = steady / ours
    print(f"ratio Flower / ours: {ratio:.0f}x per round (target >= {TARGET_RATIO:g}x): "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
