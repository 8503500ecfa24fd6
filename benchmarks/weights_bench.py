"""Issue 23's ``weights`` target: ``netspec.load_weights`` against ``model.load_state_dict``, both in one run.

Four cases at about 500, 1,000 and 5,000 modules (units: the modules that hold tensors), on a 4-stage network
of basic blocks (4 units a block): the source has the *same* architecture; the model has one *extra block* in
the middle (stage 2); the model adds *attention* (SE) to every block; the source is *width-doubled* (every
shape differs, nothing is copied). The baseline is ``model.load_state_dict`` of a state dict with the model's
own names (what loading by name costs when the names agree). Targets: ``load_weights`` <= 2x the baseline in
every case at 5,000 units, and its time grows linearly: the slope of log(time) against log(units) from 1,000
to 5,000 units <= 1.1. Times are the process's CPU time (``time.process_time``), medians of interleaved repeats:
on a shared machine wall time mostly measures the other jobs (the wall-time medians are printed beside them).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

SIZES = (500, 1_000, 5_000)
WIDTHS = (8, 16, 24, 32)
CASES = ("same", "extra block", "attention", "width-doubled")


def spec_text(units: int, *, extra: int = 0, attention: str | None = None, scale: int = 1) -> str:
    depth = max(1, units // 16)
    stages = []
    for index, width in enumerate(WIDTHS):
        options = f"block: basic, out: {width * scale}, depth: {depth + (extra if index == 1 else 0)}"
        options += ", stride: 2" if index else ""
        options += f", attention: {attention}" if attention else ""
        stages.append(f"  - stage: {{{options}}}\n")
    return (f"input: {{channels: 3, size: 32}}\nlayers:\n  - conv: {{out: {8 * scale}, kernel: 3}}\n"
            + "".join(stages) + "  - avgpool\n  - linear: {out: 10}\n")


def pair(case: str, units: int) -> tuple[Any, dict[str, Any]]:
    """(model, source state dict) of one case."""
    import netspec

    source = netspec.build(netspec.loads(spec_text(units, scale=2 if case == "width-doubled" else 1)), seed=1)
    model = netspec.build(netspec.loads(spec_text(units, extra=1 if case == "extra block" else 0,
                                                  attention="{se: {reduction: 4}}" if case == "attention" else None)), seed=2)
    return model, source.state_dict()


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[list[float], list[float]]]:
    """(CPU seconds, wall seconds) of one call each, ``repeats`` times, the functions alternating (order rotating)."""
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    names = list(fns)
    for name in names:  # warm-up
        fns[name]()
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            cpu, wall = time.process_time(), time.perf_counter()
            fns[name]()
            samples[name][0].append(time.process_time() - cpu)
            samples[name][1].append(time.perf_counter() - wall)
    return samples


def bench_weights(args: Any, section_type: type, paired: Callable[[list[float], list[float]], float], median: Callable[[list[float]], float],
                  ms: Callable[[float], str]) -> Any:
    import netspec
    from netspec.weights import model_units, units_of

    section = section_type("weights", "7. load_weights against load_state_dict: four cases, linear growth")
    section.add(f"## {section.title}")
    section.add()
    section.add(__doc__.split("\n", 1)[1].strip().replace("\n", " "))
    section.add()
    sizes = SIZES[:2] if args.quick else SIZES
    repeats = 3 if args.quick else 9
    rows, times = [], {}
    for case in CASES:
        for units in sizes:
            model, source = pair(case, units)
            own = {key: tensor.clone() for key, tensor in model.state_dict().items()}
            report = netspec.load_weights(model, source, dry_run=True)
            counts = f"{len(model_units(model)):,} x {len(units_of(source)):,}"
            samples = timed({"load_weights": lambda: netspec.load_weights(model, source),
                             "load_state_dict": lambda: model.load_state_dict(own)}, repeats)
            (ours, ours_wall), (theirs, theirs_wall) = samples["load_weights"], samples["load_state_dict"]
            times[case, units] = (median(ours), median(theirs))
            ratio = paired(ours, theirs)
            rows.append([case, f"{units:,}", counts, f"{len(report.matched):,} / {len(report.new):,} / "
                         f"{len(report.unused):,} / {len(report.mismatched):,}", ms(median(theirs)), ms(median(ours)),
                         f"{ratio:.2f}", f"{ms(median(theirs_wall))} / {ms(median(ours_wall))}"])
            if units == sizes[-1]:
                section.verdict(f"load_weights <= 2x load_state_dict, {case}, {units:,} units", ratio <= 2.0,
                                f"{ratio:.2f}")
            del model, source, own
    section.add("Median CPU ms of interleaved repeats; ratio: the median of per-repeat ratios (load_weights / "
                "load_state_dict). `units`: modules with tensors, model x source; `report`: matched / new / "
                "unused / mismatched; `wall`: median wall ms, load_state_dict / load_weights.")
    section.add()
    section.table(["case", "size", "units", "report", "load_state_dict ms", "load_weights ms", "ratio", "wall ms"],
                  rows)
    low, high = sizes[-2], sizes[-1]
    slopes = []
    for case in CASES:
        ours = math.log(times[case, high][0] / times[case, low][0]) / math.log(high / low)
        theirs = math.log(times[case, high][1] / times[case, low][1]) / math.log(high / low)
        slopes.append([case, f"{ours:.2f}", f"{theirs:.2f}"])
        section.verdict(f"load_weights time slope {low:,} -> {high:,} units <= 1.1, {case}", ours <= 1.1, f"{ours:.2f}")
    section.add(f"Growth from {low:,} to {high:,} units: the slope of log(CPU time) against log(units) (1.0: linear; "
                "torch's load_state_dict filters the whole state dict once per child module, so it grows faster).")
    section.add()
    section.table(["case", "load_weights slope", "load_state_dict slope"], slopes)
    return section
