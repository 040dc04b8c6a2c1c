"""The one way a block enters this node's chain, whether consensus decided it here or block
sync fetched it with its certificate: write it, record the acknowledged height, tell
waiters and watchers, forget its txs in the mempool, and tell peers our new height. A block
that cannot be written (a full disk) stops the node: fail-stop, as for the signer's record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sparkchain.node.durable import AcknowledgedHeight
from sparkchain.node.events import CommitBus
from sparkchain.node.ledger import Ledger, PendingBlock
from sparkchain.node.logs import round_ms
from sparkchain.node.mempool import Mempool
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.commit")

CommitHook = Callable[[PendingBlock], None]


class Committer:
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        bus: CommitBus,
        acknowledged: AcknowledgedHeight | None = None,
        on_fail_stop: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        """`on_fail_stop(reason)`: the ledger could not write a block (a full disk); the
        node must stop, since LevelDB takes no later write and the block is not its own."""
        self._on_fail_stop = on_fail_stop
        self._ledger = ledger
        self._acknowledged = acknowledged
        self._mempool = mempool
        self._bus = bus
        self.on_commit: list[CommitHook] = []

    def commit(self, pending: PendingBlock, certificate: pb.CommitCertificate) -> None:
        """Commit `pending` (the ledger checks it follows the head and matches the
        certificate). Runs without awaiting, so no other commit can interleave."""
        started = time.perf_counter()
        try:
            self._ledger.commit_block(pending, certificate)
        except OSError as exc:
            # found by the chaos harness's full disk (tests/chaos): the error used to end in
            # a peer-message handler's log while the node ran on, stuck below the chain
            reason = str(exc)
            log.critical("fail_stop", extra={"reason": reason})
            self._on_fail_stop(reason)
            raise
        height = pending.height
        if self._acknowledged is not None:
            # before anyone hears of the block; a node found below it later refuses to start
            try:
                self._acknowledged.record(height)
            except OSError as exc:
                # the block is committed; what is lost is the guard against a ledger that
                # later loses it, so this is loud but does not stop the node
                log.error(
                    "acknowledged_height_not_saved",
                    extra={"height": height, "error": str(exc)},
                )
        # change events cost reads; build them only when someone watches
        changes = self._ledger.changes_at(height) if self._bus.subscriber_count else []
        self._bus.publish_block(height, pending.tx_ids, changes)
        self._mempool.remove(pending.tx_ids)
        log.debug(
            "committed",
            extra={
                "height": height,
                "round": certificate.round,
                "txs": len(pending.tx_ids),
                "ms": round_ms(started),
            },
        )
        for hook in self.on_commit:
            try:
                hook(pending)
            except Exception:
                log.exception("commit_hook_failed")
