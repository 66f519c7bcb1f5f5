"""Shapes of decoder-only language models and the formats their weights are stored in.

What a roofline estimate of LLM inference needs is not the model's accuracy but its *shape*: how many
weights each token multiplies, how many bytes those weights occupy in a given format, and how large the
KV cache grows with the context. Llama-style blocks (Touvron et al., 2023; Grattafiori et al., 2024):
grouped-query attention with ``num_kv_heads`` key/value heads, a SwiGLU MLP with three d_model x d_ff
matrices, RMSNorm (one weight vector each), and an output layer that may share the embedding table.
Parameter counts are computed from the shape; ``tests/test_llm.py`` checks them against the published
totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from collab_lib._validate import positive_int
from collab_lib.hardware.profile import LayerProfile
from collab_lib.hardware.roofline import decode_tokens_per_s, prefill_tokens_per_s
from collab_lib.hardware.specs import DeviceSpec, lookup


@dataclass(frozen=True)
class TransformerSpec:
    """The shape of a Llama-style decoder-only transformer."""

    name: str
    num_layers: int
    d_model: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    tied_embeddings: bool
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def linear_params_per_layer(self) -> int:
        attn = self.d_model * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)  # Wq, Wo, Wk, Wv
        mlp = 3 * self.d_model * self.d_ff                                                  # gate, up, down
        return attn + mlp

    @property
    def linear_params(self) -> int:
        """Weights of every block's attention and MLP matrices."""
        return self.num_layers * self.linear_params_per_layer

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.d_model

    @property
    def num_params(self) -> int:
        """All parameters: blocks, norms (2 per block + 1 final), embedding, output layer if untied."""
        norms = (2 * self.num_layers + 1) * self.d_model
        output = 0 if self.tied_embeddings else self.embedding_params
        return self.linear_params + norms + self.embedding_params + output

    def kv_cache_bytes(self, context_len: int, bytes_per_value: float = 2.0) -> float:
        """Keys and values of ``context_len`` tokens in every layer."""
        return 2 * self.num_layers * context_len * self.num_kv_heads * self.head_dim * bytes_per_value

    def attention_flops(self, context_len: int) -> float:
        """FLOPs of one new token attending to ``context_len`` tokens: q.K^T and p.V in every head."""
        return 2 * 2 * self.num_layers * self.num_heads * self.head_dim * context_len


@dataclass(frozen=True)
class WeightFormat:
    """How weights are stored: bits per linear weight (+ one scale per ``group_size`` weights) and the
    bits of the output layer and of the embedding table."""

    name: str
    linear_bits: float
    output_bits: float
    embedding_bits: float
    group_size: int | None = None
    scale_bits: int = 0
    separate_output: bool = False  # the output layer stored apart from the embedding even if tied in training
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def linear_bytes_per_param(self) -> float:
        scales = self.scale_bits / self.group_size if self.group_size else 0.0
        return (self.linear_bits + scales) / 8


def decode_bytes_per_token(model: TransformerSpec, fmt: WeightFormat) -> float:
    """Weight bytes read to produce one token: every block matrix and the output layer.

    The embedding table is only looked up (one row), so it counts only when it is the output layer too.
    """
    return model.linear_params * fmt.linear_bytes_per_param + model.embedding_params * fmt.output_bits / 8


def decode_params_per_token(model: TransformerSpec) -> int:
    """Weights multiplied per token: block matrices and the output layer."""
    return model.linear_params + model.embedding_params


def weight_bytes(model: TransformerSpec, fmt: WeightFormat) -> float:
    """Bytes of all weights as stored: blocks, output layer (if separate) and embedding table."""
    output = 0 if model.tied_embeddings and not fmt.separate_output else model.embedding_params
    return (
        model.linear_params * fmt.linear_bytes_per_param
        + output * fmt.output_bits / 8
        + model.embedding_params * fmt.embedding_bits / 8
    )


def memory_required_bytes(model: TransformerSpec, fmt: WeightFormat, context_len: int) -> float:
    """Weights as stored plus a bf16 KV cache of ``context_len`` tokens (activations are small at batch 1)."""
    return weight_bytes(model, fmt) + model.kv_cache_bytes(context_len)


def predict_decode(
    model: TransformerSpec, fmt: WeightFormat, device: DeviceSpec, precision: str,
    context_len: int = 0, efficiency: float = 1.0,
) -> float:
    """Roofline tokens/s of decoding one token after ``context_len`` tokens (bf16 KV cache)."""
    params = decode_params_per_token(model)
    return decode_tokens_per_s(
        params, decode_bytes_per_token(model, fmt) / params, device, precision,
        kv_cache_bytes=model.kv_cache_bytes(context_len), attention_flops=model.attention_flops(context_len),
        efficiency=efficiency,
    )


def predict_prefill(
    model: TransformerSpec, fmt: WeightFormat, device: DeviceSpec, precision: str,
    prompt_len: int, efficiency: float = 1.0,
) -> float:
    """Roofline prompt tokens/s of a ``prompt_len`` prompt; token t attends to the t tokens before it."""
    params = decode_params_per_token(model)
    attention = model.attention_flops(1) * prompt_len * (prompt_len - 1) / 2  # sum over t of t
    return prefill_tokens_per_s(
        params, decode_bytes_per_token(model, fmt) / params, device, precision, prompt_len,
        attention_flops=attention, efficiency=efficiency,
    )


def generation_profile(model: TransformerSpec, fmt: WeightFormat, tokens: int, context_len: int = 0) -> LayerProfile:
    """Generating ``tokens`` tokens at batch 1 as one roofline "layer": FLOPs and weight + KV-cache bytes
    summed over the tokens (decoding reads them again for every token). Its roofline time is the sum of
    the per-token decode times when each token is memory-bound, which lets the fleet and partition
    simulators treat a whole LLM answer as one step."""
    positive_int("tokens", tokens)
    params = decode_params_per_token(model)
    contexts = range(context_len, context_len + tokens)
    flops = sum(2 * params + model.attention_flops(c) for c in contexts)
    kv = sum(model.kv_cache_bytes(c) for c in contexts)
    return LayerProfile(f"{model.name} x {tokens} tokens", flops=int(flops),
                        param_bytes=int(tokens * decode_bytes_per_token(model, fmt) + kv), input_bytes=0, output_bytes=0)


_LLAMA32 = "meta2024llama32"
MODELS: Mapping[str, TransformerSpec] = MappingProxyType(
    {
        "llama-3.2-1b": TransformerSpec("Llama 3.2 1B", num_layers=16, d_model=2048, num_heads=32, num_kv_heads=8,
                                        head_dim=64, d_ff=8192, vocab_size=128256, tied_embeddings=True,
                                        sources={"shape": _LLAMA32}),
        "llama-3.2-3b": TransformerSpec("Llama 3.2 3B", num_layers=28, d_model=3072, num_heads=24, num_kv_heads=8,
                                        head_dim=128, d_ff=8192, vocab_size=128256, tied_embeddings=True,
                                        sources={"shape": _LLAMA32}),
        "llama-3.1-8b": TransformerSpec("Llama 3.1 8B", num_layers=32, d_model=4096, num_heads=32, num_kv_heads=8,
                                        head_dim=128, d_ff=14336, vocab_size=128256, tied_embeddings=False,
                                        sources={"shape": "grattafiori2024llama3"}),
    }
)

_ET = "executorch2024llama"
FORMATS: Mapping[str, WeightFormat] = MappingProxyType(
    {
        "bf16": WeightFormat("bf16", linear_bits=16, output_bits=16, embedding_bits=16,
                             sources={"all": _ET}),
        # ExecuTorch's SpinQuant export: --preq_mode 8da4w_output_8da8w --preq_group_size 32
        # --preq_embedding_quantize 8,0: 4-bit linear weights in groups of 32, an 8-bit output layer and an
        # 8-bit embedding table, stored separately. One fp32 scale per group is inferred: with it the
        # computed sizes match the published .pte sizes (tests/test_llm.py).
        "spinquant-4bit": WeightFormat("4-bit groupwise (SpinQuant, ExecuTorch)", linear_bits=4, output_bits=8,
                                       embedding_bits=8, group_size=32, scale_bits=32, separate_output=True,
                                       sources={"all": _ET, "scale_bits": f"derived: matches the .pte sizes [{_ET}]"}),
    }
)


def get_model(key: str) -> TransformerSpec:
    """The catalog entry of model ``key`` in ``MODELS``; raises ``ValueError`` naming the valid keys."""
    return lookup(MODELS, key, "model")


def get_format(key: str) -> WeightFormat:
    """The catalog entry of weight format ``key`` in ``FORMATS``; raises ``ValueError`` naming the valid keys."""
    return lookup(FORMATS, key, "weight format")


@dataclass(frozen=True)
class Measurement:
    """Published on-device LLM figures for one model and weight format."""

    device: str
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    prompt_len: int
    file_mib: float
    source: str


# ExecuTorch, XNNPACK on the CPU of a OnePlus 12 (Snapdragon 8 Gen 3); prefill = 1 / time to first token
# for a 64-token prompt; file = the .pte size in MB as published (the sizes match MiB, 2**20 bytes).
EXECUTORCH_ONEPLUS12: Mapping[tuple[str, str], Measurement] = MappingProxyType(
    {
        ("llama-3.2-1b", "bf16"): Measurement("snapdragon-8-gen-3", 19.2, 60.3, 64, 2358, _ET),
        ("llama-3.2-1b", "spinquant-4bit"): Measurement("snapdragon-8-gen-3", 50.2, 260.5, 64, 1083, _ET),
        ("llama-3.2-3b", "bf16"): Measurement("snapdragon-8-gen-3", 7.6, 21.2, 64, 6129, _ET),
        ("llama-3.2-3b", "spinquant-4bit"): Measurement("snapdragon-8-gen-3", 19.7, 89.7, 64, 2435, _ET),
    }
)
