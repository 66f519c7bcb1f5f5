"""Check functions of the chapter 5 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message naming the case that fails (what was returned, what was expected and, for
a common mistake, a hint), and returns a "correct" message otherwise. The learner's function is called
through :func:`~collab_lib.exercises.grading.learner_call`, with the library function it re-implements
forbidden. The cases are built inside the check from seeded tensors and models, so a check is deterministic
and needs none of the lab's variables; ``hidden=True`` runs other seeds, sizes and edge cases.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from collab_lib.data_based.distill import soft_targets
from collab_lib.exercises.answers import as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.feature_based.inversion import analytic_input, clip_and_noise, gradients, infer_label
from collab_lib.feature_based.logit_exchange import (
    compressed_logit_bytes_per_round,
    consensus,
    logit_bytes_per_round,
)
from collab_lib.feature_based.split_learning import split_bytes_per_step, split_step
from collab_lib.models import split_model
from collab_lib.seed import generator


def _byte_count(got, name: str, case: str) -> int:
    """The learner's byte count as an int; a float is accepted when it is a whole number."""
    value = as_number(got, name, case, "a number of bytes")
    assert math.isfinite(value) and value == round(value), (
        f"{case}: {name} returned {value!r}, expected a whole number of bytes")
    return int(round(value))


# --- feature_leakage: the closed-form gradient-inversion attack -------------------------------------------


def _inversion_model(seed: int, shape: tuple[int, ...], widths: list[int], act, dtype) -> nn.Sequential:
    """Flatten, then Linear layers ``prod(shape) -> widths[0] -> ... -> widths[-1]`` with ``act`` between them,
    initialised from ``seed`` (the caller's global torch RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sizes = [math.prod(shape), *widths]
        layers: list[nn.Module] = [nn.Flatten()]
        for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers += [nn.Linear(a, b)] + ([act()] if k < len(sizes) - 2 else [])
        return nn.Sequential(*layers).to(dtype)


def _inversion_cases(hidden: bool) -> list[tuple[str, list[torch.Tensor], tuple[int, ...], torch.Tensor, int]]:
    """(name, one sample's update, input shape, the sample ``(1, *shape)``, its label) for small MLPs whose
    first layers are Flatten and Linear, as the lab's.

    The ReLU cases switch hidden units off with a large negative bias, unit 0 among them, so their rows of
    dL/dW and entries of dL/db are exactly 0; one hidden case leaves a single unit on.
    """
    f64 = torch.float64
    specs = [  # (name, seed, input shape, widths, activation, dtype, units switched off: None, "some" or "all but one")
        ("sigmoid MLP 64-32-10 as in the lab, a (1, 8, 8) input", 4, (1, 8, 8), [32, 10], nn.Sigmoid, f64, None),
        ("ReLU MLP 64-48-10, units 0, 1, 5, 8, 10, ... off (their dL/db_i are 0)", 11, (1, 8, 8), [48, 10], nn.ReLU, f64,
         "some"),
    ]
    if hidden:
        specs = [
            ("sigmoid MLP 64-16-10, another seed", 21, (1, 8, 8), [16, 10], nn.Sigmoid, f64, None),
            ("tanh MLP 48-20-16-5 on a (3, 4, 4) input, three linear layers", 22, (3, 4, 4), [20, 16, 5], nn.Tanh,
             f64, None),
            ("ReLU MLP 10-24-7 on a (2, 5) input, in float32", 23, (2, 5), [24, 7], nn.ReLU, torch.float32, "some"),
            ("ReLU MLP 64-12-3 with a single unit on (unit 7)", 24, (1, 8, 8), [12, 3], nn.ReLU, f64,
             "all but one"),
        ]
    g = generator(31 if hidden else 30)
    cases = []
    for name, seed, shape, widths, act, dtype, off in specs:
        model = _inversion_model(seed, shape, widths, act, dtype)
        first = model[1]
        with torch.no_grad():
            if off == "some":
                first.bias[::5] = -1e3                     # units 0, 5, 10, ... never fire
                first.bias[1::7] = -1e3
            elif off == "all but one":
                first.bias[:] = -1e3
                first.bias[7] = 1.0                         # pre-activation about 1: on
        x = torch.rand(1, *shape, generator=g, dtype=torch.float64).to(dtype)
        y = int(torch.randint(0, widths[-1], (1,), generator=g))
        cases.append((name, gradients(model, x, torch.tensor([y])), shape, x, y))
    return cases


def _inversion_hint(got: torch.Tensor) -> str:
    if not torch.isfinite(got).all():
        return ("your x has inf or NaN entries: a hidden unit whose ReLU is off has dL/db_i = 0 and a zero row "
                "of dL/dW, so its ratio is 0/0. Skip those rows, or weight every row by (dL/db_i)^2 (least "
                "squares)")
    return ("for one sample dL/dW_1 = delta x^T and dL/db_1 = delta: row i of the first divided by entry i of the "
            "second is x, for every i with delta_i != 0; the first Linear layer's gradients are grads[0] (m, d) "
            "and grads[1] (m,)")


def check_gradient_inversion(fn, hidden: bool = False) -> str:
    """Check ``fn(grads, input_shape)``, the closed-form gradient-inversion attack, against the true inputs.

    ``fn`` receives ``grads``, the update one sample produced (the gradient of the cross-entropy with respect to
    every parameter, in ``model.parameters()`` order, of a model whose first layers are ``nn.Flatten()`` and
    ``nn.Linear(d, m)`` and whose last parameter is the last layer's bias), and the sample's ``input_shape``. It
    returns ``(x, label)``: ``x`` of shape ``(1, *input_shape)`` within 1e-6 of the sample (1e-4 in float32), and
    the sample's label as an int. The reference is :func:`~collab_lib.feature_based.inversion.analytic_input`
    with :func:`~collab_lib.feature_based.inversion.infer_label`, which ``fn`` may not call.
    ``hidden=True`` runs other seeds, input shapes, depths and dtypes, and a ReLU layer with one unit on.
    """
    forbidden = (analytic_input, infer_label)
    cases = _inversion_cases(hidden)
    name, grads, shape, x, y = cases[0]
    if learner_call(fn, [t.clone() for t in grads], shape, forbidden=forbidden, name="my_invert") is None:
        return not_attempted("fill in my_invert above")
    for name, grads, shape, x, y in cases:
        out = learner_call(fn, [t.clone() for t in grads], shape, forbidden=forbidden, name="my_invert")
        assert isinstance(out, (tuple, list)) and len(out) == 2, (
            f"{name}: my_invert returned {type(out).__name__}, expected a pair (x, label)")
        got_x = torch.from_numpy(as_shaped(out[0], "my_invert's x", name, (1, *shape),
                                           f" (reshape the recovered {math.prod(shape)} values to (1, *input_shape))"))
        tol = 1e-4 if x.dtype == torch.float32 else 1e-6
        err = (got_x - x.double()).abs().max().item() if torch.isfinite(got_x).all() else math.inf
        if not err <= tol:
            raise AssertionError(f"{name}: your x is off by up to {err:.3g} per pixel (tolerance {tol:g}); "
                                 + _inversion_hint(got_x))
        label = as_number(out[1], "my_invert's label", name, "the class id")
        if label != y:
            bias = grads[-1]
            hint = ("the label is where softmax(z) - onehot(y) is negative: argmin of the last bias gradient, not "
                    "argmax" if label == int(bias.argmax()) else
                    "for one sample the last layer's bias gradient (grads[-1]) is softmax(z) - onehot(y), "
                    "negative only at y")
            raise AssertionError(f"{name}: got label {label:g}, expected {y}; {hint}")
    which = "other seeds, shapes, depths, float32 and a single active unit" if hidden else (
        "a sigmoid MLP and a ReLU MLP with units off")
    return f"correct: your attack recovers every input to float precision, and its label, on {which}"


# --- feature_leakage: the defense, clipping plus Gaussian noise -------------------------------------------


def _clip_cases(hidden: bool) -> list[tuple[str, list[torch.Tensor], float, float, int]]:
    """(name, update, C, z, seed of the noise generator); updates of 3 tensors of float64 unless named."""
    g = generator(41 if hidden else 40)

    def update(norm: float, shapes=((4, 3), (4,), (2, 4)), dtype=torch.float64) -> list[torch.Tensor]:
        ts = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        scale = norm / torch.sqrt(sum(t.pow(2).sum() for t in ts)).item()
        return [(t * scale).to(dtype) for t in ts]

    if not hidden:
        return [
            ("an update of norm 5, C = 1, no noise (z = 0)", update(5.0), 1.0, 0.0, 6),
            ("an update of norm 0.5, C = 1, no noise", update(0.5), 1.0, 0.0, 6),
            ("an update of norm 5, C = 2, z = 0.1", update(5.0), 2.0, 0.1, 6),
        ]
    return [
        ("an update of norm 40 in 2 tensors, C = 0.3, z = 1", update(40.0, ((8, 8), (8,))), 0.3, 1.0, 7),
        ("an update of norm 0.2, C = 3, z = 0.05", update(0.2), 3.0, 0.05, 8),
        ("an update that is all zeros, C = 1, z = 0.5", [torch.zeros(3, 2, dtype=torch.float64),
                                                         torch.zeros(2, dtype=torch.float64)], 1.0, 0.5, 9),
        ("a float32 update of norm 7 in 4 tensors, C = 1.5, z = 0.01",
         update(7.0, ((5, 2), (5,), (3, 5), (3,)), torch.float32), 1.5, 0.01, 10),
    ]


def _clip_variants(grads, C: float, z: float, seed: int) -> dict[str, list[torch.Tensor]]:
    """What common slips return, each with a fresh generator from ``seed``."""
    norm = torch.sqrt(sum(t.double().pow(2).sum() for t in grads)).item()

    def noised(ts, sd, g=None):
        g = g or generator(seed)
        return [t + sd * torch.randn(t.shape, generator=g, dtype=t.dtype) for t in ts]

    per_tensor = [t * min(1.0, C / max(t.double().norm().item(), 1e-300)) for t in grads]
    to_c = [t * (C / norm) for t in grads] if norm > 0 else grads
    clipped = [t * min(1.0, C / norm) for t in grads] if norm > 0 else grads
    g = generator(seed)
    flat = torch.randn(sum(t.numel() for t in grads), generator=g, dtype=grads[0].dtype)
    pieces = torch.split(flat, [t.numel() for t in grads])
    once = [t + z * C * p.reshape(t.shape) for t, p in zip(clipped, pieces)]
    noisy_first = noised(grads, z * C)
    n2 = torch.sqrt(sum(t.double().pow(2).sum() for t in noisy_first)).item()
    return {
        "clip by the norm of the whole update (all tensors together), not each tensor by its own norm":
            noised(per_tensor, z * C),
        "scale by min(1, C / ||g||): an update already smaller than C is left as it is, not scaled up to C":
            noised(to_c, z * C),
        "the noise's standard deviation is z C (noise multiplier times clipping bound), not z": noised(clipped, z),
        "the noise's standard deviation is z C, not C": noised(clipped, C),
        "clip first, then add the noise (noise added before clipping is clipped with it)":
            [t * min(1.0, C / n2) for t in noisy_first] if n2 > 0 else noisy_first,
        "draw the noise tensor by tensor, in the order of grads, with torch.randn(t.shape, generator=generator, "
        "dtype=t.dtype)": once,
    }


def check_clip_and_noise(fn, hidden: bool = False) -> str:
    """Check ``fn(grads, clip_norm, noise_multiplier, generator)`` against
    :func:`~collab_lib.feature_based.inversion.clip_and_noise`, which ``fn`` may not call.

    ``fn`` receives a list of tensors (one update), C > 0, z >= 0 and a seeded ``torch.Generator``, and returns
    a list of new tensors of the same shapes: the update scaled by min(1, C / ||g||) (||g|| the L2 norm over all
    tensors together; an all-zero update is left as it is), plus z C times noise drawn tensor by tensor, in order,
    with ``torch.randn(t.shape, generator=generator, dtype=t.dtype)``; ``grads`` itself stays unchanged. Values
    must agree within 1e-9 (1e-5 in float32). ``hidden=True`` runs other updates, bounds and noise levels, an
    all-zero update and a float32 one.
    """
    cases = _clip_cases(hidden)
    name, grads, C, z, seed = cases[0]
    if learner_call(fn, [t.clone() for t in grads], C, z, generator(seed), forbidden=(clip_and_noise,),
                    name="my_clip_and_noise") is None:
        return not_attempted("fill in my_clip_and_noise above")
    for name, grads, C, z, seed in cases:
        given = [t.clone() for t in grads]
        out = learner_call(fn, given, C, z, generator(seed), forbidden=(clip_and_noise,), name="my_clip_and_noise")
        assert isinstance(out, (tuple, list)) and len(out) == len(grads), (
            f"{name}: my_clip_and_noise returned {type(out).__name__}"
            + (f" of {len(out)} tensors" if isinstance(out, (tuple, list)) else "")
            + f", expected a list of {len(grads)} tensors, one per tensor of grads")
        assert all(torch.equal(a, b) for a, b in zip(given, grads)), (
            f"{name}: my_clip_and_noise changed grads in place; return new tensors")
        got = [torch.from_numpy(as_shaped(t, f"tensor {i}", name, tuple(r.shape))) for i, (t, r) in
               enumerate(zip(out, grads))]
        ref = clip_and_noise(grads, C, z, generator(seed))
        tol = 1e-5 if grads[0].dtype == torch.float32 else 1e-9
        err = max((a - b.double()).abs().max().item() for a, b in zip(got, ref))
        if not err <= tol:
            hints = [h for h, v in _clip_variants(grads, C, z, seed).items()
                     if max((a - b.double()).abs().max().item() for a, b in zip(got, v)) <= tol]
            if not all(torch.isfinite(t).all() for t in got):
                hints.append("an all-zero update has norm 0: there is nothing to clip (C / 0 is inf)")
            raise AssertionError(f"{name}: your values are off by up to {err:.3g}; "
                                 + ("; ".join(hints) or "scale the update by min(1, C / ||g||), then add z C "
                                    "torch.randn(t.shape, generator=generator, dtype=t.dtype) to every tensor t"))
    which = "other bounds and noise levels, an all-zero and a float32 update" if hidden else (
        "updates above and below the bound, with and without noise")
    return f"correct: your clipping and noise match clip_and_noise on {which}"


# --- logit_exchange: one federated-distillation round -----------------------------------------------------


def _fd_cases(hidden: bool) -> list[tuple[str, list[torch.Tensor], list[int], float]]:
    """(name, K devices' (N_pub, C) logits, their private sample counts, temperature T), seeded; the counts
    differ a lot, so an unweighted mean is far from the weighted one."""
    g = generator(51 if hidden else 50)

    def logits(k: int, n: int, c: int, scale: float = 3.0, dtype=torch.float64) -> list[torch.Tensor]:
        return [(scale * torch.randn(n, c, generator=g, dtype=torch.float64)).to(dtype) for _ in range(k)]

    if not hidden:
        return [
            ("5 devices (67, 309, 276, 148 and 200 samples), 20 public images, 10 classes, T = 2",
             logits(5, 20, 10), [67, 309, 276, 148, 200], 2.0),
            ("3 devices (10, 100 and 1,000 samples), 7 public images, 4 classes, T = 0.5",
             logits(3, 7, 4), [10, 100, 1000], 0.5),
        ]
    return [
        ("one device, 1 public image, 2 classes, T = 1", logits(1, 1, 2), [50], 1.0),
        ("4 devices, one of them with no private samples (weight 0), T = 3", logits(4, 9, 6), [0, 5, 40, 12], 3.0),
        ("2 devices with logits of size about 1,000, T = 0.5 (exp overflows unless the row maximum is taken "
         "out first)", logits(2, 5, 3, scale=1000.0), [3, 1], 0.5),
        ("6 devices in float32, 30 public images, 100 classes, T = 4",
         logits(6, 30, 100, dtype=torch.float32), [1, 2, 3, 4, 5, 600], 4.0),
    ]


def _fd_bytes_hint(got: int, k: int, n: int, c: int) -> str:
    one = n * c * 4
    slips = {
        2 * one: "count all K devices: each sends its logits and receives the consensus",
        k * one: "count both directions: every device's logits up and the consensus down to every device",
        (k + 1) * one: "the consensus goes down to each of the K devices, not once",
        2 * k * n * c: "count bytes, not values: a float32 value is 4 bytes",
        2 * k * n * c * 8: "logits travel as float32, 4 bytes per value, whatever dtype the tensors have here",
    }
    return slips.get(got, "every one of the K devices sends N_pub C float32 values up and receives as many down")


def check_fd_round(fn, hidden: bool = False) -> str:
    """Check ``fn(logits, sizes, temperature)``, the server's side of one federated-distillation round.

    ``fn`` receives ``logits``, a list of K ``(N_pub, C)`` tensors (device k's logits on the public set),
    ``sizes``, the K devices' private sample counts (ints), and the digest temperature T > 0. It returns
    ``(z, targets, n_bytes)``: ``z`` the ``(N_pub, C)`` consensus, the mean of the devices' logits weighted by
    n_k / sum n; ``targets`` the ``(N_pub, C)`` soft targets softmax(z / T) each device distills; ``n_bytes``
    the bytes this round moves over the link for all K devices, logits up and consensus down as float32.
    Values must agree within 1e-9 (1e-5 in float32). The references are
    :func:`~collab_lib.feature_based.logit_exchange.consensus`,
    :func:`~collab_lib.data_based.distill.soft_targets` and
    :func:`~collab_lib.feature_based.logit_exchange.logit_bytes_per_round`, which ``fn`` may not call.
    ``hidden=True`` runs one device, a device of weight 0, logits of size 1,000 and float32 with 100 classes.
    """
    forbidden = (consensus, soft_targets, logit_bytes_per_round)
    cases = _fd_cases(hidden)
    name, logits, sizes, T = cases[0]
    if learner_call(fn, [z.clone() for z in logits], list(sizes), T, forbidden=forbidden,
                    name="my_fd_round") is None:
        return not_attempted("fill in my_fd_round above")
    for name, logits, sizes, T in cases:
        out = learner_call(fn, [z.clone() for z in logits], list(sizes), T, forbidden=forbidden, name="my_fd_round")
        assert isinstance(out, (tuple, list)) and len(out) == 3, (
            f"{name}: my_fd_round returned {type(out).__name__}, expected (z, targets, n_bytes)")
        k, (n, c) = len(logits), logits[0].shape
        z_ref = consensus(logits, sizes).double()
        p_ref = soft_targets(z_ref, T)
        tol = 1e-5 if logits[0].dtype == torch.float32 else 1e-9
        z = torch.from_numpy(as_shaped(out[0], "z", name, (n, c)))
        err = (z - z_ref).abs().max().item() / max(1.0, z_ref.abs().max().item())
        if not err <= tol:
            stacked = torch.stack([t.double() for t in logits])
            w = torch.tensor(sizes, dtype=torch.float64)
            slips = {
                "weight device k by n_k / sum n (its share of the private samples), not equally":
                    stacked.mean(0),
                "normalise the weights: divide by the total sample count": torch.einsum("k,knc->nc", w, stacked),
            }
            hint = next((h for h, v in slips.items() if torch.allclose(z, v, rtol=1e-6, atol=1e-9)),
                        "z = sum_k (n_k / sum_j n_j) Z_k")
            raise AssertionError(f"{name}: z is off by up to {err:.3g} (relative); {hint}")
        p = torch.from_numpy(as_shaped(out[1], "targets", name, (n, c)))
        err = (p - p_ref).abs().max().item() if torch.isfinite(p).all() else math.inf
        if not err <= tol:
            slips = {
                "divide the logits by the temperature before the softmax": z_ref.softmax(-1),
                "softmax over the classes (dim=-1, each row sums to 1), not over the public images":
                    (z_ref / T).softmax(0),
                "the targets are probabilities: softmax(z / T), not z / T": z_ref / T,
            }
            hint = next((h for h, v in slips.items() if torch.allclose(p, v, rtol=1e-6, atol=1e-9)),
                        "exp overflows for logits this large: subtract each row's maximum first, or use "
                        "torch.softmax" if not torch.isfinite(p).all() else "targets = softmax(z / T) row by row")
            raise AssertionError(f"{name}: the targets are off by up to {err:.3g}; {hint}")
        got = _byte_count(out[2], "n_bytes", name)
        ref = k * logit_bytes_per_round(n, c)
        if got != ref:
            raise AssertionError(f"{name}: got {got:,} bytes, expected {ref:,}; " + _fd_bytes_hint(got, k, n, c))
    which = ("one device, a device of weight 0, logits of size 1,000 and 100 classes in float32" if hidden
             else "5 and 3 devices of very different sizes")
    return f"correct: your consensus, targets and bytes match the library's on {which}"


# --- logit_exchange: a compressed exchange, the top k logits with their class ids -------------------------


def _top_k_cases(hidden: bool) -> list[tuple[str, torch.Tensor, int, int]]:
    """(name, (N_pub, C) consensus without ties, k, bits per value)."""
    g = generator(61 if hidden else 60)

    def z(n: int, c: int) -> torch.Tensor:
        return 3 * torch.randn(n, c, generator=g, dtype=torch.float64)

    if not hidden:
        return [("20 images, 10 classes, k = 3, 8 bits", z(20, 10), 3, 8),
                ("5 images, 10 classes, k = 10 (every logit), 32 bits", z(5, 10), 10, 32)]
    return [("1 image, 2 classes, k = 1, 4 bits", z(1, 2), 1, 4),
            ("7 images, 5 classes, k = 2, 5 bits (a byte count to round up)", z(7, 5), 2, 5),
            ("33 images, 100 classes, k = 5, 16 bits", z(33, 100), 5, 16),
            ("3 images, 17 classes, k = 16 (all but one), 3 bits", z(3, 17), 16, 3)]


def _top_k_bytes_hint(got: int, n: int, c: int, k: int, b: int) -> str:
    idx = math.ceil(math.log2(c)) if k < c else 0
    slips = {
        -(-n * k * (b + idx) // 8): "count both directions: the device's top k up and the consensus's down",
        2 * -(-n * k * b // 8): "below k = C every value also needs its class id, ceil(log2 C) bits",
        2 * -(-n * k * (b + math.ceil(math.log2(c))) // 8): "at k = C every class is sent, in order: no ids needed",
        2 * (n * k * (b + idx) // 8): "round each direction's bits up to whole bytes, not down",
        2 * n * k * (b + idx): "count bytes, not bits",
        2 * n * -(-k * (b + idx) // 8): "round up once per direction, over all N_pub images, not per image",
    }
    return slips.get(got, "each direction carries N_pub k values of b bits plus, below k = C, a ceil(log2 C)-bit "
                          "class id each, rounded up to whole bytes")


def check_top_k_exchange(fn, hidden: bool = False) -> str:
    """Check ``fn(z, top_k, value_bits)``: what a device receives when the exchange keeps each public image's
    ``top_k`` largest logits, and what that costs.

    ``fn`` receives an ``(N_pub, C)`` tensor ``z``, an int ``top_k`` in [1, C] and an int ``value_bits``, and
    returns ``(kept, n_bytes)``: ``kept``, ``(N_pub, C)``, equal to ``z`` at each row's ``top_k`` largest entries
    and ``-inf`` elsewhere (softmax of it gives the targets renormalised over the kept classes), and
    ``n_bytes``, one device's payload per round both ways, each direction N_pub k (b + ceil(log2 C)) bits rounded
    up to whole bytes, without class ids at k = C. The reference for the bytes is
    :func:`~collab_lib.feature_based.logit_exchange.compressed_logit_bytes_per_round`, which ``fn`` may not call.
    ``hidden=True`` runs k = 1, a class count that is not a power of 2, k = C - 1 and counts to round up.
    """
    forbidden = (compressed_logit_bytes_per_round,)
    cases = _top_k_cases(hidden)
    name, z, k, b = cases[0]
    if learner_call(fn, z.clone(), k, b, forbidden=forbidden, name="my_top_k_exchange") is None:
        return not_attempted("fill in my_top_k_exchange above")
    for name, z, k, b in cases:
        out = learner_call(fn, z.clone(), k, b, forbidden=forbidden, name="my_top_k_exchange")
        assert isinstance(out, (tuple, list)) and len(out) == 2, (
            f"{name}: my_top_k_exchange returned {type(out).__name__}, expected (kept, n_bytes)")
        n, c = z.shape
        kept = torch.from_numpy(as_shaped(out[0], "kept", name, (n, c)))
        top = torch.zeros(n, c, dtype=torch.bool).scatter(1, z.topk(k, dim=1).indices, True)
        ref = torch.where(top, z, -math.inf)
        if not torch.equal(kept, ref):
            if torch.equal(kept, z):
                hint = "set every logit outside a row's top k to -inf"
            elif torch.equal(kept, torch.where(top, z, 0.0)):
                hint = "-inf, not 0, outside the top k: a logit of 0 still gets a share of the probability"
            elif torch.equal(torch.isinf(kept), ~top):
                hint = "a kept entry holds z's own value"
            else:
                hint = "keep each row's k largest logits (z.topk(k, dim=1)), not the smallest or column-wise ones"
            raise AssertionError(f"{name}: kept differs from z at the top k and -inf elsewhere; {hint}")
        got = _byte_count(out[1], "n_bytes", name)
        want = compressed_logit_bytes_per_round(n, c, k, b)
        if got != want:
            raise AssertionError(f"{name}: got {got:,} bytes, expected {want:,}; " + _top_k_bytes_hint(got, n, c, k, b))
    which = "k = 1, 5 and 17 classes, k = C - 1 and byte counts to round up" if hidden else (
        "k = 3 of 10 and every logit")
    return f"correct: your kept logits and byte count match on {which}"


# --- split_learning: bytes of one step --------------------------------------------------------------------


def _split_models(hidden: bool = False) -> list[tuple[str, nn.Sequential]]:
    """Small ``nn.Sequential`` models on ``(B, 1, 8, 8)`` inputs, as the lab's digits: a padded and an unpadded
    convolution (8x8 -> 6x6), so the values per sample at the cut change at most layers; ``hidden`` swaps the
    padded one for a 1x1 convolution and an MLP.

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
        mlp = nn.Sequential(
            nn.Conv2d(1, 2, 1), nn.Flatten(),            # (B, 2, 8, 8) -> (B, 128)
            nn.Linear(128, 20), nn.Sigmoid(),            # (B, 20)
            nn.Linear(20, 10),                           # (B, 10)
        )
    if hidden:
        return [("1x1 convolution and an MLP 128-20-10", mlp), ("CNN with an unpadded convolution, no pooling", unpadded)]
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


def check_split_bytes(fn, hidden: bool = False) -> str:
    """Check ``fn(model, cut, batch)`` against the payloads that
    :func:`~collab_lib.feature_based.split_learning.split_step` really sends.

    ``fn`` receives an ``nn.Sequential`` ``model`` on ``(B, 1, 8, 8)`` inputs (the lab's digits), an int
    ``cut`` in [1, len(model) - 1] (the device runs ``model[:cut]``) and an int ``batch``, and returns the
    payload bytes of one split-learning step on a batch of that size: float32 activations and int64 labels
    up, float32 gradients of the activations down. An int, or a float or one-element tensor holding a whole
    number, is accepted. ``fn`` may not call :func:`~collab_lib.feature_based.split_learning.split_bytes_per_step`
    or ``split_step``. ``hidden=True`` runs another model and other batch sizes.
    """
    forbidden = (split_bytes_per_step, split_step)
    models = _split_models(hidden)
    batches = (3, 17) if hidden else (1, 8, 32)
    if learner_call(fn, models[0][1], 2, 8, forbidden=forbidden, name="my_bytes_per_step") is None:
        return not_attempted("fill in my_bytes_per_step above")
    g = generator(10 if hidden else 9)
    for name, model in models:
        measured = {}                                            # (cut, batch) -> (bytes up, bytes down)
        for batch in batches:
            x = torch.rand(batch, 1, 8, 8, generator=g)
            y = torch.randint(0, 10, (batch,), generator=g)     # int64, as the lab's labels
            for cut in range(1, len(model)):
                s = split_step(*split_model(model, cut), x, y)
                measured[cut, batch] = (s.bytes_up, s.bytes_down)
        for (cut, batch), (up, down) in measured.items():
            case = f"{name}, cut {cut} (after {type(model[cut - 1]).__name__}), batch {batch}"
            out = learner_call(fn, model, cut, batch, forbidden=forbidden, name="my_bytes_per_step")
            got = _byte_count(out, "my_bytes_per_step", case)
            if got != up + down:
                others = {c: sum(measured[c, batch]) for c in (cut - 1, cut + 1) if (c, batch) in measured}
                raise AssertionError(f"{case}: got {got:,} bytes, expected {up + down:,} ({up:,} up, {down:,} "
                                     f"down, as split_step measured); "
                                     + _split_bytes_hint(got, up, down, batch, others))
    which = "a 1x1-convolution MLP and a CNN, for batches of 3 and 17" if hidden else "two models, for batches of 1, 8 and 32"
    return f"correct: your count matches the payloads split_step sends at every cut of {which}"


# --- split_learning: one step, as the two parties run it --------------------------------------------------


def _split_step_cases(hidden: bool) -> list[tuple[str, nn.Sequential, int, int]]:
    """(name, float64 model, cut, batch): every cut of the check's two small CNNs is a case in hidden mode."""
    models = [(name, model.double()) for name, model in _split_models()]
    if not hidden:
        name, model = models[0]
        return [(f"{name}, cut {cut}, batch 8", model, cut, 8) for cut in (2, 4, 6)]
    cases = []
    for (name, model), batch in zip(models, (1, 5)):
        cases += [(f"{name}, cut {cut}, batch {batch}", model, cut, batch) for cut in range(1, len(model))]
    return cases


def check_split_step(fn, hidden: bool = False) -> str:
    """Check ``fn(device, cloud, x, y)``, one split-learning step, against autograd on the unsplit model.

    ``fn`` receives the two parts of an ``nn.Sequential`` (``device = model[:cut]``, ``cloud = model[cut:]``),
    a batch ``x`` ``(B, 1, 8, 8)`` and its labels ``y`` ``(B,)``, whose parameters' ``.grad`` are None. It runs the
    device's forward to the cut, hands the cloud a detached copy of the activations ``h`` that requires grad,
    lets the cloud compute the cross-entropy and backpropagate to dL/dh, and continues the backward pass on the
    device from that gradient. It returns ``(loss, grad_h)``: the loss as a number and dL/dh, the ``(B, *a_k)``
    tensor the cloud sends down; every parameter's ``.grad`` must then equal the unsplit model's within 1e-10.
    The reference is :func:`~collab_lib.feature_based.split_learning.split_step`, which ``fn`` may not call.
    ``hidden=True`` runs every cut of two CNNs, at batches of 1 and 5.
    """
    # The first h.backward(grad) of a process imports torch.fx's symbolic shapes (and sympy): import them here,
    # not under learner_call's profiler, which makes that import take seconds longer.
    import torch.fx.experimental.symbolic_shapes  # noqa: F401

    cases = _split_step_cases(hidden)
    g = generator(71 if hidden else 70)

    def run(model: nn.Sequential, cut: int, x: torch.Tensor, y: torch.Tensor):
        model.zero_grad(set_to_none=True)
        device, cloud = split_model(model, cut)
        seen = []
        hook = cloud.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
        try:
            out = learner_call(fn, device, cloud, x.clone(), y.clone(), forbidden=(split_step,), name="my_split_step")
        finally:
            hook.remove()
        return out, seen

    name, model, cut, batch = cases[0]
    x0 = torch.rand(batch, 1, 8, 8, generator=g, dtype=torch.float64)
    y0 = torch.randint(0, 10, (batch,), generator=g)
    if run(model, cut, x0, y0)[0] is None:
        return not_attempted("fill in my_split_step above")
    for name, model, cut, batch in cases:
        x = torch.rand(batch, 1, 8, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 10, (batch,), generator=g)
        model.zero_grad(set_to_none=True)
        loss_ref = nn.functional.cross_entropy(model(x), y)
        loss_ref.backward()
        ref = [p.grad.clone() for p in model.parameters()]
        with torch.no_grad():
            h_ref = model[:cut](x)
        out, seen = run(model, cut, x, y)
        assert isinstance(out, (tuple, list)) and len(out) == 2, (
            f"{name}: my_split_step returned {type(out).__name__}, expected (loss, grad_h)")
        assert seen, f"{name}: the cloud part never ran: call cloud(h) on the activations"
        h = seen[0]
        if h.grad_fn is not None:
            raise AssertionError(f"{name}: the cloud received the device's activations with their autograd graph "
                                 "attached; between two machines only the values travel: give the cloud "
                                 "h.detach().requires_grad_(True)")
        if not h.requires_grad:
            raise AssertionError(f"{name}: the cloud's copy of the activations does not require grad, so the cloud "
                                 "cannot compute dL/dh to send down: h.detach().requires_grad_(True)")
        loss = as_number(out[0], "loss", name, "the batch's mean cross-entropy")
        assert abs(loss - loss_ref.item()) <= 1e-10 * max(1.0, abs(loss_ref.item())), (
            f"{name}: loss {loss:.10g}, expected {loss_ref.item():.10g}, the mean cross-entropy of cloud(h) and y")
        grad_h = torch.from_numpy(as_shaped(out[1], "grad_h", name, tuple(h_ref.shape),
                                            " (dL/dh has the activations' shape)"))
        if h.grad is None or not torch.allclose(grad_h, h.grad.double(), rtol=0, atol=1e-12):
            raise AssertionError(f"{name}: grad_h is not the gradient the cloud computed for its copy of the "
                                 "activations (after the cloud's loss.backward() it is in that copy's .grad)")
        device, cloud = split_model(model, cut)
        for part, params, first in (("cloud", cloud.parameters(), cut), ("device", device.parameters(), 0)):
            for p in params:
                q = ref[[id(t) for t in model.parameters()].index(id(p))]
                if p.grad is None:
                    hint = ("the device continues the backward pass from the gradient the cloud sends down: "
                            "h.backward(grad_h)" if part == "device" else "call loss.backward() in the cloud")
                    raise AssertionError(f"{name}: a {part} parameter has no gradient; {hint}")
                err = (p.grad - q).abs().max().item()
                if not err <= 1e-10 * max(1.0, q.abs().max().item()):
                    twice = torch.allclose(p.grad, 2 * q, rtol=1e-9, atol=1e-12)
                    hint = ("the gradient is counted twice: zero it, or backpropagate once per part"
                            if twice else "the unsplit model's loss.backward() is what the two parts compute together")
                    raise AssertionError(f"{name}: a {part} parameter's gradient differs from the unsplit model's "
                                         f"by up to {err:.3g}; {hint}")
    which = "every cut of two CNNs at batches of 1 and 5" if hidden else "three cuts of a CNN"
    return f"correct: your step cuts the graph at the link and gives the unsplit model's gradients, at {which}"
