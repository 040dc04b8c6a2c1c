"""The ledger facade the node runtime calls: execute, validate and commit blocks; read state.

Life of a height (DESIGN §5): `build_block` (proposer) or `validate_block` (everyone else)
executes the txs on an in-memory `Overlay` and returns a `PendingBlock` holding every write
the block implies; consensus may execute and discard several of them per height; the one
decided is passed to `commit_block`, which writes it with its certificate in one synced
LevelDB batch. The genesis state is height 0: it is written when the ledger is created and
block 1 links to the genesis hash.

Not thread-safe: the node calls it from one thread (its event loop).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import starmap
from pathlib import Path

import plyvel

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tx import tx_id
from sparkchain.ledger import blocks, smt, smt_prune
from sparkchain.ledger.genesis import Genesis, apply_genesis
from sparkchain.ledger.records import decode_prefix, decode_record
from sparkchain.ledger.rules import Receipt, apply_tx
from sparkchain.node import pruning, schema
from sparkchain.node.checked_txs import CheckedTxs, signature_key
from sparkchain.node.ledger_reads import LedgerReads
from sparkchain.node.overlay import BlockWrites, Overlay, record_keys_of, state_writes
from sparkchain.node.storage import (
    BLOCK_CACHE_BYTES,
    TreeNodeStore,
    open_db,
    reporting_damage,
    storage_corrupt,
)
from sparkchain.proto import types_pb2 as pb

# executed blocks of the next height kept for commit (one per round is typical)
MAX_PENDING_BLOCKS = 16


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingBlock:
    """An executed block waiting for its certificate: exactly what `commit_block` writes."""

    height: int
    block: pb.Block
    block_bytes: bytes
    block_hash: bytes
    header: pb.BlockHeader
    tx_ids: tuple[bytes, ...]
    receipts: tuple[Receipt, ...]
    writes: BlockWrites
    new_tree_nodes: dict[bytes, bytes]
    stale_tree_nodes: tuple[bytes, ...] = ()  # what a pruning ledger records (smt_prune)
    # of those, the internal nodes with leaf keys, trimmed: what a pruning ledger then stores
    trimmed_tree_nodes: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class BuiltBlock:
    block: pb.Block
    block_bytes: bytes
    block_hash: bytes
    pending: PendingBlock
    rejected: list[tuple[pb.SignedTx, SparkError]]


@dataclass(frozen=True, slots=True)
class _Execution:
    included: list[pb.SignedTx]
    tx_ids: list[bytes]
    receipts: list[Receipt]
    rejected: list[tuple[pb.SignedTx, SparkError]]
    writes: BlockWrites
    tree: smt.TreeUpdate


class Ledger(LedgerReads):
    def __init__(
        self,
        db: plyvel.DB,
        genesis: Genesis,
        *,
        verify_signatures: bool,
        keep_heights: int = 0,
        tree_cache_nodes: int = smt.CACHE_MAX_NODES,
    ) -> None:
        super().__init__(db, genesis, tree_cache_nodes)
        self.verify_signatures = verify_signatures
        # [ledger] keep_heights: prove the state of the last K heights only (0: every height)
        self.keep_heights = smt_prune.check_keep_heights(keep_heights)
        self._records_removals = pruning.is_pruning(db)
        self._checked_txs = CheckedTxs(genesis.chain_id)
        self._pending: dict[bytes, PendingBlock] = {}
        self._prefix_cache: dict[str, pb.PrefixRecord | None] = {}
        self._genesis_validators = tuple((v.name, v.public_key) for v in genesis.validators)
        self._load_head()
        self._warm_tree_cache()

    @classmethod
    def open(
        cls,
        path: Path,
        genesis: Genesis,
        *,
        verify_signatures: bool = True,
        keep_heights: int = 0,
        record_removals: bool = False,
        block_cache_bytes: int = BLOCK_CACHE_BYTES,
        tree_cache_nodes: int = smt.CACHE_MAX_NODES,
    ) -> Ledger:
        """Open the ledger at `path`, creating it from `genesis` if it is new.

        `verify_signatures=False` trusts every tx signature (benchmarks and tools that
        replay a chain already verified); a node always verifies. With `keep_heights` K > 0
        the ledger prunes the state tree to the last K heights (node/pruning.py): an
        archive ledger opened so is swept first, keeping only its head's state. A new
        ledger records the tree nodes its blocks remove when K > 0 or `record_removals`
        (`spark ledger verify` replays a pruning ledger so, without pruning the replay).
        The two cache bounds are config.toml's [storage] (LevelDB's block cache, the state
        tree's upper levels).
        """
        smt_prune.check_keep_heights(keep_heights)
        db = open_db(path, block_cache_bytes=block_cache_bytes)
        try:
            with reporting_damage(path):
                return cls._checked(
                    db,
                    path,
                    genesis,
                    verify_signatures,
                    keep_heights,
                    record_removals,
                    tree_cache_nodes,
                )
        except BaseException:
            db.close()
            raise

    @classmethod
    def _checked(
        cls,
        db: plyvel.DB,
        path: Path,
        genesis: Genesis,
        verify_signatures: bool,
        keep_heights: int,
        record_removals: bool,
        tree_cache_nodes: int,
    ) -> Ledger:
        stored = db.get(schema.META_GENESIS_HASH)
        if stored is None:
            with db.iterator(include_value=False) as keys:
                if next(keys, None) is not None:
                    raise storage_corrupt(path, "the ledger holds keys but no genesis hash")
            _write_genesis_state(db, genesis, pruning=keep_heights > 0 or record_removals)
            return cls(
                db,
                genesis,
                verify_signatures=verify_signatures,
                keep_heights=keep_heights,
                tree_cache_nodes=tree_cache_nodes,
            )
        version = db.get(schema.META_SCHEMA_VERSION)
        if version != schema.SCHEMA_VERSION and version not in schema.SCHEMA_UPGRADABLE:
            raise SparkError(
                ErrorCode.STORAGE_CORRUPT,
                f"{path}: the ledger is in storage schema "
                f"{(version or b'?').decode(errors='replace')}, this node reads schema "
                f"{schema.SCHEMA_VERSION.decode()}: run the node version that wrote it, "
                "or move the folder away and let the node sync the chain from its peers",
            )
        if db.get(schema.META_RESTORING) is not None:
            raise storage_corrupt(
                path, "a state sync was writing a snapshot into this ledger and did not finish"
            )
        if stored != genesis.genesis_hash:
            raise SparkError(
                ErrorCode.INVALID_GENESIS,
                f"{path}: the ledger was created from genesis {stored.hex()}, "
                f"the genesis given has hash {genesis.genesis_hash.hex()}",
            )
        if version == b"2":
            add_owner_index(db)
        if version in (b"2", b"3", b"4"):
            # 3 -> 4: a ledger that never pruned is schema 4 with no stale entries;
            # 4 -> 5: stale tree nodes are trimmed, the latest history entries lose their
            # copy of the record
            pruning.trim_stale_nodes(db)
            drop_latest_history_records(db)
        if db.get(schema.META_SCHEMA_VERSION) != schema.SCHEMA_VERSION:
            pruning.upgrade_to_revive_marks(db)  # 5 -> 6
        if keep_heights > 0 and not pruning.is_pruning(db):
            height, _, state_root = schema.head_from_bytes(db.get(schema.META_HEAD) or b"")
            pruning.start_pruning(db, height, state_root)
        return cls(
            db,
            genesis,
            verify_signatures=verify_signatures,
            keep_heights=keep_heights,
            tree_cache_nodes=tree_cache_nodes,
        )

    def close(self) -> None:
        self._pending.clear()
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- execution ----

    def build_block(
        self,
        txs: Iterable[pb.SignedTx],
        time_ms: int,
        proposer: bytes,
        last_commit: pb.CommitCertificate | None = None,
    ) -> BuiltBlock:
        """Execute `txs` in order on a fresh overlay, dropping each one that breaks a rule
        (returned in `rejected` with its error), and build the next block.

        `time_ms` is raised to one more than the previous block's time when the clock is
        behind it, so a proposer never builds a block its peers must refuse. With no
        `last_commit`, the stored certificate of the previous block is used.
        """
        parent = self._parent()
        if proposer not in parent.validators:
            raise SparkError(ErrorCode.INVALID_ARGUMENT, "proposer is not a validator")
        time_ms = max(time_ms, parent.time_ms + 1)
        if last_commit is None and parent.height > 0:
            last_commit = self._certificate(parent.height)
        if parent.height == 0:
            last_commit = None
        execution = self._execute(parent.height + 1, time_ms, txs, drop_invalid=True)
        header = blocks.build_header(
            parent, time_ms, proposer, last_commit, execution.tx_ids, execution.tree.root
        )
        block = pb.Block(header=blocks.encode_header(header), txs=execution.included)
        if last_commit is not None:
            block.last_commit.CopyFrom(last_commit)
        # the checks every peer will make, so a proposer never builds a block they refuse
        blocks.validate_header(
            blocks.DecodedBlock(
                block, header, blocks.block_hash(block.header, self._hash), last_commit
            ),
            parent,
            check_certificate=self._check_last_commit_quorum,
            execute=lambda: (execution.tx_ids, execution.tree.root),
        )
        block_bytes = block.SerializeToString(deterministic=True)
        pending = self._pending_block(block, block_bytes, header, execution)
        return BuiltBlock(block, block_bytes, pending.block_hash, pending, execution.rejected)

    def has_executed(self, block_hash: bytes) -> bool:
        """Whether the block of this hash was built or validated already (validating it
        again costs nothing)."""
        return block_hash in self._pending

    def validate_block(self, block_bytes: bytes) -> PendingBlock:
        """Check a received block against the last committed one by re-executing it.

        Raises SparkError(INVALID_BLOCK, "<field>: expected X got Y") on the first field
        that does not match. Validating the same block again returns the same result
        without executing it twice.
        """
        decoded = blocks.decode_block(block_bytes, self._hash)
        cached = self._pending.get(decoded.block_hash)
        if (
            cached is not None
            and cached.height == self.height + 1
            and cached.block_bytes == block_bytes
        ):
            return cached
        executions: list[_Execution] = []

        def execute() -> tuple[list[bytes], bytes]:
            header = decoded.header
            try:
                execution = self._execute(
                    header.height, header.time_ms, decoded.block.txs, drop_invalid=False
                )
            except SparkError as error:
                raise SparkError(ErrorCode.INVALID_BLOCK, error.message) from error
            executions.append(execution)
            return execution.tx_ids, execution.tree.root

        blocks.validate_header(
            decoded,
            self._parent(),
            check_certificate=self._check_last_commit_quorum,
            execute=execute,
        )
        return self._pending_block(decoded.block, block_bytes, decoded.header, executions[0])

    def commit_block(self, pending: PendingBlock, certificate: pb.CommitCertificate) -> None:
        """Write the block, its certificate and every change it makes in one synced batch."""
        if pending.height != self.height + 1 or pending.header.prev_hash != self.last_block_hash:
            raise SparkError(
                ErrorCode.INVALID_BLOCK,
                f"pending block {pending.height} does not follow the last committed block "
                f"{self.height} ({self.last_block_hash.hex()})",
            )
        if certificate.height != pending.height or certificate.block_hash != pending.block_hash:
            raise SparkError(
                ErrorCode.INVALID_CERTIFICATE,
                f"certificate is for block {certificate.height} "
                f"({certificate.block_hash.hex()}), not block {pending.height} "
                f"({pending.block_hash.hex()})",
            )
        height = pending.height
        prune = None
        if self._records_removals:
            prune = smt_prune.plan_commit(
                pruning.LevelDBStaleIndex(self._db),
                height,
                pending.new_tree_nodes,
                pending.stale_tree_nodes,
                keep_heights=self.keep_heights,
                oldest_provable=self.oldest_state,
            )
        try:
            with self._db.write_batch(sync=True) as batch:
                if prune is not None:
                    pruning.write_deletions(batch, prune)  # first: the block's writes win
                put = batch.put
                for key in pending.writes.deletes:
                    batch.delete(key)
                # ~8 puts per identifier: C-level loops, no bytecode per put
                deque(starmap(put, pending.writes.puts), maxlen=0)
                tree_prefix = schema.TREE_NODE
                new_nodes = pending.new_tree_nodes
                deque(map(put, map(tree_prefix.__add__, new_nodes), new_nodes.values()), maxlen=0)
                location = schema.tx_location
                for index, the_tx_id in enumerate(pending.tx_ids):
                    put(schema.tx_key(the_tx_id), location(height, index))
                put(schema.block_key(height), pending.block_bytes)
                put(schema.block_hash_key(pending.block_hash), schema.height_bytes(height))
                put(
                    schema.certificate_key(height),
                    certificate.SerializeToString(deterministic=True),
                )
                put(
                    schema.META_HEAD,
                    schema.head_bytes(height, pending.block_hash, pending.header.state_root),
                )
                if prune is not None:
                    for node_hash, node in pending.trimmed_tree_nodes:
                        put(tree_prefix + node_hash, node)  # only older heights hold it
                    pruning.write_removals(batch, prune, height, self.oldest_state)
        except plyvel.Error as exc:
            # a full or failing disk: LevelDB wrote none of the batch and refuses later
            # writes; the caller must stop (Committer: fail-stop), never carry on
            raise OSError(f"cannot write block {height} to the ledger: {exc}") from exc
        if prune is not None:
            self.oldest_state = prune.oldest_provable
        self._prefix_cache.update(pending.writes.changed_prefixes)
        if pending.writes.validator_schedule is not None:
            self._schedule = pending.writes.validator_schedule
        self._pending.clear()
        stored_certificate = pb.CommitCertificate()
        stored_certificate.CopyFrom(certificate)
        self._set_head(
            height,
            pending.block_hash,
            pending.header.state_root,
            pending.header,
            stored_certificate,
        )

    def reload(self, tree_cache: smt.NodeCache) -> None:
        """Read the head, validator schedule and base again, dropping every cache of the
        state: a snapshot was just written under this ledger (node/snapshot_restore.py).
        `tree_cache`: the new head's, already warmed (`tree_cache_of`)."""
        self._pending.clear()
        self._prefix_cache.clear()
        self._load_schedule()
        self._load_head()
        self._tree_cache = tree_cache

    def tree_cache_of(self, upper_nodes: list[tuple[bytes, bytes]]) -> smt.NodeCache:
        """A tree cache of this ledger's size holding `upper_nodes` (hash, encoded node),
        the upper levels of the tree of a snapshot about to be written, top level first."""
        cache = smt.NodeCache(self._tree_cache.max_nodes)
        cache.fill(upper_nodes)
        return cache

    def check_tx(
        self,
        signed: pb.SignedTx,
        now_ms: int,
        verify_signature: bool = True,
        *,
        the_tx_id: bytes | None = None,
        checked_body: pb.TxBody | None = None,
    ) -> pb.TxBody:
        """Would `signed` be accepted in the next block, timed `now_ms`? Raises if not.
        `the_tx_id` is its id if known; `checked_body` its body as `check_signed_tx` with
        this chain's id returned it (the mempool's verify pool decodes it), then not decoded
        again, here or in a block."""
        if the_tx_id is None:
            the_tx_id = tx_id(signed, self._hash)
        if checked_body is not None:
            self._checked_txs.remember_body(signature_key(signed, the_tx_id), signed, checked_body)
        body = self._checked_txs.body(signed, the_tx_id, verify_signature, remember=True)
        overlay = Overlay(self._db, self._prefix_cache)
        overlay.learn_absent_records(record_keys_of(body))
        apply_tx(
            overlay,
            signed,
            body,
            self.height + 1,
            now_ms,
            root_authorities=self.genesis.root_authorities,
            genesis_validators=self._genesis_validators,
            hash_fn=self._hash,
            the_tx_id=the_tx_id,
        )
        return body

    def mark_signatures_verified(
        self, txs: Iterable[pb.SignedTx], tx_ids: Iterable[bytes] | None = None
    ) -> None:
        """Note txs whose signatures the caller verified (the mempool does it in a thread
        pool), so blocks holding them skip the check; `tx_ids` are their ids if known."""
        txs = list(txs)
        ids = [tx_id(t, self._hash) for t in txs] if tx_ids is None else list(tx_ids)
        for signed, the_tx_id in zip(txs, ids, strict=True):
            self._checked_txs.signature_verified(signature_key(signed, the_tx_id))

    # ---- internals ----

    def _warm_tree_cache(self, store: smt.NodeStore | None = None) -> None:
        """Load the cached top levels of the state tree now rather than one LevelDB read at a
        time in the first few hundred blocks: with it a block of 1000 new identifiers at 1M
        reads ~250 tree nodes from LevelDB instead of ~1,400 (~1 s at startup at 1M)."""
        # a tree node that does not decode is reported by the reads and `spark ledger
        # verify` that meet it; LevelDB damage met here stops the open (reporting_damage)
        with contextlib.suppress(SparkError):
            smt.warm_cache(store or self._tree_store, self.state_root, self._tree_cache)

    def _execute(
        self, height: int, time_ms: int, txs: Iterable[pb.SignedTx], *, drop_invalid: bool
    ) -> _Execution:
        overlay = Overlay(self._db, self._prefix_cache)
        included: list[pb.SignedTx] = []
        tx_ids: list[bytes] = []
        receipts: list[Receipt] = []
        indexed: list[tuple[int, Receipt]] = []
        rejected: list[tuple[pb.SignedTx, SparkError]] = []
        roots = self.genesis.root_authorities
        # envelopes first, so the records the block registers are looked up in one scan
        txs = list(txs)
        ids = [tx_id(signed, self._hash) for signed in txs]
        bodies: list[pb.TxBody | SparkError] = []
        wanted: list[str] = []
        for signed, the_tx_id in zip(txs, ids, strict=True):
            try:
                body = self._checked_txs.body(
                    signed, the_tx_id, self.verify_signatures, remember=False
                )
            except SparkError as error:
                bodies.append(error)
                continue
            bodies.append(body)
            wanted += record_keys_of(body)
        overlay.learn_absent_records(wanted)
        for position, (signed, checked, the_tx_id) in enumerate(zip(txs, bodies, ids, strict=True)):
            try:
                if isinstance(checked, SparkError):
                    raise checked
                receipt = apply_tx(
                    overlay,
                    signed,
                    checked,
                    height,
                    time_ms,
                    root_authorities=roots,
                    genesis_validators=self._genesis_validators,
                    hash_fn=self._hash,
                    the_tx_id=the_tx_id,
                )
            except SparkError as error:
                if not drop_invalid:
                    raise SparkError(
                        error.code, f"tx {position} ({the_tx_id.hex()}): {error}"
                    ) from error
                rejected.append((signed, error))
                continue
            indexed.append((len(included), receipt))
            included.append(signed)
            tx_ids.append(receipt.tx_id)
            receipts.append(receipt)
        writes = state_writes(overlay, height, indexed, self._hash)
        tree = smt.apply(
            self._tree_store, self.state_root, writes.tree_changes, self._tree_cache, self._hash
        )
        return _Execution(included, tx_ids, receipts, rejected, writes, tree)

    def _pending_block(
        self,
        block: pb.Block,
        block_bytes: bytes,
        header: pb.BlockHeader,
        execution: _Execution,
    ) -> PendingBlock:
        pending = PendingBlock(
            height=header.height,
            block=block,
            block_bytes=block_bytes,
            block_hash=blocks.block_hash(block.header, self._hash),
            header=header,
            tx_ids=tuple(execution.tx_ids),
            receipts=tuple(execution.receipts),
            writes=execution.writes,
            new_tree_nodes=execution.tree.new_nodes,
            stale_tree_nodes=tuple(execution.tree.stale_nodes),
            trimmed_tree_nodes=tuple(execution.tree.trimmed_nodes.items()),
        )
        pending_blocks = self._pending
        if len(pending_blocks) >= MAX_PENDING_BLOCKS:
            # a proposer spamming blocks for one height must not grow memory without bound
            del pending_blocks[next(iter(pending_blocks))]
        pending_blocks[pending.block_hash] = pending
        return pending

    def _check_last_commit_quorum(self, last_commit: pb.CommitCertificate) -> None:
        """The certificate in a block must commit the parent: either it is the one this
        ledger stored for the parent, or a quorum of the validators signed it (the proposer
        may have collected a different quorum of precommits for the same block)."""
        stored = self._certificate(last_commit.height)
        if stored is not None and stored.SerializeToString(
            deterministic=True
        ) == last_commit.SerializeToString(deterministic=True):
            return
        try:
            signers = self.validators_at(last_commit.height)
            blocks.verify_commit_certificate(self.chain_id, signers, last_commit)
        except SparkError as error:
            raise SparkError(ErrorCode.INVALID_BLOCK, f"last_commit: {error.message}") from error


UPGRADE_BATCH_KEYS = 10_000  # owner index entries written per batch while upgrading


def add_owner_index(db: plyvel.DB) -> None:
    """Upgrade a schema 2 ledger to 3: index every record and prefix by its owner.
    Idempotent: a crash part way leaves schema 2, and the next open redoes it."""
    log.info("ledger_upgrade", extra={"from_schema": 2, "to_schema": 3, "adding": "owner index"})
    for namespace, kind, decode in (
        (schema.RECORD, schema.OWNED_RECORD, decode_record),
        (schema.PREFIX, schema.OWNED_PREFIX, decode_prefix),
    ):
        batch = db.write_batch()
        pending = 0
        for key, raw in db.iterator(prefix=namespace):
            owner = decode(raw).owner
            batch.put(schema.owner_key(owner, kind, key[1:].decode("utf-8")), b"")
            pending += 1
            if pending == UPGRADE_BATCH_KEYS:
                batch.write()
                batch, pending = db.write_batch(), 0
        batch.write()
    db.put(schema.META_SCHEMA_VERSION, b"3", sync=True)


def drop_latest_history_records(db: plyvel.DB) -> None:
    """Upgrade a schema 3 or 4 ledger to 5: the latest history entry of every identifier
    drops its record bytes, a copy of the identifier's current record (`r`); then say
    schema 5. Idempotent: a crash part way leaves the old schema number, and the next
    open finishes the entries left (a node of the older version must not open the ledger
    then: the entries already rewritten would read as empty records)."""
    version = (db.get(schema.META_SCHEMA_VERSION) or b"?").decode(errors="replace")
    log.info(
        "ledger_upgrade",
        extra={"from_schema": version, "to_schema": 5, "dropping": "history copies"},
    )
    batch = db.write_batch()
    pending = 0
    last: tuple[bytes, bytes] | None = None
    with db.iterator(prefix=schema.HISTORY) as entries:
        for key, raw in entries:
            if last is not None and _history_identifier(key) != _history_identifier(last[0]):
                pending += _drop_record_copy(db, batch, *last)
            last = (key, raw)
            if pending >= UPGRADE_BATCH_KEYS:
                batch.write()
                batch, pending = db.write_batch(), 0
    if last is not None:
        _drop_record_copy(db, batch, *last)
    batch.write()
    if version in ("2", "3", "4"):  # never a step back for a ledger already past 5
        db.put(schema.META_SCHEMA_VERSION, b"5", sync=True)


def _history_identifier(history_key: bytes) -> bytes:
    return history_key[: history_key.index(schema.SEPARATOR)]


def _drop_record_copy(db: plyvel.DB, batch: plyvel.WriteBatch, key: bytes, raw: bytes) -> int:
    """Rewrite one identifier's latest history entry without the copy of its current
    record (left as it is when it is not that copy: `spark ledger verify` reports it)."""
    record_bytes = schema.decode_history_entry(raw).record_bytes
    if not record_bytes:
        return 0
    identifier_key = _history_identifier(key)[len(schema.HISTORY) :].decode("utf-8")
    if db.get(schema.record_key(identifier_key)) != record_bytes:
        return 0
    batch.put(key, raw[: len(raw) - len(record_bytes)])
    return 1


def _write_genesis_state(db: plyvel.DB, genesis: Genesis, *, pruning: bool) -> None:
    """Height 0: the genesis prefixes, their state root and the genesis hash, in one batch;
    with `pruning`, the ledger records the tree nodes its blocks remove from the start."""
    overlay = Overlay(db)
    apply_genesis(overlay, genesis)
    writes = state_writes(overlay, 0, [], genesis.hash_fn)
    tree = smt.apply(TreeNodeStore(db), smt.EMPTY_ROOT, writes.tree_changes, None, genesis.hash_fn)
    with db.write_batch(sync=True) as batch:
        for key, value in writes.puts:  # nothing is deleted at height 0
            batch.put(key, value)
        for node_hash, node in tree.new_nodes.items():
            batch.put(schema.tree_node_key(node_hash), node)
        batch.put(schema.META_SCHEMA_VERSION, schema.SCHEMA_VERSION)
        if pruning:
            batch.put(schema.META_PRUNING, b"1")
        batch.put(schema.META_GENESIS_HASH, genesis.genesis_hash)
        batch.put(schema.META_HEAD, schema.head_bytes(0, genesis.genesis_hash, tree.root))
