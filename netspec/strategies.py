"""Hypothesis strategies for valid netspec specs, to property-test netspec and your own kinds.

Every strategy here is built from the registry, so a kind is covered the moment it is registered
(built in, ``@netspec.register``-ed in your code, or loaded from a plugin): a layer of kind ``k`` for an
input shape ``x`` is drawn from ``KINDS[k].strategy(x)`` whenever ``KINDS[k].accepts(x)``, and the shape
after it is inferred with the layer's own ``infer`` to choose the next layer. Specs are kept small
(few channels, maps of at most 32x32) so that building and running them takes milliseconds.

:func:`graph_specs` draws graphs: named entries, branches (``from:`` an earlier entry or ``input``), merges
(``concat``, ``add``, ``mul`` and any kind with several inputs, e.g. an SE-style gate multiplied onto a map),
``upsample`` by a scale or ``to:`` an earlier entry's size, and several ``outputs``. Its one-input entries come
from the kinds' own strategies, so every registered kind can appear in a graph too. :func:`repeat_specs` draws
specs with ``define:``/``repeat:``: such a graph as a definition of one or two inputs, instantiated several
times on different tensors.

Writing a kind's strategy: ``strategy(x)`` returns a strategy of instances that are valid for input ``x``
under any ``defaults`` (let ``norm``/``act`` params default to ``None``); ``accepts(x)`` says for which
inputs it can. A kind with several inputs (``arity``) also has ``companions(x)``: a strategy of the shapes
of its other inputs (a list) for which a layer of ``strategy(x)`` is valid. A drawn layer that its own shape
rule rejects raises :class:`StrategyError` naming it.

Example (pytest; ``@nst.settings`` lifts hypothesis' 200 ms deadline, which building a network exceeds)::

    import torch
    from hypothesis import given
    import netspec
    from netspec import strategies as nst

    @nst.settings
    @given(nst.specs(kinds=["conv", "stage", "gate"]))   # or nst.specs() for every kind
    def test_my_kind_builds(spec):
        summary = netspec.summary(spec)
        model = netspec.build(spec)
        assert summary.params == sum(p.numel() for p in model.parameters())

    @nst.settings
    @given(nst.graph_specs(kinds=["conv", "gate", "concat", "mul"]))  # random graphs of only these kinds
    def test_my_kind_in_graphs(spec):
        model = netspec.build(spec)                         # a torch.fx.GraphModule
        assert netspec.summary(spec).params == sum(p.numel() for p in model.parameters())

    @nst.settings
    @given(nst.layer_cases("gate", sized=True))            # one layer of your kind and its input shape
    def test_gate_keeps_shape(case):
        x, layer = case
        module = layer.build(x, netspec.Context())
        assert module(torch.randn(2, *x.dims())).shape[1:] == x.dims()
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from keyword import iskeyword
from typing import Any

try:
    from hypothesis import HealthCheck, assume, reject
    from hypothesis import settings as _settings
    from hypothesis import strategies as st
except ImportError as missing:  # pragma: no cover - hypothesis is a test dependency
    raise ImportError("netspec.strategies needs hypothesis: pip install 'netspec[test]'") from missing

from netspec.compiler import INPUT, RESERVED_NAMES, infer_network
from netspec.errors import Finding, Invalid, SpecError, format_path
from netspec.layers.add import Add
from netspec.layers.avgpool import AvgPool
from netspec.layers.base import Context, Layer
from netspec.layers.conv import Conv
from netspec.layers.linear import Linear
from netspec.layers.upsample import Upsample
from netspec.ops import ACTIVATIONS, NORMS
from netspec.registry import KINDS
from netspec.shapes import LayerInfo, Shape
from netspec.spec import Defaults, Input, Spec

__all__ = [
    "MAX_CHANNELS", "MAX_SIZE", "StrategyError", "defaults", "graph_specs", "infer", "infer_node", "inputs", "layer_cases",
    "layers",
    "node_cases", "sample_shapes", "settings", "shapes", "specs", "stacks",
]

settings = _settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""The hypothesis settings tests of drawn specs need, as a decorator (``@nst.settings`` above ``@given``): no
per-example deadline (hypothesis' default is 200 ms; the first build of a kind, or a graph's, takes longer) and no
too-slow or data-too-large health checks (a spec is a large draw). Other settings come from the profile loaded when
``netspec.strategies`` is imported. Also registered as the profile ``"netspec"``: ``settings.load_profile("netspec")``."""
_settings.register_profile("netspec", settings)

MAX_CHANNELS = 8
"""Most input channels drawn by :func:`inputs` (kinds' own strategies keep their ``out`` small too)."""
MAX_SIZE = 32
"""Largest input height or width drawn."""


class StrategyError(AssertionError):
    """A kind's ``strategy(x)`` produced a layer that its own shape rule rejects for ``x``: a bug in that kind."""


def one_input(cls: type[Layer]) -> bool:
    """Whether a kind reads a single tensor (so it can follow any layer in a stack); merges read several."""
    return cls.arity == (1, 1)


def takes(cls: type[Layer], x: Shape) -> bool:
    """Whether ``cls`` accepts ``x`` as an input: its ``accepts``, and a (C, A) sequence only if it reads them."""
    return (cls.reads_sequences or not x.sequence) and cls.accepts(x)


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


def infer_node(layer: Layer, inputs: Sequence[Shape], ctx: Context | None = None) -> tuple[LayerInfo | None, list[Finding]]:
    """``layer.infer_inputs(inputs)`` as data, for kinds with several inputs (and any other): see :func:`infer`."""
    context = Context() if ctx is None else Context(norm=ctx.norm, act=ctx.act, path=ctx.path)
    try:
        info = layer.infer_inputs(list(inputs), context)
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
    candidates = [cls for cls in _kinds(kinds) if one_input(cls) and takes(cls, x)]
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
    if not one_input(cls):
        raise ValueError(f"{kind!r} takes several inputs: use netspec.strategies.node_cases({kind!r})")
    fixed = [s for s in sample_shapes() if sized is None or s.sized == sized]
    source = shapes_from if shapes_from is not None else st.one_of(st.sampled_from(fixed), shapes(sized=sized))
    accepted = source.filter(cls.accepts)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[Shape, Layer]:
        x = draw(accepted)
        layer, _ = draw(_valid_layer(cls, x, Context()))
        return x, layer

    return cases()


def node_cases(
    kind: str, *, sized: bool | None = None, shapes_from: st.SearchStrategy[Shape] | None = None
) -> st.SearchStrategy[tuple[list[Shape], Layer]]:
    """``(inputs, layer)`` for any kind: the input shapes (one for most kinds, several for merges) and a valid layer.

    The first input comes as in :func:`layer_cases`; the others from the kind's ``companions(x)``.
    """
    cls = _kinds([kind])[0]
    fixed = [s for s in sample_shapes() if sized is None or s.sized == sized]
    source = shapes_from if shapes_from is not None else st.one_of(st.sampled_from(fixed), shapes(sized=sized))
    accepted = source.filter(cls.accepts)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[list[Shape], Layer]:
        x = draw(accepted)
        layer = draw(cls.strategy(x))
        inputs = [x, *draw(cls.companions(x))]
        info, findings = infer_node(layer, inputs)
        if info is None or findings:
            raise StrategyError(f"{cls.__name__}.strategy/companions({x}) drew {layer!r} on {inputs}, which is "
                                f"invalid: {_describe(findings)}")
        return inputs, layer

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
        candidates = [cls for cls in classes if one_input(cls) and takes(cls, shape)]
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


# ---------------------------------------------------------------------------------------------
# Graphs: named entries, branches, merges, gates, resizing, several outputs

NAME_LETTERS = "abcdefghijklmnopqrstuvwxyz_"
"""Drawn entry names use letters and ``_`` only, so they never collide with automatic names (``conv1``)."""


class _Graph:
    """A graph spec being drawn: its entries, each entry's name and output shape, and which are read."""

    def __init__(self, x: Shape, ctx: Context) -> None:
        self.ctx = ctx
        self.layers: list[Layer] = []
        self.names: list[str] = []
        self.shapes: dict[str, Shape] = {INPUT: x}
        self.read: set[str] = set()
        self.counts: Counter[str] = Counter()

    @property
    def last(self) -> str:
        return self.names[-1] if self.names else INPUT

    def sinks(self) -> list[str]:
        """Entries nobody reads yet, in order."""
        return [name for name in self.names if name not in self.read]

    def spatial(self) -> list[str]:
        return [name for name in (INPUT, *self.names) if self.shapes[name].spatial]

    def with_size(self, height: int | None, width: int | None) -> list[str]:
        """Entries (and ``input``) whose output is a map of this H x W."""
        return [name for name in (INPUT, *self.names)
                if self.shapes[name].spatial and (self.shapes[name].height, self.shapes[name].width) == (height, width)]

    def add(self, draw: st.DrawFn, layer: Layer, sources: Sequence[str], *, names: bool) -> str:
        """Append ``layer`` reading ``sources`` (``from:``; then its references); returns its name."""
        self.counts[layer.kind] += 1
        name = f"{layer.kind}{self.counts[layer.kind]}"
        if names and draw(st.booleans()):
            drawn = draw(st.text(NAME_LETTERS, min_size=1, max_size=8))
            if drawn[0] != "_" and drawn not in RESERVED_NAMES and not iskeyword(drawn) and drawn not in self.shapes:
                name = drawn
                layer = layer.model_copy(update={"name": drawn})
        from_sources = list(sources)
        if len(from_sources) > 1 or layer.arity != (1, 1):
            layer = layer.model_copy(update={"inputs": tuple(from_sources)})
        elif from_sources != [self.last] or draw(st.integers(0, 5)) == 0:  # `from:` the entry before: sometimes written
            layer = layer.model_copy(update={"inputs": from_sources[0]})
        every = [*from_sources, *layer.references().values()]
        context = Context(norm=self.ctx.norm, act=self.ctx.act, path=("layers", len(self.layers), layer.kind),
                          input_names=tuple(every))
        inputs = [self.shapes[source] for source in every]
        info, findings = infer_node(layer, inputs, context)
        if info is None or findings:
            if self.ctx.norm != "batch" or self.ctx.act != "relu":
                plain = Context(path=context.path, input_names=context.input_names)
                if not infer_node(layer, inputs, plain)[1]:
                    reject()  # valid, but not under these defaults (e.g. instance norm on a 1x1 map)
            raise StrategyError(f"{type(layer).__name__} drew {layer!r} on "
                                f"{[str(self.shapes[s]) for s in every]}, which is invalid: {_describe(findings)}")
        self.layers.append(layer)
        self.names.append(name)
        self.shapes[name] = info.shape
        self.read.update(every)
        return name

    def adapt(self, draw: st.DrawFn, target: Shape, *, names: bool) -> str | None:
        """An entry with output ``target``: an existing one, or a short branch that shapes one (``None``: cannot).

        A (C, 1, 1) target from a map is the SE pattern: ``avgpool: {size: 1}`` then a 1x1 ``conv`` with sigmoid.
        """
        same = [name for name in (INPUT, *self.names) if self.shapes[name] == target and not target.sequence]
        if same and draw(st.booleans()):
            return draw(st.sampled_from(same))
        steps: list[Layer] = []
        if target.flat:
            source = draw(st.sampled_from([name for name in (INPUT, *self.names) if not self.shapes[name].sequence]))
            if self.shapes[source].spatial:
                steps.append(AvgPool())
            if self.shapes[source].channels != target.channels or not steps:
                steps.append(Linear(out=target.channels))
        else:
            spatial = self.spatial()
            if not spatial:
                return None
            source = draw(st.sampled_from(spatial))
            shape = self.shapes[source]
            size = (target.height, target.width)
            if (shape.height, shape.width) != size:
                references = self.with_size(*size)
                if size == (1, 1) or (not references and target.height == target.width):
                    steps.append(AvgPool(size=target.height))
                elif references:
                    steps.append(Upsample(to=draw(st.sampled_from(references))))
                else:
                    return None
            if shape.channels != target.channels or not steps:
                gate = size == (1, 1)
                steps.append(Conv(out=target.channels, kernel=1, norm="none" if gate else None,
                                  act="sigmoid" if gate else None))
        for step in steps:
            source = self.add(draw, step, [source], names=names)
        return source


@st.composite
def graph_specs(
    draw: st.DrawFn,
    *,
    min_steps: int = 2,
    max_steps: int = 6,
    kinds: Iterable[str] | None = None,
    max_outputs: int = 3,
    input: st.SearchStrategy[Input] | None = None,
    names: bool = True,
) -> Spec:
    """A valid graph :class:`~netspec.Spec`: named entries, branches, merges, gates, resizing and several outputs.

    Each of the ``min_steps`` to ``max_steps`` steps adds one of:

    - a layer of any one-input kind after the entry before (drawn with the kind's own ``strategy``);
    - a branch: such a layer ``from:`` an earlier entry or ``input``;
    - a merge (every kind with several inputs: ``concat``, ``add``, ``mul``, your own): its first input an earlier
      entry, the others from its ``companions(x)`` shapes, each an earlier entry of that shape or a short branch
      that makes one: a 1x1 ``conv`` for other channels, ``upsample: {to: ...}`` or ``avgpool: {size}`` for
      another size, and for an (N, C, 1, 1) gate ``avgpool: {size: 1}`` + a 1x1 ``conv`` with sigmoid (SE);
    - ``upsample: {to: NAME}``: an entry resized to an earlier entry's (or the input's) size.

    Entries get a drawn ``name`` half the time (automatic names are referred to as well). ``outputs`` lists
    every entry nobody reads, and sometimes up to ``max_outputs`` in all, so that no entry is unused. ``kinds``
    limits the drawn layers and merges; the shaping branches use ``conv``, ``avgpool``, ``linear`` and
    ``upsample`` whatever ``kinds``. The input always has a size (a merge needs its inputs' sizes to match).
    ``netspec.summary(spec)`` succeeds, and the spec builds a ``torch.fx.GraphModule``.
    """
    default_input = st.builds(Input, channels=st.integers(1, MAX_CHANNELS),
                              size=st.tuples(st.integers(1, MAX_SIZE), st.integers(1, MAX_SIZE)))
    spec_input = draw(default_input if input is None else input)
    assume(spec_input.size is not None)
    spec_defaults = draw(defaults())
    ctx = Context(norm=spec_defaults.norm, act=spec_defaults.act)
    graph = _Graph(Shape(spec_input.channels, *spec_input.size), ctx)  # type: ignore[misc]
    classes = _kinds(kinds)
    singles = [cls for cls in classes if one_input(cls)]
    merges = [cls for cls in classes if not one_input(cls)]
    actions = ["chain", "branch", "resize"] + ["merge"] * 2 * bool(merges)
    for _ in range(draw(st.integers(min_steps, max_steps))):
        action = draw(st.sampled_from(actions))
        sinks = graph.sinks()
        full = len(sinks) >= max_outputs  # then every new entry reads an unread one, so `outputs` stays short
        if action in ("chain", "branch"):
            sources = [graph.last] if action == "chain" else sinks if full else [INPUT, *graph.names]
            source = draw(st.sampled_from(sources))
            shape = graph.shapes[source]
            candidates = [cls for cls in singles if takes(cls, shape)]
            if not candidates:
                continue
            layer, _ = draw(_valid_layer(draw(st.sampled_from(candidates)), shape, ctx))
            graph.add(draw, layer, [source], names=names)
        elif action == "resize":
            spatial = graph.spatial()
            sources = [name for name in spatial if name in sinks] if full else spatial
            if not sources:
                continue
            source, target = draw(st.sampled_from(sources)), draw(st.sampled_from(spatial))
            mode = draw(st.sampled_from(["nearest", "bilinear"]))
            corners = draw(st.sampled_from([None, True, False])) if mode == "bilinear" else None
            graph.add(draw, Upsample(to=target, mode=mode, align_corners=corners), [source], names=names)
        else:
            first = draw(st.sampled_from(sinks if sinks and (full or draw(st.booleans())) else [INPUT, *graph.names]))
            x = graph.shapes[first]
            usable = [cls for cls in merges if takes(cls, x)]
            if not usable:
                continue
            cls = draw(st.sampled_from(usable))
            layer = draw(cls.strategy(x))
            others = [graph.adapt(draw, shape, names=names) for shape in draw(cls.companions(x))]
            assume(all(other is not None for other in others))
            graph.add(draw, layer, [first, *others], names=names)  # type: ignore[list-item]
    assume(graph.layers)
    sinks = graph.sinks()
    extras = [name for name in graph.names if name not in sinks]
    chosen = draw(st.lists(st.sampled_from(extras), unique=True, max_size=max(0, max_outputs - len(sinks)))) if extras else []
    outputs = draw(st.permutations(sinks + chosen)) if len(sinks) + len(chosen) > 1 else sinks + chosen
    fields: dict[str, Any] = dict(input=spec_input, defaults=spec_defaults, layers=graph.layers)
    if outputs != [graph.last] or draw(st.booleans()) or not any(layer.wired for layer in graph.layers):
        fields["outputs"] = list(outputs)
    name = draw(st.one_of(st.none(), st.text("abcdefghij_-0123456789", min_size=1, max_size=12))) if names else None
    if name is not None:
        fields["name"] = name
    spec = Spec(**fields)
    try:
        network = infer_network(spec)
    except SpecError as error:
        raise StrategyError(f"graph_specs drew an invalid spec ({error}):\n{spec.to_yaml()}") from None
    for row in network.rows:
        if row.info.shape != graph.shapes[row.name]:
            raise StrategyError(f"{row.name} ({row.kind}): {row.info.shape} in the spec, {graph.shapes[row.name]} "
                                "when drawn: a shape rule that is not deterministic")
    return spec


# ---------------------------------------------------------------------------------------------
# Sub-graphs: `define:` once, `repeat:` several times


def _reads(layer: Layer, old: str, new: str) -> Layer:
    """``layer`` with every reference to ``old`` (``from:`` and params such as ``upsample.to``) pointed at ``new``."""
    updates: dict[str, Any] = {param: new for param, name in layer.references().items() if name == old}
    if layer.inputs == old:
        updates["inputs"] = new
    elif isinstance(layer.inputs, tuple) and old in layer.inputs:
        updates["inputs"] = tuple(new if name == old else name for name in layer.inputs)
    return layer.model_copy(update=updates) if updates else layer


@st.composite
def repeat_specs(
    draw: st.DrawFn,
    *,
    max_instances: int = 3,
    kinds: Iterable[str] | None = None,
    max_steps: int = 4,
) -> Spec:
    """A valid spec with ``define:`` and ``repeat:``: a drawn graph (:func:`graph_specs`, up to ``max_steps`` steps,
    several outputs possible) becomes a definition of one or two inputs (two are first summed by an ``add``),
    instantiated 1 to ``max_instances`` times, each on tensors of the input's shape: ``input`` or a 3x3 ``conv``
    drawn between instances (a later instance reads it). The spec returns every instance's outputs (by the
    instance's name, or ``NAME_OUTPUT`` for each of several); ``netspec.summary(spec)`` succeeds.
    """
    from netspec.repeat import Definition, Instance

    body = draw(graph_specs(min_steps=1, max_steps=max_steps, kinds=kinds, max_outputs=2))
    two = draw(st.booleans())
    formals = ["x0", "x1"] if two else ["x0"]
    if two:  # the drawn graph reads the sum of the two inputs where it read `input`; its automatic names are
        # written out first, as the `add` before them would renumber them
        from netspec.entries import written_names

        named = [layer if layer.name is not None else layer.model_copy(update={"name": name})
                 for layer, name in zip(body.layers, written_names(list(body.layers)))]
        head: list[Any] = [Add(name="sum0", inputs=("x0", "x1"))]
        entries = head + [_reads(layer, INPUT, "sum0") for layer in named]
    else:
        entries = [_reads(layer, INPUT, "x0") for layer in body.layers]
    outputs = list(body.outputs) if body.outputs is not None else None
    definition = Definition(inputs=formals, layers=entries, outputs=outputs)
    produced = list(body.outputs) if body.outputs is not None else [_last_name(body)]
    x = body.input
    layers: list[Any] = []
    pool = [INPUT]
    returned: list[str] = []
    for index in range(draw(st.integers(1, max_instances))):
        fresh = None
        if draw(st.booleans()):
            fresh = f"keep{index}"
            layers.append(Conv(out=x.channels, kernel=3, name=fresh, inputs=draw(st.sampled_from(pool))))
            pool.append(fresh)
        chosen = [draw(st.sampled_from(pool)) for _ in formals]
        if fresh is not None:
            chosen[0] = fresh  # every drawn conv is read
        name = f"r{index}"
        layers.append(Instance(repeat="block", name=name, inputs=tuple(chosen) if two or draw(st.booleans())
                               else chosen[0]))
        returned += [name] if len(produced) == 1 else [f"{name}_{output}" for output in produced]
    spec = Spec(input=x, defaults=body.defaults, define={"block": definition}, layers=layers, outputs=returned)
    try:
        infer_network(spec)
    except SpecError as error:
        raise StrategyError(f"repeat_specs drew an invalid spec ({error}):\n{spec.to_yaml()}") from None
    return spec


def _last_name(spec: Spec) -> str:
    from netspec.entries import written_names

    return written_names(list(spec.layers))[-1]
