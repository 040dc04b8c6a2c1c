"""Reads of the latest committed state and of the chain (the read half of node/ledger.py).

Every answer comes from LevelDB at the last committed block: records, proofs against the
last header's state root, history, listings by prefix, blocks, txs and per-block changes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection

import plyvel

from sparkchain.identifiers.bid import parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import identifier_key, parse_identifier, parse_prefix
from sparkchain.identifiers.limits import DEFAULT_LIST_PAGE_SIZE, MAX_LIST_PAGE_SIZE
from sparkchain.identifiers.tx import decode_body, tx_id
from sparkchain.ledger import blocks, smt, validators
from sparkchain.ledger.genesis import Genesis
from sparkchain.ledger.records import decode_prefix, decode_record, filter_values
from sparkchain.node import pruning, schema
from sparkchain.node.storage import TreeNodeStore, key_after_prefix
from sparkchain.proto import api_pb2
from sparkchain.proto import types_pb2 as pb


class LedgerReads:
    """Chain head and read queries; `Ledger` adds execution and commit on top."""

    def __init__(
        self, db: plyvel.DB, genesis: Genesis, tree_cache_nodes: int = smt.CACHE_MAX_NODES
    ) -> None:
        self._db = db
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._hash = genesis.hash_fn  # the chain's hash: tx ids, blocks, the state tree
        self.hash_fn = genesis.hash_fn
        self._genesis_schedule = validators.genesis_schedule(
            [(v.name, v.public_key) for v in genesis.validators]
        )
        self._schedule = self._genesis_schedule
        self._load_schedule()
        self._tree_store = TreeNodeStore(db)
        self._tree_cache = smt.NodeCache(max_nodes=tree_cache_nodes)
        # the oldest height whose state tree is stored (0: all of them; node/pruning.py)
        self.oldest_state = pruning.oldest_state(db)
        self.height = 0
        self.last_block_hash = genesis.genesis_hash
        self.state_root = smt.EMPTY_ROOT
        self._last_header: pb.BlockHeader | None = None
        self._last_header_bytes = b""
        self._last_certificate: pb.CommitCertificate | None = None
        # the validator-set changes every proof at the head carries, by the head's height:
        # one LevelDB scan per height instead of one per proof
        self._head_changes: tuple[int, list[api_pb2.ValidatorChange]] | None = None
        # the parts every resolve-with-proof at the head shares, by the head's block hash
        self._head_proof: tuple[bytes, pb.CommitCertificate | None, api_pb2.ResolveProof] | None = (
            None
        )
        # 0: the ledger began at the genesis; else it began from a state snapshot of this
        # height (node/snapshot_restore.py) and holds no blocks, history or txs below it
        self.base_height = 0

    @property
    def db(self) -> plyvel.DB:
        """The LevelDB itself, for read-only tools (node/chain_check.py)."""
        return self._db

    # ---- the head ----

    def _load_schedule(self) -> None:
        raw_schedule = self._db.get(schema.META_VALIDATOR_SCHEDULE)
        self._schedule = (
            self._genesis_schedule
            if raw_schedule is None
            else validators.decode_schedule(raw_schedule, ErrorCode.STORAGE_CORRUPT)
        )

    def _load_head(self) -> None:
        raw = self._db.get(schema.META_HEAD)
        if raw is None:
            raise SparkError(ErrorCode.STORAGE_CORRUPT, "ledger has no head record")
        height, block_hash, state_root = schema.head_from_bytes(raw)
        raw_base = self._db.get(schema.META_BASE)
        self.base_height = 0 if raw_base is None else schema.height_from_bytes(raw_base)
        header = None
        certificate = None
        if height > 0:
            header = pb.BlockHeader.FromString(self._read_block(height)[0].header)
            certificate = self._certificate(height)
        self._set_head(height, block_hash, state_root, header, certificate)

    def _set_head(
        self,
        height: int,
        block_hash: bytes,
        state_root: bytes,
        header: pb.BlockHeader | None,
        certificate: pb.CommitCertificate | None,
    ) -> None:
        self.height = height
        self.last_block_hash = block_hash
        self.state_root = state_root
        self._last_header = header
        self._last_header_bytes = b"" if header is None else blocks.encode_header(header)
        # every proof carries it: keep it decoded rather than read it per request
        self._last_certificate = certificate

    def last_header(self) -> pb.BlockHeader | None:
        """The header of the last committed block (None before block 1)."""
        if self._last_header is None:
            return None
        return pb.BlockHeader.FromString(self._last_header_bytes)

    @property
    def last_block_time_ms(self) -> int:
        if self._last_header is None:
            return self.genesis.genesis_time_ms
        return self._last_header.time_ms

    # ---- membership (DESIGN §12) ----

    @property
    def validators(self) -> tuple[bytes, ...]:
        """The keys that sign the next height (the one being decided)."""
        return self.validators_at(self.height + 1)

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The keys that sign `height`, from 1 to the last committed height + 2 (the chain
        fixes each set two heights ahead)."""
        return tuple(v.public_key for v in self.validator_set_at(height))

    def validator_set_at(self, height: int) -> list[pb.ValidatorInfo]:
        if height < 1 or height > self.height + validators.SET_CHANGE_DELAY_HEIGHTS:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT,
                f"height {height}: the validator sets are known for heights 1 to "
                f"{self.height + validators.SET_CHANGE_DELAY_HEIGHTS}",
            )
        schedule = self._schedule
        if height >= schedule.sets[0].from_height:
            return list(validators.set_at(schedule, height))
        # an older height: the set scheduled last from at or before it, else the genesis's
        stop = schema.validator_set_key(height + 1)
        with self._db.iterator(
            start=schema.VALIDATOR_SET, stop=stop, reverse=True, include_key=False
        ) as found:
            raw = next(found, None)
        if raw is None:
            return list(self._genesis_schedule.sets[0].validators)
        return list(pb.ScheduledSet.FromString(raw).validators)

    def rotated(self, old_key: bytes, new_key: bytes) -> str | None:
        """The name of the validator whose key the chain rotated from `old_key` to
        `new_key` (perhaps over several changes), or None."""
        sets = [list(self._genesis_schedule.sets[0].validators)]
        sets += [list(s.validators) for s in self.validator_changes()]
        for earlier, members in enumerate(sets):
            for old in members:
                if old.public_key != old_key:
                    continue
                for later in sets[earlier + 1 :]:
                    if any(v.name == old.name and v.public_key == new_key for v in later):
                        return old.name
        return None

    def validator_changes(self) -> list[pb.ScheduledSet]:
        """Every set the chain scheduled after the genesis's, oldest first."""
        with self._db.iterator(prefix=schema.VALIDATOR_SET, include_key=False) as found:
            return [pb.ScheduledSet.FromString(raw) for raw in found]

    def _parent(self) -> blocks.Parent:
        return blocks.Parent(
            chain_id=self.chain_id,
            height=self.height,
            block_hash=self.last_block_hash,
            time_ms=self.last_block_time_ms,
            validators=self.validators_at(self.height + 1),
            validators_hash=blocks.validators_hash(self.validators_at(self.height + 2), self._hash),
            hash_fn=self._hash,
        )

    def _certificate(self, height: int) -> pb.CommitCertificate | None:
        raw = self._db.get(schema.certificate_key(height))
        return None if raw is None else blocks.decode_certificate(raw)

    # ---- state ----

    def resolve(
        self, identifier: str, types: Collection[str] = (), indexes: Collection[int] = ()
    ) -> pb.Record:
        """The record of `identifier`, keeping only the values asked for (Handle filters:
        a value is kept when its type is in `types` or its index in `indexes`)."""
        key = identifier_key(identifier)
        raw = self._db.get(schema.record_key(key))
        if raw is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"identifier {identifier} is not registered")
        return filter_values(decode_record(raw), types, indexes)

    def resolve_with_proof(
        self, identifier: str, height: int = 0
    ) -> tuple[pb.Record | None, api_pb2.ResolveProof]:
        """The record (None when absent) and the proof of that answer at the last block, or
        at block `height` (0: the last): record bytes, the tree path to the header's state
        root, the header and the certificate that committed it. Before block 1 there is no
        header to prove against; a height whose state tree this node pruned is refused
        with HEIGHT_PRUNED naming the oldest height it proves.
        """
        key = identifier_key(identifier)
        if self.height == 0:
            raise SparkError(
                ErrorCode.UNAVAILABLE, "no block is committed yet: nothing to prove against"
            )
        if height in (0, self.height):
            raw = self._db.get(schema.record_key(key))
            state_proof = smt.prove(
                self._tree_store,
                self.state_root,
                smt.record_tree_key(key, self._hash),
                self._tree_cache,
            )
            # what every proof at the head shares, copied whole (cheaper than built anew)
            proof = api_pb2.ResolveProof()
            proof.CopyFrom(self._head_proof_template())
            proof.record_bytes = raw or b""
            proof.state_proof = state_proof
            return (None if raw is None else decode_record(raw)), proof
        self._check_provable(height)
        block, _ = self._read_block(height)
        header_bytes = block.header
        root = pb.BlockHeader.FromString(header_bytes).state_root
        raw = self._record_bytes_at(key, height)
        # no cache: an old version's nodes would only push the latest ones out of it
        state_proof = smt.prove(self._tree_store, root, smt.record_tree_key(key, self._hash))
        certificate = self._certificate(height)
        proof = api_pb2.ResolveProof(
            record_bytes=raw or b"", state_proof=state_proof, header=header_bytes
        )
        if certificate is not None:
            proof.commit.CopyFrom(certificate)
        proof.validator_changes.extend(self.proved_validator_changes(height))
        return (None if raw is None else decode_record(raw)), proof

    def resolve_at(
        self,
        identifier: str,
        height: int,
        types: Collection[str] = (),
        indexes: Collection[int] = (),
    ) -> pb.Record:
        """The record of `identifier` as block `height` left it, from its history (which
        pruning never touches), filtered as `resolve` filters."""
        key = parse_identifier(identifier).key
        if not 1 <= height <= self.height:
            raise SparkError(
                ErrorCode.NOT_FOUND, f"no block at height {height} (the chain has {self.height})"
            )
        raw = self._record_bytes_at(key, height)
        if raw is None:
            raise SparkError(
                ErrorCode.NOT_FOUND,
                f"identifier {identifier} was not registered at height {height}",
            )
        return filter_values(decode_record(raw), types, indexes)

    def _check_provable(self, height: int) -> None:
        if not 1 <= height <= self.height:
            raise SparkError(
                ErrorCode.NOT_FOUND, f"no block at height {height} (the chain has {self.height})"
            )
        if height < self.oldest_state:
            raise pruning.height_pruned(height, self.oldest_state)

    def _record_bytes_at(self, key: str, height: int) -> bytes | None:
        """The record bytes after its last change at or before `height` (None: none yet)."""
        start = schema.history_range(key)
        stop = start + schema.tx_location(height + 1, 0)
        # one view: the entry and the current record it may stand for (schema 5)
        with self._db.snapshot() as view:
            with view.iterator(start=start, stop=stop, reverse=True, include_key=False) as found:
                raw = next(found, None)
            if raw is None:
                return None
            entry = schema.decode_history_entry(raw)
            if entry.record_bytes:
                return entry.record_bytes
            return schema.history_entry_record(entry, view.get(schema.record_key(key)))

    def _head_proof_template(self) -> api_pb2.ResolveProof:
        """A ResolveProof at the head without its record and state proof: the header, the
        certificate and the validator changes, built once per committed height."""
        cached = self._head_proof
        certificate = self._last_certificate
        if cached is None or cached[0] != self.last_block_hash or cached[1] is not certificate:
            template = api_pb2.ResolveProof(header=self._last_header_bytes)
            if certificate is not None:
                template.commit.CopyFrom(certificate)
            template.validator_changes.extend(self._changes_at_head())
            cached = (self.last_block_hash, certificate, template)
            self._head_proof = cached
        return cached[2]

    def _changes_at_head(self) -> list[api_pb2.ValidatorChange]:
        """`proved_validator_changes(self.height)`, computed once per committed height."""
        cached = self._head_changes
        if cached is None or cached[0] != self.height:
            cached = (self.height, self.proved_validator_changes(self.height))
            self._head_changes = cached
        return cached[1]

    def proved_validator_changes(self, height: int) -> list[api_pb2.ValidatorChange]:
        """The changes of the set a client follows from the genesis to check a header of
        `height` (DESIGN §12): for each set that signs from E ≤ height + 1, the header of
        E - 1 (which commits to it) with its certificate (by the set before)."""
        proved = []
        for scheduled in self.validator_changes():
            last_of_previous = scheduled.from_height - 1
            if last_of_previous > height:
                break
            block, _ = self._read_block(last_of_previous)
            change = api_pb2.ValidatorChange(
                header=block.header, validators=[v.public_key for v in scheduled.validators]
            )
            certificate = self._certificate(last_of_previous)
            if certificate is not None:
                change.commit.CopyFrom(certificate)
            proved.append(change)
        return proved

    def history(self, identifier: str, limit: int = 0) -> list[api_pb2.HistoryEntry]:
        """Every change of `identifier`, oldest first; with a `limit`, the latest `limit`."""
        key = parse_identifier(identifier).key
        if limit < 0:
            raise SparkError(ErrorCode.INVALID_ARGUMENT, f"limit must be 0 or more, got {limit}")
        raws = []
        # one view: the latest entry and the current record it stands for (schema 5)
        with self._db.snapshot() as view:
            with view.iterator(
                prefix=schema.history_range(key), include_key=False, reverse=True
            ) as scan:
                for raw in scan:
                    raws.append(raw)
                    if limit and len(raws) == limit:
                        break
            current = view.get(schema.record_key(key)) if raws else None
        if self.base_height and (not limit or len(raws) < limit):
            self._check_history_held(identifier, key)
        if not raws:
            raise SparkError(ErrorCode.NOT_FOUND, f"identifier {identifier} is not registered")
        return [
            _history_message(schema.decode_history_entry(raw), current) for raw in reversed(raws)
        ]

    def _check_history_held(self, identifier: str, key: str) -> None:
        """On a ledger that began from a snapshot, history older than its base is not here."""
        raw = self._db.get(schema.record_key(key))
        if raw is not None and decode_record(raw).created_height <= self.base_height:
            raise SparkError(
                ErrorCode.UNAVAILABLE,
                f"the history of {identifier} before block {self.base_height + 1} is not on "
                f"this node: it began from a state snapshot at height {self.base_height}; "
                "ask a node that holds the whole chain, or ask for the latest changes only "
                "(a limit)",
            )

    def below_base(self, height: int) -> SparkError:
        """The refusal of a read of block `height`, below where this ledger began."""
        return SparkError(
            ErrorCode.NOT_FOUND,
            f"block {height} is not on this node: it began from a state snapshot at height "
            f"{self.base_height}; ask a node that holds the whole chain",
        )

    def list_identifiers(
        self, prefix: str, page_size: int = DEFAULT_LIST_PAGE_SIZE, page_token: str = ""
    ) -> tuple[list[pb.Record], str]:
        """The records directly under `prefix`, in key order, one page at a time.

        Returns the page and the token of the next one ("" after the last page). A page
        size of 0 means the default; above MAX_LIST_PAGE_SIZE it is lowered to it.
        """
        parsed = parse_prefix(prefix)
        if page_size < 0:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT, f"page_size must be 0 or more, got {page_size}"
            )
        page_size = min(page_size or DEFAULT_LIST_PAGE_SIZE, MAX_LIST_PAGE_SIZE)
        if self._db.get(schema.prefix_key(parsed.key)) is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"prefix {prefix} does not exist")
        range_start = schema.records_under_prefix(parsed.key)
        start = range_start
        if page_token:
            after = schema.record_key(_decode_page_token(page_token))
            if not after.startswith(range_start):
                raise SparkError(
                    ErrorCode.INVALID_ARGUMENT, f"page_token does not belong to prefix {prefix}"
                )
            # keys never contain NUL, so this is the first key after the last one returned
            start = after + schema.SEPARATOR
        page: list[tuple[bytes, bytes]] = []
        more = False
        for item in self._db.iterator(start=start, stop=key_after_prefix(range_start)):
            if len(page) == page_size:
                more = True
                break
            page.append(item)
        records = [decode_record(raw) for _, raw in page]
        next_token = _encode_page_token(page[-1][0][len(schema.RECORD) :]) if more else ""
        return records, next_token

    def prefix_info(self, prefix: str) -> tuple[pb.PrefixRecord, list[str]]:
        """A prefix record and the display forms of its direct child prefixes, in key order."""
        parsed = parse_prefix(prefix)
        raw = self._db.get(schema.prefix_key(parsed.key))
        if raw is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"prefix {prefix} does not exist")
        children = []
        scan = self._db.iterator(
            prefix=schema.prefix_children_range(parsed.key), include_value=False
        )
        for child_index_key in scan:
            child_key = child_index_key.split(schema.SEPARATOR, 1)[1]
            child = self._db.get(schema.PREFIX + child_key)
            if child is None:
                raise SparkError(
                    ErrorCode.STORAGE_CORRUPT, f"child prefix {child_key!r} has no record"
                )
            children.append(decode_prefix(child).prefix)
        return decode_prefix(raw), children

    def owned_by(
        self, owner: str, kind: bytes, page_size: int = DEFAULT_LIST_PAGE_SIZE, after: str = ""
    ) -> tuple[list[str], str]:
        """The keys of the prefixes (kind OWNED_PREFIX) or records (OWNED_RECORD) that BID
        `owner` owns, in key order, from the owner index: one page of at most `page_size`
        after the key `after`, and the key to continue after ("" after the last page)."""
        checked = parse_bid(owner).text
        if kind not in (schema.OWNED_PREFIX, schema.OWNED_RECORD):
            raise SparkError(ErrorCode.INVALID_ARGUMENT, f"unknown kind of owned thing {kind!r}")
        if page_size < 1:
            raise SparkError(
                ErrorCode.INVALID_ARGUMENT, f"page_size must be 1 or more, got {page_size}"
            )
        page_size = min(page_size, MAX_LIST_PAGE_SIZE)
        range_start = schema.owner_range(checked, kind)
        start = range_start + after.encode("utf-8") + schema.SEPARATOR if after else range_start
        keys: list[str] = []
        more = False
        scan = self._db.iterator(
            start=start, stop=key_after_prefix(range_start), include_value=False
        )
        with scan:
            for index_key in scan:
                if len(keys) == page_size:
                    more = True
                    break
                keys.append(index_key[len(range_start) :].decode("utf-8"))
        return keys, keys[-1] if more else ""

    # ---- chain ----

    def get_block(self, height: int) -> tuple[pb.Block, bytes, pb.CommitCertificate | None]:
        """The block at `height`, its bytes as committed and the certificate that committed
        it."""
        if not 1 <= height <= self.height:
            raise SparkError(
                ErrorCode.NOT_FOUND, f"no block at height {height} (the chain has {self.height})"
            )
        if height < self.base_height and self._db.get(schema.block_key(height)) is None:
            raise self.below_base(height)
        block, raw = self._read_block(height)
        return block, raw, self._certificate(height)

    def _read_block(self, height: int) -> tuple[pb.Block, bytes]:
        raw = self._db.get(schema.block_key(height))
        if raw is None:
            raise SparkError(ErrorCode.STORAGE_CORRUPT, f"block {height} is missing")
        return pb.Block.FromString(raw), raw

    def commit_certificate(self, height: int) -> pb.CommitCertificate | None:
        """The certificate that committed block `height` (None when none is stored)."""
        return self._certificate(height)

    def block_height(self, block_hash: bytes) -> int:
        raw = self._db.get(schema.block_hash_key(block_hash))
        if raw is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"no block with hash {block_hash.hex()}")
        return schema.height_from_bytes(raw)

    def tx_location(self, the_tx_id: bytes) -> tuple[int, int] | None:
        """(height, index in that block) of a committed tx, or None."""
        raw = self._db.get(schema.tx_key(the_tx_id))
        return None if raw is None else schema.tx_location_from_bytes(raw)

    def get_tx(self, the_tx_id: bytes) -> tuple[pb.SignedTx, int, int]:
        """A committed tx with its block height and index in that block."""
        raw = self._db.get(schema.tx_key(the_tx_id))
        if raw is None:
            raise SparkError(ErrorCode.NOT_FOUND, f"no committed tx with id {the_tx_id.hex()}")
        height, index = schema.tx_location_from_bytes(raw)
        block, _, _ = self.get_block(height)
        return block.txs[index], height, index

    def changes_at(self, height: int) -> list[api_pb2.ChangeEvent]:
        """What block `height` changed, in block order (for watch streams)."""
        if height <= self.base_height:
            raise self.below_base(height)
        block, _, _ = self.get_block(height)
        raw = self._db.get(schema.changes_key(height))
        if raw is None:
            raise SparkError(ErrorCode.STORAGE_CORRUPT, f"block {height} has no change list")
        events = []
        tx_ids: dict[int, bytes] = {}
        with self._db.snapshot() as view:  # an entry and the current record it may stand for
            changes = [
                (tx_index, key, _change_entry(view, key, height, tx_index, kind))
                for tx_index, kind, key in schema.decode_changes(raw)
            ]
        for tx_index, key, changed in changes:
            signed = block.txs[tx_index]
            if tx_index not in tx_ids:
                tx_ids[tx_index] = tx_id(signed, self._hash)
            event = api_pb2.ChangeEvent(height=height, tx_id=tx_ids[tx_index])
            if changed is not None:
                entry, record_bytes = changed
                record = decode_record(record_bytes)
                event.operation = entry.operation
                event.identifier = record.identifier
                event.prefix = record.identifier.split("/", 1)[0]
                event.record.CopyFrom(record)
            else:
                prefix_raw = self._db.get(schema.prefix_key(key))
                if prefix_raw is None:
                    raise SparkError(ErrorCode.STORAGE_CORRUPT, f"prefix {key} has no record")
                event.operation = decode_body(signed.body).WhichOneof("op") or ""
                event.prefix = decode_prefix(prefix_raw).prefix
            events.append(event)
        return events


def _history_message(entry: schema.HistoryEntry, current: bytes | None) -> api_pb2.HistoryEntry:
    return api_pb2.HistoryEntry(
        height=entry.height,
        time_ms=entry.time_ms,
        tx_id=entry.tx_id,
        operation=entry.operation,
        signer=entry.signer,
        record=decode_record(schema.history_entry_record(entry, current)),
    )


def _change_entry(
    view: plyvel.Snapshot, key: str, height: int, tx_index: int, kind: int
) -> tuple[schema.HistoryEntry, bytes] | None:
    """The history entry of a record change in a block's change list, with the record bytes
    after it; None for a prefix change."""
    if kind != schema.CHANGE_RECORD:
        return None
    entry_raw = view.get(schema.history_key(key, height, tx_index))
    if entry_raw is None:
        raise SparkError(ErrorCode.STORAGE_CORRUPT, f"no history of {key} at block {height}")
    entry = schema.decode_history_entry(entry_raw)
    if entry.record_bytes:
        return entry, entry.record_bytes
    return entry, schema.history_entry_record(entry, view.get(schema.record_key(key)))


def _encode_page_token(last_key: bytes) -> str:
    return base64.urlsafe_b64encode(last_key).decode("ascii").rstrip("=")


def _decode_page_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "page_token is not a valid token") from None
