"""The network summary: one row per layer (name, kind, output shape, parameters, MACs) and totals."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from netspec.errors import printable
from netspec.compiler import NO_LIMITS, Budget, Row, analyse, input_shape
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

    @property
    def params(self) -> int:
        return sum(row.info.params for row in self.rows)

    @property
    def macs(self) -> int | None:
        return add_macs(*(row.info.macs for row in self.rows))

    @property
    def output(self) -> Shape:
        return self.rows[-1].info.shape if self.rows else self.input

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input": list(self.input.dims()),
            "layers": [
                {
                    "name": row.name,
                    "kind": row.kind,
                    "output": list(row.info.shape.dims()),
                    "params": row.info.params,
                    "macs": row.info.macs,
                }
                for row in self.rows
            ],
            "output": list(self.output.dims()),
            "params": self.params,
            "macs": self.macs,
            "convention": MACS_CONVENTION,
        }

    def __str__(self) -> str:
        header = ("layer", "kind", "output", "params", "MACs")
        table = [("input", "", str(self.input), "", "")]
        for row in self.rows:
            table.append((row.name, row.kind, str(row.info.shape), format_int(row.info.params), format_count(row.info.macs)))
        widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

        def render(line: tuple[str, ...]) -> str:
            cells = [line[i].ljust(widths[i]) if i < 3 else line[i].rjust(widths[i]) for i in range(len(line))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(render(header))
        lines = [printable(self.name or "network"), render(header), rule, *map(render, table), rule]
        lines.append(f"total params: {format_int(self.params)}")
        lines.append(f"total MACs:   {format_count(self.macs)} per sample")
        lines.append(f"output:       {self.output}")
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
        return Summary(spec.name, input_shape(spec), analyse(spec, budget))
