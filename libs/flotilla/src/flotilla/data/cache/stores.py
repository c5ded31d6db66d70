"""Where a cache keeps its entries: the :class:`Store` protocol and process memory."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

LEASE_SECONDS = 10.0
"""How long a miss may take to load before another caller may store the key instead."""


class CacheUnavailable(Exception):
    """The store cannot be asked now; the caller loads from the source."""


class Store(Protocol):
    """Where a :class:`Cache` keeps its entries: process memory or Redis."""

    def fetch(self, key: str) -> tuple[bytes | None, str | None]:
        """The stored value, or on a miss ``(None, lease)``: a lease token or None if taken."""
        ...

    def store(self, key: str, lease: str, data: bytes, ttl: float) -> None:
        """Keep ``data`` for ``ttl`` seconds, if ``lease`` still stands."""
        ...

    def release(self, key: str, lease: str) -> None:
        """Give ``lease`` up without storing anything."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Forget ``keys`` and their leases."""
        ...

    def clear(self) -> None:
        """Forget every entry."""
        ...

    def close(self) -> None:
        """Close connections; the next call opens new ones."""
        ...


class MemoryStore:
    """Entries in this process, each until its TTL; beyond ``max_entries`` the least recently
    used goes. One lock guards a few dictionary operations, never a load.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be 0 or more, not {max_entries}")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def fetch(self, key: str) -> tuple[bytes | None, str | None]:
        """The live value under ``key`` (now the most recently used), or a miss and a lease."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry[0]:
                self._entries.move_to_end(key)
                return entry[1], None
            self._entries.pop(key, None)
            held = self._leases.get(key)
            if held is not None and now < held[1]:
                return None, None
            lease = secrets.token_hex(8)
            self._leases[key] = (lease, now + LEASE_SECONDS)
            return None, lease

    def store(self, key: str, lease: str, data: bytes, ttl: float) -> None:
        """Keep ``data`` until ``ttl`` from now, if ``lease`` is still the key's lease."""
        with self._lock:
            held = self._leases.get(key)
            if held is None or held[0] != lease:
                return
            del self._leases[key]
            self._entries[key] = (self.clock() + ttl, data)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def release(self, key: str, lease: str) -> None:
        """Drop ``lease`` if it is still the key's lease."""
        with self._lock:
            held = self._leases.get(key)
            if held is not None and held[0] == lease:
                del self._leases[key]

    def delete(self, keys: Sequence[str]) -> None:
        """Forget ``keys`` and any lease on them."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._leases.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._leases.clear()

    def close(self) -> None:
        """Nothing to close."""
