"""Training vs inference memory against hand counts, ZeRO's 16 bytes/parameter and Korthikanti's formula."""

import pytest
import torch
from torch import nn

from collab_lib.hardware.llm import TransformerSpec, get_model
from collab_lib.hardware.memory import (
    measure_inference_memory,
    measure_training_memory,
    saved_activation_bytes,
    transformer_training_memory,
)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))


def test_saved_activations_by_hand():
    # Linear 1 saves its input (8x10); ReLU saves its output (8x20), which Linear 2 saves too (same storage);
    # weights are saved by the matmuls but are parameters, not activations.
    assert saved_activation_bytes(_mlp(), torch.zeros(8, 10)) == 4 * 8 * (10 + 20)


def test_training_breakdown_by_hand_and_frozen_layers():
    model = _mlp()
    weights = 4 * (10 * 20 + 20 + 20 * 5 + 5)
    adam = measure_training_memory(model, torch.zeros(8, 10), "adam")
    assert (adam.weights_bytes, adam.gradients_bytes, adam.optimizer_bytes) == (weights, weights, 2 * weights)
    assert measure_training_memory(model, torch.zeros(8, 10), "sgd").optimizer_bytes == 0
    assert measure_training_memory(model, torch.zeros(8, 10), "momentum").optimizer_bytes == weights
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = measure_training_memory(model, torch.zeros(8, 10), "adam")
    assert frozen.gradients_bytes == 4 * (20 * 5 + 5) and frozen.weights_bytes == weights
    assert frozen.total_bytes == sum([frozen.weights_bytes, frozen.gradients_bytes, frozen.optimizer_bytes,
                                      frozen.activations_bytes])


def test_inference_keeps_only_tensors_in_flight():
    # Largest in + out pair: ReLU, 8x20 in and 8x20 out.
    assert measure_inference_memory(_mlp(), torch.zeros(8, 10)).activations_bytes == 4 * 8 * 40


def test_transformer_training_memory_follows_zero_and_korthikanti():
    tiny = TransformerSpec("tiny", num_layers=2, d_model=8, num_heads=2, num_kv_heads=2, head_dim=4, d_ff=16,
                           vocab_size=10, tied_embeddings=True)
    full = transformer_training_memory(tiny, seq_len=3, batch=2)
    n = tiny.num_params
    assert full.weights_bytes + full.gradients_bytes + full.optimizer_bytes == 16 * n
    assert full.activations_bytes == 2 * (3 * 2 * 8 * (34 + 5 * 2 * 3 / 8))
    lora = transformer_training_memory(tiny, seq_len=3, batch=2, trainable_fraction=0.0)
    assert lora.weights_bytes == 2 * n and lora.gradients_bytes == lora.optimizer_bytes == 0
    one_b = transformer_training_memory(get_model("llama-3.2-1b"), seq_len=512)
    assert one_b.weights_bytes + one_b.gradients_bytes + one_b.optimizer_bytes == pytest.approx(16 * 1_235_814_400)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: measure_training_memory(_mlp(), torch.zeros(1, 10), "lion"), "adam"),
        (lambda: transformer_training_memory(get_model("llama-3.2-1b"), 0), "seq_len"),
        (lambda: transformer_training_memory(get_model("llama-3.2-1b"), 8, trainable_fraction=2), "trainable"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
