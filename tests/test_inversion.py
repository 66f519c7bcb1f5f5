"""Leakage: DLG against the true input and the closed-form reconstruction, PSNR by hand, clipping and noise
against their definitions, feature inversion against the mean-image baseline, clear errors."""

import math

import pytest
import torch
from torch import nn

from collab_lib.datasets.digits import load_digits
from collab_lib.feature_based.inversion import (
    FeatureNoise,
    analytic_input,
    clip_and_noise,
    dlg,
    gradients,
    infer_label,
    mean_image_baseline,
    psnr,
    train_decoder,
)
from collab_lib.seed import generator


@pytest.fixture(scope="module")
def digits():
    return load_digits().tensors


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def sigmoid_mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Sigmoid(), nn.Linear(16, 10))


def test_psnr_by_hand():
    x = torch.zeros(3, 1, 4, 4)
    assert psnr(x + 0.1, x) == pytest.approx(20.0)            # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr(x + 0.5, x, max_value=2.0) == pytest.approx(10 * math.log10(4 / 0.25))
    assert psnr(x, x) == pytest.approx(120.0)                  # the 1e-12 floor


def test_dlg_recovers_the_input_and_beats_the_baseline(digits):
    x, y = digits
    model = sigmoid_mlp(0)
    base = mean_image_baseline(x[:500], 1)
    for i in (1000, 1001, 1002):
        xi, yi = x[i:i + 1], y[i:i + 1]
        grads = gradients(model, xi, yi)
        # Independent references: the true label, and the closed-form input from the first layer.
        assert infer_label(grads[-1]) == int(yi)
        closed = analytic_input(grads[0].double(), grads[1].double()).reshape(1, 1, 8, 8)
        torch.testing.assert_close(closed, xi.double(), atol=1e-5, rtol=0)
        for infer in (True, False):
            r = dlg(model, grads, (1, 8, 8), 10, iterations=100, seed=i, infer=infer)
            assert r.label == int(yi)
            assert psnr(r.x, xi) > psnr(base, xi) + 30
            assert psnr(r.x, closed) > 40


def test_noise_defeats_dlg(digits):
    x, y = digits
    model = sigmoid_mlp(0)
    xi, yi = x[1003:1004], y[1003:1004]
    grads = gradients(model, xi, yi)
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
    clean = dlg(model, clip_and_noise(grads, 2 * norm, 0.0, generator(0)), (1, 8, 8), 10, 100, seed=1)
    noisy = dlg(model, clip_and_noise(grads, 2 * norm, 0.1, generator(0)), (1, 8, 8), 10, 100, seed=1)
    assert psnr(clean.x, xi) > 60 > psnr(noisy.x.clamp(0, 1), xi) + 30


def test_clip_and_noise_follow_the_definition():
    grads = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0, 4.0]])]  # global norm 5
    clipped = clip_and_noise(grads, 1.0, 0.0, generator(0))
    torch.testing.assert_close(clipped[0], torch.tensor([0.6, 0.0]))
    torch.testing.assert_close(clipped[1], torch.tensor([[0.0, 0.8]]))
    same = clip_and_noise(grads, 10.0, 0.0, generator(0))    # below the bound: unchanged
    torch.testing.assert_close(same[0], grads[0])
    big = [torch.zeros(200_000, dtype=torch.float64)]
    noise = clip_and_noise(big, 2.0, 0.5, generator(1))[0]
    assert noise.std().item() == pytest.approx(1.0, rel=0.01)  # z C = 0.5 * 2
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)


def test_feature_noise_is_seeded_and_scaled():
    h = torch.zeros(50_000, dtype=torch.float64)
    a, b = FeatureNoise(0.3, seed=4)(h), FeatureNoise(0.3, seed=4)(h)
    torch.testing.assert_close(a, b)
    assert a.std().item() == pytest.approx(0.3, rel=0.02)
    assert torch.equal(FeatureNoise(0.0, seed=4)(h), h)


def test_feature_inversion_beats_the_baseline_and_noise_hurts_it(digits):
    x, _ = digits
    aux, victims = x[:600], x[1000:1200]
    base = psnr(mean_image_baseline(aux, len(victims)), victims)
    torch.manual_seed(0)
    device = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh())  # a lossy 32-value feature
    scores = []
    for sigma in (0.0, 0.5, 2.0):
        noise = FeatureNoise(sigma, seed=5)
        with torch.no_grad():
            h_aux, h_vic = noise(device(aux)), noise(device(victims))
        dec = train_decoder(h_aux, aux, hidden=64, epochs=30, lr=3e-3, seed=6)
        with torch.no_grad():
            scores.append(psnr(dec(h_vic), victims))
    assert scores[0] > base + 3
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("call, name", [
    (lambda: FeatureNoise(-0.1, seed=0), "sigma"),
    (lambda: clip_and_noise([torch.ones(2)], 1.0, -1.0, generator(0)), "noise_multiplier"),
    (lambda: clip_and_noise([torch.ones(2)], 0.0, 1.0, generator(0)), "clip_norm"),
    (lambda: dlg(sigmoid_mlp(0), [torch.ones(1)] * 4, (1, 8, 8), 10, 0, seed=0), "iterations"),
    (lambda: dlg(sigmoid_mlp(0), [torch.ones(1)] * 3, (1, 8, 8), 10, 5, seed=0), "target_grads"),
    (lambda: train_decoder(torch.ones(4, 2), torch.ones(4, 1, 2, 2), 0, 1, 1e-3, seed=0), "hidden"),
    (lambda: psnr(torch.ones(2, 3), torch.ones(2, 4)), "x_hat"),
    (lambda: psnr(torch.ones(2, 3), torch.ones(2, 3), max_value=0), "max_value"),
])
def test_bad_inputs_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
