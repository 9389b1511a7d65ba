"""The extensions each ``compression`` option offers (a client) or accepts (a server)."""

from __future__ import annotations

from typing import Literal, overload

from ..core.protocol import Role
from .base import ClientExtensionFactory, ServerExtensionFactory
from .permessage_deflate import ClientPerMessageDeflate, ServerPerMessageDeflate

__all__ = ["extension_factories"]


@overload
def extension_factories(compression: str | None, role: Literal[Role.CLIENT]) -> list[ClientExtensionFactory]: ...
@overload
def extension_factories(compression: str | None, role: Literal[Role.SERVER]) -> list[ServerExtensionFactory]: ...
def extension_factories(
    compression: str | None, role: Role
) -> list[ClientExtensionFactory] | list[ServerExtensionFactory]:
    """The extension factories for ``compression`` ("deflate" or None) on ``role``'s side;
    ValueError for any other value."""
    if compression is None:
        return []
    if compression == "deflate":
        if role is Role.CLIENT:
            client: list[ClientExtensionFactory] = [ClientPerMessageDeflate()]
            return client
        server: list[ServerExtensionFactory] = [ServerPerMessageDeflate()]
        return server
    raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")
