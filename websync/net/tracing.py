"""The debug tracer: one DEBUG line on the ``websync.trace`` logger per event, switchable at runtime."""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from collections.abc import Iterable

from ..core.frames import Binary, Close, Frame, Ping, Pong, Text
from ..core.headers import redact

__all__ = [
    "Tracer",
    "trace_all",
    "install_trace_signal",
    "describe_frame",
    "PREVIEW_BYTES",
    "IN_KINDS",
    "OUT_KINDS",
    "frame_detail",
]

logger = logging.getLogger("websync.trace")
PREVIEW_BYTES = 64
"""How much of a payload a trace line shows."""


class _Switchboard:
    """The process-wide switch of :func:`trace_all` and the tracers it reaches."""

    def __init__(self) -> None:
        self.all_enabled = os.environ.get("WEBSYNC_TRACE", "") not in ("", "0")
        self.tracers: weakref.WeakSet[Tracer] = weakref.WeakSet()
        self.lock = threading.Lock()


_switchboard = _Switchboard()


def trace_all(enabled: bool) -> None:
    """Switch tracing on or off for every worker, current and future (``WEBSYNC_TRACE=1`` at start-up)."""
    with _switchboard.lock:
        _switch_all(enabled)


def _switch_all(enabled: bool) -> None:
    """The body of :func:`trace_all`; the caller holds the switchboard's lock."""
    _switchboard.all_enabled = enabled
    for tracer in list(_switchboard.tracers):
        tracer.enabled = enabled or tracer.own


def _toggle_all(signum: int) -> None:
    with _switchboard.lock:
        enabled = not _switchboard.all_enabled
        _switch_all(enabled)
    logging.getLogger("websync").warning(
        "trace of every worker switched %s by %s", "on" if enabled else "off", signal.Signals(signum).name
    )


def install_trace_signal(signum: int) -> None:
    """Make signal ``signum`` toggle :func:`trace_all` in this process (opt-in; call from the main thread).

    The handler only starts a short thread that flips the switch and logs a WARNING on the
    ``websync`` logger, so the signal may arrive while the interrupted thread holds any lock.
    Choose a signal the server leaves alone (``SIGUSR2`` in gunicorn workers, after they set up
    their own handlers: from ``post_worker_init``).
    """

    def handler(received: int, frame: object) -> None:
        threading.Thread(target=_toggle_all, args=(received,), name="websync-trace-toggle", daemon=True).start()

    signal.signal(signum, handler)


class Tracer:
    """Traces one worker or connection; ``enabled`` is the only thing the hot path reads."""

    __slots__ = ("name", "own", "enabled", "__weakref__")

    def __init__(self, name: str, enabled: bool = False) -> None:
        self.name = name
        self.own = enabled
        with _switchboard.lock:
            self.enabled = enabled or _switchboard.all_enabled
            _switchboard.tracers.add(self)

    def switch(self, enabled: bool) -> None:
        """Switch this tracer on or off (tracing stays on while :func:`trace_all` is on)."""
        with _switchboard.lock:
            self.own = enabled
            self.enabled = enabled or _switchboard.all_enabled

    def event(self, message: str, *args: object) -> None:
        """Log one trace line naming this tracer."""
        if self.enabled:
            logger.debug("[%s] " + message, self.name, *args)

    def frame(self, direction: str, frame: Frame) -> None:
        """Log a frame sent (``direction="out"``) or received (``"in"``)."""
        if self.enabled:
            logger.debug("[%s] %s %s", self.name, direction, describe_frame(frame))

    def headers(self, what: str, headers: Iterable[tuple[str, str]]) -> None:
        """Log headers with credentials redacted."""
        if self.enabled:
            logger.debug("[%s] %s %s", self.name, what, redact(headers))


def describe_frame(frame: Frame) -> str:
    """``TEXT 5 bytes 'hello'``: type, length and a bounded preview of the payload."""
    if isinstance(frame, Close):
        return f"CLOSE {frame.code} {frame.reason!r}"
    if isinstance(frame, Text):
        data = frame.data
        preview = data[:PREVIEW_BYTES] + ("…" if len(data) > PREVIEW_BYTES else "")
        return f"TEXT {len(data.encode())} bytes {preview!r}"
    kind = {Binary: "BINARY", Ping: "PING", Pong: "PONG"}[type(frame)]
    payload = bytes(frame.data)
    preview_bytes = payload[:PREVIEW_BYTES]
    return f"{kind} {len(payload)} bytes {preview_bytes!r}{'…' if len(payload) > PREVIEW_BYTES else ''}"


IN_KINDS = {kind: f"in {kind.__name__}" for kind in (Text, Binary, Ping, Pong, Close)}
OUT_KINDS = {kind: f"out {kind.__name__}" for kind in (Text, Binary, Ping, Pong, Close)}
"""The flight recorder's event kinds, made once: a frame's direction and type."""


def frame_detail(frame: Frame) -> object:
    """What the flight recorder keeps of a frame: a message's size, a close's code, a ping's payload size."""
    if isinstance(frame, Close):
        return None if frame.code is None else int(frame.code)
    return len(frame.data)
