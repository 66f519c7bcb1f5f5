"""Small torch models used across the labs.

The vision models are ``nn.Sequential`` so that their children are the candidate cut points of split
inference (:mod:`collab_lib.system.partition`); :func:`split_model` cuts one into its device and cloud parts.
The ``digits_*`` models are the device and cloud models of the labs on 8 x 8 digits (cascades, distillation,
augmentation, sample upload). :class:`CharLM` is a tiny character-level transformer language model with a
KV cache; two trained sizes ship with the package (:func:`load_char_lm`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn

from collab_lib._validate import non_negative_int, positive_int


def _conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU()]


def vision_cnn(width: int = 256, num_classes: int = 10, stem_channels: int = 32, cut_channels: int = 16) -> nn.Sequential:
    """A plain CNN for 3 x 224 x 224 camera frames, shaped like most vision backbones: a stem at full
    resolution that shrinks the data, then a body where most FLOPs are.

    Shapes (batch 1): stem 3x224x224 -> stem_channels x 112 x 112 -> cut_channels x 28 x 28 (the narrow
    point, 12x fewer numbers than the input), body width x 28 x 28 -> 2w x 14 x 14 -> 2w x 7 x 7, then a
    global average pool and a linear classifier. ``width=256`` is about 3.9 GFLOP a frame (a multiply-add counts as 2 FLOP).
    """
    for name, value in (("width", width), ("num_classes", num_classes), ("stem_channels", stem_channels),
                        ("cut_channels", cut_channels)):
        positive_int(name, value)
    layers: list[nn.Module] = [
        *_conv(3, stem_channels),                        # (B, stem, 224, 224)
        *_conv(stem_channels, stem_channels, stride=2),  # (B, stem, 112, 112)
        nn.Conv2d(stem_channels, cut_channels, 1),       # (B, cut, 112, 112)
        nn.ReLU(),
        nn.MaxPool2d(4),                                 # (B, cut, 28, 28)
        *_conv(cut_channels, width),                     # (B, w, 28, 28)
        *_conv(width, width),
        *_conv(width, width),
        nn.MaxPool2d(2),                                 # (B, w, 14, 14)
        *_conv(width, 2 * width),                        # (B, 2w, 14, 14)
        *_conv(2 * width, 2 * width),
        nn.MaxPool2d(2),                                 # (B, 2w, 7, 7)
        *_conv(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1),                         # (B, 2w, 1, 1)
        nn.Flatten(),                                    # (B, 2w)
        nn.Linear(2 * width, num_classes),               # (B, classes)
    ]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection: y = relu(x + conv(relu(conv(x)))). Not a chain inside,
    so split inference treats the whole block as one layer."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return (x + self.conv2(self.conv1(x).relu())).relu()


def residual_cnn(width: int = 64, blocks_per_stage: int = 2, num_classes: int = 10) -> nn.Sequential:
    """A small ResNet-style CNN for 3 x 224 x 224 frames, as an ``nn.Sequential`` of blocks.

    Stem (7x7 stride-2 conv, max-pool) -> stages of residual blocks at width, 2x width, 4x width, with a
    stride-2 conv between stages -> global average pool -> linear. Each residual block is one child, so
    every cut point of split inference falls between blocks, where one tensor is live.
    """
    for name, value in (("width", width), ("blocks_per_stage", blocks_per_stage), ("num_classes", num_classes)):
        positive_int(name, value)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(2)]
    c = width
    for stage in range(3):
        if stage > 0:
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU()]
            c *= 2
        layers += [ResidualBlock(c) for _ in range(blocks_per_stage)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def mlp(in_features: int, hidden: int, num_classes: int, seed: int) -> nn.Sequential:
    """A one-hidden-layer ReLU MLP (hidden = 0: multinomial logistic regression), initialised from ``seed``."""
    positive_int("in_features", in_features)
    non_negative_int("hidden", hidden)
    if positive_int("num_classes", num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hidden == 0:
            return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))



def split_model(model: nn.Sequential, split: int) -> tuple[nn.Sequential, nn.Sequential]:
    """``(model[:split], model[split:])``: the device part (the first ``split`` layers) and the cloud part.

    ``split`` counts layers run on the device, as ``split`` of :class:`~collab_lib.system.partition.SplitLatency`:
    0 is cloud only, ``len(model)`` device only (split inference serves both; split learning needs a layer on
    each side). The parts share their layers and parameters with ``model`` (no copy), so training them trains
    ``model``.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    if isinstance(split, bool) or not isinstance(split, int) or not 0 <= split <= len(model):
        raise ValueError(f"split must be in 0..{len(model)}, got {split!r}")
    return model[:split], model[split:]


# --- Small models for the 1 x 8 x 8 digits (collab_lib.datasets.digits), each initialised from its seed -----


def _seeded(seed: int, layers) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):  # initialise from ``seed``, leave the global stream alone
        torch.manual_seed(seed)
        return nn.Sequential(*layers())


def digits_small_model(seed: int) -> nn.Sequential:
    """The device model for 1 x 8 x 8 digits: a 4 x 4 thumbnail and one linear layer (320 FLOP)."""
    return _seeded(seed, lambda: [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 10)])  # (B, 16) -> (B, 10)


def digits_large_model(seed: int, width: int = 16) -> nn.Sequential:
    """The cloud model: three 3 x 3 convolutions and a linear layer; 1.2 MFLOP at ``width`` 16."""
    w = positive_int("width", width)
    return _seeded(seed, lambda: [
        nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),                           # (B, w, 8, 8)
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # (B, 2w, 4, 4)
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 4w, 2, 2)
        nn.Flatten(), nn.Linear(16 * w, 10),
    ])


def digits_router_net(seed: int, hidden: int = 16) -> nn.Sequential:
    """A one-shot router for digits: 64 pixels -> ``hidden`` ReLU units -> 2 logits (small right/wrong)."""
    positive_int("hidden", hidden)
    return _seeded(seed, lambda: [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 2)])


def digits_student(seed: int, hidden: int = 16) -> nn.Sequential:
    """A tiny device student for 1 x 8 x 8 digits: 64 pixels -> ``hidden`` ReLU units -> 10 logits
    (1,210 parameters at ``hidden`` 16)."""
    positive_int("hidden", hidden)
    return _seeded(seed, lambda: [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)])


# --- A character-level transformer language model -----------------------------------------------------
#
# A GPT-style decoder (nanoGPT's model.py, shrunk): learned token and position embeddings, pre-LayerNorm
# blocks of causal self-attention and a GELU MLP, a final LayerNorm and an output layer tied to the token
# embedding. No dropout and no biases in the linear layers. ``collab_lib/_data/`` ships two trained sizes
# (:data:`CHAR_LM_CONFIGS`), made by ``scripts/train_lms.py``; load them with :func:`load_char_lm`.


@dataclass(frozen=True)
class CharLMConfig:
    """Shape of a :class:`CharLM`. ``context_len`` is the most tokens a sequence may hold (positions are
    learned, so a longer sequence is an error, not a silent crop)."""

    vocab_size: int = 80
    context_len: int = 128
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_len", "d_model", "num_heads", "num_layers", "d_ff"):
            positive_int(name, getattr(self, name))
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of num_heads ({self.num_heads})")


CHAR_LM_CONFIGS: Mapping[str, CharLMConfig] = MappingProxyType(
    {
        # ~0.16 M parameters: the on-device draft model.
        "device": CharLMConfig(d_model=64, num_heads=4, num_layers=3, d_ff=256),
        # ~2.2 M parameters: the cloud target model.
        "cloud": CharLMConfig(d_model=192, num_heads=6, num_layers=5, d_ff=768),
    }
)


class KVCache:
    """Keys and values of the tokens seen so far, per layer: views of shape (B, nh, L, hs).

    ``crop(n)`` forgets all but the first ``n`` tokens, which is how speculative decoding rolls back
    rejected drafts. The keys and values live in buffers of ``capacity`` positions, allocated at a layer's
    first :meth:`append`, so that decoding a token writes its keys in place instead of copying the whole
    cache (``torch.cat``) at every step; without a capacity each append concatenates.
    """

    def __init__(self, num_layers: int, capacity: int | None = None) -> None:
        positive_int("num_layers", num_layers)
        if capacity is not None:
            positive_int("capacity", capacity)
        self.capacity = capacity
        self._k: list[torch.Tensor | None] = [None] * num_layers  # (B, nh, capacity, hs) buffers
        self._v: list[torch.Tensor | None] = [None] * num_layers
        self._len = [0] * num_layers                              # tokens held, per layer

    @property
    def length(self) -> int:
        return self._len[0]

    @property
    def keys(self) -> list[torch.Tensor | None]:
        return [None if k is None else k[:, :, :n] for k, n in zip(self._k, self._len)]

    @property
    def values(self) -> list[torch.Tensor | None]:
        return [None if v is None else v[:, :, :n] for v, n in zip(self._v, self._len)]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new (B, nh, T, hs) keys and values of ``layer``; return all of them (B, nh, L + T, hs)."""
        L, T = self._len[layer], k.shape[2]
        if self.capacity is None:
            if self._k[layer] is not None:
                k = torch.cat([self._k[layer][:, :, :L], k], dim=2)
                v = torch.cat([self._v[layer][:, :, :L], v], dim=2)
            self._k[layer], self._v[layer], self._len[layer] = k, v, L + T
            return k, v
        if L + T > self.capacity:
            raise ValueError(f"{L + T} tokens exceed the cache's capacity ({self.capacity})")
        if self._k[layer] is None:
            B, nh, _, hs = k.shape
            self._k[layer] = k.new_empty(B, nh, self.capacity, hs)
            self._v[layer] = v.new_empty(B, nh, self.capacity, hs)
        self._k[layer][:, :, L : L + T] = k
        self._v[layer][:, :, L : L + T] = v
        self._len[layer] = L + T
        return self._k[layer][:, :, : L + T], self._v[layer][:, :, : L + T]

    def crop(self, n: int) -> None:
        if not 0 <= n <= self.length:
            raise ValueError(f"cannot crop a cache of {self.length} tokens to {n}")
        self._len = [min(m, n) for m in self._len]


def _layer_norm(m: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)  # what nn.LayerNorm computes


class CausalSelfAttention(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.num_heads
        qkv = F.linear(x, self.qkv.weight).view(B, T, 3, self.num_heads, hs)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                                    # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.append(layer, k, v)                                              # (B, nh, L+T, hs)
        S = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)                                   # (B, nh, T, S)
        if T > 1:  # one query (a decoding step) sees every key: nothing to mask
            # Query t (absolute position S - T + t) sees keys 0..S - T + t: a causal mask shifted right by
            # the S - T cached tokens.
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)                     # (B, T, C)
        return F.linear(y, self.proj.weight)


class Block(nn.Module):
    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff, bias=False),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model, bias=False),
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        # The submodules' own computations, called as functions: a decoding step of these small models is
        # mostly per-call overhead, and nn.Module's call machinery was about a third of it. Bit for bit what
        # the submodules compute (tests/test_char_lm.py compares with torch's own layers).
        x = x + self.attn.forward(_layer_norm(self.ln1, x), cache, layer)
        up, down = self.mlp[0], self.mlp[2]
        return x + F.linear(F.gelu(F.linear(_layer_norm(self.ln2, x), up.weight)), down.weight)


class CharLM(nn.Module):
    """A character-level causal transformer: ``(B, T)`` token ids -> ``(B, T, V)`` next-token logits.

    ``forward(ids, cache)`` with a :class:`KVCache` treats ``ids`` as the continuation of the ``cache.length``
    tokens already in the cache, appends their keys and values, and returns logits for the new positions
    only: decoding a token then costs one position, not the whole prefix. Without a cache it is the plain
    full forward pass.
    """

    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.context_len, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
        B, T = ids.shape
        start = 0 if cache is None else cache.length
        if start + T > self.config.context_len:
            raise ValueError(f"{start + T} tokens exceed the model's context_len ({self.config.context_len})")
        pos = torch.arange(start, start + T, device=ids.device)
        x = F.embedding(ids, self.tok_emb.weight) + F.embedding(pos, self.pos_emb.weight)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block.forward(x, cache, i)
        return _layer_norm(self.ln_f, x) @ self.tok_emb.weight.T                           # (B, T, V), tied

    def new_cache(self) -> KVCache:
        return KVCache(self.config.num_layers, capacity=self.config.context_len)


class CachedLM:
    """A :class:`CharLM` behind the plain callable interface ``(1, T) ids -> (1, T, V) logits``, with a KV
    cache kept across calls.

    Each call finds the longest common prefix of ``ids`` with the previous call's, crops the cache to it, runs
    the model on the remaining positions only, and returns the stored logits of the prefix together with the
    new ones. A decoding loop that extends its sequence (or rolls back rejected drafts and extends again) so
    pays per new token, while the caller sees exactly the full forward pass (``tests/test_char_lm.py``).
    Batch size 1 only.
    """

    def __init__(self, model: CharLM) -> None:
        self.model = model
        self.config = model.config
        self.reset()

    def reset(self) -> None:
        self.cache = self.model.new_cache()
        self.ids = torch.empty(0, dtype=torch.int64)
        dtype = self.model.tok_emb.weight.dtype  # logits in the model's dtype, float32 or float64
        self.logits = torch.empty(0, self.config.vocab_size, dtype=dtype)
        self.positions_computed = 0  # total positions run through the model: the cost, in tokens

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[0] != 1:
            raise ValueError(f"CachedLM takes ids of shape (1, T), got {tuple(ids.shape)}")
        seq = ids[0]
        n = min(len(seq), len(self.ids))
        if torch.equal(seq[:n], self.ids[:n]):  # the usual case: the previous sequence, extended
            common = n
        else:
            common = int((seq[:n] == self.ids[:n]).to(torch.int64).cumprod(0).sum())
        common = min(common, len(seq) - 1)  # recompute at least the last position: it must be returned
        self.cache.crop(common)
        new = self.model(seq[common:][None], self.cache)[0]                              # (T - common, V)
        self.ids = seq.clone()
        self.logits = torch.cat([self.logits[:common], new])
        self.positions_computed += len(seq) - common
        return self.logits[None]                                                          # (1, T, V)


DATA_DIR = Path(__file__).parent / "_data"


def char_lm_checkpoint(size: str) -> Path:
    """Path of the shipped checkpoint of ``size`` (``"device"`` or ``"cloud"``)."""
    if size not in CHAR_LM_CONFIGS:
        raise ValueError(f"unknown char LM size {size!r}; valid: {sorted(CHAR_LM_CONFIGS)}")
    return DATA_DIR / f"char_lm_{size}.pt"


def load_char_lm(size: str, dtype: torch.dtype | None = None) -> CharLM:
    """The shipped, trained :class:`CharLM` of ``size`` (``"device"`` or ``"cloud"``), in eval mode, in
    ``dtype`` (torch's default float dtype if ``None``).

    Checkpoints are bf16 state dicts (half the bytes of fp32); the weights are cast to ``dtype`` here,
    exactly (every bf16 value is also a float32 and a float64 value), and the validation losses in
    ``_data/char_lm_curves.json`` were measured on exactly these weights. A lab that times the models asks
    for float32, what a deployment runs.
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    path = char_lm_checkpoint(size)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CharLM(CHAR_LM_CONFIGS[size]).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    return model.eval()


def char_lm_curves() -> dict:
    """The training record of the shipped models (``_data/char_lm_curves.json``): per size, the config,
    parameter count, steps, training and validation losses (nats per character) along training, the
    final validation loss of the shipped weights, and the command and time it took."""
    return json.loads((DATA_DIR / "char_lm_curves.json").read_text())
