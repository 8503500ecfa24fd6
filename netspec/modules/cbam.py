"""Convolutional Block Attention Module (Woo et al., ECCV 2018; official code Jongchan/attention-module)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.modules.pooling import PooledConv
from netspec.ops import make_act


class ChannelGate(nn.Module):
    """x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))), one MLP C -> C/r -> C shared by both pools."""

    def __init__(self, channels: int, hidden: int, *, bias: bool, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.fc1 = PooledConv(channels, hidden, 1, bias=bias)
        self.act = make_act(act)
        self.fc2 = PooledConv(hidden, channels, 1, bias=bias)
        self.gate = make_act(gate)

    def mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(pooling.mean(x, (2, 3))) + self.mlp(pooling.amax(x, (2, 3)))
        return x * self.gate(logits)


class SpatialGate(nn.Module):
    """x * sigmoid(bn(conv_kxk([max_c(x), mean_c(x)]))); the conv has no bias, BN as the official BasicConv.

    The official ResNet initialises this BN's weight to 0 (every other BN weight to 1), so the gate starts at 0.5.
    ``order="mean_max"`` stacks [mean, max] instead (timm's SpatialAttn); ``momentum`` is the BN's (timm: 0.1).
    """

    def __init__(self, *, kernel: int, gate: str = "sigmoid", order: str = "max_mean",
                 momentum: float = 0.01) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=(kernel - 1) // 2, bias=False)
        self.norm = nn.BatchNorm2d(1, eps=1e-5, momentum=momentum)
        nn.init.zeros_(self.norm.weight)
        self.gate = make_act(gate)
        self.mean_first = order == "mean_max"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = (pooling.amax(x, (1,)), pooling.mean(x, (1,)))  # official order: max, mean
        pooled = torch.cat(maps[::-1] if self.mean_first else maps, dim=1)
        return x * self.gate(self.norm(self.conv(pooled)))


class CBAM(nn.Module):
    """Channel gate then (optionally) spatial gate, applied in sequence."""

    def __init__(self, channels: int, hidden: int, *, mlp_bias: bool, kernel: int, spatial: bool,
                 gate: str = "sigmoid", act: str = "relu", order: str = "max_mean", momentum: float = 0.01) -> None:
        super().__init__()
        self.channel = ChannelGate(channels, hidden, bias=mlp_bias, act=act, gate=gate)
        self.spatial = (SpatialGate(kernel=kernel, gate=gate, order=order, momentum=momentum) if spatial
                        else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
