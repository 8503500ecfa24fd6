"""What the user reads when a spec is wrong: pydantic's errors as located findings, and "did you mean" hints.

:class:`SpecModel` is the base of every params model (kinds, the spec itself): calling one from Python raises
:class:`~netspec.SpecError`, as YAML does. :func:`findings_from_validation` turns pydantic's errors into short
findings with full paths; :func:`did_you_mean` names the choice a near miss meant (``ReLU``, ``out_channels``).
This module knows nothing of kinds or the registry: a model says which fields a user writes
(:meth:`SpecModel.param_fields`), and whether an instance of it is quoted back in a message.
"""
from __future__ import annotations

import difflib
import re
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from netspec.errors import Finding, Path, Problem, SpecError


class _RaisesSpecError(type(BaseModel)):  # type: ignore[misc]
    """Metaclass of :class:`SpecModel`: calling the class from Python turns pydantic's ``ValidationError`` into a
    :class:`~netspec.SpecError`. (Not a custom ``__init__``: pydantic would then call it while validating nested
    models too.)"""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            kind = getattr(cls, "kind", "")
            findings = findings_from_validation(error, (kind,) if kind else (), cls)
            raise SpecError(Problem(f.path, f.message) for f in findings) from None


class SpecModel(BaseModel, metaclass=_RaisesSpecError):
    """A pydantic model whose Python constructor raises :class:`~netspec.SpecError` (as YAML does), not pydantic's
    ``ValidationError``: ``Conv(out="64")`` -> ``conv.out: input should be a valid integer (got '64')``."""

    _quoted_in_errors: ClassVar[bool] = True
    """Whether a message about an instance of this model, given where it does not fit, quotes it (``(got ...)``);
    a layer's repr says nothing the user wrote, so layers are not quoted."""

    @classmethod
    def param_fields(cls) -> dict[str, Any]:
        """The fields a user writes (here: all of them), which "unknown field" messages list."""
        return dict(cls.model_fields)


def findings_from_validation(error: ValidationError, prefix: Path, model: type[BaseModel]) -> list[Finding]:
    """Turn pydantic's errors into findings with full paths and short, helpful messages."""
    findings = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if isinstance(part, (str, int)))
        kind = item["type"]
        if kind == "invalid_key" and loc:  # pydantic writes the key as text ('1.5'): point at the key as written
            key = item.get("input")
            findings.append(Finding(prefix + loc[:-1] + (key,), f"a field name must be text, got {short(key)}",
                                    on_key=True))
        elif kind == "extra_forbidden":
            name = str(loc[-1])
            known = list((item.get("ctx") or {}).get("known") or _fields_at(model, loc[:-1]))  # ctx: a model's own list
            hint = did_you_mean(name, known) if known else ""
            listing = f"; known: {', '.join(known)}" if known else ""
            findings.append(Finding(prefix + loc, f"unknown field {name!r}{hint}{listing}", on_key=True))
        elif kind == "missing":
            findings.append(Finding(prefix + loc, f"missing required field {loc[-1]!r}" if loc else "missing"))
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, "):]
            value = item.get("input")
            if not isinstance(value, dict) and not (isinstance(value, SpecModel) and not value._quoted_in_errors):
                message += f" (got {short(value)})"
            if kind == "literal_error" and isinstance(value, str):
                message += did_you_mean(value, re.findall(r"'([^']*)'", str(item.get("ctx", {}).get("expected", ""))))
            findings.append(Finding(prefix + loc, message[:1].lower() + message[1:]))
    return findings


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc`` inside ``model``, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = _params_of(current)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *typing.get_args(annotation)]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(_params_of(current))


def _params_of(model: Any) -> dict[str, Any]:
    if isinstance(model, type) and issubclass(model, SpecModel):
        return model.param_fields()
    return dict(getattr(model, "model_fields", {}) or {})


ALIASES = {
    # what people coming from PyTorch, timm or Ultralytics write -> netspec's name
    "out_channels": "out", "channels": "out", "c2": "out", "filters": "out", "planes": "out", "features": "out",
    "out_features": "out", "kernel_size": "kernel", "k": "kernel", "s": "stride", "pad": "padding",
    "num_blocks": "depth", "blocks": "depth", "n": "depth", "repeats": "depth", "ratio": "reduction",
    "reduction_ratio": "reduction", "r": "reduction", "activation": "act", "act_layer": "act", "norm_layer": "norm",
    "drop": "p", "drop_rate": "p", "dropout": "p", "rate": "p",
    "bn": "batch", "batchnorm": "batch", "batch_norm": "batch", "batchnorm2d": "batch", "in": "instance",
    "instancenorm": "instance", "instance_norm": "instance",
    "squeeze_excite": "se", "squeeze_excitation": "se", "senet": "se", "ecanet": "eca", "selective_kernel": "sk",
    "sknet": "sk", "non_local": "nonlocal", "nonlocal2d": "nonlocal", "nl": "nonlocal", "position": "pam",
    "channel": "cam", "dual": "danet", "conv2d": "conv", "linear_layer": "linear", "fc": "linear", "dense": "linear",
    "max_pool": "maxpool", "avg_pool": "avgpool", "global_pool": "avgpool", "gap": "avgpool",
}
"""Common names for netspec's fields, values and kinds, for "did you mean" (used only when it names a choice)."""


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def did_you_mean(value: str, choices: list[str]) -> str:
    """`` (did you mean 'relu'?)`` for a near miss: case (``ReLU``), separators (``leakyrelu``), a common name from
    PyTorch/timm (``out_channels``, ``bn``), or a close spelling; else ``""``."""
    if value in choices:
        return ""
    alias = ALIASES.get(value.lower()) or ALIASES.get(_normal(value))
    matches = [choice for choice in choices if choice.lower() == value.lower()]
    matches += [choice for choice in choices if _normal(choice) == _normal(value)]
    matches += [alias] if alias in choices else []
    if matches:
        return f" (did you mean {matches[0]!r}?)"
    return close_match(value, choices)


def close_match(value: str, choices: list[str]) -> str:
    """`` (did you mean 'se'?)`` when ``value`` is spelt close to one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def short(value: Any) -> str:
    """``repr(value)`` cut to 40 characters, for quoting what the user gave."""
    if type(value) is int and value.bit_length() > 128:  # repr() fails past 4,300 digits, and says nothing useful
        return f"an integer of {value.bit_length() * 0.30103:,.0f} digits"
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 40 else text[:37] + "..."


def one_line(error: BaseException) -> str:
    """``TypeError: first line of its message`` (the type alone when it says nothing)."""
    reason = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__
