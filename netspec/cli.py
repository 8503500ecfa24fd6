"""``netspec`` command line: build, check, schema, blocks. Exit 0 ok, 1 invalid/unreadable spec, 2 usage."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Callable, Sequence

from netspec.errors import SpecError


def _errors(error: SpecError) -> int:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return 1


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then rename onto ``path``: a failure never leaves a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".netspec-", suffix=os.path.splitext(path)[1], dir=directory)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def cmd_build(args: argparse.Namespace) -> int:
    import netspec

    try:
        spec = netspec.load(args.spec)
        summary = netspec.summary(spec)
    except SpecError as error:
        return _errors(error)
    if args.output:
        if not args.output.endswith(".pt"):
            print(f"{args.output}: unsupported output format (use .pt for a state dict)", file=sys.stderr)
            return 2
        import torch

        model = netspec.build(spec)
        write_atomic(args.output, lambda path: torch.save(model.state_dict(), path))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary)
        if args.output:
            print(f"wrote {args.output}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import netspec

    status = 0
    for path in args.specs:
        try:
            summary = netspec.check(path)
        except SpecError as error:
            status = _errors(error)
            continue
        print(f"{path}: ok ({len(summary.rows)} layers, output {summary.output}, {summary.params:,} params)")
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    from netspec.spec import Spec

    print(json.dumps(Spec.model_json_schema(), indent=2))
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    from netspec.registry import KINDS

    for kind, cls in sorted(KINDS.items()):
        print(f"{kind}: {cls.describe()}")
        if cls.paper:
            print(f"  paper: {cls.paper}")
        for name, info in cls.model_fields.items():
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            print(f"  {name}: {default}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="netspec", description="Declarative YAML network builder for PyTorch.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="validate a spec, print its layers (shapes, params, MACs), optionally save")
    build.add_argument("spec", help="YAML spec file")
    build.add_argument("--json", action="store_true", help="print the summary as JSON")
    build.add_argument("-o", "--output", metavar="OUT", help="write the built model (.pt: state dict)")
    build.set_defaults(run=cmd_build)

    check = commands.add_parser("check", help="validate specs and infer shapes without building (fast, no torch)")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    check.set_defaults(run=cmd_check)

    schema = commands.add_parser("schema", help="print the JSON Schema of a spec")
    schema.set_defaults(run=cmd_schema)

    blocks = commands.add_parser("blocks", help="list every kind with its params, defaults and paper")
    blocks.set_defaults(run=cmd_blocks)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(f"netspec: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
