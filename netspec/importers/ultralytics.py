"""Ultralytics model YAML (``yolov8.yaml``, ``yolo11.yaml``, ``yolov5.yaml``, users' edits) -> a netspec spec.

Ultralytics describes a model as rows ``[from, repeats, module, args]`` under ``backbone:`` and ``head:``, wired by
absolute or negative layer indices, with ``nc`` and a ``scales`` table (``n: [depth, width, max_channels]``). Its
``parse_model`` (``ultralytics/nn/tasks.py``) gives every argument its meaning; this module follows it:

- channel arguments (``args[0]`` of Conv, GhostConv, C2f, C2, C3, C3Ghost, C3k2, C2PSA, SPPF; Segment's ``protos``) are pre-scaling widths,
  as netspec's ``Channels`` params are: the spec keeps them and carries the scale as ``scale:``;
- ``repeats`` of C2f, C2, C3, C3Ghost, C3k2, C2PSA becomes their ``depth`` (scaled by ``scale.depth`` the same way);
- C3k2's ``c3k`` is forced true at scales m, l and x, and Detect is ``legacy`` unless the model holds a C3k2;
- the string ``nc`` in args is the file's ``nc``; other strings are Python literals (``None``) or stay strings;
- attention modules that users add (``CBAM``, ``SE``...) take the channels from their input in netspec: a leading
  argument equal to the input's width (pre-scaling, or at the chosen scale) is that width and is dropped; what
  follows keeps its meaning (a CBAM kernel 7 stays 7, never width-scaled).

Indices become names: the layers a Detect/Segment head reads are ``p3``, ``p4``, ``p5`` (``p`` + log2 of their
stride), any other layer read out of order is ``<kind>_<index>`` (``c2f_6``). Each entry's comment starts with its
Ultralytics index and keeps the row's own comment; the file's header and section comments are kept.
"""
from __future__ import annotations

import ast
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from netspec.api import build
from netspec.errors import Path, Problem, SpecError
from netspec.importers.imported import Imported
from netspec.registry import KINDS
from netspec.scaling import make_divisible
from netspec.source import Source, parse_yaml, read_limited
from netspec.weights import load_weights

INPUT_SIZE = 640
"""Ultralytics' default image size, written as the spec's ``input.size`` (the model takes any multiple of 32)."""
DEFAULTS = "{norm: batch, act: silu, eps: 0.001, momentum: 0.03}"
"""Ultralytics' Conv: BN (eps 1e-3, momentum 0.03 after ``initialize_weights``) and SiLU."""

ACTIVATIONS = {
    "nn.SiLU()": "silu", "nn.ReLU()": "relu", "nn.ReLU6()": "relu6", "nn.LeakyReLU(0.1)": "leaky_relu",
    "nn.Hardswish()": "hardswish", "nn.Mish()": "mish", "nn.GELU()": "gelu",
}
"""The file's ``activation:`` (Ultralytics' ``Conv.default_act``) -> ``defaults.act``."""

UNINFORMATIVE = re.compile(r"^\[(from, (repeats|number|n), module, args|depth, width, max_channels)\]$")
"""Comments that describe Ultralytics' row format, meaningless in a netspec spec."""


class Rejected(Exception):
    """A row (or a part of it at ``path``) netspec cannot import; becomes a located problem."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class Row:
    """One ``[from, repeats, module, args]`` row, resolved."""

    index: int
    path: Path  # ("backbone", 3) or ("head", 0)
    sources: list[int]  # absolute layer indices read (-1: the network input), in order
    single: bool  # `from` was one index, not a list
    repeats: int
    module: str
    args: list[Any]
    comment: str = ""
    above: list[str] = field(default_factory=list)  # full-line comments just before the row


@dataclass
class Entry:
    """What a row becomes: a netspec kind with params, and facts later rows need."""

    kind: str
    params: dict[str, Any]
    width: int | None  # output channels before scaling (None: unknown / not a map)
    scaled: int | None  # output channels at the chosen scale
    stride: int  # total downsampling of the output (input / output size)
    note: str = ""  # appended to the comment
    head: bool = False  # a detection head: its inputs are named p<level>


@dataclass
class Model:
    """File-wide facts the row mappings need."""

    nc: int | None
    reg_max: int
    scale: str | None
    depth: float
    width: float
    max_channels: int | None
    modern: bool  # holds a C3k2 (Ultralytics: Detect.legacy = False)

    def channels(self, count: int) -> int:
        capped = count if self.max_channels is None else min(count, self.max_channels)
        return make_divisible(capped * self.width, 8)


Mapping = Callable[[Row, list[Entry], Model], Entry]


def _arg(row: Row, position: int, default: Any) -> Any:
    return row.args[position] if len(row.args) > position else default


def _int(row: Row, position: int, what: str, default: Any = None) -> int:
    value = _arg(row, position, default)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or value < 1:
        raise Rejected(row.path + (3, position), f"{row.module}: {what} must be a positive whole number, got {value!r}")
    return value


def _flag(row: Row, position: int, what: str, default: bool) -> bool:
    value = _arg(row, position, default)
    if type(value) is not bool:
        raise Rejected(row.path + (3, position), f"{row.module}: {what} must be true or false, got {value!r}")
    return value


def _only(row: Row, count: int, meaning: str) -> None:
    """Reject arguments past the first ``count`` (their meaning has no netspec equivalent)."""
    if len(row.args) > count:
        raise Rejected(row.path + (3, count), f"{row.module} takes at most {count} argument(s) here ({meaning}); "
                                               f"netspec has no equivalent of {row.args[count:]!r}")


def _unchanged(row: Row, position: int, default: Any, what: str) -> None:
    """Accept an argument only at Ultralytics' default (``g`` groups, ``e`` expansion netspec's kind fixes)."""
    if len(row.args) > position and row.args[position] != default:
        raise Rejected(row.path + (3, position), f"{row.module}: {what} {row.args[position]!r} is not supported "
                                                  f"(netspec's kind fixes it at {default!r})")


def _one_input(row: Row, entries: list[Entry]) -> Entry | None:
    if not row.single:
        raise Rejected(row.path + (0,), f"{row.module} reads one input; `from` lists {len(row.sources)}")
    return entries[row.sources[0]] if row.sources[0] >= 0 else None


def _input_width(source: Entry | None, model: Model, channels: int) -> tuple[int | None, int | None]:
    return (channels, channels) if source is None else (source.width, source.scaled)


def _stride_of(source: Entry | None) -> int:
    return 1 if source is None else source.stride


def _block(kind: str, row: Row, source: Entry | None, model: Model, params: dict[str, Any]) -> Entry:
    out = params["out"]
    return Entry(kind, params, out, model.channels(out), _stride_of(source))


def conv(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``Conv(c1, c2, k=1, s=1, p=None, g=1, d=1, act=True)``: args ``[c2, k, s, p, g, d, act]``."""
    source = _one_input(row, entries)
    _only(row, 7, "out, kernel, stride, padding, groups, dilation, act")
    out, kernel, stride = _int(row, 0, "out"), _int(row, 1, "kernel", 1), _int(row, 2, "stride", 1)
    groups, dilation = _int(row, 4, "groups", 1), _int(row, 5, "dilation", 1)
    params: dict[str, Any] = {"out": out, "kernel": kernel}
    if stride != 1:
        params["stride"] = stride
    padding = _arg(row, 3, None)
    auto = (dilation * (kernel - 1) + 1) // 2  # Ultralytics' autopad
    if padding is None:
        padding = auto
    elif type(padding) is not int or padding < 0:
        raise Rejected(row.path + (3, 3), f"Conv: padding must be a whole number or None, got {padding!r}")
    if padding != (kernel - 1) // 2 * dilation:  # netspec's default padding
        params["padding"] = padding
    if groups != 1:
        params["groups"] = groups
    if dilation != 1:
        params["dilation"] = dilation
    act = _arg(row, 6, True)
    if act is False:
        params["act"] = "none"
    elif act is not True:
        raise Rejected(row.path + (3, 6), f"Conv: act must be true or false here, got {act!r}")
    entry = _block("conv", row, source, model, params)
    entry.stride *= stride
    return entry


def upsample(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``nn.Upsample(size=None, scale_factor, mode='nearest')``: args ``[None, 2, "nearest"]``."""
    source = _one_input(row, entries)
    _only(row, 3, "size, scale_factor, mode")
    if _arg(row, 0, None) is not None:
        raise Rejected(row.path + (3, 0), "nn.Upsample: a fixed `size` is not supported; give scale_factor")
    factor = _arg(row, 1, None)
    if type(factor) is float and factor.is_integer():
        factor = int(factor)
    if type(factor) is not int or factor < 1:
        raise Rejected(row.path + (3, 1), f"nn.Upsample: scale_factor must be a whole number, got {factor!r}")
    mode = _arg(row, 2, "nearest")
    if mode not in ("nearest", "bilinear"):
        raise Rejected(row.path + (3, 2), f"nn.Upsample: mode {mode!r} is not supported (nearest, bilinear)")
    params: dict[str, Any] = {"scale": factor}
    if mode != "nearest":
        params["mode"] = mode
    width, scaled = _input_width(source, model, 0)
    return Entry("upsample", params, width, scaled, max(1, _stride_of(source) // factor))


def concat(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``Concat(dimension=1)``: the channels of every input, in ``from`` order."""
    _only(row, 1, "dimension")
    if _arg(row, 0, 1) != 1:
        raise Rejected(row.path + (3, 0), f"Concat: only dimension 1 (channels) is supported, got {row.args[0]!r}")
    if row.single:
        raise Rejected(row.path + (0,), "Concat needs a list of inputs in `from`, e.g. [-1, 6]")
    inputs = [entries[j] if j >= 0 else None for j in row.sources]
    widths = [_input_width(x, model, 0) for x in inputs]
    width = None if any(w is None for w, _ in widths) else sum(w for w, _ in widths)  # type: ignore[misc]
    scaled = None if any(s is None for _, s in widths) else sum(s for _, s in widths)  # type: ignore[misc]
    return Entry("concat", {}, width, scaled, _stride_of(inputs[0]))


def sppf(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``SPPF(c1, c2, k=5)``: args ``[c2, k]`` (longer rows are YOLO26's unactivated SPPF)."""
    source = _one_input(row, entries)
    _only(row, 2, "out, kernel; a third argument makes YOLO26's SPPF, whose first conv has no activation")
    params = {"out": _int(row, 0, "out"), "kernel": _int(row, 1, "kernel", 5)}
    if params["kernel"] % 2 == 0:
        raise Rejected(row.path + (3, 1), f"SPPF: kernel must be odd, got {params['kernel']}")
    if params["kernel"] == 5:
        del params["kernel"]
    return _block("sppf", row, source, model, params)


def _csp(kind: str, shortcut: bool, row: Row, entries: list[Entry], model: Model) -> Entry:
    """A ``C2f``/``C3`` row, ``(c1, c2, n, shortcut, g=1, e=0.5)``: args ``[c2, shortcut]``, the shortcut's
    default being the module's (``shortcut`` here)."""
    source = _one_input(row, entries)
    _only(row, 4, "out, shortcut, groups, expansion")
    _unchanged(row, 2, 1, "groups")
    _unchanged(row, 3, 0.5, "expansion e")
    params: dict[str, Any] = {"out": _int(row, 0, "out"), "depth": row.repeats}
    if _flag(row, 1, "shortcut", shortcut) != shortcut:
        params["shortcut"] = not shortcut
    return _block(kind, row, source, model, params)


def c2f(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C2f(c1, c2, n, shortcut=False, g=1, e=0.5)``: args ``[c2, shortcut]``."""
    return _csp("c2f", False, row, entries, model)


def c3(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C3(c1, c2, n, shortcut=True, g=1, e=0.5)``: args ``[c2, shortcut]``."""
    return _csp("c3", True, row, entries, model)


def c2(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C2(c1, c2, n, shortcut=True, g=1, e=0.5)``: args ``[c2, shortcut]``."""
    return _csp("c2", True, row, entries, model)


def c3ghost(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C3Ghost(c1, c2, n, shortcut=True, g=1, e=0.5)``: args ``[c2, shortcut]``; its ghost bottlenecks are always
    residual (Ultralytics ignores ``shortcut``), so a ``False`` there means nothing and is left out."""
    source = _one_input(row, entries)
    _only(row, 4, "out, shortcut, groups, expansion")
    _flag(row, 1, "shortcut", True)
    _unchanged(row, 2, 1, "groups")
    _unchanged(row, 3, 0.5, "expansion e")
    return _block("c3ghost", row, source, model, {"out": _int(row, 0, "out"), "depth": row.repeats})


def ghostconv(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``GhostConv(c1, c2, k=1, s=1, g=1, act=True)``: args ``[c2, k, s, g, act]``."""
    source = _one_input(row, entries)
    _only(row, 5, "out, kernel, stride, groups, act")
    _unchanged(row, 3, 1, "groups")
    out, kernel, stride = _int(row, 0, "out"), _int(row, 1, "kernel", 1), _int(row, 2, "stride", 1)
    params: dict[str, Any] = {"out": out}
    if kernel != 1:
        params["kernel"] = kernel
    if stride != 1:
        params["stride"] = stride
    if not _flag(row, 4, "act", True):
        params["act"] = "none"
    entry = _block("ghostconv", row, source, model, params)
    entry.stride *= stride
    return entry


def c3k2(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C3k2(c1, c2, n, c3k=False, e=0.5, g=1, shortcut=True)``: args ``[c2, c3k, e]`` (c3k forced at m/l/x by
    the kind, from the spec's scale name)."""
    source = _one_input(row, entries)
    _only(row, 5, "out, c3k, e, groups, shortcut")
    _unchanged(row, 3, 1, "groups")
    params: dict[str, Any] = {"out": _int(row, 0, "out"), "depth": row.repeats}
    if _flag(row, 1, "c3k", False):  # at scales m, l, x the kind itself forces it, as parse_model
        params["c3k"] = True
    e = _arg(row, 2, 0.5)
    if type(e) not in (int, float) or not 0 < e <= 1:
        raise Rejected(row.path + (3, 2), f"C3k2: e must be a number in (0, 1], got {e!r}")
    if e != 0.5:
        params["e"] = float(e)
    if not _flag(row, 4, "shortcut", True):
        params["shortcut"] = False
    return _block("c3k2", row, source, model, params)


def c2psa(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``C2PSA(c1, c2, n, e=0.5)``: args ``[c2, e]``."""
    source = _one_input(row, entries)
    _only(row, 2, "out, e")
    params: dict[str, Any] = {"out": _int(row, 0, "out"), "depth": row.repeats}
    e = _arg(row, 1, 0.5)
    if type(e) not in (int, float) or not 0 < e <= 1:
        raise Rejected(row.path + (3, 1), f"C2PSA: e must be a number in (0, 1], got {e!r}")
    if e != 0.5:
        params["e"] = float(e)
    return _block("c2psa", row, source, model, params)


def _head_inputs(row: Row, entries: list[Entry]) -> list[Entry]:
    if row.single or any(j < 0 for j in row.sources):
        raise Rejected(row.path + (0,), f"{row.module} reads a list of feature maps in `from`, e.g. [15, 18, 21]")
    return [entries[j] for j in row.sources]


def _classes(row: Row, model: Model) -> int:
    return _int(row, 0, "the number of classes (nc)", model.nc)


def detect(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``Detect(nc, reg_max, end2end, ch)``: args ``[nc]``; ``reg_max`` from the file, ``legacy`` unless C3k2."""
    inputs = _head_inputs(row, entries)
    _only(row, 1, "nc")
    params: dict[str, Any] = {"classes": _classes(row, model)}
    if model.reg_max != 16:
        params["reg_max"] = model.reg_max
    if model.modern:
        params["legacy"] = False
    return Entry("detect", params, None, None, inputs[0].stride, head=True)


def segment(row: Row, entries: list[Entry], model: Model) -> Entry:
    """``Segment(nc, nm=32, npr=256, ...)``: args ``[nc, nm, npr]`` (``npr`` width-scaled, as a channel count)."""
    inputs = _head_inputs(row, entries)
    _only(row, 3, "nc, masks, protos")
    params: dict[str, Any] = {"classes": _classes(row, model)}
    masks, protos = _int(row, 1, "masks (nm)", 32), _int(row, 2, "protos (npr)", 256)
    if masks != 32:
        params["masks"] = masks
    if protos != 256:
        params["protos"] = protos
    if model.reg_max != 16:
        params["reg_max"] = model.reg_max
    if model.modern:
        params["legacy"] = False
    fields = KINDS["segment"].model_fields if "segment" in KINDS else {}
    missing = [name for name in ("reg_max", "legacy") if name in params and name not in fields]
    if fields and missing:
        raise Rejected(row.path + (2,), f"Segment: this model needs {', '.join(missing)} "
                                        f"({', '.join(f'{n}: {params[n]}' for n in missing)}), which netspec's segment "
                                        "kind does not take")
    return Entry("segment", params, None, None, inputs[0].stride, head=True)


def attention(kind: str, names: tuple[str, ...], default: dict[str, Any] | None = None) -> Mapping:
    """A users' attention module: optional leading channel arguments (the input's width), then ``names`` in order.

    ``default`` is written when the row leaves a param out and the usual implementation's default differs from
    netspec's (ECA's ``k_size=3`` against netspec's adaptive kernel).
    """

    def mapping(row: Row, entries: list[Entry], model: Model) -> Entry:
        source = _one_input(row, entries)
        width, scaled = _input_width(source, model, 3)
        args = list(row.args)
        position = 0
        while position < 2 and args and type(args[0]) is int and args[0] in (width, scaled):
            args.pop(0)  # CBAM(c1, kernel): c1 is the input's width, which netspec reads from the input
            position += 1
        if len(args) > len(names):
            shown = f"{width}" if width == scaled else f"{width} before scaling, {scaled} at this scale"
            raise Rejected(row.path + (3, position), f"{row.module}: unexpected argument(s) {args!r}: netspec's "
                           f"{kind} reads its channels from its input ({shown}; a leading channel argument must "
                           f"equal it), then takes {', '.join(names) or 'nothing'}")
        params = dict(default or {})
        for offset, (name, value) in enumerate(zip(names, args)):
            if type(value) is bool or type(value) not in (int, float):
                raise Rejected(row.path + (3, position + offset),
                               f"{row.module}: {name} must be a number, got {value!r}")
            params[name] = value
        return Entry(kind, params, width, scaled, _stride_of(source))

    mapping.__doc__ = f"-> ``{kind}``: args ``[channels?, {', '.join(names)}]``"
    return mapping


MODULES: dict[str, Mapping] = {
    "Conv": conv,
    "nn.Upsample": upsample,
    "Concat": concat,
    "SPPF": sppf,
    "C2f": c2f,
    "C3": c3,
    "C2": c2,
    "C3k2": c3k2,
    "GhostConv": ghostconv,
    "C3Ghost": c3ghost,
    "C2PSA": c2psa,
    "Detect": detect,
    "Segment": segment,
    "CBAM": attention("cbam", ("kernel",)),
    "SE": attention("se", ("reduction",)),
    "SEAttention": attention("se", ("reduction",)),
    "ECA": attention("eca", ("kernel",), {"kernel": 3}),
    "ECAAttention": attention("eca", ("kernel",), {"kernel": 3}),
    "CoordAtt": attention("coord", ("reduction",)),
    "CA": attention("coord", ("reduction",)),
    "SimAM": attention("simam", ("e_lambda",)),
}
"""Ultralytics module name (as written in the YAML) -> its mapping to a netspec kind."""

REPEATED = {"C2f", "C2", "C3", "C3Ghost", "C3k2", "C2PSA"}
"""Modules whose ``repeats`` is their depth (Ultralytics' ``repeat_modules`` among the mapped ones)."""
MODERN = {"C3k2"}
"""Modules whose presence makes Ultralytics' Detect non-legacy (depthwise class branch)."""


def looks_like_ultralytics(path: str) -> bool:
    """Whether ``path`` is a YAML file (the importer then says whether it is an Ultralytics model YAML)."""
    return os.path.splitext(path)[1].lower() in (".yaml", ".yml")


# --------------------------------------------------------------------------------------------------------- reading


def _fail(source: Source, path: Path, message: str, *, on_key: bool = False) -> SpecError:
    return SpecError([source.problem(path, message, on_key=on_key)])


def _literal(value: Any, nc: Any) -> Any:
    """A string argument as ``parse_model`` reads it: ``nc`` is the file's; else a Python literal, else itself."""
    if not isinstance(value, str):
        return value
    if value == "nc":
        return nc
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def _rows(source: Source, nc: Any) -> list[Row]:
    data = source.data
    rows: list[Row] = []
    for section in ("backbone", "head"):
        if section not in data:
            if section == "backbone":
                raise _fail(source, (), "not an Ultralytics model YAML: no `backbone:` list of [from, repeats, "
                                        "module, args] rows" + (" (this looks like a netspec spec already)"
                                                                  if "layers" in data else ""))
            continue
        items = data[section]
        if not isinstance(items, list):
            raise _fail(source, (section,), f"`{section}` must be a list of [from, repeats, module, args] rows")
        for position, item in enumerate(items):
            path: Path = (section, position)
            index = len(rows)
            if not isinstance(item, list) or len(item) != 4:
                raise _fail(source, path, f"layer {index}: a row is [from, repeats, module, args], got {item!r}")
            origin, repeats, module, args = item
            if not isinstance(module, str):
                raise _fail(source, path + (2,), f"layer {index}: the module must be a name, got {module!r}")
            if not isinstance(args, list):
                raise _fail(source, path + (3,), f"layer {index}: args must be a list, got {args!r}")
            if type(repeats) is not int or repeats < 1:
                raise _fail(source, path + (1,), f"layer {index}: repeats must be a positive whole number, "
                                                 f"got {repeats!r}")
            single = not isinstance(origin, list)
            indices = [origin] if single else origin
            if not indices:
                raise _fail(source, path + (0,), f"layer {index}: `from` lists no layer")
            sources = []
            for k, j in enumerate(indices):
                where = path + ((0,) if single else (0, k))
                if type(j) is not int:
                    raise _fail(source, where, f"layer {index}: `from` takes layer indices, got {j!r}")
                absolute = index + j if j < 0 else j
                if j == -1 and index == 0:
                    absolute = -1  # the network input
                elif j >= index:
                    raise _fail(source, where, f"layer {index}: `from` {j} refers to "
                                               f"{'this layer' if j == index else 'a later layer'}: a layer reads "
                                               f"earlier layers only (0 to {index - 1}, or -1 for the one before)")
                elif absolute < 0:
                    raise _fail(source, where, f"layer {index}: `from` {j} is out of range: there "
                                               f"{'is 1 layer' if index == 1 else f'are {index} layers'} before it")
                sources.append(absolute)
            rows.append(Row(index, path, sources, single, repeats, module, [_literal(a, nc) for a in args]))
    return rows


def _comment_of(line: str) -> str:
    """The ``# comment`` ending ``line`` (outside quotes), without the ``#``; empty if none."""
    quote = None
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1] in " \t"):
            return line[position + 1:].strip()
    return ""


def _attach_comments(text: str, source: Source, rows: list[Row]) -> list[str]:
    """Give each row its end-of-line comment and the full-line comments above it; return the file's header."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    row_lines = [source.value_marks[row.path].line for row in rows]
    keys = sorted(mark.line for path, mark in source.key_marks.items() if len(path) == 1)
    other_keys = sorted(mark.line for path, mark in source.key_marks.items()
                        if len(path) == 1 and path[0] not in ("backbone", "head"))
    first_key = keys[0] if keys else len(lines) + 1
    header: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip().startswith("#"):
            continue
        comment = line.strip()[1:].strip()
        if number < first_key:
            header.append(comment)
            continue
        following = next((k for k, row_line in enumerate(row_lines) if row_line > number), None)
        if following is None or UNINFORMATIVE.match(comment):
            continue
        if any(number < key < row_lines[following] for key in other_keys):
            continue  # about a key (nc, scales) between it and the next row
        rows[following].above.append(comment)
    for row, number in zip(rows, row_lines):
        row.comment = _comment_of(lines[number - 1]) if number <= len(lines) else ""
    while header and not header[-1]:
        header.pop()
    return header


def _number(source: Source, path: Path, value: Any, what: str, *, whole: bool = False) -> Any:
    ok = type(value) is int if whole else type(value) in (int, float) and math.isfinite(value)
    if not ok or value <= 0:
        raise _fail(source, path, f"{what} must be a positive {'whole ' if whole else ''}number, got {value!r}")
    return value


def _scale(source: Source, requested: str | None, file_name: str | None
           ) -> tuple[str | None, tuple[float, float, Any], str]:
    """The scale letter and its (depth, width, max_channels): ``requested``, else the file's ``scale:``, else the
    letter in the file name (``yolov8s.yaml``), else the table's first, as ``parse_model``."""
    data = source.data
    scales = data.get("scales")
    if scales is None:
        if requested is not None:
            raise _fail(source, (), f"--scale {requested}: this file has no `scales:` table")
        depth = _number(source, ("depth_multiple",), data.get("depth_multiple", 1.0), "depth_multiple")
        width = _number(source, ("width_multiple",), data.get("width_multiple", 1.0), "width_multiple")
        return None, (depth, width, None), ""
    if not isinstance(scales, dict) or not scales:
        raise _fail(source, ("scales",), "`scales` must map scale names to [depth, width, max_channels]")
    guessed = None
    if file_name:
        found = re.search(r"yolo(e-)?[v]?\d+([nslmx])", os.path.splitext(os.path.basename(file_name))[0])
        guessed = found.group(2) if found else None
    name = requested or data.get("scale") or guessed or next(iter(scales))
    reason = ("" if requested else "the file's `scale:`" if data.get("scale") else "the letter in the file name"
              if guessed else "the first of the table, as Ultralytics assumes")
    if name not in scales:
        where = ("scale",) if requested is None and data.get("scale") else ("scales",)
        raise _fail(source, where, f"no scale {name!r} in `scales` (it has {', '.join(map(str, scales))})",
                    on_key=where == ("scales",))
    for key, row in scales.items():
        if not isinstance(row, list) or len(row) != 3:
            raise _fail(source, ("scales", key), f"scale {key}: expected [depth, width, max_channels], got {row!r}")
        _number(source, ("scales", key, 0), row[0], "depth")
        _number(source, ("scales", key, 1), row[1], "width")
        _number(source, ("scales", key, 2), row[2], "max_channels", whole=True)
    depth, width, cap = scales[name]
    return str(name), (depth, width, cap), reason


def _scale_table(text: str, source: Source) -> list[str]:
    """The ``scales:`` rows as netspec writes them (``n: {depth: 0.33, width: 0.25, max_channels: 1024}``), each with
    its comment (after :func:`_scale` has checked every row)."""
    scales = source.data.get("scales")
    if not isinstance(scales, dict):
        return []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    table = []
    for name, (depth, width, cap) in scales.items():
        mark = source.key_marks.get(("scales", name))
        comment = _comment_of(lines[mark.line - 1]) if mark is not None else ""
        table.append(_comment_line(f"  {name}: {_flow({'depth': depth, 'width': width, 'max_channels': cap})}",
                                   comment))
    return table


def _flow(params: dict[str, Any]) -> str:
    return yaml.safe_dump(params, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _names(rows: list[Row], entries: list[Entry]) -> dict[int, str]:
    """Layer index -> name, for every layer read out of order (not only by the next row)."""
    read: set[int] = set()
    for row in rows:
        if not row.single or row.sources[0] != row.index - 1:
            read.update(j for j in row.sources if j >= 0)
    names: dict[int, str] = {}
    for row, entry in zip(rows, entries):
        if entry.head:
            for j in row.sources:
                level = entries[j].stride
                if level > 1 and level & (level - 1) == 0:
                    name = f"p{level.bit_length() - 1}"
                    if name not in names.values():
                        names[j] = name
    for j in sorted(read):
        names.setdefault(j, f"{entries[j].kind}_{j}")
    return names


COMMENT_COLUMN = 50


def _comment_line(body: str, comment: str) -> str:
    return f"{body}{' ' * max(COMMENT_COLUMN - len(body), 2)}# {comment}" if comment else body


def convert(text: str | bytes, *, name: str | None = None, scale: str | None = None, verify: bool = False) -> Imported:
    """Convert the Ultralytics model YAML ``text`` (file ``name``) at ``scale`` into a netspec spec; ``verify``:
    also prove it against Ultralytics' own model of the file (:func:`verify_with_ultralytics`)."""
    from netspec.compiler import analyse
    from netspec.spec import loads

    source = parse_yaml(text, name)
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", "replace")
    data = source.data
    if "layers" in data and "backbone" not in data:
        raise _fail(source, (), "this is a netspec spec already (it has `layers:`), not an Ultralytics model YAML")
    nc = data.get("nc")
    if nc is not None and (type(nc) is not int or nc < 1):
        raise _fail(source, ("nc",), f"nc must be a positive whole number, got {nc!r}")
    reg_max = data.get("reg_max", 16)
    if type(reg_max) is not int or reg_max < 1:
        raise _fail(source, ("reg_max",), f"reg_max must be a positive whole number, got {reg_max!r}")
    if data.get("end2end"):
        raise _fail(source, ("end2end",), "end2end (NMS-free) heads are not supported")
    act = data.get("activation")
    if act is not None and act not in ACTIVATIONS:
        raise _fail(source, ("activation",), f"activation {act!r} is not supported: use one of "
                                             f"{', '.join(ACTIVATIONS)}")
    channels = data.get("channels", data.get("ch", 3))
    if type(channels) is not int or channels < 1:
        raise _fail(source, ("channels",), f"channels must be a positive whole number, got {channels!r}")
    letter, (depth, width, cap), reason = _scale(source, scale, name)
    rows = _rows(source, nc)
    header = _attach_comments(text, source, rows)
    model = Model(nc, reg_max, letter, depth, width, cap, modern=any(row.module in MODERN for row in rows))

    entries: list[Entry] = []
    for row in rows:
        mapping = MODULES.get(row.module)
        if mapping is None:
            known = ", ".join(sorted(MODULES))
            raise _fail(source, row.path + (2,), f"layer {row.index}: unknown module {row.module!r}; netspec "
                                                 f"imports {known}")
        if row.repeats > 1 and row.module not in REPEATED:
            raise _fail(source, row.path + (1,), f"layer {row.index}: {row.module} cannot repeat (repeats "
                                                 f"{row.repeats}): only {', '.join(sorted(REPEATED))} take a depth")
        try:
            entries.append(mapping(row, entries, model))
        except Rejected as error:
            raise _fail(source, error.path, f"layer {row.index}: {error.message}") from None
        if entries[-1].kind not in KINDS:
            raise _fail(source, row.path + (2,), f"layer {row.index}: {row.module} maps to netspec's kind "
                                                 f"{entries[-1].kind!r}, which this installation does not have")
    names = _names(rows, entries)

    title = os.path.splitext(os.path.basename(name))[0] if name else None
    versioned = re.match(r"^(yolo(?:e-)?v?\d+)(.*)$", title or "")
    if title and letter and versioned and reason != "the letter in the file name":
        title = f"{versioned.group(1)}{letter}{versioned.group(2)}"  # yolov8-p2 at n: yolov8n-p2, as Ultralytics
    out = [f"# {line}" if line else "#" for line in header]
    origin = os.path.basename(name) if name else "an Ultralytics model YAML"
    out.append(f"# Imported by `netspec import` from {origin}: numbers in comments are Ultralytics' layer indices.")
    if title:
        out.append(yaml.safe_dump({"name": title}, default_flow_style=False, width=10_000).strip())
    out.append(f"input: {{channels: {channels}, size: {INPUT_SIZE}}}")
    act_name = ACTIVATIONS.get(act, "silu") if act else "silu"
    out.append(f"defaults: {DEFAULTS.replace('act: silu', f'act: {act_name}')}")
    table = _scale_table(text, source)
    if table:
        out.append(_comment_line("scales:", "Ultralytics' [depth, width, max_channels]; `scale:` picks a row"))
        out += table
        out.append(f"scale: {letter}")
    else:
        scale_params: dict[str, Any] = {"width": width, "depth": depth}
        if cap is not None:
            scale_params["max_channels"] = cap
        out.append(f"scale: {_flow(scale_params)}")
    out.append("layers:")
    for row, entry in zip(rows, entries):
        for comment in row.above:
            out.append(f"  # {comment}" if comment else "  #")
        body = f"  - {entry.kind}: {_flow(entry.params)}"
        comment = row.comment
        if not re.match(rf"^{row.index}\b", comment):
            comment = f"{row.index}" + (f": {comment}" if comment else "")
        if entry.note:
            comment += f" ({entry.note})"
        out.append(_comment_line(body, comment))
        if row.index in names:
            out.append(f"    name: {names[row.index]}")
        reads_previous = row.single and row.sources[0] == row.index - 1
        if not reads_previous:
            wired = ["input" if j < 0 else names[j] for j in row.sources]
            out.append(f"    from: {wired[0] if row.single else '[' + ', '.join(wired) + ']'}")
    spec_text = "\n".join(out) + "\n"
    notes = []
    if reason:
        notes.append(f"scale {letter} ({reason}; --scale picks another of {', '.join(map(str, data['scales']))})")
    try:
        spec = loads(spec_text)
        analyse(spec)  # shapes: a channel or size mismatch is found here, at its row
    except SpecError as error:
        raise SpecError(_back_to_rows(error, source, rows)) from None
    if verify:
        notes.append(verify_with_ultralytics(spec, data, letter, channels, name))
    return Imported(spec, spec_text, tuple(notes))


VERIFY_SIZE = 256
"""Side of the input ``verify_with_ultralytics`` compares on (Ultralytics' own stride probe size: any P3-P6 model)."""


def verify_with_ultralytics(spec: "Spec", data: dict[str, Any], scale: str | None, channels: int,  # noqa: F821
                            name: str | None) -> str:
    """Prove ``spec`` computes Ultralytics' model of ``data`` (the parsed YAML), when ``ultralytics`` is installed:
    its ``DetectionModel`` is built with random weights (random BN statistics too), they are loaded into netspec's
    model with ``netspec.load_weights(strict=True)`` (every tensor, by architecture order), and the outputs are
    compared in training and eval mode on a 256 x 256 input. Returns a one-line report; raises
    :class:`~netspec.SpecError` when the package is missing, cannot build the file, or the two differ."""
    import copy

    def fail(message: str) -> SpecError:
        return SpecError([Problem((), message, name)])

    try:
        import torch
        import ultralytics
        from ultralytics.nn.tasks import DetectionModel
    except ImportError as error:
        raise fail(f"verifying builds Ultralytics' own model of the file: install the ultralytics package ({error})")

    cfg = copy.deepcopy(data)
    cfg.setdefault("nc", 80)
    if scale is not None:
        cfg["scale"] = scale
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            theirs = DetectionModel(cfg, ch=channels, verbose=False)
    except Exception as error:  # a module Ultralytics does not know (a user's CBAM), a bad argument
        reason = (str(error).strip().splitlines() or [""])[0]
        raise fail(f"Ultralytics {ultralytics.__version__} could not build this file to verify against: "
                   f"{type(error).__name__}: {reason}") from None
    generator = torch.Generator().manual_seed(1)
    for module in theirs.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    ours = build(spec, seed=0)
    params = sum(p.numel() for p in ours.parameters())
    expected_params = sum(p.numel() for p in theirs.parameters())
    if params != expected_params:
        raise fail(f"verification failed: {params:,} parameters, Ultralytics' model has {expected_params:,}")
    load_weights(ours, theirs.state_dict(), strict=True)  # WeightsError (a SpecError) lists what differs
    x = torch.randn(2, channels, VERIFY_SIZE, VERIFY_SIZE, generator=generator)
    worst = 0.0
    for mode in ("train", "eval"):
        theirs.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            expected, got = theirs(x), ours(x)
        if mode == "eval" and isinstance(expected, tuple) and len(expected) == 2 and isinstance(expected[1], dict):
            expected = expected[0]  # Ultralytics' eval output is (decoded, training dict); netspec's the decoded
        pairs = list(zip(_tensors(got), _tensors(expected)))
        if len(pairs) != len(_tensors(expected)) or len(pairs) != len(_tensors(got)):
            raise fail(f"verification failed in {mode} mode: {len(_tensors(got))} output tensors, Ultralytics "
                       f"returns {len(_tensors(expected))}")
        for ours_out, their_out in pairs:
            scale_of = max(1.0, their_out.abs().max().item())
            if ours_out.shape != their_out.shape or not torch.allclose(ours_out, their_out, rtol=1e-4,
                                                                       atol=1e-4 * scale_of):
                raise fail(f"verification failed in {mode} mode: an output of shape {tuple(ours_out.shape)} differs "
                           f"from Ultralytics' {tuple(their_out.shape)}")
            worst = max(worst, (ours_out - their_out).abs().max().item() / scale_of)
    return (f"verified against Ultralytics {ultralytics.__version__}: {params:,} parameters, every tensor loaded in "
            f"architecture order, equal training and eval outputs (largest difference {worst:.1e} of the largest "
            "output)")


def _tensors(result: object) -> list[Any]:
    if isinstance(result, dict):
        return [t for key in sorted(result) for t in _tensors(result[key])]
    if isinstance(result, (list, tuple)):
        return [t for value in result for t in _tensors(value)]
    return [result]


def _back_to_rows(error: SpecError, source: Source, rows: list[Row]) -> list[Problem]:
    """netspec's problems with the converted spec, located at the Ultralytics rows they come from."""
    problems = []
    for problem in error.problems:
        path = problem.path
        if len(path) >= 2 and path[0] == "layers" and isinstance(path[1], int) and path[1] < len(rows):
            row = rows[path[1]]
            located = source.problem(row.path, f"layer {row.index} ({row.module}): {problem.message}")
            problems.append(located)
        else:
            problems.append(source.problem((), problem.message))
    return problems


def import_file(path: str, *, scale: str | None = None, verify: bool = False) -> Imported:
    """Read the Ultralytics model YAML at ``path`` and convert it (:func:`convert`)."""
    name = os.fspath(path)
    raw = read_limited(name, "file")  # as netspec.load reads a spec
    return convert(raw, name=name, scale=scale, verify=verify)


def from_ultralytics(path_or_text: str | os.PathLike[str], scale: str | None = None) -> "Spec":  # noqa: F821
    """The netspec :class:`~netspec.Spec` of an Ultralytics model YAML, given as a file path or as YAML text.

    ``scale`` picks a row of the file's ``scales`` (default as Ultralytics: the ``scale`` key, the letter in the
    file name, else the first row). Raises :class:`~netspec.SpecError` located in the file.
    """
    text = os.fspath(path_or_text)
    if isinstance(path_or_text, os.PathLike) or "\n" not in text and (
        os.path.exists(text) or text.lower().endswith((".yaml", ".yml"))
    ):
        return import_file(text, scale=scale).spec
    return convert(text, scale=scale).spec
