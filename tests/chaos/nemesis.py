"""The faults (nemeses) and their seeded schedule.

A schedule is a list of `Fault`s, each applied at `at_s` seconds into the run and healed
`duration_s` later, one at a time (with at most one validator of four faulty, a quorum
stays, so the chain must keep going during most faults and must recover after every one).
It is printed as JSON with the seed, and `make chaos SEED=n DURATION=s` rebuilds it.

Kinds:
- kill: kill -9 a validator or the observer; restart it when healed;
- pause: SIGSTOP one node longer than every timeout (peer keepalive 10 s + 5 s, handshake
  5 s, the consensus timeouts), then SIGCONT;
- partition: majority/minority, halves (no quorum anywhere: the chain must stop, then
  resume) or a bridge (one node sees both sides, the sides not each other);
- links: delay, jitter (messages of different peers reordered) and loss on every link;
- skew: restart one validator with its clock seconds ahead (or behind) of the others;
- disk: fill the disk of the validator whose home is on a small tmpfs; it must fail-stop,
  and restart cleanly once space returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparkchain.node.clock import TEST_CLOCK_OFFSET_ENV
from tests.chaos import disk
from tests.chaos.proxy import ProxyNet
from tests.helpers.cluster import Cluster, until

KINDS = ("kill", "pause", "partition", "links", "skew", "disk")
PAUSE_MIN_S = 16.0  # longer than every timeout (keepalive 10 s + 5 s is the longest)
DISK_MB = 96
DISK_EXIT_TIMEOUT_S = 45.0
NODE_UP_TIMEOUT_S = 90.0


@dataclass
class Fault:
    kind: str
    at_s: float
    duration_s: float
    targets: list[str] = field(default_factory=list)
    # partition: groups of node names; links: delay_ms, jitter_ms, loss; skew: offset_ms
    params: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def make_schedule(
    seed: int,
    duration_s: float,
    validators: list[str],
    observers: list[str],
    disk_node: str | None,
    *,
    short: bool = False,
) -> list[Fault]:
    """Faults filling `duration_s`: every kind once in a seeded order, then seeded picks,
    each followed by a quiet gap in which the chain must make progress. `short`: every kind
    once (kill -9 only inside the skew fault), each as brief as its kind allows (the
    schedule of `make test`). Without a
    `disk_node` (no tmpfs here) there is no disk fault."""
    rng = random.Random(seed)
    available = [kind for kind in KINDS if kind != "disk" or disk_node is not None]
    # a skew fault kills -9 and restarts its node twice: the short schedule counts on it
    # for its kills, which saves two restarts' time
    kinds = [kind for kind in available if not (short and kind == "kill")]
    rng.shuffle(kinds)
    schedule: list[Fault] = []
    at = 3.0
    while kinds or not short:
        kind = kinds.pop(0) if kinds else rng.choice(available)
        fault = _fault(rng, kind, at, validators, observers, disk_node or "")
        if short:
            fault.duration_s = PAUSE_MIN_S if kind == "pause" else 4.0
        elif schedule and at + fault.duration_s > duration_s:
            break
        fault.duration_s = round(fault.duration_s, 1)  # a schedule people read
        schedule.append(fault)
        at = round(at + fault.duration_s + (2.0 if short else rng.uniform(3.0, 6.0)), 1)
    return schedule


def _fault(
    rng: random.Random,
    kind: str,
    at: float,
    validators: list[str],
    observers: list[str],
    disk_node: str,
) -> Fault:
    everyone = validators + observers
    if kind == "kill":
        return Fault(kind, at, rng.uniform(3.0, 10.0), [rng.choice(everyone)])
    if kind == "pause":
        return Fault(kind, at, rng.uniform(PAUSE_MIN_S, PAUSE_MIN_S + 6.0), [rng.choice(everyone)])
    if kind == "partition":
        shuffled = rng.sample(validators, len(validators))
        shape = rng.choice(("minority", "halves", "bridge"))
        if shape == "minority":
            groups = [shuffled[1:] + observers, shuffled[:1]]
        elif shape == "halves":
            half = len(shuffled) // 2
            groups = [shuffled[:half], shuffled[half:] + observers]
        else:  # bridge: shuffled[0] sees both sides
            half = 1 + (len(shuffled) - 1) // 2
            groups = [shuffled[:half], [shuffled[0], *shuffled[half:], *observers]]
        return Fault(kind, at, rng.uniform(6.0, 14.0), [], {"shape": shape, "groups": groups})
    if kind == "links":
        params = {
            "delay_ms": rng.randint(5, 60),
            "jitter_ms": rng.randint(0, 80),
            "loss": round(rng.uniform(0.0, 0.02), 4),
        }
        return Fault(kind, at, rng.uniform(6.0, 12.0), [], params)
    if kind == "skew":
        offset = rng.choice((-1, 1)) * rng.randint(2000, 5000)
        return Fault(
            kind, at, rng.uniform(6.0, 12.0), [rng.choice(validators)], {"offset_ms": offset}
        )
    if kind == "disk":
        return Fault(kind, at, rng.uniform(6.0, 10.0), [disk_node])
    raise ValueError(f"unknown fault kind {kind!r}")


class Nemesis:
    """Applies and heals faults on a running cluster; notes what it saw (for the report and
    for the checker: a full disk that did not stop its node is a violation)."""

    def __init__(self, cluster: Cluster, proxies: ProxyNet, disk_home: Path | None) -> None:
        self.cluster = cluster
        self.proxies = proxies
        self.disk_home = disk_home
        self.disk_size_mb = DISK_MB
        self.violations: list[str] = []
        self.notes: list[str] = []
        self.max_forward_skew_ms = 0
        self._paused: int | None = None

    def apply(self, fault: Fault) -> None:
        cluster = self.cluster
        if fault.kind == "kill":
            cluster.kill9(fault.targets[0])
        elif fault.kind == "pause":
            self._paused = cluster.pid(fault.targets[0])
            assert self._paused is not None, f"{fault.targets[0]} is not running"
            os.kill(self._paused, signal.SIGSTOP)
        elif fault.kind == "partition":
            groups = fault.params["groups"]
            assert isinstance(groups, list)
            self.proxies.partition(groups)
        elif fault.kind == "links":
            params = fault.params
            self.proxies.perturb(
                int(str(params["delay_ms"])),
                int(str(params["jitter_ms"])),
                float(str(params["loss"])),
            )
        elif fault.kind == "skew":
            name = fault.targets[0]
            offset = int(str(fault.params["offset_ms"]))
            self.max_forward_skew_ms = max(self.max_forward_skew_ms, offset)
            cluster.kill9(name)  # a crash, then up again with the skewed clock
            cluster.node_env[name] = {TEST_CLOCK_OFFSET_ENV: str(offset)}
            cluster.start(name)
        elif fault.kind == "disk":
            assert self.disk_home is not None
            disk.fill(self.disk_home)

    def during(self, fault: Fault, until_s: float) -> None:
        """Wait out the fault (a full disk: its node must stop within a bound)."""
        if fault.kind == "disk":
            name = fault.targets[0]
            start_height = max(self.cluster.height(n) for n in self.cluster.nodes)
            deadline = time.monotonic() + DISK_EXIT_TIMEOUT_S
            while self.cluster.running(name) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.cluster.running(name):
                top = max(self.cluster.height(n) for n in self.cluster.nodes)
                if top > start_height + 1:
                    self.violations.append(
                        f"disk: {name} kept running on a full disk while the chain went from "
                        f"height {start_height} to {top} (expected a fail-stop)"
                    )
            else:
                self.notes.append(f"disk: {name} stopped on a full disk")
        remaining = until_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def heal(self, fault: Fault) -> None:
        cluster = self.cluster
        name = fault.targets[0] if fault.targets else ""
        if fault.kind == "kill":
            cluster.restart(name)
        elif fault.kind == "pause":
            assert self._paused is not None
            os.kill(self._paused, signal.SIGCONT)
            self._paused = None
        elif fault.kind in ("partition", "links"):
            self.proxies.heal()
        elif fault.kind == "skew":
            cluster.kill9(name)
            cluster.node_env.pop(name, None)
            cluster.start(name)
        elif fault.kind == "disk":
            assert self.disk_home is not None
            self.disk_size_mb += 16
            disk.free(self.disk_home, self.disk_size_mb)
            if not cluster.running(name):
                cluster.start(name)

    def heal_everything(self) -> None:
        """On every exit path: no paused process, no cut link, no full disk."""
        if self._paused is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._paused, signal.SIGCONT)
            self._paused = None
        self.proxies.heal()
        if self.disk_home is not None:
            try:
                disk.free(self.disk_home, self.disk_size_mb + 16)
            except disk.DiskUnavailable as error:
                self.notes.append(f"disk: could not free space at the end: {error}")


def wait_up(cluster: Cluster, name: str) -> None:
    until(lambda: cluster.height(name) >= 0, NODE_UP_TIMEOUT_S, f"{name} to answer")
