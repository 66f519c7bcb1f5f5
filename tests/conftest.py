"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of small-tensor tests: fastest for tiny ops, unaffected by other work
    on the cores, and the thread count the labs use (``set_seed``). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def restore_default_dtype():
    """``set_seed`` makes float64 torch's default (as the labs want); a test that calls it must not change
    the dtype of the tests after it."""
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
