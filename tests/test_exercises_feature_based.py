"""Chapter 5's lab checks accept a plain-Python reference, say "not attempted" for None and reject wrong answers."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from collab_lib.exercises import feature_based as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- check_psnr -------------------------------------------------------------------------------------------

def plain_psnr(x_hat, x, peak=1.0, pooled=False):
    """Mean over images of 10 log10(peak^2 / MSE_i) in plain Python, +inf for an exact image; ``pooled``
    takes the PSNR of the MSE over all images instead (a wrong answer)."""
    images = list(zip(x_hat.flatten(1).tolist(), x.flatten(1).tolist()))
    mses = [sum((a - b) ** 2 for a, b in zip(u, v)) / len(u) for u, v in images]
    if pooled:
        mses = [sum(mses) / len(mses)]
    return sum(10 * math.log10(peak**2 / m) if m > 0 else math.inf for m in mses) / len(mses)


def test_psnr_check():
    assert checks.check_psnr(plain_psnr).startswith("correct")
    assert checks.check_psnr(lambda x_hat, x: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="noise sd 0.1 on every image.*not 255"):
        checks.check_psnr(lambda x_hat, x: plain_psnr(x_hat, x, peak=255.0))
    with pytest.raises(AssertionError, match="PSNR of the MSE pooled over all images"):
        checks.check_psnr(lambda x_hat, x: plain_psnr(x_hat, x, pooled=True))


def test_psnr_check_accepts_the_floored_mse_and_rejects_another_floor():
    def numpy_floored(x_hat, x):                  # the library's convention: 120 dB for an exact image
        mse = ((x_hat.numpy().astype(np.float64) - x.numpy()) ** 2).reshape(len(x), -1).mean(axis=1)
        return np.mean(10 * np.log10(1 / np.maximum(mse, 1e-12)))

    def plus_eps(x_hat, x):
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        return (10 * torch.log10(1 / (mse + 1e-10))).mean()

    assert checks.check_psnr(numpy_floored).startswith("correct")
    with pytest.raises(AssertionError, match="reconstructed exactly.*120 dB"):
        checks.check_psnr(plus_eps)


def test_psnr_check_names_a_data_peak_and_a_natural_log_and_rejects_per_image_values():
    def data_peak(x_hat, x):
        return plain_psnr(x_hat, x, peak=x.max().item())

    def natural_log(x_hat, x):
        return (10 * torch.log(1 / (x_hat - x).pow(2).flatten(1).mean(1))).mean()

    with pytest.raises(AssertionError, match="not the largest pixel"):
        checks.check_psnr(data_peak)
    with pytest.raises(AssertionError, match="not the natural log"):
        checks.check_psnr(natural_log)
    with pytest.raises(AssertionError, match=r"shape \(6,\), expected a single number"):
        checks.check_psnr(lambda x_hat, x: 10 * torch.log10(1 / (x_hat - x).pow(2).flatten(1).mean(1)))


# --- check_logit_bytes ------------------------------------------------------------------------------------

def test_logit_bytes_check():
    assert checks.check_logit_bytes(lambda n, c: n * c * 4 * 2).startswith("correct")
    assert checks.check_logit_bytes(lambda n, c: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="n_public=500.*both directions"):
        checks.check_logit_bytes(lambda n, c: n * c * 4)
    with pytest.raises(AssertionError, match="count bytes, not values"):
        checks.check_logit_bytes(lambda n, c: 2 * n * c)


def test_logit_bytes_check_accepts_a_whole_float_and_rejects_other_types():
    assert checks.check_logit_bytes(lambda n, c: float(8 * n * c)).startswith("correct")
    assert checks.check_logit_bytes(lambda n, c: torch.tensor(8 * n * c)).startswith("correct")
    with pytest.raises(AssertionError, match="whole number of bytes"):
        checks.check_logit_bytes(lambda n, c: 8 * n * c + 0.5)
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_logit_bytes(lambda n, c: (4 * n * c, 4 * n * c))


# --- check_split_bytes ------------------------------------------------------------------------------------

def plain_bytes_per_step(model, cut, batch, labels=True, shift=0):
    """B (2 q_k 4 + 8): q_k from a forward pass of one dummy image; ``labels=False`` forgets the labels and
    ``shift`` moves the cut (wrong answers)."""
    with torch.no_grad():
        q = model[:cut + shift](torch.zeros(1, 1, 8, 8)).numel()
    return batch * (2 * q * 4 + (8 if labels else 0))


def test_split_bytes_check():
    assert checks.check_split_bytes(plain_bytes_per_step).startswith("correct")
    assert checks.check_split_bytes(lambda m, cut, b: None).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="cut 1 .*batch 1: .*labels"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, b, labels=False))
    with pytest.raises(AssertionError, match="payload at cut 3"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, b, shift=1))


def test_split_bytes_check_names_one_direction_and_a_missing_batch():
    def up_only(model, cut, batch):
        with torch.no_grad():
            return batch * (model[:cut](torch.zeros(1, 1, 8, 8)).numel() * 4 + 8)

    with pytest.raises(AssertionError, match="gradient coming down"):
        checks.check_split_bytes(up_only)
    with pytest.raises(AssertionError, match="batch 8: .*every sample of the batch"):
        checks.check_split_bytes(lambda m, cut, b: plain_bytes_per_step(m, cut, 1))


def test_split_bytes_check_rejects_a_pair_and_leaves_the_global_rng_alone():
    def pair(model, cut, batch):
        q = model[:cut](torch.zeros(1, 1, 8, 8)).numel()
        return batch * (q * 4 + 8), batch * q * 4

    state = torch.get_rng_state()
    with pytest.raises(AssertionError, match="expected a single number"):
        checks.check_split_bytes(pair)
    assert torch.equal(torch.get_rng_state(), state)


def test_split_bytes_check_models_take_the_labs_images():
    for name, model in checks._split_models():
        assert isinstance(model, nn.Sequential) and model(torch.zeros(2, 1, 8, 8)).shape == (2, 10), name
