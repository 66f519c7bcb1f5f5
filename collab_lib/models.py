"""Small torch models used across the labs. Each is an ``nn.Sequential`` so that its children are the
candidate cut points of split inference (:mod:`collab_lib.system.partition`)."""

from __future__ import annotations

from torch import nn


def _conv(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU()]


def vision_cnn(width: int = 256, num_classes: int = 10, stem_channels: int = 32, cut_channels: int = 16) -> nn.Sequential:
    """A plain CNN for 3 x 224 x 224 camera frames, shaped like most vision backbones: a stem at full
    resolution that shrinks the data, then a body where most FLOPs are.

    Shapes (batch 1): stem 3x224x224 -> stem_channels x 112 x 112 -> cut_channels x 28 x 28 (the narrow
    point, 12x fewer numbers than the input), body width x 28 x 28 -> 2w x 14 x 14 -> 2w x 7 x 7, then a
    global average pool and a linear classifier. ``width=256`` is about 3.9 GFLOP a frame (a multiply-add counts as 2 FLOP).
    """
    if width < 1 or num_classes < 1 or stem_channels < 1 or cut_channels < 1:
        raise ValueError("width, num_classes, stem_channels and cut_channels must be >= 1")
    layers: list[nn.Module] = [
        *_conv(3, stem_channels),                        # (B, stem, 224, 224)
        *_conv(stem_channels, stem_channels, stride=2),  # (B, stem, 112, 112)
        nn.Conv2d(stem_channels, cut_channels, 1),       # (B, cut, 112, 112)
        nn.ReLU(),
        nn.MaxPool2d(4),                                 # (B, cut, 28, 28)
        *_conv(cut_channels, width),                     # (B, w, 28, 28)
        *_conv(width, width),
        *_conv(width, width),
        nn.MaxPool2d(2),                                 # (B, w, 14, 14)
        *_conv(width, 2 * width),                        # (B, 2w, 14, 14)
        *_conv(2 * width, 2 * width),
        nn.MaxPool2d(2),                                 # (B, 2w, 7, 7)
        *_conv(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1),                         # (B, 2w, 1, 1)
        nn.Flatten(),                                    # (B, 2w)
        nn.Linear(2 * width, num_classes),               # (B, classes)
    ]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection: y = relu(x + conv(relu(conv(x)))). Not a chain inside,
    so split inference treats the whole block as one layer."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return (x + self.conv2(self.conv1(x).relu())).relu()


def residual_cnn(width: int = 64, blocks_per_stage: int = 2, num_classes: int = 10) -> nn.Sequential:
    """A small ResNet-style CNN for 3 x 224 x 224 frames, as an ``nn.Sequential`` of blocks.

    Stem (7x7 stride-2 conv, max-pool) -> stages of residual blocks at width, 2x width, 4x width, with a
    stride-2 conv between stages -> global average pool -> linear. Each residual block is one child, so
    every cut point of split inference falls between blocks, where one tensor is live.
    """
    if width < 1 or blocks_per_stage < 1 or num_classes < 1:
        raise ValueError("width, blocks_per_stage and num_classes must be >= 1")
    layers: list[nn.Module] = [nn.Conv2d(3, width, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(2)]
    c = width
    for stage in range(3):
        if stage > 0:
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU()]
            c *= 2
        layers += [ResidualBlock(c) for _ in range(blocks_per_stage)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)
