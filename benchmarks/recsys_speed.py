"""Time to generate about 100k synthetic e-commerce impressions with `collab_lib.datasets.recsys`.

Labs regenerate their sessions on every run, so this must stay well under 2 s on a 2-core machine.
Run: python benchmarks/recsys_speed.py
"""

import time

from collab_lib.datasets.recsys import RecsysConfig, generate
from collab_lib.seed import set_seed


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    set_seed(0)  # one torch thread, as in the labs
    config = RecsysConfig()  # 1000 users x 5 sessions x 20 impressions: about 100k impressions
    seconds = best_of(lambda: generate(config, seed=0))
    n = generate(config, seed=0).num_impressions
    print(f"recsys.generate: {n:,} impressions in {seconds:.2f} s (target < 2 s)")


if __name__ == "__main__":
    main()
