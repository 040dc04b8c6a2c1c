"""The garbage collector's pauses: fewer of them, and counted (issue 10: nothing but the
chain's own work may delay a commit).

CPython's cyclic collector stops the whole process, the event loop that runs consensus
among it, for as long as a collection takes, and a full one (generation 2) walks every
container object the process holds. A started node holds about 58,000 of them, nearly all
made at start-up (modules, classes, functions, protobuf descriptors) and alive until it
stops; walking them took 19-31 ms a collection on a quiet core, and 50-160 ms on four
validators sharing two busy cores (measured during `make attack`). Full collections are
rare (two in about two minutes on the busiest node of that run), but each is a stall of
the whole node.

So once the node has started, `freeze_startup_objects` collects what start-up left behind
and moves everything alive to the collector's permanent generation (`gc.freeze`): later
collections walk only what was made since. Objects frozen are still freed when their last
reference goes; only a reference cycle among them would now never be collected, and
start-up's are collected just before.

`GcPauses` times every collection into `spark_gc_pause_seconds{generation}` (the
operator's view of the same question: is the collector what stalls this node?).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# a young collection takes microseconds; a full one of an unfrozen heap tens of milliseconds
GC_PAUSE_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
GENERATIONS = (0, 1, 2)


def freeze_startup_objects() -> int:
    """Collect, then freeze every object alive; returns how many the collector now skips."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauses(Collector):
    """Observes each collection's duration while started (gc.callbacks is per process:
    several nodes in one process each observe every collection); reports the objects
    frozen when scraped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        registry.register(self)
        histogram = Histogram(
            "spark_gc_pause_seconds",
            "How long each garbage collection stopped the process, by generation",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS_S,
            registry=registry,
        )
        self._by_generation = [histogram.labels(str(g)) for g in GENERATIONS]
        self._started = 0.0

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "spark_gc_frozen_objects",
            "Objects alive at start-up that garbage collections no longer walk (gc.freeze)",
            gc.get_freeze_count(),
        )

    def start(self) -> None:
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
