"""The extension interface (RFC 6455 section 9): negotiated in the handshake, applied to wire frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ..core.frames import WireFrame

__all__ = ["Extension", "ClientExtensionFactory", "ServerExtensionFactory", "ExtensionParams"]

ExtensionParams = list[tuple[str, str | None]]
"""An extension's parameters as they appear in Sec-WebSocket-Extensions: (name, value or None)."""


class Extension(ABC):
    """A negotiated extension, active on one connection.

    ``decode`` sees every received data frame (first fragments and continuations) in order and
    ``encode`` every data frame sent; control frames bypass extensions.
    """

    name: str
    rsv1: bool = False
    """Whether the extension gives meaning to the RSV1 bit (the others stay reserved)."""

    @abstractmethod
    def decode(self, frame: WireFrame, *, max_size: int | None) -> WireFrame:
        """Undo the extension on a received frame; ``max_size`` bounds the decoded payload.

        Raises :class:`~websync.core.errors.PayloadTooBig` past ``max_size`` and
        :class:`~websync.core.errors.ProtocolError` on malformed data.
        """

    @abstractmethod
    def encode(self, frame: WireFrame) -> WireFrame:
        """Apply the extension to a frame about to be sent."""


class ClientExtensionFactory(ABC):
    """What a client offers for one extension, and how it accepts the server's answer."""

    name: str

    @abstractmethod
    def offer(self) -> ExtensionParams:
        """Parameters of the offer in the upgrade request."""

    @abstractmethod
    def accept(self, params: ExtensionParams, accepted: Sequence[Extension]) -> Extension:
        """Build the extension from the server's response parameters.

        ``accepted`` are the extensions already negotiated on this connection.
        Raises :class:`~websync.core.errors.NegotiationError` when the answer is not acceptable.
        """


class ServerExtensionFactory(ABC):
    """How a server answers a client's offers for one extension."""

    name: str

    @abstractmethod
    def negotiate(self, params: ExtensionParams, accepted: Sequence[Extension]) -> tuple[ExtensionParams, Extension]:
        """Answer one offer: the response parameters and the extension.

        Raises :class:`~websync.core.errors.NegotiationError` to decline this offer.
        """
