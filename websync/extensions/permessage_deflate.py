"""The permessage-deflate extension (RFC 7692): per-message DEFLATE compression with RSV1.

Window bits: zlib refuses a raw-deflate compressor with an 8-bit window (``wbits=-8`` raises
``ValueError``, see https://github.com/madler/zlib/issues/171). When 8 is negotiated for our
compressor, websync compresses with 9: zlib never emits a match distance above the window size
minus ``MIN_LOOKAHEAD`` (262 bytes, ``MAX_DIST`` in zlib's deflate.h), i.e. 250 bytes for a
512-byte window, so the output is valid for a peer keeping only 256 bytes. (Node's zlib maps
raw windowBits 8 to 9 the same way; websockets instead refuses 8.) Decompression uses the
negotiated window as is, 8 included.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..core.errors import NegotiationError, PayloadTooBig, ProtocolError
from ..core.frames import CloseCode, Opcode, WireFrame
from .base import ClientExtensionFactory, Extension, ExtensionParams, ServerExtensionFactory

__all__ = ["PerMessageDeflate", "ClientPerMessageDeflate", "ServerPerMessageDeflate"]

_NAME = "permessage-deflate"

# The LEN/NLEN of an empty stored block: what a sync flush ends with, removed by the sender and
# appended again by the receiver (RFC 7692 sections 7.2.1 and 7.2.2).
_TAIL = b"\x00\x00\xff\xff"

_COMPRESS_SETTINGS = frozenset({"level", "memLevel", "strategy"})

_PARAMETERS = frozenset(
    {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"}
)
# RFC 7692 section 7.1.2: a decimal integer from 8 to 15, without leading zeroes.
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}


def _check_compress_settings(settings: Mapping[str, int] | None) -> dict[str, int]:
    """A copy of ``settings`` for :func:`zlib.compressobj`; ``wbits`` comes from negotiation.

    The values are checked now, by zlib itself, rather than at the first message sent.
    """
    settings = dict(settings or {})
    unknown = settings.keys() - _COMPRESS_SETTINGS
    if unknown:
        raise ValueError(f"compress_settings accepts only {sorted(_COMPRESS_SETTINGS)}, not {sorted(unknown)}")
    try:
        zlib.compressobj(wbits=-15, **settings)  # type: ignore[arg-type]
    except (ValueError, TypeError, zlib.error) as exc:
        raise ValueError(
            f"invalid compress_settings {settings}: level is -1..9, memLevel 1..9, strategy a zlib.Z_* value"
        ) from exc
    return settings


def _check_window_bits(name: str, bits: int) -> None:
    if not 8 <= bits <= 15:
        raise ValueError(f"{name} must be between 8 and 15")


class PerMessageDeflate(Extension):
    """permessage-deflate on one connection, with the negotiated parameters.

    "local" is the side that sends (compresses), "remote" the side that receives (decompresses):
    for a client, local = client_* and remote = server_* parameters.
    Every data message sent is compressed; received messages are decompressed when their
    first frame has RSV1 set and passed through unchanged otherwise.
    """

    name = _NAME
    rsv1 = True

    def __init__(
        self,
        *,
        remote_no_context_takeover: bool = False,
        local_no_context_takeover: bool = False,
        remote_max_window_bits: int = 15,
        local_max_window_bits: int = 15,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        """Raises ``ValueError`` on window bits outside 8..15 and on ``compress_settings`` other
        than level, memLevel and strategy."""
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = _check_compress_settings(compress_settings)
        # Created at the start of a message, dropped after it without context takeover.
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._decoding = False  # inside a received compressed message
        self._decoded_size = 0  # bytes decoded so far in that message

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    def encode(self, frame: WireFrame) -> WireFrame:
        """Compress a data frame; RSV1 is set on the first frame of the message only.

        Every frame ends with a sync flush so that it can be sent at once; the final frame loses
        the flush's trailing ``00 00 ff ff`` (RFC 7692 section 7.2.1). An empty final frame
        becomes the single byte ``00`` (section 7.2.3.6).
        """
        if frame.opcode.is_control:
            return frame
        if self._compressor is None:
            # 8 bits compress with 9: see the module docstring.
            wbits = -max(self.local_max_window_bits, 9)
            self._compressor = zlib.compressobj(wbits=wbits, **self.compress_settings)  # type: ignore[arg-type]
        # compress() must run even on empty data: a second flush in a row, with no deflate()
        # call in between, yields nothing instead of the empty stored block that is needed.
        data = self._compressor.compress(frame.payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            data = data[: -len(_TAIL)]
            if self.local_no_context_takeover:
                self._compressor = None
        return replace(frame, payload=data, rsv1=frame.opcode is not Opcode.CONTINUATION)

    def decode(self, frame: WireFrame, *, max_size: int | None) -> WireFrame:
        """Decompress a frame of a compressed message.

        ``max_size`` bounds the whole decoded message, not this frame: the extension counts
        the bytes it decoded for the current message and raises
        :class:`~websync.core.errors.PayloadTooBig` as soon as one more byte would pass the limit,
        without inflating further (a compression bomb costs at most ``max_size`` bytes).
        ``None`` means no limit.

        Raises :class:`~websync.core.errors.ProtocolError` with 1002 for RSV1 on a continuation
        frame and with 1007 for data that does not decompress.
        """
        if frame.opcode.is_control:
            return frame
        if frame.opcode is Opcode.CONTINUATION:
            # RFC 7692 section 6.1: RSV1 on a non-first fragment must fail the connection.
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
            if not self._decoding:
                return frame
        else:
            self._decoding = frame.rsv1
            if not frame.rsv1:
                return frame
            self._decoded_size = 0
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(wbits=-self.remote_max_window_bits)
        decompressor = self._decompressor
        data = frame.payload + _TAIL if frame.fin else frame.payload
        # Ask for one byte more than allowed: getting it proves the message is too big, while
        # a message of exactly max_size bytes leaves nothing unconsumed.
        allowed = None if max_size is None else max_size - self._decoded_size
        try:
            payload = decompressor.decompress(data, 0 if allowed is None else allowed + 1)
        except zlib.error as exc:
            # RFC 7692 names no close code for this. Bytes that do not inflate are payload data
            # inconsistent with the message (RFC 6455 section 7.4.1: 1007), like invalid UTF-8.
            raise ProtocolError(f"invalid compressed data: {exc}", CloseCode.INVALID_DATA) from exc
        if allowed is not None and len(payload) > allowed:
            raise PayloadTooBig(f"decompressed message is larger than {max_size} bytes")
        self._decoded_size += len(payload)
        if frame.fin:
            self._decoding = False
            # A sender may end the stream with a BFINAL block (section 7.2.3.4): the next
            # message then starts a new stream.
            if self.remote_no_context_takeover or decompressor.eof:
                self._decompressor = None
        return replace(frame, payload=payload, rsv1=False)


def _parse(params: ExtensionParams, *, offer: bool) -> dict[str, int | None]:
    """Check names, duplicates and values (RFC 7692 section 7.1).

    Returns the parameters present: window bits as ints, flags as ``None``; in an ``offer``,
    ``client_max_window_bits`` may have no value (``None``).
    """
    parsed: dict[str, int | None] = {}
    for name, value in params:
        if name not in _PARAMETERS:
            raise NegotiationError(f"unknown {_NAME} parameter {name!r}")
        if name in parsed:
            raise NegotiationError(f"duplicate {_NAME} parameter {name!r}")
        if name.endswith("_no_context_takeover") or (offer and name == "client_max_window_bits" and value is None):
            if value is not None:
                raise NegotiationError(f"{_NAME} parameter {name!r} takes no value")
            parsed[name] = None
        elif value in _WINDOW_BITS:
            parsed[name] = _WINDOW_BITS[value]
        else:
            raise NegotiationError(f"invalid value {value!r} for {_NAME} parameter {name!r}")
    return parsed


def _build(
    *,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: int | None,
    client_max_window_bits: int | bool | None,
) -> ExtensionParams:
    """Parameters for an offer or a response; ``client_max_window_bits=True`` has no value."""
    params: ExtensionParams = []
    if server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if client_no_context_takeover:
        params.append(("client_no_context_takeover", None))
    if server_max_window_bits is not None:
        params.append(("server_max_window_bits", str(server_max_window_bits)))
    if client_max_window_bits is True:
        params.append(("client_max_window_bits", None))
    elif client_max_window_bits:
        params.append(("client_max_window_bits", str(client_max_window_bits)))
    return params


def _check_not_accepted(accepted: Sequence[Extension]) -> None:
    if any(extension.name == _NAME for extension in accepted):
        raise NegotiationError(f"{_NAME} negotiated twice")


class ClientPerMessageDeflate(ClientExtensionFactory):
    """The client's permessage-deflate offer and its check of the server's answer.

    Args:
        client_max_window_bits: ``True`` offers the parameter without a value (the server may
            pick 8..15 for our compressor), an int 8..15 offers that limit, ``None`` or
            ``False`` leave it out (the server must not send it then).
        server_max_window_bits: 8..15 asks the server to compress with at most that window.
        client_no_context_takeover: reset our compressor after each message.
        server_no_context_takeover: ask the server to reset its compressor after each message.
        compress_settings: ``level`` (-1..9), ``memLevel`` (1..9) and ``strategy`` for
            :func:`zlib.compressobj`, e.g. ``{"level": 1, "memLevel": 4}`` for speed and memory.

    Give a configured instance as ``compression=`` to ``websync.connect`` or ``websync.start``.
    Raises ``ValueError`` for window bits outside 8..15 and invalid ``compress_settings``.
    """

    name = _NAME

    def __init__(
        self,
        *,
        client_max_window_bits: int | bool | None = True,
        server_max_window_bits: int | None = None,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        if not (client_max_window_bits is None or isinstance(client_max_window_bits, bool)):
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        self.client_max_window_bits = client_max_window_bits
        self.server_max_window_bits = server_max_window_bits
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self.compress_settings = _check_compress_settings(compress_settings)

    def offer(self) -> ExtensionParams:
        """The offer, e.g. ``[("client_max_window_bits", None)]`` by default."""
        return _build(
            server_no_context_takeover=self.server_no_context_takeover,
            client_no_context_takeover=self.client_no_context_takeover,
            server_max_window_bits=self.server_max_window_bits,
            client_max_window_bits=self.client_max_window_bits,
        )

    def accept(self, params: ExtensionParams, accepted: Sequence[Extension]) -> PerMessageDeflate:
        """Check the server's response against the offer (RFC 7692 section 7.1).

        Raises :class:`~websync.core.errors.NegotiationError` on unknown, duplicate or malformed
        parameters, on a response that does not honour the offer (including
        ``client_max_window_bits`` when it was not offered), and when permessage-deflate is
        already in ``accepted``.
        """
        _check_not_accepted(accepted)
        response = _parse(params, offer=False)

        # Section 7.1.1.1: the server confirms a requested server_no_context_takeover and may
        # add it unasked; section 7.1.1.2: it may add client_no_context_takeover.
        server_no_context_takeover = "server_no_context_takeover" in response
        if self.server_no_context_takeover and not server_no_context_takeover:
            raise NegotiationError("server did not accept server_no_context_takeover")
        client_no_context_takeover = self.client_no_context_takeover or "client_no_context_takeover" in response

        # Section 7.1.2.1: the server answers a requested limit with the same or a smaller
        # value, and may set one unasked.
        server_max_window_bits = response.get("server_max_window_bits")
        if self.server_max_window_bits is not None and (
            server_max_window_bits is None or server_max_window_bits > self.server_max_window_bits
        ):
            raise NegotiationError(f"server did not accept server_max_window_bits={self.server_max_window_bits}")

        # Section 7.1.2.2: only if offered, and not above an offered value; without it in
        # the response, an offered value still limits our compressor.
        offered_limit = None if isinstance(self.client_max_window_bits, bool) else self.client_max_window_bits
        client_max_window_bits = response.get("client_max_window_bits")
        if client_max_window_bits is None:
            client_max_window_bits = offered_limit
        elif not self.client_max_window_bits:
            raise NegotiationError("server sent client_max_window_bits, which was not offered")
        elif offered_limit is not None and client_max_window_bits > offered_limit:
            raise NegotiationError(f"client_max_window_bits={client_max_window_bits} is above the offer")

        return PerMessageDeflate(
            remote_no_context_takeover=server_no_context_takeover,
            local_no_context_takeover=client_no_context_takeover,
            remote_max_window_bits=server_max_window_bits or 15,
            local_max_window_bits=client_max_window_bits or 15,
            compress_settings=self.compress_settings,
        )


class ServerPerMessageDeflate(ServerExtensionFactory):
    """The server's answer to a client's permessage-deflate offer.

    Args:
        server_max_window_bits: 8..15, the largest window our compressor uses.
        client_max_window_bits: 8..15, asked of the client when its offer allows it.
        server_no_context_takeover: reset our compressor after each message.
        client_no_context_takeover: require the client to reset its compressor.
        compress_settings: ``level`` (-1..9), ``memLevel`` (1..9) and ``strategy`` for
            :func:`zlib.compressobj`.

    Give a configured instance as ``compression=`` to ``websync.serve``.
    Raises ``ValueError`` for window bits outside 8..15 and invalid ``compress_settings``.
    """

    name = _NAME

    def __init__(
        self,
        *,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        compress_settings: Mapping[str, int] | None = None,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.compress_settings = _check_compress_settings(compress_settings)

    def negotiate(
        self, params: ExtensionParams, accepted: Sequence[Extension]
    ) -> tuple[ExtensionParams, PerMessageDeflate]:
        """Honour the offer's requests and add our own settings (RFC 7692 section 7.1).

        Raises :class:`~websync.core.errors.NegotiationError` to decline a malformed offer or a
        second permessage-deflate.
        """
        _check_not_accepted(accepted)
        offer = _parse(params, offer=True)

        server_no_context_takeover = self.server_no_context_takeover or "server_no_context_takeover" in offer
        client_no_context_takeover = self.client_no_context_takeover or "client_no_context_takeover" in offer

        # Section 7.1.2.1: a requested limit binds us; our own setting may only lower it.
        requested = offer.get("server_max_window_bits")
        limits = [bits for bits in (requested, self.server_max_window_bits) if bits is not None]
        server_max_window_bits = min(limits) if limits else None

        # Section 7.1.2.2: only answer client_max_window_bits if the offer has it, with at
        # most the offered value. An offered value binds the client even if we leave it out.
        client_max_window_bits: int | None = None
        if "client_max_window_bits" in offer:
            requested = offer["client_max_window_bits"]
            limits = [bits for bits in (requested, self.client_max_window_bits) if bits is not None]
            client_max_window_bits = min(limits) if limits else None

        response = _build(
            server_no_context_takeover=server_no_context_takeover,
            client_no_context_takeover=client_no_context_takeover,
            server_max_window_bits=server_max_window_bits,
            client_max_window_bits=client_max_window_bits,
        )
        extension = PerMessageDeflate(
            remote_no_context_takeover=client_no_context_takeover,
            local_no_context_takeover=server_no_context_takeover,
            remote_max_window_bits=client_max_window_bits or 15,
            local_max_window_bits=server_max_window_bits or 15,
            compress_settings=self.compress_settings,
        )
        return response, extension
