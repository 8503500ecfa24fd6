"""The compiler: one loop over the entries in order, each reading the shapes of the entries it names.

Every entry's shape rule (or builder) comes from its kind (the registry's params models); there is no
per-kind branch here. A spec without ``name``/``from``/``outputs`` (and no kind that names other entries)
is a plain sequence and builds an ``nn.Sequential``; otherwise the same rows become a ``torch.fx.GraphModule``
whose children are named after the entries.
"""
from __future__ import annotations

import keyword
import warnings
from collections import Counter
from itertools import accumulate
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from netspec.errors import Finding, Invalid, SpecWarning
from netspec.layers.base import Context, Layer
from netspec.registry import suggest
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from torch import nn

    from netspec.spec import Spec


DEFAULT_MAX_PARAMS = 1_000_000_000
"""Default limit on a network's parameters (4 GB of float32 weights; ResNet-50 has 25.6 million)."""
DEFAULT_MAX_MODULES = 1_000_000
"""Default limit on the torch modules a build creates (ResNet-152 has about 500): building a million takes ~30 s."""
DEFAULT_MAX_ACTIVATIONS = 2**31 - 1
"""Default limit on the values one layer outputs per sample (C*H*W): past it int32 indexing fails in torch kernels."""

INPUT = "input"
"""The name of the network's input, which ``from:``, ``to:`` and ``outputs:`` may refer to."""

RESERVED_NAMES = frozenset({
    INPUT, "training", "meta", "add_module", "add_submodule", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules", "delete_submodule", "double",
    "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "graph", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "print_readable", "recompile", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "to_folder",
    "train", "type", "xpu", "zero_grad",
    # set on every GraphModule instance (an entry of that name would be replaced by None), and nn.Module's TypeVar
    "shape_env", "T_destination",
    # the generated forward's first argument: `self = self.self(input)` would rebind it
    "self",
})
"""Names an entry cannot take: the input's, the generated ``forward``'s ``self``, and attributes of
``torch.nn.Module``/``torch.fx.GraphModule`` classes and instances (an entry is a child module of that name).
Names starting with ``_`` are reserved too. Every other identifier is safe in the generated code: torch.fx renames
a node whose name would shadow a builtin or one of its own globals (``torch``, ``inf``...)."""


MAX_SUGGESTIONS = 20
"""Unknown names in one spec that get a "did you mean": each is compared with every name before it, so suggesting
for all of a generated spec's thousands of misspelt references would cost time quadratic in its length."""


class _Suggestions:
    """`` (did you mean 'x'?)`` for the first :data:`MAX_SUGGESTIONS` unknown names of a spec, ``""`` after."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.left = MAX_SUGGESTIONS

    def __call__(self, name: str, before: int | None = None) -> str:
        if self.left <= 0:
            return ""
        self.left -= 1
        return suggest(name, [INPUT, *(self.names if before is None else self.names[:before])])


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


def input_shape(spec: "Spec") -> Shape:
    size = spec.input.size
    return Shape(spec.input.channels, *(size if size is not None else (None, None)))


def context(spec: "Spec") -> Context:
    return Context(norm=spec.defaults.norm, act=spec.defaults.act, drop_path=spec.drop_path,
                   total_blocks=sum(layer.block_count() for layer in spec.scaled_layers()))


def layer_names(spec: "Spec") -> list[str]:
    """Each entry's name: its ``name:``, else the kind and its running count (``conv1``, ``stage1`` ... ``stage4``)."""
    seen: Counter[str] = Counter()
    names = []
    for layer in spec.layers:
        seen[layer.kind] += 1
        names.append(layer.name if layer.name is not None else f"{layer.kind}{seen[layer.kind]}")
    return names


def is_graph(spec: "Spec") -> bool:
    """Whether the spec is more than a plain sequence: named or wired entries, ``outputs``, or references."""
    return spec.outputs is not None or any(layer.wired or layer.references() or layer.arity != (1, 1)
                                           for layer in spec.layers)


def _name_findings(spec: "Spec", names: list[str]) -> list[Finding]:
    findings = []
    first: dict[str, int] = {}
    for index, (name, layer) in enumerate(zip(names, spec.layers)):
        where = ("layers", index, "name") if layer.name is not None else ("layers", index, layer.kind)
        if layer.name is not None and (name in RESERVED_NAMES or name.startswith("_") or keyword.iskeyword(name)):
            what = ("the network's input" if name == INPUT else "a Python keyword" if keyword.iskeyword(name)
                    else "the generated forward's own argument" if name == "self" else "an attribute of torch modules")
            findings.append(Finding(where, f"the name {name!r} is reserved ({what}): choose another"))
        elif name in first:
            other = first[name]
            findings.append(Finding(where, f"duplicate name {name!r}: layers[{other}] is already called so"
                                           + ("" if spec.layers[other].name is not None else " (its automatic name)")))
        first.setdefault(name, index)
    return findings


def _sources(spec: "Spec", index: int, names: list[str], known: dict[str, int],
             hint: _Suggestions) -> tuple[list[str], list[Finding]]:
    """The names entry ``index`` reads (``from:``, else the entry before; then its references), or findings."""
    layer = spec.layers[index]
    fewest, most = layer.arity
    written = layer.inputs
    findings: list[Finding] = []
    takes = f"{fewest}" if most == fewest else f"{fewest} or more"
    if written is None:
        if fewest > 1:
            return [], [Finding(("layers", index, layer.kind),
                                f"{layer.kind} takes {takes} inputs: write `from: [a, b]` beside it")]
        listed: list[tuple[tuple[str | int, ...], str]] = [((), names[index - 1] if index else INPUT)]
    elif isinstance(written, str):
        if fewest > 1:
            return [], [Finding(("layers", index, "from"), f"{layer.kind} takes {takes} inputs, got one: "
                                                            f"write a list, `from: [a, b]`")]
        listed = [(("from",), written)]
    else:
        if most == 1:
            return [], [Finding(("layers", index, "from"), f"{layer.kind} takes one input: write `from: {written[0]}`"
                                                            if len(written) == 1 else
                                                            f"{layer.kind} takes one input, got a list of {len(written)}")]
        if len(written) < fewest or (most is not None and len(written) > most):
            count = f"{fewest}" if most == fewest else f"at least {fewest}" if most is None else f"{fewest} to {most}"
            return [], [Finding(("layers", index, "from"), f"{layer.kind} takes {count} inputs, got {len(written)}")]
        listed = [(("from", position), name) for position, name in enumerate(written)]
    listed += [((layer.kind, param), name) for param, name in layer.references().items()]
    sources = []
    for where, name in listed:
        path = ("layers", index, *where)
        if name == INPUT or (name in known and known[name] < index):
            sources.append(name)
        elif name == names[index]:
            findings.append(Finding(path, f"{name!r} refers to this entry itself: an entry reads earlier ones only"))
        elif name in known:
            findings.append(Finding(path, f"{name!r} is defined later (layers[{known[name]}]): an entry reads "
                                          "earlier ones only, so move it below"))
        else:
            findings.append(Finding(path, f"unknown name {name!r}{hint(name, index)}"))
    return sources, findings


def infer_network(spec: "Spec", budget: Budget = NO_LIMITS) -> Network:
    """Infer every entry's output shape, parameters and MACs statically; raise ``SpecError`` with all problems.

    Entries are inferred in order, each from the shapes of the entries it reads; an entry whose input could
    not be inferred is skipped (its cause is reported once). Stops at the first entry that takes the network
    over ``budget`` (a problem located at that entry).
    """
    root = context(spec)
    names = layer_names(spec)
    known = {}
    for index, name in enumerate(names):
        known.setdefault(name, index)
    root.findings.extend(_name_findings(spec, names))
    hint = _Suggestions(names)
    shapes: dict[str, Shape | None] = {INPUT: input_shape(spec)}
    rows: list[Row] = []
    params = modules = 0
    shape = shapes[INPUT]
    input_over = budget.max_activations is not None and shape.pixels is not None and \
        shape.channels * shape.pixels > budget.max_activations
    if input_over:
        root.findings.append(Finding(("input",), f"the input alone holds {shape.channels * shape.pixels:,} values per "
                                     f"sample {shape}, over the limit of {budget.max_activations:,} (max_activations)"))
    layers = spec.scaled_layers()
    firsts = list(accumulate((layer.block_count() for layer in layers), initial=0))  # blocks before each entry
    for index, (name, layer) in enumerate(zip(names, layers) if not input_over else ()):
        sources, problems = _sources(spec, index, names, known, hint)
        root.findings.extend(problems)
        inputs = [shapes.get(source) for source in sources]
        shapes.setdefault(name, None)
        if problems or any(given is None for given in inputs):
            continue
        try:
            ctx = replace(root.at("layers", index, layer.kind), input_names=tuple(sources), first_block=firsts[index])
            info = layer.checked_infer(inputs, ctx)  # type: ignore[arg-type]
        except Invalid as problem:
            root.findings.append(Finding(problem.path, problem.message))
            continue
        rows.append(Row(name, layer, tuple(sources), tuple(inputs), info))  # type: ignore[arg-type]
        shapes[name] = info.shape
        params += info.params
        modules += layer.build_units()
        if budget.max_modules is not None and modules > budget.max_modules:
            root.findings.append(Finding(("layers", index, layer.kind), f"building the network takes about {modules:,} "
                                         f"torch modules here, over the limit of {budget.max_modules:,} (max_modules)",
                                         on_key=True))
            break
        over = budget.check(("layers", index, layer.kind), params, info.shape)
        if over is not None:
            root.findings.append(over)
            break
    outputs = tuple(spec.outputs) if spec.outputs is not None else (names[-1],)
    for position, name in enumerate(spec.outputs or ()):
        if name not in shapes and name != INPUT:
            root.findings.append(Finding(("outputs", position), f"unknown name {name!r}{hint(name)}"))
    if root.findings:
        ordered = sorted(dict.fromkeys(root.findings), key=_entry_order)  # a rule broken by several convs: once
        raise spec.locate(ordered)
    return Network(rows, outputs, is_graph(spec))


def _entry_order(finding: Finding) -> tuple[int, int]:
    """Problems in the order of the file: by entry, then ``outputs``."""
    path = finding.path
    if len(path) > 1 and path[0] == "layers" and isinstance(path[1], int):
        return 0, path[1]
    return (1, 0) if path[:1] == ("outputs",) else (-1, 0)


def analyse(spec: "Spec", budget: Budget = NO_LIMITS) -> list[Row]:
    """The rows of :func:`infer_network` (every entry's shapes, parameters and MACs)."""
    return infer_network(spec, budget).rows


def unused_entries(spec: "Spec", network: Network) -> list[int]:
    """Indices of the entries whose output no other entry reads and that are not outputs: almost always a mistake."""
    read = {source for row in network.rows for source in row.inputs} | set(network.outputs)
    return [index for index, row in enumerate(network.rows) if row.name not in read]


def warn_unused(spec: "Spec", network: Network) -> None:
    """A :class:`~netspec.SpecWarning` at the line of each entry nobody reads (see :func:`unused_entries`)."""
    for index in unused_entries(spec, network):
        row = network.rows[index]
        problem = spec.locate([Finding(("layers", index, row.kind), f"the output of {row.name!r} is not used by any "
                                       "entry nor listed in `outputs`: it is computed for nothing", on_key=True)]).problems[0]
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
    root = context(spec)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    firsts = accumulate((row.layer.block_count() for row in network.rows), initial=0)  # blocks before each entry
    try:
        for index, (row, first) in enumerate(zip(network.rows, firsts)):
            ctx = replace(root.at("layers", index, row.kind), input_names=row.inputs, first_block=first)
            modules[row.name] = row.layer.checked_build(list(row.input_shapes), ctx)
    except Invalid as problem:  # a plugin kind's module that fails or disagrees with its shape rule
        raise spec.locate([Finding(problem.path, problem.message)]) from None
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


