"""Squeeze-and-Excitation module (Hu et al., CVPR 2018; official Caffe SENet: FC layers with bias)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.modules.pooling import PooledConv


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean_hw(x))))); the FC layers are 1x1 convs with bias."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = PooledConv(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = PooledConv(hidden, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C): the FCs run as matrix products. One expression, so no pooled temporary outlives its use (it would
        # stay allocated beside the output and shift where the heap places it)
        weights = self.gate(self.fc2(self.act(self.fc1(pooling.mean(x, (2, 3), keepdim=False)))))
        return x * weights.view(*weights.shape, 1, 1)
