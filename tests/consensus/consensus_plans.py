"""Hypothesis strategies that build fault plans within the protocol's fault budget:
at most f validators byzantine, twinned, amnesiac or gone for good; any number of correct
validators that crash and restart with their record; partitions that heal; message loss
before GST, duplication, reordering by per-link delays."""

from __future__ import annotations

from hypothesis import strategies as st

from sparkchain.consensus.sim.plan import STRATEGIES, Crash, Partition, Plan

FAULTS = (*STRATEGIES, "twin", "crash-for-good", "amnesia")
HORIZON_MS = 4000  # faults start within this much virtual time


@st.composite
def crash_recovery(draw: st.DrawFn, node: int, keep_record: bool) -> Crash:
    at = draw(st.integers(0, HORIZON_MS))
    return Crash(node, at, at + draw(st.integers(1, 3000)), keep_record)


@st.composite
def partitions(draw: st.DrawFn, node_count: int) -> tuple[Partition, ...]:
    found = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, HORIZON_MS))
        length = draw(st.integers(50, 4000))
        sides = draw(st.lists(st.integers(0, 1), min_size=node_count, max_size=node_count))
        groups = tuple(
            tuple(node for node in range(node_count) if sides[node] == side) for side in (0, 1)
        )
        found.append(Partition(start, start + length, groups))
    return tuple(found)


@st.composite
def plans(draw: st.DrawFn, n: int) -> Plan:
    f = (n - 1) // 3
    faulty = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=f))
    coalition = f > 0 and draw(st.booleans()) and draw(st.booleans())
    byzantine: list[tuple[int, str]] = []
    twins: list[int] = []
    crashes: list[Crash] = []
    for validator in faulty:
        fault = "coalition" if coalition else draw(st.sampled_from(FAULTS))
        if fault == "twin":
            twins.append(validator)
        elif fault == "crash-for-good":
            crashes.append(Crash(validator, draw(st.integers(0, HORIZON_MS)), None))
        elif fault == "amnesia":
            crashes.append(draw(crash_recovery(validator, keep_record=False)))
        else:
            byzantine.append((validator, fault))
    for validator in range(n):
        if validator not in faulty and draw(st.integers(0, 9)) == 0:
            crashes.append(draw(crash_recovery(validator, keep_record=True)))
    return Plan(
        seed=draw(st.integers(0, 2**32 - 1)),
        n=n,
        heights=draw(st.integers(1, 3)),
        byzantine=tuple(sorted(byzantine)),
        twins=tuple(sorted(twins)),
        crashes=tuple(crashes),
        partitions=draw(partitions(n + len(twins))),
        loss=draw(st.sampled_from((0.0, 0.05, 0.2, 0.5))),
        duplicate=draw(st.sampled_from((0.0, 0.1))),
        max_delay_ms=draw(st.integers(1, 60)),
        pre_gst_max_delay_ms=draw(st.sampled_from((20, 100, 400))),
        gst_ms=draw(st.integers(0, HORIZON_MS)),
    )
