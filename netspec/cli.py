"""``netspec`` command line: build, check, schema, blocks, graph, bench, import.

Exit 0 ok, 1 invalid/unreadable spec, 2 usage."""
from __future__ import annotations

import argparse
import json
import os
import math
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Sequence

from netspec.errors import SpecError, printable
from netspec.files import same_file, write_atomic  # noqa: F401  (write_atomic re-exported: it used to live here)
from netspec.messages import one_line
from netspec.spec import Spec

if TYPE_CHECKING:
    from netspec.summary import Summary


def _errors(error: SpecError) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return 1


def cmd_build(args: argparse.Namespace) -> int:
    import netspec
    from netspec.weights import looks_like_checkpoint, read_checkpoint

    if args.state_dict and not (args.output or "").lower().endswith(".pt"):
        print("netspec build: --state-dict needs -o OUT.pt", file=sys.stderr)
        return 2
    if args.output and same_file(args.output, args.spec):
        return _overwrites_spec(args)
    for role, path in [("the --weights file", args.weights)] + [("a --plugin file", plugin) for plugin in args.plugin]:
        if args.output and path and same_file(args.output, path):  # -o never replaces an input
            print(f"{printable(args.output)}: this is {role}; choose another output file", file=sys.stderr)
            return 1
    checkpoint = None
    try:
        if looks_like_checkpoint(args.spec):  # `netspec build net.pt`: what netspec.save wrote
            checkpoint = read_checkpoint(args.spec)
            spec = checkpoint.spec()
        else:
            spec = netspec.load(args.spec)
        spec = _rescaled(spec, args)
        summary = netspec.check(spec, **_budget(args))
    except SpecError as error:
        return _errors(error)
    report = None
    if args.output or args.weights or checkpoint is not None:  # a checkpoint's weights are checked as they load
        from netspec.weights import load_state

        try:
            model = netspec.build(spec, seed=args.seed, **_budget(args))
            if checkpoint is not None:
                load_state(model, checkpoint.state_dict, checkpoint.path, file=checkpoint.path, strict=True)
            if args.weights:
                report = netspec.load_weights(model, args.weights, strict=args.strict)
        except SpecError as error:  # WeightsError too: one line per problem
            return _errors(error)
    if args.output:
        from netspec.export import ExportError, save

        try:
            save(spec, args.output, model=model, state_dict_only=args.state_dict)
        except ExportError as error:
            print(printable(f"{args.output}: {error}"), file=sys.stderr)
            return 1
        except OSError:
            raise  # unwritable path: reported by main() as `netspec: ...`
        except Exception as error:  # an exporter failure: one line, not a traceback
            reason = (str(error).strip().splitlines() or [""])[0]
            print(printable(f"{args.output}: export failed: {type(error).__name__}: {reason}"), file=sys.stderr)
            return 1
    if args.json:
        data = summary.to_dict()
        if checkpoint is not None:
            data["checkpoint"] = checkpoint.describe()
        if report is not None:
            data["weights"] = report.to_dict()
        print(json.dumps(data, indent=2))
    else:
        if checkpoint is not None:
            print(checkpoint.describe())
        print(summary)
        if report is not None:
            print(report)
        if args.output:
            print(f"wrote {printable(args.output)}")
    return 0


def _overwrites_spec(args: argparse.Namespace) -> int:
    print(f"{printable(args.output)}: this is the spec itself; choose another output file", file=sys.stderr)
    return 1


def cmd_check(args: argparse.Namespace) -> int:
    import netspec
    from netspec.summary import format_int

    status = 0
    for path in args.specs:
        try:
            summary = netspec.check(_rescaled(netspec.load(path), args), **_budget(args))
        except SpecError as error:
            status = _errors(error)
            continue
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # a bug (netspec's or a plugin's) on one file: say so, check the others
            print(f"{printable(path)}: netspec failed on this file: {_one_line(error)} (please report it)",
                  file=sys.stderr)
            status = 1
            continue
        shapes = summary.output_shapes
        returned = (f"output {summary.output}" if len(shapes) == 1 else
                    "outputs " + ", ".join(f"{name} {shape}" for name, shape in shapes))
        print(f"{printable(path)}: ok ({len(summary.rows)} layers, {returned}, {format_int(summary.params)} params)")
    return status


def _one_line(error: BaseException) -> str:
    return printable(one_line(error))


def _rescaled(spec: Spec, args: argparse.Namespace) -> Spec:
    """``spec`` at ``--scale NAME`` (a row of its ``scales:``), then with ``--width``/``--depth`` overriding it."""
    if getattr(args, "scale", None) is not None:
        spec = spec.at_scale(args.scale)
    if args.width is None and args.depth is None:
        return spec
    return spec.with_scale(width=args.width, depth=args.depth)


def _budget(args: argparse.Namespace) -> dict[str, int | None]:
    return {"max_params": args.max_params, "max_activations": args.max_activations}


def _limit(text: str) -> int | None:
    """A count limit: an integer (``2000000000``, ``2e9``, ``2_000_000_000``) or ``none``."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text.replace("_", "")) if any(c in text for c in ".eE") else int(text.replace("_", ""))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"must be a positive whole number (e.g. 2e9) or 'none', got {text!r}")
    return int(value)


def _budget_options(command: argparse.ArgumentParser) -> None:
    from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS

    command.add_argument("--max-params", type=_limit, default=DEFAULT_MAX_PARAMS, metavar="N",
                         help=f"reject a spec with more than N parameters before building (default {DEFAULT_MAX_PARAMS:,}; "
                              "'none': no limit)")
    command.add_argument("--max-activations", type=_limit, default=DEFAULT_MAX_ACTIVATIONS, metavar="N",
                         help="reject a spec where a layer outputs more than N values per sample "
                              f"(default 2**31-1 = {DEFAULT_MAX_ACTIVATIONS:,}; 'none': no limit)")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2**64-1, got {text!r}")
    return value


def _multiplier(text: str) -> float:
    from netspec.scaling import MAX_MULTIPLIER

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_MULTIPLIER):
        raise argparse.ArgumentTypeError(f"must be a positive number up to {MAX_MULTIPLIER:g}, got {text!r}")
    return value


def cmd_schema(args: argparse.Namespace) -> int:
    from netspec.registry import builtin_kinds
    from netspec.schema import schema_text

    print(schema_text(builtin_kinds() if args.builtin else None), end="")
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    from netspec.registry import KINDS
    from netspec.schema import param_description

    for kind, cls in sorted(KINDS.items()):
        print(f"{kind}: {cls.describe()}")
        if cls.paper:
            print(f"  paper: {cls.paper}")
        for name, info in cls.param_fields().items():
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            description = param_description(cls, name)
            print(f"  {name}: {default}" + (f" - {description}" if description else ""))
    from netspec.blocks import BLOCKS, block_names

    print("stage blocks (`stage: {block: NAME}`), each reading out, depth, stride, norm, act and its own params:")
    for name in block_names():
        block = BLOCKS[name]
        options = ", ".join(block.param_names()) or "none"
        print(f"  {name}: {block.describe()}" + (f" ({block.paper})" if block.paper else "") + f"; params: {options}")
        for param, info in (block.Params.model_fields.items() if block.Params is not None else ()):
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            description = param_description(block.Params, param)
            print(f"    {param}: {default}" + (f" - {description}" if description else "") + f" ({name} only)")
    print("an entry `repeat: NAME` (with name and from) instantiates the sub-graph `define: {NAME: {inputs, layers, "
          "outputs}}`, its entries named <instance>_<entry>; see docs/how-to/write-a-graph.md (define and repeat)")
    print("every entry also takes, beside its kind: name (a name others refer to) and from (what it reads: an "
          "earlier entry, `input`, or a list for merges); see docs/how-to/write-a-graph.md")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import netspec
    from netspec.drawing import GraphError, to_dot, write

    if args.output is not None and same_file(args.output, args.spec):
        return _overwrites_spec(args)
    try:
        summary = netspec.summary(_rescaled(netspec.load(args.spec), args))
    except SpecError as error:
        return _errors(error)
    if args.output is None:
        print(to_dot(summary), end="")
        return 0
    try:
        write(summary, args.output)
    except GraphError as error:
        print(printable(f"{args.output}: {error}"), file=sys.stderr)
        return 1
    print(f"wrote {printable(args.output)}")
    return 0


BENCH_MAX_BATCH, BENCH_MAX_STEPS, BENCH_MAX_WARMUP, BENCH_MAX_SIZE = 65_536, 100_000, 10_000, 16_384
"""Bounds of `netspec bench`'s counts (here, not in netspec.bench: building the parser must not import torch)."""


def cmd_bench(args: argparse.Namespace) -> int:
    import netspec

    try:
        spec = _rescaled(netspec.load(args.spec), args)
    except SpecError as error:
        return _errors(error)
    size = args.size or spec.input.size
    if size is None:
        print(f"netspec bench: {args.spec} sets no input.size: give --size H or --size H,W", file=sys.stderr)
        return 2
    if tuple(size) != spec.input.size:
        spec = spec.model_copy(update={"input": spec.input.model_copy(update={"size": tuple(size)})})
    try:
        summary = netspec.check(spec, **_budget(args))
    except SpecError as error:
        return _errors(error)
    batched = _batch_over_budget(summary, args.batch, args.max_activations)
    if batched:
        print(printable(f"netspec bench: {args.spec}: {batched}"), file=sys.stderr)
        return 1

    import torch

    from netspec.bench import BenchError, Report, Settings, loss_classes, resolve_device, run

    modes = ("infer", "train") if args.mode == "both" else (args.mode,)
    settings = Settings(modes=modes, batch=args.batch, size=(size[0], size[1]), device=args.device, amp=args.amp,
                        channels_last=args.channels_last, compile=args.compile, steps=args.steps,
                        warmup=args.warmup, progress=not args.json)
    classes = loss_classes(summary.output.dims())
    try:
        device = resolve_device(args.device, args.amp)
        model = netspec.build(spec, **_budget(args)).to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        results = run(model, settings, channels=spec.input.channels, classes=classes)
    except BenchError as error:
        print(f"netspec bench: {error}", file=sys.stderr)
        return 1
    report = Report(
        spec=args.spec, name=spec.name, params=summary.params, input=(args.batch, spec.input.channels, *size),
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        threads=torch.get_num_threads(), precision=f"{args.amp} autocast" if args.amp else "float32",
        channels_last=args.channels_last, compile=args.compile, steps=args.steps, warmup=args.warmup,
        torch=torch.__version__, results=results,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``netspec import SOURCE``: an Ultralytics YAML, ``timm:NAME`` or ``torchvision:NAME`` as a spec (stdout or -o)."""
    from netspec.files import write_bytes_atomic
    from netspec.importers import import_source

    for output in (args.output, args.weights_out):
        if output is not None and os.path.exists(args.source) and same_file(output, args.source):
            print(f"{printable(output)}: this is the file being imported; choose another output file", file=sys.stderr)
            return 1
    if args.verify and args.no_verify:
        print("netspec import: give --verify or --no-verify, not both", file=sys.stderr)
        return 2
    options: dict[str, object] = {}
    if args.scale is not None:
        options["scale"] = args.scale
    if args.verify or args.no_verify:
        options["verify"] = bool(args.verify)
    if args.size is not None:
        options["input_size"] = args.size
    if args.args is not None:
        try:
            options["args"] = json.loads(args.args)
        except json.JSONDecodeError as error:
            print(f"netspec import: --args is not JSON: {error}", file=sys.stderr)
            return 2
        if not isinstance(options["args"], dict):
            print("netspec import: --args must be a JSON object of keyword arguments", file=sys.stderr)
            return 2
    try:
        imported = import_source(args.source, **options)
    except SpecError as error:
        return _errors(error)
    if args.weights_out is not None:
        if imported.source_model is None:
            print("netspec import: --weights-out needs a model source (timm:NAME, torchvision:NAME)", file=sys.stderr)
            return 2
        import io

        import torch

        from netspec.importers.modules import source_state_dict

        buffer = io.BytesIO()
        torch.save(source_state_dict(imported.source_model), buffer)  # in the order the spec's weights load by
        write_bytes_atomic(args.weights_out, buffer.getvalue())
    for note in imported.notes:
        print(printable(f"netspec import: {note}"), file=sys.stderr)
    if args.output is None:
        sys.stdout.write(imported.text)
        return 0
    write_bytes_atomic(args.output, imported.text.encode("utf-8"))  # nothing is written unless all of it is
    print(f"wrote {printable(args.output)}" + (f" and {printable(args.weights_out)}" if args.weights_out else ""))
    return 0


def _batch_over_budget(summary: Summary, batch: int, limit: int | None) -> str:
    """Why ``batch`` samples go over ``--max-activations`` (which bench counts for the whole batch, since it allocates
    the batch), found before anything is allocated; ``""`` when they fit."""
    if limit is None:
        return ""
    shapes = [("the input", summary.input)] + [(f"layer {row.name!r}", row.info.shape) for row in summary.rows]
    values, where, shape = max(((s.channels * (s.pixels or 0), name, s) for name, s in shapes), key=lambda v: v[0])
    if values * batch <= limit:
        return ""
    return (f"--batch {batch:,} x {values:,} values per sample ({where}, {shape}) is {values * batch:,} values in one "
            f"tensor, over the limit of {limit:,} (--max-activations counts the whole batch in bench): lower --batch "
            "or --size")


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:,} and {high:,}, got {value:,}")
        return value

    return parse


def _spatial_size(text: str) -> tuple[int, int]:
    """``224`` (square), ``224,192`` or ``224x192``: (H, W)."""
    parts = text.lower().replace("x", ",").split(",")
    parse = _bounded(1, BENCH_MAX_SIZE)
    if len(parts) == 1:
        return parse(parts[0]), parse(parts[0])
    if len(parts) == 2:
        return parse(parts[0]), parse(parts[1])
    raise argparse.ArgumentTypeError(f"must be H or H,W, got {text!r}")


def _graph_path(path: str) -> str:
    from netspec.drawing import describe_formats, output_format

    if output_format(path) is None:
        raise argparse.ArgumentTypeError(f"{path}: unknown drawing format; use {describe_formats()}")
    return path


def _output_path(path: str) -> str:
    from netspec.export import describe_formats, output_format

    if output_format(path) is None:
        raise argparse.ArgumentTypeError(f"{path}: unknown output format; use {describe_formats()}")
    return path


def _scale_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--scale", metavar="NAME",
                         help="a row of the spec's `scales:` table (Ultralytics' n/s/m/l/x), instead of its `scale:`")
    command.add_argument("--width", type=_multiplier, metavar="W",
                         help="width multiplier: overrides the spec's scale.width (channels -> multiple of 8)")
    command.add_argument("--depth", type=_multiplier, metavar="D",
                         help="depth multiplier: overrides the spec's scale.depth (blocks per stage)")


def parser() -> argparse.ArgumentParser:
    from netspec import __version__

    root = argparse.ArgumentParser(prog="netspec", description="Declarative YAML network builder for PyTorch.")
    root.add_argument("--version", action="version", version=f"netspec {__version__}")
    root.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                      help="load kinds from a Python file (my_kinds.py) or an importable module before the command; "
                           "repeatable")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="validate a spec, print its layers (shapes, params, MACs), optionally save")
    build.add_argument("spec", help="YAML spec file, or a checkpoint netspec.save wrote (.pt: its spec and weights)")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
    _scale_options(build)
    _budget_options(build)
    build.add_argument("-o", "--output", metavar="OUT", type=_output_path,
                       help="write the built model: .pt netspec checkpoint (weights and spec, as netspec.save; "
                            "--state-dict: the bare state dict), .pt2 torch.export program, .onnx (extra)")
    build.add_argument("--state-dict", action="store_true",
                       help="with -o OUT.pt: write the bare state dict (model.state_dict()) instead of the checkpoint")
    build.add_argument("--weights", metavar="CKPT",
                       help="load weights matched by architecture (not names): .pt/.pth (weights_only) or "
                            ".safetensors (extra); prints what matched, what is new, unused, mismatched")
    build.add_argument("--strict", action="store_true",
                       help="with --weights: fail unless every module of the model and of CKPT matches exactly")
    build.add_argument("--seed", type=_seed, metavar="N",
                       help="seed the initial weights, so two builds of one spec are identical")
    build.set_defaults(run=cmd_build)

    check = commands.add_parser("check", help="validate specs and infer shapes without building (fast, no torch)")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    _scale_options(check)
    _budget_options(check)
    check.set_defaults(run=cmd_check)

    schema = commands.add_parser("schema", help="print the JSON Schema of a spec (for editors: see docs/reference/schema.md)")
    schema.add_argument("--builtin", action="store_true",
                        help="only the kinds that ship with netspec, no plugins (how netspec.schema.json is made)")
    schema.set_defaults(run=cmd_schema)

    blocks = commands.add_parser("blocks", help="list every kind with its params, defaults and paper")
    blocks.set_defaults(run=cmd_blocks)

    graph = commands.add_parser("graph", help="draw the layers with their output shapes (.svg, .dot, .mmd; no torch)")
    graph.add_argument("spec", help="YAML spec file")
    graph.add_argument("-o", "--output", metavar="OUT", type=_graph_path,
                       help="write .svg (needs Graphviz's dot), .dot/.gv (Graphviz) or .mmd (Mermaid); "
                            "default: DOT on stdout")
    _scale_options(graph)
    graph.set_defaults(run=cmd_graph)

    bench = commands.add_parser(
        "bench", help="measure a built network: images/s, ms per step, peak memory (as timm's benchmark.py)",
        description="Build SPEC and time inference (no_grad, eval) and/or training steps (forward, loss, backward, "
                    "SGD step) on random input. Peak memory is above the resting model: on CUDA "
                    "max_memory_allocated over the timed steps; on the CPU the peak resident set (VmHWM, reset "
                    "through /proc/self/clear_refs; else RSS sampled every 0.5 ms) of one extra step, with glibc "
                    "set to return freed memory at once so RSS follows live tensors.")
    bench.add_argument("spec", help="YAML spec file")
    bench.add_argument("--mode", choices=["infer", "train", "both"], default="both", help="what to time (default both)")
    bench.add_argument("--batch", type=_bounded(1, BENCH_MAX_BATCH), default=8, metavar="N", help="batch size (default 8)")
    bench.add_argument("--size", type=_spatial_size, metavar="H[,W]",
                       help="input size (default: the spec's input.size; required when the spec sets none)")
    bench.add_argument("--channels-last", action="store_true", help="model and input in channels_last memory format")
    bench.add_argument("--amp", choices=["bf16", "fp16"], help="torch.autocast to bfloat16 / float16 (default: float32)")
    bench.add_argument("--compile", action="store_true", help="torch.compile the model first (warm-up steps compile)")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default cpu")
    bench.add_argument("--steps", type=_bounded(1, BENCH_MAX_STEPS), default=20, metavar="N", help="timed steps (default 20)")
    bench.add_argument("--warmup", type=_bounded(0, BENCH_MAX_WARMUP), default=5, metavar="N",
                       help="untimed steps first (default 5)")
    bench.add_argument("--json", action="store_true", help="print the results as JSON (and no progress bar)")
    _scale_options(bench)
    _budget_options(bench)
    bench.set_defaults(run=cmd_bench)

    importer = commands.add_parser(
        "import", help="read another tool's network (an Ultralytics model YAML, timm:NAME, torchvision:NAME) into a spec",
        description="Convert SOURCE into a netspec spec: an Ultralytics model YAML (yolov8.yaml, yolo11.yaml, your "
                    "edit of one: backbone:/head: rows of [from, repeats, module, args]) becomes a spec whose entries "
                    "read names, not indices. Nothing is written when SOURCE has a problem (exit 1).")
    importer.add_argument("source", help="an Ultralytics model YAML file, timm:NAME or torchvision:NAME")
    importer.add_argument("--scale", metavar="S",
                          help="the row of the file's `scales:` table to use (n, s, m, l, x); default as Ultralytics: "
                               "the letter in the file name, else the first row")
    importer.add_argument("-o", "--output", metavar="OUT", help="write the spec to OUT (default: print it)")
    importer.add_argument("--verify", action="store_true",
                          help="also build Ultralytics' own model of the file (needs the ultralytics package), load "
                               "its weights into the spec's model and compare outputs; nothing is written if they "
                               "differ")
    importer.add_argument("--no-verify", action="store_true",
                          help="timm/torchvision: skip building the spec and comparing counts, weights and outputs")
    importer.add_argument("--args", metavar="JSON", help="timm/torchvision: keyword arguments of the model's "
                                                         "constructor, as a JSON object, e.g. "
                                                         "'{\"block_args\": {\"attn_layer\": \"eca\"}}'")
    importer.add_argument("--size", type=_spatial_size, metavar="H[,W]",
                          help="timm/torchvision: input size of the spec and the verification pass (default: the "
                               "model's own, or 224)")
    importer.add_argument("--weights-out", metavar="CKPT", help="timm/torchvision: also save the source model's "
                                                               "state dict (.pt)")
    importer.set_defaults(run=cmd_import)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning(warnings.showwarning)
        try:
            from netspec.registry import PluginError, load_plugin

            for plugin in args.plugin:
                try:
                    load_plugin(plugin)
                except PluginError as error:
                    print(printable(f"netspec: {error}"), file=sys.stderr)
                    return 1
            return int(args.run(args))
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `netspec blocks | head`: the reader left; nothing to report
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as error:
            print(printable(f"netspec: {error}"), file=sys.stderr)
            return 1
        except Exception as error:  # running out of memory, or a plugin kind's own bug: one line, no traceback
            from netspec.registry import plugin_kind_in

            memory = _out_of_memory(error)
            if memory is not None:
                print(printable(f"netspec: out of memory: {memory}"), file=sys.stderr)
                return 1
            culprit = plugin_kind_in(error.__traceback__)
            if culprit is None:
                raise
            reason = (str(error).strip().splitlines() or [""])[0]
            print(f"netspec: plugin kind {culprit[0]!r} ({culprit[1]}) failed: {type(error).__name__}: {reason}",
                  file=sys.stderr)
            return 1


def _out_of_memory(error: BaseException) -> str | None:
    """The one-line reason when ``error`` is an allocation failure (Python's ``MemoryError``, torch's
    ``OutOfMemoryError`` or its CPU allocator's ``can't allocate memory``), else ``None``."""
    import re

    text = (str(error).strip().splitlines() or [""])[0]
    if not (isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
            isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()))):
        return None
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*(err == 0\.\s*)?", "", text) or type(error).__name__
    return (f"{text} (the network or its tensors do not fit; with the default --max-params and --max-activations, "
            "or lower ones, netspec refuses such a spec before allocating anything)")


def _show_warning(default: Callable[..., None]) -> Callable[..., None]:
    """Plugin warnings as one ``netspec: warning: ...`` line on stderr; others as Python prints them."""
    from netspec.errors import SpecWarning
    from netspec.registry import PluginWarning

    shown: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *rest: object, **kwargs: object) -> None:
        if isinstance(message, SpecWarning):
            if message.line() not in shown:  # check, build and export each infer the spec: say it once
                shown.add(message.line())
                print(message.line(), file=sys.stderr)
        elif issubclass(category, PluginWarning):
            print(printable(f"netspec: warning: {message}"), file=sys.stderr)
        else:
            default(message, category, *rest, **kwargs)

    return show


if __name__ == "__main__":
    sys.exit(main())
