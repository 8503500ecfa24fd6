"""netspec specs as timm models: ``import netspec.timm`` registers the model name ``netspec`` with timm.

    import netspec.timm, timm
    model = timm.create_model("netspec", spec="specs/resnet50.yaml", num_classes=10)
    backbone = timm.create_model("netspec", spec="specs/resnet50.yaml", features_only=True, out_indices=(1, 2, 3, 4))

The built model (:class:`NetspecModel`) carries timm's ``feature_info`` and ``forward_intermediates``; timm's
``features_only`` wraps it with its own ``FeatureGetterNet``. Feature points are entries: the spec's ``features:``
list of entry names, or by default, at each reduction (input size / map size) in the order they appear, the last
``stage`` running at it (else the last entry), up to the head (the first pool, flatten or linear entry). For a
ResNet that is timm's own indexing: 0 the stem at reduction 2, then the four stages at 4, 8, 16, 32.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._registry import generate_default_cfgs
from torch import nn

import netspec as ns
from netspec.errors import Problem, SpecError
from netspec.spec import Spec

HEAD_KINDS = ("avgpool", "flatten", "linear", "dropout")
"""Kinds that start a classifier head: feature points are the entries before the first of them."""
FALLBACK_SIZE = 224
"""Input side used to work out reductions when the spec sets no ``input.size``."""


@dataclass(frozen=True)
class FeaturePoint:
    name: str
    channels: int
    reduction: int


def _as_spec(spec: Spec | str | os.PathLike[str]) -> Spec:
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, str) and "\n" in spec:
        return ns.loads(spec)
    return ns.load(spec)


def _rows(spec: Spec) -> list[Any]:
    if spec.input.size is None:
        spec = spec.model_copy(update={"input": spec.input.model_copy(update={"size": [FALLBACK_SIZE] * 2})})
    return list(ns.summary(spec).rows)


def feature_points(spec: Spec) -> list[FeaturePoint]:
    """The spec's feature points: its ``features:`` names, or the default rule (module docstring)."""
    rows = _rows(spec)
    height = (spec.input.size or [FALLBACK_SIZE])[0]

    def point(row: Any) -> FeaturePoint:
        shape = row.info.shape
        return FeaturePoint(row.name, shape.channels, max(1, round(height / shape.height)))

    by_name = {row.name: row for row in rows}
    if spec.features is not None:
        problems = [Problem(("features", index), f"no entry named {name!r} (entries: {', '.join(by_name)})")
                    for index, name in enumerate(spec.features) if name not in by_name]
        problems += [Problem(("features", index), f"{name!r} outputs {by_name[name].info.shape}, not a feature map")
                     for index, name in enumerate(spec.features)
                     if name in by_name and (by_name[name].info.shape.flat or by_name[name].info.shape.height is None)]
        if problems:
            raise SpecError(problems)
        return [point(by_name[name]) for name in spec.features]
    chosen: dict[int, tuple[Any, bool]] = {}
    for row in rows:
        shape = row.info.shape
        if row.layer.kind in HEAD_KINDS or shape.flat or shape.height is None:
            break
        reduction = max(1, round(height / shape.height))
        is_stage = row.layer.kind == "stage"
        if reduction not in chosen or is_stage or not chosen[reduction][1]:
            chosen[reduction] = (row, is_stage)
    points = [point(row) for row, _ in chosen.values()]
    return [p for p in points if p.reduction > 1] or points


def _with_head(spec: Spec, num_classes: int | None, in_chans: int | None) -> Spec:
    """``num_classes`` resizes the last linear entry (0 removes it, as timm's reset_classifier(0)); a spec without
    one (a segmentation net) keeps its head. ``in_chans`` sets the input channels."""
    update: dict[str, Any] = {}
    if in_chans is not None and in_chans != spec.input.channels:
        update["input"] = spec.input.model_copy(update={"channels": in_chans})
    last = spec.layers[-1]
    if num_classes is not None and last.kind == "linear" and last.name is None and num_classes != last.out:
        layers = list(spec.layers[:-1]) if num_classes == 0 else [*spec.layers[:-1], last.model_copy(update={"out": num_classes})]
        update["layers"] = layers
    return spec.model_copy(update=update) if update else spec


class NetspecModel(nn.Module):
    """A netspec spec as a timm model: ``feature_info``, ``forward_intermediates``, ``forward_features``."""

    def __init__(self, spec: Spec | str | os.PathLike[str], *, num_classes: int | None = None,
                 in_chans: int | None = None, **ignored: Any) -> None:
        super().__init__()
        unknown = {key for key, value in ignored.items() if value not in (None, 0, 0.0)}
        if unknown:
            raise TypeError(f"netspec model: unexpected arguments {sorted(unknown)} (a spec sets its own drop rates)")
        self.spec = _with_head(_as_spec(spec), num_classes, in_chans)
        self.net = ns.build(self.spec)
        points = feature_points(self.spec)
        self.feature_info = [dict(num_chs=p.channels, reduction=p.reduction, module=f"net.{p.name}") for p in points]
        self._points = [p.name for p in points]
        last = self.spec.layers[-1]
        self.num_classes = last.out if last.kind == "linear" else 0
        self.num_features = points[-1].channels if points else 0

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(x)

    def forward_intermediates(
        self, x: torch.Tensor, indices: int | list[int] | tuple[int, ...] | None = None, norm: bool = False,
        stop_early: bool = False, output_fmt: str = "NCHW", intermediates_only: bool = False,
    ) -> Any:
        """timm's semantics: the feature maps at ``indices`` (an int n: the last n; None: all), and unless
        ``intermediates_only`` the final feature map (the last entry before the head) with them."""
        if output_fmt != "NCHW":
            raise ValueError("netspec models give NCHW features only")
        take, last_index = feature_take_indices(len(self._points), indices)
        wanted = {self._points[index] for index in take}
        final_name = self._final_name()
        captured: dict[str, torch.Tensor] = {}
        stop_at = self._points[last_index] if stop_early or intermediates_only else None

        class Stop(Exception):
            pass

        def hook(name: str) -> Any:
            def save(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
                captured[name] = output
                if name == stop_at and isinstance(self.net, nn.Sequential):
                    raise Stop

            return save

        names = wanted | {final_name} | ({stop_at} if stop_at else set())
        handles = [self.net.get_submodule(name).register_forward_hook(hook(name)) for name in names]
        try:
            self.net(x)
        except Stop:
            pass
        finally:
            for handle in handles:
                handle.remove()
        intermediates = [captured[self._points[index]] for index in take]
        if intermediates_only:
            return intermediates
        return captured.get(stop_at if stop_early else final_name, captured.get(final_name)), intermediates

    def _final_name(self) -> str:
        rows = _rows(self.spec)
        previous = rows[0].name
        for row in rows:
            if row.layer.kind in HEAD_KINDS or row.info.shape.flat:
                break
            previous = row.name
        return previous

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(x, indices=1)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """timm's ``forward_head``: the entries after the final feature map (``forward_features``' output), without
        the last ``linear`` with ``pre_logits``. A Sequential spec only (a graph's head may read earlier entries)."""
        if not isinstance(self.net, nn.Sequential):
            raise NotImplementedError("netspec model: forward_head on a graph spec; call the model itself")
        names = list(self.net._modules)
        head = names[names.index(self._final_name()) + 1:]
        if pre_logits and head and self.spec.layers[-1].kind == "linear":
            head = head[:-1]
        for name in head:
            x = self.net.get_submodule(name)(x)
        return x

    def prune_intermediate_layers(self, indices: int | list[int] | tuple[int, ...] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """timm's pruning (``features_only`` asks for it): the entries after the last feature point wanted go, the
        head with them, so a backbone holds no parameter its forward leaves unused (DDP would stop on one). The
        spec is cut with the model (``netspec.weights.spec_of`` stays true). A graph spec (a ``GraphModule``)
        keeps its entries: one after the point may feed it. Returns the indices, normalised."""
        from netspec.api import remember_spec

        take, last_index = feature_take_indices(len(self._points), indices)
        if not prune_head or not isinstance(self.net, nn.Sequential):
            return take
        names = list(self.net._modules)
        keep = names.index(self._points[last_index]) + 1
        if keep < len(names):
            spec = self.spec.model_copy(update={"layers": list(self.spec.layers[:keep])})
            net = self.net[:keep]
            remember_spec(net, spec)
            self.spec, self.net = spec, net
            self._points = self._points[:last_index + 1]
            self.feature_info = self.feature_info[:last_index + 1]
            self.num_classes = 0
        return take

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """timm's ``reset_classifier``: the last ``linear`` entry gets ``num_classes`` outputs, a new layer
        initialised as netspec builds it (0 removes it: the model gives the pooled features; a model without one
        gets one again); the rest keeps its weights. The pooling is the spec's (``global_pool``: None or 'avg')."""
        from netspec.api import remember_spec
        from netspec.registry import KINDS

        if global_pool not in (None, "avg"):
            raise ValueError(f"netspec model: global_pool {global_pool!r}; the spec's pooling is an avgpool entry")
        last = self.spec.layers[-1]
        sequential = isinstance(self.net, nn.Sequential)
        if num_classes == 0 and last.kind != "linear":  # no classifier to remove (e.g. a second reset to 0): as timm
            self.num_classes = 0
            return
        if last.kind == "linear" and last.name is None:
            spec = _with_head(self.spec, num_classes, None)
        elif num_classes > 0 and sequential and _rows(self.spec)[-1].info.shape.flat:
            spec = self.spec.model_copy(update={"layers": [*self.spec.layers, KINDS["linear"](out=num_classes)]})
        else:
            raise ValueError("netspec model: reset_classifier needs a spec that ends with an unnamed linear entry "
                             "(or, for a new one, with pooled (N, C) features)")
        if spec is not self.spec:
            if len(spec.layers) < len(self.spec.layers):
                if not sequential:
                    raise ValueError("netspec model: reset_classifier(0) on a graph spec: remove its linear entry "
                                     "in the spec instead")
                del self.net._modules[list(self.net._modules)[-1]]  # by name: Sequential's del renumbers the rest
            else:
                name = _rows(spec)[-1].name
                setattr(self.net, name, ns.build(spec).get_submodule(name))  # replaces, or appends to a Sequential
            remember_spec(self.net, spec)
            self.spec = spec
        self.num_classes = num_classes

    def get_classifier(self) -> nn.Module:
        last = self.spec.layers[-1]
        return self.net.get_submodule(self._rows_last_name()) if last.kind == "linear" else nn.Identity()

    def _rows_last_name(self) -> str:
        return _rows(self.spec)[-1].name


default_cfgs = generate_default_cfgs({
    "netspec": dict(url="", num_classes=1000, input_size=(3, 224, 224), pool_size=None, crop_pct=0.875,
                    interpolation="bilinear", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                    first_conv="", classifier=""),
})


@register_model
def netspec(pretrained: bool = False, **kwargs: Any) -> NetspecModel:
    """``timm.create_model("netspec", spec=...)`` (timm keys a model by its entrypoint's name)."""
    if "spec" not in kwargs:
        raise TypeError('timm.create_model("netspec", spec=...): give the spec (a YAML path, YAML text or a Spec)')
    # features_only's default out_indices: every feature point (timm's own default, 0-4, assumes five)
    kwargs["spec"] = spec = _as_spec(kwargs["spec"])
    points = len(feature_points(_with_head(spec, None, kwargs.get("in_chans"))))
    last = spec.layers[-1]  # without num_classes the spec's own head stays (timm would default to its cfg's 1000)
    kwargs.setdefault("num_classes", last.out if last.kind == "linear" else 0)
    return build_model_with_cfg(NetspecModel, "netspec", pretrained,
                                feature_cfg=dict(feature_cls="getter", out_indices=tuple(range(points))), **kwargs)
