"""Data-based collaboration: what device and cloud exchange is data, or labels on data.

* :mod:`~collab_lib.data_based.distill` — cloud -> device: a cloud teacher's soft targets or pseudo-labels
  train a device student (knowledge distillation).
* :mod:`~collab_lib.data_based.augment` — cloud -> device: the cloud retrieves samples like the device's from
  its large pool, and the device personalizes on local + retrieved data (MPDA, CoDA).
* :mod:`~collab_lib.data_based.upload` — device -> cloud: which samples a device uploads under a budget.
"""
