"""The network summary: one row per layer (name, kind, output shape, parameters, MACs) and totals."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
            table.append((row.name, row.kind, str(row.info.shape), f"{row.info.params:,}", format_count(row.info.macs)))
        widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]

        def render(line: tuple[str, ...]) -> str:
            cells = [line[i].ljust(widths[i]) if i < 3 else line[i].rjust(widths[i]) for i in range(len(line))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(render(header))
        lines = [f"{self.name or 'network'}", render(header), rule, *map(render, table), rule]
        lines.append(f"total params: {self.params:,}")
        lines.append(f"total MACs:   {format_count(self.macs)} per sample")
        lines.append(f"output:       {self.output}")
        lines.append(f"({MACS_CONVENTION}; '?' where input.size is not given)")
        return "\n".join(lines)


def format_count(count: int | None) -> str:
    """``4.10G``, ``118.01M``, ``5.12K``, ``42``; ``?`` when unknown."""
    if count is None:
        return "?"
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(count)


def summarize(spec: Spec, budget: Budget = NO_LIMITS) -> Summary:
    """Static summary of ``spec`` (no torch modules are built); raises ``SpecError`` if it is invalid or over ``budget``."""
    with gc_paused():  # as in netspec.loads: no cycles among the rows, and a long spec stays linear
        return Summary(spec.name, input_shape(spec), analyse(spec, budget))
