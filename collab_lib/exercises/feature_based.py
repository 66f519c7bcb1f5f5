"""Check functions of the chapter 5 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails (what was returned, what was expected and, for
a common mistake, a hint), and returns a "correct" message otherwise. The cases are built inside the check
from seeded images, models and batches, so a check is deterministic and needs none of the lab's variables.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from collab_lib.exercises.answers import as_number
from collab_lib.feature_based.inversion import psnr
from collab_lib.feature_based.logit_exchange import logit_bytes_per_round
from collab_lib.feature_based.split_learning import split_step
from collab_lib.models import split_model
from collab_lib.seed import generator


def _byte_count(got, name: str, case: str) -> int:
    """The learner's byte count as an int; a float is accepted when it is a whole number."""
    value = as_number(got, name, case, "a number of bytes")
    assert math.isfinite(value) and value == round(value), (
        f"{case}: {name} returned {value!r}, expected a whole number of bytes")
    return int(round(value))


# --- feature_leakage: PSNR of reconstructions -------------------------------------------------------------


def _psnr_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, (N, 1, 8, 8) reconstructions, (N, 1, 8, 8) originals) for seeded images in [0, 1].

    The originals' pixels stay below 0.8, so a peak taken from the data (not 1) is off by about 2 dB; in the
    second case every image has its own noise level, so the PSNR of the pooled MSE differs from the mean of
    the images' PSNRs by several dB. The last case reconstructs every image exactly.
    """
    g = generator(5)
    cases = []
    x = 0.8 * torch.rand(6, 1, 8, 8, generator=g)
    x_hat = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    cases.append(("6 images, noise sd 0.1 on every image", x_hat, x))
    x = 0.8 * torch.rand(5, 1, 8, 8, generator=g)
    sd = torch.tensor([0.01, 0.03, 0.1, 0.2, 0.4]).reshape(5, 1, 1, 1)
    x_hat = (x + sd * torch.randn(x.shape, generator=g)).clamp(0, 1)
    cases.append(("5 images, noise sd 0.01, 0.03, 0.1, 0.2 and 0.4 (one per image)", x_hat, x))
    x = 0.8 * torch.rand(4, 1, 8, 8, generator=g)
    cases.append(("4 images reconstructed exactly", x.clone(), x))
    return cases


def _psnr_hint(got: float, x_hat: torch.Tensor, x: torch.Tensor) -> str:
    """A hint naming the slip whose value matches ``got`` (within 0.01 dB), or a reminder of the formula."""
    pooled_mse = (x_hat.double() - x.double()).pow(2).mean().clamp_min(1e-12).item()
    slips = {
        "the peak is 1 for pixels in [0, 1], not 255": psnr(x_hat, x, max_value=255.0),
        "the peak is 1 (the range of the pixels), not the largest pixel of these images":
            psnr(x_hat, x, max_value=x.max().item()),
        "compute one PSNR per image from that image's MSE, then average the PSNRs; you took the PSNR of the "
        "MSE pooled over all images": 10 * math.log10(1 / pooled_mse),
        "10 log10 of the ratio of squared values (or 20 log10 of 1 / RMSE), not 20 log10(1 / MSE)":
            2 * psnr(x_hat, x),
        "log10, not the natural log": psnr(x_hat, x) * math.log(10),
    }
    hints = [hint for hint, value in slips.items() if abs(got - value) <= 1e-2]
    return "; ".join(hints) if hints else "PSNR is the mean over images i of 10 log10(1 / MSE_i)"


def check_psnr(fn) -> str:
    """Check ``fn(x_hat, x)`` against :func:`~collab_lib.feature_based.inversion.psnr`.

    ``fn`` receives reconstructions ``x_hat`` and originals ``x``, float tensors of shape ``(N, 1, 8, 8)``
    with pixels in [0, 1], and returns the mean over the N images of 10 log10(1 / MSE_i) in dB (MSE_i the
    mean squared error over image i's pixels), as a python number, numpy scalar or one-element tensor, within
    0.001 dB. For images reconstructed exactly the MSE is 0: both +inf and the library's 120 dB (its MSE is
    floored at 1e-12) are accepted.
    """
    cases = _psnr_cases()
    name, x_hat, x = cases[0]
    if fn(x_hat.clone(), x.clone()) is None:
        return "not attempted yet: fill in my_psnr above"
    for name, x_hat, x in cases:
        got = as_number(fn(x_hat.clone(), x.clone()), "my_psnr", name, "the mean PSNR over images, in dB")
        ref = psnr(x_hat, x)
        exact = bool((x_hat == x).all())
        if exact and got == math.inf:
            continue
        if not abs(got - ref) <= 1e-3:
            hint = ("an exact reconstruction has MSE 0, so its PSNR is +inf (the library floors the MSE at "
                    "1e-12: 120 dB)" if exact else _psnr_hint(got, x_hat, x))
            raise AssertionError(f"{name}: got {got:.4f} dB, expected {ref:.4f} dB; {hint}")
    return ("correct: your PSNR matches the library's on seeded images with equal and with unequal noise per "
            "image, and on exact reconstructions")


# --- logit_exchange: bytes of one round -------------------------------------------------------------------


def _logit_bytes_hint(got: int, n_public: int, num_classes: int) -> str:
    one_way = n_public * num_classes * 4
    slips = {
        one_way: "count both directions: the device's logits up and the consensus down",
        2 * n_public * num_classes: "count bytes, not values: a float32 value is 4 bytes",
        4 * one_way: "a float32 value is 4 bytes, not 8",
        5 * 2 * one_way: "count one device's payload, not the five devices'",
    }
    return slips.get(got, "each of the N_pub public samples carries C float32 values, up and down")


def check_logit_bytes(fn) -> str:
    """Check ``fn(n_public, num_classes)`` against
    :func:`~collab_lib.feature_based.logit_exchange.logit_bytes_per_round`.

    ``fn`` receives two positive ints and returns the bytes one device moves in one round: its float32
    logits on the ``n_public`` public samples up, the consensus of the same shape down. An int, or a float or
    one-element tensor holding a whole number, is accepted.
    """
    if fn(500, 10) is None:
        return "not attempted yet: fill in my_bytes above"
    for n_public, num_classes in ((500, 10), (1, 2), (37, 3), (2000, 100)):
        case = f"n_public={n_public}, num_classes={num_classes}"
        got = _byte_count(fn(n_public, num_classes), "my_bytes", case)
        ref = logit_bytes_per_round(n_public, num_classes)
        if got != ref:
            raise AssertionError(f"{case}: got {got:,} bytes, expected {ref:,}; "
                                 + _logit_bytes_hint(got, n_public, num_classes))
    return ("correct: your count matches logit_bytes_per_round for public sets of 1 to 2,000 samples and 2 to "
            "100 classes")


# --- split_learning: bytes of one step --------------------------------------------------------------------


def _split_models() -> list[tuple[str, nn.Sequential]]:
    """Small ``nn.Sequential`` models on ``(B, 1, 8, 8)`` inputs, as the lab's digits: a padded and an unpadded
    convolution (8x8 -> 6x6), so the values per sample at the cut change at most layers.

    Built from a forked, seeded generator: the caller's global torch RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        padded = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),   # (B, 16, 8, 8)
            nn.MaxPool2d(2), nn.Flatten(),               # (B, 16, 4, 4) -> (B, 256)
            nn.Linear(256, 64), nn.ReLU(),               # (B, 64)
            nn.Linear(64, 10),                           # (B, 10)
        )
        unpadded = nn.Sequential(
            nn.Conv2d(1, 3, 3), nn.Tanh(),               # (B, 3, 6, 6)
            nn.Flatten(),                                # (B, 108)
            nn.Linear(108, 24), nn.ReLU(),               # (B, 24)
            nn.Linear(24, 10),                           # (B, 10)
        )
    return [("CNN with a padded convolution and pooling", padded),
            ("CNN with an unpadded convolution, no pooling", unpadded)]


def _split_bytes_hint(got: int, bytes_up: int, bytes_down: int, batch: int, measured_at: dict[int, int]) -> str:
    """A hint naming the slip that gives ``got``: ``measured_at`` maps the neighbouring cuts to their measured
    payloads at the same batch size."""
    labels = bytes_up - bytes_down                  # int64 labels, 8 bytes per sample
    slips = [
        (2 * bytes_down, "the labels (int64, 8 bytes per sample) go up with the activations"),
        (bytes_up + bytes_down - labels // 2, "the labels are int64, 8 bytes per sample"),
        (bytes_up, "count the gradient coming down too (as many values as the activations)"),
        (bytes_down, "count the activations and the labels going up too"),
        ((bytes_up + bytes_down) // batch, "count every sample of the batch"),
    ]
    slips += [(total, f"that is the payload at cut {cut}: the device runs model[:cut], layers 0 to cut - 1")
              for cut, total in measured_at.items()]
    return next((hint for value, hint in slips if value == got),
                "a step sends B q_k float32 activations and B int64 labels up and B q_k float32 gradients down, "
                "q_k the values per sample at the cut")


def check_split_bytes(fn) -> str:
    """Check ``fn(model, cut, batch)`` against the payloads that
    :func:`~collab_lib.feature_based.split_learning.split_step` really sends.

    ``fn`` receives an ``nn.Sequential`` ``model`` on ``(B, 1, 8, 8)`` inputs (the lab's digits), an int
    ``cut`` in [1, len(model) - 1] (the device runs ``model[:cut]``) and an int ``batch``, and returns the
    payload bytes of one split-learning step on a batch of that size: float32 activations and int64 labels
    up, float32 gradients of the activations down. An int, or a float or one-element tensor holding a whole
    number, is accepted.
    """
    models = _split_models()
    if fn(models[0][1], 2, 8) is None:
        return "not attempted yet: fill in my_bytes_per_step above"
    g = generator(9)
    for name, model in models:
        measured = {}                                            # (cut, batch) -> (bytes up, bytes down)
        for batch in (1, 8, 32):
            x = torch.rand(batch, 1, 8, 8, generator=g)
            y = torch.randint(0, 10, (batch,), generator=g)     # int64, as the lab's labels
            for cut in range(1, len(model)):
                s = split_step(*split_model(model, cut), x, y)
                measured[cut, batch] = (s.bytes_up, s.bytes_down)
        for (cut, batch), (up, down) in measured.items():
            case = f"{name}, cut {cut} (after {type(model[cut - 1]).__name__}), batch {batch}"
            got = _byte_count(fn(model, cut, batch), "my_bytes_per_step", case)
            if got != up + down:
                others = {c: sum(measured[c, batch]) for c in (cut - 1, cut + 1) if (c, batch) in measured}
                raise AssertionError(f"{case}: got {got:,} bytes, expected {up + down:,} ({up:,} up, {down:,} "
                                     f"down, as split_step measured); "
                                     + _split_bytes_hint(got, up, down, batch, others))
    return ("correct: your count matches the payloads split_step sends at every cut of two models, for "
            "batches of 1, 8 and 32")
