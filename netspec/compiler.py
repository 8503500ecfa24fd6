"""The compiler: one loop over the entries in order, each reading the shapes of the entries it names.

Every entry's shape rule (or builder) comes from its kind (the registry's params models); there is no
per-kind branch here. A spec without ``name``/``from``/``outputs`` (and no kind that names other entries)
is a plain sequence and builds an ``nn.Sequential``; otherwise the same rows become a ``torch.fx.GraphModule``
whose children are named after the entries. ``repeat:`` instances are expanded into plain entries before the
loop (:mod:`netspec.entries`), each keeping the path of its definition's line for problems.
"""
from __future__ import annotations

import warnings
from itertools import accumulate
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from netspec.entries import INPUT, MAX_SUGGESTIONS, RESERVED_NAMES, Flat, Note, flatten, merged, with_instances
from netspec.errors import Finding, Invalid, Path, SpecWarning
from netspec.layers.base import Context, Layer
from netspec.shapes import LayerInfo, Shape
from netspec.source import Mark

if TYPE_CHECKING:
    from torch import nn

    from netspec.spec import Spec


DEFAULT_MAX_PARAMS = 1_000_000_000
"""Default limit on a network's parameters (4 GB of float32 weights; ResNet-50 has 25.6 million)."""
DEFAULT_MAX_MODULES = 1_000_000
"""Default limit on the torch modules a build creates (ResNet-152 has about 500): building a million takes ~30 s."""
DEFAULT_MAX_ACTIVATIONS = 2**31 - 1
"""Default limit on the values one layer outputs per sample (C*H*W): past it int32 indexing fails in torch kernels."""

@dataclass(frozen=True)
class Budget:
    """Limits checked on the static summary, layer by layer, before any tensor is allocated.

    ``max_params`` bounds the network's total parameters, ``max_activations`` the values any single
    top-level layer outputs per sample (known only when ``input.size`` is given); ``None`` means no limit.
    A spec over a limit is a :class:`~netspec.SpecError` located at the first layer that crosses it.
    """

    max_params: int | None = DEFAULT_MAX_PARAMS
    max_activations: int | None = DEFAULT_MAX_ACTIVATIONS
    max_modules: int | None = DEFAULT_MAX_MODULES

    def check(self, path: tuple[str | int, ...], params: int, output: Shape) -> Finding | None:
        """A finding at ``path`` if ``params`` (the total so far) or ``output`` is over a limit."""
        if self.max_params is not None and params > self.max_params:
            return Finding(path, f"the network reaches {params:,} parameters here, over the limit of "
                                 f"{self.max_params:,} (max_params; --max-params on the command line)", on_key=True)
        values = None if output.pixels is None else output.channels * output.pixels
        if self.max_activations is not None and values is not None and values > self.max_activations:
            return Finding(path, f"this layer outputs {values:,} values per sample {output}, over the limit of "
                                 f"{self.max_activations:,} (max_activations; --max-activations on the command line)",
                           on_key=True)
        return None


NO_LIMITS = Budget(max_params=None, max_activations=None, max_modules=None)


@dataclass(frozen=True)
class Row:
    """One entry after static inference: its name, the entries it reads (``input`` for the network's) and shapes."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    info: LayerInfo
    path: Path = ()
    """where the entry is written (``("layers", 3)``; inside ``define:`` for an instance's entries)"""
    instance: str | None = None
    """the ``repeat:`` instance the entry was expanded from (``None``: a top-level entry)"""
    scope: tuple[tuple[str, str], ...] = ()
    """the instances the entry is inside, outermost first, as (instance, definition) (drawn as nested boxes)"""

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def input(self) -> Shape:
        """The first input's shape (the only one for most kinds)."""
        return self.input_shapes[0]


@dataclass(frozen=True)
class Network:
    """The static result of a spec: its rows in order, the names it returns, and whether it is a graph."""

    rows: list[Row]
    outputs: tuple[str, ...]
    graph: bool
    blocks: int = 0
    """stage blocks in the whole (scaled) network, for the stochastic-depth schedule"""


def input_shape(spec: "Spec") -> Shape:
    size = spec.input.size
    return Shape(spec.input.channels, *(size if size is not None else (None, None)))


def context(spec: "Spec", total_blocks: int | None = None) -> Context:
    if total_blocks is None:
        total_blocks = sum(layer.block_count() for layer in spec.scaled_layers())
    return Context(norm=spec.defaults.norm, act=spec.defaults.act, drop_path=spec.drop_path, input=input_shape(spec),
                   total_blocks=total_blocks)


def infer_network(spec: "Spec", budget: Budget = NO_LIMITS) -> Network:
    """Infer every entry's output shape, parameters and MACs statically; raise ``SpecError`` with all problems.

    The spec is flattened first (:func:`netspec.entries.flatten`: ``repeat:`` instances expanded, names
    resolved); then entries are inferred in order, each from the shapes of the entries it reads; an entry whose
    input could not be inferred is skipped (its cause is reported once). Stops at the first entry that takes
    the network over ``budget`` (a problem located at that entry).
    """
    flat: Flat = flatten(spec)
    notes: list[Note] = list(flat.notes)
    scale = spec.resolved_scale
    layers = [scale.apply(entry.layer) if scale else entry.layer for entry in flat.entries]
    root = context(spec, sum(layer.block_count() for layer in layers))
    shapes: dict[str, Shape | None] = {INPUT: input_shape(spec)}
    rows: list[Row] = []
    params = modules = 0
    shape = shapes[INPUT]
    input_over = budget.max_activations is not None and shape.pixels is not None and \
        shape.channels * shape.pixels > budget.max_activations
    if input_over:
        notes.append(Note(Finding(("input",), f"the input alone holds {shape.channels * shape.pixels:,} values per "
                                  f"sample {shape}, over the limit of {budget.max_activations:,} (max_activations)")))
    firsts = list(accumulate((layer.block_count() for layer in layers), initial=0))  # blocks before each entry
    for index, (entry, layer) in enumerate(zip(flat.entries, layers) if not input_over else ()):
        inputs = [shapes.get(source) for source in entry.sources]
        if any(given is None for given in inputs):
            continue
        where = (*entry.path, layer.kind)
        ctx = replace(root.at(*where), findings=[], input_names=entry.sources, first_block=firsts[index])
        try:
            info = layer.checked_infer(inputs, ctx)  # type: ignore[arg-type]
        except Invalid as problem:
            ctx.findings.append(Finding(problem.path, problem.message))
            continue
        finally:
            notes += [Note(finding, entry.instance) for finding in ctx.findings]
        rows.append(Row(entry.name, layer, entry.sources, tuple(inputs), info, entry.path, entry.instance,
                        entry.scope))  # type: ignore[arg-type]
        shapes[entry.name] = info.shape
        params += info.params
        modules += layer.build_units()
        if budget.max_modules is not None and modules > budget.max_modules:
            notes.append(Note(Finding(where, f"building the network takes about {modules:,} torch modules here, over "
                                             f"the limit of {budget.max_modules:,} (max_modules)", on_key=True),
                              entry.instance))
            break
        over = budget.check(where, params, info.shape)
        if over is not None:
            notes.append(Note(over, entry.instance))
            break
    if notes:
        findings = merged(notes, flat.order)
        if spec.define and spec.source is not None:  # definitions are met after the entries using them: file order
            findings.sort(key=lambda f: spec.source.locate(f.path, on_key=f.on_key) or Mark(0, 0))  # type: ignore[union-attr]
        raise spec.locate(findings)
    return Network(rows, flat.outputs, flat.graph, root.total_blocks)


def analyse(spec: "Spec", budget: Budget = NO_LIMITS) -> list[Row]:
    """The rows of :func:`infer_network` (every entry's shapes, parameters and MACs)."""
    return infer_network(spec, budget).rows


def unused_entries(spec: "Spec", network: Network) -> list[int]:
    """Indices of the entries whose output no other entry reads and that are not outputs: almost always a mistake."""
    read = {source for row in network.rows for source in row.inputs} | set(network.outputs)
    return [index for index, row in enumerate(network.rows) if row.name not in read]


def warn_unused(spec: "Spec", network: Network) -> None:
    """A :class:`~netspec.SpecWarning` at the line of each entry nobody reads (see :func:`unused_entries`); an entry
    of a definition is reported once, naming the instances."""
    unused: dict[Finding, list[str]] = {}
    for index in unused_entries(spec, network):
        row = network.rows[index]
        written = row.name[len(row.instance) + 1:] if row.instance else row.name
        where = "entry of its definition nor listed in its `outputs`" if row.instance else "entry nor listed in `outputs`"
        finding = Finding((*row.path, row.kind), f"the output of {written!r} is not used by any {where}: it is "
                                                 "computed for nothing", on_key=True)
        unused.setdefault(finding, []).extend([row.instance] if row.instance else [])
    used = {definition for row in network.rows for _, definition in row.scope}
    for name in spec.define or {}:
        if name not in used:
            unused.setdefault(Finding(("define", name), f"the definition {name!r} is not used by any `repeat:` entry "
                                                        "(so it is not checked either)", on_key=True), [])
    for finding, instances in unused.items():
        problem = spec.locate([with_instances(finding, instances)]).problems[0]
        warnings.warn(SpecWarning(problem), stacklevel=1)  # one place: the same warning from check and build shows once


def build_model(spec: "Spec", budget: Budget = Budget()) -> "nn.Module":
    """Build the ``nn.Sequential`` (or, for a graph, ``torch.fx.GraphModule``) of a spec, validated first."""
    from netspec.source import gc_paused

    with gc_paused():  # thousands of modules and fx nodes, no garbage cycles: keeps a long graph's build linear
        return _build_model(spec, budget)


def _build_model(spec: "Spec", budget: Budget) -> "nn.Module":
    from collections import OrderedDict

    from torch import nn

    from netspec.ops import set_norm_statistics

    network = infer_network(spec, budget)
    warn_unused(spec, network)
    root = context(spec, network.blocks)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    firsts = accumulate((row.layer.block_count() for row in network.rows), initial=0)  # blocks before each entry
    for row, first in zip(network.rows, firsts):
        ctx = replace(root.at(*row.path, row.kind), input_names=row.inputs, first_block=first)
        try:
            modules[row.name] = row.layer.checked_build(list(row.input_shapes), ctx)
        except Invalid as problem:  # a plugin kind's module that fails or disagrees with its shape rule
            finding = Finding(problem.path, problem.message)
            raise spec.locate([with_instances(finding, [row.instance] if row.instance else [])]) from None
    model = _graph_module(network, modules, spec.name) if network.graph else nn.Sequential(modules)  # type: ignore[arg-type]
    set_norm_statistics(model, eps=spec.defaults.eps, momentum=spec.defaults.momentum)
    return model


def _graph_module(network: Network, modules: dict[str, "nn.Module"], name: str | None) -> "nn.Module":
    """A ``torch.fx.GraphModule``: one ``call_module`` node per row, reading the nodes of its inputs."""
    import torch.fx as fx
    from torch import nn

    holder = nn.Module()
    graph = fx.Graph()
    nodes = {INPUT: graph.placeholder(INPUT)}
    for row in network.rows:
        holder.add_module(row.name, modules[row.name])
        nodes[row.name] = graph.call_module(row.name, tuple(nodes[source] for source in row.inputs))
    results = [nodes[output] for output in network.outputs]
    graph.output(results[0] if len(results) == 1 else tuple(results))
    class_name = "".join(part.capitalize() for part in (name or "network").replace("-", "_").split("_") if part)
    return fx.GraphModule(holder, graph, class_name=class_name if class_name.isidentifier() else "Network")


