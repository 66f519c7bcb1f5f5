"""Early exit: side classifiers let confident samples stop early, on the device or before the link.

BranchyNet (Teerapittayanon, McDanel and Kung, ICPR 2016, arXiv:1709.01686) attaches a small classifier
("branch") after some stages of a backbone and trains all exits jointly on L = sum_j w_j * L_j. At
inference a sample leaves at the first exit that is confident enough; the rest go on to the last exit.
If a share q_j of samples leaves at exit j and reaching exit j costs C_j (the stages up to it plus every
head evaluated on the way), the expected cost is E[C] = sum_j q_j * C_j.

Edgent (Li, Zeng, Zhou and Chen, IEEE TWC 2020, arXiv:1910.05316) runs the first exits on the device and
the rest on a server: a sample that exits on the device pays device time only; one that does not sends
the intermediate tensor at the split and pays RTT + upload + server compute + download as well.

Departures from the papers, labelled:

* Confidence is the maximum softmax probability, exit if ``max_c p_c >= T_j``. BranchyNet thresholds
  the softmax *entropy* (exit if entropy < T_j); both rank samples by how peaked the output is, and a
  probability in [0, 1] is easier to read.
* Edgent picks the split and exit with regression-predicted layer latencies and a latency requirement;
  here layer times come from the roofline (:func:`collab_lib.hardware.roofline.layer_time_s`) and the
  thresholds are given, so the caller sweeps them.

``MultiExitNet.forward`` computes every exit for every sample (one batched pass); the policy functions
then charge each sample only for the stages and heads it would have run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from collab_lib._validate import positive_int
from collab_lib.hardware.network import transfer_time_s
from collab_lib.hardware.profile import LayerProfile, profile_model, total_flops
from collab_lib.hardware.roofline import layers_time_s
from collab_lib.hardware.specs import DeviceSpec, LinkSpec
from collab_lib.seed import generator

Logits = Sequence[torch.Tensor] | np.ndarray  # E exits of (N, C), or an array (E, N, C)


class MultiExitNet(nn.Module):
    """A backbone of stages with a classifier head after some of them.

    Parameters
    ----------
    stages:
        The backbone, one ``nn.Sequential`` per stage, run in order.
    heads:
        One entry per stage: the exit's classifier (an ``nn.Sequential`` fed the stage's output) or
        ``None`` for a stage without an exit. The last stage must have one: it is the final exit.
    """

    def __init__(self, stages: Sequence[nn.Sequential], heads: Sequence[nn.Sequential | None]) -> None:
        super().__init__()
        if not stages:
            raise ValueError("stages is empty")
        if len(heads) != len(stages):
            raise ValueError(f"heads has {len(heads)} entries for {len(stages)} stages (None: no exit)")
        if heads[-1] is None:
            raise ValueError("heads[-1] is None: the last stage must end in an exit")
        if not all(isinstance(m, nn.Sequential) for m in [*stages, *(h for h in heads if h is not None)]):
            raise TypeError("stages and heads must be nn.Sequential (profile_model profiles their children)")
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList([h for h in heads if h is not None])
        self.exit_stages = tuple(i for i, h in enumerate(heads) if h is not None)

    @property
    def num_exits(self) -> int:
        return len(self.exit_stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every exit, in order: a list of E tensors of shape (N, classes)."""
        out, j = [], 0
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if j < len(self.exit_stages) and self.exit_stages[j] == i:
                out.append(self.heads[j](x))
                j += 1
        return out


def digits_multi_exit_cnn(seed: int, width: int = 16, num_classes: int = 10) -> MultiExitNet:
    """A 3-exit CNN for 1 x 8 x 8 digits, initialised from ``seed`` (global RNG untouched).

    Shapes (batch B, w = ``width``): stage 1 conv -> (B, w, 8, 8); stage 2 conv + pool -> (B, 2w, 4, 4);
    stage 3 conv + pool -> (B, 4w, 2, 2). Exits 1 and 2 are small BranchyNet-style branches: average
    pooling (to 2 x 2 after stage 1, to 1 x 1 after stage 2), then one linear layer; exit 3 is a linear
    layer on the flattened backbone output. Stage 1 holds under 2% of the FLOPs at w = 16, so exit 1 is
    nearly free, and also the least accurate.
    """
    if width < 1 or num_classes < 1:
        raise ValueError(f"width and num_classes must be >= 1, got {width}, {num_classes}")
    w = width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stages = [
            nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU()),                          # (B, w, 8, 8)
            nn.Sequential(nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),     # (B, 2w, 4, 4)
            nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), # (B, 4w, 2, 2)
        ]
        heads = [
            nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * w, num_classes)),
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes)),
            nn.Sequential(nn.Flatten(), nn.Linear(16 * w, num_classes)),
        ]
    return MultiExitNet(stages, heads)


# --- Cost profile -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitProfile:
    """Per-sample costs of a multi-exit network: the layers of each stage and of each exit's head.

    ``exit_stages[j]`` is the stage after which exit j sits (increasing, the last one the last stage).
    """

    stages: tuple[tuple[LayerProfile, ...], ...]
    heads: tuple[tuple[LayerProfile, ...], ...]
    exit_stages: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.stages or not self.heads:
            raise ValueError("stages and heads must not be empty")
        if len(self.exit_stages) != len(self.heads):
            raise ValueError(f"exit_stages has {len(self.exit_stages)} entries for {len(self.heads)} heads")
        s = list(self.exit_stages)
        if s != sorted(set(s)) or s[0] < 0 or s[-1] != len(self.stages) - 1:
            raise ValueError(f"exit_stages must increase strictly and end at the last stage, got {s}")

    @property
    def num_exits(self) -> int:
        return len(self.heads)


def profile_multi_exit(model: MultiExitNet, example_input: torch.Tensor) -> ExitProfile:
    """Profile every stage and head of ``model`` on one sample, e.g. ``(1, 1, 8, 8)``."""
    if example_input.shape[0] != 1:
        raise ValueError(f"example_input must hold one sample (batch 1), got {tuple(example_input.shape)}")
    stages, heads, x = [], [], example_input
    for i, stage in enumerate(model.stages):
        stages.append(tuple(profile_model(stage, x)))
        with torch.no_grad():
            x = stage(x)
        if i in model.exit_stages:
            heads.append(tuple(profile_model(model.heads[model.exit_stages.index(i)], x)))
    return ExitProfile(tuple(stages), tuple(heads), model.exit_stages)


def exit_flops(profile: ExitProfile) -> np.ndarray:
    """(E,) C_j: FLOPs of a sample that leaves at exit j (stages up to it, heads 0..j)."""
    stage = np.cumsum([total_flops(s) for s in profile.stages])
    head = np.cumsum([total_flops(h) for h in profile.heads])
    return stage[list(profile.exit_stages)] + head


def device_flops(profile: ExitProfile, device_exits: int) -> np.ndarray:
    """(E,) FLOPs run *on the device* by a sample leaving at exit j when exits 0..device_exits-1 are there.

    A sample that leaves on the device costs C_j; any other has run every device stage and head first.
    """
    _check_device_exits(device_exits, profile.num_exits)
    c = exit_flops(profile)
    sent = c[device_exits - 1] if device_exits > 0 else 0
    return np.where(np.arange(profile.num_exits) < device_exits, c, sent)


# --- Training -----------------------------------------------------------------------------------------


def _weights(weights: Sequence[float] | None, num_exits: int) -> torch.Tensor:
    w = torch.ones(num_exits) if weights is None else torch.as_tensor(weights, dtype=torch.get_default_dtype())
    if w.shape != (num_exits,):
        raise ValueError(f"weights must have one entry per exit ({num_exits}), got {list(w.shape)}")
    if (w < 0).any() or w.sum() <= 0 or not torch.isfinite(w).all():
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    return w


def exit_losses(model: MultiExitNet, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(E,) mean cross-entropy of each exit on ``(x, y)``, without gradients."""
    with torch.no_grad():
        return np.array([nn.functional.cross_entropy(z, y).item() for z in model(x)])


def train_multi_exit(
    model: MultiExitNet,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float,
    seed: int,
    weights: Sequence[float] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Train all exits jointly on L = sum_j w_j CE_j (BranchyNet) with Adam, in place.

    ``weights`` defaults to 1 for every exit (a choice; BranchyNet leaves them as hyper-parameters). The
    mini-batch order comes from ``seed`` only. Returns the (epochs, E) mean training loss of each exit.

    The learning rate decays linearly from ``lr`` to 0 over the run (not in BranchyNet, which uses a constant
    rate). At a constant rate the last epochs amplify rounding differences: two CPUs whose float64 results
    differ by 1e-16 end this 40-epoch training with weights 0.3 apart; with the decay, 1e-10 apart.
    """
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"x and y must be non-empty and of equal length, got {len(x)} and {len(y)}")
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    w = _weights(weights, model.num_exits)
    g = generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=steps)
    history = np.zeros((epochs, model.num_exits))
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            losses = torch.stack([nn.functional.cross_entropy(z, y[idx]) for z in model(x[idx])])  # (E,)
            opt.zero_grad()
            (w @ losses).backward()
            opt.step()
            schedule.step()
            history[epoch] += losses.detach().numpy() * len(idx) / len(x)
    model.eval()
    return history


# --- Exit policy --------------------------------------------------------------------------------------


def _logits(exit_logits: Logits) -> np.ndarray:
    """(E, N, C) float64 from a list of (N, C) tensors or an array."""
    if isinstance(exit_logits, np.ndarray):
        z = exit_logits.astype(np.float64)
    else:
        if len(exit_logits) == 0:
            raise ValueError("exit_logits is empty")
        shapes = {tuple(t.shape) for t in exit_logits}
        if len(shapes) != 1:
            raise ValueError(f"exit_logits: every exit must have the same (N, C) shape, got {sorted(shapes)}")
        z = np.stack([t.detach().cpu().double().numpy() for t in exit_logits])
    if z.ndim != 3 or 0 in z.shape:
        raise ValueError(f"exit_logits must be E exits of non-empty (N, C) logits, got shape {z.shape}")
    return z


def confidences(exit_logits: Logits) -> np.ndarray:
    """(E, N) maximum softmax probability of each exit: 1 / sum_c exp(z_c - max_c z_c)."""
    z = _logits(exit_logits)
    return 1.0 / np.exp(z - z.max(axis=-1, keepdims=True)).sum(axis=-1)


def _thresholds(thresholds: float | Sequence[float], num_exits: int) -> np.ndarray:
    t = np.asarray(thresholds, dtype=float)
    if t.ndim == 0:
        t = np.full(num_exits - 1, float(t))  # one number shared by every early exit
    if t.shape != (num_exits - 1,):
        raise ValueError(f"thresholds must be one number or one per early exit ({num_exits - 1}; the last "
                         f"exit takes every sample that reaches it), got shape {t.shape}")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError(f"thresholds must be >= 0 (> 1 switches an exit off), got {t.tolist()}")
    return t


def exit_decisions(exit_logits: Logits, thresholds: float | Sequence[float]) -> np.ndarray:
    """(N,) index of the exit each sample leaves at: the first j with confidence_j >= T_j, else the last.

    ``thresholds`` holds T_j for the E - 1 early exits (a single number is shared by all). T_j = 0 makes
    exit j take everything that reaches it; T_j > 1 switches it off (a confidence never exceeds 1).
    """
    conf = confidences(exit_logits)                                    # (E, N)
    t = _thresholds(thresholds, len(conf))
    fires = np.vstack([conf[:-1] >= t[:, None], np.ones((1, conf.shape[1]), bool)])  # (E, N), last always
    return fires.argmax(axis=0)                                        # argmax finds the first True


def exit_accuracies(exit_logits: Logits, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """(E,) accuracy of each exit on *all* samples, as if it were the only one."""
    z = _logits(exit_logits)
    return (z.argmax(axis=-1) == _labels(labels, z.shape[1])).mean(axis=1)


def _labels(labels: torch.Tensor | np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) like the logits, got {y.shape}")
    return y


@dataclass(frozen=True)
class EarlyExitOutcome:
    """What one setting of the thresholds does on a data set. Arrays have one entry per exit."""

    thresholds: tuple[float, ...]
    accuracy: float
    exit_shares: np.ndarray        # q_j: share of samples leaving at exit j
    exit_accuracy: np.ndarray      # accuracy among the samples leaving at exit j (nan if none)
    mean_flops: float              # E[C] = sum_j q_j C_j
    mean_device_flops: float       # the same counting only work on the device
    offloaded_share: float         # share of samples that leave after the device's last exit


def early_exit_outcome(
    exit_logits: Logits,
    labels: torch.Tensor | np.ndarray,
    thresholds: float | Sequence[float],
    profile: ExitProfile,
    device_exits: int | None = None,
) -> EarlyExitOutcome:
    """Accuracy, exit distribution and mean FLOPs of the policy; ``device_exits`` = None: all on device."""
    z = _logits(exit_logits)
    if len(z) != profile.num_exits:
        raise ValueError(f"exit_logits has {len(z)} exits, profile has {profile.num_exits}")
    y = _labels(labels, z.shape[1])
    d = profile.num_exits if device_exits is None else device_exits
    exits = exit_decisions(z, thresholds)                                 # (N,)
    correct = z[exits, np.arange(len(exits))].argmax(axis=-1) == y        # (N,)
    counts = np.bincount(exits, minlength=len(z))
    hits = np.bincount(exits, weights=correct, minlength=len(z))
    with np.errstate(invalid="ignore", divide="ignore"):
        exit_accuracy = hits / counts
    return EarlyExitOutcome(
        thresholds=tuple(_thresholds(thresholds, len(z)).tolist()),
        accuracy=float(correct.mean()),
        exit_shares=counts / len(exits),
        exit_accuracy=exit_accuracy,
        mean_flops=float(exit_flops(profile)[exits].mean()),
        mean_device_flops=float(device_flops(profile, d)[exits].mean()),
        offloaded_share=float((exits >= d).mean()),
    )


def threshold_sweep(
    exit_logits: Logits,
    labels: torch.Tensor | np.ndarray,
    thresholds: Sequence[float | Sequence[float]],
    profile: ExitProfile,
    device_exits: int | None = None,
) -> list[EarlyExitOutcome]:
    """One outcome per threshold setting: the accuracy vs mean (device) FLOPs curve, in input order."""
    if len(thresholds) == 0:
        raise ValueError("thresholds is empty")
    return [early_exit_outcome(exit_logits, labels, t, profile, device_exits) for t in thresholds]


# --- Device-cloud latency (Edgent-style) --------------------------------------------------------------


def _check_device_exits(device_exits: int, num_exits: int) -> None:
    if not 0 <= device_exits <= num_exits:
        raise ValueError(f"device_exits must be in 0..{num_exits}, got {device_exits}")


@dataclass(frozen=True)
class ExitLatency:
    """Latency of a sample by the exit it leaves at, (E,) arrays in seconds, and per sample, (N,)."""

    device_exits: int
    device_s: np.ndarray
    network_s: np.ndarray          # RTT + upload + download; 0 for exits on the device
    cloud_s: np.ndarray
    per_sample_s: np.ndarray

    @property
    def per_exit_s(self) -> np.ndarray:
        return self.device_s + self.network_s + self.cloud_s

    @property
    def mean_s(self) -> float:
        return float(self.per_sample_s.mean())


def device_cloud_latency(
    exits: np.ndarray,
    profile: ExitProfile,
    device_exits: int,
    device: DeviceSpec,
    cloud: DeviceSpec,
    link: LinkSpec,
    *,
    input_bytes: int | None = None,
    device_precision: str = "fp32",
    cloud_precision: str = "fp32",
    device_efficiency: float = 1.0,
    cloud_efficiency: float = 1.0,
) -> ExitLatency:
    """Latency when exits 0..device_exits-1 run on ``device`` and the rest on ``cloud``.

    A sample leaving at exit j < D = ``device_exits`` takes the device time of stages up to exit j and
    heads 0..j. Any other sample runs every device stage and head, then pays
    RTT + 8 S / B_up (S: the tensor at the split) + cloud time of the remaining stages and heads up to its
    exit + 8 S_out / B_down (S_out: its exit's logits). D = 0 sends the input (``input_bytes``, default
    the first layer's input tensor); D = E never uses the link. ``exits`` is from :func:`exit_decisions`.
    """
    e = profile.num_exits
    _check_device_exits(device_exits, e)
    exits = np.asarray(exits)
    if exits.ndim != 1 or len(exits) == 0 or not np.issubdtype(exits.dtype, np.integer) \
            or exits.min() < 0 or exits.max() >= e:
        raise ValueError(f"exits must be a non-empty 1-D array of exit indices in 0..{e - 1}")

    def t(layers, spec, precision, eff):  # roofline time of a group of layers
        return np.array([layers_time_s(g, spec, precision, eff) for g in layers])

    stage_dev = np.cumsum(t(profile.stages, device, device_precision, device_efficiency))
    head_dev = np.cumsum(t(profile.heads, device, device_precision, device_efficiency))
    stage_cld = np.cumsum(t(profile.stages, cloud, cloud_precision, cloud_efficiency))
    head_cld = np.cumsum(t(profile.heads, cloud, cloud_precision, cloud_efficiency))
    at = np.array(profile.exit_stages)
    on_device = np.arange(e) < device_exits
    reach_dev = stage_dev[at] + head_dev                                # device time to reach and take exit j
    if device_exits > 0:
        split_stage = at[device_exits - 1]
        sent_bytes = profile.stages[split_stage][-1].output_bytes
        # time spent before the link: every device stage and head, on either side's clock
        before_dev = stage_dev[split_stage] + head_dev[device_exits - 1]
        before_cld = stage_cld[split_stage] + head_cld[device_exits - 1]
    else:
        sent_bytes = profile.stages[0][0].input_bytes if input_bytes is None else input_bytes
        before_dev = before_cld = 0.0
    out_bytes = np.array([h[-1].output_bytes for h in profile.heads])
    network = link.rtt_s + transfer_time_s(sent_bytes, link.uplink_bits_per_s) + np.array(
        [transfer_time_s(b, link.downlink_bits_per_s) for b in out_bytes])
    device_s = np.where(on_device, reach_dev, before_dev)
    network_s = np.where(on_device, 0.0, network)
    cloud_s = np.where(on_device, 0.0, stage_cld[at] + head_cld - before_cld)
    per_exit = device_s + network_s + cloud_s
    return ExitLatency(device_exits, device_s, network_s, cloud_s, per_sample_s=per_exit[exits])
