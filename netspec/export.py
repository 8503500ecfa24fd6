"""Write a built model to disk, the format chosen by the file extension; every file is written atomically.

- ``.pt``: a netspec checkpoint (``netspec.save``'s file: the weights and the spec's YAML), which
  ``netspec.load_model`` and ``netspec build x.pt`` read back; with ``state_dict_only`` (``--state-dict``) the
  bare ``state_dict`` (``torch.save``), to load into ``netspec.build(spec)`` yourself.
- ``.pt2``: a ``torch.export`` program (``torch.export.save``); ``torch.export.load`` runs it
  without netspec installed. The batch dimension is dynamic, channels and H, W are the spec's.
- ``.onnx``: ONNX from ``torch.onnx.export(dynamo=True)``, needs the ``onnx`` extra
  (``pip install 'netspec[onnx]'``: onnx, onnxscript, and onnxruntime to run it); batch is dynamic,
  the input is named ``input`` and the output ``output`` (a graph with several ``outputs``: each is named
  after its entry, in order); weights are stored inside the file.

A graph spec with several ``outputs`` exports to a program that returns them as a tuple, in order.

Models are exported in eval mode (batch norm uses its running statistics, dropout is off).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import warnings
from typing import TYPE_CHECKING, Callable, Iterator

from netspec.files import write_atomic, write_bytes, write_bytes_atomic

if TYPE_CHECKING:
    import torch
    from torch import nn

    from netspec.spec import Spec

FORMATS: dict[str, str] = {
    ".pt": "netspec checkpoint, or state dict",
    ".pt2": "torch.export program",
    ".onnx": "ONNX",
}

ONNX_EXTRA = ("onnx", "onnxscript")
EXAMPLE_BATCH = 2  # an example batch of 1 would let torch.export specialise the batch dimension


class ExportError(Exception):
    """Exporting is not possible (a missing optional package, no input size); the message is one line."""


def output_format(path: str | os.PathLike[str]) -> str | None:
    """The extension of ``path`` if netspec can write it (``.pt``, ``.pt2``, ``.onnx``), else ``None``."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    return extension if extension in FORMATS else None


def describe_formats() -> str:
    return ", ".join(f"{extension} ({what})" for extension, what in FORMATS.items())


def save(spec: "Spec", path: str | os.PathLike[str], *, model: "nn.Module | None" = None,
         state_dict_only: bool = False) -> str:
    """Build ``spec`` (or take ``model``, built from it) and write it to ``path``; returns the format written.

    ``.pt`` is the self-describing checkpoint ``netspec.save`` writes, or with ``state_dict_only`` the bare
    state dict (one meaning per option, never guessed from the name).

    Raises ``ValueError`` for an unknown extension and :class:`ExportError` when the format cannot
    be written here (the message says what to install or to add to the spec).
    """
    import netspec

    extension = output_format(path)
    if extension is None:
        raise ValueError(f"{os.fspath(path)}: unknown output format; use one of {describe_formats()}")
    if extension == ".onnx":
        missing = [name for name in ONNX_EXTRA if not _importable(name)]
        if missing:
            raise ExportError(
                f"writing ONNX needs {' and '.join(missing)}: pip install 'netspec[onnx]'"
            )
    if model is None:
        model = netspec.build(spec)
    if extension == ".pt":
        import torch

        from netspec.weights import checkpoint_bytes

        if not state_dict_only:  # in memory, not under the temporary name: equal weights give equal bytes
            write_bytes_atomic(os.fspath(path), checkpoint_bytes(spec.to_yaml(), model.state_dict()))
            return "netspec checkpoint"
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        write_bytes_atomic(os.fspath(path), buffer.getvalue())
        return "state dict"
    example = example_input(spec)
    training = model.training
    model.eval()
    try:
        writer = _write_program(model, example) if extension == ".pt2" else _write_onnx(model, example, output_names(spec))
        write_atomic(os.fspath(path), writer)
    finally:
        model.train(training)  # the caller's model comes back in the mode it was in
    return FORMATS[extension]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def example_input(spec: "Spec") -> "torch.Tensor":
    """A random input batch of the spec's shape; exporting fixes C, H, W, so ``input.size`` is needed."""
    import torch

    size = spec.input.size
    if size is None:
        raise ExportError("exporting a program needs a fixed input size: give `input.size` in the spec")
    generator = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, spec.input.channels, *size, generator=generator)


def output_names(spec: "Spec") -> list[str]:
    """Names of the exported outputs: ``output`` for one, else the entries of ``outputs``, in order."""
    from netspec.compiler import infer_network

    outputs = infer_network(spec).outputs
    return ["output"] if len(outputs) == 1 else list(outputs)


def _dynamic_batch() -> tuple[dict[int, object]]:
    import torch

    return ({0: torch.export.Dim("batch")},)


def _write_program(model: "nn.Module", example: "torch.Tensor") -> Callable[[str], None]:
    import torch

    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())

    def write(temporary: str) -> None:
        buffer = io.BytesIO()  # in memory: the archive is not named after the temporary file, so the bytes repeat
        torch.export.save(program, buffer)
        write_bytes(temporary, buffer.getvalue())

    return write


def _write_onnx(model: "nn.Module", example: "torch.Tensor", outputs: list[str]) -> Callable[[str], None]:
    import torch

    def write(temporary: str) -> None:
        with _quiet():
            torch.onnx.export(
                model, (example,), temporary, dynamo=True, external_data=False, verbose=False,
                dynamic_shapes=_dynamic_batch(), input_names=["input"], output_names=outputs,
            )

    return write


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress logs and deprecation warnings (errors still raise)."""
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_logger.setLevel(level)
