"""Every LevelDB key layout of a node, in one place (DESIGN §5).

One LevelDB holds one node's whole ledger. Each namespace is a single leading byte, so a
namespace is one contiguous key range and a prefix scan never crosses into another one.
Heights and tx indexes are big-endian so that byte order is numeric order.

    m<name>                          chain metadata (head, genesis hash, snapshot base)
    b<height:8>                      block bytes (serialized pb.Block)
    c<height:8>                      certificate that committed the block at <height>
    h<block hash:32>                 -> <height:8>
    x<tx id:32>                      -> <height:8><index:4>
    g<height:8>                      the block's change list (what changed, in order)
    r<identifier key>                record bytes (serialized pb.Record)
    p<prefix key>                    prefix record bytes (serialized pb.PrefixRecord)
    k<parent key>\\0<child key>       prefix children index ("" is the parent of top-level)
    y<identifier key>\\0<height:8><index:4>   history entry (`history_entry_head` + record
                                     after the change; none in the identifier's latest
                                     entry, whose record is its current one, `r`)
    o<owner BID>\\0<kind:1><key>      owner index: what a BID owns (kind p: prefix, r: record)
    t<node hash>                     sparse Merkle tree node (one a block removed, on a
                                     ledger that records removals: trimmed, smt_nodes.py)
    s<height:8><node hash>           stale queue: the block at <height> removed the tree node
    u<node hash>                     -> <height:8>: stale mark, the last height that removed
                                     it (ledger/smt_prune.py; only when `mpruning` is set)
    v<from height:8>                 a validator set the chain scheduled (pb.ScheduledSet),
                                     by the height it signs from; `mvalidators` holds the
                                     current pb.ValidatorSchedule (the state tree's leaf)

Identifiers under a prefix need no index of their own: an identifier key is
`<prefix key>/<suffix>`, so the records of prefix P are exactly the range `r<P>/`, in key
order, and a listing page is one range scan. Keys never contain NUL (identifier and prefix
grammar forbid control characters), which makes `\\0` a safe separator.

The state tree keys of records and prefixes are not storage keys: they are a hash domain
that clients verify proofs against, so their namespaces live with the signing tags
(identifiers/tags.py) and the tree computes them (ledger/smt.py `record_tree_key`).
"""

from __future__ import annotations

import operator
import struct
from dataclasses import dataclass
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import DIGEST_BYTES

META: Final = b"m"
BLOCK: Final = b"b"
CERTIFICATE: Final = b"c"
BLOCK_HASH: Final = b"h"
TX: Final = b"x"
CHANGES: Final = b"g"
RECORD: Final = b"r"
PREFIX: Final = b"p"
PREFIX_CHILD: Final = b"k"
HISTORY: Final = b"y"
OWNER: Final = b"o"
TREE_NODE: Final = b"t"
STALE_QUEUE: Final = b"s"
STALE_MARK: Final = b"u"
VALIDATOR_SET: Final = b"v"

NAMESPACE_NAMES: Final = {
    META: "chain metadata",
    BLOCK: "block",
    CERTIFICATE: "certificate",
    BLOCK_HASH: "block hash index",
    TX: "tx index",
    CHANGES: "change list",
    RECORD: "record",
    PREFIX: "prefix",
    PREFIX_CHILD: "prefix children index",
    HISTORY: "history entry",
    OWNER: "owner index",
    TREE_NODE: "state tree node",
    STALE_QUEUE: "stale tree node queue",
    STALE_MARK: "tree node revive mark",
    VALIDATOR_SET: "validator set",
}

META_HEAD: Final = META + b"head"
META_GENESIS_HASH: Final = META + b"genesis"
META_SCHEMA_VERSION: Final = META + b"schema"
# absent until the validator set first changes (DESIGN §12): the genesis set then
META_VALIDATOR_SCHEDULE: Final = META + b"validators"
# set when the ledger records which tree nodes blocks removed (`s`, `u`): from its creation
# with [ledger] keep_heights > 0, or from the sweep that starts pruning (node/pruning.py)
META_PRUNING: Final = META + b"pruning"
# <height:8>: the oldest height whose state tree is still stored (absent: every height's)
META_OLDEST_STATE: Final = META + b"oldest"
# absent on a ledger that began at the genesis; on one restored from a state snapshot
# (node/snapshot_restore.py), the snapshot's height: blocks, history and tx lookups below
# it are not on this node
META_BASE: Final = META + b"base"
# present while a snapshot is being written into the ledger: a ledger holding it is
# incomplete (a state sync was interrupted) and is never read as a chain
META_RESTORING: Final = META + b"restoring"
# 2: history entries in their own encoding (1 stored the public api.HistoryEntry message)
# 3: the owner index (`o`); a schema 2 ledger gains it when a node opens it (node/ledger.py)
# 4: pruning of the state tree (`s`, `u`, `mpruning`, `moldest`); a schema 3 ledger is one
#    that never pruned: opening it only says 4 (node/ledger.py)
# 5: an identifier's latest history entry holds no record bytes (they were a second copy of
#    its `r` record), and a ledger recording removals stores the tree nodes blocks removed
#    without their leaf keys (ledger/smt_nodes.py `trimmed`); opening a schema 3 or 4
#    ledger does both to what it holds (node/ledger.py)
# 6: the stale queue holds one entry per height (its removed nodes' hashes, end to end),
#    and `u` marks only the removed nodes that a later block wrote again (revive marks,
#    ledger/smt_prune.py) where 5 marked every removed node with its last removal
#    (node/pruning.py converts a schema 5 ledger when a node opens it)
SCHEMA_VERSION: Final = b"6"
SCHEMA_UPGRADABLE: Final = (b"2", b"3", b"4", b"5")

SEPARATOR: Final = b"\x00"
_HEIGHT = struct.Struct(">Q")
_TX_LOCATION = struct.Struct(">QI")
# head: height, last block hash, state root
_HEAD = struct.Struct(">Q32s32s")
# history entry: height, time_ms, tx id; then operation and signer (each one length byte
# and ASCII), then the record bytes after the change, to the end
_HISTORY_HEAD = struct.Struct(">QQ32s")
# change list entry: tx index, kind, key length (then the key in UTF-8)
_CHANGE = struct.Struct(">IBH")
CHANGE_RECORD: Final = 1
CHANGE_PREFIX: Final = 2
# what an owner index entry points at
OWNED_PREFIX: Final = b"p"
OWNED_RECORD: Final = b"r"


# a storage key's part after its namespace byte, as a C callable for map() over many keys
WITHOUT_NAMESPACE: Final = operator.itemgetter(slice(1, None))


def height_bytes(height: int) -> bytes:
    return _HEIGHT.pack(height)


def height_from_bytes(raw: bytes) -> int:
    height: int = _HEIGHT.unpack(raw)[0]
    return height


def block_key(height: int) -> bytes:
    return BLOCK + _HEIGHT.pack(height)


def validator_set_key(from_height: int) -> bytes:
    return VALIDATOR_SET + _HEIGHT.pack(from_height)


def certificate_key(height: int) -> bytes:
    return CERTIFICATE + _HEIGHT.pack(height)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH + block_hash


def tx_key(tx_id: bytes) -> bytes:
    return TX + tx_id


def tx_location(height: int, index: int) -> bytes:
    return _TX_LOCATION.pack(height, index)


def tx_location_from_bytes(raw: bytes) -> tuple[int, int]:
    height, index = _TX_LOCATION.unpack(raw)
    return int(height), int(index)


def changes_key(height: int) -> bytes:
    return CHANGES + _HEIGHT.pack(height)


def record_key(identifier_key: str) -> bytes:
    return RECORD + identifier_key.encode("utf-8")


def records_under_prefix(prefix_key: str) -> bytes:
    """The key range holding every identifier directly under `prefix_key`."""
    return RECORD + prefix_key.encode("utf-8") + b"/"


def prefix_key(prefix: str) -> bytes:
    return PREFIX + prefix.encode("utf-8")


def prefix_child_key(parent_key: str, child_key: str) -> bytes:
    return PREFIX_CHILD + parent_key.encode("utf-8") + SEPARATOR + child_key.encode("utf-8")


def prefix_children_range(parent_key: str) -> bytes:
    return PREFIX_CHILD + parent_key.encode("utf-8") + SEPARATOR


def owner_key(owner: str, kind: bytes, key: str) -> bytes:
    """The owner index entry saying that BID `owner` owns the prefix or record `key`."""
    return OWNER + owner.encode("ascii") + SEPARATOR + kind + key.encode("utf-8")


def owner_key_head(owner: str, kind: bytes) -> bytes:
    """`owner_key(owner, kind, key)` is this + the key's UTF-8 (a block's records mostly
    share one owner: the head is built once)."""
    return OWNER + owner.encode("ascii") + SEPARATOR + kind


def owner_range(owner: str, kind: bytes) -> bytes:
    """The key range of everything of one kind that `owner` owns, in key order."""
    return OWNER + owner.encode("ascii") + SEPARATOR + kind


def history_key(identifier_key: str, height: int, tx_index: int) -> bytes:
    return history_range(identifier_key) + _TX_LOCATION.pack(height, tx_index)


def history_key_of(key_bytes: bytes, location: bytes) -> bytes:
    """`history_key` from the key's UTF-8 and `tx_location(height, tx_index)`, which a
    tx's records share."""
    return HISTORY + key_bytes + SEPARATOR + location


def history_range(identifier_key: str) -> bytes:
    return HISTORY + identifier_key.encode("utf-8") + SEPARATOR


def change_entry(tx_index: int, kind: int, key_bytes: bytes) -> bytes:
    """One entry of a block's change list (`changes_key`): tx `tx_index` wrote the record
    (CHANGE_RECORD) or prefix (CHANGE_PREFIX) with key `key_bytes`."""
    return _CHANGE.pack(tx_index, kind, len(key_bytes)) + key_bytes


def decode_changes(raw: bytes) -> list[tuple[int, int, str]]:
    """(tx index, CHANGE_RECORD | CHANGE_PREFIX, key) in block order."""
    out = []
    offset = 0
    while offset < len(raw):
        tx_index, kind, size = _CHANGE.unpack_from(raw, offset)
        offset += _CHANGE.size
        out.append((tx_index, kind, raw[offset : offset + size].decode("utf-8")))
        offset += size
    return out


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored change of an identifier: which tx made it, and the record after it.

    `record_bytes` is empty in the identifier's latest entry: its record after the change
    is the current one (`record_key`), stored once (`history_entry_record`)."""

    height: int
    time_ms: int
    tx_id: bytes
    operation: str  # the TxBody op that made the change (register, update, ...)
    signer: str  # the signer's BID
    record_bytes: bytes


def history_entry_head(
    height: int, time_ms: int, tx_id: bytes, operation: str, signer: str
) -> bytes:
    """Everything of a history entry but its record bytes, which the caller appends (one
    tx writing a thousand records encodes its head once)."""
    op, who = operation.encode("ascii"), signer.encode("ascii")
    return (
        _HISTORY_HEAD.pack(height, time_ms, tx_id)
        + bytes((len(op),))
        + op
        + bytes((len(who),))
        + who
    )


def decode_history_entry(raw: bytes) -> HistoryEntry:
    try:
        height, time_ms, tx_id = _HISTORY_HEAD.unpack_from(raw)
        offset = _HISTORY_HEAD.size
        op_end = offset + 1 + raw[offset]
        operation = raw[offset + 1 : op_end].decode("ascii")
        signer_end = op_end + 1 + raw[op_end]
        signer = raw[op_end + 1 : signer_end].decode("ascii")
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise SparkError(
            ErrorCode.STORAGE_CORRUPT, f"history entry does not decode: {exc}"
        ) from None
    if signer_end > len(raw):
        raise SparkError(ErrorCode.STORAGE_CORRUPT, "history entry is truncated")
    return HistoryEntry(height, time_ms, bytes(tx_id), operation, signer, raw[signer_end:])


def history_entry_record(entry: HistoryEntry, current: bytes | None) -> bytes:
    """The record bytes after the change of `entry`: its own, or for the identifier's latest
    entry, `current` (the identifier's `r` record read from the same view of the ledger)."""
    if entry.record_bytes:
        return entry.record_bytes
    if current is None:
        raise SparkError(
            ErrorCode.STORAGE_CORRUPT,
            f"the latest history entry (height {entry.height}) has no current record",
        )
    return current


def tree_node_key(node_hash: bytes) -> bytes:
    return TREE_NODE + node_hash


def stale_queue_key(height: int) -> bytes:
    """The stale queue entry of a height: the hashes of the tree nodes its block removed."""
    return STALE_QUEUE + _HEIGHT.pack(height)


def stale_queue_height(key: bytes) -> int:
    return height_from_bytes(key[1:9])


def stale_queue_hashes(raw: bytes) -> list[bytes]:
    """The node hashes of a stale queue entry's value."""
    if len(raw) % DIGEST_BYTES:
        raise SparkError(
            ErrorCode.STORAGE_CORRUPT,
            f"a stale queue entry of {len(raw)} bytes is not a list of {DIGEST_BYTES}-byte hashes",
        )
    return [raw[at : at + DIGEST_BYTES] for at in range(0, len(raw), DIGEST_BYTES)]


def stale_mark_key(node_hash: bytes) -> bytes:
    return STALE_MARK + node_hash


def head_bytes(height: int, block_hash: bytes, state_root: bytes) -> bytes:
    return _HEAD.pack(height, block_hash, state_root)


def head_from_bytes(raw: bytes) -> tuple[int, bytes, bytes]:
    height, block_hash, state_root = _HEAD.unpack(raw)
    return int(height), bytes(block_hash), bytes(state_root)


def describe_key(key: bytes) -> str:
    """A storage key for people: its namespace and the readable part of the rest."""
    name = NAMESPACE_NAMES.get(key[:1], f"unknown namespace {key[:1]!r}")
    rest = key[1:]
    if key[:1] in (RECORD, PREFIX, HISTORY, PREFIX_CHILD, META, OWNER):
        text = rest.split(SEPARATOR, 1)[0].decode("utf-8", errors="replace")
        return f"{name} {text!r}"
    if key[:1] in (BLOCK, CERTIFICATE, CHANGES, STALE_QUEUE) and len(rest) == _HEIGHT.size:
        return f"{name} {height_from_bytes(rest)}"
    return f"{name} {rest.hex()}"
