"""Pretrained weights matched by architecture, and checkpoints that carry their own spec (issue 15).

Names differ between codebases (torchvision's ``layer1.0.conv1`` is netspec's ``stage1.block1.body.conv1.conv``),
so weights are matched by architecture instead. Both sides are read as *units*: the tensors of one module
(a state-dict key ``a.b.weight`` belongs to the unit ``a.b``), in state-dict order, which is module registration
order: the order data flows through a torchvision/timm CNN and through a netspec model (``nn.Sequential`` or
``torch.fx.GraphModule`` alike; a residual block's shortcut comes after its body in both, timm's byobnet blocks
are read so: :func:`shortcuts_last`). A unit's *family*
(tensor names, ranks, a conv's kernel and depthwise-ness) is what it is whatever its width; its *signature* adds
the shapes (a BN's ``num_batches_tracked`` is optional; a 1x1 conv's weight equals a linear one's). The two
family sequences are aligned (issue 23: :func:`pairs_of`, :func:`same_places`) so that a module is paired only
at its own place in the architecture: modules the model adds (SE, CBAM) are reported as new, modules only the
source has (an auxiliary head) as unused, and a pair with other shapes (a 10-class classifier, a doubled width)
is reported as a shape mismatch and skipped, never a reason to look for those shapes elsewhere.

Files are read with ``torch.load(weights_only=True)`` (no pickled code ever runs) or, for ``.safetensors``,
with the optional ``safetensors`` package. Only regular files are read, compressed zip records are refused before inflating, and every
tensor is checked before any is copied. Every failure is a :class:`WeightsError`: one line naming the file.
"""
from __future__ import annotations

import heapq
import io
import os
import pickle
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from netspec.api import SPEC_ATTRIBUTE, build, spec_of  # noqa: F401  (SPEC_ATTRIBUTE, spec_of: they used to live here)
from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS
from netspec.errors import Problem, SpecError, printable
from netspec.files import write_bytes_atomic
from netspec.spec import as_spec, loads
from netspec.version import __version__

if TYPE_CHECKING:
    import torch
    from torch import nn

    from netspec.spec import Spec

CHECKPOINT_FORMAT = "netspec-checkpoint"
CHECKPOINT_VERSION = 1
OPTIONAL_TENSORS = frozenset({"num_batches_tracked"})
"""Tensors a unit may lack on either side (old checkpoints have no BN batch counter); copied when both have them."""
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
"""Where training scripts (timm, Lightning, torchvision references) keep the state dict inside a checkpoint."""
ARCHITECTURE_ONLY = "(weights are matched by architecture: module order, kinds and shapes)"


class WeightsError(SpecError):
    """Weights cannot be read or (``strict=True``) do not fit the model; ``.problems`` has one line each."""


def _fail(file: str | None, message: str) -> WeightsError:
    return WeightsError([Problem((), message, file)])


# --- units: the tensors of one module -----------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """The tensors one module owns directly (``name`` is its state-dict prefix, ``""`` for the root)."""

    name: str
    tensors: dict[str, "torch.Tensor"]
    kind: str

    @cached_property
    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """What must be equal to copy this unit: tensor names and shapes (trailing 1x1 dims ignored)."""
        return tuple(sorted((name, _squeezed(tuple(tensor.shape))) for name, tensor in self.tensors.items()
                            if name not in OPTIONAL_TENSORS))  # sorted: names in any order

    @cached_property
    def family(self) -> tuple[tuple[Any, ...], ...]:
        """What makes two units the same kind of module, whatever their widths: a mismatch is a family with other
        shapes. Tensor names and ranks, and for a conv's weight its kernel size and whether it is depthwise
        (one input channel per group): a 3x3 conv and a 7x7 one (a CBAM's spatial gate) are not the same role,
        so a shorter kernel never stands in for another.

        Ranks are not squeezed here: a 10-class linear head is another size of the model's linear head, not of
        a 1x1 conv (an SE's) that happens to sit in the same gap.
        """
        return tuple(sorted(_role(name, tuple(tensor.shape)) for name, tensor in self.tensors.items()
                            if name not in OPTIONAL_TENSORS))

    @property
    def values(self) -> int:
        return sum(tensor.numel() for name, tensor in self.tensors.items() if name not in OPTIONAL_TENSORS)

    def describe(self) -> str:
        shapes = ", ".join(f"{name} {tuple(tensor.shape)}" for name, tensor in self.tensors.items()
                           if name not in OPTIONAL_TENSORS)
        return f"{self.name or '(root)'} ({self.kind}: {shapes})"


def _role(name: str, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A tensor's part of a family: its name and rank, and a conv weight's kernel and depthwise-ness."""
    if len(shape) >= 3:
        return name, len(shape), shape[2:], shape[1] == 1
    return name, len(shape)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(C_out, C_in, 1, 1)`` -> ``(C_out, C_in)``: a 1x1 conv and a linear layer hold the same weight."""
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _split(key: str) -> tuple[str, str]:
    prefix, _, local = key.rpartition(".")
    return prefix, local


def _guess_kind(tensors: Mapping[str, "torch.Tensor"]) -> str:
    weight = tensors.get("weight")
    if "running_mean" in tensors:
        return "norm"
    if weight is None:
        return "tensors"
    return {1: "norm", 2: "linear"}.get(weight.dim(), f"conv{weight.dim() - 2}d")


def _grouped(state: Mapping[str, "torch.Tensor"]) -> dict[str, dict[str, "torch.Tensor"]]:
    """A state dict's tensors by module prefix, in the order the prefixes first appear."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        prefix, local = _split(key)
        grouped.setdefault(prefix, {})[local] = tensor
    return grouped


def units_of(state: Mapping[str, "torch.Tensor"], kinds: Mapping[str, str] | None = None,
             shortcut_first: Mapping[str, str] | None = None) -> list[Unit]:
    """Group a state dict's tensors by module prefix, in the order the prefixes first appear, a block's
    shortcut after its body (:func:`shortcuts_last`; ``shortcut_first``: see there)."""
    grouped = _grouped(state)
    units = []
    for prefix in shortcuts_last(list(grouped), shortcut_first):
        tensors = grouped[prefix]
        unit = Unit(prefix, tensors, (kinds or {}).get(prefix) or _guess_kind(tensors))
        shapes = [(name, tuple(tensor.shape)) for name, tensor in tensors.items() if name not in OPTIONAL_TENSORS]
        shapes.sort()
        unit.__dict__["signature"] = tuple((name, _squeezed(shape)) for name, shape in shapes)  # the cached
        unit.__dict__["family"] = tuple(_role(name, shape) for name, shape in shapes)  # properties, in one pass
        units.append(unit)
    return units


SHORTCUT = "shortcut"
"""A child of this name registered first in a block is its projection shortcut (timm's byobnet blocks)."""

SHORTCUT_FIRST = {"timm.models.byobnet.BottleneckBlock": "shortcut", "timm.models.byobnet.SelfAttnBlock": "shortcut",
                  "torchvision.models.regnet.ResBottleneckBlock": "proj"}
"""Block classes (module.qualname) that register their shortcut, the named child, before their body; netspec's
blocks, and the data flow, have it after. Used where the modules are at hand (the model's side of
:func:`load_weights`, ``netspec.importers.modules.source_state_dict``); a bare state dict has only names."""


def class_key(module: Any) -> str:
    """A module's class as ``package.module.QualName`` (the keys of :data:`SHORTCUT_FIRST`)."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


def shortcut_first_blocks(module: "nn.Module") -> dict[str, str]:
    """``{block prefix: shortcut child}`` for the blocks of ``module`` whose class is in :data:`SHORTCUT_FIRST`."""
    return {name: SHORTCUT_FIRST[class_key(part)] for name, part in module.named_modules()
            if class_key(part) in SHORTCUT_FIRST}


def shortcuts_last(prefixes: list[str], shortcut_first: Mapping[str, str] | None = None) -> list[str]:
    """Module prefixes in the same depth-first order, except that a block's shortcut registered before its
    body comes after its siblings: timm's byobnet blocks (BoTNet, HaloNet, LambdaNet, RegNet-Z, ...) and
    torchvision's RegNet register it first, torchvision's, timm's ResNets and netspec's after; read both in the
    body-first order, their skeletons align (the pairing is monotone, it cannot cross a block's shortcut over its
    body).

    A child moves where it is its parent's first child and the parent is a block ``shortcut_first`` names
    (``{parent prefix: child name}``, from the classes: :func:`shortcut_first_blocks`), or, from names alone, where it is called ``shortcut``, is its
    parent's first child (every child here holds tensors) and the parent is not the root: a graph spec's
    top-level entries are the user's, in the user's order, whatever they are called. Nothing else moves:
    ``downsample`` is a stage's first layer in ConvNeXt, so it stays where it is registered.
    """
    children: dict[str, list[str]] = {}
    for prefix in prefixes:
        parts = prefix.split(".") if prefix else []
        for depth in range(len(parts) + 1):
            node, parent = ".".join(parts[:depth]), ".".join(parts[:depth - 1]) if depth else None
            if node not in children:
                children[node] = []
                if parent is not None:
                    children[parent].append(node)
    moving = {parent: f"{parent}.{name}" if parent else name for parent, name in (shortcut_first or {}).items()}
    moving.update((node, kids[0]) for node, kids in children.items()
                  if node and kids and kids[0].rpartition(".")[2] == SHORTCUT)
    moving = {parent: kid for parent, kid in moving.items() if children.get(parent, [None])[0] == kid}
    if not moving:
        return prefixes  # nothing to move: the usual case, in one pass
    own = set(prefixes)
    ordered: list[str] = []
    stack = [""]
    while stack:
        node = stack.pop()
        if node in own:
            ordered.append(node)
        kids = children[node]
        if node in moving:
            kids = [kid for kid in kids if kid != moving[node]] + [moving[node]]
        stack.extend(reversed(kids))
    return ordered


def flow_keys(state: Mapping[str, "torch.Tensor"], shortcut_first: Mapping[str, str] | None = None) -> list[str]:
    """``state``'s keys in the order :func:`load_weights` reads them (:func:`shortcuts_last`)."""
    grouped = _grouped(state)
    return [f"{prefix}.{local}" if prefix else local
            for prefix in shortcuts_last(list(grouped), shortcut_first) for local in grouped[prefix]]


def model_units(model: "nn.Module") -> list[Unit]:
    """The model's units in ``named_modules()`` order (its state dict's order; a shortcut registered first
    after its block's body: :func:`shortcuts_last`), named by module type."""
    kinds = {name: type(module).__name__ for name, module in model.named_modules(remove_duplicate=False)}
    return units_of(model.state_dict(), kinds, shortcut_first_blocks(model))  # detached views of the live tensors


# --- alignment -----------------------------------------------------------------------------------------

SEARCH_BUDGET_PER_UNIT = 4
"""How many search steps per module the alignment may take before it settles for a coarser search (see
:func:`pairs_of`); a clean insertion, removal or reshaping of modules takes about one step per module."""


def _snake(left: list[int], right: list[int], i: int, j: int) -> tuple[int, int]:
    n, m = len(left), len(right)
    while i < n and j < m and left[i] == right[j]:
        i += 1
        j += 1
    return i, j


def _search(free_left: list[int], free_right: list[int], paid_left: list[int] | None,
            paid_right: list[int] | None, budget: int) -> list[tuple[int, int]] | None:
    """A cheapest monotone pairing of two sequences, or ``None`` past ``budget`` steps.

    Positions ``i``, ``j`` may pair for free where ``free_left[i] == free_right[j]``, for one unit of the
    second cost where ``paid_left[i] == paid_right[j]``; leaving a position unpaired costs one unit of the
    first cost, which dominates (costs compare as tuples). A* over the edit graph (the lower bound: the
    difference of the remaining lengths), following free pairs greedily as Myers's diff does, so the work
    grows with the number of unpaired positions and with the ambiguity, not with the product of the lengths.
    """
    n, m = len(free_left), len(free_right)
    width, delta = m + 1, n - m
    i, j = _snake(free_left, free_right, 0, 0)
    root = i * width + j
    cost: dict[int, tuple[int, int]] = {root: (0, 0)}
    came: dict[int, tuple[int, int, int, bool] | None] = {root: None}  # node: (previous node, move end, paid pair)
    heap = [(abs(delta - (i - j)), 0, -(i + j), root, 0)]
    steps = 0
    while heap:
        _, paid, _, key, skips = heapq.heappop(heap)
        if cost[key] != (skips, paid):
            continue  # reached more cheaply since it was queued
        i, j = divmod(key, width)
        if i == n and j == m:
            break
        steps += 1
        if steps > budget:
            return None
        moves = []
        if i < n:
            moves.append((i + 1, j, skips + 1, paid, False))
        if j < m:
            moves.append((i, j + 1, skips + 1, paid, False))
        if i < n and j < m and paid_left is not None and paid_left[i] == paid_right[j]:  # type: ignore[index]
            moves.append((i + 1, j + 1, skips, paid + 1, True))
        for moved_i, moved_j, new_skips, new_paid, pair in moves:
            end_i, end_j = _snake(free_left, free_right, moved_i, moved_j)
            end = end_i * width + end_j
            known = cost.get(end)
            if known is None or (new_skips, new_paid) < known:
                cost[end] = (new_skips, new_paid)
                came[end] = (key, moved_i, moved_j, pair)
                heapq.heappush(heap, (new_skips + abs(delta - (end_i - end_j)), new_paid, -(end_i + end_j), end,
                                      new_skips))
    pairs: list[tuple[int, int]] = []
    key = n * width + m
    while True:
        i, j = divmod(key, width)
        step = came[key]
        start_i, start_j = (0, 0) if step is None else (step[1], step[2])
        pairs.extend((start_i + k, start_j + k) for k in range(i - start_i - 1, -1, -1))
        if step is None:
            break
        if step[3]:
            pairs.append((start_i - 1, start_j - 1))
        key = step[0]
    pairs.reverse()
    return pairs


def _tokens(left: list[Any], right: list[Any]) -> tuple[list[int], list[int]]:
    """The two lists with each distinct item replaced by a small integer (cheap comparisons)."""
    numbers: dict[Any, int] = {}
    return ([numbers.setdefault(item, len(numbers)) for item in left],
            [numbers.setdefault(item, len(numbers)) for item in right])


def align(left: list[Any], right: list[Any]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of two lists of hashables, each match as early as possible.

    In time about (n + m) x (the number of items left unmatched) in the worst case, linear when one side only
    adds items; past a budget of steps proportional to n + m it keeps the common head and tail only.
    """
    a, b = _tokens(left, right)
    found = _search(a, b, None, None, SEARCH_BUDGET_PER_UNIT * (len(a) + len(b)) + 1000)
    return found if found is not None else _ends(a, b)


def _ends(left: list[int], right: list[int]) -> list[tuple[int, int]]:
    """The pairs of the longest common head and tail (the fallback when nothing finer fits the budget)."""
    head = 0
    while head < len(left) and head < len(right) and left[head] == right[head]:
        head += 1
    tail = 0
    while tail < len(left) - head and tail < len(right) - head and left[-1 - tail] == right[-1 - tail]:
        tail += 1
    return [(k, k) for k in range(head)] + [(len(left) - tail + k, len(right) - tail + k) for k in range(tail)]


@dataclass(frozen=True)
class Mismatch:
    """A model unit and a source unit at the same place, of the same kind, with other shapes (skipped)."""

    model: Unit
    source: Unit

    def __str__(self) -> str:
        return f"{self.model.describe()} <- {self.source.describe()}"


@dataclass
class WeightsReport:
    """What :func:`load_weights` did: ``str()`` prints it; every list holds :class:`Unit` pairs or units."""

    source: str
    matched: list[tuple[Unit, Unit]] = field(default_factory=list)
    """(model unit, source unit) pairs whose tensors were copied."""
    new: list[Unit] = field(default_factory=list)
    """Model units the source has nothing for: they keep the initialisation the spec gives them."""
    unused: list[Unit] = field(default_factory=list)
    """Source units the model has no place for."""
    mismatched: list[Mismatch] = field(default_factory=list)
    """Same kind of module at the same place, other shapes (a classifier of another size): skipped."""
    note: str | None = None
    """Set when the two sides differ so much that the alignment was cut short (:func:`pairs_of`)."""

    @property
    def complete(self) -> bool:
        """Every tensor on both sides was matched."""
        return not (self.new or self.unused or self.mismatched)

    @property
    def loaded_values(self) -> int:
        return sum(model.values for model, _ in self.matched)

    def problems(self, file: str | None = None) -> list[Problem]:
        """One line per unit that is not an exact match (what ``strict=True`` raises)."""
        lines = [f"shape mismatch: {mismatch}" for mismatch in self.mismatched]
        lines += [f"new in the model, nothing in the source for it: {unit.describe()}" for unit in self.new]
        lines += [f"unused from the source, no place in the model: {unit.describe()}" for unit in self.unused]
        return [Problem((), line, file) for line in lines]

    def to_dict(self) -> dict[str, Any]:
        def shapes(unit: Unit) -> dict[str, list[int]]:
            return {name: list(tensor.shape) for name, tensor in unit.tensors.items()}

        return {
            "source": self.source,
            "matched": [{"model": model.name, "source": source.name} for model, source in self.matched],
            "new": [{"model": unit.name, "kind": unit.kind, "shapes": shapes(unit)} for unit in self.new],
            "unused": [{"source": unit.name, "shapes": shapes(unit)} for unit in self.unused],
            "mismatched": [{"model": m.model.name, "source": m.source.name, "model_shapes": shapes(m.model),
                            "source_shapes": shapes(m.source)} for m in self.mismatched],
            **({"note": self.note} if self.note else {}),
        }

    def __str__(self) -> str:
        tensors = sum(len(model.tensors) for model, _ in self.matched)
        lines = [f"weights from {self.source}: {len(self.matched)} modules matched ({tensors} tensors, "
                 f"{self.loaded_values:,} values) {ARCHITECTURE_ONLY}"]
        sections = [
            ("new in the model, initialised as the spec says", [unit.describe() for unit in self.new]),
            ("unused from the source", [unit.describe() for unit in self.unused]),
            ("shape mismatches, skipped (model <- source)", [str(mismatch) for mismatch in self.mismatched]),
        ]
        for title, entries in sections:
            lines.append(f"{title}: {len(entries) or 'none'}")
            lines += [f"  {entry}" for entry in entries]
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(printable(line) for line in lines)  # names and paths come from files: escaped


def pairs_of(model_side: list[Unit], source_side: list[Unit]) -> tuple[list[tuple[int, int]], str | None]:
    """Which model unit takes which source unit: pairs of indices, and a note when the search was cut short.

    The rule: a module is paired only at the same place in the architecture. Both sides are read as sequences
    of module *families* (tensor names and ranks: a conv, a BN, a linear layer, a conv with a bias), and the
    pairing keeps as many modules of the same family in order as possible, the architecture's skeleton. A
    module the model adds (SE, CBAM) or the source adds (an auxiliary head) is left out of the skeleton; a
    pair with other shapes (a width doubled, a 10-class head) stays a pair, a mismatch that is reported and
    not copied, never a reason to look for a module of those shapes elsewhere. Shapes only choose between
    skeletons that are equally long (the model's CBAM conv or its shortcut conv for the source's downsample
    conv): the one with the most exact pairs wins. Names are not compared (torchvision's ``layer1.0.conv1``
    is netspec's ``stage1.block1.body.conv1.conv``, and counters such as ``layer1.0`` shift when a block is
    added), so they never decide a pairing.

    Cost: linear in the number of modules when one side adds modules to the other, when modules change shape
    in place, or when both are equal; past :data:`SEARCH_BUDGET_PER_UNIT` steps per module (two unrelated
    networks) the skeleton is found without the shape tie-break, then, past that too, only the common head
    and tail are paired, and the note says so.
    """
    families = _tokens([unit.family for unit in model_side], [unit.family for unit in source_side])
    signatures = _tokens([unit.signature for unit in model_side], [unit.signature for unit in source_side])
    if families[0] == families[1]:  # the same skeleton (equal networks, other widths): module k takes module k
        return [(k, k) for k in range(len(model_side))], None
    budget = SEARCH_BUDGET_PER_UNIT * (len(model_side) + len(source_side)) + 1000
    found = _search(*signatures, *families, budget)  # exact pairs free, same-family pairs cost, unpaired most
    if found is not None:
        return found, None
    found = _search(*families, *signatures, budget)  # the skeleton only
    if found is not None:
        return found, ("the model and the source differ in many places: modules were paired by family and order "
                       "without preferring equal shapes")
    return _ends(*signatures), ("the model and the source differ too much to align: only the modules they share "
                                "at the start and at the end were matched")


PLACE_DEPTHS = (1, 2)
"""Name depths whose containers must correspond one to one (stage, then block: ``stage2``/``layer2``, then
``stage2.block1``/``layer2.0``): see :func:`same_places`."""


def same_places(pairs: list[tuple[int, int]], model_side: list[Unit], source_side: list[Unit]) -> list[tuple[int, int]]:
    """``pairs`` without those that tie a container of one side to a second container of the other.

    The skeleton leaves slack where one side has extra modules of a common family (a CBAM's convs, a shortcut
    the other stage lacks), and shapes that fit one stage later could use it to pull single modules across:
    a model stage would take most of its modules from the source's same stage and a few from the stage
    before. Each side's containers (the names' first one and two parts) must correspond as a star: one
    container of a side may take several of the other (netspec's ``conv1`` holds torchvision's ``conv1`` and
    ``bn1``), but a link that is the weaker one for both of its containers is a shift, and its pairs are
    dropped (reported new and unused, never copied). Names only group here; they are never compared.
    """
    for depth in PLACE_DEPTHS:
        model_groups = [".".join(model_side[i].name.split(".")[:depth]) for i, _ in pairs]
        source_groups = [".".join(source_side[j].name.split(".")[:depth]) for _, j in pairs]
        links: dict[tuple[str, str], int] = {}
        for link in zip(model_groups, source_groups):
            links[link] = links.get(link, 0) + 1
        strongest_model: dict[str, int] = {}
        strongest_source: dict[str, int] = {}
        for (model_group, source_group), count in links.items():
            strongest_model[model_group] = max(strongest_model.get(model_group, 0), count)
            strongest_source[source_group] = max(strongest_source.get(source_group, 0), count)
        weak = {link for link, count in links.items()
                if count < strongest_model[link[0]] and count < strongest_source[link[1]]}
        if weak:
            pairs = [pair for pair, link in zip(pairs, zip(model_groups, source_groups)) if link not in weak]
    return pairs


def match(model_side: list[Unit], source_side: list[Unit], source: str) -> WeightsReport:
    """Pair two unit sequences (:func:`pairs_of`, :func:`same_places`): equal shapes are matched, other shapes are
    mismatches."""
    report = WeightsReport(source)
    pairs, report.note = pairs_of(model_side, source_side)
    pairs = same_places(pairs, model_side, source_side)
    next_model = next_source = 0
    for i, j in pairs + [(len(model_side), len(source_side))]:
        report.new += model_side[next_model:i]
        report.unused += source_side[next_source:j]
        if i < len(model_side):
            model_unit, source_unit = model_side[i], source_side[j]
            if model_unit.signature == source_unit.signature:
                report.matched.append((model_unit, source_unit))
            else:
                report.mismatched.append(Mismatch(model_unit, source_unit))
        next_model, next_source = i + 1, j + 1
    return report


# --- reading files -------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL = b"\x80"  # torch.save's legacy (pre-1.6) format starts with a pickle protocol 2 opcode


def _check_zip(handle: "io.BufferedReader", path: str) -> None:
    """Every record of a zip checkpoint stored (never inflated), present and matching its CRC-32.

    torch writes its records uncompressed and checks neither their presence nor their CRC; a compressed
    record (a zip bomb: a few MB inflating to GBs) is refused from the central directory and the local
    headers alone, before a byte of it is inflated.
    """
    import struct
    import zipfile

    try:
        with zipfile.ZipFile(handle) as archive:
            records = archive.infolist()
            for info in records:
                handle.seek(info.header_offset)
                header = handle.read(30)
                local = struct.unpack("<H", header[8:10])[0] if len(header) == 30 and header[:4] == ZIP_MAGIC else None
                if info.compress_type != zipfile.ZIP_STORED or local not in (None, zipfile.ZIP_STORED):
                    raise _fail(path, f"refused: record {info.filename!r} is compressed (torch writes stored records "
                                      "only); netspec does not inflate it")
            for info in records:
                if info.CRC == 0:
                    continue  # written with torch.serialization.config.save.compute_crc32 = False: nothing to check
                with archive.open(info) as record:
                    while record.read(1 << 22):
                        pass
    except WeightsError:
        raise
    except zipfile.BadZipFile as error:
        reason = _one_line(error)
        if reason.startswith("Bad CRC-32"):
            raise _fail(path, f"corrupted: {reason}") from None
        raise _fail(path, f"truncated or corrupted: not a complete zip archive ({reason})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError, struct.error) as error:
        raise _fail(path, f"truncated or corrupted ({type(error).__name__}: {_one_line(error)})") from None
    finally:
        handle.seek(0)


def _read_torch(handle: "io.BufferedReader", path: str) -> Any:
    import torch

    head = handle.read(4)
    handle.seek(0)
    if head == ZIP_MAGIC:
        _check_zip(handle, path)
    elif not head.startswith(PICKLE_PROTOCOL):
        what = "an empty file" if not head else "neither a zip archive nor a pickle"
        raise _fail(path, f"not a PyTorch checkpoint ({what})")
    try:
        with warnings.catch_warnings():  # torch's deprecation notes about what a file holds are not the user's
            warnings.simplefilter("ignore")
            return torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        if "weights_only" in text or "Weights only load failed" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"Unsupported (?:operand|class) ([^\s,]+)", text)
            what = f" ({found.group(0)})" if found else ""
            raise _fail(path, f"refused: loading it would run pickled code{what}; netspec loads tensors only "
                              "(torch.load weights_only=True)") from None
        raise _fail(path, f"not a PyTorch checkpoint ({_one_line(error)})") from None
    except EOFError:
        raise _fail(path, "truncated: the file ends before the checkpoint does") from None
    except (RuntimeError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError,
            MemoryError, UnicodeDecodeError, ImportError) as error:
        reason = _one_line(error)
        if "zip archive" in reason or "central directory" in reason or "PytorchStreamReader" in reason:
            raise _fail(path, f"truncated or corrupted checkpoint ({reason})") from None
        raise _fail(path, f"not a readable PyTorch checkpoint ({type(error).__name__}: {reason})") from None


def _read_safetensors(path: str) -> dict[str, "torch.Tensor"]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise _fail(path, "reading .safetensors needs the safetensors package: pip install 'netspec[safetensors]'") \
            from None
    try:
        state = load_file(path, device="cpu")
    except Exception as error:  # SafetensorError and friends from the Rust reader: one line
        raise _fail(path, f"not a readable safetensors file ({_one_line(error)})") from None
    return {key: state[key] for key in flow_order(state)}


def flow_order(state: Mapping[str, "torch.Tensor"]) -> list[str]:
    """Keys of a ``.safetensors`` file (stored sorted by name) back in torchvision/timm registration order.

    Sorted by module prefix component by component: numbers as numbers (``layer2`` before ``layer10``), a
    name's trailing number first (``conv1, bn1, conv2, bn2``), at equal numbers modules before containers
    (``bn1`` before ``layer1``) and a unit with a weight of two or more dimensions (a conv) before one without
    (its norm), names without a number after the numbered ones and ``downsample``/``shortcut`` last among their
    siblings (they come after the block's body). This recovers torchvision's and timm's ResNet layouts; for
    other layouts pass the state dict itself, or a ``.pth``, which keep their order.
    """
    prefixes: dict[str, list[str]] = {}
    for key in state:
        prefixes.setdefault(_split(key)[0], []).append(key)

    def sort_key(prefix: str) -> tuple[Any, ...]:
        parts = prefix.split(".") if prefix else []
        key: list[Any] = []
        for depth, part in enumerate(parts):
            if part.isdigit():
                key.append((0, int(part), 0, 0, ""))
                continue
            name, number = re.fullmatch(r"(.*?)(\d*)", part).groups()  # type: ignore[union-attr]
            last = depth == len(parts) - 1
            weight = state.get(f"{prefix}.weight")
            normish = last and (weight is None or weight.dim() < 2)
            shortcut = name in ("downsample", "shortcut")
            key.append((1, int(number) if number else 1 << 62, int(shortcut), int(not last), int(normish), name))
        return (*key,)

    ordered = sorted(prefixes, key=sort_key)
    return [key for prefix in ordered for key in prefixes[prefix]]


def _state_dict_in(data: Any, path: str | None) -> dict[str, "torch.Tensor"]:
    """The state dict inside what a checkpoint file holds (bare, netspec's, or under a training script's key)."""
    import torch

    if not isinstance(data, Mapping):
        raise _fail(path, f"not a state dict: the file holds a {type(data).__name__}, not a mapping of names to tensors")
    tensors = {str(key): value for key, value in data.items() if isinstance(value, torch.Tensor)}
    if tensors or not data:  # an empty state dict is a parameterless model's
        return _readable(tensors, path)
    for key in WRAPPER_KEYS:
        inner = data.get(key)
        if isinstance(inner, Mapping) and (not inner or any(isinstance(v, torch.Tensor) for v in inner.values())):
            return _readable({str(k): v for k, v in inner.items() if isinstance(v, torch.Tensor)}, path)
    keys = ", ".join(repr(key) for key in list(data)[:8]) or "none"
    raise _fail(path, f"no tensors in this checkpoint (top-level keys: {keys})")


def _readable(state: dict[str, "torch.Tensor"], path: str | None) -> dict[str, "torch.Tensor"]:
    """``state`` if every tensor is a plain (dense, real, unquantized) one; else a :class:`WeightsError` naming it."""
    for key, tensor in state.items():
        what = _unreadable(tensor)
        if what:
            raise _fail(path, f"tensor {key!r}: {what}")
    return state


def read_file(path: str | os.PathLike[str]) -> Any:
    """What a checkpoint file holds (``torch.load`` with ``weights_only=True``, or a ``.safetensors`` dict).

    Only a regular file is read, opened without blocking: a FIFO, a device or a directory is refused at once,
    as spec files are (``netspec.load``), instead of waiting forever for a writer.
    """
    name = os.fspath(path)
    handle = open_regular(name, "checkpoint file")
    with handle:
        if name.lower().endswith(".safetensors"):
            return _read_safetensors(name)
        return _read_torch(handle, name)


def open_regular(name: str, what: str) -> "io.BufferedReader":
    """``name`` opened for reading if it is a regular file, else a one-line :class:`WeightsError`."""
    try:
        descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise _fail(name, "no such file") from None
    except IsADirectoryError:
        raise _fail(name, f"is a directory, not a {what}") from None
    except PermissionError:
        raise _fail(name, "permission denied") from None
    except OSError as error:
        raise _fail(name, f"cannot open it: {error.strerror or error}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a directory" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise _fail(name, f"is {kind}, not a {what}" if kind == "a directory" else
                          f"cannot read it: {kind}, not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def read_state_dict(source: "Mapping[str, torch.Tensor] | str | os.PathLike[str]") -> tuple[dict[str, Any], str]:
    """``(state dict, label for messages)`` from a state dict, a ``.pt``/``.pth`` or a ``.safetensors`` file."""
    if isinstance(source, Mapping):
        return _state_dict_in(source, None), "a state dict"
    name = os.fspath(source)
    return _state_dict_in(read_file(name), name), name


# --- the API -------------------------------------------------------------------------------------------


def load_weights(
    model: "nn.Module", source: "Mapping[str, torch.Tensor] | str | os.PathLike[str]", *, strict: bool = False,
    dry_run: bool = False,
) -> WeightsReport:
    """Copy ``source``'s weights into ``model`` by architecture, not by name; returns the :class:`WeightsReport`.

    ``source`` is a state dict (e.g. ``torchvision.models.resnet50(weights=...).state_dict()``), a ``.pt``/``.pth``
    file (read with ``weights_only=True``; a training checkpoint's ``state_dict``/``model`` entry is found) or a
    ``.safetensors`` file (needs ``pip install 'netspec[safetensors]'``). Modules are paired at the same place in
    the architecture (:func:`pairs_of`) and copied when their tensor names and shapes agree, BN running statistics
    included; the model's other modules keep their initialisation. The whole pairing is decided, and every tensor
    to copy checked (no NaN or infinity, no negative running variance, no complex, sparse, nested or quantized
    tensor), before anything is copied: a problem raises :class:`WeightsError` and leaves the model as it was.
    ``strict=True`` also raises unless every module is an exact match (shape mismatches, new, unused), listing
    each one. ``dry_run=True`` returns the report and copies nothing.
    """
    from netspec.source import gc_paused

    state, label = read_state_dict(source)
    with gc_paused():  # thousands of units and tuples, no cycles: the collector's passes over the model would make
        return load_state(model, state, label, file=None if isinstance(source, Mapping) else label,  # it quadratic
                          strict=strict, dry_run=dry_run)


def load_state(model: "nn.Module", state: Mapping[str, "torch.Tensor"], label: str, *, file: str | None,
               strict: bool, dry_run: bool = False) -> WeightsReport:
    """:func:`load_weights` on a state dict already read; ``file`` names the problems raised."""
    import torch

    # a source of the model's own layout (a torchvision RegNet's state dict into another) has its shortcut-first
    # blocks under the same prefixes: read them as the model's side is read (a source laid out otherwise has no
    # such prefix, or not with the shortcut first, and is unchanged)
    report = match(model_units(model), units_of(state, None, shortcut_first_blocks(model)), label)
    if strict and not report.complete:
        raise WeightsError(report.problems(file))
    copies: list[tuple[str, torch.Tensor, torch.Tensor]] = []  # (source key, model tensor, source tensor)
    for model_unit, source_unit in report.matched:
        for local, target in model_unit.tensors.items():
            tensor = source_unit.tensors.get(local)
            if tensor is not None:  # else an optional tensor the source lacks (an old BN's num_batches_tracked)
                copies.append((f"{source_unit.name}.{local}" if source_unit.name else local, target, tensor))
    problems = [Problem((), message, file) for message in _uncopyable(copies)]
    if problems:
        raise WeightsError(problems)
    if dry_run:
        return report
    with torch.no_grad():
        for key, target, tensor in copies:
            try:
                target.copy_(tensor if tensor.shape == target.shape else tensor.reshape(target.shape))
            except (RuntimeError, TypeError, ValueError) as error:
                raise _fail(file, f"tensor {key!r} cannot be copied into the model: {_one_line(error)}") from None
    return report


def _uncopyable(copies: list[tuple[str, "torch.Tensor", "torch.Tensor"]]) -> list[str]:
    """Why tensors of ``copies`` (source key, model tensor, source tensor) must not be copied: one line each."""
    import torch

    lines = []
    for key, target, tensor in copies:
        what = _unreadable(tensor)
        if what:
            lines.append(f"tensor {key!r}: {what}")
        elif tensor.numel() != target.numel():  # only an optional tensor gets here (a num_batches_tracked)
            lines.append(f"tensor {key!r}: shape {tuple(tensor.shape)} where the model's is {tuple(target.shape)} "
                         "(damaged checkpoint)")
    if lines:
        return lines
    floats = [(key, tensor) for key, _, tensor in copies if tensor.is_floating_point() and tensor.numel()]
    if floats:  # one fused reduction: a norm is finite unless a value is NaN or infinite (or it overflows)
        try:
            norms = torch._foreach_norm([tensor for _, tensor in floats])
        except (RuntimeError, TypeError, AttributeError):
            norms = [torch.linalg.vector_norm(tensor) for _, tensor in floats]
        finite = torch.isfinite(torch.stack([norm.float() for norm in norms])).tolist()
        for (key, tensor), ok in zip(floats, finite):
            if not ok and not bool(torch.isfinite(tensor).all()):  # not an overflow of the norm alone
                bad = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
                lines.append(f"tensor {key!r} holds {bad} values: refusing to load weights that are not numbers")
    variances = [(key, tensor) for key, tensor in floats if key.endswith("running_var")]
    if variances and float(torch.cat([tensor.reshape(-1) for _, tensor in variances]).min()) < 0:
        lines += [f"tensor {key!r} holds negative values: a running variance cannot be negative (damaged checkpoint)"
                  for key, tensor in variances if bool((tensor < 0).any())]
    return lines


def _unreadable(tensor: "torch.Tensor") -> str | None:
    """Why a tensor cannot be read as plain weights (layout, kind), or ``None``: checked when a file is read."""
    import torch

    if getattr(tensor, "is_nested", False):
        return "a nested tensor, not plain weights"
    if tensor.layout != torch.strided:
        return f"a sparse tensor ({tensor.layout}), not plain weights"
    if tensor.is_quantized:
        return f"a quantized tensor ({tensor.dtype}); netspec loads float weights"
    if tensor.is_complex():
        return f"a complex tensor ({tensor.dtype}); netspec models hold real weights"
    if tensor.device.type == "meta":
        return "a meta tensor, which holds no values"
    return None


def checkpoint_bytes(spec_text: str, state: Mapping[str, "torch.Tensor"]) -> bytes:
    """A netspec checkpoint in memory: the same weights and spec give the same bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "netspec": __version__,
                "spec": spec_text, "state_dict": dict(state)}, buffer)
    return buffer.getvalue()


def save(model: "nn.Module", path: str | os.PathLike[str], *, spec: "Spec | str | os.PathLike[str] | None" = None) -> None:
    """Write ``model``'s weights and its spec (YAML text) to one file that :func:`load_model` rebuilds.

    ``spec`` defaults to the one :func:`netspec.build` attached to the model. The file is a ``torch.save``
    dict of plain data (loadable with ``weights_only=True``), written atomically and byte-reproducibly.
    """
    chosen = as_spec(spec) if spec is not None else spec_of(model)
    if chosen is None:
        raise ValueError("this model does not carry its spec (it was not built by netspec.build): "
                         "pass it, netspec.save(model, path, spec=...)")
    write_bytes_atomic(os.fspath(path), checkpoint_bytes(chosen.to_yaml(), model.state_dict()))


@dataclass(frozen=True)
class Checkpoint:
    """A netspec checkpoint read back: the spec's YAML text and the state dict."""

    path: str
    spec_text: str
    state_dict: dict[str, "torch.Tensor"]
    netspec_version: str

    def describe(self) -> str:
        values = sum(tensor.numel() for tensor in self.state_dict.values())
        return printable(f"{self.path}: netspec checkpoint (written by netspec {self.netspec_version}): its spec "
                         f"and {len(self.state_dict)} tensors ({values:,} values)")  # text from the file: escaped

    def spec(self) -> "Spec":
        return loads(self.spec_text, name=f"{self.path} (its spec)")


CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin")


def looks_like_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a torch checkpoint rather than a YAML spec: by extension, or a zip file's magic."""
    name = os.fspath(path)
    if name.lower().endswith(CHECKPOINT_EXTENSIONS):
        return True
    try:  # without blocking: a FIFO or a device is not a checkpoint (and the spec reader refuses it)
        descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False  # the spec reader reports it
    try:
        return stat.S_ISREG(os.fstat(descriptor).st_mode) and os.read(descriptor, 4) == ZIP_MAGIC
    except OSError:
        return False
    finally:
        os.close(descriptor)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a file :func:`save` wrote; a plain state dict or anything else is a one-line :class:`WeightsError`."""
    name = os.fspath(path)
    data = read_file(name)
    if not (isinstance(data, Mapping) and data.get("format") == CHECKPOINT_FORMAT):
        raise _fail(name, "not a netspec checkpoint (no spec inside; netspec.save writes one): for plain weights "
                          "give the spec and the file, netspec build SPEC --weights FILE")
    version, spec_text = data.get("version"), data.get("spec")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise _fail(name, f"netspec checkpoint version {version!r}: this netspec reads version {CHECKPOINT_VERSION}")
    if not isinstance(spec_text, str):
        raise _fail(name, "damaged netspec checkpoint: its spec is not text")
    state = data.get("state_dict")
    if not isinstance(state, Mapping):
        raise _fail(name, "damaged netspec checkpoint: its state_dict is not a mapping")
    return Checkpoint(name, spec_text, _state_dict_in(state, name), str(data.get("netspec", "?")))


def load_model(
    path: str | os.PathLike[str], *, max_params: int | None = DEFAULT_MAX_PARAMS,
    max_activations: int | None = DEFAULT_MAX_ACTIVATIONS,
) -> "nn.Module":
    """Rebuild the model a :func:`save` file describes and load its weights (all of them, or a :class:`WeightsError`).

    The limits are :func:`netspec.build`'s: a checkpoint's spec is checked like any other before it is built.
    """
    from netspec.source import gc_paused

    checkpoint = read_checkpoint(path)
    model = build(checkpoint.spec(), max_params=max_params, max_activations=max_activations)
    with gc_paused():
        load_state(model, checkpoint.state_dict, checkpoint.path, file=checkpoint.path, strict=True)
    return model
