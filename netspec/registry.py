"""The one registry of layer kinds: ``kind`` name -> params model class (which carries shape rule and builder),
and of stage blocks (:data:`BLOCKS`, filled by :func:`netspec.blocks.register_block`).

Kinds come from four places: netspec's own ``netspec/layers/`` package, a ``@netspec.register`` in user
code, ``netspec --plugin FILE_OR_MODULE`` (:func:`load_plugin`), and installed plugins, which name a module or a
:class:`~netspec.layers.base.Layer` subclass in the entry point group ``netspec.blocks``::

    [project.entry-points."netspec.blocks"]
    gate = "my_blocks.gate"          # a module whose import registers kinds, or "my_blocks.gate:Gate"

An entry point's name is the kind it provides, so an installed plugin is imported only when its kind is looked up
(a spec that uses it), or when every kind is listed (``netspec blocks``, ``netspec schema``): checking a spec that
uses only built-in kinds imports no plugin. Loading is thread-safe. A plugin that fails to load (it raises, calls
``sys.exit``, claims a kind that exists) is named in one message, and every other kind keeps working.
"""
from __future__ import annotations

import contextlib
import io
import sys
import threading
import warnings
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from netspec.layers.base import Layer, is_builtin
from netspec.messages import close_match, one_line

if TYPE_CHECKING:
    from netspec.blocks.base import Block

LayerType = TypeVar("LayerType", bound="type[Layer]")

ENTRY_POINT_GROUP = "netspec.blocks"


class PluginWarning(UserWarning):
    """An installed plugin (entry point group ``netspec.blocks``) could not be loaded or registered."""


class PluginError(Exception):
    """A plugin given by the user (``netspec --plugin``, :func:`load_plugin`) could not be loaded; names it."""


class _Kinds(dict):  # type: ignore[type-arg]
    """``kind -> Layer class``; looking up a missing kind loads the installed plugin of that name, listing loads all."""

    def _has(self, kind: object) -> bool:
        if dict.__contains__(self, kind):
            return True
        if isinstance(kind, str) and _state["armed"]:
            _load_entry_points(kind)
        return dict.__contains__(self, kind)

    def _all(self) -> "_Kinds":
        if _state["armed"] and not _state["loaded"]:
            load_plugins()
        return self

    def __getitem__(self, kind: str) -> "type[Layer]":
        self._has(kind)
        return dict.__getitem__(self, kind)

    def __contains__(self, kind: object) -> bool:
        return self._has(kind)

    def get(self, kind: str, default: Any = None) -> Any:
        return dict.get(self, kind, default) if self._has(kind) else default

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self._all())

    def __len__(self) -> int:
        return dict.__len__(self._all())

    def keys(self) -> Any:
        return dict.keys(self._all())

    def values(self) -> Any:
        return dict.values(self._all())

    def items(self) -> Any:
        return dict.items(self._all())

    def copy(self) -> dict[str, "type[Layer]"]:
        return dict(self.items())

    def __setitem__(self, kind: str, cls: "type[Layer]") -> None:  # `KINDS["se"] = MySE`: said, as register() says it
        _warn_if_replacing(kind, cls)
        dict.__setitem__(self, kind, cls)


KINDS: dict[str, "type[Layer]"] = _Kinds()

# armed: `import netspec` has completed (a plugin may `import netspec` itself); loaded: every plugin was imported.
_state: dict[str, Any] = {"armed": False, "loaded": False, "tried": set()}
_lock = threading.RLock()  # one thread imports plugins; the others wait for it, then see its kinds

BUILTIN_KINDS: set[str] = set()
"""Every kind netspec itself registered (kept when one is unregistered, so that a replacement is noticed)."""

FAILED_PLUGINS: dict[str, str] = {}
"""Entry point name -> why it could not be loaded (shown again when a spec uses that kind)."""

BLOCKS: dict[str, "Block"] = {}
"""Every registered stage block by name, in registration order (the built-in ones first): the registry of
:mod:`netspec.blocks` (``register_block`` fills it), kept here so that a plugin that fails to load loses its blocks
as well as its kinds."""


def register(cls: LayerType) -> LayerType:
    """Class decorator: make a :class:`~netspec.layers.base.Layer` subclass usable as ``cls.kind`` in specs."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"@register expects a netspec.Layer subclass, got {cls!r}")
    kind = getattr(cls, "kind", "")
    if not isinstance(kind, str) or not kind.isidentifier():
        raise TypeError(f"{cls.__name__}.kind must be an identifier string, got {kind!r}")
    if kind == "repeat":  # `- repeat: NAME` instantiates a `define:` sub-graph (netspec.repeat)
        raise ValueError("the kind name 'repeat' is reserved: `- repeat: NAME` instantiates a `define:` sub-graph")
    existing = dict.get(KINDS, kind)
    reimported = existing is not None and (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
    if existing is not None and existing is not cls and not (reimported and not is_builtin(existing)):
        raise ValueError(f"kind {kind!r} is already registered by {existing.__module__}.{existing.__qualname__}")
    _warn_if_replacing(kind, cls)
    dict.__setitem__(KINDS, kind, cls)
    return cls


def _warn_if_replacing(kind: str, cls: type) -> None:
    """Record netspec's own kinds; a :class:`PluginWarning` when code from elsewhere takes one of their names (after
    :func:`unregister`, or writing into ``KINDS``): every spec that uses the kind then builds that code instead."""
    if is_builtin(cls):
        BUILTIN_KINDS.add(kind)
    elif kind in BUILTIN_KINDS:
        warnings.warn(f"{cls.__module__}.{cls.__qualname__} replaces netspec's built-in kind {kind!r}: specs that use "
                      f"{kind!r} now build it instead of netspec's", PluginWarning, stacklevel=3)


def unregister(kind: str) -> "type[Layer] | None":
    """Remove ``kind`` from the registry (tests, notebooks); returns its class, ``None`` if it was not there."""
    return dict.pop(KINDS, kind, None)


def lookup(kind: str) -> "type[Layer] | None":
    return KINDS.get(kind)


def builtin_kinds() -> dict[str, "type[Layer]"]:
    """The kinds that ship with netspec, without any plugin or user registration."""
    return {kind: cls for kind, cls in KINDS.items() if is_builtin(cls)}


def suggest(kind: str, choices: list[str] | None = None) -> str:
    """`` (did you mean 'se'?)`` when ``kind`` is close to a known name, else ``""``."""
    if kind in FAILED_PLUGINS:
        return f" (the plugin {kind!r} failed to load: {FAILED_PLUGINS[kind]})"
    return close_match(kind, list(KINDS) if choices is None else choices)


# ---------------------------------------------------------------------------------------------
# Installed plugins


def enable_plugins() -> None:
    """Called at the end of ``import netspec``: from now on looking up an unknown kind loads its plugin."""
    _state["armed"] = True


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as error:  # a corrupt installation must not break netspec itself
        _fail("*", f"cannot list the installed plugins: {type(error).__name__}: {error}", warn=True)
        return []
    unique = {(entry.name, entry.value): entry for entry in found}
    return [unique[key] for key in sorted(unique)]


def _load_entry_points(kind: str) -> None:
    """Import the installed plugin named ``kind`` (once; a failure is recorded in :data:`FAILED_PLUGINS`).

    If no entry point has that name, or it did not register the kind (a module that registers several kinds under
    one entry point), every plugin is loaded: only a kind that is not built in ever gets here.
    """
    with _lock:
        if kind in _state["tried"] or _state["loaded"]:
            return
        _state["tried"].add(kind)
        named = [entry for entry in _entry_points() if entry.name == kind]
        for entry in named:
            _load_entry_point(entry, warn=False)  # the spec that asked for the kind gets the reason
        if not dict.__contains__(KINDS, kind) and kind not in FAILED_PLUGINS:
            load_plugins()


def load_plugins(*, reload: bool = False) -> list[str]:
    """Import every entry point of the group ``netspec.blocks`` (once); returns the kinds they added.

    An entry point names a module (importing it runs its ``@netspec.register``) or a Layer subclass
    (registered here if it is not yet). Failures become a :class:`PluginWarning` naming the plugin.
    """
    with _lock:
        if _state["loaded"] and not reload:
            return []
        before = set(dict.keys(KINDS))
        for entry in _entry_points():
            if entry.name not in _state["tried"] or reload:  # one that failed lazily was reported where it was used
                _state["tried"].add(entry.name)
                _load_entry_point(entry, warn=True)
        _state["loaded"] = True
        return sorted(set(dict.keys(KINDS)) - before)


def _where(entry: Any) -> str:
    dist = getattr(getattr(entry, "dist", None), "name", None)
    return f"{entry.value}" + (f" in {dist}" if dist else "")


def _guarded(load: Callable[[], Any]) -> Any:
    """``load()`` (an import) isolated from netspec's own process: it sees no command-line arguments, and what it
    prints, ``sys.exit`` or any exception it raises becomes a :class:`PluginError` with a one-line reason."""
    captured = io.StringIO()
    argv = sys.argv
    sys.argv = argv[:1]
    heard: list[warnings.WarningMessage] = []
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), \
                warnings.catch_warnings(record=True) as heard:
            warnings.simplefilter("always", PluginWarning)
            return load()
    except SystemExit as error:
        said = captured.getvalue().strip().splitlines()
        detail = f": {said[-1]}" if said else ""
        raise PluginError(f"it called sys.exit({error.code!r}) while being imported{detail}") from None
    except Exception as error:
        raise PluginError(one_line(error)) from None
    finally:
        sys.argv = argv
        for warning in heard:  # what the plugin warned (a built-in kind it replaced) reaches stderr, not the capture
            if issubclass(warning.category, PluginWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _register_loaded(loaded: Any) -> None:
    """Register what an entry point or ``--plugin`` named: a module registers its own kinds, a class is registered."""
    if isinstance(loaded, ModuleType):
        return  # importing the module registered its kinds
    if isinstance(loaded, type) and issubclass(loaded, Layer):
        if dict.get(KINDS, loaded.kind) is not loaded:
            try:
                register(loaded)
            except (TypeError, ValueError) as error:
                raise PluginError(str(error)) from None
        return
    raise PluginError(f"names {loaded!r}, expected a module or a netspec.Layer subclass")


def _load_entry_point(entry: Any, *, warn: bool) -> None:
    before, blocks_before = set(dict.keys(KINDS)), set(BLOCKS)
    try:
        _register_loaded(_guarded(entry.load))
    except PluginError as error:
        for kind in set(dict.keys(KINDS)) - before:  # half-registered: none of its kinds is usable
            dict.pop(KINDS, kind, None)
        for block in set(BLOCKS) - blocks_before:  # nor its stage blocks
            BLOCKS.pop(block, None)
        _fail(entry.name, str(error), _where(entry), warn=warn)
        return


def load_plugin(name: str) -> list[str]:
    """Load a one-file plugin (a ``.py`` path) or an importable module (``netspec --plugin``); returns its new kinds.

    Raises :class:`PluginError` naming the plugin when it cannot be loaded.
    """
    import importlib
    import importlib.util
    import os

    def load() -> ModuleType:
        if name.endswith(".py") or os.sep in name or (os.altsep and os.altsep in name) or os.path.isfile(name):
            if not os.path.isfile(name):
                raise FileNotFoundError(f"no such file {name!r}")
            stem = os.path.splitext(os.path.basename(name))[0]
            module_name = f"netspec_plugin_{stem}" if stem.isidentifier() else "netspec_plugin"
            spec = importlib.util.spec_from_file_location(module_name, name)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {name!r} as Python code")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
            return module
        return importlib.import_module(name)

    with _lock:
        before, blocks_before = set(dict.keys(KINDS)), set(BLOCKS)
        try:
            _guarded(load)
        except PluginError as error:
            for kind in set(dict.keys(KINDS)) - before:
                dict.pop(KINDS, kind, None)
            for block in set(BLOCKS) - blocks_before:
                BLOCKS.pop(block, None)
            raise PluginError(f"plugin {name!r} could not be loaded: {error}") from None
        return sorted(set(dict.keys(KINDS)) - before)


def _fail(name: str, reason: str, where: str = "", *, warn: bool) -> None:
    FAILED_PLUGINS[name] = reason
    if warn:
        origin = f" ({where})" if where else ""
        warnings.warn(f"netspec plugin {name!r}{origin} was not loaded: {reason}", PluginWarning, stacklevel=3)


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

