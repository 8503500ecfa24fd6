"""Ultralytics 8.4's detection models written out with plain torch modules, in Ultralytics' layout.

``ultralytics`` does not install in the test environment, so ``parse_model`` (ultralytics/nn/tasks.py), the blocks
it builds (nn/modules/block.py C2, C3, C3k, C3k2, C3Ghost, GhostBottleneck, Attention, PSABlock, C2PSA, DFL, Proto;
conv.py Conv, DWConv, GhostConv) and
the heads (nn/modules/head.py Detect, Segment) are written here as that source builds them: the same module
registration order (so the same state-dict order), op order and defaults. ``Conv``, ``C2f``, ``SPPF`` and the
bottleneck come from ``network_references``. A throwaway script checked these against the real package (random
weights copied into ``ultralytics.nn.tasks.DetectionModel``/``SegmentationModel``: equal training dicts and eval
outputs); the tests below the line compare them with netspec's specs.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from network_references import C2f, Concat, Conv, SPPF, YoloBottleneck


class DWConv(Conv):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2))


class ConvNoAct(Conv):
    """``Conv(..., act=False)``: conv and bn, an Identity activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1) -> None:
        super().__init__(c1, c2, k, s, g=g)
        self.act = nn.Identity()


class C3(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: tuple[int, int] = (1, 3)) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(YoloBottleneck(c_, c_, shortcut, g, k=k, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k(C3):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 k: int = 3) -> None:
        super().__init__(c1, c2, n, shortcut, g, e, k=(k, k))


class C3k2(C2f):
    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, g: int = 1,
                 shortcut: bool = True) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(C3k(self.c, self.c, 2, shortcut, g) if c3k else YoloBottleneck(self.c, self.c, shortcut, g)
                               for _ in range(n))


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim**-0.5
        self.qkv = ConvNoAct(dim, dim + 2 * self.key_dim * num_heads, 1)
        self.proj = ConvNoAct(dim, dim, 1)
        self.pe = ConvNoAct(dim, dim, 3, 1, g=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).view(b, self.num_heads, self.key_dim * 2 + self.head_dim, h * w).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q * self.scale).transpose(-2, -1) @ k).softmax(dim=-1)
        x = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(x)


class PSABlock(nn.Module):
    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = Attention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), ConvNoAct(c * 2, c, 1))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


class C2PSA(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        assert c1 == c2
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1)) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class C2(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c2, 1)
        self.m = nn.Sequential(*(YoloBottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((self.m(a), b), 1))


class GhostConv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True) -> None:
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, k, s, None, g) if act else ConvNoAct(c1, c_, k, s, g)
        self.cv2 = Conv(c_, c_, 5, 1, None, c_) if act else ConvNoAct(c_, c_, 5, 1, c_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return torch.cat((y, self.cv2(y)), 1)


class GhostBottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        assert s == 1  # the stride-2 form (a DWConv in both paths) is not in any detect YAML
        c_ = c2 // 2
        self.conv = nn.Sequential(GhostConv(c1, c_, 1, 1), nn.Identity(), GhostConv(c_, c2, 1, 1, act=False))
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


class C3Ghost(C3):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__(c1, c2, n, shortcut, g, e)
        c_ = int(c2 * e)
        self.m = nn.Sequential(*(GhostBottleneck(c_, c_) for _ in range(n)))


class DFL(nn.Module):
    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = nn.Parameter(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class Proto(nn.Module):
    def __init__(self, c1: int, c_: int = 256, c2: int = 32) -> None:
        super().__init__()
        self.cv1 = Conv(c1, c_, k=3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, k=3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


def make_anchors(feats: list[torch.Tensor], strides: torch.Tensor, offset: float = 0.5) -> tuple[torch.Tensor, ...]:
    points, stride_rows = [], []
    for i, feat in enumerate(feats):
        h, w = feat.shape[2:]
        sx = torch.arange(w).type_as(feat) + offset
        sy = torch.arange(h).type_as(feat) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_rows.append(feat.new_full((h * w, 1), float(strides[i])))
    return torch.cat(points), torch.cat(stride_rows)


class Detect(nn.Module):
    """Ultralytics 8.4 ``Detect`` without end-to-end/export paths: a dict in training, ``(y, dict)`` in eval."""

    legacy = False

    def __init__(self, nc: int = 80, reg_max: int = 16, ch: tuple[int, ...] = (), legacy: bool = False) -> None:
        super().__init__()
        self.legacy = legacy
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.stride = torch.zeros(self.nl)
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(self.nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1))
                                 for x in ch)
        self.cv3 = (
            nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
            if self.legacy else
            nn.ModuleList(nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                                        nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                                        nn.Conv2d(c3, self.nc, 1)) for x in ch))
        self.dfl = DFL(self.reg_max) if self.reg_max > 1 else nn.Identity()

    def forward_head(self, x: list[torch.Tensor]) -> dict:
        bs = x[0].shape[0]
        boxes = torch.cat([self.cv2[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], dim=-1)
        scores = torch.cat([self.cv3[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], dim=-1)
        return {"boxes": boxes, "scores": scores, "feats": x}

    def forward(self, x: list[torch.Tensor]) -> dict | tuple:
        preds = self.forward_head(x)
        if self.training:
            return preds
        return self._inference(preds), preds

    def _inference(self, x: dict) -> torch.Tensor:
        anchors, strides = (a.transpose(0, 1) for a in make_anchors(x["feats"], self.stride, 0.5))
        distance = self.dfl(x["boxes"])
        lt, rb = distance.chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((dbox, x["scores"].sigmoid()), 1)

    def bias_init(self) -> None:
        for a, b, s in zip(self.cv2, self.cv3, self.stride):
            a[-1].bias.data[:] = 2.0
            b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / s) ** 2)


class Segment(Detect):
    def __init__(self, nc: int = 80, nm: int = 32, npr: int = 256, reg_max: int = 16, ch: tuple[int, ...] = (),
                 legacy: bool = False) -> None:
        super().__init__(nc, reg_max, ch, legacy)
        self.nm, self.npr = nm, npr
        self.proto = Proto(ch[0], self.npr, self.nm)
        c4 = max(ch[0] // 4, self.nm)
        self.cv4 = nn.ModuleList(nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, self.nm, 1)) for x in ch)

    def forward_head(self, x: list[torch.Tensor]) -> dict:
        preds = super().forward_head(x)
        bs = x[0].shape[0]
        preds["mask_coefficient"] = torch.cat([self.cv4[i](x[i]).view(bs, self.nm, -1) for i in range(self.nl)], 2)
        return preds

    def _inference(self, x: dict) -> torch.Tensor:
        return torch.cat([super()._inference(x), x["mask_coefficient"]], dim=1)

    def forward(self, x: list[torch.Tensor]) -> dict | tuple:
        outputs = super().forward(x)
        preds = outputs[1] if isinstance(outputs, tuple) else outputs
        proto = self.proto(x[0])
        preds["proto"] = proto
        if self.training:
            return preds
        return (outputs[0], proto), preds


# (from, repeats, module, args) as in ultralytics/cfg/models/{v5/yolov5.yaml, v8/yolov8.yaml, 11/yolo11.yaml}
NECK_V8 = [
    (-1, 1, "Upsample", []), ([-1, 6], 1, "Concat", []), (-1, 3, "C2f", [512]),
    (-1, 1, "Upsample", []), ([-1, 4], 1, "Concat", []), (-1, 3, "C2f", [256]),
    (-1, 1, "Conv", [256, 3, 2]), ([-1, 12], 1, "Concat", []), (-1, 3, "C2f", [512]),
    (-1, 1, "Conv", [512, 3, 2]), ([-1, 9], 1, "Concat", []), (-1, 3, "C2f", [1024]),
]
YOLOV8 = [
    (-1, 1, "Conv", [64, 3, 2]), (-1, 1, "Conv", [128, 3, 2]), (-1, 3, "C2f", [128, True]),
    (-1, 1, "Conv", [256, 3, 2]), (-1, 6, "C2f", [256, True]), (-1, 1, "Conv", [512, 3, 2]),
    (-1, 6, "C2f", [512, True]), (-1, 1, "Conv", [1024, 3, 2]), (-1, 3, "C2f", [1024, True]),
    (-1, 1, "SPPF", [1024, 5]), *NECK_V8, ([15, 18, 21], 1, "Detect", ["nc"]),
]
YOLO11 = [
    (-1, 1, "Conv", [64, 3, 2]), (-1, 1, "Conv", [128, 3, 2]), (-1, 2, "C3k2", [256, False, 0.25]),
    (-1, 1, "Conv", [256, 3, 2]), (-1, 2, "C3k2", [512, False, 0.25]), (-1, 1, "Conv", [512, 3, 2]),
    (-1, 2, "C3k2", [512, True]), (-1, 1, "Conv", [1024, 3, 2]), (-1, 2, "C3k2", [1024, True]),
    (-1, 1, "SPPF", [1024, 5]), (-1, 2, "C2PSA", [1024]),
    (-1, 1, "Upsample", []), ([-1, 6], 1, "Concat", []), (-1, 2, "C3k2", [512, False]),
    (-1, 1, "Upsample", []), ([-1, 4], 1, "Concat", []), (-1, 2, "C3k2", [256, False]),
    (-1, 1, "Conv", [256, 3, 2]), ([-1, 13], 1, "Concat", []), (-1, 2, "C3k2", [512, False]),
    (-1, 1, "Conv", [512, 3, 2]), ([-1, 10], 1, "Concat", []), (-1, 2, "C3k2", [1024, True]),
    ([16, 19, 22], 1, "Detect", ["nc"]),
]
YOLOV5U = [
    (-1, 1, "Conv", [64, 6, 2, 2]), (-1, 1, "Conv", [128, 3, 2]), (-1, 3, "C3", [128]),
    (-1, 1, "Conv", [256, 3, 2]), (-1, 6, "C3", [256]), (-1, 1, "Conv", [512, 3, 2]),
    (-1, 9, "C3", [512]), (-1, 1, "Conv", [1024, 3, 2]), (-1, 3, "C3", [1024]), (-1, 1, "SPPF", [1024, 5]),
    (-1, 1, "Conv", [512, 1, 1]), (-1, 1, "Upsample", []), ([-1, 6], 1, "Concat", []), (-1, 3, "C3", [512, False]),
    (-1, 1, "Conv", [256, 1, 1]), (-1, 1, "Upsample", []), ([-1, 4], 1, "Concat", []), (-1, 3, "C3", [256, False]),
    (-1, 1, "Conv", [256, 3, 2]), ([-1, 14], 1, "Concat", []), (-1, 3, "C3", [512, False]),
    (-1, 1, "Conv", [512, 3, 2]), ([-1, 10], 1, "Concat", []), (-1, 3, "C3", [1024, False]),
    ([17, 20, 23], 1, "Detect", ["nc"]),
]
YOLOV8_P6 = [  # v8/yolov8-p6.yaml
    (-1, 1, "Conv", [64, 3, 2]), (-1, 1, "Conv", [128, 3, 2]), (-1, 3, "C2f", [128, True]),
    (-1, 1, "Conv", [256, 3, 2]), (-1, 6, "C2f", [256, True]), (-1, 1, "Conv", [512, 3, 2]),
    (-1, 6, "C2f", [512, True]), (-1, 1, "Conv", [768, 3, 2]), (-1, 3, "C2f", [768, True]),
    (-1, 1, "Conv", [1024, 3, 2]), (-1, 3, "C2f", [1024, True]), (-1, 1, "SPPF", [1024, 5]), (-1, 1, "Upsample", []),
    ([-1, 8], 1, "Concat", []), (-1, 3, "C2", [768, False]), (-1, 1, "Upsample", []), ([-1, 6], 1, "Concat", []),
    (-1, 3, "C2", [512, False]), (-1, 1, "Upsample", []), ([-1, 4], 1, "Concat", []), (-1, 3, "C2", [256, False]),
    (-1, 1, "Conv", [256, 3, 2]), ([-1, 17], 1, "Concat", []), (-1, 3, "C2", [512, False]),
    (-1, 1, "Conv", [512, 3, 2]), ([-1, 14], 1, "Concat", []), (-1, 3, "C2", [768, False]),
    (-1, 1, "Conv", [768, 3, 2]), ([-1, 11], 1, "Concat", []), (-1, 3, "C2", [1024, False]),
    ([20, 23, 26, 29], 1, "Detect", ["nc"]),
]
YOLOV8_GHOST = [  # v8/yolov8-ghost.yaml
    (-1, 1, "Conv", [64, 3, 2]), (-1, 1, "GhostConv", [128, 3, 2]), (-1, 3, "C3Ghost", [128, True]),
    (-1, 1, "GhostConv", [256, 3, 2]), (-1, 6, "C3Ghost", [256, True]), (-1, 1, "GhostConv", [512, 3, 2]),
    (-1, 6, "C3Ghost", [512, True]), (-1, 1, "GhostConv", [1024, 3, 2]), (-1, 3, "C3Ghost", [1024, True]),
    (-1, 1, "SPPF", [1024, 5]), (-1, 1, "Upsample", []), ([-1, 6], 1, "Concat", []), (-1, 3, "C3Ghost", [512]),
    (-1, 1, "Upsample", []), ([-1, 4], 1, "Concat", []), (-1, 3, "C3Ghost", [256]), (-1, 1, "GhostConv", [256, 3, 2]),
    ([-1, 12], 1, "Concat", []), (-1, 3, "C3Ghost", [512]), (-1, 1, "GhostConv", [512, 3, 2]),
    ([-1, 9], 1, "Concat", []), (-1, 3, "C3Ghost", [1024]), ([15, 18, 21], 1, "Detect", ["nc"]),
]
SCALES = {  # [depth, width, max_channels] per file
    "yolov8": {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 768), "l": (1.0, 1.0, 512),
               "x": (1.0, 1.25, 512)},
    "yolo11": {"n": (0.50, 0.25, 1024), "s": (0.50, 0.50, 1024), "m": (0.50, 1.00, 512), "l": (1.0, 1.0, 512),
               "x": (1.0, 1.50, 512)},
    "yolov5": {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 1024), "l": (1.0, 1.0, 1024),
               "x": (1.33, 1.25, 1024)},
}
SCALES["yolov8-p6"] = SCALES["yolov8-ghost"] = SCALES["yolov8"]
TABLES = {"yolov8": YOLOV8, "yolo11": YOLO11, "yolov5": YOLOV5U, "yolov8-p6": YOLOV8_P6, "yolov8-ghost": YOLOV8_GHOST}
BLOCKS = {"Conv": Conv, "C2f": C2f, "C2": C2, "C3": C3, "C3k2": C3k2, "SPPF": SPPF, "C2PSA": C2PSA,
          "GhostConv": GhostConv, "C3Ghost": C3Ghost}
REPEATED = {"C2f", "C2", "C3", "C3Ghost", "C3k2", "C2PSA"}


def make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


class DetectionModel(nn.Module):
    """``parse_model`` of one of :data:`TABLES` at a scale, ``_predict_once``'s routing, the stride set from a
    forward (64 x 64; Ultralytics uses 256 x 256, same strides) and ``bias_init``, ``initialize_weights``' BN eps/momentum. ``insert``: ``{index: module
    factory of the channels}`` puts a module (an attention) after that layer, in the same slot, as a user's edited
    YAML would (later indices are not shifted: the inserted module reads and replaces the layer's output).
    ``head``: ``"Segment"`` for the segmentation head (``nm`` 32, ``npr`` 256)."""

    def __init__(self, family: str, scale: str = "n", nc: int = 80, head: str = "Detect",
                 insert: dict[int, object] | None = None) -> None:
        super().__init__()
        depth, width, max_channels = SCALES[family][scale]
        legacy = family != "yolo11"
        channels: list[int] = []
        layers, self.froms = [], []
        for i, (f, n, name, args) in enumerate(TABLES[family]):
            n = max(round(n * depth), 1) if n > 1 else n
            c1 = channels[f] if channels and isinstance(f, int) else 3
            if name in BLOCKS:
                c2 = make_divisible(min(args[0], max_channels) * width, 8)
                extra = list(args[1:])
                if name in REPEATED:
                    extra.insert(0, n)
                if name == "C3k2" and scale in {"m", "l", "x"}:
                    extra[1:2] = [True]
                module: nn.Module = BLOCKS[name](c1, c2, *extra)
            elif name == "Upsample":
                module, c2 = nn.Upsample(None, 2, "nearest"), c1
            elif name == "Concat":
                module, c2 = Concat(), sum(channels[j] for j in f)
            elif head == "Segment":
                npr = make_divisible(min(256, max_channels) * width, 8)
                module, c2 = Segment(nc, 32, npr, 16, tuple(channels[j] for j in f), legacy), 0
            else:
                module, c2 = Detect(nc, 16, tuple(channels[j] for j in f), legacy), 0
            if insert and i in insert:
                module = nn.Sequential(module, insert[i](c2))  # type: ignore[operator]
            layers.append(module)
            self.froms.append(f)
            channels.append(c2)
        self.model = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.03
        head_module = self.model[-1]
        self.eval()
        with torch.no_grad():  # Ultralytics measures on 256 x 256; 64 x 64 gives the same strides, sooner
            out = self.forward(torch.zeros(1, 3, 64, 64))
        head_module.stride = torch.tensor([64 / x.shape[-2] for x in out[1]["feats"]])
        head_module.bias_init()
        self.train()

    def forward(self, x: torch.Tensor) -> object:
        y: list[torch.Tensor] = []
        for m, f in zip(self.model, self.froms):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x)
        return x
