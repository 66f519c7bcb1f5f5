"""Feature-based collaboration: what device and cloud exchange instead of raw data or whole models.

* :mod:`~collab_lib.feature_based.split_learning` — split learning (activations up, gradients down) and
  its bytes against FedAvg's.
* :mod:`~collab_lib.feature_based.logit_exchange` — federated distillation: logits on a public set.
* :mod:`~collab_lib.feature_based.inversion` — what shared features and gradients leak, and defenses.
"""
