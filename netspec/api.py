"""netspec's main functions: :func:`check`, :func:`summary` and :func:`build` a spec; :func:`spec_of`, the spec a
model was built from.

The package re-exports them (``netspec.build``); they live here, not in ``netspec/__init__.py``, so that modules
inside netspec (weights, hub, the importers) call them without importing the package root, which imports those
modules back.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS, Budget, build_model
from netspec.overrides import apply_overrides
from netspec.spec import Spec, SpecLike, as_spec
from netspec.summary import Summary, summarize

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from torch import nn

SPEC_ATTRIBUTE = "_netspec_spec"
"""The attribute :func:`build` sets on a model: the :class:`~netspec.Spec` it was built from."""


def check(
    spec: SpecLike, *, max_params: int | None = DEFAULT_MAX_PARAMS, max_activations: int | None = DEFAULT_MAX_ACTIVATIONS
) -> Summary:
    """Validate a spec and infer every shape without building anything; raises :class:`SpecError`.

    Like :func:`build`, it rejects a spec over ``max_params`` parameters in all or ``max_activations``
    values output by one layer per sample (``None``: no limit), at the layer that crosses the limit.
    """
    return summarize(as_spec(spec), Budget(max_params, max_activations))


def summary(spec: SpecLike, *, max_params: int | None = None, max_activations: int | None = None) -> Summary:
    """Per-layer output shape, parameters and MACs, computed statically; ``str()`` prints the table.

    No limits by default (nothing is allocated); give ``max_params``/``max_activations`` to enforce some.
    """
    return summarize(as_spec(spec), Budget(max_params, max_activations, max_modules=None))


def build(
    spec: SpecLike, *, max_params: int | None = DEFAULT_MAX_PARAMS, max_activations: int | None = DEFAULT_MAX_ACTIVATIONS,
    seed: int | None = None, overrides: "Mapping[str, Any] | None" = None,
) -> "nn.Module":
    """Build the ``torch.nn.Sequential`` of a spec (a :class:`Spec` or a YAML file path); a graph spec (``name``,
    ``from``, ``outputs``) gives a ``torch.fx.GraphModule`` whose children are named after the entries.

    The static summary is checked against ``max_params`` (the network's parameters; default one billion)
    and ``max_activations`` (values one layer outputs per sample; default 2**31 - 1) before any module
    is built; a spec over a limit raises :class:`SpecError` at the layer that crosses it. ``None``: no limit.
    ``seed`` makes the initial weights reproducible (``torch.manual_seed``; the global generator is left as it was).
    The model remembers its spec, for :func:`save`. ``overrides`` changes the spec by dotted paths first
    (``{"linear.out": 10, "scale.width": 0.5, "stage3.depth": 2}``; :mod:`netspec.overrides`), so a sweep or a Hydra
    config (``_target_: netspec.build``) varies one file without copying it.
    """
    import torch

    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be a whole number from 0 to 2**64-1, got {seed!r}")
    spec = as_spec(spec)
    if overrides:
        spec = apply_overrides(spec, overrides)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(spec, Budget(max_params, max_activations))
    remember_spec(model, spec)
    return model



def spec_of(model: "nn.Module") -> "Spec | None":
    """The :class:`~netspec.Spec` a model was built from (set by :func:`netspec.build`), or ``None``."""
    return getattr(model, SPEC_ATTRIBUTE, None)


def remember_spec(model: "nn.Module", spec: "Spec") -> None:
    object.__setattr__(model, SPEC_ATTRIBUTE, spec)  # a plain attribute: never a submodule, buffer or state entry
