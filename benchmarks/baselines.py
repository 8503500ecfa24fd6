"""Baselines for the benchmarks: straightforward implementations written the way the papers' official code is.

These are what netspec's modules are measured against (``benchmarks/run.py``). They compute the same
functions as netspec's kinds with the same parameters (``tests/test_benchmark_baselines.py`` checks it by
copying weights across), but in the style of the reference code:

- Non-local: embedded gaussian as AlexHex7/Non-local_pytorch (the PyTorch port of facebookresearch/video-nonlocal-net):
  ``f = theta^T phi`` materialised as a (HW x HW) matrix with ``torch.matmul``, ``softmax``, ``matmul`` with g.
- PAM / CAM: ``PAM_Module`` / ``CAM_Module`` of junfu1115/DANet (``encoding/nn/da_att.py``): ``torch.bmm``,
  ``Softmax(dim=-1)``, CAM's ``max(energy) - energy``, ``gamma * out + x``. DANet = PAM(x) + CAM(x).
- SE: ``SELayer`` (moskomule/senet.pytorch, the usual PyTorch port of the Caffe SENet): pool, Linear, ReLU,
  Linear, Sigmoid, ``x * y.expand_as(x)``.
- ECA: ``eca_layer`` of BangguWu/ECANet.
- CBAM: ``CBAM`` of Jongchan/attention-module (``MODELS/cbam.py``): ``F.avg_pool2d``/``F.max_pool2d`` over the
  whole map, Flatten + Linear MLP, ``torch.max(x, 1)[0]`` / ``torch.mean`` channel pool, BasicConv 7x7 + BN.
- SK: ``SKConv`` in the style of the PyTorch ports of SKNet (pppLang/SKNet), with the official Caffe model's
  choices (3x3 branches with dilation 1..M, fc d + BN + ReLU, one fc d -> M*C): ``unsqueeze`` + ``cat`` of the
  branches, ``sum``, ``mean(-1).mean(-1)``, ``softmax(dim=1)``, ``(feas * attention).sum(dim=1)``.
- ResNet-50: constructed directly with ``nn.Conv2d`` / ``nn.BatchNorm2d`` as torchvision's ``resnet.py``
  (``Bottleneck``, ``_make_layer``), without torchvision's extra re-initialisation loop (netspec keeps
  PyTorch's default initialisation too, so both construct the same work).

Nothing here is imported by netspec itself.
"""
from __future__ import annotations

import math
from types import ModuleType

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# Spatial attention: Non-local, PAM, CAM, DANet


class NonLocalBaseline(nn.Module):
    """Embedded-gaussian non-local block (Wang et al., CVPR 2018), AlexHex7/Non-local_pytorch style, no sub-sampling."""

    def __init__(self, in_channels: int, inter_channels: int | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.inter_channels = inter_channels or max(in_channels // 2, 1)
        self.g = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1, stride=1, padding=0)
        self.theta = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1, stride=1, padding=0)
        self.phi = nn.Conv2d(in_channels, self.inter_channels, kernel_size=1, stride=1, padding=0)
        self.W = nn.Sequential(
            nn.Conv2d(self.inter_channels, in_channels, kernel_size=1, stride=1, padding=0),
            nn.BatchNorm2d(in_channels),
        )
        nn.init.constant_(self.W[1].weight, 0)
        nn.init.constant_(self.W[1].bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_size = x.size(0)
        g_x = self.g(x).view(batch_size, self.inter_channels, -1)
        g_x = g_x.permute(0, 2, 1)
        theta_x = self.theta(x).view(batch_size, self.inter_channels, -1)
        theta_x = theta_x.permute(0, 2, 1)
        phi_x = self.phi(x).view(batch_size, self.inter_channels, -1)
        f = torch.matmul(theta_x, phi_x)
        f_div_C = F.softmax(f, dim=-1)
        y = torch.matmul(f_div_C, g_x)
        y = y.permute(0, 2, 1).contiguous()
        y = y.view(batch_size, self.inter_channels, *x.size()[2:])
        W_y = self.W(y)
        z = W_y + x
        return z


class PAMBaseline(nn.Module):
    """Position attention module, as ``PAM_Module`` in junfu1115/DANet."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.chanel_in = in_dim
        self.query_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
        self.key_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
        self.value_conv = nn.Conv2d(in_channels=in_dim, out_channels=in_dim, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_batchsize, C, height, width = x.size()
        proj_query = self.query_conv(x).view(m_batchsize, -1, width * height).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(m_batchsize, -1, width * height)
        energy = torch.bmm(proj_query, proj_key)
        attention = self.softmax(energy)
        proj_value = self.value_conv(x).view(m_batchsize, -1, width * height)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1))
        out = out.view(m_batchsize, C, height, width)
        out = self.gamma * out + x
        return out


class CAMBaseline(nn.Module):
    """Channel attention module, as ``CAM_Module`` in junfu1115/DANet (softmax of ``rowmax(E) - E``)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.chanel_in = in_dim
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m_batchsize, C, height, width = x.size()
        proj_query = x.view(m_batchsize, C, -1)
        proj_key = x.view(m_batchsize, C, -1).permute(0, 2, 1)
        energy = torch.bmm(proj_query, proj_key)
        energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        attention = self.softmax(energy_new)
        proj_value = x.view(m_batchsize, C, -1)
        out = torch.bmm(attention, proj_value)
        out = out.view(m_batchsize, C, height, width)
        out = self.gamma * out + x
        return out


class DANetBaseline(nn.Module):
    """PAM and CAM in parallel on the same input, summed (netspec's ``danet`` kind)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.sa = PAMBaseline(in_dim)
        self.sc = CAMBaseline(in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sa(x) + self.sc(x)


# ---------------------------------------------------------------------------------------------
# Channel attention: SE, ECA, CBAM, SK


class SEBaseline(nn.Module):
    """``SELayer`` (senet.pytorch): FCs with bias, C -> C/r -> C."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


def eca_kernel(channels: int, gamma: int = 2, b: int = 1) -> int:
    t = int(abs((math.log(channels, 2) + b) / gamma))
    return t if t % 2 else t + 1


class ECABaseline(nn.Module):
    """``eca_layer`` (BangguWu/ECANet): Conv1d across channels, no bias."""

    def __init__(self, channel: int, k_size: int | None = None) -> None:
        super().__init__()
        k_size = k_size or eca_kernel(channel)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.avg_pool(x)
        y = self.conv(y.squeeze(-1).transpose(-1, -2)).transpose(-1, -2).unsqueeze(-1)
        y = self.sigmoid(y)
        return x * y.expand_as(x)


class BasicConv(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, relu: bool = True, bn: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.out_channels = out_planes
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


class ChannelGate(nn.Module):
    def __init__(self, gate_channels: int, reduction_ratio: int = 16, pool_types: tuple[str, ...] = ("avg", "max")):
        super().__init__()
        self.gate_channels = gate_channels
        self.mlp = nn.Sequential(
            Flatten(),
            nn.Linear(gate_channels, gate_channels // reduction_ratio),
            nn.ReLU(),
            nn.Linear(gate_channels // reduction_ratio, gate_channels),
        )
        self.pool_types = pool_types

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_att_sum = None
        for pool_type in self.pool_types:
            if pool_type == "avg":
                avg_pool = F.avg_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
                channel_att_raw = self.mlp(avg_pool)
            elif pool_type == "max":
                max_pool = F.max_pool2d(x, (x.size(2), x.size(3)), stride=(x.size(2), x.size(3)))
                channel_att_raw = self.mlp(max_pool)
            if channel_att_sum is None:
                channel_att_sum = channel_att_raw
            else:
                channel_att_sum = channel_att_sum + channel_att_raw
        scale = torch.sigmoid(channel_att_sum).unsqueeze(2).unsqueeze(3).expand_as(x)
        return x * scale


class ChannelPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class SpatialGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        kernel_size = 7
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, kernel_size, stride=1, padding=(kernel_size - 1) // 2, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_compress = self.compress(x)
        x_out = self.spatial(x_compress)
        scale = torch.sigmoid(x_out)  # broadcasting
        return x * scale


class CBAMBaseline(nn.Module):
    """``CBAM`` of Jongchan/attention-module: channel gate then spatial gate."""

    def __init__(self, gate_channels: int, reduction_ratio: int = 16, no_spatial: bool = False) -> None:
        super().__init__()
        self.ChannelGate = ChannelGate(gate_channels, reduction_ratio)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_out = self.ChannelGate(x)
        if not self.no_spatial:
            x_out = self.SpatialGate(x_out)
        return x_out


class SKBaseline(nn.Module):
    """Selective Kernel unit in the style of the PyTorch SKNet ports, with the official Caffe model's layers."""

    def __init__(self, features: int, M: int = 2, G: int = 32, r: int = 16, stride: int = 1, L: int = 32) -> None:
        super().__init__()
        d = max(int(features / r), L)
        self.M = M
        self.features = features
        self.convs = nn.ModuleList([])
        for i in range(M):
            self.convs.append(nn.Sequential(
                nn.Conv2d(features, features, kernel_size=3, stride=stride, padding=1 + i, dilation=1 + i,
                          groups=G, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=False),
            ))
        self.fc = nn.Sequential(nn.Conv2d(features, d, kernel_size=1, bias=False), nn.BatchNorm2d(d), nn.ReLU())
        self.fcs = nn.Conv2d(d, M * features, kernel_size=1, bias=False)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            fea = conv(x).unsqueeze(dim=1)  # the ports write unsqueeze_, which autograd rejects after a ReLU
            if i == 0:
                feas = fea
            else:
                feas = torch.cat([feas, fea], dim=1)
        fea_U = torch.sum(feas, dim=1)
        fea_s = fea_U.mean(-1).mean(-1)
        fea_z = self.fc(fea_s[:, :, None, None])
        attention_vectors = self.fcs(fea_z).view(x.size(0), self.M, self.features)
        attention_vectors = self.softmax(attention_vectors)
        attention_vectors = attention_vectors.unsqueeze(-1).unsqueeze(-1)
        fea_v = (feas * attention_vectors).sum(dim=1)
        return fea_v


ATTENTION_BASELINES = {
    "se": SEBaseline,
    "eca": ECABaseline,
    "cbam": CBAMBaseline,
    "sk": SKBaseline,
    "nonlocal": NonLocalBaseline,
    "pam": PAMBaseline,
    "cam": CAMBaseline,
    "danet": DANetBaseline,
}
"""netspec kind -> baseline class taking the channel count (every kind at its defaults)."""


def _from_tests(name: str) -> ModuleType:
    """A reference module written out in ``tests/`` (the official code, torchvision's layouts), imported on use."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def _official() -> ModuleType:
    """``tests/official_attention.py``, where the issue-13 kinds' official code is written out."""
    return _from_tests("official_attention")


ATTENTION_BASELINES.update({
    "coord": lambda c: _official().CoordAtt(c, c),
    "gc": lambda c: _official().ContextBlock2d(c, c // 16, "att", ["channel_add"]),
    "bam": lambda c: _official().BAM(c),
    "triplet": lambda c: _official().TripletAttention(c),
    "simam": lambda c: _official().simam_module(c),
    "ese": lambda c: _official().eSEModule(c),
    "splat": lambda c: _official().SplAtConv2d(c, c, 3, padding=1, bias=False, radix=2, norm_layer=nn.BatchNorm2d),
    "ge": lambda c: _official().GatherExcite(c),
    "psa": lambda c: _from_tests("ultralytics_references").PSABlock(c, attn_ratio=0.5, num_heads=max(c // 64, 1)),
})
ATTENTION_BASELINES.update({  # issue 22: timm 1.0.31's modules in timm's layout (tests/official_*.py)
    "lambda": lambda c: _from_tests("official_self_attention").LambdaLayer(c),
    "ecam": lambda c: _from_tests("official_timm_attention").EcaModule(c),
    "lcbam": lambda c: _from_tests("official_timm_attention").LightCbamModule(c),
    "scoord": lambda c: _from_tests("official_timm_attention").SimpleCoordAttn(c),
    "ela": lambda c: _from_tests("official_timm_attention").EfficientLocalAttn(c),
    "strip": lambda c: _from_tests("official_timm_attention").StripAttn(c),
    "bat": lambda c: _from_tests("official_timm_attention").BatNonLocalAttn(c),
})
SIZED_TWINS = {"bottleneck_attn", "halo_attn"}
"""Attention kinds whose twins need the map size (position tables, blocks): benchmarks/self_attention.py."""
BY_ORDER = {"coord", "gc", "bam", "triplet", "simam", "ese", "splat", "ge", "lambda", "ecam", "lcbam", "scoord",
            "ela", "strip", "bat", "psa"}
"""Kinds whose weights copy into their baseline by state-dict order (the names differ, the order does not)."""


# ---------------------------------------------------------------------------------------------
# ResNet-50, constructed directly (torchvision resnet.py style)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck; with ``attention`` the timm/SENet/CBAM layout (the gate after bn3, before the
    residual add: timm ``resnet.py`` ``Bottleneck.se``); with ``sk`` the official SKNet unit (an SK unit with its
    own BN + ReLU in place of conv2 + bn2 + relu, ``width`` = 2 x planes)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 attention: Callable[[int], nn.Module] | None = None, sk: bool = False) -> None:
        super().__init__()
        width = 2 * planes if sk else planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        if sk:
            self.conv2: nn.Module = SKBaseline(width, stride=stride)
            self.bn2: nn.Module = nn.Identity()
        else:
            self.conv2 = conv3x3(width, width, stride)
            self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.se = attention(planes * self.expansion) if attention is not None else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.sk = sk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out) if self.sk else self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    """torchvision's ResNet-50 (25,557,032 parameters), written out with torch modules; ``attention`` (a module
    factory taking the channel count, as timm's ``attn_layer``) and ``sk`` make the attention twins."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000,
                 attention: Callable[[int], nn.Module] | None = None, sk: bool = False) -> None:
        super().__init__()
        self.attention, self.sk = attention, sk
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * Bottleneck.expansion, stride),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, self.attention, self.sk)]
        self.inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, attention=self.attention, sk=self.sk))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class UltralyticsDetector(nn.Module):
    """An Ultralytics detection model as ``tests/ultralytics_references.py`` writes it (parse_model's layout, Detect
    with bias_init, BN eps 1e-3 / momentum 0.03): the training dict in training, and in eval the decoded tensor
    alone (Ultralytics returns it with the raw dict, which costs nothing more), as netspec's detect does."""

    def __init__(self, family: str, insert: dict[int, Callable[[int], nn.Module]] | None = None) -> None:
        super().__init__()
        self.net = _from_tests("ultralytics_references").DetectionModel(family, insert=insert)

    def forward(self, x: torch.Tensor) -> Any:
        out = self.net(x)
        return out if self.training else out[0]


def yolov8n_cbam() -> nn.Module:
    """Ultralytics' YOLOv8n with ``CBAMBaseline`` after SPPF: the CBAM sits in SPPF's slot (layer 9), so everything
    that read SPPF reads the CBAM's output, as in specs/yolov8n_cbam.yaml."""
    return UltralyticsDetector("yolov8", insert={9: CBAMBaseline})


def ultralytics_fuse(model: nn.Module) -> nn.Module:
    """What Ultralytics' ``BaseModel.fuse()`` does to a model of its ``Conv`` modules, in place: every module with a
    ``conv`` and a ``bn`` gets the BN folded into the conv (``torch.nn.utils.fusion.fuse_conv_bn_weights``, as
    ``fuse_conv_and_bn``), loses its ``bn`` and runs ``act(conv(x))`` (``Conv.forward_fuse``)."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and hasattr(module, "act"):
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
            conv.requires_grad_(False)
            del module.bn
            module.forward = (lambda m: lambda x: m.act(m.conv(x)))(module)  # forward_fuse
    return model


NETWORK_TWINS: dict[str, Callable[[], nn.Module]] = {
    "resnet50": ResNet50,  # torchvision resnet50
    "se_resnet50": lambda: ResNet50(attention=SEBaseline),  # timm seresnet50
    "eca_resnet50": lambda: ResNet50(attention=ECABaseline),  # timm ecaresnet50 layout, adaptive k
    "cbam_resnet50": lambda: ResNet50(attention=CBAMBaseline),  # official CBAM ResNet-50
    "sknet50": lambda: ResNet50(sk=True),  # official SKNet-50
    "mobilenet_v3_large": lambda: _from_tests("torchvision_mobilenets").MobileNetV3("large"),  # torchvision's layout
    "efficientnet_b0": lambda: _from_tests("torchvision_mobilenets").EfficientNetB0(),  # torchvision's layout
    "deeplabv3_resnet50": lambda: _from_tests("network_references").DeepLabV3(),  # torchvision deeplabv3_resnet50
    "yolov8n_cbam": yolov8n_cbam,  # Ultralytics YOLOv8n detector, the official CBAM after SPPF
    "yolov8n": lambda: UltralyticsDetector("yolov8"),  # Ultralytics 8.4 yolov8n.yaml
    "yolo11n": lambda: UltralyticsDetector("yolo11"),  # Ultralytics 8.4 yolo11n.yaml
    "convnext_tiny": lambda: _from_tests("timm_references").convnext_tiny(),  # timm convnext_tiny's layout
    "regnety_016": lambda: _from_tests("timm_references").regnety_016(),  # timm regnety_016's layout
}
"""specs/NAME.yaml -> its twin written with torch modules; adding a pair is one entry here."""

FUSED_TWINS: dict[str, Callable[[], nn.Module]] = {name: NETWORK_TWINS[name] for name in ("yolov8n", "yolo11n")}
"""specs/NAME.yaml -> its twin in Ultralytics' layout, which ``ultralytics_fuse`` fuses (the fuse target)."""

_TIMM, _TORCHVISION, _ULTRALYTICS = "timm 1.0.31", "torchvision 0.29.1", "Ultralytics 8.4.190"
TWIN_SOURCES: dict[str, tuple[str, str]] = {
    # the attention baselines (targets memory, attention, kernels): the authors' code; no package ships it
    "se": ("moskomule/senet.pytorch `SELayer` (the PyTorch port of hujie-frank/SENet's Caffe release)", "none"),
    "eca": ("BangguWu/ECANet `eca_layer`", "none"),
    "cbam": ("Jongchan/attention-module `MODELS/cbam.py`", "none"),
    "sk": ("SKNet's Caffe release as pppLang/SKNet ports it (`SKConv`)", "none"),
    "nonlocal": ("AlexHex7/Non-local_pytorch (embedded gaussian)", "none"),
    "pam": ("junfu1115/DANet `encoding/nn/da_att.py` `PAM_Module`", "none"),
    "cam": ("junfu1115/DANet `encoding/nn/da_att.py` `CAM_Module`", "none"),
    "danet": ("junfu1115/DANet: `PAM_Module` + `CAM_Module`", "none"),
    "coord": ("houqb/CoordAttention `coordatt.py`", "none"),
    "gc": ("xvjiarui/GCNet `context_block.py`", "none"),
    "bam": ("Jongchan/attention-module `MODELS/bam.py`", "none"),
    "triplet": ("landskape-ai/triplet-attention `MODELS/triplet_attention.py`", "none"),
    "simam": ("ZjjConan/SimAM `simam_module.py`", "none"),
    "ese": ("youngwanLEE/vovnet-detectron2 `vovnet.py` `eSEModule`", "none"),
    "splat": ("zhanghang1989/ResNeSt `splat.py` `SplAtConv2d`", "none"),
    "ge": (f"{_TIMM} `layers/gather_excite.py` (the authors' code is Lua)", "tests only"),
    "psa": (f"{_ULTRALYTICS} `nn/modules/block.py` `PSABlock`", "tests only"),
    **{kind: (f"{_TIMM} `timm/layers/` module of the same name", "tests only")
       for kind in ("lambda", "ecam", "lcbam", "scoord", "ela", "strip", "bat")},
    "bottleneck_attn": (f"{_TIMM} `layers/bottleneck_attn.py`", "self_attention.py, where timm imports"),
    "halo_attn": (f"{_TIMM} `layers/halo_attn.py`", "self_attention.py, where timm imports"),
    # the network twins (targets networks, compile, fuse)
    "resnet50": (f"{_TORCHVISION} `models.resnet50`", "packages target"),
    "se_resnet50": (f"{_TIMM} `seresnet50`", "packages target"),
    "eca_resnet50": (f"{_TIMM} `resnet50` with `attn_layer='eca'`", "packages target"),
    "cbam_resnet50": ("Jongchan/attention-module `ResidualNet(..., 'CBAM')`", "none (timm's `cbam` is another design)"),
    "sknet50": ("SKNet-50's Caffe release (the `SKConv` above in a ResNet-50)",
                "none (timm's `skresnet50` is another design)"),
    "mobilenet_v3_large": (f"{_TORCHVISION} `models.mobilenet_v3_large`", "packages target"),
    "efficientnet_b0": (f"{_TORCHVISION} `models.efficientnet_b0`", "packages target"),
    "deeplabv3_resnet50": (f"{_TORCHVISION} `models.segmentation.deeplabv3_resnet50` (no aux head)",
                           "packages target with `--networks deeplabv3_resnet50` (not by default: slow on a CPU)"),
    "yolov8n_cbam": (f"{_ULTRALYTICS} `yolov8n.yaml` with Jongchan's CBAM after SPPF", "none"),
    "yolov8n": (f"{_ULTRALYTICS} `DetectionModel('yolov8n.yaml')`", "packages target"),
    "yolo11n": (f"{_ULTRALYTICS} `DetectionModel('yolo11n.yaml')`", "packages target"),
    "convnext_tiny": (f"{_TIMM} `convnext_tiny`", "packages target"),
    "regnety_016": (f"{_TIMM} `regnety_016`", "packages target"),
}
"""Every in-house twin (attention baselines and network twins) -> (the code it is written after: the package and
version, or the authors' repository where no package ships it; where the real package is measured instead)."""



# ---------------------------------------------------------------------------------------------
# Same weights in both: netspec's parameter names -> the baseline's


_RENAMES: dict[str, list[tuple[str, str]]] = {
    "se": [(r"^fc1\.", "fc.0."), (r"^fc2\.", "fc.2.")],
    "cbam": [(r"^channel\.fc1\.", "ChannelGate.mlp.1."), (r"^channel\.fc2\.", "ChannelGate.mlp.3."),
             (r"^spatial\.conv\.", "SpatialGate.spatial.conv."), (r"^spatial\.norm\.", "SpatialGate.spatial.bn.")],
    "sk": [(r"^branches\.(\d+)\.conv\.", r"convs.\1.0."), (r"^branches\.(\d+)\.norm\.", r"convs.\1.1."),
           (r"^fc1\.conv\.", "fc.0."), (r"^fc1\.norm\.", "fc.1."), (r"^fc2\.", "fcs.")],
}


def copy_weights(kind: str, module: nn.Module, baseline: nn.Module) -> None:
    """Load ``module``'s (netspec's) parameters and buffers into ``baseline``, so both compute the same function."""
    import re

    target = baseline.state_dict()
    if kind in BY_ORDER:
        baseline.load_state_dict(dict(zip(target, module.state_dict().values(), strict=True)))
        return
    loaded = {}
    for name, value in module.state_dict().items():
        for pattern, replacement in _RENAMES.get(kind, []):
            name = re.sub(pattern, replacement, name)
        loaded[name] = value.reshape(target[name].shape)
    missing = set(target) - set(loaded)
    if missing:
        raise KeyError(f"{kind}: baseline entries without a netspec counterpart: {sorted(missing)}")
    baseline.load_state_dict(loaded)
