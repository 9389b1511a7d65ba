"""WebSocket extensions: the interface and permessage-deflate (RFC 7692)."""

from .base import ClientExtensionFactory, Extension, ExtensionParams, ServerExtensionFactory
from .permessage_deflate import ClientPerMessageDeflate, PerMessageDeflate, ServerPerMessageDeflate

__all__ = [
    "Extension",
    "ClientExtensionFactory",
    "ServerExtensionFactory",
    "ExtensionParams",
    "PerMessageDeflate",
    "ClientPerMessageDeflate",
    "ServerPerMessageDeflate",
]
