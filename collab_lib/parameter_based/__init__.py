"""Parameter-based collaboration: devices and the cloud exchange model parameters or updates.

* :mod:`~collab_lib.parameter_based.federated` — one federated round, written once (client sampling,
  dropout and stragglers, an optional codec on the link), and the loop of rounds with its record.
* :mod:`~collab_lib.parameter_based.strategy` — the interface a strategy implements: what the clients
  minimise and how the server aggregates. One file per strategy: :mod:`~collab_lib.parameter_based.fedavg`,
  :mod:`~collab_lib.parameter_based.fedprox`, :mod:`~collab_lib.parameter_based.fedavgm`; their shared math
  in :mod:`~collab_lib.parameter_based.aggregate`.
* :mod:`~collab_lib.parameter_based.local` — local training: a batched engine (gradients written out for
  MLPs, ``torch.func.vmap`` for other models) and the per-client reference loop.
* :mod:`~collab_lib.parameter_based.params` — model parameters as plain tensors.
* :mod:`~collab_lib.parameter_based.compress` — quantized and sparsified updates with error feedback.
* :mod:`~collab_lib.parameter_based.personalize` — local fine-tuning, FedPer (shared body, personal head)
  and Ditto; per-user evaluation (device FLOPs are counted in :mod:`~collab_lib.hardware.profile`).
* :mod:`~collab_lib.parameter_based.dccl` — DCCL's MetaPatch (a per-user patch on a frozen cloud model) and
  MoMoDistill (distilling the patched models back into the cloud model).
* :mod:`~collab_lib.parameter_based.duet` — DUET: a cloud hypernetwork generates a device's last layer from
  an embedding of its recent data.
* :mod:`~collab_lib.parameter_based.flower_app` — the same client update and aggregation as a Flower
  ClientApp/ServerApp (optional extra ``[scale]``; the only module that imports ``flwr``).

Importing this package does not import ``flwr``.
"""
