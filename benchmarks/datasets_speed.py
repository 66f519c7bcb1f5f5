"""Time the data generators that labs call on every run; each must stay under 2 s on a 2-core machine.

Run: python benchmarks/datasets_speed.py
"""

from timing import best_of

from collab_lib.datasets.recsys import RecsysConfig, generate
from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.seed import set_seed

TARGET_S = 2.0


def main() -> None:
    set_seed(0)  # one torch thread, as in the labs
    config = RecsysConfig()  # 1000 users x 5 sessions x 20 impressions: about 100k impressions
    seconds = best_of(lambda: generate(config, seed=0))
    n = generate(config, seed=0).num_impressions
    print(f"recsys.generate: {n:,} impressions in {seconds:.2f} s (target < {TARGET_S:g} s)")

    seconds = best_of(lambda: fedprox_synthetic(1.0, 1.0, num_users=1000, seed=0))
    samples = int(fedprox_synthetic(1.0, 1.0, num_users=1000, seed=0)[0].sizes.sum())
    print(f"fedprox_synthetic(1, 1): 1,000 users, {samples:,} samples in {seconds:.2f} s (target < {TARGET_S:g} s)")


if __name__ == "__main__":
    main()
