"""``timm:NAME``: timm 1.0.31's attention names (``timm.layers.get_attn``) as netspec kinds with timm's defaults.

One table, name -> (netspec kind, the params that give timm's module). A spec writes ``attention: timm:cbam`` in
a stage (where timm's ResNet ``Bottleneck`` puts ``attn_layer``: after the last conv and norm, at the block's
output width, netspec's default `attention_at: output`) or ``- timm:cbam`` as an entry; params given beside it
(``{timm:se: {reduction: 8}}``) override timm's defaults. The parsed layer is the netspec kind itself (a spec
dumped back to YAML shows it). Where netspec has no params for timm's exact function yet, the entry says what
differs (``same`` is false) and the docs' attention catalogue (docs/reference/attention-catalogue.md) shows it. timm is not imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PREFIX = "timm:"


@dataclass(frozen=True)
class TimmName:
    """One timm attention name: the netspec kind and params with timm's function, what timm calls it, and, when
    the function is not yet identical, what differs."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    timm: str = ""
    differs: str = ""

    @property
    def same(self) -> bool:
        return not self.differs


TIMM_ATTENTION: dict[str, TimmName] = {
    "se": TimmName("se", {"divisor": 8, "rounding": "timm"}, "SEModule"),
    "ese": TimmName("ese", {}, "EffectiveSEModule"),
    "eca": TimmName("eca", {"min_kernel": 3}, "EcaModule"),
    "ecam": TimmName("ecam", {}, "EcaModule(use_mlp=True)"),
    "ceca": TimmName("eca", {"circular": True, "min_kernel": 3}, "CecaModule"),
    "ge": TimmName("ge", {}, "GatherExcite (1.0.31's raises a TypeError: its intended arguments)"),
    "gc": TimmName("gc", {"reduction": 8, "fusion": "mul", "rounding": "timm", "eps": 1e-6,
                          "layout": "timm"}, "GlobalContext"),
    "gca": TimmName("gc", {"reduction": 8, "fusion": "add", "rounding": "timm", "eps": 1e-6,
                           "layout": "timm"}, "GlobalContext(fuse_add=True, fuse_scale=False)"),
    "cbam": TimmName("cbam", {"mlp_bias": False, "rounding": "timm", "order": "mean_max", "momentum": 0.1},
                     "CbamModule"),
    "lcbam": TimmName("lcbam", {}, "LightCbamModule"),
    "coord": TimmName("coord", {"reduction": 16, "bias": False, "rounding": "timm"}, "CoordAttn"),
    "scoord": TimmName("scoord", {}, "SimpleCoordAttn"),
    "ela": TimmName("ela", {}, "EfficientLocalAttn"),
    "strip": TimmName("strip", {}, "StripAttn"),
    "sk": TimmName("sk", {"groups": 1, "split": True, "min_hidden": 8, "rounding": "timm"}, "SelectiveKernel"),
    "splat": TimmName("splat", {"rounding": "timm", "norm": False}, "SplitAttn"),
    "lambda": TimmName("lambda", {}, "LambdaLayer"),
    "bottleneck": TimmName("bottleneck_attn", {}, "BottleneckAttn (its feat_size: the static input size)"),
    "halo": TimmName("halo_attn", {}, "HaloAttn"),
    "nl": TimmName("nonlocal", {"reduction": 8, "scale": True, "rounding": "timm", "scale_by": "channels"},
                   "NonLocalAttn"),
    "bat": TimmName("bat", {}, "BatNonLocalAttn"),
}
"""Every name timm 1.0.31's ``get_attn`` knows, in its order."""


def resolve(kind: str, params: Any) -> tuple[str, Any] | str:
    """``timm:NAME`` and its params -> (netspec kind, params with timm's defaults under them), or a message."""
    name = kind[len(PREFIX):]
    entry = TIMM_ATTENTION.get(name) or TIMM_ATTENTION.get(name.lower())
    if entry is None:
        from netspec.registry import suggest

        return (f"unknown timm attention {name!r}{suggest(name, list(TIMM_ATTENTION))}; timm's get_attn knows "
                f"{', '.join(TIMM_ATTENTION)}")
    if params is None:
        return entry.kind, dict(entry.params)
    if not isinstance(params, dict):
        return entry.kind, params  # parse_entry reports the bad params against the kind
    return entry.kind, {**entry.params, **params}
