"""Reference models in timm 1.0.31's own layout: ConvNeXt V1/V2 (``timm/models/convnext.py``), RegNetY
(``timm/models/regnet.py``) and the TF-ported EfficientNetV2 (``timm/models/efficientnet.py`` with
``_efficientnet_blocks.py``, ``_efficientnet_builder.py`` and ``layers/padding.py``).

timm does not import here, so each model is written out as timm builds it: the same module registration order (so
the same state-dict order), the same op order, norms' eps, activations and padding. netspec's models get these
modules' weights by order and must compute the same outputs; a throwaway check against the real timm (not part of
the suite) showed these references have timm's parameter counts and outputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# ConvNeXt (timm/models/convnext.py; layers/norm.py LayerNorm2d, layers/mlp.py Mlp / GlobalResponseNormMlp)


class LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d: LayerNorm over C of NCHW by permuting to channels last and back (eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GlobalResponseNorm(nn.Module):
    """timm's GRN (ConvNeXt V2); channels last unless ``channels_last`` is False."""

    def __init__(self, dim: int, eps: float = 1e-6, channels_last: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.spatial_dim, self.channel_dim = ((1, 2), -1) if channels_last else ((2, 3), 1)
        self.wb_shape = (1, 1, 1, -1) if channels_last else (1, -1, 1, 1)
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_g = x.norm(p=2, dim=self.spatial_dim, keepdim=True)
        x_n = x_g / (x_g.mean(dim=self.channel_dim, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(self.wb_shape), self.weight.view(self.wb_shape), x * x_n)


class Mlp(nn.Module):
    """timm's Mlp (and GlobalResponseNormMlp with ``grn``): fc1, act, drop1, [grn | norm], fc2, drop2."""

    def __init__(self, dim: int, hidden: int, *, use_conv: bool, grn: bool) -> None:
        super().__init__()
        linear = (lambda i, o: nn.Conv2d(i, o, 1)) if use_conv else nn.Linear
        self.fc1 = linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(0.0)
        if grn:
            self.grn = GlobalResponseNorm(hidden, channels_last=not use_conv)
        else:
            self.norm = nn.Identity()
        self.fc2 = linear(hidden, dim)
        self.drop2 = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        x = self.grn(x) if hasattr(self, "grn") else self.norm(x)
        return self.drop2(self.fc2(x))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, *, conv_mlp: bool, grn: bool, ls_init: float | None) -> None:
        super().__init__()
        self.use_conv_mlp = conv_mlp
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True)
        self.norm = LayerNorm2d(dim) if conv_mlp else nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim, use_conv=conv_mlp, grn=grn)
        self.gamma = nn.Parameter(ls_init * torch.ones(dim)) if ls_init is not None else None
        self.shortcut = nn.Identity()
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x)
        if self.use_conv_mlp:
            x = self.mlp(self.norm(x))
        else:
            x = self.mlp(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x.mul(self.gamma.reshape(1, -1, 1, 1))
        return self.drop_path(x) + self.shortcut(shortcut)


class ConvNeXtStage(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, depth: int, **block: object) -> None:
        super().__init__()
        if in_chs != out_chs or stride > 1:
            self.downsample = nn.Sequential(LayerNorm2d(in_chs), nn.Conv2d(in_chs, out_chs, 2, stride=stride))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*(ConvNeXtBlock(out_chs, **block) for _ in range(depth)))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class NormMlpClassifierHead(nn.Module):
    """timm's head for ConvNeXt: global average pool, LayerNorm2d on (N, C, 1, 1), flatten, fc."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.norm = LayerNorm2d(dim)
        self.flatten = nn.Flatten(1)
        self.pre_logits = nn.Identity()
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.norm(self.global_pool(x)))
        return self.fc(self.drop(self.pre_logits(x)))


class ConvNeXt(nn.Module):
    """timm's ConvNeXt with its patch stem (4x4 stride 4 + LayerNorm2d) and head_norm_first=False."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...], *, conv_mlp: bool = False, grn: bool = False,
                 ls_init: float | None = 1e-6, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        stages, previous = [], dims[0]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            stages.append(ConvNeXtStage(previous, dim, 2 if i > 0 else 1, depth, conv_mlp=conv_mlp, grn=grn,
                                        ls_init=ls_init))
            previous = dim
        self.stages = nn.Sequential(*stages)
        self.norm_pre = nn.Identity()
        self.head = NormMlpClassifierHead(dims[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm_pre(self.stages(self.stem(x))))


def convnext_atto() -> ConvNeXt:
    return ConvNeXt((2, 2, 6, 2), (40, 80, 160, 320), conv_mlp=True)


def convnext_tiny() -> ConvNeXt:
    return ConvNeXt((3, 3, 9, 3), (96, 192, 384, 768))


def convnextv2_tiny() -> ConvNeXt:
    return ConvNeXt((3, 3, 9, 3), (96, 192, 384, 768), grn=True, ls_init=None)


# ---------------------------------------------------------------------------------------------
# RegNetY (timm/models/regnet.py: Bottleneck, RegStage, RegNet; layers/squeeze_excite.py SEModule)


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm2d (eps 1e-5) with its act (and an Identity drop) as children."""

    def __init__(self, channels: int, *, act: bool, eps: float = 1e-5, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__(channels, eps=eps)
        self.drop = nn.Identity()
        self.act = act_layer() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


class ConvNormAct(nn.Module):
    """timm's ConvNormAct: conv (no bias, padding (k - 1) // 2) then BatchNormAct2d named ``bn``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, *, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False)
        self.bn = BatchNormAct2d(cout, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SEModule(nn.Module):
    """timm's SEModule: mean over H, W, fc1 (1x1 conv), bn (Identity), ReLU, fc2, sigmoid gate."""

    def __init__(self, channels: int, rd_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.bn(self.fc1(x_se)))))


class RegNetBottleneck(nn.Module):
    """timm's regnet Bottleneck (bottle_ratio 1): conv1 1x1, conv2 3x3 group conv (stride), se on the input's
    width * se_ratio, conv3 1x1 without act, downsample (1x1 conv + BN) or identity, add, act3."""

    def __init__(self, cin: int, cout: int, stride: int, group_size: int, se_ratio: float) -> None:
        super().__init__()
        mid = int(round(cout * 1.0))
        self.conv1 = ConvNormAct(cin, mid, 1)
        self.conv2 = ConvNormAct(mid, mid, 3, stride=stride, groups=mid // group_size)
        self.se = SEModule(mid, int(round(cin * se_ratio))) if se_ratio else nn.Identity()
        self.conv3 = ConvNormAct(mid, cout, 1, act=False)
        self.act3 = nn.ReLU()
        self.downsample = ConvNormAct(cin, cout, 1, stride=stride, act=False) if cin != cout or stride != 1 \
            else nn.Identity()
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv3(self.se(self.conv2(self.conv1(x))))
        return self.act3(self.drop_path(x) + self.downsample(shortcut))


class RegStage(nn.Module):
    def __init__(self, depth: int, cin: int, cout: int, group_size: int, se_ratio: float) -> None:
        super().__init__()
        for i in range(depth):
            self.add_module(f"b{i + 1}", RegNetBottleneck(cin if i == 0 else cout, cout, 2 if i == 0 else 1,
                                                         group_size, se_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            x = block(x)
        return x


class ClassifierHead(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(channels, classes)
        self.flatten = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.fc(self.drop(self.global_pool(x))))


def generate_regnet(w0: float, wa: float, wm: float, depth: int, group_size: int) -> tuple[list[int], list[int]]:
    """timm's generate_regnet + adjust_widths_groups_comp (bottle ratio 1): per-stage widths and depths."""
    widths_cont = [w0 + wa * i for i in range(depth)]
    exps = [round(math.log(w / w0) / math.log(wm)) for w in widths_cont]
    widths = [round(w0 * wm ** e / 8) * 8 for e in exps]
    stage_widths, stage_depths = [], []
    for w in widths:
        if stage_widths and stage_widths[-1] == w:
            stage_depths[-1] += 1
        else:
            stage_widths.append(w)
            stage_depths.append(1)
    groups = [min(group_size, w) for w in stage_widths]
    stage_widths = [int(round(w / g) * g) for w, g in zip(stage_widths, groups)]
    return stage_widths, stage_depths


class RegNet(nn.Module):
    """timm's RegNet: stem (3x3 stride 2, 32), stages s1..s4 from the generated widths, final_conv Identity, head."""

    def __init__(self, w0: float, wa: float, wm: float, depth: int, group_size: int, se_ratio: float = 0.25,
                 classes: int = 1000) -> None:
        super().__init__()
        self.stem = ConvNormAct(3, 32, 3, stride=2)
        widths, depths = generate_regnet(w0, wa, wm, depth, group_size)
        previous = 32
        for i, (width, blocks) in enumerate(zip(widths, depths)):
            self.add_module(f"s{i + 1}", RegStage(blocks, previous, width, min(group_size, width), se_ratio))
            previous = width
        self.final_conv = nn.Identity()
        self.head = ClassifierHead(previous, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.s4(self.s3(self.s2(self.s1(x))))
        return self.head(self.final_conv(x))


def regnety_016() -> RegNet:
    return RegNet(48, 20.71, 2.65, 27, 24)


def regnety_032() -> RegNet:
    return RegNet(80, 42.63, 2.66, 21, 24)


# ---------------------------------------------------------------------------------------------
# EfficientNetV2, TensorFlow port (timm/models/efficientnet.py tf_efficientnetv2_*; _efficientnet_blocks.py
# ConvBnAct, EdgeResidual, InvertedResidual, SqueezeExcite; layers/padding.py, layers/conv2d_same.py)

TF_BN_EPS = 1e-3


def _same_padding(size: int, kernel: int, stride: int) -> int:
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: pads each input as TensorFlow's SAME (the odd pixel right/bottom), then convolves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def tf_conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """timm's create_conv2d(padding='same'): static symmetric padding at stride 1, else Conv2dSame."""
    if stride == 1:
        return nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)
    return Conv2dSame(cin, cout, kernel, stride=stride, groups=groups, bias=False)


def tf_bn(channels: int, act: bool = True) -> BatchNormAct2d:
    return BatchNormAct2d(channels, act=act, eps=TF_BN_EPS, act_layer=nn.SiLU)


class ConvBnAct(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        self.conv = tf_conv(cin, cout, 3, stride)
        self.bn1 = tf_bn(cout)
        self.aa = nn.Identity()
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aa(self.bn1(self.conv(x)))
        return self.drop_path(y) + x if self.has_skip else y


class EdgeResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        mid = cin * expand
        self.conv_exp = tf_conv(cin, mid, 3, stride)
        self.bn1 = tf_bn(mid)
        self.aa = nn.Identity()
        self.se = nn.Identity()
        self.conv_pwl = tf_conv(mid, cout, 1)
        self.bn2 = tf_bn(cout, act=False)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pwl(self.se(self.aa(self.bn1(self.conv_exp(x))))))
        return self.drop_path(y) + x if self.has_skip else y


class SqueezeExcite(nn.Module):
    """timm's efficientnet SqueezeExcite: rd = block input * 0.25, SiLU, sigmoid gate."""

    def __init__(self, channels: int, rd_channels: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.act1 = nn.SiLU(inplace=True)
        self.conv_expand = nn.Conv2d(rd_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * self.gate(x_se)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        mid = cin * expand
        self.conv_pw = tf_conv(cin, mid, 1)
        self.bn1 = tf_bn(mid)
        self.conv_dw = tf_conv(mid, mid, 3, stride, groups=mid)
        self.bn2 = tf_bn(mid)
        self.aa = nn.Identity()
        self.se = SqueezeExcite(mid, cin // 4)
        self.conv_pwl = tf_conv(mid, cout, 1)
        self.bn3 = tf_bn(cout, act=False)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        y = self.bn3(self.conv_pwl(self.se(self.aa(y))))
        return self.drop_path(y) + x if self.has_skip else y


class EfficientNetV2(nn.Module):
    """timm's EfficientNet built from a V2 arch: stem, blocks (one Sequential per arch row), head conv, pool, fc.

    ``stages``: (block type "cn" | "er" | "ir", repeats, stride, expand, out channels), SE 0.25 on "ir" rows.
    """

    BLOCKS = {"cn": lambda cin, cout, stride, e: ConvBnAct(cin, cout, stride), "er": EdgeResidual,
              "ir": InvertedResidual}

    def __init__(self, stem: int, stages: list[tuple[str, int, int, int, int]], classes: int = 1000) -> None:
        super().__init__()
        self.conv_stem = tf_conv(3, stem, 3, 2)
        self.bn1 = tf_bn(stem)
        rows, previous = [], stem
        for kind, repeats, stride, expand, out in stages:
            row = []
            for i in range(repeats):
                row.append(self.BLOCKS[kind](previous, out, stride if i == 0 else 1, expand))
                previous = out
            rows.append(nn.Sequential(*row))
        self.blocks = nn.Sequential(*rows)
        self.conv_head = tf_conv(previous, 1280, 1)
        self.bn2 = tf_bn(1280)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))
        return self.classifier(self.global_pool(x))


def tf_efficientnetv2_b0() -> EfficientNetV2:
    return EfficientNetV2(32, [("cn", 1, 1, 1, 16), ("er", 2, 2, 4, 32), ("er", 2, 2, 4, 48), ("ir", 3, 2, 4, 96),
                               ("ir", 5, 1, 6, 112), ("ir", 8, 2, 6, 192)])


def tf_efficientnetv2_s() -> EfficientNetV2:
    return EfficientNetV2(24, [("cn", 2, 1, 1, 24), ("er", 4, 2, 4, 48), ("er", 4, 2, 4, 64), ("ir", 6, 2, 4, 128),
                               ("ir", 9, 1, 6, 160), ("ir", 15, 2, 6, 256)])


# ---------------------------------------------------------------------------------------------
# Test helpers


def randomize_all(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and norm statistic random (GRN's and layer scale's zeros/1e-6 too, so every branch counts)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            values = torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype)
            if name.endswith("running_var"):
                tensor.copy_(values + 0.5)
            elif tensor.dim() > 1:  # weights: keep the activations' scale (a uniform with variance 1 / fan-in)
                bound = math.sqrt(3.0 / tensor[0].numel())
                tensor.copy_((values * 2 - 1) * bound)
            else:
                tensor.copy_(values * 0.8 - 0.3)  # in [-0.3, 0.5]: norms' weights, biases, gammas
    return model
