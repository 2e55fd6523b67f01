"""Numbered host objects (open files, connections) of one run.

Owns ``HandleTable`` and the per-run tables kept in ``HostIO.state``.
Handles: files and connections are numbered separately, each from 0; a
number stays valid until its handle is closed and is never given out again
while the program runs (upstream renumbers later handles on close; see
docs/differences.md). The tables close whatever the program left open when
its HostIO is collected.
"""

from __future__ import annotations

import threading
import weakref

from .io import HostIO
from .registry import NativeFailure


class HandleTable:
    """Numbered host objects of one kind: stable numbers, never reused (semantics.md §3.17)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind                 # "file" or "connection", for messages
        self._items: dict[int, object] = {}
        self._next = 0
        self._lock = threading.Lock()    # concurrent programs may share one HostIO

    def add(self, item) -> int:
        with self._lock:
            number = self._next
            self._next += 1
            self._items[number] = item
            return number

    def get(self, number: int):
        item = self._items.get(number)
        if item is None:
            raise NativeFailure(self._unknown(number))
        return item

    def remove(self, number: int):
        with self._lock:
            item = self._items.pop(number, None)
        if item is None:
            raise NativeFailure(self._unknown(number))
        return item

    def close_all(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for item in items:
            try:
                item.close()
            except OSError:
                pass

    def _unknown(self, number: int) -> str:
        if number < self._next:
            return f"{self.kind} handle {number} is closed"
        return f"no open {self.kind} with handle {number}"


def table_of(io: HostIO, key: str, kind: str) -> HandleTable:
    table = io.state.get(key)
    if table is None:
        table = io.state[key] = HandleTable(kind)
        # Close what the program left open once the run's HostIO is gone.
        weakref.finalize(io, table.close_all)
    return table


def files_of(io: HostIO) -> HandleTable:
    return table_of(io, "files", "file")


def connections_of(io: HostIO) -> HandleTable:
    return table_of(io, "connections", "connection")
