"""Load YAML safely, once, keeping the line and column of every key and value by path.

Only plain YAML data is accepted (mappings, sequences, strings, numbers, booleans, null):
any other tag is rejected without being constructed, duplicate keys are an error, and
size, nesting depth and alias expansion are bounded so hostile input cannot hang or exhaust memory.
"""
from __future__ import annotations

import gc
import math
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml

from netspec.errors import Path, Problem, SpecError

MAX_BYTES = 4 * 1024 * 1024
"""Largest spec accepted, in bytes (characters for text); a larger file is rejected before it is parsed."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (a spec needs about 8)."""
MAX_NODES = 250_000
"""Most YAML nodes, counted both as composed and with every alias expanded (about 15,000 layers)."""


def read_limited(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of the regular file at ``path``, at most :data:`MAX_BYTES` + 1 (enough to tell a file over the
    limit); else a :class:`SpecError` ``cannot read the {what}: ...`` naming it. Opened non-blocking and checked
    first: a FIFO or a device (``/dev/stdin`` with nobody writing, a named pipe) would block forever."""
    name = os.fspath(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        try:
            mode = os.fstat(descriptor).st_mode
        except OSError:
            os.close(descriptor)
            raise
        if not stat.S_ISREG(mode):
            os.close(descriptor)
            kind = "a directory" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
            raise SpecError([Problem((), f"cannot read the {what}: {kind}, not a regular file", name)])
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise SpecError([Problem((), f"cannot read the {what}: {error.strerror or error}", name)]) from None


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
_MERGE = "tag:yaml.org,2002:merge"



def _loader_class() -> Any:
    """``yaml.SafeLoader``, with libyaml's scanner and parser (C, ~5x faster) when PyYAML was built with them.

    Only the parsing is in C: nodes are composed by PyYAML's Python ``Composer`` (the same nodes and marks as
    ``SafeLoader``), because libyaml's own composer recurses in C and crashes the process on deeply nested input
    (``[[[[...`` 100,000 deep), where the Python one raises ``RecursionError``, which is reported as a problem.
    """
    try:
        from yaml._yaml import CParser as parser
    except ImportError:
        return yaml.SafeLoader
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    class FastSafeLoader(parser, Composer, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = Composer.compose_node
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node

        def __init__(self, stream: str) -> None:
            parser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return FastSafeLoader


class _Unparsable(SpecError):
    """The parser itself rejected the text (syntax, characters, its own limits), as opposed to netspec's checks."""


class _Limit(Exception):
    """A size or nesting limit was crossed at ``mark`` (becomes a located :class:`SpecError`)."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _bounded(loader: Any) -> Any:
    """``loader`` whose composer stops with a located error past :data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels.

    So a huge or deeply nested document is rejected while it is being read, in bounded time and memory,
    never with a ``RecursionError`` from the recursive composer.
    """

    class BoundedLoader(loader):  # type: ignore[misc, valid-type]
        netspec_nodes = 0
        netspec_depth = 0
        netspec_aliases = False  # whether any node is shared (only then can the data outgrow the node tree)

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                self.netspec_aliases = True
            self.netspec_nodes += 1
            if self.netspec_nodes > MAX_NODES:
                raise _Limit(event.start_mark, f"too many YAML nodes (over {MAX_NODES:,})")
            if self.netspec_depth >= MAX_DEPTH:
                raise _Limit(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            self.netspec_depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.netspec_depth -= 1

    return BoundedLoader


PURE_LOADER = _bounded(yaml.SafeLoader)
"""PyYAML's pure-Python loader with netspec's limits: its messages are the ones netspec reports."""
FAST_LOADER = _bounded(_loader_class())
"""libyaml's parser (when PyYAML has it) with netspec's limits: used first, as it is ~5x faster."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node) -> None:
    """Reject, before building any data, a node graph whose aliases would expand past the limits.

    Aliases share nodes, so a few lines can stand for a billion nodes ("billion laughs"), and an alias
    inside its own anchor makes a cycle. This visits each distinct node once (iteratively, no recursion),
    computing its expanded size and depth, and raises :class:`_Limit` at the first (innermost) node over
    :data:`MAX_NODES` or :data:`MAX_DEPTH`, or at an alias cycle. Time and memory: linear in the file.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_NODES:
                raise _Limit(node.start_mark, f"with its aliases expanded, this holds more than {MAX_NODES:,} YAML nodes")
            if depth[key] > MAX_DEPTH:
                raise _Limit(node.start_mark, f"with its aliases expanded, this nests deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _Limit(node.start_mark, "an alias refers to a node that contains it (a cycle)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(_children(node)))


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

    def __init__(self, source: Source, loader: yaml.SafeLoader) -> None:  # or CSafeLoader
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
        self.source.value_marks[path] = Mark.of(node)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
            merges = [value for key, value in node.value if key.tag == _MERGE]
            result: dict[Any, Any] = self.merged(merges, path) if merges else {}
            self.source.value_marks[path] = Mark.of(node)
            own: set[Any] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                key = self.scalar(key_node)
                if isinstance(key, (list, dict)) or key is None:
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                if key in own:
                    first = self.source.key_marks[path + (key,)]
                    raise self.fail(key_node, f"duplicate key {key!r} (first defined at line {first.line})")
                own.add(key)
                self.source.key_marks[path + (key,)] = Mark.of(key_node)
                result[key] = self.walk(value_node, path + (key,))  # a key of its own overrides a merged one
            return result
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
            return [self.walk(item, path + (index,)) for index, item in enumerate(node.value)]
        return self.scalar(node)

    def merged(self, values: list[yaml.Node], path: Path) -> dict[Any, Any]:
        """The mappings named by ``<<`` merge keys; in a list of them, earlier mappings take precedence."""
        sources = [item for value in values for item in (value.value if isinstance(value, yaml.SequenceNode) else [value])]
        result: dict[Any, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, "a merge key '<<' takes a mapping (an alias like *defaults) or a list of them")
            result.update(self.walk(source, path))
        return result

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == _TIMESTAMP:
            return node.value  # a date-like string stays a string
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain mappings, lists and scalars")
        if node.tag == _STR:
            if not node.value.isascii():
                try:
                    node.value.encode("utf-8")
                except UnicodeEncodeError as error:  # "\ud800" in a double-quoted string: not text, cannot be written
                    raise self.fail(node, f"character U+{ord(node.value[error.start]):04X} is not valid Unicode "
                                          "text (a lone surrogate)") from None
            return node.value  # what SafeConstructor.construct_yaml_str returns, without its bookkeeping
        try:
            return construct_scalar(node.tag, node.value)
        except ValueError as error:
            raise self.fail(node, str(error)) from None


MAX_NUMBER_CHARS = 100
"""Longest number accepted, in characters: no count in a spec needs more, and it keeps every conversion linear
(PyYAML's own turns a sexagesimal ``1:0:0:...`` into an int in quadratic time, and Python refuses past 4,300 digits)."""

_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_NULLS = {"", "~", "null", "Null", "NULL"}


def construct_scalar(tag: str, text: str) -> Any:
    """The value of a YAML 1.1 int, float, bool or null scalar, as PyYAML's ``SafeConstructor`` reads it, but with
    bounded work and a :class:`ValueError` saying what is wrong for a value that its tag (``!!int ''``,
    ``!!bool maybe``) or its length does not allow."""
    name = tag.rsplit(":", 1)[-1]
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    if name == "null":
        if text not in _NULLS:
            raise ValueError(f"!!null {shown} is not null: write null, ~ or nothing")
        return None
    if name == "bool":
        if text.lower() not in _BOOLS:
            raise ValueError(f"!!bool {shown} is not a boolean: write true or false")
        return _BOOLS[text.lower()]
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number too long: {len(text):,} characters, at most {MAX_NUMBER_CHARS} ({shown})")
    try:
        return _integer(text) if name == "int" else _float(text)
    except (ValueError, OverflowError):
        raise ValueError(f"!!{name} {shown} is not {'an integer' if name == 'int' else 'a number'}") from None


def _integer(text: str) -> int:
    value = text.replace("_", "")
    sign = -1 if value[:1] == "-" else 1
    value = value[1:] if value[:1] in "+-" else value
    if not value or not value.isascii():
        raise ValueError(text)
    if ":" in value:  # sexagesimal (YAML 1.1): 1:30 is 90
        result = 0
        for part in value.split(":"):
            if not part.isdigit():
                raise ValueError(text)
            result = result * 60 + int(part)
        return sign * result
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if value.startswith(prefix):
            return sign * int(value[2:], base)
    if len(value) > 1 and value[0] == "0":
        return sign * int(value, 8)  # YAML 1.1 octal: 017 is 15
    if not value.isdigit():
        raise ValueError(text)
    return sign * int(value)


def _float(text: str) -> float:
    value = text.replace("_", "").lower()
    sign = -1.0 if value[:1] == "-" else 1.0
    value = value[1:] if value[:1] in "+-" else value
    if value == ".inf":
        return sign * math.inf
    if value == ".nan":
        return math.nan
    if not value or not value.isascii() or value.startswith(("inf", "nan", "infinity")):
        raise ValueError(text)
    if ":" in value:  # sexagesimal (YAML 1.1): 1:30.5 is 90.5
        result = 0.0
        for part in value.split(":"):
            result = result * 60 + float(part)
        return sign * result
    result = float(value)
    if math.isinf(result):
        raise OverflowError(text)  # a finite literal too large for a float
    return sign * result


def _inside(text: str, line: int, column: int) -> tuple[int, int]:
    """``line``, ``column`` moved inside ``text``: the parser reports the end of input one line past the last."""
    lines = text.split("\n")
    if line > len(lines):
        return len(lines), len(lines[-1]) + 1
    return line, min(column, len(lines[line - 1]) + 1)


def _position(text: str, offset: int, *, characters: bool = True) -> tuple[int, int]:
    """1-based line and column of ``offset`` into ``text`` (a UTF-8 byte offset when libyaml reports it)."""
    if not characters:
        offset = len(text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "ignore"))
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


_ODD_BREAKS = "\x85\u2028\u2029"  # YAML 1.1 line breaks that editors do not count as lines


def _lines(text: str, name: str | None) -> str:
    """``text`` with universal newlines (CRLF and CR become LF), so that every line:column is the editor's.

    NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are rejected: YAML 1.1 reads them as line breaks where
    editors show none, which would put every later location on the wrong line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = [text.find(char) for char in _ODD_BREAKS if char in text]
    if found:
        odd = min(found)
        line, column = _position(text, odd, characters=True)
        message = f"character U+{ord(text[odd]):04X} (a Unicode line break) is not allowed: use a newline"
        raise SpecError([Problem((), message, name, line, column)])
    return text


def _decode(raw: bytes, name: str | None) -> str:
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw  # a BOM (utf-8-sig's errors count from after it)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        # characters, as editors count columns (the bytes before the first invalid one are valid UTF-8)
        column = len(before[start:].decode("utf-8")) + 1
        message = f"not UTF-8 text: invalid byte 0x{raw[error.start]:02x}"
        raise SpecError([Problem((), message, name, line, column)]) from None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects (YAML nodes, marks, data).

    CPython runs a collection every few hundred allocations and each older-generation pass walks every live
    object, so building a tree of N nodes with the collector on costs more than linear time (a 10,000-layer
    spec parsed 30x slower than a 1,000-layer one). Reference counting still frees everything as usual.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _compose(loader_class: Any, text: str, source: Source) -> None:
    """Compose ``text`` with ``loader_class`` and walk it into ``source``; raise :class:`SpecError` on any problem."""
    name = source.name
    loader = None
    try:
        loader = loader_class(text)  # inside: the pure-Python reader rejects control characters here
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem((), "the spec is empty: expected a mapping with 'input' and 'layers'", name, 1, 1)])
        if loader.netspec_aliases:  # without aliases the composer's own node and depth limits hold
            check_expansion(node)
        source.data = _Walker(source, loader).walk(node, ())
    except _Limit as error:
        line, column = _inside(text, error.mark.line + 1, error.mark.column + 1)
        raise SpecError([Problem((), error.message, name, line, column)]) from None
    except UnicodeEncodeError as error:  # a str with a lone surrogate (e.g. decoded with surrogateescape)
        line, column = _position(text, error.start, characters=True)
        message = f"character U+{ord(text[error.start]):04X} is not valid Unicode text (a lone surrogate)"
        raise SpecError([Problem((), message, name, line, column)]) from None
    except yaml.reader.ReaderError as error:
        line, column = _position(text, error.position, characters=issubclass(loader_class, yaml.reader.Reader))
        code = ord(error.character) if isinstance(error.character, str) else int(error.character)
        message = f"control character U+{code:04X} is not allowed in YAML text"
        raise _Unparsable([Problem((), message, name, line, column)]) from None
    except yaml.MarkedYAMLError as error:
        raise _Unparsable([_syntax_problem(error, text, name)]) from None
    except yaml.YAMLError as error:
        raise _Unparsable([Problem((), f"YAML error: {error}", name, 1, 1)]) from None
    except RecursionError:
        raise _Unparsable([Problem((), "YAML nesting too deep", name, 1, 1)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _syntax_problem(error: yaml.MarkedYAMLError, text: str, name: str | None) -> Problem:
    """A YAML syntax error as a located problem, in the words a newcomer understands.

    A tab says "tab"; a bracket or quote that is still open when a later line (or the end of the file) breaks the
    collection is reported where it was opened, which is what the user has to fix.
    """
    mark = error.problem_mark or error.context_mark
    message = " ".join(str(part) for part in (error.context, error.problem) if part) or "invalid YAML"
    problem, context = str(error.problem or ""), str(error.context or "")
    opened = error.context_mark
    ended = "stream end" in problem or "end of stream" in problem
    if "'\\t'" in problem or "tab character" in problem:
        message = "a tab character: YAML indents with spaces, never tabs"
    elif opened is not None and mark is not None and (ended or mark.line > opened.line) and (
        context.startswith("while parsing a flow") or context.startswith("while scanning a quoted")
    ):
        lines = text.split("\n")
        char = lines[opened.line][opened.column:opened.column + 1] if opened.line < len(lines) else ""
        closer = {"[": "]", "{": "}"}.get(char, char)
        what = f"this {char!r}" if char else "this"
        if ended:
            message = f"{what} is never closed: the file ends before its {closer!r}"
        else:
            message = f"{what} is never closed: line {mark.line + 1} comes before its {closer!r} ({problem})"
        mark = opened
    elif "mapping values are not allowed" in problem and mark is not None:
        hint = _bare_kind_hint(text, mark.line)
        deeper = "" if hint else _deeper_line(text, mark.line)
        message = deeper or message + hint
        if deeper:  # at the line's first character: that line's indentation is what to fix
            line_text = text.split("\n")[mark.line]
            mark = yaml.Mark(mark.name, mark.index, mark.line, len(line_text) - len(line_text.lstrip(" ")), None, None)
    elif ("expected <block end>" in problem and context.startswith("while parsing a block") and opened is not None
          and mark is not None and mark.line > opened.line):
        message = _misaligned_line(text, mark, opened, "mapping" in context)
    line, column = _inside(text, mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Problem((), f"YAML syntax error: {message}", name, line, column)


def _spaces(line: str) -> str:
    count = len(line) - len(line.lstrip(" "))
    return f"{count} space{'s' if count != 1 else ''}"


def _deeper_line(text: str, line: int) -> str:
    """Words for a ``key: value`` line indented deeper than the ``key: value`` line above it, which YAML reads as
    the rest of that value (PyYAML: "mapping values are not allowed here"); ``""`` when that is not the case."""
    lines = text.split("\n")
    if not 0 < line < len(lines):
        return ""
    above = next((index for index in range(line - 1, -1, -1) if lines[index].strip() and
                  not lines[index].lstrip().startswith("#")), None)
    if above is None:
        return ""
    this, before = lines[line], lines[above]
    deeper = len(this) - len(this.lstrip(" ")) > len(before) - len(before.lstrip(" "))
    if not (deeper and ":" in before.split("#", 1)[0] and before.rstrip().split("#", 1)[0].rstrip()[-1:] != ":"):
        return ""
    return (f"bad indentation: line {line + 1} is indented {_spaces(this)}, deeper than line {above + 1} "
            f"({_spaces(before)}), so YAML reads it as the rest of line {above + 1}'s value: indent the keys of one "
            "mapping by the same number of spaces")


def _misaligned_line(text: str, mark: Any, opened: Any, mapping: bool) -> str:
    """Words for a line whose indentation matches no open block (PyYAML: "while parsing a block mapping expected
    <block end>, but found ..."): which line, how it is indented, and how the block it breaks is indented."""
    lines = text.split("\n")
    this = lines[mark.line] if mark.line < len(lines) else ""
    start = lines[opened.line] if opened.line < len(lines) else ""
    what, parts = ("mapping", "keys") if mapping else ("list", "'-' items")  # the block the line breaks
    indent = f"{opened.column} space{'s' if opened.column != 1 else ''}"
    message = (f"bad indentation: line {mark.line + 1} is indented {_spaces(this)}, which lines up with nothing "
               f"above it: the {what} it follows (from line {opened.line + 1}) has its {parts} at {indent}")
    dash = start[:opened.column].rstrip()
    if mapping and this.lstrip().startswith("-") and dash.endswith("-") and mark.column == opened.column:
        sibling = len(dash) - 1
        return (f"bad indentation: line {mark.line + 1}'s '-' is indented {_spaces(this)}, like the keys of the "
                f"mapping from line {opened.line + 1}, so YAML expects a key there: a new item of the list lines up "
                f"with line {opened.line + 1}'s '-' ({sibling} space{'s' if sibling != 1 else ''})")
    return message + "; indent the keys of one mapping, and the '-' items of one list, by the same number of spaces"


def _bare_kind_hint(text: str, line: int) -> str:
    """A hint when ``name:``/``from:`` follows a bare kind (``- pam`` then ``  name: sa``), which YAML cannot read."""
    lines = text.split("\n")
    if not 0 < line < len(lines):
        return ""
    key = lines[line].strip().split(":", 1)[0]
    before = lines[line - 1].strip()
    if key in ("name", "from") and before.startswith("- ") and ":" not in before and " " not in before[2:].strip():
        kind = before[2:].strip()
        return f" (a bare kind cannot carry `{key}`: write `- {kind}:` or `- {kind}: {{}}`, then `{key}:` below it)"
    return ""


def parse_yaml(text: str | bytes, name: str | None = None) -> Source:
    """Parse one YAML document into a :class:`Source`; raise :class:`SpecError` on any problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise SpecError([Problem((), f"file too large: more than {MAX_BYTES:,} bytes", name, 1, 1)])
        text = _decode(text.replace(b"\r\n", b"\n").replace(b"\r", b"\n"), name)
    elif len(text) > MAX_BYTES:
        raise SpecError([Problem((), f"file too large: more than {MAX_BYTES:,} characters", name, 1, 1)])
    text = _lines(text, name)
    source = Source(name, None)
    try:
        with gc_paused():
            try:
                _compose(FAST_LOADER, text, source)
            except _Unparsable:
                if FAST_LOADER is PURE_LOADER:
                    raise
                # libyaml's messages and its own limits differ between releases (libyaml 0.2.5 stops flow nesting
                # at 1,000 levels while it scans ahead, before netspec's composer sees depth 65): a file libyaml
                # rejects is read again by the pure-Python parser, whose problem is the one reported.
                source = Source(name, None)
                _compose(PURE_LOADER, text, source)
    except _Unparsable as error:
        raise SpecError(error.problems) from None
    if source.data is None:
        raise SpecError([source.problem((), "the spec is empty: expected a mapping with 'input' and 'layers'")])
    if not isinstance(source.data, dict):
        raise SpecError([source.problem((), "the top level must be a mapping with 'input' and 'layers'")])
    return source
