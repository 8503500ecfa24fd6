"""Attention modules that exist only in timm 1.0.31 (timm/layers/eca.py ``use_mlp``, cbam.py ``LightCbamModule``,
coord_attn.py ``SimpleCoordAttn``/``EfficientLocalAttn``/``StripAttn``, non_local_attn.py ``BatNonLocalAttn``),
with timm's children, parameter order and arithmetic, so timm's weights load by architecture order."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netspec.modules.conv import ConvNormAct
from netspec.ops import make_act


class EcaMlp(nn.Module):
    """ECA with an MLP across channels: pooled channels as a length-C sequence, Conv1d 1->rd (k=1, bias) + act,
    Conv1d rd->1 (k taps, bias), gate."""

    def __init__(self, hidden: int, *, kernel: int, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, hidden, kernel_size=1, bias=True)
        self.act = make_act(act)
        self.conv2 = nn.Conv1d(hidden, 1, kernel_size=kernel, padding=(kernel - 1) // 2, bias=True)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act(self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))))
        return x * self.gate(y).view(x.shape[0], -1, 1, 1)


class LightCbam(nn.Module):
    """CBAM with both poolings averaged before one pass: channel gate sigmoid(MLP(0.5 mean + 0.5 max)) and spatial
    gate sigmoid(BN(conv_kxk(0.5 mean + 0.5 max over channels)))."""

    def __init__(self, channels: int, hidden: int, *, kernel: int, bias: bool) -> None:
        super().__init__()
        self.channel = LightChannelGate(channels, hidden, bias=bias)
        self.spatial = LightSpatialGate(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class LightChannelGate(nn.Module):
    def __init__(self, channels: int, hidden: int, *, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = 0.5 * x.mean((2, 3), keepdim=True) + 0.5 * x.amax((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(pooled))))


class LightSpatialGate(nn.Module):
    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = ConvNormAct(1, 1, kernel=kernel, padding=kernel // 2, bias=False, norm="batch", act="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = 0.5 * x.mean(dim=1, keepdim=True) + 0.5 * x.amax(dim=1, keepdim=True)
        return x * torch.sigmoid(self.conv(pooled))


class SimpleCoord(nn.Module):
    """Strip-pool over W and over H, a shared Linear C->rd + act, Linear rd->C per direction, x * gate(a_h + a_w)."""

    def __init__(self, channels: int, hidden: int, *, bias: bool = True, act: str = "silu",
                 gate: str = "sigmoid") -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.act = make_act(act)
        self.fc_h = nn.Linear(hidden, channels, bias=bias)
        self.fc_w = nn.Linear(hidden, channels, bias=bias)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        along_h = self.act(self.fc1(x.mean(dim=3).transpose(1, 2)))  # (N, H, rd)
        along_w = self.act(self.fc1(x.mean(dim=2).transpose(1, 2)))  # (N, W, rd)
        a_h = self.fc_h(along_h).transpose(1, 2).unsqueeze(-1)
        a_w = self.fc_w(along_w).transpose(1, 2).unsqueeze(-2)
        return x * self.gate(a_h + a_w)


class StripGates(nn.Module):
    """Strip-pool over W and over H, depthwise k x 1 and 1 x k convs; ``separate``: norm + act + gate on each and
    x * a_h * a_w (ELA), else x * gate(h + w) (strip attention)."""

    def __init__(self, channels: int, *, kernel: int, bias: bool, separate: bool, norm: bool = True,
                 act: str = "silu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.separate = separate
        self.conv_h = nn.Conv2d(channels, channels, (kernel, 1), padding=(kernel // 2, 0), groups=channels, bias=bias)
        self.conv_w = nn.Conv2d(channels, channels, (1, kernel), padding=(0, kernel // 2), groups=channels, bias=bias)
        if separate:
            self.norm_h = nn.GroupNorm(1, channels) if norm else nn.Identity()
            self.norm_w = nn.GroupNorm(1, channels) if norm else nn.Identity()
            self.act = make_act(act)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_h = self.conv_h(x.mean(dim=3, keepdim=True))  # (N, C, H, 1)
        x_w = self.conv_w(x.mean(dim=2, keepdim=True))  # (N, C, 1, W)
        if not self.separate:
            return x * self.gate(x_h + x_w)
        a_h = self.gate(self.act(self.norm_h(x_h)))
        a_w = self.gate(self.act(self.norm_w(x_w)))
        return x * a_h * a_w


def conv_bn_relu(in_channels: int, out_channels: int) -> ConvNormAct:
    return ConvNormAct(in_channels, out_channels, kernel=1, bias=False, norm="batch", act="relu")


class BilinearAttnTransform(nn.Module):
    """BAT's bilinear transform: per group, row and column block x block attention matrices from max-pooled
    strips (sigmoid, normalised), expanded to the map by block (Kronecker with identity), y = P x Q."""

    def __init__(self, channels: int, *, block: int, groups: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(channels, groups)
        self.conv_p = nn.Conv2d(groups, block * block * groups, kernel_size=(block, 1))
        self.conv_q = nn.Conv2d(groups, block * block * groups, kernel_size=(1, block))
        self.conv2 = conv_bn_relu(channels, channels)
        self.block, self.groups = block, groups

    def expand(self, matrix: torch.Tensor, times: int) -> torch.Tensor:
        """(B, C, b, b) -> (B, C, b t, b t): each entry becomes entry x I_t (timm's resize_mat)."""
        if times <= 1:
            return matrix
        batch, channels, block, _ = matrix.shape
        x = matrix.reshape(batch * channels, -1, 1, 1) * torch.eye(times, times, dtype=matrix.dtype,
                                                                      device=matrix.device)
        x = x.view(batch * channels, block, block, times, times)
        x = torch.cat(torch.split(x, 1, dim=1), dim=3)
        x = torch.cat(torch.split(x, 1, dim=2), dim=4)
        return x.view(batch, channels, block * times, block * times)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        block, groups = self.block, self.groups
        out = self.conv1(x)
        p = self.conv_p(F.adaptive_max_pool2d(out, (block, 1))).view(batch, groups, block, block).sigmoid()
        q = self.conv_q(F.adaptive_max_pool2d(out, (1, block))).view(batch, groups, block, block).sigmoid()
        p = p / p.sum(dim=3, keepdim=True)
        q = q / q.sum(dim=2, keepdim=True)
        per_group = channels // groups
        p = p.view(batch, groups, 1, block, block).expand(batch, groups, per_group, block, block).contiguous()
        q = q.view(batch, groups, 1, block, block).expand(batch, groups, per_group, block, block).contiguous()
        p = self.expand(p.view(batch, channels, block, block), height // block)
        q = self.expand(q.view(batch, channels, block, block), width // block)
        return self.conv2(p.matmul(x).matmul(q))


class BatNonLocal(nn.Module):
    """BAT block: 1x1 conv C->rd + BN + ReLU, bilinear transform, 1x1 conv rd->C + BN + ReLU, Dropout2d, + x."""

    def __init__(self, channels: int, hidden: int, *, block: int, groups: int, drop: float) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(channels, hidden)
        self.ba = BilinearAttnTransform(hidden, block=block, groups=groups)
        self.conv2 = conv_bn_relu(hidden, channels)
        self.dropout = nn.Dropout2d(p=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from netspec.modules.self_attention import in_format_of

        return in_format_of(self.dropout(self.conv2(self.ba(self.conv1(x)))), x) + x
