"""timm 1.0.31's self-attention layers and the byobnet blocks that hold them, in plain torch and in timm's module
layout (children, parameter order, arithmetic), so tests can load their random weights into netspec's models
by architecture order and compare outputs. Sources (read, not imported): timm/layers/bottleneck_attn.py,
halo_attn.py, lambda_layer.py, squeeze_excite.py; timm/models/byobnet.py (Stem, BottleneckBlock, SelfAttnBlock,
create_shortcut), byoanet.py (botnet26t, halonet26t, lambda_resnet26t, sebotnet33ts). The relative position
logits are computed the way timm does (pad-and-reshape skew of the (2K-1)-wide logits, expanded to the full
(tokens x tokens) or (block x window) matrix), independently of netspec's rewrite.
A throwaway check outside the repo (/work/refenv, real timm) showed these equal timm's own modules and models.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def skewed_logits(q: torch.Tensor, rel_k: torch.Tensor, permute_mask: tuple[int, ...], across: int) -> torch.Tensor:
    """timm's rel_logits_1d: q (B, H, W, d), rel_k (2K - 1, d) -> (B, H, across, W, K) permuted by permute_mask
    (``across``: the keys along the other axis; bottleneck_attn.py expands by H, halo_attn.py by the window)."""
    batch, height, width, _ = q.shape
    rel_size = rel_k.shape[0]
    window = (rel_size + 1) // 2
    x = (q @ rel_k.transpose(-1, -2)).reshape(-1, width, rel_size)
    x_pad = F.pad(F.pad(x, [0, 1]).flatten(1), [0, rel_size - width])
    x = x_pad.reshape(-1, width + 1, rel_size)[:, :width, window - 1:]
    x = x.reshape(batch, height, 1, width, window).expand(-1, -1, across, -1, -1)
    return x.permute(permute_mask)


class PosEmbedRel(nn.Module):
    def __init__(self, block_height: int, block_width: int, win_height: int, win_width: int, dim_head: int,
                 scale: float) -> None:
        super().__init__()
        self.block_height, self.block_width, self.dim_head = block_height, block_width, dim_head
        self.win_height, self.win_width = win_height, win_width
        self.height_rel = nn.Parameter(torch.randn(win_height * 2 - 1, dim_head) * scale)
        self.width_rel = nn.Parameter(torch.randn(win_width * 2 - 1, dim_head) * scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        lead = q.shape[:-2]
        tokens = q.shape[-2]
        q = q.reshape(-1, self.block_height, self.block_width, self.dim_head)
        rel_w = skewed_logits(q, self.width_rel, (0, 1, 3, 2, 4), self.win_height)
        rel_h = skewed_logits(q.transpose(1, 2), self.height_rel, (0, 3, 1, 4, 2), self.win_width)
        return (rel_h + rel_w).reshape(*lead, tokens, -1)


class BottleneckAttn(nn.Module):
    def __init__(self, dim: int, dim_out: int | None = None, feat_size: tuple[int, int] = (16, 16), stride: int = 1,
                 num_heads: int = 4, dim_head: int | None = None, qk_ratio: float = 1.0, qkv_bias: bool = False,
                 scale_pos_embed: bool = False) -> None:
        super().__init__()
        dim_out = dim_out or dim
        self.num_heads = num_heads
        self.dim_head_qk = dim_head or make_divisible(dim_out * qk_ratio, divisor=8) // num_heads
        self.dim_head_v = dim_out // num_heads
        self.dim_out_qk, self.dim_out_v = num_heads * self.dim_head_qk, num_heads * self.dim_head_v
        self.scale = self.dim_head_qk ** -0.5
        self.scale_pos_embed = scale_pos_embed
        self.qkv = nn.Conv2d(dim, self.dim_out_qk * 2 + self.dim_out_v, 1, bias=qkv_bias)
        self.pos_embed = PosEmbedRel(*feat_size, *feat_size, self.dim_head_qk, self.scale)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        q, k, v = torch.split(self.qkv(x), [self.dim_out_qk, self.dim_out_qk, self.dim_out_v], dim=1)
        q = q.reshape(batch * self.num_heads, self.dim_head_qk, -1).transpose(-1, -2)
        k = k.reshape(batch * self.num_heads, self.dim_head_qk, -1)
        v = v.reshape(batch * self.num_heads, self.dim_head_v, -1).transpose(-1, -2)
        if self.scale_pos_embed:
            attn = (q @ k + self.pos_embed(q)) * self.scale
        else:
            attn = (q @ k) * self.scale + self.pos_embed(q)
        out = (attn.softmax(dim=-1) @ v).transpose(-1, -2).reshape(batch, self.dim_out_v, height, width)
        return self.pool(out)


class HaloAttn(nn.Module):
    def __init__(self, dim: int, dim_out: int | None = None, stride: int = 1, num_heads: int = 8,
                 dim_head: int | None = None, block_size: int = 8, halo_size: int = 3, qk_ratio: float = 1.0,
                 qkv_bias: bool = False, avg_down: bool = False, scale_pos_embed: bool = False) -> None:
        super().__init__()
        dim_out = dim_out or dim
        self.num_heads = num_heads
        self.dim_head_qk = dim_head or make_divisible(dim_out * qk_ratio, divisor=8) // num_heads
        self.dim_head_v = dim_out // num_heads
        self.dim_out_qk, self.dim_out_v = num_heads * self.dim_head_qk, num_heads * self.dim_head_v
        self.scale = self.dim_head_qk ** -0.5
        self.scale_pos_embed = scale_pos_embed
        self.block_size = self.block_size_ds = block_size
        self.halo_size = halo_size
        self.win_size = block_size + halo_size * 2
        self.block_stride = 1
        use_avg_pool = False
        if stride > 1:
            use_avg_pool = avg_down or block_size % stride != 0
            self.block_stride = 1 if use_avg_pool else stride
            self.block_size_ds = self.block_size // self.block_stride
        self.q = nn.Conv2d(dim, self.dim_out_qk, 1, stride=self.block_stride, bias=qkv_bias)
        self.kv = nn.Conv2d(dim, self.dim_out_qk + self.dim_out_v, 1, bias=qkv_bias)
        self.pos_embed = PosEmbedRel(self.block_size_ds, self.block_size_ds, self.win_size, self.win_size,
                                     self.dim_head_qk, self.scale)
        self.pool = nn.AvgPool2d(2, 2) if use_avg_pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        rows, cols = height // self.block_size, width // self.block_size
        blocks = rows * cols
        q = self.q(x).reshape(-1, self.dim_head_qk, rows, self.block_size_ds, cols, self.block_size_ds)
        q = q.permute(0, 1, 3, 5, 2, 4).reshape(batch * self.num_heads, self.dim_head_qk, -1, blocks).transpose(1, 3)
        kv = F.pad(self.kv(x), [self.halo_size] * 4)
        kv = kv.unfold(2, self.win_size, self.block_size).unfold(3, self.win_size, self.block_size)
        kv = kv.reshape(batch * self.num_heads, self.dim_head_qk + self.dim_head_v, blocks, -1).permute(0, 2, 3, 1)
        k, v = torch.split(kv, [self.dim_head_qk, self.dim_head_v], dim=-1)
        if self.scale_pos_embed:
            attn = (q @ k.transpose(-1, -2) + self.pos_embed(q)) * self.scale
        else:
            attn = (q @ k.transpose(-1, -2)) * self.scale + self.pos_embed(q)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 3)
        out = out.reshape(-1, self.block_size_ds, self.block_size_ds, rows, cols).permute(0, 3, 1, 4, 2)
        out = out.contiguous().view(batch, self.dim_out_v, height // self.block_stride, width // self.block_stride)
        return self.pool(out)


class LambdaLayer(nn.Module):
    def __init__(self, dim: int, dim_out: int | None = None, stride: int = 1, num_heads: int = 4, dim_head: int = 16,
                 r: int | None = 9, qkv_bias: bool = False, feat_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        dim_out = dim_out or dim
        self.dim_qk, self.num_heads, self.dim_v = dim_head, num_heads, dim_out // num_heads
        self.qkv = nn.Conv2d(dim, num_heads * self.dim_qk + self.dim_qk + self.dim_v, kernel_size=1, bias=qkv_bias)
        self.norm_q = nn.BatchNorm2d(num_heads * self.dim_qk)
        self.norm_v = nn.BatchNorm2d(self.dim_v)
        if r is not None:
            self.conv_lambda = nn.Conv3d(1, self.dim_qk, (r, r, 1), padding=(r // 2, r // 2, 0))
            self.pos_emb = None
        else:  # relative position lambdas: a (2H-1, 2W-1, k) table gathered to (M, M, k) by relative offset
            assert feat_size is not None
            self.conv_lambda = None
            self.pos_emb = nn.Parameter(torch.randn(2 * feat_size[0] - 1, 2 * feat_size[1] - 1, self.dim_qk) * .02)
            rows, cols = torch.meshgrid(torch.arange(feat_size[0]), torch.arange(feat_size[1]), indexing="ij")
            pos = torch.stack([rows, cols]).flatten(1)  # (2, M)
            rel = pos[:, None, :] - pos[:, :, None]  # [d, m, n] = pos[d, n] - pos[d, m]
            rel[0] += feat_size[0] - 1
            rel[1] += feat_size[1] - 1
            self.register_buffer("rel_pos_indices", rel, persistent=False)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = height * width
        q, k, v = torch.split(self.qkv(x), [self.num_heads * self.dim_qk, self.dim_qk, self.dim_v], dim=1)
        q = self.norm_q(q).reshape(batch, self.num_heads, self.dim_qk, tokens).transpose(-1, -2)
        v = self.norm_v(v).reshape(batch, self.dim_v, tokens).transpose(-1, -2)
        k = F.softmax(k.reshape(batch, self.dim_qk, tokens), dim=-1)
        content_out = q @ (k @ v).unsqueeze(1)
        if self.pos_emb is None:
            position_lam = self.conv_lambda(v.reshape(batch, 1, height, width, self.dim_v))
            position_lam = position_lam.reshape(batch, 1, self.dim_qk, tokens, self.dim_v).transpose(2, 3)
        else:
            pos_emb = self.pos_emb[self.rel_pos_indices[0], self.rel_pos_indices[1]].expand(batch, -1, -1, -1)
            position_lam = (pos_emb.transpose(-1, -2) @ v.unsqueeze(1)).unsqueeze(1)  # (B, 1, M, k, v)
        position_out = (q.unsqueeze(-2) @ position_lam).squeeze(-2)
        out = (content_out + position_out).transpose(-1, -2).reshape(batch, channels, height, width)
        return self.pool(out)


# --- byobnet ---------------------------------------------------------------------------------------------


class ConvNormAct(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, act: type | None = nn.ReLU,
                 apply_act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, bias=False)
        self.bn = BatchNormAct2d(out_chs, act if apply_act else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BatchNormAct2d(nn.BatchNorm2d):
    def __init__(self, channels: int, act: type | None = nn.ReLU) -> None:
        super().__init__(channels)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class SEModule(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 1. / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * x_se.sigmoid()


class Block(nn.Module):
    """byobnet's BottleneckBlock (``self_attn`` None) or SelfAttnBlock: the shortcut is registered first."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, mid_chs: int, act: type, *, self_attn=None,
                 attn=None) -> None:
        super().__init__()
        self.shortcut = (ConvNormAct(in_chs, out_chs, 1, stride, act, apply_act=False)
                         if in_chs != out_chs or stride != 1 else nn.Identity())
        self.conv1_1x1 = ConvNormAct(in_chs, mid_chs, 1, act=act)
        if self_attn is None:
            self.conv2_kxk = ConvNormAct(mid_chs, mid_chs, 3, stride, act=act)
            self.attn = attn(mid_chs) if attn is not None else nn.Identity()
        else:
            self.self_attn = self_attn(mid_chs, stride)
            self.post_attn = BatchNormAct2d(mid_chs, act)
        self.conv3_1x1 = ConvNormAct(mid_chs, out_chs, 1, act=act, apply_act=False)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if hasattr(self, "self_attn"):
            x = self.post_attn(self.self_attn(self.conv1_1x1(x)))
        else:
            x = self.attn(self.conv2_kxk(self.conv1_1x1(x)))
        x = self.conv3_1x1(x)
        return self.act(x + self.shortcut(shortcut))


def byoanet(name: str, size: int, num_classes: int = 1000) -> nn.Sequential:
    """timm's botnet26t / halonet26t / lambda_resnet26t / sebotnet33ts for a size x size input (stem, stages of
    (type, out, stride, mid) blocks, final conv, head), as a Sequential whose state-dict order is timm's."""
    ts = name == "sebotnet33ts"
    act = nn.SiLU if ts else nn.ReLU
    layers = nn.Sequential()
    layers.add_module("conv1", ConvNormAct(3, 24, 3, 2, act))
    layers.add_module("conv2", ConvNormAct(24, 32, 3, 1, act))
    layers.add_module("conv3", ConvNormAct(32, 64, 3, 2 if ts else 1, act))
    feat = size // 4
    if not ts:
        layers.add_module("pool", nn.MaxPool2d(3, 2, 1))
    if ts:
        plan = [("b", 256, 1, 64), ("b", 256, 1, 64), ("b", 512, 2, 128), ("b", 512, 1, 128), ("a", 512, 1, 128),
                ("b", 1024, 2, 256), ("b", 1024, 1, 256), ("a", 1024, 1, 256), ("a", 1536, 2, 512),
                ("a", 1536, 1, 512)]
    else:
        plan = [("b", 256, 1, 64), ("b", 256, 1, 64), ("b", 512, 2, 128), ("b", 512, 1, 128), ("b", 1024, 2, 256),
                ("a", 1024, 1, 256), ("a", 2048, 2, 512), ("a", 2048, 1, 512)]

    def self_attn(size_now: int):
        def make(channels: int, stride: int) -> nn.Module:
            if name == "halonet26t":
                return HaloAttn(channels, stride=stride, block_size=8, halo_size=2)
            if name == "lambda_resnet26t":
                return LambdaLayer(channels, stride=stride, r=9)
            return BottleneckAttn(channels, feat_size=(size_now, size_now), stride=stride)
        return make

    chs = 64
    for index, (kind, out, stride, mid) in enumerate(plan):
        attention = self_attn(feat) if kind == "a" else None
        layers.add_module(f"block{index}", Block(chs, out, stride, mid, act, self_attn=attention,
                                                 attn=SEModule if ts and kind == "b" else None))
        chs, feat = out, feat // stride
    if ts:
        layers.add_module("final_conv", ConvNormAct(chs, 1280, 1, act=act))
        chs = 1280
    layers.add_module("pool_head", nn.AdaptiveAvgPool2d(1))
    layers.add_module("flatten", nn.Flatten())
    layers.add_module("fc", nn.Linear(chs, num_classes))
    return layers

