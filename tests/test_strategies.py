"""Strategies against hand computations, and the seam a new strategy plugs into.

FedAvgM's momentum is followed over two rounds by hand; a strategy defined here, in a few lines, runs through
both local engines and the shared round unchanged; the round hands a strategy what it should (its own
objective to the clients, the state it returned the round before) and keeps w_t when nobody answers.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from collab_lib.models import mlp
from collab_lib.parameter_based.aggregate import weighted_average
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.fedavgm import FedAvgM
from collab_lib.parameter_based.federated import FedConfig, federate, run_round
from collab_lib.parameter_based.fedprox import FedProx
from collab_lib.parameter_based.params import get_params
from collab_lib.parameter_based.strategy import ClientResults, LocalObjective, Strategy
from tests.test_fedavg import max_diff, unequal_clients


def _results(rows: list[float], n: list[float]) -> ClientResults:
    return ClientResults(client_ids=np.arange(len(rows)), num_examples=torch.tensor(n, dtype=torch.float64),
                         params={"p": torch.tensor(rows, dtype=torch.float64)[:, None]})


def test_fedavg_aggregates_by_sample_count_and_keeps_no_state():
    w = {"p": torch.tensor([0.0], dtype=torch.float64)}
    params, state = FedAvg().aggregate(0, w, _results([1.0, 4.0], [3.0, 1.0]), None)
    assert params["p"].item() == pytest.approx((3 * 1.0 + 1 * 4.0) / 4) and state is None


def test_fedavgm_follows_momentum_over_two_rounds_by_hand():
    s = FedAvgM(server_lr=0.5, server_momentum=0.9)
    w0 = {"p": torch.tensor([1.0], dtype=torch.float64)}
    state = s.init_state(w0)
    w1, state = s.aggregate(0, w0, _results([0.0, 0.0], [1.0, 1.0]), state)
    # Δ0 = 1 - 0 = 1, v1 = 1, w1 = 1 - 0.5 * 1 = 0.5
    assert w1["p"].item() == pytest.approx(0.5) and state["p"].item() == pytest.approx(1.0)
    w2, state = s.aggregate(1, w1, _results([0.25, 0.75], [1.0, 3.0]), state)
    # mean = (0.25 + 3 * 0.75) / 4 = 0.625, Δ1 = 0.5 - 0.625 = -0.125, v2 = 0.9 - 0.125 = 0.775,
    # w2 = 0.5 - 0.5 * 0.775 = 0.1125
    assert state["p"].item() == pytest.approx(0.775) and w2["p"].item() == pytest.approx(0.1125)


def test_fedavgm_without_momentum_at_unit_rate_is_fedavg_exactly():
    data = unequal_clients()
    model = mlp(5, 8, 3, seed=1)
    config = FedConfig(rounds=3, client_fraction=1.0, local_epochs=2, batch_size=4, lr=0.2, seed=0)
    plain = federate(model, data, config).params
    assert max_diff(plain, federate(model, data, config, strategy=FedAvgM(server_momentum=0.0)).params) == 0.0
    assert max_diff(plain, federate(model, data, config, strategy=FedAvgM(server_momentum=0.5)).params) > 1e-3


@dataclass(frozen=True)
class UnweightedMean(Strategy):
    """A strategy as a newcomer would write one: every client counts the same, whatever its size."""

    def aggregate(self, round_idx, global_params, results, state):
        return weighted_average(results.params, torch.ones(len(results.client_ids))), state


@pytest.mark.parametrize("engine", ["batched", "loop"])
def test_a_new_strategy_runs_through_both_engines_and_the_shared_round(engine):
    data = unequal_clients()  # 3, 17 and 40 samples: a lost or kept weighting shows
    model = mlp(5, 0, 3, seed=0)
    config = FedConfig(rounds=1, client_fraction=1.0, local_epochs=1, batch_size=4, lr=0.1, seed=2)
    seen = []

    class Spy(UnweightedMean):
        def aggregate(self, round_idx, global_params, results, state):
            seen.append(results)
            return super().aggregate(round_idx, global_params, results, state)

    ours = federate(model, data, config, strategy=Spy(), engine=engine).params
    (results,) = seen
    assert list(results.client_ids) == [0, 1, 2] and results.num_examples.tolist() == [3.0, 17.0, 40.0]
    by_hand = {n: results.params[n].mean(dim=0) for n in results.params}  # the unweighted mean
    assert max_diff(ours, by_hand) < 1e-6  # float32 sums in another order
    assert max_diff(ours, federate(model, data, config, engine=engine).params) > 1e-3  # not FedAvg's


def test_one_strategy_object_serves_several_runs_alike():
    data = unequal_clients()
    model = mlp(5, 8, 3, seed=1)
    config = FedConfig(rounds=3, client_fraction=1.0, local_epochs=1, batch_size=4, lr=0.2, seed=0)
    strategy = FedAvgM(server_momentum=0.9)
    first, second = (federate(model, data, config, strategy=strategy).params for _ in range(2))
    assert max_diff(first, second) == 0.0  # no momentum left over from the first run


def test_the_round_gives_the_clients_the_strategys_objective_and_the_strategy_its_state():
    sizes = np.array([5, 7, 9])
    config = FedConfig(rounds=2, client_fraction=1.0, batch_size=5, seed=0)
    w = {"p": torch.zeros(2, dtype=torch.float64)}
    calls = []

    @dataclass(frozen=True)
    class Counting(FedProx):
        def aggregate(self, round_idx, global_params, results, state):
            calls.append((round_idx, state))
            return {"p": global_params["p"] + 1}, (state or 0) + 1

    def train(plan, sent, objective):
        assert objective == LocalObjective(mu=0.3)
        a = len(plan.answered)
        return ClientResults(plan.answered, torch.ones(a, dtype=torch.float64), {"p": sent["p"].expand(a, 2)})

    out = run_round(0, w, None, sizes, config, Counting(mu=0.3), train)
    out = run_round(1, out.params, out.state, sizes, config, Counting(mu=0.3), train)
    assert calls == [(0, None), (1, 1)] and out.state == 2 and out.params["p"].tolist() == [2.0, 2.0]
    assert out.bytes_down == 3 * 2 * 4 and out.bytes_up == 3 * 2 * 4  # 2 float32 values each way, 3 clients


def test_a_round_that_nobody_answers_keeps_the_model_and_does_not_call_the_strategy():
    config = FedConfig(client_fraction=1.0, dropout_prob=0.999999, seed=0)
    w = get_params(mlp(5, 0, 3, seed=0))

    class Refuses(FedAvg):
        def aggregate(self, *args):
            raise AssertionError("aggregate must not be called without answers")

    out = run_round(0, w, "state", np.array([4, 4]), config, Refuses(), lambda *a: pytest.fail("no training"))
    assert out.params is w and out.state == "state" and out.bytes_up == 0
