"""Parameter-based collaboration: devices and the cloud exchange model parameters or updates.

* :mod:`~collab_lib.parameter_based.fedavg` — FedAvg, FedProx and server momentum; client sampling,
  dropout and stragglers; a batched engine (``torch.func.vmap``) and the per-client reference loop.
* :mod:`~collab_lib.parameter_based.compress` — quantized and sparsified updates with error feedback.
* :mod:`~collab_lib.parameter_based.flower_app` — the same client update and aggregation as a Flower
  ClientApp/ServerApp (optional extra ``[scale]``; the only module that imports ``flwr``).

Importing this package does not import ``flwr``.
"""
