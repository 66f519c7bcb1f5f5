"""The federation of :mod:`collab_lib.parameter_based.federated` as a Flower app, for scaling out.

Flower (Beutel et al. 2020, arXiv:2007.14390) runs a *ServerApp* that sends messages to *ClientApps* on
many nodes; its simulation engine runs the ClientApps as Ray actors on one machine, and the same app runs
on real devices behind a Flower SuperLink. This module builds both sides from our own pieces:

* the ClientApp's ``train`` calls :func:`~collab_lib.parameter_based.local.local_update` (the per-client
  reference our batched engine is tested against) on the batches of
  :func:`~collab_lib.parameter_based.federated.client_batches`, with the round's proximal weight;
* the ServerApp runs :func:`~collab_lib.parameter_based.federated.run_round`, the same round as
  :func:`~collab_lib.parameter_based.federated.federate`, with local training that sends Flower messages,
  and any :class:`~collab_lib.parameter_based.strategy.Strategy` (FedAvg, FedProx, FedAvgM, or a new one:
  the run config names its class and fields).

Randomness depends only on (seed, round, client id), so a Flower run and a run of
:func:`~collab_lib.parameter_based.federated.federate` with the same settings compute the same model, up
to the order of float additions (``tests/test_flower_app.py``).

How to run it. Flower's current entry point is the ``flwr run`` command on an *app directory* (a
``pyproject.toml`` with a ``[tool.flwr.app]`` section); ``flwr.simulation.run_simulation``, the former
notebook entry point, is deprecated. :func:`write_app_dir` writes such a directory, whose components are
``server_app`` and ``client_app`` below; :func:`run_flower_simulation` starts a SuperLink in simulation
mode (as a child process it owns), runs ``flwr run`` against it, waits for the run to finish, stops the
SuperLink, and returns the final parameters and the per-round wall times the ServerApp measured.

The data are FedProx's Synthetic(alpha, beta) (:func:`~collab_lib.datasets.synthetic.fedprox_synthetic`),
which every node regenerates from the run config's seed and then keeps only its own user's share: node
``partition-id`` k is client k. Install with the extra ``[scale]`` (``flwr[simulation]``); this is the only
module of the library that imports ``flwr``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from collab_lib.datasets.synthetic import fedprox_synthetic
from collab_lib.datasets.users import UserDatasets
from collab_lib.models import mlp
from collab_lib.parameter_based.fedavg import FedAvg
from collab_lib.parameter_based.federated import FedConfig, RoundPlan, client_batches, run_round
from collab_lib.parameter_based.local import local_update
from collab_lib.parameter_based.params import Params, get_params
from collab_lib.parameter_based.strategy import ClientResults, LocalObjective, Strategy


@dataclass(frozen=True)
class SyntheticTask:
    """The data and model of a Flower run: Synthetic(alpha, beta) for ``num_clients`` users and an MLP."""

    alpha: float = 0.5
    beta: float = 0.5
    num_clients: int = 10
    max_samples_per_user: int = 64
    data_seed: int = 0
    hidden: int = 32          # 0 = multinomial logistic regression
    model_seed: int = 0

    def data(self) -> UserDatasets:
        return _synthetic(self.alpha, self.beta, self.num_clients, self.max_samples_per_user, self.data_seed)

    def model(self) -> torch.nn.Module:
        return mlp(60, self.hidden, 10, seed=self.model_seed)


@functools.lru_cache(maxsize=4)
def _synthetic(alpha: float, beta: float, num_clients: int, max_samples: int, seed: int) -> UserDatasets:
    # Cached: a simulation actor serves many clients and would otherwise regenerate the data for each.
    return fedprox_synthetic(alpha, beta, num_clients, seed, max_samples_per_user=max_samples)[0]


# Run-config keys (Flower's convention: kebab-case) <-> our dataclass fields.
_TASK_KEYS = {"alpha": float, "beta": float, "num-clients": int, "max-samples-per-user": int,
              "data-seed": int, "hidden": int, "model-seed": int}
_FED_KEYS = {"rounds": int, "client-fraction": float, "local-epochs": int, "batch-size": int, "lr": float,
             "seed": int}
_STRATEGY_KEY = "strategy"  # "module:Class"; each field f of the strategy under "strategy-f"


def to_run_config(task: SyntheticTask, config: FedConfig, strategy: Strategy = FedAvg()) -> dict[str, float | int | str]:
    """Flower run config (flat, kebab-case keys) describing ``task``, ``config`` and ``strategy``.

    Only what the Flower app implements is passed: dropout and stragglers are not simulated there. The
    strategy travels as its class's import path and its fields, which must be numbers (a frozen dataclass).
    """
    if config.dropout_prob or config.straggler_fraction:
        raise ValueError("the Flower app does not simulate dropout_prob or straggler_fraction; set them to 0")
    if not isinstance(strategy, Strategy) or not dataclasses.is_dataclass(strategy):
        raise TypeError(f"strategy must be a Strategy dataclass, got {strategy!r}")
    out: dict[str, float | int | str] = {}
    for key, kind in {**_TASK_KEYS, **_FED_KEYS}.items():
        source = task if key in _TASK_KEYS else config
        out[key] = kind(getattr(source, key.replace("-", "_")))
    out[_STRATEGY_KEY] = f"{type(strategy).__module__}:{type(strategy).__qualname__}"
    for f in dataclasses.fields(strategy):
        value = getattr(strategy, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"strategy field {f.name} = {value!r}: only numbers travel in a run config")
        out[f"{_STRATEGY_KEY}-{f.name.replace('_', '-')}"] = value
    return out


def from_run_config(run_config: dict) -> tuple[SyntheticTask, FedConfig, Strategy]:
    """The task, federated configuration and strategy a Flower run config describes."""
    task = SyntheticTask(**{k.replace("-", "_"): t(run_config[k]) for k, t in _TASK_KEYS.items()})
    config = FedConfig(**{k.replace("-", "_"): t(run_config[k]) for k, t in _FED_KEYS.items()})
    module, _, name = str(run_config[_STRATEGY_KEY]).partition(":")
    cls = getattr(importlib.import_module(module), name)
    fields = {f.name: run_config[f"{_STRATEGY_KEY}-{f.name.replace('_', '-')}"] for f in dataclasses.fields(cls)}
    return task, config, cls(**fields)


# --- ClientApp ---------------------------------------------------------------------------------------------

client_app = ClientApp()


@client_app.query()
def describe(msg: Message, context: Context) -> Message:
    """Tell the server which client this node is and how many samples it holds."""
    task, _, _ = from_run_config(context.run_config)
    k = int(context.node_config["partition-id"])
    info = MetricRecord({"client-id": k, "num-examples": len(task.data().ys[k])})
    return Message(RecordDict({"info": info}), reply_to=msg)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Client k's local update: :func:`~collab_lib.parameter_based.local.local_update` from the received
    global parameters, on the batches its (seed, round, k) determine, with the round's proximal weight μ."""
    task, config, _ = from_run_config(context.run_config)
    k = int(context.node_config["partition-id"])
    data = task.data()
    x, y = data.xs[k], data.ys[k]
    global_params = {n: t.clone() for n, t in msg.content["arrays"].to_torch_state_dict().items()}
    round_idx, steps = int(msg.content["config"]["round"]), int(msg.content["config"]["steps"])
    batches = client_batches(len(y), config.batch_size, steps, config.seed, round_idx, k)
    params = local_update(task.model(), global_params, x, y, batches, config.lr, float(msg.content["config"]["mu"]))
    reply = RecordDict({"arrays": ArrayRecord(params),
                        "metrics": MetricRecord({"client-id": k, "num-examples": len(y)})})
    return Message(reply, reply_to=msg)


# --- ServerApp ---------------------------------------------------------------------------------------------

server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Our rounds (:func:`~collab_lib.parameter_based.federated.run_round`) with local training over Flower
    messages; writes ``params.pt`` and ``timing.json`` to ``output-dir``."""
    task, config, strategy = from_run_config(context.run_config)
    params = get_params(task.model())
    state = strategy.init_state(params)
    nodes = _wait_for_nodes(grid, task.num_clients)
    replies = grid.send_and_receive([Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY)
                                     for n in nodes])
    node_of, sizes = {}, np.zeros(task.num_clients, dtype=np.int64)
    for r in replies:
        info = r.content["info"]
        node_of[int(info["client-id"])] = r.metadata.src_node_id
        sizes[int(info["client-id"])] = int(info["num-examples"])
    answered = 0

    def train_on_nodes(plan: RoundPlan, sent: Params, objective: LocalObjective) -> ClientResults | None:
        nonlocal answered
        messages = [Message(RecordDict({"arrays": ArrayRecord(sent),
                                        "config": ConfigRecord({"round": plan.round_idx, "steps": int(s),
                                                                "mu": objective.mu})}),
                            dst_node_id=node_of[int(k)], message_type=MessageType.TRAIN)
                    for k, s in zip(plan.answered, plan.steps)]
        replies = [r for r in grid.send_and_receive(messages) if not r.has_error()]
        answered = len(replies)
        if not replies:
            return None
        updates = [r.content["arrays"].to_torch_state_dict() for r in replies]
        metrics = [r.content["metrics"] for r in replies]
        return ClientResults(client_ids=np.array([int(m["client-id"]) for m in metrics]),
                             num_examples=torch.tensor([float(m["num-examples"]) for m in metrics],
                                                       dtype=torch.float64),
                             params={n: torch.stack([u[n] for u in updates]) for n in sent})

    round_s = []
    for t in range(config.rounds):
        start = time.perf_counter()
        out = run_round(t, params, state, sizes, config, strategy, train_on_nodes)
        params, state = out.params, out.state
        round_s.append(time.perf_counter() - start)
    out_dir = Path(str(context.run_config["output-dir"]))
    torch.save(params, out_dir / "params.pt")
    (out_dir / "timing.json").write_text(json.dumps({"round_s": round_s, "answered": answered}))


def _wait_for_nodes(grid: Grid, n: int, timeout_s: float = 120.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= n:
            return nodes
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(nodes)} of {n} nodes connected within {timeout_s} s")
        time.sleep(0.2)


# --- Running it with `flwr run` ------------------------------------------------------------------------------

APP_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "collabfl"
version = "1.0.0"
description = "FedAvg/FedProx of collab_lib on Flower"
license = "MIT"
dependencies = []

[tool.flwr.app]
publisher = "collab-book"

[tool.flwr.app.components]
serverapp = "collab_lib.parameter_based.flower_app:server_app"
clientapp = "collab_lib.parameter_based.flower_app:client_app"

[tool.flwr.app.config]
{config}
"""


def write_app_dir(path: Path, run_config: dict[str, float | int | str]) -> Path:
    """Write a Flower app directory (``pyproject.toml`` only: the code is this installed module)."""
    path.mkdir(parents=True, exist_ok=True)
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in run_config.items())
    (path / "pyproject.toml").write_text(APP_PYPROJECT.format(config=lines))
    return path


@dataclass(frozen=True)
class FlowerRun:
    params: Params
    round_s: list[float]   # wall time of each round, measured in the ServerApp
    total_s: float         # `flwr run` from start to finish, including Ray's start-up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_healthy(process: subprocess.Popen, http_port: int, log_path: Path, timeout_s: float = 60.0) -> None:
    """Poll the SuperLink's /health endpoint (what ``flwr`` itself does for its managed SuperLink)."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"flower-superlink exited with code {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=0.5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"flower-superlink not healthy after {timeout_s} s:\n{log_path.read_text()[-3000:]}")


def run_flower_simulation(task: SyntheticTask, config: FedConfig, strategy: Strategy = FedAvg(), *,
                          num_cpus: int = 2, timeout_s: float = 900.0) -> FlowerRun:
    """Run the app on Flower's simulation engine with ``task.num_clients`` virtual nodes.

    Starts ``flower-superlink --simulation`` on free local ports, submits the app with
    ``flwr run <app> <connection> --stream``, and stops the SuperLink afterwards. ``num_cpus`` is what Ray
    may use; each ClientApp gets one CPU. Raises ``RuntimeError`` with the logs if the run fails.
    """
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="collab_flower_"))
    ports = {name: _free_port() for name in ("http", "health")}
    run_config = {**to_run_config(task, config, strategy), "output-dir": str(work)}
    app = write_app_dir(work / "app", run_config)
    home = work / "flwr_home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "sim"\n\n[superlink.sim]\naddress = "127.0.0.1:{ports["http"]}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_TELEMETRY_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
    log = (work / "superlink.log").open("w")
    superlink = subprocess.Popen(
        [str(bin_dir / "flower-superlink"), "--insecure", "--simulation", "--isolation", "subprocess",
         "--health-server-address", f"127.0.0.1:{ports['health']}",
         "--host", "127.0.0.1", "--port", str(ports["http"]), "--database", ":flwr-in-memory:"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        start = time.perf_counter()
        _wait_until_healthy(superlink, ports["http"], work / "superlink.log")
        federation = (f"num-supernodes={task.num_clients} client-resources-num-cpus=1 "
                      f"init-args-num-cpus={num_cpus} init-args-logging-level=\"ERROR\"")
        run = subprocess.run(
            [str(bin_dir / "flwr"), "run", str(app), "sim", "--stream", "--federation-config", federation],
            env=env, capture_output=True, text=True, timeout=timeout_s, cwd=work)
        total_s = time.perf_counter() - start
        result = work / "params.pt"
        if run.returncode != 0 or not result.exists():
            raise RuntimeError(f"flwr run failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n"
                               f"superlink log:\n{(work / 'superlink.log').read_text()[-3000:]}")
        params = torch.load(result, weights_only=True)
        timing = json.loads((work / "timing.json").read_text())
        return FlowerRun(params=params, round_s=timing["round_s"], total_s=total_s)
    finally:
        superlink.terminate()
        try:
            superlink.wait(timeout=30)
        except subprocess.TimeoutExpired:
            superlink.kill()
            superlink.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
