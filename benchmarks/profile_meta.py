"""Profiling a model on PyTorch's meta device vs on real tensors, side by side.

Lab 1 profiles `vision_cnn` on the meta device ("no arithmetic is done"); this prints how much time that
saves on this machine. Run: python benchmarks/profile_meta.py
"""

import torch
from timing import best_of

from collab_lib.hardware import profile_model
from collab_lib.models import vision_cnn
from collab_lib.seed import set_seed


def main() -> None:
    set_seed(0, dtype=torch.float32)  # the profiles' own dtype; meta tensors compute nothing
    real_model = vision_cnn(width=256)
    frame = torch.zeros(1, 3, 224, 224)
    with torch.device("meta"):
        meta_model = vision_cnn(width=256)
        meta_frame = torch.empty(1, 3, 224, 224)
    real = best_of(lambda: profile_model(real_model, frame))
    meta = best_of(lambda: profile_model(meta_model, meta_frame))
    same = profile_model(real_model, frame) == profile_model(meta_model, meta_frame)
    print(f"profile_model(vision_cnn(256)), 1 thread: real {real * 1e3:.1f} ms, meta {meta * 1e3:.1f} ms, "
          f"ratio {real / meta:.0f}x; identical profiles: {same}")


if __name__ == "__main__":
    main()
