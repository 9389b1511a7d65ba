"""What the load tools share: this process's memory as Linux reports it, and the file-descriptor limit.

Imports nothing of websync, so that a peer library's process measured with it loads only that library.
"""

from __future__ import annotations

import resource
from collections import Counter
from pathlib import Path

__all__ = ["FDS_PER_CONNECTION", "listen_overflows", "raise_fd_limit", "rss_bytes", "vm_size_bytes", "memory_map"]

FDS_PER_CONNECTION = 4
"""The socket, the worker's wake-up descriptor(s), slack."""


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_bytes() -> int:
    """This process's resident set size (every thread's stack included)."""
    return _status("VmRSS")


def vm_size_bytes() -> int:
    """This process's virtual size (address space reserved, touched or not)."""
    return _status("VmSize")


def raise_fd_limit(connections: int | None = None) -> int:
    """Raise the soft RLIMIT_NOFILE to what ``connections`` need (None: to the hard limit), never
    past the hard limit; returns the soft limit now in force (child processes inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if connections is None else connections * FDS_PER_CONNECTION + 256
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def memory_map(stack_size: int) -> dict[str, int]:
    """Resident bytes by kind of mapping (/proc/self/smaps): ``thread_stacks`` (anonymous mappings
    of exactly ``stack_size``: each thread's stack, its guard page apart), ``anonymous`` (malloc
    heaps and arenas, Python's object arenas, everything else without a file) and ``files``
    (the interpreter, shared libraries, extension modules)."""
    kinds: Counter[str] = Counter()
    kind = "files"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):  # a mapping's first line: range, perms, offset, dev, inode[, path]
            start, end = (int(address, 16) for address in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            anonymous = not path or path.startswith("[")
            kind = "files" if not anonymous else "thread_stacks" if end - start == stack_size else "anonymous"
        elif fields[0] == "Rss:":
            kinds[kind] += int(fields[1]) * 1024
    return dict(kinds)


def listen_overflows() -> int | None:
    """How many times a listening socket's accept queue overflowed, in this network namespace
    (TcpExt ListenOverflows in /proc/net/netstat): each time, a SYN or the handshake's last ACK
    was dropped and the client waits for a retransmission, 1 s later at first. None where the
    counter is not shown."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(counters["ListenOverflows"]) if "ListenOverflows" in counters else None
    return None
