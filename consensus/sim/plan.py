"""A fault plan: everything that makes one simulated run what it is, as plain data.

A plan plus the simulator's code determines a run exactly (all randomness comes from
`seed`), so a failing plan printed as JSON replays alone:
`python -m sparkchain.consensus.sim.cli --replay '<json>'`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

STRATEGIES: Final = (
    "silent",  # sends nothing at all
    "equivocating-proposer",  # two values per proposal, one to each half of the peers
    "double-voter",  # two different votes per step, one to each half
    "invalid-proposer",  # proposes values that fail validation
    "unknown-voter",  # votes for block hashes nobody has seen
    "coalition",  # with its partners: pulls one half of the peers to a value, the other away
    "split-voter",  # conflicting votes for values really proposed, one to each half
    "round-hopper",  # also votes for past and future rounds
    "valid-round-liar",  # proposals with arbitrary valid rounds
)
SIZES: Final = tuple(range(1, 11))  # validator counts random plans draw from


@dataclass(frozen=True)
class Crash:
    node: int  # validator index
    at_ms: int
    restart_ms: int | None = None  # None: never comes back
    keep_record: bool = True  # False: restarts without its last-signed record (amnesia)


@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int
    groups: tuple[tuple[int, ...], ...]  # node ids; a node in no group is alone


@dataclass(frozen=True)
class Plan:
    seed: int
    n: int
    heights: int = 3  # every live correct node must commit this many
    byzantine: tuple[tuple[int, str], ...] = ()  # (validator index, strategy)
    twins: tuple[int, ...] = ()  # validators run as two honest nodes sharing one key
    crashes: tuple[Crash, ...] = ()
    partitions: tuple[Partition, ...] = ()
    loss: float = 0.0  # message loss probability before GST
    duplicate: float = 0.0  # duplication probability (always)
    max_delay_ms: int = 40  # per-link delay bound after GST
    pre_gst_max_delay_ms: int = 40  # per-link delay bound before GST
    gst_ms: int = 0  # loss stops; partitions and restarts end by max(gst_ms, their end)
    real_crypto: bool = False  # Ed25519 instead of the fake scheme
    liveness_budget_ms: int | None = None  # None: derived from the timeouts
    # a validator-set change (DESIGN §12): from `change_height` on, the validators are the
    # first n less `leavers`, plus `joiners` new honest validators (indices n, n+1, ...)
    change_height: int = 0  # 0: the set never changes
    joiners: int = 0
    leavers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.n < 1:
            problems.append(f"n = {self.n}")
        for index, name in self.byzantine:
            if not 0 <= index < self.n or name not in STRATEGIES:
                problems.append(f"byzantine {index} {name!r}")
        problems += [f"twin {t}" for t in self.twins if not 0 <= t < self.n]
        problems += [f"crash of {c.node}" for c in self.crashes if not 0 <= c.node < self.n]
        problems += [f"leaver {x}" for x in self.leavers if not 0 <= x < self.n]
        if self.joiners < 0 or (self.change_height and len(self.validators_at(1 << 62)) < 1):
            problems.append("a set change that leaves no validator")
        for partition in self.partitions:
            nodes = [node for group in partition.groups for node in group]
            problems += [f"partition node {x}" for x in nodes if not 0 <= x < self.node_count]
        if problems:
            raise ValueError(f"plan: not valid: {', '.join(problems)}")

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def node_count(self) -> int:
        return self.n + len(self.twins) + self.joiners

    @property
    def validator_count(self) -> int:
        """Keys in the run: the first set's and the joiners'."""
        return self.n + self.joiners

    def validator_of(self, node: int) -> int:
        if node < self.n:
            return node
        if node < self.n + len(self.twins):
            return self.twins[node - self.n]
        return node - len(self.twins)  # a joiner

    def validators_at(self, height: int) -> tuple[int, ...]:
        """The indices of the validators that sign `height`."""
        if not self.change_height or height < self.change_height:
            return tuple(range(self.n))
        kept = tuple(i for i in range(self.n) if i not in self.leavers)
        return kept + tuple(range(self.n, self.n + self.joiners))

    def _sets(self) -> list[tuple[int, ...]]:
        sets = [self.validators_at(1)]
        if self.change_height:
            sets.append(self.validators_at(self.change_height))
        return sets

    @property
    def gst(self) -> int:
        ends = [self.gst_ms]
        ends += [p.end_ms for p in self.partitions]
        ends += [c.restart_ms for c in self.crashes if c.restart_ms is not None]
        return max(ends)

    @property
    def byzantine_validators(self) -> frozenset[int]:
        """Validators whose key may sign anything: byzantine, twins, restarted amnesiacs."""
        amnesia = {c.node for c in self.crashes if not c.keep_record}
        return frozenset({i for i, _ in self.byzantine} | set(self.twins) | amnesia)

    @property
    def faulty_validators(self) -> frozenset[int]:
        gone = {c.node for c in self.crashes if c.restart_ms is None}
        return self.byzantine_validators | gone

    @property
    def expects_safety(self) -> bool:
        """At most f of each set may sign anything (f of that set's size)."""
        faulty = self.byzantine_validators
        return all(len(faulty & set(s)) <= (len(s) - 1) // 3 for s in self._sets())

    @property
    def expects_liveness(self) -> bool:
        faulty = self.faulty_validators
        return all(len(faulty & set(s)) <= (len(s) - 1) // 3 for s in self._sets())

    def to_json(self) -> str:
        data = asdict(self)
        defaults = asdict(Plan(seed=0, n=1))
        return json.dumps(
            {k: v for k, v in data.items() if k in ("seed", "n") or v != defaults[k]},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["byzantine"] = tuple((int(i), str(s)) for i, s in data.get("byzantine", ()))
        data["twins"] = tuple(data.get("twins", ()))
        data["crashes"] = tuple(Crash(**c) for c in data.get("crashes", ()))
        data["leavers"] = tuple(data.get("leavers", ()))
        data["partitions"] = tuple(
            Partition(p["start_ms"], p["end_ms"], tuple(tuple(g) for g in p["groups"]))
            for p in data.get("partitions", ())
        )
        return cls(**data)

    def with_(self, **changes: Any) -> Plan:
        return replace(self, **changes)


def random_plan(seed: int, sizes: tuple[int, ...] = SIZES) -> Plan:
    """A plan drawn from `seed` alone (what `make sim SEEDS=N` runs, for seeds 0..N-1).

    Faults stay within what the protocol promises to survive (at most f byzantine or
    crashed validators), so any violation it finds is a bug.
    """
    rng = random.Random(seed)
    n = rng.choice(sizes)
    f = (n - 1) // 3
    validators = list(range(n))
    rng.shuffle(validators)
    # half the plans use the whole fault budget: coalitions of exactly f (amnesiacs count)
    budget = f if rng.random() < 0.5 else rng.randint(0, f)
    faulty = validators[:budget]
    byzantine: list[tuple[int, str]] = []
    twins: list[int] = []
    crashes: list[Crash] = []
    coalition = rng.random() < 0.25
    for index in faulty:
        kind = rng.random()
        if coalition:
            byzantine.append((index, "coalition"))
        elif kind < 0.15:
            twins.append(index)
        elif kind < 0.3:
            crashes.append(Crash(index, rng.randint(0, 3000), None))
        elif kind < 0.4:
            restart = rng.randint(0, 3000)
            crashes.append(Crash(index, restart, restart + rng.randint(10, 2000), False))
        else:
            byzantine.append((index, rng.choice(STRATEGIES)))
    correct = validators[budget:]
    for index in correct:  # crash-recovery with the record is not a fault
        if rng.random() < 0.15:
            at = rng.randint(0, 3000)
            crashes.append(Crash(index, at, at + rng.randint(10, 3000), True))
    node_count = n + len(twins)
    partitions: list[Partition] = []
    for _ in range(rng.choice((0, 0, 1, 2))):
        start = rng.randint(0, 3000)
        nodes = list(range(node_count))
        rng.shuffle(nodes)
        cut = rng.randint(1, max(1, node_count - 1))
        groups = (tuple(sorted(nodes[:cut])), tuple(sorted(nodes[cut:])))
        partitions.append(Partition(start, start + rng.randint(100, 4000), groups))
    plan = Plan(
        seed=seed,
        n=n,
        heights=rng.randint(1, 4),
        byzantine=tuple(sorted(byzantine)),
        twins=tuple(sorted(twins)),
        crashes=tuple(crashes),
        partitions=tuple(partitions),
        loss=rng.choice((0.0, 0.0, 0.05, 0.2, 0.5)),
        duplicate=rng.choice((0.0, 0.05, 0.2)),
        max_delay_ms=rng.randint(1, 60),
        pre_gst_max_delay_ms=rng.choice((20, 60, 200, 600)),
        gst_ms=rng.randint(0, 4000),
    )
    return _with_set_change(plan)


def _with_set_change(plan: Plan) -> Plan:
    """A third of the plans change the set at height 2 or 3, drawn from their own random
    stream (so the faults of a seed stay what they were): joiners, and leavers taken first
    from the faulty validators (the operators remove a broken member), within ⌊(n−1)/3⌋."""
    rng = random.Random(plan.seed ^ 0x5E7C4A)
    if rng.random() >= 1 / 3:
        return plan
    change_height = rng.randint(2, 3)
    faulty = sorted(plan.faulty_validators)
    others = [i for i in range(plan.n) if i not in plan.faulty_validators]
    rng.shuffle(faulty)
    rng.shuffle(others)
    leavers = (faulty + others)[: rng.randint(0, plan.f)]
    changed = plan.with_(
        change_height=change_height,
        heights=max(plan.heights, change_height + 1),
        joiners=rng.randint(0, 2),
        leavers=tuple(sorted(leavers)),
    )
    if plan.expects_safety and not changed.expects_safety:
        return changed.with_(leavers=())
    if plan.expects_liveness and not changed.expects_liveness:
        return changed.with_(leavers=())
    return changed
