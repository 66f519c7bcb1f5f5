"""The shared argument checks: positive and non-negative ints, Python or numpy, and nothing else; and the
library's functions and configurations that use them name their own argument."""

import numpy as np
import pytest
import torch

from collab_lib._validate import non_negative_int, positive_int
from collab_lib.applications.livestream import StreamConfig, cloud_sample_mask
from collab_lib.data_based.upload import select_random
from collab_lib.datasets import partition
from collab_lib.datasets.recsys import RecsysConfig, generate
from collab_lib.datasets.shakespeare import next_char_samples, shakespeare_users
from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.feature_based.logit_exchange import FDConfig
from collab_lib.feature_based.split_learning import TrainConfig, split_bytes_per_step
from collab_lib.hardware.calibrate import measure_latency_s, measure_matmul_flops, measure_memory_bandwidth
from collab_lib.hardware.llm import generation_profile, get_format, get_model
from collab_lib.hardware.memory import transformer_training_memory
from collab_lib.hardware.network import sample_link
from collab_lib.hardware.roofline import prefill_tokens_per_s
from collab_lib.hardware.specs import get_device, get_link
from collab_lib.models import CharLMConfig, KVCache, digits_student, mlp, residual_cnn, vision_cnn
from collab_lib.parameter_based.federated import FedConfig
from collab_lib.parameter_based.personalize import PersonalConfig, stack
from collab_lib.seed import generator, set_seed
from collab_lib.system.cascade import fit_classifier
from collab_lib.system.early_exit import digits_multi_exit_cnn, train_multi_exit
from collab_lib.system.serve import measure_split
from collab_lib.system.speculative import SpeculativeLatency, expected_tokens_per_call, speculative_generate


def test_positive_int_accepts_python_and_numpy_ints():
    assert positive_int("n", 3) == 3
    value = positive_int("n", np.int64(7))
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "3", None, np.float64(4.0)])
def test_positive_int_rejects_everything_else_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"^batch_size must be a positive int, got "):
        positive_int("batch_size", bad)


def test_non_negative_int_accepts_zero_and_numpy_ints():
    assert non_negative_int("seed", 0) == 0
    value = non_negative_int("seed", np.uint8(5))
    assert value == 5 and type(value) is int


@pytest.mark.parametrize("bad", [-1, False, 0.0, "0", None, np.float32(1.0)])
def test_non_negative_int_rejects_everything_else_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"^seed must be a non-negative int, got "):
        non_negative_int("seed", bad)


def test_a_configuration_reports_its_own_field():
    with pytest.raises(ValueError, match="local_epochs must be a positive int"):
        FedConfig(local_epochs=True)


_X, _Y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
_LLAMA, _BF16 = get_model("llama-3.2-1b"), get_format("bf16")

# (argument's name, call with a bad value, whether 0 is allowed); each call is otherwise valid.
CALLS = {
    "max_samples_per_user": lambda v: fedprox_synthetic(0.0, 0.0, num_users=2, seed=0, max_samples_per_user=v),
    "seq_len": lambda v: next_char_samples(torch.arange(10), v),
    "stride": lambda v: next_char_samples(torch.arange(10), 3, stride=v),
    "min_samples": lambda v: shakespeare_users(2, min_samples=v),
    "min_size": lambda v: partition.dirichlet(np.arange(20) % 2, 2, 1.0, seed=0, min_size=v),
    "seed": lambda v: generate(RecsysConfig(), seed=v),
    "tokens": lambda v: generation_profile(_LLAMA, _BF16, v),
    "prompt_len": lambda v: prefill_tokens_per_s(1e9, 2.0, get_device("snapdragon-8-gen-3"), "fp16", v),
    "batch": lambda v: transformer_training_memory(_LLAMA, 8, batch=v),
    "n": lambda v: sample_link(get_link("wifi"), v, seed=0),
    "repeats": lambda v: measure_matmul_flops(8, repeats=v),
    "num_bytes": lambda v: measure_memory_bandwidth(v),
    "warmup": lambda v: measure_latency_s(lambda x: None, _X, repeats=1, warmup=v),
    "gamma": lambda v: expected_tokens_per_call(0.5, v),
    "gamma_max": lambda v: SpeculativeLatency(0.01, 0.1, 0.05).best_gamma(0.5, gamma_max=v),
    "max_new_tokens": lambda v: speculative_generate(None, None, torch.tensor([1]), max_new_tokens=v, gamma=4),
    "epochs": lambda v: fit_classifier(torch.nn.Linear(3, 2), _X, _Y, epochs=v, lr=0.1, seed=0),
    "batch_size": lambda v: train_multi_exit(digits_multi_exit_cnn(seed=0), _X, _Y, 1, 0.1, 0, batch_size=v),
    "requests": lambda v: measure_split(torch.nn.Sequential(torch.nn.Identity()), 0, _X, [], None, requests=v),
    "num_streams": lambda v: StreamConfig(num_streams=v),
    "duration_s": lambda v: cloud_sample_mask(2, v, 1.0, seed=0),
    "budget": lambda v: select_random(10, v, seed=0),
    "label_bytes": lambda v: split_bytes_per_step(10, 4, label_bytes=v),
    "rounds": lambda v: TrainConfig(rounds=v),
    "digest_epochs": lambda v: FDConfig(digest_epochs=v),
    "num_users": lambda v: stack({"w": torch.zeros(2)}, v),
    "offset": lambda v: generator(0, offset=v),
    "threads": lambda v: set_seed(0, threads=v),
    "width": lambda v: vision_cnn(width=v),
    "stem_channels": lambda v: vision_cnn(stem_channels=v),
    "cut_channels": lambda v: vision_cnn(cut_channels=v),
    "blocks_per_stage": lambda v: residual_cnn(blocks_per_stage=v),
    "in_features": lambda v: mlp(v, 0, 10, seed=0),
    "hidden": lambda v: digits_student(0, hidden=v),
    "d_model": lambda v: CharLMConfig(d_model=v),
    "num_layers": lambda v: KVCache(v),
    "capacity": lambda v: KVCache(1, capacity=v),
}
ZERO_ALLOWED = {"min_size", "seed", "warmup", "budget", "label_bytes", "offset"}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad", [-1, 2.0, True])
def test_integer_arguments_are_checked_by_the_shared_helpers(name, bad):
    kind = "non-negative" if name in ZERO_ALLOWED else "positive"
    with pytest.raises(ValueError, match=rf"^{name} must be a {kind} int, got "):
        CALLS[name](bad)


@pytest.mark.parametrize("name", sorted(CALLS.keys() - ZERO_ALLOWED))
def test_zero_is_rejected_where_a_positive_int_is_needed(name):
    with pytest.raises(ValueError, match=rf"^{name} must be a positive int, got 0"):
        CALLS[name](0)


def test_seeds_in_configurations_are_non_negative_ints():
    for config in (FedConfig, PersonalConfig):
        with pytest.raises(ValueError, match=r"^seed must be a non-negative int"):
            config(seed=-1)
