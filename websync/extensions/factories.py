"""Which extension factories a connection offers (client) or accepts (server): one choice for
``connect``, ``start`` and ``serve`` from their ``compression`` and ``extensions`` options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

from ..core.protocol import Role
from .base import ClientExtensionFactory, ServerExtensionFactory
from .permessage_deflate import ClientPerMessageDeflate, ServerPerMessageDeflate

__all__ = ["extension_factories"]


@overload
def extension_factories(
    compression: Literal["deflate"] | ClientPerMessageDeflate | None,
    extensions: Sequence[ClientExtensionFactory],
    role: Literal[Role.CLIENT],
) -> list[ClientExtensionFactory]: ...
@overload
def extension_factories(
    compression: Literal["deflate"] | ServerPerMessageDeflate | None,
    extensions: Sequence[ServerExtensionFactory],
    role: Literal[Role.SERVER],
) -> list[ServerExtensionFactory]: ...
def extension_factories(
    compression: object, extensions: Sequence[object], role: Role
) -> list[ClientExtensionFactory] | list[ServerExtensionFactory]:
    """The factories in the order they are offered or tried: ``compression``'s, then ``extensions``.

    ``compression``: ``"deflate"`` (permessage-deflate with its default parameters), None (no
    compression) or a configured permessage-deflate factory of ``role``
    (``ClientPerMessageDeflate(...)`` for a client, ``ServerPerMessageDeflate(...)`` for a server).
    ``extensions``: :class:`ClientExtensionFactory` (client) or :class:`ServerExtensionFactory`
    (server) objects. Raises ``ValueError`` for another ``compression`` value and ``TypeError``
    for a factory of the other role; ``ValueError`` when two factories have the same name.
    """
    client = role is Role.CLIENT
    deflate: type[ClientPerMessageDeflate | ServerPerMessageDeflate]
    deflate, base = (
        (ClientPerMessageDeflate, ClientExtensionFactory)
        if client
        else (ServerPerMessageDeflate, ServerExtensionFactory)
    )
    chosen: list[object] = []
    if compression == "deflate":
        chosen.append(deflate())
    elif isinstance(compression, deflate):
        chosen.append(compression)
    elif compression is not None:
        raise ValueError(f"unsupported compression {compression!r}: use 'deflate', None or a {deflate.__name__}")
    for factory in extensions:
        if not isinstance(factory, base):
            raise TypeError(f"extensions of a {role.value} are {base.__name__} objects, not {factory!r}")
        chosen.append(factory)
    names = [factory.name for factory in chosen]  # type: ignore[attr-defined]
    if len(set(names)) < len(names):
        raise ValueError(f"an extension is named twice in {names}: give compression or extensions the factory")
    return chosen  # type: ignore[return-value]
