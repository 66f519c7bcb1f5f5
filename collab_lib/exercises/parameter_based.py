"""Check functions of the chapter 6 labs (parameter-based collaboration): each tests a learner's function
against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None``, raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected (and
a hint when the answer matches a common mistake), and returns a "correct" message otherwise. The cases are
seeded random tensors, so a check is deterministic; the inputs are passed as copies, so a function that
modifies its arguments in place cannot change the reference.

* :func:`check_topk_with_feedback` — the compression lab's top-k sparsification with error feedback;
* :func:`check_weighted_average` — the federated learning lab's FedAvg aggregation;
* :func:`check_ditto_step` — the personalization lab's proximal step of Ditto.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from collab_lib.exercises.answers import as_shaped
from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.compress import top_k
from collab_lib.parameter_based.personalize import ditto_step
from collab_lib.seed import generator


def _close(got: torch.Tensor, ref: torch.Tensor) -> bool:
    return torch.allclose(got, ref.double(), rtol=1e-5, atol=1e-5)


def _show(t: torch.Tensor, digits: int = 3) -> str:
    """The first six values of ``t``, rounded, as a list (with "..." if there are more)."""
    flat = t.reshape(-1).tolist()
    shown = ", ".join(f"{v:.{digits}f}" for v in flat[:6])
    return f"[{shown}{', ...' if len(flat) > 6 else ''}]"


# --- Compression lab: top-k with error feedback ------------------------------------------------------------


def _topk_cases() -> list[tuple[str, list[torch.Tensor], int]]:
    """(name, updates of one client over rounds, k): 1-d float32 updates of seeded sizes, no ties."""
    g = generator(5)
    cases = []
    for n, k, rounds in ((20, 3, 6), (50, 5, 8), (7, 7, 2)):
        cases.append((f"{n} values, k={k}", [torch.randn(n, generator=g) for _ in range(rounds)], k))
    return cases


def check_topk_with_feedback(fn) -> str:
    """Check ``fn(update, residual, k)`` against :func:`~collab_lib.parameter_based.compress.top_k`.

    ``fn`` receives one client's ``update`` and the ``residual`` it kept from earlier rounds, two 1-d float
    tensors of the same length ``n``, and an int ``1 <= k <= n``. It returns the pair
    ``(sent, new_residual)``: ``sent`` is dense, of shape ``(n,)``, equal to ``update + residual`` on its
    ``k`` largest-magnitude entries and zero elsewhere; ``new_residual = update + residual - sent`` is what
    the client keeps for the next round. The check runs a client over several rounds, each starting from
    the correct residual of the round before.
    """
    cases = _topk_cases()
    name, updates, k = cases[0]
    n = len(updates[0])
    if fn(updates[0].clone(), torch.zeros(n), k) is None:
        return "not attempted yet: fill in my_topk_with_feedback above"
    for name, updates, k in cases:
        n = len(updates[0])
        residual = torch.zeros(n)
        for t, update in enumerate(updates):
            case = f"{name}, round {t}"
            out = fn(update.clone(), residual.clone(), k)
            assert isinstance(out, (tuple, list)) and len(out) == 2, (
                f"{case}: my_topk_with_feedback returned a {type(out).__name__}, expected a pair "
                "(sent, new_residual)")
            sent = torch.from_numpy(as_shaped(out[0], "sent", case, (n,),
                                              " (dense, the size of update, with zeros where nothing is sent)"))
            new_residual = torch.from_numpy(as_shaped(out[1], "new_residual", case, (n,)))
            acc = update + residual                                     # what the client owes the server
            ref = top_k(acc, k)
            if not _close(sent, ref):
                if _close(sent, top_k(update, k)):
                    hint = ("you sent the top-k of the update alone; error feedback selects from "
                            "update + residual")
                elif _close(sent, torch.where(acc >= acc.topk(k).values[-1], acc, 0.0)):
                    hint = "you kept the k largest *signed* values; top-k keeps the largest magnitudes"
                else:
                    hint = f"sent must equal update + residual on its {k} largest |entries| and 0 elsewhere"
                got_at, ref_at = sent.nonzero().flatten().tolist(), ref.nonzero().flatten().tolist()
                what = (f"sent is nonzero at indices {got_at}, expected {ref_at}" if got_at != ref_at else
                        f"sent has values {_show(sent[ref_at])} at indices {ref_at}, expected {_show(ref[ref_at])}")
                raise AssertionError(f"{case}: {what}; {hint}")
            if not _close(new_residual, acc - ref):
                hint = ("the new residual is update + residual - sent: you dropped the old residual"
                        if _close(new_residual, update - ref) else
                        "the new residual is update + residual - sent, what was owed and not sent")
                raise AssertionError(f"{case}: new_residual {_show(new_residual)}, expected "
                                     f"{_show(acc - ref)}; {hint}")
            residual = acc - ref
    rounds = sum(len(updates) for _, updates, _ in cases)
    return (f"correct: your compressor matches the library's top_k with error feedback over {rounds} rounds of "
            f"{len(cases)} seeded clients, from k = 3 of 20 values to all of them")


# --- Federated learning lab: FedAvg's weighted average ------------------------------------------------------


def _average_cases() -> list[tuple[str, dict[str, torch.Tensor], torch.Tensor]]:
    """(name, stacked client parameters, (K,) sample counts): clients of very unequal sizes, so an
    unweighted mean fails."""
    g = generator(42)
    return [
        ("5 clients with 1 to 60 samples",
         {"w": torch.randn(5, 3, 4, generator=g), "b": torch.randn(5, 4, generator=g)},
         torch.tensor([1.0, 7.0, 30.0, 2.0, 60.0])),
        ("3 clients with 100, 1 and 10 samples",
         {"0.weight": torch.randn(3, 2, 3, 2, generator=g), "0.bias": torch.randn(3, 2, generator=g),
          "2.bias": torch.randn(3, 1, generator=g)},
         torch.tensor([100.0, 1.0, 10.0])),
        ("1 client", {"w": torch.randn(1, 2, 2, generator=g)}, torch.tensor([4.0])),
    ]


def check_weighted_average(fn) -> str:
    """Check ``fn(stacked, num_samples)`` against :func:`~collab_lib.parameter_based.aggregate.weighted_average`.

    ``fn`` receives ``stacked``, a dict name -> float tensor of shape ``(K, *shape)`` holding the K clients'
    values of each parameter along the first axis, and ``num_samples``, a ``(K,)`` float tensor of the
    clients' sample counts n_k. It returns a dict with the same names, each a tensor of shape ``shape``:
    sum_k n_k x_k / sum_k n_k.
    """
    cases = _average_cases()
    name, stacked, n = cases[0]
    if fn({p: x.clone() for p, x in stacked.items()}, n.clone()) is None:
        return "not attempted yet: fill in my_weighted_average above"
    for name, stacked, n in cases:
        out = fn({p: x.clone() for p, x in stacked.items()}, n.clone())
        assert isinstance(out, Mapping), (
            f"{name}: my_weighted_average returned a {type(out).__name__}, expected a dict name -> tensor")
        ref = weighted_average(stacked, n)
        assert set(out) == set(ref), f"{name}: returned the names {sorted(out)}, expected {sorted(ref)}"
        for p, r in ref.items():
            got = torch.from_numpy(as_shaped(out[p], p, name, tuple(r.shape)))
            if _close(got, r):
                continue
            x = stacked[p].double()
            if _close(got, x.mean(dim=0)):
                hint = "this is the unweighted mean; FedAvg weights client k by its n_k samples"
            elif _close(got, torch.tensordot(n.double(), x, dims=1)):
                hint = "this is sum_k n_k x_k; divide by sum_k n_k"
            else:
                hint = "expected sum_k n_k x_k / sum_k n_k"
            raise AssertionError(f"{name}: {p} is {_show(got)}, expected {_show(r)}; {hint}")
    return ("correct: your average matches collab_lib's weighted_average on three seeded federations, with "
            "clients of very unequal sizes")


# --- Personalization lab: Ditto's proximal step --------------------------------------------------------------


def check_ditto_step(fn) -> str:
    """Check ``fn(v, grad, w, lr, lam)`` against :func:`~collab_lib.parameter_based.personalize.ditto_step`.

    ``fn`` receives the personal parameters ``v``, the gradient ``grad`` of the user's loss at ``v`` and
    the global parameters ``w``, three float tensors of the same shape, a step size ``lr`` = η > 0 and a
    finite ``lam`` = λ >= 0. It returns v' = (v - η grad + ηλ w) / (1 + ηλ), of the same shape: one step on
    F(v) + (λ/2)||v - w||^2 with the proximal term taken exactly.
    """
    g = generator(7)
    shapes = ((4, 3), (4, 3), (4, 3), (4, 3), (10,))
    steps = ((0.1, 0.0), (0.1, 0.5), (0.05, 10.0), (0.5, 3.0), (0.2, 2.0))
    cases = [(f"shape {shape}, lr={lr}, lam={lam}", *(torch.randn(*shape, generator=g) for _ in range(3)), lr, lam)
             for shape, (lr, lam) in zip(shapes, steps)]
    name, v, grad, w, lr, lam = cases[0]
    if fn(v.clone(), grad.clone(), w.clone(), lr, lam) is None:
        return "not attempted yet: fill in my_ditto_step above"
    for name, v, grad, w, lr, lam in cases:
        ref = ditto_step(v, grad, w, lr, lam)
        got = torch.from_numpy(as_shaped(fn(v.clone(), grad.clone(), w.clone(), lr, lam), "v'", name, tuple(ref.shape)))
        if _close(got, ref):
            continue
        if _close(got, v - lr * (grad + lam * (v - w))):
            hint = ("this is a plain gradient step on the proximal term; taken exactly it divides by "
                    "(1 + lr lam)")
        elif _close(got, v - lr * grad + lr * lam * w):
            hint = "the numerator is right; divide it by (1 + lr lam)"
        else:
            hint = "expected (v - lr grad + lr lam w) / (1 + lr lam)"
        raise AssertionError(f"{name}: v' is {_show(got)}, expected {_show(ref)}; {hint}")
    lams = ", ".join(f"{lam:g}" for lam in sorted({lam for *_, lam in cases}))
    return f"correct: your step matches collab_lib's ditto_step for λ = {lams}"
