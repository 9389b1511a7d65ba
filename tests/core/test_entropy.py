"""The process's pool of random bytes: mask keys and handshake keys (websync.core.entropy)."""

from __future__ import annotations

import itertools
import os
import sys
import threading

import pytest

from websync.core import entropy
from websync.core.entropy import POOL_SIZE, RandomPool
from websync.core.handshake import ClientHandshake
from websync.core.protocol import Protocol, Role
from websync.core.uri import parse_uri


def test_keys_come_from_a_refilled_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def urandom(size: int) -> bytes:
        calls.append(size)
        return bytes([len(calls)]) * size

    monkeypatch.setattr("websync.core.entropy.os.urandom", urandom)
    pool = RandomPool()
    per_pool = POOL_SIZE // 4
    drawn = [pool.mask_key() for _ in range(per_pool + 1)]
    assert all(len(key) == 4 for key in drawn)
    assert calls == [POOL_SIZE, POOL_SIZE]  # one system call per pool, a new pool once the first is used up
    assert drawn[per_pool - 1] == b"\x01" * 4 and drawn[per_pool] == b"\x02" * 4


def test_random_bytes_never_repeat_a_key() -> None:
    pool = RandomPool(size=64)
    taken = [pool.random_bytes(16) for _ in range(20)]  # five pools' worth
    assert all(len(token) == 16 for token in taken)
    assert len(set(taken)) == len(taken)


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 16, 17])
def test_random_bytes_of_any_length(count: int) -> None:
    assert len(RandomPool().random_bytes(count)) == count


def test_connections_and_handshakes_share_the_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.urandom

    def urandom(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr("websync.core.entropy.os.urandom", urandom)
    entropy._POOL.forget()
    uri = parse_uri("ws://example.com/")
    keys = {ClientHandshake(uri).key for _ in range(100)}
    for _ in range(100):
        Protocol(Role.CLIENT).send_message(b"x")
    assert len(keys) == 100
    assert calls == [POOL_SIZE]  # 100 handshakes and 100 connections' first frames: one system call


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_forked_child_never_repeats_its_parents_keys() -> None:
    entropy.mask_key()  # the parent has a pool with keys left
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first keys, to the parent
        os.close(read_end)
        os.write(write_end, b"".join(entropy.mask_key() for _ in range(8)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(entropy.mask_key() for _ in range(8))
    assert len(child) == 32
    assert child != parent  # without a pool of its own, the child would take the parent's next keys


def test_threads_refilling_at_once_never_share_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count()
    lock = threading.Lock()

    def urandom(size: int) -> bytes:  # every key of every pool unique: a repeat is a key handed out twice
        with lock:
            return b"".join(next(counter).to_bytes(4, "big") for _ in range(size // 4))

    monkeypatch.setattr("websync.core.entropy.os.urandom", urandom)
    pool = RandomPool(size=16)  # four keys a pool: the threads refill all the time
    taken: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(len(taken))

    def take(keys: list[bytes]) -> None:
        start.wait()
        keys.extend(pool.mask_key() for _ in range(20_000))

    threads = [threading.Thread(target=take, args=(keys,)) for keys in taken]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL around between any two steps
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    every = [key for keys in taken for key in keys]
    assert len(every) == 160_000
    assert len(set(every)) == len(every)
