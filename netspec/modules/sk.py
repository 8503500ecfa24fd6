"""Selective Kernel unit (Li et al., CVPR 2019; official Caffe SKNet, implus/SKNet models/sknet50.prototxt)."""
from __future__ import annotations

import torch
from torch import nn

from netspec.modules import pooling
from netspec.modules.conv import ConvNormAct
from netspec.modules.merge import sum_of
from netspec.modules.pooling import PooledConv


class SelectiveKernel(nn.Module):
    """Split / fuse / select: M grouped 3x3 branches (dilation 1..M), each conv+BN+ReLU, summed, pooled,
    fc C->d + BN + ReLU, one 1x1 conv d->M*C (no bias), softmax over the M branches, weighted sum."""

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int, branches: int, groups: int, hidden: int,
        split: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.split = split
        branch_input = in_channels // branches if split else in_channels
        self.branches = nn.ModuleList(
            ConvNormAct(branch_input, out_channels, kernel=3, stride=stride, padding=dilation, dilation=dilation,
                        groups=groups, bias=False, norm="batch", act="relu")
            for dilation in range(1, branches + 1)
        )
        self.fc1 = ConvNormAct(out_channels, hidden, kernel=1, bias=False, norm="batch", act="relu")
        self.fc2 = PooledConv(hidden, branches * out_channels, 1, bias=False)
        for fc in (self.fc1.conv, self.fc2):
            nn.init.normal_(fc.weight, std=0.01)  # the official prototxt's gaussian filler
        self.softmax = nn.Softmax(dim=1)

    def weights(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Attention weights (N, M, C, 1, 1) of the branch outputs, summing to 1 over the M branches."""
        fused = sum_of(outputs)
        logits = self.fc2(self.fc1(pooling.mean(fused, (2, 3))))
        return self.softmax(logits.view(fused.shape[0], len(self.branches), self.out_channels, 1, 1))

    def branch_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each branch on the whole input, or (``split``) each on its own equal share of the input channels."""
        if not self.split:
            return [branch(x) for branch in self.branches]
        parts = torch.split(x, x.shape[1] // len(self.branches), dim=1)
        return [branch(part) for branch, part in zip(self.branches, parts)]

    def select(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The branch outputs (N, M, C, H, W) and their attention weights (N, M, C, 1, 1), summing to 1 over M."""
        outputs = self.branch_outputs(x)
        return torch.stack(outputs, dim=1), self.weights(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sum_m weights_m * branch_m, without stacking the branches into one (N, M, C, H, W) tensor: no copy,
        # and elementwise ops keep the branches' memory format (channels_last in, channels_last out)
        outputs = self.branch_outputs(x)
        weights = self.weights(outputs)
        out = outputs[0] * weights[:, 0]
        for index in range(1, len(outputs)):
            out = torch.addcmul(out, outputs[index], weights[:, index])
        return out
