"""The contract of a stage's block, and registering one: ``block`` name -> :class:`Block` (in
:data:`netspec.registry.BLOCKS`, the one registry of kinds and blocks).

A ``stage`` repeats one block ``depth`` times; the block says what one of them is. A block is one file: subclass
:class:`Block`, set ``name``, ``paper``, ``options`` (the stage params shared by several blocks that it reads
besides the ones every block has) and ``Params`` (a :class:`BlockParams` model of the params only it has: written
flat in the stage, ``stage: {block: regnet, out: 64, group_width: 8}``, read as ``stage.group_width``), implement ``infer`` (static shape, params, MACs of one block, its projection shortcut included), ``build``
(its ``torch.nn.Module``), ``units`` and ``draw`` (hypothesis examples), and decorate with :func:`register_block`.
Plugins register blocks the same way (``netspec --plugin FILE``, an installed plugin module, user code).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict

from netspec.errors import Invalid
from netspec.registry import BLOCKS, KINDS
from netspec.shapes import LayerInfo, Shape

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn
    from torch import nn

    from netspec.layers.base import Context, Layer

StageParams = Any
"""The stage whose block this is (a ``netspec.layers.stage.Stage``): its params, read as attributes. Typed loosely
so that blocks never import the stage module (which imports them)."""
COMMON = frozenset({"out", "block", "depth", "stride", "norm", "act", "name", "inputs"})
"""Stage params every block reads: the rest are a block's ``options``."""


class BlockParams(BaseModel):
    """Base of a block's own params (:attr:`Block.Params`): strict, unknown names forbidden, as a kind's params.

    Fields are declared as on a kind (type, default, a docstring under the field for `netspec blocks` and the JSON
    Schema); the stage validates the keys its block declares with this model, errors located in the stage."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class Site:
    """Where one block sits in its stage and what it inherits: its index, its stride, the stage's norm and act."""

    index: int
    stride: int
    norm: str
    act: str

    @property
    def bias(self) -> bool:
        """Convs carry a bias only when no norm follows them (netspec's rule for conv-like kinds)."""
        return self.norm == "none"


class Block:
    """Base of a stage's block: one block's shape rule and builder, given the stage (its params) and a :class:`Site`.

    The stage runs ``infer``/``build`` once per block, the first at the stage's stride, the others at stride 1,
    each on the previous block's output; blocks after the second repeat it exactly (counted, not re-inferred).
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()
    """Shared stage params this block reads besides :data:`COMMON`; a stage that sets another one is an error."""
    Params: ClassVar[type[BlockParams] | None] = None
    """The params only this block has (a :class:`BlockParams` model; ``None``: none): written flat in the stage,
    validated by this model, read as stage attributes (``stage.group_width``) like the shared ones."""
    drop_path_to_last: ClassVar[bool] = False
    """Stochastic depth as timm's ``linspace(0, drop_path, N)`` over the network's N blocks (the last block drops
    with the full rate: ConvNeXt, RegNet), instead of EfficientNet's drop_path * i / N."""
    explained: ClassVar[frozenset[str]] = frozenset()
    """Stage params the block rejects with a message of its own (in ``check``) instead of the generic one."""

    def check(self, stage: StageParams, ctx: "Context") -> None:
        """Report stage params this block cannot use (once per stage) on ``ctx``."""

    def infer(self, stage: StageParams, x: Shape, ctx: "Context", site: Site) -> LayerInfo:
        """Static shape rule of one block (its shortcut included) on input ``x``; problems on ``ctx``."""
        raise NotImplementedError

    def build(self, stage: StageParams, x: Shape, ctx: "Context", site: Site) -> "nn.Module":
        """The ``torch.nn.Module`` of one block on input ``x`` (only called on a valid spec)."""
        raise NotImplementedError

    def units(self, stage: StageParams) -> int:
        """About how many torch modules one block builds (the compiler's ``max_modules`` budget)."""
        return 8

    def needs_projection(self, stage: StageParams, in_channels: int, stride: int) -> bool:
        """Whether a block with this input and stride adds a conv shortcut (its params are in ``infer``)."""
        return False

    def attended(self, stage: StageParams, out: Shape) -> Shape | None:
        """The shape the stage's ``attention`` runs on when the stage outputs ``out`` (``None``: it varies)."""
        return out

    def draw(self, draw: "DrawFn", stage: type[Any], x: Shape) -> StageParams:
        """A random valid stage of these blocks for input ``x`` (``netspec.strategies``)."""
        raise NotImplementedError(f"block {self.name!r} has no hypothesis strategy")

    @classmethod
    def param_names(cls) -> list[str]:
        """Every stage param the block reads besides :data:`COMMON`: its shared ``options`` and its own ``Params``."""
        return sorted((set(cls.options) | set(own_params(cls))) - COMMON)

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


BlockType = TypeVar("BlockType", bound=type[Block])


def register_block(cls: BlockType) -> BlockType:
    """Class decorator: make a :class:`Block` subclass usable as ``stage: {block: cls.name}``."""
    if not (isinstance(cls, type) and issubclass(cls, Block)):
        raise TypeError(f"@register_block expects a netspec Block subclass, got {cls!r}")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{cls.__name__}.name must be an identifier string, got {name!r}")
    if not all(isinstance(option, str) for option in cls.options):
        raise TypeError(f"{cls.__name__}.options must name stage params, got {cls.options!r}")
    params = cls.Params
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"{cls.__name__}.Params must be a pydantic model (netspec.blocks.BlockParams), got {params!r}")
    taken = sorted(set(own_params(cls)) & stage_fields())
    if taken:
        raise TypeError(f"{cls.__name__}.Params redeclares stage params {', '.join(taken)}: list them in `options`")
    existing = BLOCKS.get(name)
    if existing is not None and type(existing) is not cls:
        same = (type(existing).__module__, type(existing).__qualname__) == (cls.__module__, cls.__qualname__)
        if not same or is_builtin_block(type(existing)):
            raise ValueError(f"block {name!r} is already registered by "
                             f"{type(existing).__module__}.{type(existing).__qualname__}")
    BLOCKS[name] = cls()
    return cls


def unregister_block(name: str) -> Block | None:
    """Remove block ``name`` (tests, notebooks); returns it, ``None`` if it was not there."""
    return BLOCKS.pop(name, None)


def is_builtin_block(cls: type) -> bool:
    return cls.__module__.startswith("netspec.")


_BUILTIN_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("netspec_builtin_blocks_only", default=False)


@contextlib.contextmanager
def builtin_blocks_only(active: bool = True) -> Iterator[None]:
    """While active, :func:`block_names` lists only netspec's own blocks (``netspec schema --builtin``)."""
    token = _BUILTIN_ONLY.set(active)
    try:
        yield
    finally:
        _BUILTIN_ONLY.reset(token)


def block_names(*, builtin_only: bool = False) -> list[str]:
    """Registered block names (installed plugins loaded first, as listing kinds does)."""
    KINDS.keys()  # loads installed plugins once, when plugin loading is armed
    builtin_only = builtin_only or _BUILTIN_ONLY.get()
    return [name for name, block in BLOCKS.items() if not builtin_only or is_builtin_block(type(block))]


def users_of(option: str) -> list[str]:
    """The blocks that read stage param ``option`` (a shared one in their ``options``, or one of their own)."""
    return [name for name, block in BLOCKS.items() if option in block.options or option in own_params(type(block))]


def own_params(block: "Block | type[Block]") -> dict[str, Any]:
    """The fields of a block's own :attr:`Block.Params` (none: ``{}``)."""
    params = block.Params
    return dict(params.model_fields) if params is not None else {}


def stage_fields() -> set[str]:
    """The stage's own fields and their aliases (``from``), which a block's ``Params`` cannot redeclare. Empty while
    netspec's own blocks register (the stage module, which imports them, is not defined yet)."""
    import sys

    stage = getattr(sys.modules.get("netspec.layers.stage"), "Stage", None)
    if stage is None:
        return set(COMMON)
    return set(COMMON) | set(stage.model_fields) | {info.alias for info in stage.model_fields.values() if info.alias}


def plugin_block_call(block: Block, what: str, ctx: "Context", call: Any) -> Any:
    """``call()`` for a plugin's block: its own bug becomes a located problem naming it, never a traceback."""
    if is_builtin_block(type(block)):
        return call()
    try:
        return call()
    except Invalid:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0]
        raise ctx.invalid(None, f"the plugin block {block.name!r} ({type(block).__module__}): its {what} failed: "
                                f"{type(error).__name__}: {reason}") from None
