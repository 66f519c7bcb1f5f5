"""Check functions of the chapter 4 labs: each tests a learner's function against the library's.

A check returns a "not attempted yet" message when the learner's function returns ``None`` (an
``AssertionError`` when grading, :func:`~collab_lib.exercises.grading.not_attempted`), raises
``AssertionError`` with a message naming the case that fails, and returns a "correct" message otherwise.
Every call of the learner's function goes through :func:`~collab_lib.exercises.grading.learner_call`, so an
answer that calls the library function it is asked to write fails. ``hidden=True`` runs other cases than
the visible ones (other seeds and sizes, and edge cases), as an instructor's hidden test does.

The cases are seeded random points, logits or weights, so a check is deterministic; distances have no ties,
so the order of an answer is fully defined.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from collab_lib.data_based.augment import Descriptor, describe, kmeans, retrieve_nearest
from collab_lib.data_based.distill import distillation_loss, soft_target_loss, train_student
from collab_lib.data_based.upload import select, select_diverse
from collab_lib.exercises.answers import as_array, as_number, as_shaped
from collab_lib.exercises.grading import learner_call, not_attempted
from collab_lib.seed import generator


def _indices(got, name: str, case: str) -> np.ndarray:
    """The learner's answer (list, numpy array or tensor) as a 1-d int64 numpy array."""
    arr = as_array(got, name, case, "a 1-d array of indices")
    assert arr.ndim == 1, f"{case}: {name}: got shape {arr.shape}, expected a 1-d array of indices"
    assert arr.size == 0 or np.issubdtype(arr.dtype, np.integer), (
        f"{case}: {name}: got {arr.dtype} values, expected integer indices")
    return arr.astype(np.int64)


# --- cloud_augmentation: retrieve the nearest pool samples ---------------------------------------------


def _nearest_cases(hidden: bool) -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """(name, (P, d) pool features, (k, d) centroids, m) for seeded pools of different sizes.

    The hidden cases add a one-sample pool, 1-d features, centroids a hair from pool samples
    and more centroids than retrieved samples.
    """
    rng = np.random.default_rng(41 if hidden else 4)
    sizes = ((1, 3, 1, 1), (25, 1, 4, 7), (50, 6, 12, 4), (90, 20, 2, 89)) if hidden else \
        ((12, 2, 1, 3), (40, 3, 2, 5), (60, 8, 5, 20), (100, 16, 3, 100))
    cases = []
    for p, d, k, m in sizes:
        pool = torch.from_numpy(rng.normal(size=(p, d))).double()
        centroids = torch.from_numpy(rng.normal(size=(k, d))).double()
        if hidden and k > 2:
            near = pool[rng.choice(p, 2, replace=False)]                    # two centroids next to pool samples
            centroids[:2] = near + torch.tensor([[0.01], [0.03]]).double() * torch.from_numpy(
                rng.normal(size=near.shape))
        cases.append((f"pool of {p} sample(s) in {d}-d, {k} centroid(s), m={m}", pool, centroids, m))
    return cases


def check_retrieve_nearest(fn, hidden: bool = False) -> str:
    """Check ``fn(pool_features, centroids, m)`` against :func:`~collab_lib.data_based.augment.retrieve_nearest`.

    ``fn`` receives ``pool_features`` of shape ``(P, d)``, ``centroids`` of shape ``(k, d)`` and an int
    ``m <= P``, and returns the ``(m,)`` indices of the pool samples with the smallest distance to their
    nearest centroid, nearest first.
    """
    cases = _nearest_cases(hidden)
    call = lambda *args: learner_call(fn, *args, forbidden=(retrieve_nearest,),  # noqa: E731
                                      name="my_retrieve_nearest")
    name, pool, centroids, m = cases[0]
    if call(pool.clone(), centroids.clone(), m) is None:
        return not_attempted("fill in my_retrieve_nearest above")
    for name, pool, centroids, m in cases:
        got = _indices(call(pool.clone(), centroids.clone(), m), "my_retrieve_nearest", name)
        ref = retrieve_nearest(pool, Descriptor(centroids), m).numpy()
        assert got.shape == ref.shape, f"{name}: {len(got)} indices, expected m={m}"
        if not np.array_equal(got, ref):
            if set(got.tolist()) == set(ref.tolist()):
                raise AssertionError(f"{name}: the right samples in the wrong order; got {got.tolist()}, "
                                     f"expected {ref.tolist()} (nearest first)")
            missing = sorted(set(ref.tolist()) - set(got.tolist()))
            raise AssertionError(f"{name}: got {got.tolist()}, expected {ref.tolist()}; sample(s) {missing} "
                                 "are among the m nearest and missing (a sample's distance is the distance to "
                                 "its *nearest* centroid, and the smallest distances are kept)")
    if hidden:
        return ("correct: your retrieval matches retrieve_nearest on the hidden pools (a one-sample pool, 1-d "
                "features, centroids next to pool samples, more centroids than retrieved samples)")
    return ("correct: your retrieval matches retrieve_nearest on four seeded pools, from one centroid to "
            "five and from m=3 to the whole pool")


# --- cloud_augmentation: the device's k-means descriptor -----------------------------------------------


def _kmeans_cases(hidden: bool) -> list[tuple[str, torch.Tensor, int, int, int]]:
    """(name, (N, d) local features, k, seed, iters) for seeded blobs.

    Points are drawn around a few blob centres, so Lloyd's rounds take several steps to settle. The hidden
    cases add an iteration cap that stops before convergence (the assignment returned is then the last
    round's), k = 1, k = N, and points with duplicates, where two initial centroids coincide and one of them
    loses all its points (it must keep its position).
    """
    rng = np.random.default_rng(77 if hidden else 7)
    cases = []

    def blobs(n, d, centres, spread):
        c = rng.normal(scale=3.0, size=(centres, d))
        return torch.from_numpy(c[rng.integers(0, centres, n)] + rng.normal(scale=spread, size=(n, d))).double()

    if not hidden:
        for n, d, k, seed in ((20, 2, 3, 0), (40, 5, 4, 1), (60, 64, 5, 2)):
            cases.append((f"{n} points in {d}-d, k={k}, seed={seed}", blobs(n, d, k, 1.0), k, seed, 50))
        return cases
    cases.append(("30 points in 3-d, k=4, stopped after 1 round", blobs(30, 3, 3, 1.5), 4, 5, 1))
    cases.append(("30 points in 3-d, k=4, stopped after 2 rounds", blobs(30, 3, 3, 1.5), 4, 6, 2))
    cases.append(("15 points in 2-d, k=1", blobs(15, 2, 2, 1.0), 1, 3, 50))
    cases.append(("8 points in 4-d, k=8 (every point its own centroid)", blobs(8, 4, 2, 1.0), 8, 4, 50))
    base = torch.from_numpy(rng.normal(size=(3, 2))).double()
    dup = base[torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])]               # 3 distinct points, 10 rows
    for seed in range(20):                                                   # a seed whose 4 picks repeat a point
        init = dup[torch.randperm(len(dup), generator=generator(seed))[:4]]
        if len(torch.unique(init, dim=0)) < 4:
            break
    cases.append((f"10 points with duplicates, k=4, seed={seed} (a centroid loses all its points)",
                  dup, 4, seed, 50))
    return cases


def _kmeans_init(x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """The library's initial centroids: k distinct rows of ``x`` drawn from ``seed`` (see ``kmeans``)."""
    return x[torch.randperm(len(x), generator=generator(seed))[:k]].clone()


def check_kmeans(fn, hidden: bool = False) -> str:
    """Check ``fn(x, init_centroids, iters)`` against :func:`~collab_lib.data_based.augment.kmeans`.

    ``fn`` receives ``x`` of shape ``(N, d)``, ``init_centroids`` of shape ``(k, d)`` (the library's
    initial centroids, k rows of ``x``) and an int ``iters``, runs Lloyd's rounds and returns the pair
    ``(centroids, assign)``: the final ``(k, d)`` centroids and the ``(N,)`` index of each point's centroid in
    the last round. Centroids must agree within 1e-6; the assignment exactly.
    """
    cases = _kmeans_cases(hidden)
    call = lambda *args: learner_call(fn, *args, forbidden=(kmeans, describe), name="my_kmeans")  # noqa: E731
    name, x, k, seed, iters = cases[0]
    if call(x.clone(), _kmeans_init(x, k, seed), iters) is None:
        return not_attempted("fill in my_kmeans above")
    for name, x, k, seed, iters in cases:
        got = call(x.clone(), _kmeans_init(x, k, seed), iters)
        assert isinstance(got, (tuple, list)) and len(got) == 2, (
            f"{name}: my_kmeans: got a {type(got).__name__}, expected a pair (centroids, assign)")
        ref_c, ref_a = kmeans(x, k, seed, iters=iters)
        c = as_shaped(got[0], "my_kmeans centroids", name, (k, x.shape[1]))
        a = _indices(got[1], "my_kmeans assign", name)
        if np.isnan(c).any():
            raise AssertionError(f"{name}: NaN centroids: a centroid that loses all its points keeps its "
                                 "position (the mean of no points is NaN)")
        assert a.shape == (len(x),), f"{name}: assign has {len(a)} entries, expected one per point ({len(x)})"
        ref_c = ref_c.double().numpy()
        if not np.allclose(c, ref_c, rtol=1e-6, atol=1e-6):
            j = int(np.abs(c - ref_c).max(axis=1).argmax())
            hint = ("; a round assigns every point to its nearest centroid, then moves each centroid to the mean "
                    "of its points; stop when the assignment no longer changes or after iters rounds")
            if iters < 5:
                hint += f" (here iters={iters}: exactly that many updates of the centroids)"
            raise AssertionError(f"{name}: centroid {j} is {np.round(c[j], 4).tolist()}, expected "
                                 f"{np.round(ref_c[j], 4).tolist()}{hint}")
        if not np.array_equal(a, ref_a.numpy()):
            bad = int(np.flatnonzero(a != ref_a.numpy())[0])
            raise AssertionError(f"{name}: point {bad} is assigned to centroid {a[bad]}, expected "
                                 f"{int(ref_a[bad])}; return the assignment of the last round, the one the "
                                 "final centroids are the means of")
    if hidden:
        return ("correct: your k-means matches the library's on the hidden cases (a cap on the rounds, k = 1, "
                "k = N, an empty cluster)")
    return "correct: your k-means matches the library's on three seeded sets of blobs, up to 64-d"


# --- distillation: Hinton et al.'s loss with labels ----------------------------------------------------


def _distill_cases(hidden: bool) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float, float]]:
    """(name, (N, C) student logits, (N, C) teacher logits, (N,) labels, T, alpha) for seeded logits.

    The teacher's logits are three times wider than the student's, as a confident teacher's are. In the
    first case the usual slips (no T^2, alpha on the wrong term, the hard term at temperature T, the KL the
    wrong way round, the cross-entropy for the KL) give different values, so the hint can name the slip.
    The hidden cases add one sample, two classes, alpha = 0 and 1, T = 0.25 and 20, and a student equal to
    its teacher.
    """
    g = generator(321 if hidden else 123)
    shapes = ((1, 2, 3.0, 0.7), (200, 10, 8.0, 0.5), (12, 5, 0.25, 0.2), (20, 10, 20.0, 1.0),
              (30, 4, 2.0, 0.0)) if hidden else \
        ((64, 10, 2.0, 0.3), (5, 3, 0.5, 0.5), (32, 10, 1.0, 0.9), (16, 100, 4.0, 0.6))
    cases = []
    for n, c, T, alpha in shapes:
        z_s, z_t = torch.randn(n, c, generator=g).double(), 3 * torch.randn(n, c, generator=g).double()
        y = torch.randint(0, c, (n,), generator=g)
        cases.append((f"{n} sample(s), {c} classes, T = {T:g}, alpha = {alpha:g}", z_s, z_t, y, T, alpha))
    z = 3 * torch.randn(6, 4, generator=g).double()
    y = torch.randint(0, 4, (6,), generator=g)
    cases.append(("student logits equal to the teacher's (6 samples, 4 classes, T = 3, alpha = 0.5)",
                  z.clone(), z, y, 3.0, 0.5))
    return cases


def _kl(z_s: torch.Tensor, z_t: torch.Tensor, T: float) -> torch.Tensor:
    """(N,) KL(softmax(z_t / T) || softmax(z_s / T)), in float64: the check's own reading of the terms."""
    log_q, log_p = (z_s.double() / T).log_softmax(-1), (z_t.double() / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _distill_hint(got: float, z_s, z_t, y, T: float, alpha: float) -> str:
    """A hint naming the slip whose value matches ``got`` (within 0.1%), or a reminder of the loss."""
    n, c = z_s.shape
    log_q, log_p = (z_s / T).log_softmax(-1), (z_t / T).log_softmax(-1)
    p, q = log_p.exp(), log_q.exp()
    kl = (p * (log_p - log_q)).sum(-1).mean().item()
    hard = F.cross_entropy(z_s, y).item()
    slips = {
        "the factor T^2 on the soft term is missing": alpha * kl + (1 - alpha) * hard,
        "alpha weighs the soft (teacher) term and 1 - alpha the hard labels, not the other way round":
            (1 - alpha) * T * T * kl + alpha * hard,
        "the hard-label term is the plain cross-entropy at T = 1; only the soft term is softened by T":
            alpha * T * T * kl + (1 - alpha) * F.cross_entropy(z_s / T, y).item(),
        "the KL divergence goes from the teacher to the student, KL(p_t || q_s), not KL(q_s || p_t)":
            alpha * T * T * (q * (log_q - log_p)).sum(-1).mean().item() + (1 - alpha) * hard,
        "that soft term is the cross-entropy H(p_t, q_s); subtract the teacher's entropy to get the KL":
            alpha * T * T * -(p * log_q).sum(-1).mean().item() + (1 - alpha) * hard,
        "the KL divergence is summed over the classes and averaged over the samples only (F.kl_div needs "
        "reduction='batchmean', not its default 'mean')": alpha * T * T * kl / c + (1 - alpha) * hard,
        "divide the student's logits by T as well as the teacher's": alpha * T * T * (
            p * (log_p - z_s.log_softmax(-1))).sum(-1).mean().item() + (1 - alpha) * hard,
    }
    hints = [hint for hint, value in slips.items() if abs(got - value) <= 1e-3 * max(1.0, abs(value))]
    return "; ".join(hints) if hints else (
        "the loss is alpha * T^2 * mean_i KL(p_t || q_s) + (1 - alpha) * mean_i CE(z_s, y), with p_t and q_s "
        "the softmax of the logits divided by T")


def check_distillation_loss(fn, hidden: bool = False) -> str:
    """Check ``fn(student_logits, teacher_logits, labels, T, alpha)`` against
    :func:`~collab_lib.data_based.distill.distillation_loss`.

    ``fn`` receives two ``(N, C)`` float tensors of logits, ``(N,)`` int64 labels, a float ``T > 0`` and a
    float ``alpha`` in [0, 1], and returns the scalar loss alpha * T^2 * mean KL(p_t || q_s) + (1 - alpha) *
    mean CE(z_s, y), as a python number, a numpy scalar or a one-element tensor, within a relative 1e-4. It
    may not call the library's ``distillation_loss`` or ``soft_target_loss``.
    """
    cases = _distill_cases(hidden)
    call = lambda *args: learner_call(fn, *args, forbidden=(distillation_loss, soft_target_loss),  # noqa: E731
                                      name="my_distillation_loss")
    name, z_s, z_t, y, T, alpha = cases[0]
    if call(z_s.clone(), z_t.clone(), y.clone(), T, alpha) is None:
        return not_attempted("fill in my_distillation_loss above")
    for name, z_s, z_t, y, T, alpha in cases:
        got = as_number(call(z_s.clone(), z_t.clone(), y.clone(), T, alpha), "my_distillation_loss", name,
                        "the loss, averaged over the samples")
        ref = distillation_loss(z_s, z_t, y, T, alpha).item()
        if not abs(got - ref) <= 1e-4 * max(1.0, abs(ref)):
            raise AssertionError(f"{name}: got {got:.6g}, expected {ref:.6g}; "
                                 + _distill_hint(got, z_s, z_t, y, T, alpha))
    if hidden:
        return ("correct: your loss matches distillation_loss on the hidden cases (one sample, two classes, "
                "alpha = 0 and 1, T from 0.25 to 20)")
    return ("correct: your loss matches distillation_loss on seeded logits at T = 0.5, 1, 2 and 4, with "
            "alpha from 0.3 to 0.9, and is the hard term alone when the student matches the teacher")


# --- distillation: one training step ---------------------------------------------------------------------


def _student(d: int, hidden_units: int, c: int, seed: int) -> nn.Module:
    """A seeded float64 student: a linear layer (``hidden_units=0``) or a two-layer perceptron."""
    g = generator(seed)
    layers = [nn.Linear(d, c)] if hidden_units == 0 else [nn.Linear(d, hidden_units), nn.ReLU(),
                                                          nn.Linear(hidden_units, c)]
    model = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g).double())
    return model


def _step_cases(hidden: bool) -> list[dict]:
    """Seeded students, batches and optimizers for one (or two) distillation steps.

    Each case's parameters hold stale gradients (as after a previous step), so a step that does not zero
    them first moves the wrong way. The hidden cases add a two-layer student, SGD with momentum and Adam
    (whose state a second step reuses), alpha = 0 and 1, and a transfer batch of another size.
    """
    g = generator(55 if hidden else 5)
    specs = ((6, 0, 3, 8, 12, 2.0, 0.4, "sgd", 1), (10, 0, 5, 4, 4, 4.0, 0.7, "sgd", 1)) if not hidden else (
        (8, 16, 4, 10, 30, 3.0, 0.5, "momentum", 2), (5, 8, 3, 6, 6, 1.0, 1.0, "adam", 2),
        (7, 0, 6, 5, 9, 8.0, 0.0, "sgd", 1), (4, 6, 10, 1, 3, 0.5, 0.6, "adam", 1))
    cases = []
    for k, (d, h, c, n_l, n_t, T, alpha, opt, steps) in enumerate(specs):
        cases.append(dict(
            name=f"{'linear' if h == 0 else f'{h}-hidden-unit'} student, {n_l} labelled + {n_t} transfer "
                 f"samples, {c} classes, T = {T:g}, alpha = {alpha:g}, {opt}, {steps} step(s)",
            student=_student(d, h, c, seed=100 + k + (50 if hidden else 0)),
            x_l=torch.randn(n_l, d, generator=g).double(), y_l=torch.randint(0, c, (n_l,), generator=g),
            x_t=torch.randn(n_t, d, generator=g).double(), z_t=3 * torch.randn(n_t, c, generator=g).double(),
            T=T, alpha=alpha, opt=opt, steps=steps))
    return cases


def _optimizer(kind: str, params) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1)
    if kind == "momentum":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9)
    return torch.optim.Adam(params, lr=0.01)


def _stale_grads(model: nn.Module, seed: int) -> None:
    g = generator(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g).double()


def _reference_step(student, optimizer, x_l, y_l, x_t, z_t, T, alpha, slip: str = "") -> float:
    """The inner step of :func:`~collab_lib.data_based.distill.train_student` (``targets="soft"``), or a
    named ``slip`` of it: the check's model answer and the wrong answers its hints recognise."""
    if slip != "no zero_grad":
        optimizer.zero_grad()
    hard = F.cross_entropy(student(x_l), y_l)
    z_s = student(x_l if slip == "labelled batch" else x_t)
    z_teacher = z_t[: len(x_l)] if slip == "labelled batch" else z_t
    soft = soft_target_loss(z_s, z_teacher, T) / (T * T if slip == "no T^2" else 1.0)
    loss = alpha * hard + (1 - alpha) * soft if slip == "alpha swapped" else (1 - alpha) * hard + alpha * soft
    loss.backward()
    optimizer.step()
    return loss.item()


def _params(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().double().flatten() for p in model.parameters()]).numpy()


def _run_step(case: dict, step_fn, slip: str | None = None) -> tuple[list, np.ndarray]:
    """Run ``case['steps']`` steps with ``step_fn`` (the learner's) or the reference (``slip`` not None)
    on a fresh copy of the case's student; (returned losses, final parameters)."""
    student = copy.deepcopy(case["student"])
    _stale_grads(student, seed=9)
    opt = _optimizer(case["opt"], student.parameters())
    losses = []
    for _ in range(case["steps"]):
        args = (student, opt, case["x_l"].clone(), case["y_l"].clone(), case["x_t"].clone(),
                case["z_t"].clone(), case["T"], case["alpha"])
        losses.append(step_fn(*args) if slip is None else _reference_step(*args, slip=slip))
        if slip is None and losses[-1] is None:
            break
        _stale_grads(student, seed=10 + len(losses))  # what a previous step leaves behind
    return losses, _params(student)


def check_distill_step(fn, hidden: bool = False) -> str:
    """Check ``fn(student, optimizer, x_labeled, y_labeled, x_transfer, z_teacher, T, alpha)``: one step of
    :func:`~collab_lib.data_based.distill.train_student` with soft targets.

    ``fn`` receives a student ``nn.Module``, its optimizer, a labelled batch ``x_labeled`` (B_l, d) with
    ``y_labeled`` (B_l,), a transfer batch ``x_transfer`` (B_t, d) with the teacher's logits ``z_teacher``
    (B_t, C), the temperature ``T`` and the weight ``alpha``. It updates the student in place with one
    optimizer step on (1 - alpha) * CE(labelled batch) + alpha * T^2 * KL(teacher || student) on the transfer
    batch, and returns the loss (a number) before the step. Parameters must agree within 1e-6.
    """
    cases = _step_cases(hidden)
    call = lambda *args: learner_call(fn, *args, forbidden=(train_student,), name="my_distill_step")  # noqa: E731
    first, _ = _run_step(cases[0], call)
    if first[0] is None:
        return not_attempted("fill in my_distill_step above")
    for case in cases:
        name = case["name"]
        got_losses, got = _run_step(case, call)
        ref_losses, ref = _run_step(case, None, slip="")
        if not np.allclose(got, ref, rtol=1e-6, atol=1e-9):
            start = _params(case["student"])
            if np.allclose(got, start, rtol=0, atol=1e-12):
                hint = "the parameters did not move: call loss.backward() and then optimizer.step()"
            else:
                hint = ("the update is not the reference's: zero the stale gradients before backward(), weigh "
                        "the hard term on the labelled batch by 1 - alpha and the soft term on the transfer "
                        "batch by alpha, and take one step of the optimizer you were given")
                for slip, text in (("no zero_grad", "the stale gradients of a previous step were not zeroed "
                                    "before backward() (call optimizer.zero_grad() first)"),
                                   ("no T^2", "the factor T^2 on the soft term is missing"),
                                   ("alpha swapped", "alpha weighs the soft term, 1 - alpha the hard one"),
                                   ("labelled batch", "the soft term belongs on the transfer batch")):
                    try:
                        if np.allclose(got, _run_step(case, None, slip=slip)[1], rtol=1e-6, atol=1e-9):
                            hint = text
                            break
                    except (RuntimeError, ValueError):  # a slip that does not apply to this case's shapes
                        continue
            raise AssertionError(f"{name}: the student's parameters after the step differ from the reference "
                                 f"by up to {np.abs(got - ref).max():.3g}; {hint}")
        for i, (g_loss, r_loss) in enumerate(zip(got_losses, ref_losses)):
            g_loss = as_number(g_loss, "my_distill_step", f"{name}, step {i + 1}", "the loss before the step")
            if not abs(g_loss - r_loss) <= 1e-6 * max(1.0, abs(r_loss)):
                after = _loss_after(case, i + 1)
                hint = ("that is the loss *after* the step; return the one computed before it"
                        if abs(g_loss - after) <= 1e-6 * max(1.0, abs(after)) else
                        "the loss is (1 - alpha) * CE(student(x_labeled), y_labeled) + alpha * T^2 * mean "
                        "KL(softmax(z_teacher / T) || softmax(student(x_transfer) / T))")
                raise AssertionError(f"{name}, step {i + 1}: returned loss {g_loss:.6g}, expected {r_loss:.6g} "
                                     f"(the loss on these two batches before the optimizer's step); {hint}")
    if hidden:
        return ("correct: your step matches the reference on the hidden cases (a two-layer student, momentum "
                "and Adam over two steps, alpha = 0 and 1)")
    return ("correct: your step moves the student exactly as train_student's inner step does, from stale "
            "gradients, on two seeded students")


def _loss_after(case: dict, steps: int) -> float:
    """The loss of a step case's batches at the reference's parameters after ``steps`` steps (a wrong answer:
    the loss after the update rather than before it)."""
    student = copy.deepcopy(case["student"])
    opt = _optimizer(case["opt"], student.parameters())
    for _ in range(steps):
        _reference_step(student, opt, case["x_l"], case["y_l"], case["x_t"], case["z_t"], case["T"], case["alpha"])
    with torch.no_grad():
        return ((1 - case["alpha"]) * F.cross_entropy(student(case["x_l"]), case["y_l"])
                + case["alpha"] * soft_target_loss(student(case["x_t"]), case["z_t"], case["T"])).item()


# --- sample_upload: greedy k-center -----------------------------------------------------------------------


def _k_center_cases(hidden: bool) -> list[tuple[str, torch.Tensor, int, torch.Tensor]]:
    """(name, (N, d) candidates, budget, (M, d) covered) for seeded candidates and cloud sets.

    The cloud's samples sit in one corner of the space, and some of them equal candidates, so a selection
    that ignores them starts elsewhere. The hidden cases add one cloud sample, a budget of one, 1-d
    candidates, and a budget that takes every candidate the cloud does not already hold.
    """
    rng = np.random.default_rng(88 if hidden else 8)
    sizes = ((15, 1, 4, 1), (25, 3, 1, 6), (40, 2, 34, 18), (70, 30, 12, 10)) if hidden else \
        ((10, 2, 3, 1), (30, 2, 6, 5), (50, 5, 10, 20), (80, 12, 25, 40))
    cases = []
    for n, d, budget, m in sizes:
        feats = rng.uniform(size=(n, d))
        covered = 0.3 * rng.uniform(size=(m, d))
        covered[: m // 3] = feats[rng.choice(n, m // 3, replace=False)]     # the cloud already has these
        cases.append((f"{n} candidates in {d}-d, budget {budget}, {m} cloud sample(s)",
                      torch.from_numpy(feats).double(), budget, torch.from_numpy(covered).double()))
    return cases


def check_k_center(fn, hidden: bool = False) -> str:
    """Check ``fn(features, budget, covered)`` against :func:`~collab_lib.data_based.upload.select_diverse`.

    ``fn`` receives candidate ``features`` of shape ``(N, d)``, an int ``budget <= N`` and the cloud's
    samples ``covered`` of shape ``(M, d)`` with ``M >= 1``, and returns the ``(budget,)`` indices chosen by
    greedy k-center, in the order they are picked: each pick is the candidate farthest from its nearest
    point among ``covered`` and the candidates picked so far.
    """
    cases = _k_center_cases(hidden)
    call = lambda *args: learner_call(fn, *args, forbidden=(select_diverse, select),  # noqa: E731
                                      name="my_k_center")
    name, feats, budget, covered = cases[0]
    if call(feats.clone(), budget, covered.clone()) is None:
        return not_attempted("fill in my_k_center above")
    for name, feats, budget, covered in cases:
        got = _indices(call(feats.clone(), budget, covered.clone()), "my_k_center", name)
        ref = select_diverse(feats, budget, covered).numpy()
        assert got.shape == ref.shape, f"{name}: {len(got)} indices, expected budget={budget}"
        bad = np.flatnonzero(got != ref)
        if len(bad):
            i = int(bad[0])
            hint = ("the distance of a candidate is to its nearest point among the cloud's samples *and* the "
                    "picks so far, and the largest wins")
            if len(set(got.tolist())) < len(got):
                hint = "a candidate was picked twice: a pick covers itself (its distance becomes 0)"
            raise AssertionError(f"{name}: pick {i} is sample {got[i]}, expected {ref[i]} (got {got.tolist()}, "
                                 f"expected {ref.tolist()}); {hint}")
    if hidden:
        return ("correct: your greedy k-center matches select_diverse on the hidden cases (one cloud sample, a "
                "budget of one, 1-d candidates, every candidate the cloud lacks)")
    return ("correct: your greedy k-center matches select_diverse on four seeded pools, counting the cloud's "
            "existing samples as covered")
