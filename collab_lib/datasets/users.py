"""Per-user data: the common return type of the user-structured generators."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
        g = torch.Generator().manual_seed(seed)
        train, test = ([], []), ([], [])
        for x, y in zip(self.xs, self.ys):
            perm = torch.randperm(len(y), generator=g)
            n_test = min(int(round(test_fraction * len(y))), len(y) - 1)
            for (xs, ys), idx in ((test, perm[:n_test]), (train, perm[n_test:])):
                xs.append(x[idx])
                ys.append(y[idx])
        return (UserDatasets(tuple(train[0]), tuple(train[1]), self.names),
                UserDatasets(tuple(test[0]), tuple(test[1]), self.names))
