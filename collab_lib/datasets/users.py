"""Per-user data: one type, :class:`UserDatasets`, for a client's data everywhere in the library.

The user-structured generators return it, :func:`users_from_partition` builds it from index partitions
(:mod:`collab_lib.datasets.partition`), and every function that trains on several clients' data takes it
(federated learning and personalization, split learning, logit exchange), checking with
:func:`require_users` that it got one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from collab_lib.seed import generator


@dataclass(frozen=True)
class UserDatasets:
    """User ``i`` (named ``names[i]``) holds inputs ``xs[i]`` and targets ``ys[i]`` (same first dimension)."""

    xs: tuple[torch.Tensor, ...]
    ys: tuple[torch.Tensor, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.xs) == len(self.ys) == len(self.names)):
            raise ValueError(f"xs, ys and names differ in length: {len(self.xs)}, {len(self.ys)}, {len(self.names)}")
        for i, (x, y) in enumerate(zip(self.xs, self.ys)):
            if len(x) != len(y):
                raise ValueError(f"user {i}: {len(x)} inputs but {len(y)} targets")

    def __len__(self) -> int:
        return len(self.xs)

    @property
    def sizes(self) -> torch.Tensor:
        """(num_users,) int64: samples per user."""
        return torch.tensor([len(y) for y in self.ys], dtype=torch.int64)

    def pooled(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All users' samples in one batch: (x, y, user_id), user_id an int64 index into ``names``."""
        user_id = torch.repeat_interleave(torch.arange(len(self)), self.sizes)
        return torch.cat(self.xs), torch.cat(self.ys), user_id

    def split(self, test_fraction: float, seed: int) -> tuple[UserDatasets, UserDatasets]:
        """Split every user's samples at random into train and test; each user keeps >= 1 training sample."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        g = generator(seed)
        train, test = ([], []), ([], [])
        for x, y in zip(self.xs, self.ys):
            perm = torch.randperm(len(y), generator=g)
            n_test = min(int(round(test_fraction * len(y))), len(y) - 1)
            for (xs, ys), idx in ((test, perm[:n_test]), (train, perm[n_test:])):
                xs.append(x[idx])
                ys.append(y[idx])
        return (UserDatasets(tuple(train[0]), tuple(train[1]), self.names),
                UserDatasets(tuple(test[0]), tuple(test[1]), self.names))


def users_from_partition(x: torch.Tensor, y: torch.Tensor, parts: list[np.ndarray]) -> UserDatasets:
    """One user per index array of a partition (:mod:`collab_lib.datasets.partition`), named ``client<k>``."""
    xs = tuple(x[torch.from_numpy(p)] for p in parts)
    ys = tuple(y[torch.from_numpy(p)] for p in parts)
    return UserDatasets(xs, ys, tuple(f"client{k}" for k in range(len(parts))))


def require_users(name: str, value: object) -> UserDatasets:
    """``value`` if it is a :class:`UserDatasets` of at least one user; else an error naming the argument.

    A list of ``(x, y)`` pairs or a dict of tensors is refused with a ``TypeError`` that says how to build
    the one type instead.
    """
    if not isinstance(value, UserDatasets):
        raise TypeError(f"{name} must be a collab_lib.datasets.users.UserDatasets, got {type(value).__name__}; "
                        "build one with UserDatasets(xs, ys, names) or users_from_partition(x, y, parts)")
    if len(value) == 0:
        raise ValueError(f"{name} must hold at least one user, got none")
    return value
