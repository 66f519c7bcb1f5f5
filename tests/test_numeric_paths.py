"""Why the labs compute in float64, and that the second numeric path of `make test` is really another path.

The same short training (the digits CNN of chapter 3, 33 Adam steps) runs in two fresh processes: natively
and under :data:`tests.numeric_paths.SECOND_PATH`. In float32 the two end with different weights, which is
what makes stored lab outputs fail on other CPUs, and what shows that the labs' second run in `make test` is
not a rerun of the first. In float64, the labs' dtype (``set_seed``), they agree to about 1e-12.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.book_build import ROOT
from tests.numeric_paths import SECOND_PATH

TRAIN = """
import json, sys, torch
from collab_lib.datasets.digits import load_digits
from collab_lib.models import digits_large_model
from collab_lib.seed import generator, set_seed
from collab_lib.system.cascade import fit_classifier
set_seed(0, dtype=getattr(torch, sys.argv[1]))
x, y = load_digits().tensors
idx = torch.randperm(len(x), generator=generator(0))[:700]
model = digits_large_model(seed=1)
fit_classifier(model, x[idx], y[idx], epochs=3, lr=3e-3, seed=2)
weights = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "weights": weights.tolist()}))
"""


def _train(dtype: str, extra_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SECOND_PATH}
    proc = subprocess.run([sys.executable, "-c", TRAIN, dtype], env={**env, **extra_env}, cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def runs():
    return {(dtype, path): _train(dtype, env) for dtype in ("float32", "float64")
            for path, env in (("native", {}), ("second", SECOND_PATH))}


def _max_rel_diff(a, b):
    return max(abs(u - v) for u, v in zip(a, b)) / max(abs(u) for u in a)


def test_the_second_path_takes_torch_s_scalar_kernels(runs):
    assert runs["float64", "second"]["capability"] == "DEFAULT"


def test_in_float32_the_two_paths_train_different_weights(runs):
    if runs["float32", "native"]["capability"] == "DEFAULT":
        pytest.skip("this CPU's native kernels are already torch's scalar ones: the paths coincide here")
    assert _max_rel_diff(runs["float32", "native"]["weights"], runs["float32", "second"]["weights"]) > 1e-6


def test_in_float64_the_two_paths_agree_far_below_any_printed_digit(runs):
    assert _max_rel_diff(runs["float64", "native"]["weights"], runs["float64", "second"]["weights"]) < 1e-10
