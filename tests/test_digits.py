"""The digits wrapper keeps scikit-learn's data intact."""

import numpy as np
import torch
from sklearn.datasets import load_digits as sk_load

from collab_lib.datasets.digits import load_digits


def test_digits_match_scikit_learn():
    ds = load_digits()
    images, labels = ds.tensors
    ref = sk_load()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and np.array_equal(labels.numpy(), ref.target)
    assert np.allclose(images.numpy()[:, 0] * 16, ref.images)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert np.bincount(labels.numpy()).min() > 170  # every class present, roughly balanced
