"""scikit-learn's 8x8 handwritten digits as a torch data set, for vision labs that run in seconds.

1,797 grey-scale images of the digits 0-9 (the UCI "Optical Recognition of Handwritten Digits" test set),
shipped inside scikit-learn (Pedregosa et al., JMLR 2011): nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

NUM_CLASSES = 10
MAX_PIXEL = 16.0  # pixel values are integers 0..16


def load_digits() -> TensorDataset:
    """All 1,797 digits: images (N, 1, 8, 8) in torch's default float dtype, scaled to [0, 1], labels int64 (N,)."""
    from sklearn.datasets import load_digits as _load  # imported here: scikit-learn is slow to import

    bunch = _load()
    images = torch.tensor(bunch.images, dtype=torch.get_default_dtype()).unsqueeze(1) / MAX_PIXEL
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    return TensorDataset(images, labels)
