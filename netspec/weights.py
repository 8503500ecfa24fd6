"""Pretrained weights matched by architecture, and checkpoints that carry their own spec (issue 15).

Names differ between codebases (torchvision's ``layer1.0.conv1`` is netspec's ``stage1.block1.body.conv1.conv``),
so weights are matched by architecture instead. Both sides are read as *units*: the tensors of one module
(a state-dict key ``a.b.weight`` belongs to the unit ``a.b``), in state-dict order, which is module registration
order: the order data flows through a torchvision/timm CNN and through a netspec model (``nn.Sequential`` or
``torch.fx.GraphModule`` alike; a residual block's shortcut comes after its body in both). A unit's signature is
its tensor names with their shapes (a BN's ``num_batches_tracked`` is optional; a 1x1 conv's weight equals a
linear one's), and the two sequences of signatures are aligned as a longest common subsequence: modules the
model adds (SE, CBAM) are skipped over and reported as new, modules only the source has (an auxiliary head)
are reported as unused, and a unit of the same kind but other shapes at the same place (a 10-class
classifier) is reported as a shape mismatch and skipped.

Files are read with ``torch.load(weights_only=True)`` (no pickled code ever runs) or, for ``.safetensors``,
with the optional ``safetensors`` package. Every failure is a :class:`WeightsError`: one line naming the file.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import stat
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netspec.compiler import DEFAULT_MAX_ACTIVATIONS, DEFAULT_MAX_PARAMS
from netspec.errors import Problem, SpecError
from netspec.files import write_bytes_atomic

if TYPE_CHECKING:
    import torch
    from torch import nn

    from netspec.spec import Spec

CHECKPOINT_FORMAT = "netspec-checkpoint"
CHECKPOINT_VERSION = 1
SPEC_ATTRIBUTE = "_netspec_spec"
"""The attribute :func:`netspec.build` sets on a model: the :class:`~netspec.Spec` it was built from."""
OPTIONAL_TENSORS = frozenset({"num_batches_tracked"})
"""Tensors a unit may lack on either side (old checkpoints have no BN batch counter); copied when both have them."""
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params")
"""Where training scripts (timm, Lightning, torchvision references) keep the state dict inside a checkpoint."""
MAX_ALIGNMENT_CELLS = 16_000_000
"""Bound on the alignment table (model units x source units): 4,000 x 4,000 modules, about 64 MB."""
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

    @property
    def signature(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """What must be equal to copy this unit: tensor names and shapes (trailing 1x1 dims ignored)."""
        return tuple(sorted((name, _squeezed(tuple(tensor.shape))) for name, tensor in self.tensors.items()
                            if name not in OPTIONAL_TENSORS))

    @property
    def family(self) -> tuple[tuple[str, int], ...]:
        """What makes two units the same kind of module (names and ranks): a mismatch is a family with other shapes.

        Ranks are not squeezed here: a 10-class linear head is another size of the model's linear head, not of
        a 1x1 conv (an SE's) that happens to sit in the same gap.
        """
        return tuple(sorted((name, tensor.dim()) for name, tensor in self.tensors.items()
                            if name not in OPTIONAL_TENSORS))

    @property
    def values(self) -> int:
        return sum(tensor.numel() for name, tensor in self.tensors.items() if name not in OPTIONAL_TENSORS)

    def describe(self) -> str:
        shapes = ", ".join(f"{name} {tuple(tensor.shape)}" for name, tensor in self.tensors.items()
                           if name not in OPTIONAL_TENSORS)
        return f"{self.name or '(root)'} ({self.kind}: {shapes})"


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


def units_of(state: Mapping[str, "torch.Tensor"], kinds: Mapping[str, str] | None = None) -> list[Unit]:
    """Group a state dict's tensors by module prefix, in the order the prefixes first appear."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        prefix, local = _split(key)
        grouped.setdefault(prefix, {})[local] = tensor
    return [Unit(prefix, tensors, (kinds or {}).get(prefix) or _guess_kind(tensors))
            for prefix, tensors in grouped.items()]


def model_units(model: "nn.Module") -> list[Unit]:
    """The model's units in ``named_modules()`` order (its state dict's order), named by module type."""
    kinds = {name: type(module).__name__ for name, module in model.named_modules(remove_duplicate=False)}
    return units_of(model.state_dict(), kinds)


# --- alignment -----------------------------------------------------------------------------------------


def align(left: list[Any], right: list[Any]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of two lists of hashables, each match as early as possible."""
    pairs: list[tuple[int, int]] = []
    start = 0
    while start < len(left) and start < len(right) and left[start] == right[start]:  # equal heads: no table
        pairs.append((start, start))
        start += 1
    rows, columns = len(left) - start, len(right) - start
    if rows and columns:
        if rows * columns > MAX_ALIGNMENT_CELLS:
            raise _fail(None, f"too many modules to align ({rows:,} in the model x {columns:,} in the source, over "
                              f"{MAX_ALIGNMENT_CELLS:,}); load the weights by name with model.load_state_dict")
        width = columns + 1
        table = array("I", bytes(4 * (rows + 1) * width))  # table[i * width + j]: LCS of left[i:], right[j:]
        for i in range(rows - 1, -1, -1):
            item, here, below = left[start + i], i * width, (i + 1) * width
            for j in range(columns - 1, -1, -1):
                if item == right[start + j]:
                    table[here + j] = table[below + j + 1] + 1
                else:
                    table[here + j] = max(table[below + j], table[here + j + 1])
        i = j = 0
        while i < rows and j < columns:
            if left[start + i] == right[start + j] and table[i * width + j] == table[(i + 1) * width + j + 1] + 1:
                pairs.append((start + i, start + j))
                i, j = i + 1, j + 1
            elif table[(i + 1) * width + j] >= table[i * width + j + 1]:
                i += 1
            else:
                j += 1
    return pairs


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
        return "\n".join(lines)


def match(model_side: list[Unit], source_side: list[Unit], source: str) -> WeightsReport:
    """Align two unit sequences: equal signatures match; in the gaps, equal families are shape mismatches."""
    report = WeightsReport(source)
    anchors = align([unit.signature for unit in model_side], [unit.signature for unit in source_side])
    previous = (-1, -1)
    for anchor in anchors + [(len(model_side), len(source_side))]:
        model_gap = model_side[previous[0] + 1:anchor[0]]
        source_gap = source_side[previous[1] + 1:anchor[1]]
        paired = align([unit.family for unit in model_gap], [unit.family for unit in source_gap])
        report.mismatched += [Mismatch(model_gap[i], source_gap[j]) for i, j in paired]
        report.new += [unit for i, unit in enumerate(model_gap) if i not in {i for i, _ in paired}]
        report.unused += [unit for j, unit in enumerate(source_gap) if j not in {j for _, j in paired}]
        if anchor[0] < len(model_side):
            report.matched.append((model_side[anchor[0]], source_side[anchor[1]]))
        previous = anchor
    return report


# --- reading files -------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL = b"\x80"  # torch.save's legacy (pre-1.6) format starts with a pickle protocol 2 opcode


def _check_zip(path: str) -> None:
    """Every record of a zip checkpoint present and matching its CRC-32 (torch.load checks neither)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue  # written with torch.serialization.config.save.compute_crc32 = False: nothing to check
                with archive.open(info) as record:
                    while record.read(1 << 22):
                        pass
    except zipfile.BadZipFile as error:
        reason = _one_line(error)
        if reason.startswith("Bad CRC-32"):
            raise _fail(path, f"corrupted: {reason}") from None
        raise _fail(path, f"truncated or corrupted: not a complete zip archive ({reason})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise _fail(path, f"truncated or corrupted ({type(error).__name__}: {_one_line(error)})") from None


def _read_torch(path: str) -> Any:
    import torch

    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == ZIP_MAGIC:
        _check_zip(path)
    elif not head.startswith(PICKLE_PROTOCOL):
        what = "an empty file" if not head else "neither a zip archive nor a pickle"
        raise _fail(path, f"not a PyTorch checkpoint ({what})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
        return tensors
    for key in WRAPPER_KEYS:
        inner = data.get(key)
        if isinstance(inner, Mapping) and (not inner or any(isinstance(v, torch.Tensor) for v in inner.values())):
            return {str(k): v for k, v in inner.items() if isinstance(v, torch.Tensor)}
    keys = ", ".join(repr(key) for key in list(data)[:8]) or "none"
    raise _fail(path, f"no tensors in this checkpoint (top-level keys: {keys})")


def read_file(path: str | os.PathLike[str]) -> Any:
    """What a checkpoint file holds (``torch.load`` with ``weights_only=True``, or a ``.safetensors`` dict)."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise _fail(name, "no such file")
    if os.path.isdir(name):
        raise _fail(name, "is a directory, not a checkpoint file")
    if not os.access(name, os.R_OK):
        raise _fail(name, "permission denied")
    if name.lower().endswith(".safetensors"):
        return _read_safetensors(name)
    return _read_torch(name)


def read_state_dict(source: "Mapping[str, torch.Tensor] | str | os.PathLike[str]") -> tuple[dict[str, Any], str]:
    """``(state dict, label for messages)`` from a state dict, a ``.pt``/``.pth`` or a ``.safetensors`` file."""
    if isinstance(source, Mapping):
        return _state_dict_in(source, None), "a state dict"
    name = os.fspath(source)
    return _state_dict_in(read_file(name), name), name


# --- the API -------------------------------------------------------------------------------------------


def load_weights(
    model: "nn.Module", source: "Mapping[str, torch.Tensor] | str | os.PathLike[str]", *, strict: bool = False
) -> WeightsReport:
    """Copy ``source``'s weights into ``model`` by architecture, not by name; returns the :class:`WeightsReport`.

    ``source`` is a state dict (e.g. ``torchvision.models.resnet50(weights=...).state_dict()``), a ``.pt``/``.pth``
    file (read with ``weights_only=True``; a training checkpoint's ``state_dict``/``model`` entry is found) or a
    ``.safetensors`` file (needs ``pip install 'netspec[safetensors]'``). Modules are matched in data-flow order
    when their tensor names and shapes agree, BN running statistics included; the model's other modules keep
    their initialisation. ``strict=True`` raises :class:`WeightsError` listing every module that is not an exact
    match (shape mismatches, new, unused) and then loads nothing.
    """
    state, label = read_state_dict(source)
    return load_state(model, state, label, file=None if isinstance(source, Mapping) else label, strict=strict)


def load_state(model: "nn.Module", state: Mapping[str, "torch.Tensor"], label: str, *, file: str | None,
               strict: bool) -> WeightsReport:
    """:func:`load_weights` on a state dict already read; ``file`` names the problems ``strict`` raises."""
    report = match(model_units(model), units_of(state), label)
    if strict and not report.complete:
        raise WeightsError(report.problems(file))
    loaded: dict[str, torch.Tensor] = {}
    for model_unit, source_unit in report.matched:
        for local, target in model_unit.tensors.items():
            if local not in source_unit.tensors:
                continue  # an optional tensor the source lacks (an old BN's num_batches_tracked)
            key = f"{model_unit.name}.{local}" if model_unit.name else local
            loaded[key] = source_unit.tensors[local].reshape(target.shape)
    model.load_state_dict(loaded, strict=False)  # every key is the model's own: nothing unexpected
    return report


def spec_of(model: "nn.Module") -> "Spec | None":
    """The :class:`~netspec.Spec` a model was built from (set by :func:`netspec.build`), or ``None``."""
    return getattr(model, SPEC_ATTRIBUTE, None)


def remember_spec(model: "nn.Module", spec: "Spec") -> None:
    object.__setattr__(model, SPEC_ATTRIBUTE, spec)  # a plain attribute: never a submodule, buffer or state entry


def checkpoint_bytes(spec_text: str, state: Mapping[str, "torch.Tensor"]) -> bytes:
    """A netspec checkpoint in memory: the same weights and spec give the same bytes."""
    import torch

    import netspec

    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "netspec": netspec.__version__,
                "spec": spec_text, "state_dict": dict(state)}, buffer)
    return buffer.getvalue()


def save(model: "nn.Module", path: str | os.PathLike[str], *, spec: "Spec | str | os.PathLike[str] | None" = None) -> None:
    """Write ``model``'s weights and its spec (YAML text) to one file that :func:`load_model` rebuilds.

    ``spec`` defaults to the one :func:`netspec.build` attached to the model. The file is a ``torch.save``
    dict of plain data (loadable with ``weights_only=True``), written atomically and byte-reproducibly.
    """
    from netspec import _as_spec

    chosen = _as_spec(spec) if spec is not None else spec_of(model)
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
        return (f"{self.path}: netspec checkpoint (written by netspec {self.netspec_version}): its spec and "
                f"{len(self.state_dict)} tensors ({values:,} values)")

    def spec(self) -> "Spec":
        from netspec.spec import loads

        return loads(self.spec_text, name=f"{self.path} (its spec)")


CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin")


def looks_like_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a torch checkpoint rather than a YAML spec: by extension, or a zip file's magic."""
    name = os.fspath(path)
    if name.lower().endswith(CHECKPOINT_EXTENSIONS):
        return True
    try:  # non-blocking, and only a regular file is read: a FIFO or a device is left to the spec reader to refuse
        descriptor = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False  # the spec reader reports it
    try:
        return stat.S_ISREG(os.fstat(descriptor).st_mode) and os.read(descriptor, 4) == b"PK\x03\x04"
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
    import netspec

    checkpoint = read_checkpoint(path)
    model = netspec.build(checkpoint.spec(), max_params=max_params, max_activations=max_activations)
    load_state(model, checkpoint.state_dict, checkpoint.path, file=checkpoint.path, strict=True)
    return model
