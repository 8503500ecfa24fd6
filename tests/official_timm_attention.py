"""timm 1.0.31's attention modules that only timm has, in plain torch and in timm's layout (children, parameter
order, arithmetic): EcaModule(use_mlp=True), LightCbamModule, SimpleCoordAttn, EfficientLocalAttn, StripAttn,
BatNonLocalAttn, and timm's own CbamModule, GlobalContext, NonLocalAttn, CoordAttn, SelectiveKernel and
SplitAttn (timm/layers/eca.py, cbam.py,
coord_attn.py, non_local_attn.py, global_context.py,
selective_kernel.py, split_attn.py; read, not imported). A throwaway
check outside the repo (/work/refenv, real timm) showed each equal to timm's own module with the same weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from official_self_attention import make_divisible


class EcaModule(nn.Module):  # use_mlp=True
    def __init__(self, channels: int, gamma: float = 2, beta: float = 1, rd_ratio: float = 1 / 8,
                 rd_divisor: int = 8) -> None:
        super().__init__()
        t = int(abs(math.log(channels, 2) + beta) / gamma)
        kernel_size = max(t if t % 2 else t + 1, 3)
        rd_channels = make_divisible(channels * rd_ratio, divisor=rd_divisor)
        self.conv = nn.Conv1d(1, rd_channels, kernel_size=1, padding=0, bias=True)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv1d(rd_channels, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act(self.conv(x.mean((2, 3)).view(x.shape[0], 1, -1))))
        return x * self.gate(y).view(x.shape[0], -1, 1, 1).expand_as(x)


class ConvBn(nn.Module):
    """timm's ConvNormAct: conv (no bias), ``bn`` = BatchNormAct2d (BN, then the act or Identity)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class LightChannelAttn(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 1 / 16) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, 1, round_limit=0.)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_pool = 0.5 * x.mean((2, 3), keepdim=True) + 0.5 * x.amax((2, 3), keepdim=True)
        return x * F.sigmoid(self.fc2(self.act(self.fc1(x_pool))))


class LightSpatialAttn(nn.Module):
    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = ConvBn(1, 1, kernel_size, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_attn = 0.5 * x.mean(dim=1, keepdim=True) + 0.5 * x.amax(dim=1, keepdim=True)
        return x * torch.sigmoid(self.conv(x_attn))


class LightCbamModule(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel = LightChannelAttn(channels)
        self.spatial = LightSpatialAttn(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class SimpleCoordAttn(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 0.25, se_factor: float = 2 / 3) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio * se_factor, 8, round_limit=0.)
        self.fc1 = nn.Linear(channels, rd_channels)
        self.act = nn.SiLU()
        self.fc_h = nn.Linear(rd_channels, channels)
        self.fc_w = nn.Linear(rd_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_h = self.act(self.fc1(x.mean(dim=3).transpose(1, 2)))
        x_w = self.act(self.fc1(x.mean(dim=2).transpose(1, 2)))
        a_h = self.fc_h(x_h).transpose(1, 2).unsqueeze(-1)
        a_w = self.fc_w(x_w).transpose(1, 2).unsqueeze(-2)
        return x * torch.sigmoid(a_h + a_w)


class EfficientLocalAttn(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv_h = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(kernel_size // 2, 0), groups=channels,
                                bias=False)
        self.conv_w = nn.Conv2d(channels, channels, (1, kernel_size), padding=(0, kernel_size // 2), groups=channels,
                                bias=False)
        self.norm_h = nn.GroupNorm(1, channels)
        self.norm_w = nn.GroupNorm(1, channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_h = self.act(self.norm_h(self.conv_h(x.mean(dim=3, keepdim=True))))
        x_w = self.act(self.norm_w(self.conv_w(x.mean(dim=2, keepdim=True))))
        return x * torch.sigmoid(x_h) * torch.sigmoid(x_w)


class StripAttn(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_h = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(kernel_size // 2, 0), groups=channels,
                                bias=False)
        self.conv_w = nn.Conv2d(channels, channels, (1, kernel_size), padding=(0, kernel_size // 2), groups=channels,
                                bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_h = self.conv_h(x.mean(dim=3, keepdim=True))
        x_w = self.conv_w(x.mean(dim=2, keepdim=True))
        return x * torch.sigmoid(x_h + x_w)


class BilinearAttnTransform(nn.Module):
    def __init__(self, in_channels: int, block_size: int, groups: int) -> None:
        super().__init__()
        self.conv1 = ConvBn(in_channels, groups, 1)
        self.conv_p = nn.Conv2d(groups, block_size * block_size * groups, kernel_size=(block_size, 1))
        self.conv_q = nn.Conv2d(groups, block_size * block_size * groups, kernel_size=(1, block_size))
        self.conv2 = ConvBn(in_channels, in_channels, 1)
        self.block_size, self.groups = block_size, groups

    def resize_mat(self, x: torch.Tensor, t: int) -> torch.Tensor:
        B, C, block_size, _ = x.shape
        if t <= 1:
            return x
        x = x.view(B * C, -1, 1, 1) * torch.eye(t, t, dtype=x.dtype, device=x.device)
        x = x.view(B * C, block_size, block_size, t, t)
        x = torch.cat(torch.split(x, 1, dim=1), dim=3)
        x = torch.cat(torch.split(x, 1, dim=2), dim=4)
        return x.view(B, C, block_size * t, block_size * t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        bs, g = self.block_size, self.groups
        out = self.conv1(x)
        p = self.conv_p(F.adaptive_max_pool2d(out, (bs, 1))).view(B, g, bs, bs).sigmoid()
        q = self.conv_q(F.adaptive_max_pool2d(out, (1, bs))).view(B, g, bs, bs).sigmoid()
        p = p / p.sum(dim=3, keepdim=True)
        q = q / q.sum(dim=2, keepdim=True)
        p = p.view(B, g, 1, bs, bs).expand(B, g, C // g, bs, bs).contiguous().view(B, C, bs, bs)
        q = q.view(B, g, 1, bs, bs).expand(B, g, C // g, bs, bs).contiguous().view(B, C, bs, bs)
        p = self.resize_mat(p, H // bs)
        q = self.resize_mat(q, W // bs)
        return self.conv2(p.matmul(x).matmul(q))


class BatNonLocalAttn(nn.Module):
    def __init__(self, in_channels: int, block_size: int = 7, groups: int = 2, rd_ratio: float = 0.25,
                 drop_rate: float = 0.2) -> None:
        super().__init__()
        rd_channels = make_divisible(in_channels * rd_ratio, divisor=8)
        self.conv1 = ConvBn(in_channels, rd_channels, 1)
        self.ba = BilinearAttnTransform(rd_channels, block_size, groups)
        self.conv2 = ConvBn(rd_channels, in_channels, 1)
        self.dropout = nn.Dropout2d(p=drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.conv2(self.ba(self.conv1(x)))) + x


class ChannelAttn(nn.Module):
    """CbamModule's channel half: one bias-free MLP on the mean and the max, rd = round(C / 16)."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, 1, round_limit=0.)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        x_max = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * torch.sigmoid(x_avg + x_max)


class SpatialAttn(nn.Module):
    """CbamModule's spatial half: conv+BN (timm's ConvNormAct, no act) over [mean, max] across channels."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = ConvBn(2, 1, kernel_size, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_attn = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(x_attn))


class CbamModule(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel = ChannelAttn(channels)
        self.spatial = SpatialAttn(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d: LayerNorm over the channels of an NCHW map, eps 1e-6."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvMlp(nn.Module):
    def __init__(self, in_features: int, hidden_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_features, hidden_features, kernel_size=1, bias=True)
        self.norm = LayerNorm2d(hidden_features)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Conv2d(hidden_features, in_features, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.norm(self.fc1(x)))))


class GlobalContext(nn.Module):
    """``gc`` (fuse_scale) or ``gca`` (fuse_add=True, fuse_scale=False); P = round(C / 8)."""

    def __init__(self, channels: int, fuse_add: bool = False, fuse_scale: bool = True,
                 rd_ratio: float = 1 / 8) -> None:
        super().__init__()
        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1, bias=True)
        rd_channels = make_divisible(channels * rd_ratio, 1, round_limit=0.)
        self.mlp_add = ConvMlp(channels, rd_channels) if fuse_add else None
        self.mlp_scale = ConvMlp(channels, rd_channels) if fuse_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        attn = F.softmax(self.conv_attn(x).reshape(B, 1, H * W), dim=-1).unsqueeze(3)
        context = (x.reshape(B, C, H * W).unsqueeze(1) @ attn).view(B, C, 1, 1)
        if self.mlp_scale is not None:
            x = x * torch.sigmoid(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x


class NonLocalAttn(nn.Module):
    """rd = make_divisible(C / 8, 8); logits scaled by C^-0.5 (the input's channels)."""

    def __init__(self, in_channels: int, use_scale: bool = True, rd_ratio: float = 1 / 8) -> None:
        super().__init__()
        rd_channels = make_divisible(in_channels * rd_ratio, divisor=8)
        self.scale = in_channels ** -0.5 if use_scale else 1.0
        self.t = nn.Conv2d(in_channels, rd_channels, kernel_size=1, bias=True)
        self.p = nn.Conv2d(in_channels, rd_channels, kernel_size=1, bias=True)
        self.g = nn.Conv2d(in_channels, rd_channels, kernel_size=1, bias=True)
        self.z = nn.Conv2d(rd_channels, in_channels, kernel_size=1, bias=True)
        self.norm = nn.BatchNorm2d(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        t, p, g = self.t(x), self.p(x), self.g(x)
        B, C, H, W = t.size()
        t = t.view(B, C, -1).permute(0, 2, 1)
        p = p.view(B, C, -1)
        g = g.view(B, C, -1).permute(0, 2, 1)
        att = F.softmax(torch.bmm(t, p) * self.scale, dim=2)
        x = torch.bmm(att, g).permute(0, 2, 1).reshape(B, C, H, W)
        return self.norm(self.z(x)) + shortcut


class CoordAttn(nn.Module):
    """rd = make_divisible(C / 16 * 2/3, 8, round_limit=0); bias-free 1x1 convs, BN, hard-swish, sigmoid gates."""

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_divisor: int = 8, se_factor: float = 2 / 3) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio * se_factor, rd_divisor, round_limit=0.)
        self.conv1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(rd_channels)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=False)
        self.conv_w = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        N, C, H, W = x.size()
        x_h = x.mean(3, keepdim=True)
        x_w = x.mean(2, keepdim=True).transpose(-1, -2)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        x_h, x_w = torch.split(y, [H, W], dim=2)
        x_w = x_w.transpose(-1, -2)
        return identity * torch.sigmoid(self.conv_w(x_w)) * torch.sigmoid(self.conv_h(x_h))


class ConvBnReLU(nn.Module):
    """timm's ConvNormAct with a dilated 3x3: conv (no bias), ``bn`` = BatchNormAct2d (BN then ReLU)."""

    def __init__(self, in_chs: int, out_chs: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SelectiveKernelAttn(nn.Module):
    def __init__(self, channels: int, num_paths: int, attn_channels: int) -> None:
        super().__init__()
        self.num_paths = num_paths
        self.fc_reduce = nn.Conv2d(channels, attn_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(attn_channels)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(attn_channels, channels * num_paths, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc_select(self.act(self.bn(self.fc_reduce(x.sum(1).mean((2, 3), keepdim=True)))))
        B, C, H, W = x.shape
        return torch.softmax(x.view(B, self.num_paths, C // self.num_paths, H, W), dim=1)


class SelectiveKernel(nn.Module):
    """Defaults: kernels [3, 5] kept 3x3 (dilations 1, 2), groups 1, the input split across the two paths,
    attention width make_divisible(C / 16, 8)."""

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_paths = 2
        self.paths = nn.ModuleList([ConvBnReLU(in_channels // 2, in_channels, d) for d in (1, 2)])
        attn_channels = make_divisible(in_channels * rd_ratio, divisor=rd_divisor)
        self.attn = SelectiveKernelAttn(in_channels, self.num_paths, attn_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_split = torch.split(x, self.in_channels // self.num_paths, 1)
        x = torch.stack([op(x_split[i]) for i, op in enumerate(self.paths)], dim=1)
        return torch.sum(x * self.attn(x), dim=1)


class RadixSoftmax(nn.Module):
    def __init__(self, radix: int, cardinality: int) -> None:
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.size(0)
        x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
        return F.softmax(x, dim=1).reshape(batch, -1)


class SplitAttn(nn.Module):
    """As get_attn("splat") builds it: radix 2, groups 1, no norm_layer (Identity), attn width
    make_divisible(C * 2 / 4, 8, min_value=32)."""

    def __init__(self, in_channels: int, radix: int = 2, rd_ratio: float = 0.25, rd_divisor: int = 8) -> None:
        super().__init__()
        self.radix = radix
        mid_chs = in_channels * radix
        attn_chs = make_divisible(in_channels * radix * rd_ratio, min_value=32, divisor=rd_divisor)
        self.conv = nn.Conv2d(in_channels, mid_chs, 3, 1, 1, 1, groups=radix, bias=False)
        self.bn0 = nn.Identity()
        self.act0 = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(in_channels, attn_chs, 1)
        self.bn1 = nn.Identity()
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(attn_chs, mid_chs, 1)
        self.rsoftmax = RadixSoftmax(radix, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.bn0(self.conv(x)))
        B, RC, H, W = x.shape
        x = x.reshape((B, self.radix, RC // self.radix, H, W))
        x_gap = x.sum(dim=1).mean((2, 3), keepdim=True)
        x_attn = self.fc2(self.act1(self.bn1(self.fc1(x_gap))))
        x_attn = self.rsoftmax(x_attn).view(B, -1, 1, 1)
        return (x * x_attn.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1).contiguous()
