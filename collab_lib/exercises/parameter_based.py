"""Check functions of the chapter 6 labs (parameter-based collaboration): each tests a learner's function
against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message naming the case that fails, what was returned and what was expected (and
a hint when the answer matches a common mistake), and returns a "correct" message otherwise. The cases are
seeded and built inside the check, so a check is deterministic; the inputs are passed as copies, so a
function that modifies its arguments in place cannot change the reference. Every call of the learner's
function goes through :func:`~collab_lib.exercises.grading.learner_call` with the library function it
re-implements forbidden, and ``hidden=True`` runs other cases than the visible ones (an instructor's
hidden test).

* :func:`check_topk_with_feedback` — the compression lab's top-k sparsification with error feedback;
* :func:`check_topk_uplink` — the compression lab's uplink over rounds: residuals per client and bytes;
* :func:`check_plan_round` — the federated learning lab's sampling, dropouts and stragglers of a round;
* :func:`check_fedavg_round` — the federated learning lab's whole FedAvg round;
* :func:`check_ditto_personal` — the personalization lab's Ditto update loop for one user.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from collab_lib.datasets.users import UserDatasets
from collab_lib.exercises.answers import as_array, as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.models import mlp
from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.compress import (
    FLOAT32_BYTES,
    INDEX_BYTES,
    CompressionConfig,
    Compressor,
    sparse_bytes,
    top_k,
)
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.federated import (
    FedConfig,
    client_batches,
    federate,
    full_steps,
    plan_round,
    run_round,
)
from collab_lib.parameter_based.local import local_update, local_update_batched, train_clients
from collab_lib.parameter_based.params import Params, get_params
from collab_lib.parameter_based.personalize import (
    PersonalConfig,
    ditto,
    ditto_step,
    fine_tune_per_user,
    sgd_per_user,
    stack,
)
from collab_lib.seed import generator


def _close(got: torch.Tensor, ref: torch.Tensor) -> bool:
    return torch.allclose(got, ref.double(), rtol=1e-5, atol=1e-5)


def _show(t: torch.Tensor, digits: int = 3) -> str:
    """The first six values of ``t``, rounded, as a list (with "..." if there are more)."""
    flat = t.reshape(-1).tolist()
    shown = ", ".join(f"{v:.{digits}f}" for v in flat[:6])
    return f"[{shown}{', ...' if len(flat) > 6 else ''}]"


# --- Compression lab: top-k with error feedback ------------------------------------------------------------


def _topk_cases(hidden: bool = False) -> list[tuple[str, list[torch.Tensor], int]]:
    """(name, updates of one client over rounds, k): 1-d float32 updates of seeded sizes, no ties."""
    g = generator(17 if hidden else 5)
    specs = ((20, 3, 6), (50, 5, 8), (7, 7, 2)) if not hidden else ((33, 1, 9), (64, 10, 6), (5, 4, 4), (1, 1, 2))
    return [(f"{n} values, k={k}", [torch.randn(n, generator=g) for _ in range(rounds)], k) for n, k, rounds in specs]


def check_topk_with_feedback(fn, hidden: bool = False) -> str:
    """Check ``fn(update, residual, k)`` against :func:`~collab_lib.parameter_based.compress.top_k`.

    ``fn`` receives one client's ``update`` and the ``residual`` it kept from earlier rounds, two 1-d float
    tensors of the same length ``n``, and an int ``1 <= k <= n``. It returns the pair
    ``(sent, new_residual)``: ``sent`` is dense, of shape ``(n,)``, equal to ``update + residual`` on its
    ``k`` largest-magnitude entries and zero elsewhere; ``new_residual = update + residual - sent`` is what
    the client keeps for the next round. The check runs a client over several rounds, each starting from
    the correct residual of the round before; ``hidden=True`` runs other sizes, k = 1 and a single value.
    """
    cases = _topk_cases(hidden)

    def call(update, residual, k):
        return learner_call(fn, update.clone(), residual.clone(), k, forbidden=(top_k,),
                            name="my_topk_with_feedback")

    name, updates, k = cases[0]
    n = len(updates[0])
    if call(updates[0], torch.zeros(n), k) is None:
        return not_attempted("fill in my_topk_with_feedback above")
    for name, updates, k in cases:
        n = len(updates[0])
        residual = torch.zeros(n)
        for t, update in enumerate(updates):
            case = f"{name}, round {t}"
            out = call(update, residual, k)
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
    which = "hidden" if hidden else "visible"
    return (f"correct: your compressor matches the library's top_k with error feedback over {rounds} {which} "
            f"rounds of {len(cases)} seeded clients")


_Round = tuple[np.ndarray, Params]
"""One round of the uplink: the ids of the clients that answered, (a,), and their updates, name -> (a, *shape)."""


def _uplink_cases(hidden: bool) -> list[tuple[str, list[_Round], float]]:
    """(name, rounds, top fraction): clients that skip rounds, so a residual waits; several tensors."""
    g = generator(31 if hidden else 13)
    rng = np.random.default_rng(31 if hidden else 13)
    specs = ([({"w": (4, 3), "b": (3,)}, 5, 6, 0.2), ({"0.weight": (6, 5), "0.bias": (5,), "2.bias": (2,)}, 8, 5, 0.04)]
             if not hidden else
             [({"w": (3, 3), "b": (3,)}, 4, 7, 0.5), ({"layer.weight": (10, 4)}, 6, 4, 0.01),
              ({"a": (2,), "b": (2, 2), "c": (1,)}, 3, 5, 1.0), ({"w": (5, 5), "b": (5,)}, 9, 6, 0.07)])
    cases = []
    for shapes, clients, rounds, fraction in specs:
        history = []
        for _ in range(rounds):
            a = int(rng.integers(1, min(clients, 4) + 1))
            ids = np.sort(rng.choice(clients, size=a, replace=False))
            history.append((ids, {n: torch.randn(a, *shape, generator=g, dtype=torch.float64)
                                  for n, shape in shapes.items()}))
        P = sum(int(np.prod(shape)) for shape in shapes.values())
        cases.append((f"{clients} clients, {rounds} rounds, P={P} in {len(shapes)} tensors, fraction {fraction}",
                      history, fraction))
    return cases


def _uplink_variant(rounds: list[_Round], fraction: float, persist: bool = True, shared: bool = False,
                    per_tensor: bool = False, floor_k: bool = False) -> list[tuple[Params, int]]:
    """Top-k with error feedback over rounds; the flags give common mistakes (the defaults are right)."""
    residuals: dict[int, torch.Tensor] = {}
    out = []
    for ids, deltas in rounds:
        names = list(deltas)
        received = {n: torch.zeros_like(d) for n, d in deltas.items()}
        nbytes = 0
        for i, client in enumerate(ids.tolist()):
            key = 0 if shared else client
            flat = torch.cat([deltas[n][i].reshape(-1) for n in names])                  # (P,)
            acc = flat + residuals.get(key, torch.zeros_like(flat)) if persist or shared else flat
            if per_tensor:
                parts, start = [], 0
                for n in names:
                    m = deltas[n][i].numel()
                    kk = math.floor(fraction * m) if floor_k else math.ceil(fraction * m)
                    parts.append(top_k(acc[start:start + m], kk))
                    start += m
                sent = torch.cat(parts)
                kept = int((sent != 0).sum())
            else:
                kk = math.floor(fraction * len(acc)) if floor_k else math.ceil(fraction * len(acc))
                sent, kept = top_k(acc, kk), kk
            residuals[key] = acc - sent
            start = 0
            for n in names:
                m = deltas[n][i].numel()
                received[n][i] = sent[start:start + m].reshape(deltas[n][i].shape)
                start += m
            nbytes += kept * (FLOAT32_BYTES + INDEX_BYTES)
        out.append((received, nbytes))
    return out


def check_topk_uplink(fn, hidden: bool = False) -> str:
    """Check ``fn(rounds, fraction)`` against :class:`~collab_lib.parameter_based.compress.Compressor`'s
    uplink with ``up_top_fraction=fraction`` and error feedback.

    ``rounds`` is a list of ``(client_ids, deltas)``, one per round: the ``(a,)`` int ids of the clients that
    answered and their updates, a dict name -> float tensor ``(a, *shape)``. ``fraction`` is in (0, 1]. ``fn``
    returns one ``(received, nbytes)`` per round: what the server receives, a dict like ``deltas``, and the
    bytes the round's clients sent up in all. Each client compresses its whole update (every tensor
    flattened together, P values) plus its residual to its k = ceil(fraction P) largest magnitudes, keeps
    the rest as its residual for the next round it takes part in, and sends k (value, index) pairs of
    4 + 4 bytes. ``hidden=True`` runs other federations, fraction 1 (everything sent) and a single tensor.
    """
    cases = _uplink_cases(hidden)
    forbidden = (Compressor.uplink, Compressor._compress, sparse_bytes)

    def call(rounds, fraction):
        copied = [(ids.copy(), {n: d.clone() for n, d in deltas.items()}) for ids, deltas in rounds]
        return learner_call(fn, copied, fraction, forbidden=forbidden, name="my_topk_uplink")

    name, rounds, fraction = cases[0]
    if call(rounds, fraction) is None:
        return not_attempted("fill in my_topk_uplink above")
    for name, rounds, fraction in cases:
        out = call(rounds, fraction)
        assert isinstance(out, (tuple, list)) and len(out) == len(rounds), (
            f"{name}: my_topk_uplink returned a {type(out).__name__}"
            f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}, expected a list of "
            f"{len(rounds)} pairs (received, nbytes), one per round")
        codec = Compressor(CompressionConfig(up_top_fraction=fraction, error_feedback=True))
        for t, ((ids, deltas), got_round) in enumerate(zip(rounds, out)):
            case = f"{name}, round {t} (clients {ids.tolist()})"
            ref, ref_bytes = codec.uplink(t, ids, deltas)
            assert isinstance(got_round, (tuple, list)) and len(got_round) == 2, (
                f"{case}: got a {type(got_round).__name__} for the round, expected a pair (received, nbytes)")
            received, nbytes = got_round
            assert isinstance(received, Mapping), (
                f"{case}: received is a {type(received).__name__}, expected a dict name -> tensor")
            assert set(received) == set(ref), f"{case}: received has the names {sorted(received)}, expected {sorted(ref)}"
            got = {n: torch.from_numpy(as_shaped(received[n], n, case, tuple(r.shape))) for n, r in ref.items()}
            if not all(_close(got[n], ref[n]) for n in ref):
                hint = "each client sends the top-k of its whole update (all tensors flattened) plus its own residual"
                for flags, text in (
                        (dict(persist=False), "each client's residual persists across the rounds it takes part in "
                                              "(it is added to its next update), not reset every round"),
                        (dict(shared=True), "every client keeps its own residual, by client id, not one shared one"),
                        (dict(per_tensor=True), "k = ceil(fraction P) of the whole update, every tensor flattened "
                                                "together, not a top-k per tensor"),
                        (dict(floor_k=True), "k = ceil(fraction P), rounded up")):
                    variant = _uplink_variant(rounds, fraction, **flags)[t][0]
                    if all(_close(got[n], variant[n]) for n in ref):
                        hint = text
                        break
                n = next(n for n in ref if not _close(got[n], ref[n]))
                raise AssertionError(f"{case}: received[{n!r}] is {_show(got[n])}, expected {_show(ref[n])}; {hint}")
            got_bytes = as_number(nbytes, "nbytes", case, "bytes sent up by the round's clients")
            if got_bytes != ref_bytes:
                k = ref_bytes // (len(ids) * (FLOAT32_BYTES + INDEX_BYTES))
                if got_bytes == ref_bytes / 2:
                    hint = "each value travels with its 4-byte index: 8 bytes a pair, not 4"
                elif got_bytes == ref_bytes / len(ids) and len(ids) > 1:
                    hint = "nbytes is the round's total, over all its clients, not one client's"
                else:
                    hint = f"each of the {len(ids)} clients sends k = {k} pairs of a 4-byte value and a 4-byte index"
                raise AssertionError(f"{case}: nbytes {got_bytes:g}, expected {ref_bytes}; {hint}")
    which = "hidden" if hidden else "visible"
    rounds_run = sum(len(r) for _, r, _ in cases)
    return (f"correct: your uplink matches collab_lib's Compressor (top-k with error feedback) over {rounds_run} "
            f"{which} rounds, received values and bytes")


# --- Federated learning lab: who takes part in a round, and one FedAvg round ---------------------------------


def _plan_cases(hidden: bool) -> list[tuple[str, FedConfig, np.ndarray, int]]:
    """(name, config, (K,) client sizes, round index): clients of unequal sizes, every straggler policy."""
    rng = np.random.default_rng(11 if hidden else 3)
    specs = ([(20, 0.3, 0.0, 0.5, "drop", 2), (20, 0.3, 0.0, 0.5, "partial", 2), (12, 0.5, 0.3, 0.3, "partial", 1),
              (7, 1.0, 0.0, 0.0, "drop", 3)] if not hidden else
             [(50, 0.2, 0.2, 0.9, "drop", 5), (50, 0.2, 0.2, 0.9, "partial", 5), (9, 0.34, 0.0, 1.0, "drop", 1),
              (9, 0.34, 0.0, 1.0, "partial", 4), (30, 0.05, 0.5, 0.0, "partial", 2), (1, 1.0, 0.0, 0.5, "drop", 1),
              (15, 0.6, 0.0, 0.25, "partial", 10)])
    cases = []
    for t, (K, C, p, s, policy, E) in enumerate(specs):
        config = FedConfig(client_fraction=C, local_epochs=E, batch_size=int(rng.integers(3, 11)), dropout_prob=p,
                           straggler_fraction=s, stragglers=policy, seed=int(rng.integers(0, 1000)))
        sizes = rng.integers(1, 60, size=K)
        cases.append((f"K={K}, C={C}, dropout {p}, {s:.0%} stragglers ({policy}), E={E}, B={config.batch_size}",
                      config, sizes, int(rng.integers(0, 50)) if t else 0))
    return cases


def _plan_mistake(got: tuple[np.ndarray, np.ndarray], config: FedConfig, sizes: np.ndarray, t: int) -> str:
    """A hint if ``got`` is what a common wrong plan returns, else a summary of the rules."""
    ans, steps = got
    ref = plan_round(config, sizes, t)
    rng = np.random.default_rng([config.seed, 0, t])
    m = max(1, int(round(config.client_fraction * len(sizes))))
    sampled = rng.choice(len(sizes), size=m, replace=False)
    if len(ans) and not np.all(np.diff(ans) > 0):
        return "answered must list client ids in increasing order (sort the sampled ids before the other draws)"
    if set(ans.tolist()) - set(sampled.tolist()):
        return ("some answered clients were never sampled: draw the m = max(1, round(C K)) clients first, "
                "with rng.choice(K, size=m, replace=False)")
    if config.stragglers == "drop" and len(ans) > len(ref.answered):
        return "with stragglers=\"drop\" the stragglers are left out of the round (FedAvg drops them)"
    if config.stragglers == "partial" and len(ans) < len(ref.answered):
        return "with stragglers=\"partial\" the stragglers answer too, after fewer steps"
    if np.array_equal(ans, ref.answered):
        full = config.local_epochs * -(-sizes[ans] // config.batch_size)
        if np.array_equal(steps, config.local_epochs * (sizes[ans] // config.batch_size)):
            return "an epoch of n_k samples in batches of B is ceil(n_k / B) steps (the last batch may be smaller)"
        if np.array_equal(steps, full) and not np.array_equal(ref.steps, full):
            return "a straggler under \"partial\" runs a uniform number of steps in 1..its full count, not all of them"
        return ("steps: E ceil(n_k / B) for a client that finished, and for a straggler (under \"partial\") "
                "rng.integers(1, full + 1), drawn for every sampled client in order")
    return ("the draws, in order, from np.random.default_rng([seed, 0, t]): the sorted sample, one uniform per "
            "sampled client (it answers if >= dropout_prob), a permutation whose first round(s m) are the "
            "stragglers, one partial step count per sampled client")


def check_plan_round(fn, hidden: bool = False) -> str:
    """Check ``fn(config, sizes, t)`` against :func:`~collab_lib.parameter_based.federated.plan_round`.

    ``fn`` receives a :class:`~collab_lib.parameter_based.federated.FedConfig`, the ``(K,)`` int array of
    the clients' sample counts n_k and the round index t. It returns ``(answered, steps)``: the ids of the
    clients whose update the server aggregates, in increasing order, and the SGD steps each ran. With
    ``hidden=True`` it runs other seeds, federations and edge cases (everyone sampled, everyone a straggler,
    one client).
    """
    cases = _plan_cases(hidden)
    _, config, sizes, t = cases[0]
    if learner_call(fn, config, sizes.copy(), t, forbidden=(plan_round,), name="my_plan_round") is None:
        return not_attempted("fill in my_plan_round above")
    for name, config, sizes, t in cases:
        case = f"{name}, round {t}"
        out = learner_call(fn, config, sizes.copy(), t, forbidden=(plan_round,), name="my_plan_round")
        assert isinstance(out, (tuple, list)) and len(out) == 2, (
            f"{case}: my_plan_round returned a {type(out).__name__}, expected a pair (answered, steps)")
        ref = plan_round(config, sizes, t)
        ans = as_array(out[0], "answered", case, "client ids").reshape(-1)
        steps = as_array(out[1], "steps", case, "step counts").reshape(-1)
        if not (np.array_equal(ans, ref.answered) and np.array_equal(steps, ref.steps)):
            hint = _plan_mistake((ans.astype(np.int64), steps.astype(np.int64)), config, sizes, t)
            raise AssertionError(f"{case}: answered {ans.tolist()} with steps {steps.tolist()}, expected "
                                 f"{ref.answered.tolist()} with steps {ref.steps.tolist()}; {hint}")
    which = "hidden" if hidden else "visible"
    return (f"correct: your plan matches collab_lib's plan_round on {len(cases)} {which} rounds, stragglers "
            "dropped and doing partial work")


def _fedavg_cases(hidden: bool) -> list[tuple[str, nn.Module, Params, UserDatasets, FedConfig, int]]:
    """(name, model, w_t, clients, config, round): clients of unequal sizes and labels, float64."""
    g = generator(23 if hidden else 9)
    rng = np.random.default_rng(23 if hidden else 9)
    specs = ([(8, 6, 5, 0.5, 0.5, "drop", 0.0), (8, 6, 5, 0.5, 0.5, "partial", 0.0), (6, 4, 0, 1.0, 0.0, "drop", 0.3)]
             if not hidden else
             [(10, 5, 4, 0.4, 0.5, "partial", 0.2), (6, 3, 0, 0.5, 1.0, "drop", 0.0), (5, 7, 6, 1.0, 0.6, "drop", 0.0),
              (1, 4, 3, 1.0, 0.0, "drop", 0.0)])
    cases = []
    for K, d, hidden_units, C, s, policy, p in specs:
        model = mlp(d, hidden_units, 3, seed=int(rng.integers(0, 100))).double()
        params = {n: w + 0.1 * torch.randn(w.shape, generator=g, dtype=torch.float64) for n, w in get_params(model).items()}
        sizes = rng.integers(2, 26, size=K)
        xs = tuple(torch.randn(int(n), d, generator=g, dtype=torch.float64) + c for c, n in enumerate(sizes))
        ys = tuple(torch.from_numpy(rng.integers(0, 3, size=int(n))) for n in sizes)
        clients = UserDatasets(xs, ys, tuple(f"client {k}" for k in range(K)))
        config = FedConfig(client_fraction=C, local_epochs=int(rng.integers(1, 4)), batch_size=int(rng.integers(3, 8)),
                           lr=float(rng.choice([0.05, 0.1, 0.3])), dropout_prob=p, straggler_fraction=s,
                           stragglers=policy, seed=int(rng.integers(0, 1000)))
        name = (f"{K} clients of {sizes.min()} to {sizes.max()} samples, C={C}, {s:.0%} stragglers ({policy}), "
                f"dropout {p}, E={config.local_epochs}, B={config.batch_size}, lr={config.lr}")
        cases.append((name, model, params, clients, config, int(rng.integers(0, 20))))
    return cases


def _fedavg_reference(model: nn.Module, params: Params, clients: UserDatasets, config: FedConfig,
                      t: int) -> tuple[Params, list[Params], np.ndarray, list[int]]:
    """The next global model from :func:`run_round` (loop engine), and each answering client's model, id and
    steps (for the hints)."""
    template = copy.deepcopy(model)
    trained: list[Params] = []

    def local(plan, sent, objective):
        batches = [client_batches(len(clients.ys[k]), config.batch_size, int(s), config.seed, plan.round_idx, int(k))
                   for k, s in zip(plan.answered, plan.steps)]
        results = train_clients(template, sent, clients, plan.answered, batches, config.lr, objective, "loop")
        trained.extend({n: w[i] for n, w in results.params.items()} for i in range(len(plan.answered)))
        return results

    out = run_round(t, params, None, clients.sizes.numpy(), config, FedAvg(), local)
    return out.params, trained, out.plan.answered, out.plan.steps.tolist()


def _fedavg_mistake(got: Params, params: Params, trained: list[Params], answered: np.ndarray, steps: list[int],
                    clients: UserDatasets) -> str:
    """A hint if ``got`` is what a common wrong round returns, else the round's definition."""
    def same(ref: Params) -> bool:
        return all(_close(got[n], ref[n]) for n in ref)

    if not len(answered):
        return "no client answered in this round: the server keeps w_t (return params unchanged)"
    stack = {n: torch.stack([p[n] for p in trained]) for n in params}
    mean = {n: x.mean(dim=0) for n, x in stack.items()}
    by_steps = {n: torch.tensordot(torch.tensor(steps, dtype=torch.float64) / sum(steps), x, dims=1)
                for n, x in stack.items()}
    if same(params):
        return "this is w_t itself: the clients' trained models are what the server averages"
    if same(mean) and len(answered) > 1:
        return "this is the unweighted mean of the clients' models; FedAvg weights client k by its n_k samples"
    if same(by_steps) and len(answered) > 1:
        return "this weights clients by their steps; FedAvg weights client k by its n_k training samples"
    for i in range(len(trained)):
        if same(trained[i]):
            return (f"this is client {int(answered[i])}'s model alone: average the models of all answering "
                    "clients, each trained from w_t")
    return ("every answering client runs its steps of SGD (mean cross-entropy of each batch, step size lr) from "
            "w_t on its own batches, and the server returns sum_k n_k w_k / sum_k n_k")


def check_fedavg_round(fn, hidden: bool = False) -> str:
    """Check ``fn(model, params, clients, config, t)`` against one round of
    :func:`~collab_lib.parameter_based.federated.run_round` with :class:`FedAvg` and no codec.

    ``fn`` receives ``model``, an ``nn.Module`` to use as a template (its weights may be overwritten),
    ``params``, the global model w_t as a dict name -> tensor, ``clients``, a
    :class:`~collab_lib.datasets.users.UserDatasets` (client k holds ``clients.xs[k]``, ``clients.ys[k]``),
    a :class:`FedConfig` and the round index t. It returns w_{t+1} as a dict with the same names and shapes.
    The check compares with the library's round on federations of unequal clients, with stragglers dropped
    and doing partial work; ``hidden=True`` runs other federations, a round in which nobody answers and a
    model without a hidden layer.
    """
    cases = _fedavg_cases(hidden)
    forbidden = (run_round, federate, train_clients, local_update, local_update_batched, weighted_average,
                 FedAvg.aggregate)

    def call(model, params, clients, config, t):
        return learner_call(fn, copy.deepcopy(model), {n: w.clone() for n, w in params.items()}, clients, config,
                            t, forbidden=forbidden, name="my_fedavg_round")

    _, model, params, clients, config, t = cases[0]
    if call(model, params, clients, config, t) is None:
        return not_attempted("fill in my_fedavg_round above")
    for name, model, params, clients, config, t in cases:
        case = f"{name}, round {t}"
        out = call(model, params, clients, config, t)
        assert isinstance(out, Mapping), (
            f"{case}: my_fedavg_round returned a {type(out).__name__}, expected a dict name -> tensor")
        ref, trained, answered, steps = _fedavg_reference(model, params, clients, config, t)
        assert set(out) == set(ref), f"{case}: returned the names {sorted(out)}, expected {sorted(ref)}"
        got = {n: torch.from_numpy(as_shaped(out[n], n, case, tuple(r.shape))) for n, r in ref.items()}
        bad = [n for n in ref if not _close(got[n], ref[n])]
        if bad:
            n = bad[0]
            hint = _fedavg_mistake(got, params, trained, answered, steps, clients)
            raise AssertionError(f"{case} (clients {answered.tolist()} answered, steps {steps}): {n} is "
                                 f"{_show(got[n])}, expected {_show(ref[n])}; {hint}")
    which = "hidden" if hidden else "visible"
    return (f"correct: your round matches collab_lib's run_round with FedAvg on {len(cases)} {which} federations "
            "of unequal clients, stragglers dropped and doing partial work")


# --- Personalization lab: Ditto's personal training of one user ---------------------------------------------


def _ditto_cases(hidden: bool) -> list[tuple[str, nn.Module, Params, torch.Tensor, torch.Tensor, PersonalConfig, int]]:
    """(name, model, w*, x, y, config, user index k): one user's samples, float64, λ from 0 to ∞."""
    g = generator(41 if hidden else 29)
    rng = np.random.default_rng(41 if hidden else 29)
    specs = ([(6, 5, 17, 2, 4, 0.1, 0.0), (6, 5, 17, 2, 4, 0.1, 0.5), (4, 0, 9, 3, 3, 0.2, 5.0)] if not hidden else
             [(5, 4, 12, 2, 5, 0.1, math.inf), (7, 3, 23, 1, 6, 0.05, 0.1), (3, 0, 4, 3, 10, 0.3, 2.0),
              (6, 6, 30, 2, 7, 0.5, 20.0)])
    cases = []
    for d, hidden_units, n, epochs, batch, lr, lam in specs:
        model = mlp(d, hidden_units, 3, seed=int(rng.integers(0, 100))).double()
        w = {name: p + 0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64)
             for name, p in get_params(model).items()}
        x = torch.randn(n, d, generator=g, dtype=torch.float64)
        y = torch.from_numpy(rng.integers(0, 3, size=n))
        config = PersonalConfig(epochs=epochs, batch_size=batch, lr=lr, lam=lam, seed=int(rng.integers(0, 1000)))
        k = int(rng.integers(0, 50))
        cases.append((f"user {k}: {n} samples, E={epochs}, B={batch}, lr={lr}, λ={lam:g}, "
                      f"{'no hidden layer' if hidden_units == 0 else f'{hidden_units} hidden units'}",
                      model, w, x, y, config, k))
    return cases


def _ditto_reference(model: nn.Module, w: Params, x: torch.Tensor, y: torch.Tensor, config: PersonalConfig,
                     k: int, epochs: int | None = None, lam: float | None = None, gradient_prox: bool = False) -> Params:
    """User k's Ditto model from the library's batched trainer; the keywords give common mistakes."""
    epochs = config.epochs if epochs is None else epochs
    lam = config.lam if lam is None else lam
    n = len(y)
    batches = [client_batches(n, config.batch_size, full_steps(n, config.batch_size, epochs), config.seed, 0, k)]
    if not gradient_prox:
        out = sgd_per_user(model, stack(w, 1), [x], [y], batches, config.lr, anchor=w, lam=lam)
        return {name: p[0] for name, p in out.items()}
    v = {name: p.clone() for name, p in w.items()}                        # SGD through the prox term's gradient
    for idx in batches[0]:
        leaves = {name: p.clone().requires_grad_(True) for name, p in v.items()}
        loss = F.cross_entropy(functional_call(model, leaves, (x[idx],)), y[idx])
        grads = torch.autograd.grad(loss, list(leaves.values()))
        v = {name: (p - config.lr * (gr + lam * (p - w[name]))).detach()
             for (name, p), gr in zip(v.items(), grads)}
    return v


def check_ditto_personal(fn, hidden: bool = False) -> str:
    """Check ``fn(model, w_global, x, y, config, k)`` against :func:`~collab_lib.parameter_based.personalize.ditto`
    for one user.

    ``fn`` receives ``model``, an ``nn.Module`` to use as a template (its weights may be overwritten), the
    global parameters w* as a dict name -> tensor, user k's inputs ``x`` ``(n, d)`` and labels ``y`` ``(n,)``,
    a :class:`~collab_lib.parameter_based.personalize.PersonalConfig` (E, B, η, λ, seed) and the user's index
    ``k``. It returns the personal parameters v_k, a dict like w*: from v = w*, one step per minibatch of
    ``client_batches(n, B, full_steps(n, B, E), seed, 0, k)``, each a proximal-gradient step
    v <- (v - η ∇F_k(v) + ηλ w*) / (1 + ηλ) with ∇F_k the gradient of the batch's mean cross-entropy (λ = ∞:
    v = w*). ``hidden=True`` runs other users, λ = ∞, a user with fewer samples than a batch and a model
    without a hidden layer.
    """
    cases = _ditto_cases(hidden)
    forbidden = (ditto, sgd_per_user, ditto_step, fine_tune_per_user)

    def call(model, w, x, y, config, k):
        return learner_call(fn, copy.deepcopy(model), {n: p.clone() for n, p in w.items()}, x.clone(), y.clone(),
                            config, k, forbidden=forbidden, name="my_ditto_personal")

    _, model, w, x, y, config, k = cases[0]
    if call(model, w, x, y, config, k) is None:
        return not_attempted("fill in my_ditto_personal above")
    for name, model, w, x, y, config, k in cases:
        out = call(model, w, x, y, config, k)
        assert isinstance(out, Mapping), (
            f"{name}: my_ditto_personal returned a {type(out).__name__}, expected a dict name -> tensor")
        ref = _ditto_reference(model, w, x, y, config, k)
        assert set(out) == set(ref), f"{name}: returned the names {sorted(out)}, expected {sorted(ref)}"
        got = {n: torch.from_numpy(as_shaped(out[n], n, name, tuple(r.shape))) for n, r in ref.items()}
        bad = [n for n in ref if not _close(got[n], ref[n])]
        if not bad:
            continue

        def same(other: Params) -> bool:
            return all(_close(got[n], other[n]) for n in ref)

        if any(torch.isnan(t).any() for t in got.values()):
            hint = "NaN: with λ = ∞ the personal model is w* itself (the formula gives ∞/∞)"
        elif same(w):
            hint = "this is w* itself: the user trains v from w* over its batches"
        elif config.lam > 0 and same(_ditto_reference(model, w, x, y, config, k, lam=0.0)):
            hint = "this is plain fine-tuning (λ ignored): every step also pulls v towards w*"
        elif math.isfinite(config.lam) and same(_ditto_reference(model, w, x, y, config, k, gradient_prox=True)):
            hint = ("this is a gradient step on the proximal term; Ditto's step here takes it exactly: "
                    "(v - η g + ηλ w*) / (1 + ηλ)")
        elif config.epochs > 1 and same(_ditto_reference(model, w, x, y, config, k, epochs=1)):
            hint = "this is one epoch; the user runs E epochs (E ceil(n / B) steps)"
        else:
            hint = ("from v = w*, one step per batch of client_batches(n, B, E ceil(n / B), seed, 0, k): "
                    "v <- (v - η g + ηλ w*) / (1 + ηλ), g the gradient of the batch's mean cross-entropy at v")
        n = bad[0]
        raise AssertionError(f"{name}: {n} is {_show(got[n])}, expected {_show(ref[n])}; {hint}")
    lams = ", ".join(f"{c[5].lam:g}" for c in cases)
    which = "hidden" if hidden else "visible"
    return f"correct: your personal training matches collab_lib's ditto on {len(cases)} {which} users, λ = {lams}"
