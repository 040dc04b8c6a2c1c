"""The checker: what must hold of a run's history and of the nodes' chains once the faults
have healed (issue 14). Pure: it is given the operations and a view of every node, and
returns the violations, each a sentence naming the op, node, identifier or height.

1. every acknowledged write is in every node's chain at the height acknowledged, and every
   identifier's record on every node is the one its acknowledged writes made, or that plus
   the client's last write whose outcome was unknown;
2. a refused write is in no chain; an unknown one is in all of them at one height, or in none;
3. no read returned a payload or owner that no write (invoked before the read returned)
   produced, nor a payload whose acknowledged write committed above the read's height;
4. reads through one node never go back in height (a read that returned before another was
   invoked saw no higher height);
5. every node holds the same block (hash and state root) at every height, so no height has
   two certified blocks; block times increase strictly and stay within the run's real time,
   moved by at most the largest clock skew.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tests.chaos.history import WRITES, Op


@dataclass(frozen=True)
class BlockView:
    block_hash: str
    state_root: str
    time_ms: int


@dataclass(frozen=True)
class RecordView:
    payload: str
    owner: str


@dataclass
class NodeView:
    name: str
    height: int
    blocks: dict[int, BlockView] = field(default_factory=dict)
    txs: dict[str, int | None] = field(default_factory=dict)  # tx id hex -> height, or absent
    records: dict[str, RecordView | None] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeBounds:
    earliest_ms: int  # no block of the run is older (the genesis time)
    latest_ms: int  # nor newer (the check's time plus the largest forward skew)


def check(
    ops: Sequence[Op], views: Sequence[NodeView], default_owner: str, bounds: TimeBounds
) -> list[str]:
    violations: list[str] = []
    violations += check_writes(ops, views)
    violations += check_records(ops, views, default_owner)
    violations += check_reads(ops, default_owner)
    violations += check_monotonic_reads(ops)
    violations += check_chains(views, bounds)
    return violations


def check_writes(ops: Iterable[Op], views: Sequence[NodeView]) -> list[str]:
    violations = []
    for op in ops:
        if op.f not in WRITES:
            continue
        where = {view.name: view.txs.get(op.tx_id) for view in views}
        if op.outcome == "ok":
            wrong = {name: h for name, h in where.items() if h != op.height}
            if wrong:
                violations.append(
                    f"op {op.id} ({op.f} {op.identifier}) acknowledged at height {op.height} "
                    f"but its tx is at {_places(wrong)}"
                )
        elif op.outcome == "fail":
            present = {name: h for name, h in where.items() if h is not None}
            if present:
                violations.append(
                    f"op {op.id} ({op.f} {op.identifier}) was refused ({op.code}) but its tx "
                    f"is at {_places(present)}"
                )
        elif len(set(where.values())) > 1:
            violations.append(
                f"op {op.id} ({op.f} {op.identifier}), outcome unknown, is only partly "
                f"present: {_places(where)}"
            )
    return violations


def expected_records(ops: Iterable[Op], default_owner: str) -> dict[str, set[RecordView | None]]:
    """Per identifier, the records its writes allow: acknowledged ones applied in order, and
    the last unknown one (after which its client stopped writing it) applied or not."""
    by_identifier: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f in WRITES:
            by_identifier[op.identifier].append(op)
    expected = {}
    for identifier, writes in by_identifier.items():
        state: RecordView | None = None
        candidates: set[RecordView | None] = set()
        for op in sorted(writes, key=lambda o: o.invoked_s):
            if op.outcome == "ok":
                state = _apply(state, op, default_owner)
            elif op.outcome == "info":
                candidates.add(_apply(state, op, default_owner))
        candidates.add(state)
        expected[identifier] = candidates
    return expected


def _apply(state: RecordView | None, op: Op, default_owner: str) -> RecordView | None:
    if op.f == "register":
        return RecordView(op.payload, default_owner) if state is None else state
    if state is None:
        return None  # an update or transfer of an absent record is refused
    if op.f == "update":
        return RecordView(op.payload, state.owner)
    return RecordView(state.payload, op.owner)


def check_records(ops: Iterable[Op], views: Sequence[NodeView], default_owner: str) -> list[str]:
    violations = []
    for identifier, candidates in sorted(expected_records(ops, default_owner).items()):
        for view in views:
            if identifier not in view.records:
                violations.append(f"{view.name}: {identifier} was not read back")
                continue
            found = view.records[identifier]
            if found not in candidates:
                violations.append(
                    f"{view.name}: {identifier} is {found} where its writes allow only "
                    f"{sorted(map(str, candidates))}"
                )
    return violations


def check_reads(ops: Sequence[Op], default_owner: str) -> list[str]:
    """No read saw what no write produced (nor an acknowledged write above its height)."""
    writes_of: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f in WRITES:
            writes_of[op.identifier].append(op)
    violations = []
    for read in ops:
        if read.f != "resolve" or read.outcome != "ok" or not read.found:
            continue
        before = [w for w in writes_of[read.identifier] if w.invoked_s <= read.completed_s]
        payload_writes = [w for w in before if w.f != "transfer" and w.payload == read.seen_payload]
        if not payload_writes:
            violations.append(
                f"op {read.id}: {read.node} returned payload {read.seen_payload!r} of "
                f"{read.identifier}, which no write produced"
            )
        elif all(w.outcome == "ok" and w.height > read.height for w in payload_writes):
            violations.append(
                f"op {read.id}: {read.node} at height {read.height} returned payload "
                f"{read.seen_payload!r} of {read.identifier}, committed only at height "
                f"{min(w.height for w in payload_writes)}"
            )
        owners = {default_owner} | {w.owner for w in before if w.f == "transfer"}
        if read.seen_owner not in owners:
            violations.append(
                f"op {read.id}: {read.node} returned owner {read.seen_owner} of "
                f"{read.identifier}, which no write produced"
            )
    return violations


def check_monotonic_reads(ops: Sequence[Op]) -> list[str]:
    """A read through a node that began after another through it returned never sees a
    lower height."""
    violations = []
    reads_by_node: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.outcome == "ok" and op.height > 0 and (op.f == "status" or op.found):
            reads_by_node[op.node].append(op)
    for node, reads in sorted(reads_by_node.items()):
        by_completion = sorted(reads, key=lambda r: r.completed_s)
        highest: Op | None = None
        done = 0
        for read in sorted(reads, key=lambda r: r.invoked_s):
            while done < len(by_completion) and by_completion[done].completed_s < read.invoked_s:
                if highest is None or by_completion[done].height > highest.height:
                    highest = by_completion[done]
                done += 1
            if highest is not None and read.height < highest.height:
                violations.append(
                    f"{node} went back in height: op {read.id} saw {read.height} after op "
                    f"{highest.id} had seen {highest.height}"
                )
    return violations


def check_chains(views: Sequence[NodeView], bounds: TimeBounds) -> list[str]:
    violations = []
    top = max((view.height for view in views), default=0)
    previous_time = bounds.earliest_ms
    for height in range(1, top + 1):
        blocks = {view.name: view.blocks[height] for view in views if height in view.blocks}
        if not blocks:
            violations.append(f"height {height}: no node returned its block")
            continue
        hashes = {block.block_hash for block in blocks.values()}
        if len(hashes) > 1:
            violations.append(
                f"height {height}: nodes hold different blocks: "
                + ", ".join(f"{name} {block.block_hash[:16]}" for name, block in blocks.items())
            )
        roots = {block.state_root for block in blocks.values()}
        if len(roots) > 1:
            violations.append(f"height {height}: nodes hold different state roots")
        time_ms = next(iter(blocks.values())).time_ms
        if time_ms <= previous_time:
            violations.append(
                f"height {height}: block time {time_ms} is not after the previous {previous_time}"
            )
        if time_ms > bounds.latest_ms:
            violations.append(
                f"height {height}: block time {time_ms} is {time_ms - bounds.latest_ms} ms "
                "beyond real time plus the largest clock skew"
            )
        previous_time = time_ms
    return violations


def _places(where: dict[str, int | None]) -> str:
    return ", ".join(
        f"{name}: {'absent' if h is None else f'height {h}'}" for name, h in sorted(where.items())
    )
