"""The simulated network: per-link delay ranges, loss and duplication before GST,
partitions that start and heal. Every draw comes from the simulation's seeded Random."""

from __future__ import annotations

import random

from sparkchain.consensus.sim.plan import Plan


class Network:
    def __init__(self, plan: Plan, rng: random.Random) -> None:
        self._rng = rng
        self._gst = plan.gst
        self._loss = plan.loss
        self._duplicate = plan.duplicate
        nodes = range(plan.node_count)
        # each link has its own delay range (some links are slow), before and after GST
        self._before = {(a, b): _link(rng, plan.pre_gst_max_delay_ms) for a in nodes for b in nodes}
        self._after = {(a, b): _link(rng, plan.max_delay_ms) for a in nodes for b in nodes}
        self._partitions = [
            (p.start_ms, p.end_ms, {node: g for g, group in enumerate(p.groups) for node in group})
            for p in plan.partitions
        ]

    def separated(self, src: int, dst: int, now: int) -> bool:
        for start, end, group_of in self._partitions:
            if start <= now < end and group_of.get(src, -1 - src) != group_of.get(dst, -1 - dst):
                return True
        return False

    def delays(self, src: int, dst: int, now: int) -> list[int]:
        """When the copies of a message sent now arrive (none: lost), in ms from now."""
        if self._partitions and self.separated(src, dst, now):
            return []
        rng = self._rng
        before = now < self._gst
        if before and self._loss and rng.random() < self._loss:
            return []
        low, high = (self._before if before else self._after)[(src, dst)]
        arrivals = [rng.randint(low, high)]
        if self._duplicate and rng.random() < self._duplicate:
            arrivals.append(rng.randint(low, high))
        return arrivals


def _link(rng: random.Random, max_delay_ms: int) -> tuple[int, int]:
    high = max(1, max_delay_ms)
    low = rng.randint(1, max(1, high // 2))
    return low, rng.randint(low, high)
