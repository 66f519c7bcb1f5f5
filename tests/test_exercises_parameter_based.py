"""Chapter 6's lab checks accept independent references, say "not attempted" for None and reject wrong answers."""

import math

import numpy as np
import pytest
import torch

from collab_lib.exercises import parameter_based as checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# --- Top-k with error feedback ---------------------------------------------------------------------------------


def plain_topk_with_feedback(update, residual, k, signed=False, forget_residual=False, ignore_residual=False):
    """Top-k with error feedback on plain Python lists; the flags are wrong answers."""
    acc = [a + b for a, b in zip(update.tolist(), residual.tolist())]
    chosen = update.tolist() if ignore_residual else acc
    key = (lambda i: -chosen[i]) if signed else (lambda i: -abs(chosen[i]))
    keep = set(sorted(range(len(acc)), key=key)[:k])
    sent = [chosen[i] if i in keep else 0.0 for i in range(len(acc))]
    owed = update.tolist() if forget_residual else acc
    return sent, [a - b for a, b in zip(owed, sent)]


@pytest.mark.parametrize("hidden", [False, True])
def test_topk_check(hidden):
    assert checks.check_topk_with_feedback(plain_topk_with_feedback, hidden=hidden).startswith("correct")
    assert checks.check_topk_with_feedback(lambda u, r, k: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="round 1: sent .* update alone"):
        checks.check_topk_with_feedback(
            lambda u, r, k: plain_topk_with_feedback(u, r, k, ignore_residual=True), hidden=hidden)
    with pytest.raises(AssertionError, match="round 1: new_residual .* dropped the old residual"):
        checks.check_topk_with_feedback(
            lambda u, r, k: plain_topk_with_feedback(u, r, k, forget_residual=True), hidden=hidden)
    with pytest.raises(AssertionError, match=r"round \d: sent is nonzero .*largest \*signed\* values"):
        checks.check_topk_with_feedback(lambda u, r, k: plain_topk_with_feedback(u, r, k, signed=True),
                                        hidden=hidden)


def test_topk_check_hidden_cases_catch_an_answer_fitted_to_the_visible_ones():
    def fitted(update, residual, k):  # right only for the visible cases' k >= 3
        return plain_topk_with_feedback(update, residual, max(k, 3))

    assert checks.check_topk_with_feedback(fitted).startswith("correct")
    with pytest.raises(AssertionError, match="k=1"):
        checks.check_topk_with_feedback(fitted, hidden=True)


def test_topk_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.parameter_based.compress import top_k

    def wraps_top_k(update, residual, k):
        sent = top_k(update + residual, k)
        return sent, update + residual - sent

    with pytest.raises(AssertionError, match="calls the library's .*top_k"):
        checks.check_topk_with_feedback(wraps_top_k)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_topk_with_feedback(lambda u, r, k: None)


def test_topk_check_accepts_torch_and_numpy_answers():
    def torch_version(update, residual, k):
        acc = update + residual
        keep = acc.abs().topk(k).indices
        sent = torch.zeros_like(acc).index_put((keep,), acc[keep])
        return sent, acc - sent

    def numpy_version(update, residual, k):
        acc = (update + residual).numpy()
        sent = np.where(np.abs(acc) >= np.sort(np.abs(acc))[-k], acc, 0.0)
        return sent, acc - sent

    assert checks.check_topk_with_feedback(torch_version).startswith("correct")
    assert checks.check_topk_with_feedback(numpy_version).startswith("correct")


def test_topk_check_rejects_a_sparse_answer_and_a_single_tensor():
    def sparse(update, residual, k):
        acc = update + residual
        keep = acc.abs().topk(k).indices
        return acc[keep], acc
    with pytest.raises(AssertionError, match=r"sent: got shape \(3,\), expected \(20,\) \(dense"):
        checks.check_topk_with_feedback(sparse)
    with pytest.raises(AssertionError, match="expected a pair"):
        checks.check_topk_with_feedback(lambda u, r, k: plain_topk_with_feedback(u, r, k)[0])
    with pytest.raises(AssertionError, match="new_residual: got a NoneType"):
        checks.check_topk_with_feedback(lambda u, r, k: (plain_topk_with_feedback(u, r, k)[0], None))


# --- The uplink over rounds: residuals per client and bytes ---------------------------------------------------


def plain_uplink(rounds, fraction, reset=False, shared=False, per_tensor=False, value_bytes=8, per_client=False,
                 round_k=math.ceil):
    """Top-k with error feedback over rounds on plain Python lists; the flags are wrong answers."""
    residuals = {}
    out = []
    for ids, deltas in rounds:
        names = list(deltas)
        received = {n: torch.zeros_like(d) for n, d in deltas.items()}
        total = 0
        for i, client in enumerate(ids.tolist()):
            key = "all" if shared else client
            sizes = [deltas[n][i].numel() for n in names]
            flat = [v for n in names for v in deltas[n][i].reshape(-1).tolist()]
            old = [0.0] * len(flat) if reset else residuals.get(key, [0.0] * len(flat))
            acc = [a + b for a, b in zip(flat, old)]
            groups = [range(sum(sizes[:j]), sum(sizes[:j + 1])) for j in range(len(sizes))] if per_tensor else [
                range(len(acc))]
            keep = set()
            for g in groups:
                k = round_k(fraction * len(g))
                keep |= set(sorted(g, key=lambda j: -abs(acc[j]))[:k])
            sent = [acc[j] if j in keep else 0.0 for j in range(len(acc))]
            residuals[key] = [a - b for a, b in zip(acc, sent)]
            start = 0
            for n, m in zip(names, sizes):
                received[n][i] = torch.tensor(sent[start:start + m]).reshape(deltas[n][i].shape)
                start += m
            nbytes = len(keep) * value_bytes
            total = nbytes if per_client else total + nbytes
        out.append((received, total))
    return out


@pytest.mark.parametrize("hidden", [False, True])
def test_uplink_check(hidden):
    assert checks.check_topk_uplink(plain_uplink, hidden=hidden).startswith("correct")
    assert checks.check_topk_uplink(lambda r, f: None, hidden=hidden).startswith("not attempted yet")
    for flags, message in ((dict(reset=True), "persists across the rounds"),
                           (dict(shared=True), "its own residual"),
                           (dict(per_tensor=True), "not a top-k per tensor"),
                           (dict(value_bytes=4), "4-byte index"),
                           (dict(per_client=True), "round's total")):
        with pytest.raises(AssertionError, match=message):
            checks.check_topk_uplink(lambda r, f: plain_uplink(r, f, **flags), hidden=hidden)


def test_uplink_check_names_a_rounded_down_k_and_wrong_types():
    with pytest.raises(AssertionError, match="rounded up"):
        checks.check_topk_uplink(lambda r, f: plain_uplink(r, f, round_k=math.floor))
    with pytest.raises(AssertionError, match="expected a list of 6 pairs"):
        checks.check_topk_uplink(lambda r, f: plain_uplink(r, f)[0])
    with pytest.raises(AssertionError, match="expected a dict"):
        checks.check_topk_uplink(lambda r, f: [(b, a) for a, b in plain_uplink(r, f)])


def test_uplink_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.parameter_based.compress import CompressionConfig, Compressor

    def via_compressor(rounds, fraction):
        codec = Compressor(CompressionConfig(up_top_fraction=fraction, error_feedback=True))
        return [codec.uplink(t, ids, deltas) for t, (ids, deltas) in enumerate(rounds)]

    with pytest.raises(AssertionError, match="calls the library's .*Compressor.uplink"):
        checks.check_topk_uplink(via_compressor)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_topk_uplink(lambda r, f: None, hidden=True)


# --- Who takes part in a round, and one FedAvg round ------------------------------------------------------


def numpy_plan(config, sizes, t, keep_stragglers=False, floor_steps=False, unsorted=False, all_full=False):
    """The round's draws in plain numpy, in the documented order; the flags are wrong answers."""
    rng = np.random.default_rng([config.seed, 0, t])
    m = max(1, round(config.client_fraction * len(sizes)))
    sampled = rng.choice(len(sizes), size=m, replace=False)
    if not unsorted:
        sampled = np.sort(sampled)
    alive = rng.random(m) >= config.dropout_prob
    late = np.zeros(m, dtype=bool)
    late[rng.permutation(m)[: round(config.straggler_fraction * m)]] = True
    per_epoch = sizes[sampled] // config.batch_size if floor_steps else -(-sizes[sampled] // config.batch_size)
    full = config.local_epochs * per_epoch
    partial = np.array([rng.integers(1, f + 1) for f in np.maximum(full, 1)])
    keep = alive & ~late if config.stragglers == "drop" and not keep_stragglers else alive
    steps = full if all_full else np.where(late, partial, full)
    return sampled[keep], steps[keep]


@pytest.mark.parametrize("hidden", [False, True])
def test_plan_round_check(hidden):
    assert checks.check_plan_round(numpy_plan, hidden=hidden).startswith("correct")
    assert checks.check_plan_round(lambda c, s, t: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="drop.* left out of the round"):
        checks.check_plan_round(lambda c, s, t: numpy_plan(c, s, t, keep_stragglers=True), hidden=hidden)
    with pytest.raises(AssertionError, match=r"ceil\(n_k / B\)"):
        checks.check_plan_round(lambda c, s, t: numpy_plan(c, s, t, floor_steps=True), hidden=hidden)
    with pytest.raises(AssertionError, match="increasing order"):
        checks.check_plan_round(lambda c, s, t: numpy_plan(c, s, t, unsorted=True), hidden=hidden)
    with pytest.raises(AssertionError, match="uniform number of steps"):
        checks.check_plan_round(lambda c, s, t: numpy_plan(c, s, t, all_full=True), hidden=hidden)


def test_plan_round_check_hidden_cases_catch_a_hard_coded_answer():
    visible = {(c.seed, t): numpy_plan(c, s, t) for _, c, s, t in checks._plan_cases(hidden=False)}

    def hard_coded(config, sizes, t):
        return visible.get((config.seed, t), (np.array([0]), np.array([1])))

    assert checks.check_plan_round(hard_coded).startswith("correct")
    with pytest.raises(AssertionError, match="expected"):
        checks.check_plan_round(hard_coded, hidden=True)


def test_plan_round_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.parameter_based.federated import plan_round

    with pytest.raises(AssertionError, match="calls the library's .*plan_round"):
        checks.check_plan_round(lambda c, s, t: (plan_round(c, s, t).answered, plan_round(c, s, t).steps))
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_plan_round(lambda c, s, t: None, hidden=True)


def plain_fedavg_round(model, params, clients, config, t, weights="samples", chain=False):
    """One FedAvg round by hand: the library's plan and batches, SGD written with torch.autograd.grad on the
    parameters as leaves, the average as a Python sum. ``weights`` and ``chain`` give wrong answers."""
    from collab_lib.parameter_based.federated import client_batches, plan_round

    plan = plan_round(config, clients.sizes.numpy(), t)
    if len(plan.answered) == 0:
        return params
    names = [n for n, _ in model.named_parameters()]
    start = {n: w.clone() for n, w in params.items()}
    models, n_k = [], []
    for k, steps in zip(plan.answered.tolist(), plan.steps.tolist()):
        w = {n: v.clone().requires_grad_(True) for n, v in start.items()}
        x, y = clients.xs[k], clients.ys[k]
        for idx in client_batches(len(y), config.batch_size, steps, config.seed, t, k):
            logits = torch.func.functional_call(model, w, (x[idx],))
            loss = -torch.log_softmax(logits, dim=1)[torch.arange(len(idx)), y[idx]].mean()
            grads = torch.autograd.grad(loss, [w[n] for n in names])
            w = {n: (w[n] - config.lr * g).detach().requires_grad_(True) for n, g in zip(names, grads)}
        models.append({n: v.detach() for n, v in w.items()})
        n_k.append(len(y) if weights == "samples" else steps if weights == "steps" else 1)
        if chain:
            start = models[-1]
    return {n: sum(a * m[n] for a, m in zip(n_k, models)) / sum(n_k) for n in names}


@pytest.mark.parametrize("hidden", [False, True])
def test_fedavg_round_check(hidden):
    assert checks.check_fedavg_round(plain_fedavg_round, hidden=hidden).startswith("correct")
    assert checks.check_fedavg_round(lambda *a: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="unweighted mean"):
        checks.check_fedavg_round(lambda *a: plain_fedavg_round(*a, weights="one"), hidden=hidden)
    with pytest.raises(AssertionError, match="weights clients by their steps"):
        checks.check_fedavg_round(lambda *a: plain_fedavg_round(*a, weights="steps"), hidden=hidden)
    with pytest.raises(AssertionError, match="each trained from w_t|sum_k n_k w_k"):
        checks.check_fedavg_round(lambda *a: plain_fedavg_round(*a, chain=True), hidden=hidden)
    with pytest.raises(AssertionError, match="w_t itself"):
        checks.check_fedavg_round(lambda model, params, *a: params, hidden=hidden)


def test_fedavg_round_check_hidden_cases_include_a_round_nobody_answers():
    def no_fallback(model, params, clients, config, t):
        out = plain_fedavg_round(model, params, clients, config, t)
        return {n: w + 1.0 for n, w in out.items()} if out is params else out

    assert checks.check_fedavg_round(no_fallback).startswith("correct")
    with pytest.raises(AssertionError, match="nobody answers|keeps w_t"):
        checks.check_fedavg_round(no_fallback, hidden=True)


def test_fedavg_round_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.parameter_based.aggregate import weighted_average
    from collab_lib.parameter_based.federated import FedConfig, federate

    def via_federate(model, params, clients, config, t):
        return federate(model, clients, FedConfig(rounds=1)).params

    def via_weighted_average(model, params, clients, config, t):
        out = plain_fedavg_round(model, params, clients, config, t)
        return weighted_average({n: w[None] for n, w in out.items()}, torch.ones(1))

    for cheat, name in ((via_federate, "federate"), (via_weighted_average, "weighted_average")):
        with pytest.raises(AssertionError, match=f"calls the library's .*{name}"):
            checks.check_fedavg_round(cheat)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_fedavg_round(lambda *a: None)


# --- Ditto's personal training of one user ------------------------------------------------------------------


def plain_ditto(model, w_global, x, y, config, k, gradient_prox=False, ignore_lam=False, one_epoch=False):
    """Ditto for one user with torch.autograd.grad on the parameters as leaves; the flags are wrong answers."""
    import math

    from collab_lib.parameter_based.federated import client_batches

    if math.isinf(config.lam) and not gradient_prox:
        return {n: w.clone() for n, w in w_global.items()}
    n, B = len(y), config.batch_size
    epochs = 1 if one_epoch else config.epochs
    lam, eta = (0.0 if ignore_lam else config.lam), config.lr
    names = [name for name, _ in model.named_parameters()]
    v = {name: w.clone() for name, w in w_global.items()}
    for idx in client_batches(n, B, epochs * -(-n // B), config.seed, 0, k):
        leaves = {name: t.clone().requires_grad_(True) for name, t in v.items()}
        logits = torch.func.functional_call(model, leaves, (x[idx],))
        loss = -torch.log_softmax(logits, dim=1)[torch.arange(len(idx)), y[idx]].mean()
        grads = dict(zip(names, torch.autograd.grad(loss, [leaves[name] for name in names])))
        for name in names:
            g, w = grads[name], w_global[name]
            if gradient_prox:
                v[name] = v[name] - eta * (g + lam * (v[name] - w))
            else:  # argmin_u |u - (v - eta g)|^2 / (2 eta) + lam/2 |u - w|^2, solved around w
                v[name] = w + (v[name] - eta * g - w) / (1 + eta * lam)
    return v


@pytest.mark.parametrize("hidden", [False, True])
def test_ditto_check(hidden):
    assert checks.check_ditto_personal(plain_ditto, hidden=hidden).startswith("correct")
    assert checks.check_ditto_personal(lambda *a: None, hidden=hidden).startswith("not attempted yet")
    with pytest.raises(AssertionError, match="plain fine-tuning"):
        checks.check_ditto_personal(lambda *a: plain_ditto(*a, ignore_lam=True), hidden=hidden)
    with pytest.raises(AssertionError, match="one epoch"):
        checks.check_ditto_personal(lambda *a: plain_ditto(*a, one_epoch=True), hidden=hidden)
    with pytest.raises(AssertionError, match="w\\* itself"):
        checks.check_ditto_personal(lambda model, w, *a: w, hidden=hidden)


def test_ditto_check_names_a_gradient_step_on_the_prox_term_and_a_nan_at_infinity():
    with pytest.raises(AssertionError, match="gradient step on the proximal term"):
        checks.check_ditto_personal(lambda *a: plain_ditto(*a, gradient_prox=True))
    with pytest.raises(AssertionError, match="λ=inf.*NaN"):
        checks.check_ditto_personal(lambda *a: plain_ditto(*a, gradient_prox=True), hidden=True)


def test_ditto_check_grades_a_blank_and_rejects_the_library(monkeypatch):
    from collab_lib.datasets.users import UserDatasets
    from collab_lib.parameter_based.personalize import ditto, ditto_step

    def via_ditto(model, w, x, y, config, k):
        return {n: p[0] for n, p in ditto(model, w, UserDatasets((x,), (y,), ("u",)), config).items()}

    def via_ditto_step(model, w, x, y, config, k):
        out = plain_ditto(model, w, x, y, config, k)
        return {n: ditto_step(p, torch.zeros_like(p), p, 1.0, 0.0) for n, p in out.items()}

    for cheat, name in ((via_ditto, "ditto"), (via_ditto_step, "ditto_step")):
        with pytest.raises(AssertionError, match=f"calls the library's .*{name}"):
            checks.check_ditto_personal(cheat)
    monkeypatch.setenv("COLLAB_GRADING", "1")
    with pytest.raises(AssertionError, match="scores 0"):
        checks.check_ditto_personal(lambda *a: None, hidden=True)


# --- The labs: their worked solutions pass, their grading cases fail -----------------------------------------

LABS = {"federated_learning": ("my_plan_round", "my_fedavg_round"),
        "compression": ("my_topk_with_feedback", "my_topk_uplink"),
        "personalization": ("my_ditto_personal",)}


def lab_solutions(stem):
    """The namespace of the lab's worked solutions of its fill-ins (the ```python blocks that define my_*)."""
    import json
    import re
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[1] / "labs" / "06_parameter_based" / f"{stem}.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    namespace = {"np": np, "torch": torch, "math": math}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if re.search(r"^def my_\w+", block, re.M):
            exec(block, namespace)
    return namespace


@pytest.mark.parametrize("stem", sorted(LABS))
@pytest.mark.parametrize("hidden", [False, True])
def test_a_labs_worked_solutions_pass_its_checks(stem, hidden):
    namespace = lab_solutions(stem)
    for name in LABS[stem]:
        check = getattr(checks, "check_" + name.removeprefix("my_"))
        assert check(namespace[name], hidden=hidden).startswith("correct")


@pytest.mark.parametrize("stem", sorted(LABS))
@pytest.mark.parametrize("kind", ["WRONG", "CHEAT"])
def test_a_labs_grading_cases_fail_its_checks(stem, kind):
    import importlib

    cases = getattr(importlib.import_module(f"tests.grading_cases.{stem}"), kind)
    assert set(cases) == set(LABS[stem])
    for name, source in cases.items():
        namespace = {}
        exec(source, namespace)
        check = getattr(checks, "check_" + name.removeprefix("my_"))
        for hidden in (False, True):
            with pytest.raises(AssertionError, match="calls the library's" if kind == "CHEAT" else "expected"):
                check(namespace[name], hidden=hidden)
