"""Squeeze-and-Excitation module (Hu et al., CVPR 2018; official Caffe SENet: FC layers with bias)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.modules.pooling import PooledConv
from netspec.ops import make_act


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean_hw(x))))); the FC layers are 1x1 convs (with bias by default).

    Children in torchvision's ``SqueezeExcitation`` order (fc1, fc2), so its weights load by position.
    """

    def __init__(self, channels: int, hidden: int, *, act: str = "relu", gate: str = "sigmoid", bias: bool = True) -> None:
        super().__init__()
        self.fc1 = PooledConv(channels, hidden, 1, bias=bias)
        self.act = make_act(act)
        self.fc2 = PooledConv(hidden, channels, 1, bias=bias)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C): the FCs run as matrix products. One expression, so no pooled temporary outlives its use (it would
        # stay allocated beside the output and shift where the heap places it)
        weights = self.gate(self.fc2(self.act(self.fc1(pooling.mean(x, (2, 3), keepdim=False)))))
        return x * weights.view(*weights.shape, 1, 1)
