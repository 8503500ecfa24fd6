"""Flatten a spec into the entries the compiler infers: each one's name, where it is written, and what it reads.

A top-level entry stands for itself. A ``repeat:`` entry (:mod:`netspec.repeat`) is replaced by the entries of
its definition, named with the instance's prefix (``p3_conv1``) and reading the instance's inputs where the
definition reads its formal ``inputs``; an instance inside a definition is expanded the same way (prefixes
chain: ``stage3_m1_conv1``). Each flat entry keeps the path it is written at (``layers.4`` or
``define.fuse.layers.1``) and the instance it belongs to, so that a problem is reported at the line of the
definition and names the instance(s) where it arises. Names are resolved here, once, for every entry:
the compiler's loop then only reads the shapes of the names each entry lists.
"""
from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from netspec.errors import Finding, Path, format_path
from netspec.layers.base import Layer
from netspec.registry import suggest
from netspec.repeat import REPEAT, Definition, Instance, Item
from netspec.timm_attention import PREFIX as TIMM_PREFIX, resolve as resolve_timm

if TYPE_CHECKING:
    from netspec.spec import Spec

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

MAX_ENTRIES = 100_000
"""Most entries a spec may expand to (instances of instances multiply): past it, a located error, nothing built."""
MAX_NESTING = 32
"""Deepest chain of definitions holding instances of definitions (HRNet's spec has 2 levels)."""


@dataclass(frozen=True)
class Several:
    """What the name of an instance with several outputs stands for: not one tensor (``p3_a``, ``p3_b`` are)."""

    instance: str
    names: tuple[str, ...]  # the aliases to refer to instead
    targets: tuple[str | None, ...]  # their flat names


Target = Union[str, Several, None]
"""What a written name resolves to: a flat entry name, several outputs, or ``None`` (its problem reported once)."""


@dataclass(frozen=True)
class Entry:
    """One entry to infer: its flat name, its layer as written, where it is written, the flat names it reads."""

    name: str
    layer: Layer
    path: Path
    sources: tuple[str, ...]
    instance: str | None = None
    """the instance it was expanded from (``p3``, ``stage3_m1``); ``None`` for a top-level entry"""
    scope: tuple[tuple[str, str], ...] = ()
    """the instances it is inside, outermost first, each as (instance, definition): ``(("stage3", "hr3"), ...)``"""


@dataclass(frozen=True)
class Note:
    """A problem and the instance it arose in (the same problem in a definition is reported once, naming each)."""

    finding: Finding
    instance: str | None = None


@dataclass
class Flat:
    """A spec flattened: its entries in order, the flat names it returns, whether it is a graph, its problems."""

    entries: list[Entry]
    outputs: tuple[str, ...]
    graph: bool
    notes: list[Note] = field(default_factory=list)
    order: dict[Path, int] = field(default_factory=dict)
    """the order in which written entries were first met (problems are sorted by it)"""


def written_names(items: list[Item]) -> list[str]:
    """Each item's name in its list: its ``name:``, else its kind (or definition) and running count (``conv1``)."""
    seen: Counter[str] = Counter()
    names = []
    for item in items:
        base = item.automatic_base() if isinstance(item, Instance) else item.kind
        seen[base] += 1
        names.append(item.name if item.name is not None else f"{base}{seen[base]}")
    return names


def output_names(definition: Definition) -> list[str]:
    """The written names of a definition's outputs: its ``outputs``, else its last entry."""
    return list(definition.outputs) if definition.outputs is not None else written_names(definition.layers)[-1:]


def with_instances(finding: Finding, instances: list[str], total: int | None = None) -> Finding:
    """``finding`` with `` (in instance p3)`` / `` (in instances p3, p4)`` added when it arose inside instances.

    ``total``: how many instances there are when ``instances`` lists only the first ones (``-1``: more, uncounted).
    """
    if not instances:
        return finding
    total = len(instances) if total is None else total
    more = "" if 0 <= total <= 8 else " and more" if total < 0 else f" and {total - 8} more"
    shown = ", ".join(instances[:8]) + more
    word = "instance" if len(instances) == 1 else "instances"
    return Finding(finding.path, f"{finding.message} (in {word} {shown})", on_key=finding.on_key)


MAX_NAMED_SITES = 10_000
"""Most instance sites :func:`instances_written` walks (instances of instances multiply) before it stops counting."""


def _raw_base(raw: object) -> tuple[str | None, str | None]:
    """(written name, automatic-name base) of an unvalidated list item, as :func:`written_names` names it."""
    name = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
    if isinstance(raw, str):
        return name, raw
    if not isinstance(raw, dict):
        return name, None
    if isinstance(raw.get(REPEAT), str) and raw[REPEAT]:
        return name, (raw[REPEAT] + "_" if raw[REPEAT][-1].isdigit() else raw[REPEAT])
    keys = [key for key in raw if key not in ("name", "from")]
    if len(keys) != 1 or not isinstance(keys[0], str):
        return name, None
    kind = keys[0]
    if kind.startswith(TIMM_PREFIX):
        resolved = resolve_timm(kind, raw[kind])
        kind = resolved[0] if isinstance(resolved, tuple) else kind
    return name, kind


def instances_written(data: object) -> dict[str, tuple[list[str], int]]:
    """For a spec's unvalidated data: each definition's instances as expansion names them (``stage3_m1``), the
    first nine in expansion order, and how many there are (``-1``: more than :data:`MAX_NAMED_SITES` sites walked).

    So that a problem found while a definition is validated (before anything is expanded) names its instances too.
    """
    definitions = data.get("define") if isinstance(data, dict) else None
    if not isinstance(definitions, dict) or not isinstance(data.get("layers"), list):
        return {}
    found: dict[str, tuple[list[str], int]] = {}
    walked = 0

    def walk(items: list[object], prefix: str, depth: int) -> None:
        nonlocal walked
        seen: Counter[str] = Counter()
        for raw in items:
            name, base = _raw_base(raw)
            if base is not None:
                seen[base] += 1
            repeat = raw.get(REPEAT) if isinstance(raw, dict) else None
            if not isinstance(repeat, str) or repeat not in definitions or base is None:
                continue
            walked += 1
            if walked > MAX_NAMED_SITES:
                return
            label = prefix + (name if name is not None else f"{base}{seen[base]}")
            names, count = found.get(repeat, ([], 0))
            found[repeat] = (names + [label] if len(names) < 9 else names, count + 1)
            body = definitions[repeat].get("layers") if isinstance(definitions[repeat], dict) else None
            if isinstance(body, list) and depth < MAX_NESTING:
                walk(body, f"{label}_", depth + 1)

    walk(data["layers"], "", 0)
    if walked > MAX_NAMED_SITES:
        return {name: (names, -1) for name, (names, _) in found.items()}
    return found


def merged(notes: list[Note], order: dict[Path, int]) -> list[Finding]:
    """The notes as findings: one per problem, naming every instance it arose in; in the order of the entries."""
    groups: dict[Finding, list[str]] = {}
    for note in notes:
        instances = groups.setdefault(note.finding, [])
        if note.instance is not None and note.instance not in instances:
            instances.append(note.instance)
    findings = [with_instances(finding, instances) for finding, instances in groups.items()]

    def rank(finding: Finding) -> tuple[int, int]:
        path = finding.path
        if path[:1] == ("outputs",):
            return 1, 0
        for end in range(len(path), 0, -1):
            if path[:end] in order:
                return 0, order[path[:end]]
        return -1, 0

    return sorted(findings, key=rank)


def _sizes(spec: "Spec") -> tuple[dict[str, int], list[Finding], set[Path]]:
    """How many entries each definition expands to; problems with the instances in definitions: a definition that
    uses itself (a cycle), or definitions nested deeper than :data:`MAX_NESTING`; and the instances not to expand."""
    definitions = spec.define or {}
    sizes: dict[str, int] = {}
    depths: dict[str, int] = {}
    findings: list[Finding] = []
    cut: set[Path] = set()
    # iterative depth-first walk, memoized: definitions may nest deeply, and a cycle must not recurse forever
    for root in definitions:
        if root in sizes:
            continue
        stack: list[tuple[str, int, int, int]] = [(root, 0, 0, 1)]  # (definition, next item, entries, depth)
        active = [root]
        while stack:
            name, index, total, depth = stack.pop()
            items = definitions[name].layers
            if index == len(items):
                sizes[name], depths[name] = min(total, MAX_ENTRIES + 1), depth
                active.pop()
                if stack:
                    parent, parent_index, parent_total, parent_depth = stack.pop()
                    stack.append((parent, parent_index, parent_total, parent_depth))  # the item is looked at again
                continue
            item = items[index]
            where = ("define", name, "layers", index, "repeat")
            if not isinstance(item, Instance):
                stack.append((name, index + 1, total + 1, depth))
            elif item.repeat in active:
                cycle = " -> ".join(active[active.index(item.repeat):] + [item.repeat])
                findings.append(Finding(where, f"{item.repeat!r} uses itself ({cycle}): a definition cannot contain "
                                               "itself"))
                cut.add(where)
                stack.append((name, index + 1, total, depth))
            elif item.repeat not in definitions:
                stack.append((name, index + 1, total, depth))  # reported when expanded
            elif item.repeat in sizes and depths[item.repeat] >= MAX_NESTING:
                if depths[item.repeat] == MAX_NESTING:  # deeper ones are cut below this one: reported once
                    findings.append(Finding(where, f"definitions nest deeper than {MAX_NESTING} levels here "
                                                   f"({name} -> {item.repeat} -> ...)"))
                cut.add(where)
                stack.append((name, index + 1, total, MAX_NESTING + 1))
            elif item.repeat in sizes:
                stack.append((name, index + 1, total + sizes[item.repeat], max(depth, depths[item.repeat] + 1)))
            else:
                stack.append((name, index, total, depth))
                stack.append((item.repeat, 0, 0, 1))
                active.append(item.repeat)
    return sizes, list(dict.fromkeys(findings)), cut


class _Flattener:
    def __init__(self, spec: "Spec", sizes: dict[str, int], cycles: list[Finding], cut: set[Path]) -> None:
        self.definitions = spec.define or {}
        self.sizes = sizes
        self.cut = cut  # instances not expanded (cycles, nesting too deep)
        self.entries: list[Entry] = []
        self.notes: list[Note] = [Note(finding) for finding in cycles]
        self.taken: dict[str, str] = {INPUT: "the network's input"}  # flat name -> who has it
        self.order: dict[Path, int] = {}
        self.scope: tuple[tuple[str, str], ...] = ()  # the instances the body being flattened is inside
        self.undefined: set[tuple[str | None, str]] = set()  # (body's instance, name) of instances of no definition
        self.suggestions_left = MAX_SUGGESTIONS

    def suggest(self, written: str, candidates: Callable[[], list[str]]) -> str:
        """`` (did you mean 'x'?)`` for the first :data:`MAX_SUGGESTIONS` unknown names of a spec, ``""`` after."""
        if self.suggestions_left <= 0:
            return ""
        self.suggestions_left -= 1
        return suggest(written, candidates())

    def note(self, path: Path, message: str, instance: str | None = None, *, on_key: bool = False) -> None:
        self.notes.append(Note(Finding(path, message, on_key=on_key), instance))

    def body(self, items: list[Item], where: Path, formals: dict[str, str | None], first: Target, prefix: str,
             instance: str | None, scope: tuple[tuple[str, str], ...] = ()) -> dict[str, Target]:
        """Flatten one list of items (the spec's ``layers`` or a definition's); returns its names' targets.

        ``formals`` maps the names the items may read besides each other (``input``; a definition's ``inputs``) to
        their flat names; ``first`` is what the first item reads by default; ``prefix`` starts every flat name.
        """
        names = written_names(items)
        positions: dict[str, int] = {}
        for index, (name, item) in enumerate(zip(names, items)):
            self.order.setdefault(where + (index,), len(self.order))
            spot = where + (index, "name") if item.name is not None else where + (index, item.kind)
            if self._name_problem(name, item, formals, positions, items, spot, instance):
                if name not in formals:  # a reserved name is still the entry's: its readers get no second problem
                    positions.setdefault(name, index)
                continue
            positions[name] = index
            for alias in self._aliases(name, item):
                positions.setdefault(alias, index)
        targets: dict[str, Target] = {}
        previous: Target = first
        for index, (name, item) in enumerate(zip(names, items)):
            self.scope = scope
            path = where + (index,)
            if isinstance(item, Instance):
                previous = self.instance(item, name, path, formals, positions, targets, previous, prefix, instance)
            else:
                previous = self.layer(item, name, path, formals, positions, targets, previous, prefix, instance)
        return targets

    def _name_problem(self, name: str, item: Item, formals: dict[str, str | None], positions: dict[str, int],
                      items: list[Item], spot: Path, instance: str | None) -> bool:
        if item.name is not None and (name in RESERVED_NAMES or name.startswith("_") or keyword.iskeyword(name)):
            what = ("the network's input" if name == INPUT else "a Python keyword" if keyword.iskeyword(name)
                    else "the generated forward's own argument" if name == "self" else "an attribute of torch modules")
            self.note(spot, f"the name {name!r} is reserved ({what}): choose another", instance)
            return True
        if name in formals:
            self.note(spot, f"the name {name!r} is one of the definition's inputs: choose another", instance)
            return True
        if name in positions:
            other = positions[name]
            automatic = "" if items[other].name is not None else " (its automatic name)"
            self.note(spot, f"duplicate name {name!r}: {self._label(spot[:-2], other)} is already called so"
                            + automatic, instance)
            return True
        return False

    def _label(self, where: Path, index: int) -> str:
        return f"{format_path(where)}[{index}]"

    def _aliases(self, name: str, item: Item) -> list[str]:
        """Names an instance's outputs are read by: ``NAME_OUTPUT`` for each (and ``NAME`` itself, listed apart)."""
        definition = self.definitions.get(item.repeat) if isinstance(item, Instance) else None
        return [f"{name}_{output}" for output in output_names(definition)] if definition is not None else []

    def resolve(self, written: str, path: Path, index: int, formals: dict[str, str | None],
                positions: dict[str, int], targets: dict[str, Target], instance: str | None,
                own: str) -> tuple[bool, str | None]:
        """(resolved, flat name) of a name entry ``index`` reads; a problem noted when it is not resolved."""
        if written in formals:
            return True, formals[written]
        position = positions.get(written)
        if position is not None and position < index:
            target = targets.get(written)
            if isinstance(target, Several):
                self.note(path, f"{target.instance!r} has {len(target.names)} outputs: refer to one of "
                                f"{', '.join(target.names)}", instance)
                return False, None
            return True, target
        if written == own or position == index:
            self.note(path, f"{written!r} refers to this entry itself: an entry reads earlier ones only", instance)
        elif position is not None:
            self.note(path, f"{written!r} is defined later ({self._label(path[:path.index(index)], position)}): an "
                            "entry reads earlier ones only, so move it below", instance)
        elif self.output_of_undefined(written, instance, lambda name: positions.get(name, index) < index):
            pass  # `p3_y0` of an instance `p3` whose definition is unknown: that problem is reported, not this one
        else:
            hint = self.suggest(written, lambda: [*formals, *(name for name, at in positions.items() if at < index)])
            if written == INPUT and instance is not None:
                hint = f": a definition's entries read its `inputs` ({', '.join(formals)}), not the network's input"
            self.note(path, f"unknown name {written!r}{hint}", instance)
        return False, None

    def output_of_undefined(self, written: str, instance: str | None, earlier: Callable[[str], bool]) -> bool:
        """Whether ``written`` reads ``NAME_OUTPUT`` of an ``earlier`` instance (in the body of ``instance``) whose
        definition is unknown: that problem is reported, an unknown name would be a second one."""
        return any(written[end] == "_" and (instance, written[:end]) in self.undefined and earlier(written[:end])
                   for end in range(1, len(written)))

    def _default(self, previous: Target, path: Path, kind: str, instance: str | None) -> tuple[bool, str | None]:
        if isinstance(previous, Several):
            self.note(path, f"the entry before is {previous.instance!r}, which has {len(previous.names)} outputs: "
                            f"write `from:` with one of {', '.join(previous.names)}", instance)
            return False, None
        return True, previous

    def layer(self, layer: Layer, name: str, path: Path, formals: dict[str, str | None], positions: dict[str, int],
              targets: dict[str, Target], previous: Target, prefix: str, instance: str | None) -> Target:
        index = path[-1]
        flat = prefix + name
        targets[name] = flat
        listed = self._listed(layer, path, instance)
        if listed is None:
            return flat
        sources: list[str | None] = []
        resolved = True
        for where, written in listed:
            if written is None:
                ok, target = self._default(previous, path + (layer.kind,), layer.kind, instance)
            else:
                ok, target = self.resolve(written, path + where, index, formals, positions, targets,  # type: ignore
                                          instance, name)
            resolved = resolved and ok
            sources.append(target)
        if flat in self.taken and positions.get(name) == index:
            spot = path + ("name",) if layer.name is not None else path + (layer.kind,)
            self.note(spot, f"the name {flat!r} is taken by {self.taken[flat]}: choose another", instance)
            targets[name] = None  # its readers are not inferred against the other entry of that name
            return None
        self.taken.setdefault(flat, f"{format_path(path)}" + (f" (in instance {instance})" if instance else ""))
        if resolved and all(source is not None for source in sources):
            self.entries.append(Entry(flat, layer, path, tuple(sources), instance, self.scope))  # type: ignore[arg-type]
        return flat

    def _listed(self, layer: Layer, path: Path, instance: str | None) -> list[tuple[Path, str | None]] | None:
        """The names ``layer`` reads (``None``: the entry before), with the path of each; ``None`` on a problem."""
        fewest, most = layer.arity
        written = layer.inputs
        takes = f"{fewest}" if most == fewest else f"{fewest} or more"
        listed: list[tuple[Path, str | None]]
        if written is None:
            if fewest > 1:
                self.note(path + (layer.kind,), f"{layer.kind} takes {takes} inputs: write `from: [a, b]` beside it",
                          instance)
                return None
            listed = [((), None)]
        elif isinstance(written, str):
            if fewest > 1:
                self.note(path + ("from",), f"{layer.kind} takes {takes} inputs, got one: write a list, "
                                            "`from: [a, b]`", instance)
                return None
            listed = [(("from",), written)]
        else:
            if most == 1:
                self.note(path + ("from",), f"{layer.kind} takes one input: write `from: {written[0]}`"
                          if len(written) == 1 else f"{layer.kind} takes one input, got a list of {len(written)}",
                          instance)
                return None
            if len(written) < fewest or (most is not None and len(written) > most):
                count = f"{fewest}" if most == fewest else f"at least {fewest}" if most is None else f"{fewest} to {most}"
                self.note(path + ("from",), f"{layer.kind} takes {count} inputs, got {len(written)}", instance)
                return None
            listed = [(("from", position), name) for position, name in enumerate(written)]
        return listed + [((layer.kind, param), name) for param, name in layer.references().items()]

    def instance(self, item: Instance, name: str, path: Path, formals: dict[str, str | None],
                 positions: dict[str, int], targets: dict[str, Target], previous: Target, prefix: str,
                 instance: str | None) -> Target:
        index = path[-1]
        definition = self.definitions.get(item.repeat)
        targets[name] = None
        if definition is None:
            self.undefined.add((instance, name))
            self.note(path + ("repeat",), f"unknown definition {item.repeat!r}"
                                          f"{self.suggest(item.repeat, lambda: list(self.definitions))}"
                                          + ("" if self.definitions else ": define it under `define:`"), instance)
            return None
        if path + ("repeat",) in self.cut:
            return None
        arity = len(definition.inputs)
        written = item.inputs
        takes = f"{item.repeat} takes {arity} input{'s' if arity > 1 else ''} ({', '.join(definition.inputs)})"
        listed: list[tuple[Path, str | None]]
        listed = []
        if written is None and arity > 1:
            self.note(path + ("repeat",), f"{takes}: write `from: [a, b]` beside it", instance)
        elif written is None:
            listed = [((), None)]
        elif isinstance(written, str):
            listed = [(("from",), written)]
        else:
            listed = [(("from", position), source) for position, source in enumerate(written)]
        if written is not None and len(listed) != arity:
            self.note(path + ("from",), f"{takes}, got {len(listed)}", instance)
            listed = []
        actual: list[str | None] = []
        for where, source in listed:
            if source is None:
                ok, target = self._default(previous, path + ("repeat",), item.repeat, instance)
            else:
                ok, target = self.resolve(source, path + where, index, formals, positions, targets, instance, name)
            actual.append(target if ok else None)
        actual += [None] * (arity - len(actual))  # unresolved: its entries are checked, not inferred
        label = prefix + name
        definition_path: Path = ("define", item.repeat)
        inner = self.body(definition.layers, definition_path + ("layers",), dict(zip(definition.inputs, actual)),
                          actual[0], f"{label}_", label, (*self.scope, (label, item.repeat)))
        outputs: list[str | None] = []
        for position, output in enumerate(output_names(definition)):
            target = inner.get(output)
            spot = definition_path + ("outputs", position)
            if output in definition.inputs:
                self.note(spot, f"{output!r} is one of the definition's inputs: an output is one of its entries",
                          label)
            elif output not in inner and not self.output_of_undefined(output, label, lambda name: name in inner):
                self.note(spot, f"unknown name {output!r}{self.suggest(output, lambda: list(inner))}", label)
            elif isinstance(target, Several):
                self.note(spot, f"{output!r} has {len(target.names)} outputs: list one of {', '.join(target.names)}",
                          label)
                target = None
            outputs.append(target if isinstance(target, str) else None)
        aliases = [f"{name}_{output}" for output in output_names(definition)]
        for alias, target in zip(aliases, outputs):
            targets[alias] = target
        result: Target = outputs[0] if len(outputs) == 1 else Several(name, tuple(aliases), tuple(outputs))
        targets[name] = result
        return result


def flatten(spec: "Spec") -> Flat:
    """The spec's entries with every instance expanded, each name resolved; problems are returned as notes."""
    sizes, cycles, cut = _sizes(spec)
    flattener = _Flattener(spec, sizes, cycles, cut)
    total = 0
    for index, item in enumerate(spec.layers):
        total += sizes.get(item.repeat, 0) if isinstance(item, Instance) else 1
        if total > MAX_ENTRIES:
            flattener.note(("layers", index, "repeat"), f"the spec expands to more than {MAX_ENTRIES:,} entries "
                                                        "here (instances of definitions that hold instances "
                                                        "multiply): use fewer or smaller instances")
            return Flat([], (), True, flattener.notes, flattener.order)
    top = flattener.body(list(spec.layers), ("layers",), {INPUT: INPUT}, INPUT, "", None)
    names = written_names(list(spec.layers))
    outputs: list[str] = []
    if spec.outputs is None:
        last = top.get(names[-1])
        if isinstance(last, Several):
            outputs = [target for target in last.targets if target is not None]
        elif isinstance(last, str):
            outputs = [last]
    else:
        for position, written in enumerate(spec.outputs):
            target = INPUT if written == INPUT else top.get(written)
            if isinstance(target, Several):
                flattener.note(("outputs", position), f"{written!r} has {len(target.names)} outputs: list the ones "
                                                      f"the network returns ({', '.join(target.names)})")
            elif written != INPUT and written not in top:
                if flattener.output_of_undefined(written, None, lambda name: name in top):
                    continue
                hint = flattener.suggest(written, lambda: [INPUT, *top])
                flattener.note(("outputs", position), f"unknown name {written!r}{hint}")
            elif isinstance(target, str):
                outputs.append(target)
    graph = spec.outputs is not None or bool(spec.define) or any(
        isinstance(item, Instance) or item.wired or item.references() or item.arity != (1, 1) for item in spec.layers)
    return Flat(flattener.entries, tuple(outputs), graph, flattener.notes, flattener.order)
