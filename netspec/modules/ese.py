"""Effective squeeze-excitation (Lee & Park, CenterMask / VoVNetV2, CVPR 2020; youngwanLEE/vovnet-detectron2)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from netspec.modules import pooling
from netspec.modules.pooling import PooledConv


class EffectiveSE(nn.Module):
    """x * hsigmoid(fc(mean_hw(x))): one 1x1 conv C->C with bias; hsigmoid = relu6(x + 3) / 6 as the official."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = PooledConv(channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = F.hardsigmoid(self.fc(pooling.mean(x, (2, 3), keepdim=False)))
        return x * weights.view(*weights.shape, 1, 1)
