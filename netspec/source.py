"""Load YAML safely, once, keeping the line and column of every key and value by path.

Only plain YAML data is accepted (mappings, sequences, strings, numbers, booleans, null):
any other tag is rejected without being constructed, duplicate keys are an error, and
size, nesting depth and alias expansion are bounded so hostile input cannot hang or exhaust memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from netspec.errors import Path, Problem, SpecError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True, order=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, node: yaml.Node) -> "Mark":
        return cls(node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass
class Source:
    """Parsed YAML data plus where each path's key and value stand in the file."""

    name: str | None
    data: Any
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    value_marks: dict[Path, Mark] = field(default_factory=dict)

    def locate(self, path: Path, *, on_key: bool = False) -> Mark | None:
        """The mark of ``path`` (its key if ``on_key``), else of its nearest located ancestor."""
        if on_key and path in self.key_marks:
            return self.key_marks[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.value_marks:
                return self.value_marks[prefix]
        return None

    def problem(self, path: Path, message: str, *, on_key: bool = False) -> Problem:
        mark = self.locate(path, on_key=on_key)
        if mark is None:
            return Problem(path, message, self.name)
        return Problem(path, message, self.name, mark.line, mark.column)


class _Walker:
    """Turns a composed node tree into Python data, recording marks and enforcing limits."""

    def __init__(self, source: Source, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader
        self.nodes = 0

    def fail(self, node: yaml.Node, message: str) -> SpecError:
        mark = Mark.of(node)
        return SpecError([Problem((), message, self.source.name, mark.line, mark.column)])

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"too many YAML nodes (over {MAX_NODES}); are aliases expanding without bound?")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        self.source.value_marks.setdefault(path, Mark.of(node))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
            self.loader.flatten_mapping(node)  # resolve '<<' merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                key = self.scalar(key_node)
                if isinstance(key, (list, dict)) or key is None:
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                if key in result:
                    first = self.source.key_marks[path + (key,)]
                    raise self.fail(key_node, f"duplicate key {key!r} (first defined at line {first.line})")
                self.source.key_marks[path + (key,)] = Mark.of(key_node)
                result[key] = self.walk(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
            return [self.walk(item, path + (index,)) for index, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == _TIMESTAMP:
            return node.value  # a date-like string stays a string
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as error:
            raise self.fail(node, f"invalid scalar {node.value!r}: {error}") from None


def _decode(raw: bytes, name: str | None) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        message = f"not UTF-8 text: invalid byte 0x{raw[error.start]:02x}"
        raise SpecError([Problem((), message, name, line, column)]) from None


def parse_yaml(text: str | bytes, name: str | None = None) -> Source:
    """Parse one YAML document into a :class:`Source`; raise :class:`SpecError` on any problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise SpecError([Problem((), f"file too large ({len(text)} bytes; limit {MAX_BYTES})", name, 1, 1)])
        text = _decode(text, name)
    elif len(text) > MAX_BYTES:
        raise SpecError([Problem((), f"file too large ({len(text)} characters; limit {MAX_BYTES})", name, 1, 1)])
    source = Source(name, None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem((), "the spec is empty: expected a mapping with 'input' and 'layers'", name, 1, 1)])
        source.data = _Walker(source, loader).walk(node, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(str(part) for part in (error.context, error.problem) if part) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise SpecError([Problem((), f"YAML syntax error: {message}", name, line, column)]) from None
    except yaml.YAMLError as error:
        raise SpecError([Problem((), f"YAML error: {error}", name, 1, 1)]) from None
    except RecursionError:
        raise SpecError([Problem((), "YAML nesting too deep", name, 1, 1)]) from None
    finally:
        loader.dispose()
    if not isinstance(source.data, dict):
        raise SpecError([source.problem((), "the top level must be a mapping with 'input' and 'layers'")])
    return source
