"""Knowledge distillation from a cloud teacher to a device student: the cloud -> device data path.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015, arXiv:1503.02531). A large
teacher's logits z_t are softened with a temperature T, p_t = softmax(z_t / T), and a small student with
logits z_s is trained to match them at the same temperature, mixed with the usual loss on hard labels y:

    L = alpha * T^2 * KL(p_t || softmax(z_s / T))  +  (1 - alpha) * CE(softmax(z_s), y)

The gradient of the soft term with respect to z_s is (q_s - p_t) / T per logit (q_s the student's softened
probabilities), so it shrinks as 1/T^2 for large T; the factor T^2 keeps its size comparable to the hard
term's as T changes (Hinton et al., Section 2). Variable names follow the paper: T for the temperature,
"soft targets" for p_t, the "transfer set" for the inputs on which the student matches the teacher.

In device-cloud collaboration the transfer set is data the device holds but has no labels for (photos,
typed text, clicks without an outcome), or public data the cloud sends down; the cloud's teacher labels it.
Three kinds of target are implemented (:class:`DistillConfig.targets`):

* ``"none"`` - the student learns from the device's few hard labels only (the baseline);
* ``"pseudo"`` - the teacher's argmax on the transfer set is used as a hard label (pseudo-labelling,
  Lee 2013), the cheapest teacher signal to send: one class id per sample;
* ``"soft"`` - Hinton et al.'s soft targets at temperature T: C probabilities per sample.

Departures, labelled:

* Hinton et al. write the soft term as a cross-entropy H(p_t, q_s). We use KL(p_t || q_s) = H(p_t, q_s) -
  H(p_t): the two differ by the teacher's entropy, a constant for the student, so gradients are identical
  and the loss reads 0 when the student matches the teacher exactly.
* The hard-label term is applied to the labelled samples only and the soft term to the whole transfer set,
  each averaged over its own mini-batch; a training step draws one mini-batch from each.
* Hinton et al. also train the student at temperature T and deploy it at T = 1; we do the same (the student's
  logits at T = 1 are used for accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from collab_lib._validate import positive_int
from collab_lib.seed import generator

TARGETS = ("none", "pseudo", "soft")


def _temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def _logits_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError("student_logits and teacher_logits must both have shape (N, C), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """p_t = softmax(z_t / T): (N, C) logits -> (N, C) probabilities. T = 1 is the teacher's own softmax;
    larger T flattens it and so reveals how the teacher ranks the wrong classes."""
    return (teacher_logits / _temperature(temperature)).softmax(dim=-1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * mean over samples of KL(softmax(z_t / T) || softmax(z_s / T)); (N, C), (N, C) -> scalar.

    The teacher's logits are treated as constants (no gradient flows to the teacher).
    """
    T = _temperature(temperature)
    _logits_pair(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits / T, dim=-1)                 # (N, C) student, softened
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=-1)        # (N, C) teacher, softened
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)                  # (N,) nats
    return T * T * kl.mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.'s loss on one batch whose samples all have a label: alpha * soft + (1 - alpha) * hard.

    ``student_logits``, ``teacher_logits``: (N, C); ``labels``: (N,) int64 class ids. ``alpha`` in [0, 1] is the
    weight of the soft-target term; alpha = 0 is plain cross-entropy, alpha = 1 pure distillation.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    _logits_pair(student_logits, teacher_logits)
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},), got {tuple(labels.shape)}")
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft_target_loss(student_logits, teacher_logits, temperature) + (1 - alpha) * hard


def pseudo_labels(teacher_logits: torch.Tensor, min_confidence: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's hard labels: ((N,) int64 argmax, (N,) bool mask of softmax confidence >= min_confidence).

    Keeping only confident pseudo-labels trades transfer-set size for label noise (Lee 2013 keeps all).
    """
    if teacher_logits.ndim != 2:
        raise ValueError(f"teacher_logits must have shape (N, C), got {tuple(teacher_logits.shape)}")
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
            or not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be a number in [0, 1], got {min_confidence!r}")
    p = teacher_logits.softmax(dim=-1)
    conf, label = p.max(dim=-1)
    return label, conf >= min_confidence


def target_bytes(num_samples: int, num_classes: int, targets: str, bytes_per_value: int = 4) -> int:
    """Bytes the cloud sends down to label a transfer set: soft targets C values per sample, a pseudo-label
    one class id (1 byte for C <= 256, 2 bytes above), nothing for ``"none"``."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    if num_samples < 0 or num_classes < 2 or bytes_per_value < 1:
        raise ValueError("num_samples must be >= 0, num_classes >= 2 and bytes_per_value >= 1, got "
                         f"{num_samples}, {num_classes}, {bytes_per_value}")
    if targets == "soft":
        return num_samples * num_classes * bytes_per_value
    if targets == "pseudo":
        return num_samples * (1 if num_classes <= 256 else 2)
    return 0


@dataclass(frozen=True)
class DistillConfig:
    """How a device student is trained. ``targets`` picks the teacher signal on the transfer set (module
    docstring); ``alpha`` weighs the teacher's term against the hard labels' and ``temperature`` is T (only
    for ``"soft"``). ``steps`` Adam steps, each on one labelled and one transfer mini-batch."""

    targets: str = "soft"
    temperature: float = 4.0
    alpha: float = 0.5
    steps: int = 400
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        _temperature(self.temperature)
        if isinstance(self.alpha, bool) or not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be a number in [0, 1], got {self.alpha!r}")
        for name in ("steps", "batch_size"):
            positive_int(name, getattr(self, name))
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """An endless stream of mini-batch index tensors: shuffled epochs over range(n)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


def train_student(student: nn.Module, x_labeled: torch.Tensor, y_labeled: torch.Tensor,
                  x_transfer: torch.Tensor | None, teacher_logits: torch.Tensor | None,
                  config: DistillConfig) -> np.ndarray:
    """Train ``student`` in place; return the (steps,) training loss.

    ``x_labeled`` (N_l, ...) with ``y_labeled`` (N_l,) are the device's labelled samples; ``x_transfer``
    (N_t, ...) is the transfer set and ``teacher_logits`` (N_t, C) the teacher's logits on it, computed once
    (wherever the teacher runs). With ``targets="none"`` the transfer set is ignored and may be None.

    One step: loss = (1 - alpha) * CE on a labelled batch + alpha * (teacher term on a transfer batch), the
    teacher term being :func:`soft_target_loss` (``"soft"``) or CE against :func:`pseudo_labels`
    (``"pseudo"``). With ``"none"`` the loss is CE on the labelled batch alone (alpha is not used).
    """
    if len(x_labeled) == 0 or len(x_labeled) != len(y_labeled):
        raise ValueError(f"x_labeled and y_labeled must be non-empty and of equal length, got "
                         f"{len(x_labeled)} and {len(y_labeled)}")
    use_teacher = config.targets != "none"
    if use_teacher:
        if x_transfer is None or teacher_logits is None or len(x_transfer) == 0:
            raise ValueError(f"targets={config.targets!r} needs a non-empty x_transfer and its teacher_logits")
        if teacher_logits.ndim != 2 or len(teacher_logits) != len(x_transfer):
            raise ValueError(f"teacher_logits must have shape ({len(x_transfer)}, C), got "
                             f"{tuple(teacher_logits.shape)}")
        teacher_logits = teacher_logits.detach()
        hard_teacher = pseudo_labels(teacher_logits)[0]
    g = generator(config.seed)
    labeled = _batches(len(x_labeled), config.batch_size, g)
    transfer = _batches(len(x_transfer), config.batch_size, g) if use_teacher else None
    opt = torch.optim.Adam(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = np.zeros(config.steps)
    student.train()
    for step in range(config.steps):
        i = next(labeled)
        loss = F.cross_entropy(student(x_labeled[i]), y_labeled[i])
        if use_teacher:
            j = next(transfer)
            z_s = student(x_transfer[j])                                  # (B, C)
            if config.targets == "soft":
                teacher_term = soft_target_loss(z_s, teacher_logits[j], config.temperature)
            else:
                teacher_term = F.cross_entropy(z_s, hard_teacher[j])
            loss = (1 - config.alpha) * loss + config.alpha * teacher_term
        opt.zero_grad()
        loss.backward()
        opt.step()
        history[step] = loss.item()
    student.eval()
    return history
