"""Hypothesis strategies for valid netspec specs, to property-test netspec and your own kinds.

Every strategy here is built from the registry, so a kind is covered the moment it is registered
(built in, ``@netspec.register``-ed in your code, or loaded from a plugin): a layer of kind ``k`` for an
input shape ``x`` is drawn from ``KINDS[k].strategy(x)`` whenever ``KINDS[k].accepts(x)``, and the shape
after it is inferred with the layer's own ``infer`` to choose the next layer. Specs are kept small
(few channels, maps of at most 32x32) so that building and running them takes milliseconds.

Writing a kind's strategy: ``strategy(x)`` returns a strategy of instances that are valid for input ``x``
under any ``defaults`` (let ``norm``/``act`` params default to ``None``); ``accepts(x)`` says for which
inputs it can. A drawn layer that its own shape rule rejects raises :class:`StrategyError` naming it.

Example (pytest)::

    import torch
    from hypothesis import given
    import netspec
    from netspec import strategies as nst

    @given(nst.specs(kinds=["conv", "stage", "gate"]))   # or nst.specs() for every kind
    def test_my_kind_builds(spec):
        summary = netspec.summary(spec)
        model = netspec.build(spec)
        assert summary.params == sum(p.numel() for p in model.parameters())

    @given(nst.layer_cases("gate", sized=True))            # one layer of your kind and its input shape
    def test_gate_keeps_shape(case):
        x, layer = case
        module = layer.build(x, netspec.Context())
        assert module(torch.randn(2, *x.dims())).shape[1:] == x.dims()
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

try:
    from hypothesis import assume, reject
    from hypothesis import strategies as st
except ImportError as missing:  # pragma: no cover - hypothesis is a test dependency
    raise ImportError("netspec.strategies needs hypothesis: pip install 'netspec[test]'") from missing

from netspec.errors import Finding, Invalid, format_path
from netspec.layers.avgpool import AvgPool
from netspec.layers.base import Context, Layer
from netspec.layers.linear import Linear
from netspec.ops import ACTIVATIONS, NORMS
from netspec.registry import KINDS
from netspec.shapes import LayerInfo, Shape
from netspec.spec import Defaults, Input, Spec

__all__ = [
    "MAX_CHANNELS", "MAX_SIZE", "StrategyError", "defaults", "infer", "inputs", "layer_cases", "layers",
    "sample_shapes", "shapes", "specs", "stacks",
]

MAX_CHANNELS = 8
"""Most input channels drawn by :func:`inputs` (kinds' own strategies keep their ``out`` small too)."""
MAX_SIZE = 32
"""Largest input height or width drawn."""


class StrategyError(AssertionError):
    """A kind's ``strategy(x)`` produced a layer that its own shape rule rejects for ``x``: a bug in that kind."""


def _kinds(kinds: Iterable[str] | None) -> list[type[Layer]]:
    names = sorted(KINDS) if kinds is None else list(kinds)
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; registered: {', '.join(sorted(KINDS))}")
    return [KINDS[name] for name in names]


# ---------------------------------------------------------------------------------------------
# Shapes, inputs, defaults


def shapes(
    *,
    flat: bool | None = None,
    sized: bool | None = None,
    max_channels: int = 16,
    max_size: int = MAX_SIZE,
) -> st.SearchStrategy[Shape]:
    """Input shapes for one layer: (C,) when ``flat``, else (C, H, W) with H != W allowed.

    ``flat=None`` draws both; ``sized=False`` leaves H, W unknown (a spec without ``input.size``),
    ``sized=None`` draws both.
    """
    channels = st.integers(1, max_channels)
    sides = st.integers(1, max_size)
    known = st.builds(lambda c, h, w: Shape(c, h, w), channels, sides, sides)
    unknown = st.builds(Shape, channels)
    maps = known if sized else unknown if sized is False else st.one_of(known, unknown)
    flats = st.builds(lambda c: Shape(c, flat=True), st.integers(1, 64))
    return flats if flat else maps if flat is False else st.one_of(maps, flats)


def sample_shapes() -> list[Shape]:
    """A fixed spread of input shapes (flat, unsized, small, odd and non-square maps) to probe ``accepts``."""
    return [
        Shape(8, 16, 16), Shape(16, 7, 12), Shape(4, 32, 32), Shape(12, 2, 3), Shape(1, 1, 1),
        Shape(8), Shape(32, 8, 8), Shape(8, flat=True), Shape(64, flat=True),
    ]


def inputs(*, max_channels: int = MAX_CHANNELS, max_size: int = MAX_SIZE) -> st.SearchStrategy[Input]:
    """A spec's ``input``: a few channels, and no size, a square size or an H x W size."""
    side = st.integers(1, max_size)
    size = st.one_of(st.none(), side.map(lambda s: (s, s)), st.tuples(side, side))
    return st.builds(Input, channels=st.integers(1, max_channels), size=size)


def defaults() -> st.SearchStrategy[Defaults]:
    """A spec's ``defaults``: any registered norm and activation (half the time the built-in default)."""
    norms = st.one_of(st.just("batch"), st.sampled_from(sorted(NORMS)))
    acts = st.one_of(st.just("relu"), st.sampled_from(sorted(ACTIVATIONS)))
    return st.builds(Defaults, norm=norms, act=acts)


# ---------------------------------------------------------------------------------------------
# Layers


def infer(layer: Layer, x: Shape, ctx: Context | None = None) -> tuple[LayerInfo | None, list[Finding]]:
    """``layer.infer(x)`` as data: ``(info, [])`` when valid, ``(None or info, findings)`` when not."""
    context = Context() if ctx is None else Context(norm=ctx.norm, act=ctx.act, path=ctx.path)
    try:
        info = layer.infer(x, context)
    except Invalid as problem:
        return None, [*context.findings, Finding(problem.path, problem.message)]
    return info, list(context.findings)


def _describe(findings: Sequence[Finding]) -> str:
    return "; ".join(f"{format_path(f.path) or 'layer'}: {f.message}" for f in findings)


@st.composite
def _valid_layer(draw: st.DrawFn, cls: type[Layer], x: Shape, ctx: Context) -> tuple[Layer, LayerInfo]:
    layer = draw(cls.strategy(x))
    info, findings = infer(layer, x, ctx)
    if findings or info is None:
        if ctx.norm != "batch" or ctx.act != "relu":
            _, plain = infer(layer, x)
            if not plain:
                reject()  # valid, but not under these defaults (e.g. instance norm on a 1x1 map)
        raise StrategyError(f"{cls.__name__}.strategy({x}) drew {layer!r}, which is invalid: {_describe(findings)}")
    return layer, info


def layers(x: Shape, *, kinds: Iterable[str] | None = None, ctx: Context | None = None) -> st.SearchStrategy[Layer]:
    """One valid layer for input ``x``, of any registered kind (or of ``kinds``) that accepts ``x``."""
    context = Context() if ctx is None else ctx
    candidates = [cls for cls in _kinds(kinds) if cls.accepts(x)]
    if not candidates:
        raise ValueError(f"no kind among {[cls.kind for cls in _kinds(kinds)]} accepts {x}")
    return st.sampled_from(candidates).flatmap(lambda cls: _valid_layer(cls, x, context)).map(lambda pair: pair[0])


def layer_cases(
    kind: str, *, sized: bool | None = None, shapes_from: st.SearchStrategy[Shape] | None = None
) -> st.SearchStrategy[tuple[Shape, Layer]]:
    """``(x, layer)``: an input shape that ``kind`` accepts and a valid layer of that kind for it.

    Shapes come from ``shapes_from`` (default: :func:`shapes` with ``sized``, mixed with
    :func:`sample_shapes`), filtered by the kind's ``accepts``.
    """
    cls = _kinds([kind])[0]
    fixed = [s for s in sample_shapes() if sized is None or s.sized == sized]
    source = shapes_from if shapes_from is not None else st.one_of(st.sampled_from(fixed), shapes(sized=sized))
    accepted = source.filter(cls.accepts)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[Shape, Layer]:
        x = draw(accepted)
        layer, _ = draw(_valid_layer(cls, x, Context()))
        return x, layer

    return cases()


@st.composite
def stacks(
    draw: st.DrawFn,
    x: Shape,
    *,
    min_layers: int = 1,
    max_layers: int = 4,
    kinds: Iterable[str] | None = None,
    ctx: Context | None = None,
) -> list[Layer]:
    """A valid sequence of layers starting from input ``x``: each drawn for the shape the previous one outputs.

    The stack ends early when no kind accepts the current shape; ``min_layers`` is then not met and the
    example is rejected (``assume``).
    """
    context = Context() if ctx is None else ctx
    classes = _kinds(kinds)
    count = draw(st.integers(min_layers, max_layers))
    result: list[Layer] = []
    shape = x
    for _ in range(count):
        candidates = [cls for cls in classes if cls.accepts(shape)]
        if not candidates:
            break
        cls = draw(st.sampled_from(candidates))
        layer, info = draw(_valid_layer(cls, shape, context))
        result.append(layer)
        shape = info.shape
    assume(len(result) >= min_layers)
    return result


@st.composite
def specs(
    draw: st.DrawFn,
    *,
    min_layers: int = 1,
    max_layers: int = 4,
    kinds: Iterable[str] | None = None,
    head: bool | None = None,
    input: st.SearchStrategy[Input] | None = None,
    names: bool = True,
) -> Spec:
    """A valid :class:`~netspec.Spec`: random input, defaults, a stack of layers, optionally a classifier head.

    ``kinds`` limits the stack to those kinds (default: every registered kind, attention inside stages
    included: :class:`~netspec.layers.Stage`'s strategy draws any attention kind). ``head=True`` always
    ends a spatial stack with ``avgpool`` + ``linear``, ``False`` never, ``None`` sometimes. ``input``
    replaces :func:`inputs`. The spec's shapes, params and MACs are valid: ``netspec.summary(spec)`` succeeds.
    """
    spec_input = draw(inputs() if input is None else input)
    spec_defaults = draw(defaults())
    ctx = Context(norm=spec_defaults.norm, act=spec_defaults.act)
    x = Shape(spec_input.channels, *(spec_input.size or (None, None)))
    body = draw(stacks(x, min_layers=min_layers, max_layers=max_layers, kinds=kinds, ctx=ctx))
    shape = x
    for layer in body:
        info, findings = infer(layer, shape, ctx)
        if info is None or findings:  # each was valid when drawn: only a shape rule that is not deterministic
            raise StrategyError(f"{layer!r} on {shape}: {_describe(findings)}")
        shape = info.shape
    add_head = draw(st.booleans()) if head is None else head
    if add_head and shape.spatial:
        body += [AvgPool(), Linear(out=draw(st.integers(1, 10)))]
    name = draw(st.one_of(st.none(), st.text("abcdefghij_-0123456789", min_size=1, max_size=12))) if names else None
    fields: dict[str, Any] = dict(input=spec_input, defaults=spec_defaults, layers=body,
                                  drop_path=draw(st.sampled_from([0.0, 0.0, 0.2, 1.0])))
    if name is not None:
        fields["name"] = name
    return Spec(**fields)
