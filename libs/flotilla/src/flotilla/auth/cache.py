"""A bounded, thread-safe least-recently-used mapping: the memory of a token verifier.

It knows nothing about tokens. :class:`flotilla.auth.tokens.TokenVerifier` decides what may go
in (only tokens that passed full verification) and re-checks whatever comes out; this module
only keeps the mapping small and consistent when Gunicorn's gthread workers share it.

One lock guards every read and write. What it guards is a few dictionary operations, never the
work of producing a value, so threads wait on each other for well under a microsecond.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class LruCache(Generic[Key, Value]):
    """At most ``max_size`` entries; storing one more drops the least recently used.

    A ``max_size`` of 0 keeps nothing: :meth:`get` always misses, :meth:`put` does nothing.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be 0 or more, not {max_size}")
        self.max_size = max_size
        self._entries: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Value | None:
        """The value stored under ``key``, now the most recently used, or None."""
        if not self.max_size:
            return None
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Key, value: Value) -> None:
        """Store ``value`` under ``key`` as the most recently used, evicting beyond the bound."""
        if not self.max_size:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            if len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def discard(self, key: Key, value: Value) -> None:
        """Forget ``key`` if it still holds ``value``.

        Another thread may have stored a fresh value since ``value`` was read; that one stays.
        """
        with self._lock:
            if self._entries.get(key) is value:
                del self._entries[key]
