"""The shared argument check: positive ints, Python or numpy, and nothing else."""

import numpy as np
import pytest

from collab_lib._validate import positive_int
from collab_lib.parameter_based.federated import FedConfig


def test_positive_int_accepts_python_and_numpy_ints():
    assert positive_int("n", 3) == 3
    value = positive_int("n", np.int64(7))
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "3", None, np.float64(4.0)])
def test_positive_int_rejects_everything_else_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"^batch_size must be a positive int, got "):
        positive_int("batch_size", bad)


def test_a_configuration_reports_its_own_field():
    with pytest.raises(ValueError, match="local_epochs must be a positive int"):
        FedConfig(local_epochs=True)
