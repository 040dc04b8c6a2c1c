"""The consensus driver: the shell around the pure ConsensusCore (DESIGN §6-§7).

It feeds the core peer messages and timer expiries and executes the effects it returns,
in order: a PersistLastSigned record is written and fsynced before the Broadcast that
follows it leaves the node; a Commit goes through the Committer (ledger, commit bus,
mempool), then the next height starts.

Pacing: after a commit the next height starts once `block_interval_ms` has passed and
there is something to do (txs waiting, a peer already at that height, or
`empty_block_interval_ms` since the last block), so an idle chain does not spin out empty
blocks while a busy one gathers txs into few, large blocks.

Relay: the paper's liveness assumes gossip, i.e. that every correct process eventually
receives every message a correct process received. Consensus messages normally go only
from their signer to each peer (one message per peer, no echo), so a peer that missed
some (it restarted, a link was down, an equivocator sent it other votes) is helped by the
relay: when a peer link shows no progress for a whole interval while the peer works on
the height we hold messages of, that peer is sent every verified message of the height
(`core.height_messages()`, anyone's) not yet sent to it on this link, plus our own latest
ones again. Every few stuck intervals it gets the whole height again. A healthy network
commits well within an interval and relays nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparkchain.consensus import wire
from sparkchain.consensus.app import TimeoutConfig
from sparkchain.consensus.core import ConsensusCore
from sparkchain.consensus.crypto import Ed25519Signer
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import (
    Broadcast,
    Commit,
    Effect,
    EvidenceFound,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Timeout,
)
from sparkchain.consensus.pacing import START_NOW, Pacing
from sparkchain.consensus.relay import MessageKey, PeerView, Relay, message_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.limits import (
    PROPOSAL_POOL_WAIT_MS,
    REBROADCAST_INTERVAL_MS,
)
from sparkchain.node.app import BlockApplication
from sparkchain.node.commit import Committer
from sparkchain.node.config import ConsensusConfig
from sparkchain.node.durable import DamagedRecord, DurableRecord
from sparkchain.node.ledger import Ledger, PendingBlock
from sparkchain.node.mempool import Mempool, wall_clock_ms
from sparkchain.node.peers import PeerLink, PeerNetwork
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.consensus")


def read_last_signed(path: Path) -> LastSigned | None:
    try:
        raw = DurableRecord(path).read()
    except OSError as exc:
        raise SparkError(
            ErrorCode.STORAGE_CORRUPT, f"{path}: cannot read the last-signed record: {exc}"
        ) from None
    except DamagedRecord as exc:
        raise SparkError(
            ErrorCode.STORAGE_CORRUPT, f"{path}: last-signed record: {exc.detail}"
        ) from None
    return None if raw is None else LastSigned.from_bytes(raw)


class ConsensusDriver:
    def __init__(
        self,
        *,
        ledger: Ledger,
        mempool: Mempool,
        committer: Committer,
        network: PeerNetwork,
        key: SigningKey,
        config: ConsensusConfig,
        last_signed_path: Path,
        on_future_height: Callable[[int], None] = lambda _height: None,
        on_fail_stop: Callable[[str], None] = lambda _reason: None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        relay_interval_ms: int = REBROADCAST_INTERVAL_MS,
        on_commit_latency: Callable[[float], None] = lambda _seconds: None,
    ) -> None:
        """`on_commit_latency(seconds)`: each block this driver commits, the time since
        its height started here (node/metrics.py)."""
        self._ledger = ledger
        self._mempool = mempool
        self._committer = committer
        self._network = network
        self._key = key
        self._config = config
        self._last_signed_path = last_signed_path
        self._last_signed_file = DurableRecord(last_signed_path)
        self._on_future_height = on_future_height
        self._on_fail_stop = on_fail_stop
        self.halted: str | None = None  # why signing stopped for good (fail-stop)
        self._clock_ms = clock_ms
        self.app = BlockApplication(ledger, mempool, key.public_key, config, clock_ms)
        self._core: ConsensusCore | None = None
        self.height = 0  # the height the core works on; 0 before the first start
        self._height_started = 0.0  # time.perf_counter() when self.height started
        self._on_commit_latency = on_commit_latency
        self._timers: set[asyncio.TimerHandle] = set()
        self._pacing = Pacing(config.block_interval_ms, config.empty_block_interval_ms)
        self._pacing_timer: asyncio.TimerHandle | None = None
        self._relay_interval_ms = relay_interval_ms
        self._relay_task: asyncio.Task[None] | None = None
        self._relay = Relay()
        self._deferred: set[asyncio.Task[None]] = set()  # proposals waiting for the pool
        self.relayed = 0  # messages sent by the relay (not first broadcasts), for tests and logs
        mempool.on_admitted.append(self._on_admitted)

    # ---- lifecycle ----

    def start(self) -> None:
        config = self._config
        timeouts = TimeoutConfig(
            config.propose_timeout_ms,
            config.prevote_timeout_ms,
            config.precommit_timeout_ms,
            config.timeout_delta_ms,
        )
        self._core = ConsensusCore(
            self._ledger.chain_id,
            # the set of each height, as the chain scheduled it (DESIGN §12)
            self._ledger.validators_at,
            Ed25519Signer(self._key),
            self.app,
            timeouts,
            self._own_last_signed(),
        )
        self._begin(self._ledger.height + 1)
        self._relay_task = asyncio.create_task(self._relay_forever())

    def _own_last_signed(self) -> LastSigned | None:
        """The last-signed record of this node's key. After a key rotation the file holds
        the old key's record: it is carried over to the new key and written durably before
        the core starts, so the node cannot sign again what its old key signed (DESIGN
        §12). A record of a key the chain never rotated to ours stops the start."""
        record = read_last_signed(self._last_signed_path)
        key = self._key.public_key
        if record is None or record.public_key == key:
            return record
        name = self._ledger.rotated(record.public_key, key)
        if name is None:
            raise SparkError(
                ErrorCode.INVALID_CONFIG,
                f"{self._last_signed_path}: the last-signed record is of key "
                f"{record.public_key.hex()}, this node's key is {key.hex()} and the chain "
                "never rotated one to the other: use the key that signed it",
            )
        carried = record.carried_to(key)
        self._last_signed_file.write(carried.to_bytes())
        log.info(
            "last_signed_carried_over",
            extra={"validator": name, "height": record.height, "round": record.round},
        )
        return carried

    async def close(self) -> None:
        self._cancel_timers()
        self._cancel_pacing_timer()
        tasks = [*self._deferred, *([self._relay_task] if self._relay_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def caught_up(self, height: int) -> None:
        """Block sync committed up to `height`: move consensus past it."""
        if self._core is not None and self.height <= height:
            self._begin(height + 1)

    def position(self) -> tuple[int, int] | None:
        """(round, step) of the height consensus works on; None before it starts or
        after a fail-stop."""
        core = self._core
        return (core.round, int(core.step)) if core is not None else None

    # ---- input ----

    def on_proposal(self, proposal: pb.Proposal) -> None:
        """A peer's proposal. Raises SparkError when it is not one: the peer link logs
        that refusal (node/peers.py), rate-limited per peer."""
        message = wire.proposal_from_proto(proposal)
        # the core hashes the value of any proposal whose signature holds (and the signature
        # covers the block hash, not the block): a value that is no block would fail there,
        # and a failing handler stops the validator for good (_step)
        self.app.check_value(message.value)
        checking = self._mempool.verifications_in_flight()
        if checking and message.height > self._ledger.height:
            # its txs are likely among those whose signatures the pool checks right now
            # (the proposer sends its gossip first): validating the block at once would
            # check them again on the event loop, so wait for the pool (not for so long
            # that the propose timeout could pass)
            task = asyncio.create_task(self._receive_after(checking, message))
            self._deferred.add(task)
            task.add_done_callback(self._deferred.discard)
            return
        self._receive(message)

    async def _receive_after(self, checking: list[asyncio.Future[Any]], message: Message) -> None:
        await asyncio.wait(checking, timeout=PROPOSAL_POOL_WAIT_MS / 1000)
        self._receive(message)

    def on_vote(self, vote: pb.Vote) -> None:
        """A peer's vote; raises SparkError when it is not one (as on_proposal)."""
        self._receive(wire.vote_from_proto(vote))

    def on_link_up(self, link: PeerLink) -> None:
        """A (re)connected validator: what the relay says it needs (consensus/relay.py)."""
        core = self._core
        if link.observer or core is None:
            return
        for message in self._relay.link_up(_peer_view(link), core):
            link.send(_peer_message(message))

    def _receive(self, message: Message) -> None:
        core = self._core
        if core is None or message.height <= self._ledger.height:
            return  # decided already
        if message.height > core.height + 1:
            # the sender committed height - 1: worth a sync, but only if a validator signed
            # it (an unverified height would let anyone steer our block sync)
            if core.is_signed_by_a_validator(message):
                self._on_future_height(message.height - 1)
            return
        # the core keeps verified messages of its next height and replays them in start()
        if isinstance(message, Proposal):
            self._step(lambda: core.on_proposal(message))
        else:
            self._step(lambda: core.on_vote(message))
        if message.height == self._ledger.height + 1 and self._pacing.peer_moved_on():
            self._start_next_height()

    def _on_timeout(self, timeout: Timeout) -> None:
        core = self._core
        if core is None or timeout.height != self.height:
            return
        log.debug(
            "timeout",
            extra={"height": timeout.height, "round": timeout.round, "step": timeout.step.name},
        )
        self._step(lambda: core.on_timeout(timeout))

    def _on_admitted(self, _txs: list[pb.SignedTx], _origin: str | None) -> None:
        if self._pacing.txs_arrived():
            self._start_next_height()

    # ---- heights ----

    def _begin(self, height: int) -> None:
        core = self._core
        if core is None:
            return  # not started, or halted for good
        self._cancel_pacing_timer()
        self._pacing.started()
        self._cancel_timers()
        self.height = height
        self._height_started = time.perf_counter()
        self.app.forget_below(height)
        self._step(lambda: core.start(height))

    def _after_commit(self) -> None:
        """Start the next height when pacing says (consensus/pacing.py)."""
        self._cancel_timers()
        self._set_pacing_timer(self._pacing.committed())

    def _paced(self) -> None:
        self._pacing_timer = None
        # txs this node could put in a block, not merely txs held: one no block can take
        # would start empty heights until it expired
        has_txs = bool(self._mempool.take(1, self._config.max_block_bytes))
        wait_ms = self._pacing.wake(self._clock_ms(), self._ledger.last_block_time_ms, has_txs)
        if wait_ms == START_NOW:
            self._start_next_height()
        else:
            self._set_pacing_timer(wait_ms)

    def _set_pacing_timer(self, wait_ms: int) -> None:
        self._cancel_pacing_timer()
        loop = asyncio.get_running_loop()
        self._pacing_timer = loop.call_later(wait_ms / 1000, self._paced)

    def _cancel_pacing_timer(self) -> None:
        if self._pacing_timer is not None:
            self._pacing_timer.cancel()
            self._pacing_timer = None

    def _start_next_height(self) -> None:
        if not self._pacing.waiting:
            return  # already running a height; the message will be replayed from the buffer
        self._begin(self._ledger.height + 1)

    # ---- effects ----

    def _step(self, handler: Callable[[], list[Effect]]) -> None:
        """Run one core handler and execute its effects, or fail-stop.

        A handler that raises (the application's validate or propose failing, a bug) may
        have signed already: its effects, a record to persist among them, are lost while
        the signer moved on, and a later repeat of that signature would be sent with no
        record on disk. So the validator stops signing instead of going on."""
        if self.halted is not None or self._core is None:
            return
        try:
            effects = handler()
        except Exception as exc:
            log.exception("consensus_handler_failed")
            self._fail_stop(f"a consensus handler failed: {exc!r}")
            return
        self._execute(effects)

    def _fail_stop(self, reason: str) -> None:
        """Stop signing at once and for good: nothing that was not persisted leaves."""
        if self.halted is not None:
            return
        self.halted = reason
        self._core = None  # no handler runs again, and the relay has nothing to send
        self._cancel_timers()
        self._cancel_pacing_timer()
        self._pacing.started()
        if self._relay_task is not None:
            self._relay_task.cancel()
        log.critical("fail_stop", extra={"reason": reason})
        self._on_fail_stop(reason)

    def _execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            if self.halted is not None:
                return
            if isinstance(effect, PersistLastSigned):
                try:
                    self._last_signed_file.write(effect.record)
                except OSError as exc:
                    # the messages this record covers must never leave (DESIGN §6)
                    path = self._last_signed_file.path
                    self._fail_stop(f"cannot persist the last-signed record {path}: {exc}")
                    return
            elif isinstance(effect, Broadcast):
                self._broadcast(effect.message)
            elif isinstance(effect, ScheduleTimeout):
                self._schedule(effect.timeout, effect.delay_ms)
            elif isinstance(effect, Commit):
                self._commit(effect)
            elif isinstance(effect, EvidenceFound):
                log.warning(
                    "equivocation",
                    extra={
                        "validator": effect.evidence.first.validator.hex(),
                        "height": effect.evidence.first.height,
                    },
                )

    def _broadcast(self, message: Message) -> None:
        if isinstance(message, Proposal):
            self._network.flush_gossip()  # the block's txs travel ahead of it
        self._network.broadcast(_peer_message(message))

    def _schedule(self, timeout: Timeout, delay_ms: int) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._on_timeout(timeout)

        handle = loop.call_later(delay_ms / 1000, fire)
        self._timers.add(handle)

    def _cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _commit(self, effect: Commit) -> None:
        if effect.height <= self._ledger.height:
            return  # block sync got there first
        certificate = wire.certificate_to_proto(effect.certificate)
        pending: PendingBlock = self.app.pending_for(effect.value)
        try:
            self._committer.commit(pending, certificate)
        except OSError as exc:  # the committer has stopped the node; the core stops here
            self._fail_stop(f"cannot commit block {effect.height}: {exc}")
            return
        self._on_commit_latency(time.perf_counter() - self._height_started)
        self._after_commit()

    # ---- relay ----

    async def _relay_forever(self) -> None:
        while True:
            await asyncio.sleep(self._relay_interval_ms / 1000)
            try:
                self.relay_tick()
            except Exception:  # the relay helps liveness; a bug in it must not stop it
                log.exception("relay_failed")

    def relay_tick(self) -> int:
        """One relay interval passed: send what the relay picks for each validator peer
        (consensus/relay.py). Returns the messages sent."""
        core = self._core
        if core is None:
            return 0
        links = {link.key: link for link in self._network.links() if not link.observer}
        converted: dict[MessageKey, peer_pb2.PeerMessage] = {}
        sent = 0
        for order in self._relay.tick(map(_peer_view, links.values()), core):
            link = links[order.peer]
            if order.announce_height:
                link.send(_height_message(self._ledger.height))
            messages = order.messages
            for message in messages:
                key = message_key(message)
                wire_message = converted.get(key)
                if wire_message is None:
                    wire_message = converted[key] = _peer_message(message)
                link.send(wire_message)
            sent += len(messages)
        self.relayed += sent
        if sent:
            log.debug("relayed", extra={"height": core.height, "messages": sent})
        return sent


def _height_message(committed: int) -> peer_pb2.PeerMessage:
    return peer_pb2.PeerMessage(status=peer_pb2.PeerStatus(height=committed))


def _peer_view(link: PeerLink) -> PeerView:
    # a re-established link is a new PeerLink object (compared by identity)
    return PeerView(link.key, link, link.height)


def _peer_message(message: Message) -> peer_pb2.PeerMessage:
    if isinstance(message, Proposal):
        return peer_pb2.PeerMessage(proposal=wire.proposal_to_proto(message))
    return peer_pb2.PeerMessage(vote=wire.vote_to_proto(message))
