"""The reference backend's profile counters: what csrc/vv_debug.h's ``vv_prof`` counts, in Python.

Owns ``ProfileCounters``: per address, instructions completed and nanoseconds
spent, and the calling-context tree (a node per distinct chain of entered
function entries, found from the call depth before each instruction) with
call counts. The rules are the C core's, step for step (the node budget, the
shared last bucket for addresses past the image), so that both backends give
the same counts (tests/debugging/ checks it); only the times differ.
"""

from __future__ import annotations

import time

MAX_NODES = 1 << 20          # VV_PROF_MAX_NODES


class ProfileCounters:
    """One run's counters; ``tick`` before every instruction, ``untick`` when it did not run."""

    def __init__(self, length: int, ip: int, depth: int) -> None:
        self.buckets = length + 2
        self.count: dict[int, int] = {}
        self.ns: dict[int, int] = {}
        # node: [entry, parent, children {entry: node}, calls, count, ns]
        self.nodes: list[list] = [[ip, 0, {}, 1, 0, 0]]
        self.cur = self.prev_node = 0
        self.depth = depth
        self.lost = 0
        self.prev_addr = min(ip, self.buckets - 1)
        self.last = time.perf_counter_ns()
        self.final = False

    def _move(self, address: int, depth: int) -> None:
        nodes = self.nodes
        while self.depth > depth:
            self.depth -= 1
            if self.lost:
                self.lost -= 1
            elif self.cur:
                self.cur = nodes[self.cur][1]
        while self.depth < depth:
            self.depth += 1
            child = nodes[self.cur][2].get(address)
            if child is None:
                if self.lost or len(nodes) >= MAX_NODES:
                    self.lost += 1
                    continue
                child = len(nodes)
                nodes.append([address, self.cur, {}, 0, 0, 0])
                nodes[self.cur][2][address] = child
            nodes[child][3] += 1
            self.cur = child

    def tick(self, address: int, depth: int) -> None:
        now = time.perf_counter_ns()
        dt = now - self.last
        self.last = now
        self.ns[self.prev_addr] = self.ns.get(self.prev_addr, 0) + dt
        self.nodes[self.prev_node][5] += dt
        if depth != self.depth:
            self._move(address, depth)
        a = min(address, self.buckets - 1)
        self.count[a] = self.count.get(a, 0) + 1
        self.nodes[self.cur][4] += 1
        self.prev_addr, self.prev_node = a, self.cur

    def untick(self) -> None:
        self.count[self.prev_addr] -= 1
        self.nodes[self.prev_node][4] -= 1

    def settle(self) -> None:
        """The run ended (halt or trap): the time since the last instruction is its; the clock stops."""
        if self.final:
            return
        now = time.perf_counter_ns()
        dt = now - self.last
        self.last = now
        self.ns[self.prev_addr] = self.ns.get(self.prev_addr, 0) + dt
        self.nodes[self.prev_node][5] += dt

    def data(self) -> dict:
        """What ``Core.profile_data()`` returns (see voxvm/backends/compiled/_core.pyx)."""
        self.settle()
        addresses = [(a, self.count.get(a, 0), self.ns.get(a, 0))
                     for a in sorted(set(self.count) | set(self.ns))
                     if self.count.get(a, 0) or self.ns.get(a, 0)]
        nodes = [(entry, parent, calls, count, ns) for entry, parent, _, calls, count, ns in self.nodes]
        return {"addresses": addresses, "nodes": nodes, "buckets": self.buckets}
