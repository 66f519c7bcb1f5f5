"""LLM shapes and roofline decoding against hand counts, published totals and published measurements."""

import pytest

from collab_lib.hardware import get_device
from collab_lib.hardware.llm import (
    EXECUTORCH_ONEPLUS12,
    FORMATS,
    MODELS,
    decode_bytes_per_token,
    decode_params_per_token,
    get_format,
    get_model,
    memory_required_bytes,
    predict_decode,
    predict_prefill,
    weight_bytes,
)
from collab_lib.hardware.roofline import decode_tokens_per_s, fits_in_memory, prefill_tokens_per_s
from collab_lib.hardware.specs import DEVICES, DeviceSpec

TOY = DeviceSpec("toy", {"bf16": 1e12}, mem_bw_bytes_per_s=1e11, mem_bytes=8e9, power_w=None)

# ExecuTorch on a OnePlus 12 (Snapdragon 8 Gen 3 CPU): decode tokens/s and .pte size in MiB.
EXECUTORCH = {k: (m.decode_tokens_per_s, m.file_mib) for k, m in EXECUTORCH_ONEPLUS12.items()}


def test_the_published_table_is_the_one_in_reference_figures():
    # Typed independently from REFERENCE_FIGURES.md, so a typo in the library table fails here.
    assert EXECUTORCH == {
        ("llama-3.2-1b", "bf16"): (19.2, 2358), ("llama-3.2-1b", "spinquant-4bit"): (50.2, 1083),
        ("llama-3.2-3b", "bf16"): (7.6, 6129), ("llama-3.2-3b", "spinquant-4bit"): (19.7, 2435),
    }
    assert [m.prefill_tokens_per_s for m in EXECUTORCH_ONEPLUS12.values()] == [60.3, 260.5, 21.2, 89.7]


def test_parameter_counts_match_a_hand_count_and_the_published_totals():
    one_b = get_model("llama-3.2-1b")
    # by hand: per block Wq 2048^2 + Wk, Wv 2048*512 + Wo 2048^2 + MLP 3*2048*8192 + 2 norms of 2048
    per_block = 2 * 2048**2 + 2 * 2048 * 512 + 3 * 2048 * 8192 + 2 * 2048
    assert one_b.num_params == 16 * per_block + 2048 + 128256 * 2048 == 1_235_814_400
    # Published totals of the larger models: 3.21B and 8.03B parameters.
    assert round(MODELS["llama-3.2-3b"].num_params / 1e9, 2) == 3.21
    assert round(MODELS["llama-3.1-8b"].num_params / 1e9, 2) == 8.03


@pytest.mark.parametrize("key", sorted(EXECUTORCH))
def test_weight_bytes_match_the_published_file_sizes(key):
    model, fmt = get_model(key[0]), get_format(key[1])
    assert weight_bytes(model, fmt) / 2**20 == pytest.approx(EXECUTORCH[key][1], rel=0.005)


@pytest.mark.parametrize("key", sorted(EXECUTORCH))
def test_decode_prediction_within_a_factor_2_of_executorch(key):
    model, fmt = get_model(key[0]), get_format(key[1])
    params = decode_params_per_token(model)
    precision = "bf16" if key[1] == "bf16" else "int8"  # 8da4w: int8 activations x 4-bit weights
    predicted = decode_tokens_per_s(
        params, decode_bytes_per_token(model, fmt) / params, get_device("snapdragon-8-gen-3"), precision,
        kv_cache_bytes=model.kv_cache_bytes(64), attention_flops=model.attention_flops(64),
    )
    measured = EXECUTORCH[key][0]
    assert 1.0 <= predicted / measured <= 2.0  # a bound: never below what was measured
    assert predict_decode(model, fmt, get_device("snapdragon-8-gen-3"), precision, 64) == pytest.approx(predicted)


def test_prefill_attention_sums_over_the_prompt():
    m, fmt = get_model("llama-3.2-1b"), get_format("bf16")
    params = decode_params_per_token(m)
    # 4 tokens attend to 0, 1, 2, 3 earlier tokens: 6 x the per-token-per-context attention FLOPs.
    expected = prefill_tokens_per_s(params, decode_bytes_per_token(m, fmt) / params, TOY, "bf16", 4,
                                    attention_flops=6 * m.attention_flops(1))
    assert predict_prefill(m, fmt, TOY, "bf16", 4) == pytest.approx(expected)
    assert memory_required_bytes(m, fmt, 100) == weight_bytes(m, fmt) + m.kv_cache_bytes(100)


def test_decode_never_beats_bandwidth_over_bytes_per_token():
    for device in DEVICES.values():
        for model in MODELS.values():
            fmt = FORMATS["bf16"]
            nbytes = decode_bytes_per_token(model, fmt) + model.kv_cache_bytes(4096)
            precision = next(iter(device.peak_flops_per_s))
            tps = decode_tokens_per_s(decode_params_per_token(model), decode_bytes_per_token(model, fmt) /
                                      decode_params_per_token(model), device, precision,
                                      kv_cache_bytes=model.kv_cache_bytes(4096))
            assert tps <= device.mem_bw_bytes_per_s / nbytes * (1 + 1e-12)


def test_decode_and_prefill_by_hand_on_a_toy_device():
    # 1e9 params at 2 bytes: 2e9 bytes / 1e11 B/s = 20 ms; 2e9 FLOP / 1e12 = 2 ms -> memory-bound, 50 tok/s.
    assert decode_tokens_per_s(1e9, 2.0, TOY, "bf16") == pytest.approx(50.0)
    # + a 1e9-byte KV cache: 30 ms -> 33.3 tok/s; at half efficiency 16.7 tok/s.
    assert decode_tokens_per_s(1e9, 2.0, TOY, "bf16", kv_cache_bytes=1e9) == pytest.approx(1 / 0.03)
    assert decode_tokens_per_s(1e9, 2.0, TOY, "bf16", kv_cache_bytes=1e9, efficiency=0.5) == pytest.approx(1 / 0.06)
    # Prefill of 100 tokens: 2e11 FLOP / 1e12 = 0.2 s vs 20 ms of weights -> compute-bound, 500 tok/s.
    assert prefill_tokens_per_s(1e9, 2.0, TOY, "bf16", 100) == pytest.approx(500.0)
    # Prefill of 1 token is decode without the KV cache.
    assert prefill_tokens_per_s(1e9, 2.0, TOY, "bf16", 1) == pytest.approx(50.0)


def test_kv_cache_and_attention_by_hand():
    m = get_model("llama-3.2-1b")
    assert m.kv_cache_bytes(1000) == 2 * 16 * 1000 * 8 * 64 * 2  # K and V, layers, tokens, kv heads, dim, bf16
    assert m.attention_flops(1000) == 2 * 2 * 16 * 32 * 64 * 1000


def test_memory_fit():
    assert fits_in_memory(7e9, TOY) and not fits_in_memory(9e9, TOY)
    assert not fits_in_memory(7e9, TOY, usable_fraction=0.5)
    with pytest.raises(ValueError, match="memory capacity"):
        fits_in_memory(1.0, get_device("snapdragon-8-gen-3"))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: get_model("gpt-5"), "llama-3.2-1b"),
        (lambda: get_format("fp4"), "bf16"),
        (lambda: decode_tokens_per_s(1e9, 2.0, TOY, "int4"), "int4.*bf16"),
        (lambda: decode_tokens_per_s(-1, 2.0, TOY, "bf16"), "params"),
        (lambda: prefill_tokens_per_s(1e9, 2.0, TOY, "bf16", 0), "prompt_len"),
        (lambda: fits_in_memory(1.0, TOY, usable_fraction=0), "usable_fraction"),
    ],
)
def test_bad_input_is_refused_with_the_valid_choices(call, match):
    with pytest.raises(ValueError, match=match):
        call()
