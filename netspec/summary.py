"""The network summary: one row per layer (name, kind, output shape, parameters, MACs) and totals."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netspec.compiler import INPUT, NO_LIMITS, Budget, Row, infer_network, input_shape, warn_unused
from netspec.errors import printable
from netspec.shapes import Shape, add_macs
from netspec.source import gc_paused
from netspec.spec import Spec

MACS_CONVENTION = (
    "MACs per sample: multiply-accumulates of conv, linear and attention matmuls, plus elementwise gating "
    "multiplies (x * gate); norms, activations, softmax, pooling and additions are not counted"
)


@dataclass(frozen=True)
class Summary:
    """Static summary of a spec; ``str()`` gives the table ``netspec build`` prints."""

    name: str | None
    input: Shape
    rows: list[Row]
    outputs: tuple[str, ...] = ()
    """The entries the model returns (default: the last)."""
    graph: bool = False
    """Whether the spec is a graph (its model a ``torch.fx.GraphModule``): the table then shows each entry's inputs."""
    scale: str | None = None
    """The scale applied (``n (depth 0.33, width 0.25, max_channels 1024)``), ``None`` when unscaled."""
    notes: tuple[str, ...] = ()
    """What a kind's own scale rule changed (c3k2's C3k blocks at Ultralytics' m/l/x scales)."""

    @property
    def params(self) -> int:
        return sum(row.info.params for row in self.rows)

    @property
    def macs(self) -> int | None:
        return add_macs(*(row.info.macs for row in self.rows))

    @property
    def output(self) -> Shape:
        """The shape of the (first) output."""
        return self.output_shapes[0][1] if self.rows else self.input

    @property
    def output_shapes(self) -> list[tuple[str, Shape]]:
        """``(name, shape)`` of every output, in the order the model returns them."""
        shapes = {INPUT: self.input, **{row.name: row.info.shape for row in self.rows}}
        names = self.outputs or ((self.rows[-1].name,) if self.rows else (INPUT,))
        return [(name, shapes[name]) for name in names]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": list(self.input.dims()),
            "layers": [
                {
                    "name": row.name,
                    "kind": row.kind,
                    "inputs": list(row.inputs),
                    "output": list(row.info.shape.dims()),
                    "params": row.info.params,
                    "macs": row.info.macs,
                }
                for row in self.rows
            ],
            "output": list(self.output.dims()),
            "outputs": [{"name": name, "shape": list(shape.dims())} for name, shape in self.output_shapes],
            "params": self.params,
            "macs": self.macs,
            "scale": self.scale,
            "notes": list(self.notes),
            "convention": MACS_CONVENTION,
        }

    def __str__(self) -> str:
        header: tuple[str, ...] = ("layer", "kind", "output", "params", "MACs")
        table = [("input", "", str(self.input), "", "")]
        for row in self.rows:
            table.append((row.name, row.kind, str(row.info.shape), format_int(row.info.params), format_count(row.info.macs)))
        if self.graph:  # a column of what each entry reads
            header = (*header[:2], "from", *header[2:])
            table = [(line[0], line[1], sources, *line[2:])
                     for line, sources in zip(table, ["", *(", ".join(row.inputs) for row in self.rows)])]
        left = len(header) - 2  # name, kind, (from,) output: left-aligned; params, MACs: right-aligned
        widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

        def render(line: tuple[str, ...]) -> str:
            cells = [line[i].ljust(widths[i]) if i < left else line[i].rjust(widths[i]) for i in range(len(line))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(render(header))
        lines = [printable(self.name or "network"), render(header), rule, *map(render, table), rule]
        lines.append(f"total params: {format_int(self.params)}")
        lines.append(f"total MACs:   {format_count(self.macs)} per sample")
        if len(self.output_shapes) == 1:
            lines.append(f"output:       {self.output}")
        else:
            lines.append("outputs:      " + ", ".join(f"{name} {shape}" for name, shape in self.output_shapes))
        if self.scale is not None:
            lines.append(f"scale:        {self.scale}")
        lines += [f"              {note}" for note in self.notes]
        lines.append(f"({MACS_CONVENTION}; '?' where input.size is not given)")
        return "\n".join(lines)


def format_count(count: int | None) -> str:
    """``4.10G``, ``118.01M``, ``5.12K``, ``42``; ``?`` when unknown; ``1.23e+21`` past 10**18 (any size)."""
    if count is None:
        return "?"
    if count >= 10**18:
        return format_int(count)
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(count)


def format_int(count: int) -> str:
    """``12,345``; past 10**18, ``1.23e+21``, computed from the top bits so that no count is too large for it
    (``str()`` refuses past 4,300 digits, ``float()`` past 10**308)."""
    if abs(count) < 10**18:
        return f"{count:,}"
    shift = max(abs(count).bit_length() - 64, 0)
    exponent = math.log10(abs(count) >> shift) + shift * math.log10(2)
    whole = math.floor(exponent)
    mantissa = 10 ** (exponent - whole)
    if round(mantissa, 2) >= 10:
        mantissa, whole = mantissa / 10, whole + 1
    return f"{'-' if count < 0 else ''}{mantissa:.2f}e+{whole}"


def summarize(spec: Spec, budget: Budget = NO_LIMITS) -> Summary:
    """Static summary of ``spec`` (no torch modules are built); raises ``SpecError`` if it is invalid or over ``budget``."""
    with gc_paused():  # as in netspec.loads: no cycles among the rows, and a long spec stays linear
        network = infer_network(spec, budget)
        warn_unused(spec, network)
        scale = spec.resolved_scale
        notes = () if scale is None else tuple(dict.fromkeys(
            note for note in (type(layer).scale_note(scale) for layer in spec.scaled_layers()) if note))
        return Summary(spec.name, input_shape(spec), network.rows, network.outputs, network.graph,
                       None if scale is None else scale.describe(), notes)
