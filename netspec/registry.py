"""The one registry of layer kinds: ``kind`` name -> params model class (which carries shape rule and builder).

Kinds come from three places: netspec's own ``netspec/layers/`` package, a ``@netspec.register`` in user
code, and installed plugins, which name a module or a :class:`~netspec.layers.base.Layer` subclass in the
entry point group ``netspec.blocks``::

    [project.entry-points."netspec.blocks"]
    gate = "my_blocks.gate"          # a module whose import registers kinds, or "my_blocks.gate:Gate"

Plugins are loaded once, the first time the registry is read after ``import netspec`` completes. A plugin that
fails to load is reported as a :class:`PluginWarning` naming it, and every other kind keeps working.
"""
from __future__ import annotations

import difflib
import warnings
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Iterator, TypeVar

if TYPE_CHECKING:
    from netspec.layers.base import Layer

LayerType = TypeVar("LayerType", bound="type[Layer]")

ENTRY_POINT_GROUP = "netspec.blocks"


class PluginWarning(UserWarning):
    """An installed plugin (entry point group ``netspec.blocks``) could not be loaded or registered."""


class _Kinds(dict):  # type: ignore[type-arg]
    """``kind -> Layer class``; the first read also loads the installed plugins (see :func:`load_plugins`)."""

    def _loaded(self) -> "_Kinds":
        if _state["armed"] and not _state["loaded"]:
            load_plugins()
        return self

    def __getitem__(self, kind: str) -> "type[Layer]":
        return dict.__getitem__(self._loaded(), kind)

    def __contains__(self, kind: object) -> bool:
        return dict.__contains__(self._loaded(), kind)

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self._loaded())

    def __len__(self) -> int:
        return dict.__len__(self._loaded())

    def get(self, kind: str, default: Any = None) -> Any:
        return dict.get(self._loaded(), kind, default)

    def keys(self) -> Any:
        return dict.keys(self._loaded())

    def values(self) -> Any:
        return dict.values(self._loaded())

    def items(self) -> Any:
        return dict.items(self._loaded())

    def copy(self) -> dict[str, "type[Layer]"]:
        return dict(self.items())


KINDS: dict[str, "type[Layer]"] = _Kinds()

# armed: `import netspec` has completed (a plugin may `import netspec` itself); loaded: plugins were imported.
_state = {"armed": False, "loaded": False}

FAILED_PLUGINS: dict[str, str] = {}
"""Entry point name -> why it could not be loaded (shown again when a spec uses that kind)."""


def register(cls: LayerType) -> LayerType:
    """Class decorator: make a :class:`~netspec.layers.base.Layer` subclass usable as ``cls.kind`` in specs."""
    from netspec.layers.base import Layer

    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"@register expects a netspec.Layer subclass, got {cls!r}")
    kind = getattr(cls, "kind", "")
    if not isinstance(kind, str) or not kind.isidentifier():
        raise TypeError(f"{cls.__name__}.kind must be an identifier string, got {kind!r}")
    existing = dict.get(KINDS, kind)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"kind {kind!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    dict.__setitem__(KINDS, kind, cls)
    return cls


def unregister(kind: str) -> "type[Layer] | None":
    """Remove ``kind`` from the registry (tests, notebooks); returns its class, ``None`` if it was not there."""
    return dict.pop(KINDS, kind, None)


def lookup(kind: str) -> "type[Layer] | None":
    return KINDS.get(kind)


def is_builtin(cls: type) -> bool:
    """Whether a kind ships with netspec (rather than coming from user code or a plugin)."""
    return cls.__module__ == "netspec" or cls.__module__.startswith("netspec.")


def builtin_kinds() -> dict[str, "type[Layer]"]:
    """The kinds that ship with netspec, without any plugin or user registration."""
    return {kind: cls for kind, cls in KINDS.items() if is_builtin(cls)}


def suggest(kind: str, choices: list[str] | None = None) -> str:
    """`` (did you mean 'se'?)`` when ``kind`` is close to a known name, else ``""``."""
    if kind in FAILED_PLUGINS:
        return f" (the plugin {kind!r} failed to load: {FAILED_PLUGINS[kind]})"
    candidates = list(KINDS) if choices is None else choices
    close = difflib.get_close_matches(kind, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------
# Installed plugins


def enable_plugins() -> None:
    """Called at the end of ``import netspec``: from now on the first registry read loads the plugins."""
    _state["armed"] = True


def load_plugins(*, reload: bool = False) -> list[str]:
    """Import every entry point of the group ``netspec.blocks`` (once); returns the kinds they added.

    An entry point names a module (importing it runs its ``@netspec.register``) or a Layer subclass
    (registered here if it is not yet). Failures become a :class:`PluginWarning` naming the plugin.
    """
    if _state["loaded"] and not reload:
        return []
    _state["loaded"] = True
    before = set(dict.keys(KINDS))
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as error:  # a corrupt installation must not break netspec itself
        _fail("*", f"cannot list the installed plugins: {type(error).__name__}: {error}")
        return []
    seen: set[tuple[str, str]] = set()
    for entry in sorted(found, key=lambda e: (e.name, e.value)):
        if (entry.name, entry.value) in seen:
            continue
        seen.add((entry.name, entry.value))
        _load_entry_point(entry)
    return sorted(set(dict.keys(KINDS)) - before)


def _load_entry_point(entry: Any) -> None:
    from netspec.layers.base import Layer

    dist = getattr(getattr(entry, "dist", None), "name", None)
    where = f"{entry.value}" + (f" in {dist}" if dist else "")
    try:
        loaded = entry.load()
    except Exception as error:
        _fail(entry.name, f"{type(error).__name__}: {error}", where)
        return
    if isinstance(loaded, ModuleType):
        return  # importing the module registered its kinds
    if isinstance(loaded, type) and issubclass(loaded, Layer):
        if dict.get(KINDS, loaded.kind) is loaded:
            return
        try:
            register(loaded)
        except (TypeError, ValueError) as error:
            _fail(entry.name, str(error), where)
        return
    _fail(entry.name, f"names {loaded!r}, expected a module or a netspec.Layer subclass", where)


def _fail(name: str, reason: str, where: str = "") -> None:
    FAILED_PLUGINS[name] = reason
    origin = f" ({where})" if where else ""
    warnings.warn(f"netspec plugin {name!r}{origin} was not loaded: {reason}", PluginWarning, stacklevel=2)


def plugin_kind_in(traceback: TracebackType | None) -> "tuple[str, str] | None":
    """``(kind, module)`` of the plugin kind whose code raised, if a frame of ``traceback`` belongs to one."""
    modules = {cls.__module__: kind for kind, cls in dict.items(KINDS) if not is_builtin(cls)}
    culprit = None
    while traceback is not None:
        name = traceback.tb_frame.f_globals.get("__name__")
        if name in modules:
            culprit = (modules[name], name)
        traceback = traceback.tb_next
    return culprit

