"""The deterministic simulator: n consensus cores over a virtual network, one event at a time.

Single-threaded, virtual time in ms, every random draw from one Random seeded by the plan.
Each simulated node is a thin model of the node runtime: it executes the core's effects in
order, keeps a durable chain and last-signed record across crashes, announces its committed
height to its peers, re-sends what a lagging peer lacks with the node's own relay
(consensus/relay.py: link-up and stuck-interval re-sends), and catches up with certified
blocks (block sync) from a peer that announced a greater height or sent a message of a
later height.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sparkchain.consensus.app import Application, TimeoutConfig
from sparkchain.consensus.certificate import verify_certificate
from sparkchain.consensus.core import ConsensusCore
from sparkchain.consensus.crypto import Ed25519Signer, Ed25519Verifier, Signer, Verifier
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import (
    Broadcast,
    Commit,
    CommitCertificate,
    Effect,
    EvidenceFound,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Vote,
)
from sparkchain.consensus.pacing import START_NOW, Pacing
from sparkchain.consensus.relay import PeerView, Relay
from sparkchain.consensus.signbytes import chain_prefix
from sparkchain.consensus.sim.byzantine import SIMPLE_STRATEGIES, Coalition, Strategy
from sparkchain.consensus.sim.chain import Chain, ChainApp, value_hash
from sparkchain.consensus.sim.checker import LIVENESS, SAFETY, WARNINGS, Checker, Violation
from sparkchain.consensus.sim.fakecrypto import FakeSigner, FakeVerifier, fake_public_key
from sparkchain.consensus.sim.network import Network
from sparkchain.consensus.sim.plan import Plan
from sparkchain.identifiers.errors import SparkError
from sparkchain.identifiers.keys import SigningKey

CHAIN_ID: Final = "sim-chain"
TIMEOUTS: Final = TimeoutConfig(propose_ms=300, prevote_ms=150, precommit_ms=150, delta_ms=100)
GOSSIP_INTERVAL_MS: Final = 400  # the relay interval (the node's, scaled like the timeouts)
SYNC_COOLDOWN_MS: Final = 150  # at most one block request to a peer this often
SYNC_BLOCKS: Final = 16  # certified blocks sent to a lagging peer at once
MAX_EVENTS: Final = 2_000_000
HEIGHTS_PAST_TARGET: Final = 2  # nodes stop starting heights this far past the plan's target

CoreFactory = Callable[..., ConsensusCore]

# the node's pacing (consensus/pacing.py), scaled like the timeouts; the simulated
# application always has a value to propose
BLOCK_INTERVAL_MS: Final = 20

# event kinds
_DELIVER, _TIMER, _GOSSIP, _CRASH, _RESTART, _PACE = range(6)


@dataclass(frozen=True)
class Height:
    """A peer's announcement of its last committed height (the node: PeerMessage height)."""

    committed: int


@dataclass(frozen=True)
class SyncRequest:
    """Block sync: certified blocks from `first` on, please (the node: Peer.GetBlocks)."""

    first: int


@dataclass(frozen=True)
class SyncBlocks:
    blocks: tuple[tuple[int, bytes, CommitCertificate], ...]


@dataclass
class Result:
    plan: Plan
    violations: list[Violation]
    heights: dict[int, int]  # node -> committed height
    finished: bool  # every live correct node reached plan.heights
    end_ms: int
    events: int
    evidence_against: set[bytes]  # keys correct nodes found equivocating
    double_signers: set[bytes]
    decisions: int
    chains: dict[int, list[bytes]]  # node -> committed values
    commit_times: dict[tuple[int, int], int]  # (node, height) -> virtual ms
    trace: list[str] = field(default_factory=list)
    # node -> the certificates of its committed values, in height order
    certificates: dict[int, list[CommitCertificate]] = field(default_factory=dict)

    @property
    def safety_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.kind in SAFETY]

    @property
    def failures(self) -> list[Violation]:
        """Violations of what the plan's fault budget promises."""
        plan = self.plan
        return [
            v
            for v in self.violations
            if (v.kind in SAFETY and plan.expects_safety)
            or (v.kind == LIVENESS and plan.expects_liveness)
        ]

    @property
    def replay_command(self) -> str:
        return f"python -m sparkchain.consensus.sim.cli --replay '{self.plan.to_json()}'"


class SimNode:
    def __init__(
        self, node_id: int, validator: int, signer: Signer, strategy: Strategy, correct: bool
    ) -> None:
        self.id = node_id
        self.validator = validator
        self.signer = signer
        self.strategy = strategy
        self.correct = correct
        self.chain = Chain()
        self.app = ChainApp(self.chain, node_id)
        self.record: bytes | None = None  # the durable last-signed record
        self.parsed_record: LastSigned | None = None
        self.core: ConsensusCore | None = None
        self.up = True
        self.incarnation = 0
        self.relay = Relay()
        self.pacing = Pacing(BLOCK_INTERVAL_MS, 0)
        self.peer_heights: dict[int, int] = {}  # last committed height each peer announced
        self.links: dict[int, tuple[int, int, int]] = {}  # peer -> (incarnations, link epoch)
        self.sync_asked: dict[int, int] = {}  # peer -> when we last asked it for blocks


class Simulation:
    def __init__(
        self,
        plan: Plan,
        core_factory: CoreFactory = ConsensusCore,
        *,
        trace: bool = False,
    ) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self._core_factory = core_factory
        self._trace_on = trace
        self.trace: list[str] = []
        n = plan.validator_count
        signers: list[Signer]
        self.verifier: Verifier
        if plan.real_crypto:
            keys = [SigningKey.from_seed(fake_public_key(i)) for i in range(n)]
            signers = [Ed25519Signer(k) for k in keys]
            self.verifier = Ed25519Verifier()
        else:
            signers = [FakeSigner(fake_public_key(i)) for i in range(n)]
            self.verifier = FakeVerifier()
        self.validators = tuple(s.public_key for s in signers)  # every key of the run
        self._sets = {
            h: tuple(self.validators[i] for i in plan.validators_at(h))
            for h in (1, plan.change_height or 1)
        }
        prefix = chain_prefix(CHAIN_ID)
        byzantine = dict(plan.byzantine)
        faulty = plan.byzantine_validators
        group_b = self._coalition_split()
        self._coalition_known: dict[tuple[int, int], bytes] = {}
        self.nodes: list[SimNode] = []
        for node_id in range(plan.node_count):
            validator = plan.validator_of(node_id)
            name = byzantine.get(validator, "honest")
            node_rng = random.Random(plan.seed * 1_000_003 + node_id)
            strategy: Strategy
            if name == "coalition":
                strategy = Coalition(
                    signers[validator], prefix, node_rng, group_b, self._coalition_known
                )
            else:
                strategy = SIMPLE_STRATEGIES[name](signers[validator], prefix, node_rng)
            node = SimNode(
                node_id, validator, signers[validator], strategy, validator not in faulty
            )
            node.app.invalid = name == "invalid-proposer"
            self.nodes.append(node)
        self.checker = Checker(
            CHAIN_ID,
            self.validators_at,
            frozenset(self.validators[i] for i in range(n) if i not in faulty),
            self.verifier,
        )
        self.network = Network(plan, self.rng)
        self._link_epochs: dict[tuple[int, int], int] = {}  # a pair's reconnections
        self.now = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0
        self.events = 0
        self.evidence_against: set[bytes] = set()
        self.decisions = 0
        self.commit_times: dict[tuple[int, int], int] = {}
        gone = {c.node for c in plan.crashes if c.restart_ms is None}
        self._live_correct = [
            node for node in self.nodes if node.correct and node.validator not in gone
        ]

    # ---- set-up ----

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The keys that sign `height` (the plan's set change, if any)."""
        change = self.plan.change_height
        return self._sets[change if change and height >= change else 1]

    def _coalition_split(self) -> frozenset[int]:
        nodes = list(range(self.plan.node_count))
        random.Random(self.plan.seed ^ 0x5EED).shuffle(nodes)
        return frozenset(nodes[: len(nodes) // 2])

    def _push(self, at: int, kind: int, target: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, target, payload))

    def _log(self, text: str) -> None:
        if self._trace_on:
            self.trace.append(f"{self.now:>7} {text}")

    def _new_core(self, node: SimNode, record: LastSigned | None) -> ConsensusCore:
        app: Application = node.app
        return self._core_factory(
            CHAIN_ID,
            self.validators_at,
            node.signer,
            app,
            TIMEOUTS,
            record,
            verifier=self.verifier,
        )

    # ---- the run ----

    def run(self) -> Result:
        plan = self.plan
        for crash in plan.crashes:
            self._push(crash.at_ms, _CRASH, crash.node, None)
            if crash.restart_ms is not None:
                self._push(crash.restart_ms, _RESTART, crash.node, crash.keep_record)
        for node in self.nodes:
            node.core = self._new_core(node, None)
            self._push(self.rng.randint(1, GOSSIP_INTERVAL_MS), _GOSSIP, node.id, 0)
        for node in self.nodes:
            self._execute(node, node.core.start(1) if node.core else [])
        deadline = plan.gst + self._liveness_budget()
        queue = self._queue
        decisions = -1
        while queue:
            if decisions != self.decisions:
                decisions = self.decisions
                if self._finished():
                    break
            at, _, kind, target, payload = heapq.heappop(queue)
            if at > deadline:
                break
            self.now = self.checker.now = at
            self.events += 1
            if self.events > MAX_EVENTS:
                break
            node = self.nodes[target]
            if kind == _DELIVER:
                if node.up:
                    self._deliver(node, payload[0], payload[1])
            elif kind == _TIMER:
                if node.up and payload[0] == node.incarnation and node.core is not None:
                    self._execute(node, node.core.on_timeout(payload[1]))
            elif kind == _GOSSIP:
                if node.up and payload == node.incarnation:
                    self._relay_tick(node)
            elif kind == _PACE:
                if node.up and payload == node.incarnation:
                    self._paced(node)
            elif kind == _CRASH:
                self._crash(node)
            else:
                self._restart(node, payload)
            if self.checker.violations and any(
                v.kind in SAFETY and v.kind not in WARNINGS for v in self.checker.violations
            ):
                break
        finished = self._finished()
        if not finished and not self.checker.violations:
            behind = {n.id: n.chain.height for n in self._live_correct}
            self.checker.violations.append(
                Violation(
                    LIVENESS,
                    self.now,
                    f"heights {behind} short of {plan.heights} by {deadline} ms "
                    f"(GST {plan.gst} ms)",
                )
            )
        return Result(
            plan,
            list(self.checker.violations),
            {n.id: n.chain.height for n in self.nodes},
            finished,
            self.now,
            self.events,
            self.evidence_against,
            set(self.checker.double_signers),
            self.decisions,
            {n.id: list(n.chain.values) for n in self.nodes},
            self.commit_times,
            self.trace,
            {n.id: list(n.chain.certificates) for n in self.nodes},
        )

    def _finished(self) -> bool:
        target = self.plan.heights
        return all(node.chain.height >= target for node in self._live_correct)

    def _liveness_budget(self) -> int:
        if self.plan.liveness_budget_ms is not None:
            return self.plan.liveness_budget_ms
        rounds = 3 * self.plan.f + 8
        per_round = TIMEOUTS.propose_ms + TIMEOUTS.prevote_ms + TIMEOUTS.precommit_ms
        per_height = sum(per_round + 3 * r * TIMEOUTS.delta_ms for r in range(rounds))
        return self.plan.heights * per_height + 10 * GOSSIP_INTERVAL_MS

    # ---- effects ----

    def _execute(self, node: SimNode, effects: list[Effect]) -> None:
        work = deque(effects)
        while work:
            effect = work.popleft()
            if isinstance(effect, Broadcast):
                self._send_own(node, effect.message)
            elif isinstance(effect, ScheduleTimeout):
                at = self.now + effect.delay_ms
                self._push(at, _TIMER, node.id, (node.incarnation, effect.timeout))
            elif isinstance(effect, PersistLastSigned):
                node.record = effect.record
                node.parsed_record = LastSigned.from_bytes(effect.record)
            elif isinstance(effect, Commit):
                work.extend(self._commit(node, effect.height, effect.value, effect.certificate))
            elif isinstance(effect, EvidenceFound):
                if node.correct:
                    self.evidence_against.add(effect.evidence.first.validator)
                if self._trace_on:
                    who = effect.evidence.first.validator[:4].hex()
                    self._log(f"n{node.id} evidence against {who}")

    def _commit(
        self, node: SimNode, height: int, value: bytes, certificate: CommitCertificate
    ) -> list[Effect]:
        chain = node.chain
        if height != chain.height + 1:
            return []
        if self._trace_on:
            self._log(f"n{node.id} commits {height}: {value[:48]!r}")
        self.checker.on_commit(node.id, height, value, certificate, chain.roots[-1], node.correct)
        chain.append(value, certificate)
        self.commit_times[(node.id, height)] = self.now
        self.decisions += 1
        if node.strategy.relays:
            for peer in self._peers(node):  # the node announces every commit to its peers
                self._send(node.id, peer, Height(height))
        if node.core is None or height >= self.plan.heights + HEIGHTS_PAST_TARGET:
            return []  # others catch up by sync; n = 1 would otherwise commit forever
        wait_ms = node.pacing.committed()
        self._push(self.now + wait_ms, _PACE, node.id, node.incarnation)
        return []

    def _paced(self, node: SimNode) -> None:
        if node.pacing.wake(self.now, self.now, has_txs=True) == START_NOW:
            self._start_next_height(node)

    def _start_next_height(self, node: SimNode) -> None:
        if node.core is None or not node.pacing.waiting:
            return
        node.pacing.started()
        self._execute(node, node.core.start(node.chain.height + 1))

    def _peers(self, node: SimNode) -> list[int]:
        return [other for other in range(len(self.nodes)) if other != node.id]

    def _send_own(self, node: SimNode, message: Message) -> None:
        if node.correct:
            self.checker.on_broadcast(node.id, message, node.parsed_record)
        sends = node.strategy.outbound(message, self._peers(node))
        signed: set[int] = set()
        for peer, sent in sends:
            if id(sent) not in signed:
                signed.add(id(sent))
                self.checker.on_signed(node.id, sent)
            self._send(node.id, peer, sent)
        if self._trace_on:
            self._log(f"n{node.id} sends {_describe(message)}")

    def _send(self, src: int, dst: int, payload: Any) -> None:
        for delay in self.network.delays(src, dst, self.now):
            self._push(self.now + delay, _DELIVER, dst, (src, payload))

    # ---- incoming ----

    def _deliver(self, node: SimNode, src: int, payload: Any) -> None:
        core = node.core
        if core is None:
            return
        if isinstance(payload, Vote | Proposal):
            node.strategy.observe(payload)
            if isinstance(payload, Proposal) and isinstance(node.strategy, Coalition):
                self._coalition_known.setdefault(
                    (payload.height, payload.round), payload.block_hash
                )
            if payload.height > core.height + 1:
                # as the driver: a later height steers block sync, once a validator signed it
                if core.is_signed_by_a_validator(payload):
                    self._ask_blocks(node, src)
                return
            self._execute(node, core.on_message(payload))
            if payload.height == node.chain.height + 1 and node.pacing.peer_moved_on():
                self._start_next_height(node)  # a peer is already there
        elif isinstance(payload, Height):
            node.peer_heights[src] = payload.committed
            if payload.committed > node.chain.height:
                self._ask_blocks(node, src)
        elif isinstance(payload, SyncRequest):
            self._on_sync_request(node, src, payload)
        elif isinstance(payload, SyncBlocks):
            self._on_blocks(node, payload)

    def _ask_blocks(self, node: SimNode, peer: int) -> None:
        last = node.sync_asked.get(peer)
        if last is None or self.now - last >= SYNC_COOLDOWN_MS:
            node.sync_asked[peer] = self.now
            self._send(node.id, peer, SyncRequest(node.chain.height + 1))

    def _connected(self, a: int, b: int) -> bool:
        return self.nodes[a].up and self.nodes[b].up and not self.network.separated(a, b, self.now)

    def _relay_tick(self, node: SimNode) -> None:
        """The node's relay interval: links that came up get what the relay says, then the
        relay repairs stuck peers (consensus/relay.py, as the node's driver runs it)."""
        self._push(self.now + GOSSIP_INTERVAL_MS, _GOSSIP, node.id, node.incarnation)
        core = node.core
        if core is None:
            return
        views = []
        for peer in self._peers(node):
            pair = (min(node.id, peer), max(node.id, peer))
            if not self._connected(node.id, peer):
                if node.links.pop(peer, None) is not None:
                    self._link_epochs[pair] = self._link_epochs.get(pair, 0) + 1
                continue
            other = self.nodes[peer]
            connection = (node.incarnation, other.incarnation, self._link_epochs.get(pair, 0))
            # the handshake of a new link carries the peer's committed height
            is_new = node.links.get(peer) != connection
            if is_new:
                node.links[peer] = connection
                node.peer_heights[peer] = other.chain.height
            view = PeerView(_peer_key(peer), connection, node.peer_heights.get(peer, 0))
            views.append(view)
            if is_new and node.strategy.relays:
                for message in node.relay.link_up(view, core):
                    self._send(node.id, peer, message)
        if not node.strategy.relays:
            return
        for order in node.relay.tick(views, core):
            peer = int.from_bytes(order.peer, "big")
            if order.announce_height:
                self._send(node.id, peer, Height(node.chain.height))
            for message in order.messages:
                self._send(node.id, peer, message)

    def _on_sync_request(self, node: SimNode, src: int, request: SyncRequest) -> None:
        if not node.strategy.relays:
            return
        chain = node.chain
        first = request.first
        last = min(chain.height, first + SYNC_BLOCKS - 1)
        if first > last:
            return
        blocks = tuple(
            (h, chain.values[h - 1], chain.certificates[h - 1]) for h in range(first, last + 1)
        )
        self._send(node.id, src, SyncBlocks(blocks))

    def _on_blocks(self, node: SimNode, sync: SyncBlocks) -> None:
        """Block sync as the node runtime does it: certificate, hash, then validation."""
        for height, value, certificate in sync.blocks:
            if node.core is None or height != node.chain.height + 1:
                continue
            try:
                verify_certificate(CHAIN_ID, self.validators_at(height), certificate, self.verifier)
            except SparkError:
                return
            if certificate.height != height or certificate.block_hash != value_hash(value):
                return
            if not node.app.validate(height, value):
                return
            self._log(f"n{node.id} syncs height {height}")
            self._execute(node, self._commit(node, height, value, certificate))

    # ---- crashes ----

    def _crash(self, node: SimNode) -> None:
        self._log(f"n{node.id} crashes")
        node.up = False
        node.core = None
        node.incarnation += 1

    def _restart(self, node: SimNode, keep_record: bool) -> None:
        self._log(f"n{node.id} restarts {'with' if keep_record else 'WITHOUT'} its record")
        if not keep_record:
            node.record = None
            node.parsed_record = None
        record = LastSigned.from_bytes(node.record) if node.record is not None else None
        node.up = True
        node.incarnation += 1
        node.sync_asked.clear()
        node.links.clear()  # every link is new after a restart
        node.relay = Relay()
        node.pacing.started()
        node.core = self._new_core(node, record)
        self._push(self.now + GOSSIP_INTERVAL_MS, _GOSSIP, node.id, node.incarnation)
        self._execute(node, node.core.start(node.chain.height + 1))


def _peer_key(node_id: int) -> bytes:
    """The relay's name for a peer: its node id (twins share a validator key)."""
    return node_id.to_bytes(4, "big")


def _describe(message: Message) -> str:
    if isinstance(message, Proposal):
        what = message.block_hash[:3].hex()
        return f"PROPOSAL h{message.height} r{message.round} vr{message.valid_round} {what}"
    what = message.block_hash[:3].hex() or "nil"
    return f"{message.type.name} h{message.height} r{message.round} {what}"


def run_plan(plan: Plan, core_factory: CoreFactory = ConsensusCore, trace: bool = False) -> Result:
    return Simulation(plan, core_factory, trace=trace).run()
