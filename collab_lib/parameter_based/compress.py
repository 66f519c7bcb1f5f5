"""Compressing what travels in federated learning: quantized and sparsified updates with error feedback,
and a pruned or quantized model sent down.

Uplink (device -> cloud), per client and round, on the update Δ = w^k - w_received:

* **Stochastic quantization** to ``bits`` bits a value, after QSGD (Alistarh et al., NeurIPS 2017,
  arXiv:1610.02132): each value is rounded to one of the two nearest of 2^bits evenly spaced levels on
  [-M, M], M = max|Δ| of the tensor, up with probability equal to its distance from the lower level, so the
  result is unbiased, E[Q(Δ)] = Δ. Departure: QSGD scales by the L2 norm and entropy-codes the levels; we
  scale by the max and send fixed-width codes, ceil(numel * bits / 8) bytes plus a 4-byte scale per tensor.
* **Top-k sparsification**: keep the k = ceil(fraction * P) entries of largest magnitude of the whole
  update (all tensors flattened together), sent as (value, index) pairs of 4 + 4 bytes.
* **Error feedback** (1-bit SGD, Seide et al. 2014; Stich et al., NeurIPS 2018, arXiv:1809.07599;
  Karimireddy et al., ICML 2019, arXiv:1901.09847): client k keeps the residual e_k of what it did not send,
  c = C(Δ + e_k), e_k <- Δ + e_k - c. Residuals persist across the rounds a client takes part in.

Downlink (cloud -> device): the global model, optionally magnitude-pruned (the smallest ``fraction`` of
each tensor's weights set to zero, sent as (value, index) pairs) and/or quantized deterministically to
``bits`` bits (round to nearest; the device trains from what it received), after deep compression's pruning
and quantization stages (Han, Mao and Dally, ICLR 2016, arXiv:1510.00149), without its retraining or
Huffman coding.

:func:`relative_error` measures what a compressor loses of one update, ||C(Δ) - Δ|| / ||Δ||.

:class:`Compressor` implements :class:`~collab_lib.parameter_based.federated.Codec`: pass it to
:func:`~collab_lib.parameter_based.federated.federate` as ``codec=``; bytes on the wire then appear per round in
``history.bytes_up`` and ``history.bytes_down``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from collab_lib.parameter_based.params import Params
from collab_lib.seed import generator

FLOAT32_BYTES = 4
INDEX_BYTES = 4


# --- Pure functions on one tensor ---------------------------------------------------------------------


def stochastic_quantize(x: torch.Tensor, bits: int, generator: torch.Generator) -> torch.Tensor:
    """Unbiased stochastic rounding of ``x`` to 2^bits levels on [-max|x|, max|x|]; same shape as ``x``."""
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in [1, 16], got {bits!r}")
    scale = x.abs().max()
    if scale == 0:
        return torch.zeros_like(x)
    levels = 2 ** bits - 1                                   # intervals between the 2^bits levels
    pos = (x / scale + 1) / 2 * levels                       # in [0, levels]
    low = pos.floor()
    up = torch.rand(x.shape, generator=generator, dtype=x.dtype) < (pos - low)  # P(up) = distance to low level
    q = low + up.to(x.dtype)
    return (q / levels * 2 - 1) * scale


def quantize_nearest(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Deterministic rounding of ``x`` to the nearest of 2^bits levels on [-max|x|, max|x|]."""
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in [1, 16], got {bits!r}")
    scale = x.abs().max()
    if scale == 0:
        return torch.zeros_like(x)
    levels = 2 ** bits - 1
    q = ((x / scale + 1) / 2 * levels).round()
    return (q / levels * 2 - 1) * scale


def quantized_bytes(numel: int, bits: int) -> int:
    """Fixed-width codes plus one float32 scale: ceil(numel * bits / 8) + 4."""
    return math.ceil(numel * bits / 8) + FLOAT32_BYTES


def top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` with all but its ``k`` largest-magnitude entries set to zero (ties: the lower index wins)."""
    if not 0 <= k <= x.numel():
        raise ValueError(f"k must be in [0, {x.numel()}], got {k}")
    flat = x.reshape(-1)
    out = torch.zeros_like(flat)
    # A stable sort makes the choice among equal magnitudes deterministic.
    keep = torch.sort(flat.abs(), descending=True, stable=True).indices[:k]
    out[keep] = flat[keep]
    return out.reshape(x.shape)


def sparse_bytes(nonzeros: int, value_bytes: float = FLOAT32_BYTES) -> int:
    """(value, index) pairs: nonzeros * (value_bytes + 4)."""
    return math.ceil(nonzeros * (value_bytes + INDEX_BYTES))


def relative_error(received: Params, delta: Params) -> float:
    """How far what the server received is from the update: ||C(Δ) - Δ||_2 / ||Δ||_2, with every tensor's
    entries taken together (0: sent exactly; 1: as far off as sending nothing)."""
    if received.keys() != delta.keys():
        raise ValueError(f"received has tensors {sorted(received)}, the update {sorted(delta)}")
    err = sum(float(((received[n] - d) ** 2).sum()) for n, d in delta.items())
    norm = sum(float((d ** 2).sum()) for d in delta.values())
    if norm == 0:
        raise ValueError("the relative error of an all-zero update is undefined")
    return math.sqrt(err / norm)


def prune_smallest(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """``x`` with its floor(fraction * numel) smallest-magnitude entries set to zero."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    keep = x.numel() - int(fraction * x.numel())
    return top_k(x, keep)


# --- The link ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompressionConfig:
    """What each direction of the link does. All ``None``/0: float32 both ways, as plain FedAvg."""

    up_bits: int | None = None            # stochastic quantization of updates
    up_top_fraction: float | None = None  # top-k of updates, k = ceil(fraction * P)
    error_feedback: bool = False          # keep and resend what compression dropped
    down_bits: int | None = None          # nearest-level quantization of the model sent down
    down_prune_fraction: float = 0.0      # magnitude pruning of the model sent down
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("up_bits", "down_bits"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 1 <= value <= 16):
                raise ValueError(f"{name} must be None or an int in [1, 16], got {value!r}")
        if self.up_top_fraction is not None and not 0 < self.up_top_fraction <= 1:
            raise ValueError(f"up_top_fraction must be None or in (0, 1], got {self.up_top_fraction!r}")
        if not 0 <= self.down_prune_fraction < 1:
            raise ValueError(f"down_prune_fraction must be in [0, 1), got {self.down_prune_fraction!r}")


class Compressor:
    """A :class:`~collab_lib.parameter_based.federated.Codec` applying a :class:`CompressionConfig`.

    Holds the clients' error-feedback residuals (name -> tensor, per client id); use one instance per run.
    With both ``up_bits`` and ``up_top_fraction`` set, the top-k values are quantized and sent with indices.
    """

    def __init__(self, config: CompressionConfig) -> None:
        self.config = config
        self.residuals: dict[int, Params] = {}

    def downlink(self, params: Params) -> tuple[Params, int]:
        c = self.config
        out, nbytes = {}, 0
        for name, w in params.items():
            v = prune_smallest(w, c.down_prune_fraction) if c.down_prune_fraction > 0 else w
            if c.down_bits is not None:
                v = quantize_nearest(v, c.down_bits) * (v != 0)   # pruned weights stay exactly zero
            out[name] = v
            value_bytes = FLOAT32_BYTES if c.down_bits is None else c.down_bits / 8
            if c.down_prune_fraction > 0:
                nbytes += sparse_bytes(int((v != 0).sum()), value_bytes)
            elif c.down_bits is not None:
                nbytes += quantized_bytes(w.numel(), c.down_bits)
            else:
                nbytes += w.numel() * FLOAT32_BYTES
        return out, nbytes

    def uplink(self, round_idx: int, client_ids: np.ndarray, deltas: Params) -> tuple[Params, int]:
        names = list(deltas)
        received = {n: torch.empty_like(deltas[n]) for n in names}
        total = 0
        for i, k in enumerate(int(k) for k in client_ids):
            delta = {n: deltas[n][i] for n in names}
            if self.config.error_feedback and k in self.residuals:
                delta = {n: delta[n] + self.residuals[k][n] for n in names}
            sent, nbytes = self._compress(delta, generator(self.config.seed, offset=round_idx * 1_000_003 + k))
            if self.config.error_feedback:
                self.residuals[k] = {n: delta[n] - sent[n] for n in names}
            for n in names:
                received[n][i] = sent[n]
            total += nbytes
        return received, total

    def _compress(self, delta: Params, generator: torch.Generator) -> tuple[Params, int]:
        c = self.config
        flat = torch.cat([d.reshape(-1) for d in delta.values()])             # (P,)
        if c.up_top_fraction is not None:
            k = math.ceil(c.up_top_fraction * flat.numel())
            flat = top_k(flat, k)
            if c.up_bits is not None:
                nz = flat != 0
                flat[nz] = stochastic_quantize(flat[nz], c.up_bits, generator)
            nbytes = sparse_bytes(k, FLOAT32_BYTES if c.up_bits is None else c.up_bits / 8)
            nbytes += 0 if c.up_bits is None else FLOAT32_BYTES              # the scale
            return _unflatten(flat, delta), nbytes
        if c.up_bits is not None:
            out = {n: stochastic_quantize(d, c.up_bits, generator) for n, d in delta.items()}
            return out, sum(quantized_bytes(d.numel(), c.up_bits) for d in delta.values())
        return delta, flat.numel() * FLOAT32_BYTES


def _unflatten(flat: torch.Tensor, like: Params) -> Params:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = flat[start:start + t.numel()].reshape(t.shape)
        start += t.numel()
    return out
